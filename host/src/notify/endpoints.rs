//! Managing a workspace's endpoints (admin+): register one (its secret shown once), change,
//! disable, remove, rotate its secret, send it a test `ping`, and read and replay its delivery log.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};

use super::event::{Event, EventType};
use super::subscription::{EventFilter, Subscription};
use super::{Notifier, NotifyError, signature};
use crate::domain::{DeliveryId, EndpointId, WorkspaceId};
use crate::store::{
    AuditAction, AuditTarget, DeliveryFilter, EndpointChanges, NewAuditEntry, StoreResultExt as _, StoredDelivery,
    StoredEndpoint,
};
use crate::vault::Purpose;

/// Longest endpoint URL.
const MAX_URL: usize = 2048;
/// Longest description.
const MAX_DESCRIPTION: usize = 500;

/// An endpoint to register.
#[derive(Debug, Clone)]
pub struct EndpointInput {
    /// Where to post (https unless the operator allows http).
    pub url: String,
    /// A note for admins.
    pub description: Option<String>,
    /// The event types it receives.
    pub events: Vec<EventType>,
    /// A condition narrowing them.
    pub filter: Option<EventFilter>,
    /// Whether deliveries start now (default yes).
    pub enabled: Option<bool>,
}

/// Changes to an endpoint; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    /// A new URL.
    pub url: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// New event types.
    pub events: Option<Vec<EventType>>,
    /// A new filter; `Some(None)` removes it.
    pub filter: Option<Option<EventFilter>>,
    /// Enable or disable (a disabled endpoint keeps its pending deliveries for when it is enabled).
    pub enabled: Option<bool>,
}

/// An endpoint as shown (never its secret).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its id.
    pub id: EndpointId,
    /// Where deliveries go.
    pub url: String,
    /// The admin's note.
    pub description: String,
    /// What it receives.
    pub subscription: Subscription,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Who registered it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Until when the secret before the last rotation still signs.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
}

/// A registered endpoint and its secret, shown this once.
#[derive(Debug)]
pub struct CreatedEndpoint {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its signing secret.
    pub secret: SecretString,
}

/// A new secret, shown this once.
#[derive(Debug)]
pub struct RotatedSecret {
    /// The new secret.
    pub secret: SecretString,
    /// Until when the old one still signs (deliveries carry both signatures); `None`: it stopped now.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// The subscription a stored endpoint holds.
pub(super) fn subscription_of(e: &StoredEndpoint) -> Result<Subscription, String> {
    let events: Vec<EventType> = serde_json::from_str(&e.events).map_err(|err| format!("events: {err}"))?;
    let filter: Option<EventFilter> = match &e.filter {
        Some(text) => Some(serde_json::from_str(text).map_err(|err| format!("filter: {err}"))?),
        None => None,
    };
    Subscription::new(events, filter)
}

fn shown(e: StoredEndpoint) -> Result<Endpoint, NotifyError> {
    let subscription = subscription_of(&e)
        .map_err(|why| NotifyError::Store(crate::store::StoreError::Corrupt(format!("endpoint {}: {why}", e.id))))?;
    let overlap = e.previous_secret_until.filter(|until| *until > Utc::now() && e.previous_secret_sealed.is_some());
    Ok(Endpoint {
        id: e.id,
        url: e.url,
        description: e.description,
        subscription,
        enabled: e.enabled,
        created_at: e.created_at,
        created_by: e.created_by,
        updated_at: e.updated_at,
        previous_secret_valid_until: overlap,
    })
}

fn description(text: Option<String>) -> Result<String, NotifyError> {
    let text = text.unwrap_or_default();
    if text.chars().count() > MAX_DESCRIPTION || text.chars().any(char::is_control) {
        return Err(NotifyError::Invalid(format!(
            "`description`: at most {MAX_DESCRIPTION} characters, no control characters"
        )));
    }
    Ok(text.trim().to_owned())
}

fn events_json(sub: &Subscription) -> String {
    serde_json::to_string(sub.events()).unwrap_or_else(|_| "[]".to_owned())
}

fn filter_json(sub: &Subscription) -> Option<String> {
    sub.filter().and_then(|f| serde_json::to_string(f).ok())
}

fn endpoint_not_found(id: &EndpointId) -> impl FnOnce() -> NotifyError + '_ {
    move || NotifyError::NotFound(format!("this workspace has no webhook endpoint `{id}`"))
}

impl Notifier {
    /// Checks an endpoint URL: its length, scheme, no credentials, and not an address the
    /// operator keeps endpoints off (IP literals and `localhost` here; names again at delivery).
    fn checked_url(&self, text: &str) -> Result<String, NotifyError> {
        let invalid = |why: String| NotifyError::Invalid(format!("`url`: {why}"));
        if text.len() > MAX_URL {
            return Err(invalid(format!("at most {MAX_URL} characters")));
        }
        let mut url = url::Url::parse(text.trim()).map_err(|e| invalid(format!("not a URL ({e})")))?;
        url.set_fragment(None);
        self.policy.check_url(&url).map_err(invalid)?;
        let local_name = url.host_str().is_some_and(|h| {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            h == "localhost" || h.ends_with(".localhost")
        });
        if local_name && !self.options.allow_private_addresses {
            return Err(invalid("`localhost` is not reachable for webhooks on this server".to_owned()));
        }
        Ok(url.to_string())
    }

