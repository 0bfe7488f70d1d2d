//! [`NotifyError`]: why an outbound webhook request was refused or failed.

use crate::store::StoreError;

/// A failure of the outbound webhook layer; the API turns it into its JSON error shape.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No such endpoint or delivery in the workspace.
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but cannot be done (bad URL, subscription, secret overlap).
    #[error("{0}")]
    Invalid(String),
    /// The workspace has as many endpoints as the operator allows, or the endpoint is disabled.
    #[error("{0}")]
    Refused(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
