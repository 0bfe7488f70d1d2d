//! `push` and `delete` through sObject Collections (200 records per request at most).
//!
//! Matching: a record with a CRM id is updated by id. Otherwise, a custom external-id field
//! (`…__c`) is upserted natively (`PATCH /composite/sobjects/{Object}/{Field}`); any other key
//! (`Email`, which is an idLookup field but not unique, or `Name`) is matched by querying the keys
//! first (`WHERE Email IN (…)`, case-insensitive as Salesforce compares), then hits are updated by
//! id and misses created. A key that matches several records fails that record as a duplicate
//! rather than guessing. Outcomes come back in input order.

use std::collections::BTreeMap;

use crmhost_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use crate::api::Api;
use crate::errors::{SfError, record_error};
use crate::objects::sobject;
use crate::soql::{is_field_name, quote};

/// Most records one collection request takes.
pub const MAX_BATCH: usize = 200;

#[derive(Deserialize)]
struct SaveResult {
    id: Option<String>,
    success: bool,
    #[serde(default)]
    created: Option<bool>,
    #[serde(default)]
    errors: Vec<SfError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyQuery {
    records: Vec<Map<String, Json>>,
    #[serde(default)]
    done: bool,
    next_records_url: Option<String>,
}

enum Plan {
    Create,
    Update(String),
}

/// Pushes up to 200 records.
pub fn push(entity: &str, match_key: &str, records: Vec<PushRecord>) -> Result<Vec<PushOutcome>> {
    if records.len() > MAX_BATCH {
        return Err(AdapterError::invalid(format!("at most {MAX_BATCH} records per push, got {}", records.len())));
    }
    if !is_field_name(match_key) {
        return Err(AdapterError::invalid_field(match_key, "not a field name"));
    }
    let api = Api::from_connection()?;
    let object = sobject(entity)?;
    let mut outcomes: Vec<Option<PushOutcome>> = records.iter().map(|_| None).collect();
    let matching = crmhost_sdk::matching::plan_matches(&records, match_key);
    for (i, err) in matching.rejected {
        outcomes[i] = Some(PushOutcome::Failed(err));
    }
    let mut plans: Vec<(usize, Plan)> = matching.by_id.into_iter().map(|(i, id)| (i, Plan::Update(id))).collect();
    let to_match = matching.by_key;

    let mut wrote_any = false;
    if match_key.ends_with("__c") {
        upsert_by_external_id(&api, object, match_key, &records, &to_match, &mut outcomes, &mut wrote_any)?;
    } else if !to_match.is_empty() {
        let matches = match_existing(&api, object, match_key, &to_match)?;
        for (i, key) in &to_match {
            match matches.get(&key.to_lowercase()).map(Vec::as_slice) {
                None | Some([]) => plans.push((*i, Plan::Create)),
                Some([id]) => plans.push((*i, Plan::Update(id.clone()))),
                Some(ids) => {
                    outcomes[*i] = Some(PushOutcome::Failed(AdapterError::duplicate(
                        format!("{match_key} `{key}` matches {} records ({})", ids.len(), ids.join(", ")),
                        ids.first().cloned(),
                    )))
                }
            }
        }
    }

    let (creates, updates): (Vec<_>, Vec<_>) = plans.into_iter().partition(|(_, p)| matches!(p, Plan::Create));
    if !updates.is_empty() {
        let body: Vec<Json> = updates
            .iter()
            .map(|(i, plan)| {
                let mut fields = record_json(object, &records[*i]);
                if let Plan::Update(id) = plan {
                    fields.insert("id".to_owned(), Json::String(id.clone()));
                }
                Json::Object(fields)
            })
            .collect();
        let indexes: Vec<usize> = updates.iter().map(|(i, _)| *i).collect();
        let request =
            Request::patch(api.url("/composite/sobjects")).json(&json!({ "allOrNone": false, "records": body }))?;
        apply(&api, request, "updating records", &indexes, &mut outcomes, &mut wrote_any, |_| false)?;
    }
    if !creates.is_empty() {
        let body: Vec<Json> = creates.iter().map(|(i, _)| Json::Object(record_json(object, &records[*i]))).collect();
        let indexes: Vec<usize> = creates.iter().map(|(i, _)| *i).collect();
        let request =
            Request::post(api.url("/composite/sobjects")).json(&json!({ "allOrNone": false, "records": body }))?;
        apply(&api, request, "creating records", &indexes, &mut outcomes, &mut wrote_any, |_| true)?;
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| PushOutcome::Failed(AdapterError::internal("no outcome for this record"))))
        .collect())
}

/// The fields as a collection record (`attributes.type` plus the values; never `Id`).
fn record_json(object: &str, record: &PushRecord) -> Map<String, Json> {
    let mut fields = Map::new();
    fields.insert("attributes".to_owned(), json!({ "type": object }));
    for field in &record.fields {
        if !field.name.eq_ignore_ascii_case("Id") {
            fields.insert(field.name.clone(), field.value.to_json());
        }
    }
    fields
}

