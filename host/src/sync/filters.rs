//! Record filters: which records of an entity sync, tested against workspace field names on both
//! sides (a workspace record before a push, a CRM record's mapped view before a pull). All of an
//! entity's filters must hold. A value may name the connected CRM user (`{"connected_user": true}`),
//! resolved to the connection's owner id when a run starts, so "only records I own" follows the
//! connection rather than a hard-coded id.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use super::values::{parse_instant, same_value};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    /// Equal (by meaning: `50` = `"50"`, case-insensitive for text).
    Eq,
    /// Not equal.
    Neq,
    /// Text containing the value, case-insensitive.
    Contains,
    /// Greater than (numbers, instants, else text).
    Gt,
    /// Less than.
    Lt,
    /// Equal to one of a list.
    In,
    /// Has a non-empty value (`value: false`: has none).
    Exists,
}

/// One filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// The workspace field.
    pub field: String,
    /// The comparison.
    pub op: FilterOp,
    /// What to compare with (a list for `in`, optional for `exists`). `{"connected_user": true}`
    /// (for `eq`, `neq`, or in an `in` list) stands for the connected CRM user's owner id.
    #[serde(default, skip_serializing_if = "Json::is_null")]
    #[schema(value_type = serde_json::Value)]
    pub value: Json,
}

impl Filter {
    /// Checks the value suits the operator; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let field = &self.field;
        if field.is_empty() {
            return Err("a filter needs a `field`".to_owned());
        }
        let scalar = |v: &Json| matches!(v, Json::String(_) | Json::Number(_) | Json::Bool(_)) || is_connected_user(v);
        if let Some(bad) = self.value_items().find(|v| v.is_object() && !is_connected_user(v)) {
            return Err(format!(
                "filter on `{field}`: {bad} is not a value; the only object value is {{\"connected_user\": true}}"
            ));
        }
        if self.names_connected_user() && !matches!(self.op, FilterOp::Eq | FilterOp::Neq | FilterOp::In) {
            return Err(format!("filter on `{field}`: {{\"connected_user\": true}} works with `eq`, `neq` and `in`"));
        }
        match self.op {
            FilterOp::Eq | FilterOp::Neq if !scalar(&self.value) => {
                Err(format!("filter on `{field}`: `{:?}` needs a text, number or boolean value", self.op))
            }
            FilterOp::Contains if !self.value.is_string() => {
                Err(format!("filter on `{field}`: `contains` needs a text value"))
            }
            FilterOp::Gt | FilterOp::Lt if !matches!(self.value, Json::String(_) | Json::Number(_)) => {
                Err(format!("filter on `{field}`: `gt`/`lt` need a number, instant or text value"))
            }
            FilterOp::In if !self.value.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(scalar)) => {
                Err(format!("filter on `{field}`: `in` needs a non-empty list of values"))
            }
            FilterOp::Exists if !(self.value.is_null() || self.value.is_boolean()) => {
                Err(format!("filter on `{field}`: `exists` takes true, false or no value"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the value names the connected CRM user.
    pub fn names_connected_user(&self) -> bool {
        self.value_items().any(is_connected_user)
    }

    /// The filter with `{"connected_user": true}` replaced by `owner_id`; an error (naming the
    /// field) when it names the connected user but the connection reported no owner id.
    pub fn resolved(&self, owner_id: Option<&str>) -> Result<Filter, String> {
        if !self.names_connected_user() {
            return Ok(self.clone());
        }
        let Some(owner_id) = owner_id else {
            return Err(format!(
                "filter on `{}` names the connected user, but the connection did not report its CRM user id; \
                 reconnect (HubSpot needs the `crm.objects.owners.read` scope) or filter on an explicit id",
                self.field
            ));
        };
        let owner = |v: &Json| if is_connected_user(v) { Json::String(owner_id.to_owned()) } else { v.clone() };
        let value = match &self.value {
            Json::Array(items) => Json::Array(items.iter().map(owner).collect()),
            one => owner(one),
        };
        Ok(Filter { value, ..self.clone() })
    }

    /// The value, or each element of a list.
    fn value_items(&self) -> impl Iterator<Item = &Json> {
        match &self.value {
            Json::Array(items) => items.iter(),
            one => std::slice::from_ref(one).iter(),
        }
    }

    /// Whether a record's fields pass.
    pub fn matches(&self, fields: &Map<String, Json>) -> bool {
        let actual = fields.get(&self.field).filter(|v| !is_empty(v));
        match self.op {
            FilterOp::Exists => actual.is_some() == self.value.as_bool().unwrap_or(true),
            FilterOp::Eq => actual.is_some_and(|a| equal(a, &self.value)),
            FilterOp::Neq => !actual.is_some_and(|a| equal(a, &self.value)),
            FilterOp::In => {
                actual.is_some_and(|a| self.value.as_array().is_some_and(|list| list.iter().any(|v| equal(a, v))))
            }
            FilterOp::Contains => actual.is_some_and(|a| {
                text(a).to_lowercase().contains(&self.value.as_str().unwrap_or_default().to_lowercase())
            }),
            FilterOp::Gt => actual.and_then(|a| compare(a, &self.value)) == Some(std::cmp::Ordering::Greater),
            FilterOp::Lt => actual.and_then(|a| compare(a, &self.value)) == Some(std::cmp::Ordering::Less),
        }
    }
}

/// Whether every filter passes.
pub fn all_match(filters: &[Filter], fields: &Map<String, Json>) -> bool {
    filters.iter().all(|f| f.matches(fields))
}

/// The placeholder for the connected CRM user.
fn is_connected_user(v: &Json) -> bool {
    *v == json!({"connected_user": true})
}

fn is_empty(v: &Json) -> bool {
    v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty())
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::String(x), Json::String(y)) => x.eq_ignore_ascii_case(y) || same_value(a, b),
        _ => same_value(a, b),
    }
}

