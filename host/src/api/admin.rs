//! Operator endpoints behind `CRMHOST_ADMIN_TOKEN`: `GET /api/v1/admin/plugins` lists every plugin
//! (bundled and file, serving or failed) and `POST /api/v1/admin/plugins/reload` rescans the
//! plugins directory now.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::openapi::ErrorResponses;
use super::routes::Routes;
use crate::plugins::{PluginStatus, ReloadReport};
use crate::state::AppState;
use crate::store::NewAuditEntry;

pub fn router() -> Routes {
    Routes::new().get("/api/v1/admin/plugins", list_plugins).post("/api/v1/admin/plugins/reload", reload_plugins)
}

/// Proof that the caller presented the operator token.
#[derive(Debug)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = &state.admin_token else {
            return Err(ApiError::Forbidden {
                code: "admin_api_disabled",
                message: "the admin API is disabled; start crmhost with CRMHOST_ADMIN_TOKEN set".to_owned(),
            });
        };
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::Unauthorized("send `Authorization: Bearer <CRMHOST_ADMIN_TOKEN>`".to_owned()))?;
        // Constant-time, so the token cannot be guessed byte by byte from response times.
        if presented.as_bytes().ct_eq(expected.expose_secret().as_bytes()).into() {
            Ok(Operator)
        } else {
            Err(ApiError::Unauthorized("the admin token is wrong".to_owned()))
        }
    }
}

#[utoipa::path(get, path = "/api/v1/admin/plugins", tag = "admin", operation_id = "admin_list_plugins", security(("operator_token" = [])), responses((status = 200, description = "Every plugin, bundled and file, with its source, hash and last load error.", body = PluginsView), ErrorResponses))]
pub(super) async fn list_plugins(_: Operator, State(state): State<AppState>) -> Json<PluginsView> {
    let plugins = state.plugins.statuses().await;
    let engine = state.plugins.loader().engine();
    Json(PluginsView {
        plugins,
        plugins_dir: state.plugins.plugins_dir().map(|d| d.display().to_string()),
        engine: EngineView {
            allocator: serde_json::to_value(engine.allocator()).unwrap_or(serde_json::Value::Null),
            max_concurrent_calls: engine.settings().max_concurrent_calls,
        },
    })
}

/// Every plugin and the engine running them.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PluginsView {
    /// Bundled and file plugins, serving or failed.
    plugins: Vec<PluginStatus>,
    /// The watched plugins directory, if any.
    plugins_dir: Option<String>,
    /// The WebAssembly engine.
    engine: EngineView,
}

/// The WebAssembly engine's settings in force.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EngineView {
    /// `pooling` or `on_demand` (the pooling allocator falls back by itself).
    #[schema(value_type = String)]
    allocator: serde_json::Value,
    /// Plugin calls at once.
    max_concurrent_calls: u32,
}

/// What a reload changed, and every plugin after it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ReloadView {
    /// Loaded, failed, removed and unchanged files.
    report: ReloadReport,
    /// Every plugin now.
    plugins: Vec<PluginStatus>,
}

#[utoipa::path(post, path = "/api/v1/admin/plugins/reload", tag = "admin", operation_id = "admin_reload_plugins", security(("operator_token" = [])), responses((status = 200, description = "What the rescan changed.", body = ReloadView), ErrorResponses))]
pub(super) async fn reload_plugins(_: Operator, State(state): State<AppState>) -> ApiResult<Json<ReloadView>> {
    let report = state.plugins.reload().await;
    let details = serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.to_string()))?;
    let entry = NewAuditEntry::plugin_reload("operator", details);
    state.store.append_audit(&entry).await?;
    Ok(Json(ReloadView { report, plugins: state.plugins.statuses().await }))
}
