//! Lists v3 (HubSpot's "segments"): create a list of contacts or companies, read it by id or by
//! name, search, rename, delete, and its memberships — add, remove, add-and-remove, read them
//! paged in record-id order, and the lists one record belongs to. Only `MANUAL` and `SNAPSHOT`
//! lists take membership changes, as HubSpot's do; an id that is no live record of the list's type
//! comes back in `recordIdsMissing`, one already a member is ignored. Archived records leave their
//! lists' reads. Not emulated: `DYNAMIC` lists' filters (they are created, and stay empty),
//! folders, list conversion and `add-from` another list.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::errors::{self, HsError};
use super::objects::{Params, api, body_json};
use super::{HubspotState, iso, object_type};
use crate::Sim;

/// Most memberships per page.
const PAGE_LIMIT: usize = 250;
/// Most lists per search.
const SEARCH_LIMIT: usize = 500;

/// How a list keeps its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processing {
    /// Members added and removed by hand or API.
    Manual,
    /// Filled once by its filters, then changed by hand or API.
    Snapshot,
    /// Kept by its filters; refuses membership changes.
    Dynamic,
}

impl Processing {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "MANUAL" => Some(Self::Manual),
            "SNAPSHOT" => Some(Self::Snapshot),
            "DYNAMIC" => Some(Self::Dynamic),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "MANUAL",
            Self::Snapshot => "SNAPSHOT",
            Self::Dynamic => "DYNAMIC",
        }
    }
}

/// One list.
#[derive(Debug, Clone)]
pub struct HsList {
    /// The ILS id.
    pub id: u64,
    /// Its name, unique in the portal.
    pub name: String,
    /// The object path its members are records of (`contacts`).
    pub object: &'static str,
    /// How it keeps members.
    pub processing: Processing,
    /// Bumped on every change.
    pub version: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed (name or members).
    pub updated_at: DateTime<Utc>,
    /// Members by record id, with when they joined.
    pub members: BTreeMap<u64, DateTime<Utc>>,
}

/// The portal's lists.
#[derive(Debug, Default)]
pub struct Lists {
    /// Live lists by id.
    pub lists: BTreeMap<u64, HsList>,
    next_id: u64,
}

impl Lists {
    /// Creates a list as a HubSpot user would (tests), or says why not.
    pub fn create(
        &mut self,
        name: &str,
        object: &'static str,
        processing: Processing,
        now: DateTime<Utc>,
    ) -> Result<u64, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("name: must not be blank".to_owned());
        }
        if self.by_name(object, name).is_some() {
            return Err(format!("A list with name `{name}` already exists."));
        }
        self.next_id += 1;
        let id = self.next_id;
        let list = HsList {
            id,
            name: name.to_owned(),
            object,
            processing,
            version: 1,
            created_at: now,
            updated_at: now,
            members: BTreeMap::new(),
        };
        self.lists.insert(id, list);
        Ok(id)
    }

    /// The list of `object` records named `name` (case-insensitively, as HubSpot compares names).
    pub fn by_name(&self, object: &str, name: &str) -> Option<&HsList> {
        self.lists.values().find(|l| l.object == object && l.name.eq_ignore_ascii_case(name.trim()))
    }
}

impl HubspotState {
    /// The ids that are no live record of the list's object type.
    fn missing_records(&self, object: &str, ids: &[u64]) -> Vec<u64> {
        let live = |id: &u64| {
            self.objects.get(object).and_then(|s| s.records.get(id)).is_some_and(|r| r.archived_at.is_none())
        };
        ids.iter().copied().filter(|id| !live(id)).collect()
    }

    /// Adds live records to a list as a HubSpot user would (tests); the ids added.
    pub fn add_list_members(&mut self, list: u64, ids: &[u64], now: DateTime<Utc>) -> Vec<u64> {
        let Some(object) = self.lists.lists.get(&list).map(|l| l.object) else { return Vec::new() };
        let missing = self.missing_records(object, ids);
        self.lists.add_present(list, ids, &missing, now)
    }
}

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/crm/v3/lists", post(create))
        .route("/crm/v3/lists/search", post(search))
        .route("/crm/v3/lists/{list_id}", get(read).delete(delete))
        .route("/crm/v3/lists/object-type-id/{object}/name/{name}", get(read_by_name))
        .route("/crm/v3/lists/{list_id}/update-list-name", put(rename))
        .route("/crm/v3/lists/{list_id}/memberships", get(memberships))
        .route("/crm/v3/lists/{list_id}/memberships/add", put(add))
        .route("/crm/v3/lists/{list_id}/memberships/remove", put(remove))
        .route("/crm/v3/lists/{list_id}/memberships/add-and-remove", put(add_and_remove))
        .route("/crm/v3/lists/records/{object}/{record_id}/memberships", get(record_memberships))
        .with_state(sim)
}

