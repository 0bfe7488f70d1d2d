//! `POST /crm/v3/objects/{type}/search`: `filterGroups` (OR of ANDed filters) or top-level
//! `filters`, every operator, `sorts` as strings or objects, `properties`, `limit` up to 200,
//! numeric `after` offsets, the 10,000-result cap (400 beyond it) and the secondly rate limit.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::errors::{self, HsError};
use super::properties::{self, PropType};
use super::{HsRecord, HubspotState, authorize, object_type, parse_instant};
use crate::Sim;

/// Results one query can page through.
const RESULT_CAP: usize = 10_000;

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new().route("/crm/v3/objects/{object}/search", post(search)).with_state(sim)
}

/// A filter value as text (numbers arrive as JSON numbers or strings).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare(kind: Option<PropType>, record_value: &str, filter_value: &str) -> Option<Ordering> {
    match kind {
        Some(PropType::Number) => record_value.parse::<f64>().ok()?.partial_cmp(&filter_value.parse::<f64>().ok()?),
        Some(PropType::DateTime | PropType::Date) => {
            Some(parse_instant(record_value)?.cmp(&parse_instant(filter_value)?))
        }
        _ => Some(record_value.to_lowercase().cmp(&filter_value.to_lowercase())),
    }
}

/// A property value as a sort compares it: numbers and instants by value, text case-insensitively.
#[derive(Debug, PartialEq, PartialOrd)]
enum SortValue {
    Number(f64),
    Instant(chrono::DateTime<chrono::Utc>),
    Text(String),
}

impl SortValue {
    fn of(kind: Option<PropType>, value: &str) -> Self {
        let parsed = match kind {
            Some(PropType::Number) => value.parse().ok().map(Self::Number),
            Some(PropType::DateTime | PropType::Date) => parse_instant(value).map(Self::Instant),
            _ => None,
        };
        parsed.unwrap_or_else(|| Self::Text(value.to_lowercase()))
    }
}

