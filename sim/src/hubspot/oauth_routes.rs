//! HubSpot OAuth: the authorize page (auto-approving; the real one lives at app.hubspot.com),
//! token exchange and refresh on `/oauth/v1/token`, `/oauth/v3/token` and `/oauth/2026-03/token`
//! (`expires_in` 1800 by default; refresh tokens do not rotate), access- and refresh-token
//! metadata, refresh-token deletion, v3 introspection and revocation.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{APP_ID, HUB_ID, USER_EMAIL, USER_ID};
use crate::Sim;
use crate::oauth::{AuthCode, client_credentials, pkce_matches, with_query};

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/v1/token", post(token))
        .route("/oauth/v3/token", post(token))
        .route("/oauth/2026-03/token", post(token))
        .route("/oauth/v1/access-tokens/{token}", get(access_token_info))
        .route("/oauth/v1/refresh-tokens/{token}", get(refresh_token_info).delete(delete_refresh_token))
        .route("/oauth/v3/token/introspect", post(introspect))
        .route("/oauth/v3/token/revoke", post(revoke))
        .with_state(sim)
}

fn token_error(sim: &Sim, status: &str, message: &str, error: Option<(&str, &str)>) -> Response {
    let mut body = json!({ "status": status, "message": message, "correlationId": super::errors::correlation_id(sim) });
    if let Some((error, description)) = error {
        body["error"] = json!(error);
        body["error_description"] = json!(description);
    }
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn authorize(State(sim): State<Arc<Sim>>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let client_id = q.get("client_id").cloned().unwrap_or_default();
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let Some(client) = sim.hubspot().oauth.clients.get(&client_id).cloned() else {
        return (StatusCode::BAD_REQUEST, "Invalid client_id").into_response();
    };
    if !client.allows_redirect(&redirect_uri) {
        return (StatusCode::BAD_REQUEST, "redirect_uri does not match the app's redirect URLs").into_response();
    }
    let state = q.get("state").cloned().unwrap_or_default();
    if sim.knobs().deny_authorization {
        return crate::oauth::found(&with_query(
            &redirect_uri,
            &[("error", "access_denied"), ("error_description", "The user denied access"), ("state", &state)],
        ));
    }
    let code = sim.token_gen().uuid_like();
    // Optional scopes are granted when the account has them (the knob says whether it does).
    let optional = if sim.knobs().hubspot_grants_optional_scopes { q.get("optional_scope") } else { None };
    let scopes: Vec<String> = [q.get("scope"), optional]
        .into_iter()
        .flatten()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect();
    let now = sim.clock.now();
    let grant = AuthCode::for_request(client_id, &redirect_uri, &q, scopes, now + chrono::Duration::minutes(10));
    sim.hubspot().oauth.codes.insert(code.clone(), grant);
    let mut pairs = vec![("code", code.as_str())];
    if !state.is_empty() {
        pairs.push(("state", state.as_str()));
    }
    crate::oauth::found(&with_query(&redirect_uri, &pairs))
}

fn issue(sim: &Sim, client_id: &str, scopes: Vec<String>, refresh: String, chain: u64) -> Value {
    let now = sim.clock.now();
    let ttl = sim.knobs().hubspot_token_ttl_secs;
    let access = format!("CKDZ{}", sim.token_gen().alnum(140));
    let mut state = sim.hubspot();
    state.oauth.issue_access(&access, client_id, &scopes, now, ttl, chain);
    json!({
        "token_type": "bearer",
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": ttl,
        "token_use": "access_token",
        "hub_id": HUB_ID,
        "user_id": USER_ID,
        "scopes": scopes,
    })
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let (client_id, secret) =
        client_credentials(&form, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let client = client_id.as_ref().and_then(|id| sim.hubspot().oauth.clients.get(id).cloned());
    let Some(client) = client.filter(|c| secret.as_deref() == Some(c.secret.as_str())) else {
        return token_error(
            &sim,
            "BAD_CLIENT_ID",
            "missing or invalid client_id / client_secret",
            Some(("invalid_client", "client credentials are invalid")),
        );
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let now = sim.clock.now();
            let Some(grant) =
                sim.hubspot().oauth.codes.remove(&code).filter(|g| g.client_id == client.id && g.expires_at > now)
            else {
                return token_error(
                    &sim,
                    "BAD_AUTH_CODE",
                    "missing or unknown auth code",
                    Some(("invalid_grant", "auth code is invalid, expired or already used")),
                );
            };
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return token_error(
                    &sim,
                    "BAD_REDIRECT_URI",
                    "redirect_uri does not match",
                    Some(("invalid_grant", "redirect_uri mismatch")),
                );
            }
            if let Some(challenge) = &grant.challenge
                && !form.get("code_verifier").is_some_and(|v| pkce_matches(challenge, v))
            {
                return token_error(
                    &sim,
                    "BAD_AUTH_CODE",
                    "code_verifier does not match",
                    Some(("invalid_grant", "invalid code_verifier")),
                );
            }
            let refresh = sim.token_gen().uuid_like();
            let chain = sim.hubspot().oauth.issue_refresh(&refresh, &client.id, &grant.scopes);
            Json(issue(&sim, &client.id, grant.scopes, refresh, chain)).into_response()
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let found =
                sim.hubspot().oauth.refresh.get(&presented).cloned().filter(|t| !t.revoked && t.client_id == client.id);
            let Some(token) = found else {
                return token_error(
                    &sim,
                    "BAD_REFRESH_TOKEN",
                    "missing or unknown refresh token",
                    Some(("invalid_grant", "refresh token is invalid, expired or revoked")),
                );
            };
            // HubSpot refresh tokens do not rotate: the same one comes back.
            Json(issue(&sim, &client.id, token.scopes, presented, token.chain)).into_response()
        }
        _ => token_error(
            &sim,
            "BAD_GRANT_TYPE",
            "grant_type must be authorization_code or refresh_token",
            Some(("unsupported_grant_type", "unsupported grant type")),
        ),
    }
}

