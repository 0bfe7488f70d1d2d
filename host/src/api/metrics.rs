//! `GET /metrics`: the server's metrics in the Prometheus text format (OpenMetrics), behind the
//! operator token, for a Prometheus scrape job.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::admin::Operator;
use super::error::{ApiError, ApiResult};
use super::openapi::ErrorResponses;
use super::routes::Routes;
use crate::metrics::ScrapeTime;
use crate::state::AppState;

/// What Prometheus expects of an OpenMetrics exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router() -> Routes {
    Routes::new().get("/metrics", metrics)
}

#[utoipa::path(get, path = "/metrics", tag = "admin", operation_id = "metrics", security(("operator_token" = [])), responses((status = 200, description = "Every metric in the OpenMetrics text format: runs, records, plugin calls and failures, CRM requests and 429s, pacer waits, scheduler lag and queue, webhook deliveries, database pool.", content_type = "application/openmetrics-text", body = String), ErrorResponses))]
pub(super) async fn metrics(_: Operator, State(state): State<AppState>) -> ApiResult<Response> {
    let due_integrations = state.store.count_due_integrations().await.map_err(ApiError::from)?;
    let (pool_size, pool_idle) = state.store.pool_use();
    let text = state.metrics.render(&ScrapeTime { due_integrations, pool_size, pool_idle });
    Ok(([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response())
}
