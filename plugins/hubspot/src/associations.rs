//! Associations as fields: `associations.company` on contacts and deals names the record's
//! primary company, `associations.contact` on email engagements the contact it was sent to or
//! logged on (v4 associations). `list-fields` types it `reference`, so a workspace maps it
//! with `references: "company"`; a pull reads it with one batch read per page, a push sets it after
//! the record is written (the default association plus the Primary label, which HubSpot moves
//! from the old primary company, keeping that one associated), and an empty value removes the
//! association with the current primary company. A pair without a Primary label (an email and
//! its contact) holds one association: setting another target removes the old one.
//!
//! HubSpot does not move a record's `lastmodifieddate` for every association change: one made in
//! HubSpot reaches an incremental pull with the record's next change, or a full pull.

use std::collections::BTreeMap;

use crmhost_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::api;

/// Most inputs per batch request.
const BATCH: usize = 100;

/// One association a field stands for.
pub struct Link {
    /// The field's name.
    pub field: &'static str,
    /// The object path it is a field of (`contacts`).
    pub from: &'static str,
    /// The object path it names (`companies`).
    pub to: &'static str,
    /// The default (unlabelled) association type.
    pub default_type: u32,
    /// The Primary label's type, where HubSpot has one for the pair.
    pub primary_type: Option<u32>,
    /// How `list-fields` labels the field.
    pub label: &'static str,
}

const PRIMARY_COMPANY: &str = "Primary company (association)";

const LINKS: &[Link] = &[
    Link {
        field: "associations.company",
        from: "contacts",
        to: "companies",
        default_type: 279,
        primary_type: Some(1),
        label: PRIMARY_COMPANY,
    },
    Link {
        field: "associations.company",
        from: "deals",
        to: "companies",
        default_type: 341,
        primary_type: Some(5),
        label: PRIMARY_COMPANY,
    },
    Link {
        field: "associations.contact",
        from: "emails",
        to: "contacts",
        default_type: 198,
        primary_type: None,
        label: "Contact (association)",
    },
];

/// Whether a field name is an association field (property names never hold a dot).
pub fn is_association(name: &str) -> bool {
    name.starts_with("associations.")
}

/// The association a field of an object stands for.
pub fn link(object: &str, field: &str) -> Option<&'static Link> {
    LINKS.iter().find(|l| l.from == object && l.field == field)
}

/// The association fields of an object, as `list-fields` reports them.
pub fn fields(object: &str) -> Vec<FieldInfo> {
    LINKS
        .iter()
        .filter(|l| l.from == object)
        .map(|l| FieldInfo {
            name: l.field.to_owned(),
            label: l.label.to_owned(),
            field_type: FieldType::Reference,
            required: false,
            writable: true,
            unique: false,
            options: Vec::new(),
        })
        .collect()
}

#[derive(Deserialize)]
struct BatchRead {
    #[serde(default)]
    results: Vec<Associated>,
}

