//! The REST API handlers: versions, resources, sObjects (list, describe, CRUD, by external id /
//! idLookup field, updated, deleted), SOQL `query`/`queryAll` with `nextRecordsUrl` paging, sObject
//! Collections (create, update, upsert, delete), and `limits`. Every authenticated response carries
//! `Sforce-Limit-Info`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::errors::SfError;
use super::index::Scan;
use super::lookups::ParentPath;
use super::records::{ObjectStore, SfRecord, format_datetime, parse_datetime};
use super::{QueryCursor, SalesforceState, USER_ID, authorize, soql, version};
use crate::Sim;

/// Most records in one sObject Collections request.
const COLLECTION_LIMIT: usize = 200;

type Handler = Result<Response, SfError>;

pub(super) fn router(sim: Arc<Sim>) -> Router {
    let base = "/services/data/{version}";
    Router::new()
        .route("/services/data", get(versions))
        .route(base, get(resources))
        .route(&format!("{base}/limits"), get(limits))
        .route(&format!("{base}/sobjects"), get(list_sobjects))
        .route(&format!("{base}/sobjects/{{object}}"), get(object_info).post(create))
        .route(&format!("{base}/sobjects/{{object}}/describe"), get(describe))
        .route(&format!("{base}/sobjects/{{object}}/updated"), get(updated))
        .route(&format!("{base}/sobjects/{{object}}/deleted"), get(deleted))
        .route(&format!("{base}/sobjects/ContentVersion/{{id}}/VersionData"), get(version_data))
        .route(&format!("{base}/sobjects/{{object}}/{{id}}"), get(read).patch(update).delete(delete_one))
        .route(&format!("{base}/sobjects/{{object}}/{{field}}/{{value}}"), get(read_by_key).patch(upsert_by_key))
        .route(&format!("{base}/query"), get(query))
        .route(&format!("{base}/queryAll"), get(query_all))
        .route(&format!("{base}/query/{{locator}}"), get(query_more))
        .route(&format!("{base}/queryAll/{{locator}}"), get(query_more))
        .route(
            &format!("{base}/composite/sobjects"),
            patch(collection_update).post(collection_create).delete(collection_delete),
        )
        .route(&format!("{base}/composite/sobjects/{{object}}/{{field}}"), patch(collection_upsert))
        .with_state(sim)
}

/// Runs an authenticated handler body and adds `Sforce-Limit-Info` to whatever it answers.
pub(super) fn api(sim: &Sim, headers: &HeaderMap, body: impl FnOnce() -> Handler) -> Response {
    let mut response = match authorize(sim, headers) {
        Ok(()) => body().unwrap_or_else(IntoResponse::into_response),
        Err(e) => e.into_response(),
    };
    let info = sim.salesforce().limit_info(sim.knobs().salesforce_daily_limit);
    if let Ok(value) = HeaderValue::from_str(&info) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

pub(super) fn json_body(bytes: &Bytes) -> Result<Value, SfError> {
    serde_json::from_slice(bytes)
        .map_err(|e| SfError::bad("JSON_PARSER_ERROR", format!("Unexpected character in JSON: {e}")))
}

fn object_map(body: Value) -> Result<Map<String, Value>, SfError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(SfError::bad("JSON_PARSER_ERROR", "Expected a JSON object")),
    }
}

pub(super) fn unknown_object(name: &str) -> SfError {
    SfError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("The requested resource does not exist: sObject type '{name}' is not supported."),
    )
}

async fn versions() -> Json<Value> {
    let list: Vec<Value> = super::VERSIONS
        .map(|v| json!({ "label": format!("Release {v}"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0") }))
        .collect();
    Json(json!(list))
}

async fn resources(State(sim): State<Arc<Sim>>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let base = format!("/services/data/v{v}");
        Ok(Json(json!({
            "sobjects": format!("{base}/sobjects"), "query": format!("{base}/query"), "queryAll": format!("{base}/queryAll"),
            "composite": format!("{base}/composite"), "limits": format!("{base}/limits"),
        }))
        .into_response())
    })
}

async fn limits(State(sim): State<Arc<Sim>>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let max = sim.knobs().salesforce_daily_limit;
        let state = sim.salesforce();
        let (batches, query_jobs) = (super::bulk::DAILY_BATCHES, super::bulk::DAILY_QUERY_JOBS);
        let batches_left = batches.saturating_sub(state.bulk.batches_used);
        Ok(Json(json!({
            "DailyApiRequests": { "Max": max, "Remaining": max.saturating_sub(state.api_usage) },
            // Bulk 2.0 ingest and Bulk 1.0 share the batch allocation (older orgs name it `…Requests`).
            "DailyBulkApiBatches": { "Max": batches, "Remaining": batches_left },
            "DailyBulkApiRequests": { "Max": batches, "Remaining": batches_left },
            "DailyBulkV2QueryJobs": { "Max": query_jobs, "Remaining": query_jobs.saturating_sub(state.bulk.query_jobs_used) },
            "DailyBulkV2QueryFileStorageMB": { "Max": 976_562, "Remaining": 976_562 },
            "DataStorageMB": { "Max": 1024, "Remaining": 1024 },
        }))
        .into_response())
    })
}

