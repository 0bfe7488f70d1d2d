//! Bulk API 1.0 with JSON content (`/services/async/{version}/…`, the session in
//! `X-SFDC-Session`): jobs (`insert`, `update`, `upsert`, `delete`, `query`, `queryAll`), batches
//! of up to 10,000 records (or one SOQL text for a query job), per-record results in batch order,
//! query results by result id, job close and abort. A batch is `Queued`, then `InProgress` until
//! `salesforce_bulk_processing_ms` has passed on the emulator's clock, then `Completed`. Errors
//! answer in 1.0's shape `{"exceptionCode", "exceptionMessage"}`. Each batch uses one of the
//! `DailyBulkApiBatches` 2.0 ingest shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::bulk::IngestOperation;
use super::errors::SfError;
use super::records::format_datetime;
use super::rest::{check_query, select_rows};
use super::{SalesforceState, USER_ID, authorize};
use crate::Sim;

/// Most records in one batch.
const MAX_BATCH_RECORDS: usize = 10_000;

/// What a 1.0 job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Ingest(IngestOperation),
    Query { include_deleted: bool },
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::Ingest(op) => op.name(),
            Self::Query { include_deleted: false } => "query",
            Self::Query { include_deleted: true } => "queryAll",
        }
    }
}

/// A batch's work and, once processed, its results.
#[derive(Debug, Clone)]
enum BatchWork {
    Records(Vec<Map<String, Value>>),
    Query(String),
}

#[derive(Debug, Clone)]
struct Batch {
    id: String,
    created: DateTime<Utc>,
    ready_at: DateTime<Utc>,
    work: BatchWork,
    /// Ingest: one result per record, in order. Query: the rows.
    results: Option<Vec<Value>>,
    failed: Option<String>,
}

/// A 1.0 job.
#[derive(Debug, Clone)]
pub struct V1Job {
    id: String,
    object: &'static str,
    operation: Operation,
    external_id: Option<&'static str>,
    state: &'static str,
    created: DateTime<Utc>,
    modstamp: DateTime<Utc>,
    api_version: String,
    batches: Vec<Batch>,
}

/// The org's 1.0 jobs.
#[derive(Debug, Default)]
pub struct V1State {
    jobs: BTreeMap<String, V1Job>,
    next: u64,
}

pub(super) fn router(sim: Arc<Sim>) -> Router {
    let base = "/services/async/{version}/job";
    Router::new()
        .route(base, post(create_job))
        .route(&format!("{base}/{{job}}"), get(job_info).post(change_job))
        .route(&format!("{base}/{{job}}/batch"), post(add_batch).get(list_batches))
        .route(&format!("{base}/{{job}}/batch/{{batch}}"), get(batch_info))
        .route(&format!("{base}/{{job}}/batch/{{batch}}/result"), get(batch_result))
        .route(&format!("{base}/{{job}}/batch/{{batch}}/result/{{result}}"), get(query_result))
        .with_state(sim)
}

/// A 1.0 error: `{"exceptionCode", "exceptionMessage"}`, 400 as Bulk 1.0 answers them.
struct AsyncError(&'static str, String);

impl IntoResponse for AsyncError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({ "exceptionCode": self.0, "exceptionMessage": self.1 }))).into_response()
    }
}

impl From<SfError> for AsyncError {
    fn from(e: SfError) -> Self {
        let code = match e.code {
            "INVALID_SESSION_ID" => "InvalidSessionId",
            "REQUEST_LIMIT_EXCEEDED" => "ExceededQuota",
            "MALFORMED_QUERY" | "INVALID_FIELD" | "INVALID_TYPE" => "InvalidBatch",
            _ => "InvalidJob",
        };
        Self(code, e.message)
    }
}

type Answer = Result<Response, AsyncError>;

/// Checks the session in `X-SFDC-Session` (as the REST API checks a bearer token) and runs `body`.
fn session(sim: &Sim, headers: &HeaderMap, body: impl FnOnce() -> Answer) -> Response {
    let token = headers.get("x-sfdc-session").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut bearer = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        bearer.insert(axum::http::header::AUTHORIZATION, value);
    }
    let answer = authorize(sim, &bearer).map_err(AsyncError::from).and_then(|()| body());
    answer.unwrap_or_else(IntoResponse::into_response)
}

