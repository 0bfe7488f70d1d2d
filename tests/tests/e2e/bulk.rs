//! Salesforce's Bulk API 2.0 through the sync engine, on both backends: pulls and pushes at or
//! above the operator's threshold run as bulk jobs (one query job; one ingest job per operation),
//! a record the CRM refuses fails alone with the CRM's code from the job's failed results, a job
//! still running makes the run wait as the plugin asks, a run that stopped mid-job is continued by
//! the next one (no second job), and a plugin without bulk jobs (HubSpot's) sends in batches.

use std::collections::BTreeMap;
use std::time::Duration;

use crmhost::domain::{EntityName, PluginSlug, WorkspaceId};
use crmhost::store::BulkDirection;
use crmhost_tests::{Backend, Crm, SyncHarness, contacts};
use serde_json::{Value, json};

/// The threshold the tests run with: small, so a test needs only a hundred records.
const THRESHOLD: u64 = 50;

async fn harness(backend: Backend, crm: Crm, knobs: crm_sim::knobs::Knobs) -> Option<SyncHarness> {
    let scheduler = crmhost::sync::SchedulerOptions { bulk_threshold: Some(THRESHOLD), ..Default::default() };
    SyncHarness::start_with(backend, crm, knobs, scheduler).await
}

/// The emulator's Bulk 2.0 jobs: operation → states.
fn bulk_jobs(h: &SyncHarness) -> BTreeMap<String, Vec<&'static str>> {
    h.sim.sim().salesforce().bulk.jobs_by_operation()
}

fn count(run: &Value, what: &str) -> i64 {
    run[what].as_i64().unwrap_or_else(|| panic!("{what}: {run}"))
}

async fn phases(h: &SyncHarness, run: &Value) -> Vec<String> {
    let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
    detail["timeline"].as_array().unwrap().iter().map(|p| p["phase"].as_str().unwrap().to_owned()).collect()
}

async fn stored_job(h: &SyncHarness, direction: BulkDirection) -> Option<crmhost::store::BulkJob> {
    let (ws, slug) = (WorkspaceId::parse("w1").unwrap(), PluginSlug::parse("salesforce").unwrap());
    let entity = EntityName::parse("contact").unwrap();
    h.app.state.store.bulk_job(&ws, &slug, &entity, direction).await.unwrap()
}

