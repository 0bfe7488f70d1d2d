//! Bulk API 2.0 for large reads and writes, stepped by the host one short call at a time.
//!
//! Reads are query jobs (`query`, or `queryAll` for incremental reads so deletions come through)
//! over the same fields and conditions as `pull`, their CSV results read a page per call by
//! `Sforce-Locator`. Writes are ingest jobs: records with a CRM id are an `update` job; the others
//! an `upsert` on a custom external-id key (`…__c`), or — for other keys (`Email`) — matched first
//! as `push` matches them (`WHERE Email IN (…)`, 200 keys a query), then `update` for hits and
//! `insert` for misses. Outcomes come from the jobs' successful and failed results, matched back
//! to the input by `Id` or key value (Salesforce does not promise result order).
//!
//! Cursors: `bulkq:<job>[:<locator>[:<types>]]` for reads (the object is described once per job
//! and its types carried), `bulki:<update>:<insert>:<upsert>:<duplicates>` for writes (job ids or
//! `-`, and the input positions that matched several records).

use std::collections::{BTreeMap, HashMap};

use crmhost_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use crate::api::Api;
use crate::errors::{SfError, record_error};
use crate::objects::sobject;
use crate::pull::{selected_fields, since_condition, to_record};
use crate::push::{MAX_BATCH, match_existing};
use crate::soql::{is_field_name, rfc3339};

/// How long the host waits before looking at a running job again.
const WAIT_MS: u32 = 1_000;

/// The most records one page of query results brings.
const MAX_PAGE: u32 = 10_000;

/// A job's state as `GET …/jobs/{kind}/{id}` reports it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobInfo {
    id: String,
    state: String,
    #[serde(default)]
    number_records_processed: Option<u64>,
    #[serde(default)]
    error_message: Option<String>,
}

impl JobInfo {
    fn finished(&self) -> Result<bool> {
        match self.state.as_str() {
            "JobComplete" => Ok(true),
            "Failed" | "Aborted" => Err(AdapterError::invalid(format!(
                "Bulk job {} {}: {}",
                self.id,
                self.state.to_lowercase(),
                self.error_message.as_deref().unwrap_or("no reason given")
            ))),
            _ => Ok(false),
        }
    }
}

/// A step of a bulk read.
pub fn bulk_pull(request: PullRequest) -> Result<PullStep> {
    if !request.ids.is_empty() {
        return Err(AdapterError::not_supported("bulk reads by id"));
    }
    let api = Api::from_connection()?;
    let object = sobject(&request.entity)?;
    let incremental = request.modified_since.is_some();
    let fields = selected_fields(&request, object, incremental)?;
    let QueryCursor { job, locator, types } = match request.cursor.as_deref() {
        None => QueryCursor::started(start_query(&api, object, &fields, request.modified_since.as_deref())?),
        Some(cursor) => QueryCursor::parse(cursor)?,
    };
    if locator.is_none() {
        let info = job_info(&api, "query", &job)?;
        if !info.finished()? {
            return Ok(PullStep::Pending(pending(QueryCursor::started(job).encode(), &info)));
        }
    }
    // The object is described once per job: later pages carry the selected fields' types.
    let types = match types.and_then(|codes| FieldTypes::decode(&fields, &codes)) {
        Some(types) => types,
        None => FieldTypes::described(&request.entity)?,
    };
    let limit = if request.limit == 0 { MAX_PAGE } else { request.limit.min(MAX_PAGE) };
    read_results(&api, &fields, &types, &job, locator.as_deref(), limit)
}

fn pending(cursor: String, info: &JobInfo) -> Pending {
    Pending { cursor, wait_ms: WAIT_MS, processed: info.number_records_processed }
}

/// Where a bulk read stands: `bulkq:<job>[:<locator>[:<types>]]`, the types one code per
/// selected field (`t` text, `b` boolean, `n` number, `d` instant).
#[derive(Debug, PartialEq)]
struct QueryCursor {
    job: String,
    locator: Option<String>,
    types: Option<String>,
}

impl QueryCursor {
    fn started(job: String) -> Self {
        Self { job, locator: None, types: None }
    }

    fn encode(&self) -> String {
        match (&self.locator, &self.types) {
            (Some(locator), Some(types)) => format!("bulkq:{}:{locator}:{types}", self.job),
            (Some(locator), None) => format!("bulkq:{}:{locator}", self.job),
            _ => format!("bulkq:{}", self.job),
        }
    }

