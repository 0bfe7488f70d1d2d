//! Salesforce OAuth 2.0: the web-server flow (`authorize` auto-approves, or denies when told to),
//! `token` (authorization_code with client secret and PKCE; refresh_token with optional rotation
//! and whole-chain revocation when a rotated-out token is reused), `revoke`, `introspect`,
//! `userinfo` and the identity URL. Token responses carry no `expires_in`, as Salesforce's do.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::errors::oauth_error;
use super::{ORG_ID, USER_ID, USERNAME};
use crate::Sim;
use crate::oauth::{AuthCode, RefreshToken, client_credentials, pkce_matches, with_query};

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/services/oauth2/authorize", get(authorize))
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/revoke", post(revoke).get(revoke_get))
        .route("/services/oauth2/introspect", post(introspect))
        .route("/services/oauth2/userinfo", get(userinfo))
        .route("/id/{org}/{user}", get(identity))
        .with_state(sim)
}

fn form(bytes: &Bytes) -> BTreeMap<String, String> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

async fn authorize(State(sim): State<Arc<Sim>>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let client_id = q.get("client_id").cloned().unwrap_or_default();
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let client = sim.salesforce().oauth.clients.get(&client_id).cloned();
    // Errors before the redirect URI is trusted are shown, not redirected (as Salesforce does).
    let Some(client) = client else {
        return (StatusCode::BAD_REQUEST, "error=invalid_client_id&error_description=client%20identifier%20invalid")
            .into_response();
    };
    if !client.allows_redirect(&redirect_uri) {
        return (
            StatusCode::BAD_REQUEST,
            "error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration",
        )
            .into_response();
    }
    let state = q.get("state").cloned().unwrap_or_default();
    if q.get("response_type").map(String::as_str) != Some("code") {
        return crate::oauth::found(&with_query(
            &redirect_uri,
            &[
                ("error", "unsupported_response_type"),
                ("error_description", "response type not supported"),
                ("state", &state),
            ],
        ));
    }
    if sim.knobs().deny_authorization {
        return crate::oauth::found(&with_query(
            &redirect_uri,
            &[("error", "access_denied"), ("error_description", "end-user denied authorization"), ("state", &state)],
        ));
    }
    // A missing code_challenge_method means S256 (jsforce sends none); `plain` is not supported.
    if q.get("code_challenge_method").is_some_and(|m| m != "S256") {
        return crate::oauth::found(&with_query(
            &redirect_uri,
            &[
                ("error", "invalid_request"),
                ("error_description", "unsupported code_challenge_method"),
                ("state", &state),
            ],
        ));
    }
    let code = format!("aPrx{}", sim.token_gen().alnum(40));
    let scopes = q
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_else(|| vec!["api".to_owned(), "refresh_token".to_owned()]);
    let now = sim.clock.now();
    let grant = AuthCode::for_request(client_id, &redirect_uri, &q, scopes, now + chrono::Duration::minutes(15));
    sim.salesforce().oauth.codes.insert(code.clone(), grant);
    crate::oauth::found(&with_query(&redirect_uri, &[("code", &code), ("state", &state)]))
}

