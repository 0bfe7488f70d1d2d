//! Automatic-sync routes: `POST …/integrations/{slug}/pause` and `…/resume` (admin+) stop and
//! restart an integration's runs, and the public `POST /api/v1/webhooks/{slug}`, where CRMs
//! deliver change events (verified by the plugin's `parse-webhook`; a bad signature is 401 and
//! nothing runs).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiResult;
use super::extract::{ApiPath, OnIntegration, at_least, slug_of};
use super::openapi::{ErrorResponses, IntegrationPath, SlugPath};
use super::routes::Routes;
use crate::plugins::bindings::adapter::WebhookRequest;
use crate::state::AppState;
use crate::store::{Integration, IntegrationStatus};
use crate::sync::WebhookReport;

const BASE: &str = "/api/v1/workspaces/{id}/integrations/{slug}";

pub fn router() -> Routes {
    Routes::new()
        .post(&format!("{BASE}/pause"), pause)
        .post(&format!("{BASE}/resume"), resume)
        .post("/api/v1/webhooks/{slug}", webhook)
}

/// An integration's schedule as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ScheduleView {
    /// `connected`, `needs_reauth`, `paused` or `disconnected`.
    status: IntegrationStatus,
    /// Why it is not syncing on schedule, if it is not.
    status_reason: Option<String>,
    /// When the next scheduled run is due (null: none).
    next_sync_at: Option<DateTime<Utc>>,
    /// When a run last ended.
    last_sync_at: Option<DateTime<Utc>>,
}

impl ScheduleView {
    /// The schedule of a stored integration.
    pub(super) fn of(integration: &Integration) -> Self {
        Self {
            status: integration.status,
            status_reason: integration.status_reason.clone(),
            next_sync_at: integration.next_sync_at,
            last_sync_at: integration.last_sync_at,
        }
    }
}

/// An integration paused or resumed.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PauseView {
    /// The integration.
    integration: String,
    /// Its schedule now.
    schedule: ScheduleView,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/pause", tag = "automation", operation_id = "pause", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Paused: the schedule (admin+).", body = PauseView), ErrorResponses))]
pub(super) async fn pause(on: OnIntegration<at_least::Admin>, state: State<AppState>) -> ApiResult<Json<PauseView>> {
    set_paused(on, state, true).await
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/resume", tag = "automation", operation_id = "resume", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Resumed: the schedule (admin+).", body = PauseView), ErrorResponses))]
pub(super) async fn resume(on: OnIntegration<at_least::Admin>, state: State<AppState>) -> ApiResult<Json<PauseView>> {
    set_paused(on, state, false).await
}

async fn set_paused(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
    paused: bool,
) -> ApiResult<Json<PauseView>> {
    let integration = if paused {
        state.sync.pause(&caller.workspace, &slug, &caller.user).await?
    } else {
        state.sync.resume(&caller.workspace, &slug, &caller.user).await?
    };
    Ok(Json(PauseView { integration: slug.to_string(), schedule: ScheduleView::of(&integration) }))
}

/// Public: the caller is a CRM, proven by the signature the plugin checks. The URL handed to the
/// plugin is the one the CRM called (signatures cover it): crmhost's public URL plus the path.
#[utoipa::path(post, path = "/api/v1/webhooks/{slug}", tag = "automation", operation_id = "receive_webhook", params(SlugPath), request_body(content = serde_json::Value, description = "The CRM's event delivery, as it sent it."), security(("hubspot_signature" = [])), responses((status = 200, description = "Events accepted, duplicates, queued and ignored.", body = WebhookReport), ErrorResponses))]
pub(super) async fn webhook(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookReport>> {
    let slug = slug_of(&slug)?;
    let public = state.connections.public_url().as_str().trim_end_matches('/');
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let request = WebhookRequest {
        method: "POST".to_owned(),
        url: format!("{public}{path}"),
        headers: headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_ascii_lowercase(), v.to_owned())))
            .collect(),
        body: body.to_vec(),
        received_at_ms: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default(),
    };
    let report = state.sync.accept_webhook(&slug, request).await?;
    Ok(Json(report))
}
