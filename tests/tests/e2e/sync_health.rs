//! Sync health through the API on both CRMs and both backends: records by status, the integration
//! list's brief, what is failing now grouped by cause, and retrying one cause after fixing the data.

use crmhost_tests::{Backend, Crm, SyncHarness, contacts};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn get(h: &SyncHarness, rest: &str) -> Value {
    let (status, body) = SyncHarness::send(h.api(Method::GET, &h.integration_path(rest))).await;
    assert_eq!(status, StatusCode::OK, "{rest}: {body}");
    body
}

each_crm_and_backend!(failing_records_group_by_cause_and_a_cause_is_retried_once_fixed, |h| {
    let mut records = contacts(0..10, "");
    for i in [2, 5, 7] {
        records[i]["fields"]["email"] = json!(format!("not-an-email-{i}"));
    }
    h.put_records("contact", records).await;
    let ids: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let run = h.run("push", json!({ "entity": "contact", "record_ids": ids })).await;
    assert_eq!(run["failure_count"], 3, "{run}");

    let health = get(&h, "/health").await;
    let contact = health["entities"].as_array().unwrap().iter().find(|e| e["entity"] == "contact").unwrap().clone();
    assert_eq!(
        (contact["linked"].as_i64(), contact["synced"].as_i64(), contact["failed"].as_i64()),
        (Some(10), Some(7), Some(3)),
        "{health}"
    );
    assert_eq!(health["failing_records"], 3, "{health}");
    assert_eq!(health["pending_conflicts"], 0);
    assert_eq!(health["last_run"]["status"], "partial", "{health}");
    let (_, listed) = SyncHarness::send(h.api(Method::GET, "/integrations")).await;
    let brief = &listed["integrations"][0]["health"];
    assert_eq!(
        (brief["failing_records"].as_i64(), brief["last_run_status"].as_str()),
        (Some(3), Some("partial")),
        "{listed}"
    );

    let report = get(&h, "/failures").await;
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "one cause: {report}");
    let group = &groups[0];
    assert_eq!(group["count"], 3);
    assert!(group["cause"]["crm_code"].as_str().unwrap().contains("INVALID_EMAIL"), "{group}");
    assert!(group["summary"].as_str().unwrap().ends_with("3 records"), "{group}");
    let samples: Vec<&str> =
        group["samples"].as_array().unwrap().iter().map(|s| s["record_id"].as_str().unwrap()).collect();
    assert_eq!(samples, ["c2", "c5", "c7"]);
    assert!(group["samples"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), "{group}");

    // Fix two of the three, retry the cause: one run, those two sync, the third still fails.
    h.put_records(
        "contact",
        vec![
            json!({"id": "c2", "fields": {"email": "c2@example.com"}}),
            json!({"id": "c5", "fields": {"email": "c5@example.com"}}),
        ],
    )
    .await;
    let retry = h.integration_path("/failures/retry");
    let (status, body) = SyncHarness::send(h.api(Method::POST, &retry).json(&group["cause"])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["runs"].as_array().unwrap().len(), 1, "{body}");
    h.wait_until_idle().await;
    let report = get(&h, "/failures").await;
    assert_eq!(report["total"], 1, "{report}");
    assert_eq!(report["groups"][0]["samples"][0]["record_id"], "c7");
    assert_eq!(get(&h, "/health").await["failing_records"], 1);
    assert_eq!(h.crm_contacts().len(), 9);

    // Nothing fails for another cause; a malformed cause is refused.
    let mut other = group["cause"].clone();
    other["kind"] = json!("duplicate");
    let (status, _) = SyncHarness::send(h.api(Method::POST, &retry).json(&other)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        SyncHarness::send(h.api(Method::POST, &retry).json(&json!({"entity": "contact", "kind": "x", "extra": 1})))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
});
