//! API v2 for persons, organizations and deals: `GET /api/v2/{kind}` (cursor pagination, `limit`
//! up to 500, `ids`, `updated_since` / `updated_until`, `sort_by` `id` | `update_time` |
//! `add_time`, `sort_direction`), `GET|PATCH|DELETE /api/v2/{kind}/{id}`, `POST /api/v2/{kind}`,
//! and `GET /api/v2/{kind}/search` (`term`, `fields`, `exact_match`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::errors::{self, PdError};
use super::{Kind, PdRecord, PipedriveState, USER_ID, authorize, ok};
use crate::Sim;

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/api/v2/{kind}", get(list).post(create))
        .route("/api/v2/{kind}/search", get(search))
        .route("/api/v2/{kind}/{id}", get(read).patch(update).delete(remove))
        .with_state(sim)
}

type Params = Query<BTreeMap<String, String>>;

fn kind_of(raw: &str) -> Result<Kind, PdError> {
    match raw {
        "persons" => Ok(Kind::Persons),
        "organizations" => Ok(Kind::Organizations),
        "deals" => Ok(Kind::Deals),
        _ => Err(errors::unknown_path()),
    }
}

fn id_of(kind: Kind, raw: &str) -> Result<u64, PdError> {
    raw.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| errors::not_found(kind.title()))
}

fn instant(name: &str, raw: &str) -> Result<DateTime<Utc>, PdError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| errors::bad_request(format!("Invalid `{name}`: expected an RFC 3339 date-time")))
}

/// What a list orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Id,
    UpdateTime,
    AddTime,
}

impl SortBy {
    fn key(self, record: &PdRecord) -> (i64, u64) {
        match self {
            Self::Id => (0, record.id),
            Self::UpdateTime => (record.update_time.timestamp_micros(), record.id),
            Self::AddTime => (record.add_time.timestamp_micros(), record.id),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::UpdateTime => "update_time",
            Self::AddTime => "add_time",
        }
    }
}

/// A cursor names the last record a page returned, in the order the list was asked for.
fn encode_cursor(sort: SortBy, descending: bool, key: (i64, u64)) -> String {
    let text = format!("{}:{}:{}:{}", sort.name(), u8::from(descending), key.0, key.1);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(raw: &str, sort: SortBy, descending: bool) -> Result<(i64, u64), PdError> {
    let invalid = || errors::bad_request("Invalid cursor");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [name, dir, a, b] if *name == sort.name() && *dir == if descending { "1" } else { "0" } => {
            Ok((a.parse().map_err(|_| invalid())?, b.parse().map_err(|_| invalid())?))
        }
        _ => Err(errors::bad_request("Invalid cursor: it belongs to a list with other sorting")),
    }
}

fn limit_of(params: &BTreeMap<String, String>) -> Result<usize, PdError> {
    match params.get("limit") {
        None => Ok(100),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| errors::bad_request("Invalid `limit`: must be an integer between 1 and 500")),
    }
}

async fn list(
    State(sim): State<Arc<Sim>>,
    Path(kind): Path<String>,
    Query(q): Params,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    answer(list_page(&sim, &kind, &q, &uri, &headers))
}

