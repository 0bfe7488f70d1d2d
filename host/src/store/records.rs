//! Workspace records (the app side of a sync): batch upserts that merge fields, reads by id and by
//! a field's value, keyset-paged listings, soft deletes, and the version counter change detection
//! relies on.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::types::Json;

use sha2::Digest as _;

use super::bind::TextList;
use super::statistics::SyncTable;
use super::{Backend, Store, StoreError, StoreResult, with_pool};
use crate::domain::{EntityName, FieldName, RecordId, WorkspaceId};

/// A workspace record as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredRecord {
    /// The platform's id.
    pub id: String,
    /// The entity.
    pub entity: String,
    /// Field values (JSON scalars).
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Bumped on every change.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Soft-deleted at.
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    record_id: String,
    entity: String,
    fields: Json<Map<String, Value>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<Row> for StoredRecord {
    fn from(r: Row) -> Self {
        Self {
            id: r.record_id,
            entity: r.entity,
            fields: r.fields.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
        }
    }
}

const COLUMNS: &str = "record_id, entity, fields, version, created_at, updated_at, deleted_at";

/// What an upsert did to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpsertOutcome {
    /// A new record.
    Created,
    /// Fields changed (or a deleted record came back).
    Updated,
    /// Every given value was already there.
    Unchanged,
}

/// One change a sync makes to a record (see [`Store::apply_record_changes_batch`]).
#[derive(Debug, Clone)]
pub struct RecordChange {
    /// The record.
    pub id: RecordId,
    /// Fields to merge in (or, for a new record, its fields).
    pub fields: Map<String, Value>,
    /// The version the change was computed from; `None` creates the record.
    pub expected_version: Option<i64>,
}

/// A record's fields as one element of the JSON rows a batch write binds.
#[derive(Serialize)]
struct NewFields<'a> {
    rid: &'a str,
    new_fields: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<i64>,
}

/// One page of a record listing.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    /// Only records changed at or after this instant.
    pub changed_since: Option<DateTime<Utc>>,
    /// Continue after this `(updated_at, record_id)`.
    pub after: Option<(DateTime<Utc>, String)>,
    /// Include soft-deleted records.
    pub include_deleted: bool,
    /// At most this many.
    pub limit: i64,
}

