//! Integrations: one row per (workspace, plugin) connection, with status and non-secret metadata.
//! Token columns are written by the vault (connect issue); nothing here reads or returns them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{PluginSlug, WorkspaceId};

/// The state of an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    /// Connected and syncing.
    Connected,
    /// Connected, runs nothing.
    Paused,
    /// The CRM rejected the refresh token; a user must reconnect.
    NeedsReauth,
    /// Failing.
    Error,
    /// Tokens deleted.
    Disconnected,
}

impl IntegrationStatus {
    /// Whether the scheduler (and webhooks) run it: connected, or in `error` (retried with
    /// backoff until a run succeeds).
    pub fn runs_on_schedule(self) -> bool {
        matches!(self, Self::Connected | Self::Error)
    }

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Paused => "paused",
            Self::NeedsReauth => "needs_reauth",
            Self::Error => "error",
            Self::Disconnected => "disconnected",
        }
    }

    pub(super) fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "connected" => Self::Connected,
            "paused" => Self::Paused,
            "needs_reauth" => Self::NeedsReauth,
            "error" => Self::Error,
            "disconnected" => Self::Disconnected,
            other => return Err(StoreError::Corrupt(format!("integration status `{other}`"))),
        })
    }
}

/// An integration, without any credential.
#[derive(Debug, Clone, Serialize)]
pub struct Integration {
    /// Stable id.
    pub integration_id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The plugin.
    pub integration_slug: String,
    /// Status.
    pub status: IntegrationStatus,
    /// Non-secret facts (instance_url, account, hub_id).
    pub metadata: serde_json::Value,
    /// Settings (direction, frequency, strategy, filters, entities).
    pub settings: serde_json::Value,
    /// Who connected it.
    pub connected_by: Option<String>,
    /// When.
    pub connected_at: Option<DateTime<Utc>>,
    /// The last completed sync.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When the access token expires, if known.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// Bumped on every credential change (compare-and-set for refresh).
    pub credentials_version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// When the scheduler next runs it (`None`: not scheduled).
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Why it is not running on schedule (paused, needs re-authorization, deferred, backing off).
    pub status_reason: Option<String>,
    /// The CRM account it is connected to (webhooks are routed by it).
    pub crm_account_id: Option<String>,
}

