//! Pipedrive OAuth (the real one lives at `oauth.pipedrive.com`): the authorize page
//! (auto-approving), `POST /oauth/token` (the client in HTTP Basic auth; authorization code or
//! refresh token; the answer carries `api_domain`, where the company's API lives) and
//! `POST /oauth/revoke`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::Sim;
use crate::oauth::{AuthCode, client_credentials, pkce_matches, with_query};

/// The scopes a Pipedrive app is granted unless it asks for others.
const DEFAULT_SCOPES: &str = "base contacts:full deals:full";

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .with_state(sim)
}

fn oauth_error(status: StatusCode, error: &str, message: &str) -> Response {
    (status, Json(json!({ "success": false, "message": message, "error": error, "error_description": message })))
        .into_response()
}

async fn authorize(State(sim): State<Arc<Sim>>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let client_id = q.get("client_id").cloned().unwrap_or_default();
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let Some(client) = sim.pipedrive().oauth.clients.get(&client_id).cloned() else {
        return (StatusCode::BAD_REQUEST, "Invalid client_id").into_response();
    };
    if !client.allows_redirect(&redirect_uri) {
        return (StatusCode::BAD_REQUEST, "redirect_uri does not match the app's callback URL").into_response();
    }
    let state = q.get("state").cloned().unwrap_or_default();
    if sim.knobs().deny_authorization {
        return crate::oauth::found(&with_query(&redirect_uri, &[("error", "user_denied"), ("state", &state)]));
    }
    let code = sim.token_gen().alnum(40);
    let scopes = q.get("scope").map_or(DEFAULT_SCOPES, String::as_str).split_whitespace().map(str::to_owned).collect();
    let now = sim.clock.now();
    let grant = AuthCode::for_request(client_id, &redirect_uri, &q, scopes, now + chrono::Duration::minutes(5));
    sim.pipedrive().oauth.codes.insert(code.clone(), grant);
    let mut pairs = vec![("code", code.as_str())];
    if !state.is_empty() {
        pairs.push(("state", state.as_str()));
    }
    crate::oauth::found(&with_query(&redirect_uri, &pairs))
}

fn issue(sim: &Sim, client_id: &str, scopes: Vec<String>, refresh: String, chain: u64) -> Value {
    let now = sim.clock.now();
    let ttl = sim.knobs().pipedrive_token_ttl_secs;
    let access = format!("v1u:{}", sim.token_gen().alnum(120));
    let mut state = sim.pipedrive();
    state.oauth.issue_access(&access, client_id, &scopes, now, ttl, chain);
    json!({
        "access_token": access,
        "token_type": "Bearer",
        "refresh_token": refresh,
        "scope": scopes.join(" "),
        "expires_in": ttl,
        "api_domain": state.base_url,
    })
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let (client_id, secret) =
        client_credentials(&form, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let client = client_id.as_ref().and_then(|id| sim.pipedrive().oauth.clients.get(id).cloned());
    let Some(client) = client.filter(|c| secret.as_deref() == Some(c.secret.as_str())) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client credentials");
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let now = sim.clock.now();
            let grant =
                sim.pipedrive().oauth.codes.remove(&code).filter(|g| g.client_id == client.id && g.expires_at > now);
            let Some(grant) = grant else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid grant: authorization code is invalid",
                );
            };
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid grant: redirect_uri mismatch");
            }
            if let Some(challenge) = &grant.challenge
                && !form.get("code_verifier").is_some_and(|v| pkce_matches(challenge, v))
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid grant: code_verifier mismatch");
            }
            let refresh = format!("{}:{}", crate::pipedrive::COMPANY_ID, sim.token_gen().alnum(64));
            let chain = sim.pipedrive().oauth.issue_refresh(&refresh, &client.id, &grant.scopes);
            Json(issue(&sim, &client.id, grant.scopes, refresh, chain)).into_response()
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let found = sim
                .pipedrive()
                .oauth
                .refresh
                .get(&presented)
                .cloned()
                .filter(|t| !t.revoked && t.client_id == client.id);
            let Some(token) = found else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid grant: refresh token is invalid",
                );
            };
            // The same refresh token comes back; it stays valid until revoked or unused for 60 days.
            Json(issue(&sim, &client.id, token.scopes, presented, token.chain)).into_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant type"),
    }
}

async fn revoke(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let (client_id, secret) =
        client_credentials(&form, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let known = client_id.as_ref().and_then(|id| sim.pipedrive().oauth.clients.get(id).cloned());
    if known.filter(|c| secret.as_deref() == Some(c.secret.as_str())).is_none() {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client credentials");
    }
    let Some(token) = form.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is required");
    };
    // Like RFC 7009: an unknown token is not an error.
    sim.pipedrive().oauth.revoke(token);
    StatusCode::OK.into_response()
}
