//! A plugin written in Python (`tests/plugins/python-probe`), built here with componentize-py,
//! loads and runs in the host like any third party's file: CPython inside (about 14 core module
//! instances), WASI sockets imported, the host's imports called from Python. And what
//! `crmhost plugin new` writes, in Python and in Rust, builds and passes `crmhost plugin check`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crmhost::plugins::bindings::AdapterError;
use crmhost::plugins::branding::{Category, LogoOrigin};
use crmhost::plugins::cache::ComponentCache;
use crmhost::plugins::{
    CallContext, CredentialError, CredentialSource, EngineSettings, LoadError, PluginEngine, PluginLoader, PluginSource,
};
use crmhost_tests::{EgressServer, build_python_probe, load};
use secrecy::SecretString;
use tokio::sync::OnceCell;

/// The probe built once per test process, or `None` where Python is missing and not required.
async fn python_probe() -> Option<Vec<u8>> {
    static BUILT: OnceCell<Option<Vec<u8>>> = OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            tokio::task::spawn_blocking(|| build_python_probe(Path::new(env!("CARGO_TARGET_TMPDIR")))).await.unwrap()
        })
        .await
        .clone()
}

/// Builds a Python plugin project under the test's temporary directory.
pub(crate) fn componentize(dir: &Path, wit: &Path, out_name: &str) -> Option<Vec<u8>> {
    crmhost_tests::componentize(Path::new(env!("CARGO_TARGET_TMPDIR")), dir, wit, out_name)
}

#[tokio::test]
async fn a_python_plugin_loads_describes_itself_and_calls_the_host() {
    let Some(bytes) = python_probe().await else { return };
    let server = EgressServer::start().await;
    let plugin = load(bytes, crmhost_tests::python_probe_operator(&server)).await;

    let description = plugin.description();
    assert_eq!((description.slug.as_str(), description.version.as_str()), ("python-probe", "0.1.0"));
    assert_eq!(description.entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["contact"]);
    let fields = plugin.list_fields(CallContext::detached(), "contact").await.unwrap().unwrap();
    assert_eq!(fields[0].name, "contact");

    // `http.send` from Python: reached where the operator allows, denied elsewhere.
    let reached = plugin.list_fields(CallContext::detached(), &format!("get:{}", server.url("/ok"))).await.unwrap();
    assert_eq!(reached.unwrap()[0].name, "status:200:hello");
    let denied = plugin.list_fields(CallContext::detached(), "get:https://not-declared.example/").await.unwrap();
    match denied {
        Err(AdapterError::Internal(info)) => assert!(info.message.contains("Denied"), "{}", info.message),
        other => panic!("expected the host's denial, got {other:?}"),
    }
    // Each call is a fresh instance: the probe keeps answering.
    for entity in ["a", "b", "c"] {
        assert_eq!(plugin.list_fields(CallContext::detached(), entity).await.unwrap().unwrap()[0].name, entity);
    }
}

/// A connection's API key, as the vault would supply it; or no usable one.
struct Key(Option<&'static str>);

#[async_trait::async_trait]
impl CredentialSource for Key {
    async fn access_token(&self) -> Result<Option<SecretString>, CredentialError> {
        match self.0 {
            Some(key) => Ok(Some(SecretString::from(key))),
            None => Err(CredentialError("the connection was revoked".to_owned())),
        }
    }

    async fn refresh_after_unauthorized(&self) -> Result<Option<SecretString>, CredentialError> {
        Ok(None)
    }
}

#[tokio::test]
async fn a_python_plugin_with_an_api_key_gets_it_on_every_request_without_seeing_it() {
    let Some(bytes) = python_probe().await else { return };
    let server = EgressServer::start().await;
    let plugin = load(bytes, crmhost_tests::python_probe_operator(&server)).await;
    assert_eq!(plugin.contract_version(), "0.2.0");
    assert_eq!(plugin.description().auth.summary(), "api_key");
    // Catalogue metadata from `describe`: its category and its own logo.
    assert_eq!(plugin.branding().category, Category::Support);
    assert_eq!(plugin.branding().logo.origin, LogoOrigin::Plugin);
    assert!(plugin.branding().logo.svg.contains("#3776ab"));

    let with = |key| CallContext { credentials: Some(Arc::new(Key(key))), ..CallContext::detached() };
    let seen = plugin.list_fields(with(Some("s3cret")), &format!("get:{}", server.url("/credential"))).await.unwrap();
    assert_eq!(seen.unwrap()[0].name, "status:200:authorization=-;x-probe-key=Key s3cret;query=-");
    // No usable credential: the request is not sent, and the plugin is told why in 0.2's own case.
    let refused = plugin.list_fields(with(None), &format!("get:{}", server.url("/credential"))).await.unwrap();
    match refused {
        Err(AdapterError::Internal(info)) => {
            assert!(info.message.contains("NoCredentials") && info.message.contains("revoked"), "{}", info.message)
        }
        other => panic!("expected no-credentials, got {other:?}"),
    }
}

#[tokio::test]
async fn a_plugin_needing_more_core_instances_than_allowed_is_refused_naming_the_setting() {
    let Some(bytes) = python_probe().await else { return };
    // The probe makes about 14 (CPython, libc and shims); 4 is too few on either allocator.
    for pooling in [true, false] {
        let settings = EngineSettings { max_core_instances_per_plugin: 4, pooling, ..EngineSettings::default() };
        let loader = PluginLoader::new(PluginEngine::new(settings).unwrap(), ComponentCache::new(None), Arc::default());
        let source = PluginSource::File(PathBuf::from("python-probe.wasm"));
        let err = loader.load(Arc::from(bytes.clone()), source).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, LoadError::TooManyCoreInstances { limit: 4, .. }), "pooling {pooling}: {message}");
        assert!(message.contains("`[engine] max_core_instances_per_plugin` = 4"), "pooling {pooling}: {message}");
    }
}

