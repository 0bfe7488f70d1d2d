//! The HTTP API on a real listener (port 0).

use crmhost_tests::{ADMIN_TOKEN, AppOptions, Backend, TestApp, fixture_v1, fixture_v2};
use reqwest::StatusCode;
use serde_json::Value;

async fn app() -> TestApp {
    TestApp::spawn(AppOptions::default()).await.expect("sqlite app")
}

#[tokio::test]
async fn the_catalogue_lists_both_bundled_crms_with_entities_and_default_mappings() {
    let app = app().await;
    let response = app.get("/api/v1/integrations").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let integrations = body["integrations"].as_array().unwrap();
    let slugs: Vec<&str> = integrations.iter().map(|i| i["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["hubspot", "salesforce"]);
    let salesforce = &integrations[1];
    assert_eq!(salesforce["auth_type"], "oauth2");
    let entities: Vec<&str> =
        salesforce["entities"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(entities, ["contact", "lead", "account", "opportunity", "campaign", "campaign_member", "task"]);
    let mapping = &salesforce["entities"][0]["default_field_mappings"][0];
    assert_eq!((mapping["app_field"].as_str(), mapping["crm_field"].as_str()), (Some("email"), Some("Email")));
}

/// `GET` a plugin's logo: the SVG text, after checking it is served as an inert image.
async fn logo(app: &TestApp, url: &str) -> String {
    let response = app.get(url).await;
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "image/svg+xml");
    assert!(header("content-security-policy").contains("sandbox"), "scripts in an SVG never run");
    assert_eq!(header("x-content-type-options"), "nosniff");
    response.text().await.unwrap()
}

#[tokio::test]
async fn every_catalogue_entry_has_a_category_and_a_logo_from_the_operator_the_plugin_or_a_generic_icon() {
    // The operator files Salesforce under `other` with its own logo; HubSpot keeps its shipped one.
    let branding = tempfile::tempdir().unwrap();
    let operator_logo = branding.path().join("sf.svg");
    std::fs::write(&operator_logo, "<svg xmlns=\"http://www.w3.org/2000/svg\" aria-label=\"ours\"/>").unwrap();
    let mut operator = crmhost::plugins::OperatorPluginConfig::default();
    let overrides = crmhost::plugins::operator::PluginOverrides {
        category: Some(crmhost::plugins::branding::Category::Other),
        logo: Some(operator_logo),
        ..Default::default()
    };
    operator.plugins.insert(crmhost::domain::PluginSlug::parse("salesforce").unwrap(), overrides);
    let app = TestApp::spawn(AppOptions { operator, ..AppOptions::default() }).await.unwrap();

    let catalogue: Value = app.get("/api/v1/integrations").await.json().await.unwrap();
    let entry = |slug: &str| -> Value {
        catalogue["integrations"].as_array().unwrap().iter().find(|i| i["slug"] == slug).cloned().unwrap()
    };
    let (hubspot, salesforce) = (entry("hubspot"), entry("salesforce"));
    assert_eq!((hubspot["category"].as_str(), hubspot["logo_origin"].as_str()), (Some("crm"), Some("plugin")));
    assert_eq!(hubspot["logo_url"], "/api/v1/integrations/hubspot/logo.svg");
    assert!(logo(&app, "/api/v1/integrations/hubspot/logo.svg").await.contains("aria-label=\"HubSpot\""));
    assert_eq!(
        (salesforce["category"].as_str(), salesforce["logo_origin"].as_str()),
        (Some("other"), Some("operator"))
    );
    assert!(logo(&app, salesforce["logo_url"].as_str().unwrap()).await.contains("aria-label=\"ours\""));

    // A third-party plugin whose logo beside it has a script gets the generic icon…
    app.install_plugin("fixture.svg", b"<svg><script>alert(1)</script></svg>");
    app.install_plugin("fixture.wasm", &fixture_v1());
    let reload = app.admin(reqwest::Method::POST, "/api/v1/admin/plugins/reload").send().await.unwrap();
    assert_eq!(reload.status(), StatusCode::OK);
    let generic = logo(&app, "/api/v1/integrations/fixture/logo.svg").await;
    assert!(generic.contains(">F</text>") && !generic.contains("script"), "{generic}");
    // …and its own once a new version ships a clean one.
    app.install_plugin("fixture.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\" aria-label=\"Fixture\"/>");
    app.install_plugin("fixture.wasm", &fixture_v2());
    app.admin(reqwest::Method::POST, "/api/v1/admin/plugins/reload").send().await.unwrap();
    let catalogue: Value = app.get("/api/v1/integrations").await.json().await.unwrap();
    let fixture = catalogue["integrations"].as_array().unwrap().iter().find(|i| i["slug"] == "fixture").cloned();
    assert_eq!(fixture.unwrap()["logo_origin"], "plugin");
    assert!(logo(&app, "/api/v1/integrations/fixture/logo.svg").await.contains("aria-label=\"Fixture\""));

    let unknown = app.get("/api/v1/integrations/pipedrive/logo.svg").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_integration");
}

#[tokio::test]
async fn health_and_readiness_report_ok() {
    let app = app().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!((body["database"].as_str(), body["plugins"].as_u64()), (Some("ok"), Some(2)));
}

#[tokio::test]
async fn readiness_fails_without_any_plugin() {
    let app = TestApp::spawn(AppOptions { bundled: vec![], ..AppOptions::default() }).await.unwrap();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_json_error_format() {
    let app = app().await;
    let missing = app.get("/api/v1/nope").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());

    let wrong_method = app.client.delete(format!("{}/api/v1/integrations", app.base)).send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_admin_api_requires_the_operator_token() {
    let app = app().await;
    let url = format!("{}/api/v1/admin/plugins", app.base);

    let none = app.client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = app.client.get(&url).bearer_auth("wrong-token-wrong-token").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert!(!body.to_string().contains(ADMIN_TOKEN));

    let ok = app.client.get(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    let rows = body["plugins"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["source"], "bundled");
        assert_eq!(row["active"], true);
        assert_eq!(row["sha256"].as_str().unwrap().len(), 64);
        assert!(row["loaded_at"].is_string() && row["version"].is_string());
    }
}

#[tokio::test]
async fn the_admin_api_is_disabled_without_a_configured_token() {
    let app = TestApp::spawn(AppOptions { admin_token: None, ..AppOptions::default() }).await.unwrap();
    let response = app
        .client
        .get(format!("{}/api/v1/admin/plugins", app.base))
        .bearer_auth("anything-anything")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "admin_api_disabled");
}

#[tokio::test]
async fn a_reload_through_the_admin_api_loads_new_files_and_is_audited() {
    let app = app().await;
    app.install_plugin("fixture.wasm", &fixture_v1());

    let response = app.admin(reqwest::Method::POST, "/api/v1/admin/plugins/reload").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let loaded = body["report"]["loaded"].as_array().unwrap();
    assert_eq!(loaded.len(), 1);
    assert!(loaded[0].as_str().unwrap().starts_with("fixture@1.0.0"), "{loaded:?}");

    let catalogue: Value = app.get("/api/v1/integrations").await.json().await.unwrap();
    let slugs: Vec<&str> =
        catalogue["integrations"].as_array().unwrap().iter().map(|i| i["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["fixture", "hubspot", "salesforce"]);

    let audit = app.state.store.list_audit(None, 10).await.unwrap();
    assert_eq!(audit[0].action, "plugin.reload");
    assert_eq!(audit[0].actor, "operator");
}

#[tokio::test]
async fn the_api_runs_on_postgres_too() {
    let Some(app) = TestApp::spawn(AppOptions { backend: Backend::Postgres, ..AppOptions::default() }).await else {
        return;
    };
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["database"], "ok");
    app.install_plugin("fixture.wasm", &fixture_v1());
    let response = app.admin(reqwest::Method::POST, "/api/v1/admin/plugins/reload").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.state.store.list_audit(None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_server_has_a_working_vault_with_a_generated_private_key() {
    use crmhost::domain::{PluginSlug, WorkspaceId};
    use crmhost::vault::Purpose;
    use secrecy::ExposeSecret;
    let app = app().await;
    let (ws, slug) = (WorkspaceId::parse("w1").unwrap(), PluginSlug::parse("hubspot").unwrap());
    let sealed = app.state.vault.seal(Purpose::Tokens, &ws, &slug, b"refresh-token");
    let opened = app.state.vault.open(Purpose::Tokens, &ws, &slug, &sealed).unwrap();
    assert_eq!(opened.expose_secret().as_slice(), b"refresh-token");
    assert_eq!(sealed.key_version, app.state.vault.current_version());
}

#[tokio::test]
async fn the_openapi_document_is_public_and_describes_every_route_of_the_router() {
    let app = app().await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let operations: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, crmhost::api::route_table().len(), "one operation per routed method and path");
}
