//! [`SyncError`]: why a sync request (not a record within a run) could not be carried out.
//! Messages are safe to show.

use crate::connections::ConnectionError;
use crate::store::StoreError;

/// A sync-layer failure.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The integration is not installed, not connected, or needs re-authorization.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The request is invalid; the message says what to fix.
    #[error("{0}")]
    BadInput(String),
    /// Well-formed but not acceptable (unknown CRM fields, read-only fields).
    #[error("{0}")]
    Unprocessable(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The plugin does not offer this (an optional export it lacks).
    #[error("{0}")]
    NotSupported(String),
    /// The integration is paused: it runs nothing until resumed.
    #[error("{0}")]
    Paused(String),
    /// A request that must prove who sent it did not (a webhook with a bad signature).
    #[error("{0}")]
    Unauthorized(String),
    /// The resource is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The plugin or the CRM failed; the message says how.
    #[error("{message}")]
    Crm {
        /// The adapter error kind or `plugin_failed`.
        kind: &'static str,
        /// What happened.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
