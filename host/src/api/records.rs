//! Workspace record routes (the app side of a sync): `PUT …/records/{entity}` (member+) upserts up
//! to 200 records with an outcome per record, `GET …/records/{entity}` (viewer+) pages through
//! them (`changed_since`, `after`), `GET …/records/{entity}/{record_id}` (viewer+) shows one with
//! its sync status per integration, `DELETE` (member+) soft-deletes one.

use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery, Authorized, JsonBody, at_least};
use super::openapi::{EntityPath, ErrorResponses, RecordPath};
use super::routes::Routes;
use crate::domain::{EntityName, RecordId};
use crate::state::AppState;
use crate::store::{RecordLink, RecordQuery, StoreResultExt, StoredRecord, UpsertOutcome};
use crate::sync::{MAX_BATCH, input};

pub fn router() -> Routes {
    Routes::new()
        .get("/api/v1/workspaces/{id}/records/{entity}", list)
        .put("/api/v1/workspaces/{id}/records/{entity}", upsert)
        .get("/api/v1/workspaces/{id}/records/{entity}/{record_id}", show)
        .delete("/api/v1/workspaces/{id}/records/{entity}/{record_id}", remove)
}

pub(super) fn entity_of(raw: &str) -> ApiResult<EntityName> {
    EntityName::parse(raw).map_err(ApiError::BadRequest)
}

fn record_id_of(raw: &str) -> ApiResult<RecordId> {
    RecordId::parse(raw).map_err(ApiError::BadRequest)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpsertBody {
    records: Vec<Value>,
}

#[utoipa::path(put, path = "/api/v1/workspaces/{id}/records/{entity}", tag = "records", operation_id = "upsert_records", params(EntityPath), request_body = UpsertBody, security(("workspace_jwt" = [])), responses((status = 200, description = "An outcome per record (member+).", body = UpsertResult, links(("FirstRecord" = (operation_id = "get_record", parameters(("id" = "$request.path.id"), ("entity" = "$request.path.entity"), ("record_id" = "$response.body#/results/0/id")))))), ErrorResponses))]
pub(super) async fn upsert(
    Authorized { caller, .. }: Authorized<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, entity)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<UpsertBody>,
) -> ApiResult<Json<UpsertResult>> {
    let entity = entity_of(&entity)?;
    if body.records.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_BATCH} records per call, got {}: split them into batches of {MAX_BATCH}",
            body.records.len()
        )));
    }
    let mut results: Vec<Option<UpsertItem>> = Vec::with_capacity(body.records.len());
    let mut valid = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, raw) in body.records.iter().enumerate() {
        match input::parse_record(raw) {
            Ok(record) if !seen.insert(record.id.clone()) => results.push(Some(UpsertItem::failed(
                index,
                Some(record.id.to_string()),
                "duplicate_id",
                "the same id appears earlier in this batch".to_owned(),
            ))),
            Ok(record) => {
                results.push(None);
                valid.push((index, record));
            }
            Err((id, message)) => results.push(Some(UpsertItem::failed(index, id, "invalid_record", message))),
        }
    }
    let batch: Vec<_> = valid.iter().map(|(_, r)| (r.id.clone(), r.fields.clone())).collect();
    let written = state.store.upsert_records(&caller.workspace, &entity, &batch).await?;
    if written.iter().any(|(outcome, _)| *outcome != UpsertOutcome::Unchanged) {
        state.sync.workspace_records_changed(&caller.workspace, &entity).await?;
    }
    for ((index, _), (outcome, record)) in valid.iter().zip(written) {
        results[*index] = Some(UpsertItem {
            index: *index,
            id: Some(record.id),
            status: outcome.into(),
            version: Some(record.version),
            error: None,
        });
    }
    let results: Vec<UpsertItem> = results.into_iter().flatten().collect();
    let failed = results.iter().filter(|r| r.status == UpsertStatus::Failed).count();
    Ok(Json(UpsertResult { entity: entity.to_string(), written: results.len() - failed, failed, results }))
}

/// What an upsert of records did.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UpsertResult {
    /// The entity.
    entity: String,
    /// Records written (created, updated or unchanged).
    written: usize,
    /// Records refused.
    failed: usize,
    /// One outcome per record sent, in order.
    results: Vec<UpsertItem>,
}

/// One record's outcome in an upsert.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UpsertItem {
    /// Its position in the request.
    index: usize,
    /// Its id, when it had a readable one.
    id: Option<String>,
    /// What happened.
    status: UpsertStatus,
    /// The record's version now (written records).
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    /// Why it was refused (failed records).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ItemError>,
}

impl UpsertItem {
    fn failed(index: usize, id: Option<String>, code: &str, message: String) -> Self {
        let error = Some(ItemError { code: code.to_owned(), message });
        Self { index, id, status: UpsertStatus::Failed, version: None, error }
    }
}

