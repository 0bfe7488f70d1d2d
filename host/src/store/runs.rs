//! Sync runs (`sync_history`) and their per-record outcomes (`sync_run_items`): created when a run
//! starts, counted as it goes (with a heartbeat from the process running it), finished with a
//! status, and marked `interrupted` when the process running it died.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{CrmId, ItemOutcome, PluginSlug, RunId, RunStatus, SyncDirection, Trigger, WorkspaceId};

/// The counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RunCounts {
    /// Records looked at.
    pub records: i64,
    /// Written successfully (either side).
    pub succeeded: i64,
    /// Failed.
    pub failed: i64,
    /// Left as conflicts for a user.
    pub conflicts: i64,
    /// Nothing to do.
    pub skipped: i64,
}

/// One phase of a run (`pulling contact`, `pushing contact`, …) and when it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PhaseSpan {
    /// What the run was doing.
    pub phase: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended (null while it goes on).
    pub ended_at: Option<DateTime<Utc>>,
}

/// A run to record.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id.
    pub run_id: RunId,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The integration.
    pub slug: PluginSlug,
    /// Which way it moves records.
    pub direction: SyncDirection,
    /// The entity, or `None` for several.
    pub entity: Option<String>,
    /// What started it.
    pub trigger: Trigger,
    /// What it was asked to do.
    pub params: Value,
    /// Who started it.
    pub started_by: Option<String>,
    /// The run it retries.
    pub retry_of: Option<RunId>,
    /// The process running it.
    pub owner_id: String,
    /// How many records it expects to handle, when known in advance.
    pub estimated_records: Option<i64>,
}

/// A stored run.
#[derive(Debug, Clone, Serialize)]
pub struct SyncRun {
    /// Its id.
    pub run_id: RunId,
    /// The workspace.
    pub workspace_id: String,
    /// The integration.
    pub integration: String,
    /// Which way it moves records.
    pub direction: SyncDirection,
    /// The entity (or `None` for several).
    pub entity: Option<String>,
    /// What started it.
    pub trigger: Trigger,
    /// Where it is, or how it ended.
    pub status: RunStatus,
    /// Counters.
    pub counts: RunCounts,
    /// Who started it.
    pub started_by: Option<String>,
    /// When.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// Its length so far (or in all), in milliseconds.
    pub duration_ms: i64,
    /// Why it failed as a whole.
    pub error: Option<String>,
    /// What it was asked to do.
    pub params: Value,
    /// The run it retries.
    pub retry_of: Option<RunId>,
    /// How many records it expected to handle when it started, when known.
    pub estimated_records: Option<i64>,
    /// Its phases so far, oldest first.
    pub timeline: Vec<PhaseSpan>,
}

#[derive(sqlx::FromRow)]
struct Row {
    run_id: String,
    workspace_id: String,
    integration_slug: String,
    direction: String,
    entity: Option<String>,
    trigger: String,
    status: String,
    record_count: i64,
    success_count: i64,
    failure_count: i64,
    conflict_count: i64,
    skipped_count: i64,
    started_by: Option<String>,
    started_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    error: Option<String>,
    params: Json<Value>,
    retry_of: Option<String>,
    estimated_records: Option<i64>,
    timeline: Option<Json<Vec<PhaseSpan>>>,
}

/// A stored spelling of one of the run enums, or [`StoreError::Corrupt`] naming the column.
fn stored<T>(parse: fn(&str) -> Option<T>, column: &str, text: &str) -> StoreResult<T> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("{column} `{text}`")))
}

impl TryFrom<Row> for SyncRun {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Self> {
        let end = r.completed_at.unwrap_or_else(Utc::now);
        Ok(Self {
            duration_ms: (end - r.started_at).num_milliseconds().max(0),
            run_id: RunId::from_stored(r.run_id),
            workspace_id: r.workspace_id,
            integration: r.integration_slug,
            direction: stored(SyncDirection::parse, "run direction", &r.direction)?,
            entity: r.entity,
            trigger: stored(Trigger::parse, "run trigger", &r.trigger)?,
            status: stored(RunStatus::parse, "run status", &r.status)?,
            counts: RunCounts {
                records: r.record_count,
                succeeded: r.success_count,
                failed: r.failure_count,
                conflicts: r.conflict_count,
                skipped: r.skipped_count,
            },
            started_by: r.started_by,
            started_at: r.started_at,
            completed_at: r.completed_at,
            error: r.error,
            params: r.params.0,
            retry_of: r.retry_of.map(RunId::from_stored),
            estimated_records: r.estimated_records,
            timeline: r.timeline.map(|t| t.0).unwrap_or_default(),
        })
    }
}

const COLUMNS: &str = "run_id, workspace_id, integration_slug, direction, entity, trigger, status, record_count, \
                       success_count, failure_count, conflict_count, skipped_count, started_by, started_at, \
                       completed_at, error, params, retry_of, estimated_records, timeline";

