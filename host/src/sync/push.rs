//! Pushing workspace records to the CRM: build each record's CRM fields through the mappings,
//! upsert a batch on the entity's match key (by CRM id once linked), and link each record to the
//! CRM record that came back, with the sent values as the new merge base.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use super::job::{Fatal, Job, Outcome, error_json, fatal_message, host_error, is_fatal, store_fatal};
use super::mapping::EntityMappings;
use super::values::same_value;
use crate::domain::EntityName;
use crate::plugins::bindings::adapter::{PushOutcome, PushRecord};
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
                .records_to_push(&self.workspace, &self.slug, &mappings.entity, &after, super::MAX_BATCH as i64)
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
                        self.mark_synced(&entity, record, crm_id.clone(), None).await?;
                        self.record(&entity, Some(id), crm_id.as_deref(), Outcome::Unchanged, None);
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
                    self.fail_link(&entity, id, error.clone()).await?;
                    self.record(&entity, Some(id), None, Outcome::Failed, Some(error));
                }
            }
        }
        if batch.is_empty() {
            return Ok(());
        }

        let sent: Vec<PushRecord> = batch.iter().map(|p| p.sent.clone()).collect();
        let (plugin, context) = (self.plugin.clone(), self.context.clone());
        let (entity_name, match_key) = (entity.to_string(), mappings.match_key.clone());
        let result = self.call("push", || plugin.push(context.clone(), &entity_name, &match_key, &sent)).await;
        let outcomes = match result {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(err)) if is_fatal(&err) => {
                for p in &batch {
                    self.fail_link(&entity, &p.record.id, error_json(&err)).await?;
                }
                return Err(fatal_message(&err));
            }
            // The batch as a whole was refused: each of its records fails with that error.
            Ok(Err(err)) => return self.fail_batch(&entity, &batch, error_json(&err)).await,
            Err(err) => return self.fail_batch(&entity, &batch, host_error("plugin_failed", err.to_string())).await,
        };

        for (i, pending) in batch.iter().enumerate() {
            let id = pending.record.id.as_str();
            match outcomes.get(i) {
                Some(PushOutcome::Created(crm_id)) | Some(PushOutcome::Updated(crm_id)) => {
                    let created = matches!(outcomes.get(i), Some(PushOutcome::Created(_)));
                    let mut base = pending.base.clone().unwrap_or_default();
                    base.extend(mappings.sent_as_app(&pending.sent.fields));
                    match self.mark_synced(&entity, &pending.record, Some(crm_id.clone()), Some(base)).await {
                        Ok(()) => {
                            let outcome = if created { Outcome::Created } else { Outcome::Updated };
                            self.record(&entity, Some(id), Some(crm_id), outcome, None);
                        }
                        Err(LinkFailure::Duplicate) => {
                            let error = host_error(
                                "duplicate",
                                format!(
                                    "the CRM record {crm_id} is already linked to another workspace record (same match key?)"
                                ),
                            );
                            self.fail_link(&entity, id, error.clone()).await?;
                            self.record(&entity, Some(id), Some(crm_id), Outcome::Failed, Some(error));
                        }
                        Err(LinkFailure::Fatal(f)) => return Err(f),
                    }
                }
                Some(PushOutcome::Failed(err)) => {
                    let error = error_json(err);
                    self.fail_link(&entity, id, error.clone()).await?;
                    self.record(&entity, Some(id), pending.sent.crm_id.as_deref(), Outcome::Failed, Some(error));
                }
                None => {
                    let error = host_error("internal", "the plugin returned fewer outcomes than records");
                    self.fail_link(&entity, id, error.clone()).await?;
                    self.record(&entity, Some(id), None, Outcome::Failed, Some(error));
                }
            }
        }
        Ok(())
    }

    async fn fail_batch(&mut self, entity: &EntityName, batch: &[Pending], error: Json) -> Result<(), Fatal> {
        for p in batch {
            self.fail_link(entity, &p.record.id, error.clone()).await?;
            self.record(entity, Some(&p.record.id), p.sent.crm_id.as_deref(), Outcome::Failed, Some(error.clone()));
        }
        Ok(())
    }

    /// Records a successful sync of a record at the version read.
    async fn mark_synced(
        &self,
        entity: &EntityName,
        record: &StoredRecord,
        crm_id: Option<String>,
        base: Option<Map<String, Json>>,
    ) -> Result<(), LinkFailure> {
        let write = LinkWrite {
            record_id: record.id.clone(),
            crm_id,
            status: LinkStatus::Synced,
            base,
            synced_version: Some(record.version),
            crm_modified_at: None,
            last_error: None,
            synced: true,
        };
        match self.store.save_link(&self.workspace, &self.slug, entity, &write).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict { .. }) => Err(LinkFailure::Duplicate),
            Err(other) => Err(LinkFailure::Fatal(store_fatal(other))),
        }
    }

    /// Marks a record's link failed with the error (creating the link if needed).
    pub(super) async fn fail_link(&self, entity: &EntityName, record_id: &str, error: Json) -> Result<(), Fatal> {
        self.store
            .save_link(
                &self.workspace,
                &self.slug,
                entity,
                &LinkWrite::status(record_id, LinkStatus::Failed, Some(error)),
            )
            .await
            .map_err(store_fatal)
    }
}

enum LinkFailure {
    Duplicate,
    Fatal(Fatal),
}

impl From<LinkFailure> for Fatal {
    fn from(f: LinkFailure) -> Self {
        match f {
            LinkFailure::Duplicate => Fatal("a CRM record is linked to two workspace records".to_owned()),
            LinkFailure::Fatal(f) => f,
        }
    }
}