    fn seal_secret(&self, workspace: &WorkspaceId, id: &EndpointId, secret: &SecretString) -> String {
        self.vault
            .seal_for(Purpose::EndpointSecret, workspace, id.as_str(), secret.expose_secret().as_bytes())
            .to_text()
    }

    async fn audit(
        &self,
        workspace: &WorkspaceId,
        user: &str,
        action: AuditAction,
        id: &EndpointId,
        details: serde_json::Value,
    ) {
        let target = AuditTarget::WebhookEndpoint(id.clone());
        self.store.audit(NewAuditEntry::in_workspace(workspace, user, action, target, details)).await;
    }

    /// Registers an endpoint; its secret is in the answer and nowhere else in clear.
    #[tracing::instrument(name = "notify.create_endpoint", skip_all, fields(workspace = %workspace))]
    pub async fn create_endpoint(
        &self,
        workspace: &WorkspaceId,
        input: EndpointInput,
        user: &str,
    ) -> Result<CreatedEndpoint, NotifyError> {
        let url = self.checked_url(&input.url)?;
        let subscription = Subscription::new(input.events, input.filter).map_err(NotifyError::Invalid)?;
        let description = description(input.description)?;
        let max = self.options.max_endpoints_per_workspace;
        if self.store.count_endpoints(workspace).await? >= max {
            return Err(NotifyError::Refused(format!(
                "this workspace already has {max} webhook endpoints, the most this server allows; remove one first"
            )));
        }
        let (id, secret, now) = (EndpointId::generate(), signature::generate_secret(), Utc::now());
        let stored = StoredEndpoint {
            secret_sealed: self.seal_secret(workspace, &id, &secret),
            id: id.clone(),
            workspace: workspace.clone(),
            url,
            description,
            events: events_json(&subscription),
            filter: filter_json(&subscription),
            enabled: input.enabled.unwrap_or(true),
            previous_secret_sealed: None,
            previous_secret_until: None,
            created_at: now,
            created_by: user.to_owned(),
            updated_at: now,
        };
        self.store.insert_endpoint(&stored).await?;
        let details = serde_json::json!({ "url": stored.url, "events": subscription.events() });
        self.audit(workspace, user, AuditAction::WebhookEndpointCreated, &id, details).await;
        Ok(CreatedEndpoint { endpoint: shown(stored)?, secret })
    }

    /// The workspace's endpoints, oldest first.
    pub async fn endpoints(&self, workspace: &WorkspaceId) -> Result<Vec<Endpoint>, NotifyError> {
        self.store.list_endpoints(workspace).await?.into_iter().map(shown).collect()
    }

    /// One endpoint.
    pub async fn endpoint(&self, workspace: &WorkspaceId, id: &EndpointId) -> Result<Endpoint, NotifyError> {
        shown(self.store.get_endpoint(workspace, id).await.or_not_found(endpoint_not_found(id))?)
    }

    /// Changes an endpoint; the subscription is checked as a whole after the change.
    pub async fn update_endpoint(
        &self,
        workspace: &WorkspaceId,
        id: &EndpointId,
        patch: EndpointPatch,
        user: &str,
    ) -> Result<Endpoint, NotifyError> {
        let current = self.endpoint(workspace, id).await?;
        let url = patch.url.as_deref().map(|u| self.checked_url(u)).transpose()?;
        let description = patch.description.map(|d| description(Some(d))).transpose()?;
        let subscription_changed = patch.events.is_some() || patch.filter.is_some();
        let events = patch.events.unwrap_or_else(|| current.subscription.events().to_vec());
        let filter = patch.filter.unwrap_or_else(|| current.subscription.filter().cloned());
        let subscription = Subscription::new(events, filter).map_err(NotifyError::Invalid)?;
        let changes = EndpointChanges {
            url,
            description,
            events: subscription_changed.then(|| events_json(&subscription)),
            filter: subscription_changed.then(|| filter_json(&subscription)),
            enabled: patch.enabled,
        };
        self.store.update_endpoint(workspace, id, &changes).await.or_not_found(endpoint_not_found(id))?;
        let details = serde_json::json!({
            "url": changes.url, "events": changes.events.is_some().then(|| subscription.events()), "enabled": changes.enabled,
        });
        self.audit(workspace, user, AuditAction::WebhookEndpointUpdated, id, details).await;
        self.wake.notify_one();
        self.endpoint(workspace, id).await
    }

