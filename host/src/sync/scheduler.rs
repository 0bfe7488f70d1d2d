//! The scheduler: a worker loop that claims due integrations (oldest due first, so none starves)
//! and runs their scheduled syncs, a few at a time per process. With PostgreSQL several host
//! processes claim from the same table (`FOR UPDATE SKIP LOCKED`) and a lease that expires if its
//! owner dies; with SQLite one process does it all. After each run the schedule moves on: to the
//! next due time, to a backoff after a failed run, or to when a daily API limit frees up.
//! Also pause and resume, which stop and restart an integration's schedule.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::backoff::RetryBackoff;
use super::run::RunEnd;
use super::settings::SyncSettings;
use super::{Operation, SyncEngine, SyncError, Trigger};
use crate::domain::{EntityName, PluginSlug, RunStatus, WorkspaceId};
use crate::store::{
    AuditAction, AuditTarget, Integration, IntegrationStatus, Lease, ScheduleUpdate, Store, StoreResultExt,
};

/// How the scheduler and leases behave; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Whether this process claims and runs scheduled syncs (off: it serves the API only).
    pub enabled: bool,
    /// How often the loop looks for due integrations.
    pub tick: Duration,
    /// Scheduled runs this process executes at once.
    pub max_concurrent_runs: usize,
    /// How long a lease lives without renewal (renewed every third of it).
    pub lease: Duration,
    /// The first backoff after a run failed as a whole; doubles per consecutive failure.
    pub run_retry_base: Duration,
    /// The longest backoff.
    pub run_retry_cap: Duration,
    /// Failed records: when each is tried again.
    pub record_retry: RetryBackoff,
    /// The incremental pull interval behind `realtime` for a plugin without webhooks.
    pub realtime_poll: Duration,
    /// The same for a plugin with webhooks (they are hints; the pull is the source of truth).
    pub realtime_poll_with_webhooks: Duration,
    /// How often runs whose heartbeat went silent (their process died) are marked interrupted.
    pub orphan_sweep: Duration,
    /// How often an incremental pull also sweeps for deletions its CRM's incremental reads cannot
    /// see (HubSpot's archived list, walked whole); zero sweeps on every pull.
    pub deletion_sweep: Duration,
    /// Records from which a pull or push runs as a bulk job, when the plugin offers them; `None`:
    /// never.
    pub bulk_threshold: Option<u64>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            tick: Duration::from_secs(1),
            max_concurrent_runs: 8,
            lease: Duration::from_secs(60),
            run_retry_base: Duration::from_secs(60),
            run_retry_cap: Duration::from_secs(3600),
            record_retry: RetryBackoff::default(),
            realtime_poll: Duration::from_secs(60),
            realtime_poll_with_webhooks: Duration::from_secs(600),
            orphan_sweep: Duration::from_secs(30),
            deletion_sweep: Duration::from_secs(15 * 60),
            bulk_threshold: Some(10_000),
        }
    }
}

impl SchedulerOptions {
    fn poll_interval(&self, webhooks: bool) -> chrono::Duration {
        let poll = if webhooks { self.realtime_poll_with_webhooks } else { self.realtime_poll };
        chrono::Duration::from_std(poll).unwrap_or(chrono::Duration::minutes(1))
    }

    fn backoff(&self, streak: i64) -> chrono::Duration {
        let doublings = u32::try_from(streak.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        let wait = self.run_retry_base.saturating_mul(1u32 << doublings).min(self.run_retry_cap);
        chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
    }
}

/// The run whose end [`after_run`] judges.
pub(super) struct RunScope<'a> {
    pub workspace: &'a WorkspaceId,
    pub slug: &'a PluginSlug,
    pub settings: &'a SyncSettings,
    pub trigger: Trigger,
    /// Whether the plugin takes webhooks (its real-time pull is then less frequent).
    pub webhooks: bool,
}

