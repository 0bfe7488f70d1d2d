//! `pull`. Incremental pulls use the search API sorted by the last-modified property; search
//! stops at 10,000 results per query, so before `after` would cross that cap the cursor re-anchors:
//! a new query from the last timestamp seen, skipping the records already returned at exactly that
//! timestamp. Search never returns archived (deleted) records, so an incremental pull ends by
//! walking the archived list (`?archived=true`) for those archived since it started (or since the
//! host's last sweep, which the host paces: `crmhost.deletion_sweep`), returned as deleted. Full pulls walk the list endpoint with `after`; pulls by id use `batch/read`, then
//! `batch/read?archived=true` for the ids it did not find (a webhook's deletion names one). A
//! record that absorbed others in a merge lists them in `hs_merged_object_ids`; each comes back as a
//! tombstone naming the survivor (`merged_record`), and reading a merged-away id reads the survivor.

use crmhost_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::api;
use crate::objects::{Object, default_properties, object};

/// The ids merged into a record (`;`-separated): each gets a tombstone naming the survivor.
const MERGED_IDS: &str = "hs_merged_object_ids";

/// Search answers at most this many results per query.
const SEARCH_CAP: u64 = 10_000;

#[derive(Deserialize)]
struct HsObject {
    id: String,
    #[serde(default)]
    properties: Map<String, Json>,
    #[serde(rename = "updatedAt")]
    updated_at: Option<String>,
    #[serde(default)]
    archived: bool,
    #[serde(rename = "archivedAt")]
    archived_at: Option<String>,
}

#[derive(Deserialize)]
struct Listing {
    results: Vec<HsObject>,
    paging: Option<Paging>,
    /// Search only: how many records match in all.
    total: Option<u64>,
}

/// A listing's `paging`.
#[derive(Deserialize)]
pub(crate) struct Paging {
    pub next: Option<Next>,
}

/// Where the next page starts.
#[derive(Deserialize)]
pub(crate) struct Next {
    pub after: String,
}

/// Where an incremental pull stands.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct SearchCursor {
    /// Epoch ms the current query starts from (inclusive).
    anchor: i64,
    /// Offset within that query.
    after: u64,
    /// The latest timestamp returned so far, and the ids returned at exactly that timestamp.
    last: i64,
    seen: Vec<String>,
    /// Where the pull started (epoch ms): archived records are looked for from there. Absent in
    /// cursors from before archived records were pulled (the anchor stands in).
    #[serde(default)]
    since: Option<i64>,
}

/// Where the archived phase of an incremental pull stands.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct ArchivedCursor {
    /// Records archived at or after this instant (epoch ms) are returned.
    since: i64,
    /// The list's paging token.
    after: Option<String>,
}

/// One page, with the association fields asked for read after its properties.
pub fn pull(mut request: PullRequest) -> Result<Page> {
    let (associations, properties): (Vec<String>, Vec<String>) =
        std::mem::take(&mut request.fields).into_iter().partition(|f| crate::associations::is_association(f));
    request.fields = properties;
    let mut page = page_of_properties(&request)?;
    if !associations.is_empty() {
        crate::associations::fill(object(&request.entity)?.path, &associations, &mut page.records)?;
    }
    Ok(page)
}

