//! Shared helpers for the end-to-end tests: the test plugins, databases on both backends, a
//! loopback HTTP server for egress tests, and a running crmhost on port 0.
//!
//! PostgreSQL: tests use `CRMHOST_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and create a fresh database per test. Without a reachable server they skip, unless `CI=true` or
//! `CRMHOST_REQUIRE_POSTGRES=1`, in which case they fail: CI must run the PostgreSQL suite.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use crmhost::config::{Config, DatabaseTarget};
use crmhost::plugins::cache::ComponentCache;
use crmhost::plugins::{EngineSettings, OperatorPluginConfig, PluginEngine, PluginLoader, PluginSource};
use crmhost::startup::Application;
use crmhost::state::AppState;
use crmhost::store::Store;
use secrecy::SecretString;
use sqlx::Connection;

/// The fixture plugin, version 1.0.0.
pub fn fixture_v1() -> Vec<u8> {
    std::fs::read(env!("FIXTURE_V1_WASM")).expect("fixture v1 was built by build.rs")
}

/// The fixture plugin, version 2.0.0.
pub fn fixture_v2() -> Vec<u8> {
    std::fs::read(env!("FIXTURE_V2_WASM")).expect("fixture v2 was built by build.rs")
}

/// The hostile plugin.
pub fn hostile() -> Vec<u8> {
    std::fs::read(env!("HOSTILE_WASM")).expect("hostile was built by build.rs")
}

/// Everything logged in this test process once [`capture_logs`] ran (debug and up; trace for
/// crmhost), for tests that scan logs for secrets.
static CAPTURED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

#[derive(Clone, Copy)]
struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a global subscriber that records every log line (debug and up, trace for crmhost);
/// returns `false` if another subscriber was installed first (`TEST_LOG`), in which case the
/// caller cannot rely on the capture.
pub fn capture_logs() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,crmhost=trace,crm_sim=trace,cranelift_codegen=info,wasmtime=info,regalloc2=info,wasmtime_internal_cranelift=info",
        );
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .fmt_fields(crmhost::telemetry::text_fields())
            .with_writer(|| CaptureWriter)
            .try_init()
            .is_ok()
    })
}

/// What [`capture_logs`] recorded so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
}

/// Turns logs on for a test run when `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        crmhost::telemetry::init();
    }
}

/// A loader over a fresh engine with the given operator configuration (no compile cache).
pub fn loader(operator: OperatorPluginConfig) -> PluginLoader {
    init_logs();
    let engine = PluginEngine::new(EngineSettings { max_concurrent_calls: 16, ..EngineSettings::default() })
        .expect("engine starts");
    PluginLoader::new(engine, ComponentCache::new(None), Arc::new(operator))
}

/// Loads `bytes` as a file plugin with `operator` settings.
pub async fn load(bytes: Vec<u8>, operator: OperatorPluginConfig) -> crmhost::plugins::LoadedPlugin {
    loader(operator).load(Arc::from(bytes), PluginSource::File(PathBuf::from("test.wasm"))).await.expect("plugin loads")
}

/// Parses an operator configuration from TOML.
pub fn operator(toml_text: &str) -> OperatorPluginConfig {
    toml::from_str(toml_text).expect("valid operator TOML")
}

// -------------------------------------------------------------------------------------------------
// Databases

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A database for one test; dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub struct TestDb {
    /// The URL crmhost connects with.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn postgres_admin_url() -> String {
    std::env::var("CRMHOST_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") || std::env::var_os("CRMHOST_REQUIRE_POSTGRES").is_some()
}

impl TestDb {
    /// A database on `backend`, or `None` when PostgreSQL is unavailable and not required.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Some(Self { url, _dir: Some(dir), pg_name: None })
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let mut conn = match sqlx::PgConnection::connect(&admin).await {
                    Ok(conn) => conn,
                    Err(err) if !postgres_required() => {
                        eprintln!("skipping PostgreSQL test: cannot connect to {admin}: {err}");
                        return None;
                    }
                    Err(err) => panic!("PostgreSQL is required (CI) but unreachable at {admin}: {err}"),
                };
                let name = format!("crmhost_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("create database {name}")).execute(&mut conn).await.expect("create database");
                let _ = conn.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Some(Self { url: format!("{base}/{name}"), _dir: None, pg_name: Some(name) })
            }
        }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        let admin = postgres_admin_url();
        // Drop runs outside any runtime we may block; use a private one on a plain thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("drop database if exists {name} with (force)")).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

