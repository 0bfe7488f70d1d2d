//! Validating workspace records sent to the API: ids, field names, value types and sizes, with an
//! error per record so one bad record does not sink a batch.

use serde_json::{Map, Value as Json};

use crate::domain::{FieldName, RecordId};

/// Most fields one record may have.
pub const MAX_FIELDS: usize = 200;
/// Longest text value, in bytes.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

/// A valid record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordInput {
    /// Its id.
    pub id: RecordId,
    /// Its fields.
    pub fields: Map<String, Json>,
}

/// Checks one record (`{"id": …, "fields": {…}}`); the message says what is wrong.
pub fn parse_record(raw: &Json) -> Result<RecordInput, (Option<String>, String)> {
    let Json::Object(object) = raw else {
        return Err((None, "each record must be an object {\"id\": …, \"fields\": {…}}".to_owned()));
    };
    let raw_id = match object.get("id") {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(n)) => n.to_string(),
        _ => return Err((None, "`id` is required: a string of 1 to 128 characters".to_owned())),
    };
    let id = RecordId::parse(&raw_id).map_err(|e| (Some(raw_id.clone()), e))?;
    if let Some(extra) = object.keys().find(|k| *k != "id" && *k != "fields") {
        return Err((Some(raw_id), format!("unknown key `{extra}`: a record has `id` and `fields`")));
    }
    let fields = match object.get("fields") {
        Some(Json::Object(fields)) => fields,
        None => return Err((Some(raw_id), "`fields` is required: an object of field values".to_owned())),
        Some(_) => return Err((Some(raw_id), "`fields` must be an object of field values".to_owned())),
    };
    if fields.len() > MAX_FIELDS {
        return Err((Some(raw_id), format!("at most {MAX_FIELDS} fields per record, got {}", fields.len())));
    }
    for (name, value) in fields {
        FieldName::parse(name).map_err(|e| (Some(raw_id.clone()), e))?;
        match value {
            Json::String(s) if s.len() > MAX_TEXT_BYTES => {
                return Err((Some(raw_id), format!("field `{name}` is longer than {MAX_TEXT_BYTES} bytes")));
            }
            Json::Array(_) | Json::Object(_) => {
                return Err((Some(raw_id), format!("field `{name}` must be a string, number, boolean or null")));
            }
            _ => {}
        }
    }
    Ok(RecordInput { id, fields: fields.clone() })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn good_records_parse_and_bad_ones_say_why() {
        let ok = parse_record(&json!({"id": "c1", "fields": {"email": "a@x.com", "n": 2, "vip": true, "x": null}}));
        assert_eq!(ok.unwrap().id.as_str(), "c1");
        assert_eq!(parse_record(&json!({"id": 7, "fields": {}})).unwrap().id.as_str(), "7");
        let cases = [
            (json!("x"), "must be an object"),
            (json!({"fields": {}}), "`id` is required"),
            (json!({"id": "a b", "fields": {}}), "not a valid record id"),
            (json!({"id": "a"}), "`fields` is required"),
            (json!({"id": "a", "fields": [], }), "must be an object"),
            (json!({"id": "a", "fields": {}, "extra": 1}), "unknown key `extra`"),
            (json!({"id": "a", "fields": {"bad-name": 1}}), "not a valid field name"),
            (json!({"id": "a", "fields": {"tags": ["x"]}}), "must be a string, number, boolean or null"),
            (json!({"id": "a", "fields": {"big": "x".repeat(MAX_TEXT_BYTES + 1)}}), "longer than"),
        ];
        for (raw, expected) in cases {
            let (_, message) = parse_record(&raw).unwrap_err();
            assert!(message.contains(expected), "{raw}: expected `{expected}` in `{message}`");
        }
    }
}