#[derive(Deserialize)]
struct Associated {
    from: Id,
    #[serde(default)]
    to: Vec<Target>,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    to_object_id: u64,
    #[serde(default)]
    association_types: Vec<AssociationType>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssociationType {
    type_id: u32,
}

/// Each record's primary associated record through `link` (the lowest id when none is labelled
/// Primary); records with none are absent.
fn primaries(link: &Link, ids: &[String]) -> Result<BTreeMap<String, String>> {
    let path = format!("/crm/v4/associations/{}/{}/batch/read", link.from, link.to);
    let mut found = BTreeMap::new();
    for chunk in ids.chunks(BATCH) {
        let inputs: Vec<Json> = chunk.iter().map(|id| json!({ "id": id })).collect();
        // 207 answers the records it knows; an unknown one simply has no association.
        let read: BatchRead = api::post_json(&path, &json!({ "inputs": inputs }), "reading associations")?;
        for record in read.results {
            let primary =
                record.to.iter().find(|t| t.association_types.iter().any(|a| Some(a.type_id) == link.primary_type));
            let chosen = primary.or_else(|| record.to.iter().min_by_key(|t| t.to_object_id));
            if let Some(target) = chosen {
                found.insert(record.from.id, target.to_object_id.to_string());
            }
        }
    }
    Ok(found)
}

/// Adds the requested association fields to a page's live records.
pub fn fill(object: &str, fields: &[String], records: &mut [CrmRecord]) -> Result<()> {
    let ids: Vec<String> = records.iter().filter(|r| !r.deleted).map(|r| r.id.clone()).collect();
    for field in fields {
        let Some(link) = link(object, field) else { continue };
        let found = if ids.is_empty() { BTreeMap::new() } else { primaries(link, &ids)? };
        for record in records.iter_mut().filter(|r| !r.deleted) {
            let value = found.get(&record.id).map_or(Value::Null, |id| Value::Text(id.clone()));
            record.fields.push(FieldValue { name: field.clone(), value });
        }
    }
    Ok(())
}

/// What one written record asks of an association field: its id, and the target (`None`: none).
pub struct Wanted {
    /// The input's index in the push.
    pub index: usize,
    /// The written record's id.
    pub id: String,
    /// The association.
    pub link: &'static Link,
    /// The record to associate it with, or none to remove the current primary one.
    pub target: Option<String>,
}

/// Sets associations after a push; an error per input index that could not be set.
pub fn set(wanted: &[Wanted]) -> Result<BTreeMap<usize, AdapterError>> {
    let mut failed = BTreeMap::new();
    for link in LINKS {
        let mine: Vec<&Wanted> = wanted.iter().filter(|w| std::ptr::eq(w.link, link)).collect();
        if mine.is_empty() {
            continue;
        }
        let ids: Vec<String> = mine.iter().map(|w| w.id.clone()).collect();
        let current = primaries(link, &ids)?;
        let changed: Vec<&&Wanted> = mine.iter().filter(|w| current.get(&w.id) != w.target.as_ref()).collect();
        let to_set: Vec<&&Wanted> = changed.iter().copied().filter(|w| w.target.is_some()).collect();
        associate(link, &to_set, &mut failed)?;
        // Without a Primary label to move, the old association goes (unless the new one failed).
        let clear: Vec<(&&Wanted, &String)> = changed
            .into_iter()
            .filter(|w| w.target.is_none() || (link.primary_type.is_none() && !failed.contains_key(&w.index)))
            .filter_map(|w| current.get(&w.id).map(|old| (w, old)))
            .collect();
        archive(link, &clear)?;
    }
    Ok(failed)
}

#[derive(Deserialize)]
struct Created {
    #[serde(default)]
    errors: Vec<crate::errors::HsError>,
}

/// Creates the default and Primary associations; a target HubSpot does not know fails its record.
fn associate(link: &Link, wanted: &[&&Wanted], failed: &mut BTreeMap<usize, AdapterError>) -> Result<()> {
    let path = format!("/crm/v4/associations/{}/{}/batch/create", link.from, link.to);
    let types: Vec<Json> = std::iter::once(link.default_type)
        .chain(link.primary_type)
        .map(|id| json!({ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": id }))
        .collect();
    for chunk in wanted.chunks(BATCH) {
        let inputs: Vec<Json> =
            chunk.iter().map(|w| json!({ "from": { "id": w.id }, "to": { "id": w.target }, "types": types })).collect();
        let created: Created = api::post_json(&path, &json!({ "inputs": inputs }), "associating records")?;
        for error in created.errors {
            let named = error.context_ids();
            for w in chunk.iter().filter(|w| named.iter().any(|id| Some(id) == w.target.as_ref() || *id == w.id)) {
                let target = w.target.as_deref().unwrap_or_default();
                failed.insert(
                    w.index,
                    AdapterError::invalid(format!("no {} `{target}` to associate with: {}", link.to, error.message)),
                );
            }
        }
    }
    Ok(())
}

/// Removes the associations with the current primary records.
fn archive(link: &Link, clear: &[(&&Wanted, &String)]) -> Result<()> {
    let path = format!("/crm/v4/associations/{}/{}/batch/archive", link.from, link.to);
    for chunk in clear.chunks(BATCH) {
        let inputs: Vec<Json> =
            chunk.iter().map(|(w, old)| json!({ "from": { "id": w.id }, "to": [{ "id": old }] })).collect();
        api::send(Request::post(api::url(&path)).json(&json!({ "inputs": inputs }))?, "removing associations")?;
    }
    Ok(())
}
