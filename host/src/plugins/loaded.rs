//! A loaded plugin ([`LoadedPlugin`], made by [`super::loader::PluginLoader`]) and the typed calls
//! on it.
//!
//! A `LoadedPlugin` is immutable. The registry swaps whole `Arc<LoadedPlugin>`s; a call holds its
//! `Arc` from start to end, so it finishes on the version it started on.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::bindings::{AdapterError, AdapterPre, adapter, bulk, counting, files};
use super::cache::CacheOutcome;
use super::capability::secrets::PluginSecrets;
use super::context::CallContext;
use super::description::PluginDescription;
use super::egress::EgressPolicy;
use super::engine::PluginEngine;
use super::error::CallError;
use super::limits::PluginLimits;
use super::runtime::{CallState, CallTarget};
use crate::domain::PluginSlug;

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Embedded in the binary.
    Bundled,
    /// A file in the plugins directory.
    File(PathBuf),
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bundled => f.write_str("bundled"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A compiled, validated plugin, ready to call.
pub struct LoadedPlugin {
    pub(super) description: PluginDescription,
    pub(super) source: PluginSource,
    pub(super) sha256: String,
    pub(super) loaded_at: DateTime<Utc>,
    pub(super) cache: CacheOutcome,
    pub(super) engine: Arc<PluginEngine>,
    pub(super) pre: AdapterPre<CallState>,
    pub(super) slug: Arc<str>,
    pub(super) limits: PluginLimits,
    pub(super) policy: Arc<EgressPolicy>,
    pub(super) client: reqwest::Client,
    pub(super) secrets: Arc<PluginSecrets>,
    pub(super) settings: std::collections::BTreeMap<String, String>,
    pub(super) oauth_overrides: super::operator::OAuthOverrides,
    pub(super) branding: super::branding::Branding,
    pub(super) stats: Arc<super::stats::CallStats>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("slug", &self.slug)
            .field("version", &self.description.version)
            .field("source", &self.source)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// The result of a call: the outer error is the host's (trap, limit, timeout); the inner is the adapter's.
pub type CallResult<T> = Result<Result<T, AdapterError>, CallError>;

impl LoadedPlugin {
    /// The validated description.
    pub fn description(&self) -> &PluginDescription {
        &self.description
    }

    /// Its catalogue category and logo.
    pub fn branding(&self) -> &super::branding::Branding {
        &self.branding
    }

    /// The slug.
    pub fn slug(&self) -> &PluginSlug {
        &self.description.slug
    }

    /// Where it came from.
    pub fn source(&self) -> &PluginSource {
        &self.source
    }

    /// The sha256 of the component bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// When it was loaded.
    pub fn loaded_at(&self) -> DateTime<Utc> {
        self.loaded_at
    }

    /// Whether the compiled code came from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// The limits every call gets.
    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// The egress policy.
    pub fn egress(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Operator-set connection facts (merged under each connection's own facts).
    pub fn operator_settings(&self) -> &std::collections::BTreeMap<String, String> {
        &self.settings
    }

    /// The OAuth settings in force: the plugin's description with the operator's overrides applied.
    /// `None` for plugins that do not use OAuth.
    pub fn oauth(&self) -> Option<super::description::OAuth2Description> {
        let described = self.description.auth.oauth2()?;
        let o = &self.oauth_overrides;
        let mut effective = described.clone();
        if let Some(url) = &o.authorize_url {
            effective.authorize_url.clone_from(url);
        }
        if let Some(url) = &o.token_url {
            effective.token_url.clone_from(url);
        }
        if o.revoke_url.is_some() {
            effective.revoke_url.clone_from(&o.revoke_url);
        }
        Some(effective)
    }

    /// The OAuth client id the operator configured for this plugin (file, else environment).
    pub fn oauth_client_id(&self) -> Option<String> {
        self.oauth_overrides.client_id.clone().or_else(|| {
            std::env::var(format!("CRMHOST_{}_CLIENT_ID", self.slug().env_name())).ok().filter(|v| !v.is_empty())
        })
    }

    /// Whether a host-held secret of this name is configured (never its value).
    pub fn has_secret(&self, name: &str) -> bool {
        self.secrets.names().any(|n| n == name)
    }

    /// The contract version the plugin was built against (`0.2.0`, `0.1.0`).
    pub fn contract_version(&self) -> &'static str {
        self.pre.contract_version()
    }

    /// Cumulative call counters (calls, time, time in HTTP) since this version loaded.
    pub fn stats(&self) -> super::stats::CallStatsSnapshot {
        self.stats.snapshot()
    }

    /// A host-held secret for the host's own OAuth requests (never handed to the plugin).
    pub fn secret(&self, name: &str) -> Option<secrecy::SecretString> {
        self.secrets.get(name).cloned()
    }

    /// The HTTP client bound to this plugin's egress policy; the host's OAuth requests for the
    /// plugin use it too, so they obey the same allowed hosts and private-network rules.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.client
    }

    fn target(&self) -> CallTarget<'_> {
        CallTarget {
            engine: &self.engine,
            pre: &self.pre,
            slug: &self.slug,
            limits: &self.limits,
            policy: &self.policy,
            client: &self.client,
            secrets: &self.secrets,
            stats: &self.stats,
            auth: &self.description.auth,
        }
    }

    /// Adds the operator's default facts under the connection's own.
    fn with_operator_settings(&self, mut context: CallContext) -> CallContext {
        for (k, v) in &self.settings {
            context.facts.entry(k.clone()).or_insert_with(|| v.clone());
        }
        context
    }

    /// `describe()`.
    pub async fn describe(&self, context: CallContext) -> Result<adapter::PluginInfo, CallError> {
        let context = self.with_operator_settings(context);
        self.target().run(context, "describe", |store, a| Box::pin(a.describe(store))).await
    }

    /// `test-connection()`.
    pub async fn test_connection(&self, context: CallContext) -> CallResult<adapter::AccountInfo> {
        let context = self.with_operator_settings(context);
        self.target().run(context, "test-connection", |store, a| Box::pin(a.test_connection(store))).await
    }

    /// `list-fields(entity)`.
    pub async fn list_fields(&self, context: CallContext, entity: &str) -> CallResult<Vec<adapter::FieldInfo>> {
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "list-fields", |store, a| {
                let entity = entity.to_owned();
                Box::pin(async move { a.list_fields(store, &entity).await })
            })
            .await
    }

    /// `pull(request)`.
    pub async fn pull(&self, context: CallContext, request: &adapter::PullRequest) -> CallResult<adapter::Page> {
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "pull", |store, a| {
                let request = request.clone();
                Box::pin(async move { a.pull(store, &request).await })
            })
            .await
    }

    /// `counting.count(request)`: `None` without a call when the plugin does not export `counting`.
    pub async fn count(&self, context: CallContext, request: &counting::CountRequest) -> CallResult<Option<u64>> {
        if !self.pre.counts() {
            return Ok(Ok(None));
        }
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "count", |store, a| {
                let request = request.clone();
                Box::pin(async move { a.count(store, &request).await })
            })
            .await
    }

    /// Whether the plugin exports `bulk` (it may still answer `not-supported` for an entity).
    pub fn has_bulk(&self) -> bool {
        self.pre.has_bulk()
    }

    /// `bulk.pull(request)`: `None` without a call when the plugin does not export `bulk`.
    pub async fn bulk_pull(
        &self,
        context: CallContext,
        request: &adapter::PullRequest,
    ) -> CallResult<Option<bulk::PullStep>> {
        if !self.pre.has_bulk() {
            return Ok(Ok(None));
        }
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "bulk-pull", |store, a| {
                let request = request.clone();
                Box::pin(async move { a.bulk_pull(store, &request).await })
            })
            .await
    }

    /// `bulk.push(entity, match-key, records, job)`: `None` without a call when the plugin does
    /// not export `bulk`.
    pub async fn bulk_push(
        &self,
        context: CallContext,
        entity: &str,
        match_key: &str,
        records: &[adapter::PushRecord],
        job: Option<&str>,
    ) -> CallResult<Option<bulk::PushStep>> {
        if !self.pre.has_bulk() {
            return Ok(Ok(None));
        }
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "bulk-push", |store, a| {
                let (entity, match_key, records) = (entity.to_owned(), match_key.to_owned(), records.to_vec());
                let job = job.map(str::to_owned);
                Box::pin(async move { a.bulk_push(store, &entity, &match_key, &records, job.as_deref()).await })
            })
            .await
    }

    /// `files.list-files(entity, record-id)`: `None` without a call when the plugin does not
    /// export `files`.
    pub async fn list_files(
        &self,
        context: CallContext,
        entity: &str,
        record_id: &str,
    ) -> CallResult<Option<Vec<files::FileInfo>>> {
        if !self.pre.has_files() {
            return Ok(Ok(None));
        }
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "list_files", |store, a| {
                let (entity, record_id) = (entity.to_owned(), record_id.to_owned());
                Box::pin(async move { a.list_files(store, &entity, &record_id).await })
            })
            .await
    }

    /// `files.download(entity, record-id, file-id)`: `None` without a call when the plugin does
    /// not export `files`.
    pub async fn file_download(
        &self,
        context: CallContext,
        entity: &str,
        record_id: &str,
        file_id: &str,
    ) -> CallResult<Option<files::DownloadRequest>> {
        if !self.pre.has_files() {
            return Ok(Ok(None));
        }
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "download", |store, a| {
                let (entity, record_id, file_id) = (entity.to_owned(), record_id.to_owned(), file_id.to_owned());
                Box::pin(async move { a.download(store, &entity, &record_id, &file_id).await })
            })
            .await
    }

    /// `push(entity, match-key, records)`.
    pub async fn push(
        &self,
        context: CallContext,
        entity: &str,
        match_key: &str,
        records: &[adapter::PushRecord],
    ) -> CallResult<Vec<adapter::PushOutcome>> {
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "push", |store, a| {
                let (entity, match_key, records) = (entity.to_owned(), match_key.to_owned(), records.to_vec());
                Box::pin(async move { a.push(store, &entity, &match_key, &records).await })
            })
            .await
    }

    /// `delete(entity, ids)`.
    pub async fn delete(
        &self,
        context: CallContext,
        entity: &str,
        ids: &[String],
    ) -> CallResult<Vec<adapter::DeleteOutcome>> {
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "delete", |store, a| {
                let (entity, ids) = (entity.to_owned(), ids.to_vec());
                Box::pin(async move { a.delete(store, &entity, &ids).await })
            })
            .await
    }

    /// `parse-webhook(request)`.
    pub async fn parse_webhook(
        &self,
        context: CallContext,
        request: &adapter::WebhookRequest,
    ) -> CallResult<Vec<adapter::ChangeEvent>> {
        let context = self.with_operator_settings(context);
        self.target()
            .run(context, "parse-webhook", |store, a| {
                let request = request.clone();
                Box::pin(async move { a.parse_webhook(store, &request).await })
            })
            .await
    }
}
