//! Workspace routes: `GET /api/v1/workspaces/{id}/integrations` (member+) lists the workspace's
//! integrations without any credential; `GET /api/v1/workspaces/{id}/audit-log` (admin+) pages
//! through its audit log, newest first.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::ApiResult;
use super::extract::{ApiQuery, Authorized, at_least};
use super::openapi::{ErrorResponses, WorkspacePath};
use super::routes::Routes;
use crate::state::AppState;
use crate::store::{AuditEntry, IntegrationStatus};

pub fn router() -> Routes {
    Routes::new()
        .get("/api/v1/workspaces/{id}/integrations", list_integrations)
        .get("/api/v1/workspaces/{id}/audit-log", audit_log)
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations", tag = "workspaces", operation_id = "list_integrations", params(WorkspacePath), security(("workspace_jwt" = [])), responses((status = 200, description = "The workspace's integrations with status and schedule (member+).", body = IntegrationList), ErrorResponses))]
pub(super) async fn list_integrations(
    Authorized { caller, .. }: Authorized<at_least::Member>,
    State(state): State<AppState>,
) -> ApiResult<Json<IntegrationList>> {
    let mut summaries = Vec::new();
    for i in state.store.list_integrations(&caller.workspace).await? {
        let health = match crate::domain::PluginSlug::parse(&i.integration_slug) {
            Ok(slug) => state.sync.health(&caller.workspace, &slug).await.ok().map(|h| HealthBrief {
                failing_records: h.failing_records,
                pending_conflicts: h.pending_conflicts,
                failure_streak: h.failure_streak,
                last_run_status: h.last_run.map(|r| r.status),
            }),
            Err(_) => None,
        };
        summaries.push(IntegrationSummary {
            slug: i.integration_slug,
            status: i.status,
            account: i.metadata.get("account").cloned().unwrap_or(Value::Null),
            connected_at: i.connected_at,
            connected_by: i.connected_by,
            last_sync_at: i.last_sync_at,
            token_expires_at: i.token_expires_at,
            next_sync_at: i.next_sync_at,
            status_reason: i.status_reason,
            health,
        });
    }
    Ok(Json(IntegrationList { integrations: summaries }))
}

/// A workspace's integrations.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct IntegrationList {
    /// One per CRM the workspace connected (or disconnected).
    integrations: Vec<IntegrationSummary>,
}

/// One integration, without any credential.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct IntegrationSummary {
    /// The plugin's slug.
    slug: String,
    /// `connected`, `needs_reauth`, `paused` or `disconnected`.
    status: IntegrationStatus,
    /// The CRM account it is connected to (`id`, `label`, `user`, `details`).
    #[schema(value_type = Object)]
    account: Value,
    /// When it was connected.
    connected_at: Option<DateTime<Utc>>,
    /// Who connected it.
    connected_by: Option<String>,
    /// When a run last ended.
    last_sync_at: Option<DateTime<Utc>>,
    /// When the access token expires (if the CRM said).
    token_expires_at: Option<DateTime<Utc>>,
    /// When the next scheduled run is due (null: none scheduled).
    next_sync_at: Option<DateTime<Utc>>,
    /// Why it is not syncing on schedule, if it is not.
    status_reason: Option<String>,
    /// Its sync health in brief (`GET …/integrations/{slug}/health` has the detail).
    health: Option<HealthBrief>,
}

/// An integration's sync health in brief.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct HealthBrief {
    /// Records whose last sync failed.
    failing_records: i64,
    /// Conflicts waiting for a user.
    pending_conflicts: i64,
    /// Scheduled runs in a row that failed as a whole.
    failure_streak: i64,
    /// How the newest run ended (or `running`).
    last_run_status: Option<crate::domain::RunStatus>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditPage {
    /// Entries, newest first.
    entries: Vec<AuditEntry>,
    /// Pass as `?before=` for the next page; null on the last.
    next_before: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The last entry id of the previous page.
    before: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/audit-log", tag = "workspaces", operation_id = "audit_log", params(WorkspacePath, Page), security(("workspace_jwt" = [])), responses((status = 200, description = "Audit entries, newest first (admin+).", body = AuditPage), ErrorResponses))]
pub(super) async fn audit_log(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<AuditPage>> {
    let limit = super::paging::page_limit(page.limit)?;
    let entries = state.store.list_audit_page(Some(&caller.workspace), limit, page.before).await?;
    let next_before = super::paging::next_key(&entries, limit, |e| e.id);
    Ok(Json(AuditPage { entries, next_before }))
}