/// What happened to one record of an upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum UpsertStatus {
    /// A new record.
    Created,
    /// Fields changed (or a deleted record came back).
    Updated,
    /// Every value was already there.
    Unchanged,
    /// Refused; `error` says why.
    Failed,
}

impl From<UpsertOutcome> for UpsertStatus {
    fn from(outcome: UpsertOutcome) -> Self {
        match outcome {
            UpsertOutcome::Created => Self::Created,
            UpsertOutcome::Updated => Self::Updated,
            UpsertOutcome::Unchanged => Self::Unchanged,
        }
    }
}

/// Why one record was refused.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ItemError {
    /// `invalid_record` or `duplicate_id`.
    code: String,
    /// What to fix.
    message: String,
}

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RecordPage {
    /// The entity.
    entity: String,
    /// Records, oldest change first.
    records: Vec<StoredRecord>,
    /// Pass as `?after=` for the next page; null on the last.
    next_after: Option<String>,
}

/// One record with its sync status per integration.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RecordWithSync {
    /// The record.
    #[serde(flatten)]
    record: StoredRecord,
    /// Its link to each integration: CRM id, status, last error, attempts.
    sync: Vec<RecordLink>,
}

/// A record soft-deleted.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RecordDeleted {
    /// The record.
    id: String,
    /// Always true.
    deleted: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_after` token of the previous page.
    after: Option<String>,
    /// Only records changed at or after this RFC 3339 instant (`2026-01-31T12:00:00Z`).
    changed_since: Option<String>,
    /// Include soft-deleted records (default false).
    include_deleted: Option<bool>,
}

/// A page token: the last record's `(updated_at, id)`, opaque to clients.
fn encode_after(at: DateTime<Utc>, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.to_rfc3339()))
}

fn decode_after(token: &str) -> Option<(DateTime<Utc>, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once('|')?;
    Some((DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc), id.to_owned()))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/records/{entity}", tag = "records", operation_id = "list_records", params(EntityPath, ListQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "A page of records (viewer+).", body = RecordPage), ErrorResponses))]
pub(super) async fn list(
    Authorized { caller, .. }: Authorized<at_least::Viewer>,
    State(state): State<AppState>,
    ApiPath((_, entity)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<RecordPage>> {
    let entity = entity_of(&entity)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be between 1 and 1000".to_owned()));
    }
    let changed_since = query
        .changed_since
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                ApiError::BadRequest(format!("changed_since `{s}` is not an RFC 3339 instant (2026-01-31T12:00:00Z)"))
            })
        })
        .transpose()?;
    let after = query
        .after
        .as_deref()
        .map(|t| {
            decode_after(t).ok_or_else(|| ApiError::BadRequest("`after` is not a token this API gave out".to_owned()))
        })
        .transpose()?;
    let records = state
        .store
        .list_records(
            &caller.workspace,
            &entity,
            &RecordQuery { changed_since, after, include_deleted: query.include_deleted.unwrap_or(false), limit },
        )
        .await?;
    let next_after = super::paging::next_key(&records, limit, |r| encode_after(r.updated_at, &r.id));
    Ok(Json(RecordPage { entity: entity.to_string(), records, next_after }))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/records/{entity}/{record_id}", tag = "records", operation_id = "get_record", params(RecordPath), security(("workspace_jwt" = [])), responses((status = 200, description = "One record with its sync status per integration (viewer+).", body = RecordWithSync), ErrorResponses))]
pub(super) async fn show(
    Authorized { caller, .. }: Authorized<at_least::Viewer>,
    State(state): State<AppState>,
    ApiPath((_, entity, record_id)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<RecordWithSync>> {
    let (entity, record_id) = (entity_of(&entity)?, record_id_of(&record_id)?);
    let record = state
        .store
        .get_record(&caller.workspace, &entity, &record_id)
        .await
        .or_not_found(|| ApiError::NotFound(format!("no `{entity}` record `{record_id}`")))?;
    let sync = state.store.links_of_record(&caller.workspace, &entity, record_id.as_str()).await?;
    Ok(Json(RecordWithSync { record, sync }))
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/records/{entity}/{record_id}", tag = "records", operation_id = "delete_record", params(RecordPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Soft-deleted (member+).", body = RecordDeleted), ErrorResponses))]
pub(super) async fn remove(
    Authorized { caller, .. }: Authorized<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, entity, record_id)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<RecordDeleted>> {
    let (entity, record_id) = (entity_of(&entity)?, record_id_of(&record_id)?);
    if !state.store.delete_record(&caller.workspace, &entity, &record_id).await? {
        return Err(ApiError::NotFound(format!("no live `{entity}` record `{record_id}`")));
    }
    state.sync.workspace_records_changed(&caller.workspace, &entity).await?;
    Ok(Json(RecordDeleted { id: record_id.to_string(), deleted: true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let at = Utc::now();
        let token = encode_after(at, "c|1");
        assert_eq!(decode_after(&token), Some((at, "c|1".to_owned())));
        assert!(decode_after("not-a-token").is_none());
    }
}
