//! Where CRMs deliver change events, all public:
//! - `POST /api/v1/webhooks/{slug}`: deliveries the CRM signs (HubSpot), verified by the plugin's
//!   `parse-webhook` (a bad signature is 401 and nothing runs);
//! - `POST /api/v1/webhooks/{slug}/workspaces/{id}`: deliveries a CRM cannot sign (a Salesforce
//!   Apex callout or Flow), authenticated by the workspace's secret in `X-Webhook-Secret`;
//! - `POST /api/v1/webhooks/{slug}/workspaces/{id}/outbound-messages/{secret}`: Salesforce
//!   Outbound Messages, which cannot add headers, so the secret rides in the URL; answered with
//!   the SOAP acknowledgement Salesforce waits for.
//!
//! Either way the events are queued as pulls. Headers named `x-crmhost-*` are the host's word to
//! the plugin (`x-crmhost-verified: workspace-secret`): whatever a caller sends under those names
//! is dropped, and the secret itself never reaches the plugin or a log.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, slug_of};
use super::openapi::{ErrorResponses, SlugPath, WebhookWorkspacePath};
use super::routes::Routes;
use super::webhook_secrets::SECRET_HEADER;
use crate::domain::{PluginSlug, WorkspaceId};
use crate::plugins::bindings::adapter::WebhookRequest;
use crate::state::AppState;
use crate::sync::WebhookReport;

/// Headers only the host may set on what it hands the plugin.
const HOST_HEADERS: &str = "x-crmhost-";

/// The host's mark on a delivery whose workspace secret it checked.
const VERIFIED: (&str, &str) = ("x-crmhost-verified", "workspace-secret");

/// The SOAP acknowledgement of an Outbound Message; without it Salesforce sends it again.
const OUTBOUND_ACK: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>\
<notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"><Ack>true</Ack></notificationsResponse>\
</soapenv:Body></soapenv:Envelope>";

pub fn router() -> Routes {
    Routes::new()
        .post("/api/v1/webhooks/{slug}", webhook)
        .post("/api/v1/webhooks/{slug}/workspaces/{id}", workspace_webhook)
        .post("/api/v1/webhooks/{slug}/workspaces/{id}/outbound-messages/{secret}", outbound_message)
}

/// Public: the caller is a CRM, proven by the signature the plugin checks. The URL handed to the
/// plugin is the one the CRM called (signatures cover it): crmhost's public URL plus the path.
#[utoipa::path(post, path = "/api/v1/webhooks/{slug}", tag = "webhooks", operation_id = "receive_webhook", params(SlugPath), request_body(content = serde_json::Value, description = "The CRM's event delivery, as it sent it."), security(("hubspot_signature" = [])), responses((status = 200, description = "Events accepted, duplicates, queued and ignored.", body = WebhookReport), ErrorResponses))]
pub(super) async fn webhook(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookReport>> {
    let slug = slug_of(&slug)?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let request = crm_request(&state, path, &headers, body, false);
    Ok(Json(state.sync.accept_webhook(&slug, request, None).await?))
}

/// Public: the caller proves it speaks for the workspace with the secret an admin made for it.
#[utoipa::path(post, path = "/api/v1/webhooks/{slug}/workspaces/{id}", tag = "webhooks", operation_id = "receive_workspace_webhook", params(WebhookWorkspacePath), request_body(content = serde_json::Value, description = "For Salesforce: `{\"organizationId\": \"00D…\", \"records\": [{\"object\": \"Opportunity\", \"id\": \"006…\", \"change\": \"updated\"}]}` (`change`: `created`, `updated`, `deleted`, `undeleted`; default `updated`)."), security(("webhook_secret" = [])), responses((status = 200, description = "Events accepted, duplicates, queued and ignored.", body = WebhookReport), ErrorResponses))]
pub(super) async fn workspace_webhook(
    State(state): State<AppState>,
    ApiPath((slug, workspace)): ApiPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookReport>> {
    let (slug, workspace) = delivery_target(&slug, &workspace)?;
    let given = headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized(format!("send the workspace's webhook secret in {SECRET_HEADER}")))?;
    state.sync.check_webhook_secret(&workspace, &slug, given).await?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let request = crm_request(&state, path, &headers, body, true);
    Ok(Json(state.sync.accept_webhook(&slug, request, Some(&workspace)).await?))
}

/// Public: a Salesforce Outbound Message, authenticated by the secret in its URL.
#[utoipa::path(post, path = "/api/v1/webhooks/{slug}/workspaces/{id}/outbound-messages/{secret}", tag = "webhooks", operation_id = "receive_outbound_message", params(WebhookWorkspacePath, ("secret" = String, Path, description = "The workspace's webhook secret (this URL is a secret: give it only to the CRM).")), request_body(content = String, content_type = "text/xml", description = "The SOAP `notifications` message."), responses((status = 200, description = "The SOAP acknowledgement (`<Ack>true</Ack>`); the records are queued as pulls.", content_type = "text/xml", body = String), ErrorResponses))]
pub(super) async fn outbound_message(
    State(state): State<AppState>,
    ApiPath((slug, workspace, secret)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (slug, workspace) = delivery_target(&slug, &workspace)?;
    state.sync.check_webhook_secret(&workspace, &slug, &secret).await?;
    // The plugin sees the route, never the secret in it.
    let path = format!("/api/v1/webhooks/{slug}/workspaces/{workspace}/outbound-messages/-");
    let request = crm_request(&state, &path, &headers, body, true);
    state.sync.accept_webhook(&slug, request, Some(&workspace)).await?;
    Ok(([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], OUTBOUND_ACK).into_response())
}

/// The slug and workspace of a per-workspace delivery route. A malformed workspace is refused
/// like a wrong secret, so the route tells nothing about which workspaces exist.
fn delivery_target(slug: &str, workspace: &str) -> ApiResult<(PluginSlug, WorkspaceId)> {
    let slug = slug_of(slug)?;
    let workspace = WorkspaceId::parse(workspace)
        .map_err(|_| ApiError::Unauthorized("the webhook secret does not match".to_owned()))?;
    Ok((slug, workspace))
}

/// The delivery as the plugin sees it: the URL the CRM called (public URL plus `path`), the
/// headers without the host's own names or the secret, and the host's mark when it verified it.
fn crm_request(state: &AppState, path: &str, headers: &HeaderMap, body: Bytes, verified: bool) -> WebhookRequest {
    let public = state.connections.public_url().as_str().trim_end_matches('/');
    let mut forwarded: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_ascii_lowercase(), v.to_owned())))
        .filter(|(n, _)| !n.starts_with(HOST_HEADERS) && !n.eq_ignore_ascii_case(SECRET_HEADER))
        .collect();
    if verified {
        forwarded.push((VERIFIED.0.to_owned(), VERIFIED.1.to_owned()));
    }
    WebhookRequest {
        method: "POST".to_owned(),
        url: format!("{public}{path}"),
        headers: forwarded,
        body: body.to_vec(),
        received_at_ms: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default(),
    }
}
