//! Files attached to the CRM record a workspace record follows: listed through the plugin's
//! optional `files` export, and fetched by the host (see `plugins::download`) for the API to
//! stream. A file is only served through a record it is attached to.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{SyncEngine, SyncError};
use crate::domain::{CrmId, EntityName, PluginSlug, RecordId, WorkspaceId};
use crate::plugins::bindings::files::FileInfo;
use crate::plugins::{CallContext, DownloadError, LoadedPlugin, adapter_error_summary};

/// The file id that names a record's most recently changed file.
pub const LATEST_FILE: &str = "latest";

/// How long the CRM may take to start answering a download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A file attached to a CRM record.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RecordFile {
    /// The plugin's id for it (what `…/files/{file_id}` takes).
    pub id: String,
    /// Its name with extension.
    pub name: String,
    /// Its MIME type, when the CRM tells it.
    pub content_type: Option<String>,
    /// Its size in bytes, when the CRM tells it.
    pub size: Option<u64>,
    /// When it last changed.
    pub modified_at: Option<DateTime<Utc>>,
}

impl From<FileInfo> for RecordFile {
    fn from(f: FileInfo) -> Self {
        Self {
            modified_at: f.modified_at.as_deref().and_then(super::values::parse_instant),
            id: f.id,
            name: f.name,
            content_type: f.content_type,
            size: f.size,
        }
    }
}

/// A file being fetched: what it is, and the CRM's answer to stream.
#[derive(Debug)]
pub struct FileDownload {
    /// The file.
    pub file: RecordFile,
    /// The CRM's answer (status 200), its body not read yet.
    pub response: reqwest::Response,
}

/// Where a file call goes: the plugin, the connection, the CRM record.
struct FileTarget {
    plugin: std::sync::Arc<LoadedPlugin>,
    context: CallContext,
    crm_id: CrmId,
}

impl SyncEngine {
    /// The files attached to the CRM record `record_id` follows, newest first.
    #[tracing::instrument(name = "sync.record_files", skip_all, fields(workspace = %workspace, slug = %slug, entity = %entity))]
    pub async fn record_files(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        record_id: &RecordId,
    ) -> Result<Vec<RecordFile>, SyncError> {
        let target = self.file_target(workspace, slug, entity, record_id).await?;
        Self::list(&target, entity, slug).await
    }

    /// Opens a file attached to the CRM record `record_id` follows (`latest`: the most recently
    /// changed one), ready to stream.
    #[tracing::instrument(name = "sync.open_record_file", skip_all, fields(workspace = %workspace, slug = %slug, entity = %entity))]
    pub async fn open_record_file(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        record_id: &RecordId,
        file_id: &str,
    ) -> Result<FileDownload, SyncError> {
        let target = self.file_target(workspace, slug, entity, record_id).await?;
        let files = Self::list(&target, entity, slug).await?;
        let chosen =
            if file_id == LATEST_FILE { files.into_iter().next() } else { files.into_iter().find(|f| f.id == file_id) };
        let file = chosen.ok_or_else(|| {
            let which = if file_id == LATEST_FILE { "no file".to_owned() } else { format!("no file `{file_id}`") };
            SyncError::NotFound(format!("{which} is attached to the {slug} record `{record_id}` follows"))
        })?;
        let request = match target
            .plugin
            .file_download(target.context.clone(), entity.as_str(), target.crm_id.as_str(), &file.id)
            .await
        {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) => return Err(not_offered(slug)),
            Ok(Err(err)) => return Err(adapter_failure(&err, slug, "could not say how to fetch the file")),
            Err(err) => return Err(SyncError::Crm { kind: "plugin_failed", message: err.to_string() }),
        };
        let response =
            target.plugin.fetch_file(&target.context, &request, DOWNLOAD_TIMEOUT).await.map_err(|e| match e {
                DownloadError::Crm { status: 404 } => {
                    SyncError::NotFound(format!("the CRM no longer has the file `{}`", file.id))
                }
                other => SyncError::Crm { kind: "unavailable", message: other.to_string() },
            })?;
        Ok(FileDownload { file, response })
    }

    /// The plugin, the connection and the CRM record the workspace record follows.
    async fn file_target(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        record_id: &RecordId,
    ) -> Result<FileTarget, SyncError> {
        let (plugin, context) = self.connections.call_context(workspace, slug).await?;
        Self::entity_description(plugin.description(), entity)?;
        let links = self.store.links_for_records(workspace, slug, entity, &[record_id.as_str().to_owned()]).await?;
        let crm_id = links.into_iter().find_map(|l| l.crm_id).ok_or_else(|| {
            SyncError::NotFound(format!(
                "the `{entity}` record `{record_id}` does not follow a {slug} record yet: sync it first"
            ))
        })?;
        Ok(FileTarget { plugin, context, crm_id })
    }

    async fn list(target: &FileTarget, entity: &EntityName, slug: &PluginSlug) -> Result<Vec<RecordFile>, SyncError> {
        let listed = target.plugin.list_files(target.context.clone(), entity.as_str(), target.crm_id.as_str()).await;
        let mut files: Vec<RecordFile> = match listed {
            Ok(Ok(Some(files))) => files.into_iter().map(RecordFile::from).collect(),
            Ok(Ok(None)) => return Err(not_offered(slug)),
            Ok(Err(err)) => return Err(adapter_failure(&err, slug, "could not list the record's files")),
            Err(err) => return Err(SyncError::Crm { kind: "plugin_failed", message: err.to_string() }),
        };
        // Newest first, whatever order the plugin kept; files without a time last.
        files.sort_by_key(|f| std::cmp::Reverse(f.modified_at));
        Ok(files)
    }
}

fn not_offered(slug: &PluginSlug) -> SyncError {
    SyncError::NotSupported(format!("the `{slug}` plugin does not offer files attached to records"))
}

fn adapter_failure(err: &crate::plugins::bindings::AdapterError, slug: &PluginSlug, what: &str) -> SyncError {
    let (kind, message) = adapter_error_summary(err);
    match kind {
        "not_supported" => not_offered(slug),
        "not_found" => SyncError::NotFound(format!("the CRM {what}: {message}")),
        _ => SyncError::Crm { kind, message: format!("the CRM {what}: {message}") },
    }
}
