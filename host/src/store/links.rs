//! Record links: which CRM record a workspace record is synced with, per integration, with the
//! merge base (the field values both sides agreed on at the last sync), the record version that
//! base belongs to, the sync status and the last error.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::bind::TextList;
use super::statistics::SyncTable;
use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{CrmId, EntityName, PluginSlug, WorkspaceId};

/// The sync status of one record for one integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// Both sides agree.
    Synced,
    /// A change is waiting to be pushed.
    Pending,
    /// The last attempt failed (see the error).
    Failed,
    /// Both sides changed differently and a user has to decide.
    Conflict,
}

impl LinkStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "synced",
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Conflict => "conflict",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "synced" => Self::Synced,
            "pending" => Self::Pending,
            "failed" => Self::Failed,
            "conflict" => Self::Conflict,
            _ => return None,
        })
    }
}

/// A stored link.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordLink {
    /// The integration.
    pub integration: String,
    /// The entity.
    pub entity: String,
    /// The workspace record.
    pub record_id: String,
    /// The CRM record, once known.
    #[schema(value_type = Option<String>)]
    pub crm_id: Option<CrmId>,
    /// The status.
    pub status: LinkStatus,
    /// Field values (app representation) at the last successful sync.
    #[serde(skip)]
    #[schema(ignore)]
    pub base: Option<Map<String, Value>>,
    /// The record version the base belongs to.
    #[serde(skip)]
    #[schema(ignore)]
    pub synced_version: i64,
    /// The CRM's modification time of the record at the last sync.
    pub crm_modified_at: Option<DateTime<Utc>>,
    /// The last error, normalized (`{kind, message, crm_code, field}`).
    #[schema(value_type = Option<Object>)]
    pub last_error: Option<Value>,
    /// When it last synced successfully.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Consecutive failed attempts (retried with backoff; reset by a change or a success).
    pub attempts: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    integration_slug: String,
    entity: String,
    record_id: String,
    crm_id: Option<String>,
    sync_status: String,
    base: Option<Json<Map<String, Value>>>,
    synced_version: i64,
    crm_modified_at: Option<DateTime<Utc>>,
    last_error: Option<Json<Value>>,
    last_synced_at: Option<DateTime<Utc>>,
    attempts: i64,
}

impl TryFrom<Row> for RecordLink {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Self> {
        Ok(Self {
            status: LinkStatus::parse(&r.sync_status)
                .ok_or_else(|| StoreError::Corrupt(format!("link status `{}`", r.sync_status)))?,
            integration: r.integration_slug,
            entity: r.entity,
            record_id: r.record_id,
            crm_id: r.crm_id.map(CrmId::from_stored),
            base: r.base.map(|b| b.0),
            synced_version: r.synced_version,
            crm_modified_at: r.crm_modified_at,
            last_error: r.last_error.map(|e| e.0),
            last_synced_at: r.last_synced_at,
            attempts: r.attempts,
        })
    }
}

const COLUMNS: &str = "integration_slug, entity, record_id, crm_id, sync_status, base, synced_version, \
                       crm_modified_at, last_error, last_synced_at, attempts";

/// A change to one link. `None` keeps what is stored, except `last_error`, which is replaced.
#[derive(Debug, Clone)]
pub struct LinkWrite {
    /// The workspace record.
    pub record_id: String,
    /// The CRM record.
    pub crm_id: Option<CrmId>,
    /// The new status.
    pub status: LinkStatus,
    /// The new merge base.
    pub base: Option<Map<String, Value>>,
    /// The record version the new base belongs to.
    pub synced_version: Option<i64>,
    /// The CRM's modification time.
    pub crm_modified_at: Option<DateTime<Utc>>,
    /// The error (`None` clears it).
    pub last_error: Option<Value>,
    /// Whether this write records a successful sync (sets `last_synced_at`).
    pub synced: bool,
}

