//! Reference mappings: a workspace field holding the workspace id of another entity's record (a
//! contact's `company_id` naming an account). A push sends the CRM id that record is linked to,
//! pushing the referenced record first when the CRM does not have it yet; a pull brings the CRM id
//! back as the workspace id, pulling the referenced record first when the workspace does not have
//! it yet. An entity's references also order a sync's entities: referenced ones go first.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value as Json};

use super::mapping::EntityMappings;
use super::pull::{PullMode, PullScope};
use super::push::PushMode;
use super::run::{Fatal, Run, store_fatal};
use crate::domain::{CrmId, EntityName};
use crate::store::RecordLink;

/// How many levels of referenced records a push or pull goes after (a contact's account, that
/// account's parent); past it a reference resolves only to records already linked.
const MAX_REFERENCE_DEPTH: u8 = 2;

/// The workspace ↔ CRM ids of the records a batch's references name, and why those that did not
/// resolve did not.
#[derive(Debug, Default)]
pub(super) struct ReferenceIds {
    crm_of: HashMap<(EntityName, String), CrmId>,
    app_of: HashMap<(EntityName, CrmId), String>,
    unresolved: HashMap<(EntityName, String), String>,
}

impl ReferenceIds {
    fn learn(&mut self, entity: &EntityName, links: Vec<RecordLink>) {
        for link in links {
            if let Some(crm_id) = link.crm_id {
                self.crm_of.insert((entity.clone(), link.record_id.clone()), crm_id.clone());
                self.app_of.insert((entity.clone(), crm_id), link.record_id);
            }
        }
    }

    fn knows_app(&self, entity: &EntityName, app_id: &str) -> bool {
        self.crm_of.contains_key(&(entity.clone(), app_id.to_owned()))
    }

    fn knows_crm(&self, entity: &EntityName, crm_id: &CrmId) -> bool {
        self.app_of.contains_key(&(entity.clone(), crm_id.clone()))
    }

    /// A workspace record's fields with each pushed reference's workspace id replaced by the CRM
    /// id it is linked to. An error names the field and says why its record is not in the CRM.
    /// Borrowed as it is when no reference field is set (most records of most entities).
    pub(super) fn to_crm<'a>(
        &self,
        mappings: &EntityMappings,
        fields: &'a Map<String, Json>,
    ) -> Result<Cow<'a, Map<String, Json>>, (String, String)> {
        let mut out = Cow::Borrowed(fields);
        for (m, entity) in pushed_references(mappings) {
            let Some(app_id) = fields.get(m.app_field.as_str()).and_then(reference_id) else { continue };
            let key = (entity.clone(), app_id);
            let crm_id = self.crm_of.get(&key).ok_or_else(|| {
                let why = self.unresolved.get(&key).map_or("is not in the CRM", String::as_str);
                (m.app_field.to_string(), format!("refers to {entity} `{}`, which {why}", key.1))
            })?;
            out.to_mut().insert(m.app_field.to_string(), Json::String(crm_id.as_str().to_owned()));
        }
        Ok(out)
    }

    /// Turns the CRM ids of pushed reference fields in `sent` (workspace field → value as sent)
    /// back into the workspace ids they were resolved from.
    pub(super) fn back_to_app(&self, mappings: &EntityMappings, sent: &mut Map<String, Json>) {
        for (m, entity) in pushed_references(mappings) {
            if let Some(value) = sent.get_mut(m.app_field.as_str()) {
                *value = self.app_value(entity, value);
            }
        }
    }

    /// The workspace id a CRM id of `entity` is linked to; null when the workspace has no record
    /// linked to it (the reference names something the sync does not bring).
    fn app_value(&self, entity: &EntityName, crm_value: &Json) -> Json {
        match reference_id(crm_value).and_then(|id| CrmId::parse(&id).ok()) {
            Some(crm_id) => {
                self.app_of.get(&(entity.clone(), crm_id)).map_or(Json::Null, |id| Json::String(id.clone()))
            }
            None => Json::Null,
        }
    }
}