/// The object type id (`0-1`) of an object path.
fn type_id(object: &str) -> &'static str {
    super::properties::OBJECT_TYPES.iter().find(|t| t.0 == object).map_or("0-1", |t| t.2)
}

/// A list as `PublicObjectList` JSON.
fn list_json(state: &HubspotState, list: &HsList) -> Value {
    json!({
        "listId": list.id.to_string(),
        "listVersion": list.version,
        "name": list.name,
        "objectTypeId": type_id(list.object),
        "processingType": list.processing.as_str(),
        "processingStatus": "COMPLETE",
        "createdAt": iso(list.created_at),
        "updatedAt": iso(list.updated_at),
        "createdById": super::USER_ID.to_string(),
        "updatedById": super::USER_ID.to_string(),
        "additionalProperties": { "hs_list_size": live_members(state, list).count().to_string() },
    })
}

/// The members that are live records (archived ones leave the list's reads).
fn live_members<'a>(state: &'a HubspotState, list: &'a HsList) -> impl Iterator<Item = (u64, DateTime<Utc>)> + 'a {
    let store = state.objects.get(list.object);
    list.members
        .iter()
        .filter(move |(id, _)| store.and_then(|s| s.records.get(id)).is_some_and(|r| r.archived_at.is_none()))
        .map(|(id, at)| (*id, *at))
}

fn list_not_found(sim: &Sim, raw: &str) -> HsError {
    errors::error(sim, StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("List does not exist with ID {raw}."))
}

fn list_id(sim: &Sim, state: &HubspotState, raw: &str) -> Result<u64, HsError> {
    raw.parse::<u64>().ok().filter(|id| state.lists.lists.contains_key(id)).ok_or_else(|| list_not_found(sim, raw))
}

/// `POST /crm/v3/lists`: `{name, objectTypeId, processingType}` → `{list}`.
async fn create(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    api(&sim, &headers, || {
        let input = body_json(&sim, &body)?;
        let name = input["name"].as_str().unwrap_or_default();
        let object_raw = input["objectTypeId"].as_str().unwrap_or_default();
        let object = object_type(object_raw).filter(|o| *o != "emails").ok_or_else(|| {
            errors::validation(&sim, format!("objectTypeId: `{object_raw}` is not a list object type"))
        })?;
        let processing_raw = input["processingType"].as_str().unwrap_or_default();
        let processing = Processing::parse(processing_raw).ok_or_else(|| {
            errors::validation(
                &sim,
                format!("processingType: `{processing_raw}` is not one of MANUAL, SNAPSHOT, DYNAMIC"),
            )
        })?;
        let now = sim.clock.now();
        let mut state = sim.hubspot();
        let id = state.lists.create(name, object, processing, now).map_err(|why| {
            let mut e = errors::validation(&sim, why);
            if state.lists.by_name(object, name).is_some() {
                e.body["subCategory"] = json!("ILS.DUPLICATE_LIST_NAMES");
            }
            e
        })?;
        let list = &state.lists.lists[&id];
        Ok(Json(json!({ "list": list_json(&state, list) })).into_response())
    })
}

/// `GET /crm/v3/lists/{listId}` → `{list}`.
async fn read(State(sim): State<Arc<Sim>>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        let state = sim.hubspot();
        let id = list_id(&sim, &state, &raw)?;
        Ok(Json(json!({ "list": list_json(&state, &state.lists.lists[&id]) })).into_response())
    })
}

/// `GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}` → `{list}`.
async fn read_by_name(
    State(sim): State<Arc<Sim>>,
    Path((object_raw, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let state = sim.hubspot();
        let list = object_type(&object_raw)
            .and_then(|object| state.lists.by_name(object, &name))
            .ok_or_else(|| list_not_found(&sim, &name))?;
        Ok(Json(json!({ "list": list_json(&state, list) })).into_response())
    })
}

