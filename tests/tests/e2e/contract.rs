//! The published contract, checked from outside: Schemathesis (pinned in
//! `tests/schemathesis/requirements.txt`, installed into a virtualenv like the official clients)
//! generates requests from `GET /api/v1/openapi.json` for every operation — examples, coverage,
//! fuzzing and stateful sequences along the document's links — against a crmhost whose workspace
//! is connected to both emulated CRMs, on SQLite and on PostgreSQL. It must find no server error
//! and no answer outside the document (status, content type, headers, body schema), and every
//! request the document calls invalid must be refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use crmhost::auth::Role;
use crmhost_tests::{ADMIN_TOKEN, AppOptions, Backend, TestApp, contacts, python_venv, token};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The checks that make the contract: no 5xx, nothing undocumented, invalid input refused.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,negative_data_rejection,\
                      missing_required_header,ignored_auth";

fn schemathesis_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemathesis")
}

/// A crmhost with `w1` connected to both emulated CRMs, some records and a finished run.
async fn connected_app(backend: Backend) -> Option<TestApp> {
    // HubSpot's per-account rate limit lifted: the fuzzer's burst is not what this test measures.
    let mut options = crm_sim::SimOptions::both_on_free_ports();
    options.knobs.hubspot_ten_second_limit = 1_000_000;
    options.knobs.hubspot_search_per_second = 1_000_000;
    let sim = std::sync::Arc::new(crm_sim::start(options).await.unwrap());
    sim.sim().seed("contact", 5).unwrap();
    let app = TestApp::spawn(AppOptions { backend, sim: Some(sim), ..AppOptions::default() }).await?;
    for slug in ["salesforce", "hubspot"] {
        assert_eq!(app.connect("w1", slug).await.status(), StatusCode::OK, "{slug}");
    }
    let records = app
        .as_role(Method::PUT, "/api/v1/workspaces/w1/records/contact", "w1", Role::Owner)
        .json(&json!({ "records": contacts(0..5, "") }))
        .send()
        .await
        .unwrap();
    assert_eq!(records.status(), StatusCode::OK);
    let run = app
        .as_role(Method::POST, "/api/v1/workspaces/w1/integrations/salesforce/sync?wait=true", "w1", Role::Owner)
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), StatusCode::OK);
    Some(app)
}

/// Runs `st run` against the app with `extra` arguments; panics with its report unless it passed.
/// A run whose only trouble is the tool's own crash (a Python `Runtime Error` inside Hypothesis,
/// reported under ERRORS with no FAILURES: no answer of crmhost's was judged) is run once more.
fn schemathesis(st: &Path, app: &TestApp, backend: Backend, slug: &str, extra: &[&str]) {
    for attempt in 1..=2 {
        let (passed, report) = schemathesis_once(st, app, backend, slug, extra);
        let tool_crashed = report.contains("Runtime Error") && !report.contains("= FAILURES =");
        if passed {
            return;
        }
        assert!(
            tool_crashed && attempt == 1,
            "{backend:?} {slug}: Schemathesis found answers outside the contract:\n{report}"
        );
        eprintln!("schemathesis itself crashed ({backend:?} {slug}); running it again");
    }
}

/// One `st run`: whether it passed, and its report (stdout, then stderr).
fn schemathesis_once(st: &Path, app: &TestApp, backend: Backend, slug: &str, extra: &[&str]) -> (bool, String) {
    let output = Command::new(st)
        .arg("--config-file")
        .arg(schemathesis_dir().join("schemathesis.toml"))
        .args(["run", &format!("{}/api/v1/openapi.json", app.base)])
        .args(["--checks", &CHECKS.split_whitespace().collect::<String>()])
        // One worker: with two, CPython 3.11's `ast.parse` in Hypothesis's threads crashed the
        // tool ("AST constructor recursion depth mismatch"); one is barely slower (181 s vs 158 s).
        .args(["--max-examples", "20", "--seed", "7", "--workers", "1", "--request-timeout", "30"])
        .args(["--no-color", "--output-truncate", "true"])
        .args(extra)
        .env("ST_WORKSPACE_TOKEN", token("w1", Role::Owner))
        .env("ST_OPERATOR_TOKEN", ADMIN_TOKEN)
        .env("ST_SLUG", slug)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    let summary: String =
        report.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    eprintln!("schemathesis {backend:?} {slug} {extra:?}:\n{summary}");
    (output.status.success(), format!("{report}\n{}", String::from_utf8_lossy(&output.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let requirements = schemathesis_dir().join("requirements.txt");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-schemathesis");
    let Some(python) = tokio::task::spawn_blocking(move || python_venv(&venv, &requirements)).await.unwrap() else {
        return;
    };
    let st = python.with_file_name("st");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = connected_app(backend).await else { continue };
        // Disconnecting would end every later operation's connection: it runs last, alone.
        let (st_all, app_ref) = (st.clone(), &app);
        tokio::task::block_in_place(|| {
            for slug in ["salesforce", "hubspot"] {
                schemathesis(&st_all, app_ref, backend, slug, &["--exclude-operation-id", "disconnect"]);
            }
            let alone = ["--include-operation-id", "disconnect", "--phases", "examples,coverage,fuzzing"];
            for slug in ["salesforce", "hubspot"] {
                schemathesis(&st_all, app_ref, backend, slug, &alone);
            }
        });
    }
}
