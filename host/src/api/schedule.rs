//! Schedule routes: `POST …/integrations/{slug}/pause` and `…/resume` (admin+) stop and restart
//! an integration's automatic runs, answering with its schedule.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiResult;
use super::extract::{OnIntegration, at_least};
use super::openapi::{ErrorResponses, IntegrationPath};
use super::routes::Routes;
use crate::state::AppState;
use crate::store::{Integration, IntegrationStatus};

const BASE: &str = "/api/v1/workspaces/{id}/integrations/{slug}";

pub fn router() -> Routes {
    Routes::new().post(&format!("{BASE}/pause"), pause).post(&format!("{BASE}/resume"), resume)
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
    /// The same instant on the schedule's clock (RFC 3339 with the zone's offset).
    next_sync_local: Option<String>,
    /// The schedule's IANA time zone (UTC unless the frequency names one).
    time_zone: String,
    /// When a run last ended.
    last_sync_at: Option<DateTime<Utc>>,
}

impl ScheduleView {
    /// The schedule of a stored integration.
    pub(super) fn of(integration: &Integration) -> Self {
        let zone = crate::sync::SyncSettings::from_stored(&integration.settings).frequency.zone();
        Self {
            status: integration.status,
            status_reason: integration.status_reason.clone(),
            next_sync_at: integration.next_sync_at,
            next_sync_local: integration.next_sync_at.map(|t| t.with_timezone(&zone).to_rfc3339()),
            time_zone: zone.name().to_owned(),
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

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/pause", tag = "schedule", operation_id = "pause", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Paused: the schedule (admin+).", body = PauseView), ErrorResponses))]
pub(super) async fn pause(on: OnIntegration<at_least::Admin>, state: State<AppState>) -> ApiResult<Json<PauseView>> {
    set_paused(on, state, true).await
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/resume", tag = "schedule", operation_id = "resume", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Resumed: the schedule (admin+).", body = PauseView), ErrorResponses))]
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
