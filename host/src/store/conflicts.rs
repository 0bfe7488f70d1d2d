//! Sync conflicts: a record changed on both sides to different values under `manual_review`,
//! kept with the app, CRM and base values until a user resolves or ignores it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{ConflictId, ConflictStatus, CrmId, PluginSlug, WorkspaceId};

/// A conflict as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncConflict {
    /// Its id.
    pub conflict_id: ConflictId,
    /// The workspace.
    pub workspace_id: String,
    /// The integration.
    pub integration: String,
    /// The entity.
    pub entity: String,
    /// The workspace record.
    pub record_id: String,
    /// The CRM record.
    #[schema(value_type = Option<String>)]
    pub crm_id: Option<CrmId>,
    /// The workspace's values (mapped fields, app representation).
    #[schema(value_type = Object)]
    pub app_values: Map<String, Value>,
    /// The CRM's values (mapped to app fields).
    #[schema(value_type = Object)]
    pub crm_values: Map<String, Value>,
    /// What both sides agreed on last.
    #[schema(value_type = Option<Object>)]
    pub base_values: Option<Map<String, Value>>,
    /// The app fields that differ.
    pub conflicting_fields: Vec<String>,
    /// Where it is.
    pub status: ConflictStatus,
    /// How it was resolved (the values written).
    #[schema(value_type = Option<Object>)]
    pub resolution: Option<Value>,
    /// Who resolved or ignored it.
    pub resolved_by: Option<String>,
    /// When.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was found.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    conflict_id: String,
    workspace_id: String,
    integration_slug: String,
    entity: String,
    record_id: String,
    crm_id: Option<String>,
    app_values: Json<Map<String, Value>>,
    crm_values: Json<Map<String, Value>>,
    base_values: Option<Json<Map<String, Value>>>,
    conflicting_fields: Json<Vec<String>>,
    status: String,
    resolution: Option<Json<Value>>,
    resolved_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for SyncConflict {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Self> {
        Ok(Self {
            status: ConflictStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("conflict status `{}`", r.status)))?,
            conflict_id: ConflictId::from_stored(r.conflict_id),
            workspace_id: r.workspace_id,
            integration: r.integration_slug,
            entity: r.entity,
            record_id: r.record_id,
            crm_id: r.crm_id.map(CrmId::from_stored),
            app_values: r.app_values.0,
            crm_values: r.crm_values.0,
            base_values: r.base_values.map(|b| b.0),
            conflicting_fields: r.conflicting_fields.0,
            resolution: r.resolution.map(|v| v.0),
            resolved_by: r.resolved_by,
            resolved_at: r.resolved_at,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "conflict_id, workspace_id, integration_slug, entity, record_id, crm_id, app_values, crm_values, \
                       base_values, conflicting_fields, status, resolution, resolved_by, resolved_at, created_at";

/// A conflict to record.
#[derive(Debug, Clone)]
pub struct NewConflict<'a> {
    /// The integration.
    pub slug: &'a PluginSlug,
    /// The entity.
    pub entity: &'a str,
    /// The workspace record.
    pub record_id: &'a str,
    /// The CRM record.
    pub crm_id: Option<&'a CrmId>,
    /// The workspace's values.
    pub app_values: &'a Map<String, Value>,
    /// The CRM's values.
    pub crm_values: &'a Map<String, Value>,
    /// The base.
    pub base_values: Option<&'a Map<String, Value>>,
    /// The fields that differ.
    pub conflicting_fields: &'a [String],
}

/// Filters for listing conflicts.
#[derive(Debug, Clone, Default)]
pub struct ConflictFilter {
    /// Only this status.
    pub status: Option<ConflictStatus>,
    /// Only this integration.
    pub integration: Option<String>,
    /// Only this entity.
    pub entity: Option<String>,
    /// Only this record.
    pub record_id: Option<String>,
    /// At most this many.
    pub limit: i64,
    /// Continue below this `(created_at, conflict_id)`.
    pub before: Option<(DateTime<Utc>, ConflictId)>,
}

impl Store {
    /// Records a conflict, replacing a still-pending one of the same record (the newest values win).
    #[tracing::instrument(name = "store.record_conflict", skip_all, fields(workspace = %workspace))]
    pub async fn record_conflict(
        &self,
        workspace: &WorkspaceId,
        conflict: &NewConflict<'_>,
    ) -> StoreResult<ConflictId> {
        let id = ConflictId::generate();
        let supersede = "update sync_conflicts set status = 'ignored', resolution = $1, resolved_by = 'system', \
                         resolved_at = $2 where workspace_id = $3 and integration_slug = $4 and entity = $5 \
                         and record_id = $6 and status = 'pending'";
        let insert = "insert into sync_conflicts (conflict_id, workspace_id, integration_slug, entity, record_id, crm_id, \
                      app_values, crm_values, base_values, conflicting_fields, status, created_at) \
                      values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11)";
        let now = Utc::now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_statement()).await?;
            sqlx::query(supersede)
                .bind(Json(serde_json::json!({ "superseded_by": id })))
                .bind(now)
                .bind(workspace.as_str())
                .bind(conflict.slug.as_str())
                .bind(conflict.entity)
                .bind(conflict.record_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(insert)
                .bind(id.as_str())
                .bind(workspace.as_str())
                .bind(conflict.slug.as_str())
                .bind(conflict.entity)
                .bind(conflict.record_id)
                .bind(conflict.crm_id.map(CrmId::as_str))
                .bind(Json(conflict.app_values))
                .bind(Json(conflict.crm_values))
                .bind(conflict.base_values.map(Json))
                .bind(Json(conflict.conflicting_fields))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(id)
    }

    /// One conflict of a workspace.
    pub async fn get_conflict(&self, workspace: &WorkspaceId, conflict_id: &ConflictId) -> StoreResult<SyncConflict> {
        let sql = format!("select {COLUMNS} from sync_conflicts where workspace_id = $1 and conflict_id = $2");
        let row = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(conflict_id.as_str()).fetch_one(pool).await)?;
        row.try_into()
    }

    /// A workspace's conflicts, newest first.
    #[tracing::instrument(name = "store.list_conflicts", skip_all, fields(workspace = %workspace))]
    pub async fn list_conflicts(
        &self,
        workspace: &WorkspaceId,
        filter: &ConflictFilter,
    ) -> StoreResult<Vec<SyncConflict>> {
        let far = super::far_future();
        let (before_at, before_id) =
            filter.before.as_ref().map_or((far, String::new()), |(at, id)| (*at, id.as_str().to_owned()));
        let sql = format!(
            "select {COLUMNS} from sync_conflicts where workspace_id = $1 and ($2 = '' or status = $2) \
             and ($3 = '' or integration_slug = $3) and ($4 = '' or entity = $4) and ($5 = '' or record_id = $5) \
             and (created_at < $6 or (created_at = $6 and $7 <> '' and conflict_id < $7)) \
             order by created_at desc, conflict_id desc limit $8"
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str())
            .bind(filter.status.map_or("", ConflictStatus::as_str))
            .bind(filter.integration.as_deref().unwrap_or(""))
            .bind(filter.entity.as_deref().unwrap_or(""))
            .bind(filter.record_id.as_deref().unwrap_or(""))
            .bind(before_at)
            .bind(before_id)
            .bind(filter.limit.clamp(1, 500))
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// How many conflicts of an integration wait for a user.
    pub async fn pending_conflict_count(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> StoreResult<i64> {
        let sql = "select count(*) from sync_conflicts where workspace_id = $1 and integration_slug = $2 \
                   and status = 'pending'";
        Ok(with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).fetch_one(pool).await)?)
    }

    /// Closes a pending conflict as `resolved` or `ignored`; `false` if it was no longer pending.
    pub async fn close_conflict(
        &self,
        workspace: &WorkspaceId,
        conflict_id: &ConflictId,
        status: ConflictStatus,
        resolution: &Value,
        by: &str,
    ) -> StoreResult<bool> {
        let sql = "update sync_conflicts set status = $1, resolution = $2, resolved_by = $3, resolved_at = $4 \
                   where workspace_id = $5 and conflict_id = $6 and status = 'pending'";
        let n = with_pool!(self, pool => sqlx::query(sql)
            .bind(status.as_str()).bind(Json(resolution)).bind(by).bind(Utc::now()).bind(workspace.as_str()).bind(conflict_id.as_str())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}
