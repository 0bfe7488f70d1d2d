//! Bulk API 2.0: ingest jobs (`insert`, `update`, `upsert`, `delete` from one or more CSV
//! uploads, then `UploadComplete`; successful / failed / unprocessed results as CSV) and query jobs
//! (`query` / `queryAll` run to CSV, read in pages by `Sforce-Locator`), with the Bulk allocations
//! `/limits` reports (Bulk 1.0 lives in `bulk_v1` and shares them). A job finishes once the emulator's clock has passed its upload by the
//! `salesforce_bulk_processing_ms` knob (0: at the next look), so tests can watch `InProgress`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::errors::SfError;
use super::records::format_datetime;
use super::rest::{api, check_query, json_body, select_rows, upsert_one};
use super::schema::FieldKind;
use super::{SalesforceState, USER_ID, version};
use crate::Sim;

/// Bulk 2.0 batches a day (each 10,000 ingested records use one), as `DailyBulkApiBatches`.
pub const DAILY_BATCHES: u64 = 15_000;
/// Query jobs a day, as `DailyBulkV2QueryJobs`.
pub const DAILY_QUERY_JOBS: u64 = 10_000;
/// Records per ingest batch (for the allocation).
const RECORDS_PER_BATCH: usize = 10_000;

/// What an ingest job does with each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IngestOperation {
    /// Create.
    Insert,
    /// Change by `Id`.
    Update,
    /// Create or change on `externalIdFieldName`.
    Upsert,
    /// Delete by `Id` (into the recycle bin).
    Delete,
}

impl IngestOperation {
    /// The operation as jobs name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Upsert => "upsert",
            Self::Delete => "delete",
        }
    }
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Taking uploads (ingest).
    Open,
    /// Uploaded (or a query job created), waiting for the processing time.
    UploadComplete,
    /// Done: results available.
    JobComplete,
    /// Could not run (`errorMessage` says why).
    Failed,
    /// Stopped by the client.
    Aborted,
}

impl JobState {
    fn name(self) -> &'static str {
        match self {
            Self::Open => "Open",
            Self::UploadComplete => "UploadComplete",
            Self::JobComplete => "JobComplete",
            Self::Failed => "Failed",
            Self::Aborted => "Aborted",
        }
    }
}