fn list_page(
    sim: &Sim,
    kind: &str,
    q: &BTreeMap<String, String>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, PdError> {
    let kind = kind_of(kind)?;
    let limits = authorize(sim, headers, uri.query())?;
    let limit = limit_of(q)?;
    let sort = match q.get("sort_by").map(String::as_str) {
        None | Some("id") => SortBy::Id,
        Some("update_time") => SortBy::UpdateTime,
        Some("add_time") => SortBy::AddTime,
        Some(other) => {
            return Err(errors::bad_request(format!("Invalid `sort_by` {other}: use id, update_time or add_time")));
        }
    };
    let descending = match q.get("sort_direction").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(errors::bad_request(format!("Invalid `sort_direction` {other}: use asc or desc"))),
    };
    let since = q.get("updated_since").map(|s| instant("updated_since", s)).transpose()?;
    let until = q.get("updated_until").map(|s| instant("updated_until", s)).transpose()?;
    let ids: Option<Vec<u64>> = match q.get("ids") {
        None => None,
        Some(raw) => {
            let ids: Result<Vec<u64>, _> = raw.split(',').map(|s| s.trim().parse::<u64>()).collect();
            let ids = ids.map_err(|_| errors::bad_request("Invalid `ids`: comma-separated integers"))?;
            if ids.len() > 100 {
                return Err(errors::bad_request("Invalid `ids`: at most 100"));
            }
            Some(ids)
        }
    };
    let after = q.get("cursor").map(|c| decode_cursor(c, sort, descending)).transpose()?;
    let number = |name: &str| q.get(name).and_then(|v| v.parse::<u64>().ok());
    let (owner, org, person) = (number("owner_id"), number("org_id"), number("person_id"));

    let state = sim.pipedrive();
    let mut matching: Vec<&PdRecord> = state.records[&kind]
        .values()
        .filter(|r| !r.deleted)
        .filter(|r| ids.as_ref().is_none_or(|ids| ids.contains(&r.id)))
        .filter(|r| since.is_none_or(|t| r.update_time >= t))
        .filter(|r| until.is_none_or(|t| r.update_time < t))
        .filter(|r| owner.is_none_or(|o| r.fields.get("owner_id").and_then(Value::as_u64) == Some(o)))
        .filter(|r| org.is_none_or(|o| r.fields.get("org_id").and_then(Value::as_u64) == Some(o)))
        .filter(|r| person.is_none_or(|p| r.fields.get("person_id").and_then(Value::as_u64) == Some(p)))
        .collect();
    matching.sort_by_key(|r| sort.key(r));
    if descending {
        matching.reverse();
    }
    let start = match after {
        None => 0,
        Some(key) => matching
            .iter()
            .position(|r| if descending { sort.key(r) < key } else { sort.key(r) > key })
            .unwrap_or(matching.len()),
    };
    let page: Vec<&PdRecord> = matching.iter().skip(start).take(limit).copied().collect();
    let more = start + page.len() < matching.len();
    let next_cursor = match page.last() {
        Some(last) if more => json!(encode_cursor(sort, descending, sort.key(last))),
        _ => Value::Null,
    };
    let data: Vec<Value> = page.iter().map(|r| PipedriveState::to_json(kind, r)).collect();
    Ok(ok(json!(data), json!({ "next_cursor": next_cursor }), &limits))
}

async fn read(
    State(sim): State<Arc<Sim>>,
    Path((kind, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let kind = kind_of(&kind)?;
        let limits = authorize(&sim, &headers, uri.query())?;
        let id = id_of(kind, &id)?;
        let state = sim.pipedrive();
        let record = state.live(kind, id).ok_or_else(|| errors::not_found(kind.title()))?;
        Ok(ok(PipedriveState::to_json(kind, record), Value::Null, &limits))
    })())
}

async fn create(
    State(sim): State<Arc<Sim>>,
    Path(kind): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer((|| {
        let kind = kind_of(&kind)?;
        let limits = authorize(&sim, &headers, uri.query())?;
        let input = body_object(&body)?;
        let now = sim.clock.now();
        let mut state = sim.pipedrive();
        let mut fields = defaults(kind);
        apply(&state, kind, &mut fields, input)?;
        if fields.get(kind.required()).and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
            return Err(errors::validation(format!("{}: is required", kind.required())));
        }
        let id = state.create(kind, fields, now);
        let record = state.live(kind, id).ok_or_else(|| errors::not_found(kind.title()))?;
        Ok(ok(PipedriveState::to_json(kind, record), Value::Null, &limits))
    })())
}