// -------------------------------------------------------------------------------------------------
// A loopback HTTP server plugins can be pointed at

/// What the egress test server offers:
/// - `GET /ok` → 200 `hello`
/// - `GET /big?size=N` → N bytes
/// - `GET /slow?ms=N` → 200 after N ms
/// - `GET /redirect` → 302 to `/ok`
/// - `GET /auth` → 200 if `Authorization: Bearer good`, else 401
/// - `POST /echo` → 200 with the request body
pub struct EgressServer {
    /// Its address.
    pub addr: SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(serde::Deserialize)]
struct SizeQuery {
    size: Option<usize>,
    ms: Option<u64>,
}

impl EgressServer {
    /// Starts the server on 127.0.0.1, port 0.
    pub async fn start() -> Self {
        let app = Router::new()
            .route("/ok", get(|| async { "hello" }))
            .route("/big", get(|Query(q): Query<SizeQuery>| async move { vec![b'x'; q.size.unwrap_or(0)] }))
            .route(
                "/slow",
                get(|Query(q): Query<SizeQuery>| async move {
                    tokio::time::sleep(Duration::from_millis(q.ms.unwrap_or(0))).await;
                    "slow"
                }),
            )
            .route(
                "/redirect",
                get(|| async { (StatusCode::FOUND, [(axum::http::header::LOCATION, "/ok")]).into_response() }),
            )
            .route(
                "/auth",
                get(|headers: HeaderMap| async move {
                    let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer good");
                    if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
                }),
            )
            .route("/echo", post(|body: axum::body::Bytes| async move { body }))
            .layer(axum::extract::DefaultBodyLimit::disable());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, _task: task }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

// -------------------------------------------------------------------------------------------------
// A running crmhost

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
            database_url: None,
            master_key: None,
            previous_master_keys: Vec::new(),
            allowed_return_origins: Vec::new(),
            scheduler: crmhost::sync::SchedulerOptions::default(),
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
        let mut operator = OperatorPluginConfig::default();
        if let Some(sim) = &options.sim {
            crmhost::sandbox::point_plugins_at(sim, &mut operator);
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
        };
        let app = Application::build_with_bundled(config, options.bundled).await.expect("app builds");
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let sandbox = app.sandbox().cloned();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
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
            sandbox,
            sim: options.sim,
            database_url,
            _db: db,
        })
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

// -------------------------------------------------------------------------------------------------
// Raw SQL, for tests that look at or tamper with stored rows directly

/// Runs one statement (no parameters) on the database at `url`; returns rows affected.
pub async fn raw_execute(url: &str, sql: &str) -> u64 {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        let done = sqlx::query(sql).execute(&pool).await.expect("statement").rows_affected();
        pool.close().await;
        done
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let done = sqlx::query(sql).execute(&pool).await.expect("statement").rows_affected();
        pool.close().await;
        done
    }
}

/// Every row of a query (no parameters), each as its columns' bytes (text as UTF-8, nulls empty).
pub async fn raw_rows(url: &str, sql: &str) -> Vec<Vec<Vec<u8>>> {
    use sqlx::Row;
    fn cell<R: Row>(row: &R, i: usize) -> Vec<u8>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
        if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>, _>(i) {
            return bytes;
        }
        if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
            return text.into_bytes();
        }
        if let Ok(Some(n)) = row.try_get::<Option<i64>, _>(i) {
            return n.to_string().into_bytes();
        }
        Vec::new()
    }
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        let rows = sqlx::query(sql).fetch_all(&pool).await.expect("query");
        pool.close().await;
        rows.iter().map(|r| (0..r.columns().len()).map(|i| cell(r, i)).collect()).collect()
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let rows = sqlx::query(sql).fetch_all(&pool).await.expect("query");
        pool.close().await;
        rows.iter().map(|r| (0..r.columns().len()).map(|i| cell(r, i)).collect()).collect()
    }
}

// -------------------------------------------------------------------------------------------------
// A sandbox app connected to one CRM, for adapter tests

use crmhost::plugins::bindings::adapter::{Page, PullRequest, PushOutcome, PushRecord};
use crmhost::plugins::bindings::{AdapterError, FieldValue, Value};

