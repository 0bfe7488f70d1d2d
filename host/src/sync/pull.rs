//! Pulling CRM records into the workspace: page through the CRM, find each record's workspace
//! record (by link, else by match key, else import a new one under a deterministic id, so a
//! retried pull never makes two), merge, write what changed, and remember the newest CRM change
//! seen (the next incremental pull starts there).
//!
//! A page goes through named steps: [`Run::accept_page`] parses and checks what the plugin
//! returned, [`Run::load_known`] reads what the workspace already has for it, [`Run::plan_page`]
//! decides for every record before anything is written, then the page's record changes are
//! written in one transaction and [`Run::link_planned`] links them.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use super::filters::all_match;
use super::mapping::EntityMappings;
use super::merge::{MergeOutcome, Side, Strategies, merge};
use super::page_reader::{PageReader, ReadPlan};
use super::push::{Done, LinkBatch};
use super::run::{Fatal, Run, host_error, store_fatal};
use super::values::{coerce_like, fields_by_name, parse_instant};
use crate::domain::storable::nul_position;
use crate::domain::{ConflictId, CrmId, EntityName, FieldName, ItemOutcome, RecordId};
use crate::notify::Event;
use crate::notify::event::{RecordChange as RecordChangeKind, RecordFacts};
use std::future::Future;

use crate::plugins::CallError;
use crate::plugins::bindings::AdapterError;
use crate::plugins::bindings::adapter::{CrmRecord, Page as PullPage, PullRequest};
use crate::store::{BulkDirection, LinkStatus, LinkWrite, NewConflict, RecordChange, RecordLink, StoredRecord};

/// What a pull does with workspace-side changes it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PullMode {
    /// A pull only: they stay pending for a later push.
    PullOnly,
    /// Part of a two-way sync: the push phase that follows sends them.
    TwoWay,
}

/// Which CRM records a pull asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PullScope {
    /// Every record, or only those the CRM changed at or after `since` (RFC 3339); at most
    /// `limit` of them.
    Changed {
        /// The instant to start from; `None` for everything.
        since: Option<String>,
        /// The most records to bring.
        limit: Option<u32>,
    },
    /// Only these records (a retry, a webhook's changes, a refresh before a push).
    Records(Vec<CrmId>),
}

impl PullScope {
    /// The scope of a stored pull request: its CRM ids if it names any, else what changed.
    pub(super) fn of_request(since: Option<String>, limit: Option<u32>, crm_ids: Vec<CrmId>) -> Self {
        if crm_ids.is_empty() { Self::Changed { since, limit } } else { Self::Records(crm_ids) }
    }

    pub(super) fn since(&self) -> Option<String> {
        match self {
            Self::Changed { since, .. } => since.clone(),
            Self::Records(_) => None,
        }
    }

    fn limit(&self) -> Option<usize> {
        match self {
            Self::Changed { limit, .. } => limit.map(|l| l as usize),
            Self::Records(_) => None,
        }
    }

    fn ids(&self) -> Vec<String> {
        match self {
            Self::Changed { .. } => Vec::new(),
            Self::Records(ids) => ids.iter().map(|id| id.as_str().to_owned()).collect(),
        }
    }