/// Sends one collection request and records each result at its input index. A request that fails
/// as a whole fails the push if nothing was written yet (the host retries it), or else fails just
/// the records it carried, so earlier writes are not reported as failures.
fn apply(
    api: &Api,
    request: Request,
    what: &str,
    indexes: &[usize],
    outcomes: &mut [Option<PushOutcome>],
    wrote_any: &mut bool,
    created_default: impl Fn(&SaveResult) -> bool,
) -> Result<()> {
    let results: Vec<SaveResult> = match api.send(request, what).and_then(|r| r.json()) {
        Ok(results) => results,
        Err(err) if !*wrote_any => return Err(err),
        Err(err) => {
            for i in indexes {
                outcomes[*i] = Some(PushOutcome::Failed(err.clone()));
            }
            return Ok(());
        }
    };
    *wrote_any = true;
    for (n, i) in indexes.iter().enumerate() {
        let outcome = match results.get(n) {
            Some(r) if r.success => {
                let id = r.id.clone().unwrap_or_default();
                if r.created.unwrap_or_else(|| created_default(r)) {
                    PushOutcome::Created(id)
                } else {
                    PushOutcome::Updated(id)
                }
            }
            Some(r) => PushOutcome::Failed(record_error(&r.errors)),
            None => PushOutcome::Failed(AdapterError::internal("Salesforce returned fewer results than records")),
        };
        outcomes[*i] = Some(outcome);
    }
    Ok(())
}

/// Existing records by folded key value.
pub fn match_existing(
    api: &Api,
    object: &str,
    match_key: &str,
    keys: &[(usize, String)],
) -> Result<BTreeMap<String, Vec<String>>> {
    let list: Vec<String> = keys.iter().map(|(_, k)| quote(k)).collect();
    let soql = format!("SELECT Id, {match_key} FROM {object} WHERE {match_key} IN ({}) ORDER BY Id", list.join(", "));
    let mut matches: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut page: KeyQuery = api.get_json(
        format!("{}?q={}", api.url("/query"), crate::pull::encode_query(&soql)),
        "looking up existing records",
    )?;
    loop {
        for record in &page.records {
            let id = record.get("Id").and_then(Json::as_str);
            let key = record.iter().find(|(k, _)| k.eq_ignore_ascii_case(match_key)).and_then(|(_, v)| v.as_str());
            if let (Some(id), Some(key)) = (id, key) {
                matches.entry(key.trim().to_lowercase()).or_default().push(id.to_owned());
            }
        }
        match (page.done, page.next_records_url.take()) {
            (false, Some(next)) => page = api.get_json(api.absolute(&next), "looking up existing records")?,
            _ => break,
        }
    }
    Ok(matches)
}

fn upsert_by_external_id(
    api: &Api,
    object: &str,
    field: &str,
    records: &[PushRecord],
    to_match: &[(usize, String)],
    outcomes: &mut [Option<PushOutcome>],
    wrote_any: &mut bool,
) -> Result<()> {
    if to_match.is_empty() {
        return Ok(());
    }
    let body: Vec<Json> = to_match.iter().map(|(i, _)| Json::Object(record_json(object, &records[*i]))).collect();
    let indexes: Vec<usize> = to_match.iter().map(|(i, _)| *i).collect();
    let request = Request::patch(api.url(&format!("/composite/sobjects/{object}/{field}")))
        .json(&json!({ "allOrNone": false, "records": body }))?;
    apply(api, request, "upserting records", &indexes, outcomes, wrote_any, |_| false)
}

/// Deletes up to 200 records; an id that is already gone counts as deleted.
pub fn delete(entity: &str, ids: Vec<String>) -> Result<Vec<DeleteOutcome>> {
    sobject(entity)?;
    if ids.len() > MAX_BATCH {
        return Err(AdapterError::invalid(format!("at most {MAX_BATCH} ids per delete, got {}", ids.len())));
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(bad) = ids.iter().find(|id| !id.chars().all(|c| c.is_ascii_alphanumeric())) {
        return Err(AdapterError::invalid(format!("`{bad}` is not a Salesforce id")));
    }
    let api = Api::from_connection()?;
    let request =
        Request::delete(api.url("/composite/sobjects")).query("ids", ids.join(",")).query("allOrNone", "false");
    let results: Vec<SaveResult> = api.send(request, "deleting records")?.json()?;
    Ok(ids
        .iter()
        .enumerate()
        .map(|(n, _)| match results.get(n) {
            Some(r) if r.success => DeleteOutcome::Deleted,
            Some(r) => {
                let gone = r.errors.iter().any(|e| {
                    matches!(
                        e.status_code.as_deref().or(e.error_code.as_deref()),
                        Some("ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY" | "NOT_FOUND")
                    )
                });
                if gone { DeleteOutcome::Deleted } else { DeleteOutcome::Failed(record_error(&r.errors)) }
            }
            None => DeleteOutcome::Failed(AdapterError::internal("Salesforce returned fewer results than ids")),
        })
        .collect())
}
