//! Bulk jobs for large pulls and pushes (the plugin's optional `bulk` export, Salesforce's Bulk
//! API 2.0 behind it): when a run uses one (the operator's threshold), the calls that step a job
//! along — waiting between them as the plugin asks — and the job's cursor kept in the store, so a
//! run resumed after a crash continues the job rather than starting another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::watch;

use super::caller::PluginCaller;
use super::mapping::EntityMappings;
use super::progress::Progress;
use super::pull::{PageFetch, PullScope};
use super::run::{Fatal, Run, store_fatal};
use crate::domain::{EntityName, PluginSlug, WorkspaceId};
use crate::plugins::bindings::adapter::{PullRequest, PushOutcome, PushRecord};
use crate::plugins::bindings::bulk::{Pending, PullStep, PushStep};
use crate::plugins::bindings::{AdapterError, FieldValue, Value};
use crate::plugins::context::CallContext;
use crate::plugins::{CallError, LoadedPlugin};
use crate::store::{BulkDirection, BulkJob, Store};

/// The most records one page of a bulk read may bring.
pub(super) const BULK_PAGE: usize = 10_000;

/// The most records one bulk write sends (a larger push runs as several jobs).
const BULK_PUSH_MAX: usize = 10_000;

/// The longest wait between steps of a job, whatever the plugin asks (a run stays responsive
/// to its lease and the plugin can tell how far the job got).
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The shortest: a plugin answering 0 does not make the host spin.
const MIN_WAIT: Duration = Duration::from_millis(20);

/// A pull running as a bulk job.
pub(super) struct BulkPull {
    /// What the job reads, saved with its cursor: a stored job reading something else (the pull's
    /// `modified-since` or the mapped fields changed since) is not resumed.
    params: Json,
    /// Where to continue, when a run before this one stopped mid-job.
    pub resume: Option<String>,
    /// Raised when the plugin declined (`not-supported`): the pull goes on page by page.
    declined: Arc<AtomicBool>,
}

impl BulkPull {
    /// Whether the plugin declined, so the pull read page by page (no job to keep).
    pub(super) fn declined(&self) -> bool {
        self.declined.load(Ordering::Relaxed)
    }
}

/// Where a job's cursor is kept.
#[derive(Clone)]
struct JobSlot {
    store: Store,
    workspace: WorkspaceId,
    slug: PluginSlug,
    entity: EntityName,
    direction: BulkDirection,
    /// The run's live progress, where a job's count of processed records shows while it waits.
    progress: watch::Sender<Progress>,
}

impl JobSlot {
    /// Keeps the job's latest cursor. A failure to keep it costs only the resumption after a
    /// crash, so it is logged rather than stopping the job.
    async fn save(&self, cursor: &str, params: &Json) {
        let job = BulkJob { cursor: cursor.to_owned(), params: params.clone() };
        if let Err(err) =
            self.store.save_bulk_job(&self.workspace, &self.slug, &self.entity, self.direction, &job).await
        {
            tracing::warn!(entity = %self.entity, error = %err, "could not keep a bulk job's cursor; a crash now restarts it");
        }
    }

    /// Waits out a job that is not done: keeps its cursor (so a crash resumes it), reports how
    /// far it is, sleeps as long as the plugin asked (within bounds), and gives the cursor to
    /// continue with.
    async fn wait_on(&self, pending: Pending, params: &Json) -> String {
        self.save(&pending.cursor, params).await;
        tracing::info!(entity = %self.entity, direction = ?self.direction, processed = pending.processed, "bulk job under way");
        if let Some(processed) = pending.processed {
            let doing = match self.direction {
                BulkDirection::Pull => "pulling",
                BulkDirection::Push => "pushing",
            };
            let phase = format!("{doing} {} (bulk job: {processed} records processed)", self.entity);
            self.progress.send_modify(|p| p.phase = phase);
        }
        tokio::time::sleep(wait_for(&pending)).await;
        pending.cursor
    }

    async fn stored(&self) -> Result<Option<BulkJob>, Fatal> {
        self.store.bulk_job(&self.workspace, &self.slug, &self.entity, self.direction).await.map_err(store_fatal)
    }

    async fn clear(&self) -> Result<(), Fatal> {
        self.store.clear_bulk_job(&self.workspace, &self.slug, &self.entity, self.direction).await.map_err(store_fatal)
    }
}