/// What a job holds besides its state.
#[derive(Debug, Clone)]
enum Work {
    Ingest {
        operation: IngestOperation,
        external_id: Option<&'static str>,
        /// The uploaded header and rows.
        header: Vec<String>,
        rows: Vec<Vec<String>>,
        /// After processing: (id, created, row) and (id, error, row).
        successful: Vec<(String, bool, Vec<String>)>,
        failed: Vec<(String, String, Vec<String>)>,
    },
    Query {
        soql: String,
        include_deleted: bool,
        /// After processing: the header and the rows as CSV text.
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

/// One Bulk 2.0 job.
#[derive(Debug, Clone)]
pub struct BulkJob {
    id: String,
    object: &'static str,
    state: JobState,
    created: DateTime<Utc>,
    modstamp: DateTime<Utc>,
    /// When processing is done (set at `UploadComplete`).
    ready_at: Option<DateTime<Utc>>,
    api_version: String,
    error_message: Option<String>,
    work: Work,
}

/// The org's Bulk 2.0 jobs and allocation use.
#[derive(Debug, Default)]
pub struct BulkState {
    jobs: BTreeMap<String, BulkJob>,
    next: u64,
    /// Batches used today: one per 10,000 Bulk 2.0 ingest rows, one per Bulk 1.0 batch.
    pub batches_used: u64,
    /// Query jobs created today.
    pub query_jobs_used: u64,
    /// Bulk API 1.0 jobs.
    pub v1: super::bulk_v1::V1State,
}

impl BulkState {
    /// How many Bulk 2.0 jobs ran each operation (`query`, `queryAll`, `insert`, `update`,
    /// `upsert`, `delete`), and in which states: for tests and benchmarks counting jobs.
    pub fn jobs_by_operation(&self) -> BTreeMap<String, Vec<&'static str>> {
        let mut jobs: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
        for job in self.jobs.values() {
            let operation = match &job.work {
                Work::Ingest { operation, .. } => operation.name(),
                Work::Query { include_deleted: true, .. } => "queryAll",
                Work::Query { .. } => "query",
            };
            jobs.entry(operation.to_owned()).or_default().push(job.state.name());
        }
        jobs
    }
}

pub(super) fn router(sim: Arc<Sim>) -> Router {
    let base = "/services/data/{version}/jobs";
    Router::new()
        .route(&format!("{base}/ingest"), post(create_ingest).get(list_ingest))
        .route(&format!("{base}/ingest/{{id}}"), get(job_info).patch(change_state).delete(delete_job))
        .route(&format!("{base}/ingest/{{id}}/batches"), axum::routing::put(upload))
        .route(&format!("{base}/ingest/{{id}}/{{file}}"), get(result_file))
        .route(&format!("{base}/ingest/{{id}}/{{file}}/"), get(result_file))
        .route(&format!("{base}/query"), post(create_query))
        .route(&format!("{base}/query/{{id}}"), get(job_info).patch(change_state).delete(delete_job))
        .route(&format!("{base}/query/{{id}}/results"), get(query_results))
        .with_state(sim)
}

fn job_not_found() -> SfError {
    SfError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
}

fn invalid_state(message: impl Into<String>) -> SfError {
    SfError::bad("INVALIDJOBSTATE", message)
}

impl BulkJob {
    fn kind(&self) -> &'static str {
        match self.work {
            Work::Ingest { .. } => "ingest",
            Work::Query { .. } => "query",
        }
    }

    /// The job as `GET …/jobs/{kind}/{id}` answers it.
    fn info(&self, now: DateTime<Utc>) -> Value {
        let in_progress = self.state == JobState::UploadComplete && self.ready_at.is_some_and(|t| now < t);
        let state = if in_progress { "InProgress" } else { self.state.name() };
        let mut info = json!({
            "id": self.id, "object": self.object, "createdById": USER_ID,
            "createdDate": format_datetime(self.created), "systemModstamp": format_datetime(self.modstamp),
            "state": state, "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": self.api_version.parse::<f64>().unwrap_or(62.0),
            "lineEnding": "LF", "columnDelimiter": "COMMA", "retries": 0,
            "totalProcessingTime": 0, "apiActiveProcessingTime": 0, "apexProcessingTime": 0,
        });
        match &self.work {
            Work::Ingest { operation, external_id, rows, successful, failed, .. } => {
                info["operation"] = json!(operation.name());
                info["contentUrl"] =
                    json!(format!("services/data/v{}/jobs/ingest/{}/batches", self.api_version, self.id));
                if let Some(key) = external_id {
                    info["externalIdFieldName"] = json!(key);
                }
                let processed = match (self.state, self.ready_at) {
                    (JobState::JobComplete, _) => successful.len() + failed.len(),
                    // While it runs, the uploaded rows are processed evenly over the job's time.
                    (JobState::UploadComplete, Some(ready)) if now < ready => {
                        let (done, whole) =
                            ((now - self.modstamp).num_milliseconds(), (ready - self.modstamp).num_milliseconds());
                        if whole > 0 { rows.len() * done.clamp(0, whole) as usize / whole as usize } else { 0 }
                    }
                    _ => 0,
                };
                info["numberRecordsProcessed"] = json!(processed);
                info["numberRecordsFailed"] = json!(failed.len());
            }
            Work::Query { include_deleted, rows, .. } => {
                info["operation"] = json!(if *include_deleted { "queryAll" } else { "query" });
                info["numberRecordsProcessed"] =
                    json!(if self.state == JobState::JobComplete { rows.len() } else { 0 });
            }
        }
        if let Some(message) = &self.error_message {
            info["errorMessage"] = json!(message);
        }
        info
    }
}

