//! Real-time sync from CRM webhooks: the plugin verifies and parses a delivery into change
//! events; events already seen (by the CRM's event id) are dropped; the rest are routed by CRM
//! account to the integrations set to `realtime` and queued per (workspace, integration, entity).
//! A drain task turns the queue into incremental pulls of exactly those records, coalescing a
//! burst of deliveries into one run. Webhooks are hints: a lost one is caught by the scheduled
//! incremental pull, which stays the source of truth.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::coalesce::Coalescing;
use super::frequency::Frequency;
use super::settings::SyncSettings;
use super::{MAX_BATCH, Operation, SyncEngine, SyncError, Trigger};
use crate::domain::{CrmId, EntityName, PluginSlug, WorkspaceId};
use crate::plugins::CallContext;
use crate::plugins::bindings::AdapterError;
use crate::plugins::bindings::adapter::WebhookRequest;
use crate::store::Integration;

type QueueKey = (WorkspaceId, PluginSlug, EntityName);

/// Changed CRM ids waiting for their pull.
pub(super) type WebhookQueue = Coalescing<HashMap<QueueKey, BTreeSet<CrmId>>>;

/// Starts the pulls of the ids a burst of deliveries named, at most a batch a run.
pub(super) async fn start_pulls(engine: Arc<SyncEngine>, taken: HashMap<QueueKey, BTreeSet<CrmId>>) {
    for ((workspace, slug, entity), ids) in taken {
        let ids: Vec<CrmId> = ids.into_iter().collect();
        for chunk in ids.chunks(MAX_BATCH) {
            let operation =
                Operation::Pull { entity: entity.clone(), since: None, limit: None, crm_ids: chunk.to_vec() };
            if let Err(err) = engine.start(&workspace, &slug, operation, Trigger::Webhook, "webhook", None).await {
                // The scheduled pull catches it up.
                tracing::warn!(workspace = %workspace, slug = %slug, error = %err, "webhook pull not started");
            }
        }
    }
}

/// What a delivery did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct WebhookReport {
    /// Change events in the delivery.
    pub events: usize,
    /// Events seen before (redeliveries), dropped.
    pub duplicates: usize,
    /// Record changes queued for a pull.
    pub queued: usize,
    /// Events no integration takes in real time (unknown account or entity, not `realtime`,
    /// paused, push-only).
    pub ignored: usize,
}

impl SyncEngine {
    /// Verifies a webhook delivery with the plugin and queues pulls of the records it names.
    /// A bad signature is `Unauthorized`; nothing is queued then. `verified_for`: the workspace
    /// whose secret the host already checked (deliveries a CRM cannot sign); its events go to that
    /// workspace's integration only, whatever account they name.
    #[tracing::instrument(name = "sync.webhook", skip_all, fields(slug = %slug))]
    pub async fn accept_webhook(
        &self,
        slug: &PluginSlug,
        request: WebhookRequest,
        verified_for: Option<&WorkspaceId>,
    ) -> Result<WebhookReport, SyncError> {
        let plugin = self.plugin(slug).map_err(|_| SyncError::NotFound(format!("no plugin `{slug}`")))?;
        // Unsigned deliveries are taken only when the host authenticated them per workspace.
        if verified_for.is_none() && !plugin.description().capabilities.webhooks {
            return Err(SyncError::NotFound(format!("`{slug}` does not take webhooks")));
        }
        let events = match plugin.parse_webhook(CallContext::detached(), &request).await {
            Ok(Ok(events)) => events,
            Ok(Err(AdapterError::Unauthorized(info))) => return Err(SyncError::Unauthorized(info.message)),
            Ok(Err(err)) => {
                let (kind, message) = crate::plugins::adapter_error_summary(&err);
                return Err(SyncError::BadInput(format!("the webhook was refused ({kind}): {message}")));
            }
            Err(err) => {
                return Err(SyncError::Crm { kind: "plugin_failed", message: format!("parse-webhook failed: {err}") });
            }
        };
        let mut report = WebhookReport { events: events.len(), ..WebhookReport::default() };
        let ids: Vec<String> = events.iter().filter_map(|e| e.event_id.clone()).collect();
        let fresh: BTreeSet<String> = self.store.first_seen_events(slug, &ids).await?.into_iter().collect();
        let mut by_account: HashMap<String, Option<Vec<(WorkspaceId, SyncSettings)>>> = HashMap::new();
        for event in events {
            if event.event_id.as_ref().is_some_and(|id| !fresh.contains(id)) {
                report.duplicates += 1;
                continue;
            }
            if !by_account.contains_key(&event.account_id) {
                let takers = match verified_for {
                    Some(workspace) => self.realtime_integration_of(slug, workspace).await?,
                    None => self.realtime_integrations(slug, &event.account_id).await?,
                };
                by_account.insert(event.account_id.clone(), Some(takers));
            }
            let takers = by_account.get(&event.account_id).and_then(Option::as_ref);
            let (Ok(entity), Ok(crm_id)) = (EntityName::parse(&event.entity), CrmId::parse(&event.crm_id)) else {
                report.ignored += 1;
                continue;
            };
            let mut taken = false;
            for (workspace, settings) in takers.into_iter().flatten() {
                if settings.entities.is_empty() || settings.entities.contains(&entity) {
                    let key = (workspace.clone(), slug.clone(), entity.clone());
                    self.webhook_queue.add(|pending| {
                        pending.entry(key).or_default().insert(crm_id.clone());
                    });
                    taken = true;
                }
            }
            if taken {
                report.queued += 1;
            } else {
                report.ignored += 1;
            }
        }
        tracing::info!(
            events = report.events,
            queued = report.queued,
            duplicates = report.duplicates,
            ignored = report.ignored,
            "webhook delivery accepted"
        );
        Ok(report)
    }

    /// The workspaces connected to a CRM account whose integration syncs in real time and pulls.
    async fn realtime_integrations(
        &self,
        slug: &PluginSlug,
        account: &str,
    ) -> Result<Vec<(WorkspaceId, SyncSettings)>, SyncError> {
        let integrations = self.store.integrations_for_account(slug, account).await?;
        Ok(integrations.into_iter().filter_map(live_taker).collect())
    }

    /// The workspace's integration, if it syncs in real time and pulls.
    async fn realtime_integration_of(
        &self,
        slug: &PluginSlug,
        workspace: &WorkspaceId,
    ) -> Result<Vec<(WorkspaceId, SyncSettings)>, SyncError> {
        let integration = match self.store.get_integration(workspace, slug).await {
            Ok(integration) => integration,
            Err(crate::store::StoreError::NotFound) => return Ok(Vec::new()),
            Err(other) => return Err(other.into()),
        };
        Ok(live_taker(integration).into_iter().collect())
    }
}

/// An integration that takes webhook events: connected (not paused), real time, pulling.
fn live_taker(integration: Integration) -> Option<(WorkspaceId, SyncSettings)> {
    if !integration.status.runs_on_schedule() {
        return None;
    }
    let settings = SyncSettings::from_stored(&integration.settings);
    let live = settings.frequency == Frequency::Realtime && settings.direction.pulls();
    let workspace = WorkspaceId::parse(&integration.workspace_id).ok()?;
    live.then_some((workspace, settings))
}
