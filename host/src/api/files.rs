//! Files attached to the CRM record a workspace record follows (member+):
//! `GET …/integrations/{slug}/records/{entity}/{record_id}/files` lists them, newest first;
//! `GET …/files/{file_id}` (or `…/files/latest`) streams one, capped by the operator's
//! `[files] max_download_bytes`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, OnIntegration, at_least};
use super::openapi::{ErrorResponses, RecordFilePath, RecordFilesPath};
use super::routes::Routes;
use crate::domain::{EntityName, RecordId};
use crate::state::AppState;
use crate::sync::{FileDownload, RecordFile};

pub fn router() -> Routes {
    Routes::new()
        .get("/api/v1/workspaces/{id}/integrations/{slug}/records/{entity}/{record_id}/files", list)
        .get("/api/v1/workspaces/{id}/integrations/{slug}/records/{entity}/{record_id}/files/{file_id}", download)
}

/// The files of a record.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct FileList {
    /// Newest first.
    files: Vec<RecordFile>,
}

fn parsed(entity: &str, record_id: &str) -> ApiResult<(EntityName, RecordId)> {
    Ok((
        EntityName::parse(entity).map_err(ApiError::BadRequest)?,
        RecordId::parse(record_id).map_err(ApiError::BadRequest)?,
    ))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/records/{entity}/{record_id}/files", tag = "records", operation_id = "list_record_files", params(RecordFilesPath), security(("workspace_jwt" = [])), responses((status = 200, description = "The files attached to the CRM record this workspace record follows, newest first (member+). 404 `not_supported` when the plugin offers no files.", body = FileList), ErrorResponses))]
pub(super) async fn list(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, _, entity, record_id)): ApiPath<(String, String, String, String)>,
) -> ApiResult<Json<FileList>> {
    let (entity, record_id) = parsed(&entity, &record_id)?;
    let files = state.sync.record_files(&caller.workspace, &slug, &entity, &record_id).await?;
    Ok(Json(FileList { files }))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/records/{entity}/{record_id}/files/{file_id}", tag = "records", operation_id = "download_record_file", params(RecordFilePath), security(("workspace_jwt" = [])), responses((status = 200, description = "The file's bytes, streamed, with its type and name (`Content-Disposition: attachment`) (member+). `latest` names the most recently changed file. 422 `file_too_large` over the operator's limit.", content_type = "application/octet-stream", body = Vec<u8>), ErrorResponses))]
pub(super) async fn download(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, _, entity, record_id, file_id)): ApiPath<(String, String, String, String, String)>,
) -> ApiResult<Response> {
    let (entity, record_id) = parsed(&entity, &record_id)?;
    if file_id.is_empty() || file_id.len() > 255 || file_id.chars().any(char::is_control) {
        return Err(ApiError::BadRequest("`file_id`: 1 to 255 characters, no control characters".to_owned()));
    }
    let opened = state.sync.open_record_file(&caller.workspace, &slug, &entity, &record_id, &file_id).await?;
    stream_capped(opened, state.max_file_bytes)
}

/// The file as a response: refused up front when its known size is over `max`, cut off (the
/// transfer fails) if more than `max` bytes arrive anyway.
fn stream_capped(opened: FileDownload, max: u64) -> ApiResult<Response> {
    let FileDownload { file, response } = opened;
    let length = response.content_length().or(file.size);
    if let Some(length) = length.filter(|n| *n > max) {
        return Err(ApiError::Coded {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "file_too_large",
            message: format!("`{}` is {length} bytes, over this server's limit of {max} bytes", file.name),
        });
    }
    let crm_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = file
        .content_type
        .clone()
        .or(crm_type.filter(|t| !t.starts_with("application/octetstream")))
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let mut sent: u64 = 0;
    let name = file.name.clone();
    let body = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(|e| std::io::Error::other(e.without_url()))?;
        sent += chunk.len() as u64;
        if sent > max {
            tracing::warn!(file = %name, max, "file over the size limit; transfer cut off");
            return Err(std::io::Error::other("the file is over the server's size limit"));
        }
        Ok::<_, std::io::Error>(chunk)
    });
    let mut out = Body::from_stream(body).into_response();
    let headers = out.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(value) = HeaderValue::from_str(&content_disposition(&file.name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(length) = length.and_then(|n| HeaderValue::from_str(&n.to_string()).ok()) {
        headers.insert(header::CONTENT_LENGTH, length);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(out)
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>` (RFC 6266).
fn content_disposition(name: &str) -> String {
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_is_quoted_safely_and_kept_in_full_for_those_who_read_utf8() {
        assert_eq!(
            content_disposition("Q3 \"final\"\r\n.pdf"),
            "attachment; filename=\"Q3 _final___.pdf\"; filename*=UTF-8''Q3%20%22final%22%0D%0A.pdf"
        );
        assert!(content_disposition("Vertrag Müller.pdf").ends_with("Vertrag%20M%C3%BCller.pdf"));
    }
}
