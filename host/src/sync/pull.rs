//! Pulling CRM records into the workspace: page through the CRM, find each record's workspace
//! record (by link, else by match key, else import a new one under a deterministic id, so a
//! retried pull never makes two), merge, write what changed, and remember the newest CRM change
//! seen (the next incremental pull starts there).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use super::filters::all_match;
use super::job::{Fatal, Job, Outcome, host_error, required, store_fatal};
use super::mapping::EntityMappings;
use super::merge::{MergeOutcome, Side, merge};
use super::push::{Done, LinkBatch};
use super::values::{coerce_like, fields_by_name, parse_instant};
use crate::domain::RecordId;
use crate::domain::storable::nul_position;
use crate::plugins::bindings::adapter::{CrmRecord, PullRequest};
use crate::store::{LinkStatus, LinkWrite, NewConflict, RecordChange, RecordLink, StoredRecord};

/// What a pull does with workspace-side changes it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PullMode {
    /// A pull only: they stay pending for a later push.
    PullOnly,
    /// Part of a two-way sync: the push phase that follows sends them.
    TwoWay,
}

/// The workspace record id a CRM record is imported under: derived from the CRM id, so importing
/// the same CRM record twice (a retry after a crash) finds the first import.
pub fn import_id(slug: &str, crm_id: &str) -> String {
    let clean: String = crm_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    let mut id = format!("{slug}-{clean}");
    id.truncate(128);
    id
}