    fn parse(cursor: &str) -> Result<Self> {
        let bad = || AdapterError::invalid(format!("unrecognised bulk cursor `{cursor}`"));
        let mut parts = cursor.strip_prefix("bulkq:").ok_or_else(bad)?.split(':');
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let job = parts.next().filter(|j| plain(j)).ok_or_else(bad)?.to_owned();
        let locator = parts.next().map(|l| if plain(l) { Ok(l.to_owned()) } else { Err(bad()) }).transpose()?;
        let types =
            parts.next().map(|t| if FieldTypes::codes_valid(t) { Ok(t.to_owned()) } else { Err(bad()) }).transpose()?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self { job, locator, types })
    }
}

/// The field types that shape CSV cells, by lower-cased field name (CSV carries only text).
struct FieldTypes(HashMap<String, FieldType>);

impl FieldTypes {
    /// From the object's `describe`.
    fn described(entity: &str) -> Result<Self> {
        let fields = crate::fields::list_fields(entity)?;
        Ok(Self(fields.into_iter().map(|f| (f.name.to_lowercase(), f.field_type)).collect()))
    }

    fn code(kind: Option<&FieldType>) -> char {
        match kind {
            Some(FieldType::Boolean) => 'b',
            Some(FieldType::Integer | FieldType::Number | FieldType::Currency | FieldType::Percent) => 'n',
            Some(FieldType::DateTime) => 'd',
            _ => 't',
        }
    }

    fn codes_valid(codes: &str) -> bool {
        !codes.is_empty() && codes.bytes().all(|b| matches!(b, b't' | b'b' | b'n' | b'd'))
    }

    /// One code per selected field, in order.
    fn encode(&self, fields: &[String]) -> String {
        fields.iter().map(|f| Self::code(self.0.get(&f.to_lowercase()))).collect()
    }

    /// The types a cursor carries, when they match the selected fields.
    fn decode(fields: &[String], codes: &str) -> Option<Self> {
        if codes.chars().count() != fields.len() {
            return None;
        }
        let types = fields.iter().zip(codes.chars()).filter_map(|(field, code)| {
            let kind = match code {
                'b' => FieldType::Boolean,
                'n' => FieldType::Number,
                'd' => FieldType::DateTime,
                _ => return None,
            };
            Some((field.to_lowercase(), kind))
        });
        Some(Self(types.collect()))
    }

    fn get(&self, column: &str) -> Option<&FieldType> {
        self.0.get(&column.to_lowercase())
    }
}

/// Creates the query job: the read `pull` would make, unordered and unlimited.
fn start_query(api: &Api, object: &str, fields: &[String], since: Option<&str>) -> Result<String> {
    let mut soql = format!("SELECT {} FROM {object}", fields.join(", "));
    if let Some(since) = since {
        soql.push_str(&format!(" WHERE {}", since_condition(since)?));
    }
    let operation = if since.is_some() { "queryAll" } else { "query" };
    let request = Request::post(api.url("/jobs/query")).json(&json!({ "operation": operation, "query": soql }))?;
    let info: JobInfo = api.send(request, "creating a bulk query job")?.json()?;
    Ok(info.id)
}

fn job_info(api: &Api, kind: &str, id: &str) -> Result<JobInfo> {
    api.get_json(api.url(&format!("/jobs/{kind}/{id}")), "reading a bulk job's state")
}

/// One page of a finished query job's results, typed by the object's field types.
fn read_results(
    api: &Api,
    fields: &[String],
    types: &FieldTypes,
    job: &str,
    locator: Option<&str>,
    limit: u32,
) -> Result<PullStep> {
    let mut request =
        Request::get(api.url(&format!("/jobs/query/{job}/results"))).query("maxRecords", limit.to_string());
    if let Some(locator) = locator {
        request = request.query("locator", locator);
    }
    let response = api.send_accepting(request, "text/csv", "reading bulk query results")?;
    let next = response.header("sforce-locator").filter(|l| !l.is_empty() && *l != "null").map(str::to_owned);
    let (header, rows) = read_csv(response.body())?;
    let records =
        rows.iter().map(|row| to_record(&row_json(&header, row, types), fields)).collect::<Result<Vec<_>>>()?;
    let next_cursor = next.map(|locator| {
        QueryCursor { job: job.to_owned(), locator: Some(locator), types: Some(types.encode(fields)) }.encode()
    });
    Ok(PullStep::Page(Page { records, next_cursor }))
}