fn matches(object: &str, record: &HsRecord, filter: &Value) -> Result<bool, String> {
    let name = filter.get("propertyName").and_then(Value::as_str).ok_or("a filter needs propertyName")?;
    let operator = filter.get("operator").and_then(Value::as_str).unwrap_or("EQ");
    let kind = properties::properties(object).iter().find(|p| p.name == name).map(|p| p.kind);
    let value = HubspotState::value(object, record, name);
    let wanted = filter.get("value").and_then(text);
    let cmp = |v: &str| wanted.as_deref().and_then(|w| compare(kind, v, w));
    Ok(match operator {
        "HAS_PROPERTY" => value.is_some(),
        "NOT_HAS_PROPERTY" => value.is_none(),
        "EQ" => value.as_deref().and_then(cmp) == Some(Ordering::Equal),
        "NEQ" => value.as_deref().and_then(cmp) != Some(Ordering::Equal),
        "LT" => value.as_deref().and_then(cmp) == Some(Ordering::Less),
        "LTE" => matches!(value.as_deref().and_then(cmp), Some(Ordering::Less | Ordering::Equal)),
        "GT" => value.as_deref().and_then(cmp) == Some(Ordering::Greater),
        "GTE" => matches!(value.as_deref().and_then(cmp), Some(Ordering::Greater | Ordering::Equal)),
        "BETWEEN" => {
            let high = filter.get("highValue").and_then(text).ok_or("BETWEEN needs highValue")?;
            value.as_deref().is_some_and(|v| {
                matches!(cmp(v), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(compare(kind, v, &high), Some(Ordering::Less | Ordering::Equal))
            })
        }
        "IN" | "NOT_IN" => {
            let values: Vec<String> = filter
                .get("values")
                .and_then(Value::as_array)
                .ok_or("IN needs values")?
                .iter()
                .filter_map(text)
                .collect();
            let found =
                value.as_deref().is_some_and(|v| values.iter().any(|w| compare(kind, v, w) == Some(Ordering::Equal)));
            if operator == "IN" { found } else { !found }
        }
        "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" => {
            let token = wanted.clone().unwrap_or_default().to_lowercase().replace('*', "");
            let found = value.as_deref().is_some_and(|v| {
                v.to_lowercase()
                    .split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.')
                    .any(|t| t == token || t.contains(&token))
            });
            if operator == "CONTAINS_TOKEN" { found } else { !found }
        }
        other => return Err(format!("Unknown operator {other}")),
    })
}

/// Parses `sorts`: `["prop"]`, `["-prop"]` or `[{"propertyName", "direction"}]`.
fn sort_keys(body: &Value) -> Vec<(String, bool)> {
    body.get("sorts")
        .and_then(Value::as_array)
        .map(|sorts| {
            sorts
                .iter()
                .filter_map(|s| match s {
                    Value::String(p) => Some(match p.strip_prefix('-') {
                        Some(p) => (p.to_owned(), true),
                        None => (p.clone(), false),
                    }),
                    Value::Object(o) => Some((
                        o.get("propertyName")?.as_str()?.to_owned(),
                        o.get("direction").and_then(Value::as_str) == Some("DESCENDING"),
                    )),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn search(State(sim): State<Arc<Sim>>, Path(object): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = authorize(&sim, &headers, true) {
        return e.into_response();
    }
    run(&sim, &object, &body).unwrap_or_else(IntoResponse::into_response)
}

fn run(sim: &Sim, raw_object: &str, body: &[u8]) -> Result<Response, HsError> {
    let object = object_type(raw_object)
        .ok_or_else(|| errors::validation(sim, format!("Unable to infer object type from: {raw_object}")))?;
    let body: Value =
        serde_json::from_slice(body).map_err(|e| errors::validation(sim, format!("Invalid input JSON: {e}")))?;
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(10) as usize;
    if limit > 200 {
        return Err(errors::validation(sim, format!("limit must be at most 200, was {limit}")));
    }
    let after: usize = body.get("after").and_then(text).and_then(|a| a.parse().ok()).unwrap_or(0);
    if after >= RESULT_CAP {
        return Err(errors::validation(
            sim,
            format!(
                "There was a problem with the request: a search can page through at most {RESULT_CAP} results (after={after})."
            ),
        ));
    }
    let groups: Vec<Vec<Value>> =
        match (body.get("filterGroups").and_then(Value::as_array), body.get("filters").and_then(Value::as_array)) {
            (Some(groups), _) => {
                groups.iter().map(|g| g.get("filters").and_then(Value::as_array).cloned().unwrap_or_default()).collect()
            }
            (None, Some(filters)) => vec![filters.clone()],
            (None, None) => Vec::new(),
        };
    let total_filters: usize = groups.iter().map(Vec::len).sum();
    if groups.len() > 5 || groups.iter().any(|g| g.len() > 10) || total_filters > 25 {
        return Err(errors::validation(
            sim,
            "Too many filters: at most 5 filterGroups, 10 filters per group and 25 filters in all.",
        ));
    }
    let props: Vec<String> = body
        .get("properties")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let query = body.get("query").and_then(Value::as_str).map(str::to_lowercase);
    let sorts = sort_keys(&body);

    let state = sim.hubspot();
    let mut hits: Vec<&HsRecord> = Vec::new();
    for record in state.objects[object].records.values().filter(|r| r.archived_at.is_none()) {
        let mut keep = groups.is_empty();
        for group in &groups {
            let mut all = true;
            for filter in group {
                if !matches(object, record, filter).map_err(|e| errors::validation(sim, e))? {
                    all = false;
                    break;
                }
            }
            if all {
                keep = true;
                break;
            }
        }
        if keep && let Some(q) = &query {
            keep = record.properties.values().any(|v| v.to_lowercase().contains(q.as_str()));
        }
        if keep {
            hits.push(record);
        }
    }
    let kinds = properties::properties(object);
    // Each hit's sort values are parsed once, not in every comparison.
    let kind_of = |name: &str| kinds.iter().find(|p| p.name == name).map(|p| p.kind);
    let mut keyed: Vec<(Vec<Option<SortValue>>, &HsRecord)> = hits
        .into_iter()
        .map(|r| {
            let key = sorts
                .iter()
                .map(|(name, _)| HubspotState::value(object, r, name).map(|v| SortValue::of(kind_of(name), &v)))
                .collect();
            (key, r)
        })
        .collect();
    keyed.sort_by(|(x, a), (y, b)| {
        for ((x, y), (_, descending)) in x.iter().zip(y).zip(&sorts) {
            let o = match (x, y) {
                (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            let o = if *descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.id.cmp(&b.id)
    });
    let hits: Vec<&HsRecord> = keyed.into_iter().map(|(_, r)| r).collect();
    let total = hits.len();
    let results: Vec<Value> = hits
        .iter()
        .skip(after)
        .take(limit.min(RESULT_CAP - after))
        .map(|r| HubspotState::to_json(object, r, Some(&props)))
        .collect();
    let next = after + results.len();
    let mut out = json!({ "total": total, "results": results });
    if next < total && next < RESULT_CAP {
        out["paging"] = json!({ "next": { "after": next.to_string() } });
    }
    Ok(Json(out).into_response())
}
