//! The HubSpot emulator: OAuth (authorize page, v1 / v3 / date-versioned token endpoints, token
//! metadata, introspection, revocation), CRM v3 objects for contacts, companies, deals and email
//! engagements (list, get, create, update, archive, batch create/update/read/upsert/archive,
//! search), the properties API, associations v4, contact lists and their memberships (lists v3),
//! per-token rate limits with HubSpot's headers and exact 429 bodies.

pub mod associations;
pub mod attachments;
pub mod errors;
pub mod lists;
mod oauth_routes;
mod objects;
pub mod owners;
pub mod properties;
mod search;
pub mod webhooks;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::oauth::{OAuthClient, OAuthStore, TokenProblem};
use crate::{Crm, Sim};
use errors::HsError;
use properties::{OBJECT_TYPES, PropType, Property};

/// The emulated portal (hub) id.
pub const HUB_ID: u64 = 62515;
/// The emulated app id.
pub const APP_ID: u64 = 54321;
/// The emulated user id.
pub const USER_ID: u64 = 45678;
/// The emulated user's email.
pub const USER_EMAIL: &str = "admin@crm-sim.example";

/// One CRM record.
#[derive(Debug, Clone)]
pub struct HsRecord {
    /// Numeric id.
    pub id: u64,
    /// Property values (strings, as HubSpot keeps them).
    pub properties: BTreeMap<String, String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last modified.
    pub updated_at: DateTime<Utc>,
    /// Archived at.
    pub archived_at: Option<DateTime<Utc>>,
}

/// Records of one object type.
#[derive(Debug, Clone, Default)]
pub struct HsObjectStore {
    /// Records by id. Read freely; write through [`HsObjectStore::insert`] and
    /// [`HsObjectStore::edit`], which keep the email index current.
    pub records: BTreeMap<u64, HsRecord>,
    /// Ids merged away, each with the record it was merged into (reads follow it, as HubSpot's do).
    pub merged: BTreeMap<u64, u64>,
    /// Record ids by lower-cased `email`, so the uniqueness check on every contact write and
    /// look-ups by email do not scan the portal.
    by_email: HashMap<String, BTreeSet<u64>>,
}

impl HsObjectStore {
    /// Stores a new record.
    pub fn insert(&mut self, record: HsRecord) {
        Self::index(&mut self.by_email, &record);
        self.records.insert(record.id, record);
    }

    /// Changes a stored record (`None` when there is none), keeping the index current.
    pub fn edit<R>(&mut self, id: u64, change: impl FnOnce(&mut HsRecord) -> R) -> Option<R> {
        let record = self.records.get_mut(&id)?;
        Self::unindex(&mut self.by_email, record);
        let out = change(record);
        Self::index(&mut self.by_email, record);
        Some(out)
    }

    /// Ids whose email is `email`, case-insensitively (the caller checks they are live).
    pub fn ids_with_email(&self, email: &str) -> impl Iterator<Item = u64> + '_ {
        self.by_email.get(&email.to_lowercase()).into_iter().flatten().copied()
    }

    fn index(by_email: &mut HashMap<String, BTreeSet<u64>>, record: &HsRecord) {
        if let Some(email) = record.properties.get("email") {
            by_email.entry(email.to_lowercase()).or_default().insert(record.id);
        }
    }

    fn unindex(by_email: &mut HashMap<String, BTreeSet<u64>>, record: &HsRecord) {
        let Some(email) = record.properties.get("email").map(|e| e.to_lowercase()) else { return };
        if let Some(ids) = by_email.get_mut(&email) {
            ids.remove(&record.id);
            if ids.is_empty() {
                by_email.remove(&email);
            }
        }
    }

    /// The live record an id names now: itself, or the record it was merged into.
    pub fn current(&self, id: u64) -> Option<u64> {
        let mut id = id;
        // Merges chain (a survivor merged again); the chain is finite, the guard is for safety.
        for _ in 0..32 {
            if self.records.get(&id).is_some_and(|r| r.archived_at.is_none()) {
                return Some(id);
            }
            id = *self.merged.get(&id)?;
        }
        None
    }

    /// Merges `secondary` into `primary` as `POST …/merge` does: the primary keeps its values and
    /// takes the secondary's where it has none; the secondary's id (and any merged into it) is
    /// added to `hs_merged_object_ids` and from then on names the primary.
    pub fn merge(&mut self, primary: u64, secondary: u64, now: DateTime<Utc>) -> Result<(), &'static str> {
        if primary == secondary {
            return Err("a record cannot be merged into itself");
        }
        let live = |id: &u64| self.records.get(id).is_some_and(|r| r.archived_at.is_none());
        if !live(&primary) || !live(&secondary) {
            return Err("both records must exist and not be archived");
        }
        let Some(gone) = self.records.remove(&secondary) else { return Err("no such record") };
        Self::unindex(&mut self.by_email, &gone);
        let mut ids: Vec<String> = gone
            .properties
            .get("hs_merged_object_ids")
            .map(|s| s.split(';').filter(|x| !x.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        ids.push(secondary.to_string());
        self.edit(primary, |survivor| {
            for (name, value) in gone.properties {
                if name != "hs_merged_object_ids" {
                    survivor.properties.entry(name).or_insert(value);
                }
            }
            let merged = survivor.properties.entry("hs_merged_object_ids".to_owned()).or_default();
            for id in ids {
                if !merged.split(';').any(|x| x == id) {
                    if !merged.is_empty() {
                        merged.push(';');
                    }
                    merged.push_str(&id);
                }
            }
            survivor.updated_at = now;
        })
        .ok_or("no such record")?;
        self.merged.insert(secondary, primary);
        Ok(())
    }
}