fn read_csv(body: &[u8]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body);
    let bad = |e: csv::Error| AdapterError::internal(format!("unreadable CSV from Salesforce: {e}"));
    let header: Vec<String> = reader.headers().map_err(bad)?.iter().map(str::to_owned).collect();
    let rows = reader
        .records()
        .map(|r| r.map(|r| r.iter().map(str::to_owned).collect::<Vec<_>>()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(bad)?;
    Ok((header, rows))
}

/// A CSV row in the shape of a REST query result: typed values, `Account.Name` nested, empty
/// cells null.
fn row_json(header: &[String], row: &[String], types: &FieldTypes) -> Map<String, Json> {
    let mut out = Map::new();
    for (column, cell) in header.iter().zip(row) {
        let value = typed_cell(cell, types.get(column));
        match column.split_once('.') {
            None => {
                out.insert(column.clone(), value);
            }
            Some((parent, field)) => {
                let entry = out.entry(parent.to_owned()).or_insert_with(|| json!({}));
                if let Some(map) = entry.as_object_mut() {
                    map.insert(field.to_owned(), value);
                }
            }
        }
    }
    out
}

fn typed_cell(cell: &str, kind: Option<&FieldType>) -> Json {
    if cell.is_empty() {
        return Json::Null;
    }
    match kind {
        Some(FieldType::Boolean) => Json::Bool(cell.eq_ignore_ascii_case("true")),
        Some(FieldType::Integer | FieldType::Number | FieldType::Currency | FieldType::Percent) => {
            cell.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or_else(|| json!(cell), Json::Number)
        }
        // The REST shape (`…+0000`), which `pull::typed` reads as an instant.
        Some(FieldType::DateTime) => match rfc3339(cell) {
            Some(at) => json!(at.replacen('Z', "+0000", 1)),
            None => json!(cell),
        },
        _ => json!(cell),
    }
}

/// The jobs of one bulk write.
#[derive(Debug, Default, PartialEq)]
struct IngestJobs {
    update: Option<String>,
    insert: Option<String>,
    upsert: Option<String>,
    /// Input positions whose key matched several records (failed as duplicates).
    duplicates: Vec<usize>,
}

impl IngestJobs {
    fn encode(&self) -> String {
        let id = |j: &Option<String>| j.clone().unwrap_or_else(|| "-".to_owned());
        let dups: Vec<String> = self.duplicates.iter().map(usize::to_string).collect();
        format!("bulki:{}:{}:{}:{}", id(&self.update), id(&self.insert), id(&self.upsert), dups.join(","))
    }

    fn parse(cursor: &str) -> Result<Self> {
        let bad = || AdapterError::invalid(format!("unrecognised bulk cursor `{cursor}`"));
        let parts: Vec<&str> = cursor.strip_prefix("bulki:").ok_or_else(bad)?.split(':').collect();
        let [update, insert, upsert, dups] = parts.as_slice() else { return Err(bad()) };
        let job = |s: &str| -> Result<Option<String>> {
            match s {
                "-" => Ok(None),
                id if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) => Ok(Some(id.to_owned())),
                _ => Err(bad()),
            }
        };
        let duplicates = dups
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| bad()))
            .collect::<Result<Vec<usize>>>()?;
        Ok(Self { update: job(update)?, insert: job(insert)?, upsert: job(upsert)?, duplicates })
    }

    fn jobs(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [("update", &self.update), ("insert", &self.insert), ("upsert", &self.upsert)]
            .into_iter()
            .filter_map(|(op, job)| job.as_ref().map(|j| (op, j)))
    }
}

/// A step of a bulk write.
pub fn bulk_push(entity: &str, match_key: &str, records: Vec<PushRecord>, job: Option<String>) -> Result<PushStep> {
    if !is_field_name(match_key) {
        return Err(AdapterError::invalid_field(match_key, "not a field name"));
    }
    let api = Api::from_connection()?;
    let object = sobject(entity)?;
    let jobs = match job.as_deref() {
        None => start_ingest(&api, object, match_key, &records)?,
        Some(cursor) => IngestJobs::parse(cursor)?,
    };
    let mut processed = 0;
    let mut running = false;
    let mut failed_jobs = BTreeMap::new();
    for (operation, id) in jobs.jobs() {
        let info = job_info(&api, "ingest", id)?;
        processed += info.number_records_processed.unwrap_or(0);
        match info.finished() {
            Ok(done) => running |= !done,
            Err(err) => {
                failed_jobs.insert(operation, err);
            }
        }
    }
    if running {
        let cursor = jobs.encode();
        return Ok(PushStep::Pending(Pending { cursor, wait_ms: WAIT_MS, processed: Some(processed) }));
    }
    Ok(PushStep::Done(outcomes(&api, match_key, &records, &jobs, &failed_jobs)))
}