impl Store {
    /// Upserts records of one entity in one transaction, merging the given fields into what is
    /// stored (fields not given are kept). A soft-deleted record that is upserted comes back. Each
    /// id at most once (callers refuse repeats: `duplicate_id`).
    #[tracing::instrument(name = "store.upsert_records", skip_all, fields(workspace = %workspace, entity = %entity, n = records.len()))]
    pub async fn upsert_records(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        records: &[(RecordId, Map<String, Value>)],
    ) -> StoreResult<Vec<(UpsertOutcome, StoredRecord)>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let select = format!(
            "select {COLUMNS} from records where workspace_id = $1 and entity = $2 and record_id {}",
            self.any_of(3)
        );
        let insert = self.insert_records_sql(false);
        let update = self.update_records_sql(false);
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_statement()).await?;
            let ids: Vec<&str> = records.iter().map(|(id, _)| id.as_str()).collect();
            let query = sqlx::query_as::<_, Row>(&select).bind(workspace.as_str()).bind(entity.as_str()).bind(TextList(ids));
            let existing: std::collections::HashMap<String, StoredRecord> =
                query.fetch_all(&mut *tx).await?.into_iter().map(|r| (r.record_id.clone(), r.into())).collect();
            // Decide each record's outcome, then write the creates and the updates one statement each.
            let (mut creates, mut updates, mut outcomes) = (Vec::new(), Vec::new(), Vec::with_capacity(records.len()));
            for (id, fields) in records {
                let rid = id.as_str();
                match existing.get(rid) {
                    None => {
                        creates.push(NewFields { rid, new_fields: fields.clone(), expected: None });
                        outcomes.push(UpsertOutcome::Created);
                    }
                    Some(current) => {
                        let mut merged = current.fields.clone();
                        merged.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                        if merged == current.fields && current.deleted_at.is_none() {
                            outcomes.push(UpsertOutcome::Unchanged);
                        } else {
                            updates.push(NewFields { rid, new_fields: merged, expected: None });
                            outcomes.push(UpsertOutcome::Updated);
                        }
                    }
                }
            }
            let mut written: std::collections::HashMap<String, StoredRecord> = std::collections::HashMap::new();
            for (sql, rows) in [(&insert, &creates), (&update, &updates)] {
                if !rows.is_empty() {
                    let returned = sqlx::query_as::<_, Row>(sql)
                        .bind(workspace.as_str()).bind(entity.as_str()).bind(now).bind(Json(rows))
                        .fetch_all(&mut *tx).await?;
                    written.extend(returned.into_iter().map(|r| (r.record_id.clone(), StoredRecord::from(r))));
                }
            }
            let mut out = Vec::with_capacity(records.len());
            for ((id, _), outcome) in records.iter().zip(outcomes) {
                let record = match outcome {
                    UpsertOutcome::Unchanged => existing.get(id.as_str()).cloned(),
                    UpsertOutcome::Created | UpsertOutcome::Updated => written.remove(id.as_str()),
                };
                let record = record.ok_or_else(|| StoreError::Corrupt(format!("record `{id}` was not written")))?;
                out.push((outcome, record));
            }
            // A changed record that failed to sync gets a fresh start: its retry backoff resets.
            let changed: Vec<&str> = out
                .iter()
                .filter(|(o, _)| *o == UpsertOutcome::Updated)
                .map(|(_, r)| r.id.as_str())
                .collect();
            if !changed.is_empty() {
                let reset = format!(
                    "update record_links set attempts = 0 where workspace_id = $1 and entity = $2 \
                     and sync_status = 'failed' and attempts > 0 and record_id {}",
                    self.any_of(3)
                );
                sqlx::query(&reset).bind(workspace.as_str()).bind(entity.as_str()).bind(TextList(changed))
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            self.note_rows_written(SyncTable::Records, creates.len() + updates.len());
            Ok(out)
        })
    }

    /// Writes a sync's changes to one record; see [`Store::apply_record_changes_batch`].
    pub async fn apply_record_changes(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        id: &RecordId,
        changes: &Map<String, Value>,
        expected_version: Option<i64>,
    ) -> StoreResult<Option<StoredRecord>> {
        let change = RecordChange { id: id.clone(), fields: changes.clone(), expected_version };
        let mut out = self.apply_record_changes_batch(workspace, entity, std::slice::from_ref(&change)).await?;
        Ok(out.pop().flatten())
    }

    /// Writes a sync's changes to records in one transaction. A change with no expected version
    /// creates the record (nothing happens if it exists by then); one with a version merges its
    /// fields in only if the record is still at that version. Per change, the record as written,
    /// or `None` when someone else got there first.
    #[tracing::instrument(name = "store.apply_record_changes", skip_all, fields(workspace = %workspace, entity = %entity, n = changes.len()))]
    pub async fn apply_record_changes_batch(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        changes: &[RecordChange],
    ) -> StoreResult<Vec<Option<StoredRecord>>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        // Set-based: one read of the records to update, one insert of the new ones, one update of
        // the rest (each change's rows one JSON parameter, see `bind.rs`), all in one transaction.
        // A record named twice counts once, as it would written one after the other: the second
        // create finds it exists, the second update finds its version moved.
        let mut seen = std::collections::HashSet::new();
        let first: Vec<bool> = changes.iter().map(|c| seen.insert(c.id.as_str())).collect();
        let updated_ids: Vec<&str> =
            changes.iter().filter(|c| c.expected_version.is_some()).map(|c| c.id.as_str()).collect();
        let select = format!(
            "select {COLUMNS} from records where workspace_id = $1 and entity = $2 and record_id {}",
            self.any_of(3)
        );
        let insert = self.insert_records_sql(true);
        let update = self.update_records_sql(true);
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_statement()).await?;
            let mut current: std::collections::HashMap<String, Row> = std::collections::HashMap::new();
            if !updated_ids.is_empty() {
                let query = sqlx::query_as::<_, Row>(&select)
                    .bind(workspace.as_str()).bind(entity.as_str()).bind(TextList(updated_ids.clone()));
                current = query.fetch_all(&mut *tx).await?.into_iter().map(|r| (r.record_id.clone(), r)).collect();
            }
            let mut creates = Vec::new();
            let mut updates = Vec::new();
            for (change, first) in changes.iter().zip(&first) {
                let id = change.id.as_str();
                match change.expected_version {
                    None if *first => creates.push(NewFields { rid: id, new_fields: change.fields.clone(), expected: None }),
                    Some(version) if *first => {
                        let Some(row) = current.get(id).filter(|r| r.version == version) else { continue };
                        let mut merged = row.fields.0.clone();
                        merged.extend(change.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                        updates.push(NewFields { rid: id, new_fields: merged, expected: Some(version) });
                    }
                    _ => {}
                }
            }
            let mut written: std::collections::HashMap<String, StoredRecord> = std::collections::HashMap::new();
            for (sql, rows) in [(&insert, &creates), (&update, &updates)] {
                if rows.is_empty() {
                    continue;
                }
                let returned = sqlx::query_as::<_, Row>(sql)
                    .bind(workspace.as_str()).bind(entity.as_str()).bind(now).bind(Json(rows))
                    .fetch_all(&mut *tx).await?;
                written.extend(returned.into_iter().map(|r| (r.record_id.clone(), StoredRecord::from(r))));
            }
            tx.commit().await?;
            self.note_rows_written(SyncTable::Records, written.len());
            // Each record's write goes to its first change; a repeat got nothing.
            Ok(changes.iter().zip(first).map(|(c, first)| if first { written.remove(c.id.as_str()) } else { None }).collect())
        })
    }

    /// One record (deleted ones too).
    #[tracing::instrument(name = "store.get_record", skip_all, fields(workspace = %workspace, entity = %entity))]
    pub async fn get_record(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        id: &RecordId,
    ) -> StoreResult<StoredRecord> {
        let sql = format!("select {COLUMNS} from records where workspace_id = $1 and entity = $2 and record_id = $3");
        let row = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(entity.as_str()).bind(id.as_str()).fetch_one(pool).await)?;
        Ok(row.into())
    }

    /// The records with these ids that exist (deleted ones too), in no particular order.
    #[tracing::instrument(name = "store.get_records", skip_all, fields(workspace = %workspace, entity = %entity, n = ids.len()))]
    pub async fn get_records(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        ids: &[String],
    ) -> StoreResult<Vec<StoredRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select {COLUMNS} from records where workspace_id = $1 and entity = $2 and record_id {}",
            self.any_of(3)
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(entity.as_str()).bind(TextList::of(ids)).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Live records whose text field `field` equals one of `values`, ignoring case (match keys).
    #[tracing::instrument(name = "store.find_records_by_field", skip_all, fields(workspace = %workspace, entity = %entity, n = values.len()))]
    pub async fn find_records_by_field(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        field: &FieldName,
        values: &[String],
    ) -> StoreResult<Vec<StoredRecord>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let extract = self.match_key_expression(field);
        self.ensure_match_index(field, &extract).await;
        let sql = format!(
            "select {COLUMNS} from records where workspace_id = $1 and entity = $2 and deleted_at is null \
             and lower({extract}) {}",
            self.any_of(3)
        );
        let lowered: Vec<String> = values.iter().map(|v| v.to_lowercase()).collect();
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(entity.as_str()).bind(TextList::of(&lowered)).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Inserts the records of a JSON rows parameter (`$4`, [`NewFields`]) with `$1` workspace, `$2`
    /// entity, `$3` now, returning them; with `skip_existing` a record that exists is left alone.
    fn insert_records_sql(&self, skip_existing: bool) -> String {
        format!(
            "insert into records (workspace_id, entity, record_id, fields, version, created_at, updated_at) \
             select $1, $2, {rid}, {fields}, 1, $3, $3 from {rows} where true {conflict} returning {COLUMNS}",
            rid = self.json_field("rid", false),
            fields = self.json_field("new_fields", true),
            rows = self.json_rows(4, "rid text, new_fields jsonb"),
            conflict = if skip_existing { "on conflict (workspace_id, entity, record_id) do nothing" } else { "" },
        )
    }

    /// Replaces the fields of the records of a JSON rows parameter (as [`Store::insert_records_sql`]),
    /// bumping their versions, returning them. With `check_version` only a record still at its
    /// row's `expected` version is written; without, a soft-deleted record comes back. Callers
    /// read the rows in the same transaction first: every row names an existing record.
    fn update_records_sql(&self, check_version: bool) -> String {
        let undelete = if check_version { "" } else { ", deleted_at = null" };
        match self.backend() {
            Backend::Postgres => format!(
                "update records set fields = r.new_fields, version = version + 1, updated_at = $3{undelete} \
                 from {rows} where workspace_id = $1 and entity = $2 and record_id = r.rid {condition} \
                 returning {COLUMNS}",
                rows = self.json_rows(4, "rid text, new_fields jsonb, expected bigint"),
                condition = if check_version { "and version = r.expected" } else { "" },
            ),
            // SQLite plans `update … from json_each(…)` with the records outside and the JSON rows
            // scanned inside, once per record of the entity (1.5 s for 200 rows among 10,000); as an
            // upsert driven by the rows, each finds its record by primary key. The inserted values
            // never land: every row's record exists (read just before in this transaction), and
            // `version` carries the expected version to the conflict's condition.
            Backend::Sqlite => format!(
                "insert into records (workspace_id, entity, record_id, fields, version, created_at, updated_at) \
                 select $1, $2, {rid}, {fields}, coalesce({expected}, 0), $3, $3 from {rows} where true \
                 on conflict (workspace_id, entity, record_id) do update set fields = excluded.fields, \
                 version = records.version + 1, updated_at = excluded.updated_at{undelete} {condition} \
                 returning {COLUMNS}",
                rid = self.json_field("rid", false),
                fields = self.json_field("new_fields", true),
                expected = self.json_field("expected", false),
                rows = self.json_rows(4, ""),
                condition = if check_version { "where records.version = excluded.version" } else { "" },
            ),
        }
    }

    /// A record's value of `field` as a match key compares it. The field name is a validated
    /// identifier, so it can sit in the JSON path literally.
    fn match_key_expression(&self, field: &FieldName) -> String {
        match self.backend() {
            Backend::Sqlite => format!("json_extract(fields, '$.{field}')"),
            Backend::Postgres => format!("(fields->>'{field}')"),
        }
    }

    /// Makes sure an expression index serves match-key look-ups on `field`, so matching a page of
    /// pulled records costs a look-up per key instead of a scan of the entity. Made on first use
    /// (match keys are configured per mapping, not known in advance), once per process and field;
    /// on PostgreSQL without blocking writes. A failure is logged: look-ups still work, by scan.
    async fn ensure_match_index(&self, field: &FieldName, extract: &str) {
        let fresh = self.match_indexes.lock().map(|mut made| made.insert(field.to_string())).unwrap_or(false);
        if !fresh {
            return;
        }
        // Index names fold case on PostgreSQL and are capped at 63 bytes: name it by a hash.
        let digest = sha2::Sha256::digest(field.as_str().as_bytes());
        let name = format!("records_match_{}", hex::encode(&digest[..8]));
        let sql = match self.backend() {
            Backend::Sqlite => {
                format!("create index if not exists {name} on records (workspace_id, entity, lower({extract}))")
            }
            Backend::Postgres => format!(
                "create index concurrently if not exists {name} on records (workspace_id, entity, lower({extract}))"
            ),
        };
        let made = with_pool!(self, pool => sqlx::query(&sql).execute(pool).await.map(|_| ()));
        match made {
            Ok(_) => tracing::info!(field = %field, index = %name, "match-key index ready"),
            Err(err) => tracing::warn!(field = %field, error = %err, "could not index a match key; look-ups scan"),
        }
    }

    /// A page of records ordered by `(updated_at, record_id)`.
    #[tracing::instrument(name = "store.list_records", skip_all, fields(workspace = %workspace, entity = %entity))]
    pub async fn list_records(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        query: &RecordQuery,
    ) -> StoreResult<Vec<StoredRecord>> {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let (after_at, after_id) = query.after.clone().unwrap_or((epoch, String::new()));
        let deleted = if query.include_deleted { "" } else { "and deleted_at is null" };
        let sql = format!(
            "select {COLUMNS} from records where workspace_id = $1 and entity = $2 {deleted} \
             and updated_at >= $3 and (updated_at > $4 or (updated_at = $4 and record_id > $5)) \
             order by updated_at, record_id limit $6"
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str())
            .bind(entity.as_str())
            .bind(query.changed_since.unwrap_or(epoch))
            .bind(after_at)
            .bind(after_id)
            .bind(query.limit.clamp(1, 1000))
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Soft-deletes a record; `false` if there is no live record with that id.
    #[tracing::instrument(name = "store.delete_record", skip_all, fields(workspace = %workspace, entity = %entity))]
    pub async fn delete_record(
        &self,
        workspace: &WorkspaceId,
        entity: &EntityName,
        id: &RecordId,
    ) -> StoreResult<bool> {
        let sql = "update records set deleted_at = $1, updated_at = $1, version = version + 1 \
                   where workspace_id = $2 and entity = $3 and record_id = $4 and deleted_at is null";
        let n = with_pool!(self, pool => sqlx::query(sql)
            .bind(Utc::now()).bind(workspace.as_str()).bind(entity.as_str()).bind(id.as_str())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// How many live records an entity has.
    pub async fn count_records(&self, workspace: &WorkspaceId, entity: &EntityName) -> StoreResult<i64> {
        let sql = "select count(*) from records where workspace_id = $1 and entity = $2 and deleted_at is null";
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(workspace.as_str()).bind(entity.as_str()).fetch_one(pool).await)?;
        Ok(n)
    }
}
