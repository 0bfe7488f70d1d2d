//! Automatic sync end to end: settings that schedule an integration, the scheduler running it on
//! time and picking up changes on both sides, pause and resume, backoff for failed records and
//! failed runs, `needs_reauth` stopping the schedule, daily limits deferring runs (the CRM's and
//! the operator's cap), pacing that keeps concurrent runs for one HubSpot account under its real
//! limit, webhooks from the HubSpot emulator landing in the workspace, refused signatures,
//! filters / create_missing / propagate_deletes, fault injection, and two host processes on one
//! PostgreSQL database sharing twenty integrations.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use crmhost::sync::RetryBackoff;
use crmhost::sync::SchedulerOptions;
use crmhost_tests::{AppOptions, Backend, Crm, SyncHarness, TestApp, contacts, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Scheduler timings short enough for tests; `webhook_poll` is the real-time pull interval for
/// plugins with webhooks (HubSpot).
fn fast(webhook_poll: Duration) -> SchedulerOptions {
    SchedulerOptions {
        tick: Duration::from_millis(100),
        lease: Duration::from_secs(3),
        run_retry_base: Duration::from_secs(1),
        run_retry_cap: Duration::from_secs(4),
        record_retry: RetryBackoff { base: Duration::from_secs(1), cap: Duration::from_secs(2), max_attempts: 3 },
        realtime_poll: Duration::from_secs(2),
        realtime_poll_with_webhooks: webhook_poll,
        // Every incremental pull sweeps for deletions (HubSpot's archived walk).
        deletion_sweep: Duration::ZERO,
        ..SchedulerOptions::default()
    }
}

async fn harness(backend: Backend, crm: Crm, knobs: crm_sim::knobs::Knobs) -> Option<SyncHarness> {
    SyncHarness::start_with(backend, crm, knobs, fast(Duration::from_secs(2))).await
}

/// A receiver registered (as an outbound webhook endpoint of `w1`) for `events`.
async fn notified(h: &SyncHarness, events: &[&str]) -> crmhost_tests::Receiver {
    let hook = crmhost_tests::Receiver::start().await;
    let body = json!({"url": hook.url("/events"), "events": events});
    let (status, created) = SyncHarness::send(h.api(reqwest::Method::POST, "/webhook-endpoints").json(&body)).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
    hook
}

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc)).unwrap_or_else(|| {
        panic!("not an instant: {v}");
    })
}

/// Upserts any number of contacts, 200 a call.
async fn put_contacts(h: &SyncHarness, records: Vec<Value>) {
    for chunk in records.chunks(200) {
        h.put_records("contact", chunk.to_vec()).await;
    }
}

async fn set(h: &SyncHarness, patch: Value) -> Value {
    let (status, body) = h.patch_settings(patch.clone()).await;
    assert_eq!(status, StatusCode::OK, "{patch} → {body}");
    body
}

/// One test per (adapter, backend); with `pipedrive_too:` also for the Pipedrive plugin (the body
/// skips where its harness cannot start).
macro_rules! each_crm_and_backend {
    (pipedrive_too: $name:ident, |$backend:ident, $crm:ident| $body:block) => {
        each_crm_and_backend!(@module $name, |$backend, $crm| $body, {
            #[tokio::test]
            async fn pipedrive_sqlite() {
                run(Backend::Sqlite, Crm::Pipedrive).await;
            }

            #[tokio::test]
            async fn pipedrive_postgres() {
                run(Backend::Postgres, Crm::Pipedrive).await;
            }
        });
    };
    ($name:ident, |$backend:ident, $crm:ident| $body:block) => {
        each_crm_and_backend!(@module $name, |$backend, $crm| $body, {});
    };
    (@module $name:ident, |$backend:ident, $crm:ident| $body:block, { $($more:item)* }) => {
        mod $name {
            use super::*;

            async fn run($backend: Backend, $crm: Crm) $body

            #[tokio::test]
            async fn salesforce_sqlite() {
                run(Backend::Sqlite, Crm::Salesforce).await;
            }

            #[tokio::test]
            async fn salesforce_postgres() {
                run(Backend::Postgres, Crm::Salesforce).await;
            }

            #[tokio::test]
            async fn hubspot_sqlite() {
                run(Backend::Sqlite, Crm::Hubspot).await;
            }

            #[tokio::test]
            async fn hubspot_postgres() {
                run(Backend::Postgres, Crm::Hubspot).await;
            }

            $($more)*
        }
    };
}

