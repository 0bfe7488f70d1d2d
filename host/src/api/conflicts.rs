//! Conflict routes, member+: `GET /api/v1/workspaces/{id}/conflicts` (filters: status,
//! integration, entity, record_id), `GET …/conflicts/{cid}`, `POST …/conflicts/{cid}/resolve`
//! (written to both sides) and `POST …/conflicts/{cid}/ignore`.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery, Authorized, JsonBody, at_least};
use super::openapi::{ConflictPath, ErrorResponses, WorkspacePath};
use super::routes::Routes;
use crate::domain::{ConflictId, ConflictStatus};
use crate::state::AppState;
use crate::store::{ConflictFilter, StoreResultExt, SyncConflict};
use crate::sync::Resolution;

pub fn router() -> Routes {
    Routes::new()
        .get("/api/v1/workspaces/{id}/conflicts", list)
        .get("/api/v1/workspaces/{id}/conflicts/{cid}", show)
        .post("/api/v1/workspaces/{id}/conflicts/{cid}/resolve", resolve)
        .post("/api/v1/workspaces/{id}/conflicts/{cid}/ignore", ignore)
}

/// A page of conflicts.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct ConflictPage {
    /// Conflicts, newest first.
    conflicts: Vec<SyncConflict>,
    /// Pass as `?before=` for the next page; null on the last.
    next_before: Option<ConflictId>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only conflicts in this state.
    #[param(inline)]
    status: Option<ConflictStatus>,
    /// Only this integration's (a plugin slug).
    integration: Option<String>,
    /// Only this entity's.
    entity: Option<String>,
    /// Only this workspace record's.
    record_id: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The last conflict id of the previous page.
    #[param(value_type = Option<String>, pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    before: Option<ConflictId>,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/conflicts", tag = "conflicts", operation_id = "list_conflicts", params(WorkspacePath, ListQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "Conflicts, newest first (member+).", body = ConflictPage), ErrorResponses))]
pub(super) async fn list(
    Authorized { caller, .. }: Authorized<at_least::Member>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<ConflictPage>> {
    let limit = super::paging::page_limit(q.limit)?;
    let before = match &q.before {
        None => None,
        Some(id) => {
            let c =
                state.store.get_conflict(&caller.workspace, id).await.or_not_found(|| {
                    ApiError::BadRequest("`before` must be a conflict id from this list".to_owned())
                })?;
            Some((c.created_at, c.conflict_id))
        }
    };
    let filter = ConflictFilter {
        status: q.status,
        integration: q.integration,
        entity: q.entity,
        record_id: q.record_id,
        limit,
        before,
    };
    let conflicts = state.store.list_conflicts(&caller.workspace, &filter).await?;
    let next_before = super::paging::next_key(&conflicts, limit, |c| c.conflict_id.clone());
    Ok(Json(ConflictPage { conflicts, next_before }))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/conflicts/{cid}", tag = "conflicts", operation_id = "get_conflict", params(ConflictPath), security(("workspace_jwt" = [])), responses((status = 200, description = "One conflict with both sides' and the base values (member+).", body = SyncConflict), ErrorResponses))]
pub(super) async fn show(
    Authorized { caller, .. }: Authorized<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, cid)): ApiPath<(String, ConflictId)>,
) -> ApiResult<Json<SyncConflict>> {
    let conflict = state
        .store
        .get_conflict(&caller.workspace, &cid)
        .await
        .or_not_found(|| ApiError::NotFound(format!("no conflict `{cid}`")))?;
    Ok(Json(conflict))
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/conflicts/{cid}/resolve", tag = "conflicts", operation_id = "resolve_conflict", params(ConflictPath), request_body = Resolution, security(("workspace_jwt" = [])), responses((status = 200, description = "Resolved and written to both sides (member+; `always_use_*`, which also sets field rules: admin+).", body = SyncConflict), ErrorResponses))]
pub(super) async fn resolve(
    Authorized { caller, .. }: Authorized<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, cid)): ApiPath<(String, ConflictId)>,
    JsonBody(resolution): JsonBody<Resolution>,
) -> ApiResult<Json<SyncConflict>> {
    if resolution.rule().is_some() && !caller.holds(crate::auth::Role::Admin) {
        return Err(ApiError::Forbidden {
            code: "insufficient_role",
            message:
                "always_use_app / always_use_crm set a field rule, which needs admin or owner; use use_app or use_crm"
                    .to_owned(),
        });
    }
    let conflict = state.sync.resolve_conflict(&caller.workspace, &cid, &resolution, &caller.user).await?;
    Ok(Json(conflict))
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/conflicts/{cid}/ignore", tag = "conflicts", operation_id = "ignore_conflict", params(ConflictPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Dismissed without writing (member+).", body = SyncConflict), ErrorResponses))]
pub(super) async fn ignore(
    Authorized { caller, .. }: Authorized<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, cid)): ApiPath<(String, ConflictId)>,
) -> ApiResult<Json<SyncConflict>> {
    let conflict = state.sync.ignore_conflict(&caller.workspace, &cid, &caller.user).await?;
    Ok(Json(conflict))
}
