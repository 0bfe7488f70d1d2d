//! Contact lists and their memberships (lists v3), as the entities `list` and `list_membership`.
//!
//! A `list` is a contact list matched on its name: pushes create `MANUAL` lists or rename them,
//! pulls read every contact list (lists are few: a search of up to 500 a page; an incremental pull
//! keeps those updated since). A `list_membership` is one contact in one list, its id
//! `<listId>:<contactId>`: pushes add the contact (idempotent — HubSpot ignores a member added
//! twice, so a retried push finds it added, `updated`), moving a membership removes the old pair;
//! pulls walk each list's members in record-id order with when they joined. HubSpot keeps no
//! history of removals, so a membership removed in HubSpot is not seen by a pull; a deleted list is
//! not seen by one either (the lists search leaves deleted lists out).

use std::collections::BTreeMap;

use crmhost_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::api;

/// The contacts object type id lists are made of.
const CONTACTS: &str = "0-1";
/// Most lists one search answers.
const SEARCH_COUNT: u64 = 500;
/// Most memberships one page answers.
const MEMBERS_LIMIT: u32 = 250;
/// The processing types a list can have; every one is read.
const PROCESSING_TYPES: [&str; 3] = ["MANUAL", "SNAPSHOT", "DYNAMIC"];

/// The entity of lists.
pub const LIST: &str = "list";
/// The entity of list memberships.
pub const MEMBERSHIP: &str = "list_membership";

/// Whether an entity is served here rather than as a CRM object.
pub fn serves(entity: &str) -> bool {
    entity == LIST || entity == MEMBERSHIP
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HsList {
    list_id: String,
    name: String,
    #[serde(default)]
    object_type_id: String,
    #[serde(default)]
    processing_type: String,
    updated_at: Option<String>,
    #[serde(default)]
    additional_properties: BTreeMap<String, Json>,
}

#[derive(Deserialize)]
struct OneList {
    list: HsList,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Searched {
    #[serde(default)]
    lists: Vec<HsList>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    offset: u64,
    total: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    record_id: Json,
    membership_timestamp: Option<String>,
}

#[derive(Deserialize)]
struct Members {
    #[serde(default)]
    results: Vec<Member>,
    paging: Option<crate::pull::Paging>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordListMembership {
    list_id: Json,
    last_added_timestamp: Option<String>,
}

#[derive(Deserialize)]
struct RecordMemberships {
    #[serde(default)]
    results: Vec<RecordListMembership>,
}

/// A membership change's answer; older API versions spell the added ids `recordsIdsAdded`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Changed {
    #[serde(default, alias = "recordsIdsAdded")]
    record_ids_added: Vec<Json>,
    #[serde(default)]
    record_ids_missing: Vec<Json>,
}

/// Ids come as numbers or strings depending on the API version.
fn id_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---- fields ---------------------------------------------------------------------------------

fn field(name: &str, label: &str, field_type: FieldType, writable: bool, unique: bool) -> FieldInfo {
    FieldInfo {
        name: name.to_owned(),
        label: label.to_owned(),
        field_type,
        required: writable,
        writable,
        unique,
        options: Vec::new(),
    }
}

/// The fields of `list` and `list_membership`.
pub fn list_fields(entity: &str) -> Vec<FieldInfo> {
    if entity == LIST {
        let mut processing = field("processingType", "Processing type", FieldType::Picklist, false, false);
        processing.options = PROCESSING_TYPES.iter().map(|s| (*s).to_owned()).collect();
        vec![
            field("name", "List name", FieldType::Text, true, true),
            processing,
            field("size", "Members", FieldType::Number, false, false),
        ]
    } else {
        vec![
            field("listId", "List", FieldType::Reference, true, false),
            field("recordId", "Contact", FieldType::Reference, true, false),
            field("membershipTimestamp", "Joined", FieldType::DateTime, false, false),
        ]
    }
}

// ---- pull -----------------------------------------------------------------------------------

/// Where a pull of memberships stands: the lists still to read, and the page within the first.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct MembersCursor {
    lists: Vec<String>,
    after: Option<String>,
}

/// One page of `list` or `list_membership` records.
pub fn pull(request: &PullRequest) -> Result<Page> {
    let since = request.modified_since.as_deref().map(instant_ms).transpose()?;
    match (request.entity.as_str(), request.ids.is_empty()) {
        (LIST, false) => lists_by_id(&request.ids),
        (LIST, true) => list_page(request.cursor.as_deref(), since),
        (_, false) => memberships_by_id(&request.ids),
        (_, true) => membership_page(request, since),
    }
}

/// `count`: the lists search's total; memberships cannot be counted in one request.
pub fn count(request: &CountRequest) -> Result<Option<u64>> {
    if request.entity != LIST || request.modified_since.is_some() {
        return Ok(None);
    }
    let body = json!({ "processingTypes": PROCESSING_TYPES, "offset": 0, "count": 1 });
    let searched: Searched = api::post_json("/crm/v3/lists/search", &body, "counting lists")?;
    Ok(searched.total)
}

fn instant_ms(raw: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .map_err(|_| AdapterError::invalid(format!("modified-since `{raw}` is not an RFC 3339 instant")))
}

fn at_or_after(instant: Option<&str>, since: Option<i64>) -> bool {
    let Some(since) = since else { return true };
    instant.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).is_some_and(|t| t.timestamp_millis() >= since)
}

