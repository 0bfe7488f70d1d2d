//! Acme, the example CRM of the SDK and of `crmhost plugin new`: the small JSON API the scaffolded
//! plugins are written against, so a new plugin passes `crmhost plugin check --against` before its
//! author has pointed it at a real CRM. It is a mock with the shape of a real CRM, nothing more:
//!
//! - OAuth 2.0: `GET /oauth/authorize` (grants at once, PKCE `S256` honoured), `POST /oauth/token`
//!   (authorization code or refresh token; the client in the form or HTTP Basic), `POST
//!   /oauth/revoke`.
//! - `GET /v1/me` → `{account_id, name, email}`.
//! - `GET /v1/contacts?limit=&after=&ids=&updated_since=` → `{items, next}`: by id, `limit` 1–200
//!   (default 50), `after` the last id of the previous page, `ids` comma-separated, `updated_since`
//!   RFC 3339 (inclusive). Items: `{id, email, first_name, last_name, updated_at}`.
//! - `PUT /v1/contacts?upsert_on=email` → 201 created / 200 updated (the contact whose email
//!   matches, case-insensitively); `PATCH /v1/contacts/{id}`; `DELETE /v1/contacts/{id}` → 204,
//!   404 once gone.
//! - Errors `{"error": code, "message"}`: 401 `invalid_token`, 404 `not_found`, 422 `invalid`
//!   (an email without `@`, an unknown field), and through the knobs 429 `rate_limited` (with
//!   `Retry-After`) and 503 `unavailable`. It has no rate limit of its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::oauth::{AuthCode, OAuthClient, OAuthStore, client_credentials, pkce_matches, with_query};
use crate::{Crm, Sim};

/// The emulated account's id.
pub const ACCOUNT_ID: &str = "acme-1";
/// The emulated user's email.
pub const USER_EMAIL: &str = "owner@acme.example";
/// Access tokens live an hour.
const TOKEN_TTL_SECS: u64 = 3_600;
/// The fields a contact has.
const FIELDS: [&str; 3] = ["email", "first_name", "last_name"];

/// One contact.
#[derive(Debug, Clone)]
pub struct AcmeContact {
    /// Numeric id.
    pub id: u64,
    /// `email`, `first_name`, `last_name` (strings or null).
    pub fields: Map<String, Value>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Deleted (kept so a second delete answers 404).
    pub deleted: bool,
}

impl AcmeContact {
    fn email(&self) -> Option<&str> {
        self.fields.get("email").and_then(Value::as_str)
    }

    fn to_json(&self) -> Value {
        let mut out = self.fields.clone();
        out.insert("id".to_owned(), json!(self.id.to_string()));
        out.insert("updated_at".to_owned(), json!(self.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true)));
        Value::Object(out)
    }
}

/// Acme's state.
#[derive(Debug)]
pub struct AcmeState {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// OAuth state.
    pub oauth: OAuthStore,
    /// Contacts by id.
    pub contacts: BTreeMap<u64, AcmeContact>,
    last_id: u64,
}

impl AcmeState {
    /// An empty account with `clients` registered.
    pub fn new(clients: &[OAuthClient]) -> Self {
        Self { base_url: String::new(), oauth: OAuthStore::new(clients), contacts: BTreeMap::new(), last_id: 0 }
    }

    fn create(&mut self, fields: Map<String, Value>, now: DateTime<Utc>) -> &AcmeContact {
        self.last_id += 1;
        let id = self.last_id;
        self.contacts.entry(id).or_insert(AcmeContact { id, fields, updated_at: now, deleted: false })
    }

    fn live_mut(&mut self, id: u64) -> Option<&mut AcmeContact> {
        self.contacts.get_mut(&id).filter(|c| !c.deleted)
    }

    /// Live contacts (for test assertions).
    pub fn live(&self) -> impl Iterator<Item = &AcmeContact> {
        self.contacts.values().filter(|c| !c.deleted)
    }

    /// Creates `count` contacts for `contact` / `contacts`; `None` for any other entity.
    pub fn seed(&mut self, entity: &str, count: usize, now: DateTime<Utc>) -> Option<usize> {
        if !matches!(entity, "contact" | "contacts") {
            return None;
        }
        for _ in 0..count {
            let n = self.last_id + 1;
            let fields = json!({"email": format!("contact{n}@acme.example"), "first_name": format!("First{n}"), "last_name": format!("Last{n}")});
            if let Value::Object(fields) = fields {
                self.create(fields, now);
            }
        }
        Some(count)
    }

