//! `/__sim/…`: the emulators' own control surface, on every listener. Not part of any CRM's API.
//!
//! - `GET /__sim/state`: record counts, tokens issued, clock, knobs.
//! - `GET /__sim/wiring`: which CRM this listener emulates, its base URL and, for a CRM with API
//!   keys, one it accepts: `{"crm": "pipedrive", "base_url": "http://127.0.0.1:PORT", "api_key":
//!   "…"}` (what `crmhost plugin check --against` reads to point a plugin here).
//! - `GET /__sim/calls`: API calls by route.
//! - `GET /__sim/knobs`, `POST /__sim/knobs` (a JSON object with the knobs to change).
//! - `POST /__sim/revoke` `{"token": "…"}`: revokes an access or refresh token of either CRM.
//! - `POST /__sim/seed` `{"entity": "contact", "count": 50}`.
//! - `POST /__sim/clock` `{"set": "2024-01-01T00:00:00Z"}` | `{"advance_secs": 3600}` | `{"release": true}`.
//! - `POST /__sim/webhooks` `{"target_url", "client_secret"?, "max_attempts"?, "retry_base_ms"?}` (or
//!   `null` to stop): HubSpot delivers change events there; `GET /__sim/webhooks`: the delivery log.
//! - `POST /__sim/salesforce/notifications` `{"objects": ["Contact"], "url", "format": "apex" |
//!   "outbound_message", "secret"?, "max_attempts"?, "retry_base_ms"?}` (or `null` to stop):
//!   Salesforce notifies that URL of changes to those objects as an Apex trigger (JSON with
//!   `X-Webhook-Secret`) or a workflow Outbound Message (SOAP) would; `GET`: the delivery log.
//! - `POST /__sim/clients` `{"id", "secret", "redirect_uris": []}`: registers an OAuth client on every CRM.
//! - `POST /__sim/pipedrive/api-tokens` `{"token": "…"}`: one more API token Pipedrive accepts;
//!   `DELETE` with the same body: it no longer does (a user regenerated it).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::knobs::Knobs;
use crate::{Crm, OAuthClient, Sim};

/// The admin routes of the listener emulating `crm`.
pub fn router(sim: Arc<Sim>, crm: Crm) -> Router {
    Router::new()
        .route("/__sim/state", get(state))
        .route("/__sim/wiring", get(move |State(sim): State<Arc<Sim>>| async move { Json(wiring(&sim, crm)) }))
        .route("/__sim/calls", get(|State(sim): State<Arc<Sim>>| async move { Json(json!(sim.calls())) }))
        .route(
            "/__sim/knobs",
            get(|State(sim): State<Arc<Sim>>| async move { Json(json!(sim.knobs())) }).post(set_knobs),
        )
        .route("/__sim/revoke", post(revoke))
        .route("/__sim/seed", post(seed))
        .route("/__sim/clock", post(clock))
        .route("/__sim/clients", post(add_client))
        .route("/__sim/pipedrive/api-tokens", post(add_api_token).delete(remove_api_token))
        .route("/__sim/webhooks", get(webhook_log).post(set_webhooks))
        .route("/__sim/salesforce/notifications", get(notification_log).post(set_notifications))
        .with_state(sim)
}

fn bad(message: impl Into<String>) -> (StatusCode, Json<Value>) {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message.into() })))
}

async fn state(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let salesforce = sim.salesforce().summary();
    let hubspot = sim.hubspot().summary();
    let pipedrive = sim.pipedrive().summary();
    let acme = sim.acme().summary();
    Json(json!({
        "clock": { "now": sim.clock.now(), "manual": sim.clock.is_manual() },
        "knobs": sim.knobs(),
        "salesforce": salesforce,
        "hubspot": hubspot,
        "pipedrive": pipedrive,
        "acme": acme,
    }))
}

/// Which CRM a listener emulates, and where.
fn wiring(sim: &Sim, crm: Crm) -> Value {
    let base_url = match crm {
        Crm::Salesforce => sim.salesforce().base_url.clone(),
        Crm::Hubspot => sim.hubspot().base_url.clone(),
        Crm::Pipedrive => sim.pipedrive().base_url.clone(),
        Crm::Acme => sim.acme().base_url.clone(),
    };
    let api_key = (crm == Crm::Pipedrive).then_some(crate::pipedrive::API_TOKEN);
    json!({ "crm": crm, "base_url": base_url, "api_key": api_key })
}

