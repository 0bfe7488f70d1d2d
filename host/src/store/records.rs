//! Workspace records (the app side of a sync): batch upserts that merge fields, reads by id and by
//! a field's value, keyset-paged listings, soft deletes, and the version counter change detection
//! relies on.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{Backend, Store, StoreResult, placeholders, with_pool};
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
    /// stored (fields not given are kept). A soft-deleted record that is upserted comes back.
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
            "select {COLUMNS} from records where workspace_id = $1 and entity = $2 and record_id in ({})",
            placeholders(3, records.len())
        );
        let insert = format!(
            "insert into records (workspace_id, entity, record_id, fields, version, created_at, updated_at) \
             values ($1, $2, $3, $4, 1, $5, $5) returning {COLUMNS}"
        );
        let update = format!(
            "update records set fields = $1, version = version + 1, updated_at = $2, deleted_at = null \
             where workspace_id = $3 and entity = $4 and record_id = $5 returning {COLUMNS}"
        );
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_statement()).await?;
            let mut query = sqlx::query_as::<_, Row>(&select).bind(workspace.as_str()).bind(entity.as_str());
            for (id, _) in records {
                query = query.bind(id.as_str());
            }
            let existing: std::collections::HashMap<String, StoredRecord> =
                query.fetch_all(&mut *tx).await?.into_iter().map(|r| (r.record_id.clone(), r.into())).collect();
            let mut out = Vec::with_capacity(records.len());
            for (id, fields) in records {
                match existing.get(id.as_str()) {
                    None => {
                        let row = sqlx::query_as::<_, Row>(&insert)
                            .bind(workspace.as_str())
                            .bind(entity.as_str())
                            .bind(id.as_str())
                            .bind(Json(fields))
                            .bind(now)
                            .fetch_one(&mut *tx)
                            .await?;
                        out.push((UpsertOutcome::Created, row.into()));
                    }
                    Some(current) => {
                        let mut merged = current.fields.clone();
                        for (k, v) in fields {
                            merged.insert(k.clone(), v.clone());
                        }
                        if merged == current.fields && current.deleted_at.is_none() {
                            out.push((UpsertOutcome::Unchanged, current.clone()));
                            continue;
                        }
                        let row = sqlx::query_as::<_, Row>(&update)
                            .bind(Json(&merged))
                            .bind(now)
                            .bind(workspace.as_str())
                            .bind(entity.as_str())
                            .bind(id.as_str())
                            .fetch_one(&mut *tx)
                            .await?;
                        out.push((UpsertOutcome::Updated, row.into()));
                    }
                }
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
                     and sync_status = 'failed' and attempts > 0 and record_id in ({})",
                    placeholders(3, changed.len())
                );
                let mut query = sqlx::query(&reset).bind(workspace.as_str()).bind(entity.as_str());
                for id in changed {
                    query = query.bind(id);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
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
        let insert = format!(
            "insert into records (workspace_id, entity, record_id, fields, version, created_at, updated_at) \
             values ($1, $2, $3, $4, 1, $5, $5) on conflict (workspace_id, entity, record_id) do nothing \
             returning {COLUMNS}"
        );
        let update = format!(
            "update records set fields = $1, version = version + 1, updated_at = $2 \
             where workspace_id = $3 and entity = $4 and record_id = $5 and version = $6 returning {COLUMNS}"
        );
        let updated_ids: Vec<&str> =
            changes.iter().filter(|c| c.expected_version.is_some()).map(|c| c.id.as_str()).collect();
        let select = format!(
            "select {COLUMNS} from records where workspace_id = $1 and entity = $2 and record_id in ({})",
            placeholders(3, updated_ids.len().max(1))
        );
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_statement()).await?;
            // The current rows of every record to update, in one read.
            let mut current: std::collections::HashMap<String, Row> = std::collections::HashMap::new();
            if !updated_ids.is_empty() {
                let mut query = sqlx::query_as::<_, Row>(&select).bind(workspace.as_str()).bind(entity.as_str());
                for id in &updated_ids {
                    query = query.bind(*id);
                }
                current = query.fetch_all(&mut *tx).await?.into_iter().map(|r| (r.record_id.clone(), r)).collect();
            }
            let mut out = Vec::with_capacity(changes.len());
            for change in changes {
                let (id, fields) = (change.id.as_str(), &change.fields);
                let Some(version) = change.expected_version else {
                    let row = sqlx::query_as::<_, Row>(&insert)
                        .bind(workspace.as_str()).bind(entity.as_str()).bind(id).bind(Json(fields)).bind(now)
                        .fetch_optional(&mut *tx).await?;
                    out.push(row.map(Into::into));
                    continue;
                };
                let Some(current) = current.remove(id).filter(|r| r.version == version) else {
                    out.push(None);
                    continue;
                };
                let mut merged = current.fields.0;
                for (k, v) in fields {
                    merged.insert(k.clone(), v.clone());
                }
                let row = sqlx::query_as::<_, Row>(&update)
                    .bind(Json(&merged)).bind(now).bind(workspace.as_str()).bind(entity.as_str()).bind(id).bind(version)
                    .fetch_optional(&mut *tx).await?;
                out.push(row.map(Into::into));
            }
            tx.commit().await?;
            Ok(out)
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
            "select {COLUMNS} from records where workspace_id = $1 and entity = $2 and record_id in ({})",
            placeholders(3, ids.len())
        );
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, Row>(&sql).bind(workspace.as_str()).bind(entity.as_str());
            for id in ids {
                query = query.bind(id);
            }
            query.fetch_all(pool).await
        })?;
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
        // The field name is a validated identifier, so it can sit in the JSON path literally.
        let extract = match self.backend() {
            Backend::Sqlite => format!("json_extract(fields, '$.{field}')"),
            Backend::Postgres => format!("(fields->>'{field}')"),
        };
        let sql = format!(
            "select {COLUMNS} from records where workspace_id = $1 and entity = $2 and deleted_at is null \
             and lower({extract}) in ({})",
            placeholders(3, values.len())
        );
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, Row>(&sql).bind(workspace.as_str()).bind(entity.as_str());
            for value in values {
                query = query.bind(value.to_lowercase());
            }
            query.fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
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
