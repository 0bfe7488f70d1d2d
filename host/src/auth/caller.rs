//! [`Caller`]: the authenticated caller of a `/api/v1/workspaces/{id}/…` route.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::{AuthError, Role};
use crate::api::error::ApiError;
use crate::domain::WorkspaceId;
use crate::state::AppState;

/// Who is calling, for which workspace, with which role. Extracting it checks the token and that
/// the token's workspace is the one in the path.
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
    /// 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                code: "insufficient_role",
                message: format!(
                    "this needs the {} role or higher; the token's role is {}",
                    role.as_str(),
                    self.role.as_str()
                ),
            })
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        ApiError::Unauthorized(err.to_string())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let verifier = state.jwt.as_ref().ok_or_else(|| {
            ApiError::Unavailable(
                "the workspace API needs CRMHOST_JWT_SECRET or CRMHOST_JWT_PUBLIC_KEY to be configured".to_owned(),
            )
        })?;
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AuthError::Missing)?;
        let claims = verifier.verify(token)?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadRequest("missing workspace id in the path".to_owned()))?;
        let raw =
            params.get("id").ok_or_else(|| ApiError::BadRequest("missing workspace id in the path".to_owned()))?;
        let workspace = WorkspaceId::parse(raw).map_err(ApiError::BadRequest)?;
        if claims.workspace != workspace.as_str() {
            return Err(ApiError::Forbidden {
                code: "wrong_workspace",
                message: "the token is for another workspace".to_owned(),
            });
        }
        Ok(Caller { user: claims.sub, workspace, role: claims.role })
    }
}