/// Issues an access token (and a refresh token when `refresh` is `Some`) and builds the response.
fn issue(sim: &Sim, client_id: &str, secret: &str, scopes: Vec<String>, chain: u64, new_refresh: bool) -> Value {
    let now = sim.clock.now();
    let ttl = sim.knobs().salesforce_token_ttl_secs;
    let access = format!("{ORG_ID}!AR{}", sim.token_gen().alnum(96));
    let refresh = new_refresh.then(|| format!("5Aep{}", sim.token_gen().alnum(83)));
    let mut state = sim.salesforce();
    state.oauth.issue_access(&access, client_id, &scopes, now, ttl, chain);
    if let Some(refresh) = &refresh {
        state.oauth.refresh.insert(
            refresh.clone(),
            RefreshToken {
                client_id: client_id.to_owned(),
                scopes: scopes.clone(),
                chain,
                rotated: false,
                revoked: false,
            },
        );
        state.oauth.refresh_issued += 1;
    }
    let id = format!("{}/id/{ORG_ID}/{USER_ID}", state.base_url);
    let issued_at = now.timestamp_millis().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{id}{issued_at}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut body = json!({
        "access_token": access,
        "signature": signature,
        "scope": scopes.join(" "),
        "instance_url": state.base_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    body
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let (client_id, secret) =
        client_credentials(&form, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let Some(client) = client_id.as_ref().and_then(|id| sim.salesforce().oauth.clients.get(id).cloned()) else {
        return oauth_error("invalid_client_id", "client identifier invalid");
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            if secret.as_deref() != Some(client.secret.as_str()) {
                return oauth_error("invalid_client", "invalid client credentials");
            }
            let code = form.get("code").cloned().unwrap_or_default();
            let now = sim.clock.now();
            let Some(grant) = sim.salesforce().oauth.codes.remove(&code) else {
                return oauth_error("invalid_grant", "authentication failure");
            };
            if grant.client_id != client.id || grant.expires_at <= now {
                return oauth_error("invalid_grant", "authorization code expired");
            }
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return oauth_error("redirect_uri_mismatch", "redirect_uri must match configuration");
            }
            match (&grant.challenge, form.get("code_verifier")) {
                (Some(_), None) => return oauth_error("invalid_grant", "authentication failure"),
                (Some(challenge), Some(verifier)) if !pkce_matches(challenge, verifier) => {
                    return oauth_error("invalid_request", "invalid code verifier");
                }
                _ => {}
            }
            let chain = sim.salesforce().oauth.new_chain();
            let wants_refresh =
                grant.scopes.iter().any(|s| s == "refresh_token" || s == "offline_access" || s == "full");
            Json(issue(&sim, &client.id, &client.secret, grant.scopes, chain, wants_refresh)).into_response()
        }
        Some("refresh_token") => {
            // The secret is optional for refresh unless the app requires it; if sent, it must match.
            if secret.as_deref().is_some_and(|s| s != client.secret) {
                return oauth_error("invalid_client", "invalid client credentials");
            }
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let rotation = sim.knobs().refresh_token_rotation;
            let (scopes, chain) = {
                let mut state = sim.salesforce();
                let Some(token) = state.oauth.refresh.get(&presented).cloned() else {
                    return oauth_error("invalid_grant", "expired access/refresh token");
                };
                if token.revoked || token.client_id != client.id {
                    return oauth_error("invalid_grant", "expired access/refresh token");
                }
                if token.rotated {
                    // Reuse of a rotated-out token: the whole chain is compromised.
                    state.oauth.revoke_chain(token.chain);
                    return oauth_error("invalid_grant", "expired access/refresh token");
                }
                if rotation && let Some(t) = state.oauth.refresh.get_mut(&presented) {
                    t.rotated = true;
                }
                (token.scopes, token.chain)
            };
            Json(issue(&sim, &client.id, &client.secret, scopes, chain, rotation)).into_response()
        }
        Some(other) => oauth_error("unsupported_grant_type", &format!("grant type not supported: {other}")),
        None => oauth_error("invalid_request", "grant_type is required"),
    }
}

fn revoke_token(sim: &Sim, token: Option<&String>) -> Response {
    let revoked = token.is_some_and(|t| sim.salesforce().oauth.revoke(t));
    if revoked {
        StatusCode::OK.into_response()
    } else {
        // Salesforce answers revoke errors url-encoded (jsforce parses them so).
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
            "error=invalid_token&error_description=invalid%20token",
        )
            .into_response()
    }
}

async fn revoke(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    revoke_token(&sim, form(&body).get("token"))
}

async fn revoke_get(State(sim): State<Arc<Sim>>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    revoke_token(&sim, q.get("token"))
}