#[tokio::test]
async fn settings_are_validated_and_a_new_schedule_runs_at_once_then_on_its_interval() {
    let h = harness(Backend::Sqlite, Crm::Salesforce, Default::default()).await.unwrap();
    for (patch, says) in [
        (json!({"frequency": {"every_minutes": 0}}), "every_minutes"),
        (json!({"frequency": "weekly"}), "frequency must be"),
        (json!({"frequency": {"daily_at": "25:61"}}), "daily_at"),
        (json!({"frequency": {"hourly_at": 60}}), "hourly_at"),
        (json!({"frequency": {"hourly_at": 15, "time_zone": "Europe/Atlantis"}}), "IANA time zone"),
        (json!({"direction": "sideways"}), "direction"),
        (json!({"filters": {"contact": [{"field": "title", "op": "like", "value": "x"}]}}), "op one of"),
        (json!({"filters": {"contact": [{"field": "title", "op": "in", "value": []}]}}), "non-empty list"),
        (json!({"filters": {"planet": []}}), "no entity `planet`"),
        (json!({"daily_limit_percent": 0}), "daily_limit_percent"),
        (json!({"create_missing": "yes"}), "create_missing"),
        (json!({"propagate_deletes": 1}), "propagate_deletes"),
        (json!({"schedule": "often"}), "unknown setting `schedule`"),
    ] {
        let (status, body) = h.patch_settings(patch.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch} → {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{patch}: {message}");
    }
    // Nothing of the refused patches was kept, and nothing is scheduled.
    assert!(h.listed_integration().await["next_sync_at"].is_null());

    // Hourly at :15 in Paris: due at a quarter past, shown in UTC and on Paris's clock.
    let body = set(&h, json!({"frequency": {"hourly_at": 15, "time_zone": "Europe/Paris"}})).await;
    assert_eq!(body["settings"]["frequency"], json!({"hourly_at": 15, "time_zone": "Europe/Paris"}));
    let due = instant(&body["schedule"]["next_sync_at"]);
    assert_eq!((due.minute(), due.second()), (15, 0), "{body}");
    assert!(due > Utc::now() && due - Utc::now() <= chrono::Duration::hours(1), "{body}");
    assert_eq!(body["schedule"]["time_zone"], "Europe/Paris");
    let local = body["schedule"]["next_sync_local"].as_str().unwrap();
    let local = chrono::DateTime::parse_from_rfc3339(local).unwrap();
    assert_eq!(local.with_timezone(&Utc), due, "{body}");
    assert!([3600, 7200].contains(&local.offset().local_minus_utc()), "Paris is UTC+1 or +2: {body}");
    set(&h, json!({"frequency": "manual"})).await;

    h.put_records("contact", contacts(0..10, "")).await;
    let before = Utc::now();
    let body = set(
        &h,
        json!({"frequency": {"every_minutes": 1}, "direction": "push", "create_missing": true,
               "propagate_deletes": false, "daily_limit_percent": 80,
               "filters": {"contact": [{"field": "title", "op": "eq", "value": "Buyer"}]}}),
    )
    .await;
    assert_eq!(body["settings"]["frequency"], json!({"every_minutes": 1}));
    assert_eq!(body["settings"]["daily_limit_percent"], 80);
    let first_due = instant(&body["schedule"]["next_sync_at"]);
    assert!(first_due >= before - chrono::Duration::seconds(1) && first_due <= Utc::now(), "{body}");

    // The first scheduled run starts at once and pushes (the direction) what passes the filter.
    let runs = h.wait_for_runs("schedule", 1, Duration::from_secs(20)).await;
    assert_eq!(runs.len(), 1, "one scheduled run");
    let run = &runs[0];
    assert_eq!((run["status"].as_str(), run["direction"].as_str()), (Some("completed"), Some("push")), "{run}");
    assert_eq!(run["started_by"], "scheduler");
    let started = instant(&run["started_at"]);
    assert!(started - first_due < chrono::Duration::seconds(3), "lag {:?}", started - first_due);
    assert_eq!(h.crm_contacts().len(), 10);

    // The next one is due an interval after the first was due, as the integrations list shows.
    let listed = h.listed_integration().await;
    let next = instant(&listed["next_sync_at"]);
    assert_eq!((next - first_due).num_seconds(), 60, "{listed}");
    assert!(listed["status_reason"].is_null(), "{listed}");

    // Back to manual: unscheduled.
    let body = set(&h, json!({"frequency": "manual"})).await;
    assert!(body["schedule"]["next_sync_at"].is_null(), "{body}");
    let daily = set(&h, json!({"frequency": {"daily_at": "03:30"}})).await;
    let at = instant(&daily["schedule"]["next_sync_at"]);
    assert_eq!(at.format("%H:%M:%S").to_string(), "03:30:00");
    assert!(at > Utc::now() && at - Utc::now() <= chrono::Duration::days(1));
}

each_crm_and_backend!(pipedrive_too: a_schedule_runs_on_time_and_picks_up_changes_on_both_sides, |backend, crm| {
    let Some(h) = harness(backend, crm, Default::default()).await else { return };
    h.put_records("contact", contacts(0..50, "")).await;
    set(&h, json!({"frequency": "realtime"})).await;
    let first = h.wait_for_runs("schedule", 1, Duration::from_secs(30)).await;
    assert!(!first.is_empty(), "the schedule ran");
    assert!(eventually(Duration::from_secs(20), || async { h.crm_contacts().len() == 50 }).await);

    // A CRM edit and a workspace edit, each picked up by a later scheduled run on its own.
    let crm_id = h.crm_id_of("c3@example.com");
    h.edit_crm_contact(&crm_id, "phone", "+1 555 0103");
    h.put_records("contact", vec![json!({"id": "c4", "fields": {"phone": "+1 555 0104"}})]).await;
    let c4 = h.crm_id_of("c4@example.com");
    let picked_up = eventually(Duration::from_secs(30), || async {
        let c3 = h.record("contact", "c3").await;
        let crm = h.crm_contacts();
        c3["fields"]["phone"] == "+1 555 0103" && crm[&c4]["phone"] == "+1 555 0104"
    })
    .await;
    assert!(picked_up, "scheduled runs carried both edits");

    // On time: consecutive scheduled runs start one poll interval (2 s) apart, give or take a tick.
    let runs = h.wait_for_runs("schedule", 3, Duration::from_secs(30)).await;
    assert!(runs.len() >= 3, "{}", runs.len());
    let starts: Vec<DateTime<Utc>> = runs.iter().rev().map(|r| instant(&r["started_at"])).collect();
    for pair in starts.windows(2) {
        let gap = (pair[1] - pair[0]).num_milliseconds();
        assert!((1_800..=8_000).contains(&gap), "gap between scheduled runs: {gap} ms");
    }
    assert!(runs.iter().all(|r| r["status"] == "completed"), "{runs:?}");
    // Still scheduled, within one interval (plus a tick) of now.
    let next = instant(&h.listed_integration().await["next_sync_at"]);
    assert!(next - Utc::now() <= chrono::Duration::seconds(3), "next run at {next}");
});

#[tokio::test]
async fn pause_stops_the_schedule_and_refuses_runs_and_resume_restarts_it() {
    for (backend, crm) in [(Backend::Sqlite, Crm::Salesforce), (Backend::Postgres, Crm::Hubspot)] {
        let Some(h) = harness(backend, crm, Default::default()).await else { continue };
        h.put_records("contact", contacts(0..5, "")).await;
        set(&h, json!({"frequency": "realtime"})).await;
        assert!(!h.wait_for_runs("schedule", 1, Duration::from_secs(20)).await.is_empty());

        let (status, body) = SyncHarness::send(h.api(Method::POST, &h.integration_path("/pause"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["schedule"]["status"], "paused");
        let listed = h.listed_integration().await;
        assert_eq!(listed["status"], "paused");
        assert!(listed["next_sync_at"].is_null(), "{listed}");
        assert!(listed["status_reason"].as_str().unwrap().contains("paused by"), "{listed}");
        // Pausing twice is a conflict, and manual runs are refused with a clear error.
        let (status, _) = SyncHarness::send(h.api(Method::POST, &h.integration_path("/pause"))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, refused) =
            SyncHarness::send(h.api(Method::POST, &h.integration_path("/sync")).json(&json!({}))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"]["code"], "integration_paused", "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("resume"), "{refused}");

        // Nothing runs while paused, even with changes waiting: the scheduler looks many times
        // (a realtime poll would have been due after two seconds) and starts nothing.
        let before = h.history("").await.len();
        h.put_records("contact", contacts(5..8, "")).await;
        h.scheduler_passes(25).await;
        assert_eq!(h.history("").await.len(), before, "a paused integration ran something");
        assert_eq!(h.crm_contacts().len(), 5);

        // The tokens were kept: resuming runs at once and carries the waiting changes.
        let (status, body) = SyncHarness::send(h.api(Method::POST, &h.integration_path("/resume"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["schedule"]["status"], "connected");
        assert!(eventually(Duration::from_secs(20), || async { h.crm_contacts().len() == 8 }).await);
        let (status, _) = SyncHarness::send(h.api(Method::POST, &h.integration_path("/resume"))).await;
        assert_eq!(status, StatusCode::CONFLICT, "resuming a running integration");
    }
}

/// The stored retry count of a record's link.
async fn attempts(h: &SyncHarness, id: &str) -> i64 {
    let record = h.record("contact", id).await;
    record["sync"][0]["attempts"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn failed_records_are_retried_with_backoff_until_the_cap_then_again_once_fixed() {
    for crm in [Crm::Salesforce, Crm::Hubspot] {
        let h = harness(Backend::Sqlite, crm, Default::default()).await.unwrap();
        let mut records = contacts(0..3, "");
        records.push(json!({"id": "bad", "fields": {"email": "not-an-email", "last_name": "Bad"}}));
        h.put_records("contact", records).await;
        set(&h, json!({"frequency": "realtime"})).await;

        // Retried in later runs (1 s, then 2 s apart) until three failures, then left alone.
        assert!(eventually(Duration::from_secs(40), || async { attempts(&h, "bad").await == 3 }).await, "{crm:?}");
        // The run that made the third attempt may still be finishing.
        let runs_at_cap = h.wait_for_runs("schedule", 3, Duration::from_secs(30)).await.len();
        assert!(runs_at_cap >= 3, "{runs_at_cap}");
        let record = h.record("contact", "bad").await;
        assert_eq!(record["sync"][0]["status"], "failed", "{record}");
        assert!(h.wait_for_runs("schedule", runs_at_cap + 3, Duration::from_secs(30)).await.len() >= runs_at_cap + 3);
        assert_eq!(attempts(&h, "bad").await, 3, "no automatic retry after the cap");
        let latest = &h.finished_runs("schedule").await[0];
        assert_eq!(latest["failure_count"], 0, "{latest}");

        // Fixing the record resets its count: the next run creates it.
        h.put_records("contact", vec![json!({"id": "bad", "fields": {"email": "fixed@example.com"}})]).await;
        let synced = eventually(Duration::from_secs(20), || async {
            h.record("contact", "bad").await["sync"][0]["status"] == "synced"
        })
        .await;
        assert!(synced, "{crm:?}: the fixed record synced");
        assert_eq!(h.crm_contacts().len(), 4);
        assert_eq!(attempts(&h, "bad").await, 0);
    }
}

#[tokio::test]
async fn a_run_that_fails_as_a_whole_backs_off_and_the_schedule_recovers() {
    let h = harness(Backend::Sqlite, Crm::Salesforce, Default::default()).await.unwrap();
    let hook = notified(&h, &["integration.error", "sync.failed"]).await;
    h.put_records("contact", contacts(0..5, "")).await;
    h.sim.sim().update_knobs(|k| k.failure_rate = 1.0).unwrap();
    set(&h, json!({"frequency": "realtime"})).await;
    let failed = h.wait_for_runs("schedule", 2, Duration::from_secs(90)).await;
    assert!(failed.len() >= 2, "{failed:?}");
    assert!(failed.iter().all(|r| r["status"] == "failed"), "{failed:?}");
    let listed = h.listed_integration().await;
    let reason = listed["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("failed") && reason.contains("retrying at"), "{listed}");
    // Three whole-run failures in a row: the integration shows `error` (and keeps retrying).
    let errored = eventually(Duration::from_secs(60), || async { h.listed_integration().await["status"] == "error" });
    assert!(errored.await, "{}", h.listed_integration().await);
    assert!(h.finished_runs("schedule").await.len() >= crmhost::sync::scheduler::ERROR_AFTER_FAILURES as usize);
    // The platform was told: each failed run, and once that the integration is in `error`.
    let told = hook
        .wait_for(Duration::from_secs(10), |r| r.iter().any(|x| x.header("crmhost-event-type") == "integration.error"));
    assert!(told.await, "{:?}", hook.received().iter().map(|r| r.json()).collect::<Vec<_>>());
    let error = hook.of_type("integration.error")[0].json();
    assert_eq!(
        (error["data"]["integration"].as_str(), error["data"]["status"].as_str()),
        (Some("salesforce"), Some("error"))
    );
    assert!(error["data"]["reason"].as_str().unwrap().contains("failed"), "{error}");
    let failed_runs = hook.of_type("sync.failed");
    assert!(failed_runs.len() >= 2, "{}", failed_runs.len());
    assert!(
        failed_runs.iter().all(|r| r.json()["data"]["trigger"] == "schedule" && r.json()["data"]["status"] == "failed")
    );
    // Backoff: the second failed run started at least the base backoff after the first ended.
    let first_end = instant(&failed[failed.len() - 1]["completed_at"]);
    let second_start = instant(&failed[failed.len() - 2]["started_at"]);
    assert!(second_start - first_end >= chrono::Duration::milliseconds(900), "{failed:?}");

    h.sim.sim().update_knobs(|k| k.failure_rate = 0.0).unwrap();
    assert!(eventually(Duration::from_secs(60), || async { h.crm_contacts().len() == 5 }).await);
    let recovered =
        eventually(Duration::from_secs(20), || async { h.listed_integration().await["status_reason"].is_null() }).await;
    assert!(recovered, "{}", h.listed_integration().await);
    assert_eq!(h.listed_integration().await["status"], "connected", "a success clears `error`");
}

#[tokio::test]
async fn needs_reauth_stops_the_schedule_and_says_why() {
    let h = harness(Backend::Sqlite, Crm::Hubspot, Default::default()).await.unwrap();
    let hook = notified(&h, &["integration.needs_reauth"]).await;
    h.put_records("contact", contacts(0..3, "")).await;
    set(&h, json!({"frequency": "realtime"})).await;
    assert!(!h.wait_for_runs("schedule", 1, Duration::from_secs(20)).await.is_empty());
    {
        // The user uninstalled the app in HubSpot: every token of the grant is revoked.
        let mut state = h.sim.sim().hubspot();
        let chains: BTreeSet<u64> = state.oauth.refresh.values().map(|r| r.chain).collect();
        for chain in chains {
            state.oauth.revoke_chain(chain);
        }
    }
    let stopped =
        eventually(Duration::from_secs(30), || async { h.listed_integration().await["status"] == "needs_reauth" })
            .await;
    assert!(stopped, "{}", h.listed_integration().await);
    let listed = h.listed_integration().await;
    assert!(listed["status_reason"].as_str().unwrap_or_default().contains("reconnect"), "{listed}");
    assert!(hook.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await, "the platform was told");
    let told = hook.received()[0].json();
    assert_eq!(
        (told["type"].as_str(), told["data"]["integration"].as_str()),
        (Some("integration.needs_reauth"), Some("hubspot"))
    );
    let runs = h.history("").await.len();
    h.scheduler_passes(25).await;
    assert_eq!(h.history("").await.len(), runs, "the schedule stopped");
}

#[tokio::test]
async fn a_daily_limit_defers_the_run_instead_of_failing_it() {
    // HubSpot's own daily limit (private-app style), hit mid-run.
    let knobs = crm_sim::knobs::Knobs { hubspot_daily_limit: Some(6), ..Default::default() };
    let h = harness(Backend::Sqlite, Crm::Hubspot, knobs).await.unwrap();
    put_contacts(&h, contacts(0..600, "")).await;
    set(&h, json!({"frequency": {"every_minutes": 5}})).await;
    let runs = h.wait_for_runs("schedule", 1, Duration::from_secs(30)).await;
    let run = &runs[0];
    assert_eq!(run["status"], "deferred", "{run}");
    assert!(run["error"].as_str().unwrap_or_default().contains("daily"), "{run}");
    // The run's end is written before its schedule update (when its lease is given back).
    let rescheduled = eventually(Duration::from_secs(10), || async {
        h.listed_integration().await["status_reason"].as_str().is_some_and(|r| r.starts_with("deferred until"))
    })
    .await;
    let listed = h.listed_integration().await;
    assert!(rescheduled, "{listed}");
    let next = instant(&listed["next_sync_at"]);
    assert!(next - Utc::now() > chrono::Duration::minutes(50), "deferred, not retried at once: {listed}");
    assert!(listed["status_reason"].as_str().unwrap().starts_with("deferred until"), "{listed}");
    let calls = h.sim.sim().call_count("hubspot 429");
    h.scheduler_passes(10).await;
    assert_eq!(h.sim.sim().call_count("hubspot 429"), calls, "it does not spin on the limit");

    // The operator's cap: Salesforce reports usage in Sforce-Limit-Info; at 1 % of 400 (4
    // requests, some used by the connect) the run stops long before the CRM refuses anything.
    let knobs = crm_sim::knobs::Knobs { salesforce_daily_limit: 400, ..Default::default() };
    let h = harness(Backend::Sqlite, Crm::Salesforce, knobs).await.unwrap();
    put_contacts(&h, contacts(0..600, "")).await;
    set(&h, json!({"daily_limit_percent": 1})).await;
    let run = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(run["status"], "deferred", "{run}");
    assert!(run["error"].as_str().unwrap_or_default().contains("cap 1%"), "{run}");
    let used = h.sim.sim().salesforce().api_usage;
    assert!(used <= 6, "stopped at the cap of 4 requests: {used}");
    assert!(h.crm_contacts().len() < 600);

    // Salesforce's own allocation running out (REQUEST_LIMIT_EXCEEDED) defers too.
    let knobs = crm_sim::knobs::Knobs { salesforce_daily_limit: 6, ..Default::default() };
    let h = harness(Backend::Sqlite, Crm::Salesforce, knobs).await.unwrap();
    put_contacts(&h, contacts(0..600, "")).await;
    let run = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(run["status"], "deferred", "{run}");
    assert!(h.sim.sim().salesforce().api_usage <= 6);
}

#[tokio::test]
async fn three_concurrent_runs_for_one_hubspot_account_stay_under_its_real_limit() {
    // HubSpot's real limit (100 requests per 10 s per account); three workspaces connected to the
    // same hub, pulling 3,500 contacts each at once: ~105 list requests, over the limit unpaced.
    let mut options = crm_sim::SimOptions::both_on_free_ports();
    options.salesforce = None;
    let sim = std::sync::Arc::new(crm_sim::start(options).await.unwrap());
    sim.sim().seed("contact", 3_500).unwrap();
    let app = TestApp::spawn(AppOptions { sim: Some(sim.clone()), ..AppOptions::default() }).await.unwrap();
    let workspaces = ["w1", "w2", "w3"];
    for w in workspaces {
        assert_eq!(app.connect(w, "hubspot").await.status(), StatusCode::OK);
    }
    let before = sim.sim().calls();
    let started = Instant::now();
    let (a, b, c) = tokio::join!(pull_to_end(&app, "w1"), pull_to_end(&app, "w2"), pull_to_end(&app, "w3"));
    let runs = [a, b, c];
    let took = started.elapsed();
    for run in &runs {
        assert_eq!((run["status"].as_str(), run["success_count"].as_i64()), (Some("completed"), Some(3_500)), "{run}");
    }
    let after = sim.sim().calls();
    let api_requests = |m: &BTreeMap<String, u64>| -> u64 {
        m.iter().filter(|(k, _)| k.starts_with("hubspot ") && !k.ends_with(" 429")).map(|(_, v)| v).sum()
    };
    let requests = api_requests(&after) - api_requests(&before);
    assert!(requests > 100, "the test must exceed one window's allowance: {requests}");
    let refused = after.get("hubspot 429").copied().unwrap_or(0);
    assert_eq!(refused, 0, "{requests} requests in {took:?}, {refused} refused");
    eprintln!("{requests} requests for three concurrent pulls of one account in {took:?}, none refused");
}

/// Pulls every contact into workspace `w` and polls the run to its end.
async fn pull_to_end(app: &TestApp, w: &str) -> Value {
    let path = format!("/api/v1/workspaces/{w}/integrations/hubspot/pull");
    let response = app
        .as_role(Method::POST, &path, w, crmhost::auth::Role::Admin)
        .json(&json!({"entity": "contact"}))
        .send()
        .await
        .unwrap();
    let started: Value = response.json().await.unwrap();
    let run_id = started["run_id"].as_str().unwrap();
    let run = format!("/api/v1/workspaces/{w}/integrations/hubspot/sync-runs/{run_id}?items_limit=1");
    loop {
        let response = app.as_role(Method::GET, &run, w, crmhost::auth::Role::Admin).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        if body["status"] != "running" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A HubSpot harness whose emulator delivers webhooks to the app; real-time pulls every 10 min,
/// so a change arriving within seconds came by webhook.
async fn webhook_harness(backend: Backend) -> Option<SyncHarness> {
    let h = SyncHarness::start_with(backend, Crm::Hubspot, Default::default(), fast(Duration::from_secs(600))).await?;
    h.deliver_hubspot_webhooks();
    Some(h)
}

/// The change comes by webhook: within seconds, where the background pull is 10 minutes away.
/// (How many milliseconds it takes is a benchmark figure: `cargo bench --bench realtime`.)
#[tokio::test]
async fn a_hubspot_webhook_brings_the_change_into_the_workspace_within_seconds() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = webhook_harness(backend).await else { continue };
        h.put_records("contact", contacts(0..20, "")).await;
        set(&h, json!({"frequency": "realtime"})).await;
        assert!(eventually(Duration::from_secs(30), || async { h.crm_contacts().len() == 20 }).await);
        assert!(!h.wait_for_runs("schedule", 1, Duration::from_secs(30)).await.is_empty());
        // The run's own writes come back as webhooks too; let those settle.
        h.webhooks_settled().await;
        h.wait_until_idle().await;

        let crm_id = h.crm_id_of("c5@example.com");
        let edited = Instant::now();
        h.edit_through_hubspot_api(&crm_id, "jobtitle", "Chief Webhook Officer").await;
        let arrived = eventually(Duration::from_secs(10), || async {
            h.record("contact", "c5").await["fields"]["title"] == "Chief Webhook Officer"
        })
        .await;
        let took = edited.elapsed();
        assert!(arrived, "{backend:?}: the change never arrived");
        eprintln!("HubSpot edit → workspace record ({backend:?}): {} ms", took.as_millis());
        // The record is written before its run is marked finished: wait for the run.
        h.wait_until_idle().await;
        let runs = h.finished_runs("webhook").await;
        assert!(!runs.is_empty() && runs.iter().all(|r| r["direction"] == "pull"), "{runs:?}");
        assert!(h.finished_runs("schedule").await.len() == 1, "no scheduled pull brought it");
        let attempts = h.sim.sim().hubspot().webhooks.attempts.clone();
        assert!(attempts.iter().all(|a| a.status == Some(200)), "{attempts:?}");
    }
}

/// A webhook harness with three contacts synced in real time (deletes propagated), every
/// webhook of that first sync settled.
async fn settled_with_three_contacts(backend: Backend) -> Option<SyncHarness> {
    let h = webhook_harness(backend).await?;
    h.put_records("contact", contacts(0..3, "")).await;
    set(&h, json!({"frequency": "realtime", "propagate_deletes": true})).await;
    assert!(eventually(Duration::from_secs(30), || async { h.crm_contacts().len() == 3 }).await);
    assert!(!h.wait_for_runs("schedule", 1, Duration::from_secs(30)).await.is_empty());
    h.webhooks_settled().await;
    h.wait_until_idle().await;
    Some(h)
}

#[tokio::test]
async fn a_hubspot_deletion_webhook_deletes_the_workspace_record_within_seconds() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = settled_with_three_contacts(backend).await else { continue };

        // Deleted through HubSpot's API, which sends `contact.deletion`.
        let crm_id = h.crm_id_of("c1@example.com");
        let token = h.hubspot_token();
        let url = format!("{}/crm/v3/objects/contacts/{crm_id}", h.sim.hubspot_url().unwrap());
        let deleted = reqwest::Client::new().delete(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        let gone =
            eventually(Duration::from_secs(10), || async { h.record("contact", "c1").await["deleted_at"].is_string() })
                .await;
        assert!(gone, "{backend:?}: the deletion never reached the workspace");
        // The record is written before its run is marked finished: wait for the run.
        h.wait_until_idle().await;
        // Webhook runs of the contacts' creation may end after the deletion's: look at them all.
        let mut deleted_by_webhook = false;
        for run in h.finished_runs("webhook").await {
            let items = h.run_detail(run["run_id"].as_str().unwrap()).await;
            deleted_by_webhook |=
                items["items"].as_array().unwrap().iter().any(|i| i["record_id"] == "c1" && i["outcome"] == "deleted");
        }
        assert!(deleted_by_webhook, "{backend:?}: a webhook run deleted it");
        assert_eq!(h.record("contact", "c0").await["deleted_at"], Value::Null, "the others stay");
    }
}

/// A delivery as HubSpot signs it.
fn signed_delivery(h: &SyncHarness, body: &str, timestamp_ms: i64) -> reqwest::RequestBuilder {
    let url = format!("{}/api/v1/webhooks/hubspot", h.app.base);
    let secret = crm_sim::OAuthClient::default_client().secret;
    let timestamp = timestamp_ms.to_string();
    let signature = crm_sim::hubspot::webhooks::signature_v3(&secret, "POST", &url, body, &timestamp);
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-hubspot-signature-v3", signature)
        .header("x-hubspot-request-timestamp", timestamp)
        .body(body.to_owned())
}

#[tokio::test]
async fn forged_stale_and_replayed_webhooks_run_nothing() {
    let h = webhook_harness(Backend::Sqlite).await.unwrap();
    h.sim.sim().set_webhook_target(None);
    h.put_records("contact", contacts(0..3, "")).await;
    set(&h, json!({"frequency": "realtime"})).await;
    assert!(eventually(Duration::from_secs(30), || async { h.crm_contacts().len() == 3 }).await);
    let crm_id = h.crm_id_of("c1@example.com");
    let body = json!([{"eventId": 9001, "subscriptionId": 1, "portalId": crm_sim::hubspot::HUB_ID, "appId": 1,
        "occurredAt": Utc::now().timestamp_millis(), "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0, "objectId": crm_id.parse::<u64>().unwrap(), "propertyName": "jobtitle",
        "propertyValue": "x", "changeSource": "CRM"}])
    .to_string();
    let runs_before = h.history("").await.len();

    // A forged signature, a stale one, none at all: 401, nothing queued.
    let forged = reqwest::Client::new()
        .post(format!("{}/api/v1/webhooks/hubspot", h.app.base))
        .header("x-hubspot-signature-v3", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .header("x-hubspot-request-timestamp", Utc::now().timestamp_millis().to_string())
        .body(body.clone());
    let stale = signed_delivery(&h, &body, Utc::now().timestamp_millis() - 10 * 60 * 1000);
    let unsigned = reqwest::Client::new().post(format!("{}/api/v1/webhooks/hubspot", h.app.base)).body(body.clone());
    let tampered = signed_delivery(&h, &body, Utc::now().timestamp_millis()).body(body.replace("9001", "9002"));
    for (what, request) in [("forged", forged), ("stale", stale), ("unsigned", unsigned), ("tampered", tampered)] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.contains(&crm_sim::OAuthClient::default_client().secret))
        );
    }
    let (status, _) = SyncHarness::send(
        reqwest::Client::new().post(format!("{}/api/v1/webhooks/no-such-plugin", h.app.base)).body("[]"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.webhooks_settled().await;
    assert_eq!(h.history("").await.len(), runs_before, "a refused webhook ran something");

    // A good one queues its record once; its redelivery is recognised and dropped.
    let (status, report) = SyncHarness::send(signed_delivery(&h, &body, Utc::now().timestamp_millis())).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!((report["events"].as_u64(), report["queued"].as_u64()), (Some(1), Some(1)), "{report}");
    let (_, again) = SyncHarness::send(signed_delivery(&h, &body, Utc::now().timestamp_millis())).await;
    assert_eq!((again["duplicates"].as_u64(), again["queued"].as_u64()), (Some(1), Some(0)), "{again}");
    let runs = h.wait_for_runs("webhook", 1, Duration::from_secs(10)).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    h.webhooks_settled().await;
    assert_eq!(
        h.history("").await.iter().filter(|r| r["trigger"] == "webhook").count(),
        1,
        "the redelivery ran nothing"
    );
}

each_crm_and_backend!(filters_create_missing_and_propagated_deletes_shape_what_syncs, |backend, crm| {
    let Some(h) = harness(backend, crm, Default::default()).await else { return };
    let mut records = contacts(0..6, "");
    for r in records.iter_mut().skip(4) {
        r["fields"]["title"] = json!("Intern");
    }
    h.put_records("contact", records).await;
    set(
        &h,
        json!({"filters": {"contact": [{"field": "title", "op": "neq", "value": "intern"}]},
                   "propagate_deletes": true}),
    )
    .await;
    let run = h.run("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(run["status"], "completed", "{run}");
    let emails = |h: &SyncHarness| -> BTreeSet<String> {
        h.crm_contacts().values().filter_map(|f| f.get("email").and_then(Value::as_str).map(str::to_owned)).collect()
    };
    assert_eq!(emails(&h), (0..4).map(|i| format!("c{i}@example.com")).collect(), "interns filtered out");

    // create_missing off: a new workspace record is not created in the CRM; linked ones still update.
    set(&h, json!({"create_missing": false})).await;
    h.put_records(
        "contact",
        vec![
            json!({"id": "new", "fields": {"email": "new@example.com", "title": "Buyer"}}),
            json!({"id": "c0", "fields": {"first_name": "Changed"}}),
        ],
    )
    .await;
    h.run("sync", json!({"entities": ["contact"]})).await;
    assert!(!emails(&h).contains("new@example.com"));
    let c0 = h.crm_id_of("c0@example.com");
    assert_eq!(h.crm_contacts()[&c0]["first_name"], "Changed");

    // A workspace delete propagates to the CRM (linked records only).
    let (status, _) = SyncHarness::send(h.api(Method::DELETE, "/records/contact/c1")).await;
    assert!(status.is_success(), "{status}");
    let run = h.run("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert!(!emails(&h).contains("c1@example.com"), "deleted in the CRM too");
    let items = h.run_detail(run["run_id"].as_str().unwrap()).await;
    assert!(items["items"].as_array().unwrap().iter().any(|i| i["record_id"] == "c1" && i["outcome"] == "deleted"));

    // A CRM delete reaches the workspace through the incremental pull, webhooks or not
    // (Salesforce: `queryAll`; HubSpot: the archived list after the search).
    {
        let c2 = h.crm_id_of("c2@example.com");
        h.delete_crm_contact(&c2);
        let run = h.run("sync", json!({"entities": ["contact"]})).await;
        assert_eq!(run["status"], "completed", "{run}");
        let items = h.run_detail(run["run_id"].as_str().unwrap()).await;
        let deleted =
            items["items"].as_array().unwrap().iter().any(|i| i["record_id"] == "c2" && i["outcome"] == "deleted");
        assert!(deleted, "{items}");
        let record = h.record("contact", "c2").await;
        assert!(record["deleted_at"].is_string(), "deleted in the workspace: {record}");
    }
});

each_crm_and_backend!(under_injected_faults_every_record_syncs_exactly_once, |backend, crm| {
    let Some(h) = harness(backend, crm, Default::default()).await else { return };
    // Faults from here on (the connect itself ran clean).
    h.sim
        .sim()
        .update_knobs(|k| {
            k.failure_rate = 0.1;
            k.latency_ms = 5;
        })
        .unwrap();
    put_contacts(&h, contacts(0..300, "")).await;
    set(&h, json!({"frequency": "realtime"})).await;
    let all_in_crm = eventually(Duration::from_secs(120), || async { h.crm_contacts().len() >= 300 }).await;
    assert!(all_in_crm, "{} CRM contacts", h.crm_contacts().len());
    let all_synced = eventually(Duration::from_secs(60), || async {
        for i in 0..300 {
            if h.record("contact", &format!("c{i}")).await["sync"][0]["status"] != "synced" {
                return false;
            }
        }
        true
    })
    .await;
    let crm = h.crm_contacts();
    let emails: BTreeSet<&str> = crm.values().filter_map(|f| f.get("email").and_then(Value::as_str)).collect();
    assert!(all_synced, "every workspace record linked and synced");
    assert_eq!((crm.len(), emails.len()), (300, 300), "nothing duplicated");
    let failures = h.sim.sim().calls().iter().filter(|(k, _)| k.ends_with(" 5xx")).map(|(_, v)| v).sum::<u64>();
    assert!(failures > 0, "faults were injected");
    // The run that synced the last record may still be on its other entities.
    let runs = h.wait_for_runs("schedule", 1, Duration::from_secs(60)).await;
    assert!(!runs.is_empty(), "a scheduled run did the work");
    eprintln!(
        "{crm_count} contacts synced through {failures} injected 5xx in {} scheduled runs",
        runs.len(),
        crm_count = crm.len()
    );
});

#[tokio::test]
async fn two_hosts_on_one_postgres_share_twenty_integrations_running_each_once() {
    let mut options = crm_sim::SimOptions::both_on_free_ports();
    options.hubspot = None;
    let sim = std::sync::Arc::new(crm_sim::start(options).await.unwrap());
    let scheduler = SchedulerOptions { max_concurrent_runs: 3, ..fast(Duration::from_secs(600)) };
    let Some(a) = TestApp::spawn(AppOptions {
        backend: Backend::Postgres,
        sim: Some(sim.clone()),
        scheduler: scheduler.clone(),
        master_key: Some(MASTER_KEY.to_owned()),
        ..AppOptions::default()
    })
    .await
    else {
        return;
    };
    let b = TestApp::spawn(AppOptions {
        backend: Backend::Postgres,
        sim: Some(sim.clone()),
        database_url: Some(a.database_url.clone()),
        scheduler,
        master_key: Some(MASTER_KEY.to_owned()),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let workspaces: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    for w in &workspaces {
        assert_eq!(a.connect(w, "salesforce").await.status(), StatusCode::OK);
        let records: Vec<Value> = (0..5)
            .map(|i| json!({"id": format!("r{i}"), "fields": {"email": format!("{w}-{i}@example.com"), "last_name": "L"}}))
            .collect();
        let put = a
            .as_role(Method::PUT, &format!("/api/v1/workspaces/{w}/records/contact"), w, crmhost::auth::Role::Admin)
            .json(&json!({"records": records}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::OK);
    }
    // Every integration becomes due at once: the two hosts claim them between them.
    for w in &workspaces {
        let patch = b
            .as_role(
                Method::PATCH,
                &format!("/api/v1/workspaces/{w}/integrations/salesforce/settings"),
                w,
                crmhost::auth::Role::Admin,
            )
            .json(&json!({"frequency": {"every_minutes": 60}}))
            .send()
            .await
            .unwrap();
        assert_eq!(patch.status(), StatusCode::OK);
    }
    let url = a.database_url.clone();
    let done = eventually(Duration::from_secs(90), || async {
        let rows = crmhost_tests::raw_rows(
            &url,
            "select count(*) from sync_history where trigger = 'schedule' and status = 'completed'",
        )
        .await;
        String::from_utf8_lossy(&rows[0][0]) == "20"
    })
    .await;
    assert!(done, "all twenty ran");
    // Both hosts look again several times: none claims an integration a second time.
    a.scheduler_passes(5).await;
    b.scheduler_passes(5).await;
    let rows = crmhost_tests::raw_rows(
        &url,
        "select workspace_id, count(*), min(owner_id), max(owner_id) from sync_history where trigger = 'schedule' group by workspace_id",
    )
    .await;
    assert_eq!(rows.len(), 20, "every integration ran");
    let mut owners = BTreeSet::new();
    for row in &rows {
        assert_eq!(String::from_utf8_lossy(&row[1]), "1", "{} ran more than once", String::from_utf8_lossy(&row[0]));
        owners.insert(String::from_utf8_lossy(&row[2]).into_owned());
    }
    assert_eq!(owners.len(), 2, "both hosts took a share: {owners:?}");
    assert_eq!(sim.sim().salesforce().objects.iter().find(|o| o.schema.name == "Contact").unwrap().records.len(), 100);
}

/// One master key for hosts that share a database (each must read the other's sealed tokens).
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[tokio::test]
async fn a_hubspot_merge_webhook_retires_the_duplicate_within_seconds() {
    let h = settled_with_three_contacts(Backend::Sqlite).await.unwrap();

    // c1 merged into c0 through HubSpot's API, which sends `contact.merge` for the survivor.
    let (survivor, merged) = (h.crm_id_of("c0@example.com"), h.crm_id_of("c1@example.com"));
    let token = h.hubspot_token();
    let url = format!("{}/crm/v3/objects/contacts/merge", h.sim.hubspot_url().unwrap());
    let body = json!({"primaryObjectId": survivor, "objectIdToMerge": merged});
    let answer = reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let retired =
        eventually(Duration::from_secs(10), || async { h.record("contact", "c1").await["deleted_at"].is_string() })
            .await;
    assert!(retired, "the merged-away duplicate never left the workspace");
    assert_eq!(h.record("contact", "c0").await["deleted_at"], Value::Null, "the survivor's record stays");
    // The record is written before its run is marked finished: wait for the run.
    h.wait_until_idle().await;
    let runs = h.finished_runs("webhook").await;
    assert!(runs.iter().any(|r| r["direction"] == "pull"), "{runs:?}");
}