#[tokio::test]
async fn the_conformance_checks_pass_for_the_python_probe() {
    let Some(bytes) = python_probe().await else { return };
    let report = crmhost::plugins::check::check_component(bytes, "python-probe.wasm").await;
    let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
    assert!(report.passed(), "{lines:#?}");
    assert!(lines[0].starts_with("pass  loads: `python-probe` 0.1.0"), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "pass  capability `pull`: not claimed, answers not-supported"), "{lines:#?}");
}

#[tokio::test]
async fn a_scaffolded_python_plugin_builds_and_passes_the_checks_against_the_example_crm() {
    use crmhost::plugins::scaffold::{Language, scaffold};

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("acme-crm");
    let written = scaffold("acme-crm", Language::Python, &project, None).unwrap();
    assert!(written.iter().any(|f| f.ends_with("wit/crm-adapter.wit")), "{written:?}");
    let requirements = std::fs::read_to_string(project.join("requirements.txt")).unwrap();
    let pinned = std::fs::read_to_string(crmhost_tests::python_probe_dir().join("requirements.txt")).unwrap();
    assert_eq!(requirements, pinned, "the scaffold pins the componentize-py the tests use");

    // Built against the contract it carries, as its README says.
    let Some(bytes) = tokio::task::spawn_blocking({
        let project = project.clone();
        move || componentize(&project, &project.join("wit"), "acme-crm.wasm")
    })
    .await
    .unwrap() else {
        return;
    };
    passes_the_checks_against_acme(bytes, "acme-crm.wasm").await;
}

/// Runs every check against crm-sim's Acme, the example CRM the scaffolds are written for, and
/// expects each to pass (none skipped but list-fields, which the scaffolds leave out).
async fn passes_the_checks_against_acme(bytes: Vec<u8>, file_name: &str) {
    let sim = crm_sim::start(crm_sim::SimOptions::acme_on_a_free_port()).await.unwrap();
    let url = sim.acme_url().unwrap();
    let report = crmhost::plugins::check::check_component_against(bytes, file_name, Some(&url)).await;
    let capabilities = ["capability `pull`", "capability `push`", "capability `delete`"];
    crmhost_tests::assert_checks_passed(&report, &capabilities, file_name);
    crmhost_tests::assert_checks_passed(&report, &crmhost_tests::CHECKS_AGAINST_A_CRM, file_name);
    assert_eq!(sim.sim().acme().live().count(), 5, "the checks' own records are deleted; the seeded ones stay");
}

#[tokio::test]
async fn a_scaffolded_rust_plugin_builds_and_passes_the_checks_against_the_example_crm() {
    use crmhost::plugins::scaffold::{Language, scaffold};

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("acme-rs");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    scaffold("acme-rs", Language::Rust, &project, Some(&repo.join("sdk"))).unwrap();
    // The workspace's lock and the guest target directory the test plugins are built in: the same
    // dependency versions, already compiled.
    std::fs::copy(repo.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("guest");
    let cargo = move |args: &'static [&'static str]| {
        let (project, target) = (project.clone(), target.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
                    .current_dir(&project)
                    .env("CARGO_TARGET_DIR", &target)
                    .args(args)
                    .output()
                    .map(|output| (output, target.join("wasm32-wasip2/release/acme_rs.wasm")))
            })
            .await
            .unwrap()
            .expect("cargo runs")
        }
    };
    let (output, wasm) = cargo(&["build", "--release", "--target", "wasm32-wasip2"]).await;
    assert!(output.status.success(), "the scaffold does not build:\n{}", String::from_utf8_lossy(&output.stderr));
    // Its unit tests run natively against the SDK's fake host.
    let (tested, _) = cargo(&["test", "--lib"]).await;
    let report = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success(),
        "the scaffold's tests fail:\n{report}\n{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(report.contains("test result: ok. 2 passed"), "{report}");

    let bytes = std::fs::read(wasm).unwrap();
    let report = crmhost::plugins::check::check_component(bytes.clone(), "acme_rs.wasm").await;
    let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
    assert!(lines[0].starts_with("pass  loads: `acme-rs` 0.1.0"), "{lines:#?}");
    passes_the_checks_against_acme(bytes, "acme_rs.wasm").await;
}

