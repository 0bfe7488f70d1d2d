//! Real-time pushes of workspace changes. A record written or deleted through the API queues its
//! entity for every integration of the workspace that syncs in real time and pushes that entity;
//! a drain task waits for the burst to end (200 ms), then starts one push-only sync per queued
//! (integration, entity), which sends every change waiting, deletes too with `propagate_deletes`.
//! Runs of one integration already wait their turn, so these never overlap with each other or
//! with scheduled runs, and the pacer keeps them within the CRM's limits. A change made while a
//! run is going is queued again and picked up by the next.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::coalesce::Coalescing;
use super::frequency::Frequency;
use super::settings::SyncSettings;
use super::{Operation, SyncEngine, SyncError, Trigger};
use crate::domain::{EntityName, PluginSlug, SyncDirection, WorkspaceId};

/// Who the history names as having started these runs.
pub const STARTED_BY: &str = "workspace-change";

type QueueKey = (WorkspaceId, PluginSlug, EntityName);

/// Entities with workspace changes waiting for their push.
pub(super) type ChangeQueue = Coalescing<BTreeSet<QueueKey>>;

/// Starts a push-only sync for each entity a burst of changes touched.
pub(super) async fn start_pushes(engine: Arc<SyncEngine>, taken: BTreeSet<QueueKey>) {
    for (workspace, slug, entity) in taken {
        let operation = Operation::Sync { entities: vec![entity], direction: SyncDirection::Push };
        if let Err(err) = engine.start(&workspace, &slug, operation, Trigger::Change, STARTED_BY, None).await {
            // The next scheduled run pushes it.
            tracing::warn!(workspace = %workspace, slug = %slug, error = %err, "real-time push not started");
        }
    }
}

impl SyncEngine {
    /// Notes that workspace records of `entity` changed through the API: each integration of the
    /// workspace that syncs in real time and pushes the entity gets a push run shortly.
    pub async fn workspace_records_changed(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
    ) -> Result<(), SyncError> {
        for integration in self.store.list_integrations(workspace).await? {
            if !integration.status.runs_on_schedule() {
                continue;
            }
            let settings = SyncSettings::from_stored(&integration.settings);
            let takes_entity = settings.entities.is_empty() || settings.entities.contains(entity);
            if settings.frequency != Frequency::Realtime || !settings.direction.pushes() || !takes_entity {
                continue;
            }
            let Ok(slug) = PluginSlug::parse(&integration.integration_slug) else { continue };
            let Ok(plugin) = self.plugin(&slug) else { continue };
            if plugin.description().entities.iter().any(|e| e.name == entity.as_str()) {
                self.change_queue.add(|pending| {
                    pending.insert((workspace.clone(), slug, entity.clone()));
                });
            }
        }
        Ok(())
    }
}