/// How long to wait before the next step of a pending job.
fn wait_for(pending: &Pending) -> Duration {
    Duration::from_millis(u64::from(pending.wait_ms)).clamp(MIN_WAIT, MAX_WAIT)
}

/// Whether an answer to a job's first step means "no bulk job for this": the plugin does not
/// offer one (the SDK's default) or not for this entity.
fn declines(answer: &Result<Option<impl Sized>, AdapterError>) -> bool {
    matches!(answer, Ok(None) | Err(AdapterError::NotSupported(_)))
}

impl Run {
    fn job_slot(&self, entity: &EntityName, direction: BulkDirection) -> JobSlot {
        JobSlot {
            store: self.store.clone(),
            workspace: self.workspace.clone(),
            slug: self.slug.clone(),
            entity: entity.clone(),
            direction,
            progress: self.progress_sender(),
        }
    }

    /// Whether this pull runs as a bulk job: it reads the whole entity (or all its changes), the
    /// plugin exports `bulk`, and either a job was left under way for the same read or the CRM
    /// counts at least the operator's threshold of records.
    pub(super) async fn bulk_pull_plan(
        &mut self,
        mappings: &EntityMappings,
        scope: &PullScope,
    ) -> Result<Option<BulkPull>, Fatal> {
        let Some(threshold) = self.bulk_threshold else { return Ok(None) };
        if !self.plugin.has_bulk() || !scope.sees_every_change() {
            return Ok(None);
        }
        let params = json!({ "since": scope.since(), "fields": mappings.pull_fields() });
        let declined = Arc::default();
        let slot = self.job_slot(&mappings.entity, BulkDirection::Pull);
        if let Some(job) = slot.stored().await? {
            if job.params == params {
                tracing::info!(run = %self.run_id, entity = %mappings.entity, "continuing the bulk read a stopped run left");
                return Ok(Some(BulkPull { params, resume: Some(job.cursor), declined }));
            }
            // It read something else: this pull starts its own.
            slot.clear().await?;
        }
        let counted = self.crm_count(&mappings.entity, scope.since()).await;
        Ok(counted.filter(|n| *n >= threshold).map(|_| BulkPull { params, resume: None, declined }))
    }

    /// A function fetching one page of a bulk read from a cursor: it steps the job until records
    /// are ready (keeping the job's cursor while it waits), or — once the plugin declined a job —
    /// reads page by page with `pull`.
    pub(super) fn bulk_page_fetcher(
        &self,
        mappings: &EntityMappings,
        scope: &PullScope,
        bulk: &BulkPull,
    ) -> impl Fn(Option<String>, usize) -> PageFetch + use<> {
        let (caller, plugin, context) = (self.caller(), self.plugin.clone(), self.context.clone());
        let slot = self.job_slot(&mappings.entity, BulkDirection::Pull);
        let (entity, fields, since) = (mappings.entity.to_string(), mappings.pull_fields(), scope.since());
        let (params, declined) = (bulk.params.clone(), bulk.declined.clone());
        move |cursor, size| {
            let request = PullRequest {
                entity: entity.clone(),
                cursor,
                modified_since: since.clone(),
                ids: Vec::new(),
                fields: fields.clone(),
                limit: u32::try_from(size).unwrap_or(u32::MAX),
            };
            let steps = BulkSteps {
                caller: caller.clone(),
                plugin: plugin.clone(),
                context: context.clone(),
                slot: slot.clone(),
                params: params.clone(),
            };
            let declined = declined.clone();
            Box::pin(async move { steps.next_page(request, &declined).await })
        }
    }

    /// Pushes the records `ids` as one bulk job (or continues `resume`, the job a stopped run
    /// left for exactly these records): `None` when the plugin declined, so the caller pushes them
    /// in batches instead.
    pub(super) async fn bulk_push_step(
        &self,
        entity: &EntityName,
        match_key: &str,
        record_ids: &[String],
        sent: &[PushRecord],
        resume: Option<String>,
    ) -> Result<Option<Result<Vec<PushOutcome>, AdapterError>>, CallError> {
        let slot = self.job_slot(entity, BulkDirection::Push);
        let params = json!({ "record_ids": record_ids, "sent": sent.iter().map(push_record_json).collect::<Vec<_>>() });
        let (plugin, context, name) = (self.plugin.clone(), self.context.clone(), entity.to_string());
        let mut job = resume;
        loop {
            let started = job.is_some();
            let answer = self
                .call("bulk-push", || plugin.bulk_push(context.clone(), &name, match_key, sent, job.as_deref()))
                .await?;
            if !started && declines(&answer) {
                return Ok(None);
            }
            match answer {
                Ok(Some(PushStep::Done(outcomes))) => return Ok(Some(Ok(outcomes))),
                Ok(Some(PushStep::Pending(pending))) => job = Some(slot.wait_on(pending, &params).await),
                Ok(None) => return Ok(None),
                Err(err) => return Ok(Some(Err(err))),
            }
        }
    }

