//! Salesforce at 100,000 contacts: sObject Collections and SOQL pages (`bulk_threshold = 0`)
//! against Bulk API 2.0 jobs (the default threshold, 10,000), through the sync engine and the
//! API against the in-process emulator (no latency, limits lifted, jobs done at the next look).
//! For each: a full pull into an empty workspace, and a push of as many new workspace records;
//! wall time and the org's API requests (`DailyApiRequests` used; a Bulk job's calls count too).
//! Run with `cargo bench -p crmhost-tests --bench bulk` (`CRMHOST_BENCH_RECORDS=20000` for
//! fewer); it prints figures and `BENCH` lines.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use crm_sim::knobs::Knobs;
use crmhost_tests::{Backend, Crm, SyncHarness, contacts};
use serde_json::json;

fn records() -> usize {
    std::env::var("CRMHOST_BENCH_RECORDS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

fn unlimited() -> Knobs {
    Knobs { salesforce_daily_limit: 100_000_000, ..Knobs::default() }
}

fn api_usage(h: &SyncHarness) -> u64 {
    h.sim.sim().salesforce().api_usage
}

fn report(mode: &str, what: &str, records: usize, seconds: f64, requests: u64) {
    println!(
        "{mode:<12} {what:<6} {records:>7} records in {seconds:>7.2} s = {:>7.0} records/s, {requests:>6} API requests",
        records as f64 / seconds
    );
    println!(
        "BENCH name=salesforce_{what}_{mode} records={records} seconds={seconds:.3} records_per_s={:.0} api_requests={requests}",
        records as f64 / seconds
    );
}

async fn harness(threshold: Option<u64>) -> SyncHarness {
    let scheduler = crmhost::sync::SchedulerOptions { bulk_threshold: threshold, ..Default::default() };
    SyncHarness::start_with(Backend::Sqlite, Crm::Salesforce, unlimited(), scheduler).await.unwrap()
}

async fn scenario(mode: &str, threshold: Option<u64>) {
    let n = records();
    // Pull: the org holds n contacts; the workspace none.
    let h = harness(threshold).await;
    let now = h.sim.sim().clock.now();
    h.sim.sim().salesforce().seed("contact", n, now).unwrap();
    let before = api_usage(&h);
    let started = Instant::now();
    let run = h.run_to_end("pull", json!({"entity": "contact"})).await;
    assert_eq!(run["success_count"].as_u64(), Some(n as u64), "{run}");
    report(mode, "pull", n, started.elapsed().as_secs_f64(), api_usage(&h) - before);

    // Push: the workspace holds n new contacts; the org none of them.
    let h = harness(threshold).await;
    let (status, body) = h.patch_settings(json!({"direction": "push"})).await;
    assert!(status.is_success(), "{body}");
    for chunk in contacts(0..n, "Bulk").chunks(200) {
        h.put_records("contact", chunk.to_vec()).await;
    }
    let before = api_usage(&h);
    let started = Instant::now();
    let run = h.run_to_end("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(run["success_count"].as_u64(), Some(n as u64), "{run}");
    report(mode, "push", n, started.elapsed().as_secs_f64(), api_usage(&h) - before);
}

#[tokio::main]
async fn main() {
    scenario("collections", None).await;
    scenario("bulk", Some(10_000)).await;
}