fn job_missing(id: &str) -> AsyncError {
    AsyncError("InvalidJob", format!("Unable to find object: {id}"))
}

fn json_of(body: &Bytes) -> Result<Value, AsyncError> {
    serde_json::from_slice(body).map_err(|e| AsyncError("InvalidJob", format!("Unable to parse the request: {e}")))
}

impl V1Job {
    fn info(&self) -> Value {
        let (mut in_progress, mut completed, mut failed, mut processed, mut failures) = (0, 0, 0, 0, 0);
        for batch in &self.batches {
            match (&batch.results, &batch.failed) {
                (_, Some(_)) => failed += 1,
                (Some(results), None) => {
                    completed += 1;
                    processed += results.len();
                    failures += results.iter().filter(|r| r["success"] == false).count();
                }
                (None, None) => in_progress += 1,
            }
        }
        let mut info = json!({
            "id": self.id, "operation": self.operation.name(), "object": self.object, "createdById": USER_ID,
            "createdDate": format_datetime(self.created), "systemModstamp": format_datetime(self.modstamp),
            "state": self.state, "concurrencyMode": "Parallel", "contentType": "JSON",
            "numberBatchesQueued": 0, "numberBatchesInProgress": in_progress,
            "numberBatchesCompleted": completed, "numberBatchesFailed": failed,
            "numberBatchesTotal": self.batches.len(), "numberRecordsProcessed": processed,
            "numberRecordsFailed": failures, "numberRetries": 0,
            "apiVersion": self.api_version.parse::<f64>().unwrap_or(62.0),
        });
        if let Some(key) = self.external_id {
            info["externalIdFieldName"] = json!(key);
        }
        info
    }
}

impl Batch {
    fn info(&self, job: &str, now: DateTime<Utc>) -> Value {
        let state = match (&self.results, &self.failed) {
            (_, Some(_)) => "Failed",
            (Some(_), None) => "Completed",
            (None, None) if now < self.ready_at => "InProgress",
            // Not looked at since it became due: processed at the next look.
            (None, None) => "Queued",
        };
        let processed = self.results.as_ref().map_or(0, Vec::len);
        let failed = self.results.as_ref().map_or(0, |r| r.iter().filter(|r| r["success"] == false).count());
        let mut info = json!({
            "id": self.id, "jobId": job, "state": state, "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.ready_at.max(self.created)),
            "numberRecordsProcessed": processed, "numberRecordsFailed": failed,
            "totalProcessingTime": 0, "apiActiveProcessingTime": 0, "apexProcessingTime": 0,
        });
        if let Some(message) = &self.failed {
            info["stateMessage"] = json!(message);
        }
        info
    }
}

