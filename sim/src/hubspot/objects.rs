//! CRM v3 object endpoints (list, get, create, update, archive, batch create/update/read/upsert/
//! archive) and the properties API. Values are strings, as HubSpot sends them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::errors::{self, HsError};
use super::properties;
use super::{HsRecord, HubspotState, authorize, iso, object_type, with_headers};
use crate::Sim;

/// Most inputs in one batch request.
const BATCH_LIMIT: usize = 100;

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/crm/v3/objects/{object}", get(list).post(create))
        .route("/crm/v3/objects/{object}/{id}", get(read).patch(update).delete(archive))
        .route("/crm/v3/objects/{object}/batch/create", post(batch_create))
        .route("/crm/v3/objects/{object}/batch/update", post(batch_update))
        .route("/crm/v3/objects/{object}/batch/read", post(batch_read))
        .route("/crm/v3/objects/{object}/batch/upsert", post(batch_upsert))
        .route("/crm/v3/objects/{object}/batch/archive", post(batch_archive))
        .route("/crm/v3/objects/{object}/merge", post(merge))
        .route("/crm/v3/properties/{object}", get(list_properties))
        .route("/crm/v3/properties/{object}/{name}", get(read_property))
        .route("/account-info/v3/details", get(account_details))
        .route("/account-info/2026-03/details", get(account_details))
        .with_state(sim)
}

/// `GET /account-info/v3/details`: the portal behind the token (HubSpot requires the `oauth`
/// scope here; the emulator does not model scopes).
async fn account_details(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        Ok(Json(json!({
            "portalId": super::HUB_ID,
            "accountType": "STANDARD",
            "timeZone": "US/Eastern",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18_000_000,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }))
        .into_response())
    })
}

/// Runs an authenticated handler and adds the rate-limit headers.
pub(super) fn api(sim: &Sim, headers: &HeaderMap, body: impl FnOnce() -> Result<Response, HsError>) -> Response {
    match authorize(sim, headers, false) {
        Ok((_, extra)) => with_headers(body().unwrap_or_else(IntoResponse::into_response), &extra),
        Err(e) => e.into_response(),
    }
}

/// Query parameters, with `properties` accepted repeated and comma-joined.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn new(raw: Option<String>) -> Self {
        Self(raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default())
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| {
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>()
            })
            .collect()
    }
}

fn resolve(sim: &Sim, raw: &str) -> Result<&'static str, HsError> {
    object_type(raw).ok_or_else(|| {
        errors::error(
            sim,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("Unable to infer object type from: {raw}"),
        )
    })
}

/// A request body as JSON, or HubSpot's 400 for malformed input.
pub(super) fn body_json(sim: &Sim, bytes: &Bytes) -> Result<Value, HsError> {
    serde_json::from_slice(bytes).map_err(|e| errors::validation(sim, format!("Invalid input JSON on line 1: {e}")))
}

fn properties_of(sim: &Sim, input: &Value) -> Result<Map<String, Value>, HsError> {
    match input.get("properties") {
        Some(Value::Object(p)) => Ok(p.clone()),
        None => Ok(Map::new()),
        Some(_) => Err(errors::validation(sim, "properties must be an object")),
    }
}

async fn list(
    State(sim): State<Arc<Sim>>,
    Path(object): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let params = Params::new(raw);
        let limit: usize = params
            .get("limit")
            .map(|l| l.parse().map_err(|_| errors::validation(&sim, "limit must be a number")))
            .transpose()?
            .unwrap_or(10);
        if limit == 0 || limit > 100 {
            return Err(errors::validation(&sim, format!("limit must be between 1 and 100, was {limit}")));
        }
        let after: u64 = params.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
        let archived = params.get("archived") == Some("true");
        let props = params.list("properties");
        let state = sim.hubspot();
        let mut page: Vec<&HsRecord> = state.objects[object]
            .records
            .range(after..)
            .map(|(_, r)| r)
            .filter(|r| r.archived_at.is_some() == archived)
            .take(limit + 1)
            .collect();
        let next = (page.len() > limit).then(|| page[limit].id);
        page.truncate(limit);
        let results: Vec<Value> = page.iter().map(|r| HubspotState::to_json(object, r, Some(&props))).collect();
        let mut body = json!({ "results": results });
        if let Some(next) = next {
            body["paging"] = json!({ "next": { "after": next.to_string(), "link": format!("{}/crm/v3/objects/{object}?after={next}", state.base_url) } });
        }
        Ok(Json(body).into_response())
    })
}