impl Integration {
    /// What the CRM's record-owner fields hold for the connected user, as the plugin reported it
    /// at connect (`account.details.owner_id`).
    pub fn connected_owner_id(&self) -> Option<&str> {
        self.metadata.pointer("/account/details/owner_id").and_then(serde_json::Value::as_str)
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct IntegrationRow {
    integration_id: String,
    workspace_id: String,
    integration_slug: String,
    status: String,
    metadata: Json<serde_json::Value>,
    settings: Json<serde_json::Value>,
    connected_by: Option<String>,
    connected_at: Option<DateTime<Utc>>,
    last_sync_at: Option<DateTime<Utc>>,
    token_expires_at: Option<DateTime<Utc>>,
    credentials_version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    next_sync_at: Option<DateTime<Utc>>,
    status_reason: Option<String>,
    crm_account_id: Option<String>,
}

impl TryFrom<IntegrationRow> for Integration {
    type Error = StoreError;
    fn try_from(r: IntegrationRow) -> StoreResult<Self> {
        Ok(Self {
            status: IntegrationStatus::parse(&r.status)?,
            integration_id: r.integration_id,
            workspace_id: r.workspace_id,
            integration_slug: r.integration_slug,
            metadata: r.metadata.0,
            settings: r.settings.0,
            connected_by: r.connected_by,
            connected_at: r.connected_at,
            last_sync_at: r.last_sync_at,
            token_expires_at: r.token_expires_at,
            credentials_version: r.credentials_version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            next_sync_at: r.next_sync_at,
            status_reason: r.status_reason,
            crm_account_id: r.crm_account_id,
        })
    }
}

/// The CRM account a connection's metadata names, kept in a column: webhooks are routed by it.
pub(super) fn account_id_of(metadata: &serde_json::Value) -> Option<String> {
    metadata.pointer("/account/id").map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

pub(super) const COLUMNS: &str = "integration_id, workspace_id, integration_slug, status, metadata, settings, connected_by, \
                       connected_at, last_sync_at, token_expires_at, credentials_version, created_at, updated_at, \
                       next_sync_at, status_reason, crm_account_id";

impl Store {
    /// Creates the integration or updates its status, metadata and connector; returns it.
    #[tracing::instrument(name = "store.upsert_integration", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn upsert_integration(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        status: IntegrationStatus,
        metadata: &serde_json::Value,
        connected_by: Option<&str>,
    ) -> StoreResult<Integration> {
        let now = Utc::now();
        let account_id = account_id_of(metadata);
        let sql = format!(
            "insert into integrations (integration_id, workspace_id, integration_slug, status, metadata, settings, \
             connected_by, connected_at, created_at, updated_at, crm_account_id) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             on conflict (workspace_id, integration_slug) do update set \
             status = excluded.status, metadata = excluded.metadata, connected_by = excluded.connected_by, \
             connected_at = excluded.connected_at, updated_at = excluded.updated_at, \
             crm_account_id = coalesce(excluded.crm_account_id, integrations.crm_account_id) \
             returning {COLUMNS}"
        );
        let row = with_pool!(self, pool => sqlx::query_as::<_, IntegrationRow>(&sql)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(workspace.as_str())
            .bind(slug.as_str())
            .bind(status.as_str())
            .bind(Json(metadata))
            .bind(Json(serde_json::json!({})))
            .bind(connected_by)
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(account_id.as_deref())
            .fetch_one(pool)
            .await)?;
        row.try_into()
    }

    /// One integration.
    #[tracing::instrument(name = "store.get_integration", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn get_integration(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> StoreResult<Integration> {
        let sql = format!("select {COLUMNS} from integrations where workspace_id = $1 and integration_slug = $2");
        let row = with_pool!(self, pool => sqlx::query_as::<_, IntegrationRow>(&sql)
            .bind(workspace.as_str())
            .bind(slug.as_str())
            .fetch_one(pool)
            .await)?;
        row.try_into()
    }

    /// Every integration of a workspace, by slug.
    #[tracing::instrument(name = "store.list_integrations", skip_all, fields(workspace = %workspace))]
    pub async fn list_integrations(&self, workspace: &WorkspaceId) -> StoreResult<Vec<Integration>> {
        let sql = format!("select {COLUMNS} from integrations where workspace_id = $1 order by integration_slug");
        let rows = with_pool!(self, pool => sqlx::query_as::<_, IntegrationRow>(&sql)
            .bind(workspace.as_str())
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Sets the status; `NotFound` if there is no such integration.
    #[tracing::instrument(name = "store.set_integration_status", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn set_integration_status(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        status: IntegrationStatus,
    ) -> StoreResult<()> {
        let sql =
            "update integrations set status = $1, updated_at = $2 where workspace_id = $3 and integration_slug = $4";
        let result = with_pool!(self, pool => sqlx::query(sql)
            .bind(status.as_str())
            .bind(Utc::now())
            .bind(workspace.as_str())
            .bind(slug.as_str())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if result == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Replaces the settings; `NotFound` if there is no such integration.
    #[tracing::instrument(name = "store.set_integration_settings", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn set_integration_settings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        settings: &serde_json::Value,
    ) -> StoreResult<Integration> {
        let sql = format!(
            "update integrations set settings = $1, updated_at = $2 where workspace_id = $3 and integration_slug = $4 \
             returning {COLUMNS}"
        );
        let row = with_pool!(self, pool => sqlx::query_as::<_, IntegrationRow>(&sql)
            .bind(Json(settings))
            .bind(Utc::now())
            .bind(workspace.as_str())
            .bind(slug.as_str())
            .fetch_one(pool)
            .await)?;
        row.try_into()
    }

    /// Replaces the stored account (`metadata.account`) when the CRM account is still the same one
    /// (a test of the connection refreshes what the plugin reports: the user, owner id, scopes).
    #[tracing::instrument(name = "store.refresh_integration_account", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn refresh_integration_account(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        account: &serde_json::Value,
    ) -> StoreResult<()> {
        let mut metadata = self.get_integration(workspace, slug).await?.metadata;
        let same_account = metadata.pointer("/account/id").is_some_and(|id| Some(id) == account.get("id"));
        let Some(slot) = metadata.get_mut("account").filter(|_| same_account) else {
            return Ok(());
        };
        *slot = account.clone();
        let sql =
            "update integrations set metadata = $1, updated_at = $2 where workspace_id = $3 and integration_slug = $4";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(Json(&metadata)).bind(Utc::now()).bind(workspace.as_str()).bind(slug.as_str())
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Records that a sync run of the integration finished.
    pub async fn touch_last_sync(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> StoreResult<()> {
        let sql = "update integrations set last_sync_at = $1 where workspace_id = $2 and integration_slug = $3";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(Utc::now()).bind(workspace.as_str()).bind(slug.as_str()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}
