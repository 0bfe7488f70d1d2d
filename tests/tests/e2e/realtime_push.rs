//! Workspace changes in real time: with `frequency: "realtime"`, a record written or deleted
//! through the API reaches the CRM within seconds, by a push-only run started for the change —
//! here the platform's status of a deal onto the org's own custom Opportunity field (the "sync
//! status to Opportunity" workflow), then the deal's deletion, and a burst coalesced.

use std::time::{Duration, Instant};

use crmhost_tests::{Backend, Crm, SyncHarness, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn opportunity(status: &str) -> Value {
    json!({"id": "o1", "fields": {"name": "Acme renewal", "stage": "Prospecting", "close_date": "2026-12-31", "status": status}})
}

/// The custom field's value on the Opportunity, or `None` when it is not live.
fn platform_status(h: &SyncHarness, crm_id: &str) -> Option<Value> {
    let state = h.sim.sim().salesforce();
    let record = state.object("Opportunity")?.live(crm_id)?;
    Some(record.fields.get("Platform_Status__c").cloned().unwrap_or(Value::Null))
}

async fn pushes_for_changes(h: &SyncHarness) -> Vec<Value> {
    h.history("trigger=change").await.into_iter().filter(|r| r["started_by"] == "workspace-change").collect()
}

#[tokio::test]
async fn a_status_change_in_the_platform_reaches_a_custom_opportunity_field_within_seconds() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = SyncHarness::start(backend, Crm::Salesforce, Default::default()).await else { continue };
        // The platform's `status` goes to the org's custom field.
        let mapping = h
            .api(Method::PUT, &h.integration_path("/field-mappings/opportunity/status"))
            .json(&json!({"crm_field": "Platform_Status__c", "direction": "push"}));
        let (status, body) = SyncHarness::send(mapping).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        h.put_records("opportunity", vec![opportunity("Draft")]).await;
        let run = h.run("push", json!({"entity": "opportunity", "record_ids": ["o1"]})).await;
        assert_eq!(run["success_count"], 1, "{run}");
        let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
        let crm_id = detail["items"][0]["crm_id"].as_str().unwrap().to_owned();
        assert_eq!(platform_status(&h, &crm_id), Some(json!("Draft")));
        let (status, body) = h.patch_settings(json!({"frequency": "realtime", "propagate_deletes": true})).await;
        assert!(status.is_success(), "{body}");
        h.wait_until_idle().await;
        let before = pushes_for_changes(&h).await.len();

        // The deal needs legal review: the Opportunity says so within seconds.
        let changed = Instant::now();
        h.put_records("opportunity", vec![opportunity("Needs Legal Review")]).await;
        let arrived = eventually(Duration::from_secs(10), || async {
            platform_status(&h, &crm_id) == Some(json!("Needs Legal Review"))
        })
        .await;
        let took = changed.elapsed();
        assert!(arrived, "{backend:?}: the change never reached Salesforce");
        eprintln!("workspace change → Salesforce custom field ({backend:?}): {} ms", took.as_millis());
        h.wait_until_idle().await;
        let pushes = pushes_for_changes(&h).await;
        assert!(pushes.len() > before, "a push run started for the change: {pushes:?}");
        assert!(pushes.iter().all(|r| r["direction"] == "push"), "{pushes:?}");

        // A burst of changes is coalesced into far fewer runs than writes, and the last one wins.
        let runs_before = pushes.len();
        for status in ["Sent", "Draft", "Sent", "Draft", "Sent", "Draft", "Sent", "Draft", "Sent", "Signed"] {
            h.put_records("opportunity", vec![opportunity(status)]).await;
        }
        assert!(
            eventually(Duration::from_secs(10), || async { platform_status(&h, &crm_id) == Some(json!("Signed")) })
                .await
        );
        h.wait_until_idle().await;
        let burst_runs = pushes_for_changes(&h).await.len() - runs_before;
        eprintln!("10 writes in a burst → {burst_runs} push run(s) ({backend:?})");
        assert!((1..10).contains(&burst_runs), "{burst_runs} runs for 10 writes");

        // Deleted in the platform: deleted in Salesforce (propagate_deletes), as promptly.
        let (status, _) = SyncHarness::send(h.api(Method::DELETE, "/records/opportunity/o1")).await;
        assert!(status.is_success());
        assert!(
            eventually(Duration::from_secs(10), || async { platform_status(&h, &crm_id).is_none() }).await,
            "{backend:?}: the deletion never reached Salesforce"
        );
    }
}