#[tokio::test]
async fn large_pulls_and_pushes_run_as_bulk_jobs() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = harness(backend, Crm::Salesforce, Default::default()).await else { continue };

        // A full pull of 120 contacts made in Salesforce: one query job, every record imported.
        let made: Vec<String> =
            (0..120).map(|i| h.create_crm_contact(&format!("p{i}@bulk.example"), "Pulled", &format!("P{i}"))).collect();
        let run = h.run_to_end("pull", json!({"entity": "contact"})).await;
        assert_eq!((run["status"].as_str(), count(&run, "success_count")), (Some("completed"), 120), "{run}");
        assert_eq!(bulk_jobs(&h), BTreeMap::from([("query".to_owned(), vec!["JobComplete"])]));
        assert!(phases(&h, &run).await.contains(&"pulling contact (bulk job)".to_owned()));
        let imported = h.all_records("contact").await;
        assert_eq!(imported.len(), 120);
        let p7 = imported.iter().find(|r| r["fields"]["email"] == "p7@bulk.example").unwrap();
        assert_eq!(p7["fields"]["last_name"], "P7", "{p7}");
        assert!(stored_job(&h, BulkDirection::Pull).await.is_none(), "a finished job is forgotten");

        // A push of 80 new workspace contacts and one Salesforce refuses (no last name): one insert
        // job; the refused one fails alone with Salesforce's code.
        let mut new = contacts(200..280, "Bulk");
        new.push(json!({"id": "nolast", "fields": {"email": "nolast@bulk.example", "first_name": "No"}}));
        h.put_records("contact", new).await;
        let run = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
        assert_eq!((count(&run, "success_count"), count(&run, "failure_count")), (80, 1), "{run}");
        let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
        let refused = detail["items"].as_array().unwrap().iter().find(|i| i["record_id"] == "nolast").cloned();
        let refused = refused.unwrap_or_else(|| panic!("{detail}"));
        assert_eq!(refused["error"]["crm_code"], "REQUIRED_FIELD_MISSING", "{refused}");
        assert_eq!(bulk_jobs(&h)["insert"], ["JobComplete"], "{:?}", bulk_jobs(&h));
        let crm = h.crm_contacts();
        assert_eq!(crm.len(), 200, "120 pulled + 80 pushed");
        let c210 = h.crm_id_of("c210@example.com");
        assert_eq!(crm[&c210]["first_name"], "BulkFirst210");

        // Changing 60 linked contacts (pulled and pushed ones): one update job by id.
        let mut changed = contacts(200..230, "Changed");
        changed.extend(made.iter().take(30).enumerate().map(|(i, _)| {
            let id =
                imported.iter().find(|r| r["fields"]["email"] == format!("p{i}@bulk.example")).unwrap()["id"].clone();
            json!({"id": id, "fields": {"title": "Bulk-updated"}})
        }));
        h.put_records("contact", changed).await;
        let run = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
        assert_eq!((count(&run, "success_count"), count(&run, "failure_count")), (60, 0), "{run}");
        assert_eq!(bulk_jobs(&h)["update"], ["JobComplete"], "{:?}", bulk_jobs(&h));
        let crm = h.crm_contacts();
        assert_eq!(crm.len(), 200, "nothing created");
        assert_eq!(crm[&c210]["first_name"], "ChangedFirst210");
        assert_eq!(crm[&made[3]]["title"], "Bulk-updated");
        assert!(stored_job(&h, BulkDirection::Push).await.is_none());

        // Three changed records are pushed in one batch, not a job. (Manual syncs count what their
        // pull will read: the writes above, stamped at one instant the cursor includes, are at
        // least the threshold, so those reads are bulk `queryAll` jobs.)
        h.put_records("contact", contacts(200..203, "Small")).await;
        let run = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
        assert_eq!(count(&run, "success_count"), 3, "{run}");
        let jobs = bulk_jobs(&h);
        assert_eq!((jobs["insert"].len(), jobs["update"].len()), (1, 1), "{jobs:?}");
        assert!(jobs.contains_key("queryAll"), "{jobs:?}");
    }
}

