//! One run, executing ([`Run`]): the plugin and connection it runs with, its counters and per-record
//! outcomes (flushed to the store after every batch, with a heartbeat), live progress, plugin
//! calls with retries for rate limits and transient failures, and the final status.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use serde_json::{Value as Json, json};
use tokio::sync::watch;

use super::Operation;
use super::backoff::RetryBackoff;
use super::caller::PluginCaller;
use super::merge::ConflictStrategy;
use super::progress::Progress;
use super::pull::{PullMode, PullScope};
use super::settings::SyncSettings;
use crate::domain::{CrmId, EntityName, ItemOutcome, PluginSlug, RunId, RunStatus, WorkspaceId};
use crate::plugins::bindings::AdapterError;
use crate::plugins::{CallContext, CallError, CallResult, LoadedPlugin, adapter_error_summary};
use crate::store::{PhaseSpan, RunCounts, RunItem, Store};

/// Why a run (or an entity of it) cannot go on.
#[derive(Debug, Clone)]
pub(super) struct Fatal(pub String);

/// An adapter error as stored on items and links: `{kind, message, crm_code, field}`.
pub(super) fn error_json(err: &AdapterError) -> Json {
    let (kind, message) = adapter_error_summary(err);
    let (crm_code, field) = match err {
        AdapterError::Unauthorized(i)
        | AdapterError::Forbidden(i)
        | AdapterError::NotFound(i)
        | AdapterError::Invalid(i)
        | AdapterError::Unavailable(i)
        | AdapterError::Internal(i) => (i.crm_code.clone(), i.field.clone()),
        AdapterError::Duplicate(d) => (d.crm_code.clone(), None),
        AdapterError::RateLimited(_) | AdapterError::NotSupported(_) => (None, None),
    };
    // The CRM's words are stored as they came, less any NUL character (see `domain::storable`).
    let mut out = json!({ "kind": kind, "message": message.replace('\0', "\u{FFFD}") });
    if let Some(code) = crm_code {
        out["crm_code"] = json!(code);
    }
    if let Some(field) = field {
        out["field"] = json!(field);
    }
    if let AdapterError::Duplicate(d) = err
        && let Some(existing) = &d.existing_id
    {
        out["existing_id"] = json!(existing);
    }
    out
}

/// A host-side error in the same shape.
pub(super) fn host_error(kind: &str, message: impl Into<String>) -> Json {
    json!({ "kind": kind, "message": message.into() })
}

/// How a run ended.
#[derive(Debug, Clone)]
pub(super) struct RunEnd {
    pub status: RunStatus,
    pub counts: RunCounts,
    pub error: Option<String>,
    /// Set when the run stopped at a daily API limit: when to try again.
    pub deferred_until: Option<DateTime<Utc>>,
}

/// What a run executes with, settled when it starts.
pub(super) struct RunParts {
    pub store: Store,
    pub plugin: Arc<LoadedPlugin>,
    /// The connection's credentials and the account's pacer.
    pub context: CallContext,
    pub workspace: WorkspaceId,
    pub slug: PluginSlug,
    pub run_id: RunId,
    /// The integration's settings as the run started.
    pub settings: SyncSettings,
    /// When records that failed are due again.
    pub retry_backoff: RetryBackoff,
    /// Where its live progress goes.
    pub progress: watch::Sender<Progress>,
    /// Spend a CRM request per entity counting an incremental pull (runs a person started).
    pub count_incremental: bool,
    /// Tells the platform about the records the run changes and the conflicts it finds.
    pub notifier: Arc<crate::notify::Notifier>,
    /// How often incremental pulls sweep for deletions (see `SchedulerOptions::deletion_sweep`).
    pub deletion_sweep: std::time::Duration,
    /// Records from which pulls and pushes run as bulk jobs (see `SchedulerOptions::bulk_threshold`).
    pub bulk_threshold: Option<u64>,
}