fn list_record(list: HsList) -> CrmRecord {
    let size = list.additional_properties.get("hs_list_size").map_or(Value::Null, Value::from_json);
    CrmRecord {
        id: list.list_id,
        fields: vec![
            FieldValue::new("name", Value::Text(list.name)),
            FieldValue::new("processingType", Value::Text(list.processing_type)),
            FieldValue::new("size", size),
        ],
        modified_at: list.updated_at,
        deleted: false,
    }
}

fn gone(id: &str) -> CrmRecord {
    CrmRecord { id: id.to_owned(), fields: Vec::new(), modified_at: None, deleted: true }
}

/// Whether an id is HubSpot's (digits): only those go into a request path.
fn numeric(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

fn lists_by_id(ids: &[String]) -> Result<Page> {
    let mut records = Vec::new();
    for id in ids {
        if !numeric(id) {
            return Err(AdapterError::invalid(format!("`{id}` is not a HubSpot list id")));
        }
        match api::send(Request::get(api::url(&format!("/crm/v3/lists/{id}"))), "reading a list") {
            Ok(response) => records.push(list_record(response.json::<OneList>()?.list)),
            Err(AdapterError::NotFound(_)) => records.push(gone(id)),
            Err(other) => return Err(other),
        }
    }
    Ok(Page { records, next_cursor: None })
}

/// One search page of contact lists (`o:<offset>` cursors).
fn search_lists(offset: u64) -> Result<Searched> {
    let body = json!({ "processingTypes": PROCESSING_TYPES, "offset": offset, "count": SEARCH_COUNT });
    api::post_json("/crm/v3/lists/search", &body, "searching lists")
}

fn parse_offset(cursor: &str) -> Result<u64> {
    cursor
        .strip_prefix("o:")
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| AdapterError::invalid(format!("unrecognised cursor `{cursor}`")))
}

fn list_page(cursor: Option<&str>, since: Option<i64>) -> Result<Page> {
    let offset = cursor.map(parse_offset).transpose()?.unwrap_or(0);
    let searched = search_lists(offset)?;
    let next_cursor = (searched.has_more && searched.offset > offset).then(|| format!("o:{}", searched.offset));
    let records = searched
        .lists
        .into_iter()
        .filter(|l| l.object_type_id == CONTACTS && at_or_after(l.updated_at.as_deref(), since))
        .map(list_record)
        .collect();
    Ok(Page { records, next_cursor })
}

