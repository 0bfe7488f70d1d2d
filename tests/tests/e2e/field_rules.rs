//! Field rules ("always use the app" / "always use the CRM" for one field) on both CRMs and both
//! backends: set from a conflict (settling the others it decides), honoured by the merge, set and
//! removed through their own routes, refused on unmapped fields and for members.

use std::time::Duration;

use crmhost_tests::{Backend, Crm, SyncHarness, contacts};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Five contacts in step on both sides, under `manual_review`.
async fn in_step(h: &SyncHarness) {
    h.put_records("contact", contacts(0..5, "")).await;
    let run = h.run("push", json!({ "entity": "contact", "record_ids": ["c0", "c1", "c2", "c3", "c4"] })).await;
    assert_eq!(run["success_count"], 5, "{run}");
    h.run("sync", json!({ "entities": ["contact"] })).await;
    let (status, body) = SyncHarness::send(
        h.api(Method::PATCH, &h.integration_path("/settings")).json(&json!({ "conflict_strategy": "manual_review" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Changes `first_name` of these contacts differently on both sides, then syncs.
async fn edit_both_sides(h: &SyncHarness, ids: &[usize], tag: &str) -> Value {
    let records: Vec<Value> =
        ids.iter().map(|i| json!({"id": format!("c{i}"), "fields": {"first_name": format!("App{tag}{i}")}})).collect();
    h.put_records("contact", records).await;
    // The CRM's edit is the later one (by its own clock, which the merge compares).
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in ids {
        h.edit_crm_contact(&h.crm_id_of(&format!("c{i}@example.com")), "first_name", &format!("Crm{tag}{i}"));
    }
    h.run("sync", json!({ "entities": ["contact"] })).await
}

async fn pending(h: &SyncHarness) -> Vec<Value> {
    let (_, listed) = SyncHarness::send(h.api(Method::GET, "/conflicts?status=pending")).await;
    listed["conflicts"].as_array().unwrap().clone()
}

fn both_sides(h: &SyncHarness, app: &Value, i: usize) -> (String, String) {
    let crm = h.crm_contacts();
    let crm_value = crm[&h.crm_id_of(&format!("c{i}@example.com"))]["first_name"].as_str().unwrap().to_owned();
    (app["fields"]["first_name"].as_str().unwrap().to_owned(), crm_value)
}

each_crm_and_backend!(a_rule_set_from_a_conflict_settles_the_others_and_decides_later_merges, |h| {
    in_step(&h).await;
    let run = edit_both_sides(&h, &[1, 2, 3], "A").await;
    assert_eq!(run["conflict_count"], 3, "{run}");
    let conflicts = pending(&h).await;
    let first = conflicts[0]["conflict_id"].as_str().unwrap().to_owned();

    // A member may resolve, not set a rule.
    let member = h
        .app
        .as_role(
            Method::POST,
            &format!("/api/v1/workspaces/w1/conflicts/{first}/resolve"),
            "w1",
            crmhost::auth::Role::Member,
        )
        .json(&json!({"resolution": "always_use_crm"}));
    let (status, body) = SyncHarness::send(member).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = SyncHarness::send(
        h.api(Method::POST, &format!("/conflicts/{first}/resolve"))
            .json(&json!({"resolution": "use_app", "apply_to_pending": true})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "apply_to_pending needs an always_use_* resolution: {body}");

    // An admin: always use the CRM for first_name, and settle the other pending ones.
    let (status, body) = SyncHarness::send(
        h.api(Method::POST, &format!("/conflicts/{first}/resolve"))
            .json(&json!({"resolution": "always_use_crm", "apply_to_pending": true})),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("resolved")), "{body}");
    assert!(pending(&h).await.is_empty(), "the rule settled the other two");
    for i in 1..=3 {
        let app = h.record("contact", &format!("c{i}")).await;
        assert_eq!(both_sides(&h, &app, i), (format!("CrmA{i}"), format!("CrmA{i}")), "c{i}");
    }
    let (_, settings) = SyncHarness::send(h.api(Method::GET, &h.integration_path("/settings"))).await;
    assert_eq!(settings["settings"]["conflict_rules"], json!({"contact": {"first_name": "crm"}}), "{settings}");
    let (_, audit) = SyncHarness::send(h.api(Method::GET, "/audit-log?limit=50")).await;
    let resolved = audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "conflict.resolved").count();
    assert_eq!(resolved, 3, "each settled conflict is audited");

    // From now on the rule decides, under manual_review: no conflict, the CRM's value wins.
    let run = edit_both_sides(&h, &[4], "B").await;
    assert_eq!(run["conflict_count"], 0, "{run}");
    let app = h.record("contact", "c4").await;
    assert_eq!(both_sides(&h, &app, 4), ("CrmB4".to_owned(), "CrmB4".to_owned()));

    // The rule's own route: the app wins now; then removed, the strategy is back.
    let rule = h.integration_path("/conflict-rules/contact/first_name");
    let (status, body) = SyncHarness::send(h.api(Method::PUT, &rule).json(&json!({"use": "app"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rules"], json!({"first_name": "app"}), "{body}");
    let run = edit_both_sides(&h, &[0], "C").await;
    assert_eq!(run["conflict_count"], 0, "{run}");
    let app = h.record("contact", "c0").await;
    assert_eq!(both_sides(&h, &app, 0), ("AppC0".to_owned(), "AppC0".to_owned()));
    let (status, body) = SyncHarness::send(h.api(Method::DELETE, &rule)).await;
    assert_eq!((status, body["rules"].clone()), (StatusCode::OK, json!({})), "{body}");
    let run = edit_both_sides(&h, &[0], "D").await;
    assert_eq!(run["conflict_count"], 1, "manual_review again: {run}");
});

each_crm_and_backend!(a_rule_route_settles_pending_conflicts_and_refuses_what_it_cannot_decide, |h| {
    in_step(&h).await;
    // c1: first_name only; c2: first_name and last_name.
    edit_both_sides(&h, &[1, 2], "A").await;
    h.put_records("contact", vec![json!({"id": "c2", "fields": {"first_name": "AppA2b", "last_name": "AppLast"}})])
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.edit_crm_contact(&h.crm_id_of("c2@example.com"), "last_name", "CrmLast");
    h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!(pending(&h).await.len(), 2);

    let rule = h.integration_path("/conflict-rules/contact/first_name");
    let (status, body) =
        SyncHarness::send(h.api(Method::PUT, &rule).json(&json!({"use": "app", "apply_to_pending": true}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settled"].as_array().unwrap().len(), 1, "c1 is decided: {body}");
    let left = body["left_pending"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{body}");
    assert!(left[0]["reason"].as_str().unwrap().contains("no rule"), "{body}");
    let app = h.record("contact", "c1").await;
    assert_eq!(both_sides(&h, &app, 1), ("AppA1".to_owned(), "AppA1".to_owned()));

    // Refused: an unmapped field (422), a bad side (400), a member (403).
    let (status, body) = SyncHarness::send(
        h.api(Method::PUT, &h.integration_path("/conflict-rules/contact/shoe_size")).json(&json!({"use": "crm"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("mapped"), "{body}");
    let (status, _) = SyncHarness::send(h.api(Method::PUT, &rule).json(&json!({"use": "both"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let member =
        h.app.as_role(Method::DELETE, &format!("/api/v1/workspaces/w1{rule}"), "w1", crmhost::auth::Role::Member);
    assert_eq!(SyncHarness::send(member).await.0, StatusCode::FORBIDDEN);

    // A rule outlives its field's mapping only until someone removes it, which stays possible.
    let mapping = h.integration_path("/field-mappings/contact/first_name");
    assert_eq!(SyncHarness::send(h.api(Method::DELETE, &mapping)).await.0, StatusCode::OK);
    let (status, body) = SyncHarness::send(h.api(Method::DELETE, &rule)).await;
    assert_eq!((status, body["rules"].clone()), (StatusCode::OK, json!({})), "{body}");
});