impl SalesforceState {
    /// A job of `kind`, processed first if its time has come.
    fn bulk_job(&mut self, kind: &str, id: &str, now: DateTime<Utc>) -> Result<&BulkJob, SfError> {
        let due = self.bulk.jobs.get(id).filter(|j| j.kind() == kind).ok_or_else(job_not_found)?;
        if due.state == JobState::UploadComplete && due.ready_at.is_some_and(|t| now >= t) {
            self.process(id, now);
        }
        self.bulk.jobs.get(id).ok_or_else(job_not_found)
    }

    /// Runs a job whose processing time has come: every ingest row, or the query.
    fn process(&mut self, id: &str, now: DateTime<Utc>) {
        let Some(mut job) = self.bulk.jobs.remove(id) else { return };
        match &mut job.work {
            Work::Ingest { operation, external_id, header, rows, successful, failed } => {
                for row in rows.iter() {
                    match self.ingest_row(job.object, *operation, *external_id, header, row, now) {
                        Ok((record_id, created)) => successful.push((record_id, created, row.clone())),
                        Err((record_id, error)) => failed.push((record_id, error, row.clone())),
                    }
                }
                self.bulk.batches_used += rows.len().div_ceil(RECORDS_PER_BATCH).max(1) as u64;
                job.state = JobState::JobComplete;
            }
            Work::Query { soql, include_deleted, columns, rows } => {
                match select_rows(self, soql, *include_deleted, &job.api_version) {
                    Ok((names, selected)) => {
                        *rows = selected.iter().map(|row| names.iter().map(|c| csv_value(row, c)).collect()).collect();
                        *columns = names;
                        job.state = JobState::JobComplete;
                    }
                    Err(e) => {
                        job.error_message = Some(format!("{}: {}", e.code, e.message));
                        job.state = JobState::Failed;
                    }
                }
            }
        }
        job.modstamp = now;
        self.bulk.jobs.insert(id.to_owned(), job);
    }

    /// Writes one ingest row: its record id and whether it was created, or the id (if known) and
    /// the error as Bulk writes it (`CODE:message:fields --`).
    fn ingest_row(
        &mut self,
        object: &'static str,
        operation: IngestOperation,
        external_id: Option<&'static str>,
        header: &[String],
        row: &[String],
        now: DateTime<Utc>,
    ) -> Result<(String, bool), (String, String)> {
        let input = self.row_input(object, header, row);
        self.ingest_record(object, operation, external_id, input, now).map_err(|(id, e)| (id, bulk_error(&e)))
    }

