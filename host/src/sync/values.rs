//! Values between the two sides: workspace records hold JSON scalars, plugins speak the contract's
//! typed values. Also what "the same value" means across them (`50` and `"50"`, an instant written
//! two ways, an empty string and null), and reading a CRM's modification time.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Number, Value as Json};

use crate::plugins::bindings::{FieldValue, Value};

/// A workspace value as the contract's typed value.
pub fn to_crm_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => n.as_f64().map(Value::Number).unwrap_or(Value::Null),
        Json::String(s) => Value::Text(s.clone()),
        // Records never hold these (input validation refuses them); send their text rather than lose them.
        other => Value::Text(other.to_string()),
    }
}

/// A typed value from a plugin as a workspace value: whole numbers become JSON integers.
pub fn to_app_value(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Json::Number(Number::from(*n as i64)),
        Value::Number(n) => Number::from_f64(*n).map(Json::Number).unwrap_or(Json::Null),
        Value::Text(s) | Value::DateTime(s) | Value::Date(s) => Json::String(s.clone()),
    }
}

/// A plugin's record fields by name.
pub fn fields_by_name(fields: &[FieldValue]) -> Map<String, Json> {
    fields.iter().map(|f| (f.name.clone(), to_app_value(&f.value))).collect()
}

/// An instant as CRMs write them: RFC 3339, Salesforce's `…+0000`, or a date (midnight UTC).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    if s.len() == 10
        && let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
    {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    None
}

fn as_number(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn is_blank(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Whether two values mean the same thing. CRMs send numbers and booleans as text (HubSpot),
/// instants in several spellings, and empty strings for unset fields.
pub fn same_value(a: &Json, b: &Json) -> bool {
    if a == b {
        return true;
    }
    if is_blank(a) || is_blank(b) {
        return is_blank(a) && is_blank(b);
    }
    match (a, b) {
        (Json::Number(_), _) | (_, Json::Number(_)) => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()),
            _ => false,
        },
        (Json::Bool(x), Json::String(s)) | (Json::String(s), Json::Bool(x)) => s.eq_ignore_ascii_case(&x.to_string()),
        (Json::String(x), Json::String(y)) => {
            // Only strings that look like instants are compared as instants.
            let looks_like_time = |s: &str| s.len() >= 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
            looks_like_time(x)
                && looks_like_time(y)
                && matches!((parse_instant(x), parse_instant(y)), (Some(p), Some(q)) if p == q)
        }
        _ => false,
    }
}

/// A value from the CRM in the shape the workspace used before: `"50"` stays a number where the
/// record held a number, `"true"` a boolean where it held a boolean.
pub fn coerce_like(value: Json, previous: Option<&Json>) -> Json {
    match (previous, &value) {
        (Some(Json::Number(_)), Json::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => Json::Number(i.into()),
            Err(_) => s.trim().parse::<f64>().ok().and_then(Number::from_f64).map(Json::Number).unwrap_or(value),
        },
        (Some(Json::Bool(_)), Json::String(s)) if s.eq_ignore_ascii_case("true") => Json::Bool(true),
        (Some(Json::Bool(_)), Json::String(s)) if s.eq_ignore_ascii_case("false") => Json::Bool(false),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_booleans_blanks_and_instants_compare_by_meaning() {
        assert!(same_value(&json!(50), &json!("50")));
        assert!(same_value(&json!(1000.5), &json!("1000.5")));
        assert!(!same_value(&json!(50), &json!("51")));
        assert!(same_value(&json!(true), &json!("true")));
        assert!(same_value(&json!(null), &json!("")));
        assert!(!same_value(&json!(null), &json!("x")));
        assert!(same_value(&json!("2026-11-29T10:00:00.000+0000"), &json!("2026-11-29T10:00:00Z")));
        assert!(same_value(&json!("2026-11-29"), &json!("2026-11-29T00:00:00.000Z")));
        assert!(!same_value(&json!("2026-11-29"), &json!("2026-11-30")));
        assert!(!same_value(&json!("Ann"), &json!("ann")), "text compares exactly");
    }

    #[test]
    fn crm_text_takes_the_workspace_type() {
        assert_eq!(coerce_like(json!("50"), Some(&json!(1))), json!(50));
        assert_eq!(coerce_like(json!("2.5"), Some(&json!(1))), json!(2.5));
        assert_eq!(coerce_like(json!("true"), Some(&json!(false))), json!(true));
        assert_eq!(coerce_like(json!("abc"), Some(&json!(1))), json!("abc"));
        assert_eq!(coerce_like(json!("50"), None), json!("50"));
    }

    #[test]
    fn typed_values_round_trip_through_json() {
        assert_eq!(to_app_value(&Value::Number(50.0)), json!(50));
        assert_eq!(to_app_value(&Value::Number(0.5)), json!(0.5));
        assert_eq!(to_app_value(&Value::Date("2026-01-02".to_owned())), json!("2026-01-02"));
        assert!(matches!(to_crm_value(&json!("x")), Value::Text(s) if s == "x"));
        assert!(matches!(to_crm_value(&json!(2)), Value::Number(n) if n == 2.0));
    }

    #[test]
    fn crm_instants_parse_in_their_spellings() {
        let t = parse_instant("2026-11-29T10:00:00.000+0000").unwrap();
        assert_eq!(t, parse_instant("2026-11-29T10:00:00Z").unwrap());
        assert!(parse_instant("yesterday").is_none());
    }
}
