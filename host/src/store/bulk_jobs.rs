//! Bulk jobs under way: the plugin's latest cursor for an (integration, entity, direction), kept
//! while a run waits on the CRM, so a run resumed after a crash continues the job.

use chrono::Utc;

use super::{Store, StoreResult, with_pool};
use crate::domain::{EntityName, PluginSlug, WorkspaceId};

/// Which way a bulk job moves records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkDirection {
    /// A read from the CRM.
    Pull,
    /// A write to the CRM.
    Push,
}

impl BulkDirection {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
        }
    }
}

/// A job under way, as last saved.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkJob {
    /// The plugin's cursor: passing it back continues the job.
    pub cursor: String,
    /// What the job is (see the migration `0011_bulk_jobs`).
    pub params: serde_json::Value,
}

impl Store {
    /// The job under way for the entity in that direction, if any.
    pub async fn bulk_job(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        direction: BulkDirection,
    ) -> StoreResult<Option<BulkJob>> {
        let sql = "select cursor, params from bulk_jobs where workspace_id = $1 and integration_slug = $2 \
                   and entity = $3 and direction = $4";
        let row: Option<(String, String)> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(direction.as_str())
            .fetch_optional(pool).await)?;
        // Unreadable params (written by another version) mean no job to resume: a new one starts.
        Ok(row.and_then(|(cursor, params)| serde_json::from_str(&params).ok().map(|params| BulkJob { cursor, params })))
    }

    /// Saves the job's latest cursor (and what it is), replacing the entity's previous job.
    pub async fn save_bulk_job(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        direction: BulkDirection,
        job: &BulkJob,
    ) -> StoreResult<()> {
        let sql = "insert into bulk_jobs (workspace_id, integration_slug, entity, direction, cursor, params, \
                   updated_at) values ($1, $2, $3, $4, $5, $6, $7) \
                   on conflict (workspace_id, integration_slug, entity, direction) do update set \
                   cursor = excluded.cursor, params = excluded.params, updated_at = excluded.updated_at";
        let params = job.params.to_string();
        with_pool!(self, pool => sqlx::query(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(direction.as_str())
            .bind(job.cursor.as_str()).bind(params.as_str()).bind(Utc::now())
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Forgets the job: it finished (or failed for good).
    pub async fn clear_bulk_job(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        direction: BulkDirection,
    ) -> StoreResult<()> {
        let sql = "delete from bulk_jobs where workspace_id = $1 and integration_slug = $2 and entity = $3 \
                   and direction = $4";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str()).bind(direction.as_str())
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}