/// `POST /crm/v3/lists/search`: `{query, processingTypes, offset, count}` → `{lists, hasMore,
/// offset, total}` (name contains the query, case-insensitively; ordered by id).
async fn search(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    api(&sim, &headers, || {
        let input = body_json(&sim, &body)?;
        let query = input["query"].as_str().unwrap_or_default().to_lowercase();
        let kinds: Vec<&str> = input["processingTypes"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let offset = input["offset"].as_u64().unwrap_or(0) as usize;
        let count = input["count"].as_u64().unwrap_or(20) as usize;
        if count > SEARCH_LIMIT {
            return Err(errors::validation(&sim, format!("count: must be less than or equal to {SEARCH_LIMIT}")));
        }
        let state = sim.hubspot();
        let matching: Vec<&HsList> = state
            .lists
            .lists
            .values()
            .filter(|l| query.is_empty() || l.name.to_lowercase().contains(&query))
            .filter(|l| kinds.is_empty() || kinds.contains(&l.processing.as_str()))
            .collect();
        let page: Vec<Value> = matching.iter().skip(offset).take(count).map(|l| list_json(&state, l)).collect();
        let next = offset + page.len();
        Ok(Json(json!({ "lists": page, "hasMore": next < matching.len(), "offset": next, "total": matching.len() }))
            .into_response())
    })
}

/// `PUT /crm/v3/lists/{listId}/update-list-name?listName=…` → `{updatedList}`.
async fn rename(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let params = Params::new(query);
        let name = params.get("listName").map(str::trim).unwrap_or_default().to_owned();
        if name.is_empty() {
            return Err(errors::validation(&sim, "listName: must not be blank"));
        }
        let now = sim.clock.now();
        let mut state = sim.hubspot();
        let id = list_id(&sim, &state, &raw)?;
        let object = state.lists.lists[&id].object;
        if state.lists.by_name(object, &name).is_some_and(|other| other.id != id) {
            let mut e = errors::validation(&sim, format!("A list with name `{name}` already exists."));
            e.body["subCategory"] = json!("ILS.DUPLICATE_LIST_NAMES");
            return Err(e);
        }
        if let Some(list) = state.lists.lists.get_mut(&id) {
            list.name = name;
            list.version += 1;
            list.updated_at = now;
        }
        Ok(Json(json!({ "updatedList": list_json(&state, &state.lists.lists[&id]) })).into_response())
    })
}

/// `DELETE /crm/v3/lists/{listId}` → 204.
async fn delete(State(sim): State<Arc<Sim>>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        let mut state = sim.hubspot();
        let id = list_id(&sim, &state, &raw)?;
        state.lists.lists.remove(&id);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// Record ids of a membership body: numbers or numeric strings.
fn record_ids(sim: &Sim, value: &Value) -> Result<Vec<u64>, HsError> {
    let Some(items) = value.as_array() else {
        return Err(errors::validation(sim, "Invalid input JSON: expected an array of record ids"));
    };
    items
        .iter()
        .map(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| errors::validation(sim, format!("Invalid input JSON: `{v}` is not a record id")))
        })
        .collect()
}

/// What a membership change did.
struct Change {
    added: Vec<u64>,
    removed: Vec<u64>,
    /// Ids that are no live record of the list's type.
    missing: Vec<u64>,
}

/// Adds and removes members.
fn change_members(sim: &Sim, raw: &str, to_add: &[u64], to_remove: &[u64]) -> Result<Change, HsError> {
    let now = sim.clock.now();
    let mut state = sim.hubspot();
    let id = list_id(sim, &state, raw)?;
    let list = &state.lists.lists[&id];
    if list.processing == Processing::Dynamic {
        return Err(errors::validation(
            sim,
            format!(
                "List {id} has processingType DYNAMIC: memberships can only be changed for MANUAL or SNAPSHOT lists."
            ),
        ));
    }
    let asked: Vec<u64> = to_add.iter().chain(to_remove).copied().collect();
    let missing = state.missing_records(list.object, &asked);
    let added = state.lists.add_present(id, to_add, &missing, now);
    let mut removed = Vec::new();
    if let Some(list) = state.lists.lists.get_mut(&id) {
        for record in to_remove.iter().filter(|r| !missing.contains(r)) {
            if list.members.remove(record).is_some() {
                removed.push(*record);
            }
        }
        if !removed.is_empty() {
            list.version += 1;
            list.updated_at = now;
        }
    }
    Ok(Change { added, removed, missing })
}

impl Lists {
    /// Adds the ids not missing and not yet members; the ids added.
    fn add_present(&mut self, list: u64, ids: &[u64], missing: &[u64], now: DateTime<Utc>) -> Vec<u64> {
        let Some(list) = self.lists.get_mut(&list) else { return Vec::new() };
        let mut added = Vec::new();
        for id in ids.iter().filter(|id| !missing.contains(id)) {
            if !list.members.contains_key(id) {
                list.members.insert(*id, now);
                added.push(*id);
            }
        }
        if !added.is_empty() {
            list.version += 1;
            list.updated_at = now;
        }
        added
    }
}

