//! Workspace routes: `GET /api/v1/workspaces/{id}/integrations` (member+) lists the workspace's
//! integrations without any credential; `GET /api/v1/workspaces/{id}/audit-log` (admin+) pages
//! through its audit log, newest first.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, Authorized, at_least};
use super::openapi::{ErrorResponses, WorkspacePath};
use super::routes::Routes;
use crate::state::AppState;

pub fn router() -> Routes {
    Routes::new()
        .get("/api/v1/workspaces/{id}/integrations", list_integrations)
        .get("/api/v1/workspaces/{id}/audit-log", audit_log)
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations", tag = "workspaces", operation_id = "list_integrations", params(WorkspacePath), security(("workspace_jwt" = [])), responses((status = 200, description = "The workspace's integrations with status and schedule (member+).", body = serde_json::Value), ErrorResponses))]
pub(super) async fn list_integrations(
    Authorized { caller, .. }: Authorized<at_least::Member>,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    let integrations = state.store.list_integrations(&caller.workspace).await?;
    let rows: Vec<Value> = integrations
        .iter()
        .map(|i| {
            json!({
                "slug": i.integration_slug,
                "status": i.status,
                "account": i.metadata.get("account").cloned().unwrap_or(Value::Null),
                "connected_at": i.connected_at,
                "connected_by": i.connected_by,
                "last_sync_at": i.last_sync_at,
                "token_expires_at": i.token_expires_at,
                "next_sync_at": i.next_sync_at,
                "status_reason": i.status_reason,
            })
        })
        .collect();
    Ok(Json(json!({ "integrations": rows })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    limit: Option<i64>,
    before: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/audit-log", tag = "workspaces", operation_id = "audit_log", params(WorkspacePath, Page), security(("workspace_jwt" = [])), responses((status = 200, description = "Audit entries, newest first (admin+).", body = serde_json::Value), ErrorResponses))]
pub(super) async fn audit_log(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be between 1 and 500".to_owned()));
    }
    let entries = state.store.list_audit_page(Some(&caller.workspace), limit, page.before).await?;
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(Json(json!({ "entries": entries, "next_before": next })))
}