    /// The records a stopped run's bulk write was sending, with its cursor: `(ids, sent, cursor)`.
    pub(super) async fn stored_push_job(
        &self,
        entity: &EntityName,
    ) -> Result<Option<(Vec<String>, Vec<PushRecord>, String)>, Fatal> {
        let slot = self.job_slot(entity, BulkDirection::Push);
        let Some(job) = slot.stored().await? else { return Ok(None) };
        let ids: Option<Vec<String>> = serde_json::from_value(job.params["record_ids"].clone()).ok();
        let sent: Option<Vec<PushRecord>> =
            job.params["sent"].as_array().and_then(|sent| sent.iter().map(push_record_from_json).collect());
        match (ids, sent) {
            (Some(ids), Some(sent)) if ids.len() == sent.len() => Ok(Some((ids, sent, job.cursor))),
            // Unreadable: forget it, and the records are pushed again as they are now.
            _ => slot.clear().await.map(|()| None),
        }
    }

    /// Forgets the entity's job in that direction: it finished.
    pub(super) async fn clear_bulk_job(&self, entity: &EntityName, direction: BulkDirection) -> Result<(), Fatal> {
        self.job_slot(entity, direction).clear().await
    }

    /// Keeps where a bulk read continues after the records written so far (`None`: it ended).
    pub(super) async fn keep_bulk_pull(
        &self,
        entity: &EntityName,
        bulk: &BulkPull,
        next: Option<&str>,
    ) -> Result<(), Fatal> {
        let slot = self.job_slot(entity, BulkDirection::Pull);
        match next {
            Some(cursor) if !bulk.declined() => {
                slot.save(cursor, &bulk.params).await;
                Ok(())
            }
            _ => slot.clear().await,
        }
    }

    /// How many records one push reads at a time: a bulk job's worth when bulk writes may be used.
    pub(super) fn push_read_size(&self) -> usize {
        match self.bulk_threshold {
            Some(threshold) if self.plugin.has_bulk() => {
                usize::try_from(threshold).unwrap_or(BULK_PUSH_MAX).clamp(super::MAX_BATCH, BULK_PUSH_MAX)
            }
            _ => super::MAX_BATCH,
        }
    }

    /// Whether `n` records of the entity waiting to be pushed go as a bulk write: enough of them
    /// for the threshold, and the plugin has not declined one for the entity in this run.
    pub(super) fn pushes_in_bulk(&self, entity: &EntityName, n: usize) -> bool {
        self.plugin.has_bulk()
            && self.bulk_threshold.is_some_and(|t| n as u64 >= t)
            && !self.bulk_declined.contains(entity)
    }
}

/// What a bulk read's page fetch needs, owned (it runs beside the run's writes).
struct BulkSteps {
    caller: PluginCaller,
    plugin: Arc<LoadedPlugin>,
    context: CallContext,
    slot: JobSlot,
    params: Json,
}

impl BulkSteps {
    /// Steps the job until a page is ready; a job the plugin declines reads the page with `pull`.
    async fn next_page(
        &self,
        mut request: PullRequest,
        declined: &AtomicBool,
    ) -> Result<Result<crate::plugins::bindings::adapter::Page, AdapterError>, CallError> {
        // A job found gone is started again once; a CRM that loses the new one too fails the read.
        let mut restarted = false;
        loop {
            if declined.load(Ordering::Relaxed) {
                request.limit = request.limit.min(super::MAX_BATCH as u32);
                return self.caller.call("pull", || self.plugin.pull(self.context.clone(), &request)).await;
            }
            let answer =
                self.caller.call("bulk-pull", || self.plugin.bulk_pull(self.context.clone(), &request)).await?;
            if request.cursor.is_none() && declines(&answer) {
                declined.store(true, Ordering::Relaxed);
                continue;
            }
            match answer {
                Ok(Some(PullStep::Page(page))) => return Ok(Ok(page)),
                Ok(Some(PullStep::Pending(pending))) => {
                    request.cursor = Some(self.slot.wait_on(pending, &self.params).await);
                }
                Ok(None) => {
                    return Ok(Err(AdapterError::Internal(crate::plugins::bindings::adapter::ErrorInfo {
                        message: "the plugin stopped offering the bulk read it had started".to_owned(),
                        crm_code: None,
                        field: None,
                    })));
                }
                Err(AdapterError::NotFound(_)) if request.cursor.is_some() && !restarted => {
                    // The job is gone (the CRM keeps results for days, not for ever): start
                    // another; records read again are written again, to the same effect.
                    tracing::warn!(entity = %self.slot.entity, "the bulk job to continue is gone; starting another");
                    let _ = self.slot.clear().await;
                    request.cursor = None;
                    restarted = true;
                }
                Err(err) => return Ok(Err(err)),
            }
        }
    }
}