    /// Counts for `/__sim/state`.
    pub fn summary(&self) -> Value {
        json!({ "base_url": self.base_url, "contacts": self.live().count(), "access_tokens_issued": self.oauth.access_issued })
    }
}

/// An Acme error answer.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": code, "message": message.into() }))).into_response()
}

/// 503, as the knobs' failure rate answers.
pub fn unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Acme is temporarily unavailable")
}

/// 429 with when to come back, as the knobs' forced rate limit answers.
pub fn rate_limited() -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many requests; retry after 1 s");
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// The Acme router.
pub fn router(sim: Arc<Sim>) -> Router {
    let api = Router::new()
        .route("/v1/me", get(me))
        .route("/v1/contacts", get(list).put(upsert))
        .route("/v1/contacts/{id}", patch(update).delete(remove))
        .route_layer(axum::middleware::from_fn_with_state((sim.clone(), Crm::Acme), crate::server::faults));
    Router::new()
        .merge(api)
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .with_state(sim.clone())
        .merge(crate::admin::router(sim.clone(), Crm::Acme))
        .route_layer(axum::middleware::from_fn_with_state((sim, Crm::Acme), crate::server::count_calls))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route") })
}

async fn me(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = authorized(&sim, &headers) {
        return refusal;
    }
    Json(json!({ "account_id": ACCOUNT_ID, "name": "Acme (crm-sim)", "email": USER_EMAIL })).into_response()
}

/// `None` when the request carries a live token; else the 401 to answer.
fn authorized(sim: &Sim, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    match sim.acme().oauth.check_access(token, sim.clock.now()) {
        Ok(_) => None,
        Err(_) => Some(error(StatusCode::UNAUTHORIZED, "invalid_token", "The access token is invalid or expired")),
    }
}

async fn list(State(sim): State<Arc<Sim>>, headers: HeaderMap, Query(q): Query<BTreeMap<String, String>>) -> Response {
    if let Some(refusal) = authorized(&sim, &headers) {
        return refusal;
    }
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=200).contains(&n) => n,
        Some(_) => return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "limit must be 1 to 200"),
    };
    let after = match q.get("after").map(|a| a.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "after must be a contact id"),
    };
    let since = match q.get("updated_since").map(|s| DateTime::parse_from_rfc3339(s)) {
        None => None,
        Some(Ok(t)) => Some(t.with_timezone(&Utc)),
        Some(Err(_)) => return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "updated_since must be RFC 3339"),
    };
    let ids: Option<Vec<u64>> = q.get("ids").map(|ids| ids.split(',').filter_map(|i| i.trim().parse().ok()).collect());
    let state = sim.acme();
    let mut matching = state
        .live()
        .filter(|c| c.id > after)
        .filter(|c| ids.as_ref().is_none_or(|ids| ids.contains(&c.id)))
        .filter(|c| since.is_none_or(|since| c.updated_at >= since));
    let items: Vec<&AcmeContact> = matching.by_ref().take(limit).collect();
    let next = match (items.last(), matching.next()) {
        (Some(last), Some(_)) => json!(last.id.to_string()),
        _ => Value::Null,
    };
    Json(json!({ "items": items.iter().map(|c| c.to_json()).collect::<Vec<_>>(), "next": next })).into_response()
}

/// The contact fields of a request body, checked; the 422 to answer otherwise.
fn contact_fields(body: &Bytes) -> Result<Map<String, Value>, Box<Response>> {
    let invalid = |message: String| Box::new(error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message));
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("send a JSON object of contact fields".to_owned()));
    };
    for (name, value) in &input {
        if !FIELDS.contains(&name.as_str()) {
            return Err(invalid(format!("`{name}` is not a contact field")));
        }
        if !(value.is_string() || value.is_null()) {
            return Err(invalid(format!("`{name}` must be a string or null")));
        }
    }
    if let Some(email) = input.get("email").and_then(Value::as_str)
        && !email.contains('@')
    {
        return Err(invalid(format!("`{email}` is not an email address")));
    }
    Ok(input)
}

async fn upsert(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(refusal) = authorized(&sim, &headers) {
        return refusal;
    }
    if q.get("upsert_on").map(String::as_str) != Some("email") {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "contacts upsert on `email` only");
    }
    let fields = match contact_fields(&body) {
        Ok(fields) => fields,
        Err(refusal) => return *refusal,
    };
    let Some(email) = fields.get("email").and_then(Value::as_str).map(str::to_lowercase) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "`email` is required to upsert on it");
    };
    let now = sim.clock.now();
    let mut state = sim.acme();
    let existing = state.live().find(|c| c.email().is_some_and(|e| e.to_lowercase() == email)).map(|c| c.id);
    match existing.and_then(|id| state.live_mut(id)) {
        Some(contact) => {
            contact.fields.extend(fields);
            contact.updated_at = now;
            (StatusCode::OK, Json(contact.to_json())).into_response()
        }
        None => (StatusCode::CREATED, Json(state.create(fields, now).to_json())).into_response(),
    }
}

