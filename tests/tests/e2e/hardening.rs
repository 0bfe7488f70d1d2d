//! What an outside probe broke, each fixed and kept fixed: CRM values that used to panic a run or
//! fail it on PostgreSQL, a daily-limit deferral that lost a batch from the books, runs orphaned by
//! a killed process, false conflicts on a first link, and the OAuth edge (PKCE, log injection).

use std::time::Duration;

use crmhost_tests::{AppOptions, Backend, Crm, SyncHarness, TestApp, contacts, eventually, raw_execute};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

async fn harness(backend: Backend, crm: Crm) -> Option<SyncHarness> {
    SyncHarness::start(backend, crm, crm_sim::knobs::Knobs::default()).await
}

/// The mappings of one entity as the API shows them, as a `PUT …/field-mappings` body.
async fn mappings_body(h: &SyncHarness, entity: &str) -> Value {
    let (status, all) = SyncHarness::send(h.api(Method::GET, &h.integration_path("/field-mappings"))).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let entry = all["entities"].as_array().unwrap().iter().find(|e| e["entity"] == entity).unwrap().clone();
    let mappings: Vec<Value> = entry["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            json!({"app_field": m["app_field"], "crm_field": m["crm_field"], "direction": m["direction"],
                   "transform": m["transform"]})
        })
        .collect();
    json!({ "entity": entity, "mappings": mappings })
}

/// Puts the opportunity mappings with a `date_format` transform on `crm_field`.
async fn put_date_format(h: &SyncHarness, crm_field: &str) -> (StatusCode, Value) {
    let mut body = mappings_body(h, "opportunity").await;
    for m in body["mappings"].as_array_mut().unwrap() {
        if m["crm_field"] == crm_field {
            m["transform"] = json!({"date_format": "%d/%m/%Y"});
        }
    }
    SyncHarness::send(h.api(Method::PUT, &h.integration_path("/field-mappings")).json(&body)).await
}

/// Sets a Salesforce record's field in the emulator as stored data (no validation), as a CRM
/// returning unexpected text would.
fn set_salesforce_field(h: &SyncHarness, object: &str, index: usize, field: &'static str, value: Value) -> String {
    let mut state = h.sim.sim().salesforce();
    let store = state.objects.iter_mut().find(|o| o.schema.name == object).unwrap();
    let record = store.records.values_mut().filter(|r| r.deleted_at.is_none()).nth(index).unwrap();
    record.fields.insert(field, value);
    record.id.clone()
}

#[tokio::test]
async fn a_date_format_transform_passes_odd_crm_text_through_and_is_refused_on_non_date_fields() {
    for backend in BACKENDS {
        let Some(h) = harness(backend, Crm::Salesforce).await else { continue };
        h.sim.sim().seed("opportunity", 3).unwrap();
        let (status, saved) = put_date_format(&h, "CloseDate").await;
        assert_eq!(status, StatusCode::OK, "{saved}");

        // Byte 10 of this text falls inside `é`: slicing it by bytes panicked the run's task.
        let odd = set_salesforce_field(&h, "Opportunity", 0, "CloseDate", json!("2026-01-3é"));
        let run = h.run("pull", json!({"entity": "opportunity"})).await;
        assert_eq!(run["status"], "completed", "{backend:?}: {run}");
        assert_eq!(run["success_count"], 3, "{run}");
        let records = h.all_records("opportunity").await;
        let imported = records.iter().find(|r| r["id"].as_str().unwrap().ends_with(&odd)).unwrap();
        assert_eq!(imported["fields"]["close_date"], "2026-01-3é", "text that is no date passes through");
        let normal = records.iter().find(|r| !r["id"].as_str().unwrap().ends_with(&odd)).unwrap();
        let date = normal["fields"]["close_date"].as_str().unwrap();
        assert_eq!(date.split('/').count(), 3, "real dates are converted: {date}");

        // A date format on a field the CRM does not type as a date is refused, by name.
        let (status, refused) = put_date_format(&h, "StageName").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains("StageName") && message.contains("date"), "{message}");
    }
}