/// Every contact list's id, in id order.
fn all_contact_lists() -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut offset = 0;
    loop {
        let searched = search_lists(offset)?;
        ids.extend(searched.lists.into_iter().filter(|l| l.object_type_id == CONTACTS).map(|l| l.list_id));
        if !searched.has_more || searched.offset <= offset {
            return Ok(ids);
        }
        offset = searched.offset;
    }
}

fn membership_id(list: &str, contact: &str) -> String {
    format!("{list}:{contact}")
}

fn split_membership(id: &str) -> Option<(&str, &str)> {
    let (list, contact) = id.split_once(':')?;
    (numeric(list) && numeric(contact)).then_some((list, contact))
}

fn membership_record(list: &str, contact: &str, joined: Option<String>) -> CrmRecord {
    CrmRecord {
        id: membership_id(list, contact),
        fields: vec![
            FieldValue::new("listId", Value::Text(list.to_owned())),
            FieldValue::new("recordId", Value::Text(contact.to_owned())),
            FieldValue::new("membershipTimestamp", joined.clone().map_or(Value::Null, Value::Text)),
        ],
        modified_at: joined,
        deleted: false,
    }
}

/// Memberships by id: the lists each contact is in (one request per contact).
fn memberships_by_id(ids: &[String]) -> Result<Page> {
    let mut records = Vec::new();
    for id in ids {
        let Some((list, contact)) = split_membership(id) else {
            return Err(AdapterError::invalid(format!("`{id}` is not a membership id (`<listId>:<contactId>`)")));
        };
        let path = format!("/crm/v3/lists/records/{CONTACTS}/{contact}/memberships");
        let found = match api::send(Request::get(api::url(&path)), "reading a contact's lists") {
            Ok(response) => response.json::<RecordMemberships>()?.results,
            Err(AdapterError::NotFound(_)) => Vec::new(),
            Err(other) => return Err(other),
        };
        match found.into_iter().find(|m| id_text(&m.list_id) == list) {
            Some(m) => records.push(membership_record(list, contact, m.last_added_timestamp)),
            None => records.push(gone(id)),
        }
    }
    Ok(Page { records, next_cursor: None })
}

/// A page of members of the first list still to read; lists whose page holds none since the
/// pull's instant are passed over within the call.
fn membership_page(request: &PullRequest, since: Option<i64>) -> Result<Page> {
    let mut cursor = match request.cursor.as_deref() {
        Some(raw) => raw
            .strip_prefix("m:")
            .and_then(|c| serde_json::from_str::<MembersCursor>(c).ok())
            .ok_or_else(|| AdapterError::invalid(format!("unrecognised cursor `{raw}`")))?,
        None => MembersCursor { lists: all_contact_lists()?, after: None },
    };
    let limit = if request.limit == 0 { MEMBERS_LIMIT } else { request.limit.min(MEMBERS_LIMIT) };
    while let Some(list) = cursor.lists.first().cloned() {
        if !numeric(&list) {
            return Err(AdapterError::invalid(format!("`{list}` in the cursor is not a HubSpot list id")));
        }
        let mut request =
            Request::get(api::url(&format!("/crm/v3/lists/{list}/memberships"))).query("limit", limit.to_string());
        if let Some(after) = &cursor.after {
            request = request.query("after", after);
        }
        let members: Members = match api::send(request, "reading list members") {
            Ok(response) => response.json()?,
            // Deleted since the pull began: nothing more to read from it.
            Err(AdapterError::NotFound(_)) => Members { results: Vec::new(), paging: None },
            Err(other) => return Err(other),
        };
        match members.paging.and_then(|p| p.next) {
            Some(next) => cursor.after = Some(next.after),
            None => {
                cursor.lists.remove(0);
                cursor.after = None;
            }
        }
        let records: Vec<CrmRecord> = members
            .results
            .into_iter()
            .filter(|m| at_or_after(m.membership_timestamp.as_deref(), since))
            .map(|m| membership_record(&list, &id_text(&m.record_id), m.membership_timestamp))
            .collect();
        if !records.is_empty() || cursor.lists.is_empty() {
            let next_cursor = (!cursor.lists.is_empty()).then(|| format!("m:{}", json!(cursor)));
            return Ok(Page { records, next_cursor });
        }
    }
    Ok(Page { records: Vec::new(), next_cursor: None })
}

