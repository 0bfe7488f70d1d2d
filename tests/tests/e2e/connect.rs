//! Connecting a workspace: the OAuth flow against the emulators (PKCE, state, consent), sealed
//! token storage, refresh (proactive, after a 401, rotation, reuse, `invalid_grant`), disconnect
//! with revocation, key rotation, and refresh single-flight across two hosts on PostgreSQL.

use std::sync::Arc;

use crmhost::auth::Role;
use crmhost::domain::{PluginSlug, WorkspaceId};
use crmhost::oauth::TokenSet;
use crmhost::store::IntegrationStatus;
use crmhost_tests::{AppOptions, Backend, TestApp, browse_to_callback, raw_execute, raw_rows};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const SF_TOKEN: &str = "salesforce POST /services/oauth2/token";
const HS_TOKEN: &str = "hubspot POST /oauth/v3/token";

fn ws(s: &str) -> WorkspaceId {
    WorkspaceId::parse(s).unwrap()
}

fn slug(s: &str) -> PluginSlug {
    PluginSlug::parse(s).unwrap()
}

async fn sandbox() -> TestApp {
    TestApp::spawn(AppOptions { sandbox: true, ..AppOptions::default() }).await.unwrap()
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn test_connection(app: &TestApp, workspace: &str, slug: &str) -> (StatusCode, Value) {
    let path = format!("/api/v1/workspaces/{workspace}/integrations/{slug}/test");
    json_of(app.as_role(Method::POST, &path, workspace, Role::Member).send().await.unwrap()).await
}

async fn integrations(app: &TestApp, workspace: &str) -> Vec<Value> {
    let path = format!("/api/v1/workspaces/{workspace}/integrations");
    let (_, body) = json_of(app.as_role(Method::GET, &path, workspace, Role::Member).send().await.unwrap()).await;
    body["integrations"].as_array().cloned().unwrap_or_default()
}

async fn audit_actions(app: &TestApp, workspace: &str) -> Vec<String> {
    let path = format!("/api/v1/workspaces/{workspace}/audit-log?limit=500");
    let (_, body) = json_of(app.as_role(Method::GET, &path, workspace, Role::Admin).send().await.unwrap()).await;
    body["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
}

/// The stored tokens, opened with the app's vault.
async fn stored_tokens(app: &TestApp, workspace: &str, slug_name: &str) -> TokenSet {
    let stored = app.state.store.get_credentials(&ws(workspace), &slug(slug_name)).await.unwrap();
    TokenSet::open(&app.state.vault, &ws(workspace), &slug(slug_name), stored.sealed.as_ref().unwrap()).unwrap()
}

#[tokio::test]
async fn salesforce_connects_with_pkce_and_stores_sealed_tokens_and_the_account() {
    let app = sandbox().await;
    let authorize = app.start_connect("w1", "salesforce", json!({})).await;
    let url = url::Url::parse(&authorize).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "crm-sim-client");
    assert_eq!(query["scope"], "api refresh_token");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], format!("{}/api/v1/integrations/callback/salesforce", app.base));
    assert_eq!(query["state"].len(), 43, "256 bits, base64url");

    let callback = browse_to_callback(&authorize).await;
    let (status, body) = json_of(app.client.get(&callback).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "connected");
    let account = &body["integration"]["account"];
    assert!(account["id"].as_str().unwrap().starts_with("00D"), "org id: {account}");
    assert!(account["label"].as_str().unwrap().contains('@'), "label names the user: {account}");

    let listed = integrations(&app, "w1").await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0]["slug"].as_str(), listed[0]["status"].as_str()), (Some("salesforce"), Some("connected")));
    assert_eq!(listed[0]["account"], *account);
    assert_eq!(listed[0]["connected_by"], "user-1");

    // The tokens are the emulator's, sealed: the raw row holds neither of them.
    let tokens = stored_tokens(&app, "w1", "salesforce").await;
    let issued: Vec<String> = app.sim().sim().salesforce().oauth.access.keys().cloned().collect();
    assert!(issued.contains(&tokens.access_token().expose_secret().to_owned()));
    let rows = raw_rows(&app.database_url, "select encrypted_tokens, metadata from integrations").await;
    let raw = rows.concat().concat();
    for secret in [tokens.access_token().expose_secret(), tokens.refresh_token().unwrap().expose_secret()] {
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "a token is stored in clear");
    }
    // The facts the plugin asked for were captured.
    let stored = app.state.store.get_credentials(&ws("w1"), &slug("salesforce")).await.unwrap();
    assert!(stored.metadata["facts"]["instance_url"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    assert!(stored.metadata["facts"]["id"].as_str().unwrap().contains("/id/00D"));
    assert!(audit_actions(&app, "w1").await.starts_with(&["integration.connected".to_owned()]));

    // A second use of the same callback is a replay: refused, nothing changes.
    let (status, body) = json_of(app.client.get(&callback).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("state_replayed")));
}