/// HubSpot's state.
#[derive(Debug)]
pub struct HubspotState {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// OAuth state.
    pub oauth: OAuthStore,
    /// Records by object type (plural path name).
    pub objects: BTreeMap<&'static str, HsObjectStore>,
    next_id: u64,
    /// Request instants per token in the rolling window.
    windows: BTreeMap<String, VecDeque<DateTime<Utc>>>,
    search_windows: BTreeMap<String, VecDeque<DateTime<Utc>>>,
    /// Requests per account today (for the daily knob).
    daily: BTreeMap<String, u64>,
    /// Webhook events and deliveries.
    pub webhooks: webhooks::WebhookState,
    /// Notes attaching files to records, and the files.
    pub attachments: attachments::Attachments,
    /// Associations v4 between records, both ways.
    pub associations: associations::Associations,
    /// Lists (segments) and their members.
    pub lists: lists::Lists,
}

/// ISO 8601 with milliseconds and `Z`, as HubSpot writes instants.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Resolves `contacts`, `contact` or `0-1` to the plural path name.
pub fn object_type(raw: &str) -> Option<&'static str> {
    OBJECT_TYPES.iter().find(|(plural, singular, id, _)| raw == *plural || raw == *singular || raw == *id).map(|t| t.0)
}

/// The last-modified property of an object type.
pub fn modified_property(object: &str) -> &'static str {
    OBJECT_TYPES.iter().find(|t| t.0 == object).map(|t| t.3).unwrap_or("hs_lastmodifieddate")
}

impl HubspotState {
    /// An empty portal with `clients` registered.
    pub fn new(clients: &[OAuthClient]) -> Self {
        Self {
            base_url: String::new(),
            oauth: OAuthStore::new(clients),
            objects: OBJECT_TYPES.iter().map(|t| (t.0, HsObjectStore::default())).collect(),
            next_id: 100,
            windows: BTreeMap::new(),
            search_windows: BTreeMap::new(),
            daily: BTreeMap::new(),
            webhooks: webhooks::WebhookState::default(),
            attachments: attachments::Attachments::default(),
            associations: associations::Associations::default(),
            lists: lists::Lists::default(),
        }
    }

    /// A new record id (shared across types, as HubSpot ids are portal-unique in practice).
    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A property value as the API shows it, system properties included.
    pub fn value(object: &str, record: &HsRecord, name: &str) -> Option<String> {
        match name {
            "hs_object_id" => Some(record.id.to_string()),
            "createdate" => Some(iso(record.created_at)),
            n if n == modified_property(object) => Some(iso(record.updated_at)),
            n => record.properties.get(n).cloned(),
        }
    }

    /// A record as `SimplePublicObject` JSON with the requested (or default) properties.
    pub fn to_json(object: &str, record: &HsRecord, props: Option<&[String]>) -> Value {
        let names: Vec<String> = match props {
            Some(p) if !p.is_empty() => p.to_vec(),
            _ => properties::default_properties(object).iter().map(|s| (*s).to_owned()).collect(),
        };
        let mut values = Map::new();
        for name in names {
            values.insert(name.clone(), Self::value(object, record, &name).map(Value::String).unwrap_or(Value::Null));
        }
        let mut out = json!({
            "id": record.id.to_string(),
            "properties": values,
            "createdAt": iso(record.created_at),
            "updatedAt": iso(record.updated_at),
            "archived": record.archived_at.is_some(),
        });
        if let Some(at) = record.archived_at {
            out["archivedAt"] = json!(iso(at));
        }
        out
    }

