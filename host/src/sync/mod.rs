//! The sync engine: manual push, pull and two-way sync runs between workspace records and a CRM,
//! recorded in the sync history with per-record outcomes, live progress and retries, plus field
//! mappings, settings and conflict resolution. The API layer calls [`SyncEngine`]; the merge rules
//! live in [`merge`], the field rules in [`mapping`].

mod assist;
mod backoff;
mod bulk;
mod caller;
mod coalesce;
mod configure;
mod error;
mod estimate;
mod files;
pub mod filters;
mod flusher;
pub mod frequency;
mod health;
pub mod input;
mod lease;
mod live_push;
pub mod mapping;
pub mod merge;
mod page_reader;
mod progress;
mod pull;
mod push;
mod references;
mod resolve;
mod rules;
mod run;
pub mod scheduler;
pub mod settings;
pub mod values;
mod webhook_secrets;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use assist::{MappingPreview, MappingSuggestions, PREVIEW_SAMPLE_MAX};
pub use backoff::RetryBackoff;
pub use configure::MappingInput;
pub use error::SyncError;
pub use files::{FileDownload, LATEST_FILE, RecordFile};
pub use health::{FailureCause, FailureReport, SyncHealth};
pub use mapping::{Direction, EntityMappings, FieldMapping, MappingSource, Transform};
pub use merge::ConflictStrategy;
pub use merge::{FieldRule, FieldRules};
pub use progress::{LiveRuns, Progress};
pub use resolve::Resolution;
pub use rules::{LeftPending, RuleChange};
pub use scheduler::SchedulerOptions;
pub use settings::SyncSettings;
pub use webhook_secrets::{IssuedWebhookSecret, WebhookSecretInfo};
pub use webhooks::WebhookReport;

use crate::connections::Connections;
use crate::domain::{CrmId, EntityName, ItemOutcome, PluginSlug, RecordId, RunId, RunStatus, WorkspaceId};
pub use crate::domain::{SyncDirection, Trigger};
use crate::plugins::{LoadedPlugin, PluginDescription};
use crate::store::{AuditAction, AuditTarget, NewAuditEntry, NewRun, Store, StoreError, StoreResultExt, SyncRun};

/// Most records one push call, and one request group, may carry.
pub const MAX_BATCH: usize = 200;

/// What a run does; stored with the run so a retry can do it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum Operation {
    /// Send these workspace records to the CRM (upsert on the match key).
    Push {
        /// The entity.
        entity: EntityName,
        /// At most [`MAX_BATCH`] records.
        record_ids: Vec<RecordId>,
    },
    /// Bring CRM records into the workspace.
    Pull {
        /// The entity.
        entity: EntityName,
        /// Only records the CRM changed at or after this instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        /// At most this many records.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        /// Only these CRM records (retries).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        crm_ids: Vec<CrmId>,
    },
    /// Two-way: pull the CRM's changes, merge, push the workspace's (or one of the two, for an
    /// integration whose direction is push or pull only).
    Sync {
        /// The entities, in order.
        entities: Vec<EntityName>,
        /// Which phases run.
        #[serde(default)]
        direction: SyncDirection,
    },
}

impl Operation {
    fn direction(&self) -> SyncDirection {
        match self {
            Self::Push { .. } => SyncDirection::Push,
            Self::Pull { .. } => SyncDirection::Pull,
            Self::Sync { direction, .. } => *direction,
        }
    }

    /// How many records the operation will handle, when that is known before it runs: the
    /// records named, or a pull's limit. (A sync's count depends on what changed on both sides.)
    fn estimated_records(&self) -> Option<i64> {
        let count = |n: usize| i64::try_from(n).ok();
        match self {
            Self::Push { record_ids, .. } => count(record_ids.len()),
            Self::Pull { crm_ids, .. } if !crm_ids.is_empty() => count(crm_ids.len()),
            Self::Pull { limit, .. } => limit.map(i64::from),
            Self::Sync { .. } => None,
        }
    }

    /// `push`, `pull` or `sync`: the operation's name in metrics.
    fn kind(&self) -> &'static str {
        match self {
            Self::Push { .. } => "push",
            Self::Pull { .. } => "pull",
            Self::Sync { .. } => "sync",
        }
    }

    fn entity_label(&self) -> Option<String> {
        match self {
            Self::Push { entity, .. } | Self::Pull { entity, .. } => Some(entity.to_string()),
            Self::Sync { entities, .. } if entities.len() == 1 => Some(entities[0].to_string()),
            Self::Sync { .. } => None,
        }
    }

    fn entities(&self) -> Vec<EntityName> {
        match self {
            Self::Push { entity, .. } | Self::Pull { entity, .. } => vec![entity.clone()],
            Self::Sync { entities, .. } => entities.clone(),
        }
    }
}