#[tokio::test]
async fn hubspot_connects_and_names_the_portal() {
    let app = sandbox().await;
    let (status, body) = json_of(app.connect("w1", "hubspot").await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["integration"]["account"]["id"], "62515");
    assert_eq!(body["integration"]["account"]["label"], "HubSpot account 62515");
    assert!(body["integration"]["token_expires_at"].is_string(), "HubSpot sends expires_in");
    let stored = app.state.store.get_credentials(&ws("w1"), &slug("hubspot")).await.unwrap();
    assert_eq!(stored.metadata["facts"]["hub_id"], "62515");

    let (status, report) = test_connection(&app, "w1", "hubspot").await;
    assert_eq!((status, report["ok"].as_bool()), (StatusCode::OK, Some(true)), "{report}");
    assert_eq!(report["account"]["details"]["timeZone"], "US/Eastern");
}

#[tokio::test]
async fn the_emulator_checks_the_pkce_verifier_the_host_keeps() {
    let app = sandbox().await;
    let authorize = app.start_connect("w1", "salesforce", json!({})).await;
    let callback = browse_to_callback(&authorize).await;
    // Lose the verifier: the exchange then lacks `code_verifier` and the CRM refuses it.
    assert_eq!(
        raw_execute(
            &app.database_url,
            "update oauth_states set encrypted_verifier = null, verifier_nonce = null, key_version = null"
        )
        .await,
        1
    );
    let (status, body) = json_of(app.client.get(&callback).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    assert!(integrations(&app, "w1").await.is_empty(), "nothing stored");
    assert!(audit_actions(&app, "w1").await.contains(&"integration.connect_failed".to_owned()));
}

#[tokio::test]
async fn unknown_expired_and_mismatched_states_are_refused_and_nothing_is_stored() {
    let app = sandbox().await;
    let unknown = format!("{}/api/v1/integrations/callback/salesforce?code=x&state=nope", app.base);
    let (status, body) = json_of(app.client.get(&unknown).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("state_unknown")));

    // A Salesforce state brought to the HubSpot callback.
    let callback = browse_to_callback(&app.start_connect("w1", "salesforce", json!({})).await).await;
    let swapped = callback.replace("/callback/salesforce", "/callback/hubspot");
    let (status, body) = json_of(app.client.get(&swapped).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("state_mismatch")));

    // Expired: the user took longer than ten minutes.
    let callback = browse_to_callback(&app.start_connect("w1", "hubspot", json!({})).await).await;
    raw_execute(&app.database_url, "update oauth_states set expires_at = '2020-01-01T00:00:00Z' where used_at is null")
        .await;
    let (status, body) = json_of(app.client.get(&callback).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("state_expired")));

    // A browser gets a page rather than JSON.
    let page = app.client.get(&unknown).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.text().await.unwrap().contains("start the connection again"));

    assert!(integrations(&app, "w1").await.is_empty());
}

