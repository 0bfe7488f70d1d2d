//! Files attached to records, as HubSpot keeps them: a note (engagement) associated with the
//! record lists file ids in `hs_attachment_ids`; the Files API describes each file and hands out a
//! short-lived signed URL, served here at `/__hubfs/{token}` (HubSpot's is a CDN host) without
//! a bearer token, as a pre-signed URL is.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::errors;
use super::objects::api;
use super::{HubspotState, iso, object_type};
use crate::Sim;

/// How long a signed URL works.
const SIGNED_FOR: chrono::Duration = chrono::Duration::minutes(10);

/// A file in the file manager.
#[derive(Debug, Clone)]
pub struct HsFile {
    /// Its id.
    pub id: u64,
    /// Its name, without the extension.
    pub name: String,
    /// Its extension.
    pub extension: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

/// A note: what attaches files to records.
#[derive(Debug, Clone)]
pub struct Note {
    /// Its id.
    pub id: u64,
    /// The files it attaches.
    pub attachment_ids: Vec<u64>,
    /// When it happened (`hs_timestamp`).
    pub timestamp: DateTime<Utc>,
    /// The records it is associated with: (object type, id).
    pub associated: Vec<(&'static str, u64)>,
}

/// Notes, files and the signed URLs handed out.
#[derive(Debug, Default)]
pub struct Attachments {
    /// Files by id.
    pub files: BTreeMap<u64, HsFile>,
    /// Notes by id.
    pub notes: BTreeMap<u64, Note>,
    signed: BTreeMap<String, (u64, DateTime<Utc>)>,
    /// For each fetch of a signed URL, whether it carried an `Authorization` header (it should not).
    pub signed_fetches: Vec<bool>,
}

impl HubspotState {
    /// Uploads a file and attaches it to a record with a note, as a user attaching a file in
    /// HubSpot does; the file's id. `None` if the record does not exist.
    pub fn attach_file(
        &mut self,
        object: &str,
        record_id: u64,
        name: &str,
        extension: &str,
        bytes: Vec<u8>,
        at: DateTime<Utc>,
    ) -> Option<u64> {
        let object = object_type(object)?;
        self.objects.get(object)?.current(record_id)?;
        let file_id = self.new_id();
        let note_id = self.new_id();
        let file =
            HsFile { id: file_id, name: name.to_owned(), extension: extension.to_owned(), bytes, created_at: at };
        self.attachments.files.insert(file_id, file);
        let note =
            Note { id: note_id, attachment_ids: vec![file_id], timestamp: at, associated: vec![(object, record_id)] };
        self.attachments.notes.insert(note_id, note);
        Some(file_id)
    }
}

pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/crm/v3/objects/notes/batch/read", post(notes_batch_read))
        .route("/files/v3/files/{id}", get(file))
        .route("/files/v3/files/{id}/signed-url", get(signed_url))
        .route("/__hubfs/{token}", get(signed_download))
        .with_state(sim)
}

/// `GET /crm/v4/objects/{object}/{id}/associations/notes`: the notes associated with a record
/// (the associations module routes reads to notes here).
pub(super) async fn associations(
    State(sim): State<Arc<Sim>>,
    Path((object, id, to)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&sim, &headers, || {
        let from = object_type(&object)
            .ok_or_else(|| errors::validation(&sim, format!("Unable to infer object type from: {object}")))?;
        let id: u64 = id.parse().map_err(|_| errors::not_found(&sim))?;
        let state = sim.hubspot();
        let id = state.objects[from].current(id).ok_or_else(|| errors::not_found(&sim))?;
        let results: Vec<Value> = if matches!(to.as_str(), "notes" | "note" | "0-46") {
            state
                .attachments
                .notes
                .values()
                .filter(|n| n.associated.contains(&(from, id)))
                .map(|n| json!({ "toObjectId": n.id, "associationTypes": [{ "category": "HUBSPOT_DEFINED", "typeId": 202, "label": null }] }))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Json(json!({ "results": results })).into_response())
    })
}

/// `POST /crm/v3/objects/notes/batch/read`.
async fn notes_batch_read(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    api(&sim, &headers, || {
        let body: Value = serde_json::from_slice(&body)
            .map_err(|e| errors::validation(&sim, format!("Invalid input JSON on line 1: {e}")))?;
        let inputs = body.get("inputs").and_then(Value::as_array).cloned().unwrap_or_default();
        if inputs.len() > 100 {
            return Err(errors::validation(&sim, "Batch input cannot exceed 100 items"));
        }
        let state = sim.hubspot();
        let started = iso(sim.clock.now());
        let results: Vec<Value> = inputs
            .iter()
            .filter_map(|i| i.get("id").and_then(|v| v.as_str().map(str::to_owned).or_else(|| Some(v.to_string()))))
            .filter_map(|id| id.parse::<u64>().ok())
            .filter_map(|id| state.attachments.notes.get(&id))
            .map(|n| {
                let ids: Vec<String> = n.attachment_ids.iter().map(u64::to_string).collect();
                json!({
                    "id": n.id.to_string(),
                    "properties": { "hs_attachment_ids": ids.join(";"), "hs_timestamp": iso(n.timestamp), "hs_object_id": n.id.to_string() },
                    "createdAt": iso(n.timestamp), "updatedAt": iso(n.timestamp), "archived": false,
                })
            })
            .collect();
        let done = json!({ "status": "COMPLETE", "results": results, "startedAt": started, "completedAt": iso(sim.clock.now()) });
        Ok(Json(done).into_response())
    })
}

fn file_json(f: &HsFile, base: &str) -> Value {
    json!({
        "id": f.id.to_string(), "name": f.name, "extension": f.extension, "type": "DOCUMENT",
        "size": f.bytes.len(), "createdAt": iso(f.created_at), "updatedAt": iso(f.created_at),
        "archived": false, "access": "PRIVATE", "isUsableInContent": false,
        "url": format!("{base}/hubfs/{}/{}.{}", super::HUB_ID, f.name, f.extension),
    })
}

/// `GET /files/v3/files/{id}`.
async fn file(State(sim): State<Arc<Sim>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        let state = sim.hubspot();
        let found = id
            .parse::<u64>()
            .ok()
            .and_then(|id| state.attachments.files.get(&id))
            .ok_or_else(|| errors::not_found(&sim))?;
        Ok(Json(file_json(found, &state.base_url)).into_response())
    })
}