    /// Writes one record of an ingest (a Bulk 2.0 row, a Bulk 1.0 batch's record) as the REST
    /// API would: its id and whether it was created, or the id (if known) and the error.
    pub(super) fn ingest_record(
        &mut self,
        object: &'static str,
        operation: IngestOperation,
        external_id: Option<&'static str>,
        mut input: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(String, bool), (String, SfError)> {
        let id = take_id(&mut input);
        let failed = |id: &str, e: SfError| (id.to_owned(), e);
        let missing_id = || SfError::bad("MISSING_ARGUMENT", "Id not specified in an update call");
        match operation {
            IngestOperation::Insert => {
                let store = self.store_for_write(object, &input).map_err(|e| failed("", e))?;
                store.create(&input, now, USER_ID).map(|id| (id, true)).map_err(|e| failed("", e))
            }
            IngestOperation::Update => {
                let id = id.ok_or_else(|| failed("", missing_id()))?;
                let store = self.store_for_write(object, &input).map_err(|e| failed(&id, e))?;
                store
                    .update(&id, &input, now)
                    .map(|()| (id.clone(), false))
                    .map_err(|e| failed(&id, not_found_as_cross_reference(e)))
            }
            IngestOperation::Upsert => {
                let key = external_id.unwrap_or("Id");
                let value = input
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .and_then(|(_, v)| v.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| failed("", SfError::bad("MISSING_ARGUMENT", format!("{key} not specified"))))?;
                let store = self.store_for_write(object, &input).map_err(|e| failed("", e))?;
                upsert_one(store, key, &value, input, now).map_err(|e| failed("", e))
            }
            IngestOperation::Delete => {
                let id = id.ok_or_else(|| failed("", missing_id()))?;
                let store = self.object_mut(object).ok_or_else(|| failed(&id, job_not_found()))?;
                store
                    .delete(&id, now)
                    .map(|()| (id.clone(), false))
                    .map_err(|e| failed(&id, not_found_as_cross_reference(e)))
            }
        }
    }

    /// A CSV row as a record's input: empty cells are left out, `#N/A` clears a field, booleans
    /// and numbers are read by the field's type.
    fn row_input(&self, object: &str, header: &[String], row: &[String]) -> Map<String, Value> {
        let schema = self.object(object).map(|o| &o.schema);
        header
            .iter()
            .zip(row)
            .filter(|(_, cell)| !cell.is_empty())
            .map(|(name, cell)| {
                let kind = schema.and_then(|s| s.field(name)).map(|f| f.kind);
                let value = match (cell.as_str(), kind) {
                    ("#N/A", _) => Value::Null,
                    (text, Some(FieldKind::Boolean)) => match text.to_ascii_lowercase().as_str() {
                        "true" | "1" => Value::Bool(true),
                        "false" | "0" => Value::Bool(false),
                        _ => Value::String(text.to_owned()),
                    },
                    (text, _) => Value::String(text.to_owned()),
                };
                (name.clone(), value)
            })
            .collect()
    }
}

/// Takes the `Id` column out of an input.
fn take_id(input: &mut Map<String, Value>) -> Option<String> {
    let key = input.keys().find(|k| k.eq_ignore_ascii_case("Id")).cloned()?;
    input.remove(&key).and_then(|v| v.as_str().map(str::to_owned))
}

fn not_found_as_cross_reference(e: SfError) -> SfError {
    if e.code == "NOT_FOUND" { SfError::bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id") } else { e }
}

/// An error as Bulk's `sf__Error` column writes it.
fn bulk_error(e: &SfError) -> String {
    format!("{}:{}:{} --", e.code, e.message, e.fields.join(","))
}

/// A selected row's column (`Email`, or `Account.Name` inside the nested parent) as CSV text:
/// empty for null, `true` / `false`, numbers as JSON writes them.
fn csv_value(row: &Value, column: &str) -> String {
    let value = column.split('.').try_fold(row, |v, part| v.get(part)).unwrap_or(&Value::Null);
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// CSV text with every value quoted, as Bulk's results are.
fn to_csv(header: &[String], rows: impl Iterator<Item = Vec<String>>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Always).from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(header);
    for row in rows {
        let _ = writer.write_record(&row);
    }
    writer.into_inner().unwrap_or_default()
}

/// An ingest result file: two result columns (`sf__Id`, `sf__Created` or `sf__Error`) before the
/// uploaded columns.
fn results_csv<'a>(
    first: [&str; 2],
    header: &[String],
    rows: impl Iterator<Item = ([String; 2], &'a Vec<String>)>,
) -> Vec<u8> {
    let columns: Vec<String> = first.into_iter().map(str::to_owned).chain(header.iter().cloned()).collect();
    to_csv(&columns, rows.map(|(result, row)| result.into_iter().chain(row.iter().cloned()).collect()))
}

fn csv_response(body: Vec<u8>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/csv")], body).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewIngestJob {
    object: String,
    operation: IngestOperation,
    external_id_field_name: Option<String>,
    content_type: Option<String>,
    column_delimiter: Option<String>,
    line_ending: Option<String>,
}

/// `POST …/jobs/ingest`.
async fn create_ingest(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let spec: NewIngestJob = serde_json::from_value(json_body(&body)?)
            .map_err(|e| SfError::bad("INVALIDJOB", format!("Invalid job: {e}")))?;
        if spec.content_type.as_deref().is_some_and(|c| c != "CSV") {
            return Err(SfError::bad("INVALIDJOB", "contentType must be CSV"));
        }
        if spec.column_delimiter.as_deref().is_some_and(|c| c != "COMMA")
            || spec.line_ending.as_deref().is_some_and(|l| l != "LF" && l != "CRLF")
        {
            return Err(SfError::bad(
                "INVALIDJOB",
                "the emulator reads COMMA-delimited CSV with LF or CRLF line endings",
            ));
        }
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let store = state.object(&spec.object).ok_or_else(|| {
            SfError::bad("INVALIDJOB", format!("Entity '{}' is not supported by the Bulk API.", spec.object))
        })?;
        let object = store.schema.name;
        let external_id = match (spec.operation, spec.external_id_field_name.as_deref()) {
            (IngestOperation::Upsert, None) => {
                return Err(SfError::bad(
                    "INVALIDJOB",
                    "External ID was blank for Contact. An External ID must be specified for upsert.",
                ));
            }
            (IngestOperation::Upsert, Some(name)) => Some(super::rest::key_field(store, name)?),
            _ => None,
        };
        state.bulk.next += 1;
        let id = crate::ids::salesforce_id("750", state.bulk.next);
        let job = BulkJob {
            id: id.clone(),
            object,
            state: JobState::Open,
            created: now,
            modstamp: now,
            ready_at: None,
            api_version: v,
            error_message: None,
            work: Work::Ingest {
                operation: spec.operation,
                external_id,
                header: Vec::new(),
                rows: Vec::new(),
                successful: Vec::new(),
                failed: Vec::new(),
            },
        };
        let info = job.info(now);
        state.bulk.jobs.insert(id, job);
        Ok(Json(info).into_response())
    })
}