fn number(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn compare(a: &Json, b: &Json) -> Option<std::cmp::Ordering> {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x.partial_cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_str().and_then(parse_instant), b.as_str().and_then(parse_instant)) {
        return Some(x.cmp(&y));
    }
    Some(text(a).cmp(&text(b)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(v: Json) -> Filter {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn each_operator_decides_by_meaning() {
        let rec = json!({"stage": "Customer", "score": "50", "email": "a@x.io", "since": "2024-05-01T10:00:00Z",
                         "blank": ""});
        let rec = rec.as_object().unwrap();
        let yes = [
            json!({"field": "stage", "op": "eq", "value": "customer"}),
            json!({"field": "score", "op": "eq", "value": 50}),
            json!({"field": "stage", "op": "neq", "value": "lead"}),
            json!({"field": "email", "op": "contains", "value": "@X.IO"}),
            json!({"field": "score", "op": "gt", "value": 9}),
            json!({"field": "since", "op": "lt", "value": "2024-05-02T00:00:00+02:00"}),
            json!({"field": "stage", "op": "in", "value": ["lead", "customer"]}),
            json!({"field": "email", "op": "exists"}),
            json!({"field": "blank", "op": "exists", "value": false}),
            json!({"field": "missing", "op": "neq", "value": "x"}),
        ];
        for f in yes {
            assert!(filter(f.clone()).matches(rec), "{f}");
        }
        let no = [
            json!({"field": "stage", "op": "eq", "value": "lead"}),
            json!({"field": "score", "op": "lt", "value": 9}),
            json!({"field": "missing", "op": "exists"}),
            json!({"field": "missing", "op": "eq", "value": "x"}),
            json!({"field": "stage", "op": "in", "value": ["lead"]}),
        ];
        for f in no {
            assert!(!filter(f.clone()).matches(rec), "{f}");
        }
    }

    #[test]
    fn values_must_suit_the_operator() {
        for bad in [
            json!({"field": "a", "op": "in", "value": []}),
            json!({"field": "a", "op": "eq"}),
            json!({"field": "a", "op": "contains", "value": 5}),
            json!({"field": "", "op": "exists"}),
            json!({"field": "a", "op": "exists", "value": "yes"}),
        ] {
            assert!(filter(bad.clone()).validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<Filter>(json!({"field": "a", "op": "like", "value": "x"})).is_err());
    }

    #[test]
    fn the_connected_user_resolves_to_the_owner_id() {
        let me = json!({"connected_user": true});
        for good in [
            json!({"field": "owner", "op": "eq", "value": me}),
            json!({"field": "owner", "op": "neq", "value": me}),
            json!({"field": "owner", "op": "in", "value": ["005X", me]}),
        ] {
            assert!(filter(good.clone()).validate().is_ok(), "{good}");
        }
        for bad in [
            json!({"field": "owner", "op": "eq", "value": {"connected_user": false}}),
            json!({"field": "owner", "op": "eq", "value": {"user": true}}),
            json!({"field": "owner", "op": "contains", "value": me}),
            json!({"field": "owner", "op": "gt", "value": me}),
            json!({"field": "owner", "op": "in", "value": [{"x": 1}]}),
        ] {
            assert!(filter(bad.clone()).validate().is_err(), "{bad}");
        }

        let mine = filter(json!({"field": "owner", "op": "in", "value": ["005X", me]}));
        let resolved = mine.resolved(Some("005ME")).unwrap();
        assert_eq!(resolved.value, json!(["005X", "005ME"]));
        assert!(resolved.matches(json!({"owner": "005me"}).as_object().unwrap()));
        assert!(!resolved.matches(json!({"owner": "005OTHER"}).as_object().unwrap()));
        let unknown = mine.resolved(None).unwrap_err();
        assert!(unknown.contains("`owner`") && unknown.contains("connected user"), "{unknown}");
        let plain = filter(json!({"field": "stage", "op": "eq", "value": "x"}));
        assert_eq!(plain.resolved(None).unwrap(), plain);
    }
}