#[tokio::test]
async fn denied_consent_and_return_urls_send_the_user_back_with_the_outcome() {
    let app = TestApp::spawn(AppOptions {
        sandbox: true,
        allowed_return_origins: vec!["https://app.example.com".to_owned()],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    // A return URL outside the allowed origins is refused up front.
    let path = "/api/v1/workspaces/w1/integrations/hubspot/connect";
    let response = app
        .as_role(Method::POST, path, "w1", Role::Admin)
        .json(&json!({ "return_url": "https://evil.example.net/x" }))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("not allowed"), "{body}");

    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // The user refuses consent.
    app.sim().sim().update_knobs(|k| k.deny_authorization = true).unwrap();
    let authorize =
        app.start_connect("w1", "hubspot", json!({ "return_url": "https://app.example.com/settings?tab=crm" })).await;
    let callback = browse_to_callback(&authorize).await;
    assert!(callback.contains("error=access_denied"));
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://app.example.com/settings?tab=crm&crmhost_result=error"), "{location}");
    assert!(location.contains("error=access_denied"), "{location}");
    assert!(integrations(&app, "w1").await.is_empty());

    // Consent given: back to the app with the good news.
    app.sim().sim().update_knobs(|k| k.deny_authorization = false).unwrap();
    let authorize = app.start_connect("w1", "hubspot", json!({ "return_url": "https://app.example.com/done" })).await;
    let response = browser.get(browse_to_callback(&authorize).await).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        "https://app.example.com/done?crmhost_result=connected&integration=hubspot"
    );
    let actions = audit_actions(&app, "w1").await;
    assert!(
        actions.contains(&"integration.connect_failed".to_owned())
            && actions.contains(&"integration.connected".to_owned())
    );
}

#[tokio::test]
async fn a_401_mid_call_refreshes_once_rotates_and_reuse_of_the_old_token_ends_in_needs_reauth() {
    let app = sandbox().await;
    let sim = app.sim().sim().clone();
    sim.update_knobs(|k| k.refresh_token_rotation = true).unwrap();
    assert_eq!(json_of(app.connect("w1", "salesforce").await).await.0, StatusCode::OK);
    let before = stored_tokens(&app, "w1", "salesforce").await;
    let old_refresh = before.refresh_token().unwrap().expose_secret().to_owned();

    // The session ends at the CRM: the next call gets a 401, refreshes and retries.
    sim.revoke_token(before.access_token().expose_secret());
    let token_calls = sim.call_count(SF_TOKEN);
    let (status, report) = test_connection(&app, "w1", "salesforce").await;
    assert_eq!((status, report["ok"].as_bool()), (StatusCode::OK, Some(true)), "{report}");
    assert_eq!(sim.call_count(SF_TOKEN), token_calls + 1, "exactly one refresh");
    let after = stored_tokens(&app, "w1", "salesforce").await;
    assert_ne!(after.access_token().expose_secret(), before.access_token().expose_secret());
    let new_refresh = after.refresh_token().unwrap().expose_secret().to_owned();
    assert_ne!(new_refresh, old_refresh, "the rotated refresh token was persisted");

    // Someone replays the rotated-out refresh token: Salesforce revokes the whole chain...
    let replay = app
        .client
        .post(format!("{}/services/oauth2/token", app.sim().salesforce_url().unwrap()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old_refresh.as_str()),
            ("client_id", "crm-sim-client"),
            ("client_secret", "crm-sim-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    // ...so the next 401 finds the refresh token dead: invalid_grant → needs_reauth.
    let (status, body) = test_connection(&app, "w1", "salesforce").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("needs_reauth")), "{body}");
    assert_eq!(integrations(&app, "w1").await[0]["status"], "needs_reauth");
    assert!(audit_actions(&app, "w1").await.contains(&"integration.refresh_failed".to_owned()));
    // And it stays that way without calling the CRM again.
    let token_calls = sim.call_count(SF_TOKEN);
    assert_eq!(test_connection(&app, "w1", "salesforce").await.0, StatusCode::CONFLICT);
    assert_eq!(sim.call_count(SF_TOKEN), token_calls);

    // Connecting again heals it.
    assert_eq!(json_of(app.connect("w1", "salesforce").await).await.0, StatusCode::OK);
    assert_eq!(integrations(&app, "w1").await[0]["status"], "connected");
}

