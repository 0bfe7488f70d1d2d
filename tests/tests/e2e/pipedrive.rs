//! The Pipedrive plugin (`plugins/pipedrive`, Python), built here with componentize-py and
//! dropped into a sandbox server's plugins directory like any third party's file, against the
//! Pipedrive emulator the sandbox runs: it passes the conformance checks, connects with an API
//! token and with OAuth, and pushes, pulls (full, then incremental with a deletion) and deletes
//! through the sync API. No host code names Pipedrive.

use crm_sim::pipedrive::{API_TOKEN, Kind};
use crmhost::auth::Role;
use crmhost_tests::{AppOptions, TestApp, browse_to_callback};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The plugin built once per test process, or `None` where Python is missing and not required.
async fn pipedrive_plugin() -> Option<Vec<u8>> {
    crmhost_tests::pipedrive_plugin().await.map(|bytes| bytes.to_vec())
}

/// A sandbox server (its emulators include Pipedrive's) with the plugin installed.
async fn sandbox_with_pipedrive(bytes: &[u8]) -> TestApp {
    let app = TestApp::spawn(AppOptions { sandbox: true, share_compiled_components: true, ..AppOptions::default() })
        .await
        .unwrap();
    app.install_plugin("pipedrive.wasm", bytes);
    let reloaded = app.admin(Method::POST, "/api/v1/admin/plugins/reload").send().await.unwrap();
    assert_eq!(reloaded.status(), StatusCode::OK);
    assert!(app.state.plugins.get(&crmhost::domain::PluginSlug::parse("pipedrive").unwrap()).is_some());
    app
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn api(app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.as_role(method, &format!("/api/v1/workspaces/w1{path}"), "w1", Role::Admin)
}

async fn run(app: &TestApp, operation: &str, body: Value) -> Value {
    let (status, run) =
        send(api(app, Method::POST, &format!("/integrations/pipedrive/{operation}?wait=true")).json(&body)).await;
    assert_eq!(status, StatusCode::OK, "{operation}: {run}");
    assert_eq!(run["status"], "completed", "{operation}: {run}");
    run
}

#[tokio::test]
async fn the_pipedrive_plugin_passes_the_conformance_checks_against_its_emulator() {
    let Some(bytes) = pipedrive_plugin().await else { return };
    let sim = crm_sim::start(crm_sim::SimOptions::all_on_free_ports()).await.unwrap();
    let url = sim.pipedrive_url().unwrap();
    let report = crmhost::plugins::check::check_component_against(bytes, "pipedrive.wasm", Some(&url)).await;
    let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
    assert!(lines[0].contains("contract 0.2.0, auth oauth2 or api_key"), "{lines:#?}");
    crmhost_tests::assert_checks_passed(&report, &crmhost_tests::CHECKS_AGAINST_A_CRM, "pipedrive");
    // Both ways of connecting are tried, and the API key is the one Pipedrive's emulator accepts.
    crmhost_tests::assert_checks_passed(&report, &["connects with an API key"], "pipedrive");
    assert!(sim.sim().call_count("pipedrive GET /v1/users/me") >= 2, "test-connection ran with each credential");
}

#[tokio::test]
async fn a_workspace_connects_to_pipedrive_with_an_api_token_and_syncs_both_ways() {
    let Some(bytes) = pipedrive_plugin().await else { return };
    let app = sandbox_with_pipedrive(&bytes).await;
    let sim = app.sim().sim().clone();

    // The catalogue offers OAuth first and the token as the alternative.
    let catalogue: Value = app.get("/api/v1/integrations").await.json().await.unwrap();
    let entry =
        catalogue["integrations"].as_array().unwrap().iter().find(|p| p["slug"] == "pipedrive").unwrap().clone();
    assert_eq!(entry["auth_types"], json!(["oauth2", "api_key"]), "{entry}");
    assert_eq!(entry["credential_form"]["fields"][0]["name"], "api_key");
    assert_eq!(entry["logo_origin"], "plugin");

    let (status, connected) =
        send(api(&app, Method::POST, "/integrations/pipedrive/connect").json(&json!({"api_key": API_TOKEN}))).await;
    assert_eq!(status, StatusCode::OK, "{connected}");
    assert!(connected["integration"]["account"]["label"].as_str().unwrap().starts_with("Sim Company"), "{connected}");

    // Push: two new persons and one the CRM already has (matched on its email, updated).
    let records = json!({"records": [
        {"id": "p-1", "fields": {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}},
        {"id": "p-2", "fields": {"email": "alan@example.com", "first_name": "Alan", "last_name": "Turing"}},
        {"id": "p-3", "fields": {"email": "CONTACT1@example.com", "first_name": "Renamed", "last_name": "Seed"}},
    ]});
    let (status, body) = send(api(&app, Method::PUT, "/records/contact").json(&records)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pushed = run(&app, "push", json!({"entity": "contact", "record_ids": ["p-1", "p-2", "p-3"]})).await;
    assert_eq!(pushed["success_count"], 3, "{pushed}");
    let persons = sim.pipedrive().live_json(Kind::Persons);
    assert_eq!(persons.len(), 27, "25 seeded + 2 created");
    let seeded = persons.iter().find(|p| p["emails"][0]["value"] == "contact1@example.com").unwrap();
    assert_eq!((seeded["first_name"].as_str(), seeded["name"].as_str()), (Some("Renamed"), Some("Renamed Seed")));
    let ada = persons.iter().find(|p| p["emails"][0]["value"] == "ada@example.com").unwrap();
    let ada_id = ada["id"].as_u64().unwrap().to_string();

    // A first sync pulls everything (and sets the cursor the next, incremental one starts from).
    let (status, body) =
        send(api(&app, Method::PATCH, "/integrations/pipedrive/settings").json(&json!({"propagate_deletes": true})))
            .await;
    assert!(status.is_success(), "{body}");
    let first = run(&app, "sync", json!({"entities": ["contact"]})).await;
    let (_, listed) = send(api(&app, Method::GET, "/records/contact?limit=200")).await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 27, "{first}");

    // Deleted in Pipedrive → deleted in the workspace at the next (incremental) sync.
    let base = app.sim().pipedrive_url().unwrap();
    let deleted = app
        .client
        .delete(format!("{base}/api/v2/persons/{ada_id}"))
        .header("x-api-token", API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let recents_before = sim.call_count("pipedrive GET /v1/recents");
    run(&app, "sync", json!({"entities": ["contact"]})).await;
    assert!(sim.call_count("pipedrive GET /v1/recents") > recents_before, "the second sync reads recents");
    let (_, ada_record) = send(api(&app, Method::GET, "/records/contact/p-1")).await;
    assert!(ada_record["deleted_at"].is_string(), "{ada_record}");

    // Deleted in the workspace → deleted in Pipedrive.
    let (status, _) = send(api(&app, Method::DELETE, "/records/contact/p-2")).await;
    assert!(status.is_success());
    run(&app, "sync", json!({"entities": ["contact"]})).await;
    let persons = sim.pipedrive().live_json(Kind::Persons);
    assert!(!persons.iter().any(|p| p["emails"][0]["value"] == "alan@example.com"), "deleted in Pipedrive");
    assert_eq!(persons.len(), 25);
}

#[tokio::test]
async fn a_workspace_connects_to_pipedrive_with_oauth_and_calls_its_api_domain() {
    let Some(bytes) = pipedrive_plugin().await else { return };
    let app = sandbox_with_pipedrive(&bytes).await;
    let authorize = app.start_connect("w2", "pipedrive", json!({})).await;
    let callback = browse_to_callback(&authorize).await;
    let connected = app.client.get(callback).send().await.unwrap();
    assert_eq!(connected.status(), StatusCode::OK);
    let connected: Value = connected.json().await.unwrap();
    assert_eq!(connected["integration"]["account"]["id"], crm_sim::pipedrive::COMPANY_ID.to_string(), "{connected}");
    let tested: Value = app
        .as_role(Method::POST, "/api/v1/workspaces/w2/integrations/pipedrive/test", "w2", Role::Member)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], true, "{tested}");
    assert!(app.sim().sim().call_count("pipedrive POST /oauth/token") >= 1);
}