/// The reference mappings that push, with the entity each names.
fn pushed_references(mappings: &EntityMappings) -> impl Iterator<Item = (&super::mapping::FieldMapping, &EntityName)> {
    mappings.active().filter(|m| m.direction.pushes()).filter_map(|m| m.references.as_ref().map(|e| (m, e)))
}

/// The reference mappings that pull, with the entity each names.
fn pulled_references(mappings: &EntityMappings) -> impl Iterator<Item = (&super::mapping::FieldMapping, &EntityName)> {
    mappings.active().filter(|m| m.direction.pulls()).filter_map(|m| m.references.as_ref().map(|e| (m, e)))
}

/// A reference field's id: text, or a number written as text; none for null and empty text.
fn reference_id(value: &Json) -> Option<String> {
    match value {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The ids `views` hold in the `references` mappings' fields, per referenced entity.
fn named_ids<'a>(
    references: impl Iterator<Item = (&'a super::mapping::FieldMapping, &'a EntityName)>,
    views: impl Iterator<Item = &'a Map<String, Json>>,
) -> BTreeMap<EntityName, BTreeSet<String>> {
    let references: Vec<_> = references.collect();
    let mut named: BTreeMap<EntityName, BTreeSet<String>> = BTreeMap::new();
    for view in views {
        for &(m, entity) in &references {
            if let Some(id) = view.get(m.app_field.as_str()).and_then(reference_id) {
                named.entry(entity.clone()).or_default().insert(id);
            }
        }
    }
    named
}

/// `entities` with each one's referenced entities before it (as far as references allow: a cycle
/// keeps the given order), otherwise in the given order.
pub(super) fn in_dependency_order(entities: Vec<EntityMappings>) -> Vec<EntityMappings> {
    let names: BTreeSet<EntityName> = entities.iter().map(|m| m.entity.clone()).collect();
    let mut placed: BTreeSet<EntityName> = BTreeSet::new();
    let mut waiting = entities;
    let mut ordered = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        let ready = waiting.iter().position(|m| {
            m.active()
                .filter_map(|f| f.references.as_ref())
                .all(|r| *r == m.entity || placed.contains(r) || !names.contains(r))
        });
        // In a cycle nothing is ready: take the first waiting one as it was given.
        let next = waiting.remove(ready.unwrap_or(0));
        placed.insert(next.entity.clone());
        ordered.push(next);
    }
    ordered
}

impl Run {
    /// Resolves the references of the workspace records `ids` about to be pushed: the CRM ids
    /// of the records they name, pushing first (in `mode`) those the CRM does not have yet.
    pub(super) async fn resolve_push_references(
        &mut self,
        mappings: &EntityMappings,
        ids: &[String],
        mode: PushMode,
    ) -> Result<ReferenceIds, Fatal> {
        let mut resolved = ReferenceIds::default();
        if pushed_references(mappings).next().is_none() {
            return Ok(resolved);
        }
        let records = self.store.get_records(&self.workspace, &mappings.entity, ids).await.map_err(store_fatal)?;
        let named = named_ids(pushed_references(mappings), records.iter().map(|r| &r.fields));
        for (entity, app_ids) in named {
            let app_ids: Vec<String> = app_ids.into_iter().collect();
            resolved.learn(&entity, self.links_of_records(&entity, &app_ids).await?);
            let unlinked: Vec<String> = app_ids.into_iter().filter(|id| !resolved.knows_app(&entity, id)).collect();
            if unlinked.is_empty() {
                continue;
            }
            if self.reference_depth < MAX_REFERENCE_DEPTH {
                self.push_referenced_first(&entity, &unlinked, mode).await?;
                resolved.learn(&entity, self.links_of_records(&entity, &unlinked).await?);
            }
            self.explain_unlinked(&entity, &unlinked, &mut resolved).await?;
        }
        Ok(resolved)
    }

