//! Stored credentials: an integration's sealed token blob, its expiry and its credentials
//! version, written at connect and disconnect, and replaced under a lock when tokens refresh.
//!
//! The version is bumped on every change, so a writer that saw version N can replace the tokens
//! only if nobody else did first (compare-and-set). On PostgreSQL a refresh also holds the row
//! lock (`select … for update`) while it talks to the CRM, so a second host instance waits and
//! then finds the new tokens instead of spending the refresh token again. SQLite is one process;
//! there the in-process single flight plus the compare-and-set suffice.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{Integration, IntegrationStatus, Pool, Store, StoreError, StoreResult, with_pool};
use crate::domain::{PluginSlug, WorkspaceId};
use crate::vault::Sealed;

/// An integration's credentials as stored.
#[derive(Debug, Clone)]
pub struct StoredCredentials {
    /// The sealed token set; `None` once disconnected.
    pub sealed: Option<Sealed>,
    /// When the access token expires, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// Bumped on every credential change.
    pub version: i64,
    /// The integration's status.
    pub status: IntegrationStatus,
    /// Non-secret metadata (facts, account).
    pub metadata: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct Row {
    encrypted_tokens: Option<Vec<u8>>,
    token_nonce: Option<Vec<u8>>,
    key_version: Option<i64>,
    token_expires_at: Option<DateTime<Utc>>,
    credentials_version: i64,
    status: String,
    metadata: Json<serde_json::Value>,
}

impl TryFrom<Row> for StoredCredentials {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Self> {
        let sealed = match (r.encrypted_tokens, r.token_nonce, r.key_version) {
            (Some(ciphertext), Some(nonce), Some(key_version)) => Some(Sealed { ciphertext, nonce, key_version }),
            (None, _, _) => None,
            _ => return Err(StoreError::Corrupt("integration has tokens without a nonce or key version".to_owned())),
        };
        Ok(Self {
            sealed,
            expires_at: r.token_expires_at,
            version: r.credentials_version,
            status: IntegrationStatus::parse(&r.status)?,
            metadata: r.metadata.0,
        })
    }
}

const SELECT: &str = "select encrypted_tokens, token_nonce, key_version, token_expires_at, credentials_version, \
                      status, metadata from integrations where workspace_id = $1 and integration_slug = $2";

#[derive(sqlx::FromRow)]
struct RotationRow {
    workspace_id: String,
    integration_slug: String,
    credentials_version: i64,
    encrypted_tokens: Vec<u8>,
    token_nonce: Vec<u8>,
    key_version: i64,
}

/// What a successful connect stores.
#[derive(Debug, Clone)]
pub struct NewConnection<'a> {
    /// The sealed tokens.
    pub sealed: &'a Sealed,
    /// Access-token expiry, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// Non-secret metadata (facts, account, scopes).
    pub metadata: &'a serde_json::Value,
    /// The user who connected.
    pub connected_by: &'a str,
}

/// A sealed value written under a new master key by rotation.
#[derive(Debug, Clone)]
pub struct SealedRow {
    /// The workspace.
    pub workspace_id: String,
    /// The integration.
    pub integration_slug: String,
    /// The credentials version read with it (the rotation's compare-and-set guard).
    pub version: i64,
    /// The value.
    pub sealed: Sealed,
}