async fn update(
    State(sim): State<Arc<Sim>>,
    Path((kind, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer((|| {
        let kind = kind_of(&kind)?;
        let limits = authorize(&sim, &headers, uri.query())?;
        let id = id_of(kind, &id)?;
        let input = body_object(&body)?;
        let now = sim.clock.now();
        let mut state = sim.pipedrive();
        let mut fields = state.live(kind, id).ok_or_else(|| errors::not_found(kind.title()))?.fields.clone();
        apply(&state, kind, &mut fields, input)?;
        if fields.get(kind.required()).and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
            return Err(errors::validation(format!("{}: cannot be empty", kind.required())));
        }
        let record =
            state.records.get_mut(&kind).and_then(|r| r.get_mut(&id)).ok_or_else(|| errors::not_found(kind.title()))?;
        record.fields = fields;
        record.update_time = now;
        let record = record.clone();
        Ok(ok(PipedriveState::to_json(kind, &record), Value::Null, &limits))
    })())
}

async fn remove(
    State(sim): State<Arc<Sim>>,
    Path((kind, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let kind = kind_of(&kind)?;
        let limits = authorize(&sim, &headers, uri.query())?;
        let id = id_of(kind, &id)?;
        let now = sim.clock.now();
        if !sim.pipedrive().delete(kind, id, now) {
            return Err(errors::not_found(kind.title()));
        }
        Ok(ok(json!({ "id": id }), Value::Null, &limits))
    })())
}

/// `GET /api/v2/{kind}/search`: items whose searched fields contain the term (or equal it, with
/// `exact_match=true`), case-insensitively, best first.
async fn search(
    State(sim): State<Arc<Sim>>,
    Path(kind): Path<String>,
    Query(q): Params,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let kind = kind_of(&kind)?;
        let limits = authorize(&sim, &headers, uri.query())?;
        let exact = q.get("exact_match").is_some_and(|v| v == "true");
        let term = q.get("term").map(|t| t.trim().to_lowercase()).unwrap_or_default();
        let shortest = if exact { 1 } else { 2 };
        if term.chars().count() < shortest {
            return Err(errors::bad_request(format!("The term must be at least {shortest} characters long")));
        }
        let limit = limit_of(&q)?;
        let searchable: &[&str] = match kind {
            Kind::Persons => &["name", "email", "phone", "custom_fields", "notes"],
            Kind::Organizations => &["name", "address", "custom_fields", "notes"],
            Kind::Deals => &["title", "custom_fields", "notes"],
        };
        let fields: Vec<&str> = match q.get("fields") {
            None => searchable.to_vec(),
            Some(raw) => {
                let asked: Vec<&str> = raw.split(',').map(str::trim).collect();
                if let Some(bad) = asked.iter().find(|f| !searchable.contains(f)) {
                    return Err(errors::bad_request(format!("Invalid `fields` value {bad}")));
                }
                asked
            }
        };
        let state = sim.pipedrive();
        let matches = |value: &str| {
            let value = value.to_lowercase();
            if exact { value == term } else { value.contains(&term) }
        };
        let mut items: Vec<Value> = Vec::new();
        for record in state.records[&kind].values().filter(|r| !r.deleted) {
            let hit = fields.iter().any(|field| match *field {
                "email" => record.values_of("emails").iter().any(|e| matches(e)),
                "phone" => record.values_of("phones").iter().any(|p| matches(p)),
                "address" => record.fields.get("address").and_then(|a| a["value"].as_str()).is_some_and(matches),
                "custom_fields" | "notes" => false,
                name => record.text(name).is_some_and(matches),
            });
            if hit {
                items.push(
                    json!({ "result_score": if exact { 1.0 } else { 0.5 }, "item": search_item(&state, kind, record) }),
                );
            }
            if items.len() == limit {
                break;
            }
        }
        Ok(ok(json!({ "items": items }), json!({ "next_cursor": null }), &limits))
    })())
}