/// `PUT …/jobs/ingest/{id}/batches`: CSV rows (the header must name the same columns each time).
async fn upload(
    State(sim): State<Arc<Sim>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let (header, rows) = parse_csv(&body)?;
        let mut state = sim.salesforce();
        let job = state.bulk.jobs.get_mut(&id).filter(|j| j.kind() == "ingest").ok_or_else(job_not_found)?;
        if job.state != JobState::Open {
            return Err(invalid_state(format!("Job {id} is not open for uploads: it is {}", job.state.name())));
        }
        let Work::Ingest { header: kept, rows: all, .. } = &mut job.work else { return Err(job_not_found()) };
        if !kept.is_empty() && *kept != header {
            return Err(SfError::bad("INVALIDBATCH", "every upload of a job must have the same columns"));
        }
        *kept = header;
        all.extend(rows);
        Ok(StatusCode::CREATED.into_response())
    })
}

/// Reads uploaded CSV: the header and the rows (each as long as the header).
fn parse_csv(body: &[u8]) -> Result<(Vec<String>, Vec<Vec<String>>), SfError> {
    let invalid = |m: String| SfError::bad("INVALIDBATCH", m);
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| invalid(format!("InvalidBatch : {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(invalid("InvalidBatch : the CSV has no header row".to_owned()));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| invalid(format!("InvalidBatch : {e}")))?;
        rows.push(record.iter().map(str::to_owned).collect());
    }
    Ok((header, rows))
}

#[derive(Deserialize)]
struct StateChange {
    state: String,
}

/// `PATCH …/jobs/{ingest|query}/{id}` `{"state": "UploadComplete" | "Aborted"}`.
async fn change_state(
    State(sim): State<Arc<Sim>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let change: StateChange = serde_json::from_value(json_body(&body)?).map_err(|_| {
            SfError::bad("INVALIDJOB", "send {\"state\": \"UploadComplete\"} or {\"state\": \"Aborted\"}")
        })?;
        let now = sim.clock.now();
        let delay = chrono::Duration::milliseconds(sim.knobs().salesforce_bulk_processing_ms as i64);
        let mut state = sim.salesforce();
        let job = state.bulk.jobs.get_mut(&id).ok_or_else(job_not_found)?;
        match (change.state.as_str(), job.state, &job.work) {
            ("UploadComplete", JobState::Open, Work::Ingest { .. }) => {
                job.state = JobState::UploadComplete;
                job.ready_at = Some(now + delay);
            }
            ("Aborted", JobState::Open | JobState::UploadComplete, _) if job.ready_at.is_none_or(|t| now < t) => {
                job.state = JobState::Aborted;
            }
            (wanted, current, _) => {
                return Err(invalid_state(format!("Job {id} cannot move from {} to {wanted}", current.name())));
            }
        }
        job.modstamp = now;
        Ok(Json(job.info(now)).into_response())
    })
}

