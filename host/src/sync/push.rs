//! Pushing workspace records to the CRM: build each record's CRM fields through the mappings,
//! upsert a batch on the entity's match key (by CRM id once linked), and link each record to the
//! CRM record that came back, with the sent values as the new merge base.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use super::filters::all_match;
use super::job::{Fatal, Job, Outcome, error_json, fatal_message, host_error, is_fatal, required, store_fatal};
use super::mapping::EntityMappings;
use super::values::same_value;
use crate::domain::EntityName;
use crate::plugins::bindings::adapter::{DeleteOutcome, PushOutcome, PushRecord};
use crate::store::{LinkStatus, LinkWrite, StoreError, StoredRecord};

/// Which fields a push sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PushMode {
    /// Every pushed field (a manual push: "make the CRM look like this").
    Full,
    /// Only fields changed since the last sync (two-way sync: never overwrite a CRM change to a
    /// field the workspace did not touch).
    Changes,
}

struct Pending {
    record: StoredRecord,
    base: Option<Map<String, Json>>,
    sent: PushRecord,
}

impl Job {
    /// Pushes every record of an entity that has changes, in batches.
    pub(super) async fn push_changes(&mut self, mappings: &EntityMappings) -> Result<(), Fatal> {
        let mut after = String::new();
        loop {
            let ids = self
                .store
                .records_to_push(
                    &self.workspace,
                    &self.slug,
                    &mappings.entity,
                    &after,
                    super::MAX_BATCH as i64,
                    &self.retry_backoff,
                )
                .await
                .map_err(store_fatal)?;
            let Some(last) = ids.last() else { return Ok(()) };
            after = last.clone();
            self.refresh_from_crm(mappings, &ids).await?;
            self.push_batch(mappings, &ids, PushMode::Changes).await?;
            self.flush().await?;
        }
    }

    /// Reads the CRM's current values of the linked records about to be pushed and merges them
    /// first, so a CRM change this run's pull did not see (it came later, or the cursor had passed
    /// it, as after an ignored conflict) is merged under the strategy rather than overwritten.
    async fn refresh_from_crm(&mut self, mappings: &EntityMappings, ids: &[String]) -> Result<(), Fatal> {
        let crm_ids: Vec<String> = self
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
        self.pull_entity(mappings, None, None, crm_ids, super::pull::PullMode::TwoWay).await.map(|_| ())
    }