    /// Whether the pull sees every change, so the entity's cursor may move to the newest.
    pub(super) fn sees_every_change(&self) -> bool {
        matches!(self, Self::Changed { limit: None, .. })
    }
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

/// The fact that tells a plugin whether this pull sweeps for deletions its incremental reads
/// cannot see: `skip`, or the instant (RFC 3339) to sweep from. Absent: the plugin decides (it
/// sweeps from the pull's own `modified-since`). Plugins whose incremental reads see deletions
/// (Salesforce's `queryAll`) ignore it.
pub const DELETION_SWEEP_FACT: &str = "crmhost.deletion_sweep";

/// What an incremental pull tells the plugin about sweeping for deletions.
#[derive(Debug, Clone, Copy)]
enum Sweep {
    /// Nothing: not a pull that keeps the entity's cursor.
    Unsaid,
    /// Swept recently: skip it.
    NotDue,
    /// Sweep from `since` (the last sweep's start; `None` before the first), then record `started_at`.
    Due { since: Option<DateTime<Utc>>, started_at: DateTime<Utc> },
}

impl Sweep {
    fn fact(self) -> Option<String> {
        match self {
            Self::Unsaid | Self::Due { since: None, .. } => None,
            Self::NotDue => Some("skip".to_owned()),
            Self::Due { since: Some(at), .. } => Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        }
    }
}

/// One page's fetch, running beside the run's writes.
pub(super) type PageFetch =
    std::pin::Pin<Box<dyn Future<Output = Result<Result<PullPage, AdapterError>, CallError>> + Send>>;

/// A CRM record of a page, accepted: its id parsed and its mapped fields in workspace form.
struct Pulled {
    id: CrmId,
    view: Map<String, Json>,
    modified_at: Option<DateTime<Utc>>,
    deleted: bool,
    /// For a record the CRM merged into another: the survivor's id.
    merged_into: Option<CrmId>,
}

/// The field a merged-away record names its survivor in (see the contract's `crm-record`).
pub const MERGED_INTO_FIELD: &str = "crmhost:merged-into";

/// The survivor a deleted record names, if the CRM merged it.
fn merged_into(record: &CrmRecord) -> Option<CrmId> {
    let field = record.fields.iter().find(|f| f.name == MERGED_INTO_FIELD)?;
    let survivor = super::values::to_app_value(&field.value);
    survivor
        .as_str()
        .filter(|_| record.deleted)
        .and_then(|id| CrmId::parse(id).ok())
        .filter(|id| id.as_str() != record.id)
}

/// What the workspace already has for a page: links to its CRM records, the records they link,
/// and unlinked records matching unlinked CRM records on the match key.
struct Known {
    links: HashMap<CrmId, RecordLink>,
    linked: HashMap<String, StoredRecord>,
    by_key: HashMap<String, Vec<StoredRecord>>,
    key_field: Option<FieldName>,
}

impl Known {
    /// The match-key value of a CRM record, compared case-insensitively.
    fn key_of(&self, view: &Map<String, Json>) -> Option<String> {
        match_key_value(self.key_field.as_ref(), view)
    }
}

fn match_key_value(key_field: Option<&FieldName>, view: &Map<String, Json>) -> Option<String> {
    let field = key_field?;
    view.get(field.as_str()).and_then(Json::as_str).filter(|s| !s.is_empty()).map(str::to_lowercase)
}

/// Everything a page's pull decided, before anything is written.
#[derive(Default)]
struct PagePlan<'a> {
    /// Workspace record writes, in one transaction.
    changes: Vec<RecordChange>,
    /// Per CRM record whose workspace record is written or linked.
    plans: Vec<Plan<'a>>,
    /// Links decided outright (conflicts).
    links: LinkBatch,
    /// `(record id, CRM id)` of workspace records to delete (`propagate_deletes`).
    deletions: Vec<(String, CrmId)>,
}

impl Run {
    /// Pulls an entity page by page; returns the newest CRM modification time seen. In a two-way
    /// sync the entity's cursor moves to it: after every page of an incremental pull (its pages
    /// come oldest change first, so a restart resumes where this one stopped), at the end of a
    /// full one (whose pages come in no time order).
    pub(super) async fn pull_entity(
        &mut self,
        mappings: &EntityMappings,
        scope: PullScope,
        mode: PullMode,
    ) -> Result<Option<String>, Fatal> {
        let save_cursor = mode == PullMode::TwoWay && scope.sees_every_change();
        let incremental = scope.since().is_some();
        let sweep =
            if save_cursor && incremental { self.deletion_sweep(&mappings.entity).await? } else { Sweep::Unsaid };
        let mut newest: Option<(DateTime<Utc>, String)> = None;
        let bulk = self.bulk_pull_plan(mappings, &scope).await?;
        // Pages are read ahead by a task while the run writes what was read before.
        let plan = ReadPlan {
            remaining: scope.limit(),
            page_size: if bulk.is_some() { super::bulk::BULK_PAGE } else { super::MAX_BATCH },
            by_ids: matches!(scope, PullScope::Records(_)),
        };
        let mut reader = match &bulk {
            Some(job) => {
                self.set_phase(format!("pulling {} (bulk job)", mappings.entity));
                PageReader::start_at(self.bulk_page_fetcher(mappings, &scope, job), plan, job.resume.clone())
            }
            None => PageReader::start(self.page_fetcher(mappings, &scope, sweep.fact()), plan),
        };
        // A bulk read's pages come in no time order: like a full pull, its cursor moves at the end.
        let cursor_per_page = save_cursor && incremental && bulk.is_none();
        while let Some(records) = reader.next_batch().await? {
            note_newest(&mut newest, &records);
            let mut accepted = self.accept_page(mappings, records);
            let mut views: Vec<&mut Map<String, Json>> = accepted.iter_mut().map(|p| &mut p.view).collect();
            self.resolve_pulled_references(mappings, &mut views, mode).await?;
            self.write_page(mappings, &accepted, mode, cursor_per_page.then_some(&newest)).await?;
            if let Some(job) = &bulk {
                self.keep_bulk_pull(&mappings.entity, job, reader.resume_at()).await?;
            }
        }
        if bulk.is_some() {
            self.clear_bulk_job(&mappings.entity, BulkDirection::Pull).await?;
        }
        if save_cursor {
            self.save_cursor(mappings, newest.as_ref()).await?;
        }
        if let Sweep::Due { started_at, .. } = sweep {
            let (ws, slug, entity) = (&self.workspace, &self.slug, &mappings.entity);
            self.store.set_deletions_swept_at(ws, slug, entity, started_at).await.map_err(store_fatal)?;
        }
        Ok(newest.map(|(_, raw)| raw))
    }

