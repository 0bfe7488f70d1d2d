//! Salesforce change notifications, as a customer's org would send them to crmhost: an Apex
//! trigger's callout (`apex`: JSON `{"organizationId", "records": [{"object", "id", "change"}]}`
//! with an `X-Webhook-Secret` header) or a workflow's Outbound Message (`outbound_message`: the
//! SOAP `notifications` envelope, at most 100 per message, re-sent until the subscriber answers
//! the SOAP acknowledgement `<Ack>true</Ack>`; creates and updates only, as workflow rules fire).
//! Set with `POST /__sim/salesforce/notifications` or [`super::SalesforceState::subscribe`]; every
//! write to a watched object — through the API or a test's direct edit — is journaled by the
//! object's store and delivered.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ORG_ID;
use crate::Sim;

/// Records per Outbound Message, as Salesforce batches them.
pub const OUTBOUND_BATCH: usize = 100;

/// How the org tells the subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationFormat {
    /// An Apex trigger's HTTP callout with JSON and a secret header.
    #[default]
    Apex,
    /// A workflow Outbound Message (SOAP); the secret rides in the URL.
    OutboundMessage,
}

/// A subscriber: which objects, where, how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscription {
    /// sObject API names (`["Contact", "Opportunity"]`).
    pub objects: Vec<String>,
    /// Where to post.
    pub url: String,
    /// The shape of the delivery.
    #[serde(default)]
    pub format: NotificationFormat,
    /// For `apex`: the `X-Webhook-Secret` header's value.
    #[serde(default)]
    pub secret: Option<String>,
    /// Attempts per delivery before it is dropped.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt.
    #[serde(default = "default_retry_ms")]
    pub retry_base_ms: u64,
}

fn default_attempts() -> u32 {
    5
}
fn default_retry_ms() -> u64 {
    500
}

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Created.
    Created,
    /// Updated.
    Updated,
    /// Moved to the recycle bin.
    Deleted,
}

/// One delivery attempt, kept for assertions.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationAttempt {
    /// Records in the delivery.
    pub records: usize,
    /// 0 for the first try.
    pub attempt: u32,
    /// The subscriber's status, or `None` when it could not be reached.
    pub status: Option<u16>,
    /// Whether it was acknowledged (2xx, and for Outbound Messages the SOAP `Ack`).
    pub acknowledged: bool,
}

/// The subscription and the delivery log (the changes themselves wait in each watched object's
/// journal, so writes from anywhere are seen).
#[derive(Debug, Default)]
pub struct NotificationState {
    /// The subscriber, when set.
    pub subscription: Option<Subscription>,
    /// Every attempt so far.
    pub attempts: Vec<NotificationAttempt>,
    next_notification: u64,
}

impl super::SalesforceState {
    /// Sets (or with `None` removes) the subscriber; its objects start journaling their changes.
    pub fn subscribe(&mut self, subscription: Option<Subscription>) {
        for store in &mut self.objects {
            let watched = subscription
                .as_ref()
                .is_some_and(|s| s.objects.iter().any(|o| o.eq_ignore_ascii_case(store.schema.name)));
            store.journal = watched.then(Vec::new);
        }
        self.notifications.subscription = subscription;
    }

    /// Takes up to `max` journaled changes of the watched objects.
    fn take_changes(&mut self, max: usize) -> Vec<(String, String, Change)> {
        let mut taken = Vec::new();
        for store in &mut self.objects {
            let Some(journal) = store.journal.as_mut() else { continue };
            let n = journal.len().min(max - taken.len());
            taken.extend(journal.drain(..n).map(|(id, change)| (store.schema.name.to_owned(), id, change)));
            if taken.len() == max {
                break;
            }
        }
        taken
    }
}

/// Delivers pending changes until the task is aborted.
pub(crate) fn spawn_delivery(sim: Arc<Sim>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (subscription, batch, first_id) = {
                let mut state = sim.salesforce();
                let Some(subscription) = state.notifications.subscription.clone() else { continue };
                let mut batch = state.take_changes(OUTBOUND_BATCH);
                if subscription.format == NotificationFormat::OutboundMessage {
                    // Workflow rules fire on creates and updates only.
                    batch.retain(|(_, _, c)| *c != Change::Deleted);
                }
                if batch.is_empty() {
                    continue;
                }
                let first_id = state.notifications.next_notification + 1;
                state.notifications.next_notification += batch.len() as u64;
                (subscription, batch, first_id)
            };
            deliver(&sim, &client, &subscription, &batch, first_id).await;
        }
    })
}

async fn deliver(
    sim: &Sim,
    client: &reqwest::Client,
    subscription: &Subscription,
    batch: &[(String, String, Change)],
    first_id: u64,
) {
    let (content_type, body) = match subscription.format {
        NotificationFormat::Apex => ("application/json", apex_body(batch)),
        NotificationFormat::OutboundMessage => ("text/xml; charset=utf-8", outbound_message(batch, first_id)),
    };
    for attempt in 0..subscription.max_attempts.max(1) {
        let mut request = client.post(&subscription.url).header("content-type", content_type).body(body.clone());
        match subscription.format {
            NotificationFormat::Apex => {
                if let Some(secret) = &subscription.secret {
                    request = request.header("x-webhook-secret", secret);
                }
            }
            NotificationFormat::OutboundMessage => {
                request =
                    request.header("soapaction", "\"\"").header("user-agent", "Salesforce - Outbound Notification");
            }
        }
        let response = request.send().await;
        let status = response.as_ref().ok().map(|r| r.status().as_u16());
        let text = match response {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        // Salesforce keeps resending an Outbound Message until the body acknowledges it.
        let acknowledged = ok
            && (subscription.format == NotificationFormat::Apex
                || text.contains("<Ack>true</Ack>") && text.contains("notificationsResponse"));
        sim.salesforce().notifications.attempts.push(NotificationAttempt {
            records: batch.len(),
            attempt,
            status,
            acknowledged,
        });
        if acknowledged {
            return;
        }
        let delay = subscription.retry_base_ms.saturating_mul(1 << attempt.min(10));
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    tracing::warn!(records = batch.len(), "Salesforce notification dropped after its last attempt");
}

fn apex_body(batch: &[(String, String, Change)]) -> String {
    let records: Vec<_> =
        batch.iter().map(|(object, id, change)| json!({"object": object, "id": id, "change": change})).collect();
    json!({"organizationId": ORG_ID, "records": records}).to_string()
}

/// The SOAP envelope of an Outbound Message (Salesforce's own layout and namespaces).
fn outbound_message(batch: &[(String, String, Change)], first_id: u64) -> String {
    let notifications: String = batch
        .iter()
        .enumerate()
        .map(|(i, (object, id, _))| {
            let notification_id = crate::ids::salesforce_id("04l", first_id + i as u64);
            format!(
                "<Notification><Id>{notification_id}</Id><sObject xsi:type=\"sf:{object}\" \
                 xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"><sf:Id>{id}</sf:Id></sObject></Notification>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <soapenv:Body><notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\
         <OrganizationId>{ORG_ID}</OrganizationId><ActionId>04k5g000000SIMAAA</ActionId>\
         <SessionId xsi:nil=\"true\"/>\
         <EnterpriseUrl>https://sim.my.salesforce.com/services/Soap/c/62.0/00D5g000004SIMA</EnterpriseUrl>\
         <PartnerUrl>https://sim.my.salesforce.com/services/Soap/u/62.0/00D5g000004SIMA</PartnerUrl>\
         {notifications}</notifications></soapenv:Body></soapenv:Envelope>"
    )
}