async fn list_sobjects(State(sim): State<Arc<Sim>>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let state = sim.salesforce();
        let list: Vec<Value> = state.objects.iter().map(|o| o.schema.summary(&v)).collect();
        Ok(Json(json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": list })).into_response())
    })
}

async fn object_info(
    State(sim): State<Arc<Sim>>,
    Path((raw, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let state = sim.salesforce();
        let store = state.object(&object).ok_or_else(|| unknown_object(&object))?;
        let recent: Vec<Value> = store
            .records
            .values()
            .rev()
            .filter(|r| r.deleted_at.is_none())
            .take(5)
            .map(|r| store.to_json(r, Some(&["Id"]), &v, USER_ID))
            .collect();
        Ok(Json(json!({ "objectDescribe": store.schema.summary(&v), "recentItems": recent })).into_response())
    })
}

async fn describe(
    State(sim): State<Arc<Sim>>,
    Path((raw, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let state = sim.salesforce();
        let store = state.object(&object).ok_or_else(|| unknown_object(&object))?;
        Ok(Json(store.schema.describe(&v)).into_response())
    })
}

async fn create(
    State(sim): State<Arc<Sim>>,
    Path((raw, object)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let input = object_map(json_body(&body)?)?;
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let store = state.store_for_write(&object, &input)?;
        let id = store.create(&input, now, USER_ID)?;
        Ok((StatusCode::CREATED, Json(json!({ "id": id, "success": true, "errors": [] }))).into_response())
    })
}

#[derive(Deserialize)]
struct FieldsQuery {
    fields: Option<String>,
}

/// Canonical names for a `fields=A,B` list.
fn select_fields(store: &ObjectStore, list: Option<&str>) -> Result<Option<Vec<&'static str>>, SfError> {
    let Some(list) = list else { return Ok(None) };
    let mut names = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let field = store.schema.field(name).ok_or_else(|| {
            SfError::bad("INVALID_FIELD", format!("No such column '{name}' on entity '{}'", store.schema.name))
        })?;
        names.push(field.name);
    }
    Ok(Some(names))
}

async fn read(
    State(sim): State<Arc<Sim>>,
    Path((raw, object, id)): Path<(String, String, String)>,
    Query(q): Query<FieldsQuery>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let state = sim.salesforce();
        let store = state.object(&object).ok_or_else(|| unknown_object(&object))?;
        let record = store.live(&id).ok_or_else(SfError::not_found)?;
        let only = select_fields(store, q.fields.as_deref())?;
        Ok(Json(store.to_json(record, only.as_deref(), &v, USER_ID)).into_response())
    })
}

/// `GET sobjects/ContentVersion/{id}/VersionData`: the version's bytes, as
/// `application/octetstream` (Salesforce's spelling).
async fn version_data(
    State(sim): State<Arc<Sim>>,
    Path((raw, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let state = sim.salesforce();
        state.object("ContentVersion").and_then(|o| o.live(&id)).ok_or_else(SfError::not_found)?;
        let bytes = state.files.get(&id).cloned().ok_or_else(SfError::not_found)?;
        Ok(([(axum::http::header::CONTENT_TYPE, "application/octetstream")], bytes).into_response())
    })
}

