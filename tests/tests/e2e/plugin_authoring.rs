//! A plugin written in Python (`tests/plugins/python-probe`), built here with componentize-py,
//! loads and runs in the host like any third party's file: CPython inside (about 14 core module
//! instances), WASI sockets imported, the host's imports called from Python. And what
//! `crmhost plugin new` writes, in Python and in Rust, builds and passes `crmhost plugin check`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crmhost::plugins::bindings::AdapterError;
use crmhost::plugins::cache::ComponentCache;
use crmhost::plugins::{CallContext, EngineSettings, LoadError, PluginEngine, PluginLoader, PluginSource};
use crmhost_tests::{EgressServer, load, operator, python_venv};
use tokio::sync::OnceCell;

fn probe_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins").join("python-probe")
}

/// The probe built once per test process, or `None` where Python is missing and not required.
async fn python_probe() -> Option<Vec<u8>> {
    static BUILT: OnceCell<Option<Vec<u8>>> = OnceCell::const_new();
    BUILT.get_or_init(|| async { tokio::task::spawn_blocking(build_probe).await.unwrap() }).await.clone()
}

fn build_probe() -> Option<Vec<u8>> {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("wit");
    componentize(&probe_dir(), &wit, "python-probe.wasm")
}

/// Builds the Python plugin in `dir` (its `app.py`) against the contract in `wit` with the
/// componentize-py the tests pin, or `None` where Python is missing and not required.
pub(crate) fn componentize(dir: &Path, wit: &Path, out_name: &str) -> Option<Vec<u8>> {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let python = python_venv(&tmp.join("py-componentize"), &probe_dir().join("requirements.txt"))?;
    let out = tmp.join(out_name);
    let built = std::process::Command::new(python.with_file_name("componentize-py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("-d")
        .arg(wit)
        .args(["-w", "crm-adapter", "componentize", "-p"])
        .arg(dir)
        .arg("app")
        .arg("-o")
        .arg(&out)
        .output()
        .expect("componentize-py runs");
    assert!(built.status.success(), "componentize-py failed:\n{}", String::from_utf8_lossy(&built.stderr));
    Some(std::fs::read(&out).expect("the built component"))
}

#[tokio::test]
async fn a_python_plugin_loads_describes_itself_and_calls_the_host() {
    let Some(bytes) = python_probe().await else { return };
    let server = EgressServer::start().await;
    let port = server.addr.port();
    let config = format!(
        "[plugins.python-probe]\nextra_allowed_hosts = [\"127.0.0.1:{port}\"]\nallow_http = true\nallow_private_networks = true"
    );
    let plugin = load(bytes, operator(&config)).await;

    let description = plugin.description();
    assert_eq!((description.slug.as_str(), description.version.as_str()), ("python-probe", "0.1.0"));
    assert_eq!(description.entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["contact"]);
    let fields = plugin.list_fields(CallContext::detached(), "contact").await.unwrap().unwrap();
    assert_eq!(fields[0].name, "contact");

    // `http.send` from Python: reached where the operator allows, denied elsewhere.
    let reached = plugin.list_fields(CallContext::detached(), &format!("get:{}", server.url("/ok"))).await.unwrap();
    assert_eq!(reached.unwrap()[0].name, "status:200:5");
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
async fn a_scaffolded_python_plugin_builds_and_passes_the_checks() {
    use crmhost::plugins::scaffold::{Language, scaffold};

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("acme-crm");
    let written = scaffold("acme-crm", Language::Python, &project, None).unwrap();
    assert!(written.iter().any(|f| f.ends_with("wit/crm-adapter.wit")), "{written:?}");
    let requirements = std::fs::read_to_string(project.join("requirements.txt")).unwrap();
    let pinned = std::fs::read_to_string(probe_dir().join("requirements.txt")).unwrap();
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
    let report = crmhost::plugins::check::check_component(bytes, "acme-crm.wasm").await;
    let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
    assert!(report.passed(), "{lines:#?}");
    assert!(lines.contains(&"pass  capability `pull`: claimed and implemented".to_owned()), "{lines:#?}");
}

#[tokio::test]
async fn a_scaffolded_rust_plugin_builds_and_passes_the_checks() {
    use crmhost::plugins::scaffold::{Language, scaffold};

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("acme-rs");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    scaffold("acme-rs", Language::Rust, &project, Some(&repo.join("sdk"))).unwrap();
    // The workspace's lock and the guest target directory the test plugins are built in: the same
    // dependency versions, already compiled.
    std::fs::copy(repo.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("guest");
    let built = tokio::task::spawn_blocking(move || {
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .output()
            .map(|output| (output, target.join("wasm32-wasip2/release/acme_rs.wasm")))
    })
    .await
    .unwrap()
    .expect("cargo runs");
    let (output, wasm) = built;
    assert!(output.status.success(), "the scaffold does not build:\n{}", String::from_utf8_lossy(&output.stderr));

    let report = crmhost::plugins::check::check_component(std::fs::read(wasm).unwrap(), "acme_rs.wasm").await;
    let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
    assert!(report.passed(), "{lines:#?}");
    assert!(lines[0].starts_with("pass  loads: `acme-rs` 0.1.0"), "{lines:#?}");
}
