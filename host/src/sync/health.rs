//! Sync health: where an integration's records stand per entity (linked, synced, pending, failed,
//! in conflict), its last run and failing streak, and what is failing now — the records whose last
//! sync failed, grouped by cause (entity, error kind, CRM code, field), each group retryable at once.
//! Sales ops fix data by cause, not by run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{MAX_BATCH, Operation, SyncEngine, SyncError, Trigger};
use crate::domain::{EntityName, PluginSlug, RecordId, RunId, RunStatus, WorkspaceId};
use crate::store::{LinkStatus, RecordLink, RunFilter, StoreResultExt, SyncRun};

/// Most failing records read to group them (beyond it the report says it is partial).
const MAX_FAILING: i64 = 20_000;
/// Sample records shown per group.
const SAMPLES_PER_GROUP: usize = 5;

/// One entity's records by sync status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EntityCounts {
    /// The entity.
    pub entity: String,
    /// Records linked to a CRM record (or waiting for their first push).
    pub linked: i64,
    /// In step with the CRM.
    pub synced: i64,
    /// With a change waiting to be pushed.
    pub pending: i64,
    /// Whose last sync failed.
    pub failed: i64,
    /// Waiting for a user to settle a conflict.
    pub conflict: i64,
}

/// A run, briefly.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunBrief {
    /// Its id.
    pub run_id: RunId,
    /// Where it is, or how it ended.
    pub status: RunStatus,
    /// What started it.
    pub trigger: Trigger,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
}

/// An integration's sync health.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncHealth {
    /// The integration.
    pub integration: String,
    /// Records by status, per entity.
    pub entities: Vec<EntityCounts>,
    /// The newest run.
    pub last_run: Option<RunBrief>,
    /// Scheduled runs in a row that failed as a whole (0 after a success).
    pub failure_streak: i64,
    /// Conflicts waiting for a user.
    pub pending_conflicts: i64,
    /// Records whose last sync failed, every entity.
    pub failing_records: i64,
}

/// Why records fail: the same entity, error kind, CRM code and field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureCause {
    /// The entity.
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    pub entity: String,
    /// The error kind (`invalid`, `duplicate`, `not_found`, `invalid_value`, …).
    #[schema(max_length = 64)]
    pub kind: String,
    /// The CRM's own error code, if it gave one.
    #[schema(max_length = 128)]
    pub crm_code: Option<String>,
    /// The field the CRM named, if any.
    #[schema(max_length = 255)]
    pub field: Option<String>,
}

/// One failing record of a group.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailureSample {
    /// The workspace record.
    pub record_id: String,
    /// The CRM record, once known.
    pub crm_id: Option<String>,
    /// The last error's message.
    pub message: String,
    /// Failed attempts in a row.
    pub attempts: i64,
}

/// Records failing for one cause.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailureGroup {
    /// The cause (send it back to retry the group).
    pub cause: FailureCause,
    /// In words, with the count: "contact: invalid Email (INVALID_EMAIL_ADDRESS): 12 records".
    pub summary: String,
    /// How many records.
    pub count: i64,
    /// A few of them, with their last error.
    pub samples: Vec<FailureSample>,
}

/// What is failing now, grouped by cause, largest group first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailureReport {
    /// The integration.
    pub integration: String,
    /// The groups.
    pub groups: Vec<FailureGroup>,
    /// Failing records counted.
    pub total: i64,
    /// More records fail than were read (the counts are a floor).
    pub partial: bool,
}

/// The cause of a failed link, from its stored error (`{kind, message, crm_code, field}`).
fn cause_of(link: &RecordLink) -> FailureCause {
    let error = link.last_error.as_ref();
    let text = |key: &str| error.and_then(|e| e.get(key)).and_then(|v| v.as_str()).map(str::to_owned);
    FailureCause {
        entity: link.entity.clone(),
        kind: text("kind").unwrap_or_else(|| "unknown".to_owned()),
        crm_code: text("crm_code"),
        field: text("field"),
    }
}

fn summary(cause: &FailureCause, count: i64) -> String {
    let mut what = cause.kind.replace('_', " ");
    if let Some(field) = &cause.field {
        what.push_str(&format!(" {field}"));
    }
    if let Some(code) = &cause.crm_code {
        what.push_str(&format!(" ({code})"));
    }
    let records = if count == 1 { "record" } else { "records" };
    format!("{}: {what}: {count} {records}", cause.entity)
}

/// Groups failed links by cause, largest first.
fn group(links: Vec<RecordLink>) -> Vec<FailureGroup> {
    let mut groups: BTreeMap<FailureCause, FailureGroup> = BTreeMap::new();
    for link in links {
        let cause = cause_of(&link);
        let group = groups.entry(cause.clone()).or_insert_with(|| FailureGroup {
            cause,
            summary: String::new(),
            count: 0,
            samples: Vec::new(),
        });
        group.count += 1;
        if group.samples.len() < SAMPLES_PER_GROUP {
            let message = link.last_error.as_ref().and_then(|e| e.get("message")).and_then(|m| m.as_str());
            group.samples.push(FailureSample {
                record_id: link.record_id,
                crm_id: link.crm_id.map(|c| c.as_str().to_owned()),
                message: message.unwrap_or_default().to_owned(),
                attempts: link.attempts,
            });
        }
    }
    let mut out: Vec<FailureGroup> = groups
        .into_values()
        .map(|mut g| {
            g.summary = summary(&g.cause, g.count);
            g
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.cause.cmp(&b.cause)));
    out
}

