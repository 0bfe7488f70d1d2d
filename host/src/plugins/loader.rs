//! Loading a component into a [`LoadedPlugin`]: compile (or take from the cache), check its
//! imports, link, smoke-test `describe()`, validate, apply the operator's policy.

use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::AdapterPre;
use super::branding::{self, Branding};
use super::cache::{CacheOutcome, ComponentCache};
use super::capability::http::build_client;
use super::capability::secrets::PluginSecrets;
use super::context::CallContext;
use super::description::PluginDescription;
use super::egress::EgressPolicy;
use super::engine::PluginEngine;
use super::error::{CallError, LoadError};
use super::limits::PluginLimits;
use super::loaded::{LoadedPlugin, PluginSource};
use super::operator::OperatorPluginConfig;
use super::runtime::{CallState, CallTarget};

/// The WIT contract version this host implements (it also loads [`CONTRACT_VERSIONS`]' older ones).
///
/// [`CONTRACT_VERSIONS`]: super::bindings::CONTRACT_VERSIONS
pub const CONTRACT_VERSION: &str = super::bindings::CONTRACT_VERSIONS[0];

/// Import namespaces a plugin may use. `wasi:http` is refused: `http.send` is the only way out.
/// `wasi:sockets` may be imported (toolchains such as componentize-py link it whether or not the
/// program uses it) but is always denied: every call's WASI context allows no TCP, no UDP and no
/// name look-up, so opening a connection fails with "access denied".
pub(crate) const ALLOWED_IMPORT_PREFIXES: &[&str] =
    &["crmhost:adapter/", "wasi:cli/", "wasi:clocks/", "wasi:random/", "wasi:io/", "wasi:filesystem/", "wasi:sockets/"];

/// Compiles and validates components.
#[derive(Debug, Clone)]
pub struct PluginLoader {
    engine: Arc<PluginEngine>,
    cache: ComponentCache,
    operator: Arc<OperatorPluginConfig>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// The hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl PluginLoader {
    /// A loader using `engine`, caching compiled code in `cache`, applying `operator` policy.
    pub fn new(engine: Arc<PluginEngine>, cache: ComponentCache, operator: Arc<OperatorPluginConfig>) -> Self {
        Self { engine, cache, operator, metrics: None }
    }

    /// Has every plugin it loads report its calls, CRM requests and pacer waits to `metrics`.
    pub fn observed_by(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    /// Loads a component: compile (or take from the cache), check its imports, link it, ask it
    /// to describe itself, and apply the operator's policy for its slug.
    #[tracing::instrument(name = "plugin.load", skip_all, fields(source = %source, sha256))]
    pub async fn load(&self, bytes: Arc<[u8]>, source: PluginSource) -> Result<LoadedPlugin, LoadError> {
        let sha256 = sha256_hex(&bytes);
        tracing::Span::current().record("sha256", &sha256[..12]);
        let (component, cache_outcome) = self.compile(bytes, &sha256).await.map_err(|e| self.instance_limit(e))?;
        self.check_imports(&component)?;
        let pre = self.link(&component)?;
        let description = self.describe(&pre).await.map_err(|e| self.instance_limit(e))?;
        let branding = self.branding(&description, &source).await?;
        self.finish(description, source, sha256, cache_outcome, pre, branding)
    }

    /// The catalogue category and logo, with the operator's choices first.
    async fn branding(&self, description: &PluginDescription, source: &PluginSource) -> Result<Branding, LoadError> {
        let overrides = self.operator.branding(&description.slug);
        branding::resolve(description, source, overrides)
            .await
            .map_err(|detail| LoadError::Config { slug: description.slug.to_string(), detail })
    }

    /// Compiles on a blocking thread, off the async runtime (or loads the cached compilation).
    async fn compile(&self, bytes: Arc<[u8]>, sha256: &str) -> Result<(Component, CacheOutcome), LoadError> {
        let (engine, cache, digest) = (self.engine.clone(), self.cache.clone(), sha256.to_owned());
        tokio::task::spawn_blocking(move || cache.load_or_compile(&engine.engine, &bytes, &digest))
            .await
            .map_err(|e| LoadError::Compile(format!("compiler thread failed: {e}")))?
            .map_err(|e| LoadError::Compile(format!("{e:#}")))
    }

    /// Names the operator's setting when the component instantiates more core modules than it
    /// allows: the pooling allocator refuses such a component when compiling it, the store's
    /// limiter when `describe()` instantiates it. Other errors pass unchanged.
    fn instance_limit(&self, err: LoadError) -> LoadError {
        let detail = match &err {
            LoadError::Compile(detail) if detail.contains("core module instances, which exceeds") => detail.clone(),
            LoadError::Describe(CallError::Runtime(detail)) if detail.contains("instance count too high") => {
                detail.clone()
            }
            _ => return err,
        };
        LoadError::TooManyCoreInstances { limit: self.engine.settings().max_core_instances_per_plugin, detail }
    }

    /// Refuses imports outside the allowed namespaces (`wasi:http`, ...).
    fn check_imports(&self, component: &Component) -> Result<(), LoadError> {
        for (name, item) in component.component_type().imports(&self.engine.engine) {
            if !ALLOWED_IMPORT_PREFIXES.iter().any(|p| name.starts_with(p)) {
                return Err(LoadError::ForbiddenImport(name.to_owned()));
            }
            if name.starts_with("crmhost:adapter/") && !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
                return Err(LoadError::ForbiddenImport(name.to_owned()));
            }
        }
        Ok(())
    }