/// Finds a record by id or by `idProperty`.
fn locate(state: &HubspotState, object: &str, id: &str, id_property: Option<&str>) -> Option<u64> {
    match id_property {
        Some(prop) if prop != "hs_object_id" => state.find_by(object, prop, id),
        // An id merged away names the record it was merged into.
        _ => id.parse().ok().and_then(|n| state.objects[object].current(n)),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MergeInput {
    primary_object_id: Value,
    object_id_to_merge: Value,
}

/// `POST /crm/v3/objects/{object}/merge`: the merged record, as the primary.
async fn merge(State(sim): State<Arc<Sim>>, Path(object): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let input: MergeInput = serde_json::from_value(body_json(&sim, &body)?)
            .map_err(|e| errors::validation(&sim, format!("Invalid input JSON: {e}")))?;
        let id = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()).parse::<u64>().ok();
        let (Some(primary), Some(secondary)) = (id(&input.primary_object_id), id(&input.object_id_to_merge)) else {
            return Err(errors::validation(&sim, "primaryObjectId and objectIdToMerge must be record ids"));
        };
        let now = sim.clock.now();
        let mut state = sim.hubspot();
        let store = state.objects.get_mut(object).ok_or_else(|| errors::not_found(&sim))?;
        store.merge(primary, secondary, now).map_err(|why| errors::validation(&sim, why))?;
        state.webhooks.merged(object, primary, secondary, now);
        let record = &state.objects[object].records[&primary];
        Ok(Json(HubspotState::to_json(object, record, None)).into_response())
    })
}

async fn read(
    State(sim): State<Arc<Sim>>,
    Path((object, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let params = Params::new(raw);
        let state = sim.hubspot();
        let found = locate(&state, object, &id, params.get("idProperty")).ok_or_else(|| errors::not_found(&sim))?;
        let record = &state.objects[object].records[&found];
        Ok(Json(HubspotState::to_json(object, record, Some(&params.list("properties")))).into_response())
    })
}

/// Creates one record; checks the unique email of contacts.
fn create_one(
    sim: &Sim,
    state: &mut HubspotState,
    object: &'static str,
    input: &Map<String, Value>,
) -> Result<u64, HsError> {
    let values = HubspotState::validate(object, input).map_err(|p| errors::invalid_properties(sim, &p))?;
    // Engagements need their timeline instant.
    if object == "emails" && values.get("hs_timestamp").is_none_or(String::is_empty) {
        let problem = errors::property_problem("hs_timestamp", "REQUIRED", "hs_timestamp is required");
        return Err(errors::invalid_properties(sim, &[problem]));
    }
    if object == "contacts"
        && let Some(email) = values.get("email").filter(|e| !e.is_empty())
        && let Some(existing) = state.find_by(object, "email", email)
    {
        return Err(errors::contact_exists(sim, existing));
    }
    let now = sim.clock.now();
    let id = state.new_id();
    let properties: BTreeMap<String, String> = values.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    if let Some(store) = state.objects.get_mut(object) {
        store.insert(HsRecord {
            id,
            properties: properties.clone(),
            created_at: now,
            updated_at: now,
            archived_at: None,
        });
    }
    state.webhooks.created(object, id, now);
    for (name, value) in &properties {
        state.webhooks.property_changed(object, id, now, name, value);
    }
    Ok(id)
}