    /// A function fetching one page of `mappings`' entity in `scope` from a cursor: owned, so the
    /// fetch can run while the run writes the page before.
    fn page_fetcher(
        &self,
        mappings: &EntityMappings,
        scope: &PullScope,
        sweep_fact: Option<String>,
    ) -> impl Fn(Option<String>, usize) -> PageFetch + use<> {
        let (caller, plugin, mut context) = (self.caller(), self.plugin.clone(), self.context.clone());
        if let Some(fact) = sweep_fact {
            context.facts.insert(DELETION_SWEEP_FACT.to_owned(), fact);
        }
        let (entity, fields, since, ids) =
            (mappings.entity.to_string(), mappings.pull_fields(), scope.since(), scope.ids());
        move |cursor, size| {
            let request = PullRequest {
                entity: entity.clone(),
                cursor,
                modified_since: since.clone(),
                ids: ids.clone(),
                fields: fields.clone(),
                limit: u32::try_from(size).unwrap_or(u32::MAX),
            };
            let (caller, plugin, context) = (caller.clone(), plugin.clone(), context.clone());
            Box::pin(async move { caller.call("pull", || plugin.pull(context.clone(), &request)).await })
        }
    }

    /// Writes one pulled page: its records and links, the run's items and counts, and (for an
    /// incremental two-way pull) the cursor at the newest change seen so far.
    async fn write_page(
        &mut self,
        mappings: &EntityMappings,
        accepted: &[Pulled],
        mode: PullMode,
        cursor: Option<&Option<(DateTime<Utc>, String)>>,
    ) -> Result<(), Fatal> {
        self.merge_page(mappings, accepted, mode).await?;
        self.flush().await?;
        if let Some(newest) = cursor {
            self.save_cursor(mappings, newest.as_ref()).await?;
        }
        Ok(())
    }

    /// Whether this incremental pull sweeps for deletions: when the last sweep is older than the
    /// interval (or there was none), from the instant that sweep started.
    async fn deletion_sweep(&self, entity: &EntityName) -> Result<Sweep, Fatal> {
        let started_at = Utc::now();
        let last = self.store.deletions_swept_at(&self.workspace, &self.slug, entity).await.map_err(store_fatal)?;
        let interval = chrono::Duration::from_std(self.deletion_sweep).unwrap_or(chrono::Duration::zero());
        Ok(match last {
            Some(at) if started_at - at < interval => Sweep::NotDue,
            since => Sweep::Due { since, started_at },
        })
    }

    async fn save_cursor(
        &self,
        mappings: &EntityMappings,
        newest: Option<&(DateTime<Utc>, String)>,
    ) -> Result<(), Fatal> {
        let Some((_, raw)) = newest else { return Ok(()) };
        self.store.set_pull_cursor(&self.workspace, &self.slug, &mappings.entity, raw).await.map_err(store_fatal)
    }

