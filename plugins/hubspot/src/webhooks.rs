//! `parse-webhook`: verifies `X-HubSpot-Signature-v3` (HMAC-SHA256 over method, URL, body and
//! timestamp, keyed with the app's client secret, which only the host holds), refuses timestamps
//! older than five minutes, and turns the event array into change events.

use base64::Engine as _;
use crmhost_sdk::prelude::*;
use crmhost_sdk::secrets;
use serde::Deserialize;

/// How old a delivery may be.
const MAX_AGE_MS: u64 = 5 * 60 * 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    event_id: Option<serde_json::Value>,
    portal_id: serde_json::Value,
    occurred_at: Option<i64>,
    subscription_type: String,
    object_id: Option<serde_json::Value>,
}

fn header<'a>(request: &'a WebhookRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Verifies and parses one delivery.
pub fn parse_webhook(request: WebhookRequest) -> Result<Vec<ChangeEvent>> {
    let signature = header(&request, "x-hubspot-signature-v3")
        .ok_or_else(|| AdapterError::unauthorized("missing X-HubSpot-Signature-v3"))?;
    let timestamp = header(&request, "x-hubspot-request-timestamp")
        .ok_or_else(|| AdapterError::unauthorized("missing X-HubSpot-Request-Timestamp"))?;
    let sent_ms: u64 =
        timestamp.parse().map_err(|_| AdapterError::unauthorized("X-HubSpot-Request-Timestamp is not a number"))?;
    // Clock skew is bounded both ways: a timestamp far in the future would let a captured
    // delivery be replayed for as long as it stays "recent".
    if request.received_at_ms.saturating_sub(sent_ms) > MAX_AGE_MS {
        return Err(AdapterError::unauthorized("the webhook is older than five minutes"));
    }
    if sent_ms.saturating_sub(request.received_at_ms) > MAX_AGE_MS {
        return Err(AdapterError::unauthorized("the webhook's timestamp is more than five minutes in the future"));
    }
    let mut message = Vec::with_capacity(request.body.len() + request.url.len() + 32);
    message.extend_from_slice(request.method.to_uppercase().as_bytes());
    message.extend_from_slice(request.url.as_bytes());
    message.extend_from_slice(&request.body);
    message.extend_from_slice(timestamp.as_bytes());
    let expected = secrets::hmac_sha256("client_secret", &message)
        .map_err(|e| AdapterError::internal(format!("cannot check the signature: {e}")))?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| AdapterError::unauthorized("the signature is not base64"))?;
    if !secrets::constant_time_eq(&expected, &given) {
        return Err(AdapterError::unauthorized("the webhook signature does not match"));
    }
    let events: Vec<Event> = serde_json::from_slice(&request.body)
        .map_err(|e| AdapterError::invalid(format!("the webhook body is not an event array: {e}")))?;
    Ok(events.into_iter().filter_map(to_change).collect())
}

fn to_change(event: Event) -> Option<ChangeEvent> {
    let (object, action) = event.subscription_type.split_once('.')?;
    let entity = match object {
        "contact" => "contact",
        "company" => "company",
        "deal" => "deal",
        _ => return None,
    };
    let kind = match action {
        "creation" => ChangeKind::Created,
        "deletion" | "privacyDeletion" => ChangeKind::Deleted,
        "restore" => ChangeKind::Restored,
        "merge" => ChangeKind::Merged,
        _ => ChangeKind::Updated,
    };
    let occurred_at = event
        .occurred_at
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    Some(ChangeEvent {
        account_id: text(&event.portal_id),
        entity: entity.to_owned(),
        crm_id: text(event.object_id.as_ref()?),
        kind,
        occurred_at,
        event_id: event.event_id.as_ref().map(text),
    })
}
