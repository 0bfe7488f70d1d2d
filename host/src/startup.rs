//! Building and running the application: open the store and migrate, start the plugin engine,
//! load bundled and file plugins, watch the plugins directory, bind the listener (port 0 works,
//! for tests), serve until a shutdown signal, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use crate::config::{Config, DatabaseTarget};
use crate::plugins::cache::ComponentCache;
use crate::plugins::watcher::{PluginWatcher, ReloadHook};
use crate::plugins::{PluginEngine, PluginLoader, PluginRegistry, bundled};
use crate::state::AppState;
use crate::store::{NewAuditEntry, Store};

/// Why start-up failed: one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// A built application, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    router: axum::Router,
    _watcher: Option<PluginWatcher>,
    sandbox: Option<Arc<crate::sandbox::Sandbox>>,
    background: BackgroundTasks,
}

/// The scheduler, webhook and outbound delivery tasks: they stop when the server does.
struct BackgroundTasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("addr", &self.listener.local_addr().ok()).finish_non_exhaustive()
    }
}

impl Application {
    /// Builds everything and binds the listener.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_bundled(config, bundled()).await
    }

    /// As [`Application::build`], with an explicit set of bundled plugins (tests use this to start
    /// without any, or with test plugins).
    pub async fn build_with_bundled(
        mut config: Config,
        bundled: Vec<crate::plugins::BundledPlugin>,
    ) -> Result<Self, StartupError> {
        let sandbox = start_sandbox(&mut config).await?;
        create_data_dir(&config)?;
        let vault = Arc::new(open_vault(&config)?);
        let store = open_store(&config).await?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let registry = load_plugins(&config, bundled, &metrics).await?;
        let watcher = watch_plugins(&config, &store, &registry)?;
        let listener = bind(&config).await?;
        let public_url = public_url(&config, &listener)?;
        print_sandbox_console_link(&config, &public_url);
        let notifier = Arc::new(
            crate::notify::Notifier::new(
                store.clone(),
                vault.clone(),
                config.outbound_webhooks.clone(),
                metrics.clone(),
            )
            .map_err(StartupError)?,
        );
        let connections = Arc::new(crate::connections::Connections::new(
            store.clone(),
            vault.clone(),
            registry.clone(),
            public_url,
            config.allowed_return_origins.clone(),
            notifier.clone(),
        ));
        let sync = start_sync(&config, &store, &connections, &notifier, &metrics).await?;
        let mut tasks = sync.spawn_background();
        tasks.push(notifier.spawn_worker());
        let background = BackgroundTasks(tasks);
        let state = AppState {
            store,
            sync,
            notifier,
            metrics,
            max_file_bytes: config.max_file_bytes,
            connections,
            plugins: registry,
            admin_token: config.admin_token.clone().map(Arc::new),
            vault,
            jwt: crate::auth::JwtVerifier::new(config.jwt_secret.as_ref(), config.jwt_public_key.as_deref())
                .map_err(StartupError)?
                .map(Arc::new),
            sandbox: sandbox.as_ref().map(|s| Arc::new(s.info())),
            console: Arc::new(config.console.clone()),
        };
        let router = crate::api::router(state.clone(), config.max_request_bytes);
        Ok(Self { listener, state, router, _watcher: watcher, sandbox, background })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The in-process emulators, in sandbox mode.
    pub fn sandbox(&self) -> Option<&Arc<crate::sandbox::Sandbox>> {
        self.sandbox.as_ref()
    }

    /// The shared state (tests reach the registry and store through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes requests in flight.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let addr = self.local_addr();
        tracing::info!(%addr, "crmhost listening");
        // Keep the emulators alive for as long as the server runs.
        let _sandbox = self.sandbox;
        let background = self.background;
        // Through a listener whose connections answer even unparseable requests in the JSON shape.
        let listener = crate::api::wire::JsonErrorListener(self.listener);
        let result = axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await;
        drop(background);
        self.state.store.close().await;
        tracing::info!("crmhost stopped");
        result
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// With `--sandbox`: starts the CRM emulators and points the bundled plugins at them.
async fn start_sandbox(config: &mut Config) -> Result<Option<Arc<crate::sandbox::Sandbox>>, StartupError> {
    if !config.sandbox {
        return Ok(None);
    }
    let sandbox = crate::sandbox::Sandbox::start(config.bind.port())
        .await
        .map_err(|e| StartupError(format!("--sandbox: cannot start the CRM emulators: {e}")))?;
    sandbox.configure(&mut config.plugins);
    // A demo on one machine: its webhook receiver is on this machine too.
    config.outbound_webhooks.allow_private_addresses = true;
    config.outbound_webhooks.allow_http = true;
    if config.jwt_secret.is_none() && config.jwt_public_key.is_none() {
        // A demo needs tokens the server accepts: sign them with a key that lives as long as this run.
        config.jwt_secret = Some(SecretString::from(crate::vault::MasterKey::generate().to_base64()));
        tracing::info!("sandbox: workspace tokens are signed with a key generated for this run");
    }
    let info = sandbox.info();
    let emulators: Vec<String> = info.emulators.iter().map(|(slug, url)| format!("{slug}={url}")).collect();
    tracing::info!(
        emulators = %emulators.join(" "),
        client_id = %info.oauth_client_id,
        "sandbox: CRM emulators running; their plugins point at them"
    );
    Ok(Some(Arc::new(sandbox)))
}

fn create_data_dir(config: &Config) -> Result<(), StartupError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StartupError(format!("CRMHOST_DATA_DIR: cannot create {}: {e}", config.data_dir.display())))
}