// ---- push -----------------------------------------------------------------------------------

fn text_of(record: &PushRecord, name: &str) -> Option<String> {
    record
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .and_then(|f| f.value.to_text())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Pushes lists or memberships.
pub fn push(entity: &str, match_key: &str, records: Vec<PushRecord>) -> Result<Vec<PushOutcome>> {
    if entity == LIST { push_lists(match_key, &records) } else { push_memberships(&records) }
}

/// Lists: renamed by id, else found by name, else created as `MANUAL` contact lists.
fn push_lists(match_key: &str, records: &[PushRecord]) -> Result<Vec<PushOutcome>> {
    let matching = crmhost_sdk::matching::plan_matches(records, match_key);
    let mut outcomes: Vec<Option<PushOutcome>> = records.iter().map(|_| None).collect();
    for (i, err) in matching.rejected {
        outcomes[i] = Some(PushOutcome::Failed(err));
    }
    for (i, id) in matching.by_id {
        outcomes[i] = Some(match text_of(&records[i], "name") {
            Some(name) => rename(&id, &name),
            None => Ok(PushOutcome::Updated(id)),
        }?);
    }
    for (i, name) in matching.by_key {
        outcomes[i] = Some(find_or_create(&name)?);
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| PushOutcome::Failed(AdapterError::internal("no outcome for this record"))))
        .collect())
}

/// A record's own error fails it; limits and credentials stop the push.
fn per_record(result: Result<PushOutcome>) -> Result<PushOutcome> {
    match result {
        Err(err @ (AdapterError::RateLimited(_) | AdapterError::Unauthorized(_) | AdapterError::Forbidden(_))) => {
            Err(err)
        }
        Err(err) => Ok(PushOutcome::Failed(err)),
        ok => ok,
    }
}

fn rename(id: &str, name: &str) -> Result<PushOutcome> {
    per_record((|| {
        if !numeric(id) {
            return Err(AdapterError::invalid(format!("`{id}` is not a HubSpot list id")));
        }
        let request = Request::put(api::url(&format!("/crm/v3/lists/{id}/update-list-name"))).query("listName", name);
        api::send(request, "renaming a list")?;
        Ok(PushOutcome::Updated(id.to_owned()))
    })())
}

/// The contact list named `name` (names are unique per portal, compared case-insensitively).
fn find_by_name(name: &str) -> Result<Option<String>> {
    let mut offset = 0;
    loop {
        let body =
            json!({ "query": name, "processingTypes": PROCESSING_TYPES, "offset": offset, "count": SEARCH_COUNT });
        let searched: Searched = api::post_json("/crm/v3/lists/search", &body, "finding a list by name")?;
        if let Some(list) =
            searched.lists.iter().find(|l| l.object_type_id == CONTACTS && l.name.trim().eq_ignore_ascii_case(name))
        {
            return Ok(Some(list.list_id.clone()));
        }
        if !searched.has_more || searched.offset <= offset {
            return Ok(None);
        }
        offset = searched.offset;
    }
}

fn find_or_create(name: &str) -> Result<PushOutcome> {
    per_record((|| {
        if let Some(id) = find_by_name(name)? {
            return Ok(PushOutcome::Updated(id));
        }
        let body = json!({ "name": name, "objectTypeId": CONTACTS, "processingType": "MANUAL" });
        let created: OneList = api::post_json("/crm/v3/lists", &body, "creating a list")?;
        Ok(PushOutcome::Created(created.list.list_id))
    })())
}