/// Filters for the run history.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Only this direction.
    pub direction: Option<SyncDirection>,
    /// Only this entity.
    pub entity: Option<String>,
    /// Only this trigger.
    pub trigger: Option<Trigger>,
    /// Continue below this `(started_at, run_id)`.
    pub before: Option<(DateTime<Utc>, RunId)>,
    /// Only runs started at or after this instant.
    pub started_from: Option<DateTime<Utc>>,
    /// Only runs started before this instant.
    pub started_to: Option<DateTime<Utc>>,
    /// At most this many.
    pub limit: i64,
}

/// One record's outcome in a run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunItem {
    /// Position in the run.
    pub index: i64,
    /// The entity.
    pub entity: String,
    /// The workspace record.
    pub record_id: Option<String>,
    /// The CRM record.
    #[schema(value_type = Option<String>)]
    pub crm_id: Option<CrmId>,
    /// What happened to it.
    pub outcome: ItemOutcome,
    /// The normalized error (`{kind, message, crm_code, field}`).
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// A [`RunItem`] as one element of the JSON rows [`Store::add_run_items`] binds (absent keys read
/// as SQL NULL).
#[derive(Serialize)]
struct ItemJson<'a> {
    index: i64,
    entity: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crm_id: Option<&'a str>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a Value>,
}

