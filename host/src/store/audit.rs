//! The append-only audit log: who did what to which target, when.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use super::{Store, StoreResult, with_pool};
use crate::domain::WorkspaceId;

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// The workspace, or `None` for operator actions (plugin reloads).
    pub workspace_id: Option<WorkspaceId>,
    /// Who: a user id, `operator`, `system`.
    pub actor: String,
    /// What: `plugin.reload`, `integration.connect`, ...
    pub action: String,
    /// On what: `integration:salesforce`, `plugin:hubspot`, ...
    pub target: String,
    /// Non-secret details.
    pub details: serde_json::Value,
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
    /// Appends an entry and returns its id.
    #[tracing::instrument(name = "store.append_audit", skip_all, fields(action = %entry.action))]
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> StoreResult<i64> {
        let sql = "insert into audit_log (workspace_id, actor, action, target, details, at) \
                   values ($1, $2, $3, $4, $5, $6) returning audit_id";
        let id: i64 = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(entry.workspace_id.as_ref().map(WorkspaceId::as_str))
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.target)
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
