//! A running crmhost on port 0 ([`TestApp`]), its tokens, the browser side of an OAuth
//! connect, and waiting for a condition.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crmhost::config::{Config, DatabaseTarget};
use crmhost::plugins::{EngineSettings, OperatorPluginConfig};
use crmhost::startup::Application;
use crmhost::state::AppState;
use secrecy::SecretString;

use crate::*;

/// The JWT secret test apps use.
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789-0123456789";

/// A workspace token for tests.
pub fn token(workspace: &str, role: crmhost::auth::Role) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = crmhost::auth::Claims {
        sub: "user-1".to_owned(),
        workspace: workspace.to_owned(),
        role,
        exp: now + 3600,
        iat: now,
    };
    crmhost::auth::sign_hs256(&SecretString::from(JWT_SECRET), &claims).expect("signing works")
}

/// The admin token test apps use.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A crmhost serving on 127.0.0.1:0.
pub struct TestApp {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub base: String,
    /// Shared state (registry, store).
    pub state: AppState,
    /// The plugins directory.
    pub plugins_dir: PathBuf,
    /// An HTTP client.
    pub client: reqwest::Client,
    _data_dir: tempfile::TempDir,
    _plugins: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    sandbox: Option<Arc<crmhost::sandbox::Sandbox>>,
    sim: Option<Arc<crm_sim::SimHandle>>,
    /// The database URL (another app can share it through [`AppOptions::database_url`]).
    pub database_url: String,
    _db: Option<TestDb>,
}

/// Options for [`TestApp::spawn`].
pub struct AppOptions {
    /// The database backend.
    pub backend: Backend,
    /// Watch the plugins directory.
    pub watch: bool,
    /// Bundled plugins (default: the real ones).
    pub bundled: Vec<crmhost::plugins::BundledPlugin>,
    /// Admin token (default [`ADMIN_TOKEN`]).
    pub admin_token: Option<&'static str>,
    /// Start in sandbox mode (in-process emulators).
    pub sandbox: bool,
    /// Point the bundled plugins at these emulators (several apps can share one pair).
    pub sim: Option<Arc<crm_sim::SimHandle>>,
    /// Point the bundled plugins at emulators in another process, by base URL (Salesforce,
    /// HubSpot); benchmarks use it to measure crmhost apart from the emulators.
    pub remote_sim: Option<(String, String)>,
    /// Use this database instead of a fresh one (several apps can share one).
    pub database_url: Option<String>,
    /// The master key (base64); default: a key file generated in the app's data directory.
    pub master_key: Option<String>,
    /// Earlier master keys (base64), for reading during rotation.
    pub previous_master_keys: Vec<String>,
    /// Extra origins a connect `return_url` may use.
    pub allowed_return_origins: Vec<String>,
    /// The scheduler (default: on, with production timings).
    pub scheduler: crmhost::sync::SchedulerOptions,
    /// The operator's plugin settings (the emulators' endpoints are added to them).
    pub operator: OperatorPluginConfig,
    /// The console's branding.
    pub console: crmhost::console::ConsoleBranding,
    /// Outbound webhooks (default: loopback and plain http allowed, for [`crate::Receiver`];
    /// production retry timings).
    pub outbound_webhooks: crmhost::notify::NotifyOptions,
    /// The largest file the API serves (default the server's).
    pub max_file_bytes: u64,
    /// Plugin files (name, bytes) in the plugins directory before the app starts, loaded at
    /// start-up as an operator's would be.
    pub plugin_files: Vec<(String, Arc<Vec<u8>>)>,
    /// Compile components into a cache every app of this test process shares, so a large
    /// component (a Python plugin's 19 MB) is compiled once rather than once per app.
    pub share_compiled_components: bool,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            watch: false,
            bundled: crmhost::plugins::bundled(),
            admin_token: Some(ADMIN_TOKEN),
            sandbox: false,
            sim: None,
            remote_sim: None,
            database_url: None,
            master_key: None,
            previous_master_keys: Vec::new(),
            allowed_return_origins: Vec::new(),
            scheduler: crmhost::sync::SchedulerOptions::default(),
            operator: OperatorPluginConfig::default(),
            console: crmhost::console::ConsoleBranding::default(),
            outbound_webhooks: crmhost::notify::NotifyOptions {
                allow_private_addresses: true,
                allow_http: true,
                ..Default::default()
            },
            max_file_bytes: crmhost::config::DEFAULT_MAX_FILE_BYTES,
            plugin_files: Vec::new(),
            share_compiled_components: false,
        }
    }
}

