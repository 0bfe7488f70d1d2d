//! `GET /metrics`: operators only, in the OpenMetrics text format, and a run moves the counters it
//! should (runs, records, plugin calls, CRM requests), on both CRMs and both backends.

use std::collections::BTreeMap;

use crmhost_tests::{Backend, Crm, SyncHarness};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Every sample of a scrape: `name{labels}` → value.
async fn scrape(h: &SyncHarness) -> BTreeMap<String, f64> {
    let response = h.app.admin(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "an OpenMetrics exposition ends with # EOF");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(key, value)| (key.to_owned(), value.parse().unwrap()))
        .collect()
}

fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

each_crm_and_backend!(a_pull_moves_the_run_record_plugin_and_request_counters, |h| {
    h.sim.sim().seed("contact", 7).unwrap();
    let before = scrape(&h).await;
    let run = h.run("pull", json!({ "entity": "contact" })).await;
    assert_eq!((run["status"].as_str(), run["success_count"].as_u64()), (Some("completed"), Some(7)), "{run}");
    let after = scrape(&h).await;
    let moved = |key: &str| sample(&after, key) - sample(&before, key);
    let slug = h.crm.slug();
    assert_eq!(moved(r#"crmhost_sync_runs_total{operation="pull",trigger="manual",status="completed"}"#), 1.0);
    assert_eq!(moved(r#"crmhost_sync_records_total{outcome="succeeded"}"#), 7.0);
    assert_eq!(moved(r#"crmhost_sync_records_total{outcome="failed"}"#), 0.0);
    assert_eq!(moved(r#"crmhost_sync_run_duration_seconds_count{operation="pull"}"#), 1.0);
    let calls =
        format!(r#"crmhost_plugin_call_duration_seconds_count{{plugin="{slug}",operation="pull",outcome="ok"}}"#);
    assert!(moved(&calls) >= 1.0, "{calls}: {after:?}");
    let requests = format!(r#"crmhost_outbound_requests_total{{plugin="{slug}",status="2xx"}}"#);
    assert!(moved(&requests) >= 1.0, "{requests}: {after:?}");
    assert_eq!(moved(&format!(r#"crmhost_outbound_requests_total{{plugin="{slug}",status="429"}}"#)), 0.0);
    assert!(after.contains_key(r#"crmhost_db_pool_connections{state="idle"}"#), "{after:?}");
    assert!(after.contains_key("crmhost_scheduler_due_integrations"), "{after:?}");
});

#[tokio::test]
async fn metrics_are_for_operators_only() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Hubspot, crm_sim::knobs::Knobs::default()).await.unwrap();
    let anonymous = h.app.client.get(format!("{}/metrics", h.app.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let workspace_admin =
        h.app.as_role(Method::GET, "/metrics", "w1", crmhost::auth::Role::Owner).send().await.unwrap();
    assert_eq!(workspace_admin.status(), StatusCode::UNAUTHORIZED, "a workspace token is not the operator token");
    let body: serde_json::Value = workspace_admin.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
}

#[tokio::test]
async fn a_rate_limited_crm_request_is_counted_as_429() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Hubspot, crm_sim::knobs::Knobs::default()).await.unwrap();
    h.sim.sim().seed("contact", 3).unwrap();
    h.sim.sim().update_knobs(|k| k.force_rate_limit = true).unwrap();
    let before = scrape(&h).await;
    let run = h.run("pull", json!({ "entity": "contact" })).await;
    assert_ne!(run["status"], "completed", "every request was refused: {run}");
    let after = scrape(&h).await;
    let moved = |key: &str| sample(&after, key) - sample(&before, key);
    assert!(moved(r#"crmhost_outbound_requests_total{plugin="hubspot",status="429"}"#) >= 1.0, "{after:?}");
    assert_eq!(moved(r#"crmhost_outbound_requests_total{plugin="hubspot",status="2xx"}"#), 0.0, "{after:?}");
}