fn not_found(sim: &Sim, message: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "status": "error", "message": message, "correlationId": super::errors::correlation_id(sim), "category": "OBJECT_NOT_FOUND" })))
        .into_response()
}

async fn access_token_info(State(sim): State<Arc<Sim>>, Path(token): Path<String>) -> Response {
    let now = sim.clock.now();
    let state = sim.hubspot();
    match state.oauth.check_access(&token, now) {
        Ok(access) => Json(json!({
            "token": token, "user": USER_EMAIL, "hub_domain": "crm-sim.example", "scopes": access.scopes,
            "signed_access_token": {}, "hub_id": HUB_ID, "app_id": APP_ID,
            "expires_in": (access.expires_at - now).num_seconds().max(0), "user_id": USER_ID,
            "token_type": "access", "is_private_distribution": false,
        }))
        .into_response(),
        Err(_) => not_found(&sim, "The access token is invalid or expired"),
    }
}

async fn refresh_token_info(State(sim): State<Arc<Sim>>, Path(token): Path<String>) -> Response {
    let state = sim.hubspot();
    match state.oauth.refresh.get(&token).filter(|t| !t.revoked) {
        Some(refresh) => Json(json!({
            "token": token, "user": USER_EMAIL, "hub_domain": "crm-sim.example", "scopes": refresh.scopes,
            "hub_id": HUB_ID, "client_id": refresh.client_id, "user_id": USER_ID, "token_type": "refresh",
        }))
        .into_response(),
        None => not_found(&sim, "refresh token not found"),
    }
}

async fn delete_refresh_token(State(sim): State<Arc<Sim>>, Path(token): Path<String>) -> Response {
    // Deletes only the refresh token: access tokens keep working, as in HubSpot.
    match sim.hubspot().oauth.refresh.get_mut(&token) {
        Some(t) if !t.revoked => {
            t.revoked = true;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn client_ok(sim: &Sim, form: &BTreeMap<String, String>, headers: &HeaderMap) -> bool {
    let (id, secret) = client_credentials(form, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    id.and_then(|id| sim.hubspot().oauth.clients.get(&id).cloned())
        .is_some_and(|c| secret.as_deref() == Some(c.secret.as_str()))
}

async fn introspect(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    if !client_ok(&sim, &form, &headers) {
        return token_error(
            &sim,
            "BAD_CLIENT_ID",
            "missing or invalid client credentials",
            Some(("invalid_client", "client credentials are invalid")),
        );
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let now = sim.clock.now();
    let state = sim.hubspot();
    let common = |scopes: &[String], client: &str| {
        json!({
            "active": true, "app_id": APP_ID, "client_id": client, "hub_id": HUB_ID, "hub_domain": "crm-sim.example",
            "user_id": USER_ID, "user": USER_EMAIL, "scopes": scopes, "token": token, "is_private_distribution": false,
        })
    };
    if let Ok(access) = state.oauth.check_access(&token, now) {
        let mut body = common(&access.scopes, &access.client_id);
        body["token_type"] = json!("access");
        body["token_use"] = json!("access_token");
        body["expires_in"] = json!((access.expires_at - now).num_seconds().max(0));
        return Json(body).into_response();
    }
    if let Some(refresh) = state.oauth.refresh.get(&token).filter(|t| !t.revoked) {
        let mut body = common(&refresh.scopes, &refresh.client_id);
        body["token_type"] = json!("refresh");
        body["token_use"] = json!("refresh_token");
        return Json(body).into_response();
    }
    Json(json!({ "active": false })).into_response()
}

async fn revoke(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    if !client_ok(&sim, &form, &headers) {
        return token_error(
            &sim,
            "BAD_CLIENT_ID",
            "missing or invalid client credentials",
            Some(("invalid_client", "client credentials are invalid")),
        );
    }
    let token = form.get("token").cloned().unwrap_or_default();
    if sim.hubspot().oauth.revoke(&token) {
        StatusCode::OK.into_response()
    } else {
        token_error(&sim, "BAD_REFRESH_TOKEN", "missing or unknown token", Some(("invalid_token", "token is invalid")))
    }
}