/// A [`LinkWrite`] as one element of the JSON rows [`Store::save_links`] binds. Absent keys read
/// as SQL NULL on both backends (a JSON `null` would read as the text `null` through SQLite's
/// `->`); instants are written as sqlx writes them to SQLite, so stored text compares in order.
#[derive(Serialize)]
struct LinkRow<'a> {
    record_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    crm_id: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<&'a Map<String, Value>>,
    synced_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    crm_modified_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<&'a Value>,
    synced: bool,
}

impl<'a> LinkRow<'a> {
    fn of(write: &'a LinkWrite) -> Self {
        Self {
            record_id: &write.record_id,
            crm_id: write.crm_id.as_ref().map(CrmId::as_str),
            status: write.status.as_str(),
            base: write.base.as_ref(),
            synced_version: write.synced_version.unwrap_or(-1),
            crm_modified_at: write.crm_modified_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)),
            last_error: write.last_error.as_ref(),
            synced: write.synced,
        }
    }
}

impl LinkWrite {
    /// A write that only changes the status and error.
    pub fn status(record_id: &str, status: LinkStatus, error: Option<Value>) -> Self {
        Self {
            record_id: record_id.to_owned(),
            crm_id: None,
            status,
            base: None,
            synced_version: None,
            crm_modified_at: None,
            last_error: error,
            synced: false,
        }
    }
}

impl Store {
    /// The links of these workspace records.
    #[tracing::instrument(name = "store.links_for_records", skip_all, fields(n = record_ids.len()))]
    pub async fn links_for_records(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        record_ids: &[String],
    ) -> StoreResult<Vec<RecordLink>> {
        let texts: Vec<&str> = record_ids.iter().map(String::as_str).collect();
        self.links_where(workspace, slug, entity, "record_id", &texts).await
    }

    /// The links to these CRM records.
    #[tracing::instrument(name = "store.links_for_crm_ids", skip_all, fields(n = crm_ids.len()))]
    pub async fn links_for_crm_ids(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        crm_ids: &[CrmId],
    ) -> StoreResult<Vec<RecordLink>> {
        let texts: Vec<&str> = crm_ids.iter().map(CrmId::as_str).collect();
        self.links_where(workspace, slug, entity, "crm_id", &texts).await
    }

