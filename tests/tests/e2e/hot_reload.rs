//! Hot reload through the directory watcher while calls run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crmhost::domain::PluginSlug;
use crmhost::plugins::{CallContext, PluginSource};
use crmhost_tests::{AppOptions, TestApp, eventually, fixture_v1, fixture_v2, hostile};
use serde_json::Value;

fn slug(s: &str) -> PluginSlug {
    PluginSlug::parse(s).unwrap()
}

async fn watched_app() -> TestApp {
    TestApp::spawn(AppOptions { watch: true, ..AppOptions::default() }).await.expect("app")
}

/// Waits until the registry serves `slug` at `version` (or `None`: not at all).
async fn serves(app: &TestApp, slug_text: &str, version: Option<&str>) -> bool {
    let registry = app.state.plugins.clone();
    let slug = slug(slug_text);
    let want = version.map(str::to_owned);
    eventually(Duration::from_secs(15), || {
        let (registry, slug, want) = (registry.clone(), slug.clone(), want.clone());
        async move { registry.get(&slug).map(|p| p.description().version.clone()) == want }
    })
    .await
}

async fn admin_rows(app: &TestApp) -> Vec<Value> {
    let body: Value =
        app.admin(reqwest::Method::GET, "/api/v1/admin/plugins").send().await.unwrap().json().await.unwrap();
    body["plugins"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_new_version_swaps_in_while_calls_run_and_none_fails() {
    let app = watched_app().await;
    app.install_plugin("fixture.wasm", &fixture_v1());
    assert!(serves(&app, "fixture", Some("1.0.0")).await, "v1 never loaded");

    // Keep calls of ~100 ms running continuously from four tasks across the swap.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (registry, stop) = (app.state.plugins.clone(), stop.clone());
            tokio::spawn(async move {
                let mut versions = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let plugin = registry.get(&slug("fixture")).expect("fixture is always served");
                    let fields = plugin
                        .list_fields(CallContext::detached(), "sleep:100")
                        .await
                        .expect("no call fails during a reload")
                        .expect("the adapter succeeds");
                    // The fixture reports its version as the field label: the version the call ran on.
                    assert_eq!(
                        fields[0].label,
                        plugin.description().version,
                        "a call ran on another version than it started on"
                    );
                    versions.push(fields[0].label.clone());
                }
                versions
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    app.install_plugin("fixture.wasm", &fixture_v2());
    assert!(serves(&app, "fixture", Some("2.0.0")).await, "v2 never loaded");
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::SeqCst);

    let mut all = Vec::new();
    for caller in callers {
        all.extend(caller.await.expect("caller did not panic"));
    }
    assert!(all.iter().any(|v| v == "1.0.0") && all.iter().any(|v| v == "2.0.0"), "{all:?}");
    // New calls see the new version.
    let plugin = app.state.plugins.get(&slug("fixture")).unwrap();
    let fields = plugin.list_fields(CallContext::detached(), "x").await.unwrap().unwrap();
    assert_eq!(fields[0].label, "2.0.0");
}

#[tokio::test]
async fn a_corrupt_or_wrong_contract_file_leaves_the_old_version_serving_and_is_listed() {
    let app = watched_app().await;
    app.install_plugin("fixture.wasm", &fixture_v1());
    assert!(serves(&app, "fixture", Some("1.0.0")).await);

    for (bad, expected) in [
        (b"\0asm garbage that is not a component".to_vec(), "not a valid WebAssembly component"),
        (
            wat::parse_str("(component)").unwrap(),
            "does not implement crmhost:adapter@0.2.0 (nor an older version this host loads)",
        ),
    ] {
        app.install_plugin("fixture.wasm", &bad);
        let listed = eventually(Duration::from_secs(15), || async {
            admin_rows(&app)
                .await
                .iter()
                .any(|r| r["last_error"]["error"].as_str().is_some_and(|e| e.contains(expected)))
        })
        .await;
        assert!(listed, "the failure `{expected}` never appeared in the admin listing");
        // Still serving v1, and it still works.
        let plugin = app.state.plugins.get(&slug("fixture")).expect("still served");
        assert_eq!(plugin.description().version, "1.0.0");
        assert!(plugin.test_connection(CallContext::detached()).await.unwrap().is_ok());
    }
    let rows = admin_rows(&app).await;
    let row = rows.iter().find(|r| r["slug"] == "fixture").unwrap();
    assert_eq!((row["active"].as_bool(), row["version"].as_str()), (Some(true), Some("1.0.0")));

    // A good file clears the error.
    app.install_plugin("fixture.wasm", &fixture_v2());
    assert!(serves(&app, "fixture", Some("2.0.0")).await);
    let rows = admin_rows(&app).await;
    assert!(rows.iter().find(|r| r["slug"] == "fixture").unwrap()["last_error"].is_null());
}

#[tokio::test]
async fn a_file_overriding_a_bundled_plugin_falls_back_when_deleted() {
    let app = watched_app().await;
    let bundled = crmhost::plugins::bundled();
    let hubspot = bundled.iter().find(|b| b.name == "crmhost-plugin-hubspot").unwrap();
    app.install_plugin("my-hubspot.wasm", hubspot.bytes);

    let path = app.plugins_dir.join("my-hubspot.wasm");
    let registry = app.state.plugins.clone();
    let overridden = eventually(Duration::from_secs(15), || {
        let (registry, path) = (registry.clone(), path.clone());
        async move { registry.get(&slug("hubspot")).is_some_and(|p| *p.source() == PluginSource::File(path)) }
    })
    .await;
    assert!(overridden, "the file never took over the `hubspot` slug");

    std::fs::remove_file(&path).unwrap();
    let fell_back = eventually(Duration::from_secs(15), || {
        let registry = registry.clone();
        async move { registry.get(&slug("hubspot")).is_some_and(|p| *p.source() == PluginSource::Bundled) }
    })
    .await;
    assert!(fell_back, "deleting the override did not fall back to the bundled plugin");
}

#[tokio::test]
async fn a_file_that_changes_its_slug_is_rejected_and_the_old_slug_keeps_serving() {
    let app = watched_app().await;
    app.install_plugin("fixture.wasm", &fixture_v1());
    assert!(serves(&app, "fixture", Some("1.0.0")).await);

    app.install_plugin("fixture.wasm", &hostile());
    let rejected = eventually(Duration::from_secs(15), || async {
        admin_rows(&app)
            .await
            .iter()
            .any(|r| r["last_error"]["error"].as_str().is_some_and(|e| e.contains("cannot change its slug")))
    })
    .await;
    assert!(rejected);
    assert!(app.state.plugins.get(&slug("hostile")).is_none());
    assert_eq!(app.state.plugins.get(&slug("fixture")).unwrap().description().version, "1.0.0");
}

#[tokio::test]
async fn removing_a_file_only_plugin_unloads_it_and_hidden_temporaries_are_ignored() {
    let app = watched_app().await;
    std::fs::write(app.plugins_dir.join(".partial.wasm"), b"half-written").unwrap();
    app.install_plugin("fixture.wasm", &fixture_v1());
    assert!(serves(&app, "fixture", Some("1.0.0")).await);
    assert!(admin_rows(&app).await.iter().all(|r| r["last_error"].is_null()), "a hidden file was loaded");

    std::fs::remove_file(app.plugins_dir.join("fixture.wasm")).unwrap();
    assert!(serves(&app, "fixture", None).await, "the plugin stayed after its file was deleted");
}
