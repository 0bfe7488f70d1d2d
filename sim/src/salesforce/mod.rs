//! The Salesforce emulator: the OAuth 2.0 web-server flow under `/services/oauth2/`, the identity
//! URL, and the REST API under `/services/data/vXX.X/` for Contact, Lead, Account and Opportunity.
//!
//! One listener is both the login host and the instance: the token response's `instance_url`
//! points back at it, so a client that follows `instance_url` (as every Salesforce client does)
//! talks to the emulator without further configuration.

pub mod bulk;
pub mod bulk_v1;
pub mod errors;
pub mod index;
pub mod lookups;
pub mod notifications;
mod oauth_routes;
pub mod records;
mod rest;
pub mod schema;
pub mod soql;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::oauth::{OAuthClient, OAuthStore};
use crate::{Crm, Sim};
use errors::{SfError, invalid_session, request_limit_exceeded};
use records::ObjectStore;

/// The emulated org's id.
pub const ORG_ID: &str = "00D5g000004SIMAEAW";
/// The emulated user's id.
pub const USER_ID: &str = "0055g00000SIMUSAAW";
/// The emulated user's username.
pub const USERNAME: &str = "admin@crm-sim.example";
/// REST API versions served (`v31.0` to `v66.0`).
pub const VERSIONS: std::ops::RangeInclusive<u32> = 31..=66;

/// A SOQL cursor: the rows of a query not returned yet.
#[derive(Debug, Clone)]
pub struct QueryCursor {
    /// Projected rows, in order.
    pub rows: Vec<Value>,
    /// Total rows of the query.
    pub total: usize,
}

/// Salesforce's state.
#[derive(Debug)]
pub struct SalesforceState {
    /// `http://127.0.0.1:PORT`, the login host and `instance_url`.
    pub base_url: String,
    /// OAuth state.
    pub oauth: OAuthStore,
    /// Objects.
    pub objects: Vec<ObjectStore>,
    /// API requests counted against the daily allocation.
    pub api_usage: u64,
    /// Open query cursors by locator.
    pub cursors: BTreeMap<String, QueryCursor>,
    /// Change notifications to a subscriber (Apex callouts, Outbound Messages).
    pub notifications: notifications::NotificationState,
    /// File contents by ContentVersion id.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Bulk API 2.0 jobs and the Bulk allocations used.
    pub bulk: bulk::BulkState,
    next_document: u64,
}

impl SalesforceState {
    /// An empty org with `clients` registered.
    pub fn new(clients: &[OAuthClient]) -> Self {
        Self {
            base_url: String::new(),
            oauth: OAuthStore::new(clients),
            objects: schema::objects().into_iter().map(ObjectStore::new).collect(),
            api_usage: 0,
            cursors: BTreeMap::new(),
            notifications: notifications::NotificationState::default(),
            files: BTreeMap::new(),
            bulk: bulk::BulkState::default(),
            next_document: 0,
        }
    }

