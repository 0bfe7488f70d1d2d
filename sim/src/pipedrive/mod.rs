//! The Pipedrive emulator: OAuth (authorize page, token exchange and refresh with the client in
//! HTTP Basic auth and `api_domain` in the answer, revocation) and API tokens (`x-api-token`
//! header or `api_token` query); API v2 persons, organizations and deals (cursor-paginated lists
//! with `updated_since` and sorting, get, create, update, delete, exact and partial search); API v1
//! `users/me`, `recents` (changes since an instant, deletions included) and the field lists;
//! Pipedrive's error bodies and its burst limit per token with `x-ratelimit-*` headers.

pub mod errors;
mod items;
mod oauth_routes;
mod v1;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::oauth::{OAuthClient, OAuthStore, TokenProblem};
use crate::{Crm, Sim};
use errors::PdError;

/// The emulated company id.
pub const COMPANY_ID: u64 = 7_001;
/// The emulated (authenticated) user id.
pub const USER_ID: u64 = 9_001;
/// The emulated user's email.
pub const USER_EMAIL: &str = "owner@crm-sim.example";
/// The API token every emulator accepts (an operator can add more with `POST /__sim/pipedrive/api-tokens`).
pub const API_TOKEN: &str = "pd-sim-api-token-0123456789abcdef";
/// The burst window.
pub const WINDOW: chrono::Duration = chrono::Duration::seconds(2);

/// The kinds of record the emulator keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `persons`.
    Persons,
    /// `organizations`.
    Organizations,
    /// `deals`.
    Deals,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::Persons, Kind::Organizations, Kind::Deals];

    /// The path segment (`persons`).
    pub fn plural(self) -> &'static str {
        match self {
            Self::Persons => "persons",
            Self::Organizations => "organizations",
            Self::Deals => "deals",
        }
    }

    /// The item type in recents and search (`person`).
    pub fn singular(self) -> &'static str {
        match self {
            Self::Persons => "person",
            Self::Organizations => "organization",
            Self::Deals => "deal",
        }
    }

    /// How errors name it (`Person`).
    pub fn title(self) -> &'static str {
        match self {
            Self::Persons => "Person",
            Self::Organizations => "Organization",
            Self::Deals => "Deal",
        }
    }

    /// The field a record must have (`name`, or a deal's `title`).
    pub fn required(self) -> &'static str {
        match self {
            Self::Deals => "title",
            Self::Persons | Self::Organizations => "name",
        }
    }

    /// `persons`, `person`, `contact` → persons; the same for organizations (`company`) and deals.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "persons" | "person" | "contact" | "contacts" => Some(Self::Persons),
            "organizations" | "organization" | "company" | "companies" => Some(Self::Organizations),
            "deals" | "deal" => Some(Self::Deals),
            _ => None,
        }
    }
}

/// One record (person, organization or deal).
#[derive(Debug, Clone)]
pub struct PdRecord {
    /// Numeric id.
    pub id: u64,
    /// The writable fields, in the API's v2 shape (`name`, `emails`, `org_id`, `value`, …).
    pub fields: Map<String, Value>,
    /// Created.
    pub add_time: DateTime<Utc>,
    /// Last changed (deleting changes it too).
    pub update_time: DateTime<Utc>,
    /// Deleted (kept, as Pipedrive keeps deleted records for 30 days; lists leave them out).
    pub deleted: bool,
}