/// One page of records with their properties.
fn page_of_properties(request: &PullRequest) -> Result<Page> {
    let object = object(&request.entity)?;
    let mut properties =
        if request.fields.is_empty() { default_properties(&request.entity) } else { request.fields.clone() };
    for needed in [object.modified, MERGED_IDS] {
        if !properties.iter().any(|p| p == needed) {
            properties.push(needed.to_owned());
        }
    }
    if !request.ids.is_empty() {
        return by_ids(&object, &properties, &request.ids);
    }
    let cursor = request.cursor.as_deref();
    match (cursor, &request.modified_since) {
        (Some(c), _) if c.starts_with("s:") => search(&object, &properties, request.limit, parse_search(c)?),
        (Some(c), _) if c.starts_with("l:") => list(&object, &properties, request.limit, Some(&c[2..])),
        (Some(c), _) if c.starts_with("a:") => archived(&object, &properties, parse_archived(c)?),
        (Some(c), _) => Err(AdapterError::invalid(format!("unrecognised cursor `{c}`"))),
        (None, Some(since)) => {
            let anchor = chrono::DateTime::parse_from_rfc3339(since)
                .map_err(|_| AdapterError::invalid(format!("modified-since `{since}` is not an RFC 3339 instant")))?
                .timestamp_millis();
            search(
                &object,
                &properties,
                request.limit,
                SearchCursor { anchor, last: anchor, since: Some(anchor), ..SearchCursor::default() },
            )
        }
        (None, None) => list(&object, &properties, request.limit, None),
    }
}

/// `count`: one search for a single record, reading its `total` (archived records are not searched).
pub fn count(request: CountRequest) -> Result<Option<u64>> {
    let object = object(&request.entity)?;
    let filters = match &request.modified_since {
        Some(since) => {
            let at = chrono::DateTime::parse_from_rfc3339(since)
                .map_err(|_| AdapterError::invalid(format!("modified-since `{since}` is not an RFC 3339 instant")))?
                .timestamp_millis();
            json!([{ "filters": [{ "propertyName": object.modified, "operator": "GTE", "value": at.to_string() }] }])
        }
        None => json!([]),
    };
    let body = json!({ "filterGroups": filters, "properties": ["hs_object_id"], "limit": 1 });
    let listing: Listing =
        api::post_json(&format!("/crm/v3/objects/{}/search", object.path), &body, "counting records")?;
    Ok(listing.total)
}

fn parse_search(cursor: &str) -> Result<SearchCursor> {
    serde_json::from_str(&cursor[2..]).map_err(|_| AdapterError::invalid(format!("unrecognised cursor `{cursor}`")))
}

fn parse_archived(cursor: &str) -> Result<ArchivedCursor> {
    serde_json::from_str(&cursor[2..]).map_err(|_| AdapterError::invalid(format!("unrecognised cursor `{cursor}`")))
}

/// The ids merged into a record.
fn merged_ids(raw: &HsObject) -> Vec<String> {
    let listed = raw.properties.get(MERGED_IDS).and_then(Json::as_str).unwrap_or_default();
    listed.split(';').map(str::trim).filter(|id| !id.is_empty() && *id != raw.id).map(str::to_owned).collect()
}

/// A record and, for each id merged into it, a tombstone naming it as the survivor (the host moves
/// a workspace record linked to a merged id to the survivor).
fn to_records(raw: HsObject, properties: &[String]) -> Vec<CrmRecord> {
    let merged = merged_ids(&raw);
    let record = to_record(raw, properties);
    let mut out: Vec<CrmRecord> =
        merged.into_iter().map(|id| merged_record(id, record.id.clone(), record.modified_at.clone())).collect();
    out.push(record);
    out
}

fn to_record(raw: HsObject, properties: &[String]) -> CrmRecord {
    let fields = properties
        .iter()
        .map(|p| FieldValue::new(p.clone(), raw.properties.get(p).map(Value::from_json).unwrap_or(Value::Null)))
        .collect();
    // An archived record last changed when it was archived.
    let modified_at = if raw.archived { raw.archived_at.or(raw.updated_at) } else { raw.updated_at };
    CrmRecord { id: raw.id, fields, modified_at, deleted: raw.archived }
}

fn modified_ms(raw: &HsObject, object: &Object) -> Option<i64> {
    let value = raw.properties.get(object.modified).and_then(Json::as_str).or(raw.updated_at.as_deref())?;
    value.parse::<i64>().ok().or_else(|| chrono::DateTime::parse_from_rfc3339(value).ok().map(|d| d.timestamp_millis()))
}