/// Plans the write as `push` would, and creates and fills one job per operation.
fn start_ingest(api: &Api, object: &str, match_key: &str, records: &[PushRecord]) -> Result<IngestJobs> {
    let matching = crmhost_sdk::matching::plan_matches(records, match_key);
    let mut update: Vec<(usize, Option<String>)> = matching.by_id.into_iter().map(|(i, id)| (i, Some(id))).collect();
    let mut insert = Vec::new();
    let mut upsert = Vec::new();
    let mut jobs = IngestJobs::default();
    if match_key.ends_with("__c") {
        upsert = matching.by_key.iter().map(|(i, _)| (*i, None)).collect();
    } else {
        for chunk in matching.by_key.chunks(MAX_BATCH) {
            let matches = match_existing(api, object, match_key, chunk)?;
            for (i, key) in chunk {
                match matches.get(&key.to_lowercase()).map(Vec::as_slice) {
                    None | Some([]) => insert.push((*i, None)),
                    Some([id]) => update.push((*i, Some(id.clone()))),
                    Some(_) => jobs.duplicates.push(*i),
                }
            }
        }
    }
    jobs.update = create_ingest(api, object, "update", None, records, &update)?;
    jobs.insert = create_ingest(api, object, "insert", None, records, &insert)?;
    jobs.upsert = create_ingest(api, object, "upsert", Some(match_key), records, &upsert)?;
    Ok(jobs)
}

/// Creates an ingest job for the rows (none: no job), uploads them and closes the upload.
fn create_ingest(
    api: &Api,
    object: &str,
    operation: &str,
    external_id: Option<&str>,
    records: &[PushRecord],
    rows: &[(usize, Option<String>)],
) -> Result<Option<String>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut spec = json!({ "object": object, "operation": operation, "contentType": "CSV", "lineEnding": "LF" });
    if let Some(field) = external_id {
        spec["externalIdFieldName"] = json!(field);
    }
    let info: JobInfo =
        api.send(Request::post(api.url("/jobs/ingest")).json(&spec)?, "creating a bulk ingest job")?.json()?;
    let csv = ingest_csv(records, rows)?;
    let upload = Request::put(api.url(&format!("/jobs/ingest/{}/batches", info.id)))
        .header("Content-Type", "text/csv")
        .body(csv);
    api.send(upload, "uploading a bulk ingest job's records")?;
    let close =
        Request::patch(api.url(&format!("/jobs/ingest/{}", info.id))).json(&json!({ "state": "UploadComplete" }))?;
    api.send(close, "closing a bulk ingest job's upload")?;
    Ok(Some(info.id))
}

/// The rows as Bulk CSV: every field any of them sets (`Id` first for updates); a field a row
/// does not set is an empty cell (left as it is), a null one `#N/A` (cleared).
fn ingest_csv(records: &[PushRecord], rows: &[(usize, Option<String>)]) -> Result<Vec<u8>> {
    let mut columns: Vec<String> = Vec::new();
    let with_id = rows.iter().any(|(_, id)| id.is_some());
    if with_id {
        columns.push("Id".to_owned());
    }
    for (i, _) in rows {
        for field in &records[*i].fields {
            if !field.name.eq_ignore_ascii_case("Id") && !columns.iter().any(|c| c.eq_ignore_ascii_case(&field.name)) {
                columns.push(field.name.clone());
            }
        }
    }
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    let failed = |e: csv::Error| AdapterError::internal(format!("writing CSV: {e}"));
    writer.write_record(&columns).map_err(failed)?;
    for (i, id) in rows {
        let record = &records[*i];
        let cells = columns.iter().map(|column| {
            if column == "Id" && with_id {
                return id.clone().unwrap_or_default();
            }
            match record.fields.iter().find(|f| f.name.eq_ignore_ascii_case(column)).map(|f| &f.value) {
                None => String::new(),
                Some(Value::Null) => "#N/A".to_owned(),
                Some(Value::Boolean(b)) => b.to_string(),
                Some(value) => value.to_text().unwrap_or_default(),
            }
        });
        writer.write_record(cells).map_err(failed)?;
    }
    writer.into_inner().map_err(|e| AdapterError::internal(format!("writing CSV: {e}")))
}