/// A sandbox crmhost with workspace `w1` connected to one emulated CRM, and that connection's
/// plugin and call context (credentials that refresh themselves), for calling the adapter directly.
pub struct ConnectedAdapter {
    /// The app.
    pub app: TestApp,
    /// The adapter.
    pub plugin: Arc<crmhost::plugins::LoadedPlugin>,
    /// The connection's call context.
    pub context: crmhost::plugins::CallContext,
}

impl ConnectedAdapter {
    /// Starts a sandbox app and connects `w1` to `slug` through the OAuth flow.
    pub async fn connect(slug: &str) -> Self {
        let app = TestApp::spawn(AppOptions { sandbox: true, ..AppOptions::default() }).await.expect("app");
        assert_eq!(app.connect("w1", slug).await.status(), reqwest::StatusCode::OK, "connect {slug}");
        let workspace = crmhost::domain::WorkspaceId::parse("w1").expect("workspace");
        let slug = crmhost::domain::PluginSlug::parse(slug).expect("slug");
        let (plugin, context) = app.state.connections.call_context(&workspace, &slug).await.expect("connected");
        Self { app, plugin, context }
    }

    /// `push`, expecting the call itself to succeed.
    pub async fn push(&self, entity: &str, key: &str, records: &[PushRecord]) -> Vec<PushOutcome> {
        self.plugin.push(self.context.clone(), entity, key, records).await.expect("call").expect("push")
    }

    /// `pull`, with the adapter's answer.
    pub async fn pull(&self, request: &PullRequest) -> Result<Page, AdapterError> {
        self.plugin.pull(self.context.clone(), request).await.expect("call")
    }

    /// Every page of a pull, following cursors.
    pub async fn pull_all(&self, mut request: PullRequest) -> Vec<Page> {
        let mut pages = Vec::new();
        loop {
            let page = self.pull(&request).await.expect("pull");
            let next = page.next_cursor.clone();
            pages.push(page);
            match next {
                Some(cursor) => request.cursor = Some(cursor),
                None => return pages,
            }
            assert!(pages.len() < 500, "paging does not end");
        }
    }
}

/// A text field.
pub fn text_field(name: &str, value: &str) -> FieldValue {
    FieldValue { name: name.to_owned(), value: Value::Text(value.to_owned()) }
}

/// The ids of successful push outcomes; panics on a failure.
pub fn written_ids(outcomes: &[PushOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            PushOutcome::Created(id) | PushOutcome::Updated(id) => id.clone(),
            PushOutcome::Failed(e) => panic!("push failed: {e:?}"),
        })
        .collect()
}

/// A pull of `entity` with no cursor, filter or field list.
pub fn pull_request(entity: &str, limit: u32) -> PullRequest {
    PullRequest { entity: entity.to_owned(), cursor: None, modified_since: None, ids: vec![], fields: vec![], limit }
}

// -------------------------------------------------------------------------------------------------
// A crmhost with workspace `w1` connected to an empty emulator, driven through the sync API

/// Which emulated CRM a sync test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crm {
    /// The Salesforce emulator.
    Salesforce,
    /// The HubSpot emulator.
    Hubspot,
}

impl Crm {
    /// The plugin slug.
    pub fn slug(self) -> &'static str {
        match self {
            Self::Salesforce => "salesforce",
            Self::Hubspot => "hubspot",
        }
    }

    /// The CRM's name of a contact field, by the default mapping's workspace field.
    pub fn contact_field(self, app_field: &str) -> &'static str {
        match (self, app_field) {
            (Self::Salesforce, "email") => "Email",
            (Self::Salesforce, "first_name") => "FirstName",
            (Self::Salesforce, "last_name") => "LastName",
            (Self::Salesforce, "phone") => "Phone",
            (Self::Salesforce, "title") => "Title",
            (Self::Hubspot, "email") => "email",
            (Self::Hubspot, "first_name") => "firstname",
            (Self::Hubspot, "last_name") => "lastname",
            (Self::Hubspot, "phone") => "phone",
            (Self::Hubspot, "title") => "jobtitle",
            (_, other) => panic!("no contact field `{other}` in the default mappings"),
        }
    }
}

/// A crmhost whose workspace `w1` is connected to one emulated CRM that starts empty.
pub struct SyncHarness {
    /// The app.
    pub app: TestApp,
    /// The emulators.
    pub sim: Arc<crm_sim::SimHandle>,
    /// Which CRM.
    pub crm: Crm,
}