impl SalesforceState {
    /// A 1.0 job with its batches processed where their time has come.
    fn v1_job(&mut self, id: &str, now: DateTime<Utc>) -> Result<&V1Job, AsyncError> {
        let mut job = self.bulk.v1.jobs.remove(id).ok_or_else(|| job_missing(id))?;
        for batch in job.batches.iter_mut().filter(|b| b.results.is_none() && b.failed.is_none() && now >= b.ready_at) {
            match &batch.work {
                BatchWork::Records(records) => {
                    let Operation::Ingest(operation) = job.operation else { continue };
                    let results = records
                        .iter()
                        .map(|record| {
                            match self.ingest_record(job.object, operation, job.external_id, record.clone(), now) {
                                Ok((id, created)) => {
                                    json!({ "success": true, "created": created, "id": id, "errors": [] })
                                }
                                Err((id, error)) => json!({ "success": false, "created": false,
                                "id": if id.is_empty() { Value::Null } else { json!(id) },
                                "errors": [error.collection_entry()] }),
                            }
                        })
                        .collect();
                    batch.results = Some(results);
                }
                BatchWork::Query(soql) => {
                    let include_deleted = matches!(job.operation, Operation::Query { include_deleted: true });
                    match select_rows(self, soql, include_deleted, &job.api_version) {
                        Ok((_, rows)) => batch.results = Some(rows),
                        Err(e) => batch.failed = Some(format!("{}: {}", e.code, e.message)),
                    }
                }
            }
            self.bulk.batches_used += 1;
        }
        job.modstamp = now;
        self.bulk.v1.jobs.insert(id.to_owned(), job);
        self.bulk.v1.jobs.get(id).ok_or_else(|| job_missing(id))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewJob {
    operation: String,
    object: String,
    external_id_field_name: Option<String>,
    content_type: Option<String>,
}

/// `POST /services/async/{v}/job`.
async fn create_job(State(sim): State<Arc<Sim>>, Path(raw): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    session(&sim, &headers, || {
        let v = super::version(&format!("v{raw}")).map_err(AsyncError::from)?;
        let spec: NewJob = serde_json::from_value(json_of(&body)?)
            .map_err(|e| AsyncError("InvalidJob", format!("Invalid job: {e}")))?;
        if spec.content_type.as_deref().is_some_and(|c| c != "JSON") {
            return Err(AsyncError(
                "InvalidJob",
                "the emulator's Bulk 1.0 speaks JSON: set contentType JSON".to_owned(),
            ));
        }
        let operation = match spec.operation.as_str() {
            "insert" => Operation::Ingest(IngestOperation::Insert),
            "update" => Operation::Ingest(IngestOperation::Update),
            "upsert" => Operation::Ingest(IngestOperation::Upsert),
            "delete" => Operation::Ingest(IngestOperation::Delete),
            "query" => Operation::Query { include_deleted: false },
            "queryAll" => Operation::Query { include_deleted: true },
            other => return Err(AsyncError("InvalidJob", format!("Invalid operation: {other}"))),
        };
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let store = state
            .object(&spec.object)
            .ok_or_else(|| AsyncError("InvalidJob", format!("Unable to find object: {}", spec.object)))?;
        let object = store.schema.name;
        let external_id = match (operation, spec.external_id_field_name.as_deref()) {
            (Operation::Ingest(IngestOperation::Upsert), None) => {
                return Err(AsyncError(
                    "InvalidJob",
                    "External ID was blank: specify externalIdFieldName for upsert".to_owned(),
                ));
            }
            (Operation::Ingest(IngestOperation::Upsert), Some(name)) => Some(super::rest::key_field(store, name)?),
            _ => None,
        };
        state.bulk.v1.next += 1;
        // 2.0 jobs count up from 1; 1.0 jobs from 500,000, so the two never share an id.
        let id = crate::ids::salesforce_id("750", 500_000 + state.bulk.v1.next);
        let job = V1Job {
            id: id.clone(),
            object,
            operation,
            external_id,
            state: "Open",
            created: now,
            modstamp: now,
            api_version: v,
            batches: Vec::new(),
        };
        let info = job.info();
        state.bulk.v1.jobs.insert(id, job);
        Ok((StatusCode::CREATED, Json(info)).into_response())
    })
}

/// `POST …/job/{job}/batch`: a JSON array of records, or a query job's SOQL text.
async fn add_batch(
    State(sim): State<Arc<Sim>>,
    Path((_, job_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    session(&sim, &headers, || {
        let now = sim.clock.now();
        let ready_at = now + chrono::Duration::milliseconds(sim.knobs().salesforce_bulk_processing_ms as i64);
        let mut state = sim.salesforce();
        let job = state.bulk.v1.jobs.get(&job_id).ok_or_else(|| job_missing(&job_id))?;
        if job.state != "Open" {
            return Err(AsyncError(
                "InvalidJobState",
                format!("Job {job_id} is {}: it takes no more batches", job.state),
            ));
        }
        let work = match job.operation {
            Operation::Query { .. } => {
                let soql = String::from_utf8_lossy(&body).trim().to_owned();
                check_query(&state, &soql)?;
                BatchWork::Query(soql)
            }
            Operation::Ingest(_) => {
                let records: Vec<Map<String, Value>> = serde_json::from_slice(&body)
                    .map_err(|e| AsyncError("InvalidBatch", format!("Records must be a JSON array of objects: {e}")))?;
                if records.len() > MAX_BATCH_RECORDS {
                    return Err(AsyncError(
                        "InvalidBatch",
                        format!("Records in a batch: {} (at most {MAX_BATCH_RECORDS})", records.len()),
                    ));
                }
                BatchWork::Records(records)
            }
        };
        state.bulk.v1.next += 1;
        let id = crate::ids::salesforce_id("751", state.bulk.v1.next);
        let job = state.bulk.v1.jobs.get_mut(&job_id).ok_or_else(|| job_missing(&job_id))?;
        let batch = Batch { id, created: now, ready_at, work, results: None, failed: None };
        let info = batch.info(&job_id, now);
        job.batches.push(batch);
        Ok((StatusCode::CREATED, Json(info)).into_response())
    })
}

/// `GET …/job/{job}`.
async fn job_info(
    State(sim): State<Arc<Sim>>,
    Path((_, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    session(&sim, &headers, || {
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        Ok(Json(state.v1_job(&job_id, now)?.info()).into_response())
    })
}

/// `POST …/job/{job}` `{"state": "Closed" | "Aborted"}`.
async fn change_job(
    State(sim): State<Arc<Sim>>,
    Path((_, job_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    session(&sim, &headers, || {
        let wanted = json_of(&body)?["state"].as_str().map(str::to_owned).unwrap_or_default();
        let mut state = sim.salesforce();
        let job = state.bulk.v1.jobs.get_mut(&job_id).ok_or_else(|| job_missing(&job_id))?;
        job.state = match (job.state, wanted.as_str()) {
            ("Open", "Closed") => "Closed",
            ("Open" | "Closed", "Aborted") => "Aborted",
            (current, _) => {
                return Err(AsyncError(
                    "InvalidJobState",
                    format!("Job {job_id} is {current}: it cannot become {wanted}"),
                ));
            }
        };
        Ok(Json(job.info()).into_response())
    })
}

/// `GET …/job/{job}/batch`.
async fn list_batches(
    State(sim): State<Arc<Sim>>,
    Path((_, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    session(&sim, &headers, || {
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let job = state.v1_job(&job_id, now)?;
        let batches: Vec<Value> = job.batches.iter().map(|b| b.info(&job_id, now)).collect();
        Ok(Json(json!({ "batchInfo": batches })).into_response())
    })
}

/// The batch `batch_id` of a job, processed if due.
fn with_batch<T>(
    sim: &Sim,
    job_id: &str,
    batch_id: &str,
    read: impl FnOnce(&Batch, DateTime<Utc>) -> Result<T, AsyncError>,
) -> Result<T, AsyncError> {
    let now = sim.clock.now();
    let mut state = sim.salesforce();
    let job = state.v1_job(job_id, now)?;
    let batch = job
        .batches
        .iter()
        .find(|b| b.id == batch_id)
        .ok_or_else(|| AsyncError("InvalidBatch", format!("Unable to find batch: {batch_id}")))?;
    read(batch, now)
}

/// `GET …/batch/{batch}`.
async fn batch_info(
    State(sim): State<Arc<Sim>>,
    Path((_, job_id, batch_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    session(&sim, &headers, || {
        with_batch(&sim, &job_id, &batch_id, |b, now| Ok(Json(b.info(&job_id, now)).into_response()))
    })
}

/// `GET …/batch/{batch}/result`: ingest results in record order, or a query's one result id.
async fn batch_result(
    State(sim): State<Arc<Sim>>,
    Path((_, job_id, batch_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    session(&sim, &headers, || {
        with_batch(&sim, &job_id, &batch_id, |batch, _| {
            let results = batch
                .results
                .as_ref()
                .ok_or_else(|| AsyncError("InvalidBatch", format!("Batch {batch_id} is not completed")))?;
            Ok(match batch.work {
                BatchWork::Records(_) => Json(json!(results)).into_response(),
                BatchWork::Query(_) => Json(json!([format!("752{}", &batch.id[3..])])).into_response(),
            })
        })
    })
}

/// `GET …/batch/{batch}/result/{result}`: a query batch's records.
async fn query_result(
    State(sim): State<Arc<Sim>>,
    Path((_, job_id, batch_id, result_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    session(&sim, &headers, || {
        with_batch(&sim, &job_id, &batch_id, |batch, _| match (&batch.work, &batch.results) {
            (BatchWork::Query(_), Some(rows)) if result_id == format!("752{}", &batch.id[3..]) => {
                Ok(Json(json!(rows)).into_response())
            }
            _ => Err(AsyncError("InvalidBatch", format!("Unable to find result {result_id} of batch {batch_id}"))),
        })
    })
}
