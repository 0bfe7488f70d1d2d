//! Workspace routes: bearer JWTs, workspace scoping, the role each route needs, audit paging.

use crmhost::auth::Role;
use crmhost::domain::{PluginSlug, WorkspaceId};
use crmhost::store::{AuditAction, AuditTarget, IntegrationStatus, NewAuditEntry};
use crmhost_tests::{AppOptions, TestApp, token};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn get(app: &TestApp, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let mut request = app.client.get(format!("{}{path}", app.base));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every workspace route with the least role it needs. A role at or above it gets past
/// authorization (whatever the route then answers); below it gets 403 `insufficient_role`.
const ROUTES: &[(&str, &str, Role)] = &[
    ("GET", "/api/v1/workspaces/w1/integrations", Role::Member),
    ("GET", "/api/v1/workspaces/w1/audit-log", Role::Admin),
    ("POST", "/api/v1/workspaces/w1/integrations/hubspot/connect", Role::Admin),
    ("POST", "/api/v1/workspaces/w1/integrations/hubspot/test", Role::Member),
    ("DELETE", "/api/v1/workspaces/w1/integrations/hubspot", Role::Admin),
    ("PUT", "/api/v1/workspaces/w1/records/contact", Role::Member),
    ("GET", "/api/v1/workspaces/w1/records/contact", Role::Viewer),
    ("GET", "/api/v1/workspaces/w1/records/contact/r1", Role::Viewer),
    ("DELETE", "/api/v1/workspaces/w1/records/contact/r1", Role::Member),
    ("GET", "/api/v1/workspaces/w1/integrations/hubspot/fields?entity=contact", Role::Member),
    ("GET", "/api/v1/workspaces/w1/integrations/hubspot/field-mappings", Role::Member),
    ("PUT", "/api/v1/workspaces/w1/integrations/hubspot/field-mappings", Role::Admin),
    ("GET", "/api/v1/workspaces/w1/integrations/hubspot/settings", Role::Member),
    ("PATCH", "/api/v1/workspaces/w1/integrations/hubspot/settings", Role::Admin),
    ("POST", "/api/v1/workspaces/w1/integrations/hubspot/pause", Role::Admin),
    ("POST", "/api/v1/workspaces/w1/integrations/hubspot/resume", Role::Admin),
    ("POST", "/api/v1/workspaces/w1/integrations/hubspot/webhook-secret", Role::Admin),
    ("GET", "/api/v1/workspaces/w1/integrations/hubspot/webhook-secret", Role::Admin),
    ("DELETE", "/api/v1/workspaces/w1/integrations/hubspot/webhook-secret", Role::Admin),
    ("GET", "/api/v1/workspaces/w1/integrations/hubspot/records/contact/r1/files", Role::Member),
    ("GET", "/api/v1/workspaces/w1/integrations/hubspot/records/contact/r1/files/latest", Role::Member),
    ("POST", "/api/v1/workspaces/w1/webhook-endpoints", Role::Admin),
    ("GET", "/api/v1/workspaces/w1/webhook-endpoints", Role::Admin),
    ("GET", "/api/v1/workspaces/w1/webhook-endpoints/00000000-0000-4000-8000-000000000001", Role::Admin),
    ("PATCH", "/api/v1/workspaces/w1/webhook-endpoints/00000000-0000-4000-8000-000000000001", Role::Admin),
    ("DELETE", "/api/v1/workspaces/w1/webhook-endpoints/00000000-0000-4000-8000-000000000001", Role::Admin),
    ("POST", "/api/v1/workspaces/w1/webhook-endpoints/00000000-0000-4000-8000-000000000001/rotate-secret", Role::Admin),
    ("POST", "/api/v1/workspaces/w1/webhook-endpoints/00000000-0000-4000-8000-000000000001/ping", Role::Admin),
    ("GET", "/api/v1/workspaces/w1/webhook-endpoints/00000000-0000-4000-8000-000000000001/deliveries", Role::Admin),
    (
        "GET",
        "/api/v1/workspaces/w1/webhook-endpoints/00000000-0000-4000-8000-000000000001/deliveries/00000000-0000-4000-8000-000000000002",
        Role::Admin,
    ),
    (
        "POST",
        "/api/v1/workspaces/w1/webhook-endpoints/00000000-0000-4000-8000-000000000001/deliveries/00000000-0000-4000-8000-000000000002/redeliver",
        Role::Admin,
    ),
    ("POST", "/api/v1/workspaces/w1/integrations/hubspot/push", Role::Member),
    ("POST", "/api/v1/workspaces/w1/integrations/hubspot/pull", Role::Member),
    ("POST", "/api/v1/workspaces/w1/integrations/hubspot/sync", Role::Member),
    ("GET", "/api/v1/workspaces/w1/integrations/hubspot/sync-history", Role::Member),
    ("GET", "/api/v1/workspaces/w1/integrations/hubspot/sync-runs/r1", Role::Member),
    ("GET", "/api/v1/workspaces/w1/integrations/hubspot/sync-runs/r1/events", Role::Member),
    ("POST", "/api/v1/workspaces/w1/integrations/hubspot/sync-runs/r1/retry", Role::Member),
    ("GET", "/api/v1/workspaces/w1/conflicts", Role::Member),
    ("GET", "/api/v1/workspaces/w1/conflicts/x1", Role::Member),
    ("POST", "/api/v1/workspaces/w1/conflicts/x1/resolve", Role::Member),
    ("POST", "/api/v1/workspaces/w1/conflicts/x1/ignore", Role::Member),
];

async fn call(app: &TestApp, method: &str, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method, format!("{}{path}", app.base));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_workspace_route_checks_the_token_the_workspace_and_the_role() {
    let app = TestApp::spawn(AppOptions { sandbox: true, ..AppOptions::default() }).await.unwrap();
    for &(method, route, least) in ROUTES {
        let (status, _) = call(&app, method, route, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {route} without a token");
        let (status, _) = call(&app, method, route, Some("garbage")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {route} with garbage");
        let (status, body) = call(&app, method, route, Some(&token("w2", Role::Owner))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("wrong_workspace")),
            "{method} {route}"
        );
        for role in [Role::Viewer, Role::Member, Role::Admin, Role::Owner] {
            let (status, body) = call(&app, method, route, Some(&token("w1", role))).await;
            if role >= least {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN && !status.is_server_error(),
                    "{method} {route} as {role:?}: {status} {body}"
                );
            } else {
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (StatusCode::FORBIDDEN, Some("insufficient_role")),
                    "{method} {route} as {role:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_with_a_clear_message() {
    let app = TestApp::spawn(AppOptions::default()).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = crmhost::auth::Claims {
        sub: "u".to_owned(),
        workspace: "w1".to_owned(),
        role: Role::Owner,
        exp: now - 600,
        iat: now - 7200,
    };
    let expired = crmhost::auth::sign_hs256(&secrecy::SecretString::from(crmhost_tests::JWT_SECRET), &claims).unwrap();
    let (status, body) = get(&app, "/api/v1/workspaces/w1/integrations", Some(&expired)).await;
    assert_eq!((status, body["error"]["message"].as_str()), (StatusCode::UNAUTHORIZED, Some("the token has expired")));
}

#[tokio::test]
async fn integrations_are_listed_per_workspace_without_credentials() {
    let app = TestApp::spawn(AppOptions::default()).await.unwrap();
    let store = &app.state.store;
    let (w1, w2) = (WorkspaceId::parse("w1").unwrap(), WorkspaceId::parse("w2").unwrap());
    store
        .upsert_integration(
            &w1,
            &PluginSlug::parse("hubspot").unwrap(),
            IntegrationStatus::Connected,
            &json!({"account": "Acme (62515)"}),
            Some("u1"),
        )
        .await
        .unwrap();
    store
        .upsert_integration(
            &w2,
            &PluginSlug::parse("salesforce").unwrap(),
            IntegrationStatus::Connected,
            &json!({}),
            None,
        )
        .await
        .unwrap();
    let (status, body) = get(&app, "/api/v1/workspaces/w1/integrations", Some(&token("w1", Role::Member))).await;
    assert_eq!(status, StatusCode::OK);
    let rows = body["integrations"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["slug"].as_str(), rows[0]["status"].as_str(), rows[0]["account"].as_str()),
        (Some("hubspot"), Some("connected"), Some("Acme (62515)"))
    );
    let text = body.to_string();
    assert!(!text.contains("token\"") && !text.contains("encrypted"), "{text}");
}

#[tokio::test]
async fn the_audit_log_pages_newest_first_and_shows_only_the_callers_workspace() {
    let app = TestApp::spawn(AppOptions::default()).await.unwrap();
    for (workspace, n) in [("w1", "a1"), ("w2", "b1"), ("w1", "a2"), ("w1", "a3"), ("w1", "a4"), ("w1", "a5")] {
        let entry = NewAuditEntry::in_workspace(
            &WorkspaceId::parse(workspace).unwrap(),
            "u1",
            AuditAction::SyncStarted,
            AuditTarget::Integration(crmhost::domain::PluginSlug::parse("hubspot").unwrap()),
            json!({ "n": n }),
        );
        app.state.store.append_audit(&entry).await.unwrap();
    }
    let admin = token("w1", Role::Admin);
    let mut actions = Vec::new();
    let mut path = "/api/v1/workspaces/w1/audit-log?limit=2".to_owned();
    loop {
        let (status, body) = get(&app, &path, Some(&admin)).await;
        assert_eq!(status, StatusCode::OK);
        actions
            .extend(body["entries"].as_array().unwrap().iter().map(|e| e["details"]["n"].as_str().unwrap().to_owned()));
        match body["next_before"].as_i64() {
            Some(before) => path = format!("/api/v1/workspaces/w1/audit-log?limit=2&before={before}"),
            None => break,
        }
    }
    assert_eq!(actions, ["a5", "a4", "a3", "a2", "a1"]);
    let (status, _) = get(&app, "/api/v1/workspaces/w1/audit-log?limit=0", Some(&admin)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