impl Store {
    /// An integration's credentials.
    #[tracing::instrument(name = "store.get_credentials", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn get_credentials(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> StoreResult<StoredCredentials> {
        let row = with_pool!(self, pool => sqlx::query_as::<_, Row>(SELECT)
            .bind(workspace.as_str())
            .bind(slug.as_str())
            .fetch_one(pool)
            .await)?;
        row.try_into()
    }

    /// Stores a fresh connection: tokens, expiry, metadata, status `connected`, version bumped.
    /// Creates the integration if it did not exist; keeps its settings if it did.
    #[tracing::instrument(name = "store.save_connection", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn save_connection(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        connection: &NewConnection<'_>,
    ) -> StoreResult<Integration> {
        let now = Utc::now();
        let sql = format!(
            "insert into integrations (integration_id, workspace_id, integration_slug, status, encrypted_tokens, \
             token_nonce, key_version, credentials_version, token_expires_at, metadata, settings, connected_by, \
             connected_at, created_at, updated_at, crm_account_id) \
             values ($1, $2, $3, 'connected', $4, $5, $6, 1, $7, $8, $9, $10, $11, $12, $13, $14) \
             on conflict (workspace_id, integration_slug) do update set \
             status = 'connected', encrypted_tokens = excluded.encrypted_tokens, token_nonce = excluded.token_nonce, \
             key_version = excluded.key_version, credentials_version = integrations.credentials_version + 1, \
             token_expires_at = excluded.token_expires_at, metadata = excluded.metadata, \
             connected_by = excluded.connected_by, connected_at = excluded.connected_at, \
             updated_at = excluded.updated_at, crm_account_id = excluded.crm_account_id, status_reason = null, \
             failure_streak = 0 \
             returning {}",
            super::integrations::COLUMNS
        );
        let row = with_pool!(self, pool => sqlx::query_as::<_, super::integrations::IntegrationRow>(&sql)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(workspace.as_str())
            .bind(slug.as_str())
            .bind(&connection.sealed.ciphertext)
            .bind(&connection.sealed.nonce)
            .bind(connection.sealed.key_version)
            .bind(connection.expires_at)
            .bind(Json(connection.metadata))
            .bind(Json(serde_json::json!({})))
            .bind(connection.connected_by)
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(super::integrations::account_id_of(connection.metadata))
            .fetch_one(pool)
            .await)?;
        row.try_into()
    }

    /// Deletes the stored tokens and marks the integration disconnected.
    #[tracing::instrument(name = "store.clear_credentials", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn clear_credentials(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> StoreResult<()> {
        let sql = "update integrations set status = 'disconnected', encrypted_tokens = null, token_nonce = null, \
                   key_version = null, token_expires_at = null, credentials_version = credentials_version + 1, \
                   updated_at = $1 where workspace_id = $2 and integration_slug = $3";
        let affected = with_pool!(self, pool => sqlx::query(sql)
            .bind(Utc::now())
            .bind(workspace.as_str())
            .bind(slug.as_str())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Locks an integration's credentials for a refresh: on PostgreSQL the row stays locked until
    /// the lock is replaced, marked or released; on SQLite the replace is a compare-and-set.
    #[tracing::instrument(name = "store.lock_credentials", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn lock_credentials(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> StoreResult<CredentialsLock> {
        let (guard, row) = match &self.pool {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let row = sqlx::query_as::<_, Row>(&format!("{SELECT} for update"))
                    .bind(workspace.as_str())
                    .bind(slug.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                (LockGuard::Postgres(tx), row)
            }
            Pool::Sqlite(pool) => {
                let row = sqlx::query_as::<_, Row>(SELECT)
                    .bind(workspace.as_str())
                    .bind(slug.as_str())
                    .fetch_one(pool)
                    .await?;
                (LockGuard::Sqlite(pool.clone()), row)
            }
        };
        Ok(CredentialsLock { guard, workspace: workspace.clone(), slug: slug.clone(), current: row.try_into()? })
    }

    /// Every integration's sealed tokens not sealed with `current_key_version`, for key rotation.
    /// (Pending OAuth flows' PKCE verifiers are not rotated: they live ten minutes, and open with
    /// the previous key while it is still configured.)
    pub async fn sealed_needing_rotation(&self, current_key_version: i64) -> StoreResult<Vec<SealedRow>> {
        let sql = "select workspace_id, integration_slug, credentials_version, encrypted_tokens, token_nonce, key_version \
                   from integrations where encrypted_tokens is not null and key_version <> $1";
        let rows = with_pool!(self, pool => sqlx::query_as::<_, RotationRow>(sql).bind(current_key_version).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|r| SealedRow {
                workspace_id: r.workspace_id,
                integration_slug: r.integration_slug,
                version: r.credentials_version,
                sealed: Sealed { ciphertext: r.encrypted_tokens, nonce: r.token_nonce, key_version: r.key_version },
            })
            .collect())
    }

    /// Writes a re-sealed token blob if the credentials did not change since they were read.
    /// Returns whether it was written (a concurrent refresh wins; rotation retries the row).
    /// The credentials version is not bumped: the tokens are the same, only their key changed.
    pub async fn replace_sealed_tokens(&self, row: &SealedRow, resealed: &Sealed) -> StoreResult<bool> {
        let sql = "update integrations set encrypted_tokens = $1, token_nonce = $2, key_version = $3, updated_at = $4 \
                   where workspace_id = $5 and integration_slug = $6 and credentials_version = $7 and key_version = $8";
        let affected = with_pool!(self, pool => sqlx::query(sql)
            .bind(&resealed.ciphertext)
            .bind(&resealed.nonce)
            .bind(resealed.key_version)
            .bind(Utc::now())
            .bind(&row.workspace_id)
            .bind(&row.integration_slug)
            .bind(row.version)
            .bind(row.sealed.key_version)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }
}

