//! Outbound webhooks: telling the platform what happened without it polling. An [`Event`] is
//! fanned out to the workspace's endpoints whose [`Subscription`] matches, as stored deliveries
//! (they survive a restart); the delivery worker ([`deliver`]) posts each one signed
//! ([`signature`]) and retries with backoff until it succeeds or its day runs out; [`endpoints`]
//! registers endpoints and reads and replays the delivery log.

mod deliver;
mod endpoints;
mod error;
pub mod event;
mod options;
pub mod signature;
pub mod subscription;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use endpoints::{CreatedEndpoint, Endpoint, EndpointInput, EndpointPatch, RotatedSecret};
pub use error::NotifyError;
pub use event::{Event, EventType};
pub use options::{NotifyFileSettings, NotifyOptions};
pub use subscription::{EventFilter, Subscription};

use crate::domain::{DeliveryId, EventId, WorkspaceId};
use crate::plugins::egress::EgressPolicy;
use crate::store::{NewDelivery, Store, StoredEndpoint};
use crate::vault::Vault;

/// Emits events and delivers them. One per process; cheap to share behind an `Arc`.
pub struct Notifier {
    store: Store,
    vault: Arc<Vault>,
    options: NotifyOptions,
    /// Where endpoints may be (scheme and addresses), enforced at registration and again inside
    /// the HTTP client's resolver at delivery.
    policy: Arc<EgressPolicy>,
    client: reqwest::Client,
    /// Rung when deliveries are stored, so the worker sends them at once.
    wake: tokio::sync::Notify,
    /// Names this process in delivery claims.
    owner: String,
    /// Counts delivery attempts for operators.
    metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("owner", &self.owner).finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier over the store, sealing endpoint secrets with `vault`.
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        options: NotifyOptions,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Self, String> {
        let policy = Arc::new(EgressPolicy::any_host(options.allow_private_addresses, options.allow_http));
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(crate::plugins::egress::PolicyResolver::new(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.attempt_timeout)
            .user_agent(concat!("crmhost-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Ok(Self { store, vault, options, policy, client, wake: tokio::sync::Notify::new(), owner, metrics })
    }

    /// The operator's settings.
    pub fn options(&self) -> &NotifyOptions {
        &self.options
    }

    /// Stores a delivery of each event for every enabled endpoint of its workspace that
    /// subscribes to it, and wakes the worker. Never fails the caller: what happened already
    /// happened, so a database failure here is logged and the events are lost.
    pub async fn emit(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut by_workspace: BTreeMap<WorkspaceId, Vec<Event>> = BTreeMap::new();
        for event in events {
            by_workspace.entry(event.workspace.clone()).or_default().push(event);
        }
        for (workspace, events) in by_workspace {
            if let Err(err) = self.fan_out(&workspace, &events).await {
                tracing::error!(workspace = %workspace, events = events.len(), error = %err,
                    "could not store outbound webhook deliveries; these events are not delivered");
            }
        }
    }

    async fn fan_out(&self, workspace: &WorkspaceId, events: &[Event]) -> Result<(), crate::store::StoreError> {
        let endpoints: Vec<(StoredEndpoint, Subscription)> = self
            .store
            .list_endpoints(workspace)
            .await?
            .into_iter()
            .filter(|e| e.enabled)
            .filter_map(|e| match endpoints::subscription_of(&e) {
                Ok(sub) => Some((e, sub)),
                Err(why) => {
                    tracing::warn!(endpoint = %e.id, error = %why, "skipping an endpoint whose stored subscription is unreadable");
                    None
                }
            })
            .collect();
        if endpoints.is_empty() {
            return Ok(());
        }
        let mut deliveries = Vec::new();
        for event in events {
            let body = event.body();
            for (endpoint, sub) in &endpoints {
                if sub.matches(event) {
                    deliveries.push(self.new_delivery(endpoint, (&event.id, event.kind.as_str()), body.clone(), None));
                }
            }
        }
        if deliveries.is_empty() {
            return Ok(());
        }
        self.store.insert_deliveries(&deliveries).await?;
        tracing::debug!(workspace = %workspace, deliveries = deliveries.len(), "outbound webhook deliveries queued");
        self.wake.notify_one();
        Ok(())
    }

    /// A delivery of an event (id and type) to `endpoint`, due now, given up a day (by default)
    /// from now.
    fn new_delivery(
        &self,
        endpoint: &StoredEndpoint,
        (event_id, event_type): (&EventId, &str),
        payload: String,
        redelivery_of: Option<DeliveryId>,
    ) -> NewDelivery {
        let now = chrono::Utc::now();
        let give_up = chrono::Duration::from_std(self.options.give_up_after).unwrap_or(chrono::Duration::days(1));
        NewDelivery {
            id: DeliveryId::generate(),
            endpoint_id: endpoint.id.clone(),
            workspace: endpoint.workspace.clone(),
            event_id: event_id.clone(),
            event_type: event_type.to_owned(),
            payload,
            created_at: now,
            give_up_at: now + give_up,
            redelivery_of,
        }
    }
}