    /// Pushes up to [`super::MAX_BATCH`] records by id.
    pub(super) async fn push_batch(
        &mut self,
        mappings: &EntityMappings,
        ids: &[String],
        mode: PushMode,
    ) -> Result<(), Fatal> {
        let entity = mappings.entity.clone();
        let (ws, slug) = (self.workspace.clone(), self.slug.clone());
        let records: HashMap<String, StoredRecord> = self
            .store
            .get_records(&ws, &entity, ids)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let links: HashMap<String, crate::store::RecordLink> = self
            .store
            .links_for_records(&ws, &slug, &entity, ids)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .map(|l| (l.record_id.clone(), l))
            .collect();

        let mut batch: Vec<Pending> = Vec::new();
        let mut links_out = LinkBatch::default();
        for id in ids {
            let Some(record) = records.get(id) else {
                let error = host_error("not_found", format!("no `{entity}` record `{id}` in the workspace"));
                self.record(&entity, Some(id), None, Outcome::Failed, Some(error));
                continue;
            };
            if record.deleted_at.is_some() {
                let why = host_error("deleted", "deleted in the workspace");
                self.record(&entity, Some(id), None, Outcome::Skipped, Some(why));
                continue;
            }
            let link = links.get(id);
            if mode == PushMode::Changes {
                // Automatic runs honour the integration's filters and, with `create_missing` off,
                // only update records the CRM already has. (A push of named records does as told.)
                let unlinked = link.and_then(|l| l.crm_id.as_ref()).is_none();
                if !all_match(self.settings.filters_of(&entity), &record.fields)
                    || (unlinked && !self.settings.create_missing)
                {
                    continue;
                }
            }
            if link.is_some_and(|l| l.status == LinkStatus::Conflict) {
                if mode == PushMode::Changes {
                    // Counted where the conflict was found.
                    continue;
                }
                let why = host_error("conflict", "has an unresolved conflict: resolve it first");
                self.record(&entity, Some(id), link.and_then(|l| l.crm_id.as_deref()), Outcome::Skipped, Some(why));
                continue;
            }
            let crm_id = link.and_then(|l| l.crm_id.clone());
            let base = link.and_then(|l| l.base.clone());
            let only = match (mode, &base, &crm_id) {
                (PushMode::Changes, Some(base), Some(_)) => {
                    let view = mappings.app_view(&record.fields);
                    let changed: Vec<String> = mappings
                        .active()
                        .filter(|m| m.direction.pushes())
                        .map(|m| m.app_field.to_string())
                        .filter(|f| !same_value(view.get(f).unwrap_or(&Json::Null), base.get(f).unwrap_or(&Json::Null)))
                        .collect();
                    if changed.is_empty() {
                        // Only pull-side or unmapped fields changed: nothing to send.
                        links_out.push(
                            synced_link(record, crm_id.clone(), None),
                            Done::new(id, crm_id.as_deref(), Outcome::Unchanged, None),
                        );
                        continue;
                    }
                    Some(changed)
                }
                _ => None,
            };
            match mappings.outbound(&record.fields, only.as_deref()) {
                Ok(fields) => batch.push(Pending { record: record.clone(), base, sent: PushRecord { crm_id, fields } }),
                Err((field, message)) => {
                    let error = serde_json::json!({ "kind": "invalid", "message": format!("{field}: {message}"), "field": field });
                    links_out.fail(id, None, error);
                }
            }
        }
        if batch.is_empty() {
            return self.commit_links(&entity, links_out).await;
        }

        let sent: Vec<PushRecord> = batch.iter().map(|p| p.sent.clone()).collect();
        let (plugin, context) = (self.plugin.clone(), self.context.clone());
        let (entity_name, match_key) = (entity.to_string(), mappings.match_key.clone());
        let result = self.call("push", || plugin.push(context.clone(), &entity_name, &match_key, &sent)).await;
        let outcomes = match result {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(err)) if is_fatal(&err) => {
                // An account-wide refusal (a daily limit, a revoked token) is not these records'
                // fault: they count in this run as not sent, so its retry covers them, and their
                // links stay as they were, charging no attempt towards parking them.
                let error = error_json(&err);
                for p in &batch {
                    let crm_id = p.sent.crm_id.as_deref();
                    self.record(&entity, Some(&p.record.id), crm_id, Outcome::Failed, Some(error.clone()));
                }
                self.commit_links(&entity, links_out).await?;
                return Err(fatal_message(&err));
            }
            // The batch as a whole was refused: each of its records fails with that error.
            Ok(Err(err)) => {
                for p in &batch {
                    links_out.fail(&p.record.id, p.sent.crm_id.as_deref(), error_json(&err));
                }
                return self.commit_links(&entity, links_out).await;
            }
            Err(err) => {
                for p in &batch {
                    links_out.fail(
                        &p.record.id,
                        p.sent.crm_id.as_deref(),
                        host_error("plugin_failed", err.to_string()),
                    );
                }
                return self.commit_links(&entity, links_out).await;
            }
        };