#[tokio::test]
async fn an_access_token_about_to_expire_is_refreshed_before_the_call() {
    let app = sandbox().await;
    let sim = app.sim().sim().clone();
    // Tokens that live one minute: inside the refresh margin from the start.
    sim.update_knobs(|k| k.hubspot_token_ttl_secs = 60).unwrap();
    assert_eq!(json_of(app.connect("w1", "hubspot").await).await.0, StatusCode::OK);
    sim.update_knobs(|k| k.hubspot_token_ttl_secs = 1800).unwrap();
    let before = stored_tokens(&app, "w1", "hubspot").await;
    let token_calls = sim.call_count(HS_TOKEN);
    let (status, report) = test_connection(&app, "w1", "hubspot").await;
    assert_eq!((status, report["ok"].as_bool()), (StatusCode::OK, Some(true)), "{report}");
    assert_eq!(sim.call_count(HS_TOKEN), token_calls + 1);
    let after = stored_tokens(&app, "w1", "hubspot").await;
    assert_ne!(after.access_token().expose_secret(), before.access_token().expose_secret());
    // HubSpot does not rotate: the refresh token is kept.
    assert_eq!(after.refresh_token().unwrap().expose_secret(), before.refresh_token().unwrap().expose_secret());
    let expires = integrations(&app, "w1").await[0]["token_expires_at"].as_str().unwrap().to_owned();
    let expires = chrono::DateTime::parse_from_rfc3339(&expires).unwrap();
    assert!(expires > chrono::Utc::now() + chrono::Duration::minutes(20), "the new expiry is stored");
    // Now fresh: no further refresh.
    test_connection(&app, "w1", "hubspot").await;
    assert_eq!(sim.call_count(HS_TOKEN), token_calls + 1);
}

#[tokio::test]
async fn disconnect_revokes_at_the_crm_and_deletes_the_tokens() {
    let app = sandbox().await;
    for slug_name in ["salesforce", "hubspot"] {
        assert_eq!(json_of(app.connect("w1", slug_name).await).await.0, StatusCode::OK);
        let tokens = stored_tokens(&app, "w1", slug_name).await;
        let refresh = tokens.refresh_token().unwrap().expose_secret().to_owned();
        let path = format!("/api/v1/workspaces/w1/integrations/{slug_name}");
        let (status, body) = json_of(app.as_role(Method::DELETE, &path, "w1", Role::Admin).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["status"].as_str(), body["revoked"].as_bool()), (Some("disconnected"), Some(true)), "{body}");
        let revoked = if slug_name == "salesforce" {
            app.sim().sim().salesforce().oauth.refresh[&refresh].revoked
        } else {
            app.sim().sim().hubspot().oauth.refresh[&refresh].revoked
        };
        assert!(revoked, "{slug_name}: the refresh token is revoked at the CRM");
        let stored = app.state.store.get_credentials(&ws("w1"), &slug(slug_name)).await.unwrap();
        assert!(stored.sealed.is_none());
        assert_eq!(stored.status, IntegrationStatus::Disconnected);
        let (status, body) = test_connection(&app, "w1", slug_name).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_connected")));
    }
    let actions = audit_actions(&app, "w1").await;
    assert_eq!(actions.iter().filter(|a| *a == "integration.disconnected").count(), 2);
}

