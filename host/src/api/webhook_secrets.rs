//! The integration's webhook secret (admin+), for CRMs that cannot sign their deliveries:
//! `POST …/integrations/{slug}/webhook-secret` makes or rotates it and shows it once, with the
//! URLs to give the CRM; `GET` says whether one is set and since when; `DELETE` removes it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::Serialize;

use super::error::{ApiError, ApiResult};
use super::extract::{OnIntegration, at_least};
use super::openapi::{ErrorResponses, IntegrationPath};
use super::routes::Routes;
use crate::domain::{PluginSlug, WorkspaceId};
use crate::state::AppState;

const PATH: &str = "/api/v1/workspaces/{id}/integrations/{slug}/webhook-secret";

/// The header an Apex callout or Flow sends the secret in.
pub const SECRET_HEADER: &str = "X-Webhook-Secret";

pub fn router() -> Routes {
    Routes::new().post(PATH, rotate).get(PATH, show).delete(PATH, revoke)
}

/// A secret just made, with where the CRM sends deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct IssuedSecret {
    /// The secret. Shown this once: only its SHA-256 is kept.
    secret: String,
    /// The header that carries it on `url`.
    header: &'static str,
    /// Where an Apex trigger or Flow posts its JSON (with the header).
    url: String,
    /// Where a workflow Outbound Message posts (the secret is part of this URL, since Outbound
    /// Messages cannot add headers; treat the URL as the secret).
    outbound_message_url: String,
    /// When it was made; any earlier secret stopped working at this moment.
    created_at: DateTime<Utc>,
}

/// Whether a secret is set (never the secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SecretStatus {
    /// Whether deliveries can be authenticated.
    configured: bool,
    /// When the secret was made or last rotated.
    created_at: Option<DateTime<Utc>>,
    /// Who made it.
    created_by: Option<String>,
    /// Where an Apex trigger or Flow posts (with the header).
    url: String,
    /// Where an Outbound Message posts, with `{secret}` in place of the secret.
    outbound_message_url: String,
}

/// `<public>/api/v1/webhooks/{slug}/workspaces/{id}`.
fn delivery_url(state: &AppState, slug: &PluginSlug, workspace: &WorkspaceId) -> String {
    let public = state.connections.public_url().as_str().trim_end_matches('/');
    format!("{public}/api/v1/webhooks/{slug}/workspaces/{workspace}")
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/webhook-secret", tag = "webhooks", operation_id = "rotate_webhook_secret", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 201, description = "A new secret, shown once, and the URLs to give the CRM; any earlier secret stops working now (admin+). Audited.", body = IssuedSecret), ErrorResponses))]
pub(super) async fn rotate(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
) -> ApiResult<(StatusCode, Json<IssuedSecret>)> {
    let issued = state.sync.rotate_webhook_secret(&caller.workspace, &slug, &caller.user).await?;
    let url = delivery_url(&state, &slug, &caller.workspace);
    let secret = issued.secret.expose_secret().to_owned();
    let body = IssuedSecret {
        outbound_message_url: format!("{url}/outbound-messages/{secret}"),
        secret,
        header: SECRET_HEADER,
        url,
        created_at: issued.created_at,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/webhook-secret", tag = "webhooks", operation_id = "get_webhook_secret", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Whether a secret is set, since when, and the delivery URLs (admin+). The secret itself is never shown again.", body = SecretStatus), ErrorResponses))]
pub(super) async fn show(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
) -> ApiResult<Json<SecretStatus>> {
    let info = state.sync.webhook_secret_info(&caller.workspace, &slug).await?;
    let url = delivery_url(&state, &slug, &caller.workspace);
    Ok(Json(SecretStatus {
        configured: info.is_some(),
        created_at: info.as_ref().map(|i| i.created_at),
        created_by: info.map(|i| i.created_by),
        outbound_message_url: format!("{url}/outbound-messages/{{secret}}"),
        url,
    }))
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/integrations/{slug}/webhook-secret", tag = "webhooks", operation_id = "delete_webhook_secret", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 204, description = "Removed: deliveries are refused until a new secret is made (admin+). Audited."), ErrorResponses))]
pub(super) async fn revoke(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    if state.sync.revoke_webhook_secret(&caller.workspace, &slug, &caller.user).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("`{slug}` has no webhook secret")))
    }
}