async fn introspect(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let (client_id, secret) =
        client_credentials(&form, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let client = client_id.as_ref().and_then(|id| sim.salesforce().oauth.clients.get(id).cloned());
    if client.as_ref().is_none_or(|c| secret.as_deref() != Some(c.secret.as_str())) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client", "error_description": "invalid client credentials" })),
        )
            .into_response();
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let now = sim.clock.now();
    let state = sim.salesforce();
    let sub = format!("{}/id/{ORG_ID}/{USER_ID}", state.base_url);
    if let Ok(access) = state.oauth.check_access(&token, now) {
        return Json(json!({
            "active": true, "scope": access.scopes.join(" "), "client_id": access.client_id,
            "username": USERNAME, "sub": sub, "token_type": "access_token",
            "exp": access.expires_at.timestamp(), "iat": access.issued_at.timestamp(), "nbf": access.issued_at.timestamp(),
        }))
        .into_response();
    }
    if let Some(refresh) = state.oauth.refresh.get(&token).filter(|t| !t.revoked && !t.rotated) {
        return Json(json!({
            "active": true, "scope": refresh.scopes.join(" "), "client_id": refresh.client_id,
            "username": USERNAME, "sub": sub, "token_type": "refresh_token",
        }))
        .into_response();
    }
    Json(json!({ "active": false })).into_response()
}

fn bearer_ok(sim: &Sim, headers: &HeaderMap) -> bool {
    let token =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    token.is_some_and(|t| sim.salesforce().oauth.check_access(t, sim.clock.now()).is_ok())
}

fn identity_body(base: &str) -> Value {
    let urls = |path: &str| format!("{base}/services/{path}");
    json!({
        "id": format!("{base}/id/{ORG_ID}/{USER_ID}"),
        "asserted_user": true, "user_id": USER_ID, "organization_id": ORG_ID,
        "username": USERNAME, "nick_name": "admin", "display_name": "Sim Admin",
        "email": "admin@crm-sim.example", "email_verified": true,
        "first_name": "Sim", "last_name": "Admin", "timezone": "Etc/UTC",
        "photos": { "picture": format!("{base}/img/userprofile/default_profile_200_v2.png"), "thumbnail": format!("{base}/img/userprofile/default_profile_45_v2.png") },
        "urls": {
            "enterprise": urls("Soap/c/{version}/00D5g000004SIMA"), "metadata": urls("Soap/m/{version}/00D5g000004SIMA"),
            "partner": urls("Soap/u/{version}/00D5g000004SIMA"), "rest": urls("data/v{version}/"),
            "sobjects": urls("data/v{version}/sobjects/"), "search": urls("data/v{version}/search/"),
            "query": urls("data/v{version}/query/"), "profile": format!("{base}/{USER_ID}"),
        },
        "active": true, "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": 0,
        "last_modified_date": "2024-01-01T00:00:00.000+0000", "is_app_installed": true,
    })
}

async fn identity(
    State(sim): State<Arc<Sim>>,
    Path((org, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !bearer_ok(&sim, &headers) {
        return (StatusCode::FORBIDDEN, "Bad_OAuth_Token").into_response();
    }
    if org != ORG_ID || user != USER_ID {
        return (StatusCode::NOT_FOUND, "Bad_Id").into_response();
    }
    let base = sim.salesforce().base_url.clone();
    Json(identity_body(&base)).into_response()
}

async fn userinfo(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if !bearer_ok(&sim, &headers) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({ "error": "invalid_token", "error_description": "Access token is invalid" })),
        )
            .into_response();
    }
    let base = sim.salesforce().base_url.clone();
    let identity = identity_body(&base);
    Json(json!({
        "sub": identity["id"], "user_id": USER_ID, "organization_id": ORG_ID,
        "preferred_username": USERNAME, "nickname": "admin", "name": "Sim Admin",
        "email": identity["email"], "email_verified": true, "given_name": "Sim", "family_name": "Admin",
        "zoneinfo": "Etc/UTC", "photos": identity["photos"], "profile": identity["urls"]["profile"],
        "urls": identity["urls"], "active": true, "user_type": "STANDARD", "language": "en_US",
        "locale": "en_US", "utcOffset": 0, "updated_at": "2024-01-01T00:00:00Z",
    }))
    .into_response()
}
