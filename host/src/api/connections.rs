//! Connection routes: `POST …/integrations/{slug}/connect` (admin+) starts an OAuth flow or
//! connects at once with an entered API key / basic credentials,
//! `GET /api/v1/integrations/callback/{slug}` finishes it (the `state` is the credential),
//! `POST …/integrations/{slug}/test` (member+) runs test-connection, and
//! `DELETE …/integrations/{slug}` (admin+) revokes and disconnects.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery, OnIntegration, OptionalJsonBody, at_least};
use super::openapi::{ErrorResponses, IntegrationPath, SlugPath};
use super::routes::Routes;
use crate::connections::{CallbackFailure, CallbackParams, ConnectStart, EnteredCredentials, TestReport};
use crate::state::AppState;

pub fn router() -> Routes {
    Routes::new()
        .post("/api/v1/workspaces/{id}/integrations/{slug}/connect", connect)
        .post("/api/v1/workspaces/{id}/integrations/{slug}/test", test)
        .delete("/api/v1/workspaces/{id}/integrations/{slug}", disconnect)
        .get("/api/v1/integrations/callback/{slug}", callback)
}

/// What starts a connection. OAuth integrations take an optional `return_url`; integrations whose
/// catalogue `auth_type` is `api_key` take `api_key`, and `basic` ones `username` and `password`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectBody {
    /// OAuth: where the user's browser goes after the CRM's consent page (an allowed origin).
    return_url: Option<String>,
    /// `api_key` integrations: the key. Tested against the CRM, then sealed; never shown again.
    #[schema(value_type = Option<String>, format = Password)]
    api_key: Option<SecretString>,
    /// `basic` integrations: the user name.
    username: Option<String>,
    /// `basic` integrations: the password. Tested, then sealed; never shown again.
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretString>,
}

impl ConnectBody {
    /// The credentials entered, if any; a half-entered pair is an error.
    fn entered(self) -> Result<Option<EnteredCredentials>, ApiError> {
        match (self.api_key, self.username, self.password, self.return_url.is_some()) {
            (None, None, None, _) => Ok(None),
            (_, _, _, true) => Err(ApiError::BadRequest(
                "return_url is for OAuth integrations; credentials entered here connect at once".to_owned(),
            )),
            (Some(key), None, None, false) => Ok(Some(EnteredCredentials::ApiKey(key))),
            (None, Some(username), Some(password), false) => Ok(Some(EnteredCredentials::Basic { username, password })),
            (Some(_), _, _, false) => {
                Err(ApiError::BadRequest("send either api_key or username and password".to_owned()))
            }
            (None, _, _, false) => {
                Err(ApiError::BadRequest("basic credentials need both username and password".to_owned()))
            }
        }
    }
}

/// How a connect request was answered.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum ConnectAnswer {
    /// OAuth: send the user's browser to `authorize_url`; the CRM sends it back to the callback.
    Authorize(ConnectStart),
    /// API key or basic: tested and stored; connected now.
    Connected(Connected),
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/connect", tag = "connections", operation_id = "connect", params(IntegrationPath), request_body = Option<ConnectBody>, security(("workspace_jwt" = [])), responses((status = 200, description = "OAuth: where to send the user's browser. API key or basic: connected, after test-connection accepted the credentials (admin+).", body = ConnectAnswer), ErrorResponses))]
pub(super) async fn connect(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
    OptionalJsonBody(body): OptionalJsonBody<ConnectBody>,
) -> ApiResult<Json<ConnectAnswer>> {
    let return_url = body.return_url.clone();
    if let Some(entered) = body.entered()? {
        let integration = state.connections.connect_entered(&caller.workspace, &slug, &caller.user, entered).await?;
        return Ok(Json(ConnectAnswer::Connected(Connected::from_integration(integration))));
    }
    let start = state.connections.start(&caller.workspace, &slug, &caller.user, return_url.as_deref()).await?;
    Ok(Json(ConnectAnswer::Authorize(start)))
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/test", tag = "connections", operation_id = "test_connection", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "The plugin's test-connection report (member+).", body = TestReport), ErrorResponses))]
pub(super) async fn test(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
) -> ApiResult<Json<TestReport>> {
    let report = state.connections.test(&caller.workspace, &slug).await?;
    Ok(Json(report))
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/integrations/{slug}", tag = "connections", operation_id = "disconnect", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Disconnected; whether the CRM revoked the tokens (admin+).", body = Disconnected), ErrorResponses))]
pub(super) async fn disconnect(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
) -> ApiResult<Json<Disconnected>> {
    let report = state.connections.disconnect(&caller.workspace, &slug, &caller.user).await?;
    Ok(Json(Disconnected {
        status: "disconnected".to_owned(),
        revoked: report.revoked,
        revoke_error: report.revoke_error,
    }))
}