    /// Pushes the referenced records of `entity` that the CRM does not have yet, before the
    /// records that refer to them.
    async fn push_referenced_first(
        &mut self,
        entity: &EntityName,
        ids: &[String],
        mode: PushMode,
    ) -> Result<(), Fatal> {
        let mappings = self.mappings(entity).await?;
        self.reference_depth += 1;
        let mut pushed = Ok(());
        for chunk in ids.chunks(super::MAX_BATCH) {
            pushed = Box::pin(self.push_batch(&mappings, chunk, mode)).await;
            if pushed.is_err() {
                break;
            }
        }
        self.reference_depth -= 1;
        pushed
    }

    /// Notes why each of `ids` is still not linked, for the errors of the records naming them.
    async fn explain_unlinked(
        &self,
        entity: &EntityName,
        ids: &[String],
        resolved: &mut ReferenceIds,
    ) -> Result<(), Fatal> {
        let still: Vec<String> = ids.iter().filter(|id| !resolved.knows_app(entity, id)).cloned().collect();
        if still.is_empty() {
            return Ok(());
        }
        let present = self.store.get_records(&self.workspace, entity, &still).await.map_err(store_fatal)?;
        for id in still {
            let why = match present.iter().find(|r| r.id == id) {
                None => "is not in the workspace".to_owned(),
                Some(r) if r.deleted_at.is_some() => "is deleted in the workspace".to_owned(),
                Some(_) => format!(
                    "is not in {} yet (its push failed, the filters leave it out, or the sync does not create records)",
                    self.slug
                ),
            };
            resolved.unresolved.insert((entity.clone(), id), why);
        }
        Ok(())
    }

    /// Maps the CRM ids that pulled reference fields hold to the workspace ids of the records
    /// they are linked to, pulling first (in `mode`) the referenced records the workspace does
    /// not have yet. A reference to a record the sync cannot bring becomes null.
    pub(super) async fn resolve_pulled_references(
        &mut self,
        mappings: &EntityMappings,
        views: &mut [&mut Map<String, Json>],
        mode: PullMode,
    ) -> Result<(), Fatal> {
        if pulled_references(mappings).next().is_none() {
            return Ok(());
        }
        let named = named_ids(pulled_references(mappings), views.iter().map(|v| &**v));
        let mut resolved = ReferenceIds::default();
        for (entity, crm_ids) in named {
            let crm_ids: Vec<CrmId> = crm_ids.iter().filter_map(|id| CrmId::parse(id).ok()).collect();
            resolved.learn(&entity, self.links_of_crm_records(&entity, &crm_ids).await?);
            let unlinked: Vec<CrmId> = crm_ids.into_iter().filter(|id| !resolved.knows_crm(&entity, id)).collect();
            if !unlinked.is_empty()
                && self.reference_depth < MAX_REFERENCE_DEPTH
                && self.plugin.description().capabilities.pull
            {
                self.pull_referenced_first(&entity, unlinked.clone(), mode).await?;
                resolved.learn(&entity, self.links_of_crm_records(&entity, &unlinked).await?);
            }
        }
        for view in views.iter_mut() {
            for (m, entity) in pulled_references(mappings) {
                if let Some(value) = view.get_mut(m.app_field.as_str()) {
                    *value = resolved.app_value(entity, value);
                }
            }
        }
        Ok(())
    }

    /// Pulls the referenced CRM records of `entity` the workspace does not have yet, before the
    /// records that refer to them.
    async fn pull_referenced_first(
        &mut self,
        entity: &EntityName,
        ids: Vec<CrmId>,
        mode: PullMode,
    ) -> Result<(), Fatal> {
        let mappings = self.mappings(entity).await?;
        self.reference_depth += 1;
        let pulled = Box::pin(self.pull_entity(&mappings, PullScope::Records(ids), mode)).await;
        self.reference_depth -= 1;
        pulled.map(|_| ())
    }

    async fn links_of_records(&self, entity: &EntityName, ids: &[String]) -> Result<Vec<RecordLink>, Fatal> {
        self.store.links_for_records(&self.workspace, &self.slug, entity, ids).await.map_err(store_fatal)
    }

