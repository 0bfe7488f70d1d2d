//! [`Caller`]: the authenticated caller of a `/api/v1/workspaces/{id}/…` route. The API layer
//! extracts it from a request (`api::extract`); this module only says what it is.

use super::Role;
use crate::domain::WorkspaceId;

/// Who is calling, for which workspace, with which role: the token's claims, once the token was
/// verified and its workspace found to be the one in the path.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id (`sub`).
    pub user: String,
    /// The workspace (path and token agree).
    pub workspace: WorkspaceId,
    /// The role.
    pub role: Role,
}

impl Caller {
    /// Whether the caller holds at least `role`.
    pub fn holds(&self, role: Role) -> bool {
        self.role >= role
    }
}