fn search(object: &Object, properties: &[String], limit: u32, mut cursor: SearchCursor) -> Result<Page> {
    let limit = if limit == 0 { 200 } else { limit.min(200) } as u64;
    // Re-anchor before the next page would cross the cap.
    if cursor.after + limit > SEARCH_CAP {
        let since = cursor.since.or(Some(cursor.anchor));
        cursor = SearchCursor { anchor: cursor.last, after: 0, last: cursor.last, seen: cursor.seen, since };
    }
    let body = json!({
        "filterGroups": [{ "filters": [{ "propertyName": object.modified, "operator": "GTE", "value": cursor.anchor.to_string() }] }],
        "sorts": [{ "propertyName": object.modified, "direction": "ASCENDING" }],
        "properties": properties,
        "limit": limit,
        "after": cursor.after.to_string(),
    });
    let listing: Listing =
        api::post_json(&format!("/crm/v3/objects/{}/search", object.path), &body, "searching records")?;
    let returned = listing.results.len() as u64;
    // At the cap HubSpot may stop offering a next page although more records match; `total` says so.
    let more = listing.paging.as_ref().and_then(|p| p.next.as_ref()).is_some()
        || listing.total.is_some_and(|total| total > cursor.after + returned);
    let mut records = Vec::new();
    for raw in listing.results {
        let at = modified_ms(&raw, object).unwrap_or(cursor.last);
        // After a re-anchor, the records at the anchor instant already returned come again.
        if at == cursor.last && cursor.seen.contains(&raw.id) {
            continue;
        }
        if at > cursor.last {
            cursor.last = at;
            cursor.seen.clear();
        }
        cursor.seen.push(raw.id.clone());
        records.extend(to_records(raw, properties));
    }
    let next_cursor = if more && returned > 0 {
        cursor.after += returned;
        format!("s:{}", serde_json::to_string(&cursor).unwrap_or_default())
    } else {
        // Search is done; the records archived since the pull began (or since the host's last
        // sweep) come next, unless the host says it swept recently.
        match deletion_sweep() {
            Sweep::Skip => return Ok(Page { records, next_cursor: None }),
            Sweep::From(since) => {
                let archived =
                    ArchivedCursor { since: since.unwrap_or(cursor.since.unwrap_or(cursor.anchor)), after: None };
                format!("a:{}", serde_json::to_string(&archived).unwrap_or_default())
            }
        }
    };
    Ok(Page { records, next_cursor: Some(next_cursor) })
}

/// What the host says about sweeping for deletions (the `crmhost.deletion_sweep` fact).
enum Sweep {
    /// Swept recently: no archived walk this time.
    Skip,
    /// Walk the archived list for records archived since this instant (epoch ms), or since the
    /// pull's own start when the host does not say.
    From(Option<i64>),
}

fn deletion_sweep() -> Sweep {
    match connection::get("crmhost.deletion_sweep").as_deref() {
        Some("skip") => Sweep::Skip,
        Some(at) => Sweep::From(chrono::DateTime::parse_from_rfc3339(at).ok().map(|t| t.timestamp_millis())),
        None => Sweep::From(None),
    }
}

/// One page of the archived list, keeping those archived since the pull began. The list is not
/// ordered by archive time, so every page is read (100 a request).
fn archived(object: &Object, properties: &[String], mut cursor: ArchivedCursor) -> Result<Page> {
    let mut request = Request::get(api::url(&format!("/crm/v3/objects/{}", object.path)))
        .query("archived", "true")
        .query("limit", "100")
        .query("properties", properties.join(","));
    if let Some(after) = &cursor.after {
        request = request.query("after", after);
    }
    let listing: Listing = api::send(request, "listing archived records")?.json()?;
    let since = cursor.since;
    let records = listing
        .results
        .into_iter()
        .filter(|raw| archived_ms(raw).is_none_or(|at| at >= since))
        .map(|raw| to_record(raw, properties))
        .collect();
    cursor.after = listing.paging.and_then(|p| p.next).map(|n| n.after);
    let next_cursor =
        cursor.after.is_some().then(|| format!("a:{}", serde_json::to_string(&cursor).unwrap_or_default()));
    Ok(Page { records, next_cursor })
}