    /// Live records of a type as JSON with every property (for test assertions).
    pub fn records(&self, object: &str) -> Vec<Value> {
        let Some(object) = object_type(object) else { return Vec::new() };
        let all: Vec<String> = properties::properties(object).iter().map(|p| p.name.to_owned()).collect();
        self.objects[object]
            .records
            .values()
            .filter(|r| r.archived_at.is_none())
            .map(|r| Self::to_json(object, r, Some(&all)))
            .collect()
    }

    /// Finds a live record by a unique property (case-insensitively for email).
    pub fn find_by(&self, object: &str, property: &str, value: &str) -> Option<u64> {
        let store = &self.objects[object];
        let matches = |r: &&HsRecord| {
            r.archived_at.is_none() && Self::value(object, r, property).is_some_and(|v| v.eq_ignore_ascii_case(value))
        };
        if property == "email" {
            return store.ids_with_email(value).filter_map(|id| store.records.get(&id)).find(matches).map(|r| r.id);
        }
        store.records.values().find(matches).map(|r| r.id)
    }

    /// Checks and normalises property values for a write; problems are per-property entries.
    pub fn validate(object: &str, input: &Map<String, Value>) -> Result<BTreeMap<String, String>, Vec<Value>> {
        let defs = properties::properties(object);
        let mut values = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, raw) in input {
            let Some(def) = defs.iter().find(|p| p.name == name) else {
                problems.push(errors::property_problem(
                    name,
                    "PROPERTY_DOESNT_EXIST",
                    &format!("Property \"{name}\" does not exist"),
                ));
                continue;
            };
            if def.read_only {
                problems.push(errors::property_problem(
                    name,
                    "READ_ONLY_VALUE",
                    &format!("\"{name}\" is a read only property; its value cannot be set."),
                ));
                continue;
            }
            let text = match raw {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            if let Err(problem) = check_value(def, &text) {
                problems.push(problem);
                continue;
            }
            values.insert(name.clone(), text);
        }
        if problems.is_empty() { Ok(values) } else { Err(problems) }
    }