/// A run, executing.
pub(super) struct Run {
    pub store: Store,
    pub plugin: Arc<LoadedPlugin>,
    pub context: CallContext,
    pub workspace: WorkspaceId,
    pub slug: PluginSlug,
    pub run_id: RunId,
    pub strategy: ConflictStrategy,
    pub settings: SyncSettings,
    /// When failed records are due again.
    pub retry_backoff: RetryBackoff,
    /// Raised when another process took the integration's lease over: the run must stop.
    pub lease_lost: Option<Arc<AtomicBool>>,
    /// See [`RunParts::count_incremental`].
    pub count_incremental: bool,
    /// See [`RunParts::deletion_sweep`].
    pub deletion_sweep: std::time::Duration,
    /// See [`RunParts::bulk_threshold`].
    pub bulk_threshold: Option<u64>,
    /// What the CRM counted per entity this run (the estimate's counts, reused to choose bulk).
    pub counted: std::collections::HashMap<crate::domain::EntityName, u64>,
    /// Entities whose bulk write the plugin declined this run (they go in batches).
    pub bulk_declined: std::collections::HashSet<crate::domain::EntityName>,
    deferred_until: Arc<Mutex<Option<DateTime<Utc>>>>,
    counts: RunCounts,
    items: Vec<RunItem>,
    next_index: i64,
    phase: String,
    /// Every phase so far, with when it began and ended (stored with the counters).
    timeline: Vec<PhaseSpan>,
    progress: watch::Sender<Progress>,
    notifier: Arc<crate::notify::Notifier>,
    /// Events noted since the last flush, emitted once it is stored.
    events: Vec<crate::notify::Event>,
    /// Stores items and counters behind the run.
    flusher: super::flusher::Flusher,
    /// How many levels of referenced records the run is pushing or pulling ahead of the records
    /// naming them (see `references`).
    pub reference_depth: u8,
}

impl Run {
    /// The sender of this run's live progress (a second handle, which outlives the run).
    pub fn progress_sender(&self) -> watch::Sender<Progress> {
        self.progress.clone()
    }

    /// A run about to execute, counting from zero.
    pub fn new(parts: RunParts) -> Self {
        let RunParts {
            store,
            plugin,
            context,
            workspace,
            slug,
            run_id,
            settings,
            retry_backoff,
            progress,
            count_incremental,
            notifier,
            deletion_sweep,
            bulk_threshold,
        } = parts;
        Self {
            store,
            plugin,
            context,
            workspace,
            slug,
            run_id,
            strategy: settings.conflict_strategy,
            settings,
            retry_backoff,
            lease_lost: None,
            count_incremental,
            deletion_sweep,
            bulk_threshold,
            counted: std::collections::HashMap::new(),
            bulk_declined: std::collections::HashSet::new(),
            deferred_until: Arc::default(),
            counts: RunCounts::default(),
            items: Vec::new(),
            next_index: 0,
            phase: "starting".to_owned(),
            timeline: Vec::new(),
            progress,
            notifier,
            events: Vec::new(),
            flusher: super::flusher::Flusher::default(),
            reference_depth: 0,
        }
    }

    /// Notes an event for the platform; it is emitted once the run's items so far are stored.
    pub fn note_event(&mut self, event: crate::notify::Event) {
        self.events.push(event);
    }

