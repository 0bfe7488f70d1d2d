//! HubSpot webhook delivery: once given a target URL (`POST /__sim/webhooks` or
//! [`crate::Sim::set_webhook_target`]), every write through the API becomes change events
//! (`*.creation`, `*.propertyChange` per changed property, `*.deletion`), delivered as JSON arrays
//! of up to 100 events, signed with `X-HubSpot-Signature-v3` over method + URL + body + timestamp
//! with the app's client secret (and the v1 signature alongside), retried with backoff on failure.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{APP_ID, HUB_ID};
use crate::Sim;

/// Events per delivery, as HubSpot batches them.
pub const MAX_BATCH: usize = 100;

/// Where and how to deliver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookTarget {
    /// The subscriber's URL.
    pub target_url: String,
    /// The app secret signatures are keyed with (default: the default client's).
    #[serde(default = "default_secret")]
    pub client_secret: String,
    /// Attempts per batch before it is dropped.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt.
    #[serde(default = "default_retry_ms")]
    pub retry_base_ms: u64,
}

fn default_secret() -> String {
    crate::OAuthClient::default_client().secret
}
fn default_attempts() -> u32 {
    10
}
fn default_retry_ms() -> u64 {
    1_000
}

/// One delivery attempt, kept for assertions.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryAttempt {
    /// Events in the batch.
    pub events: usize,
    /// 0 for the first try.
    pub attempt: u32,
    /// The subscriber's status, or `None` when it could not be reached.
    pub status: Option<u16>,
}

/// Pending events and the delivery log.
#[derive(Debug, Default)]
pub struct WebhookState {
    /// The target, when set.
    pub target: Option<WebhookTarget>,
    /// Events not yet delivered.
    pub pending: Vec<Value>,
    /// Every attempt so far.
    pub attempts: Vec<DeliveryAttempt>,
    next_event_id: u64,
}

fn singular(object: &str) -> &'static str {
    match object {
        "contacts" => "contact",
        "companies" => "company",
        _ => "deal",
    }
}

impl WebhookState {
    fn push(&mut self, object: &str, kind: &str, id: u64, at: DateTime<Utc>, extra: Value) {
        // Webhook subscriptions cover contacts, companies and deals here; HubSpot offers none for
        // email engagements.
        if self.target.is_none() || object == "emails" {
            return;
        }
        self.next_event_id += 1;
        let mut event = json!({
            "eventId": self.next_event_id, "subscriptionId": 1000 + self.next_event_id % 7,
            "portalId": HUB_ID, "appId": APP_ID, "occurredAt": at.timestamp_millis(),
            "subscriptionType": format!("{}.{kind}", singular(object)), "attemptNumber": 0,
            "objectId": id, "changeSource": "CRM",
        });
        if let (Value::Object(e), Value::Object(x)) = (&mut event, extra) {
            e.extend(x);
        }
        self.pending.push(event);
    }

    /// Records a creation.
    pub fn created(&mut self, object: &str, id: u64, at: DateTime<Utc>) {
        self.push(object, "creation", id, at, json!({ "changeFlag": "CREATED" }));
    }

    /// Records one property change.
    pub fn property_changed(&mut self, object: &str, id: u64, at: DateTime<Utc>, name: &str, value: &str) {
        self.push(object, "propertyChange", id, at, json!({ "propertyName": name, "propertyValue": value }));
    }

    /// Records a merge of `merged` into `primary`.
    pub fn merged(&mut self, object: &str, primary: u64, merged: u64, at: DateTime<Utc>) {
        let extra = json!({ "primaryObjectId": primary, "mergedObjectIds": [merged], "newObjectId": primary,
                            "numberOfPropertiesMoved": 0 });
        self.push(object, "merge", primary, at, extra);
    }

    /// Records a deletion (archive).
    pub fn deleted(&mut self, object: &str, id: u64, at: DateTime<Utc>) {
        self.push(object, "deletion", id, at, json!({ "changeFlag": "DELETED" }));
    }
}

/// The v3 signature: base64(HMAC-SHA256(secret, method + uri + body + timestamp)).
pub fn signature_v3(secret: &str, method: &str, uri: &str, body: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{method}{uri}{body}{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The v1 signature: hex(sha256(secret + body)).
pub fn signature_v1(secret: &str, body: &str) -> String {
    hex::encode(Sha256::digest(format!("{secret}{body}").as_bytes()))
}

/// Delivers pending events until the task is aborted.
pub(crate) fn spawn_delivery(sim: Arc<Sim>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (target, batch) = {
                let mut state = sim.hubspot();
                let Some(target) = state.webhooks.target.clone() else { continue };
                if state.webhooks.pending.is_empty() {
                    continue;
                }
                let n = state.webhooks.pending.len().min(MAX_BATCH);
                let batch: Vec<Value> = state.webhooks.pending.drain(..n).collect();
                (target, batch)
            };
            deliver(&sim, &client, &target, batch).await;
        }
    })
}

async fn deliver(sim: &Sim, client: &reqwest::Client, target: &WebhookTarget, mut batch: Vec<Value>) {
    for attempt in 0..target.max_attempts.max(1) {
        for event in &mut batch {
            event["attemptNumber"] = json!(attempt);
        }
        let body = Value::Array(batch.clone()).to_string();
        let timestamp = Utc::now().timestamp_millis().to_string();
        let response = client
            .post(&target.target_url)
            .header("content-type", "application/json")
            .header("user-agent", "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon")
            .header("x-hubspot-signature", signature_v1(&target.client_secret, &body))
            .header("x-hubspot-signature-version", "v1")
            .header(
                "x-hubspot-signature-v3",
                signature_v3(&target.client_secret, "POST", &target.target_url, &body, &timestamp),
            )
            .header("x-hubspot-request-timestamp", &timestamp)
            .header("x-hubspot-timeout-millis", "5000")
            .body(body)
            .send()
            .await;
        let status = response.as_ref().ok().map(|r| r.status().as_u16());
        sim.hubspot().webhooks.attempts.push(DeliveryAttempt { events: batch.len(), attempt, status });
        if status.is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
        let delay = target.retry_base_ms.saturating_mul(1 << attempt.min(10));
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    tracing::warn!(events = batch.len(), "webhook batch dropped after its last attempt");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_hubspots_official_test_vectors() {
        let secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
        let body = "{'example_field':'example_value'}";
        assert_eq!(signature_v1(secret, body), "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750");
        assert_eq!(
            signature_v3(secret, "POST", "https://www.example.com/webhook_uri", body, "1693657560000"),
            "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
        );
    }
}