/// Updates one record; `""` clears a value.
fn update_one(
    sim: &Sim,
    state: &mut HubspotState,
    object: &'static str,
    id: u64,
    input: &Map<String, Value>,
) -> Result<(), HsError> {
    let values = HubspotState::validate(object, input).map_err(|p| errors::invalid_properties(sim, &p))?;
    // Engagements need their timeline instant.
    if object == "emails" && values.get("hs_timestamp").is_none_or(String::is_empty) {
        let problem = errors::property_problem("hs_timestamp", "REQUIRED", "hs_timestamp is required");
        return Err(errors::invalid_properties(sim, &[problem]));
    }
    if object == "contacts"
        && let Some(email) = values.get("email").filter(|e| !e.is_empty())
        && let Some(existing) = state.find_by(object, "email", email).filter(|e| *e != id)
    {
        return Err(errors::contact_exists(sim, existing));
    }
    let now = sim.clock.now();
    let changed = state
        .objects
        .get_mut(object)
        .and_then(|s| {
            s.edit(id, |record| {
                let mut changed = Vec::new();
                for (k, v) in values {
                    let previous = if v.is_empty() {
                        record.properties.remove(&k)
                    } else {
                        record.properties.insert(k.clone(), v.clone())
                    };
                    if previous.as_deref().unwrap_or_default() != v {
                        changed.push((k, v));
                    }
                }
                record.updated_at = now;
                changed
            })
        })
        .ok_or_else(|| errors::not_found(sim))?;
    for (name, value) in changed {
        state.webhooks.property_changed(object, id, now, &name, &value);
    }
    Ok(())
}

/// Archives a live record (a missing or archived one is a no-op, as in HubSpot).
fn archive_one(state: &mut HubspotState, object: &'static str, id: &str, now: chrono::DateTime<chrono::Utc>) {
    if let Some(found) = locate(state, object, id, None)
        && let Some(()) = state.objects.get_mut(object).and_then(|s| {
            s.edit(found, |record| {
                record.archived_at = Some(now);
                record.updated_at = now;
            })
        })
    {
        state.webhooks.deleted(object, found, now);
    }
}

async fn create(State(sim): State<Arc<Sim>>, Path(object): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let input = body_json(&sim, &body)?;
        let props = properties_of(&sim, &input)?;
        let mut state = sim.hubspot();
        let id = create_one(&sim, &mut state, object, &props)?;
        let names: Vec<String> = props.keys().cloned().collect();
        let json = HubspotState::to_json(object, &state.objects[object].records[&id], Some(&names));
        Ok((StatusCode::CREATED, Json(json)).into_response())
    })
}

async fn update(
    State(sim): State<Arc<Sim>>,
    Path((object, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let params = Params::new(raw);
        let input = body_json(&sim, &body)?;
        let props = properties_of(&sim, &input)?;
        let mut state = sim.hubspot();
        let found = locate(&state, object, &id, params.get("idProperty")).ok_or_else(|| errors::not_found(&sim))?;
        update_one(&sim, &mut state, object, found, &props)?;
        let names: Vec<String> = props.keys().cloned().collect();
        Ok(Json(HubspotState::to_json(object, &state.objects[object].records[&found], Some(&names))).into_response())
    })
}

async fn archive(
    State(sim): State<Arc<Sim>>,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let now = sim.clock.now();
        let mut state = sim.hubspot();
        // Archiving a missing or archived record is a no-op 204, as in HubSpot.
        archive_one(&mut state, object, &id, now);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// A batch input's `id`, given as a string or a number.
fn input_id(input: &Value) -> String {
    input.get("id").map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())).unwrap_or_default()
}

fn inputs(sim: &Sim, body: &Value) -> Result<Vec<Value>, HsError> {
    let inputs = body
        .get("inputs")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| errors::validation(sim, "inputs is required"))?;
    if inputs.len() > BATCH_LIMIT {
        return Err(errors::validation(
            sim,
            format!("Too many inputs: {}. The maximum is {BATCH_LIMIT}.", inputs.len()),
        ));
    }
    Ok(inputs)
}

/// A batch response: 200/201 when all succeeded, 207 with `errors` and `numErrors` otherwise.
fn batch_response(
    ok_status: StatusCode,
    results: Vec<Value>,
    errors: Vec<Value>,
    started: &str,
    completed: &str,
) -> Response {
    let mut body = json!({ "status": "COMPLETE", "results": results, "startedAt": started, "completedAt": completed });
    if errors.is_empty() {
        return (ok_status, Json(body)).into_response();
    }
    body["numErrors"] = json!(errors.len());
    body["errors"] = json!(errors);
    (StatusCode::MULTI_STATUS, Json(body)).into_response()
}