#[tokio::test]
async fn sealed_tokens_cannot_be_moved_to_another_workspace() {
    let app = sandbox().await;
    for workspace in ["w1", "w2"] {
        assert_eq!(json_of(app.connect(workspace, "hubspot").await).await.0, StatusCode::OK);
    }
    // Copy w1's sealed tokens over w2's row: the AAD binds them to w1.
    raw_execute(
        &app.database_url,
        "update integrations set encrypted_tokens = (select encrypted_tokens from integrations where workspace_id = 'w1'), \
         token_nonce = (select token_nonce from integrations where workspace_id = 'w1') where workspace_id = 'w2'",
    )
    .await;
    let (status, report) = test_connection(&app, "w2", "hubspot").await;
    assert_eq!((status, report["ok"].as_bool()), (StatusCode::OK, Some(false)), "{report}");
    assert!(report["error"]["message"].as_str().unwrap().contains("does not authenticate"), "{report}");
    let (_, report) = test_connection(&app, "w1", "hubspot").await;
    assert_eq!(report["ok"], true);
}

#[tokio::test]
async fn no_token_or_secret_reaches_logs_responses_or_the_audit_log() {
    assert!(crmhost_tests::capture_logs(), "another log subscriber was installed first (unset TEST_LOG)");
    let app = sandbox().await;
    let sim = app.sim().sim().clone();
    sim.update_knobs(|k| k.refresh_token_rotation = true).unwrap();
    let mut seen = String::new();
    for slug_name in ["salesforce", "hubspot"] {
        let response = app.connect("w1", slug_name).await;
        seen.push_str(&format!("{:?}", response.headers()));
        seen.push_str(&response.text().await.unwrap());
        // Force a refresh through a 401.
        let tokens = stored_tokens(&app, "w1", slug_name).await;
        sim.revoke_token(tokens.access_token().expose_secret());
        let (_, report) = test_connection(&app, "w1", slug_name).await;
        assert_eq!(report["ok"], true, "{report}");
        seen.push_str(&report.to_string());
        seen.push_str(&integrations(&app, "w1").await.iter().map(Value::to_string).collect::<String>());
        let path = format!("/api/v1/workspaces/w1/integrations/{slug_name}");
        let response = app.as_role(Method::DELETE, &path, "w1", Role::Admin).send().await.unwrap();
        seen.push_str(&response.text().await.unwrap());
    }
    let audit = app.as_role(Method::GET, "/api/v1/workspaces/w1/audit-log?limit=500", "w1", Role::Admin).send().await;
    seen.push_str(&audit.unwrap().text().await.unwrap());

    let mut secrets: Vec<String> = vec!["crm-sim-secret".to_owned()];
    {
        let salesforce = sim.salesforce();
        secrets.extend(salesforce.oauth.access.keys().cloned());
        secrets.extend(salesforce.oauth.refresh.keys().cloned());
    }
    {
        let hubspot = sim.hubspot();
        secrets.extend(hubspot.oauth.access.keys().cloned());
        secrets.extend(hubspot.oauth.refresh.keys().cloned());
    }
    // Salesforce: two access and two (rotated) refresh tokens; HubSpot: two access, one refresh; the client secret.
    assert_eq!(secrets.len(), 8, "tokens were issued");
    let logs = crmhost_tests::captured_logs();
    assert!(logs.contains("access token refreshed"), "the capture saw the cycle");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
        assert!(!seen.contains(secret.as_str()), "a secret is in a response");
    }
}

