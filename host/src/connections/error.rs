//! [`ConnectionError`]: why connecting, testing, refreshing or disconnecting failed. Messages are
//! safe to show; none carries a token, a secret or a CRM response body.

use crate::oauth::OAuthError;
use crate::store::{StateRejection, StoreError};

/// A connection failure.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// No plugin with this slug is loaded.
    #[error("no integration `{0}` is installed")]
    UnknownPlugin(String),
    /// The workspace has no usable connection to this integration.
    #[error("the workspace is not connected to `{0}`; connect it first")]
    NotConnected(String),
    /// The CRM rejected the refresh token earlier; a user must connect again.
    #[error("the `{0}` connection needs to be authorized again: connect it again")]
    NeedsReauth(String),
    /// The request is invalid; the message says what to fix.
    #[error("{0}")]
    BadInput(String),
    /// The callback's `state` was refused.
    #[error(transparent)]
    State(#[from] StateRejection),
    /// The user (or the CRM) refused consent.
    #[error("the CRM did not grant access ({error}){}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        /// The OAuth error code (`access_denied`, ...).
        error: String,
        /// The CRM's description, capped.
        description: Option<String>,
    },
    /// An OAuth step failed.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The plugin's test-connection failed after the exchange.
    #[error("the connection test failed ({kind}): {message}")]
    TestFailed {
        /// The adapter error kind or `plugin_failed`.
        kind: &'static str,
        /// What the plugin or runtime said.
        message: String,
    },
    /// The CRM refused the API key or password an admin entered.
    #[error("the CRM refused the credentials ({kind}): {message}")]
    CredentialsRejected {
        /// `unauthorized` or `forbidden`.
        kind: &'static str,
        /// What the plugin said.
        message: String,
    },
    /// Stored credentials could not be opened (wrong master key, tampering).
    #[error("the stored credentials cannot be read: {0}")]
    Unreadable(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
