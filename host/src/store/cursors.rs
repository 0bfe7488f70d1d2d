//! Pull cursors: where the next incremental pull of an (integration, entity) starts, and when its
//! deletions were last swept.

use chrono::{DateTime, Utc};

use super::{Store, StoreResult, with_pool};
use crate::domain::{EntityName, PluginSlug, WorkspaceId};

impl Store {
    /// The CRM modification time the next incremental pull starts from, if any pull finished.
    pub async fn pull_cursor(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
    ) -> StoreResult<Option<String>> {
        let sql =
            "select modified_since from sync_cursors where workspace_id = $1 and integration_slug = $2 and entity = $3";
        let value: Option<Option<String>> = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).fetch_optional(pool).await)?;
        Ok(value.flatten())
    }

    /// Moves the cursor.
    pub async fn set_pull_cursor(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        modified_since: &str,
    ) -> StoreResult<()> {
        let sql = "insert into sync_cursors (workspace_id, integration_slug, entity, modified_since, updated_at) \
                   values ($1, $2, $3, $4, $5) on conflict (workspace_id, integration_slug, entity) do update set \
                   modified_since = excluded.modified_since, updated_at = excluded.updated_at";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(modified_since).bind(Utc::now())
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// When the last deletion sweep of the entity started, if one finished.
    pub async fn deletions_swept_at(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let sql = "select deletions_swept_at from sync_cursors where workspace_id = $1 and integration_slug = $2 \
                   and entity = $3";
        let value: Option<Option<DateTime<Utc>>> = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).fetch_optional(pool).await)?;
        Ok(value.flatten())
    }

    /// Records a finished deletion sweep that started at `started_at`.
    pub async fn set_deletions_swept_at(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        started_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let sql = "insert into sync_cursors (workspace_id, integration_slug, entity, deletions_swept_at, updated_at) \
                   values ($1, $2, $3, $4, $5) on conflict (workspace_id, integration_slug, entity) do update set \
                   deletions_swept_at = excluded.deletions_swept_at, updated_at = excluded.updated_at";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(started_at).bind(Utc::now())
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}
