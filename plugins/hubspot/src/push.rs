//! `push` and `delete` through HubSpot's batch endpoints (100 inputs per request).
//!
//! Contacts matched on `email` use `batch/upsert` with `idProperty=email`. Other keys (a company's
//! `domain` or `name`, a deal's `dealname`) are looked up with one search (`IN`), then hits are
//! updated by id and misses created; a key matching several records fails that record as a
//! duplicate. Records with a CRM id are updated by id. When a batch answers 207 or is refused as a
//! whole, the records it could not account for are sent one by one, so each gets its own outcome.

use std::collections::BTreeMap;

use crmhost_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use crate::objects::{Object, object};
use crate::{api, associations};

/// Most inputs per batch request.
pub const BATCH: usize = 100;
/// Most records per push.
pub const MAX_PUSH: usize = 200;

#[derive(Deserialize)]
struct BatchResult {
    #[serde(default)]
    results: Vec<Written>,
    /// 207 multi-status: what failed.
    #[serde(default)]
    errors: Vec<crate::errors::HsError>,
}

#[derive(Deserialize)]
struct Written {
    id: String,
    #[serde(default)]
    properties: Map<String, Json>,
    #[serde(default)]
    new: Option<bool>,
}

#[derive(Deserialize)]
struct Found {
    results: Vec<Written>,
    paging: Option<Json>,
}

/// How a record is written.
#[derive(Clone, Copy)]
enum Op {
    Upsert,
    Update,
    Create,
}

impl Op {
    fn path(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Update => "update",
            Op::Create => "create",
        }
    }
}

/// One record to write: its input index, the batch input, and how to recognise its result.
struct Input {
    index: usize,
    body: Json,
    /// The folded key (email, domain, …) or id its result carries.
    key: String,
}

fn properties(record: &PushRecord) -> Map<String, Json> {
    record
        .fields
        .iter()
        .filter(|f| f.name != "hs_object_id" && !associations::is_association(&f.name))
        // HubSpot values are strings; an empty string clears a property.
        .map(|f| (f.name.clone(), Json::String(f.value.to_text().unwrap_or_default())))
        .collect()
}

/// Pushes up to 200 records.
pub fn push(entity: &str, match_key: &str, records: Vec<PushRecord>) -> Result<Vec<PushOutcome>> {
    if records.len() > MAX_PUSH {
        return Err(AdapterError::invalid(format!("at most {MAX_PUSH} records per push, got {}", records.len())));
    }
    let object = object(entity)?;
    let mut outcomes: Vec<Option<PushOutcome>> = records.iter().map(|_| None).collect();
    let matching = crmhost_sdk::matching::plan_matches(&records, match_key);
    for (i, err) in matching.rejected {
        outcomes[i] = Some(PushOutcome::Failed(err));
    }
    for (i, record) in records.iter().enumerate() {
        if let Some(unknown) = record
            .fields
            .iter()
            .find(|f| associations::is_association(&f.name) && associations::link(object.path, &f.name).is_none())
        {
            let known: Vec<String> = associations::fields(object.path).into_iter().map(|f| f.name).collect();
            let message =
                format!("{} has no association field `{}` (it has: {})", object.path, unknown.name, known.join(", "));
            outcomes[i] = Some(PushOutcome::Failed(AdapterError::invalid(message)));
        }
    }
    let mut updates: Vec<Input> = matching
        .by_id
        .into_iter()
        .filter(|(i, _)| outcomes[*i].is_none())
        .map(|(i, id)| Input { index: i, body: json!({ "id": id, "properties": properties(&records[i]) }), key: id })
        .collect();
    let keyed: Vec<(usize, String)> = matching.by_key.into_iter().filter(|(i, _)| outcomes[*i].is_none()).collect();

    let mut creates = Vec::new();
    if object.path == "contacts" && match_key.eq_ignore_ascii_case("email") {
        let upserts: Vec<Input> = keyed
            .iter()
            .map(|(i, key)| Input {
                index: *i,
                body: json!({ "id": key, "idProperty": "email", "properties": properties(&records[*i]) }),
                key: key.to_lowercase(),
            })
            .collect();
        write(&object, Op::Upsert, upserts, "email", &mut outcomes)?;
    } else if !keyed.is_empty() {
        let existing = find_existing(&object, match_key, &keyed)?;
        for (i, key) in keyed {
            match existing.get(&key.to_lowercase()).map(Vec::as_slice) {
                None | Some([]) => creates.push(Input {
                    index: i,
                    body: json!({ "properties": properties(&records[i]), "objectWriteTraceId": i.to_string() }),
                    key: key.to_lowercase(),
                }),
                Some([id]) => updates.push(Input {
                    index: i,
                    body: json!({ "id": id, "properties": properties(&records[i]) }),
                    key: id.clone(),
                }),
                Some(ids) => {
                    outcomes[i] = Some(PushOutcome::Failed(AdapterError::duplicate(
                        format!("{match_key} `{key}` matches {} records ({})", ids.len(), ids.join(", ")),
                        ids.first().cloned(),
                    )))
                }
            }
        }
    }
    write(&object, Op::Update, updates, "", &mut outcomes)?;
    write(&object, Op::Create, creates, match_key, &mut outcomes)?;
    set_associations(&object, &records, &mut outcomes)?;
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| PushOutcome::Failed(AdapterError::internal("no outcome for this record"))))
        .collect())
}