#[tokio::test]
async fn a_crm_value_holding_a_nul_fails_that_record_only_on_both_backends() {
    for backend in BACKENDS {
        for crm in [Crm::Salesforce, Crm::Hubspot] {
            let Some(h) = harness(backend, crm).await else { continue };
            h.sim.sim().seed("contact", 5).unwrap();
            let bad_id = match crm {
                Crm::Salesforce => set_salesforce_field(&h, "Contact", 2, "LastName", json!("Last\u{0}Name")),
                Crm::Hubspot => {
                    let mut state = h.sim.sim().hubspot();
                    let record = state.objects.get_mut("contacts").unwrap().records.values_mut().nth(2).unwrap();
                    record.properties.insert("lastname".to_owned(), "Last\u{0}Name".to_owned());
                    record.id.to_string()
                }
                Crm::Pipedrive => unreachable!("not in this test's list"),
            };
            for attempt in 0..2 {
                let run = h.run("pull", json!({"entity": "contact"})).await;
                let at = format!("{backend:?} {crm:?} pull {attempt}");
                // The first pull imports the others; the second finds them unchanged.
                let expected = if attempt == 0 { "partial" } else { "failed" };
                assert_eq!(run["status"], expected, "{at}: {run}");
                assert_eq!(run["failure_count"], 1, "{at}: {run}");
                assert_eq!(run["error"], Value::Null, "{at}: the run itself went through: {run}");
                let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
                let failed: Vec<&Value> =
                    detail["items"].as_array().unwrap().iter().filter(|i| i["outcome"] == "failed").collect();
                assert_eq!(failed.len(), 1, "{at}: {detail}");
                assert_eq!(failed[0]["crm_id"], bad_id.as_str(), "{at}");
                assert_eq!(failed[0]["error"]["kind"], "invalid_value", "{at}");
                assert!(failed[0]["error"]["message"].as_str().unwrap().contains("last_name"), "{at}: {detail}");
            }
            assert_eq!(h.all_records("contact").await.len(), 4, "{backend:?} {crm:?}: the others were imported");
        }
    }
}

