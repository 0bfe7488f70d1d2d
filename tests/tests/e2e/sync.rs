//! The sync engine end to end, for each adapter on both backends, against empty emulators (the
//! push, pull, two-way and conflict suites for the Python Pipedrive plugin too):
//! push (200 per call, idempotent, per-record CRM errors, retry of failures), pull across pages,
//! two-way sync with one-sided, equal and conflicting changes under every strategy, manual review
//! resolved per field, live progress over Server-Sent Events, and validation of the new routes.

use std::time::{Duration, Instant};

use crmhost_tests::{Backend, Crm, SyncHarness, contacts};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("c{i}")).collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

each_crm_and_backend!(pipedrive_too: push_200_records_twice_creates_each_once_and_refuses_the_201st, |h| {
    h.put_records("contact", contacts(0..200, "")).await;
    let run = h.run("push", json!({ "entity": "contact", "record_ids": ids(0..200) })).await;
    assert_eq!((str_of(&run, "status"), run["success_count"].as_i64()), ("completed", Some(200)), "{run}");
    assert_eq!(h.crm_contacts().len(), 200);
    let detail = h.run_detail(str_of(&run, "run_id")).await;
    let items = detail["items"].as_array().unwrap();
    assert_eq!(items.len(), 200);
    assert!(items.iter().all(|i| i["outcome"] == "created" && i["crm_id"].is_string()), "{}", items[0]);

    // Each record now links to its CRM record.
    let record = h.record("contact", "c7").await;
    let link = &record["sync"][0];
    assert_eq!((str_of(link, "integration"), str_of(link, "status")), (h.crm.slug(), "synced"));
    assert_eq!(str_of(link, "crm_id"), h.crm_id_of("c7@example.com"));

    // Pushing the same records again updates them: nothing is created twice.
    let again = h.run("push", json!({ "entity": "contact", "record_ids": ids(0..200) })).await;
    assert_eq!(again["success_count"], 200, "{again}");
    assert_eq!(h.crm_contacts().len(), 200);
    let detail = h.run_detail(str_of(&again, "run_id")).await;
    assert!(detail["items"].as_array().unwrap().iter().all(|i| i["outcome"] == "updated"));

    // The 201st record is refused before anything runs, with the limit in the message.
    let path = h.integration_path("/push");
    let (status, body) =
        SyncHarness::send(h.api(Method::POST, &path).json(&json!({ "entity": "contact", "record_ids": ids(0..201) })))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(str_of(&body["error"], "message").contains("at most 200"), "{body}");
    let (status, _) = SyncHarness::send(
        h.api(Method::POST, &path).json(&json!({ "entity": "contact", "records": contacts(0..201, "") })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // So is a batch naming one record twice, before anything is written.
    let twice = [contacts(0..1, "First"), contacts(0..1, "Second")].concat();
    let (status, body) =
        SyncHarness::send(h.api(Method::POST, &path).json(&json!({ "entity": "contact", "records": twice }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(str_of(&body["error"], "message").contains("appears earlier"), "{body}");
    assert_ne!(h.record("contact", "c0").await["fields"]["first_name"], "SecondFirst0");
});

each_crm_and_backend!(pipedrive_too: pull_imports_several_pages_then_finds_nothing_new, |h| {
    h.sim.sim().seed("contact", 450).unwrap();
    let run = h.run("pull", json!({ "entity": "contact" })).await;
    assert_eq!((str_of(&run, "status"), run["success_count"].as_i64()), ("completed", Some(450)), "{run}");
    let records = h.all_records("contact").await;
    assert_eq!(records.len(), 450);
    let crm = h.crm_contacts();
    for record in &records {
        let email = record["fields"]["email"].as_str().unwrap();
        assert!(crm.values().any(|f| f["email"] == email), "{email} came from the CRM");
    }
    // Each CRM record maps to exactly one workspace record.
    let detail = h.run_detail(str_of(&run, "run_id")).await;
    let mut crm_ids: Vec<&str> = detail["items"].as_array().unwrap().iter().map(|i| str_of(i, "crm_id")).collect();
    crm_ids.sort();
    crm_ids.dedup();
    assert_eq!(crm_ids.len(), 200, "the first page of items");

    let again = h.run("pull", json!({ "entity": "contact" })).await;
    assert_eq!((again["success_count"].as_i64(), again["skipped_count"].as_i64()), (Some(0), Some(450)), "{again}");
    assert_eq!(h.all_records("contact").await.len(), 450, "a second pull imports nothing twice");

    // `limit` stops early; `since` asks the CRM for later changes only.
    let limited = h.run("pull", json!({ "entity": "contact", "limit": 30 })).await;
    assert_eq!(limited["record_count"], 30, "{limited}");
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let none = h.run("pull", json!({ "entity": "contact", "since": future })).await;
    assert_eq!((str_of(&none, "status"), none["record_count"].as_i64()), ("completed", Some(0)), "{none}");
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let all = h.run("pull", json!({ "entity": "contact", "since": past })).await;
    assert_eq!(all["record_count"], 450, "{all}");
    let path = h.integration_path("/pull");
    let (status, _) =
        SyncHarness::send(h.api(Method::POST, &path).json(&json!({ "entity": "contact", "since": "last week" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
});

/// Pushes c0..c4, then a first sync so both sides share a base.
async fn synced_pair(h: &SyncHarness) {
    h.put_records("contact", contacts(0..5, "")).await;
    let run = h.run("push", json!({ "entity": "contact", "record_ids": ids(0..5) })).await;
    assert_eq!(run["success_count"], 5, "{run}");
    let first = h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!((str_of(&first, "status"), first["success_count"].as_i64()), ("completed", Some(0)), "{first}");
}

async fn set_strategy(h: &SyncHarness, strategy: &str) {
    let (status, body) = SyncHarness::send(
        h.api(Method::PATCH, &h.integration_path("/settings")).json(&json!({ "conflict_strategy": strategy })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["conflict_strategy"], strategy);
}

each_crm_and_backend!(pipedrive_too: two_way_sync_moves_one_sided_changes_and_never_echoes_its_own_writes, |h| {
    synced_pair(&h).await;
    // The workspace changes c1; a CRM user changes c2.
    h.put_records("contact", vec![json!({"id": "c1", "fields": {"last_name": "AppSide"}})]).await;
    let c2 = h.crm_id_of("c2@example.com");
    h.edit_crm_contact(&c2, "phone", "+1 555 0102");
    let run = h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!((str_of(&run, "status"), run["success_count"].as_i64()), ("completed", Some(2)), "{run}");
    assert_eq!(run["conflict_count"], 0);
    let crm = h.crm_contacts();
    assert_eq!(crm[&h.crm_id_of("c1@example.com")]["last_name"], "AppSide");
    assert_eq!(h.record("contact", "c2").await["fields"]["phone"], "+1 555 0102");
    assert_eq!(crm.len(), 5, "nothing created");

    // Our own writes do not come back as changes: the next sync has nothing to do.
    let quiet = h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!((quiet["success_count"].as_i64(), quiet["conflict_count"].as_i64()), (Some(0), Some(0)), "{quiet}");
    let detail = h.run_detail(str_of(&quiet, "run_id")).await;
    assert_eq!(detail["items"].as_array().unwrap().len(), 0, "{detail}");
    // Its stored timeline: pull then push, each ended, in order; a sync's size is not known ahead.
    let timeline = detail["timeline"].as_array().unwrap();
    let phases: Vec<&str> = timeline.iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["pulling contact", "pushing contact"], "{detail}");
    assert!(timeline.iter().all(|p| p["ended_at"].is_string()), "{detail}");
    assert!(timeline[0]["ended_at"].as_str() <= timeline[1]["started_at"].as_str(), "{detail}");
    // A manual sync counts what its pull will read since the cursor (our own writes, at or after
    // it) plus what waits to be pushed (nothing). Pipedrive cannot count changes: unknown, said so.
    match h.crm {
        Crm::Pipedrive => assert!(detail["estimated_records"].is_null(), "{detail}"),
        _ => assert!(detail["estimated_records"].as_i64().is_some_and(|n| (0..=5).contains(&n)), "{detail}"),
    }
});

each_crm_and_backend!(a_run_knows_its_size_from_the_crm_and_the_workspace_before_it_starts, |h| {
    // Seven contacts only in the CRM, three only in the workspace.
    h.sim.sim().seed("contact", 7).expect("seeded");
    h.put_records("contact", contacts(0..3, "")).await;
    let first = h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!(first["estimated_records"], 10, "7 to pull (the CRM's count) + 3 to push: {first}");
    assert_eq!(first["success_count"], 10, "{first}");
    // A whole-entity pull: the CRM counts all ten now.
    let pull = h.run("pull", json!({ "entity": "contact" })).await;
    assert_eq!(pull["estimated_records"], 10, "{pull}");
});

each_crm_and_backend!(pipedrive_too: the_same_change_on_both_sides_is_not_a_conflict, |h| {
    synced_pair(&h).await;
    set_strategy(&h, "manual_review").await;
    h.put_records("contact", vec![json!({"id": "c3", "fields": {"phone": "+1 555 0133"}})]).await;
    h.edit_crm_contact(&h.crm_id_of("c3@example.com"), "phone", "+1 555 0133");
    let run = h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!((run["conflict_count"].as_i64(), run["failure_count"].as_i64()), (Some(0), Some(0)), "{run}");
    let (_, conflicts) = SyncHarness::send(h.api(Method::GET, "/conflicts?status=pending")).await;
    assert_eq!(conflicts["conflicts"].as_array().unwrap().len(), 0);
    assert_eq!(h.record("contact", "c3").await["sync"][0]["status"], "synced");
});

/// Changes c4's first name to different values on both sides (the CRM last) and syncs.
async fn conflicting_edit(h: &SyncHarness) -> Value {
    h.put_records("contact", vec![json!({"id": "c4", "fields": {"first_name": "FromApp"}})]).await;
    tokio::time::sleep(h.crm.timestamp_resolution() + Duration::from_millis(20)).await;
    h.edit_crm_contact(&h.crm_id_of("c4@example.com"), "first_name", "FromCrm");
    h.run("sync", json!({ "entities": ["contact"] })).await
}

fn both_sides(h: &SyncHarness, app: &Value) -> (String, String) {
    let crm = h.crm_contacts();
    let crm_value = crm[&h.crm_id_of("c4@example.com")]["first_name"].as_str().unwrap().to_owned();
    (app["fields"]["first_name"].as_str().unwrap().to_owned(), crm_value)
}

each_crm_and_backend!(pipedrive_too: conflicts_are_settled_by_each_strategy, |h| {
    synced_pair(&h).await;
    // last_write_wins (the default): the CRM changed last.
    conflicting_edit(&h).await;
    let app = h.record("contact", "c4").await;
    assert_eq!(both_sides(&h, &app), ("FromCrm".to_owned(), "FromCrm".to_owned()));

    set_strategy(&h, "app_wins").await;
    conflicting_edit(&h).await;
    let app = h.record("contact", "c4").await;
    assert_eq!(both_sides(&h, &app), ("FromApp".to_owned(), "FromApp".to_owned()));

    set_strategy(&h, "crm_wins").await;
    h.put_records("contact", vec![json!({"id": "c4", "fields": {"first_name": "AppAgain"}})]).await;
    h.edit_crm_contact(&h.crm_id_of("c4@example.com"), "first_name", "CrmAgain");
    h.run("sync", json!({ "entities": ["contact"] })).await;
    let app = h.record("contact", "c4").await;
    assert_eq!(both_sides(&h, &app), ("CrmAgain".to_owned(), "CrmAgain".to_owned()));
    assert_eq!(h.crm_contacts().len(), 5);
});

each_crm_and_backend!(pipedrive_too: manual_review_holds_the_record_until_a_user_resolves_it_per_field, |h| {
    synced_pair(&h).await;
    set_strategy(&h, "manual_review").await;
    h.put_records("contact", vec![json!({"id": "c4", "fields": {"first_name": "FromApp", "last_name": "AppLast"}})])
        .await;
    let crm_id = h.crm_id_of("c4@example.com");
    h.edit_crm_contact(&crm_id, "first_name", "FromCrm");
    h.edit_crm_contact(&crm_id, "last_name", "CrmLast");
    let run = h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!(run["conflict_count"], 1, "{run}");
    // Nothing was overwritten on either side.
    let app = h.record("contact", "c4").await;
    assert_eq!(both_sides(&h, &app), ("FromApp".to_owned(), "FromCrm".to_owned()));
    assert_eq!(app["sync"][0]["status"], "conflict");

    let (_, listed) = SyncHarness::send(h.api(Method::GET, "/conflicts?status=pending&entity=contact")).await;
    let conflict = listed["conflicts"][0].clone();
    let mut fields: Vec<&str> =
        conflict["conflicting_fields"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["first_name", "last_name"]);
    assert_eq!(conflict["app_values"]["first_name"], "FromApp");
    assert_eq!(conflict["crm_values"]["first_name"], "FromCrm");
    let cid = str_of(&conflict, "conflict_id").to_owned();

    // A resolution must choose for every conflicting field.
    let resolve = format!("/conflicts/{cid}/resolve");
    let (status, body) =
        SyncHarness::send(h.api(Method::POST, &resolve).json(&json!({ "fields": { "first_name": "crm" } }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(str_of(&body["error"], "message").contains("last_name"), "{body}");

    let (status, body) = SyncHarness::send(
        h.api(Method::POST, &resolve).json(&json!({ "fields": { "first_name": "crm", "last_name": "app" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "resolved");
    let app = h.record("contact", "c4").await;
    let crm = h.crm_contacts();
    let crm = &crm[&crm_id];
    assert_eq!((app["fields"]["first_name"].as_str(), crm["first_name"].as_str()), (Some("FromCrm"), Some("FromCrm")));
    assert_eq!((app["fields"]["last_name"].as_str(), crm["last_name"].as_str()), (Some("AppLast"), Some("AppLast")));
    assert_eq!(app["sync"][0]["status"], "synced");

    // Resolved is final; the next sync finds both sides in agreement.
    let (status, _) = SyncHarness::send(h.api(Method::POST, &resolve).json(&json!({ "resolution": "use_app" }))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let quiet = h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!((quiet["conflict_count"].as_i64(), quiet["success_count"].as_i64()), (Some(0), Some(0)), "{quiet}");

    // Runs, the settings change and the resolution are in the audit log.
    let (_, audit) = SyncHarness::send(h.api(Method::GET, "/audit-log?limit=500")).await;
    let actions: Vec<&str> = audit["entries"].as_array().unwrap().iter().map(|e| str_of(e, "action")).collect();
    for expected in ["sync.started", "sync.finished", "settings.updated", "conflict.resolved"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let resolved = audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "conflict.resolved").unwrap();
    assert_eq!(resolved["actor"], "user-1");
});

each_crm_and_backend!(per_record_failures_carry_the_crms_message_and_retry_runs_only_those, |h| {
    let mut records = contacts(0..4, "");
    records[2]["fields"]["email"] = json!("not-an-email");
    h.put_records("contact", records).await;
    let run = h.run("push", json!({ "entity": "contact", "record_ids": ids(0..4) })).await;
    assert_eq!((str_of(&run, "status"), run["failure_count"].as_i64()), ("partial", Some(1)), "{run}");
    assert_eq!(run["estimated_records"], 4, "a push knows its size: {run}");
    let detail = h.run_detail(str_of(&run, "run_id")).await;
    let failed: Vec<&Value> = detail["items"].as_array().unwrap().iter().filter(|i| i["outcome"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["record_id"], "c2");
    let error = &failed[0]["error"];
    assert_eq!(error["kind"], "invalid", "{error}");
    let code = str_of(error, "crm_code");
    assert!(code.contains("INVALID_EMAIL"), "the CRM's own code: {error}");
    let record = h.record("contact", "c2").await;
    assert_eq!(record["sync"][0]["status"], "failed");
    assert_eq!(record["sync"][0]["last_error"]["crm_code"], error["crm_code"]);

    // Fix the record, retry: only it runs.
    h.put_records("contact", vec![json!({"id": "c2", "fields": {"email": "c2@example.com"}})]).await;
    let path = h.integration_path(&format!("/sync-runs/{}/retry?wait=true", str_of(&run, "run_id")));
    let (status, retried) = SyncHarness::send(h.api(Method::POST, &path)).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!((str_of(&retried, "trigger"), str_of(&retried, "retry_of")), ("retry", str_of(&run, "run_id")));
    assert_eq!((retried["record_count"].as_i64(), retried["success_count"].as_i64()), (Some(1), Some(1)), "{retried}");
    assert_eq!(h.crm_contacts().len(), 4);
    assert_eq!(h.record("contact", "c2").await["sync"][0]["status"], "synced");

    // The history lists both, newest first, and filters.
    let (_, history) = SyncHarness::send(h.api(Method::GET, &h.integration_path("/sync-history?direction=push"))).await;
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], retried["run_id"]);
    let (_, partial) = SyncHarness::send(h.api(Method::GET, &h.integration_path("/sync-history?status=partial"))).await;
    assert_eq!(partial["runs"].as_array().unwrap().len(), 1);
    // By date: runs started in [from, to).
    let started = str_of(&runs[1], "started_at").to_owned();
    let between =
        |from: &str, to: &str| h.api(Method::GET, &h.integration_path(&format!("/sync-history?from={from}&to={to}")));
    let (_, window) = SyncHarness::send(between(&started, "2100-01-01T00:00:00Z")).await;
    assert_eq!(window["runs"].as_array().unwrap().len(), 2, "{window}");
    let (_, before) = SyncHarness::send(between("2000-01-01T00:00:00Z", &started)).await;
    assert_eq!(before["runs"].as_array().unwrap().len(), 0, "`to` is exclusive: {before}");
    let (status, _) = SyncHarness::send(between("2100-01-01T00:00:00Z", "2000-01-01T00:00:00Z")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = SyncHarness::send(between("yesterday", "2000-01-01T00:00:00Z")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
});

#[tokio::test]
async fn progress_streams_as_server_sent_events_from_the_start_of_a_run() {
    let knobs = crm_sim::knobs::Knobs { latency_ms: 150, ..crm_sim::knobs::Knobs::default() };
    let h = SyncHarness::start(Backend::Sqlite, Crm::Hubspot, knobs).await.unwrap();
    h.put_records("contact", contacts(0..200, "")).await;
    h.sim.sim().seed("contact", 600).unwrap();
    let (status, started) =
        SyncHarness::send(h.api(Method::POST, &h.integration_path("/sync")).json(&json!({ "entities": ["contact"] })))
            .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["status"], "running");
    let t0 = Instant::now();
    let events_path = h.integration_path(&format!("/sync-runs/{}/events", str_of(&started, "run_id")));
    let mut response = h.api(Method::GET, &events_path).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut first_event_at = None;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), response.chunk()).await.unwrap().unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if first_event_at.is_none() && text.contains("event: progress") {
            first_event_at = Some(t0.elapsed());
        }
        if text.contains("event: end") && text.ends_with("\n\n") {
            break;
        }
    }
    let first = first_event_at.expect("a progress event");
    assert!(first < Duration::from_secs(2), "first event after {first:?}");
    let progress: Vec<Value> = text
        .split("\n\n")
        .filter(|e| e.contains("event: progress"))
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")).and_then(|d| serde_json::from_str(d).ok()))
        .collect();
    assert!(progress.len() >= 3, "several progress events: {}", progress.len());
    let counts: Vec<i64> = progress.iter().map(|p| p["counts"]["records"].as_i64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "progress only grows: {counts:?}");
    let end = text.split("event: end").nth(1).unwrap();
    let end: Value = serde_json::from_str(end.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!((str_of(&end, "status"), end["record_count"].as_i64()), ("completed", Some(800)), "{end}");
}

#[tokio::test]
async fn record_and_mapping_input_is_validated_with_clear_errors() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Salesforce, crm_sim::knobs::Knobs::default()).await.unwrap();
    // Per-record errors; good records in the same batch are written.
    let (status, body) = SyncHarness::send(h.api(Method::PUT, "/records/contact").json(&json!({ "records": [
        {"id": "ok", "fields": {"email": "ok@example.com"}},
        {"id": "bad id", "fields": {}},
        {"id": "nested", "fields": {"tags": ["a"]}},
        {"id": "ok", "fields": {}},
    ]})))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses: Vec<&str> = body["results"].as_array().unwrap().iter().map(|r| str_of(r, "status")).collect();
    assert_eq!(statuses, ["created", "failed", "failed", "failed"]);
    assert!(str_of(&body["results"][2]["error"], "message").contains("tags"), "{body}");
    assert_eq!(body["results"][3]["error"]["code"], "duplicate_id");
    let (status, _) = SyncHarness::send(h.api(Method::PUT, "/records/Contact").json(&json!({"records": []}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = SyncHarness::send(h.api(Method::GET, "/records/contact?changed_since=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Soft delete hides a record from the listing but keeps it readable.
    let (status, _) = SyncHarness::send(h.api(Method::DELETE, "/records/contact/ok")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.all_records("contact").await.is_empty());
    assert!(h.record("contact", "ok").await["deleted_at"].is_string());

    // Mappings are checked against the CRM's fields.
    let path = h.integration_path("/field-mappings");
    let (status, body) = SyncHarness::send(h.api(Method::PUT, &path).json(&json!({ "entity": "contact", "mappings": [
        {"app_field": "email", "crm_field": "Email", "direction": "both"},
        {"app_field": "shoe", "crm_field": "ShoeSize__c"},
        {"app_field": "created", "crm_field": "CreatedDate", "direction": "both"},
    ]})))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = str_of(&body["error"], "message");
    assert!(message.contains("ShoeSize__c") && message.contains("CreatedDate"), "{message}");
    let (status, body) = SyncHarness::send(h.api(Method::PUT, &path).json(&json!({ "entity": "contact", "mappings": [
        {"app_field": "email", "crm_field": "Email", "transform": "rot13"},
    ]})))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = SyncHarness::send(
        h.api(Method::PATCH, &h.integration_path("/settings")).json(&json!({ "conflict_strategy": "coin_flip" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = SyncHarness::send(
        h.api(Method::POST, &h.integration_path("/push")).json(&json!({ "entity": "widget", "record_ids": ["x"] })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(str_of(&body["error"], "message").contains("no entity `widget`"), "{body}");
}

each_crm_and_backend!(workspace_mappings_and_transforms_shape_what_is_pushed_and_pulled, |h| {
    let last = h.crm.contact_field("last_name");
    let email = h.crm.contact_field("email");
    let title = h.crm.contact_field("title");
    let path = h.integration_path("/field-mappings");
    let (status, body) = SyncHarness::send(h.api(Method::PUT, &path).json(&json!({ "entity": "contact", "mappings": [
        {"app_field": "email", "crm_field": email, "direction": "both", "transform": "lowercase"},
        {"app_field": "surname", "crm_field": last, "direction": "both", "transform": "uppercase"},
        {"app_field": "role", "crm_field": title, "direction": "push", "transform": {"value_map": {"vp": "Vice President"}}},
    ]}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["source"], "workspace");
    h.put_records(
        "contact",
        vec![json!({"id": "m1", "fields": {"email": "Mixed@Example.COM", "surname": "smith", "role": "vp"}})],
    )
    .await;
    let run = h.run("push", json!({ "entity": "contact", "record_ids": ["m1"] })).await;
    assert_eq!(run["success_count"], 1, "{run}");
    let crm = h.crm_contacts();
    let pushed = crm.values().next().unwrap();
    assert_eq!(
        (pushed["email"].as_str(), pushed["last_name"].as_str(), pushed["title"].as_str()),
        (Some("mixed@example.com"), Some("SMITH"), Some("Vice President"))
    );
    // Normalizing transforms do not look like changes on the next sync.
    let quiet = h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!((quiet["success_count"].as_i64(), quiet["failure_count"].as_i64()), (Some(0), Some(0)), "{quiet}");
    let (_, listed) = SyncHarness::send(h.api(Method::GET, &path)).await;
    let contact = listed["entities"].as_array().unwrap().iter().find(|e| e["entity"] == "contact").unwrap().clone();
    assert_eq!(contact["mappings"].as_array().unwrap().len(), 3);
    // An empty list goes back to the plugin's defaults.
    let (status, body) =
        SyncHarness::send(h.api(Method::PUT, &path).json(&json!({ "entity": "contact", "mappings": [] }))).await;
    assert_eq!((status, body["source"].as_str()), (StatusCode::OK, Some("default")), "{body}");
});

#[tokio::test]
async fn an_ignored_conflict_writes_nothing_and_comes_back_while_the_sides_differ() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Hubspot, crm_sim::knobs::Knobs::default()).await.unwrap();
    synced_pair(&h).await;
    set_strategy(&h, "manual_review").await;
    let run = conflicting_edit(&h).await;
    assert_eq!(run["conflict_count"], 1, "{run}");
    let (_, listed) = SyncHarness::send(h.api(Method::GET, "/conflicts?status=pending")).await;
    let cid = str_of(&listed["conflicts"][0], "conflict_id").to_owned();
    let (status, ignored) = SyncHarness::send(h.api(Method::POST, &format!("/conflicts/{cid}/ignore"))).await;
    assert_eq!((status, ignored["status"].as_str()), (StatusCode::OK, Some("ignored")), "{ignored}");
    let app = h.record("contact", "c4").await;
    assert_eq!(both_sides(&h, &app), ("FromApp".to_owned(), "FromCrm".to_owned()), "nothing written");
    assert_eq!(app["sync"][0]["status"], "pending");
    let again = h.run("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!(again["conflict_count"], 1, "still different, so flagged again: {again}");
    // Even when the pull cursor has moved past the CRM's change, the record is merged again
    // before anything is pushed: ignoring never lets one side silently overwrite the other.
    let ignore_pending = || async {
        let (_, listed) = SyncHarness::send(h.api(Method::GET, "/conflicts?status=pending")).await;
        let cid = str_of(&listed["conflicts"][0], "conflict_id").to_owned();
        let (status, _) = SyncHarness::send(h.api(Method::POST, &format!("/conflicts/{cid}/ignore"))).await;
        assert_eq!(status, StatusCode::OK);
    };
    ignore_pending().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.edit_crm_contact(&h.crm_id_of("c0@example.com"), "title", "MovesTheCursor");
    h.run("sync", json!({ "entities": ["contact"] })).await;
    // The cursor is now past c4's CRM change: the next pull does not return c4.
    ignore_pending().await;
    h.run("sync", json!({ "entities": ["contact"] })).await;
    let (_, listed) = SyncHarness::send(h.api(Method::GET, "/conflicts?status=pending")).await;
    assert_eq!(listed["conflicts"].as_array().unwrap().len(), 1);
    let app = h.record("contact", "c4").await;
    assert_eq!(both_sides(&h, &app), ("FromApp".to_owned(), "FromCrm".to_owned()), "still nothing written");
    let (status, _) = SyncHarness::send(h.api(Method::POST, &format!("/conflicts/{cid}/ignore"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "already closed");
    let (status, _) = SyncHarness::send(h.api(Method::GET, "/conflicts/00000000-0000-4000-8000-000000000000")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a well-formed id of no conflict");
    let (status, body) = SyncHarness::send(h.api(Method::GET, "/conflicts/no-such-conflict")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not a conflict id at all: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("conflict id"), "{body}");
}

/// Workspace records for the other entities, with the default mappings' fields.
fn other_entities(crm: Crm) -> Vec<(&'static str, Vec<Value>)> {
    let rows = |f: &dyn Fn(usize) -> Value| (0..3).map(|i| json!({ "id": format!("r{i}"), "fields": f(i) })).collect();
    match crm {
        Crm::Salesforce => vec![
            (
                "lead",
                rows(
                    &|i| json!({"email": format!("lead{i}@example.com"), "last_name": format!("L{i}"), "company": "Acme"}),
                ),
            ),
            (
                "account",
                rows(&|i| json!({"name": format!("Account {i}"), "industry": "Technology", "employees": 10 + i})),
            ),
            (
                "opportunity",
                rows(
                    &|i| json!({"name": format!("Deal {i}"), "amount": 1000 * (i + 1), "stage": "Prospecting", "close_date": "2027-01-31"}),
                ),
            ),
            (
                "campaign",
                rows(
                    &|i| json!({"name": format!("Campaign {i}"), "type": "Email", "status": "In Progress", "start_date": format!("2027-01-0{}", i + 1), "active": true}),
                ),
            ),
            (
                "task",
                rows(
                    &|i| json!({"external_id": format!("task-{i}"), "subject": format!("Email: hello {i}"), "status": "Completed", "subtype": "Email", "activity_date": "2027-01-31"}),
                ),
            ),
        ],
        Crm::Hubspot => vec![
            (
                "company",
                rows(
                    &|i| json!({"name": format!("Company {i}"), "domain": format!("company{i}.example.com"), "employees": 10 + i}),
                ),
            ),
            (
                "deal",
                rows(
                    &|i| json!({"name": format!("Deal {i}"), "amount": 1000 * (i + 1), "stage": "appointmentscheduled"}),
                ),
            ),
            (
                "email",
                rows(
                    &|i| json!({"external_id": format!("email-{i}"), "subject": format!("Hello {i}"), "body": "Hi", "direction": "EMAIL", "status": "SENT", "sent_at": format!("2027-01-0{}T09:00:00Z", i + 1)}),
                ),
            ),
            ("list", rows(&|i| json!({"name": format!("List {i}")}))),
        ],
        Crm::Pipedrive => vec![
            ("company", rows(&|i| json!({"name": format!("Organization {i}"), "address": format!("{i} Main Street")}))),
            (
                "deal",
                rows(&|i| json!({"name": format!("Deal {i}"), "amount": 1000 * (i + 1), "close_date": "2027-01-31"})),
            ),
        ],
    }
}

each_crm_and_backend!(pipedrive_too: every_entity_pushes_once_and_syncs_back_quietly, |h| {
    for (entity, records) in other_entities(h.crm) {
        h.put_records(entity, records).await;
        let ids = json!(["r0", "r1", "r2"]);
        let first = h.run("push", json!({ "entity": entity, "record_ids": ids })).await;
        assert_eq!(
            (str_of(&first, "status"), first["success_count"].as_i64()),
            ("completed", Some(3)),
            "{entity}: {first}"
        );
        let again = h.run("push", json!({ "entity": entity, "record_ids": ids })).await;
        let detail = h.run_detail(str_of(&again, "run_id")).await;
        let outcomes: Vec<&str> = detail["items"].as_array().unwrap().iter().map(|i| str_of(i, "outcome")).collect();
        assert_eq!(outcomes, ["updated", "updated", "updated"], "{entity}: matched, not created again");
        // A first sync brings the CRM's own values of pull fields (a lead's default status) ...
        let first_sync = h.run("sync", json!({ "entities": [entity] })).await;
        assert_eq!(
            (first_sync["failure_count"].as_i64(), first_sync["conflict_count"].as_i64()),
            (Some(0), Some(0)),
            "{entity}: {first_sync}"
        );
        if entity == "lead" {
            assert_eq!(h.record("lead", "r0").await["fields"]["status"], "Open - Not Contacted");
        }
        // ... and then typed values (numbers, dates) read back as what was sent: nothing to do.
        let quiet = h.run("sync", json!({ "entities": [entity] })).await;
        assert_eq!(
            (quiet["success_count"].as_i64(), quiet["failure_count"].as_i64(), quiet["conflict_count"].as_i64()),
            (Some(0), Some(0), Some(0)),
            "{entity}: {quiet}"
        );
    }
});

#[tokio::test]
async fn a_conflict_resolved_with_merged_values_writes_them_to_both_sides() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Salesforce, crm_sim::knobs::Knobs::default()).await.unwrap();
    synced_pair(&h).await;
    set_strategy(&h, "manual_review").await;
    conflicting_edit(&h).await;
    let (_, listed) = SyncHarness::send(h.api(Method::GET, "/conflicts?status=pending&integration=salesforce")).await;
    let cid = str_of(&listed["conflicts"][0], "conflict_id").to_owned();
    let resolve = format!("/conflicts/{cid}/resolve");
    let (status, body) =
        SyncHarness::send(h.api(Method::POST, &resolve).json(&json!({ "values": { "nope": 1 } }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = SyncHarness::send(
        h.api(Method::POST, &resolve).json(&json!({ "resolution": "use_app", "values": { "first_name": "x" } })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "exactly one way of resolving: {body}");
    let (status, body) =
        SyncHarness::send(h.api(Method::POST, &resolve).json(&json!({ "values": { "first_name": "Merged" } }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resolved_by"], "user-1");
    let app = h.record("contact", "c4").await;
    assert_eq!(both_sides(&h, &app), ("Merged".to_owned(), "Merged".to_owned()));
}
