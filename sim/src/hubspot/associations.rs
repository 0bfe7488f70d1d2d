//! Associations v4 between contacts, companies, deals and email engagements: create the default (unlabeled) or a
//! HubSpot-defined labelled association, read one record's associations to a type (paged), remove
//! them, batch read, create, associate by default and archive, and list the labels of a pair of
//! types. A contact or deal has one Primary company. Every association is kept in both
//! directions, each with its own type id (contact→company 279, company→contact 280), as HubSpot
//! answers them; reads leave out archived records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::errors::{self, HsError};
use super::objects::Params;
use super::{ExtraHeaders, HubspotState, authorize, object_type, with_headers};
use crate::Sim;

/// One HubSpot-defined association type: from, to, its id, the reverse direction's id, and its
/// label (`None`: the default, unlabeled one).
struct AssociationType {
    from: &'static str,
    to: &'static str,
    id: u32,
    reverse: u32,
    label: Option<&'static str>,
}

/// The HubSpot-defined types between the emulated objects (the default first for each pair).
const TYPES: &[AssociationType] = &[
    AssociationType { from: "contacts", to: "companies", id: 279, reverse: 280, label: None },
    AssociationType { from: "companies", to: "contacts", id: 280, reverse: 279, label: None },
    AssociationType { from: "contacts", to: "companies", id: 1, reverse: 2, label: Some("Primary") },
    AssociationType { from: "companies", to: "contacts", id: 2, reverse: 1, label: Some("Primary") },
    AssociationType { from: "deals", to: "contacts", id: 3, reverse: 4, label: None },
    AssociationType { from: "contacts", to: "deals", id: 4, reverse: 3, label: None },
    AssociationType { from: "deals", to: "companies", id: 341, reverse: 342, label: None },
    AssociationType { from: "companies", to: "deals", id: 342, reverse: 341, label: None },
    AssociationType { from: "deals", to: "companies", id: 5, reverse: 6, label: Some("Primary") },
    AssociationType { from: "companies", to: "deals", id: 6, reverse: 5, label: Some("Primary") },
    AssociationType { from: "emails", to: "contacts", id: 198, reverse: 197, label: None },
    AssociationType { from: "contacts", to: "emails", id: 197, reverse: 198, label: None },
];

fn association_type(from: &str, to: &str, id: u32) -> Option<&'static AssociationType> {
    TYPES.iter().find(|t| t.from == from && t.to == to && t.id == id)
}

fn default_type(from: &str, to: &str) -> Option<&'static AssociationType> {
    TYPES.iter().find(|t| t.from == from && t.to == to && t.label.is_none())
}

fn type_json(t: &AssociationType) -> Value {
    json!({ "category": "HUBSPOT_DEFINED", "typeId": t.id, "label": t.label })
}

/// The associations of a portal: (from type, from id, to type) → to id → type ids.
#[derive(Debug, Default)]
pub struct Associations {
    links: BTreeMap<(&'static str, u64, &'static str), BTreeMap<u64, BTreeSet<u32>>>,
}

impl Associations {
    /// Associates two records with a type, and the reverse with its reverse type. A contact or deal
    /// has one Primary company: labelling a new one takes the label from the old, which stays
    /// associated (as HubSpot does).
    fn add(&mut self, from: (&'static str, u64), to: (&'static str, u64), kind: &AssociationType) {
        if kind.label == Some("Primary") {
            let (holder, company, held) =
                if from.0 == "companies" { (to, from, kind.reverse) } else { (from, to, kind.id) };
            self.unlabel_primary(holder, company, held);
        }
        self.links.entry((from.0, from.1, to.0)).or_default().entry(to.1).or_default().insert(kind.id);
        self.links.entry((to.0, to.1, from.0)).or_default().entry(from.1).or_default().insert(kind.reverse);
    }