    /// Creates `count` records of `entity` (`contact`, `company`, `deal`, `email`); `None` when unknown here.
    pub fn seed(&mut self, entity: &str, count: usize, now: DateTime<Utc>) -> Option<usize> {
        let object = object_type(entity)?;
        let start = self.objects[object].records.len();
        for i in start + 1..=start + count {
            let mut props: BTreeMap<String, String> = match object {
                "contacts" => [
                    ("email", format!("contact{i}@example.com")),
                    ("firstname", format!("First{i}")),
                    ("lastname", format!("Last{i}")),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
                "companies" => [("name", format!("Company {i}")), ("domain", format!("company{i}.example.com"))]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                "emails" => [
                    ("hs_timestamp", iso(now)),
                    ("hs_email_subject", format!("Email {i}")),
                    ("hs_email_direction", "EMAIL".to_owned()),
                    ("hs_email_status", "SENT".to_owned()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
                _ => [
                    ("dealname", format!("Deal {i}")),
                    ("amount", format!("{}", i * 1000)),
                    ("dealstage", "appointmentscheduled".to_owned()),
                    ("pipeline", "default".to_owned()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            };
            // Records belong to the account's owners in turn, as in a team's portal.
            props.insert("hubspot_owner_id".to_owned(), owners::OWNER_IDS[i % owners::OWNER_IDS.len()].to_owned());
            let id = self.new_id();
            let record = HsRecord { id, properties: props, created_at: now, updated_at: now, archived_at: None };
            if let Some(store) = self.objects.get_mut(object) {
                store.insert(record);
            }
        }
        Some(count)
    }

    /// Counts for `/__sim/state`.
    pub fn summary(&self) -> Value {
        let records: BTreeMap<&str, usize> = self
            .objects
            .iter()
            .map(|(k, v)| (*k, v.records.values().filter(|r| r.archived_at.is_none()).count()))
            .collect();
        json!({
            "base_url": self.base_url,
            "records": records,
            "access_tokens_issued": self.oauth.access_issued,
            "refresh_tokens_issued": self.oauth.refresh_issued,
        })
    }
}

/// Parses the instant forms HubSpot accepts: epoch milliseconds or ISO 8601.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(ms) = s.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

fn check_value(def: &Property, text: &str) -> Result<(), Value> {
    if text.is_empty() {
        return Ok(());
    }
    let problem = |code: &str, message: String| Err(errors::property_problem(def.name, code, &message));
    match def.kind {
        PropType::Number if text.parse::<f64>().is_err() => {
            problem("INVALID_INTEGER", format!("{text} was not a valid number."))
        }
        PropType::DateTime | PropType::Date if parse_instant(text).is_none() => {
            problem("INVALID_DATE", format!("{text} was not a valid date or timestamp."))
        }
        PropType::Enumeration if !def.options.contains(&text) => problem(
            "INVALID_OPTION",
            format!("{text} was not one of the allowed options: [{}]", def.options.join(", ")),
        ),
        PropType::Bool if text != "true" && text != "false" => {
            problem("INVALID_BOOLEAN", format!("{text} is not a valid boolean"))
        }
        PropType::Text if def.name == "email" && !crate::is_valid_email(text) => {
            problem("INVALID_EMAIL", format!("Email address {text} is invalid"))
        }
        _ => Ok(()),
    }
}

/// Response headers to add (rate-limit headers).
pub(crate) type ExtraHeaders = Vec<(&'static str, String)>;

/// Checks the bearer token and the rate limits; returns the token and the headers to add.
pub(crate) fn authorize(sim: &Sim, headers: &HeaderMap, search: bool) -> Result<(String, ExtraHeaders), HsError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| errors::invalid_authentication(sim))?
        .to_owned();
    let now = sim.clock.now();
    let knobs = sim.knobs();
    let mut state = sim.hubspot();
    match state.oauth.check_access(&token, now) {
        Ok(_) => {}
        Err(TokenProblem::Expired(secs)) => return Err(errors::expired_authentication(sim, secs)),
        Err(_) => return Err(errors::invalid_authentication(sim)),
    }
    // Limits count per installed account (the hub), not per token: every connection to one hub
    // shares them, as HubSpot's "per app per account" limits do.
    let account = HUB_ID.to_string();
    if let Some(daily) = knobs.hubspot_daily_limit {
        let used = state.daily.entry(account.clone()).or_default();
        if *used >= daily {
            return Err(errors::daily_limit(sim));
        }
        *used += 1;
    }
    if search {
        let window = state.search_windows.entry(token.clone()).or_default();
        while window.front().is_some_and(|t| now - *t >= chrono::Duration::seconds(1)) {
            window.pop_front();
        }
        if window.len() >= knobs.hubspot_search_per_second as usize {
            return Err(errors::secondly_limit(sim));
        }
        window.push_back(now);
        // The search API sends no rate-limit headers.
        return Ok((token, Vec::new()));
    }
    let limit = knobs.hubspot_ten_second_limit;
    let window = state.windows.entry(account.clone()).or_default();
    while window.front().is_some_and(|t| now - *t >= chrono::Duration::seconds(10)) {
        window.pop_front();
    }
    if window.len() >= limit as usize {
        return Err(errors::ten_secondly_limit(sim, limit));
    }
    window.push_back(now);
    let remaining = limit as usize - window.len();
    let mut out = vec![
        ("x-hubspot-ratelimit-interval-milliseconds", "10000".to_owned()),
        ("x-hubspot-ratelimit-max", limit.to_string()),
        ("x-hubspot-ratelimit-remaining", remaining.to_string()),
        ("x-hubspot-ratelimit-secondly", (limit / 10).max(1).to_string()),
        ("x-hubspot-ratelimit-secondly-remaining", ((limit / 10).max(1) as usize).saturating_sub(1).to_string()),
    ];
    if let Some(daily) = knobs.hubspot_daily_limit {
        let used = state.daily.get(&account).copied().unwrap_or(0);
        out.push(("x-hubspot-ratelimit-daily", daily.to_string()));
        out.push(("x-hubspot-ratelimit-daily-remaining", daily.saturating_sub(used).to_string()));
    }
    Ok((token, out))
}

/// Adds headers to a response.
pub(crate) fn with_headers(mut response: Response, headers: &[(&'static str, String)]) -> Response {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, v);
        }
    }
    response
}

/// The HubSpot router (API, OAuth, admin).
pub fn router(sim: Arc<Sim>) -> Router {
    let api = objects::router(sim.clone())
        .merge(search::router(sim.clone()))
        .merge(owners::router(sim.clone()))
        .merge(attachments::router(sim.clone()))
        .merge(associations::router(sim.clone()))
        .merge(lists::router(sim.clone()))
        .route_layer(axum::middleware::from_fn_with_state((sim.clone(), Crm::Hubspot), crate::server::faults));
    Router::new()
        .merge(api)
        .merge(oauth_routes::router(sim.clone()))
        .merge(crate::admin::router(sim.clone(), crate::Crm::Hubspot))
        .route_layer(axum::middleware::from_fn_with_state((sim.clone(), Crm::Hubspot), crate::server::count_calls))
        // HubSpot answers an unknown path in its own error shape.
        .fallback(move || {
            let sim = sim.clone();
            async move { errors::not_found(&sim) }
        })
}