/// Serializes runs per integration within this process, so two runs never interleave their
/// reads and writes of the same links.
#[derive(Debug, Default)]
struct IntegrationLocks {
    locks: Mutex<HashMap<IntegrationKey, Arc<tokio::sync::Mutex<()>>>>,
}

type IntegrationKey = (WorkspaceId, PluginSlug);

impl IntegrationLocks {
    fn get(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((workspace.clone(), slug.clone()))
            .or_default()
            .clone()
    }
}

/// The sync service.
pub struct SyncEngine {
    store: Store,
    connections: Arc<Connections>,
    notifier: Arc<crate::notify::Notifier>,
    metrics: Arc<crate::metrics::Metrics>,
    live: LiveRuns,
    locks: Arc<IntegrationLocks>,
    owner_id: String,
    options: SchedulerOptions,
    webhook_queue: Arc<webhooks::WebhookQueue>,
    change_queue: Arc<live_push::ChangeQueue>,
    scheduler_passes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine").field("owner_id", &self.owner_id).field("live_runs", &self.live.len()).finish()
    }
}

/// How long a run's heartbeat may be silent before another process calls it interrupted.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(120);

impl SyncEngine {
    /// An engine over the store and connections with scheduling options, telling the platform
    /// what happens through `notifier` and operators through `metrics`. Its owner id (a process id
    /// and a random part) names this process in run rows and leases.
    pub fn with_options(
        store: Store,
        connections: Arc<Connections>,
        options: SchedulerOptions,
        notifier: Arc<crate::notify::Notifier>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            store,
            connections,
            notifier,
            metrics,
            live: LiveRuns::default(),
            locks: Arc::default(),
            owner_id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            options,
            webhook_queue: Arc::default(),
            change_queue: Arc::default(),
            scheduler_passes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// This process's id in run rows and leases.
    pub fn owner_id(&self) -> &str {
        &self.owner_id
    }

    /// How many passes this process's scheduler has completed. A pass claims what is due and
    /// ends once every run it claimed is recorded, so after a pass that began later than a
    /// change, "nothing ran" is a fact, not a timing guess.
    pub fn scheduler_passes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.scheduler_passes.subscribe()
    }

    /// Whether every CRM change accepted by webhook so far has its pull run recorded, and every
    /// workspace change noted for a real-time push has its push run recorded.
    pub fn webhooks_settled(&self) -> bool {
        self.webhook_queue.is_settled() && self.change_queue.is_settled()
    }

    /// Live progress of this process's runs.
    pub fn live(&self) -> &LiveRuns {
        &self.live
    }

    /// Marks runs left `running` by a process that is gone as `interrupted`. At start-up on SQLite
    /// (one process) every running run is orphaned; on PostgreSQL only those whose heartbeat went
    /// silent, since other instances may be running theirs.
    pub async fn recover_interrupted_runs(&self) -> Result<u64, StoreError> {
        let stale_before = match self.store.backend() {
            crate::store::Backend::Sqlite => chrono::Utc::now() + chrono::Duration::seconds(1),
            crate::store::Backend::Postgres => {
                chrono::Utc::now() - chrono::Duration::from_std(HEARTBEAT_TIMEOUT).unwrap_or_default()
            }
        };
        let n = self.store.interrupt_orphaned_runs(None, stale_before).await?;
        if self.store.backend() == crate::store::Backend::Sqlite {
            self.store.release_all_leases().await?;
        }
        if n > 0 {
            tracing::warn!(runs = n, "marked sync runs interrupted by a stopped process; retry them");
        }
        Ok(n)
    }

    /// The plugin's description of `entity`.
    fn plugin_entity(
        plugin: &LoadedPlugin,
        entity: &EntityName,
    ) -> Result<crate::plugins::description::EntityDescription, SyncError> {
        Self::entity_description(plugin.description(), entity)
    }

    /// The mappings in force for an entity of a workspace's integration.
    pub async fn mappings_for(
        &self,
        workspace: &WorkspaceId,
        plugin: &LoadedPlugin,
        entity: &EntityName,
    ) -> Result<EntityMappings, SyncError> {
        effective_mappings(&self.store, workspace, plugin, entity).await
    }

    /// The plugin serving `slug`.
    pub fn plugin(&self, slug: &PluginSlug) -> Result<Arc<LoadedPlugin>, SyncError> {
        self.connections
            .plugins()
            .get(slug)
            .ok_or_else(|| SyncError::Connection(crate::connections::ConnectionError::UnknownPlugin(slug.to_string())))
    }