impl<'a> ItemJson<'a> {
    fn of(item: &'a RunItem) -> Self {
        Self {
            index: item.index,
            entity: &item.entity,
            record_id: item.record_id.as_deref(),
            crm_id: item.crm_id.as_ref().map(CrmId::as_str),
            outcome: item.outcome.as_str(),
            error: item.error.as_ref(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    item_index: i64,
    entity: String,
    record_id: Option<String>,
    crm_id: Option<String>,
    outcome: String,
    error: Option<Json<Value>>,
}

impl Store {
    /// Records a new run as `running`.
    #[tracing::instrument(name = "store.create_run", skip_all, fields(run = %run.run_id))]
    pub async fn create_run(&self, run: &NewRun) -> StoreResult<SyncRun> {
        let now = Utc::now();
        let sql = format!(
            "insert into sync_history (run_id, workspace_id, integration_slug, direction, entity, trigger, status, \
             started_by, started_at, params, retry_of, owner_id, heartbeat_at, estimated_records) \
             values ($1, $2, $3, $4, $5, $6, 'running', $7, $8, $9, $10, $11, $8, $12) returning {COLUMNS}"
        );
        let row = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(run.run_id.as_str())
            .bind(run.workspace.as_str())
            .bind(run.slug.as_str())
            .bind(run.direction.as_str())
            .bind(run.entity.as_deref())
            .bind(run.trigger.as_str())
            .bind(run.started_by.as_deref())
            .bind(now)
            .bind(Json(&run.params))
            .bind(run.retry_of.as_ref().map(RunId::as_str))
            .bind(&run.owner_id)
            .bind(run.estimated_records)
            .fetch_one(pool)
            .await)?;
        row.try_into()
    }

    /// Stores the counters and timeline of a running run and beats its heartbeat.
    /// Sets how many records the run expects to handle (known only once it has started).
    #[tracing::instrument(name = "store.set_run_estimate", skip_all, fields(run = %run_id))]
    pub async fn set_run_estimate(&self, run_id: &RunId, records: i64) -> StoreResult<()> {
        let sql = "update sync_history set estimated_records = $1 where run_id = $2";
        with_pool!(self, pool => sqlx::query(sql).bind(records).bind(run_id.as_str()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn update_run_counts(
        &self,
        run_id: &RunId,
        counts: &RunCounts,
        timeline: &[PhaseSpan],
    ) -> StoreResult<()> {
        let sql = "update sync_history set record_count = $1, success_count = $2, failure_count = $3, \
                   conflict_count = $4, skipped_count = $5, heartbeat_at = $6, timeline = $8 \
                   where run_id = $7 and status = 'running'";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(counts.records).bind(counts.succeeded).bind(counts.failed).bind(counts.conflicts).bind(counts.skipped)
            .bind(Utc::now()).bind(run_id.as_str()).bind(Json(timeline)).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Beats a running run's heartbeat alone (between flushes: a run waiting its turn, or on a
    /// long plugin call, is alive too).
    pub async fn beat_run(&self, run_id: &RunId) -> StoreResult<()> {
        let sql = "update sync_history set heartbeat_at = $1 where run_id = $2 and status = 'running'";
        with_pool!(self, pool => sqlx::query(sql).bind(Utc::now()).bind(run_id.as_str()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Ends a run.
    #[tracing::instrument(name = "store.finish_run", skip_all, fields(run = %run_id, status = %status))]
    pub async fn finish_run(
        &self,
        run_id: &RunId,
        status: RunStatus,
        counts: &RunCounts,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let sql = "update sync_history set status = $1, record_count = $2, success_count = $3, failure_count = $4, \
                   conflict_count = $5, skipped_count = $6, completed_at = $7, error = $8 where run_id = $9";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(status.as_str()).bind(counts.records).bind(counts.succeeded).bind(counts.failed).bind(counts.conflicts)
            .bind(counts.skipped).bind(Utc::now()).bind(error).bind(run_id.as_str()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// One run of a workspace.
    pub async fn get_run(&self, workspace: &WorkspaceId, run_id: &RunId) -> StoreResult<SyncRun> {
        let sql = format!("select {COLUMNS} from sync_history where workspace_id = $1 and run_id = $2");
        let row = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(run_id.as_str()).fetch_one(pool).await)?;
        row.try_into()
    }

    /// An integration's runs, newest first.
    #[tracing::instrument(name = "store.list_runs", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn list_runs(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        filter: &RunFilter,
    ) -> StoreResult<Vec<SyncRun>> {
        let far = super::far_future();
        let (before_at, before_id) =
            filter.before.as_ref().map_or((far, String::new()), |(at, id)| (*at, id.as_str().to_owned()));
        let sql = format!(
            "select {COLUMNS} from sync_history where workspace_id = $1 and integration_slug = $2 \
             and ($3 = '' or status = $3) and ($4 = '' or direction = $4) and ($5 = '' or entity = $5) \
             and (started_at < $6 or (started_at = $6 and $7 <> '' and run_id < $7)) \
             and ($9 = '' or trigger = $9) and started_at >= $10 and started_at < $11 \
             order by started_at desc, run_id desc limit $8"
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str())
            .bind(slug.as_str())
            .bind(filter.status.map_or("", RunStatus::as_str))
            .bind(filter.direction.map_or("", SyncDirection::as_str))
            .bind(filter.entity.as_deref().unwrap_or(""))
            .bind(before_at)
            .bind(before_id)
            .bind(filter.limit.clamp(1, 500))
            .bind(filter.trigger.map_or("", Trigger::as_str))
            .bind(filter.started_from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
            .bind(filter.started_to.unwrap_or(far))
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Appends per-record outcomes.
    #[tracing::instrument(name = "store.add_run_items", skip_all, fields(run = %run_id, n = items.len()))]
    pub async fn add_run_items(&self, run_id: &RunId, items: &[RunItem]) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        // One statement, the items one JSON parameter (see `bind.rs`): one round trip, one commit.
        let rows: Vec<ItemJson<'_>> = items.iter().map(ItemJson::of).collect();
        let (field, json) = (|n: &str| self.json_field(n, false), |n: &str| self.json_field(n, true));
        let sql = format!(
            "insert into sync_run_items (run_id, item_index, entity, record_id, crm_id, outcome, error) \
             select $1, {index}, {entity}, {record_id}, {crm_id}, {outcome}, {error} from {rows}",
            index = field("index"),
            entity = field("entity"),
            record_id = field("record_id"),
            crm_id = field("crm_id"),
            outcome = field("outcome"),
            error = json("error"),
            rows =
                self.json_rows(2, "index bigint, entity text, record_id text, crm_id text, outcome text, error jsonb"),
        );
        with_pool!(self, pool => sqlx::query(&sql).bind(run_id.as_str()).bind(Json(&rows)).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// A run's per-record outcomes in order, optionally only one outcome, from `after_index` on.
    pub async fn run_items(
        &self,
        run_id: &RunId,
        outcome: Option<ItemOutcome>,
        after_index: i64,
        limit: i64,
    ) -> StoreResult<Vec<RunItem>> {
        let sql = "select item_index, entity, record_id, crm_id, outcome, error from sync_run_items \
                   where run_id = $1 and ($2 = '' or outcome = $2) and item_index > $3 order by item_index limit $4";
        let rows = with_pool!(self, pool => sqlx::query_as::<_, ItemRow>(sql)
            .bind(run_id.as_str()).bind(outcome.map_or("", ItemOutcome::as_str)).bind(after_index).bind(limit)
            .fetch_all(pool).await)?;
        rows.into_iter()
            .map(|r| {
                Ok(RunItem {
                    outcome: stored(ItemOutcome::parse, "item outcome", &r.outcome)?,
                    index: r.item_index,
                    entity: r.entity,
                    record_id: r.record_id,
                    crm_id: r.crm_id.map(CrmId::from_stored),
                    error: r.error.map(|e| e.0),
                })
            })
            .collect()
    }

    /// Marks runs whose process is gone as `interrupted`: every running run of `owner_id` (a
    /// previous life of this process), and any running run whose heartbeat is older than
    /// `stale_before` (another process that died). Returns how many.
    #[tracing::instrument(name = "store.interrupt_orphaned_runs", skip_all)]
    pub async fn interrupt_orphaned_runs(
        &self,
        owner_id: Option<&str>,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let sql = "update sync_history set status = 'interrupted', completed_at = $1, \
                   error = 'the process running it stopped before it finished; retry it' \
                   where status = 'running' and (owner_id = $2 or heartbeat_at < $3 or heartbeat_at is null)";
        let n = with_pool!(self, pool => sqlx::query(sql)
            .bind(Utc::now()).bind(owner_id.unwrap_or("")).bind(stale_before).execute(pool).await
            .map(|r| r.rows_affected()))?;
        Ok(n)
    }
}