impl PdRecord {
    /// A text field.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// The values of a person's `emails` (or `phones`).
    pub fn values_of(&self, list: &str) -> Vec<String> {
        self.fields
            .get(list)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(|i| i["value"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

/// Pipedrive's state.
#[derive(Debug)]
pub struct PipedriveState {
    /// `http://127.0.0.1:PORT` (also the `api_domain` OAuth answers with).
    pub base_url: String,
    /// OAuth state.
    pub oauth: OAuthStore,
    /// API tokens that authenticate.
    pub api_tokens: BTreeSet<String>,
    /// Records by kind and id.
    pub records: BTreeMap<Kind, BTreeMap<u64, PdRecord>>,
    /// The last id given, per kind.
    last_ids: BTreeMap<Kind, u64>,
    /// Request instants per token in the burst window.
    windows: BTreeMap<String, VecDeque<DateTime<Utc>>>,
}

/// RFC 3339 with seconds and `Z`, as API v2 writes instants.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC), as API v1 writes and reads instants.
pub fn v1_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

impl PipedriveState {
    /// An empty company with `clients` registered.
    pub fn new(clients: &[OAuthClient]) -> Self {
        Self {
            base_url: String::new(),
            oauth: OAuthStore::new(clients),
            api_tokens: BTreeSet::from([API_TOKEN.to_owned()]),
            records: Kind::ALL.iter().map(|k| (*k, BTreeMap::new())).collect(),
            last_ids: BTreeMap::new(),
            windows: BTreeMap::new(),
        }
    }

    /// The next id of a kind (each kind counts from 1, as Pipedrive's do).
    fn new_id(&mut self, kind: Kind) -> u64 {
        let last = self.last_ids.entry(kind).or_insert(0);
        *last += 1;
        *last
    }

    /// Stores a new record of `kind` with `fields`; returns its id.
    pub fn create(&mut self, kind: Kind, fields: Map<String, Value>, now: DateTime<Utc>) -> u64 {
        let id = self.new_id(kind);
        let record = PdRecord { id, fields, add_time: now, update_time: now, deleted: false };
        self.records.entry(kind).or_default().insert(id, record);
        id
    }

    /// A live record.
    pub fn live(&self, kind: Kind, id: u64) -> Option<&PdRecord> {
        self.records.get(&kind)?.get(&id).filter(|r| !r.deleted)
    }

    /// Changes a live record as a user in Pipedrive would (its `update_time` moves); `false` when
    /// there is no live one.
    pub fn edit(
        &mut self,
        kind: Kind,
        id: u64,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> bool {
        match self.records.get_mut(&kind).and_then(|r| r.get_mut(&id)).filter(|r| !r.deleted) {
            Some(record) => {
                change(&mut record.fields);
                record.update_time = now;
                true
            }
            None => false,
        }
    }

    /// Marks a record deleted; `false` when there is no live one.
    pub fn delete(&mut self, kind: Kind, id: u64, now: DateTime<Utc>) -> bool {
        match self.records.get_mut(&kind).and_then(|r| r.get_mut(&id)).filter(|r| !r.deleted) {
            Some(record) => {
                record.deleted = true;
                record.update_time = now;
                true
            }
            None => false,
        }
    }

    /// A record as API v2 shows it.
    pub fn to_json(kind: Kind, record: &PdRecord) -> Value {
        let mut out = record.fields.clone();
        out.insert("id".to_owned(), json!(record.id));
        out.insert("add_time".to_owned(), json!(iso(record.add_time)));
        out.insert("update_time".to_owned(), json!(iso(record.update_time)));
        out.insert("is_deleted".to_owned(), json!(record.deleted));
        if kind == Kind::Deals {
            // A deleted deal's status reads `deleted` in every API version.
            if record.deleted {
                out.insert("status".to_owned(), json!("deleted"));
            }
        }
        Value::Object(out)
    }

    /// Live records of a kind as v2 JSON (for test assertions).
    pub fn live_json(&self, kind: Kind) -> Vec<Value> {
        self.records[&kind].values().filter(|r| !r.deleted).map(|r| Self::to_json(kind, r)).collect()
    }

    /// Live persons whose emails include `email` (case-insensitively).
    pub fn persons_with_email(&self, email: &str) -> Vec<u64> {
        self.records[&Kind::Persons]
            .values()
            .filter(|r| !r.deleted && r.values_of("emails").iter().any(|e| e.eq_ignore_ascii_case(email)))
            .map(|r| r.id)
            .collect()
    }

    /// Creates `count` records of `entity` (`contact`/`person`, `company`/`organization`, `deal`);
    /// `None` when the entity is not Pipedrive's.
    pub fn seed(&mut self, entity: &str, count: usize, now: DateTime<Utc>) -> Option<usize> {
        let kind = Kind::parse(entity)?;
        let start = self.records[&kind].len();
        for i in start + 1..=start + count {
            let fields = match kind {
                Kind::Persons => json!({
                    "name": format!("First{i} Last{i}"), "first_name": format!("First{i}"), "last_name": format!("Last{i}"),
                    "emails": [{ "value": format!("contact{i}@example.com"), "primary": true, "label": "work" }],
                    "phones": [], "owner_id": USER_ID, "org_id": null, "visible_to": 3, "label_ids": [], "custom_fields": {},
                }),
                Kind::Organizations => json!({
                    "name": format!("Company {i}"), "owner_id": USER_ID, "address": null, "visible_to": 3,
                    "label_ids": [], "custom_fields": {},
                }),
                Kind::Deals => json!({
                    "title": format!("Deal {i}"), "value": (i * 1000) as f64, "currency": "USD", "status": "open",
                    "stage_id": 1, "pipeline_id": 1, "person_id": null, "org_id": null, "owner_id": USER_ID,
                    "expected_close_date": null, "probability": null, "visible_to": 3, "label_ids": [], "custom_fields": {},
                }),
            };
            if let Value::Object(fields) = fields {
                self.create(kind, fields, now);
            }
        }
        Some(count)
    }

    /// Counts for `/__sim/state`.
    pub fn summary(&self) -> Value {
        let records: BTreeMap<&str, usize> =
            self.records.iter().map(|(k, v)| (k.plural(), v.values().filter(|r| !r.deleted).count())).collect();
        json!({
            "base_url": self.base_url,
            "records": records,
            "access_tokens_issued": self.oauth.access_issued,
            "refresh_tokens_issued": self.oauth.refresh_issued,
        })
    }
}

/// Response headers to add (the rate-limit headers).
pub(crate) type ExtraHeaders = Vec<(&'static str, String)>;

/// The credential a request carries: an OAuth access token (`Authorization: Bearer`) or an API
/// token (`x-api-token`, or `api_token` in the query).
fn credential(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(bearer) = header(axum::http::header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer ")) {
        return Some(bearer.trim().to_owned());
    }
    if let Some(token) = header("x-api-token") {
        return Some(token.trim().to_owned());
    }
    let query = query?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "api_token").map(|(_, v)| v.into_owned())
}

/// Checks the request's credential and the burst limit; returns the rate-limit headers to add.
pub(crate) fn authorize(sim: &Sim, headers: &HeaderMap, query: Option<&str>) -> Result<ExtraHeaders, PdError> {
    let token = credential(headers, query).ok_or_else(|| errors::unauthorized("unauthorized access"))?;
    let now = sim.clock.now();
    let limit = sim.knobs().pipedrive_two_second_limit;
    let mut state = sim.pipedrive();
    if !state.api_tokens.contains(&token) {
        match state.oauth.check_access(&token, now) {
            Ok(_) => {}
            Err(TokenProblem::Expired(_)) => return Err(errors::unauthorized("Access token expired")),
            Err(_) => return Err(errors::unauthorized("unauthorized access")),
        }
    }
    let window = state.windows.entry(token).or_default();
    while window.front().is_some_and(|t| now - *t >= WINDOW) {
        window.pop_front();
    }
    // Seconds until the oldest request in the window leaves it (the window resets by then).
    let reset = |window: &VecDeque<DateTime<Utc>>| {
        let left_ms = window.front().map_or(WINDOW.num_milliseconds(), |t| (*t + WINDOW - now).num_milliseconds());
        // Whole seconds, rounded up.
        (left_ms.max(1) + 999) / 1000
    };
    if window.len() >= limit as usize {
        let headers = vec![
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-reset", reset(window).to_string()),
        ];
        return Err(errors::over_limit(headers));
    }
    window.push_back(now);
    Ok(vec![
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", (limit as usize - window.len()).to_string()),
        ("x-ratelimit-reset", reset(window).to_string()),
    ])
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

/// `{"success": true, "data": …, "additional_data": …}` with the rate-limit headers.
pub(crate) fn ok(data: Value, additional: Value, headers: &[(&'static str, String)]) -> Response {
    use axum::response::IntoResponse;
    let body = json!({ "success": true, "data": data, "additional_data": additional });
    with_headers(axum::Json(body).into_response(), headers)
}

/// The Pipedrive router (API v1 and v2, OAuth, admin).
pub fn router(sim: Arc<Sim>) -> Router {
    let api = items::router(sim.clone())
        .merge(v1::router(sim.clone()))
        .route_layer(axum::middleware::from_fn_with_state((sim.clone(), Crm::Pipedrive), crate::server::faults));
    Router::new()
        .merge(api)
        .merge(oauth_routes::router(sim.clone()))
        .merge(crate::admin::router(sim.clone(), crate::Crm::Pipedrive))
        .route_layer(axum::middleware::from_fn_with_state((sim, Crm::Pipedrive), crate::server::count_calls))
        .fallback(|| async { axum::response::IntoResponse::into_response(errors::unknown_path()) })
}
