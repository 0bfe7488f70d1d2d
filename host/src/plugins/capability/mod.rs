//! Host imports, one module per capability (Spin's capability-per-module layout): each owns its
//! per-call state and implements its generated `Host` trait for the call's store data.
//!
//! - [`http`]: `http.send`, the only way out of the sandbox, behind the egress policy.
//! - [`connection`]: `connection.get`, non-secret facts of the current connection.
//! - [`secrets`]: `secrets.hmac-sha256`, signing with host-held secrets.
//! - [`log`]: `log.log`, tagged and rate-limited.

pub mod connection;
pub mod http;
pub mod log;
pub mod secrets;

use super::bindings::crmhost::adapter::types;
use super::runtime::CallState;

// The `types` interface has no functions; its (empty) host trait still needs an impl.
impl types::Host for CallState {}