async fn update(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Some(refusal) = authorized(&sim, &headers) {
        return refusal;
    }
    let fields = match contact_fields(&body) {
        Ok(fields) => fields,
        Err(refusal) => return *refusal,
    };
    let now = sim.clock.now();
    let mut state = sim.acme();
    match id.parse().ok().and_then(|id| state.live_mut(id)) {
        Some(contact) => {
            contact.fields.extend(fields);
            contact.updated_at = now;
            Json(contact.to_json()).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "not_found", format!("no contact {id}")),
    }
}

async fn remove(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refusal) = authorized(&sim, &headers) {
        return refusal;
    }
    let now = sim.clock.now();
    let mut state = sim.acme();
    match id.parse().ok().and_then(|id| state.live_mut(id)) {
        Some(contact) => {
            contact.deleted = true;
            contact.updated_at = now;
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "not_found", format!("no contact {id}")),
    }
}

async fn authorize(State(sim): State<Arc<Sim>>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let client_id = q.get("client_id").cloned().unwrap_or_default();
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let Some(client) = sim.acme().oauth.clients.get(&client_id).cloned() else {
        return error(StatusCode::BAD_REQUEST, "invalid_client", "unknown client_id");
    };
    if !client.allows_redirect(&redirect_uri) {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "redirect_uri is not registered");
    }
    let state = q.get("state").cloned().unwrap_or_default();
    if sim.knobs().deny_authorization {
        return crate::oauth::found(&with_query(&redirect_uri, &[("error", "access_denied"), ("state", &state)]));
    }
    let code = sim.token_gen().alnum(32);
    let scopes = q.get("scope").map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
    let grant =
        AuthCode::for_request(client_id, &redirect_uri, &q, scopes, sim.clock.now() + chrono::Duration::minutes(10));
    sim.acme().oauth.codes.insert(code.clone(), grant);
    crate::oauth::found(&with_query(&redirect_uri, &[("code", &code), ("state", &state)]))
}

fn issue(sim: &Sim, client_id: &str, scopes: &[String], refresh: &str, chain: u64) -> Value {
    let access = format!("acme_at_{}", sim.token_gen().alnum(48));
    sim.acme().oauth.issue_access(&access, client_id, scopes, sim.clock.now(), TOKEN_TTL_SECS, chain);
    json!({ "access_token": access, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECS, "refresh_token": refresh, "scope": scopes.join(" ") })
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let (client_id, secret) =
        client_credentials(&form, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let client = client_id.as_ref().and_then(|id| sim.acme().oauth.clients.get(id).cloned());
    let Some(client) = client.filter(|c| secret.as_deref() == Some(c.secret.as_str())) else {
        return error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
    };
    let invalid_grant = |why: &str| error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let now = sim.clock.now();
            let grant = sim.acme().oauth.codes.remove(&code).filter(|g| g.client_id == client.id && g.expires_at > now);
            let Some(grant) = grant else { return invalid_grant("the code is invalid or expired") };
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return invalid_grant("redirect_uri does not match");
            }
            if let Some(challenge) = &grant.challenge
                && !form.get("code_verifier").is_some_and(|v| pkce_matches(challenge, v))
            {
                return invalid_grant("code_verifier does not match");
            }
            let refresh = format!("acme_rt_{}", sim.token_gen().alnum(48));
            let chain = sim.acme().oauth.issue_refresh(&refresh, &client.id, &grant.scopes);
            Json(issue(&sim, &client.id, &grant.scopes, &refresh, chain)).into_response()
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let found =
                sim.acme().oauth.refresh.get(&presented).cloned().filter(|t| !t.revoked && t.client_id == client.id);
            let Some(token) = found else { return invalid_grant("the refresh token is invalid") };
            Json(issue(&sim, &client.id, &token.scopes, &presented, token.chain)).into_response()
        }
        _ => error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "use authorization_code or refresh_token"),
    }
}

async fn revoke(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    if let Some(token) = form.get("token") {
        sim.acme().oauth.revoke(token);
    }
    StatusCode::OK.into_response()
}
