//! Per-workspace webhook secrets: only their SHA-256 is stored (hex), one per integration.

use chrono::{DateTime, Utc};

use super::{Store, StoreResult, with_pool};
use crate::domain::{PluginSlug, WorkspaceId};

/// A stored secret's digest and when it was made.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredWebhookSecret {
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    /// When it was made (or last rotated).
    pub created_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: String,
}

impl Store {
    /// Sets (or replaces: rotation) the integration's webhook secret digest.
    pub async fn put_webhook_secret(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        secret_sha256: &str,
        created_by: &str,
    ) -> StoreResult<DateTime<Utc>> {
        let now = Utc::now();
        let sql = "insert into webhook_secrets (workspace_id, integration_slug, secret_sha256, created_at, created_by) \
                   values ($1, $2, $3, $4, $5) on conflict (workspace_id, integration_slug) do update set \
                   secret_sha256 = excluded.secret_sha256, created_at = excluded.created_at, \
                   created_by = excluded.created_by";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).bind(secret_sha256).bind(now).bind(created_by)
            .execute(pool).await.map(|_| ()))?;
        Ok(now)
    }

    /// The integration's webhook secret digest, if one was made.
    pub async fn webhook_secret(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
    ) -> StoreResult<Option<StoredWebhookSecret>> {
        let sql = "select secret_sha256, created_at, created_by from webhook_secrets \
                   where workspace_id = $1 and integration_slug = $2";
        Ok(with_pool!(self, pool => sqlx::query_as::<_, StoredWebhookSecret>(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).fetch_optional(pool).await)?)
    }

    /// Removes the integration's webhook secret; whether there was one.
    pub async fn delete_webhook_secret(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> StoreResult<bool> {
        let sql = "delete from webhook_secrets where workspace_id = $1 and integration_slug = $2";
        let removed = with_pool!(self, pool => sqlx::query(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(removed > 0)
    }
}
