//! The CRMs' official Python clients, unchanged and pinned (`tests/clients/requirements.txt`),
//! run against the emulators: simple-salesforce over TLS, hubspot-api-client with client-side
//! validation. The clients are installed into a virtualenv under cargo's target directory once.
//!
//! Without `python3` (or its `venv` module) the checks are skipped with a message, except in CI
//! (`CI=true`) or with `CRMHOST_REQUIRE_PYTHON_CLIENTS=1`, where they fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use crm_sim::SimOptions;

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var_os("CRMHOST_REQUIRE_PYTHON_CLIENTS").is_some()
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("clients")
}

/// The virtualenv's python, installing the pinned clients the first time; `None` to skip.
fn python() -> Option<PathBuf> {
    static VENV: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    VENV.get_or_init(|| {
        let requirements = std::fs::read_to_string(clients_dir().join("requirements.txt")).unwrap();
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-clients");
        let python = venv.join("bin").join("python");
        let marker = venv.join("installed-requirements.txt");
        if std::fs::read_to_string(&marker).ok().as_deref() == Some(requirements.as_str()) && python.exists() {
            return Some(python);
        }
        let created = Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv).status();
        if !created.is_ok_and(|s| s.success()) {
            assert!(!required(), "python3 with the venv module is required here (CI) to run the official clients");
            eprintln!("skipping official-client checks: python3 -m venv is not available");
            return None;
        }
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(clients_dir().join("requirements.txt"))
            .status()
            .unwrap();
        assert!(installed.success(), "pip could not install the pinned official clients");
        std::fs::write(&marker, requirements).unwrap();
        Some(python)
    })
    .clone()
}

fn run(python: &Path, script: &str, env: &[(&str, String)]) {
    let output = Command::new(python)
        .arg(clients_dir().join(script))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn simple_salesforce_runs_unchanged_over_tls() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("sim-cert.pem");
    let sim =
        crm_sim::start(SimOptions { tls_cert: Some(cert.clone()), ..SimOptions::both_on_free_ports() }).await.unwrap();
    sim.sim().seed("contact", 450).unwrap();
    sim.sim().update_knobs(|k| k.salesforce_query_batch_size = 200).unwrap();
    let tokens = salesforce_tokens_tls(&sim, &cert).await;
    let env = [
        ("SF_INSTANCE", tokens["instance_url"].as_str().unwrap().to_owned()),
        ("SF_TOKEN", tokens["access_token"].as_str().unwrap().to_owned()),
        ("SF_CA", cert.display().to_string()),
        // requests lets these override `session.verify`; point them at the emulator's CA too.
        ("REQUESTS_CA_BUNDLE", cert.display().to_string()),
        ("CURL_CA_BUNDLE", cert.display().to_string()),
    ];
    let python = python.clone();
    tokio::task::spawn_blocking(move || run(&python, "salesforce_client.py", &env)).await.unwrap();
    assert!(
        sim.sim().call_count("salesforce GET /services/data/{version}/query/{locator}") >= 2,
        "the client paged through nextRecordsUrl"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_api_client_runs_unchanged_with_client_side_validation() {
    let Some(python) = python() else { return };
    let sim = start().await;
    sim.sim().seed("contact", 250).unwrap();
    let base = sim.hubspot_url().unwrap();
    let url = format!(
        "{base}/oauth/authorize?client_id={CLIENT_ID}&redirect_uri={}&scope=crm.objects.contacts.read",
        urlencode(REDIRECT)
    );
    let code = authorize(&url).await["code"].clone();
    let env = [("HS_BASE", base), ("HS_CODE", code), ("HS_REDIRECT", REDIRECT.to_owned())];
    let python = python.clone();
    tokio::task::spawn_blocking(move || run(&python, "hubspot_client.py", &env)).await.unwrap();
    assert!(sim.sim().call_count("hubspot POST /crm/v3/objects/{object}/search") >= 1);
}

/// The Salesforce web-server flow against the TLS listener.
async fn salesforce_tokens_tls(sim: &crm_sim::SimHandle, cert: &Path) -> serde_json::Value {
    let pem = std::fs::read(cert).unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let base = sim.salesforce_url().unwrap();
    assert!(base.starts_with("https://"));
    let response = http
        .get(format!(
            "{base}/services/oauth2/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}",
            urlencode(REDIRECT)
        ))
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    http.post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