/// One outcome per input record from the jobs' result files.
fn outcomes(
    api: &Api,
    match_key: &str,
    records: &[PushRecord],
    jobs: &IngestJobs,
    failed_jobs: &BTreeMap<&str, AdapterError>,
) -> Vec<PushOutcome> {
    let mut outcomes: Vec<Option<PushOutcome>> = records.iter().map(|_| None).collect();
    let matching = crmhost_sdk::matching::plan_matches(records, match_key);
    for (i, err) in matching.rejected {
        outcomes[i] = Some(PushOutcome::Failed(err));
    }
    for i in &jobs.duplicates {
        if let Some(slot) = outcomes.get_mut(*i) {
            *slot = Some(PushOutcome::Failed(AdapterError::duplicate(
                format!("{match_key} matches several records"),
                None,
            )));
        }
    }
    // Which input a result row answers: by `Id` for records sent with one, else by key value.
    let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, id) in matching.by_id {
        by_id.entry(id).or_default().push(i);
    }
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, key) in matching.by_key {
        by_key.entry(key.to_lowercase()).or_default().push(i);
    }
    // Records no result names belong to a job that failed as a whole (or whose results could not
    // be read): they fail with its error.
    let mut job_error = None;
    for (operation, job) in jobs.jobs() {
        if let Some(err) = failed_jobs.get(operation) {
            job_error.get_or_insert_with(|| err.clone());
            continue;
        }
        if let Err(err) = read_outcomes(api, job, match_key, &mut by_id, &mut by_key, &mut outcomes) {
            job_error.get_or_insert(err);
        }
    }
    let unanswered =
        job_error.unwrap_or_else(|| AdapterError::internal("the bulk job's results do not name this record"));
    outcomes.into_iter().map(|o| o.unwrap_or_else(|| PushOutcome::Failed(unanswered.clone()))).collect()
}

/// Reads a finished job's successful and failed results into `outcomes`.
fn read_outcomes(
    api: &Api,
    job: &str,
    match_key: &str,
    by_id: &mut HashMap<String, Vec<usize>>,
    by_key: &mut HashMap<String, Vec<usize>>,
    outcomes: &mut [Option<PushOutcome>],
) -> Result<()> {
    for file in ["successfulResults", "failedResults"] {
        let request = Request::get(api.url(&format!("/jobs/ingest/{job}/{file}/")));
        let response = api.send_accepting(request, "text/csv", "reading a bulk job's results")?;
        let (header, rows) = read_csv(response.body())?;
        let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (id_col, key_col) = (column("Id"), column(match_key));
        let (sf_id, sf_created, sf_error) = (column("sf__Id"), column("sf__Created"), column("sf__Error"));
        for row in &rows {
            let cell = |c: Option<usize>| c.and_then(|c| row.get(c)).filter(|v| !v.is_empty());
            // A row sent with an `Id` answers that record; otherwise its key value does.
            // (A record matched on its key was sent with the id it matched: its key answers.)
            let take = |v: Option<&mut Vec<usize>>| v.and_then(|v| (!v.is_empty()).then(|| v.remove(0)));
            let by_its_id = cell(id_col).and_then(|id| take(by_id.get_mut(id.as_str())));
            let index =
                by_its_id.or_else(|| cell(key_col).and_then(|k| take(by_key.get_mut(&k.trim().to_lowercase()))));
            let Some(i) = index else { continue };
            let outcome = match cell(sf_id) {
                Some(id) if file == "successfulResults" => {
                    let created = cell(sf_created).is_some_and(|c| c.eq_ignore_ascii_case("true"));
                    if created { PushOutcome::Created(id.clone()) } else { PushOutcome::Updated(id.clone()) }
                }
                _ => PushOutcome::Failed(bulk_error(cell(sf_error).map_or("", String::as_str))),
            };
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some(outcome);
            }
        }
    }
    Ok(())
}