    async fn links_where(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        column: &'static str,
        values: &[&str],
    ) -> StoreResult<Vec<RecordLink>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select {COLUMNS} from record_links where workspace_id = $1 and integration_slug = $2 and entity = $3 \
             and {column} {}",
            self.any_of(4)
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(TextList(values.to_vec()))
            .fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Every integration's link of one record.
    #[tracing::instrument(name = "store.links_of_record", skip_all)]
    pub async fn links_of_record(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        record_id: &str,
    ) -> StoreResult<Vec<RecordLink>> {
        let sql = format!(
            "select {COLUMNS} from record_links where workspace_id = $1 and entity = $2 and record_id = $3 \
             order by integration_slug"
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(entity.as_str()).bind(record_id).fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Creates or changes a link. A CRM id already linked to another record of the workspace is a
    /// `Conflict`.
    pub async fn save_link(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        write: &LinkWrite,
    ) -> StoreResult<()> {
        self.save_links(workspace, slug, entity, std::slice::from_ref(write)).await
    }

    /// Creates or changes links, a batch in one statement (so one commit). A CRM id already linked
    /// to another record is a `Conflict`, and then nothing of the batch is written.
    #[tracing::instrument(name = "store.save_links", skip_all, fields(n = writes.len()))]
    pub async fn save_links(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        writes: &[LinkWrite],
    ) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        // One statement may not touch a row twice: the last write of a record wins.
        let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, w) in writes.iter().enumerate() {
            last.insert(w.record_id.as_str(), i);
        }
        let writes: Vec<&LinkWrite> =
            writes.iter().enumerate().filter(|(i, w)| last[w.record_id.as_str()] == *i).map(|(_, w)| w).collect();
        let now = Utc::now();
        // One statement for the batch, its rows one JSON parameter: a round trip per link would
        // dominate a sync on PostgreSQL, a parameter per cell costs SQLite quadratic binding. A
        // version of -1 means "keep the stored one" (a new link keeps -1: never synced, so any
        // record version counts as a change).
        let rows: Vec<LinkRow<'_>> = writes.iter().map(|w| LinkRow::of(w)).collect();
        let field = |name: &str| self.json_field(name, false);
        let json = |name: &str| self.json_field(name, true);
        let sql = format!(
            "insert into record_links (workspace_id, integration_slug, entity, record_id, crm_id, sync_status, \
             base, synced_version, crm_modified_at, last_error, last_synced_at, updated_at, attempts) \
             select $1, $2, $3, {record_id}, {crm_id}, {status}, {base}, {version}, {modified}, {error}, \
                    case when {synced} then $4 end, $4, case when {status} = 'failed' then 1 else 0 end \
             from {rows} where true \
             on conflict (workspace_id, integration_slug, entity, record_id) do update set \
             crm_id = coalesce(excluded.crm_id, record_links.crm_id), \
             sync_status = excluded.sync_status, \
             base = coalesce(excluded.base, record_links.base), \
             synced_version = case when excluded.synced_version < 0 then record_links.synced_version \
                              else excluded.synced_version end, \
             crm_modified_at = coalesce(excluded.crm_modified_at, record_links.crm_modified_at), \
             last_error = excluded.last_error, \
             attempts = case when excluded.sync_status = 'failed' then record_links.attempts + 1 else 0 end, \
             last_synced_at = coalesce(excluded.last_synced_at, record_links.last_synced_at), \
             updated_at = excluded.updated_at",
            record_id = field("record_id"),
            crm_id = field("crm_id"),
            status = field("status"),
            base = json("base"),
            version = field("synced_version"),
            modified = field("crm_modified_at"),
            error = json("last_error"),
            synced = field("synced"),
            rows = self.json_rows(
                5,
                "record_id text, crm_id text, status text, base jsonb, synced_version bigint, \
                 crm_modified_at timestamptz, last_error jsonb, synced boolean",
            ),
        );
        with_pool!(self, pool => sqlx::query(&sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(now).bind(Json(&rows))
            .execute(pool).await.map(|_| ()))?;
        self.note_rows_written(SyncTable::Links, rows.len());
        Ok(())
    }

    /// About how many records of `entity` a push would send now: live records never linked,
    /// pending, failed, or changed since they last synced (conflicts wait for a resolution).
    #[tracing::instrument(name = "store.count_records_to_push", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn count_records_to_push(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
    ) -> StoreResult<i64> {
        let sql = "select count(*) from records r left join record_links l on l.workspace_id = r.workspace_id \
                   and l.integration_slug = $2 and l.entity = r.entity and l.record_id = r.record_id \
                   where r.workspace_id = $1 and r.entity = $3 and r.deleted_at is null and (l.record_id is null \
                   or l.sync_status in ('pending', 'failed') or (l.sync_status = 'synced' and r.version > l.synced_version))";
        Ok(with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).fetch_one(pool).await)?)
    }

    /// Live records of an entity that have something to push to this integration: never linked,
    /// changed since their last sync, pending, or failed and due again (`retry_due(attempts,
    /// failed_at)`, the sync engine's policy). Records in conflict wait for a user.
    /// Keyset-paged by record id.
    ///
    /// Two plain index reads per slice (records by key range, their links by primary key) and the
    /// comparison here, rather than one anti-join: a planner without statistics yet (a freshly
    /// filled PostgreSQL table) turned the join into a scan per record.
    #[tracing::instrument(name = "store.records_to_push", skip_all)]
    pub async fn records_to_push(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        after: &str,
        limit: i64,
        retry_due: impl Fn(i64, DateTime<Utc>) -> bool,
    ) -> StoreResult<Vec<String>> {
        const SLICE: i64 = 1_000;
        let records_sql = "select record_id, version from records where workspace_id = $1 and entity = $2 \
                           and deleted_at is null and record_id > $3 order by record_id limit $4";
        let mut out = Vec::new();
        let mut after = after.to_owned();
        loop {
            let slice: Vec<(String, i64)> = with_pool!(self, pool => sqlx::query_as(records_sql)
                .bind(workspace.as_str()).bind(entity.as_str()).bind(&after).bind(SLICE)
                .fetch_all(pool).await)?;
            let Some((last, _)) = slice.last() else { return Ok(out) };
            after = last.clone();
            let ids: Vec<String> = slice.iter().map(|(id, _)| id.clone()).collect();
            let links_sql = format!(
                "select record_id, sync_status, synced_version, attempts, updated_at from record_links \
                 where workspace_id = $1 and integration_slug = $2 and entity = $3 and record_id {}",
                self.any_of(4)
            );
            type LinkState = (String, i64, i64, DateTime<Utc>);
            let links: std::collections::HashMap<String, LinkState> = with_pool!(self, pool => {
                sqlx::query_as::<_, (String, String, i64, i64, DateTime<Utc>)>(&links_sql)
                    .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(TextList::of(&ids))
                    .fetch_all(pool).await
            })?
            .into_iter()
            .map(|(id, status, synced, attempts, at)| (id, (status, synced, attempts, at)))
            .collect();
            for (id, version) in slice {
                let due = match links.get(&id) {
                    None => true,
                    Some((status, _, _, _)) if status == "conflict" => false,
                    Some((status, _, attempts, failed_at)) if status == "failed" => retry_due(*attempts, *failed_at),
                    Some((status, synced, _, _)) => status == "pending" || version > *synced,
                };
                if due {
                    out.push(id);
                    if out.len() as i64 >= limit {
                        return Ok(out);
                    }
                }
            }
        }
    }

    /// Deleted workspace records still linked to a CRM record (deletes to propagate), oldest id first.
    pub async fn deleted_linked_records(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        limit: i64,
    ) -> StoreResult<Vec<(String, CrmId)>> {
        let sql = "select l.record_id, l.crm_id from record_links l join records r \
                   on r.workspace_id = l.workspace_id and r.entity = l.entity and r.record_id = l.record_id \
                   where l.workspace_id = $1 and l.integration_slug = $2 and l.entity = $3 \
                   and l.crm_id is not null and r.deleted_at is not null order by l.record_id limit $4";
        let rows: Vec<(String, String)> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(limit).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(record, crm)| (record, CrmId::from_stored(crm))).collect())
    }

    /// Removes links (the records they joined no longer both exist).
    pub async fn delete_links(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        record_ids: &[String],
    ) -> StoreResult<()> {
        if record_ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "delete from record_links where workspace_id = $1 and integration_slug = $2 and entity = $3 \
             and record_id {}",
            self.any_of(4)
        );
        with_pool!(self, pool => sqlx::query(&sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(TextList::of(record_ids))
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// How many links of an integration are in each status, per entity.
    #[tracing::instrument(name = "store.link_status_counts", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn link_status_counts(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
    ) -> StoreResult<Vec<(String, LinkStatus, i64)>> {
        let sql = "select entity, sync_status, count(*) from record_links where workspace_id = $1 \
                   and integration_slug = $2 group by entity, sync_status order by entity, sync_status";
        let rows: Vec<(String, String, i64)> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(entity, status, n)| {
                let status =
                    LinkStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("link status `{status}`")))?;
                Ok((entity, status, n))
            })
            .collect()
    }

    /// An integration's failed links (every entity), by entity and record id, at most `limit`.
    #[tracing::instrument(name = "store.failed_links", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn failed_links(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: Option<&EntityName>,
        limit: i64,
    ) -> StoreResult<Vec<RecordLink>> {
        let sql = format!(
            "select {COLUMNS} from record_links where workspace_id = $1 and integration_slug = $2 \
             and sync_status = 'failed' and ($3 = '' or entity = $3) order by entity, record_id limit $4"
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.map_or("", EntityName::as_str)).bind(limit)
            .fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