    /// Where this run's events happen.
    pub fn event_scope(&self) -> crate::notify::event::Scope<'_> {
        crate::notify::event::Scope { workspace: &self.workspace, slug: &self.slug }
    }

    /// Runs the operation to its end and records how it ended. Never fails: failures become the
    /// run's status.
    pub async fn run_to_end(mut self, operation: Operation) -> RunEnd {
        let span = tracing::info_span!("sync.run", run = %self.run_id, workspace = %self.workspace, slug = %self.slug);
        // A heartbeat as soon as the run gets its turn (it may have queued behind another run).
        let result = match self.flush().await {
            Ok(()) => tracing::Instrument::instrument(self.execute(operation), span).await,
            Err(fatal) => Err(fatal),
        };
        self.end_phase();
        let flushed = match self.flush().await {
            Ok(()) => self.drain().await,
            Err(fatal) => Err(fatal),
        };
        let error = match (&result, &flushed) {
            (Err(Fatal(message)), _) => Some(message.clone()),
            (Ok(()), Err(Fatal(message))) => Some(message.clone()),
            _ => None,
        };
        let c = self.counts;
        let deferred_until = *self.deferred_until.lock().unwrap_or_else(PoisonError::into_inner);
        let status = match &error {
            Some(_) if deferred_until.is_some() => RunStatus::Deferred,
            Some(_) if c.succeeded > 0 => RunStatus::Partial,
            Some(_) => RunStatus::Failed,
            None if c.failed > 0 && c.succeeded == 0 && c.conflicts == 0 => RunStatus::Failed,
            None if c.failed > 0 => RunStatus::Partial,
            None => RunStatus::Completed,
        };
        if let Err(err) = self.store.finish_run(&self.run_id, status, &c, error.as_deref()).await {
            tracing::error!(run = %self.run_id, error = %err, "could not record the end of a run");
        }
        if let Err(err) = self.store.touch_last_sync(&self.workspace, &self.slug).await {
            tracing::warn!(error = %err, "could not record the integration's last sync");
        }
        tracing::info!(run = %self.run_id, status = %status, records = c.records, succeeded = c.succeeded, failed = c.failed,
            conflicts = c.conflicts, skipped = c.skipped, "sync run ended");
        self.phase = "done".to_owned();
        self.progress.send_replace(Progress {
            run_id: self.run_id.clone(),
            status,
            phase: self.phase.clone(),
            counts: c,
            finished: true,
            error: error.clone(),
        });
        RunEnd { status, counts: c, error, deferred_until }
    }

    /// Ends a run that never got to start (its lease could not be taken).
    pub async fn abandon(mut self, message: &str) {
        if let Err(err) = self.store.finish_run(&self.run_id, RunStatus::Failed, &self.counts, Some(message)).await {
            tracing::error!(run = %self.run_id, error = %err, "could not record the end of a run");
        }
        self.phase = "done".to_owned();
        self.progress.send_replace(Progress {
            run_id: self.run_id.clone(),
            status: RunStatus::Failed,
            phase: self.phase.clone(),
            counts: self.counts,
            finished: true,
            error: Some(message.to_owned()),
        });
    }

    /// Stops the run at a daily limit until `until`: it ends `deferred`, not failed.
    /// What this run's plugin calls need, owned: a call can run beside the run's own work.
    pub fn caller(&self) -> PluginCaller {
        PluginCaller {
            pacer: self.context.pacer.clone(),
            daily_limit_percent: self.settings.daily_limit_percent,
            deferred_until: self.deferred_until.clone(),
        }
    }

    async fn execute(&mut self, operation: Operation) -> Result<(), Fatal> {
        self.estimate(&operation).await?;
        match operation {
            Operation::Push { entity, record_ids } => {
                let mappings = self.mappings(&entity).await?;
                self.set_phase(format!("pushing {entity}"));
                let ids: Vec<String> = record_ids.iter().map(|id| id.to_string()).collect();
                self.push_batch(&mappings, &ids, super::push::PushMode::Full).await?;
                self.flush().await
            }
            Operation::Pull { entity, since, limit, crm_ids } => {
                let mappings = self.mappings(&entity).await?;
                self.set_phase(format!("pulling {entity}"));
                let scope = PullScope::of_request(since, limit, crm_ids);
                self.pull_entity(&mappings, scope, PullMode::PullOnly).await.map(|_| ())
            }
            Operation::Sync { entities, direction } => {
                let mut in_force = Vec::with_capacity(entities.len());
                for entity in &entities {
                    in_force.push(self.mappings(entity).await?);
                }
                for mappings in super::references::in_dependency_order(in_force) {
                    let entity = mappings.entity.clone();
                    let caps = self.plugin.description().capabilities;
                    if caps.pull && direction.pulls() {
                        self.set_phase(format!("pulling {entity}"));
                        let since =
                            self.store.pull_cursor(&self.workspace, &self.slug, &entity).await.map_err(store_fatal)?;
                        self.pull_entity(&mappings, PullScope::Changed { since, limit: None }, PullMode::TwoWay)
                            .await?;
                    }
                    if caps.push && direction.pushes() {
                        self.set_phase(format!("pushing {entity}"));
                        self.push_changes(&mappings).await?;
                        if self.settings.propagate_deletes && caps.delete {
                            self.set_phase(format!("deleting {entity}"));
                            self.push_deletes(&mappings).await?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    pub(super) async fn mappings(&self, entity: &EntityName) -> Result<super::EntityMappings, Fatal> {
        super::effective_mappings(&self.store, &self.workspace, &self.plugin, entity).await.map_err(|e| match e {
            super::SyncError::Store(err) => store_fatal(err),
            other => Fatal(other.to_string()),
        })
    }

    pub(super) fn set_phase(&mut self, phase: String) {
        self.end_phase();
        self.timeline.push(PhaseSpan { phase: phase.clone(), started_at: Utc::now(), ended_at: None });
        self.phase = phase;
        self.report();
    }

    /// Marks the current phase of the timeline ended.
    fn end_phase(&mut self) {
        if let Some(last) = self.timeline.last_mut()
            && last.ended_at.is_none()
        {
            last.ended_at = Some(Utc::now());
        }
    }

    fn report(&self) {
        self.progress.send_replace(Progress {
            run_id: self.run_id.clone(),
            status: RunStatus::Running,
            phase: self.phase.clone(),
            counts: self.counts,
            finished: false,
            error: None,
        });
    }

    /// Counts one record's outcome and keeps it as an item (unless nothing happened).
    pub fn record(
        &mut self,
        entity: &EntityName,
        record_id: Option<&str>,
        crm_id: Option<&CrmId>,
        outcome: ItemOutcome,
        error: Option<Json>,
    ) {
        self.counts.records += 1;
        match outcome {
            ItemOutcome::Created
            | ItemOutcome::Updated
            | ItemOutcome::Imported
            | ItemOutcome::Linked
            | ItemOutcome::Deleted => self.counts.succeeded += 1,
            ItemOutcome::Unchanged | ItemOutcome::Skipped => self.counts.skipped += 1,
            ItemOutcome::Failed => self.counts.failed += 1,
            ItemOutcome::Conflict => self.counts.conflicts += 1,
        }
        if outcome == ItemOutcome::Unchanged {
            return;
        }
        self.items.push(RunItem {
            index: self.next_index,
            entity: entity.to_string(),
            record_id: record_id.map(str::to_owned),
            crm_id: crm_id.cloned(),
            outcome,
            error,
        });
        self.next_index += 1;
    }

    /// Starts storing the items and counters so far (the heartbeat) behind the run, once the
    /// previous flush is stored, and reports progress. `drain` waits for the last.
    pub async fn flush(&mut self) -> Result<(), Fatal> {
        if self.lease_lost.as_ref().is_some_and(|lost| lost.load(Ordering::SeqCst)) {
            return Err(Fatal(
                "another host process took this integration over (this one stalled past its lease)".to_owned(),
            ));
        }
        let progress = (std::mem::take(&mut self.items), self.counts, self.timeline.clone());
        let events = std::mem::take(&mut self.events);
        let stored = self.flusher.start(&self.store, &self.run_id, progress, events).await?;
        self.report();
        self.emit(stored).await;
        Ok(())
    }

    /// Waits until every flush is stored, and emits the events that waited for it.
    async fn drain(&mut self) -> Result<(), Fatal> {
        let stored = self.flusher.drain().await?;
        self.emit(stored).await;
        Ok(())
    }

    async fn emit(&self, events: Vec<crate::notify::Event>) {
        if !events.is_empty() {
            self.notifier.emit(events).await;
        }
    }

    /// Calls the plugin through [`PluginCaller::call`].
    pub async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<Result<T, AdapterError>, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = CallResult<T>>,
    {
        self.caller().call(what, call).await
    }
}

/// Runs `work` (a run's [`Run::run_to_end`]) to its end. A panic inside it is a bug no input should reach, but it
/// must not leave the run `running` for ever (retries refused, progress streams never ending): the
/// run ends `failed` with the counts it had stored, an error id to find the cause in the log, and
/// can be retried like any failed run.
pub(super) async fn run_guarded(
    store: &Store,
    workspace: &WorkspaceId,
    run_id: &RunId,
    progress: watch::Sender<Progress>,
    work: impl Future<Output = RunEnd>,
) -> RunEnd {
    use futures::FutureExt;
    let panic = match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(end) => return end,
        Err(panic) => panic,
    };
    let detail = crate::telemetry::panic_detail(panic.as_ref());
    let error_id = uuid::Uuid::new_v4();
    tracing::error!(run = %run_id, error_id = %error_id, detail = %detail, "a sync run stopped on a panic");
    let message = format!(
        "the run stopped on an unexpected error (id {error_id}; the server log has the details); retry it, \
         and report the id if it happens again"
    );
    let counts = match store.get_run(workspace, run_id).await {
        Ok(run) => run.counts,
        Err(err) => {
            tracing::error!(run = %run_id, error = %err, "could not read the counts of a run that panicked");
            RunCounts::default()
        }
    };
    if let Err(err) = store.finish_run(run_id, RunStatus::Failed, &counts, Some(&message)).await {
        tracing::error!(run = %run_id, error = %err, "could not record the end of a run that panicked");
    }
    progress.send_replace(Progress {
        run_id: run_id.clone(),
        status: RunStatus::Failed,
        phase: "done".to_owned(),
        counts,
        finished: true,
        error: Some(message.clone()),
    });
    RunEnd { status: RunStatus::Failed, counts, error: Some(message), deferred_until: None }
}

/// A store failure ends the run: nothing can be recorded reliably without it.
pub(super) fn store_fatal(err: crate::store::StoreError) -> Fatal {
    tracing::error!(error = %err, "store failure during a sync run");
    Fatal("the database failed during the run; retry it".to_owned())
}

/// Whether an adapter error stops the run rather than failing only the records at hand.
pub(super) fn is_fatal(err: &AdapterError) -> bool {
    matches!(
        err,
        AdapterError::Unauthorized(_)
            | AdapterError::Forbidden(_)
            | AdapterError::RateLimited(_)
            | AdapterError::Unavailable(_)
            | AdapterError::NotSupported(_)
    )
}

/// The answer of a call the run cannot go on without (a page, a batch of deletes): the value, or
/// why the run stops, saying what it was doing.
pub(super) fn required<T>(what: &str, result: Result<Result<T, AdapterError>, CallError>) -> Result<T, Fatal> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) if is_fatal(&err) => Err(fatal_message(&err)),
        Ok(Err(err)) => {
            let (kind, message) = adapter_error_summary(&err);
            Err(Fatal(format!("the CRM refused the {what} ({kind}): {message}")))
        }
        Err(err) => Err(Fatal(format!("the plugin failed during the {what}: {err}"))),
    }
}

/// The message a fatal adapter error gives the run.
pub(super) fn fatal_message(err: &AdapterError) -> Fatal {
    let (kind, message) = adapter_error_summary(err);
    Fatal(format!("the CRM refused the run ({kind}): {message}"))
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::{PluginSlug, SyncDirection, Trigger};
    use crate::store::NewRun;

    /// A migrated SQLite store in `dir` with one running run that stored 7 records' counts.
    pub(in crate::sync) async fn store_with_running_run(dir: &std::path::Path) -> (Store, WorkspaceId, RunId) {
        let store = Store::open_sqlite_file(&dir.join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        let workspace = WorkspaceId::parse("w1").unwrap();
        let run_id = RunId::generate();
        store
            .create_run(&NewRun {
                run_id: run_id.clone(),
                workspace: workspace.clone(),
                slug: PluginSlug::parse("salesforce").unwrap(),
                direction: SyncDirection::Pull,
                entity: Some("contact".to_owned()),
                trigger: Trigger::Manual,
                params: json!({"operation": "pull", "entity": "contact"}),
                started_by: Some("user-1".to_owned()),
                retry_of: None,
                owner_id: "owner".to_owned(),
                estimated_records: None,
            })
            .await
            .unwrap();
        let counts = RunCounts { records: 7, succeeded: 5, failed: 2, ..RunCounts::default() };
        store.update_run_counts(&run_id, &counts, &[]).await.unwrap();
        (store, workspace, run_id)
    }

    #[tokio::test]
    async fn a_run_that_panics_ends_failed_with_its_stored_counts_and_an_error_id() {
        let dir = tempfile::tempdir().unwrap();
        let (store, workspace, run_id) = store_with_running_run(dir.path()).await;
        let live = super::super::LiveRuns::default();
        let sender = live.start(&run_id);
        let mut watcher = live.subscribe(&run_id).unwrap();
        let work = async {
            // Dropping the run's own progress handle first, as unwinding through a run does.
            let owned = sender.clone();
            drop(owned);
            panic!("byte index 10 is not a char boundary");
        };
        let end = run_guarded(&store, &workspace, &run_id, sender.clone(), work).await;

        assert_eq!(end.status, RunStatus::Failed);
        let stored = store.get_run(&workspace, &run_id).await.unwrap();
        assert_eq!(stored.status, RunStatus::Failed, "a panicked run must not stay running");
        assert_eq!(stored.counts.records, 7, "the counts stored before the panic are kept");
        let error = stored.error.unwrap();
        assert!(error.contains("retry it") && error.contains("id "), "{error}");
        assert!(!error.contains("char boundary"), "the panic's text stays in the log: {error}");
        assert!(stored.completed_at.is_some());
        let progress = watcher.wait_for(|p| p.finished).await.unwrap().clone();
        assert_eq!(progress.status, RunStatus::Failed);
    }

    #[tokio::test]
    async fn a_run_that_ends_normally_is_left_as_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let (store, workspace, run_id) = store_with_running_run(dir.path()).await;
        let sender = super::super::LiveRuns::default().start(&run_id);
        let work = async {
            RunEnd { status: RunStatus::Completed, counts: RunCounts::default(), error: None, deferred_until: None }
        };
        let end = run_guarded(&store, &workspace, &run_id, sender, work).await;
        assert_eq!(end.status, RunStatus::Completed);
        assert_eq!(
            store.get_run(&workspace, &run_id).await.unwrap().status,
            RunStatus::Running,
            "the guard wrote nothing"
        );
    }
}