enum LockGuard {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::SqlitePool),
}

/// Credentials held for a refresh. Finish with [`replace`](Self::replace),
/// [`mark_needs_reauth`](Self::mark_needs_reauth) or [`release`](Self::release); dropping it
/// releases the lock too (the transaction rolls back).
pub struct CredentialsLock {
    guard: LockGuard,
    workspace: WorkspaceId,
    slug: PluginSlug,
    current: StoredCredentials,
}

impl std::fmt::Debug for CredentialsLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsLock")
            .field("workspace", &self.workspace)
            .field("slug", &self.slug)
            .field("version", &self.current.version)
            .finish_non_exhaustive()
    }
}

impl CredentialsLock {
    /// The credentials as they were when the lock was taken.
    pub fn current(&self) -> &StoredCredentials {
        &self.current
    }

    /// Replaces the tokens (and metadata) if the version is still the one locked; commits.
    /// Returns the new version, or `Changed` when someone else changed them first.
    pub async fn replace(
        self,
        sealed: &Sealed,
        expires_at: Option<DateTime<Utc>>,
        metadata: &serde_json::Value,
    ) -> StoreResult<i64> {
        let sql = "update integrations set encrypted_tokens = $1, token_nonce = $2, key_version = $3, \
                   token_expires_at = $4, metadata = $5, credentials_version = credentials_version + 1, updated_at = $6 \
                   where workspace_id = $7 and integration_slug = $8 and credentials_version = $9";
        macro_rules! bound {
            () => {
                sqlx::query(sql)
                    .bind(&sealed.ciphertext)
                    .bind(&sealed.nonce)
                    .bind(sealed.key_version)
                    .bind(expires_at)
                    .bind(Json(metadata))
                    .bind(Utc::now())
                    .bind(self.workspace.as_str())
                    .bind(self.slug.as_str())
                    .bind(self.current.version)
            };
        }
        let affected = match self.guard {
            LockGuard::Postgres(mut tx) => {
                let affected = bound!().execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                affected
            }
            LockGuard::Sqlite(ref pool) => bound!().execute(pool).await?.rows_affected(),
        };
        if affected == 1 {
            Ok(self.current.version + 1)
        } else {
            Err(StoreError::Changed("the credentials changed while refreshing"))
        }
    }

    /// Marks the integration `needs_reauth` (the CRM rejected the refresh token); commits.
    pub async fn mark_needs_reauth(self) -> StoreResult<()> {
        let sql = "update integrations set status = 'needs_reauth', updated_at = $1, \
                   status_reason = 'the CRM rejected the stored credentials; reconnect to resume syncing' \
                   where workspace_id = $2 and integration_slug = $3 and credentials_version = $4";
        macro_rules! bound {
            () => {
                sqlx::query(sql)
                    .bind(Utc::now())
                    .bind(self.workspace.as_str())
                    .bind(self.slug.as_str())
                    .bind(self.current.version)
            };
        }
        match self.guard {
            LockGuard::Postgres(mut tx) => {
                bound!().execute(&mut *tx).await?;
                tx.commit().await?;
            }
            LockGuard::Sqlite(ref pool) => {
                bound!().execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Lets go without changing anything.
    pub async fn release(self) {
        if let LockGuard::Postgres(tx) = self.guard {
            let _ = tx.rollback().await;
        }
    }
}