fn batch_error(err: &HsError, context: Value) -> Value {
    json!({
        "status": "error",
        "category": err.body["category"],
        "message": err.body["message"],
        "context": context,
        "errors": err.body.get("errors").cloned().unwrap_or(json!([])),
        "links": {},
    })
}

async fn batch_create(
    State(sim): State<Arc<Sim>>,
    Path(object): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let body = body_json(&sim, &body)?;
        let inputs = inputs(&sim, &body)?;
        let started = iso(sim.clock.now());
        // Partial success only when every input carries a distinct objectWriteTraceId; otherwise
        // one bad input fails the whole batch (and nothing is created).
        let traced = {
            let ids: Vec<&str> =
                inputs.iter().filter_map(|i| i.get("objectWriteTraceId").and_then(Value::as_str)).collect();
            let mut unique = ids.clone();
            unique.sort_unstable();
            unique.dedup();
            ids.len() == inputs.len() && unique.len() == ids.len()
        };
        let mut state = sim.hubspot();
        let snapshot = (!traced).then(|| (state.objects.clone(), state.next_id));
        let mut results = Vec::new();
        let mut errs = Vec::new();
        for input in &inputs {
            let trace = input.get("objectWriteTraceId").cloned();
            let outcome =
                properties_of(&sim, input).and_then(|p| create_one(&sim, &mut state, object, &p).map(|id| (id, p)));
            match outcome {
                Ok((id, props)) => {
                    let names: Vec<String> = props.keys().cloned().collect();
                    let mut json = HubspotState::to_json(object, &state.objects[object].records[&id], Some(&names));
                    if let Some(trace) = trace {
                        json["objectWriteTraceId"] = trace;
                    }
                    results.push(json);
                }
                Err(e) if traced => errs.push(batch_error(&e, json!({ "objectWriteTraceId": [trace] }))),
                Err(e) => {
                    if let Some((objects, next)) = snapshot {
                        state.objects = objects;
                        state.next_id = next;
                    }
                    return Err(e);
                }
            }
        }
        Ok(batch_response(StatusCode::CREATED, results, errs, &started, &iso(sim.clock.now())))
    })
}

fn not_found_ids(object: &str, ids: &[String]) -> Value {
    let kind = match object {
        "contacts" => "CONTACT",
        "companies" => "COMPANY",
        "emails" => "EMAIL",
        _ => "DEAL",
    };
    json!({
        "status": "error", "category": "OBJECT_NOT_FOUND",
        "message": format!("Could not get some {kind} objects, they may be deleted or not exist. Check that ids are valid."),
        "context": { "ids": ids }, "errors": [], "links": {},
    })
}

async fn batch_update(
    State(sim): State<Arc<Sim>>,
    Path(object): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let body = body_json(&sim, &body)?;
        let inputs = inputs(&sim, &body)?;
        let started = iso(sim.clock.now());
        let mut state = sim.hubspot();
        let mut results = Vec::new();
        let mut errs = Vec::new();
        let mut missing = Vec::new();
        for input in &inputs {
            let id = input_id(input);
            let id_property = input.get("idProperty").and_then(Value::as_str);
            let Some(found) = locate(&state, object, &id, id_property) else {
                missing.push(id);
                continue;
            };
            match properties_of(&sim, input).and_then(|p| update_one(&sim, &mut state, object, found, &p).map(|()| p)) {
                Ok(props) => {
                    let names: Vec<String> = props.keys().cloned().collect();
                    results.push(HubspotState::to_json(object, &state.objects[object].records[&found], Some(&names)));
                }
                Err(e) => errs.push(batch_error(&e, json!({ "ids": [id] }))),
            }
        }
        if !missing.is_empty() {
            errs.push(not_found_ids(object, &missing));
        }
        Ok(batch_response(StatusCode::OK, results, errs, &started, &iso(sim.clock.now())))
    })
}