/// Opens the configured database and brings its schema up to date.
async fn open_store(config: &Config) -> Result<Store, StartupError> {
    let store = match &config.database {
        DatabaseTarget::Url(url) => Store::connect(url.expose_secret()).await,
        DatabaseTarget::SqliteFile(path) => Store::open_sqlite_file(path).await,
    }
    .map_err(|e| StartupError(format!("DATABASE_URL: cannot open the database: {e}")))?;
    store.migrate().await.map_err(|e| StartupError(format!("database migration failed: {e}")))?;
    Ok(store)
}

/// Starts the WebAssembly engine and loads the bundled plugins and the plugins directory's; a
/// plugin that fails to load is logged and left out.
async fn load_plugins(
    config: &Config,
    bundled: Vec<crate::plugins::BundledPlugin>,
    metrics: &Arc<crate::metrics::Metrics>,
) -> Result<Arc<PluginRegistry>, StartupError> {
    let engine = PluginEngine::new(config.engine.clone())
        .map_err(|e| StartupError(format!("cannot start the WebAssembly engine: {e:#}")))?;
    let cache = ComponentCache::new(Some(config.data_dir.join("cache").join("components")));
    let loader = PluginLoader::new(engine, cache, Arc::new(config.plugins.clone())).observed_by(metrics.clone());
    let registry = Arc::new(PluginRegistry::new(loader, bundled, Some(config.plugins_dir.clone())));
    let report = registry.reload().await;
    for failed in &report.failed {
        tracing::error!(path = %failed.path, error = %failed.error, "plugin rejected at start-up");
    }
    tracing::info!(plugins = registry.all().len(), "plugins loaded");
    Ok(registry)
}

/// Watches the plugins directory (when it exists and watching is on), reloading on changes and
/// auditing each reload.
fn watch_plugins(
    config: &Config,
    store: &Store,
    registry: &Arc<PluginRegistry>,
) -> Result<Option<PluginWatcher>, StartupError> {
    let dir = &config.plugins_dir;
    if !config.watch_plugins {
        return Ok(None);
    }
    if !dir.is_dir() {
        tracing::info!(dir = %dir.display(), "plugins directory does not exist; serving bundled plugins only");
        return Ok(None);
    }
    let hook_store = store.clone();
    let hook: ReloadHook = Arc::new(move |report| {
        let (store, details) = (hook_store.clone(), serde_json::to_value(report).unwrap_or_default());
        tokio::spawn(async move { store.audit(NewAuditEntry::plugin_reload("system", details)).await });
    });
    PluginWatcher::start(dir, registry.clone(), Some(hook))
        .map(Some)
        .map_err(|e| StartupError(format!("CRMHOST_PLUGINS_DIR: cannot watch {}: {e}", dir.display())))
}