    /// Takes the Primary label (`held`, from the holder's side) off the holder's other companies.
    fn unlabel_primary(&mut self, holder: (&'static str, u64), keep: (&'static str, u64), held: u32) {
        let Some(kind) = TYPES.iter().find(|t| t.from == holder.0 && t.id == held) else { return };
        let others: Vec<u64> = self
            .links
            .get(&(holder.0, holder.1, keep.0))
            .map(|targets| {
                targets
                    .iter()
                    .filter(|(id, kinds)| **id != keep.1 && kinds.contains(&held))
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default();
        for other in others {
            if let Some(kinds) = self.links.get_mut(&(holder.0, holder.1, keep.0)).and_then(|t| t.get_mut(&other)) {
                kinds.remove(&held);
            }
            if let Some(kinds) = self.links.get_mut(&(keep.0, other, holder.0)).and_then(|t| t.get_mut(&holder.1)) {
                kinds.remove(&kind.reverse);
            }
        }
    }

    /// Removes every association between two records, both ways.
    fn remove(&mut self, from: (&'static str, u64), to: (&'static str, u64)) {
        for (a, b) in [(from, to), (to, from)] {
            if let Some(targets) = self.links.get_mut(&(a.0, a.1, b.0)) {
                targets.remove(&b.1);
            }
        }
    }

    /// Associates two records with a HubSpot-defined type as a HubSpot user would (tests); false
    /// when the objects have no such type.
    pub fn link(&mut self, from: (&'static str, u64), to: (&'static str, u64), type_id: u32) -> bool {
        let Some(kind) = association_type(from.0, to.0, type_id) else { return false };
        self.add(from, to, kind);
        true
    }

    /// The records of type `to` a record is associated with, by id, with the type ids.
    pub fn of(&self, from: &'static str, id: u64, to: &'static str) -> BTreeMap<u64, BTreeSet<u32>> {
        self.links.get(&(from, id, to)).cloned().unwrap_or_default()
    }
}

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/crm/v4/objects/{from}/{id}/associations/default/{to}/{to_id}", put(associate_default))
        .route("/crm/v4/objects/{from}/{id}/associations/{to}/{to_id}", put(associate_labelled).delete(remove))
        .route("/crm/v4/objects/{from}/{id}/associations/{to}", get(read))
        .route("/crm/v4/associations/{from}/{to}/batch/read", post(batch_read))
        .route("/crm/v4/associations/{from}/{to}/batch/create", post(batch_create))
        .route("/crm/v4/associations/{from}/{to}/batch/associate/default", post(batch_associate_default))
        .route("/crm/v4/associations/{from}/{to}/batch/archive", post(batch_archive))
        .route("/crm/v4/associations/{from}/{to}/labels", get(labels))
        .with_state(sim)
}

/// An object type of the path, or 400 naming it.
fn object_of(sim: &Sim, raw: &str) -> Result<&'static str, HsError> {
    object_type(raw).ok_or_else(|| errors::validation(sim, format!("Unknown object type {raw}")))
}

/// A live record of the path, or 404 as HubSpot answers an unknown one.
fn live(sim: &Sim, state: &HubspotState, object: &'static str, raw: &str) -> Result<u64, HsError> {
    let found = raw.parse::<u64>().ok().filter(|id| {
        state.objects.get(object).and_then(|s| s.records.get(id)).is_some_and(|r| r.archived_at.is_none())
    });
    found.ok_or_else(|| {
        errors::error(sim, StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("{object} {raw} not found"))
    })
}

fn answer(result: Result<Response, HsError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Two live records a request names by path (`{from}/{id}` and `{to}/{toId}`), checked after the
/// token, with the portal's state locked and the rate-limit headers to send.
struct Pair<'a> {
    extra: ExtraHeaders,
    state: std::sync::MutexGuard<'a, HubspotState>,
    from: (&'static str, u64),
    to: (&'static str, u64),
}

fn pair<'a>(sim: &'a Sim, headers: &HeaderMap, path: &(String, String, String, String)) -> Result<Pair<'a>, HsError> {
    let (_, extra) = authorize(sim, headers, false)?;
    let (from, to) = (object_of(sim, &path.0)?, object_of(sim, &path.2)?);
    let state = sim.hubspot();
    let (a, b) = (live(sim, &state, from, &path.1)?, live(sim, &state, to, &path.3)?);
    Ok(Pair { extra, state, from: (from, a), to: (to, b) })
}