async fn update(
    State(sim): State<Arc<Sim>>,
    Path((raw, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let input = object_map(json_body(&body)?)?;
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let store = state.store_for_write(&object, &input)?;
        store.update(&id, &input, now)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

async fn delete_one(
    State(sim): State<Arc<Sim>>,
    Path((raw, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let store = state.object_mut(&object).ok_or_else(|| unknown_object(&object))?;
        store.delete(&id, now)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// Checks `field` may be used as a lookup / upsert key on `store`; returns its canonical name.
pub(super) fn key_field(store: &ObjectStore, field: &str) -> Result<&'static str, SfError> {
    match store.schema.field(field) {
        Some(f) if f.id_lookup || f.external_id => Ok(f.name),
        _ => Err(SfError::bad(
            "INVALID_FIELD",
            format!("Field name provided, {field} is not an External ID or indexed field for {}", store.schema.name),
        )),
    }
}

fn multiple_choices(ids: &[String], object: &str, v: &str) -> Response {
    let urls: Vec<String> = ids.iter().map(|id| format!("/services/data/v{v}/sobjects/{object}/{id}")).collect();
    (StatusCode::MULTIPLE_CHOICES, Json(json!(urls))).into_response()
}

async fn read_by_key(
    State(sim): State<Arc<Sim>>,
    Path((raw, object, field, value)): Path<(String, String, String, String)>,
    Query(q): Query<FieldsQuery>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let state = sim.salesforce();
        let store = state.object(&object).ok_or_else(|| unknown_object(&object))?;
        let key = key_field(store, &field)?;
        let ids = store.find_by(key, &value);
        match ids.as_slice() {
            [] => Err(SfError::not_found()),
            [id] => {
                let record = store.live(id).ok_or_else(SfError::not_found)?;
                let only = select_fields(store, q.fields.as_deref())?;
                Ok(Json(store.to_json(record, only.as_deref(), &v, USER_ID)).into_response())
            }
            many => Ok(multiple_choices(many, store.schema.name, &v)),
        }
    })
}

/// Upserts one record keyed on `key` = `value`: (id, created).
pub(super) fn upsert_one(
    store: &mut ObjectStore,
    key: &'static str,
    value: &str,
    mut input: Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<(String, bool), SfError> {
    let ids = store.find_by(key, value);
    match ids.as_slice() {
        [] => {
            if !key.eq_ignore_ascii_case("Id") {
                input.insert(key.to_owned(), Value::String(value.to_owned()));
            }
            Ok((store.create(&input, now, USER_ID)?, true))
        }
        [id] => {
            input.retain(|k, _| !k.eq_ignore_ascii_case(key));
            store.update(id, &input, now)?;
            Ok((id.clone(), false))
        }
        many => Err(SfError::new(
            StatusCode::MULTIPLE_CHOICES,
            "DUPLICATE_EXTERNAL_ID",
            format!("{key}: more than one record found for external id field: [{}]", many.join(", ")),
        )),
    }
}

async fn upsert_by_key(
    State(sim): State<Arc<Sim>>,
    Path((raw, object, field, value)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let input = object_map(json_body(&body)?)?;
        if input.keys().any(|k| k.eq_ignore_ascii_case("Id")) {
            return Err(SfError::bad(
                "INVALID_FIELD",
                "Unable to create/update fields: Id. Please check the security settings of this field.",
            ));
        }
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let store = state.store_for_write(&object, &input)?;
        let key = key_field(store, &field)?;
        let matches = store.find_by(key, &value);
        if matches.len() > 1 {
            return Ok(multiple_choices(&matches, store.schema.name, &v));
        }
        let (id, created) = upsert_one(store, key, &value, input, now)?;
        let status = if created { StatusCode::CREATED } else { StatusCode::OK };
        Ok((status, Json(json!({ "id": id, "success": true, "errors": [], "created": created }))).into_response())
    })
}

#[derive(Deserialize)]
struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
}

fn replication_range(sim: &Sim, q: &RangeQuery) -> Result<(DateTime<Utc>, DateTime<Utc>), SfError> {
    let parse = |name: &str, v: &Option<String>| {
        v.as_deref()
            .and_then(parse_datetime)
            .ok_or_else(|| SfError::bad("INVALID_REPLICATION_DATE", format!("{name} date is missing or invalid")))
    };
    let (start, end) = (parse("start", &q.start)?, parse("end", &q.end)?);
    if start >= end {
        return Err(SfError::bad("INVALID_REPLICATION_DATE", "start date must be before end date"));
    }
    if end < sim.clock.now() - chrono::Duration::days(30) {
        return Err(SfError::bad("INVALID_REPLICATION_DATE", "end date is more than 30 days ago"));
    }
    Ok((start, end))
}

/// Truncates to the minute, as the replication API reports coverage.
fn to_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&t)))
        - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&t)))
}