/// Sets the association fields of the records written; a record whose association could not be
/// set fails with the reason (it was written: a retry finds it by its key or id).
fn set_associations(object: &Object, records: &[PushRecord], outcomes: &mut [Option<PushOutcome>]) -> Result<()> {
    let mut wanted = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let id = match &outcomes[index] {
            Some(PushOutcome::Created(id) | PushOutcome::Updated(id)) => id.clone(),
            _ => continue,
        };
        for field in record.fields.iter().filter(|f| associations::is_association(&f.name)) {
            let Some(link) = associations::link(object.path, &field.name) else { continue };
            let target = field.value.to_text().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
            wanted.push(associations::Wanted { index, id: id.clone(), link, target });
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    for (index, error) in associations::set(&wanted)? {
        let written = match &outcomes[index] {
            Some(PushOutcome::Created(id) | PushOutcome::Updated(id)) => id.clone(),
            _ => String::new(),
        };
        let message = format!("written as {written}, but {}", error.message());
        outcomes[index] = Some(PushOutcome::Failed(AdapterError::invalid(message)));
    }
    Ok(())
}

/// Writes inputs in batches; `key_property` names the property whose (folded) value identifies a
/// result ("" → the result id).
fn write(
    object: &Object,
    op: Op,
    inputs: Vec<Input>,
    key_property: &str,
    outcomes: &mut [Option<PushOutcome>],
) -> Result<()> {
    let path = format!("/crm/v3/objects/{}/batch/{}", object.path, op.path());
    for chunk in inputs.chunks(BATCH) {
        let body = json!({ "inputs": chunk.iter().map(|i| i.body.clone()).collect::<Vec<_>>() });
        let unresolved: Vec<&Input> = match api::post_json::<BatchResult>(&path, &body, "writing records") {
            Ok(result) => {
                let mut by_key: BTreeMap<String, &Written> = BTreeMap::new();
                for written in &result.results {
                    let key = if key_property.is_empty() {
                        Some(written.id.clone())
                    } else {
                        written.properties.get(key_property).and_then(Json::as_str).map(|k| k.trim().to_lowercase())
                    };
                    if let Some(key) = key {
                        by_key.insert(key, written);
                    }
                }
                let mut left = Vec::new();
                for input in chunk {
                    match by_key.get(&input.key) {
                        Some(written) => outcomes[input.index] = Some(outcome(op, written)),
                        None => left.push(input),
                    }
                }
                left
            }
            // One batch of one: the error is that record's.
            Err(err) if chunk.len() == 1 => {
                outcomes[chunk[0].index] = Some(PushOutcome::Failed(err));
                Vec::new()
            }
            // Refused as a whole (one bad input fails a batch create): find out record by record,
            // unless the cause is not about the records (limits, credentials).
            Err(err @ (AdapterError::RateLimited(_) | AdapterError::Unauthorized(_) | AdapterError::Forbidden(_))) => {
                return Err(err);
            }
            Err(_) => chunk.iter().collect(),
        };
        for input in unresolved {
            let single = json!({ "inputs": [input.body.clone()] });
            outcomes[input.index] = Some(match api::post_json::<BatchResult>(&path, &single, "writing a record") {
                Ok(result) => match (result.results.first(), result.errors.first()) {
                    (Some(written), _) => outcome(op, written),
                    (None, Some(error)) => PushOutcome::Failed(error.to_adapter_error(400, "")),
                    (None, None) => {
                        PushOutcome::Failed(AdapterError::internal("HubSpot returned no result for the record"))
                    }
                },
                Err(err) => PushOutcome::Failed(err),
            });
        }
    }
    Ok(())
}

fn outcome(op: Op, written: &Written) -> PushOutcome {
    let created = match op {
        Op::Create => true,
        Op::Update => false,
        Op::Upsert => written.new.unwrap_or(false),
    };
    if created { PushOutcome::Created(written.id.clone()) } else { PushOutcome::Updated(written.id.clone()) }
}

/// Existing records by folded key value, found with `IN` searches (100 values per search).
fn find_existing(object: &Object, key: &str, keyed: &[(usize, String)]) -> Result<BTreeMap<String, Vec<String>>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let path = format!("/crm/v3/objects/{}/search", object.path);
    for chunk in keyed.chunks(BATCH) {
        let values: Vec<&str> = chunk.iter().map(|(_, k)| k.as_str()).collect();
        let mut after = "0".to_owned();
        loop {
            let body = json!({
                "filterGroups": [{ "filters": [{ "propertyName": key, "operator": "IN", "values": values }] }],
                "properties": [key],
                "limit": 200,
                "after": after,
            });
            let page: Found = api::post_json(&path, &body, "looking up existing records")?;
            for record in &page.results {
                if let Some(value) = record.properties.get(key).and_then(Json::as_str) {
                    found.entry(value.trim().to_lowercase()).or_default().push(record.id.clone());
                }
            }
            match page.paging.as_ref().and_then(|p| p.pointer("/next/after")).and_then(Json::as_str) {
                Some(next) => after = next.to_owned(),
                None => break,
            }
        }
    }
    Ok(found)
}

/// Archives records (100 per request); archiving is idempotent at HubSpot.
pub fn delete(entity: &str, ids: Vec<String>) -> Result<Vec<DeleteOutcome>> {
    let object = object(entity)?;
    for chunk in ids.chunks(BATCH) {
        let inputs: Vec<Json> = chunk.iter().map(|id| json!({ "id": id })).collect();
        let request = Request::post(api::url(&format!("/crm/v3/objects/{}/batch/archive", object.path)))
            .json(&json!({ "inputs": inputs }))?;
        api::send(request, "archiving records")?;
    }
    Ok(ids.iter().map(|_| DeleteOutcome::Deleted).collect())
}