/// A connection ended.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Disconnected {
    /// Always `disconnected`.
    status: String,
    /// Whether the CRM confirmed the revocation of the tokens.
    revoked: bool,
    /// Why revocation did not happen (the tokens are deleted either way).
    revoke_error: Option<String>,
}

/// A connect flow finished.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Connected {
    /// Always `connected`.
    status: String,
    /// The integration now connected.
    integration: ConnectedIntegration,
}

impl Connected {
    fn from_integration(integration: crate::store::Integration) -> Self {
        let account = integration.metadata.get("account").cloned().unwrap_or(Value::Null);
        Self {
            status: "connected".to_owned(),
            integration: ConnectedIntegration {
                slug: integration.integration_slug,
                workspace_id: integration.workspace_id,
                account,
                connected_at: integration.connected_at,
                token_expires_at: integration.token_expires_at,
            },
        }
    }
}

/// The integration a connect flow connected, without any credential.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConnectedIntegration {
    /// The plugin's slug.
    slug: String,
    /// The workspace.
    workspace_id: String,
    /// The CRM account (`id`, `label`, `user`, `details`).
    #[schema(value_type = Object)]
    account: Value,
    /// When.
    connected_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the access token expires (if the CRM said).
    token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The CRM sends the user's browser here. The answer is a redirect to the flow's `return_url`
/// (with `crmhost_result`, `integration` and, on failure, `error` and `error_description`), or,
/// without one, JSON — or a small HTML page when a browser asks for HTML.
#[utoipa::path(get, path = "/api/v1/integrations/callback/{slug}", tag = "connections", operation_id = "oauth_callback", params(SlugPath, CallbackParams), responses((status = 200, description = "Connected (JSON, or a small HTML page for a browser that asks for one).", body = Connected), (status = 303, description = "Back to the flow's `return_url` with `crmhost_result`."), ErrorResponses))]
pub(super) async fn callback(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<CallbackParams>,
) -> Response {
    let wants_html =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    match state.connections.complete(&slug, params).await {
        Ok(connected) => {
            let slug = connected.integration.integration_slug.clone();
            if let Some(url) = connected.return_url {
                return Redirect::to(&with_outcome(&url, &[("crmhost_result", "connected"), ("integration", &slug)]))
                    .into_response();
            }
            let account = connected.integration.metadata.get("account").cloned().unwrap_or(Value::Null);
            if wants_html {
                let label = account.get("label").and_then(Value::as_str).unwrap_or("the CRM").to_owned();
                return Html(page("Connected", &format!("Connected to {label}. You can close this window.")))
                    .into_response();
            }
            Json(Connected::from_integration(connected.integration)).into_response()
        }
        Err(CallbackFailure { error, return_url, slug }) => {
            let api_error = ApiError::from(error);
            if let Some(url) = return_url {
                let message = api_error.to_string();
                let code = api_error.code();
                return Redirect::to(&with_outcome(
                    &url,
                    &[
                        ("crmhost_result", "error"),
                        ("integration", &slug),
                        ("error", code),
                        ("error_description", &message),
                    ],
                ))
                .into_response();
            }
            if wants_html {
                let status = api_error.status();
                let message = api_error.to_string();
                return (status, Html(page("Connection failed", &message))).into_response();
            }
            api_error.into_response()
        }
    }
}

/// `url` with the outcome appended to its query.
fn with_outcome(url: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.query_pairs_mut().extend_pairs(pairs);
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

fn page(title: &str, message: &str) -> String {
    use crate::markup::escape;
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:40em;margin:4em auto\"><h1>{t}</h1><p>{m}</p></body></html>",
        t = escape(title),
        m = escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_appended_to_the_return_url_query() {
        let url =
            with_outcome("https://app.example.com/settings?tab=crm", &[("crmhost_result", "error"), ("error", "a b")]);
        assert_eq!(url, "https://app.example.com/settings?tab=crm&crmhost_result=error&error=a+b");
    }

    #[test]
    fn pages_escape_what_they_show() {
        assert!(page("x", "<script>").contains("&lt;script&gt;"));
    }
}