async fn updated(
    State(sim): State<Arc<Sim>>,
    Path((raw, object)): Path<(String, String)>,
    Query(q): Query<RangeQuery>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let (start, end) = replication_range(&sim, &q)?;
        let state = sim.salesforce();
        let store = state.object(&object).ok_or_else(|| unknown_object(&object))?;
        let ids: Vec<&str> = store
            .records
            .values()
            .filter(|r| r.deleted_at.is_none() && r.modstamp >= start && r.modstamp < end)
            .map(|r| r.id.as_str())
            .collect();
        Ok(Json(json!({ "ids": ids, "latestDateCovered": format_datetime(to_minute(end)) })).into_response())
    })
}

async fn deleted(
    State(sim): State<Arc<Sim>>,
    Path((raw, object)): Path<(String, String)>,
    Query(q): Query<RangeQuery>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let (start, end) = replication_range(&sim, &q)?;
        let state = sim.salesforce();
        let store = state.object(&object).ok_or_else(|| unknown_object(&object))?;
        let records: Vec<Value> = store
            .records
            .values()
            .filter_map(|r| r.deleted_at.filter(|d| *d >= start && *d < end).map(|d| (r, d)))
            .map(|(r, d)| json!({ "id": r.id, "deletedDate": format_datetime(d) }))
            .collect();
        let earliest = sim.clock.now() - chrono::Duration::days(15);
        Ok(Json(json!({
            "deletedRecords": records,
            "earliestDateAvailable": format_datetime(to_minute(earliest)),
            "latestDateCovered": format_datetime(to_minute(end)),
        }))
        .into_response())
    })
}

#[derive(Deserialize)]
struct SoqlQuery {
    q: Option<String>,
}

fn malformed(message: impl Into<String>) -> SfError {
    SfError::bad("MALFORMED_QUERY", message)
}

/// A selected column: the object's own field, or a parent's through a lookup.
#[derive(Clone, Copy)]
enum Column {
    Own(&'static str),
    Parent(ParentPath),
}

/// Runs a query and returns its first page, registering a cursor for the rest.
fn run_query(sim: &Sim, soql_text: &str, include_deleted: bool, v: &str, resource: &str) -> Handler {
    let parsed = soql::parse(soql_text).map_err(|e| malformed(e.0))?;
    let batch = sim.knobs().salesforce_query_batch_size;
    let locator = format!("01gSIM{}", sim.token_gen().alnum(12));
    let mut state = sim.salesforce();
    if parsed.count {
        let selection = Selection::of(&state, &parsed)?;
        let total = matching_rows(&state, selection.store, &parsed, include_deleted).len();
        let total = total.saturating_sub(parsed.offset.unwrap_or(0)).min(parsed.limit.unwrap_or(usize::MAX));
        return Ok(Json(json!({ "totalSize": total, "done": true, "records": [] })).into_response());
    }
    let projected = Selection::of(&state, &parsed)?.rows(&state, &parsed, include_deleted, v);
    let total = projected.len();
    let first: Vec<Value> = projected.iter().take(batch).cloned().collect();
    let done = total <= batch;
    let mut body = json!({ "totalSize": total, "done": done, "records": first });
    if !done {
        body["nextRecordsUrl"] = json!(format!("/services/data/v{v}/{resource}/{locator}-{batch}"));
        state.cursors.insert(locator, QueryCursor { rows: projected, total });
    }
    Ok(Json(body).into_response())
}

/// A query's rows (parents nested as the REST API nests them) and its columns as written in CSV
/// (`Email`, `Account.Name`): what Bulk API 2.0 query jobs run.
pub(super) fn select_rows(
    state: &SalesforceState,
    soql_text: &str,
    include_deleted: bool,
    v: &str,
) -> Result<(Vec<String>, Vec<Value>), SfError> {
    let parsed = soql::parse(soql_text).map_err(|e| malformed(e.0))?;
    if parsed.count {
        return Err(SfError::bad("INVALIDJOB", "Bulk query jobs do not support COUNT()"));
    }
    let selection = Selection::of(state, &parsed)?;
    Ok((selection.columns(), selection.rows(state, &parsed, include_deleted, v)))
}

/// Checks a query as the REST endpoint would (syntax, object, fields, relationships) without
/// running it; its object's API name.
pub(super) fn check_query(state: &SalesforceState, soql_text: &str) -> Result<&'static str, SfError> {
    let parsed = soql::parse(soql_text).map_err(|e| malformed(e.0))?;
    if parsed.count {
        return Err(SfError::bad("INVALIDJOB", "Bulk query jobs do not support COUNT()"));
    }
    Ok(Selection::of(state, &parsed)?.store.schema.name)
}