#[tokio::test]
async fn connecting_with_an_api_key_tests_it_then_seals_it_and_never_shows_it() {
    use crmhost::auth::Role;
    use reqwest::{Method, StatusCode};
    use serde_json::{Value, json};

    let Some(bytes) = python_probe().await else { return };
    let server = EgressServer::start().await;
    let app =
        crmhost_tests::app_with_python_probe(&bytes, &server, crmhost_tests::AppOptions::default()).await.unwrap();
    let connect = |body: Value| {
        app.as_role(Method::POST, "/api/v1/workspaces/w1/integrations/python-probe/connect", "w1", Role::Admin)
            .json(&body)
            .send()
    };

    // The catalogue says what to ask for.
    let catalogue: Value = app.get("/api/v1/integrations").await.json().await.unwrap();
    let probe = catalogue["integrations"].as_array().unwrap().iter().find(|p| p["slug"] == "python-probe").unwrap();
    assert_eq!((probe["auth_type"].as_str(), &probe["auth_types"]), (Some("api_key"), &json!(["api_key"])));
    assert_eq!(
        probe["credential_form"]["fields"],
        json!([{ "name": "api_key", "label": "Probe key", "secret": true }])
    );
    assert_eq!(probe["category"], "support");

    // Input that does not fit the scheme is refused before anything runs.
    for (body, expected) in [
        (json!({}), "send `api_key`"),
        (json!({ "username": "jane", "password": "x" }), "it connects with `api_key` (Probe key)"),
        (json!({ "api_key": "k", "return_url": "https://x.example/" }), "return_url is for OAuth"),
        (json!({ "api_key": "line\nbreak" }), "without control characters"),
        (json!({ "api_key": 7 }), "at `api_key`"),
    ] {
        let response = connect(body.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].as_str().unwrap().contains(expected), "{body}: {error}");
    }

    // A key the CRM refuses: 400 credentials_rejected, nothing stored.
    let refused = connect(json!({ "api_key": "pk-wrong-key" })).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "credentials_rejected", "{error}");
    let rows = crmhost_tests::raw_rows(&app.database_url, "select encrypted_tokens from integrations").await;
    assert!(rows.iter().all(|r| r[0].is_empty()), "nothing is stored for a refused key");

    // The right key: tested, stored sealed, connected at once.
    let connected = connect(json!({ "api_key": "pk-7d1e-good" })).await.unwrap();
    assert_eq!(connected.status(), StatusCode::OK);
    let connected: Value = connected.json().await.unwrap();
    assert_eq!(connected["status"], "connected");
    assert_eq!(connected["integration"]["account"]["label"], "Probe account");

    // Later calls open the sealed key and the host puts it on the request again.
    let tested = app
        .as_role(Method::POST, "/api/v1/workspaces/w1/integrations/python-probe/test", "w1", Role::Member)
        .send()
        .await
        .unwrap();
    let tested: Value = tested.json().await.unwrap();
    assert_eq!(tested["ok"], true, "{tested}");

    // The key is in no row, answer or audit entry in the clear.
    let everywhere = [
        raw_text(&app, "select encrypted_tokens, metadata from integrations").await,
        raw_text(&app, "select details from audit_log").await,
        app.as_role(Method::GET, "/api/v1/workspaces/w1/integrations", "w1", Role::Admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        app.as_role(Method::GET, "/api/v1/workspaces/w1/audit-log", "w1", Role::Admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    ];
    for text in &everywhere {
        assert!(!text.contains("pk-7d1e-good") && !text.contains("pk-wrong-key"), "{text}");
    }
    assert!(everywhere[3].contains("integration.connect_failed") && everywhere[3].contains("api_key"));

    // Disconnecting deletes the copy; only the CRM can revoke a key.
    let gone: Value = app
        .as_role(Method::DELETE, "/api/v1/workspaces/w1/integrations/python-probe", "w1", Role::Admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gone["revoked"], false);
    assert!(gone["revoke_error"].as_str().unwrap().contains("revoked in the CRM itself"), "{gone}");
}

/// Every cell of `sql`'s rows, as text.
async fn raw_text(app: &crmhost_tests::TestApp, sql: &str) -> String {
    let rows = crmhost_tests::raw_rows(&app.database_url, sql).await;
    rows.iter().flatten().map(|cell| String::from_utf8_lossy(cell).into_owned()).collect::<Vec<_>>().join("\n")
}