    async fn links_of_crm_records(&self, entity: &EntityName, ids: &[CrmId]) -> Result<Vec<RecordLink>, Fatal> {
        self.store.links_for_crm_ids(&self.workspace, &self.slug, entity, ids).await.map_err(store_fatal)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::FieldName;
    use crate::sync::mapping::{Direction, FieldMapping, MappingSource};

    fn entity(name: &str, references: &[&str]) -> EntityMappings {
        let mut mappings = vec![FieldMapping {
            app_field: FieldName::parse("name").unwrap(),
            crm_field: "Name".to_owned(),
            direction: Direction::Both,
            transform: None,
            references: None,
        }];
        for (i, r) in references.iter().enumerate() {
            mappings.push(FieldMapping {
                app_field: FieldName::parse(&format!("ref_{i}")).unwrap(),
                crm_field: format!("Ref{i}"),
                direction: Direction::Both,
                transform: None,
                references: Some(EntityName::parse(r).unwrap()),
            });
        }
        EntityMappings {
            entity: EntityName::parse(name).unwrap(),
            match_key: "Name".to_owned(),
            source: MappingSource::Workspace,
            mappings,
        }
    }

    fn order(entities: Vec<EntityMappings>) -> Vec<String> {
        in_dependency_order(entities).into_iter().map(|m| m.entity.to_string()).collect()
    }

    #[test]
    fn referenced_entities_go_first_and_the_given_order_holds_otherwise() {
        let given =
            vec![entity("deal", &["contact", "account"]), entity("contact", &["account"]), entity("account", &[])];
        assert_eq!(order(given), ["account", "contact", "deal"]);
        let independent = vec![entity("lead", &[]), entity("account", &[]), entity("contact", &[])];
        assert_eq!(order(independent), ["lead", "account", "contact"]);
        let self_and_unsynced = vec![entity("account", &["account", "user"]), entity("lead", &[])];
        assert_eq!(
            order(self_and_unsynced),
            ["account", "lead"],
            "a self-reference or an entity not in the sync waits for nothing"
        );
        let cycle = vec![entity("a", &["b"]), entity("b", &["a"]), entity("c", &[])];
        assert_eq!(order(cycle), ["c", "a", "b"], "a cycle keeps its given order after what is ready");
    }

    #[test]
    fn ids_go_out_as_crm_ids_and_come_back_as_workspace_ids() {
        let contact = entity("contact", &["account"]);
        let account = EntityName::parse("account").unwrap();
        let mut ids = ReferenceIds::default();
        ids.crm_of.insert((account.clone(), "acc-1".into()), CrmId::parse("001A").unwrap());
        ids.app_of.insert((account.clone(), CrmId::parse("001A").unwrap()), "acc-1".into());
        ids.unresolved.insert((account.clone(), "acc-9".into()), "is not in the workspace".into());
        let fields = json!({"name": "Ann", "ref_0": "acc-1"});
        let out = ids.to_crm(&contact, fields.as_object().unwrap()).unwrap();
        assert_eq!(out["ref_0"], json!("001A"));
        let mut sent = out.into_owned();
        ids.back_to_app(&contact, &mut sent);
        assert_eq!(sent["ref_0"], json!("acc-1"));
        let cleared = json!({"name": "Ann", "ref_0": ""});
        let passed = ids.to_crm(&contact, cleared.as_object().unwrap()).unwrap();
        assert!(matches!(passed, Cow::Borrowed(_)), "nothing to translate: not copied");
        assert_eq!(passed["ref_0"], json!(""), "clearing passes");
        let missing = json!({"name": "Ann", "ref_0": "acc-9"});
        let (field, why) = ids.to_crm(&contact, missing.as_object().unwrap()).unwrap_err();
        assert_eq!(field, "ref_0");
        assert_eq!(why, "refers to account `acc-9`, which is not in the workspace");
        assert_eq!(ids.app_value(&account, &json!("001Z")), Json::Null, "an unknown CRM id comes back null");
    }
}