/// A query's object and columns, checked: its own fields and its parents' through lookups.
struct Selection<'a> {
    store: &'a ObjectStore,
    /// The selected columns in order.
    columns: Vec<Column>,
}

impl<'a> Selection<'a> {
    /// Resolves the select list, `WHERE` and `ORDER BY` names, refusing unknown ones as
    /// Salesforce does.
    fn of(state: &'a SalesforceState, parsed: &soql::Query) -> Result<Self, SfError> {
        let store = state.object(&parsed.object).ok_or_else(|| {
            SfError::bad("INVALID_TYPE", format!("sObject type '{}' is not supported.", parsed.object))
        })?;
        let canonical = |name: &str| {
            store.schema.field(name).map(|f| f.name).ok_or_else(|| {
                SfError::bad(
                    "INVALID_FIELD",
                    format!(
                        "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                        store.schema.name
                    ),
                )
            })
        };
        // A field is the object's own (`Email`) or a parent's through a lookup (`Account.Name`).
        let field_or_path = |name: &str| -> Result<Column, SfError> {
            match state.parent_path(store, name)? {
                Some(path) => Ok(Column::Parent(path)),
                None => canonical(name).map(Column::Own),
            }
        };
        let columns = parsed.fields.iter().map(|f| field_or_path(f)).collect::<Result<Vec<_>, _>>()?;
        if let Some(condition) = &parsed.condition {
            for f in condition.fields() {
                field_or_path(f)?;
            }
        }
        for key in &parsed.order {
            field_or_path(&key.field)?;
        }
        Ok(Self { store, columns })
    }

    /// The columns' names as CSV headers write them.
    fn columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| match c {
                Column::Own(name) => (*name).to_owned(),
                Column::Parent(path) => format!("{}.{}", path.relationship, path.field),
            })
            .collect()
    }

    /// The matching rows after `OFFSET` and `LIMIT`, projected as the REST API answers them.
    fn rows(&self, state: &SalesforceState, parsed: &soql::Query, include_deleted: bool, v: &str) -> Vec<Value> {
        let own: Vec<&'static str> =
            self.columns.iter().filter_map(|c| if let Column::Own(name) = c { Some(*name) } else { None }).collect();
        let parents: Vec<ParentPath> =
            self.columns.iter().filter_map(|c| if let Column::Parent(path) = c { Some(*path) } else { None }).collect();
        matching_rows(state, self.store, parsed, include_deleted)
            .into_iter()
            .skip(parsed.offset.unwrap_or(0))
            .take(parsed.limit.unwrap_or(usize::MAX))
            .map(|r| {
                let mut row = self.store.to_json(r, Some(&own), v, USER_ID);
                state.add_parents(&mut row, r, &parents, v);
                row
            })
            .collect()
    }
}

/// The rows a query selects, in its order. Keyset pages walk the modstamp index from their
/// instant and stop once `OFFSET + LIMIT` rows matched; look-ups by an indexed field read only the
/// ids it names; anything else filters and sorts the whole object.
fn matching_rows<'a>(
    state: &SalesforceState,
    store: &'a ObjectStore,
    parsed: &soql::Query,
    include_deleted: bool,
) -> Vec<&'a SfRecord> {
    let getter = |record: &'a SfRecord| {
        move |name: &str| match store.schema.field(name) {
            Some(f) => store.value(record, f.name, USER_ID),
            None => match state.parent_path(store, name) {
                Ok(Some(path)) => state.parent_value(record, &path),
                _ => Value::Null,
            },
        }
    };
    let selected = |r: &&'a SfRecord| {
        (include_deleted || r.deleted_at.is_none()) && parsed.condition.as_ref().is_none_or(|c| c.eval(&getter(r)))
    };
    let canonical = |name: &str| store.schema.field(name).map(|f| f.name);
    let wanted = parsed.offset.unwrap_or(0).saturating_add(parsed.limit.unwrap_or(usize::MAX));
    let mut rows: Vec<&SfRecord> = match store.index.plan(parsed.condition.as_ref(), &parsed.order, &canonical) {
        Scan::Modstamp(from) => {
            return store
                .index
                .in_modstamp_order(from)
                .filter_map(|id| store.records.get(id))
                .filter(selected)
                .take(wanted)
                .collect();
        }
        Scan::Ids(ids) => ids.iter().filter_map(|id| store.records.get(id)).filter(selected).collect(),
        Scan::Full => store.records.values().filter(selected).collect(),
    };
    rows.sort_by(|a, b| soql::order(&parsed.order, &getter(a), &getter(b)));
    rows
}

