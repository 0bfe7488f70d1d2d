//! `pull`: SOQL over the requested fields, ordered by `(SystemModstamp, Id)` with a keyset cursor
//! on that pair, so records sharing a timestamp are never skipped and paging never depends on a
//! server-side query locator that could expire. Within one page `nextRecordsUrl` is followed until
//! the host's limit is reached. Incremental pulls and pulls by id use `queryAll` so deletions
//! (and merges: a loser is deleted with `MasterRecordId` naming the survivor)
//! come through as records with `deleted` set.

use crmhost_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::api::Api;
use crate::objects::{default_fields, sobject};
use crate::soql::{datetime_literal, is_field_name, quote, rfc3339};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryPage {
    records: Vec<Map<String, Json>>,
    #[serde(default)]
    done: bool,
    next_records_url: Option<String>,
}

/// Where the next page starts: after this (SystemModstamp, Id).
struct Keyset {
    modstamp: String,
    id: String,
}

impl Keyset {
    fn parse(cursor: &str) -> Result<Self> {
        let (modstamp, id) =
            cursor.split_once('|').ok_or_else(|| AdapterError::invalid(format!("unrecognised cursor `{cursor}`")))?;
        if datetime_literal(modstamp).is_none() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(AdapterError::invalid(format!("unrecognised cursor `{cursor}`")));
        }
        Ok(Self { modstamp: modstamp.to_owned(), id: id.to_owned() })
    }

    fn encode(&self) -> String {
        format!("{}|{}", self.modstamp, self.id)
    }
}

/// Most records one page may hold (Salesforce's largest query batch).
const MAX_PAGE: u32 = 2000;

/// One page of records.
pub fn pull(request: PullRequest) -> Result<Page> {
    let api = Api::from_connection()?;
    let object = sobject(&request.entity)?;
    let limit = if request.limit == 0 { 200 } else { request.limit.min(MAX_PAGE) } as usize;
    // Incremental pulls and pulls by id (a notification names a record that may have just been
    // deleted) read the recycle bin too (`queryAll`), so deletions come through.
    let incremental = request.modified_since.is_some() || !request.ids.is_empty();
    let fields = selected_fields(&request, object, incremental)?;

    let mut conditions = Vec::new();
    if !request.ids.is_empty() {
        if let Some(bad) = request.ids.iter().find(|id| !id.chars().all(|c| c.is_ascii_alphanumeric())) {
            return Err(AdapterError::invalid(format!("`{bad}` is not a Salesforce id")));
        }
        conditions.push(format!("Id IN ({})", request.ids.iter().map(|id| quote(id)).collect::<Vec<_>>().join(", ")));
    }
    match (&request.cursor, &request.modified_since) {
        (Some(cursor), _) => {
            let key = Keyset::parse(cursor)?;
            let at = datetime_literal(&key.modstamp).unwrap_or_default();
            conditions.push(format!("(SystemModstamp > {at} OR (SystemModstamp = {at} AND Id > {}))", quote(&key.id)));
        }
        (None, Some(since)) => conditions.push(since_condition(since)?),
        (None, None) => {}
    }
    let mut soql = format!("SELECT {} FROM {object}", fields.join(", "));
    if !conditions.is_empty() {
        soql.push_str(" WHERE ");
        soql.push_str(&conditions.join(" AND "));
    }
    soql.push_str(&format!(" ORDER BY SystemModstamp, Id LIMIT {limit}"));

    let resource = if incremental { "/queryAll" } else { "/query" };
    let mut page: QueryPage =
        api.get_json(format!("{}?q={}", api.url(resource), encode_query(&soql)), "querying records")?;
    let mut raw = std::mem::take(&mut page.records);
    while !page.done && raw.len() < limit {
        let Some(next) = page.next_records_url.take() else { break };
        page = api.get_json(api.absolute(&next), "reading the next query batch")?;
        raw.append(&mut page.records);
    }
    raw.truncate(limit);

    let records: Vec<CrmRecord> = raw.iter().map(|r| to_record(r, &fields)).collect::<Result<_>>()?;
    let next_cursor = if records.len() == limit && request.ids.is_empty() {
        raw.last().and_then(|last| {
            let modstamp = last.get("SystemModstamp")?.as_str()?.to_owned();
            let id = last.get("Id")?.as_str()?.to_owned();
            Some(Keyset { modstamp, id }.encode())
        })
    } else {
        None
    };
    Ok(Page { records, next_cursor })
}