/// One membership to write.
struct Wanted {
    index: usize,
    list: String,
    contact: String,
    /// The pair it stood for before, when that differs (removed once the new one is added).
    moved_from: Option<(String, String)>,
}

/// Memberships: each record's pair added to its list, grouped per list; a moved membership's old
/// pair removed after.
fn push_memberships(records: &[PushRecord]) -> Result<Vec<PushOutcome>> {
    let mut outcomes: Vec<Option<PushOutcome>> = records.iter().map(|_| None).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut by_list: BTreeMap<String, Vec<Wanted>> = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        match wanted(index, record) {
            Err(err) => outcomes[index] = Some(PushOutcome::Failed(err)),
            Ok(w) if !seen.insert(membership_id(&w.list, &w.contact)) => {
                let message = format!("contact `{}` joins list `{}` more than once in this batch", w.contact, w.list);
                outcomes[index] = Some(PushOutcome::Failed(AdapterError::duplicate(message, None)));
            }
            Ok(w) => by_list.entry(w.list.clone()).or_default().push(w),
        }
    }
    let mut moved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (list, wanted) in by_list {
        let contacts: Vec<&str> = wanted.iter().map(|w| w.contact.as_str()).collect();
        let request = Request::put(api::url(&format!("/crm/v3/lists/{list}/memberships/add"))).json(&contacts)?;
        let changed = match api::send(request, "adding list members") {
            Ok(response) => response.json::<Changed>()?,
            Err(err @ (AdapterError::RateLimited(_) | AdapterError::Unauthorized(_) | AdapterError::Forbidden(_))) => {
                return Err(err);
            }
            Err(err) => {
                let reason = match &err {
                    AdapterError::NotFound(_) => format!("no list `{list}` in HubSpot"),
                    other => other.message().to_owned(),
                };
                for w in &wanted {
                    outcomes[w.index] =
                        Some(PushOutcome::Failed(AdapterError::invalid_field("listId", reason.clone())));
                }
                continue;
            }
        };
        let missing: Vec<String> = changed.record_ids_missing.iter().map(id_text).collect();
        let added: Vec<String> = changed.record_ids_added.iter().map(id_text).collect();
        for w in wanted {
            let id = membership_id(&list, &w.contact);
            outcomes[w.index] = Some(if missing.contains(&w.contact) {
                let message = format!("no contact `{}` in HubSpot to add to list `{list}`", w.contact);
                PushOutcome::Failed(AdapterError::invalid_field("recordId", message))
            } else if added.contains(&w.contact) && records[w.index].crm_id.is_none() {
                PushOutcome::Created(id)
            } else {
                // Already a member (a retried push, or joined in HubSpot): the same membership.
                PushOutcome::Updated(id)
            });
            if let Some((old_list, old_contact)) = w.moved_from.filter(|_| !missing.contains(&w.contact)) {
                moved.entry(old_list).or_default().push(old_contact);
            }
        }
    }
    for (list, contacts) in moved {
        remove_members(&list, &contacts)?;
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| PushOutcome::Failed(AdapterError::internal("no outcome for this record"))))
        .collect())
}

/// The pair a record asks for: both ids numeric, from the fields or else its current id.
fn wanted(index: usize, record: &PushRecord) -> Result<Wanted> {
    let current = record.crm_id.as_deref().and_then(split_membership);
    let list = text_of(record, "listId").or_else(|| current.map(|c| c.0.to_owned()));
    let contact = text_of(record, "recordId").or_else(|| current.map(|c| c.1.to_owned()));
    let list = list
        .filter(|l| numeric(l))
        .ok_or_else(|| AdapterError::invalid_field("listId", "a membership needs the HubSpot id of its list"))?;
    let contact = contact
        .filter(|c| numeric(c))
        .ok_or_else(|| AdapterError::invalid_field("recordId", "a membership needs the HubSpot id of its contact"))?;
    let moved_from = current
        .filter(|(l, c)| (*l, *c) != (list.as_str(), contact.as_str()))
        .map(|(l, c)| (l.to_owned(), c.to_owned()));
    Ok(Wanted { index, list, contact, moved_from })
}