fn archived_ms(raw: &HsObject) -> Option<i64> {
    let at = raw.archived_at.as_deref().or(raw.updated_at.as_deref())?;
    chrono::DateTime::parse_from_rfc3339(at).ok().map(|d| d.timestamp_millis())
}

fn list(object: &Object, properties: &[String], limit: u32, after: Option<&str>) -> Result<Page> {
    let limit = if limit == 0 { 100 } else { limit.min(100) };
    let mut request = Request::get(api::url(&format!("/crm/v3/objects/{}", object.path)))
        .query("limit", limit.to_string())
        .query("properties", properties.join(","));
    if let Some(after) = after {
        request = request.query("after", after);
    }
    let listing: Listing = api::send(request, "listing records")?.json()?;
    let next_cursor = listing.paging.and_then(|p| p.next).map(|n| format!("l:{}", n.after));
    Ok(Page { records: listing.results.into_iter().flat_map(|r| to_records(r, properties)).collect(), next_cursor })
}

fn by_ids(object: &Object, properties: &[String], ids: &[String]) -> Result<Page> {
    let mut records = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for chunk in ids.chunks(100) {
        // A merged-away id reads as the record it was merged into (once, however many name it).
        let mut live = batch_read(object, properties, chunk, false)?;
        live.retain(|r| seen.insert(r.id.clone()));
        let found = |id: &String| live.iter().any(|r| &r.id == id || merged_ids(r).contains(id));
        let missing: Vec<String> = chunk.iter().filter(|id| !found(id)).cloned().collect();
        records.extend(live.into_iter().flat_map(|r| to_records(r, properties)));
        if missing.is_empty() {
            continue;
        }
        let archived = batch_read(object, properties, &missing, true)?;
        // Neither live nor archived: gone for good (a GDPR delete, or archived past retention).
        let gone: Vec<CrmRecord> = missing
            .iter()
            .filter(|id| !archived.iter().any(|r| &r.id == *id))
            .map(|id| CrmRecord { id: id.clone(), fields: Vec::new(), modified_at: None, deleted: true })
            .collect();
        records.extend(archived.into_iter().map(|r| to_record(r, properties)));
        records.extend(gone);
    }
    Ok(Page { records, next_cursor: None })
}

fn batch_read(object: &Object, properties: &[String], ids: &[String], archived: bool) -> Result<Vec<HsObject>> {
    let inputs: Vec<Json> = ids.iter().map(|id| json!({ "id": id })).collect();
    let body = json!({ "properties": properties, "inputs": inputs });
    let path = format!("/crm/v3/objects/{}/batch/read{}", object.path, if archived { "?archived=true" } else { "" });
    let listing: Listing = api::post_json(&path, &body, "reading records")?;
    Ok(listing.results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_cursors_round_trip() {
        let cursor = SearchCursor { anchor: 1, after: 200, last: 5, seen: vec!["9".to_owned()], since: Some(1) };
        let text = format!("s:{}", serde_json::to_string(&cursor).unwrap());
        assert_eq!(parse_search(&text).unwrap(), cursor);
        assert!(parse_search("s:{nope").is_err());
        let old = parse_search(r#"s:{"anchor":1,"after":0,"last":1,"seen":[]}"#).unwrap();
        assert_eq!(old.since, None, "a cursor from before archived pulls still reads");
        let archived = ArchivedCursor { since: 7, after: Some("42".to_owned()) };
        let text = format!("a:{}", serde_json::to_string(&archived).unwrap());
        assert_eq!(parse_archived(&text).unwrap(), archived);
    }
}