async fn bind(config: &Config) -> Result<TcpListener, StartupError> {
    TcpListener::bind(config.bind)
        .await
        .map_err(|e| StartupError(format!("CRMHOST_BIND: cannot listen on {}: {e}", config.bind)))
}

/// In sandbox mode, prints (to the terminal, never to the logs: it holds a token) a console link
/// that signs in to the demo workspace as an admin for eight hours.
fn print_sandbox_console_link(config: &Config, public_url: &url::Url) {
    let Some(secret) = config.jwt_secret.as_ref().filter(|_| config.sandbox) else { return };
    let demo = crate::domain::WorkspaceId::parse("demo").expect("`demo` is a valid workspace id");
    let ttl = std::time::Duration::from_secs(8 * 3600);
    match crate::auth::workspace_token(secret, &demo, crate::auth::Role::Admin, "demo-admin", ttl) {
        Ok(token) => {
            println!("\n  Console (demo workspace, admin, 8 h): {}\n", crate::console::link(public_url, &token))
        }
        Err(err) => tracing::warn!("sandbox: no console link: {err}"),
    }
}

/// The URL browsers and CRMs reach this server at: configured, else the bound address.
fn public_url(config: &Config, listener: &TcpListener) -> Result<url::Url, StartupError> {
    let url = match &config.public_url {
        Some(url) => url.clone(),
        None => {
            let addr = listener.local_addr().map_err(|e| StartupError(format!("CRMHOST_BIND: {e}")))?;
            url::Url::parse(&format!("http://{addr}")).map_err(|e| StartupError(format!("CRMHOST_PUBLIC_URL: {e}")))?
        }
    };
    tracing::info!(public_url = %url, "OAuth redirect URIs are <public_url>/api/v1/integrations/callback/<slug>");
    Ok(url)
}

/// The sync engine, after marking runs a stopped process left `running` as interrupted.
async fn start_sync(
    config: &Config,
    store: &Store,
    connections: &Arc<crate::connections::Connections>,
    notifier: &Arc<crate::notify::Notifier>,
    metrics: &Arc<crate::metrics::Metrics>,
) -> Result<Arc<crate::sync::SyncEngine>, StartupError> {
    let sync = Arc::new(crate::sync::SyncEngine::with_options(
        store.clone(),
        connections.clone(),
        config.scheduler.clone(),
        notifier.clone(),
        metrics.clone(),
    ));
    sync.recover_interrupted_runs()
        .await
        .map_err(|e| StartupError(format!("cannot check for interrupted sync runs: {e}")))?;
    Ok(sync)
}

/// The vault from `CRMHOST_MASTER_KEY`, or from the data directory's key file (generated on first
/// start, with a warning: that file is the only copy of the key).
fn open_vault(config: &Config) -> Result<crate::vault::Vault, StartupError> {
    use crate::vault::{KeySource, MasterKey, Vault};
    let env_key = config.master_key.as_ref().map(|k| k.expose_secret().to_owned());
    let (key, source) =
        MasterKey::load(env_key.as_deref(), &config.data_dir).map_err(|e| StartupError(e.to_string()))?;
    match &source {
        KeySource::Environment => {
            tracing::info!(key_version = format_args!("{:#x}", key.fingerprint()), "master key from CRMHOST_MASTER_KEY")
        }
        KeySource::File { path, generated: true } => tracing::warn!(
            path = %path.display(),
            "generated a master key file; it is the only copy of the key that protects stored credentials: back it up, or set CRMHOST_MASTER_KEY"
        ),
        KeySource::File { path, generated: false } => {
            tracing::warn!(path = %path.display(), "master key read from the data directory; set CRMHOST_MASTER_KEY in production")
        }
    }
    let previous =
        config.previous_master_keys.iter().filter_map(|k| MasterKey::from_base64(k.expose_secret())).collect();
    Ok(Vault::new(key, previous))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing requests in flight");
}
