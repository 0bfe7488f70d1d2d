//! `crmhost serve --sandbox`: emulators in-process, bundled plugins pointed at them.

use crmhost::domain::PluginSlug;
use crmhost_tests::{AppOptions, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

fn slug(s: &str) -> PluginSlug {
    PluginSlug::parse(s).unwrap()
}

#[tokio::test]
async fn sandbox_mode_starts_seeded_emulators_and_points_the_bundled_plugins_at_them() {
    let app = TestApp::spawn(AppOptions { sandbox: true, ..AppOptions::default() }).await.unwrap();
    let response = app.get("/api/v1/sandbox").await;
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.unwrap();
    let salesforce = info["sandbox"]["emulators"]["salesforce"].as_str().unwrap().to_owned();
    let hubspot = info["sandbox"]["emulators"]["hubspot"].as_str().unwrap().to_owned();
    assert_eq!(info["sandbox"]["oauth_client_id"], "crm-sim-client");

    // The emulators answer and hold sample records.
    let state: Value = app.client.get(format!("{hubspot}/__sim/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["salesforce"]["records"]["Contact"], 25);
    assert_eq!(state["hubspot"]["records"]["companies"], 10);

    // Salesforce: OAuth endpoints, client and egress point at the emulator.
    let sf = app.state.plugins.get(&slug("salesforce")).unwrap();
    let oauth = sf.oauth().unwrap();
    assert_eq!(oauth.authorize_url, format!("{salesforce}/services/oauth2/authorize"));
    assert_eq!(oauth.token_url, format!("{salesforce}/services/oauth2/token"));
    assert_eq!(sf.oauth_client_id().as_deref(), Some("crm-sim-client"));
    assert!(sf.has_secret("client_secret"));
    let api = url::Url::parse(&format!("{salesforce}/services/data/v62.0/sobjects")).unwrap();
    assert_eq!(sf.egress().check_url(&api), Ok(()));
    assert!(sf.egress().allows_private());
    // ...and nothing else on loopback.
    let other = url::Url::parse("http://127.0.0.1:1/").unwrap();
    assert!(sf.egress().check_url(&other).is_err());

    // HubSpot: its API base is the emulator.
    let hs = app.state.plugins.get(&slug("hubspot")).unwrap();
    assert_eq!(hs.operator_settings().get("base_url"), Some(&hubspot));
    assert_eq!(hs.oauth().unwrap().token_url, format!("{hubspot}/oauth/v3/token"));
}

#[tokio::test]
async fn outside_sandbox_mode_the_sandbox_route_says_how_to_get_one() {
    let app = TestApp::spawn(AppOptions::default()).await.unwrap();
    let response = app.get("/api/v1/sandbox").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("--sandbox"));
    // Without overrides the plugins keep their real endpoints.
    let sf = app.state.plugins.get(&slug("salesforce")).unwrap();
    assert_eq!(sf.oauth().unwrap().authorize_url, "https://login.salesforce.com/services/oauth2/authorize");
}