    /// Attaches a file to `record_id` as a Salesforce user uploading one does: a ContentDocument,
    /// its first ContentVersion (the latest) and a ContentDocumentLink to the record. Returns the
    /// version's id (what `…/VersionData` serves).
    pub fn attach_file(
        &mut self,
        record_id: &str,
        title: &str,
        extension: &str,
        bytes: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let attached_to_a_record = self.objects.iter().any(|o| o.live(record_id).is_some());
        if !attached_to_a_record {
            return None;
        }
        self.next_document += 1;
        let document = crate::ids::salesforce_id("069", self.next_document);
        let file_type = match extension.to_ascii_lowercase().as_str() {
            "pdf" => "PDF".to_owned(),
            "docx" => "WORD_X".to_owned(),
            "png" => "PNG".to_owned(),
            other => other.to_ascii_uppercase(),
        };
        let version_fields: BTreeMap<&'static str, Value> = [
            ("Title", Value::String(title.to_owned())),
            ("PathOnClient", Value::String(format!("{title}.{extension}"))),
            ("FileExtension", Value::String(extension.to_owned())),
            ("FileType", Value::String(file_type)),
            ("ContentSize", Value::from(bytes.len() as u64)),
            ("ContentDocumentId", Value::String(document.clone())),
            ("IsLatest", Value::Bool(true)),
            ("FirstPublishLocationId", Value::String(record_id.to_owned())),
        ]
        .into_iter()
        .collect();
        let version = self.object_mut("ContentVersion")?.insert_system(version_fields, now, USER_ID);
        let link_fields: BTreeMap<&'static str, Value> = [
            ("ContentDocumentId", Value::String(document)),
            ("LinkedEntityId", Value::String(record_id.to_owned())),
            ("ShareType", Value::String("V".to_owned())),
            ("Visibility", Value::String("AllUsers".to_owned())),
        ]
        .into_iter()
        .collect();
        self.object_mut("ContentDocumentLink")?.insert_system(link_fields, now, USER_ID);
        self.files.insert(version.clone(), bytes);
        Some(version)
    }

    /// An object by API name, case-insensitively.
    pub fn object(&self, name: &str) -> Option<&ObjectStore> {
        self.objects.iter().find(|o| o.schema.name.eq_ignore_ascii_case(name))
    }

    /// An object by API name, mutable.
    pub fn object_mut(&mut self, name: &str) -> Option<&mut ObjectStore> {
        self.objects.iter_mut().find(|o| o.schema.name.eq_ignore_ascii_case(name))
    }

    /// Live records of an object as API JSON (for test assertions).
    pub fn records(&self, object: &str) -> Vec<Value> {
        let Some(store) = self.object(object) else { return Vec::new() };
        store
            .records
            .values()
            .filter(|r| r.deleted_at.is_none())
            .map(|r| store.to_json(r, None, "62.0", USER_ID))
            .collect()
    }

    /// Creates `count` records of the object backing `entity`; `None` when no object does.
    pub fn seed(&mut self, entity: &str, count: usize, now: DateTime<Utc>) -> Option<usize> {
        let store = self.objects.iter_mut().find(|o| o.schema.entity == entity)?;
        let start = store.records.len();
        for i in start + 1..=start + count {
            let input = match store.schema.name {
                "Contact" => {
                    json!({"FirstName": format!("First{i}"), "LastName": format!("Last{i}"), "Email": format!("contact{i}@example.com"), "Title": "Buyer"})
                }
                "Lead" => {
                    json!({"FirstName": format!("Lead{i}"), "LastName": format!("Prospect{i}"), "Company": format!("Company {i}"), "Email": format!("lead{i}@example.com")})
                }
                "Account" => {
                    json!({"Name": format!("Account {i}"), "Website": format!("https://account{i}.example.com"), "Industry": "Technology"})
                }
                "Campaign" => json!({"Name": format!("Campaign {i}"), "Type": "Email", "Status": "In Progress"}),
                "Task" => {
                    json!({"Subject": format!("Email: hello {i}"), "TaskSubtype": "Email", "Status": "Completed"})
                }
                // Members need a contact or lead to name: none are seeded.
                "CampaignMember" => return Some(0),
                _ => {
                    json!({"Name": format!("Opportunity {i}"), "StageName": "Prospecting", "CloseDate": (now.date_naive() + chrono::Duration::days(30)).to_string(), "Amount": (i * 1000) as f64})
                }
            };
            let Value::Object(map) = input else { continue };
            if store.create(&map, now, USER_ID).is_err() {
                return Some(i - start - 1);
            }
        }
        Some(count)
    }

    /// Counts for `/__sim/state`.
    pub fn summary(&self) -> Value {
        let records: BTreeMap<&str, usize> = self
            .objects
            .iter()
            .map(|o| (o.schema.name, o.records.values().filter(|r| r.deleted_at.is_none()).count()))
            .collect();
        json!({
            "base_url": self.base_url,
            "records": records,
            "api_usage": self.api_usage,
            "access_tokens_issued": self.oauth.access_issued,
            "refresh_tokens_issued": self.oauth.refresh_issued,
        })
    }

    /// The `Sforce-Limit-Info` value.
    pub fn limit_info(&self, max: u64) -> String {
        format!("api-usage={}/{max}", self.api_usage)
    }
}

/// Checks the bearer token and counts the request against the daily allocation.
pub(crate) fn authorize(sim: &Sim, headers: &HeaderMap) -> Result<(), SfError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")))
        .ok_or_else(invalid_session)?;
    let now = sim.clock.now();
    let limit = sim.knobs().salesforce_daily_limit;
    let mut state = sim.salesforce();
    state.oauth.check_access(token, now).map_err(|_| invalid_session())?;
    if state.api_usage >= limit {
        return Err(request_limit_exceeded());
    }
    state.api_usage += 1;
    Ok(())
}

/// Parses `v62.0` into `62.0`, or 404s like Salesforce for unknown versions.
pub(crate) fn version(raw: &str) -> Result<String, SfError> {
    let number = raw.strip_prefix('v').ok_or_else(SfError::not_found)?;
    let (major, minor) = number.split_once('.').ok_or_else(SfError::not_found)?;
    let major: u32 = major.parse().map_err(|_| SfError::not_found())?;
    if minor != "0" || !VERSIONS.contains(&major) {
        return Err(SfError::not_found());
    }
    Ok(format!("{major}.0"))
}

/// The Salesforce router (API, OAuth, identity, admin).
pub fn router(sim: Arc<Sim>) -> Router {
    let api = rest::router(sim.clone())
        .merge(bulk::router(sim.clone()))
        .merge(bulk_v1::router(sim.clone()))
        .route_layer(axum::middleware::from_fn_with_state((sim.clone(), Crm::Salesforce), crate::server::faults));
    Router::new()
        .merge(api)
        .merge(oauth_routes::router(sim.clone()))
        .merge(crate::admin::router(sim.clone(), crate::Crm::Salesforce))
        // A route layer runs after routing, so the call is counted under its route pattern.
        .route_layer(axum::middleware::from_fn_with_state((sim, Crm::Salesforce), crate::server::count_calls))
        // Salesforce answers an unknown path in its own error shape.
        .fallback(|| async { errors::SfError::not_found() })
}
