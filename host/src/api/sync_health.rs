//! Sync-health routes (member+): `GET …/integrations/{slug}/health` (records by status per entity,
//! last run, failing streak, pending conflicts), `GET …/failures` (what is failing now, grouped by
//! cause) and `POST …/failures/retry` (push every record of one cause again).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiResult;
use super::extract::{JsonBody, OnIntegration, at_least};
use super::openapi::{ErrorResponses, IntegrationPath};
use super::routes::Routes;
use super::sync::RunView;
use crate::state::AppState;
use crate::sync::{FailureCause, FailureReport, SyncHealth};

const BASE: &str = "/api/v1/workspaces/{id}/integrations/{slug}";

pub fn router() -> Routes {
    Routes::new()
        .get(&format!("{BASE}/health"), health)
        .get(&format!("{BASE}/failures"), failures)
        .post(&format!("{BASE}/failures/retry"), retry_failures)
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/health", tag = "sync_health", operation_id = "sync_health", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Records by sync status per entity, the last run, the failing streak and pending conflicts (member+).", body = SyncHealth), ErrorResponses))]
pub(super) async fn health(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
) -> ApiResult<Json<SyncHealth>> {
    Ok(Json(state.sync.health(&caller.workspace, &slug).await?))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/failures", tag = "sync_health", operation_id = "sync_failures", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Records whose last sync failed, grouped by cause (entity, error kind, CRM code, field), largest group first, with a few samples each (member+).", body = FailureReport), ErrorResponses))]
pub(super) async fn failures(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
) -> ApiResult<Json<FailureReport>> {
    Ok(Json(state.sync.failures(&caller.workspace, &slug).await?))
}

/// The runs a group retry started.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RetriedGroup {
    /// One run per batch of up to 200 records.
    runs: Vec<RunView>,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/failures/retry", tag = "sync_health", operation_id = "retry_failure_group", params(IntegrationPath), request_body = FailureCause, security(("workspace_jwt" = [])), responses((status = 202, description = "Push runs started for every record failing for this cause (member+).", body = RetriedGroup), ErrorResponses))]
pub(super) async fn retry_failures(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    JsonBody(cause): JsonBody<FailureCause>,
) -> ApiResult<(StatusCode, Json<RetriedGroup>)> {
    let runs = state.sync.retry_failures(&caller.workspace, &slug, &cause, &caller.user).await?;
    Ok((StatusCode::ACCEPTED, Json(RetriedGroup { runs: runs.iter().map(RunView::from).collect() })))
}