    /// Removes an endpoint and its delivery log.
    pub async fn delete_endpoint(
        &self,
        workspace: &WorkspaceId,
        id: &EndpointId,
        user: &str,
    ) -> Result<(), NotifyError> {
        if !self.store.delete_endpoint(workspace, id).await? {
            return Err(endpoint_not_found(id)());
        }
        self.audit(workspace, user, AuditAction::WebhookEndpointDeleted, id, serde_json::json!({})).await;
        Ok(())
    }

    /// Makes a new secret. The old one keeps signing (deliveries carry both signatures) for
    /// `overlap`, the server's default (a day) when `None`; zero stops it at once.
    pub async fn rotate_endpoint_secret(
        &self,
        workspace: &WorkspaceId,
        id: &EndpointId,
        overlap: Option<std::time::Duration>,
        user: &str,
    ) -> Result<RotatedSecret, NotifyError> {
        let stored = self.store.get_endpoint(workspace, id).await.or_not_found(endpoint_not_found(id))?;
        let overlap = overlap.unwrap_or(self.options.rotation_overlap);
        if overlap > std::time::Duration::from_secs(7 * 24 * 3600) {
            return Err(NotifyError::Invalid("`previous_secret_valid_for_secs`: at most 604800 (a week)".to_owned()));
        }
        let previous_until =
            (!overlap.is_zero()).then(|| Utc::now() + chrono::Duration::from_std(overlap).unwrap_or_default());
        let secret = signature::generate_secret();
        let sealed = self.seal_secret(workspace, id, &secret);
        let previous = previous_until.map(|_| stored.secret_sealed.as_str());
        self.store.rotate_endpoint_secret(workspace, id, &sealed, previous, previous_until).await?;
        let details = serde_json::json!({ "previous_valid_until": previous_until });
        self.audit(workspace, user, AuditAction::WebhookEndpointSecretRotated, id, details).await;
        Ok(RotatedSecret { secret, previous_valid_until: previous_until })
    }

    /// Queues a `ping` to one enabled endpoint (whatever it subscribes to); the delivery to watch.
    pub async fn ping(&self, workspace: &WorkspaceId, id: &EndpointId) -> Result<StoredDelivery, NotifyError> {
        let endpoint = self.store.get_endpoint(workspace, id).await.or_not_found(endpoint_not_found(id))?;
        if !endpoint.enabled {
            return Err(NotifyError::Refused("the endpoint is disabled: enable it to send it anything".to_owned()));
        }
        let event = Event::ping(workspace, id.as_str());
        let delivery = self.new_delivery(&endpoint, (&event.id, event.kind.as_str()), event.body(), None);
        self.queue_one(workspace, id, delivery).await
    }

    /// An endpoint's delivery log, newest first.
    pub async fn deliveries(
        &self,
        workspace: &WorkspaceId,
        id: &EndpointId,
        filter: &DeliveryFilter,
    ) -> Result<Vec<StoredDelivery>, NotifyError> {
        self.endpoint(workspace, id).await?;
        Ok(self.store.list_deliveries(workspace, id, filter).await?)
    }

    /// One delivery, with the body sent.
    pub async fn delivery(
        &self,
        workspace: &WorkspaceId,
        id: &EndpointId,
        delivery: &DeliveryId,
    ) -> Result<StoredDelivery, NotifyError> {
        self.store
            .get_delivery(workspace, id, delivery)
            .await
            .or_not_found(|| NotifyError::NotFound(format!("endpoint `{id}` has no delivery `{delivery}`")))
    }

    /// Sends a delivery's event again, as a new delivery (same event id and body, new signature),
    /// with a fresh day of retries. The endpoint must be enabled.
    pub async fn redeliver(
        &self,
        workspace: &WorkspaceId,
        id: &EndpointId,
        delivery: &DeliveryId,
        user: &str,
    ) -> Result<StoredDelivery, NotifyError> {
        let original = self.delivery(workspace, id, delivery).await?;
        let endpoint = self.store.get_endpoint(workspace, id).await.or_not_found(endpoint_not_found(id))?;
        if !endpoint.enabled {
            return Err(NotifyError::Refused("the endpoint is disabled: enable it to redeliver".to_owned()));
        }
        let again = self.new_delivery(
            &endpoint,
            (&original.event_id, original.event_type.as_str()),
            original.payload.clone(),
            Some(original.id.clone()),
        );
        let details = serde_json::json!({ "delivery_id": original.id, "event_id": original.event_id, "new_delivery_id": again.id });
        self.audit(workspace, user, AuditAction::WebhookRedelivered, id, details).await;
        self.queue_one(workspace, id, again).await
    }

    async fn queue_one(
        &self,
        workspace: &WorkspaceId,
        id: &EndpointId,
        delivery: crate::store::NewDelivery,
    ) -> Result<StoredDelivery, NotifyError> {
        let delivery_id = delivery.id.clone();
        self.store.insert_deliveries(std::slice::from_ref(&delivery)).await?;
        self.wake.notify_one();
        self.delivery(workspace, id, &delivery_id).await
    }
}
