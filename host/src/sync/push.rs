//! Pushing workspace records to the CRM: build each record's CRM fields through the mappings,
//! upsert a batch on the entity's match key (by CRM id once linked), and link each record to the
//! CRM record that came back, with the sent values as the new merge base.
//!
//! A batch goes through named steps: [`Run::load_batch`] reads the records and their links,
//! [`Run::prepare_batch`] decides what each record sends, [`Run::send_batch`] makes the one plugin
//! call, and [`Run::link_sent`] links each record to the CRM record that came back.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use super::filters::all_match;
use super::mapping::EntityMappings;
use super::references::ReferenceIds;
use super::run::{Fatal, Run, error_json, fatal_message, host_error, is_fatal, required, store_fatal};
use super::values::same_value;
use crate::domain::{CrmId, EntityName, ItemOutcome};
use crate::plugins::bindings::adapter::{DeleteOutcome, PushOutcome, PushRecord};
use crate::store::{BulkDirection, LinkStatus, LinkWrite, RecordLink, StoreError, StoredRecord};

/// Which fields a push sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PushMode {
    /// Every pushed field (a manual push: "make the CRM look like this").
    Full,
    /// Only fields changed since the last sync (two-way sync: never overwrite a CRM change to a
    /// field the workspace did not touch).
    Changes,
}

/// A record about to be sent, with what it was linked to.
struct Pending {
    record: StoredRecord,
    crm_id: Option<CrmId>,
    base: Option<Map<String, Json>>,
    sent: PushRecord,
}

/// A batch's workspace records and their links, by record id.
struct Loaded {
    records: HashMap<String, StoredRecord>,
    links: HashMap<String, RecordLink>,
}

/// What the plugin answered for a batch.
enum Sent {
    /// One outcome per record, in order.
    Outcomes(Vec<PushOutcome>),
    /// Refused as a whole; every record was failed, nothing more to do for the batch.
    Refused,
    /// The plugin offers no bulk write for it: send it in batches instead.
    Declined,
}

/// How a batch is sent.
#[derive(Debug, Clone, PartialEq)]
enum Via {
    /// One `push` call (at most [`super::MAX_BATCH`] records).
    Batch,
    /// A bulk job: a new one, or the one a stopped run left (its cursor).
    Bulk { resume: Option<String> },
}

impl Run {
    /// Pushes every record of an entity that has changes, in batches.
    pub(super) async fn push_changes(&mut self, mappings: &EntityMappings) -> Result<(), Fatal> {
        self.resume_bulk_push(mappings).await?;
        let mut after = String::new();
        let (retry, now) = (self.retry_backoff, chrono::Utc::now());
        // A bulk job's worth at a time when bulk writes may be used; sent in batches otherwise.
        let read_size = self.push_read_size();
        loop {
            let ids = self
                .store
                .records_to_push(
                    &self.workspace,
                    &self.slug,
                    &mappings.entity,
                    &after,
                    read_size as i64,
                    |attempts, failed_at| retry.due(attempts, failed_at, now),
                )
                .await
                .map_err(store_fatal)?;
            let Some(last) = ids.last() else { return Ok(()) };
            after = last.clone();
            if self.pushes_in_bulk(&mappings.entity, ids.len()) {
                for chunk in ids.chunks(super::MAX_BATCH) {
                    self.refresh_from_crm(mappings, chunk).await?;
                }
                self.push_records(mappings, &ids, PushMode::Changes, Via::Bulk { resume: None }).await?;
                self.flush().await?;
                continue;
            }
            for chunk in ids.chunks(super::MAX_BATCH) {
                self.refresh_from_crm(mappings, chunk).await?;
                self.push_batch(mappings, chunk, PushMode::Changes).await?;
                self.flush().await?;
            }
        }
    }