/// `PUT …/associations/default/{to}/{toId}`: the default association, both ways.
async fn associate_default(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String, String, String)>,
) -> Response {
    answer((|| {
        let Pair { extra, mut state, from, to } = pair(&sim, &headers, &path)?;
        let kind = default_type(from.0, to.0)
            .ok_or_else(|| errors::validation(&sim, format!("{} cannot be associated with {}", from.0, to.0)))?;
        state.associations.add(from, to, kind);
        let (a, b) = (from.1, to.1);
        let spec = |from_id: u64, to_id: u64, type_id: u32| {
            json!({ "from": {"id": from_id.to_string()}, "to": {"id": to_id.to_string()},
                    "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id} })
        };
        let body = json!({ "status": "COMPLETE", "results": [spec(a, b, kind.id), spec(b, a, kind.reverse)] });
        Ok(with_headers(Json(body).into_response(), &extra))
    })())
}

/// `PUT …/associations/{to}/{toId}` with `[{associationCategory, associationTypeId}]`.
async fn associate_labelled(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    answer((|| {
        let Pair { extra, mut state, from: (from, a), to: (to, b) } = pair(&sim, &headers, &path)?;
        let specs: Vec<Value> = serde_json::from_slice(&body)
            .map_err(|_| errors::validation(&sim, "send an array of {associationCategory, associationTypeId}"))?;
        let kinds = specs
            .iter()
            .map(|spec| {
                let id = spec["associationTypeId"].as_u64().and_then(|n| u32::try_from(n).ok());
                let category = spec["associationCategory"].as_str();
                match (category, id.and_then(|id| association_type(from, to, id))) {
                    (Some("HUBSPOT_DEFINED"), Some(kind)) => Ok(kind),
                    _ => Err(errors::validation(&sim, format!("invalid association type {spec} for {from} → {to}"))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        for kind in &kinds {
            state.associations.add((from, a), (to, b), kind);
        }
        let labels: Vec<&str> = kinds.iter().filter_map(|k| k.label).collect();
        let body = json!({ "fromObjectTypeId": type_id(from), "fromObjectId": a, "toObjectTypeId": type_id(to),
                           "toObjectId": b, "labels": labels });
        Ok(with_headers((StatusCode::CREATED, Json(body)).into_response(), &extra))
    })())
}

/// `0-1` for contacts.
fn type_id(object: &str) -> &'static str {
    super::properties::OBJECT_TYPES.iter().find(|t| t.0 == object).map_or("", |t| t.2)
}

/// `DELETE …/associations/{to}/{toId}`: every association between the two, both ways.
async fn remove(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String, String, String)>,
) -> Response {
    answer((|| {
        let Pair { extra, mut state, from, to } = pair(&sim, &headers, &path)?;
        state.associations.remove(from, to);
        Ok(with_headers(StatusCode::NO_CONTENT.into_response(), &extra))
    })())
}

/// The associations of one record to live records of `to`, as v4 reads list them.
fn targets(state: &HubspotState, from: &'static str, id: u64, to: &'static str) -> Vec<Value> {
    let live = |target: &u64| state.objects[to].records.get(target).is_some_and(|r| r.archived_at.is_none());
    state
        .associations
        .of(from, id, to)
        .into_iter()
        .filter(|(target, _)| live(target))
        .map(|(target, kinds)| {
            let types: Vec<Value> =
                kinds.iter().filter_map(|k| association_type(from, to, *k)).map(type_json).collect();
            json!({ "toObjectId": target, "associationTypes": types })
        })
        .collect()
}

/// `GET …/associations/{to}?limit=&after=`: pages of at most `limit` (500 by default).
async fn read(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((from, id, to)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    // Notes hold attachments: their associations live with them.
    if matches!(to.as_str(), "notes" | "note" | "0-46") {
        return super::attachments::associations(State(sim), Path((from, id, to)), headers).await;
    }
    answer((|| {
        let (_, extra) = authorize(&sim, &headers, false)?;
        let (from, to) = (object_of(&sim, &from)?, object_of(&sim, &to)?);
        let params = Params::new(raw);
        let limit = params.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(500).clamp(1, 500);
        let after = params.get("after").and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
        let state = sim.hubspot();
        let record = live(&sim, &state, from, &id)?;
        let all = targets(&state, from, record, to);
        let mut rest = all.into_iter().filter(|t| t["toObjectId"].as_u64().is_some_and(|n| n > after));
        let page: Vec<Value> = rest.by_ref().take(limit).collect();
        let mut body = json!({ "results": page });
        if rest.next().is_some()
            && let Some(last) = body["results"].as_array().and_then(|p| p.last()).map(|l| l["toObjectId"].clone())
        {
            body["paging"] = json!({ "next": { "after": last.to_string() } });
        }
        Ok(with_headers(Json(body).into_response(), &extra))
    })())
}

/// `POST /crm/v4/associations/{from}/{to}/batch/read` `{"inputs": [{"id"}]}`: each input's
/// associations; an unknown record is an error of the batch (207), the others still answer.
async fn batch_read(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((from, to)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    answer((|| {
        let (_, extra) = authorize(&sim, &headers, false)?;
        let (from, to) = (object_of(&sim, &from)?, object_of(&sim, &to)?);
        let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(inputs) = input["inputs"].as_array() else {
            return Err(errors::validation(&sim, "send {\"inputs\": [{\"id\": \"…\"}]}"));
        };
        let now = super::iso(sim.clock.now());
        let state = sim.hubspot();
        let (mut results, mut problems) = (Vec::new(), Vec::new());
        for raw in inputs.iter().map(|i| i["id"].as_str().map(str::to_owned).unwrap_or_else(|| i["id"].to_string())) {
            match live(&sim, &state, from, &raw) {
                Ok(id) => results.push(json!({ "from": {"id": raw}, "to": targets(&state, from, id, to) })),
                Err(_) => problems.push(json!({ "status": "error", "category": "OBJECT_NOT_FOUND",
                                                "message": format!("{from} {raw} not found"), "context": {"fromObjectId": [raw]} })),
            }
        }
        let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::MULTI_STATUS };
        let mut body = json!({ "status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now });
        if !problems.is_empty() {
            body["numErrors"] = json!(problems.len());
            body["errors"] = Value::Array(problems);
        }
        Ok(with_headers((status, Json(body)).into_response(), &extra))
    })())
}

/// `GET /crm/v4/associations/{from}/{to}/labels`.
async fn labels(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path((from, to)): Path<(String, String)>) -> Response {
    answer((|| {
        let (_, extra) = authorize(&sim, &headers, false)?;
        let (from, to) = (object_of(&sim, &from)?, object_of(&sim, &to)?);
        let results: Vec<Value> = TYPES.iter().filter(|t| t.from == from && t.to == to).map(type_json).collect();
        Ok(with_headers(Json(json!({ "results": results })).into_response(), &extra))
    })())
}

/// A batch request, checked: the rate-limit headers to send, the path's two object types, and
/// the body's `inputs`.
struct BatchRequest {
    extra: ExtraHeaders,
    from: &'static str,
    to: &'static str,
    inputs: Vec<Value>,
}

/// Checks the token, the path's object types and the body (`shape` says what an input looks like
/// when they are missing).
fn batch_request(
    sim: &Sim,
    headers: &HeaderMap,
    (from, to): &(String, String),
    body: &Bytes,
    shape: &str,
) -> Result<BatchRequest, HsError> {
    let (_, extra) = authorize(sim, headers, false)?;
    let (from, to) = (object_of(sim, from)?, object_of(sim, to)?);
    Ok(BatchRequest { extra, from, to, inputs: inputs(sim, body, shape)? })
}

/// A batch body's `inputs`, or 400 saying what to send.
fn inputs(sim: &Sim, body: &Bytes, shape: &str) -> Result<Vec<Value>, HsError> {
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    input["inputs"]
        .as_array()
        .cloned()
        .ok_or_else(|| errors::validation(sim, format!("send {{\"inputs\": [{shape}]}}")))
}

/// An id as inputs carry it (`"123"` or `123`).
fn id_text(value: &Value) -> String {
    value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string())
}

/// The two live records a batch input names (`from.id`, `to.id`), or that input's error naming them.
fn live_pair(
    sim: &Sim,
    state: &HubspotState,
    (from, to): (&'static str, &'static str),
    input: &Value,
) -> Result<(u64, u64), Value> {
    let (a, b) = (id_text(&input["from"]["id"]), id_text(&input["to"]["id"]));
    match (live(sim, state, from, &a), live(sim, state, to, &b)) {
        (Ok(a_id), Ok(b_id)) => Ok((a_id, b_id)),
        _ => Err(input_error(
            "VALIDATION_ERROR",
            format!("One or more of the objects in ({from} {a}, {to} {b}) do not exist"),
            json!({ "fromObjectId": [a], "toObjectId": [b] }),
        )),
    }
}

/// One batch input's error, naming the ids it concerns in `context`.
fn input_error(category: &str, message: String, context: Value) -> Value {
    json!({ "status": "error", "category": category, "message": message, "context": context })
}

/// A batch answer: 201/200 with `results`, or 207 with `errors` beside them.
fn batch_answer(ok: StatusCode, results: Vec<Value>, problems: Vec<Value>, now: &str) -> Response {
    let status = if problems.is_empty() { ok } else { StatusCode::MULTI_STATUS };
    let mut body = json!({ "status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now });
    if !problems.is_empty() {
        body["numErrors"] = json!(problems.len());
        body["errors"] = Value::Array(problems);
    }
    (status, Json(body)).into_response()
}

/// `POST …/batch/create` `{"inputs": [{"from": {"id"}, "to": {"id"}, "types": [{associationCategory,
/// associationTypeId}]}]}`: 201 with each pair's labels; an unknown record or type is that input's
/// error (207).
async fn batch_create(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Response {
    answer((|| {
        let BatchRequest { extra, from, to, inputs } =
            batch_request(&sim, &headers, &path, &body, "{\"from\": {\"id\"}, \"to\": {\"id\"}, \"types\": [...]}")?;
        let now = super::iso(sim.clock.now());
        let mut state = sim.hubspot();
        let (mut results, mut problems) = (Vec::new(), Vec::new());
        for input in &inputs {
            let (a_id, b_id) = match live_pair(&sim, &state, (from, to), input) {
                Ok(pair) => pair,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
            let a = a_id.to_string();
            let kinds: Option<Vec<&AssociationType>> = input["types"]
                .as_array()
                .map(|types| {
                    types
                        .iter()
                        .map(|t| {
                            let id = t["associationTypeId"].as_u64().and_then(|n| u32::try_from(n).ok())?;
                            (t["associationCategory"] == "HUBSPOT_DEFINED").then_some(())?;
                            association_type(from, to, id)
                        })
                        .collect()
                })
                .unwrap_or(None);
            let Some(kinds) = kinds.filter(|k| !k.is_empty()) else {
                let message = format!("invalid association types {} for {from} → {to}", input["types"]);
                problems.push(input_error("VALIDATION_ERROR", message, json!({ "fromObjectId": [a] })));
                continue;
            };
            for kind in &kinds {
                state.associations.add((from, a_id), (to, b_id), kind);
            }
            let labels: Vec<&str> = kinds.iter().filter_map(|k| k.label).collect();
            results
                .push(json!({ "fromObjectTypeId": type_id(from), "fromObjectId": a_id, "toObjectTypeId": type_id(to),
                                 "toObjectId": b_id, "labels": labels }));
        }
        Ok(with_headers(batch_answer(StatusCode::CREATED, results, problems, &now), &extra))
    })())
}

/// `POST …/batch/associate/default` `{"inputs": [{"from": {"id"}, "to": {"id"}}]}`: the default
/// association of each pair, both ways.
async fn batch_associate_default(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Response {
    answer((|| {
        let BatchRequest { extra, from, to, inputs } =
            batch_request(&sim, &headers, &path, &body, "{\"from\": {\"id\"}, \"to\": {\"id\"}}")?;
        let kind = default_type(from, to)
            .ok_or_else(|| errors::validation(&sim, format!("{from} cannot be associated with {to}")))?;
        let now = super::iso(sim.clock.now());
        let mut state = sim.hubspot();
        let (mut results, mut problems) = (Vec::new(), Vec::new());
        for input in &inputs {
            match live_pair(&sim, &state, (from, to), input) {
                Ok((a, b)) => {
                    state.associations.add((from, a), (to, b), kind);
                    results.push(json!({ "from": {"id": a.to_string()}, "to": {"id": b.to_string()},
                        "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": kind.id} }));
                }
                Err(problem) => problems.push(problem),
            }
        }
        Ok(with_headers(batch_answer(StatusCode::OK, results, problems, &now), &extra))
    })())
}

/// `POST …/batch/archive` `{"inputs": [{"from": {"id"}, "to": [{"id"}]}]}`: every association
/// between each pair removed, both ways; 204 (pairs that were not associated are no error).
async fn batch_archive(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Response {
    answer((|| {
        let BatchRequest { extra, from, to, inputs } =
            batch_request(&sim, &headers, &path, &body, "{\"from\": {\"id\"}, \"to\": [{\"id\"}]}")?;
        let mut state = sim.hubspot();
        for input in &inputs {
            let Ok(a) = id_text(&input["from"]["id"]).parse::<u64>() else { continue };
            for target in input["to"].as_array().into_iter().flatten() {
                if let Ok(b) = id_text(&target["id"]).parse::<u64>() {
                    state.associations.remove((from, a), (to, b));
                }
            }
        }
        Ok(with_headers(StatusCode::NO_CONTENT.into_response(), &extra))
    })())
}
