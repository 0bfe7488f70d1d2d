//! The append-only audit log: who did what to which target, when.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use super::{Store, StoreResult, with_pool};
use crate::domain::{ConflictId, PluginSlug, WorkspaceId, stored_enum};

stored_enum!(
    /// What an audit entry records.
    AuditAction {
        /// An operator rescanned the plugins (by API or the directory watcher).
        PluginReload = "plugin.reload",
        /// A user started connecting an integration (sent to the CRM's consent page).
        IntegrationConnectStarted = "integration.connect_started",
        /// The CRM granted access; the integration is connected.
        IntegrationConnected = "integration.connected",
        /// The connect flow failed (refused, expired, the CRM failed).
        IntegrationConnectFailed = "integration.connect_failed",
        /// A user disconnected an integration.
        IntegrationDisconnected = "integration.disconnected",
        /// Refreshing the integration's token failed.
        IntegrationRefreshFailed = "integration.refresh_failed",
        /// A user paused automatic syncs.
        IntegrationPaused = "integration.paused",
        /// A user resumed automatic syncs.
        IntegrationResumed = "integration.resumed",
        /// A user replaced the field mappings.
        MappingsUpdated = "mappings.updated",
        /// A user changed the sync settings.
        SettingsUpdated = "settings.updated",
        /// A run started.
        SyncStarted = "sync.started",
        /// A run ended.
        SyncFinished = "sync.finished",
        /// A user resolved a conflict.
        ConflictResolved = "conflict.resolved",
        /// A user ignored a conflict.
        ConflictIgnored = "conflict.ignored",
        /// An admin made or rotated the integration's webhook secret.
        WebhookSecretRotated = "webhook_secret.rotated",
        /// An admin removed the integration's webhook secret.
        WebhookSecretRevoked = "webhook_secret.revoked",
        /// An admin registered an outbound webhook endpoint.
        WebhookEndpointCreated = "webhook_endpoint.created",
        /// An admin changed an endpoint (URL, events, filter, enabled).
        WebhookEndpointUpdated = "webhook_endpoint.updated",
        /// An admin rotated an endpoint's signing secret.
        WebhookEndpointSecretRotated = "webhook_endpoint.secret_rotated",
        /// An admin removed an endpoint.
        WebhookEndpointDeleted = "webhook_endpoint.deleted",
        /// An admin asked for an event to be delivered again.
        WebhookRedelivered = "webhook_endpoint.redelivered",
    }
);

/// What an audit entry is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// A workspace's integration (`integration:<slug>`).
    Integration(PluginSlug),
    /// A conflict (`conflict:<id>`).
    Conflict(ConflictId),
    /// The plugin set (`plugins`).
    Plugins,
    /// An outbound webhook endpoint (`webhook_endpoint:<id>`).
    WebhookEndpoint(crate::domain::EndpointId),
}

impl std::fmt::Display for AuditTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Integration(slug) => write!(f, "integration:{slug}"),
            Self::Conflict(id) => write!(f, "conflict:{id}"),
            Self::Plugins => f.write_str("plugins"),
            Self::WebhookEndpoint(id) => write!(f, "webhook_endpoint:{id}"),
        }
    }
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// The workspace, or `None` for operator actions (plugin reloads).
    pub workspace_id: Option<WorkspaceId>,
    /// Who: a user id, `operator`, `system`.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// On what.
    pub target: AuditTarget,
    /// Non-secret details.
    pub details: serde_json::Value,
}

impl NewAuditEntry {
    /// An action in a workspace.
    pub fn in_workspace(
        workspace: &WorkspaceId,
        actor: &str,
        action: AuditAction,
        target: AuditTarget,
        details: serde_json::Value,
    ) -> Self {
        Self { workspace_id: Some(workspace.clone()), actor: actor.to_owned(), action, target, details }
    }

    /// A rescan of the plugins by `actor` (`operator`, or `system` for the directory watcher).
    pub fn plugin_reload(actor: &str, report: serde_json::Value) -> Self {
        Self {
            workspace_id: None,
            actor: actor.to_owned(),
            action: AuditAction::PluginReload,
            target: AuditTarget::Plugins,
            details: report,
        }
    }
}

/// A stored entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Monotonic id.
    #[sqlx(rename = "audit_id")]
    pub id: i64,
    /// The workspace.
    pub workspace_id: Option<String>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Details.
    #[schema(value_type = Object)]
    pub details: Json<serde_json::Value>,
    /// When.
    pub at: DateTime<Utc>,
}

impl Store {
    /// Appends an entry for an action that already happened: a failure is logged, not raised,
    /// since undoing the action is not an option.
    pub async fn audit(&self, entry: NewAuditEntry) {
        if let Err(err) = self.append_audit(&entry).await {
            tracing::error!(error = %err, action = %entry.action, "could not write to the audit log");
        }
    }

    /// Appends an entry and returns its id.
    #[tracing::instrument(name = "store.append_audit", skip_all, fields(action = %entry.action))]
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> StoreResult<i64> {
        let sql = "insert into audit_log (workspace_id, actor, action, target, details, at) \
                   values ($1, $2, $3, $4, $5, $6) returning audit_id";
        let id: i64 = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(entry.workspace_id.as_ref().map(WorkspaceId::as_str))
            .bind(&entry.actor)
            .bind(entry.action.as_str())
            .bind(entry.target.to_string())
            .bind(Json(&entry.details))
            .bind(Utc::now())
            .fetch_one(pool)
            .await)?;
        Ok(id)
    }

    /// The newest entries first; for one workspace, or operator entries (`None`).
    pub async fn list_audit(&self, workspace: Option<&WorkspaceId>, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        self.list_audit_page(workspace, limit, None).await
    }

    /// As [`Store::list_audit`], continuing below the entry id `before` (keyset paging).
    #[tracing::instrument(name = "store.list_audit", skip_all)]
    pub async fn list_audit_page(
        &self,
        workspace: Option<&WorkspaceId>,
        limit: i64,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditEntry>> {
        let columns = "audit_id, workspace_id, actor, action, target, details, at";
        let limit = limit.clamp(1, 1000);
        let before = before.unwrap_or(i64::MAX);
        let rows = match workspace {
            Some(ws) => {
                let sql = format!(
                    "select {columns} from audit_log where workspace_id = $1 and audit_id < $2 order by audit_id desc limit $3"
                );
                with_pool!(self, pool => sqlx::query_as::<_, AuditEntry>(&sql).bind(ws.as_str()).bind(before).bind(limit).fetch_all(pool).await)?
            }
            None => {
                let sql = format!(
                    "select {columns} from audit_log where workspace_id is null and audit_id < $1 order by audit_id desc limit $2"
                );
                with_pool!(self, pool => sqlx::query_as::<_, AuditEntry>(&sql).bind(before).bind(limit).fetch_all(pool).await)?
            }
        };
        Ok(rows)
    }
}