    /// Finishes the bulk write a stopped run left for the entity: the same records, as they were
    /// sent, linked from the job's outcomes.
    async fn resume_bulk_push(&mut self, mappings: &EntityMappings) -> Result<(), Fatal> {
        let Some((ids, sent, cursor)) = self.stored_push_job(&mappings.entity).await? else { return Ok(()) };
        tracing::info!(run = %self.run_id, entity = %mappings.entity, records = ids.len(), "continuing the bulk write a stopped run left");
        let references = self.resolve_push_references(mappings, &ids, PushMode::Changes).await?;
        let loaded = self.load_batch(mappings, &ids).await?;
        let batch: Vec<Pending> = ids
            .iter()
            .zip(sent)
            .filter_map(|(id, sent)| {
                let record = loaded.records.get(id)?.clone();
                let link = loaded.links.get(id);
                let (crm_id, base) = (link.and_then(|l| l.crm_id.clone()), link.and_then(|l| l.base.clone()));
                Some(Pending { record, crm_id, base, sent })
            })
            .collect();
        let mut links = LinkBatch::default();
        self.send_and_link(mappings, &batch, Via::Bulk { resume: Some(cursor) }, &references, &mut links).await?;
        self.commit_links(&mappings.entity, links).await?;
        self.clear_bulk_job(&mappings.entity, BulkDirection::Push).await?;
        self.flush().await
    }

    /// Reads the CRM's current values of the linked records about to be pushed and merges them
    /// first, so a CRM change this run's pull did not see (it came later, or the cursor had passed
    /// it, as after an ignored conflict) is merged under the strategy rather than overwritten.
    async fn refresh_from_crm(&mut self, mappings: &EntityMappings, ids: &[String]) -> Result<(), Fatal> {
        let crm_ids: Vec<CrmId> = self
            .store
            .links_for_records(&self.workspace, &self.slug, &mappings.entity, ids)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .filter(|l| l.base.is_some() && l.status != LinkStatus::Conflict)
            .filter_map(|l| l.crm_id)
            .collect();
        if crm_ids.is_empty() || !self.plugin.description().capabilities.pull {
            return Ok(());
        }
        let scope = super::pull::PullScope::Records(crm_ids);
        self.pull_entity(mappings, scope, super::pull::PullMode::TwoWay).await.map(|_| ())
    }

    /// Pushes up to [`super::MAX_BATCH`] records by id.
    pub(super) async fn push_batch(
        &mut self,
        mappings: &EntityMappings,
        ids: &[String],
        mode: PushMode,
    ) -> Result<(), Fatal> {
        self.push_records(mappings, ids, mode, Via::Batch).await
    }

    /// Pushes records by id, in one `push` call or as one bulk job.
    async fn push_records(
        &mut self,
        mappings: &EntityMappings,
        ids: &[String],
        mode: PushMode,
        via: Via,
    ) -> Result<(), Fatal> {
        // Referenced records the CRM lacks are pushed before the batch is read, so a record of
        // this entity pushed first (an account's parent) is read linked.
        let references = self.resolve_push_references(mappings, ids, mode).await?;
        let loaded = self.load_batch(mappings, ids).await?;
        let mut links = LinkBatch::default();
        let batch = self.prepare_batch(mappings, ids, mode, &loaded, &references, &mut links);
        let bulk = via != Via::Batch;
        if !batch.is_empty() {
            self.send_and_link(mappings, &batch, via, &references, &mut links).await?;
        }
        self.commit_links(&mappings.entity, links).await?;
        if bulk {
            // Only once its outcomes are linked: a crash before this resumes the job instead.
            self.clear_bulk_job(&mappings.entity, BulkDirection::Push).await?;
        }
        Ok(())
    }