impl Job {
    /// Pulls an entity page by page; returns the newest CRM modification time seen. In a two-way
    /// sync the entity's cursor moves to it: after every page of an incremental pull (its pages
    /// come oldest change first, so a restart resumes where this one stopped), at the end of a
    /// full one (whose pages come in no time order).
    pub(super) async fn pull_entity(
        &mut self,
        mappings: &EntityMappings,
        since: Option<String>,
        limit: Option<u32>,
        crm_ids: Vec<String>,
        mode: PullMode,
    ) -> Result<Option<String>, Fatal> {
        let save_cursor = mode == PullMode::TwoWay && crm_ids.is_empty() && limit.is_none();
        let incremental = since.is_some();
        let mut newest: Option<(DateTime<Utc>, String)> = None;
        let mut remaining = limit.map(|l| l as usize);
        let fields = mappings.pull_fields();
        let by_ids = !crm_ids.is_empty();
        let mut cursor: Option<String> = None;
        loop {
            let page_size = remaining.map_or(super::MAX_BATCH, |r| r.min(super::MAX_BATCH));
            if page_size == 0 {
                break;
            }
            let request = PullRequest {
                entity: mappings.entity.to_string(),
                cursor: cursor.clone(),
                modified_since: since.clone(),
                ids: crm_ids.clone(),
                fields: fields.clone(),
                limit: page_size as u32,
            };
            let (plugin, context) = (self.plugin.clone(), self.context.clone());
            let page = required("pull", self.call("pull", || plugin.pull(context.clone(), &request)).await)?;
            let mut records = page.records;
            if let Some(r) = remaining.as_mut() {
                records.truncate(*r);
                *r -= records.len();
            }
            for record in &records {
                if let Some(at) = record.modified_at.as_deref().and_then(|s| parse_instant(s).map(|t| (t, s)))
                    && newest.as_ref().is_none_or(|(n, _)| at.0 > *n)
                {
                    newest = Some((at.0, at.1.to_owned()));
                }
            }
            let records = self.refuse_unstorable(mappings, records);
            self.merge_page(mappings, &records, mode).await?;
            self.flush().await?;
            if save_cursor && incremental {
                self.save_cursor(mappings, newest.as_ref()).await?;
            }
            match page.next_cursor {
                Some(next) if !by_ids || !records.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        if save_cursor {
            self.save_cursor(mappings, newest.as_ref()).await?;
        }
        Ok(newest.map(|(_, raw)| raw))
    }

    async fn save_cursor(
        &self,
        mappings: &EntityMappings,
        newest: Option<&(DateTime<Utc>, String)>,
    ) -> Result<(), Fatal> {
        let Some((_, raw)) = newest else { return Ok(()) };
        self.store.set_pull_cursor(&self.workspace, &self.slug, &mappings.entity, raw).await.map_err(store_fatal)
    }

    /// Fails, one by one, the CRM records the store cannot hold (a NUL character in their id or a
    /// pulled value) and returns the rest: one bad value never stops the run.
    fn refuse_unstorable(&mut self, mappings: &EntityMappings, records: Vec<CrmRecord>) -> Vec<CrmRecord> {
        let mut storable = Vec::with_capacity(records.len());
        for record in records {
            let view = Json::Object(mappings.crm_view(&fields_by_name(&record.fields)));
            let problem = if record.id.contains('\0') {
                Some("its CRM id contains a NUL character".to_owned())
            } else {
                nul_position(&view).map(|field| {
                    format!("the CRM's value for `{field}` contains a NUL character, which crmhost does not store")
                })
            };
            match problem {
                None => storable.push(record),
                Some(problem) => {
                    let error = host_error(
                        "invalid_value",
                        format!("{problem}; remove it in the CRM and the next sync brings the record"),
                    );
                    let crm_id = record.id.replace('\0', "\\u0000");
                    self.record(&mappings.entity, None, Some(&crm_id), Outcome::Failed, Some(error));
                }
            }
        }
        storable
    }

    /// Merges one page of CRM records into the workspace.
    async fn merge_page(&mut self, mappings: &EntityMappings, page: &[CrmRecord], mode: PullMode) -> Result<(), Fatal> {
        let entity = mappings.entity.clone();
        let (ws, slug) = (self.workspace.clone(), self.slug.clone());
        let crm_ids: Vec<String> = page.iter().map(|r| r.id.clone()).collect();
        let links: HashMap<String, RecordLink> = self
            .store
            .links_for_crm_ids(&ws, &slug, &entity, &crm_ids)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .filter_map(|l| l.crm_id.clone().map(|id| (id, l)))
            .collect();

        // Unlinked CRM records may match workspace records on the match key.
        let views: Vec<Map<String, Json>> =
            page.iter().map(|r| mappings.crm_view(&fields_by_name(&r.fields))).collect();
        let key_field = mappings.match_app_field().map(|m| m.app_field.clone());
        let key_of = |view: &Map<String, Json>| -> Option<String> {
            let field = key_field.as_ref()?;
            view.get(field.as_str()).and_then(Json::as_str).filter(|s| !s.is_empty()).map(str::to_lowercase)
        };
        let wanted_keys: Vec<String> = page
            .iter()
            .zip(&views)
            .filter(|(r, _)| !r.deleted && !links.contains_key(&r.id))
            .filter_map(|(_, v)| key_of(v))
            .collect();
        let mut by_key: HashMap<String, Vec<StoredRecord>> = HashMap::new();
        if let Some(field) = &key_field
            && !wanted_keys.is_empty()
        {
            let found =
                self.store.find_records_by_field(&ws, &entity, field, &wanted_keys).await.map_err(store_fatal)?;
            let found_ids: Vec<String> = found.iter().map(|r| r.id.clone()).collect();
            let taken: std::collections::HashSet<String> = self
                .store
                .links_for_records(&ws, &slug, &entity, &found_ids)
                .await
                .map_err(store_fatal)?
                .into_iter()
                .filter(|l| l.crm_id.is_some())
                .map(|l| l.record_id)
                .collect();
            for record in found.into_iter().filter(|r| !taken.contains(&r.id)) {
                if let Some(key) = record.fields.get(field.as_str()).and_then(Json::as_str).map(str::to_lowercase) {
                    by_key.entry(key).or_default().push(record);
                }
            }
        }
        let linked_ids: Vec<String> = links.values().map(|l| l.record_id.clone()).collect();
        let linked_records: HashMap<String, StoredRecord> = self
            .store
            .get_records(&ws, &entity, &linked_ids)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();

        // First decide for every CRM record; then write the page's record changes in one
        // transaction and its links in another.
        let mut changes: Vec<RecordChange> = Vec::new();
        let mut plans: Vec<Plan<'_>> = Vec::new();
        let mut links_out = LinkBatch::default();
        let mut deletions: Vec<(String, String)> = Vec::new();
        let settings = self.settings.clone();
        let filters = settings.filters_of(&entity);
        for (crm, crm_view) in page.iter().zip(&views) {
            let crm_at = crm.modified_at.as_deref().and_then(parse_instant);
            let link = links.get(&crm.id);
            if crm.deleted {
                if let Some(link) = link {
                    if self.settings.propagate_deletes {
                        deletions.push((link.record_id.clone(), crm.id.clone()));
                    } else {
                        let why = host_error("deleted", "deleted in the CRM (deletes are not propagated)");
                        self.record(&entity, Some(&link.record_id), Some(&crm.id), Outcome::Skipped, Some(why));
                    }
                }
                continue;
            }
            // Filtered out: not this integration's business, in either direction.
            if !all_match(filters, crm_view) {
                continue;
            }
            let target = match link {
                Some(link) => linked_records.get(&link.record_id).map(|record| (record.clone(), Some(link.clone()))),
                None => match key_of(crm_view).and_then(|k| by_key.get_mut(&k)) {
                    Some(candidates) if candidates.len() > 1 => {
                        let ids: Vec<&str> = candidates.iter().map(|r| r.id.as_str()).collect();
                        let error = host_error(
                            "duplicate",
                            format!("its match key matches {} workspace records ({})", ids.len(), ids.join(", ")),
                        );
                        self.record(&entity, None, Some(&crm.id), Outcome::Failed, Some(error));
                        continue;
                    }
                    // One CRM record claims the candidate; a second CRM record with the same key imports.
                    Some(candidates) => candidates.pop().map(|r| (r, None)),
                    None => None,
                },
            };
            let Some((record, link)) = target else {
                if !self.settings.create_missing {
                    // Only records already in the workspace are kept in step.
                    continue;
                }
                let Ok(id) = RecordId::parse(&import_id(self.slug.as_str(), &crm.id)) else {
                    let error = host_error("invalid", format!("cannot derive a workspace id from CRM id `{}`", crm.id));
                    self.record(&entity, None, Some(&crm.id), Outcome::Failed, Some(error));
                    continue;
                };
                let fields =
                    crm_view.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
                changes.push(RecordChange { id, fields, expected_version: None });
                plans.push(Plan { crm, crm_view, crm_at, change: Some(changes.len() - 1), kind: PlanKind::Import });
                continue;
            };
            if record.deleted_at.is_some() {
                let why = host_error("deleted", "deleted in the workspace (deletes are not propagated)");
                self.record(&entity, Some(&record.id), Some(&crm.id), Outcome::Skipped, Some(why));
                continue;
            }
            let app_view = mappings.app_view(&record.fields);
            let base = link.as_ref().and_then(|l| l.base.as_ref());
            let out = merge(
                mappings,
                Side { values: &app_view, changed_at: Some(record.updated_at) },
                Side { values: crm_view, changed_at: crm_at },
                base,
                self.strategy,
            );
            if !out.conflicts.is_empty() {
                let conflict = NewConflict {
                    slug: &self.slug,
                    entity: entity.as_str(),
                    record_id: &record.id,
                    crm_id: Some(&crm.id),
                    app_values: &app_view,
                    crm_values: crm_view,
                    base_values: base,
                    conflicting_fields: &out.conflicts,
                };
                let conflict_id = self.store.record_conflict(&self.workspace, &conflict).await.map_err(store_fatal)?;
                let error = serde_json::json!({
                    "kind": "conflict",
                    "message": format!("changed on both sides: {}", out.conflicts.join(", ")),
                    "conflict_id": conflict_id,
                });
                let write = LinkWrite {
                    crm_id: Some(crm.id.clone()),
                    crm_modified_at: crm_at,
                    ..LinkWrite::status(&record.id, LinkStatus::Conflict, Some(error))
                };
                let detail =
                    serde_json::json!({ "kind": "conflict", "conflict_id": conflict_id, "fields": out.conflicts });
                links_out.push(write, Done::new(&record.id, Some(&crm.id), Outcome::Conflict, Some(detail)));
                continue;
            }
            let change = if out.to_app.is_empty() {
                None
            } else {
                let fields =
                    out.to_app.iter().map(|(k, v)| (k.clone(), coerce_like(v.clone(), record.fields.get(k)))).collect();
                let id = RecordId::parse(&record.id).map_err(Fatal)?;
                changes.push(RecordChange { id, fields, expected_version: Some(record.version) });
                Some(changes.len() - 1)
            };
            plans.push(Plan {
                crm,
                crm_view,
                crm_at,
                change,
                kind: PlanKind::Merge(Box::new(MergePlan { record, link, out })),
            });
        }

        let written = self.store.apply_record_changes_batch(&ws, &entity, &changes).await.map_err(store_fatal)?;
        for plan in plans {
            let result = plan.change.and_then(|i| written.get(i).cloned().flatten());
            let crm_id = plan.crm.id.as_str();
            match plan.kind {
                PlanKind::Import => {
                    let record = match result {
                        Some(record) => record,
                        // Imported before (a retry after a crash between the import and its link): link it.
                        None => {
                            let id = plan
                                .change
                                .map(|i| changes[i].id.clone())
                                .ok_or_else(|| Fatal("lost an import".to_owned()))?;
                            self.store.get_record(&ws, &entity, &id).await.map_err(store_fatal)?
                        }
                    };
                    let write = LinkWrite {
                        record_id: record.id.clone(),
                        crm_id: Some(crm_id.to_owned()),
                        status: LinkStatus::Synced,
                        base: Some(plan.crm_view.clone()),
                        synced_version: Some(record.version),
                        crm_modified_at: plan.crm_at,
                        last_error: None,
                        synced: true,
                    };
                    links_out.push(write, Done::new(&record.id, Some(crm_id), Outcome::Imported, None));
                }
                PlanKind::Merge(merge_plan) => {
                    let MergePlan { record, link, out } = *merge_plan;
                    let version = match (plan.change, result) {
                        (None, _) => record.version,
                        (Some(_), Some(updated)) => updated.version,
                        (Some(_), None) => {
                            // Changed in the workspace while we merged: the next sync merges it again.
                            let error = host_error(
                                "changed_during_sync",
                                "the workspace record changed during the sync; it will be merged again",
                            );
                            let write = LinkWrite {
                                crm_id: Some(crm_id.to_owned()),
                                ..LinkWrite::status(&record.id, LinkStatus::Pending, Some(error.clone()))
                            };
                            links_out.push(write, Done::new(&record.id, Some(crm_id), Outcome::Failed, Some(error)));
                            continue;
                        }
                    };
                    let needs_push = !out.to_crm.is_empty();
                    let outcome = if link.is_none() {
                        Outcome::Linked
                    } else if !out.to_app.is_empty() {
                        Outcome::Updated
                    } else {
                        Outcome::Unchanged
                    };
                    // Nothing moved (our own write read back, or a change elsewhere): no write.
                    let settled = link.as_ref().is_some_and(|l| {
                        l.status == LinkStatus::Synced
                            && l.synced_version == version
                            && l.base.as_ref() == Some(&out.base)
                    });
                    if outcome == Outcome::Unchanged && !needs_push && settled {
                        self.record(&entity, Some(&record.id), Some(crm_id), outcome, None);
                        continue;
                    }
                    let write = LinkWrite {
                        record_id: record.id.clone(),
                        crm_id: Some(crm_id.to_owned()),
                        status: if needs_push { LinkStatus::Pending } else { LinkStatus::Synced },
                        base: Some(out.base.clone()),
                        // With changes still to push, the old version stays so the push phase finds them.
                        synced_version: if needs_push {
                            Some(link.as_ref().map_or(0, |l| l.synced_version))
                        } else {
                            Some(version)
                        },
                        crm_modified_at: plan.crm_at,
                        last_error: None,
                        synced: !needs_push,
                    };
                    // Records with workspace changes are counted when the push phase sends them; in
                    // a pull only, they are left pending.
                    if outcome != Outcome::Unchanged || !needs_push || mode == PullMode::PullOnly {
                        links_out.push(write, Done::new(&record.id, Some(crm_id), outcome, None));
                    } else {
                        links_out.push_uncounted(write);
                    }
                }
            }
        }
        self.commit_links(&entity, links_out).await?;
        self.apply_crm_deletions(&entity, &deletions).await
    }

    /// Deletes (softly) the workspace records whose CRM records were deleted, and their links.
    async fn apply_crm_deletions(
        &mut self,
        entity: &crate::domain::EntityName,
        deletions: &[(String, String)],
    ) -> Result<(), Fatal> {
        let mut unlinked = Vec::new();
        for (record_id, crm_id) in deletions {
            let id = RecordId::parse(record_id).map_err(Fatal)?;
            self.store.delete_record(&self.workspace, entity, &id).await.map_err(store_fatal)?;
            self.record(entity, Some(record_id), Some(crm_id), Outcome::Deleted, None);
            unlinked.push(record_id.clone());
        }
        self.store.delete_links(&self.workspace, &self.slug, entity, &unlinked).await.map_err(store_fatal)
    }
}

/// What a page's pull does with one CRM record, decided before anything is written.
struct Plan<'a> {
    crm: &'a CrmRecord,
    crm_view: &'a Map<String, Json>,
    crm_at: Option<DateTime<Utc>>,
    /// The index of its record change, if it writes the workspace record.
    change: Option<usize>,
    kind: PlanKind,
}

enum PlanKind {
    /// A new workspace record.
    Import,
    /// A merge into an existing one.
    Merge(Box<MergePlan>),
}

/// A merge decided for an existing workspace record.
struct MergePlan {
    record: StoredRecord,
    link: Option<RecordLink>,
    out: MergeOutcome,
}