    /// Links against the host's imports; a component built for another contract fails here.
    fn link(&self, component: &Component) -> Result<AdapterPre<CallState>, LoadError> {
        let incompatible =
            |e: wasmtime::Error| LoadError::Incompatible { contract: CONTRACT_VERSION, detail: format!("{e:#}") };
        let instance_pre = self.engine.linker.instantiate_pre(component).map_err(incompatible)?;
        AdapterPre::new(instance_pre).map_err(incompatible)
    }

    /// Smoke test: `describe()` with no connection, no egress and a tight budget, validated.
    async fn describe(&self, pre: &AdapterPre<CallState>) -> Result<PluginDescription, LoadError> {
        let probe_limits = PluginLimits { cpu_ms: 1_000, wall_ms: 5_000, ..PluginLimits::default() };
        let deny_all = Arc::new(EgressPolicy::deny_all());
        let probe_client = build_client(deny_all.clone()).map_err(|e| LoadError::Compile(e.to_string()))?;
        let probe_slug: Arc<str> = Arc::from("(loading)");
        let target = CallTarget {
            engine: &self.engine,
            pre,
            slug: &probe_slug,
            limits: &probe_limits,
            policy: &deny_all,
            client: &probe_client,
            secrets: &Arc::new(PluginSecrets::default()),
            stats: &Arc::new(super::stats::CallStats::default()),
            auth: &super::description::AuthSchemes::default(),
        };
        let info =
            target.run(CallContext::detached(), "describe", |store, adapter| Box::pin(adapter.describe(store))).await?;
        PluginDescription::try_from(info).map_err(LoadError::InvalidDescription)
    }

    /// Applies the operator's policy for the plugin's slug (egress, limits, secrets, settings).
    fn finish(
        &self,
        description: PluginDescription,
        source: PluginSource,
        sha256: String,
        cache_outcome: CacheOutcome,
        pre: AdapterPre<CallState>,
        branding: Branding,
    ) -> Result<LoadedPlugin, LoadError> {
        let slug = description.slug.clone();
        let config_error = |detail: String| LoadError::Config { slug: slug.to_string(), detail };
        let policy = self
            .operator
            .resolve(&slug, &description.allowed_hosts, self.engine.settings().max_memory_bytes)
            .map_err(config_error)?;
        let policy_arc = Arc::new(policy.egress);
        let client = build_client(policy_arc.clone()).map_err(|e| config_error(e.to_string()))?;

        tracing::info!(
            slug = %slug,
            version = %description.version,
            cached = cache_outcome == CacheOutcome::Hit,
            "plugin loaded"
        );
        Ok(LoadedPlugin {
            slug: Arc::from(slug.as_str()),
            source,
            sha256,
            loaded_at: Utc::now(),
            cache: cache_outcome,
            engine: self.engine.clone(),
            pre,
            limits: policy.limits,
            policy: policy_arc,
            client,
            secrets: Arc::new(policy.secrets),
            settings: policy.settings,
            oauth_overrides: policy.oauth,
            branding,
            stats: Arc::new(super::stats::CallStats::observed(Arc::from(slug.as_str()), self.metrics.clone())),
            description,
        })
    }
}