/// What the end of a run means for the integration's schedule (`None`: leave it as it is).
pub(super) async fn after_run(
    store: &Store,
    notifier: &crate::notify::Notifier,
    options: &SchedulerOptions,
    scope: &RunScope<'_>,
    end: &RunEnd,
) -> Option<ScheduleUpdate> {
    let RunScope { workspace, slug, settings, trigger, webhooks } = *scope;
    let now = Utc::now();
    if let Some(until) = end.deferred_until {
        let reason = format!(
            "deferred until {}: {}",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            end.error.as_deref().unwrap_or("daily API limit reached")
        );
        let streak = store.schedule_state(workspace, slug).await.map(|s| s.failure_streak).unwrap_or(0);
        return Some(ScheduleUpdate {
            next_sync_at: settings.frequency.is_scheduled().then_some(until),
            failure_streak: streak,
            status_reason: Some(reason),
        });
    }
    if trigger != Trigger::Schedule {
        return None;
    }
    let state = store.schedule_state(workspace, slug).await.ok()?;
    let integration = store.get_integration(workspace, slug).await.ok()?;
    if !integration.status.runs_on_schedule() {
        // Paused or needs re-authorization during the run: that stopped the schedule, and its
        // reason stands (reconnecting or resuming starts it again).
        return Some(ScheduleUpdate {
            next_sync_at: state.next_sync_at,
            failure_streak: state.failure_streak,
            status_reason: integration.status_reason,
        });
    }
    let regular = settings.frequency.next_due(state.next_sync_at, now, options.poll_interval(webhooks));
    if matches!(end.status, RunStatus::Failed | RunStatus::Interrupted) {
        let streak = state.failure_streak + 1;
        let retry_at = now + options.backoff(streak);
        let reason = format!(
            "the last {streak} scheduled run(s) failed ({}); retrying at {}",
            end.error.as_deref().unwrap_or("see the sync history"),
            retry_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        if streak >= ERROR_AFTER_FAILURES && integration.status == IntegrationStatus::Connected {
            set_status(store, workspace, slug, IntegrationStatus::Error).await;
            let scope = crate::notify::event::Scope { workspace, slug };
            notifier.emit(vec![crate::notify::Event::integration_error(scope, &reason, streak)]).await;
        }
        return Some(ScheduleUpdate {
            next_sync_at: regular.map(|_| retry_at),
            failure_streak: streak,
            status_reason: Some(reason),
        });
    }
    if integration.status == IntegrationStatus::Error {
        set_status(store, workspace, slug, IntegrationStatus::Connected).await;
    }
    Some(ScheduleUpdate { next_sync_at: regular, failure_streak: 0, status_reason: None })
}

/// Scheduled runs failing as a whole in a row after which the integration shows `error` (a
/// success clears it).
pub const ERROR_AFTER_FAILURES: i64 = 3;

async fn set_status(store: &Store, workspace: &WorkspaceId, slug: &PluginSlug, status: IntegrationStatus) {
    if let Err(err) = store.set_integration_status(workspace, slug, status).await {
        tracing::warn!(error = %err, status = status.as_str(), "could not record the integration's status");
    }
}

impl SyncEngine {
    /// Starts the background work of this process: the scheduler loop (when enabled), the
    /// webhook queue, the real-time push queue and the pruning of old webhook event ids. Returns the tasks' handles.
    pub fn spawn_background(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![
            self.webhook_queue.clone().spawn_drain(Arc::downgrade(self), super::webhooks::start_pulls),
            self.change_queue.clone().spawn_drain(Arc::downgrade(self), super::live_push::start_pushes),
        ];
        if self.options.enabled {
            let engine = self.clone();
            tasks.push(tokio::spawn(async move { engine.scheduler_loop().await }));
        }
        tasks.push(self.spawn_orphan_sweep());
        let store = self.store.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                if let Err(err) = store.prune_webhook_events(Utc::now() - chrono::Duration::days(3)).await {
                    tracing::warn!(error = %err, "could not prune old webhook event ids");
                }
            }
        }));
        tasks
    }

    /// Marks runs interrupted whose heartbeat has been silent past [`super::HEARTBEAT_TIMEOUT`]:
    /// their process died (every live run beats at least every quarter of it, see
    /// `SyncEngine::start_run`). Periodic, in every process and whether or not it schedules, so
    /// a dead process's runs end within minutes even when no other run comes to take its lease.
    fn spawn_orphan_sweep(&self) -> tokio::task::JoinHandle<()> {
        let (store, every) = (self.store.clone(), self.options.orphan_sweep);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let silent_since = Utc::now()
                    - chrono::Duration::from_std(super::HEARTBEAT_TIMEOUT).unwrap_or(chrono::Duration::minutes(2));
                match store.interrupt_orphaned_runs(None, silent_since).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(runs = n, "marked sync runs of a stopped process interrupted; retry them"),
                    Err(err) => tracing::warn!(error = %err, "could not look for runs of stopped processes"),
                }
            }
        })
    }

    async fn scheduler_loop(self: Arc<Self>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.options.max_concurrent_runs.max(1)));
        tracing::info!(owner = %self.owner_id, "scheduler started");
        loop {
            let free = slots.available_permits();
            if free > 0 {
                let until = Utc::now() + chrono::Duration::from_std(self.options.lease).unwrap_or_default();
                match self.store.claim_due_integrations(&self.owner_id, until, free as i64).await {
                    Ok(claimed) => {
                        let mut started = Vec::new();
                        for lease in claimed {
                            let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                            let lag = lease.due_at.map(|due| (Utc::now() - due).to_std().unwrap_or_default());
                            self.metrics.scheduler_claimed(lag.unwrap_or_default());
                            let engine = self.clone();
                            let (tell, told) = tokio::sync::oneshot::channel();
                            started.push(told);
                            tokio::spawn(async move {
                                engine.run_claimed(lease, tell).await;
                                drop(permit);
                            });
                        }
                        // A pass ends once each claimed run is recorded (or its claim released),
                        // so whoever counts passes sees every run the pass started.
                        for told in started {
                            let _ = told.await;
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "could not claim due integrations"),
                }
            }
            self.scheduler_passes.send_modify(|n| *n += 1);
            tokio::time::sleep(self.options.tick).await;
        }
    }

    /// Runs one claimed integration's scheduled sync and waits for it to end; `started_signal`
    /// fires once the run is recorded (or the claim is being released without one).
    #[tracing::instrument(name = "sync.scheduled", skip_all, fields(workspace = %lease.workspace, slug = %lease.slug))]
    async fn run_claimed(&self, lease: Lease, started_signal: tokio::sync::oneshot::Sender<()>) {
        let (workspace, slug) = (lease.workspace.clone(), lease.slug.clone());
        if let Some(dead) = &lease.previous_owner
            && let Err(err) = self.store.interrupt_runs_of(&workspace, &slug, dead).await
        {
            tracing::warn!(error = %err, "could not mark a dead process's runs interrupted");
        }
        let started = match self.scheduled_operation(&workspace, &slug).await {
            Ok(Some(operation)) => {
                self.start_run(&workspace, &slug, operation, Trigger::Schedule, "scheduler", None).await.map(Some)
            }
            Ok(None) => Ok(None),
            Err(err) => Err(err),
        };
        let _ = started_signal.send(());
        match started {
            Ok(Some((_, handle))) => {
                let _ = handle.await;
            }
            Ok(None) => {
                // Nothing to run (frequency back to manual meanwhile): unschedule.
                let update = ScheduleUpdate { next_sync_at: None, failure_streak: 0, status_reason: None };
                let _ = self.store.release_lease(&workspace, &slug, &self.owner_id, Some(&update)).await;
            }
            Err(err) => {
                // Could not even start (plugin gone, connection unusable): back off and say why.
                let streak = self.store.schedule_state(&workspace, &slug).await.map_or(0, |s| s.failure_streak) + 1;
                let retry_at = Utc::now() + self.options.backoff(streak);
                let update = ScheduleUpdate {
                    next_sync_at: Some(retry_at),
                    failure_streak: streak,
                    status_reason: Some(format!("the scheduled run could not start: {err}")),
                };
                tracing::warn!(error = %err, "scheduled run could not start");
                let _ = self.store.release_lease(&workspace, &slug, &self.owner_id, Some(&update)).await;
            }
        }
    }

    /// What a scheduled run of an integration does: its direction over its entities.
    async fn scheduled_operation(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
    ) -> Result<Option<Operation>, SyncError> {
        let integration = self.store.get_integration(workspace, slug).await?;
        let settings = SyncSettings::from_stored(&integration.settings);
        if !settings.frequency.is_scheduled() {
            return Ok(None);
        }
        let entities = self.default_entities(slug, &settings)?;
        Ok(Some(Operation::Sync { entities, direction: settings.direction }))
    }

    /// The entities a run covers when none are named: the settings', else all of the plugin's.
    pub fn default_entities(&self, slug: &PluginSlug, settings: &SyncSettings) -> Result<Vec<EntityName>, SyncError> {
        if !settings.entities.is_empty() {
            return Ok(settings.entities.clone());
        }
        let plugin = self.plugin(slug)?;
        Ok(plugin.description().entities.iter().filter_map(|e| EntityName::parse(&e.name).ok()).collect())
    }

    /// Recomputes the schedule after the settings changed: a new frequency starts at once (or at
    /// its next clock time); manual unschedules.
    pub(super) async fn reschedule(&self, integration: &Integration) -> Result<(), SyncError> {
        let workspace = WorkspaceId::parse(&integration.workspace_id).map_err(SyncError::BadInput)?;
        let slug = PluginSlug::parse(&integration.integration_slug).map_err(SyncError::BadInput)?;
        if integration.status == IntegrationStatus::Paused {
            // Resuming schedules it.
            return Ok(());
        }
        let settings = SyncSettings::from_stored(&integration.settings);
        // A reason that stopped the schedule (needs re-authorization) stands until it is fixed;
        // one about past failures or deferrals belongs to the old schedule.
        let reason = (!integration.status.runs_on_schedule()).then_some(integration.status_reason.as_deref()).flatten();
        self.store.set_schedule(&workspace, &slug, settings.frequency.first_due(Utc::now()), reason).await?;
        Ok(())
    }

    /// Pauses an integration: nothing runs (manual runs are refused), tokens are kept.
    pub async fn pause(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        user: &str,
    ) -> Result<Integration, SyncError> {
        let integration = self.existing_integration(workspace, slug).await?;
        match integration.status {
            IntegrationStatus::Paused => return Err(SyncError::Conflict(format!("`{slug}` is already paused"))),
            IntegrationStatus::Disconnected => {
                return Err(SyncError::Conflict(format!("`{slug}` is not connected: connect it first")));
            }
            _ => {}
        }
        self.store.set_integration_status(workspace, slug, IntegrationStatus::Paused).await?;
        let reason = format!("paused by {user}");
        self.store.set_schedule(workspace, slug, None, Some(&reason)).await?;
        self.audit(
            workspace,
            user,
            AuditAction::IntegrationPaused,
            AuditTarget::Integration(slug.clone()),
            serde_json::json!({}),
        )
        .await;
        Ok(self.store.get_integration(workspace, slug).await?)
    }

    /// Resumes a paused integration: its schedule starts again from now.
    pub async fn resume(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        user: &str,
    ) -> Result<Integration, SyncError> {
        let integration = self.existing_integration(workspace, slug).await?;
        if integration.status != IntegrationStatus::Paused {
            return Err(SyncError::Conflict(format!("`{slug}` is not paused")));
        }
        self.store.set_integration_status(workspace, slug, IntegrationStatus::Connected).await?;
        let settings = SyncSettings::from_stored(&integration.settings);
        self.store.set_schedule(workspace, slug, settings.frequency.first_due(Utc::now()), None).await?;
        self.audit(
            workspace,
            user,
            AuditAction::IntegrationResumed,
            AuditTarget::Integration(slug.clone()),
            serde_json::json!({}),
        )
        .await;
        Ok(self.store.get_integration(workspace, slug).await?)
    }

    async fn existing_integration(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> Result<Integration, SyncError> {
        self.store
            .get_integration(workspace, slug)
            .await
            .or_not_found(|| SyncError::NotFound(format!("the workspace has no `{slug}` integration")))
    }
}