    /// Accepts a page's records as [`Pulled`], failing one by one those the store cannot hold (an
    /// unusable CRM id, a NUL character in a pulled value): one bad value never stops the run.
    fn accept_page(&mut self, mappings: &EntityMappings, records: Vec<CrmRecord>) -> Vec<Pulled> {
        let mut accepted = Vec::with_capacity(records.len());
        for record in records {
            let view = mappings.crm_view(&fields_by_name(&record.fields));
            let problem = match CrmId::parse(&record.id) {
                Err(_) if record.id.contains('\0') => Err("its CRM id contains a NUL character".to_owned()),
                Err(why) => Err(format!("the plugin returned an unusable {why}")),
                Ok(id) => match field_with_nul(&view) {
                    Some(field) => Err(format!(
                        "the CRM's value for `{field}` contains a NUL character, which crmhost does not store"
                    )),
                    None => Ok(id),
                },
            };
            match problem {
                Ok(id) => accepted.push(Pulled {
                    merged_into: merged_into(&record),
                    id,
                    view,
                    modified_at: record.modified_at.as_deref().and_then(parse_instant),
                    deleted: record.deleted,
                }),
                Err(problem) => {
                    let error = host_error(
                        "invalid_value",
                        format!("{problem}; remove it in the CRM and the next sync brings the record"),
                    );
                    let shown = CrmId::from_stored(record.id.replace('\0', "\\u0000").chars().take(255).collect());
                    self.record(&mappings.entity, None, Some(&shown), ItemOutcome::Failed, Some(error));
                }
            }
        }
        accepted
    }

    /// Merges one page of CRM records into the workspace.
    async fn merge_page(&mut self, mappings: &EntityMappings, page: &[Pulled], mode: PullMode) -> Result<(), Fatal> {
        let mut known = self.load_known(mappings, page).await?;
        let mut plan = self.plan_page(mappings, page, &mut known).await?;
        let written = self
            .store
            .apply_record_changes_batch(&self.workspace, &mappings.entity, &plan.changes)
            .await
            .map_err(store_fatal)?;
        let mut links = std::mem::take(&mut plan.links);
        self.link_planned(mappings, plan.plans, &plan.changes, written, mode, &mut links).await?;
        self.commit_links(&mappings.entity, links).await?;
        self.apply_crm_deletions(&mappings.entity, &plan.deletions).await
    }

    /// Reads what the workspace has for a page: the links to its records, the workspace records
    /// they link, and for unlinked CRM records the still-unlinked workspace records with the same
    /// match key.
    async fn load_known(&self, mappings: &EntityMappings, page: &[Pulled]) -> Result<Known, Fatal> {
        let (ws, slug, entity) = (&self.workspace, &self.slug, &mappings.entity);
        // Survivors of merges too: whether one is linked decides what the merge does.
        let mut crm_ids: Vec<CrmId> = page.iter().map(|r| r.id.clone()).collect();
        crm_ids.extend(page.iter().filter_map(|r| r.merged_into.clone()));
        crm_ids.sort();
        crm_ids.dedup();
        let links: HashMap<CrmId, RecordLink> = self
            .store
            .links_for_crm_ids(ws, slug, entity, &crm_ids)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .filter_map(|l| l.crm_id.clone().map(|id| (id, l)))
            .collect();
        let key_field = mappings.match_app_field().map(|m| m.app_field.clone());
        let wanted_keys: Vec<String> = page
            .iter()
            .filter(|r| !r.deleted && !links.contains_key(&r.id))
            .filter_map(|r| match_key_value(key_field.as_ref(), &r.view))
            .collect();
        let by_key = match &key_field {
            Some(field) if !wanted_keys.is_empty() => self.unlinked_by_key(entity, field, &wanted_keys).await?,
            _ => HashMap::new(),
        };
        let linked_ids: Vec<String> = links.values().map(|l| l.record_id.clone()).collect();
        let linked: HashMap<String, StoredRecord> = self
            .store
            .get_records(ws, entity, &linked_ids)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        Ok(Known { links, linked, by_key, key_field })
    }

