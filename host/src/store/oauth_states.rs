//! Pending OAuth flows: one row per `state`, stored hashed, single-use, expiring, bound to the
//! workspace, user and integration that started it. The PKCE verifier is stored sealed by the vault.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{PluginSlug, WorkspaceId};
use crate::vault::Sealed;

/// A flow to remember until the callback.
#[derive(Debug, Clone)]
pub struct NewOAuthState {
    /// SHA-256 of the state value (never the value).
    pub state_hash: String,
    /// The workspace connecting.
    pub workspace: WorkspaceId,
    /// The user connecting.
    pub user_id: String,
    /// The integration.
    pub slug: PluginSlug,
    /// The PKCE verifier, sealed.
    pub verifier: Option<Sealed>,
    /// Where to send the user afterwards.
    pub return_url: Option<String>,
    /// When the state stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// A consumed flow, as the callback needs it.
#[derive(Debug, Clone)]
pub struct PendingOAuth {
    /// The workspace.
    pub workspace_id: String,
    /// The user.
    pub user_id: String,
    /// The integration it was started for.
    pub integration_slug: String,
    /// The sealed PKCE verifier.
    pub verifier: Option<Sealed>,
    /// Where to return.
    pub return_url: Option<String>,
}

/// Why a state was refused at the callback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateRejection {
    /// Never issued (or already purged).
    #[error("unknown OAuth state; start the connection again")]
    Unknown,
    /// Already used once.
    #[error("this OAuth state was already used; start the connection again")]
    Replayed,
    /// Older than its lifetime.
    #[error("the OAuth state expired; start the connection again")]
    Expired,
    /// Issued for another integration.
    #[error("the OAuth state was issued for another integration")]
    WrongIntegration,
}

#[derive(sqlx::FromRow)]
struct Row {
    workspace_id: String,
    user_id: String,
    integration_slug: String,
    encrypted_verifier: Option<Vec<u8>>,
    verifier_nonce: Option<Vec<u8>>,
    key_version: Option<i64>,
    return_url: Option<String>,
    expires_at: DateTime<Utc>,
}

impl Store {
    /// Remembers a flow.
    #[tracing::instrument(name = "store.insert_oauth_state", skip_all, fields(workspace = %state.workspace, slug = %state.slug))]
    pub async fn insert_oauth_state(&self, state: &NewOAuthState) -> StoreResult<()> {
        let sql = "insert into oauth_states (state_hash, workspace_id, user_id, integration_slug, encrypted_verifier, \
                   verifier_nonce, key_version, return_url, created_at, expires_at) \
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let verifier = state.verifier.as_ref();
        with_pool!(self, pool => sqlx::query(sql)
            .bind(&state.state_hash)
            .bind(state.workspace.as_str())
            .bind(&state.user_id)
            .bind(state.slug.as_str())
            .bind(verifier.map(|v| v.ciphertext.clone()))
            .bind(verifier.map(|v| v.nonce.clone()))
            .bind(verifier.map(|v| v.key_version))
            .bind(&state.return_url)
            .bind(Utc::now())
            .bind(state.expires_at)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Uses a state once: marks it used in the same statement that reads it, so two callbacks
    /// racing with one state cannot both succeed. Expiry and integration are checked after
    /// marking, so a refused state cannot be retried either.
    #[tracing::instrument(name = "store.consume_oauth_state", skip_all, fields(slug = %slug))]
    pub async fn consume_oauth_state(
        &self,
        state_hash: &str,
        slug: &PluginSlug,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<PendingOAuth, StateRejection>> {
        let sql = "update oauth_states set used_at = $1 where state_hash = $2 and used_at is null \
                   returning workspace_id, user_id, integration_slug, encrypted_verifier, verifier_nonce, key_version, \
                   return_url, expires_at";
        let row = with_pool!(self, pool => sqlx::query_as::<_, Row>(sql).bind(now).bind(state_hash).fetch_optional(pool).await)?;
        let Some(row) = row else {
            // count(*) is a 64-bit integer on both backends (a bare `1` is 32-bit on PostgreSQL).
            let matching: i64 = with_pool!(self, pool => sqlx::query_scalar("select count(*) from oauth_states where state_hash = $1")
                .bind(state_hash)
                .fetch_one(pool)
                .await)?;
            return Ok(Err(if matching > 0 { StateRejection::Replayed } else { StateRejection::Unknown }));
        };
        if row.expires_at <= now {
            return Ok(Err(StateRejection::Expired));
        }
        if row.integration_slug != slug.as_str() {
            return Ok(Err(StateRejection::WrongIntegration));
        }
        let verifier = match (row.encrypted_verifier, row.verifier_nonce, row.key_version) {
            (Some(ciphertext), Some(nonce), Some(key_version)) => Some(Sealed { ciphertext, nonce, key_version }),
            (None, None, None) => None,
            _ => return Err(StoreError::Corrupt("oauth_states row with a partial verifier".to_owned())),
        };
        Ok(Ok(PendingOAuth {
            workspace_id: row.workspace_id,
            user_id: row.user_id,
            integration_slug: row.integration_slug,
            verifier,
            return_url: row.return_url,
        }))
    }

    /// Deletes states that expired before `now`; returns how many.
    pub async fn purge_expired_oauth_states(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = with_pool!(self, pool => sqlx::query("delete from oauth_states where expires_at < $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}