/// `GET …/jobs/{ingest|query}/{id}`.
async fn job_info(
    State(sim): State<Arc<Sim>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    api(&sim, &headers, || {
        let kind = if uri.path().contains("/jobs/query/") { "query" } else { "ingest" };
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let job = state.bulk_job(kind, &id, now)?;
        Ok(Json(job.info(now)).into_response())
    })
}

/// `DELETE …/jobs/{ingest|query}/{id}`: only a finished job.
async fn delete_job(
    State(sim): State<Arc<Sim>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let mut state = sim.salesforce();
        let job = state.bulk.jobs.get(&id).ok_or_else(job_not_found)?;
        if matches!(job.state, JobState::Open | JobState::UploadComplete) {
            return Err(invalid_state(format!("Job {id} is still {}: abort it first", job.state.name())));
        }
        state.bulk.jobs.remove(&id);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// `GET …/jobs/ingest`: every ingest job.
async fn list_ingest(State(sim): State<Arc<Sim>>, Path(_): Path<String>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        let now = sim.clock.now();
        let state = sim.salesforce();
        let records: Vec<Value> =
            state.bulk.jobs.values().filter(|j| j.kind() == "ingest").map(|j| j.info(now)).collect();
        Ok(Json(json!({ "done": true, "records": records, "nextRecordsUrl": null })).into_response())
    })
}

/// `GET …/jobs/ingest/{id}/{successfulResults | failedResults | unprocessedrecords}[/]`: one of a
/// finished ingest job's result files.
async fn result_file(
    State(sim): State<Arc<Sim>>,
    Path((_, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let job = state.bulk_job("ingest", &id, now)?;
        let finished = matches!(job.state, JobState::JobComplete | JobState::Aborted | JobState::Failed);
        let Work::Ingest { header, rows, successful, failed, .. } = &job.work else { return Err(job_not_found()) };
        let body = match file.as_str() {
            "successfulResults" => results_csv(
                ["sf__Id", "sf__Created"],
                header,
                successful.iter().map(|(id, created, row)| ([id.clone(), created.to_string()], row)),
            ),
            "failedResults" => results_csv(
                ["sf__Id", "sf__Error"],
                header,
                failed.iter().map(|(id, error, row)| ([id.clone(), error.clone()], row)),
            ),
            // Rows are processed all at once: an aborted job left every row unprocessed.
            "unprocessedrecords" if job.state == JobState::Aborted => to_csv(header, rows.iter().cloned()),
            "unprocessedrecords" => to_csv(header, std::iter::empty()),
            _ => return Err(job_not_found()),
        };
        if !finished {
            return Err(invalid_state(format!("Job {id} is not finished: results are not ready")));
        }
        Ok(csv_response(body))
    })
}