impl TestApp {
    /// Starts crmhost; `None` when the backend is unavailable (PostgreSQL outside CI).
    pub async fn spawn(options: AppOptions) -> Option<Self> {
        init_logs();
        let (db, database_url) = match &options.database_url {
            Some(url) => (None, url.clone()),
            None => {
                let db = TestDb::new(options.backend).await?;
                let url = db.url.clone();
                (Some(db), url)
            }
        };
        let data_dir = tempfile::tempdir().expect("temp dir");
        let plugins = tempfile::tempdir().expect("temp dir");
        for (name, bytes) in &options.plugin_files {
            install_atomically(plugins.path(), name, bytes);
        }
        if options.share_compiled_components {
            share_component_cache(data_dir.path());
        }
        let mut operator = options.operator.clone();
        if let Some(sim) = &options.sim {
            crmhost::sandbox::point_plugins_at(sim, &mut operator);
        }
        if let Some((salesforce, hubspot)) = &options.remote_sim {
            let wirings =
                [crm_sim::Crm::Salesforce.plugin_wiring(salesforce), crm_sim::Crm::Hubspot.plugin_wiring(hubspot)];
            crmhost::sandbox::point_plugins_at_wirings(wirings, &mut operator);
        }
        let config = Config {
            bind: "127.0.0.1:0".parse().expect("address"),
            database: DatabaseTarget::Url(SecretString::from(database_url.clone())),
            data_dir: data_dir.path().to_path_buf(),
            plugins_dir: plugins.path().to_path_buf(),
            watch_plugins: options.watch,
            admin_token: options.admin_token.map(SecretString::from),
            engine: EngineSettings { max_concurrent_calls: 32, ..EngineSettings::default() },
            plugins: operator,
            max_request_bytes: 1 << 20,
            sandbox: options.sandbox,
            master_key: options.master_key.map(SecretString::from),
            previous_master_keys: options.previous_master_keys.into_iter().map(SecretString::from).collect(),
            jwt_secret: Some(SecretString::from(JWT_SECRET)),
            jwt_public_key: None,
            public_url: None,
            allowed_return_origins: options
                .allowed_return_origins
                .iter()
                .map(|o| url::Url::parse(o).expect("origin URL").origin())
                .collect(),
            scheduler: options.scheduler,
            console: options.console,
            outbound_webhooks: options.outbound_webhooks,
            max_file_bytes: options.max_file_bytes,
        };
        let app = Application::build_with_bundled(config, options.bundled).await.expect("app builds");
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let sandbox = app.sandbox().cloned();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Some(Self {
            base,
            state,
            plugins_dir: plugins.path().to_path_buf(),
            client: reqwest::Client::new(),
            _data_dir: data_dir,
            _plugins: plugins,
            shutdown: Some(tx),
            server: Some(server),
            sandbox,
            sim: options.sim,
            database_url,
            _db: db,
        })
    }

    /// Stops the server and its background work (scheduler, delivery worker) and waits until they
    /// have stopped, keeping its database for another app to open.
    pub async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// The emulators this app talks to (sandbox mode or [`AppOptions::sim`]).
    pub fn sim(&self) -> &crm_sim::SimHandle {
        match (&self.sim, &self.sandbox) {
            (Some(sim), _) => sim,
            (None, Some(sandbox)) => sandbox.sim(),
            (None, None) => panic!("this app runs without emulators"),
        }
    }

    /// A request to `base+path` with a workspace token of `role`.
    pub fn as_role(
        &self,
        method: reqwest::Method,
        path: &str,
        workspace: &str,
        role: crmhost::auth::Role,
    ) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token(workspace, role))
    }

    /// Runs a whole OAuth connect as a browser would: `POST …/connect` as an admin, follow the
    /// authorize URL to the emulator (which consents at once), then load the callback.
    /// Returns the callback's response.
    pub async fn connect(&self, workspace: &str, slug: &str) -> reqwest::Response {
        let authorize = self.start_connect(workspace, slug, serde_json::json!({})).await;
        let callback = browse_to_callback(&authorize).await;
        self.client.get(callback).send().await.expect("callback request")
    }

    /// `POST …/connect` as an admin with `body`; returns the authorize URL.
    pub async fn start_connect(&self, workspace: &str, slug: &str, body: serde_json::Value) -> String {
        let response = self
            .as_role(
                reqwest::Method::POST,
                &format!("/api/v1/workspaces/{workspace}/integrations/{slug}/connect"),
                workspace,
                crmhost::auth::Role::Admin,
            )
            .json(&body)
            .send()
            .await
            .expect("connect request");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "connect failed");
        let start: serde_json::Value = response.json().await.expect("connect JSON");
        start["authorize_url"].as_str().expect("authorize_url").to_owned()
    }
}