/// `sf__Error` (`CODE:message:fields --`) as the error a collection result would give.
fn bulk_error(text: &str) -> AdapterError {
    let text = text.trim_end_matches(" --").trim_end_matches("--");
    let (code, rest) = text.split_once(':').unwrap_or(("UNKNOWN_EXCEPTION", text));
    let (message, fields) = rest.rsplit_once(':').unwrap_or((rest, ""));
    let error = SfError {
        message: message.to_owned(),
        error_code: None,
        status_code: Some(code.to_owned()),
        fields: fields.split(',').filter(|f| !f.is_empty()).map(str::to_owned).collect(),
    };
    record_error(&[error])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let started = QueryCursor::started("7500001".to_owned());
        assert_eq!(QueryCursor::parse("bulkq:7500001").unwrap(), started);
        let paged = QueryCursor { locator: Some("MTAw".to_owned()), ..QueryCursor::started("7500001".to_owned()) };
        assert_eq!(QueryCursor::parse(&paged.encode()).unwrap(), paged);
        let typed = QueryCursor { types: Some("tbnd".to_owned()), ..paged };
        assert_eq!(QueryCursor::parse(&typed.encode()).unwrap(), typed);
        for bad in ["bulkq:", "2024-01-01T00:00:00Z|001", "bulkq:75 0", "bulkq:1:2:tx", "bulkq:1:2:t:4", "bulkq:1::t"] {
            assert!(QueryCursor::parse(bad).is_err(), "{bad}");
        }
        // Types travel as one code per selected field; a cursor for other fields is not trusted.
        let fields: Vec<String> = ["Id", "IsDeleted", "NumberOfEmployees", "SystemModstamp"].map(String::from).to_vec();
        let types = FieldTypes::decode(&fields, "tbnd").unwrap();
        assert_eq!(types.encode(&fields), "tbnd");
        assert!(matches!(types.get("ISDELETED"), Some(FieldType::Boolean)));
        assert!(FieldTypes::decode(&fields, "tbn").is_none());
        let jobs = IngestJobs {
            update: Some("7500A".to_owned()),
            insert: None,
            upsert: Some("7500B".to_owned()),
            duplicates: vec![3, 9],
        };
        assert_eq!(IngestJobs::parse(&jobs.encode()).unwrap(), jobs);
        assert!(IngestJobs::parse("bulki:-:-:-").is_err());
        assert!(IngestJobs::parse("bulki:a/b:-:-:").is_err());
    }

    #[test]
    fn csv_cells_are_typed_by_the_field() {
        let types = FieldTypes(
            [
                ("isdeleted".to_owned(), FieldType::Boolean),
                ("numberofemployees".to_owned(), FieldType::Integer),
                ("systemmodstamp".to_owned(), FieldType::DateTime),
            ]
            .into_iter()
            .collect(),
        );
        let header: Vec<String> = ["Id", "IsDeleted", "NumberOfEmployees", "SystemModstamp", "Email", "Account.Name"]
            .map(String::from)
            .to_vec();
        let row: Vec<String> =
            ["003A", "false", "12", "2026-01-02T03:04:05.000Z", "", "Acme"].map(String::from).to_vec();
        let json = row_json(&header, &row, &types);
        assert_eq!(json["IsDeleted"], json!(false));
        assert_eq!(json["NumberOfEmployees"], json!(12.0));
        assert_eq!(json["SystemModstamp"], json!("2026-01-02T03:04:05.000+0000"));
        assert_eq!(json["Email"], Json::Null);
        assert_eq!(json["Account"]["Name"], json!("Acme"));
    }

    #[test]
    fn a_bulk_error_reads_as_a_record_error() {
        let err = bulk_error("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --");
        assert!(matches!(&err, AdapterError::Invalid(info) if info.field.as_deref() == Some("LastName")
            && info.crm_code.as_deref() == Some("REQUIRED_FIELD_MISSING")));
        assert!(matches!(bulk_error("DUPLICATE_VALUE:duplicate value found: --"), AdapterError::Duplicate(_)));
    }

    #[test]
    fn ingest_rows_leave_unset_fields_alone_and_clear_nulls() {
        let records = vec![
            PushRecord {
                crm_id: Some("003A".to_owned()),
                fields: vec![FieldValue::new("Email", Value::Text("a@x.io".to_owned()))],
            },
            PushRecord {
                crm_id: Some("003B".to_owned()),
                fields: vec![
                    FieldValue::new("Phone", Value::Null),
                    FieldValue::new("HasOptedOutOfEmail", Value::Boolean(true)),
                ],
            },
        ];
        let rows = vec![(0, Some("003A".to_owned())), (1, Some("003B".to_owned()))];
        let csv = String::from_utf8(ingest_csv(&records, &rows).unwrap()).unwrap();
        assert_eq!(csv, "Id,Email,Phone,HasOptedOutOfEmail\n003A,a@x.io,,\n003B,,#N/A,true\n");
    }
}