/// `query` and `queryAll` differ only in whether deleted records count.
fn soql_endpoint(sim: &Sim, raw: &str, q: SoqlQuery, headers: &HeaderMap, include_deleted: bool) -> Response {
    api(sim, headers, || {
        let v = version(raw)?;
        let text = q.q.ok_or_else(|| malformed("A query string (q) is required"))?;
        run_query(sim, &text, include_deleted, &v, if include_deleted { "queryAll" } else { "query" })
    })
}

async fn query(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    Query(q): Query<SoqlQuery>,
    headers: HeaderMap,
) -> Response {
    soql_endpoint(&sim, &raw, q, &headers, false)
}

async fn query_all(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    Query(q): Query<SoqlQuery>,
    headers: HeaderMap,
) -> Response {
    soql_endpoint(&sim, &raw, q, &headers, true)
}

/// `GET {nextRecordsUrl}`: `…/query/{locator}-{offset}` (any `?q=` is ignored, as Salesforce does).
async fn query_more(
    State(sim): State<Arc<Sim>>,
    Path((raw, cursor)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let invalid = || SfError::bad("INVALID_QUERY_LOCATOR", "invalid query locator");
        let (locator, offset) = cursor.rsplit_once('-').ok_or_else(invalid)?;
        let offset: usize = offset.parse().map_err(|_| invalid())?;
        let batch = sim.knobs().salesforce_query_batch_size;
        let state = sim.salesforce();
        let open = state.cursors.get(locator).ok_or_else(invalid)?;
        if offset > open.rows.len() {
            return Err(invalid());
        }
        let page: Vec<Value> = open.rows.iter().skip(offset).take(batch).cloned().collect();
        let next = offset + page.len();
        let done = next >= open.rows.len();
        let mut body = json!({ "totalSize": open.total, "done": done, "records": page });
        if !done {
            body["nextRecordsUrl"] = json!(format!("/services/data/v{v}/query/{locator}-{next}"));
        }
        Ok(Json(body).into_response())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CollectionBody {
    #[serde(default)]
    all_or_none: bool,
    records: Vec<Value>,
}

fn collection_body(bytes: &Bytes) -> Result<CollectionBody, SfError> {
    let body: CollectionBody = serde_json::from_slice(bytes)
        .map_err(|e| SfError::bad("JSON_PARSER_ERROR", format!("Unexpected JSON in the collection request: {e}")))?;
    if body.records.len() > COLLECTION_LIMIT {
        return Err(SfError::bad(
            "EXCEEDED_ID_LIMIT",
            format!("Maximum number of records allowed is {COLLECTION_LIMIT}; the request has {}", body.records.len()),
        ));
    }
    Ok(body)
}

fn record_type(record: &Map<String, Value>) -> Option<String> {
    record.get("attributes").and_then(|a| a.get("type")).and_then(Value::as_str).map(str::to_owned)
}

/// The object store a collection record names in `attributes.type`, its lookups checked.
fn store_for<'a>(state: &'a mut SalesforceState, record: &Map<String, Value>) -> Result<&'a mut ObjectStore, SfError> {
    let object =
        record_type(record).ok_or_else(|| SfError::bad("INVALID_TYPE", "Must specify a type in attributes"))?;
    if state.object(&object).is_none() {
        return Err(SfError::bad("INVALID_TYPE", format!("sObject type '{object}' is not supported.")));
    }
    state.store_for_write(&object, record)
}

fn success(id: &str) -> Value {
    json!({ "id": id, "success": true, "errors": [] })
}

fn failure(error: &SfError) -> Value {
    json!({ "id": null, "success": false, "errors": [error.collection_entry()] })
}