#[tokio::test]
async fn a_daily_limit_mid_push_counts_the_batch_in_the_run_charges_no_attempt_and_retry_covers_it() {
    for backend in BACKENDS {
        let Some(h) = harness(backend, Crm::Salesforce).await else { continue };
        h.put_records("contact", contacts(0..200, "")).await;
        h.put_records("contact", contacts(200..400, "")).await;
        h.put_records("contact", contacts(400..600, "")).await;
        // Enough allocation for the pull phase and a batch or two, not for all three.
        let used = h.sim.sim().salesforce().api_usage;
        h.sim
            .sim()
            .set_knobs(crm_sim::knobs::Knobs { salesforce_daily_limit: used + 5, ..Default::default() })
            .unwrap();
        let run = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
        assert_eq!(run["status"], "deferred", "{backend:?}: {run}");
        let run_id = run["run_id"].as_str().unwrap();

        // Every record is in the books: synced by this run, or a failed item of it, or untouched.
        let (_, detail) = SyncHarness::send(
            h.api(Method::GET, &h.integration_path(&format!("/sync-runs/{run_id}?items_limit=1000"))),
        )
        .await;
        let items = detail["items"].as_array().unwrap();
        let failed: Vec<&str> =
            items.iter().filter(|i| i["outcome"] == "failed").map(|i| i["record_id"].as_str().unwrap()).collect();
        assert!(!failed.is_empty(), "the batch in flight is counted: {run}");
        assert_eq!(run["failure_count"].as_u64().unwrap() as usize, failed.len(), "{run}");
        assert!(items.iter().filter(|i| i["outcome"] == "failed").all(|i| i["error"]["kind"] == "rate_limited"));
        let created = items.iter().filter(|i| i["outcome"] == "created").count();
        assert_eq!(created, h.crm_contacts().len(), "{backend:?}");
        for id in &failed {
            let record = h.record("contact", id).await;
            // Never linked, or linked and pending: either way no attempt charged.
            let sync = &record["sync"][0];
            assert_eq!(sync["attempts"].as_i64().unwrap_or(0), 0, "not the record's fault: {record}");
            assert_ne!(sync["status"], "failed", "{record}");
        }

        // The allocation frees up; the deferred run's retry brings every record over.
        h.sim.sim().set_knobs(crm_sim::knobs::Knobs::default()).unwrap();
        // Testing the connection reads the account's usage afresh (Sforce-Limit-Info).
        let (status, tested) = SyncHarness::send(h.api(Method::POST, &h.integration_path("/test"))).await;
        assert_eq!(status, StatusCode::OK, "{tested}");
        let (status, retry) =
            SyncHarness::send(h.api(Method::POST, &h.integration_path(&format!("/sync-runs/{run_id}/retry")))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{retry}");
        let path = h.integration_path(&format!("/sync-runs/{}", retry["run_id"].as_str().unwrap()));
        let done = eventually(Duration::from_secs(60), || async {
            SyncHarness::send(h.api(Method::GET, &path)).await.1["status"] != "running"
        })
        .await;
        assert!(done);
        assert_eq!(h.crm_contacts().len(), 600, "{backend:?}: the retry covered the rest");
        for id in &failed {
            assert_eq!(h.record("contact", id).await["sync"][0]["status"], "synced", "{id}");
        }
    }
}

#[tokio::test]
async fn a_run_whose_process_died_is_marked_interrupted_within_the_sweep_not_at_the_next_start() {
    for backend in BACKENDS {
        let scheduler =
            crmhost::sync::SchedulerOptions { orphan_sweep: Duration::from_millis(200), ..Default::default() };
        let sim = std::sync::Arc::new(crm_sim::start(crm_sim::SimOptions::both_on_free_ports()).await.unwrap());
        let Some(app) =
            TestApp::spawn(AppOptions { backend, sim: Some(sim), scheduler, ..AppOptions::default() }).await
        else {
            continue;
        };
        assert_eq!(app.connect("w1", "salesforce").await.status(), StatusCode::OK);
        // What a process killed mid-run leaves behind: a running run under another owner whose
        // heartbeat stopped (aged here instead of waited out).
        let workspace = crmhost::domain::WorkspaceId::parse("w1").unwrap();
        let run_id = crmhost::domain::RunId::generate();
        app.state
            .store
            .create_run(&crmhost::store::NewRun {
                run_id: run_id.clone(),
                workspace: workspace.clone(),
                slug: crmhost::domain::PluginSlug::parse("salesforce").unwrap(),
                direction: crmhost::domain::SyncDirection::Pull,
                entity: Some("contact".to_owned()),
                trigger: crmhost::domain::Trigger::Manual,
                params: json!({"operation": "pull", "entity": "contact"}),
                started_by: Some("user-1".to_owned()),
                retry_of: None,
                owner_id: "a-killed-process".to_owned(),
                estimated_records: None,
            })
            .await
            .unwrap();
        let aged =
            format!("update sync_history set heartbeat_at = '2000-01-01T00:00:00+00:00' where run_id = '{run_id}'");
        assert_eq!(raw_execute(&app.database_url, &aged).await, 1);

        let path = format!("/api/v1/workspaces/w1/integrations/salesforce/sync-runs/{run_id}");
        let status = || async {
            let response = app.as_role(Method::GET, &path, "w1", crmhost::auth::Role::Admin).send().await.unwrap();
            response.json::<Value>().await.unwrap()["status"].as_str().unwrap_or_default().to_owned()
        };
        assert!(eventually(Duration::from_secs(10), || async { status().await == "interrupted" }).await, "{backend:?}");
        let retry =
            app.as_role(Method::POST, &format!("{path}/retry"), "w1", crmhost::auth::Role::Admin).send().await.unwrap();
        assert_eq!(retry.status(), StatusCode::ACCEPTED, "{backend:?}: an interrupted run can be retried");
    }
}

#[tokio::test]
async fn a_first_link_between_crms_fills_gaps_instead_of_raising_conflicts() {
    for backend in BACKENDS {
        let mut options = crm_sim::SimOptions::both_on_free_ports();
        options.seed_records = vec![crm_sim::SeedSpec { entity: "contact".to_owned(), count: 25 }];
        let sim = std::sync::Arc::new(crm_sim::start(options).await.unwrap());
        let Some(app) = TestApp::spawn(AppOptions { backend, sim: Some(sim.clone()), ..AppOptions::default() }).await
        else {
            continue;
        };
        for slug in ["salesforce", "hubspot"] {
            assert_eq!(app.connect("w1", slug).await.status(), StatusCode::OK);
            let patch = app
                .as_role(
                    Method::PATCH,
                    &format!("/api/v1/workspaces/w1/integrations/{slug}/settings"),
                    "w1",
                    crmhost::auth::Role::Admin,
                )
                .json(&json!({"conflict_strategy": "manual_review"}))
                .send()
                .await
                .unwrap();
            assert_eq!(patch.status(), StatusCode::OK);
        }
        let mut last = Value::Null;
        for slug in ["salesforce", "hubspot"] {
            let response = app
                .as_role(
                    Method::POST,
                    &format!("/api/v1/workspaces/w1/integrations/{slug}/sync?wait=true"),
                    "w1",
                    crmhost::auth::Role::Admin,
                )
                .json(&json!({"entities": ["contact"]}))
                .send()
                .await
                .unwrap();
            last = response.json().await.unwrap();
            assert_eq!(last["conflict_count"], 0, "{backend:?} {slug}: {last}");
            assert_eq!(last["failure_count"], 0, "{backend:?} {slug}: {last}");
        }
        // HubSpot had no job titles: the workspace's (from Salesforce) filled them.
        let state = sim.sim().hubspot();
        let titled = state.objects["contacts"]
            .records
            .values()
            .filter(|r| r.properties.get("jobtitle").is_some_and(|t| t == "Buyer"))
            .count();
        assert_eq!(titled, 25, "{backend:?}: {last}");
    }
}

#[tokio::test]
async fn a_pkce_mismatch_at_the_crm_is_400_invalid_grant_for_both_crms() {
    let sim = std::sync::Arc::new(crm_sim::start(crm_sim::SimOptions::both_on_free_ports()).await.unwrap());
    let app = TestApp::spawn(AppOptions { sim: Some(sim), ..AppOptions::default() }).await.unwrap();
    for slug in ["salesforce", "hubspot"] {
        let authorize = app.start_connect("w1", slug, json!({})).await;
        let mut url = url::Url::parse(&authorize).unwrap();
        // Someone swapped the challenge on the way to the CRM: the code is bound to another verifier.
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "code_challenge" { "A".repeat(43) } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        let callback = crmhost_tests::browse_to_callback(url.as_str()).await;
        let response = app.client.get(callback).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{slug}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_grant", "{slug}: {body}");
    }
}

#[tokio::test]
async fn control_characters_from_a_request_are_escaped_in_the_text_log() {
    crmhost_tests::capture_logs();
    let sim = std::sync::Arc::new(crm_sim::start(crm_sim::SimOptions::both_on_free_ports()).await.unwrap());
    let app = TestApp::spawn(AppOptions { sim: Some(sim), ..AppOptions::default() }).await.unwrap();
    let authorize = app.start_connect("w1", "salesforce", json!({})).await;
    let state = url::Url::parse(&authorize).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let marker = format!("FORGED-{}", uuid::Uuid::new_v4().simple());
    let callback = format!(
        "{}/api/v1/integrations/callback/salesforce?state={state}&error=access_denied%0D%0A{marker}%1B%5B31m&error_description=x%0Ay",
        app.base
    );
    let response = app.client.get(callback).send().await.unwrap();
    assert!(response.status().is_client_error());
    let logs = crmhost_tests::captured_logs();
    let line = logs.lines().find(|l| l.contains(&marker)).unwrap_or_else(|| panic!("the failure is logged"));
    assert!(line.contains("\\r\\n"), "{line}");
    assert!(!logs.contains(&format!("\n{marker}")), "a request cannot start a log line");
    assert!(!line.contains('\u{1b}'), "{line}");
}

/// Two-way sync at scale (see [`SyncHarness::edits_from_three_places`]).
async fn two_way_at_scale(backend: Backend, crm: Crm) {
    let Some(h) = harness(backend, crm).await else { return };
    h.edits_from_three_places(2_000).await;
}

#[tokio::test]
async fn two_way_sync_of_2000_contacts_carries_every_edit_across_salesforce() {
    for backend in BACKENDS {
        two_way_at_scale(backend, Crm::Salesforce).await;
    }
}

#[tokio::test]
async fn two_way_sync_of_2000_contacts_carries_every_edit_across_hubspot() {
    for backend in BACKENDS {
        two_way_at_scale(backend, Crm::Hubspot).await;
    }
}