/// `GET /files/v3/files/{id}/signed-url`: a URL that works for ten minutes without a token.
async fn signed_url(State(sim): State<Arc<Sim>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    api(&sim, &headers, || {
        let now = sim.clock.now();
        let mut state = sim.hubspot();
        let found = id.parse::<u64>().ok().and_then(|id| state.attachments.files.get(&id).cloned());
        let found = found.ok_or_else(|| errors::not_found(&sim))?;
        let token = hex::encode(rand::random::<[u8; 16]>());
        let expires = now + SIGNED_FOR;
        state.attachments.signed.insert(token.clone(), (found.id, expires));
        let url = format!("{}/__hubfs/{token}", state.base_url);
        Ok(Json(json!({
            "url": url, "expiresAt": iso(expires), "name": found.name, "extension": found.extension,
            "type": "DOCUMENT", "size": found.bytes.len(),
        }))
        .into_response())
    })
}

/// The signed URL itself: the bytes, no bearer token wanted; 403 once expired or unknown.
async fn signed_download(State(sim): State<Arc<Sim>>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let now = sim.clock.now();
    let mut state = sim.hubspot();
    state.attachments.signed_fetches.push(headers.contains_key(header::AUTHORIZATION));
    let file = state
        .attachments
        .signed
        .get(&token)
        .filter(|(_, expires)| *expires > now)
        .and_then(|(id, _)| state.attachments.files.get(id));
    match file {
        Some(f) => ([(header::CONTENT_TYPE, "application/octet-stream")], f.bytes.clone()).into_response(),
        None => (StatusCode::FORBIDDEN, "Request has expired").into_response(),
    }
}
