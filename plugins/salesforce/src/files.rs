//! Files attached to a record (Salesforce Files): the record's `ContentDocumentLink`s name its
//! documents, whose latest `ContentVersion`s are the files; a version's bytes are at
//! `sobjects/ContentVersion/{id}/VersionData`, which the host fetches itself.

use crmhost_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::api::Api;
use crate::objects::sobject;
use crate::pull::encode_query;
use crate::soql::quote;

#[derive(Deserialize)]
struct Rows {
    records: Vec<Map<String, Json>>,
}

/// A Salesforce id: 15 or 18 letters and digits.
fn checked_id(id: &str, what: &str) -> Result<()> {
    if matches!(id.len(), 15 | 18) && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(AdapterError::invalid(format!("`{id}` is not a Salesforce {what} id")))
    }
}

fn query(api: &Api, soql: &str, what: &str) -> Result<Vec<Map<String, Json>>> {
    let rows: Rows = api.get_json(format!("{}?q={}", api.url("/query"), encode_query(soql)), what)?;
    Ok(rows.records)
}

/// The record's files, newest first.
pub fn list_files(entity: &str, record_id: &str) -> Result<Vec<FileInfo>> {
    sobject(entity)?;
    checked_id(record_id, "record")?;
    let api = Api::from_connection()?;
    let links = query(
        &api,
        &format!("SELECT ContentDocumentId FROM ContentDocumentLink WHERE LinkedEntityId = {}", quote(record_id)),
        "listing the record's files",
    )?;
    let documents: Vec<String> =
        links.iter().filter_map(|l| l.get("ContentDocumentId").and_then(Json::as_str)).map(quote).collect();
    if documents.is_empty() {
        return Ok(Vec::new());
    }
    let versions = query(
        &api,
        &format!(
            "SELECT Id, Title, FileExtension, ContentSize, FileType, LastModifiedDate FROM ContentVersion \
             WHERE ContentDocumentId IN ({}) AND IsLatest = true ORDER BY LastModifiedDate DESC",
            documents.join(", ")
        ),
        "reading the record's files",
    )?;
    Ok(versions.iter().filter_map(file_info).collect())
}

fn file_info(row: &Map<String, Json>) -> Option<FileInfo> {
    let text = |name: &str| row.get(name).and_then(Json::as_str).filter(|s| !s.is_empty());
    let id = text("Id")?.to_owned();
    let title = text("Title").unwrap_or("file");
    let extension = text("FileExtension");
    let name = match extension {
        Some(ext) if !title.to_ascii_lowercase().ends_with(&format!(".{}", ext.to_ascii_lowercase())) => {
            format!("{title}.{ext}")
        }
        _ => title.to_owned(),
    };
    Some(FileInfo {
        id,
        name,
        content_type: extension.and_then(crmhost_sdk::files::mime_type_of).map(str::to_owned),
        size: row.get("ContentSize").and_then(Json::as_f64).filter(|n| *n >= 0.0).map(|n| n as u64),
        modified_at: text("LastModifiedDate").and_then(crate::soql::rfc3339),
    })
}

/// Where the host gets a version's bytes.
pub fn download(entity: &str, record_id: &str, file_id: &str) -> Result<DownloadRequest> {
    sobject(entity)?;
    checked_id(record_id, "record")?;
    checked_id(file_id, "ContentVersion")?;
    let api = Api::from_connection()?;
    Ok(DownloadRequest {
        url: api.url(&format!("/sobjects/ContentVersion/{file_id}/VersionData")),
        headers: Vec::new(),
        with_credentials: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_row_becomes_a_named_typed_file() {
        let row: Map<String, Json> = serde_json::from_value(serde_json::json!({
            "Id": "068000000000001AAA", "Title": "Contract v2", "FileExtension": "pdf", "ContentSize": 1234,
            "LastModifiedDate": "2026-12-01T10:00:00.000+0000"
        }))
        .unwrap();
        let file = file_info(&row).unwrap();
        assert_eq!((file.name.as_str(), file.content_type.as_deref()), ("Contract v2.pdf", Some("application/pdf")));
        assert_eq!((file.size, file.modified_at.as_deref()), (Some(1234), Some("2026-12-01T10:00:00.000Z")));
        let titled: Map<String, Json> = serde_json::from_value(
            serde_json::json!({"Id": "068000000000002AAA", "Title": "scan.PNG", "FileExtension": "png"}),
        )
        .unwrap();
        assert_eq!(file_info(&titled).unwrap().name, "scan.PNG");
        assert!(checked_id("068'; DROP", "x").is_err());
    }
}