impl SyncHarness {
    /// Starts emulators (with `knobs`) and an app on `backend`, and connects `w1`; `None` when
    /// the backend is unavailable.
    pub async fn start(backend: Backend, crm: Crm, knobs: crm_sim::knobs::Knobs) -> Option<Self> {
        Self::start_with(backend, crm, knobs, crmhost::sync::SchedulerOptions::default()).await
    }

    /// [`SyncHarness::start`] with scheduler options (tests shorten its timings).
    pub async fn start_with(
        backend: Backend,
        crm: Crm,
        knobs: crm_sim::knobs::Knobs,
        scheduler: crmhost::sync::SchedulerOptions,
    ) -> Option<Self> {
        let mut options = crm_sim::SimOptions::both_on_free_ports();
        options.knobs = knobs;
        let sim = Arc::new(crm_sim::start(options).await.expect("emulators start"));
        let app =
            TestApp::spawn(AppOptions { backend, sim: Some(sim.clone()), scheduler, ..AppOptions::default() }).await?;
        let connected = app.connect("w1", crm.slug()).await;
        assert_eq!(connected.status(), reqwest::StatusCode::OK, "connect {}", crm.slug());
        Some(Self { app, sim, crm })
    }

    /// A request to `/api/v1/workspaces/w1{path}` as an admin of `w1`.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.app.as_role(method, &format!("/api/v1/workspaces/w1{path}"), "w1", crmhost::auth::Role::Admin)
    }

    /// `/integrations/<slug>{rest}`.
    pub fn integration_path(&self, rest: &str) -> String {
        format!("/integrations/{}{rest}", self.crm.slug())
    }

    /// Sends a request and returns its status and JSON body.
    pub async fn send(request: reqwest::RequestBuilder) -> (reqwest::StatusCode, serde_json::Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Upserts workspace records of `entity`; panics unless every one was written.
    pub async fn put_records(&self, entity: &str, records: Vec<serde_json::Value>) -> serde_json::Value {
        let (status, body) = Self::send(
            self.api(reqwest::Method::PUT, &format!("/records/{entity}"))
                .json(&serde_json::json!({ "records": records })),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        assert_eq!(body["failed"], 0, "{body}");
        body
    }

    /// Runs `push` / `pull` / `sync` with `?wait=true` and returns the finished run.
    pub async fn run(&self, operation: &str, body: serde_json::Value) -> serde_json::Value {
        let path = self.integration_path(&format!("/{operation}?wait=true"));
        let (status, run) = Self::send(self.api(reqwest::Method::POST, &path).json(&body)).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{operation}: {run}");
        assert_ne!(run["status"], "running", "the run should have ended: {run}");
        run
    }

    /// Starts `push` / `pull` / `sync` and polls the run until it ends (for runs longer than
    /// `?wait=true` waits); returns the finished run.
    pub async fn run_to_end(&self, operation: &str, body: serde_json::Value) -> serde_json::Value {
        let path = self.integration_path(&format!("/{operation}"));
        let (status, started) = Self::send(self.api(reqwest::Method::POST, &path).json(&body)).await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{operation}: {started}");
        let run_path = self
            .integration_path(&format!("/sync-runs/{}?items_limit=1", started["run_id"].as_str().unwrap_or_default()));
        loop {
            let (_, run) = Self::send(self.api(reqwest::Method::GET, &run_path)).await;
            if run["status"] != "running" {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Changes the integration's settings; returns the status and body.
    pub async fn patch_settings(&self, patch: serde_json::Value) -> (reqwest::StatusCode, serde_json::Value) {
        Self::send(self.api(reqwest::Method::PATCH, &self.integration_path("/settings")).json(&patch)).await
    }

    /// The integration as the workspace's integrations list shows it.
    pub async fn listed_integration(&self) -> serde_json::Value {
        let (status, body) = Self::send(self.api(reqwest::Method::GET, "/integrations")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body["integrations"]
            .as_array()
            .and_then(|list| list.iter().find(|i| i["slug"] == self.crm.slug()).cloned())
            .expect("the integration is listed")
    }

    /// The runs in the sync history matching `query` (e.g. `trigger=schedule`… filters are the
    /// history's own), newest first, up to 200.
    pub async fn history(&self, query: &str) -> Vec<serde_json::Value> {
        let path = self.integration_path(&format!("/sync-history?limit=200&{query}"));
        let (status, body) = Self::send(self.api(reqwest::Method::GET, &path)).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body["runs"].as_array().cloned().unwrap_or_default()
    }

    /// Finished runs started by `trigger`, newest first.
    pub async fn finished_runs(&self, trigger: &str) -> Vec<serde_json::Value> {
        self.history(&format!("trigger={trigger}")).await.into_iter().filter(|r| r["status"] != "running").collect()
    }

    /// Waits up to `timeout` for `count` finished runs of `trigger`; returns them, newest first.
    pub async fn wait_for_runs(&self, trigger: &str, count: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let runs = self.finished_runs(trigger).await;
            if runs.len() >= count || Instant::now() >= deadline {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A run with its per-record outcomes.
    pub async fn run_detail(&self, run_id: &str) -> serde_json::Value {
        let (status, body) =
            Self::send(self.api(reqwest::Method::GET, &self.integration_path(&format!("/sync-runs/{run_id}")))).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body
    }

    /// A workspace record, with its sync status.
    pub async fn record(&self, entity: &str, id: &str) -> serde_json::Value {
        let (status, body) = Self::send(self.api(reqwest::Method::GET, &format!("/records/{entity}/{id}"))).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body
    }

    /// Every live workspace record of `entity`, following the pages.
    pub async fn all_records(&self, entity: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut path = format!("/records/{entity}?limit=200");
        loop {
            let (status, body) = Self::send(self.api(reqwest::Method::GET, &path)).await;
            assert_eq!(status, reqwest::StatusCode::OK, "{body}");
            out.extend(body["records"].as_array().cloned().unwrap_or_default());
            match body["next_after"].as_str() {
                Some(after) => path = format!("/records/{entity}?limit=200&after={after}"),
                None => return out,
            }
        }
    }

    /// The live contacts in the emulator: CRM id → fields by workspace field name.
    pub fn crm_contacts(&self) -> std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
        let app_fields = ["email", "first_name", "last_name", "phone", "title"];
        let mut out = std::collections::BTreeMap::new();
        match self.crm {
            Crm::Salesforce => {
                let state = self.sim.sim().salesforce();
                let contacts = state.objects.iter().find(|o| o.schema.name == "Contact").expect("Contact");
                for r in contacts.records.values().filter(|r| r.deleted_at.is_none()) {
                    let fields = app_fields
                        .iter()
                        .filter_map(|f| r.fields.get(self.crm.contact_field(f)).map(|v| ((*f).to_owned(), v.clone())))
                        .collect();
                    out.insert(r.id.clone(), fields);
                }
            }
            Crm::Hubspot => {
                let state = self.sim.sim().hubspot();
                for r in state.objects["contacts"].records.values().filter(|r| r.archived_at.is_none()) {
                    let fields = app_fields
                        .iter()
                        .filter_map(|f| {
                            r.properties
                                .get(self.crm.contact_field(f))
                                .map(|v| ((*f).to_owned(), serde_json::Value::String(v.clone())))
                        })
                        .collect();
                    out.insert(r.id.to_string(), fields);
                }
            }
        }
        out
    }

    /// The CRM id of the emulator contact with this email.
    pub fn crm_id_of(&self, email: &str) -> String {
        self.crm_contacts()
            .into_iter()
            .find(|(_, f)| f.get("email").and_then(|v| v.as_str()) == Some(email))
            .map(|(id, _)| id)
            .unwrap_or_else(|| panic!("no CRM contact with email {email}"))
    }

    /// Edits a contact in the emulator as a CRM user would (its modification time moves).
    pub fn edit_crm_contact(&self, crm_id: &str, app_field: &str, value: &str) {
        let field = self.crm.contact_field(app_field);
        let now = self.sim.sim().clock.now();
        match self.crm {
            Crm::Salesforce => {
                let mut state = self.sim.sim().salesforce();
                let contacts = state.objects.iter_mut().find(|o| o.schema.name == "Contact").expect("Contact");
                let mut input = serde_json::Map::new();
                input.insert(field.to_owned(), serde_json::Value::String(value.to_owned()));
                contacts.update(crm_id, &input, now).expect("update accepted");
            }
            Crm::Hubspot => {
                let mut state = self.sim.sim().hubspot();
                let id: u64 = crm_id.parse().expect("numeric id");
                let record = state.objects.get_mut("contacts").and_then(|o| o.records.get_mut(&id)).expect("contact");
                record.properties.insert(field.to_owned(), value.to_owned());
                record.updated_at = now;
            }
        }
    }
}

/// What [`SyncHarness::edits_from_three_places`] measured.
#[derive(Debug, Clone, Copy)]
pub struct ThreePlaces {
    /// The first two-way sync of every contact (all created in the CRM), in seconds.
    pub first_sync_secs: f64,
    /// The two-way sync that brought the three tenths of edits across, in seconds.
    pub edit_sync_secs: f64,
    /// Records that sync wrote (either side).
    pub edits_written: u64,
}

impl SyncHarness {
    /// Two-way sync of `n` contacts (`c0`…), then a tenth edited directly in the CRM, a tenth
    /// through a second workspace `w2` connected to the same CRM account (and synced from there),
    /// and a tenth in `w1`; one more sync of `w1` must carry every edit to the other side, with
    /// exactly those counts in the run (panics otherwise). Returns the timings.
    pub async fn edits_from_three_places(&self, n: usize) -> ThreePlaces {
        let (crm, tenth) = (self.crm, n / 10);
        let at = format!("{crm:?}");
        for chunk in contacts(0..n, "").chunks(200) {
            self.put_records("contact", chunk.to_vec()).await;
        }
        let started = Instant::now();
        let first = self.run_to_end("sync", serde_json::json!({"entities": ["contact"]})).await;
        let first_sync_secs = started.elapsed().as_secs_f64();
        assert_eq!(
            (first["status"].as_str(), first["success_count"].as_u64()),
            (Some("completed"), Some(n as u64)),
            "{at}: {first}"
        );

        // A second workspace on the same CRM account brings everything in.
        assert_eq!(self.app.connect("w2", crm.slug()).await.status(), reqwest::StatusCode::OK);
        let imported = self.sync_other_workspace("w2").await;
        assert_eq!(imported["success_count"].as_u64(), Some(n as u64), "{at}: {imported}");
        let crm_ids: Vec<String> = {
            let by_email: std::collections::HashMap<String, String> = self
                .crm_contacts()
                .into_iter()
                .filter_map(|(id, f)| f.get("email").and_then(|e| e.as_str()).map(|e| (e.to_owned(), id)))
                .collect();
            (0..n).map(|i| by_email[&format!("c{i}@example.com")].clone()).collect()
        };

        // A tenth edited through the second workspace, and synced from there.
        let w2_edits: Vec<serde_json::Value> = (tenth..2 * tenth)
            .map(|i| {
                serde_json::json!({"id": format!("{}-{}", crm.slug(), crm_ids[i]), "fields": {
                    "email": format!("c{i}@example.com"), "first_name": format!("First{i}"),
                    "last_name": format!("Last{i}"), "title": format!("W2Edit{i}")}})
            })
            .collect();
        for chunk in w2_edits.chunks(200) {
            let put = self
                .app
                .as_role(
                    reqwest::Method::PUT,
                    "/api/v1/workspaces/w2/records/contact",
                    "w2",
                    crmhost::auth::Role::Admin,
                )
                .json(&serde_json::json!({ "records": chunk }));
            let (status, written) = Self::send(put).await;
            assert_eq!((status, written["failed"].as_u64()), (reqwest::StatusCode::OK, Some(0)), "{written}");
        }
        let pushed = self.sync_other_workspace("w2").await;
        assert_eq!(
            (pushed["success_count"].as_u64(), pushed["failure_count"].as_u64()),
            (Some(tenth as u64), Some(0)),
            "{at}: {pushed}"
        );

        // A tenth edited directly in the CRM, and a tenth in the first workspace.
        for (i, crm_id) in crm_ids.iter().enumerate().take(tenth) {
            self.edit_crm_contact(crm_id, "title", &format!("CrmEdit{i}"));
        }
        let app_edits: Vec<serde_json::Value> = contacts(2 * tenth..3 * tenth, "")
            .into_iter()
            .enumerate()
            .map(|(k, mut c)| {
                c["fields"]["title"] = serde_json::json!(format!("AppEdit{}", 2 * tenth + k));
                c
            })
            .collect();
        for chunk in app_edits.chunks(200) {
            self.put_records("contact", chunk.to_vec()).await;
        }

        let started = Instant::now();
        let run = self.run_to_end("sync", serde_json::json!({"entities": ["contact"]})).await;
        let edit_sync_secs = started.elapsed().as_secs_f64();
        assert_eq!(run["status"], "completed", "{at}: {run}");
        assert_eq!(
            (run["success_count"].as_u64(), run["failure_count"].as_u64(), run["conflict_count"].as_u64()),
            (Some(3 * tenth as u64), Some(0), Some(0)),
            "{at}: {tenth} pulled from the CRM, {tenth} from the other workspace, {tenth} pushed: {run}"
        );
        let records: std::collections::HashMap<String, serde_json::Value> = self
            .all_records("contact")
            .await
            .into_iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned).map(|id| (id, r)))
            .collect();
        let crm_side = self.crm_contacts();
        for (i, crm_id) in crm_ids.iter().enumerate() {
            let app_title = records[&format!("c{i}")]["fields"]["title"].as_str();
            let crm_title = crm_side[crm_id].get("title").and_then(|t| t.as_str());
            let expected = match i / tenth.max(1) {
                0 => format!("CrmEdit{i}"),
                1 => format!("W2Edit{i}"),
                2 => format!("AppEdit{i}"),
                _ => "Buyer".to_owned(),
            };
            assert_eq!((app_title, crm_title), (Some(expected.as_str()), Some(expected.as_str())), "{at}: c{i}");
        }
        ThreePlaces { first_sync_secs, edit_sync_secs, edits_written: 3 * tenth as u64 }
    }

    /// Runs a two-way contact sync of another workspace of the app (admin) to its end.
    async fn sync_other_workspace(&self, workspace: &str) -> serde_json::Value {
        let base = format!("/api/v1/workspaces/{workspace}/integrations/{}", self.crm.slug());
        let request = |method: reqwest::Method, path: String| {
            self.app.as_role(method, &path, workspace, crmhost::auth::Role::Admin)
        };
        let start =
            request(reqwest::Method::POST, format!("{base}/sync")).json(&serde_json::json!({"entities": ["contact"]}));
        let (status, started) = Self::send(start).await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{started}");
        let path = format!("{base}/sync-runs/{}?items_limit=1", started["run_id"].as_str().unwrap_or_default());
        loop {
            let (_, run) = Self::send(request(reqwest::Method::GET, path.clone())).await;
            if run["status"] != "running" {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `n` workspace contacts `c<i>` with emails `c<i>@example.com` (`prefix` varies the names).
pub fn contacts(range: std::ops::Range<usize>, prefix: &str) -> Vec<serde_json::Value> {
    range
        .map(|i| {
            serde_json::json!({
                "id": format!("c{i}"),
                "fields": {
                    "email": format!("c{i}@example.com"),
                    "first_name": format!("{prefix}First{i}"),
                    "last_name": format!("Last{i}"),
                    "title": "Buyer",
                }
            })
        })
        .collect()
}

/// Whether a check that needs Python must run (CI, or `CRMHOST_REQUIRE_PYTHON=1`) rather than be
/// skipped with a message where `python3 -m venv` is missing.
pub fn python_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") || std::env::var_os("CRMHOST_REQUIRE_PYTHON").is_some()
}

/// The python of the virtualenv `venv` (a test passes one under `CARGO_TARGET_TMPDIR`) with the
/// pinned `requirements` file installed (once; again when the file changes), or `None` to skip
/// where Python is missing and not required.
pub fn python_venv(venv: &Path, requirements: &Path) -> Option<PathBuf> {
    let pinned = std::fs::read_to_string(requirements).expect("the requirements file");
    let python = venv.join("bin").join("python");
    let marker = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(pinned.as_str()) && python.exists() {
        return Some(python);
    }
    let created = std::process::Command::new("python3").args(["-m", "venv", "--clear"]).arg(venv).status();
    if !created.is_ok_and(|s| s.success()) {
        assert!(!python_required(), "python3 with the venv module is required here (CI)");
        eprintln!("skipping: python3 -m venv is not available");
        return None;
    }
    let installed = std::process::Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements)
        .status()
        .expect("pip runs");
    assert!(installed.success(), "pip could not install {}", requirements.display());
    std::fs::write(&marker, pinned).expect("marker written");
    Some(python)
}

/// The peak resident set size of this process so far (Linux `VmHWM`), in MiB; 0 elsewhere.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}