async fn set_knobs(State(sim): State<Arc<Sim>>, Json(change): Json<Value>) -> (StatusCode, Json<Value>) {
    let Value::Object(change) = change else { return bad("send a JSON object of knobs") };
    let mut merged = json!(sim.knobs());
    if let Value::Object(current) = &mut merged {
        current.extend(change);
    }
    let knobs: Knobs = match serde_json::from_value(merged) {
        Ok(k) => k,
        Err(e) => return bad(format!("invalid knobs: {e}")),
    };
    match sim.set_knobs(knobs) {
        Ok(()) => (StatusCode::OK, Json(json!(sim.knobs()))),
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
struct RevokeBody {
    token: String,
}

async fn revoke(State(sim): State<Arc<Sim>>, Json(body): Json<RevokeBody>) -> (StatusCode, Json<Value>) {
    if sim.revoke_token(&body.token) {
        (StatusCode::OK, Json(json!({ "revoked": true })))
    } else {
        (StatusCode::NOT_FOUND, Json(json!({ "error": "no such token" })))
    }
}

#[derive(Deserialize)]
struct SeedBody {
    entity: String,
    count: usize,
}

async fn seed(State(sim): State<Arc<Sim>>, Json(body): Json<SeedBody>) -> (StatusCode, Json<Value>) {
    if body.count > 100_000 {
        return bad("count must be at most 100000");
    }
    match sim.seed(&body.entity, body.count) {
        Ok(created) => (StatusCode::OK, Json(json!({ "created": created }))),
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    set: Option<chrono::DateTime<chrono::Utc>>,
    advance_secs: Option<i64>,
    release: Option<bool>,
}

async fn clock(State(sim): State<Arc<Sim>>, Json(body): Json<ClockBody>) -> Json<Value> {
    if let Some(at) = body.set {
        sim.clock.set(at);
    }
    if let Some(secs) = body.advance_secs {
        sim.clock.advance(chrono::Duration::seconds(secs));
    }
    if body.release == Some(true) {
        sim.clock.release();
    }
    Json(json!({ "now": sim.clock.now(), "manual": sim.clock.is_manual() }))
}

async fn add_client(State(sim): State<Arc<Sim>>, Json(client): Json<OAuthClient>) -> (StatusCode, Json<Value>) {
    if client.id.is_empty() || client.secret.is_empty() {
        return bad("id and secret are required");
    }
    sim.salesforce().oauth.clients.insert(client.id.clone(), client.clone());
    sim.hubspot().oauth.clients.insert(client.id.clone(), client.clone());
    sim.pipedrive().oauth.clients.insert(client.id.clone(), client);
    (StatusCode::CREATED, Json(json!({ "registered": true })))
}

#[derive(Deserialize)]
struct ApiTokenBody {
    token: String,
}

async fn add_api_token(State(sim): State<Arc<Sim>>, Json(body): Json<ApiTokenBody>) -> (StatusCode, Json<Value>) {
    if body.token.trim().is_empty() {
        return bad("token must not be empty");
    }
    sim.pipedrive().api_tokens.insert(body.token);
    (StatusCode::CREATED, Json(json!({ "added": true })))
}

async fn remove_api_token(State(sim): State<Arc<Sim>>, Json(body): Json<ApiTokenBody>) -> (StatusCode, Json<Value>) {
    let removed = sim.pipedrive().api_tokens.remove(&body.token);
    (if removed { StatusCode::OK } else { StatusCode::NOT_FOUND }, Json(json!({ "removed": removed })))
}

async fn set_webhooks(
    State(sim): State<Arc<Sim>>,
    Json(target): Json<Option<crate::hubspot::webhooks::WebhookTarget>>,
) -> (StatusCode, Json<Value>) {
    if let Some(t) = &target
        && url::Url::parse(&t.target_url).is_err()
    {
        return bad("target_url must be an absolute URL");
    }
    sim.set_webhook_target(target);
    (StatusCode::OK, Json(json!({ "ok": true })))
}

async fn webhook_log(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let state = sim.hubspot();
    Json(json!({
        "target": state.webhooks.target,
        "pending": state.webhooks.pending.len(),
        "attempts": state.webhooks.attempts,
    }))
}

async fn set_notifications(
    State(sim): State<Arc<Sim>>,
    Json(subscription): Json<Option<crate::salesforce::notifications::Subscription>>,
) -> (StatusCode, Json<Value>) {
    if let Some(s) = &subscription
        && url::Url::parse(&s.url).is_err()
    {
        return bad("url must be an absolute URL");
    }
    sim.salesforce().subscribe(subscription);
    (StatusCode::OK, Json(json!({ "ok": true })))
}

async fn notification_log(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let state = sim.salesforce();
    // The subscriber's secret is not shown back.
    let subscription = state.notifications.subscription.clone().map(|mut s| {
        s.secret = s.secret.map(|_| "(set)".to_owned());
        s
    });
    Json(json!({
        "subscription": subscription,
        "attempts": state.notifications.attempts,
    }))
}