/// The short form search returns.
fn search_item(state: &PipedriveState, kind: Kind, record: &PdRecord) -> Value {
    let organization = record
        .fields
        .get("org_id")
        .and_then(Value::as_u64)
        .and_then(|id| state.live(Kind::Organizations, id))
        .map(|org| json!({ "id": org.id, "name": org.text("name") }));
    match kind {
        Kind::Persons => json!({
            "id": record.id, "type": "person", "name": record.text("name"),
            "emails": record.values_of("emails"), "phones": record.values_of("phones"),
            "owner": { "id": record.fields.get("owner_id") }, "organization": organization,
            "visible_to": record.fields.get("visible_to"), "custom_fields": [], "notes": [],
            "update_time": super::iso(record.update_time),
        }),
        Kind::Organizations => json!({
            "id": record.id, "type": "organization", "name": record.text("name"),
            "address": record.fields.get("address").and_then(|a| a.get("value")), "owner": { "id": record.fields.get("owner_id") },
            "visible_to": record.fields.get("visible_to"), "custom_fields": [], "notes": [],
            "update_time": super::iso(record.update_time),
        }),
        Kind::Deals => json!({
            "id": record.id, "type": "deal", "title": record.text("title"), "value": record.fields.get("value"),
            "currency": record.fields.get("currency"), "status": record.fields.get("status"),
            "owner": { "id": record.fields.get("owner_id") }, "organization": organization,
            "visible_to": record.fields.get("visible_to"), "custom_fields": [], "notes": [],
            "update_time": super::iso(record.update_time),
        }),
    }
}

fn answer(result: Result<Response, PdError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn body_object(body: &Bytes) -> Result<Map<String, Value>, PdError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(errors::bad_request("The request body must be a JSON object")),
        Err(e) => Err(errors::bad_request(format!("Invalid JSON in the request body: {e}"))),
    }
}