#[tokio::test]
async fn key_rotation_reseals_stored_tokens_while_the_server_keeps_working() {
    let sim = Arc::new(crm_sim::start(crm_sim::SimOptions::both_on_free_ports()).await.unwrap());
    let old = crmhost::vault::MasterKey::generate();
    let new = crmhost::vault::MasterKey::generate();
    let first = TestApp::spawn(AppOptions {
        sim: Some(sim.clone()),
        master_key: Some(old.to_base64()),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    for slug_name in ["salesforce", "hubspot"] {
        assert_eq!(json_of(first.connect("w1", slug_name).await).await.0, StatusCode::OK);
    }
    // Servers now run with the new key, still reading the old one.
    let second = TestApp::spawn(AppOptions {
        sim: Some(sim.clone()),
        database_url: Some(first.database_url.clone()),
        master_key: Some(new.to_base64()),
        previous_master_keys: vec![old.to_base64()],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(test_connection(&second, "w1", "hubspot").await.1["ok"], true);
    let vault = crmhost::vault::Vault::new(
        crmhost::vault::MasterKey::from_base64(&new.to_base64()).unwrap(),
        vec![crmhost::vault::MasterKey::from_base64(&old.to_base64()).unwrap()],
    );
    let report = crmhost::keys::rotate(&second.state.store, &vault).await.unwrap();
    assert_eq!((report.resealed, report.failed.len()), (2, 0), "{report:?}");
    let again = crmhost::keys::rotate(&second.state.store, &vault).await.unwrap();
    assert_eq!(again.resealed, 0, "nothing left to rotate");
    // The old key can go: a server with only the new key reads everything.
    let third = TestApp::spawn(AppOptions {
        sim: Some(sim.clone()),
        database_url: Some(first.database_url.clone()),
        master_key: Some(new.to_base64()),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    for slug_name in ["salesforce", "hubspot"] {
        let (status, report) = test_connection(&third, "w1", slug_name).await;
        assert_eq!((status, report["ok"].as_bool()), (StatusCode::OK, Some(true)), "{slug_name}: {report}");
    }
    drop((second, third));
    drop(first);
}

#[tokio::test]
async fn two_hosts_on_postgres_refreshing_at_once_make_one_refresh_request() {
    let sim = Arc::new(crm_sim::start(crm_sim::SimOptions::both_on_free_ports()).await.unwrap());
    let key = crmhost::vault::MasterKey::generate().to_base64();
    let Some(a) = TestApp::spawn(AppOptions {
        backend: Backend::Postgres,
        sim: Some(sim.clone()),
        master_key: Some(key.clone()),
        ..AppOptions::default()
    })
    .await
    else {
        return; // PostgreSQL not available and not required here.
    };
    let b = TestApp::spawn(AppOptions {
        backend: Backend::Postgres,
        sim: Some(sim.clone()),
        database_url: Some(a.database_url.clone()),
        master_key: Some(key),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    // A token inside the refresh margin, so every caller wants a refresh; the refreshed one is long-lived.
    sim.sim().update_knobs(|k| k.hubspot_token_ttl_secs = 60).unwrap();
    assert_eq!(json_of(a.connect("w1", "hubspot").await).await.0, StatusCode::OK);
    sim.sim().update_knobs(|k| k.hubspot_token_ttl_secs = 1800).unwrap();
    let token_calls = sim.sim().call_count(HS_TOKEN);

    let mut calls = Vec::new();
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        calls.push(test_connection(app, "w1", "hubspot"));
    }
    for (status, report) in futures::future::join_all(calls).await {
        assert_eq!((status, report["ok"].as_bool()), (StatusCode::OK, Some(true)), "{report}");
    }
    assert_eq!(sim.sim().call_count(HS_TOKEN), token_calls + 1, "one refresh request for both hosts");
    let stored = a.state.store.get_credentials(&ws("w1"), &slug("hubspot")).await.unwrap();
    assert_eq!(stored.version, 2, "connect, then one refresh");
}

#[tokio::test]
async fn concurrent_callers_in_one_host_wait_for_a_single_refresh() {
    let app = sandbox().await;
    let sim = app.sim().sim().clone();
    sim.update_knobs(|k| k.hubspot_token_ttl_secs = 60).unwrap();
    assert_eq!(json_of(app.connect("w1", "hubspot").await).await.0, StatusCode::OK);
    sim.update_knobs(|k| k.hubspot_token_ttl_secs = 1800).unwrap();
    let token_calls = sim.call_count(HS_TOKEN);
    let calls: Vec<_> = (0..10).map(|_| test_connection(&app, "w1", "hubspot")).collect();
    for (status, report) in futures::future::join_all(calls).await {
        assert_eq!((status, report["ok"].as_bool()), (StatusCode::OK, Some(true)), "{report}");
    }
    assert_eq!(sim.call_count(HS_TOKEN), token_calls + 1);
}