    /// Workspace records whose match key is one of `keys` and that no CRM record links yet, by
    /// lower-cased key.
    async fn unlinked_by_key(
        &self,
        entity: &EntityName,
        field: &FieldName,
        keys: &[String],
    ) -> Result<HashMap<String, Vec<StoredRecord>>, Fatal> {
        let (ws, slug) = (&self.workspace, &self.slug);
        let found = self.store.find_records_by_field(ws, entity, field, keys).await.map_err(store_fatal)?;
        let found_ids: Vec<String> = found.iter().map(|r| r.id.clone()).collect();
        let taken: HashSet<String> = self
            .store
            .links_for_records(ws, slug, entity, &found_ids)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .filter(|l| l.crm_id.is_some())
            .map(|l| l.record_id)
            .collect();
        let mut by_key: HashMap<String, Vec<StoredRecord>> = HashMap::new();
        for record in found.into_iter().filter(|r| !taken.contains(&r.id)) {
            if let Some(key) = record.fields.get(field.as_str()).and_then(Json::as_str).map(str::to_lowercase) {
                by_key.entry(key).or_default().push(record);
            }
        }
        Ok(by_key)
    }

    /// Decides for every CRM record of a page: delete, skip, fail, import, merge or conflict.
    async fn plan_page<'a>(
        &mut self,
        mappings: &EntityMappings,
        page: &'a [Pulled],
        known: &mut Known,
    ) -> Result<PagePlan<'a>, Fatal> {
        let entity = mappings.entity.clone();
        let settings = self.settings.clone();
        let filters = settings.filters_of(&entity);
        let mut plan = PagePlan::default();
        // Merges first, so a survivor later in the page finds the workspace record moved to it.
        for crm in page.iter().filter(|r| r.deleted) {
            if let (Some(survivor), Some(link)) = (&crm.merged_into, known.links.get(&crm.id).cloned()) {
                self.plan_crm_merge(&entity, crm, survivor, link, known, &mut plan);
            }
        }
        for crm in page {
            let link = known.links.get(&crm.id).cloned();
            if crm.deleted && crm.merged_into.is_some() {
                continue;
            }
            if crm.deleted {
                if let Some(link) = link {
                    self.plan_crm_deletion(&entity, &link, &crm.id, &mut plan);
                }
                continue;
            }
            // Filtered out: not this integration's business, in either direction.
            if !all_match(filters, &crm.view) {
                continue;
            }
            let Some((record, link)) = self.find_target(&entity, crm, link, known) else { continue };
            match record {
                None if settings.create_missing => self.plan_import(&entity, crm, &mut plan),
                // Only records already in the workspace are kept in step.
                None => {}
                Some(record) => self.plan_merge(mappings, crm, record, link, &mut plan).await?,
            }
        }
        Ok(plan)
    }

    /// A CRM deletion of a linked record: deleted here too with `propagate_deletes`, else skipped.
    fn plan_crm_deletion(&mut self, entity: &EntityName, link: &RecordLink, crm_id: &CrmId, plan: &mut PagePlan<'_>) {
        if self.settings.propagate_deletes {
            plan.deletions.push((link.record_id.clone(), crm_id.clone()));
        } else {
            let why = host_error("deleted", "deleted in the CRM (deletes are not propagated)");
            self.record(entity, Some(&link.record_id), Some(crm_id), ItemOutcome::Skipped, Some(why));
        }
    }

    /// A linked record the CRM merged into `survivor`. If no workspace record follows the
    /// survivor yet, this one does: its link moves to the survivor, keeping its merge base, so the
    /// survivor's values merge into it like any CRM change. If another workspace record already
    /// follows the survivor, the two were duplicates: this one goes the way of a deletion.
    fn plan_crm_merge(
        &mut self,
        entity: &EntityName,
        merged: &Pulled,
        survivor: &CrmId,
        link: RecordLink,
        known: &mut Known,
        plan: &mut PagePlan<'_>,
    ) {
        known.links.remove(&merged.id);
        match known.links.get(survivor) {
            Some(existing) if existing.record_id == link.record_id => {}
            Some(existing) => {
                let message = format!(
                    "merged in the CRM into {survivor}, which workspace record `{}` follows; this duplicate is treated as deleted",
                    existing.record_id
                );
                tracing::info!(record = %link.record_id, merged = %merged.id, %survivor, "CRM merge of two linked records");
                if self.settings.propagate_deletes {
                    plan.deletions.push((link.record_id.clone(), merged.id.clone()));
                } else {
                    let why = host_error("merged", message);
                    self.record(entity, Some(&link.record_id), Some(&merged.id), ItemOutcome::Skipped, Some(why));
                }
            }
            None => {
                let write = LinkWrite {
                    record_id: link.record_id.clone(),
                    crm_id: Some(survivor.clone()),
                    status: link.status,
                    base: link.base.clone(),
                    synced_version: Some(link.synced_version),
                    crm_modified_at: None,
                    last_error: None,
                    synced: false,
                };
                let detail = serde_json::json!({
                    "kind": "merged", "merged_id": merged.id, "into": survivor,
                    "message": format!("merged in the CRM into {survivor}; the record now follows it"),
                });
                plan.links.push(write, Done::new(&link.record_id, Some(survivor), ItemOutcome::Linked, Some(detail)));
                known.links.insert(survivor.clone(), RecordLink { crm_id: Some(survivor.clone()), ..link });
            }
        }
    }

    /// The workspace record a CRM record goes to: the linked one, else the one unlinked record
    /// with its match key (claimed, so a second CRM record with that key imports). `Some(None)`
    /// means none (import it); `None` means the record failed (counted here).
    fn find_target(
        &mut self,
        entity: &EntityName,
        crm: &Pulled,
        link: Option<RecordLink>,
        known: &mut Known,
    ) -> Option<(Option<StoredRecord>, Option<RecordLink>)> {
        if let Some(link) = link {
            return Some((known.linked.get(&link.record_id).cloned(), Some(link)));
        }
        let key = known.key_of(&crm.view);
        match key.and_then(|k| known.by_key.get_mut(&k)) {
            Some(candidates) if candidates.len() > 1 => {
                let ids: Vec<&str> = candidates.iter().map(|r| r.id.as_str()).collect();
                let error = host_error(
                    "duplicate",
                    format!("its match key matches {} workspace records ({})", ids.len(), ids.join(", ")),
                );
                self.record(entity, None, Some(&crm.id), ItemOutcome::Failed, Some(error));
                None
            }
            Some(candidates) => Some((candidates.pop(), None)),
            None => Some((None, None)),
        }
    }

    /// A new workspace record under the id derived from the CRM id.
    fn plan_import<'a>(&mut self, entity: &EntityName, crm: &'a Pulled, plan: &mut PagePlan<'a>) {
        let Ok(id) = RecordId::parse(&import_id(self.slug.as_str(), crm.id.as_str())) else {
            let error = host_error("invalid", format!("cannot derive a workspace id from CRM id `{}`", crm.id));
            self.record(entity, None, Some(&crm.id), ItemOutcome::Failed, Some(error));
            return;
        };
        let fields = crm.view.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
        plan.changes.push(RecordChange { id, fields, expected_version: None });
        plan.plans.push(Plan { crm, change: Some(plan.changes.len() - 1), kind: PlanKind::Import });
    }

    /// Merges a CRM record into its workspace record: a conflict is recorded at once; otherwise
    /// the workspace change (if any) joins the page's writes.
    async fn plan_merge<'a>(
        &mut self,
        mappings: &EntityMappings,
        crm: &'a Pulled,
        record: StoredRecord,
        link: Option<RecordLink>,
        plan: &mut PagePlan<'a>,
    ) -> Result<(), Fatal> {
        if record.deleted_at.is_some() {
            let why = host_error("deleted", "deleted in the workspace (deletes are not propagated)");
            self.record(&mappings.entity, Some(&record.id), Some(&crm.id), ItemOutcome::Skipped, Some(why));
            return Ok(());
        }
        let app_view = mappings.app_view(&record.fields);
        let base = link.as_ref().and_then(|l| l.base.as_ref());
        let out = merge(
            mappings,
            Side { values: &app_view, changed_at: Some(record.updated_at) },
            Side { values: &crm.view, changed_at: crm.modified_at },
            base,
            Strategies { default: self.strategy, rules: self.settings.conflict_rules.get(&mappings.entity) },
        );
        if !out.conflicts.is_empty() {
            let (write, done, conflict_id) =
                self.record_conflict(mappings, crm, &record, &app_view, base, &out).await?;
            let facts = self.record_facts(&mappings.entity, &record.id, &crm.id);
            let event = Event::conflict_detected(self.event_scope(), facts, conflict_id.as_str(), &out.conflicts);
            self.note_event(event);
            plan.links.push(write, done);
            return Ok(());
        }
        let change = if out.to_app.is_empty() {
            None
        } else {
            let fields =
                out.to_app.iter().map(|(k, v)| (k.clone(), coerce_like(v.clone(), record.fields.get(k)))).collect();
            let id = RecordId::parse(&record.id).map_err(Fatal)?;
            plan.changes.push(RecordChange { id, fields, expected_version: Some(record.version) });
            Some(plan.changes.len() - 1)
        };
        plan.plans.push(Plan { crm, change, kind: PlanKind::Merge(Box::new(MergePlan { record, link, out })) });
        Ok(())
    }

    /// Stores a conflict for a user and returns the record's conflict link.
    async fn record_conflict(
        &self,
        mappings: &EntityMappings,
        crm: &Pulled,
        record: &StoredRecord,
        app_view: &Map<String, Json>,
        base: Option<&Map<String, Json>>,
        out: &MergeOutcome,
    ) -> Result<(LinkWrite, Done, ConflictId), Fatal> {
        let conflict = NewConflict {
            slug: &self.slug,
            entity: mappings.entity.as_str(),
            record_id: &record.id,
            crm_id: Some(&crm.id),
            app_values: app_view,
            crm_values: &crm.view,
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
            crm_modified_at: crm.modified_at,
            ..LinkWrite::status(&record.id, LinkStatus::Conflict, Some(error))
        };
        let detail = serde_json::json!({ "kind": "conflict", "conflict_id": conflict_id, "fields": out.conflicts });
        Ok((write, Done::new(&record.id, Some(&crm.id), ItemOutcome::Conflict, Some(detail)), conflict_id))
    }

    /// Which record an event is about.
    fn record_facts<'a>(&'a self, entity: &'a EntityName, record_id: &'a str, crm_id: &'a CrmId) -> RecordFacts<'a> {
        RecordFacts { run_id: &self.run_id, entity, record_id, crm_id: Some(crm_id) }
    }

    /// Notes that a CRM change was written to a workspace record.
    fn note_record_changed(
        &mut self,
        entity: &EntityName,
        record_id: &str,
        crm_id: &CrmId,
        change: RecordChangeKind,
        values: Map<String, Json>,
    ) {
        let event =
            Event::record_changed(self.event_scope(), self.record_facts(entity, record_id, crm_id), change, values);
        self.note_event(event);
    }

    /// Links every planned record after the page's writes: imports as synced, merges as synced
    /// or (with workspace changes still to push) pending, and a record changed in the workspace
    /// meanwhile as pending for the next sync.
    async fn link_planned(
        &mut self,
        mappings: &EntityMappings,
        plans: Vec<Plan<'_>>,
        changes: &[RecordChange],
        written: Vec<Option<StoredRecord>>,
        mode: PullMode,
        links: &mut LinkBatch,
    ) -> Result<(), Fatal> {
        for plan in plans {
            let result = plan.change.and_then(|i| written.get(i).cloned().flatten());
            if let (Some(i), Some(record)) = (plan.change, &result) {
                let change = if matches!(plan.kind, PlanKind::Import) {
                    RecordChangeKind::Created
                } else {
                    RecordChangeKind::Updated
                };
                self.note_record_changed(&mappings.entity, &record.id, &plan.crm.id, change, changes[i].fields.clone());
            }
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
                            self.store.get_record(&self.workspace, &mappings.entity, &id).await.map_err(store_fatal)?
                        }
                    };
                    let write = LinkWrite {
                        record_id: record.id.clone(),
                        crm_id: Some(plan.crm.id.clone()),
                        status: LinkStatus::Synced,
                        base: Some(plan.crm.view.clone()),
                        synced_version: Some(record.version),
                        crm_modified_at: plan.crm.modified_at,
                        last_error: None,
                        synced: true,
                    };
                    links.push(write, Done::new(&record.id, Some(&plan.crm.id), ItemOutcome::Imported, None));
                }
                PlanKind::Merge(merge_plan) => {
                    self.link_merged(mappings, plan.crm, *merge_plan, plan.change.is_some(), result, mode, links)
                }
            }
        }
        Ok(())
    }

    /// Links one merged record (see [`Run::link_planned`]).
    #[allow(clippy::too_many_arguments)]
    fn link_merged(
        &mut self,
        mappings: &EntityMappings,
        crm: &Pulled,
        MergePlan { record, link, out }: MergePlan,
        changed: bool,
        written: Option<StoredRecord>,
        mode: PullMode,
        links: &mut LinkBatch,
    ) {
        let version = match (changed, written) {
            (false, _) => record.version,
            (true, Some(updated)) => updated.version,
            (true, None) => {
                // Changed in the workspace while we merged: the next sync merges it again.
                let error = host_error(
                    "changed_during_sync",
                    "the workspace record changed during the sync; it will be merged again",
                );
                let write = LinkWrite {
                    crm_id: Some(crm.id.clone()),
                    ..LinkWrite::status(&record.id, LinkStatus::Pending, Some(error.clone()))
                };
                links.push(write, Done::new(&record.id, Some(&crm.id), ItemOutcome::Failed, Some(error)));
                return;
            }
        };
        let needs_push = !out.to_crm.is_empty();
        let outcome = if link.is_none() {
            ItemOutcome::Linked
        } else if !out.to_app.is_empty() {
            ItemOutcome::Updated
        } else {
            ItemOutcome::Unchanged
        };
        // Nothing moved (our own write read back, or a change elsewhere): no write.
        let settled = link.as_ref().is_some_and(|l| {
            l.status == LinkStatus::Synced && l.synced_version == version && l.base.as_ref() == Some(&out.base)
        });
        if outcome == ItemOutcome::Unchanged && !needs_push && settled {
            self.record(&mappings.entity, Some(&record.id), Some(&crm.id), outcome, None);
            return;
        }
        let write = LinkWrite {
            record_id: record.id.clone(),
            crm_id: Some(crm.id.clone()),
            status: if needs_push { LinkStatus::Pending } else { LinkStatus::Synced },
            base: Some(out.base.clone()),
            // With changes still to push, the old version stays so the push phase finds them.
            synced_version: if needs_push {
                Some(link.as_ref().map_or(0, |l| l.synced_version))
            } else {
                Some(version)
            },
            crm_modified_at: crm.modified_at,
            last_error: None,
            synced: !needs_push,
        };
        // Records with workspace changes are counted when the push phase sends them; in a pull
        // only, they are left pending.
        if outcome != ItemOutcome::Unchanged || !needs_push || mode == PullMode::PullOnly {
            links.push(write, Done::new(&record.id, Some(&crm.id), outcome, None));
        } else {
            links.push_uncounted(write);
        }
    }

    /// Deletes (softly) the workspace records whose CRM records were deleted, and their links.
    async fn apply_crm_deletions(&mut self, entity: &EntityName, deletions: &[(String, CrmId)]) -> Result<(), Fatal> {
        let mut unlinked = Vec::new();
        for (record_id, crm_id) in deletions {
            let id = RecordId::parse(record_id).map_err(Fatal)?;
            self.store.delete_record(&self.workspace, entity, &id).await.map_err(store_fatal)?;
            self.record(entity, Some(record_id), Some(crm_id), ItemOutcome::Deleted, None);
            self.note_record_changed(entity, record_id, crm_id, RecordChangeKind::Deleted, Map::new());
            unlinked.push(record_id.clone());
        }
        self.store.delete_links(&self.workspace, &self.slug, entity, &unlinked).await.map_err(store_fatal)
    }
}

/// The first mapped field whose value holds a NUL character (see `domain::storable`).
fn field_with_nul(view: &Map<String, Json>) -> Option<String> {
    view.iter().find_map(|(field, value)| nul_position(value).is_some().then(|| field.replace('\0', "?")))
}

/// Moves `newest` to the latest CRM modification time among `records` (kept as the CRM wrote it,
/// for the next incremental pull).
fn note_newest(newest: &mut Option<(DateTime<Utc>, String)>, records: &[CrmRecord]) {
    for record in records {
        if let Some(raw) = record.modified_at.as_deref()
            && let Some(at) = parse_instant(raw)
            && newest.as_ref().is_none_or(|(n, _)| at > *n)
        {
            *newest = Some((at, raw.to_owned()));
        }
    }
}

/// What a page's pull does with one CRM record, decided before anything is written.
struct Plan<'a> {
    crm: &'a Pulled,
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