/// A new record's values before the request's are applied.
fn defaults(kind: Kind) -> Map<String, Value> {
    let common = json!({ "owner_id": USER_ID, "visible_to": 3, "label_ids": [], "custom_fields": {} });
    let mut fields = match common {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let specific = match kind {
        Kind::Persons => json!({ "first_name": null, "last_name": null, "emails": [], "phones": [], "org_id": null }),
        Kind::Organizations => json!({ "address": null }),
        Kind::Deals => json!({
            "value": 0.0, "currency": "USD", "status": "open", "stage_id": 1, "pipeline_id": 1, "person_id": null,
            "org_id": null, "expected_close_date": null, "probability": null,
        }),
    };
    if let Value::Object(map) = specific {
        fields.extend(map);
    }
    fields
}

/// What a field of a kind accepts.
#[derive(Clone, Copy)]
enum Accepts {
    Text,
    NullableText,
    Id,
    NullableId(Kind),
    Number,
    NullableNumber,
    ContactList,
    Ids,
    Object,
    Address,
    Status,
    Date,
    Currency,
    Visibility,
}

fn accepts(kind: Kind, field: &str) -> Option<Accepts> {
    use Accepts::*;
    Some(match (kind, field) {
        (_, "owner_id") => Id,
        (_, "visible_to") => Visibility,
        (_, "label_ids") => Ids,
        (_, "custom_fields") => Object,
        (Kind::Persons | Kind::Organizations, "name") => Text,
        (Kind::Persons, "first_name" | "last_name") => NullableText,
        (Kind::Persons, "emails" | "phones") => ContactList,
        (Kind::Persons | Kind::Deals, "org_id") => NullableId(Kind::Organizations),
        (Kind::Organizations, "address") => Address,
        (Kind::Deals, "title") => Text,
        (Kind::Deals, "value") => Number,
        (Kind::Deals, "currency") => Currency,
        (Kind::Deals, "status") => Status,
        (Kind::Deals, "stage_id" | "pipeline_id") => Id,
        (Kind::Deals, "person_id") => NullableId(Kind::Persons),
        (Kind::Deals, "expected_close_date") => Date,
        (Kind::Deals, "probability") => NullableNumber,
        _ => return None,
    })
}

/// Checks the request's fields and writes them over `fields`.
fn apply(
    state: &PipedriveState,
    kind: Kind,
    fields: &mut Map<String, Value>,
    input: Map<String, Value>,
) -> Result<(), PdError> {
    for (name, value) in input {
        let Some(rule) = accepts(kind, &name) else {
            return Err(errors::validation(format!("{name}: is not a known field of a {}", kind.singular())));
        };
        let wrong = |what: &str| errors::validation(format!("{name}: must be {what}"));
        let value = match rule {
            Accepts::Text => match &value {
                Value::String(s) if !s.trim().is_empty() && s.chars().count() <= 255 => value,
                _ => return Err(wrong("a non-empty string of at most 255 characters")),
            },
            Accepts::NullableText => match &value {
                Value::Null => value,
                Value::String(s) if s.chars().count() <= 255 => value,
                _ => return Err(wrong("a string or null")),
            },
            Accepts::Id => match value.as_u64() {
                Some(n) if n > 0 => value,
                _ => return Err(wrong("a positive integer")),
            },
            Accepts::NullableId(target) => match &value {
                Value::Null => value,
                _ => match value.as_u64() {
                    Some(id) if state.live(target, id).is_some() => value,
                    Some(id) => {
                        return Err(errors::validation(format!("{name}: {} {id} does not exist", target.title())));
                    }
                    None => return Err(wrong("a positive integer or null")),
                },
            },
            Accepts::Number => match value.as_f64() {
                Some(_) => value,
                None => return Err(wrong("a number")),
            },
            Accepts::NullableNumber => match &value {
                Value::Null => value,
                _ if value.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)) => value,
                _ => return Err(wrong("a number from 0 to 100 or null")),
            },
            Accepts::ContactList => contact_list(&name, value)?,
            Accepts::Ids => match &value {
                Value::Array(items) if items.iter().all(|i| i.as_u64().is_some()) => value,
                _ => return Err(wrong("an array of integers")),
            },
            Accepts::Object => match &value {
                Value::Object(_) => value,
                _ => return Err(wrong("an object")),
            },
            Accepts::Address => match &value {
                Value::Null => value,
                Value::Object(map) if map.get("value").is_some_and(Value::is_string) => value,
                _ => return Err(wrong("an object with a string `value`, or null")),
            },
            Accepts::Status => match value.as_str() {
                Some("open" | "won" | "lost") => value,
                _ => return Err(wrong("one of open, won, lost")),
            },
            Accepts::Date => match &value {
                Value::Null => value,
                Value::String(s) if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => value,
                _ => return Err(wrong("a date YYYY-MM-DD or null")),
            },
            Accepts::Currency => match value.as_str() {
                Some(code) if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) => value,
                _ => return Err(wrong("a 3-letter currency code")),
            },
            Accepts::Visibility => match value.as_u64() {
                Some(1 | 3 | 5 | 7) => value,
                _ => return Err(wrong("one of 1, 3, 5, 7")),
            },
        };
        fields.insert(name, value);
    }
    Ok(())
}

/// `emails` / `phones`: `[{value, primary?, label?}]`, exactly one primary when any (the first,
/// if none is marked).
fn contact_list(name: &str, value: Value) -> Result<Value, PdError> {
    let wrong = || errors::validation(format!("{name}: must be an array of {{value, primary, label}} objects"));
    let Value::Array(items) = value else { return Err(wrong()) };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(item) = item else { return Err(wrong()) };
        let Some(text) = item.get("value").and_then(Value::as_str).filter(|v| !v.trim().is_empty()) else {
            return Err(wrong());
        };
        let primary = match item.get("primary") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(wrong()),
        };
        let label = match item.get("label") {
            None | Some(Value::Null) => "work".to_owned(),
            Some(Value::String(l)) => l.clone(),
            Some(_) => return Err(wrong()),
        };
        out.push(json!({ "value": text.trim(), "primary": primary, "label": label }));
    }
    if !out.is_empty() && !out.iter().any(|i| i["primary"] == true) {
        out[0]["primary"] = json!(true);
    }
    Ok(Value::Array(out))
}
