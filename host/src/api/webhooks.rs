//! The public `POST /api/v1/webhooks/{slug}`, where CRMs deliver change events: verified by the
//! plugin's `parse-webhook` (a bad signature is 401 and nothing runs), then queued as pulls.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};

use super::error::ApiResult;
use super::extract::{ApiPath, slug_of};
use super::openapi::{ErrorResponses, SlugPath};
use super::routes::Routes;
use crate::plugins::bindings::adapter::WebhookRequest;
use crate::state::AppState;
use crate::sync::WebhookReport;

pub fn router() -> Routes {
    Routes::new().post("/api/v1/webhooks/{slug}", webhook)
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