#[tokio::test]
async fn a_run_stopped_mid_job_is_continued_by_the_next_without_a_second_job() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        // Jobs take a minute of the emulator's clock, which the test holds still.
        let knobs = crm_sim::knobs::Knobs { salesforce_bulk_processing_ms: 60_000, ..Default::default() };
        let Some(h) = harness(backend, Crm::Salesforce, knobs).await else { continue };
        for i in 0..60 {
            h.create_crm_contact(&format!("r{i}@bulk.example"), "Resumed", &format!("R{i}"));
        }
        let clock = &h.sim.sim().clock;
        clock.set(chrono::Utc::now());

        // The run waits on the job (its cursor kept), then the org's limit stops it: deferred.
        let path = h.integration_path("/pull");
        let (_, started) =
            SyncHarness::send(h.api(reqwest::Method::POST, &path).json(&json!({"entity": "contact"}))).await;
        let kept = crmhost_tests::eventually(Duration::from_secs(20), || async {
            stored_job(&h, BulkDirection::Pull).await.is_some()
        });
        assert!(kept.await, "the pending job's cursor is kept while the run waits");
        let waiting = stored_job(&h, BulkDirection::Pull).await.unwrap();
        assert!(waiting.cursor.starts_with("bulkq:750"), "{waiting:?}");
        h.sim.sim().set_knobs(crm_sim::knobs::Knobs { force_rate_limit: true, ..knobs_of(&h) }).unwrap();
        let first = wait_for_end(&h, started["run_id"].as_str().unwrap()).await;
        assert_ne!(first["status"], "completed", "{first}");
        assert_eq!(stored_job(&h, BulkDirection::Pull).await, Some(waiting), "the job outlives the run");

        // The next run, once the job is done, reads it: all 60, and still one query job.
        h.sim.sim().set_knobs(crm_sim::knobs::Knobs { force_rate_limit: false, ..knobs_of(&h) }).unwrap();
        clock.advance(chrono::Duration::seconds(61));
        let run = h.run_to_end("pull", json!({"entity": "contact"})).await;
        assert_eq!((run["status"].as_str(), count(&run, "success_count")), (Some("completed"), 60), "{run}");
        assert_eq!(bulk_jobs(&h).get("query").map(Vec::len), Some(1), "{:?}", bulk_jobs(&h));
        assert_eq!(h.all_records("contact").await.len(), 60);
        assert!(stored_job(&h, BulkDirection::Pull).await.is_none());

        // The same for a write: 70 new contacts wait on an insert job, the run stops, the next
        // one links them from that job's results.
        // (Push-only syncs: a pull would wait on its own job first.)
        let (status, body) = h.patch_settings(json!({"direction": "push"})).await;
        assert!(status.is_success(), "{body}");
        h.put_records("contact", contacts(0..70, "Resumed")).await;
        let (_, started) =
            SyncHarness::send(h.api(reqwest::Method::POST, &h.integration_path("/sync")).json(&json!({}))).await;
        let kept = crmhost_tests::eventually(Duration::from_secs(20), || async {
            stored_job(&h, BulkDirection::Push).await.is_some()
        });
        assert!(kept.await, "the pending write's cursor is kept");
        // Half the job's time on, Salesforce counts half the rows processed; the run shows it.
        clock.advance(chrono::Duration::seconds(30));
        let run_id = crmhost::domain::RunId::parse(started["run_id"].as_str().unwrap()).unwrap();
        let live = h.app.state.sync.live().subscribe(&run_id).expect("the run is live");
        let shown = crmhost_tests::eventually(Duration::from_secs(20), || {
            let phase = live.borrow().phase.clone();
            async move { phase == "pushing contact (bulk job: 35 records processed)" }
        });
        assert!(shown.await, "{}", live.borrow().phase);
        h.sim.sim().set_knobs(crm_sim::knobs::Knobs { force_rate_limit: true, ..knobs_of(&h) }).unwrap();
        let first = wait_for_end(&h, started["run_id"].as_str().unwrap()).await;
        assert_ne!(first["status"], "completed", "{first}");
        let job = stored_job(&h, BulkDirection::Push).await.expect("the write's job outlives the run");
        assert_eq!(job.params["record_ids"].as_array().map(Vec::len), Some(70), "{:?}", job.params);
        h.sim.sim().set_knobs(crm_sim::knobs::Knobs { force_rate_limit: false, ..knobs_of(&h) }).unwrap();
        clock.advance(chrono::Duration::seconds(31));
        let run = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
        assert_eq!((run["status"].as_str(), run["failure_count"].as_i64()), (Some("completed"), Some(0)), "{run}");
        assert_eq!(bulk_jobs(&h).get("insert").map(Vec::len), Some(1), "{:?}", bulk_jobs(&h));
        assert_eq!(h.crm_contacts().len(), 130, "60 pulled + 70 pushed once");
        assert!(stored_job(&h, BulkDirection::Push).await.is_none());
        // Linked: the next sync pushes none of them again.
        let quiet = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
        assert_eq!(bulk_jobs(&h).get("insert").map(Vec::len), Some(1), "{quiet}");
        assert_eq!(h.crm_contacts().len(), 130);
    }
}

fn knobs_of(h: &SyncHarness) -> crm_sim::knobs::Knobs {
    h.sim.sim().knobs()
}

/// Polls a run until it is no longer running.
async fn wait_for_end(h: &SyncHarness, run_id: &str) -> Value {
    let path = h.integration_path(&format!("/sync-runs/{run_id}?items_limit=1"));
    loop {
        let (_, run) = SyncHarness::send(h.api(reqwest::Method::GET, &path)).await;
        if run["status"] != "running" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_plugin_without_bulk_jobs_sends_large_pushes_in_batches() {
    let h = harness(Backend::Sqlite, Crm::Hubspot, Default::default()).await.unwrap();
    h.put_records("contact", contacts(0..(THRESHOLD as usize + 30), "Batched")).await;
    let run = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
    assert_eq!((count(&run, "success_count"), count(&run, "failure_count")), (80, 0), "{run}");
    assert_eq!(h.crm_contacts().len(), 80);
    assert!(!phases(&h, &run).await.iter().any(|p| p.contains("bulk")));
}
