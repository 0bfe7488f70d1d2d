//! `/healthz` (the process is up), `/readyz` (the database answers and plugins are loaded), and
//! `/api/v1/sandbox` (the emulators' addresses in sandbox mode).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::ErrorResponses;
use super::routes::Routes;
use crate::state::AppState;

/// The process is up.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    status: String,
}

/// Whether the server can serve.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Readiness {
    /// `ready` or `not_ready`.
    status: String,
    /// `ok` or `unavailable`.
    database: String,
    /// Plugins loaded.
    plugins: usize,
}

/// Sandbox mode's emulators.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SandboxView {
    /// Where they are and which OAuth client they know.
    sandbox: crate::sandbox::SandboxInfo,
}

pub fn router() -> Routes {
    Routes::new().get("/healthz", healthz).get("/readyz", readyz).get("/api/v1/sandbox", sandbox)
}

/// The emulators' addresses in sandbox mode; 404 otherwise.
#[utoipa::path(get, path = "/api/v1/sandbox", tag = "health", operation_id = "sandbox_info", responses((status = 200, description = "In sandbox mode: the emulators' URLs and OAuth client.", body = SandboxView), ErrorResponses))]
pub(super) async fn sandbox(State(state): State<AppState>) -> Result<Json<SandboxView>, crate::api::error::ApiError> {
    let info = state.sandbox.as_ref().ok_or_else(|| {
        crate::api::error::ApiError::NotFound(
            "not running in sandbox mode (start with `crmhost serve --sandbox`)".to_owned(),
        )
    })?;
    Ok(Json(SandboxView { sandbox: info.as_ref().clone() }))
}

#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz", responses((status = 200, description = "The process is up.", body = Health)))]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".to_owned() })
}

#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz", responses((status = 200, description = "The database answers and a plugin is loaded.", body = Readiness), (status = 503, description = "Not ready: which part is not.", body = Readiness)))]
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = state.store.ping().await;
    let plugins = state.plugins.all().len();
    let ready = database.is_ok() && plugins > 0;
    if let Err(err) = &database {
        tracing::warn!(error = %err, "readiness: database unavailable");
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "not_ready" }.to_owned(),
            database: if database.is_ok() { "ok" } else { "unavailable" }.to_owned(),
            plugins,
        }),
    )
}
