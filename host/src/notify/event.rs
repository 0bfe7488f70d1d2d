//! The events crmhost tells the platform about, and the JSON envelope every delivery carries:
//! `{id, type, created_at, workspace_id, data}`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::domain::{CrmId, EntityName, EventId, PluginSlug, RunId, RunStatus, SyncDirection, Trigger, WorkspaceId};
use crate::store::RunCounts;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    /// A run ended with its records handled (some may have failed: see the counts).
    #[serde(rename = "sync.completed")]
    SyncCompleted,
    /// A run ended without writing anything, was interrupted, or stopped at the CRM's daily limit.
    #[serde(rename = "sync.failed")]
    SyncFailed,
    /// A CRM change was written to a workspace record (created, updated or deleted).
    #[serde(rename = "record.changed_from_crm")]
    RecordChangedFromCrm,
    /// A record changed on both sides and waits for a user.
    #[serde(rename = "conflict.detected")]
    ConflictDetected,
    /// The CRM refused the refresh token; a user must connect again.
    #[serde(rename = "integration.needs_reauth")]
    IntegrationNeedsReauth,
    /// Scheduled runs keep failing; the integration shows `error`.
    #[serde(rename = "integration.error")]
    IntegrationError,
    /// A test delivery an admin asked for (never subscribed to).
    #[serde(rename = "ping")]
    Ping,
}

impl EventType {
    /// The types an endpoint can subscribe to.
    pub const SUBSCRIBABLE: &'static [Self] = &[
        Self::SyncCompleted,
        Self::SyncFailed,
        Self::RecordChangedFromCrm,
        Self::ConflictDetected,
        Self::IntegrationNeedsReauth,
        Self::IntegrationError,
    ];

    /// The wire name (`sync.completed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyncCompleted => "sync.completed",
            Self::SyncFailed => "sync.failed",
            Self::RecordChangedFromCrm => "record.changed_from_crm",
            Self::ConflictDetected => "conflict.detected",
            Self::IntegrationNeedsReauth => "integration.needs_reauth",
            Self::IntegrationError => "integration.error",
            Self::Ping => "ping",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::SUBSCRIBABLE.iter().chain([&Self::Ping]).copied().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of a workspace.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its id, the same in every delivery.
    pub id: EventId,
    /// What happened.
    pub kind: EventType,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The workspace it happened in.
    pub workspace: WorkspaceId,
    /// The details (the shape per type is in the README).
    pub data: Map<String, Json>,
}

/// How a workspace record changed because of the CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordChange {
    /// Imported from the CRM.
    Created,
    /// Some fields took the CRM's values.
    Updated,
    /// Deleted because the CRM record was (with `propagate_deletes`).
    Deleted,
}

/// Where in an integration an event happened.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The workspace.
    pub workspace: &'a WorkspaceId,
    /// The integration.
    pub slug: &'a PluginSlug,
}

impl Event {
    fn new(kind: EventType, workspace: &WorkspaceId, data: Json) -> Self {
        let data = match data {
            Json::Object(map) => map,
            _ => Map::new(),
        };
        Self { id: EventId::generate(), kind, created_at: Utc::now(), workspace: workspace.clone(), data }
    }

    /// `sync.completed` or `sync.failed`, by how the run ended.
    pub fn run_ended(scope: Scope<'_>, run: RunFacts<'_>) -> Self {
        let kind = match run.status {
            RunStatus::Completed | RunStatus::Partial => EventType::SyncCompleted,
            RunStatus::Failed | RunStatus::Interrupted | RunStatus::Deferred | RunStatus::Running => {
                EventType::SyncFailed
            }
        };
        let data = json!({
            "integration": scope.slug,
            "run_id": run.run_id,
            "direction": run.direction,
            "entity": run.entity,
            "trigger": run.trigger,
            "status": run.status,
            "counts": run.counts,
            "error": run.error,
        });
        Self::new(kind, scope.workspace, data)
    }

    /// `record.changed_from_crm`: `values` holds the changed fields' new values (empty for a deletion).
    pub fn record_changed(
        scope: Scope<'_>,
        record: RecordFacts<'_>,
        change: RecordChange,
        values: Map<String, Json>,
    ) -> Self {
        let changed: Vec<&String> = values.keys().collect();
        let data = json!({
            "integration": scope.slug,
            "run_id": record.run_id,
            "entity": record.entity,
            "record_id": record.record_id,
            "crm_id": record.crm_id,
            "change": change,
            "changed_fields": changed,
            "values": values,
        });
        Self::new(EventType::RecordChangedFromCrm, scope.workspace, data)
    }

    /// `conflict.detected`.
    pub fn conflict_detected(scope: Scope<'_>, record: RecordFacts<'_>, conflict_id: &str, fields: &[String]) -> Self {
        let data = json!({
            "integration": scope.slug,
            "run_id": record.run_id,
            "entity": record.entity,
            "record_id": record.record_id,
            "crm_id": record.crm_id,
            "conflict_id": conflict_id,
            "fields": fields,
        });
        Self::new(EventType::ConflictDetected, scope.workspace, data)
    }

    /// `integration.needs_reauth`.
    pub fn needs_reauth(scope: Scope<'_>, reason: &str) -> Self {
        let data = json!({ "integration": scope.slug, "status": "needs_reauth", "reason": reason });
        Self::new(EventType::IntegrationNeedsReauth, scope.workspace, data)
    }

    /// `integration.error`.
    pub fn integration_error(scope: Scope<'_>, reason: &str, failed_runs: i64) -> Self {
        let data = json!({
            "integration": scope.slug, "status": "error", "reason": reason, "failed_runs_in_a_row": failed_runs,
        });
        Self::new(EventType::IntegrationError, scope.workspace, data)
    }

    /// `ping`, sent to one endpoint on request.
    pub fn ping(workspace: &WorkspaceId, endpoint: &str) -> Self {
        let data = json!({ "endpoint_id": endpoint, "message": "a test delivery from crmhost" });
        Self::new(EventType::Ping, workspace, data)
    }

    /// The JSON body of every delivery of this event.
    pub fn body(&self) -> String {
        let envelope = json!({
            "id": self.id,
            "type": self.kind,
            "created_at": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "workspace_id": self.workspace,
            "data": self.data,
        });
        envelope.to_string()
    }
}

/// What a run event says about the run.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts<'a> {
    /// The run.
    pub run_id: &'a RunId,
    /// Push, pull or two-way.
    pub direction: SyncDirection,
    /// The entity, when the run had one.
    pub entity: Option<&'a str>,
    /// What started it.
    pub trigger: Trigger,
    /// How it ended.
    pub status: RunStatus,
    /// Its counts.
    pub counts: &'a RunCounts,
    /// Why it stopped, if it did.
    pub error: Option<&'a str>,
}

/// Which record a record event is about.
#[derive(Debug, Clone, Copy)]
pub struct RecordFacts<'a> {
    /// The run that wrote it.
    pub run_id: &'a RunId,
    /// Its entity.
    pub entity: &'a EntityName,
    /// The workspace record.
    pub record_id: &'a str,
    /// The CRM record.
    pub crm_id: Option<&'a CrmId>,
}