/// Applies per-record operations; with `allOrNone`, rolls everything back if any failed.
fn apply_collection(
    state: &mut SalesforceState,
    all_or_none: bool,
    count: usize,
    mut op: impl FnMut(&mut SalesforceState, usize) -> Result<Value, SfError>,
) -> Vec<Value> {
    let snapshot = all_or_none.then(|| state.objects.clone());
    let outcomes: Vec<Result<Value, SfError>> = (0..count).map(|i| op(state, i)).collect();
    let any_failed = outcomes.iter().any(Result::is_err);
    if let (Some(snapshot), true) = (snapshot, any_failed) {
        state.objects = snapshot;
        let rolled_back = SfError::bad(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using AllOrNone header",
        );
        return outcomes
            .into_iter()
            .map(|o| match o {
                Ok(_) => failure(&rolled_back),
                Err(e) => failure(&e),
            })
            .collect();
    }
    outcomes.into_iter().map(|o| o.unwrap_or_else(|e| failure(&e))).collect()
}

async fn collection_create(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let body = collection_body(&body)?;
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let results = apply_collection(&mut state, body.all_or_none, body.records.len(), |state, i| {
            let record = object_map(body.records[i].clone())?;
            if record.keys().any(|k| k.eq_ignore_ascii_case("Id")) {
                return Err(SfError::bad("INVALID_FIELD", "Id field should not be specified in the sobject data"));
            }
            let store = store_for(state, &record)?;
            store.create(&record, now, USER_ID).map(|id| success(&id))
        });
        Ok(Json(json!(results)).into_response())
    })
}

async fn collection_update(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let body = collection_body(&body)?;
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let results = apply_collection(&mut state, body.all_or_none, body.records.len(), |state, i| {
            let record = object_map(body.records[i].clone())?;
            let id = record
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("id"))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| SfError::bad("MISSING_ARGUMENT", "Id not specified in an update call"))?;
            let store = store_for(state, &record)?;
            store.update(&id, &record, now).map(|()| success(&id)).map_err(|e| {
                if e.code == "NOT_FOUND" {
                    SfError::bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                } else {
                    e
                }
            })
        });
        Ok(Json(json!(results)).into_response())
    })
}

async fn collection_upsert(
    State(sim): State<Arc<Sim>>,
    Path((raw, object, field)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let body = collection_body(&body)?;
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let key = {
            let store = state.object(&object).ok_or_else(|| unknown_object(&object))?;
            key_field(store, &field)?
        };
        let results = apply_collection(&mut state, body.all_or_none, body.records.len(), |state, i| {
            let record = object_map(body.records[i].clone())?;
            if record_type(&record).is_some_and(|t| !t.eq_ignore_ascii_case(&object)) {
                return Err(SfError::bad(
                    "INVALID_TYPE",
                    "All records of an upsert must be of the object named in the URL",
                ));
            }
            let value = record
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| SfError::bad("MISSING_ARGUMENT", format!("{key} not specified")))?;
            let store = state.store_for_write(&object, &record)?;
            let (id, created) = upsert_one(store, key, &value, record, now).map_err(|e| {
                // In a collection the ambiguity is a per-record error, not a 300.
                SfError { status: StatusCode::BAD_REQUEST, ..e }
            })?;
            Ok(json!({ "id": id, "success": true, "errors": [], "created": created }))
        });
        Ok(Json(json!(results)).into_response())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteQuery {
    ids: Option<String>,
    all_or_none: Option<bool>,
}

async fn collection_delete(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    Query(q): Query<DeleteQuery>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        version(&raw)?;
        let ids: Vec<String> =
            q.ids.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if ids.is_empty() {
            return Err(SfError::bad("MISSING_ARGUMENT", "ids parameter is required"));
        }
        if ids.len() > COLLECTION_LIMIT {
            return Err(SfError::bad(
                "EXCEEDED_ID_LIMIT",
                format!("Maximum number of records allowed is {COLLECTION_LIMIT}"),
            ));
        }
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let results = apply_collection(&mut state, q.all_or_none.unwrap_or(false), ids.len(), |state, i| {
            let id = &ids[i];
            let store = state
                .objects
                .iter_mut()
                .find(|o| id.starts_with(o.schema.key_prefix) && o.records.contains_key(id))
                .ok_or_else(|| SfError::bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))?;
            store.delete(id, now).map(|()| success(id))
        });
        Ok(Json(json!(results)).into_response())
    })
}