    /// Sends prepared records and links each to what came back; a bulk write the plugin declines
    /// goes in batches instead.
    async fn send_and_link(
        &mut self,
        mappings: &EntityMappings,
        batch: &[Pending],
        via: Via,
        references: &ReferenceIds,
        links: &mut LinkBatch,
    ) -> Result<(), Fatal> {
        match self.send_batch(mappings, batch, via, links).await? {
            Sent::Outcomes(outcomes) => self.link_sent(mappings, batch, &outcomes, references, links).await,
            Sent::Refused => Ok(()),
            Sent::Declined => {
                self.bulk_declined.insert(mappings.entity.clone());
                for chunk in batch.chunks(super::MAX_BATCH) {
                    if let Sent::Outcomes(outcomes) = self.send_batch(mappings, chunk, Via::Batch, links).await? {
                        self.link_sent(mappings, chunk, &outcomes, references, links).await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Reads a batch's workspace records and their links.
    async fn load_batch(&self, mappings: &EntityMappings, ids: &[String]) -> Result<Loaded, Fatal> {
        let (ws, slug, entity) = (&self.workspace, &self.slug, &mappings.entity);
        let records = self.store.get_records(ws, entity, ids).await.map_err(store_fatal)?;
        let links = self.store.links_for_records(ws, slug, entity, ids).await.map_err(store_fatal)?;
        Ok(Loaded {
            records: records.into_iter().map(|r| (r.id.clone(), r)).collect(),
            links: links.into_iter().map(|l| (l.record_id.clone(), l)).collect(),
        })
    }

    /// Decides what each record of a batch sends; records with nothing to send (missing,
    /// deleted, filtered, in conflict, unchanged, unmappable) are counted or linked here.
    fn prepare_batch(
        &mut self,
        mappings: &EntityMappings,
        ids: &[String],
        mode: PushMode,
        loaded: &Loaded,
        references: &ReferenceIds,
        links: &mut LinkBatch,
    ) -> Vec<Pending> {
        let entity = &mappings.entity;
        let mut batch = Vec::new();
        for id in ids {
            let Some(record) = loaded.records.get(id) else {
                let error = host_error("not_found", format!("no `{entity}` record `{id}` in the workspace"));
                self.record(entity, Some(id), None, ItemOutcome::Failed, Some(error));
                continue;
            };
            if record.deleted_at.is_some() {
                let why = host_error("deleted", "deleted in the workspace");
                self.record(entity, Some(id), None, ItemOutcome::Skipped, Some(why));
                continue;
            }
            let link = loaded.links.get(id);
            if mode == PushMode::Changes && !self.pushes_automatically(entity, record, link) {
                continue;
            }
            if link.is_some_and(|l| l.status == LinkStatus::Conflict) {
                if mode == PushMode::Full {
                    let why = host_error("conflict", "has an unresolved conflict: resolve it first");
                    let crm_id = link.and_then(|l| l.crm_id.as_ref());
                    self.record(entity, Some(id), crm_id, ItemOutcome::Skipped, Some(why));
                }
                // In a two-way sync it was counted where the conflict was found.
                continue;
            }
            let crm_id = link.and_then(|l| l.crm_id.clone());
            let base = link.and_then(|l| l.base.clone());
            let only = match (mode, &base, &crm_id) {
                (PushMode::Changes, Some(base), Some(_)) => {
                    let changed = changed_fields(mappings, record, base);
                    if changed.is_empty() {
                        // Only pull-side or unmapped fields changed: nothing to send.
                        let done = Done::new(id, crm_id.as_ref(), ItemOutcome::Unchanged, None);
                        links.push(synced_link(record, crm_id, None), done);
                        continue;
                    }
                    Some(changed)
                }
                _ => None,
            };
            let fields = match references.to_crm(mappings, &record.fields) {
                Ok(fields) => fields,
                Err((field, message)) => {
                    let error = serde_json::json!({ "kind": "missing_reference", "message": format!("{field}: {message}"), "field": field });
                    links.fail(id, crm_id.as_ref(), error);
                    continue;
                }
            };
            match mappings.outbound(&fields, only.as_deref()) {
                Ok(fields) => {
                    let sent = PushRecord { crm_id: crm_id.as_ref().map(|c| c.as_str().to_owned()), fields };
                    batch.push(Pending { record: record.clone(), crm_id, base, sent });
                }
                Err((field, message)) => {
                    let error = serde_json::json!({ "kind": "invalid", "message": format!("{field}: {message}"), "field": field });
                    links.fail(id, None, error);
                }
            }
        }
        batch
    }

    /// Whether an automatic run pushes this record: it passes the integration's filters and,
    /// with `create_missing` off, the CRM already has it. (A push of named records does as told.)
    fn pushes_automatically(&self, entity: &EntityName, record: &StoredRecord, link: Option<&RecordLink>) -> bool {
        let unlinked = link.and_then(|l| l.crm_id.as_ref()).is_none();
        (self.settings.create_missing || !unlinked) && all_match(self.settings.filters_of(entity), &record.fields)
    }

    /// Sends a batch in one plugin call (or one bulk job). A refusal of the whole batch fails each
    /// of its records; an account-wide one (a daily limit, a revoked token) also stops the run.
    async fn send_batch(
        &mut self,
        mappings: &EntityMappings,
        batch: &[Pending],
        via: Via,
        links: &mut LinkBatch,
    ) -> Result<Sent, Fatal> {
        let entity = &mappings.entity;
        let sent: Vec<PushRecord> = batch.iter().map(|p| p.sent.clone()).collect();
        let (plugin, context) = (self.plugin.clone(), self.context.clone());
        let (entity_name, match_key) = (entity.to_string(), mappings.match_key.clone());
        let result = match via {
            Via::Batch => self.call("push", || plugin.push(context.clone(), &entity_name, &match_key, &sent)).await,
            Via::Bulk { resume } => {
                let record_ids: Vec<String> = batch.iter().map(|p| p.record.id.clone()).collect();
                match self.bulk_push_step(entity, &match_key, &record_ids, &sent, resume).await {
                    Ok(Some(answer)) => Ok(answer),
                    Ok(None) => return Ok(Sent::Declined),
                    Err(err) => Err(err),
                }
            }
        };
        match result {
            Ok(Ok(outcomes)) => Ok(Sent::Outcomes(outcomes)),
            Ok(Err(err)) if is_fatal(&err) => {
                // Not these records' fault: they count in this run as not sent, so its retry
                // covers them, and their links stay as they were, charging no attempt towards
                // parking them.
                let error = error_json(&err);
                for p in batch {
                    self.record(
                        entity,
                        Some(&p.record.id),
                        p.crm_id.as_ref(),
                        ItemOutcome::Failed,
                        Some(error.clone()),
                    );
                }
                self.commit_links(entity, std::mem::take(links)).await?;
                Err(fatal_message(&err))
            }
            Ok(Err(err)) => {
                for p in batch {
                    links.fail(&p.record.id, p.crm_id.as_ref(), error_json(&err));
                }
                Ok(Sent::Refused)
            }
            Err(err) => {
                for p in batch {
                    links.fail(&p.record.id, p.crm_id.as_ref(), host_error("plugin_failed", err.to_string()));
                }
                Ok(Sent::Refused)
            }
        }
    }

    /// Links each sent record to the CRM record that came back, with the sent values merged into
    /// its base. A CRM id already linked to another workspace record (two records with one match
    /// key) fails the later record instead of stealing the link.
    async fn link_sent(
        &mut self,
        mappings: &EntityMappings,
        batch: &[Pending],
        outcomes: &[PushOutcome],
        references: &ReferenceIds,
        links: &mut LinkBatch,
    ) -> Result<(), Fatal> {
        let returned: Vec<CrmId> = outcomes
            .iter()
            .filter_map(|o| match o {
                PushOutcome::Created(id) | PushOutcome::Updated(id) => CrmId::parse(id).ok(),
                PushOutcome::Failed(_) => None,
            })
            .collect();
        let owners: HashMap<CrmId, String> = self
            .store
            .links_for_crm_ids(&self.workspace, &self.slug, &mappings.entity, &returned)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .filter_map(|l| l.crm_id.map(|c| (c, l.record_id)))
            .collect();
        for (i, pending) in batch.iter().enumerate() {
            let id = pending.record.id.as_str();
            let (raw_crm_id, kind) = match outcomes.get(i) {
                Some(PushOutcome::Created(crm_id)) => (crm_id, ItemOutcome::Created),
                Some(PushOutcome::Updated(crm_id)) => (crm_id, ItemOutcome::Updated),
                Some(PushOutcome::Failed(err)) => {
                    links.fail(id, pending.crm_id.as_ref(), error_json(err));
                    continue;
                }
                None => {
                    links.fail(id, None, host_error("internal", "the plugin returned fewer outcomes than records"));
                    continue;
                }
            };
            let crm_id = match CrmId::parse(raw_crm_id) {
                Ok(crm_id) => crm_id,
                Err(why) => {
                    links.fail(id, None, host_error("internal", format!("the plugin returned an unusable {why}")));
                    continue;
                }
            };
            if let Some(owner) = owners.get(&crm_id).filter(|owner| *owner != id) {
                let error = host_error(
                    "duplicate",
                    format!(
                        "the CRM record {crm_id} is already linked to workspace record `{owner}` (same match key?)"
                    ),
                );
                links.fail(id, Some(&crm_id), error);
                continue;
            }
            let mut base = pending.base.clone().unwrap_or_default();
            let mut sent = mappings.sent_as_app(&pending.sent.fields);
            references.back_to_app(mappings, &mut sent);
            base.extend(sent);
            let done = Done::new(id, Some(&crm_id), kind, None);
            links.push(synced_link(&pending.record, Some(crm_id), Some(base)), done);
        }
        Ok(())
    }

    /// Writes a batch's links in one transaction, then counts each record's outcome. Should the
    /// batch hit a CRM id linked elsewhere meanwhile, the links are written one by one instead
    /// and only the offending records fail.
    pub(super) async fn commit_links(&mut self, entity: &EntityName, batch: LinkBatch) -> Result<(), Fatal> {
        let (ws, slug) = (self.workspace.clone(), self.slug.clone());
        match self.store.save_links(&ws, &slug, entity, &batch.writes).await {
            Ok(()) => {
                for done in batch.done.into_iter().flatten() {
                    self.record(entity, Some(&done.record_id), done.crm_id.as_ref(), done.outcome, done.error);
                }
                Ok(())
            }
            Err(StoreError::Conflict { .. }) => {
                for (write, done) in batch.writes.iter().zip(batch.done) {
                    match (self.store.save_link(&ws, &slug, entity, write).await, done) {
                        (Ok(()), None) => {}
                        (Ok(()), Some(done)) => {
                            self.record(entity, Some(&done.record_id), done.crm_id.as_ref(), done.outcome, done.error)
                        }
                        (Err(StoreError::Conflict { .. }), done) => {
                            let done = done.unwrap_or_else(|| {
                                Done::new(&write.record_id, write.crm_id.as_ref(), ItemOutcome::Failed, None)
                            });
                            let crm_id = done.crm_id.as_ref().map_or("?", CrmId::as_str);
                            let error = host_error(
                                "duplicate",
                                format!("the CRM record {crm_id} is linked to another workspace record"),
                            );
                            self.fail_link(entity, &done.record_id, error.clone()).await?;
                            self.record(
                                entity,
                                Some(&done.record_id),
                                done.crm_id.as_ref(),
                                ItemOutcome::Failed,
                                Some(error),
                            );
                        }
                        (Err(other), _) => return Err(store_fatal(other)),
                    }
                }
                Ok(())
            }
            Err(other) => Err(store_fatal(other)),
        }
    }

    /// Deletes in the CRM the records deleted in the workspace (`propagate_deletes`), in batches;
    /// each deleted one loses its link. A record the CRM cannot delete keeps its link, failed.
    pub(super) async fn push_deletes(&mut self, mappings: &EntityMappings) -> Result<(), Fatal> {
        let entity = mappings.entity.clone();
        loop {
            let batch = self
                .store
                .deleted_linked_records(&self.workspace, &self.slug, &entity, super::MAX_BATCH as i64)
                .await
                .map_err(store_fatal)?;
            if batch.is_empty() {
                return Ok(());
            }
            let crm_ids: Vec<String> = batch.iter().map(|(_, c)| c.as_str().to_owned()).collect();
            let (plugin, context, name) = (self.plugin.clone(), self.context.clone(), entity.to_string());
            let result = self.call("delete", || plugin.delete(context.clone(), &name, &crm_ids)).await;
            let outcomes = required("deletes", result)?;
            let mut gone = Vec::new();
            let mut failed = false;
            for (i, (record_id, crm_id)) in batch.iter().enumerate() {
                match outcomes.get(i) {
                    Some(DeleteOutcome::Deleted) => {
                        self.record(&entity, Some(record_id), Some(crm_id), ItemOutcome::Deleted, None);
                        gone.push(record_id.clone());
                    }
                    Some(DeleteOutcome::Failed(err)) => {
                        failed = true;
                        self.record(&entity, Some(record_id), Some(crm_id), ItemOutcome::Failed, Some(error_json(err)));
                    }
                    None => failed = true,
                }
            }
            self.store.delete_links(&self.workspace, &self.slug, &entity, &gone).await.map_err(store_fatal)?;
            self.flush().await?;
            if failed {
                // Those stay linked and are tried again next run; do not loop on them now.
                return Ok(());
            }
        }
    }

    /// Marks a record's link failed with the error (creating the link if needed).
    pub(super) async fn fail_link(&self, entity: &EntityName, record_id: &str, error: Json) -> Result<(), Fatal> {
        let write = LinkWrite::status(record_id, LinkStatus::Failed, Some(error));
        self.store.save_link(&self.workspace, &self.slug, entity, &write).await.map_err(store_fatal)
    }
}

/// Link writes of a batch and what each means for its record, committed together.
#[derive(Default)]
pub(super) struct LinkBatch {
    writes: Vec<LinkWrite>,
    done: Vec<Option<Done>>,
}

impl LinkBatch {
    /// Adds a write and the outcome it records.
    pub(super) fn push(&mut self, write: LinkWrite, done: Done) {
        self.writes.push(write);
        self.done.push(Some(done));
    }

    /// Adds a write whose record is counted elsewhere (a pull leaving changes for the push phase).
    pub(super) fn push_uncounted(&mut self, write: LinkWrite) {
        self.writes.push(write);
        self.done.push(None);
    }

    /// Adds a failure: the link is marked failed with the error.
    pub(super) fn fail(&mut self, record_id: &str, crm_id: Option<&CrmId>, error: Json) {
        self.push(
            LinkWrite::status(record_id, LinkStatus::Failed, Some(error.clone())),
            Done::new(record_id, crm_id, ItemOutcome::Failed, Some(error)),
        );
    }
}

/// One record's outcome, counted once its link is written.
pub(super) struct Done {
    record_id: String,
    crm_id: Option<CrmId>,
    outcome: ItemOutcome,
    error: Option<Json>,
}

impl Done {
    pub(super) fn new(record_id: &str, crm_id: Option<&CrmId>, outcome: ItemOutcome, error: Option<Json>) -> Self {
        Self { record_id: record_id.to_owned(), crm_id: crm_id.cloned(), outcome, error }
    }
}

/// The pushed fields whose workspace value differs from the merge base.
fn changed_fields(mappings: &EntityMappings, record: &StoredRecord, base: &Map<String, Json>) -> Vec<String> {
    let view = mappings.app_view(&record.fields);
    mappings
        .active()
        .filter(|m| m.direction.pushes())
        .map(|m| m.app_field.to_string())
        .filter(|f| !same_value(view.get(f).unwrap_or(&Json::Null), base.get(f).unwrap_or(&Json::Null)))
        .collect()
}

/// The link of a record that synced at the version read.
pub(super) fn synced_link(record: &StoredRecord, crm_id: Option<CrmId>, base: Option<Map<String, Json>>) -> LinkWrite {
    LinkWrite {
        record_id: record.id.clone(),
        crm_id,
        status: LinkStatus::Synced,
        base,
        synced_version: Some(record.version),
        crm_modified_at: None,
        last_error: None,
        synced: true,
    }
}
