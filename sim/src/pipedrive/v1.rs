//! API v1, where v2 has no equivalent: `GET /v1/users/me` (who the credential belongs to),
//! `GET /v1/recents` (every change since an instant, deletions included, oldest first, paged
//! with `start` / `limit`) and `GET /v1/{personFields|organizationFields|dealFields}`. Served
//! under `/v1/…` and `/api/v1/…`, as Pipedrive does.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::errors::{self, PdError};
use super::{COMPANY_ID, Kind, PdRecord, PipedriveState, USER_EMAIL, USER_ID, authorize, ok, v1_time};
use crate::Sim;

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/v1/users/me", get(me))
        .route("/api/v1/users/me", get(me))
        .route("/v1/recents", get(recents))
        .route("/api/v1/recents", get(recents))
        .route("/v1/{fields}", get(fields))
        .route("/api/v1/{fields}", get(fields))
        .with_state(sim)
}

async fn me(State(sim): State<Arc<Sim>>, uri: Uri, headers: HeaderMap) -> Response {
    match authorize(&sim, &headers, uri.query()) {
        Ok(limits) => ok(
            json!({
                "id": USER_ID, "name": "Sim Owner", "email": USER_EMAIL, "company_id": COMPANY_ID,
                "company_name": "Sim Company", "company_domain": "crm-sim", "is_admin": 1, "active_flag": true,
                "timezone_name": "Europe/Tallinn", "locale": "en_US", "language": { "language_code": "en", "country_code": "US" },
            }),
            Value::Null,
            &limits,
        ),
        Err(e) => e.into_response(),
    }
}

/// A record as v1 shows it (in recents): owners and organizations as objects, `email` / `phone`
/// lists, `active_flag`, and `YYYY-MM-DD HH:MM:SS` times.
fn v1_json(state: &PipedriveState, kind: Kind, record: &PdRecord) -> Value {
    let mut out = PipedriveState::to_json(kind, record);
    let owner = record.fields.get("owner_id").cloned().unwrap_or(Value::Null);
    out["owner_id"] = json!({ "id": owner, "value": owner });
    if let Some(org) = record.fields.get("org_id").and_then(Value::as_u64) {
        let name = state.records[&Kind::Organizations].get(&org).and_then(|o| o.text("name")).unwrap_or_default();
        out["org_id"] = json!({ "value": org, "name": name });
    }
    if let Some(person) = record.fields.get("person_id").and_then(Value::as_u64) {
        let name = state.records[&Kind::Persons].get(&person).and_then(|p| p.text("name")).unwrap_or_default();
        out["person_id"] = json!({ "value": person, "name": name });
    }
    if let Some(map) = out.as_object_mut() {
        if let Some(emails) = map.remove("emails") {
            map.insert("email".to_owned(), emails);
        }
        if let Some(phones) = map.remove("phones") {
            map.insert("phone".to_owned(), phones);
        }
        map.remove("is_deleted");
    }
    out["active_flag"] = json!(!record.deleted);
    if kind == Kind::Deals {
        out["active"] = json!(!record.deleted);
        out["deleted"] = json!(record.deleted);
    }
    out["add_time"] = json!(v1_time(record.add_time));
    out["update_time"] = json!(v1_time(record.update_time));
    out
}