/// A record sent in a bulk write, as kept with the job. By hand: the generated contract types
/// cannot all derive serde (bindgen's derives apply to every type, and its flags types take none).
fn push_record_json(record: &PushRecord) -> Json {
    let fields: Vec<Json> = record.fields.iter().map(|f| json!([f.name, value_json(&f.value)])).collect();
    json!({ "crm_id": record.crm_id, "fields": fields })
}

fn push_record_from_json(json: &Json) -> Option<PushRecord> {
    let crm_id = match &json["crm_id"] {
        Json::Null => None,
        id => Some(id.as_str()?.to_owned()),
    };
    let fields = json["fields"]
        .as_array()?
        .iter()
        .map(|pair| Some(FieldValue { name: pair[0].as_str()?.to_owned(), value: value_from_json(&pair[1])? }))
        .collect::<Option<Vec<_>>>()?;
    Some(PushRecord { crm_id, fields })
}

fn value_json(value: &Value) -> Json {
    match value {
        Value::Null => json!({ "null": null }),
        Value::Text(s) => json!({ "text": s }),
        Value::Number(n) => json!({ "number": n }),
        Value::Boolean(b) => json!({ "boolean": b }),
        Value::DateTime(s) => json!({ "date_time": s }),
        Value::Date(s) => json!({ "date": s }),
    }
}

fn value_from_json(json: &Json) -> Option<Value> {
    let (kind, inner) = json.as_object()?.iter().next()?;
    Some(match kind.as_str() {
        "null" => Value::Null,
        "text" => Value::Text(inner.as_str()?.to_owned()),
        "number" => Value::Number(inner.as_f64()?),
        "boolean" => Value::Boolean(inner.as_bool()?),
        "date_time" => Value::DateTime(inner.as_str()?.to_owned()),
        "date" => Value::Date(inner.as_str()?.to_owned()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_record_survives_being_kept_with_its_job() {
        let record = PushRecord {
            crm_id: Some("003000000000001AAA".to_owned()),
            fields: vec![
                FieldValue { name: "Email".to_owned(), value: Value::Text("a@example.com".to_owned()) },
                FieldValue { name: "Score".to_owned(), value: Value::Number(4.5) },
                FieldValue { name: "Active".to_owned(), value: Value::Boolean(true) },
                FieldValue { name: "Seen".to_owned(), value: Value::DateTime("2026-01-01T00:00:00Z".to_owned()) },
                FieldValue { name: "Born".to_owned(), value: Value::Date("1990-02-03".to_owned()) },
                FieldValue { name: "Fax".to_owned(), value: Value::Null },
            ],
        };
        let kept = push_record_json(&record);
        assert_eq!(push_record_from_json(&kept), Some(record.clone()));
        let unlinked = PushRecord { crm_id: None, ..record };
        assert_eq!(push_record_from_json(&push_record_json(&unlinked)), Some(unlinked));
        assert_eq!(push_record_from_json(&json!({ "crm_id": 3, "fields": [] })), None);
        assert_eq!(push_record_from_json(&json!({ "crm_id": null, "fields": [["X", { "odd": 1 }]] })), None);
    }

    #[test]
    fn waits_are_bounded_both_ways() {
        let pending = |wait_ms| Pending { cursor: String::new(), wait_ms, processed: None };
        assert_eq!(wait_for(&pending(0)), MIN_WAIT);
        assert_eq!(wait_for(&pending(500)), Duration::from_millis(500));
        assert_eq!(wait_for(&pending(u32::MAX)), MAX_WAIT);
    }
}