async fn batch_read(
    State(sim): State<Arc<Sim>>,
    Path(object): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let body = body_json(&sim, &body)?;
        let inputs = inputs(&sim, &body)?;
        let params = Params::new(raw);
        let archived = params.get("archived") == Some("true");
        let props: Vec<String> = body
            .get("properties")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let id_property = body.get("idProperty").and_then(Value::as_str);
        let started = iso(sim.clock.now());
        let state = sim.hubspot();
        let mut results = Vec::new();
        let mut missing = Vec::new();
        for input in &inputs {
            let id = input_id(input);
            let found = if archived {
                id.parse::<u64>()
                    .ok()
                    .filter(|n| state.objects[object].records.get(n).is_some_and(|r| r.archived_at.is_some()))
            } else {
                locate(&state, object, &id, id_property)
            };
            match found {
                Some(found) => {
                    results.push(HubspotState::to_json(object, &state.objects[object].records[&found], Some(&props)))
                }
                None => missing.push(id),
            }
        }
        let errs = if missing.is_empty() { Vec::new() } else { vec![not_found_ids(object, &missing)] };
        Ok(batch_response(StatusCode::OK, results, errs, &started, &iso(sim.clock.now())))
    })
}

async fn batch_upsert(
    State(sim): State<Arc<Sim>>,
    Path(object): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let body = body_json(&sim, &body)?;
        let inputs = inputs(&sim, &body)?;
        let started = iso(sim.clock.now());
        let mut state = sim.hubspot();
        let mut results = Vec::new();
        let mut errs = Vec::new();
        for input in &inputs {
            let id = input.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            let id_property = input.get("idProperty").and_then(Value::as_str).unwrap_or("hs_object_id").to_owned();
            let unique = properties::properties(object).iter().any(|p| p.name == id_property && p.unique);
            if !unique {
                errs.push(batch_error(
                    &errors::validation(&sim, format!("idProperty {id_property} is not a unique property of {object}")),
                    json!({ "ids": [id] }),
                ));
                continue;
            }
            let outcome = properties_of(&sim, input).and_then(|mut props| {
                match locate(&state, object, &id, Some(&id_property)) {
                    Some(found) => update_one(&sim, &mut state, object, found, &props).map(|()| (found, false, props)),
                    None if id_property == "hs_object_id" => Err(errors::not_found(&sim)),
                    None => {
                        props.insert(id_property.clone(), json!(id));
                        create_one(&sim, &mut state, object, &props).map(|found| (found, true, props))
                    }
                }
            });
            match outcome {
                Ok((found, new, props)) => {
                    let names: Vec<String> = props.keys().cloned().collect();
                    let mut json = HubspotState::to_json(object, &state.objects[object].records[&found], Some(&names));
                    json["new"] = json!(new);
                    results.push(json);
                }
                Err(e) => errs.push(batch_error(&e, json!({ "ids": [id] }))),
            }
        }
        Ok(batch_response(StatusCode::OK, results, errs, &started, &iso(sim.clock.now())))
    })
}

async fn batch_archive(
    State(sim): State<Arc<Sim>>,
    Path(object): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let body = body_json(&sim, &body)?;
        let inputs = inputs(&sim, &body)?;
        let now = sim.clock.now();
        let mut state = sim.hubspot();
        for input in &inputs {
            let id = input_id(input);
            archive_one(&mut state, object, &id, now);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

async fn list_properties(State(sim): State<Arc<Sim>>, Path(object): Path<String>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let list: Vec<Value> = properties::properties(object).iter().enumerate().map(|(i, p)| p.to_json(i)).collect();
        Ok(Json(json!({ "results": list })).into_response())
    })
}

async fn read_property(
    State(sim): State<Arc<Sim>>,
    Path((object, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let object = resolve(&sim, &object)?;
        let defs = properties::properties(object);
        let (i, p) = defs.iter().enumerate().find(|(_, p)| p.name == name).ok_or_else(|| errors::not_found(&sim))?;
        Ok(Json(p.to_json(i)).into_response())
    })
}