    /// Starts a run in the background and returns it as recorded (`running`).
    pub async fn start(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        operation: Operation,
        trigger: Trigger,
        started_by: &str,
        retry_of: Option<RunId>,
    ) -> Result<SyncRun, SyncError> {
        self.start_run(workspace, slug, operation, trigger, started_by, retry_of).await.map(|(run, _)| run)
    }

    /// Starts a run; the handle resolves when it has ended (the scheduler counts its slots so).
    ///
    /// The run waits its turn behind other runs of the integration in this process, then for the
    /// integration's lease (another process may be running it), so each integration runs at most
    /// once at a time across every host process sharing the database.
    #[tracing::instrument(name = "sync.start", skip_all, fields(workspace = %workspace, slug = %slug, direction = %operation.direction()))]
    pub(crate) async fn start_run(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        operation: Operation,
        trigger: Trigger,
        started_by: &str,
        retry_of: Option<RunId>,
    ) -> Result<(SyncRun, tokio::task::JoinHandle<()>), SyncError> {
        let (plugin, context) = self.connections.call_context(workspace, slug).await?;
        check_operation(&plugin, slug, &operation)?;
        let settings = self.runnable_settings(workspace, slug).await?;
        let run = self.record_start(workspace, slug, &operation, trigger, started_by, retry_of).await?;
        // Webhooks flow for the plugin's signed deliveries, or once the workspace has a secret
        // for the deliveries its CRM cannot sign; either way the real-time pull can be rarer.
        let webhooks =
            plugin.description().capabilities.webhooks || self.store.webhook_secret(workspace, slug).await?.is_some();
        let active = run::Run::new(run::RunParts {
            store: self.store.clone(),
            plugin,
            context,
            workspace: workspace.clone(),
            slug: slug.clone(),
            run_id: run.run_id.clone(),
            settings: settings.clone(),
            retry_backoff: self.options.record_retry,
            progress: self.live.start(&run.run_id),
            count_incremental: trigger == Trigger::Manual,
            notifier: self.notifier.clone(),
            deletion_sweep: self.options.deletion_sweep,
            bulk_threshold: self.options.bulk_threshold,
        });
        let handle =
            self.spawn_run(active, operation, Launch { trigger, actor: started_by.to_owned(), settings, webhooks });
        Ok((run, handle))
    }