/// The fields a pull selects: those asked for (else the entity's defaults) and what the adapter
/// needs (`Id`, `SystemModstamp`; for incremental reads `IsDeleted`, and `MasterRecordId` where
/// a record deleted by a merge names the survivor), each checked to be a field name.
pub fn selected_fields(request: &PullRequest, object: &str, incremental: bool) -> Result<Vec<String>> {
    let mut fields: Vec<String> =
        if request.fields.is_empty() { default_fields(&request.entity) } else { request.fields.clone() };
    let merges = incremental && crate::objects::mergeable(object);
    let system = ["Id", "SystemModstamp"].into_iter().chain(incremental.then_some("IsDeleted"));
    for required in system.chain(merges.then_some("MasterRecordId")) {
        if !fields.iter().any(|f| f.eq_ignore_ascii_case(required)) {
            fields.push(required.to_owned());
        }
    }
    if let Some(bad) = fields.iter().find(|f| !is_field_name(f)) {
        return Err(AdapterError::invalid_field(bad.clone(), format!("`{bad}` is not a field name")));
    }
    Ok(fields)
}

/// The SOQL condition of a read since an instant.
pub fn since_condition(since: &str) -> Result<String> {
    let at = datetime_literal(since)
        .ok_or_else(|| AdapterError::invalid(format!("modified-since `{since}` is not an RFC 3339 instant")))?;
    Ok(format!("SystemModstamp >= {at}"))
}

/// `count`: `SELECT COUNT()` over what a pull since `modified_since` would read (deleted records
/// left out: `query`, not `queryAll`). One request; Salesforce answers `totalSize`.
pub fn count(request: CountRequest) -> Result<Option<u64>> {
    let api = Api::from_connection()?;
    let object = sobject(&request.entity)?;
    let mut soql = format!("SELECT COUNT() FROM {object}");
    if let Some(since) = &request.modified_since {
        soql.push_str(&format!(" WHERE {}", since_condition(since)?));
    }
    let answer: Json = api.get_json(format!("{}?q={}", api.url("/query"), encode_query(&soql)), "counting records")?;
    Ok(answer.get("totalSize").and_then(Json::as_u64))
}

/// Percent-encodes a SOQL query for `?q=`.
pub fn encode_query(soql: &str) -> String {
    let mut out = String::with_capacity(soql.len() * 3 / 2);
    for b in soql.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query result (REST JSON, or a Bulk CSV row read into the same shape) as a record.
pub fn to_record(raw: &Map<String, Json>, fields: &[String]) -> Result<CrmRecord> {
    let id = raw
        .get("Id")
        .and_then(Json::as_str)
        .ok_or_else(|| AdapterError::internal("a query result has no Id"))?
        .to_owned();
    let modified_at = raw.get("SystemModstamp").and_then(Json::as_str).and_then(rfc3339);
    let deleted = raw.get("IsDeleted").and_then(Json::as_bool).unwrap_or(false);
    let master = raw.get("MasterRecordId").and_then(Json::as_str).filter(|_| deleted);
    if let Some(survivor) = master {
        return Ok(merged_record(id, survivor, modified_at));
    }
    let values = fields
        .iter()
        .filter(|f| !matches!(f.as_str(), "Id" | "IsDeleted" | "MasterRecordId"))
        .map(|f| {
            // Relationship paths (`Account.Name`) come back nested.
            let mut value = raw.get(f.split('.').next().unwrap_or(f));
            for part in f.split('.').skip(1) {
                value = value.and_then(|v| v.get(part));
            }
            FieldValue::new(f.clone(), typed(value.unwrap_or(&Json::Null)))
        })
        .collect();
    Ok(CrmRecord { id, fields: values, modified_at, deleted })
}

/// A REST value as a typed value: Salesforce writes date-times as `2024-01-15T10:30:00.000+0000`
/// and dates as `2024-01-15`, so those shapes are read as such.
pub fn typed(json: &Json) -> Value {
    if let Json::String(s) = json {
        let bytes = s.as_bytes();
        let is_date = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && s.chars().filter(char::is_ascii_digit).count() == 8;
        if is_date {
            return Value::Date(s.clone());
        }
        if bytes.len() == 28
            && bytes[10] == b'T'
            && s.ends_with("+0000")
            && let Some(instant) = rfc3339(s)
        {
            return Value::DateTime(instant);
        }
    }
    Value::from_json(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let key = Keyset { modstamp: "2024-01-15T10:30:00.000+0000".to_owned(), id: "003000000000001AAA".to_owned() };
        let parsed = Keyset::parse(&key.encode()).unwrap();
        assert_eq!((parsed.modstamp.as_str(), parsed.id.as_str()), (key.modstamp.as_str(), key.id.as_str()));
        assert!(Keyset::parse("nonsense").is_err());
        assert!(Keyset::parse("2024-01-15T10:30:00Z|x' OR Name != '").is_err());
    }

    #[test]
    fn salesforce_shapes_become_typed_values() {
        assert!(
            matches!(typed(&Json::from("2024-01-15T10:30:00.000+0000")), Value::DateTime(s) if s == "2024-01-15T10:30:00.000Z")
        );
        assert!(matches!(typed(&Json::from("2024-01-15")), Value::Date(_)));
        assert!(matches!(typed(&Json::from("Acme")), Value::Text(_)));
        assert!(matches!(typed(&serde_json::json!(3.5)), Value::Number(n) if n == 3.5));
    }
}
