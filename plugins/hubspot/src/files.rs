//! Files attached to a record: HubSpot attaches files through notes, so the record's associated
//! notes (`/crm/v4/objects/{type}/{id}/associations/notes`) list file ids in `hs_attachment_ids`,
//! the Files API describes each, and a file's bytes come from a short-lived signed URL the host
//! fetches without the token.

use crmhost_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use crate::api;
use crate::objects::object;
use crate::pull::Paging;

#[derive(Deserialize)]
struct Associations {
    results: Vec<Association>,
    paging: Option<Paging>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Association {
    to_object_id: Json,
}

#[derive(Deserialize)]
struct Notes {
    results: Vec<NoteRow>,
}

#[derive(Deserialize)]
struct NoteRow {
    #[serde(default)]
    properties: Map<String, Json>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HsFile {
    id: String,
    name: Option<String>,
    extension: Option<String>,
    size: Option<u64>,
    updated_at: Option<String>,
    #[serde(default)]
    archived: bool,
}

#[derive(Deserialize)]
struct SignedUrl {
    url: String,
}

/// A HubSpot id: digits.
fn checked_id(id: &str, what: &str) -> Result<()> {
    if !id.is_empty() && id.len() <= 20 && id.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AdapterError::invalid(format!("`{id}` is not a HubSpot {what} id")))
    }
}

fn text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The ids of the notes associated with the record.
fn note_ids(path: &str, record_id: &str) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut request = Request::get(api::url(&format!("/crm/v4/objects/{path}/{record_id}/associations/notes")))
            .query("limit", "500");
        if let Some(after) = &after {
            request = request.query("after", after);
        }
        let page: Associations = api::send(request, "listing the record's notes")?.json()?;
        ids.extend(page.results.iter().filter_map(|a| text(&a.to_object_id)));
        after = page.paging.and_then(|p| p.next).map(|n| n.after);
        if after.is_none() {
            return Ok(ids);
        }
    }
}

/// The file ids the notes attach, in order, each once.
fn attachment_ids(notes: &[String]) -> Result<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for chunk in notes.chunks(100) {
        let inputs: Vec<Json> = chunk.iter().map(|id| json!({ "id": id })).collect();
        let body = json!({ "properties": ["hs_attachment_ids", "hs_timestamp"], "inputs": inputs });
        let read: Notes = api::post_json("/crm/v3/objects/notes/batch/read", &body, "reading the record's notes")?;
        for note in read.results {
            let listed = note.properties.get("hs_attachment_ids").and_then(Json::as_str).unwrap_or_default();
            for id in listed.split(';').map(str::trim).filter(|id| !id.is_empty()) {
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_owned());
                }
            }
        }
    }
    Ok(ids)
}

/// The record's files, newest first.
pub fn list_files(entity: &str, record_id: &str) -> Result<Vec<FileInfo>> {
    let object = object(entity)?;
    checked_id(record_id, "record")?;
    let notes = note_ids(object.path, record_id)?;
    let mut files = Vec::new();
    for id in attachment_ids(&notes)? {
        let response = api::send(Request::get(api::url(&format!("/files/v3/files/{id}"))), "reading a file");
        let file: HsFile = match response {
            Ok(response) => response.json()?,
            // A file deleted from the file manager leaves its id on the note.
            Err(AdapterError::NotFound(_)) => continue,
            Err(other) => return Err(other),
        };
        if !file.archived {
            files.push(file_info(file));
        }
    }
    files.sort_by(|a, b| b.modified_at.cmp(&a.modified_at));
    Ok(files)
}

fn file_info(file: HsFile) -> FileInfo {
    let base = file.name.unwrap_or_else(|| "file".to_owned());
    let name = match &file.extension {
        Some(ext) if !ext.is_empty() => format!("{base}.{ext}"),
        _ => base,
    };
    FileInfo {
        id: file.id,
        content_type: file.extension.as_deref().and_then(crmhost_sdk::files::mime_type_of).map(str::to_owned),
        name,
        size: file.size,
        modified_at: file.updated_at,
    }
}

/// A signed URL for the file, fetched without the token (it is pre-signed, on a CDN host).
pub fn download(entity: &str, record_id: &str, file_id: &str) -> Result<DownloadRequest> {
    object(entity)?;
    checked_id(record_id, "record")?;
    checked_id(file_id, "file")?;
    let signed: SignedUrl =
        api::send(Request::get(api::url(&format!("/files/v3/files/{file_id}/signed-url"))), "signing the file's URL")?
            .json()?;
    Ok(DownloadRequest { url: signed.url, headers: Vec::new(), with_credentials: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_manager_entry_becomes_a_named_typed_file() {
        let file: HsFile = serde_json::from_value(json!({
            "id": "901", "name": "Contract", "extension": "pdf", "size": 42, "updatedAt": "2026-12-01T10:00:00.000Z"
        }))
        .unwrap();
        let info = file_info(file);
        assert_eq!(
            (info.name.as_str(), info.content_type.as_deref(), info.size),
            ("Contract.pdf", Some("application/pdf"), Some(42))
        );
        assert!(checked_id("12a", "file").is_err() && checked_id("123", "file").is_ok());
    }
}