async fn recents(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<BTreeMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let result: Result<Response, PdError> = (|| {
        let limits = authorize(&sim, &headers, uri.query())?;
        let raw = q.get("since_timestamp").ok_or_else(|| errors::bad_request("since_timestamp is required"))?;
        let since = NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S")
            .map_err(|_| errors::bad_request("Invalid since_timestamp: expected YYYY-MM-DD HH:MM:SS (UTC)"))?
            .and_utc();
        let kinds: Vec<Kind> = match q.get("items") {
            None => Kind::ALL.to_vec(),
            Some(raw) => raw
                .split(',')
                .map(|item| match item.trim() {
                    "person" => Ok(Kind::Persons),
                    "organization" => Ok(Kind::Organizations),
                    "deal" => Ok(Kind::Deals),
                    other => Err(errors::bad_request(format!("Invalid items value {other}"))),
                })
                .collect::<Result<_, _>>()?,
        };
        let number = |name: &str, default: usize| match q.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| errors::bad_request(format!("Invalid {name}"))),
        };
        let start = number("start", 0)?;
        let limit = number("limit", 100)?;
        if !(1..=500).contains(&limit) {
            return Err(errors::bad_request("Invalid limit: must be between 1 and 500"));
        }
        let state = sim.pipedrive();
        let mut changed: Vec<(Kind, &PdRecord)> = kinds
            .iter()
            .flat_map(|kind| state.records[kind].values().map(move |r| (*kind, r)))
            // Recents is to the second, like its `since_timestamp`.
            .filter(|(_, r)| r.update_time.timestamp() >= since.timestamp())
            .collect();
        changed.sort_by_key(|(kind, r)| (r.update_time, *kind, r.id));
        let page: Vec<Value> = changed
            .iter()
            .skip(start)
            .take(limit)
            .map(|(kind, r)| json!({ "item": kind.singular(), "id": r.id, "data": v1_json(&state, *kind, r) }))
            .collect();
        let more = start + page.len() < changed.len();
        let last = changed.get(start + page.len()).or_else(|| changed.last()).map(|(_, r)| v1_time(r.update_time));
        let additional = json!({
            "since_timestamp": v1_time(since),
            "last_timestamp_on_page": last.unwrap_or_else(|| v1_time(Utc::now())),
            "pagination": { "start": start, "limit": limit, "more_items_in_collection": more, "next_start": if more { json!(start + limit) } else { Value::Null } },
        });
        Ok(ok(Value::Array(page), additional, &limits))
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `(key, name, field_type, mandatory, editable, options)` of each kind's fields.
type FieldDef = (&'static str, &'static str, &'static str, bool, bool, &'static [&'static str]);

fn field_defs(kind: Kind) -> &'static [FieldDef] {
    match kind {
        Kind::Persons => &[
            ("id", "ID", "int", false, false, &[]),
            ("name", "Name", "varchar", true, true, &[]),
            ("first_name", "First name", "varchar", false, true, &[]),
            ("last_name", "Last name", "varchar", false, true, &[]),
            ("email", "Email", "varchar", false, true, &[]),
            ("phone", "Phone", "phone", false, true, &[]),
            ("org_id", "Organization", "org", false, true, &[]),
            ("owner_id", "Owner", "user", false, true, &[]),
            ("add_time", "Person created", "date", false, false, &[]),
            ("update_time", "Update time", "date", false, false, &[]),
        ],
        Kind::Organizations => &[
            ("id", "ID", "int", false, false, &[]),
            ("name", "Name", "varchar", true, true, &[]),
            ("address", "Address", "address", false, true, &[]),
            ("owner_id", "Owner", "user", false, true, &[]),
            ("add_time", "Organization created", "date", false, false, &[]),
            ("update_time", "Update time", "date", false, false, &[]),
        ],
        Kind::Deals => &[
            ("id", "ID", "int", false, false, &[]),
            ("title", "Title", "varchar", true, true, &[]),
            ("value", "Value", "monetary", false, true, &[]),
            ("currency", "Currency", "varchar_options", false, true, &[]),
            ("status", "Status", "status", false, true, &["open", "won", "lost", "deleted"]),
            ("stage_id", "Stage", "stage", false, true, &[]),
            ("person_id", "Contact person", "people", false, true, &[]),
            ("org_id", "Organization", "org", false, true, &[]),
            ("expected_close_date", "Expected close date", "date", false, true, &[]),
            ("probability", "Probability", "double", false, true, &[]),
            ("owner_id", "Owner", "user", false, true, &[]),
            ("add_time", "Deal created", "date", false, false, &[]),
            ("update_time", "Update time", "date", false, false, &[]),
        ],
    }
}

async fn fields(State(sim): State<Arc<Sim>>, Path(which): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    let kind = match which.as_str() {
        "personFields" => Kind::Persons,
        "organizationFields" => Kind::Organizations,
        "dealFields" => Kind::Deals,
        _ => return errors::unknown_path().into_response(),
    };
    let limits = match authorize(&sim, &headers, uri.query()) {
        Ok(limits) => limits,
        Err(e) => return e.into_response(),
    };
    let data: Vec<Value> = field_defs(kind)
        .iter()
        .enumerate()
        .map(|(i, (key, name, field_type, mandatory, editable, options))| {
            let mut field = json!({
                "id": i + 1, "key": key, "name": name, "field_type": field_type,
                "mandatory_flag": mandatory, "edit_flag": editable, "bulk_edit_allowed": editable,
            });
            if !options.is_empty() {
                field["options"] = json!(
                    options
                        .iter()
                        .enumerate()
                        .map(|(n, label)| json!({ "id": n + 1, "label": label }))
                        .collect::<Vec<_>>()
                );
            }
            field
        })
        .collect();
    let count = data.len();
    ok(
        Value::Array(data),
        json!({ "pagination": { "start": 0, "limit": 100, "more_items_in_collection": false, "next_start": null, "count": count } }),
        &limits,
    )
}