/// Loads an authorize URL without following redirects and returns where the CRM sends the
/// browser (the callback URL with `code` and `state`, or an error).
pub async fn browse_to_callback(authorize_url: &str) -> String {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let response = browser.get(authorize_url).send().await.expect("authorize request");
    assert!(response.status().is_redirection(), "authorize answered {}", response.status());
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

impl TestApp {
    /// Waits for this app's scheduler to complete `passes` more passes (each claims whatever is
    /// due and ends with its runs recorded): afterwards, a run that did not appear was not started.
    pub async fn scheduler_passes(&self, passes: u64) {
        let mut counter = self.state.sync.scheduler_passes();
        let target = *counter.borrow_and_update() + passes;
        let reached = tokio::time::timeout(Duration::from_secs(30), counter.wait_for(|n| *n >= target)).await;
        assert!(matches!(reached, Ok(Ok(_))), "the scheduler stopped making passes");
    }

    /// `GET base+path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.expect("request")
    }

    /// An admin request with the token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(ADMIN_TOKEN)
    }

    /// Writes a plugin file atomically (temporary file, then rename), as operators are told to.
    pub fn install_plugin(&self, file_name: &str, bytes: &[u8]) {
        install_atomically(&self.plugins_dir, file_name, bytes);
    }
}

/// Points the component cache of the app whose data directory is `data_dir` at the one this test
/// process shares (emptied when the process first uses it, so it holds this build's artifacts
/// only; test binaries run one after another). The host writes cache files through a temporary
/// file and a rename, so apps may share it.
fn share_component_cache(data_dir: &Path) {
    static SHARED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let dir = crate::target_tmp_dir().join("shared-component-cache");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the shared component cache");
        dir
    });
    std::fs::create_dir_all(data_dir.join("cache")).expect("the cache directory");
    std::os::unix::fs::symlink(shared, data_dir.join("cache").join("components")).expect("the cache link");
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Writes `dir/file_name` through a hidden temporary file and a rename.
pub fn install_atomically(dir: &Path, file_name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{file_name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write temp plugin");
    std::fs::rename(&tmp, dir.join(file_name)).expect("rename plugin into place");
}

/// Polls `check` every 50 ms until it is true or `timeout` passes; returns whether it became true.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An app (from `options`) whose plugins directory holds the Python probe (`probe`, an API-key
/// plugin), allowed to reach `server`, whose `/probe-key` accepts only the key `pk-7d1e-good`.
/// `None` when the backend is unavailable.
pub async fn app_with_python_probe(
    probe: &[u8],
    server: &crate::EgressServer,
    mut options: AppOptions,
) -> Option<TestApp> {
    options.operator.plugins.extend(python_probe_operator(server).plugins);
    let app = TestApp::spawn(options).await?;
    app.install_plugin("python-probe.wasm", probe);
    let reloaded = app.admin(reqwest::Method::POST, "/api/v1/admin/plugins/reload").send().await.expect("reload");
    assert_eq!(reloaded.status(), reqwest::StatusCode::OK, "{}", reloaded.text().await.unwrap_or_default());
    Some(app)
}

/// The operator's settings that let the Python probe reach `server` (loopback, plain HTTP) and
/// tell it where its key check is (`base_url`).
pub fn python_probe_operator(server: &crate::EgressServer) -> OperatorPluginConfig {
    let config = format!(
        "[plugins.python-probe]\nextra_allowed_hosts = [\"127.0.0.1:{}\"]\nallow_http = true\n\
         allow_private_networks = true\n[plugins.python-probe.settings]\nbase_url = \"{}\"",
        server.addr.port(),
        server.url("")
    );
    toml::from_str(&config).expect("valid operator TOML")
}
