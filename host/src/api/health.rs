//! `/healthz` (the process is up), `/readyz` (the database answers and plugins are loaded), and
//! `/api/v1/sandbox` (the emulators' addresses in sandbox mode).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::openapi::ErrorResponses;
use super::routes::Routes;
use crate::state::AppState;

pub fn router() -> Routes {
    Routes::new().get("/healthz", healthz).get("/readyz", readyz).get("/api/v1/sandbox", sandbox)
}

/// The emulators' addresses in sandbox mode; 404 otherwise.
#[utoipa::path(get, path = "/api/v1/sandbox", tag = "health", operation_id = "sandbox_info", responses((status = 200, description = "In sandbox mode: the emulators' URLs and OAuth client.", body = serde_json::Value), ErrorResponses))]
pub(super) async fn sandbox(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, crate::api::error::ApiError> {
    let info = state.sandbox.as_ref().ok_or_else(|| {
        crate::api::error::ApiError::NotFound(
            "not running in sandbox mode (start with `crmhost serve --sandbox`)".to_owned(),
        )
    })?;
    Ok(Json(json!({ "sandbox": info.as_ref() })))
}

#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz", responses((status = 200, description = "The process is up.", body = serde_json::Value)))]
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz", responses((status = 200, description = "The database answers and a plugin is loaded.", body = serde_json::Value), (status = 503, description = "Not ready: which part is not.", body = serde_json::Value)))]
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let database = state.store.ping().await;
    let plugins = state.plugins.all().len();
    let ready = database.is_ok() && plugins > 0;
    if let Err(err) = &database {
        tracing::warn!(error = %err, "readiness: database unavailable");
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "database": if database.is_ok() { "ok" } else { "unavailable" },
            "plugins": plugins,
        })),
    )
}