impl SyncEngine {
    /// An integration's sync health.
    #[tracing::instrument(name = "sync.health", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn health(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> Result<SyncHealth, SyncError> {
        let not_connected =
            || SyncError::Connection(crate::connections::ConnectionError::NotConnected(slug.to_string()));
        let schedule = self.store.schedule_state(workspace, slug).await.or_not_found(not_connected)?;
        let mut entities: BTreeMap<String, EntityCounts> = BTreeMap::new();
        if let Ok(plugin) = self.plugin(slug) {
            for e in &plugin.description().entities {
                entities.insert(e.name.clone(), EntityCounts { entity: e.name.clone(), ..EntityCounts::default() });
            }
        }
        for (entity, status, n) in self.store.link_status_counts(workspace, slug).await? {
            let counts =
                entities.entry(entity.clone()).or_insert_with(|| EntityCounts { entity, ..EntityCounts::default() });
            counts.linked += n;
            match status {
                LinkStatus::Synced => counts.synced += n,
                LinkStatus::Pending => counts.pending += n,
                LinkStatus::Failed => counts.failed += n,
                LinkStatus::Conflict => counts.conflict += n,
            }
        }
        let newest = RunFilter { limit: 1, ..RunFilter::default() };
        let last_run = self.store.list_runs(workspace, slug, &newest).await?.into_iter().next().map(|r| RunBrief {
            run_id: r.run_id,
            status: r.status,
            trigger: r.trigger,
            started_at: r.started_at,
            completed_at: r.completed_at,
        });
        let entities: Vec<EntityCounts> = entities.into_values().collect();
        Ok(SyncHealth {
            integration: slug.to_string(),
            failing_records: entities.iter().map(|e| e.failed).sum(),
            entities,
            last_run,
            failure_streak: schedule.failure_streak,
            pending_conflicts: self.store.pending_conflict_count(workspace, slug).await?,
        })
    }

    /// What is failing now: every record whose last sync failed, grouped by cause.
    #[tracing::instrument(name = "sync.failures", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn failures(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> Result<FailureReport, SyncError> {
        self.store.get_integration(workspace, slug).await.or_not_found(|| {
            SyncError::Connection(crate::connections::ConnectionError::NotConnected(slug.to_string()))
        })?;
        let links = self.store.failed_links(workspace, slug, None, MAX_FAILING + 1).await?;
        let partial = links.len() as i64 > MAX_FAILING;
        let groups = group(links.into_iter().take(MAX_FAILING as usize).collect());
        Ok(FailureReport {
            integration: slug.to_string(),
            total: groups.iter().map(|g| g.count).sum(),
            groups,
            partial,
        })
    }

    /// Pushes again every record failing for `cause` (after the data was fixed), in runs of at
    /// most [`MAX_BATCH`] records; returns the runs started. 404 when nothing fails so.
    pub async fn retry_failures(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        cause: &FailureCause,
        user: &str,
    ) -> Result<Vec<SyncRun>, SyncError> {
        let entity = EntityName::parse(&cause.entity).map_err(SyncError::BadInput)?;
        let links = self.store.failed_links(workspace, slug, Some(&entity), MAX_FAILING).await?;
        let ids: Vec<RecordId> =
            links.iter().filter(|l| cause_of(l) == *cause).filter_map(|l| RecordId::parse(&l.record_id).ok()).collect();
        if ids.is_empty() {
            return Err(SyncError::NotFound(format!("no `{}` record fails for this cause now", cause.entity)));
        }
        let mut runs = Vec::new();
        for chunk in ids.chunks(MAX_BATCH) {
            let operation = Operation::Push { entity: entity.clone(), record_ids: chunk.to_vec() };
            runs.push(self.start(workspace, slug, operation, Trigger::Manual, user, None).await?);
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn failed(entity: &str, id: &str, error: serde_json::Value) -> RecordLink {
        RecordLink {
            integration: "salesforce".to_owned(),
            entity: entity.to_owned(),
            record_id: id.to_owned(),
            crm_id: None,
            status: LinkStatus::Failed,
            base: None,
            synced_version: 0,
            crm_modified_at: None,
            last_error: Some(error),
            last_synced_at: None,
            attempts: 2,
        }
    }

    #[test]
    fn failures_group_by_entity_kind_code_and_field_largest_first() {
        let email =
            json!({"kind": "invalid", "message": "bad email", "crm_code": "INVALID_EMAIL_ADDRESS", "field": "Email"});
        let phone = json!({"kind": "invalid", "message": "bad phone", "field": "Phone"});
        let links = vec![
            failed("contact", "c1", email.clone()),
            failed("contact", "c2", phone.clone()),
            failed("contact", "c3", email.clone()),
            failed("lead", "l1", email.clone()),
            failed("contact", "c4", email),
        ];
        let groups = group(links);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].summary, "contact: invalid Email (INVALID_EMAIL_ADDRESS): 3 records");
        assert_eq!(groups[0].samples.iter().map(|s| s.record_id.as_str()).collect::<Vec<_>>(), ["c1", "c3", "c4"]);
        assert_eq!(groups[0].samples[0].message, "bad email");
        assert_eq!(groups.iter().map(|g| g.count).sum::<i64>(), 5);
        assert!(groups.iter().any(|g| g.cause.entity == "lead" && g.count == 1));
    }
}