    /// The integration's settings, unless it is paused (runs are refused then).
    async fn runnable_settings(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> Result<SyncSettings, SyncError> {
        let integration = self.store.get_integration(workspace, slug).await?;
        if integration.status == crate::store::IntegrationStatus::Paused {
            return Err(SyncError::Paused(format!(
                "the `{slug}` integration is paused: resume it (POST …/integrations/{slug}/resume) to run syncs"
            )));
        }
        SyncSettings::from_stored(&integration.settings)
            .with_connected_user(integration.connected_owner_id())
            .map_err(SyncError::Unprocessable)
    }

    /// Records the run as `running` (the caller gets it at once) and audits its start.
    async fn record_start(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        operation: &Operation,
        trigger: Trigger,
        started_by: &str,
        retry_of: Option<RunId>,
    ) -> Result<SyncRun, SyncError> {
        let run = self
            .store
            .create_run(&NewRun {
                run_id: RunId::generate(),
                workspace: workspace.clone(),
                slug: slug.clone(),
                direction: operation.direction(),
                entity: operation.entity_label(),
                trigger,
                params: serde_json::to_value(operation).unwrap_or_default(),
                started_by: Some(started_by.to_owned()),
                retry_of: retry_of.clone(),
                owner_id: self.owner_id.clone(),
                estimated_records: operation.estimated_records(),
            })
            .await?;
        let details = serde_json::json!({
            "run_id": run.run_id, "direction": run.direction, "entity": run.entity, "trigger": trigger, "retry_of": retry_of,
        });
        let target = AuditTarget::Integration(slug.clone());
        self.audit(workspace, started_by, AuditAction::SyncStarted, target, details).await;
        Ok(run)
    }

    /// Executes a recorded run in the background: its turn in this process, the integration's
    /// lease, the run itself (a panic ends it `failed`), the schedule update, the audit of its end.
    fn spawn_run(&self, mut active: run::Run, operation: Operation, launch: Launch) -> tokio::task::JoinHandle<()> {
        let lock = self.locks.get(&active.workspace, &active.slug);
        let (live, store) = (self.live.clone(), self.store.clone());
        let (owner, options) = (self.owner_id.clone(), self.options.clone());
        let (workspace, slug, run_id) = (active.workspace.clone(), active.slug.clone(), active.run_id.clone());
        let heartbeat = HeartbeatGuard::start(store.clone(), run_id.clone());
        let (notifier, metrics) = (self.notifier.clone(), self.metrics.clone());
        let (direction, entity, kind) = (operation.direction(), operation.entity_label(), operation.kind());
        tokio::spawn(async move {
            let _heartbeat = heartbeat;
            let _serialized = lock.lock().await;
            let lease = match lease::HeldLease::acquire(&store, &workspace, &slug, &owner, options.lease).await {
                Ok(lease) => lease,
                Err(err) => {
                    tracing::error!(error = %err, "could not take the integration's lease");
                    active.abandon("the database failed before the run could start; retry it").await;
                    live.end(&run_id);
                    return;
                }
            };
            active.lease_lost = Some(lease.lost_flag());
            let progress = active.progress_sender();
            let started = std::time::Instant::now();
            let outcome = run::run_guarded(&store, &workspace, &run_id, progress, active.run_to_end(operation)).await;
            metrics.run_ended(kind, launch.trigger, outcome.status, &outcome.counts, started.elapsed());
            let scope = scheduler::RunScope {
                workspace: &workspace,
                slug: &slug,
                settings: &launch.settings,
                trigger: launch.trigger,
                webhooks: launch.webhooks,
            };
            let update = scheduler::after_run(&store, &notifier, &options, &scope, &outcome).await;
            lease.release(update.as_ref()).await;
            let details = serde_json::json!({
                "run_id": run_id, "status": outcome.status, "counts": outcome.counts, "error": outcome.error,
            });
            let (action, target) = (AuditAction::SyncFinished, AuditTarget::Integration(slug.clone()));
            store.audit(NewAuditEntry::in_workspace(&workspace, &launch.actor, action, target, details)).await;
            live.end(&run_id);
            // An automatic run that found nothing to do is not news.
            let automatic = matches!(launch.trigger, Trigger::Schedule | Trigger::Webhook | Trigger::Change);
            if !(automatic && outcome.counts.records == 0 && outcome.error.is_none()) {
                let scope = crate::notify::event::Scope { workspace: &workspace, slug: &slug };
                let facts = crate::notify::event::RunFacts {
                    run_id: &run_id,
                    direction,
                    entity: entity.as_deref(),
                    trigger: launch.trigger,
                    status: outcome.status,
                    counts: &outcome.counts,
                    error: outcome.error.as_deref(),
                };
                notifier.emit(vec![crate::notify::Event::run_ended(scope, facts)]).await;
            }
        })
    }

    /// Waits (up to `timeout`) for a run this process executes to end, then returns it as stored.
    pub async fn wait(&self, workspace: &WorkspaceId, run_id: &RunId, timeout: Duration) -> Result<SyncRun, SyncError> {
        if let Some(mut rx) = self.live.subscribe(run_id) {
            let _ = tokio::time::timeout(timeout, rx.wait_for(|p| p.finished)).await;
        }
        Ok(self.store.get_run(workspace, run_id).await?)
    }

    /// Re-runs a run: an interrupted or failed one as a whole, otherwise only its failed records
    /// (a two-way sync re-runs its entities: records already in sync are skipped by the merge).
    pub async fn retry(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        run_id: &RunId,
        user: &str,
    ) -> Result<SyncRun, SyncError> {
        let run = self
            .store
            .get_run(workspace, run_id)
            .await
            .or_not_found(|| SyncError::NotFound(format!("no sync run `{run_id}`")))?;
        if run.integration != slug.as_str() {
            return Err(SyncError::NotFound(format!("no sync run `{run_id}` for `{slug}`")));
        }
        if run.status == RunStatus::Running {
            return Err(SyncError::Conflict("the run is still running".to_owned()));
        }
        let original: Operation = serde_json::from_value(run.params.clone())
            .map_err(|_| SyncError::Conflict("the run's parameters are not retryable".to_owned()))?;
        let whole = run.status.retries_whole();
        let operation = match original {
            Operation::Push { entity, .. } if !whole => {
                let failed = self.failed_items(run_id).await?;
                let record_ids: Vec<RecordId> = failed
                    .iter()
                    .filter_map(|i| i.record_id.as_deref())
                    .filter_map(|id| RecordId::parse(id).ok())
                    .collect();
                if record_ids.is_empty() {
                    return Err(SyncError::Conflict("the run has no failed records to retry".to_owned()));
                }
                Operation::Push { entity, record_ids }
            }
            Operation::Pull { entity, .. } if !whole => {
                let failed = self.failed_items(run_id).await?;
                let mut crm_ids: Vec<CrmId> = failed.iter().filter_map(|i| i.crm_id.clone()).collect();
                crm_ids.sort();
                crm_ids.dedup();
                if crm_ids.is_empty() {
                    return Err(SyncError::Conflict("the run has no failed records to retry".to_owned()));
                }
                Operation::Pull { entity, since: None, limit: None, crm_ids }
            }
            other => other,
        };
        self.start(workspace, slug, operation, Trigger::Retry, user, Some(run_id.clone())).await
    }

    async fn failed_items(&self, run_id: &RunId) -> Result<Vec<crate::store::RunItem>, SyncError> {
        // A run holds at most a few batches of failures worth retrying at once.
        Ok(self.store.run_items(run_id, Some(ItemOutcome::Failed), -1, MAX_BATCH as i64).await?)
    }

    async fn audit(
        &self,
        workspace: &WorkspaceId,
        actor: &str,
        action: AuditAction,
        target: AuditTarget,
        details: serde_json::Value,
    ) {
        self.store.audit(NewAuditEntry::in_workspace(workspace, actor, action, target, details)).await;
    }

    /// Checks a plugin description has the entity and returns its description (for the API).
    pub fn entity_description(
        description: &PluginDescription,
        entity: &EntityName,
    ) -> Result<crate::plugins::description::EntityDescription, SyncError> {
        description.entities.iter().find(|e| e.name == entity.as_str()).cloned().ok_or_else(|| {
            SyncError::BadInput(format!(
                "`{}` has no entity `{entity}` (it has {})",
                description.slug,
                description.entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// The mappings in force for an entity: the workspace's own, else the plugin's defaults.
pub(crate) async fn effective_mappings(
    store: &Store,
    workspace: &WorkspaceId,
    plugin: &LoadedPlugin,
    entity: &EntityName,
) -> Result<EntityMappings, SyncError> {
    let described = SyncEngine::plugin_entity(plugin, entity)?;
    let stored = store.mappings(workspace, plugin.slug(), Some(entity)).await?;
    EntityMappings::effective(&described, &stored).map_err(|e| SyncError::Crm {
        kind: "invalid_mapping",
        message: format!("the field mappings of `{entity}` are invalid: {e}"),
    })
}

/// Beats a run's heartbeat every quarter of [`HEARTBEAT_TIMEOUT`] for as long as it is held: while
/// the run waits its turn or its lease, and through plugin calls longer than the timeout. Only a
/// dead (or wedged) process lets a heartbeat go silent. Dropping it stops the beat.
struct HeartbeatGuard(tokio::task::JoinHandle<()>);

impl HeartbeatGuard {
    fn start(store: Store, run_id: RunId) -> Self {
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT_TIMEOUT / 4).await;
                if let Err(err) = store.beat_run(&run_id).await {
                    tracing::warn!(run = %run_id, error = %err, "could not beat a run's heartbeat");
                }
            }
        }))
    }
}

impl Drop for HeartbeatGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a spawned run needs besides the run itself.
struct Launch {
    trigger: Trigger,
    /// Who started it (audited with its end).
    actor: String,
    settings: SyncSettings,
    /// Whether the plugin takes webhooks (the realtime schedule polls less then).
    webhooks: bool,
}

/// Refuses an operation the plugin cannot do: an entity it lacks, a push or pull it does not
/// offer, too many records, a sync of nothing.
fn check_operation(plugin: &LoadedPlugin, slug: &PluginSlug, operation: &Operation) -> Result<(), SyncError> {
    for entity in operation.entities() {
        SyncEngine::plugin_entity(plugin, &entity)?;
    }
    let capabilities = plugin.description().capabilities;
    match operation {
        Operation::Push { record_ids, .. } => {
            if !capabilities.push {
                return Err(SyncError::BadInput(format!("`{slug}` cannot push records")));
            }
            check_batch(record_ids.len())
        }
        Operation::Pull { crm_ids, .. } => {
            if !capabilities.pull {
                return Err(SyncError::BadInput(format!("`{slug}` cannot pull records")));
            }
            check_batch(crm_ids.len())
        }
        Operation::Sync { entities, .. } if entities.is_empty() => {
            Err(SyncError::BadInput("name at least one entity to sync".to_owned()))
        }
        Operation::Sync { .. } => Ok(()),
    }
}

/// Refuses more than [`MAX_BATCH`] records, naming the limit.
pub fn check_batch(n: usize) -> Result<(), SyncError> {
    if n > MAX_BATCH {
        return Err(SyncError::BadInput(format!(
            "at most {MAX_BATCH} records per call, got {n}: split them into batches of {MAX_BATCH}"
        )));
    }
    Ok(())
}