        // A CRM id already linked to another workspace record (two records with one match key)
        // fails the later record instead of stealing the link.
        let returned: Vec<String> = outcomes
            .iter()
            .filter_map(|o| match o {
                PushOutcome::Created(id) | PushOutcome::Updated(id) => Some(id.clone()),
                PushOutcome::Failed(_) => None,
            })
            .collect();
        let owners: HashMap<String, String> = self
            .store
            .links_for_crm_ids(&ws, &slug, &entity, &returned)
            .await
            .map_err(store_fatal)?
            .into_iter()
            .filter_map(|l| l.crm_id.map(|c| (c, l.record_id)))
            .collect();
        for (i, pending) in batch.iter().enumerate() {
            let id = pending.record.id.as_str();
            match outcomes.get(i) {
                Some(PushOutcome::Created(crm_id) | PushOutcome::Updated(crm_id))
                    if owners.get(crm_id).is_some_and(|owner| owner != id) =>
                {
                    let error = host_error(
                        "duplicate",
                        format!(
                            "the CRM record {crm_id} is already linked to workspace record `{}` (same match key?)",
                            owners[crm_id]
                        ),
                    );
                    links_out.fail(id, Some(crm_id), error);
                }
                Some(outcome @ (PushOutcome::Created(crm_id) | PushOutcome::Updated(crm_id))) => {
                    let mut base = pending.base.clone().unwrap_or_default();
                    base.extend(mappings.sent_as_app(&pending.sent.fields));
                    let kind =
                        if matches!(outcome, PushOutcome::Created(_)) { Outcome::Created } else { Outcome::Updated };
                    links_out.push(
                        synced_link(&pending.record, Some(crm_id.clone()), Some(base)),
                        Done::new(id, Some(crm_id), kind, None),
                    );
                }
                Some(PushOutcome::Failed(err)) => links_out.fail(id, pending.sent.crm_id.as_deref(), error_json(err)),
                None => {
                    links_out.fail(id, None, host_error("internal", "the plugin returned fewer outcomes than records"))
                }
            }
        }
        self.commit_links(&entity, links_out).await
    }

    /// Writes a batch's links in one transaction, then counts each record's outcome. Should the
    /// batch hit a CRM id linked elsewhere meanwhile, the links are written one by one instead
    /// and only the offending records fail.
    pub(super) async fn commit_links(&mut self, entity: &EntityName, batch: LinkBatch) -> Result<(), Fatal> {
        let (ws, slug) = (self.workspace.clone(), self.slug.clone());
        match self.store.save_links(&ws, &slug, entity, &batch.writes).await {
            Ok(()) => {
                for done in batch.done.into_iter().flatten() {
                    self.record(entity, Some(&done.record_id), done.crm_id.as_deref(), done.outcome, done.error);
                }
                Ok(())
            }
            Err(StoreError::Conflict { .. }) => {
                for (write, done) in batch.writes.iter().zip(batch.done) {
                    match (self.store.save_link(&ws, &slug, entity, write).await, done) {
                        (Ok(()), None) => {}
                        (Ok(()), Some(done)) => {
                            self.record(entity, Some(&done.record_id), done.crm_id.as_deref(), done.outcome, done.error)
                        }
                        (Err(StoreError::Conflict { .. }), done) => {
                            let done = done.unwrap_or_else(|| {
                                Done::new(&write.record_id, write.crm_id.as_deref(), Outcome::Failed, None)
                            });
                            let crm_id = done.crm_id.as_deref().unwrap_or("?");
                            let error = host_error(
                                "duplicate",
                                format!("the CRM record {crm_id} is linked to another workspace record"),
                            );
                            self.fail_link(entity, &done.record_id, error.clone()).await?;
                            self.record(
                                entity,
                                Some(&done.record_id),
                                done.crm_id.as_deref(),
                                Outcome::Failed,
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
            let crm_ids: Vec<String> = batch.iter().map(|(_, c)| c.clone()).collect();
            let (plugin, context, name) = (self.plugin.clone(), self.context.clone(), entity.to_string());
            let result = self.call("delete", || plugin.delete(context.clone(), &name, &crm_ids)).await;
            let outcomes = required("deletes", result)?;
            let mut gone = Vec::new();
            let mut failed = false;
            for (i, (record_id, crm_id)) in batch.iter().enumerate() {
                match outcomes.get(i) {
                    Some(DeleteOutcome::Deleted) => {
                        self.record(&entity, Some(record_id), Some(crm_id), Outcome::Deleted, None);
                        gone.push(record_id.clone());
                    }
                    Some(DeleteOutcome::Failed(err)) => {
                        failed = true;
                        self.record(&entity, Some(record_id), Some(crm_id), Outcome::Failed, Some(error_json(err)));
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
    pub(super) fn fail(&mut self, record_id: &str, crm_id: Option<&str>, error: Json) {
        self.push(
            LinkWrite::status(record_id, LinkStatus::Failed, Some(error.clone())),
            Done::new(record_id, crm_id, Outcome::Failed, Some(error)),
        );
    }
}

/// One record's outcome, counted once its link is written.
pub(super) struct Done {
    record_id: String,
    crm_id: Option<String>,
    outcome: Outcome,
    error: Option<Json>,
}

impl Done {
    pub(super) fn new(record_id: &str, crm_id: Option<&str>, outcome: Outcome, error: Option<Json>) -> Self {
        Self { record_id: record_id.to_owned(), crm_id: crm_id.map(str::to_owned), outcome, error }
    }
}

/// The link of a record that synced at the version read.
pub(super) fn synced_link(record: &StoredRecord, crm_id: Option<String>, base: Option<Map<String, Json>>) -> LinkWrite {
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