#[derive(Deserialize)]
struct NewQueryJob {
    operation: String,
    query: String,
}

/// `POST …/jobs/query` `{"operation": "query" | "queryAll", "query"}`: the query is checked now
/// (a bad one is refused as the REST query endpoint would) and run when the job is processed.
async fn create_query(
    State(sim): State<Arc<Sim>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &headers, || {
        let v = version(&raw)?;
        let spec: NewQueryJob = serde_json::from_value(json_body(&body)?)
            .map_err(|e| SfError::bad("INVALIDJOB", format!("Invalid job: {e}")))?;
        let include_deleted = match spec.operation.as_str() {
            "query" => false,
            "queryAll" => true,
            other => {
                return Err(SfError::bad("INVALIDJOB", format!("Invalid operation {other}: use query or queryAll")));
            }
        };
        let now = sim.clock.now();
        let delay = chrono::Duration::milliseconds(sim.knobs().salesforce_bulk_processing_ms as i64);
        let mut state = sim.salesforce();
        if state.bulk.query_jobs_used >= DAILY_QUERY_JOBS {
            return Err(SfError::new(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."));
        }
        // Refuse what the REST endpoint would refuse (syntax, unknown fields, relationships) now.
        let object = check_query(&state, &spec.query)?;
        state.bulk.next += 1;
        state.bulk.query_jobs_used += 1;
        let id = crate::ids::salesforce_id("750", state.bulk.next);
        let job = BulkJob {
            id: id.clone(),
            object,
            state: JobState::UploadComplete,
            created: now,
            modstamp: now,
            ready_at: Some(now + delay),
            api_version: v,
            error_message: None,
            work: Work::Query { soql: spec.query, include_deleted, columns: Vec::new(), rows: Vec::new() },
        };
        let info = job.info(now);
        state.bulk.jobs.insert(id, job);
        Ok(Json(info).into_response())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultsPage {
    locator: Option<String>,
    max_records: Option<usize>,
}

/// `GET …/jobs/query/{id}/results?locator=&maxRecords=`: CSV, with `Sforce-Locator` naming the
/// next page (`null` on the last) and `Sforce-NumberOfRecords`.
async fn query_results(
    State(sim): State<Arc<Sim>>,
    Path((_, id)): Path<(String, String)>,
    Query(page): Query<ResultsPage>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let now = sim.clock.now();
        let mut state = sim.salesforce();
        let job = state.bulk_job("query", &id, now)?;
        let Work::Query { columns, rows, .. } = &job.work else { return Err(job_not_found()) };
        if job.state != JobState::JobComplete {
            return Err(invalid_state(format!("Job {id} is not complete: results are not ready")));
        }
        let start = match page.locator.as_deref().filter(|l| !l.is_empty() && *l != "null") {
            None => 0,
            Some(locator) => decode_locator(locator)
                .ok_or_else(|| SfError::bad("INVALIDLOCATOR", format!("Invalid locator {locator}")))?,
        };
        let size = page.max_records.filter(|n| *n > 0).unwrap_or(50_000);
        let slice: Vec<Vec<String>> = rows.iter().skip(start).take(size).cloned().collect();
        let next = (start + slice.len() < rows.len()).then(|| encode_locator(start + slice.len()));
        let count = slice.len();
        let mut response = csv_response(to_csv(columns, slice.into_iter()));
        let headers = response.headers_mut();
        headers.insert(
            "sforce-locator",
            HeaderValue::from_str(next.as_deref().unwrap_or("null")).unwrap_or(HeaderValue::from_static("null")),
        );
        headers.insert("sforce-numberofrecords", HeaderValue::from(count));
        Ok(response)
    })
}

/// Locators are opaque to clients: the row offset, base64.
fn encode_locator(offset: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(offset.to_string())
}

fn decode_locator(locator: &str) -> Option<usize> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(locator).ok()?;
    String::from_utf8(bytes).ok()?.parse().ok()
}