fn remove_members(list: &str, contacts: &[String]) -> Result<()> {
    let request = Request::put(api::url(&format!("/crm/v3/lists/{list}/memberships/remove"))).json(contacts)?;
    match api::send(request, "removing list members") {
        Ok(_) | Err(AdapterError::NotFound(_)) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Deletes lists, or removes memberships (grouped per list); gone already counts as deleted.
pub fn delete(entity: &str, ids: &[String]) -> Result<Vec<DeleteOutcome>> {
    if entity == LIST {
        let mut outcomes = Vec::with_capacity(ids.len());
        for id in ids {
            if !numeric(id) {
                outcomes.push(DeleteOutcome::Failed(AdapterError::invalid(format!("`{id}` is not a HubSpot list id"))));
                continue;
            }
            outcomes.push(
                match api::send(Request::delete(api::url(&format!("/crm/v3/lists/{id}"))), "deleting a list") {
                    Ok(_) | Err(AdapterError::NotFound(_)) => DeleteOutcome::Deleted,
                    Err(
                        err @ (AdapterError::RateLimited(_)
                        | AdapterError::Unauthorized(_)
                        | AdapterError::Forbidden(_)),
                    ) => {
                        return Err(err);
                    }
                    Err(other) => DeleteOutcome::Failed(other),
                },
            );
        }
        return Ok(outcomes);
    }
    let mut by_list: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for id in ids {
        if let Some((list, contact)) = split_membership(id) {
            by_list.entry(list).or_default().push(contact.to_owned());
        }
    }
    for (list, contacts) in by_list {
        remove_members(list, &contacts)?;
    }
    Ok(ids
        .iter()
        .map(|id| match split_membership(id) {
            Some(_) => DeleteOutcome::Deleted,
            None => DeleteOutcome::Failed(AdapterError::invalid(format!(
                "`{id}` is not a membership id (`<listId>:<contactId>`)"
            ))),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_ids_are_two_numeric_parts() {
        assert_eq!(split_membership("12:345"), Some(("12", "345")));
        for bad in ["12", "12:", ":3", "a:1", "1:2:3", "1:b"] {
            assert_eq!(split_membership(bad), None, "{bad}");
        }
    }

    #[test]
    fn both_spellings_of_added_ids_are_read() {
        let old: Changed = serde_json::from_str(r#"{"recordsIdsAdded":[1,2],"recordIdsMissing":[]}"#).unwrap();
        let new: Changed = serde_json::from_str(r#"{"recordIdsAdded":["1","2"],"recordIdsMissing":["9"]}"#).unwrap();
        assert_eq!(old.record_ids_added.iter().map(id_text).collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(new.record_ids_added.iter().map(id_text).collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(new.record_ids_missing.iter().map(id_text).collect::<Vec<_>>(), ["9"]);
    }

    #[test]
    fn a_moved_membership_remembers_its_old_pair() {
        let record = PushRecord {
            crm_id: Some("5:7".to_owned()),
            fields: vec![FieldValue::new("listId", Value::Text("6".to_owned()))],
        };
        let w = wanted(0, &record).unwrap();
        assert_eq!((w.list.as_str(), w.contact.as_str()), ("6", "7"));
        assert_eq!(w.moved_from, Some(("5".to_owned(), "7".to_owned())));
        let bare = PushRecord { crm_id: None, fields: vec![FieldValue::new("listId", Value::Text("6".to_owned()))] };
        assert!(matches!(wanted(0, &bare), Err(AdapterError::Invalid(_))));
    }
}