fn texts(ids: &[u64]) -> Vec<String> {
    ids.iter().map(u64::to_string).collect()
}

/// `PUT /crm/v3/lists/{listId}/memberships/add`: a JSON array of record ids.
async fn add(State(sim): State<Arc<Sim>>, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    api(&sim, &headers, || {
        let ids = record_ids(&sim, &body_json(&sim, &body)?)?;
        let Change { added, missing, .. } = change_members(&sim, &raw, &ids, &[])?;
        Ok(Json(json!({ "recordIdsAdded": texts(&added), "recordIdsMissing": texts(&missing) })).into_response())
    })
}

/// `PUT /crm/v3/lists/{listId}/memberships/remove`: a JSON array of record ids.
async fn remove(State(sim): State<Arc<Sim>>, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    api(&sim, &headers, || {
        let ids = record_ids(&sim, &body_json(&sim, &body)?)?;
        let Change { removed, missing, .. } = change_members(&sim, &raw, &[], &ids)?;
        Ok(Json(json!({ "recordIdsRemoved": texts(&removed), "recordIdsMissing": texts(&missing) })).into_response())
    })
}

/// `PUT /crm/v3/lists/{listId}/memberships/add-and-remove`: `{recordIdsToAdd, recordIdsToRemove}`.
async fn add_and_remove(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let input = body_json(&sim, &body)?;
        let to_add = record_ids(&sim, input.get("recordIdsToAdd").unwrap_or(&json!([])))?;
        let to_remove = record_ids(&sim, input.get("recordIdsToRemove").unwrap_or(&json!([])))?;
        let Change { added, removed, missing } = change_members(&sim, &raw, &to_add, &to_remove)?;
        Ok(Json(json!({
            "recordIdsAdded": texts(&added), "recordIdsRemoved": texts(&removed), "recordIdsMissing": texts(&missing),
        }))
        .into_response())
    })
}

/// `GET /crm/v3/lists/{listId}/memberships?after&limit`: members in record-id order, with when
/// they joined; `after` is the last record id of the previous page.
async fn memberships(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let params = Params::new(query);
        let limit = match params.get("limit") {
            None => 100,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=PAGE_LIMIT).contains(l))
                .ok_or_else(|| errors::validation(&sim, format!("limit: must be between 1 and {PAGE_LIMIT}")))?,
        };
        let after = match params.get("after") {
            None | Some("") => None,
            Some(a) => {
                Some(a.parse::<u64>().map_err(|_| errors::validation(&sim, format!("after: `{a}` is not valid")))?)
            }
        };
        let state = sim.hubspot();
        let id = list_id(&sim, &state, &raw)?;
        let list = &state.lists.lists[&id];
        let total = live_members(&state, list).count();
        let page: Vec<(u64, DateTime<Utc>)> =
            live_members(&state, list).filter(|(r, _)| after.is_none_or(|a| *r > a)).take(limit + 1).collect();
        let more = page.len() > limit;
        let results: Vec<Value> = page
            .iter()
            .take(limit)
            .map(|(r, at)| json!({ "recordId": r.to_string(), "membershipTimestamp": iso(*at) }))
            .collect();
        let mut body = json!({ "results": results, "total": total });
        if more && let Some((last, _)) = page.get(limit - 1) {
            body["paging"] = json!({ "next": { "after": last.to_string() } });
        }
        Ok(Json(body).into_response())
    })
}

/// `GET /crm/v3/lists/records/{objectTypeId}/{recordId}/memberships`: the lists a record is in.
async fn record_memberships(
    State(sim): State<Arc<Sim>>,
    Path((object_raw, record)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let object = object_type(&object_raw)
            .ok_or_else(|| errors::validation(&sim, format!("Unknown object type {object_raw}")))?;
        let record = record.parse::<u64>().map_err(|_| errors::not_found(&sim))?;
        let state = sim.hubspot();
        let results: Vec<Value> = state
            .lists
            .lists
            .values()
            .filter(|l| l.object == object)
            .filter_map(|l| {
                let joined = live_members(&state, l).find(|(r, _)| *r == record)?.1;
                Some(json!({
                    "listId": l.id.to_string(), "listVersion": l.version,
                    "firstAddedTimestamp": iso(joined), "lastAddedTimestamp": iso(joined),
                }))
            })
            .collect();
        Ok(Json(json!({ "total": results.len(), "results": results })).into_response())
    })
}
