//! OAuth 2.0 as the host does it (plugins only describe their endpoints): the CSRF `state`
//! parameter, the client side of the flow (authorize URL, code exchange, refresh, revocation) and
//! the token set that the vault seals.

pub mod client;
pub mod state;
pub mod tokens;

pub use client::{OAuthApp, OAuthError, TokenGrant};
pub use tokens::{TokenReadError, TokenSet};
