//! The HTTP API: one router per resource, merged here with the cross-cutting layers (tracing,
//! body limit, timeout, the JSON-shaped edge of [`edge`]) and JSON fallbacks for unknown routes.

pub mod admin;
mod catalogue;
mod configure;
mod conflicts;
mod connections;
mod edge;
pub mod error;
mod extract;
mod files;
mod health;
mod mappings;
mod metrics;
pub mod openapi;
mod paging;
mod records;
pub mod routes;
mod rules;
mod schedule;
pub mod sync;
mod sync_health;
mod webhook_endpoints;
mod webhook_secrets;
mod webhooks;
pub mod wire;
mod workspaces;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use error::ApiError;
use routes::{RouteInfo, Routes};

/// Every route of the API, as one [`Routes`] (router and table).
fn routes() -> Routes {
    Routes::new()
        .merge(health::router())
        .merge(Routes::new().get("/api/v1/openapi.json", openapi::openapi_json))
        .merge(catalogue::router())
        .merge(admin::router())
        .merge(metrics::router())
        .merge(workspaces::router())
        .merge(connections::router())
        .merge(records::router())
        .merge(files::router())
        .merge(configure::router())
        .merge(sync::router())
        .merge(conflicts::router())
        .merge(mappings::router())
        .merge(rules::router())
        .merge(sync_health::router())
        .merge(schedule::router())
        .merge(webhooks::router())
        .merge(webhook_secrets::router())
        .merge(webhook_endpoints::router())
}

/// Every routed method and path, sorted: what the router serves, for tests and documents.
pub fn route_table() -> Vec<RouteInfo> {
    routes().table()
}

/// The application router (without a listener, so tests can drive it directly).
pub fn router(state: AppState, max_request_bytes: usize) -> Router {
    routes()
        .into_router()
        .merge(crate::console::router())
        .fallback(|| async { ApiError::NotFound("no such route".to_owned()) })
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(error::error_body("method_not_allowed", "this route does not accept that method")),
            )
        })
        .layer(DefaultBodyLimit::max(max_request_bytes))
        .layer(CatchPanicLayer::custom(edge::panic_response))
        .layer(axum::middleware::from_fn(edge::refuse_nul))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(120)))
        .layer(axum::middleware::from_fn(edge::errors_as_json))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            // The matched route, not the raw path: ids in paths stay out of span names.
            let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("-");
            tracing::info_span!("http", method = %request.method(), route)
        }))
        .with_state(state)
}
