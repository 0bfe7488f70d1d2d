//! Real-time latency, per backend, against the in-process emulators (no latency): how long a
//! change takes to cross when nothing is scheduled to carry it.
//! - HubSpot → workspace: a contact edited through HubSpot's API; its webhook (the emulator
//!   delivers within 100 ms, as a batch) is verified, coalesced (200 ms) and pulled by id.
//! - workspace → Salesforce: a record written through the API; the real-time push (coalesced
//!   200 ms) sends it.
//!
//! Each edit waits for the one before to arrive; prints p50/p99/max and a `BENCH` line each.
//! Run with `cargo bench -p crmhost-tests --bench realtime`; `CRMHOST_BENCH_EDITS` sets how many
//! edits (default 50).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crmhost::sync::SchedulerOptions;
use crmhost_tests::{Backend, Crm, SyncHarness, contacts, eventually};
use serde_json::{Value, json};

const CONTACTS: usize = 20;

/// Background pulls far away (10 min) so every change crosses by the real-time path.
fn scheduler() -> SchedulerOptions {
    SchedulerOptions {
        tick: Duration::from_millis(100),
        realtime_poll: Duration::from_secs(600),
        realtime_poll_with_webhooks: Duration::from_secs(600),
        ..SchedulerOptions::default()
    }
}

fn edits() -> usize {
    std::env::var("CRMHOST_BENCH_EDITS").ok().and_then(|v| v.parse().ok()).unwrap_or(50)
}

/// How long until `arrived` holds, polled every 2 ms (a missed change panics after 30 s).
async fn time_until(started: Instant, arrived: impl Fn() -> bool) -> Duration {
    while !arrived() {
        assert!(started.elapsed() < Duration::from_secs(30), "the change never arrived");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

fn report(backend: Backend, name: &str, what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| crmhost_tests::percentile(&samples, p).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    let (p50, p99, max) = (at(0.5), at(0.99), at(1.0));
    println!("{:<8} {what:<34} p50 {p50:>6.0} ms  p99 {p99:>6.0} ms  max {max:>6.0} ms", format!("{backend:?}"));
    let backend = format!("{backend:?}").to_lowercase();
    println!(
        "BENCH name={name} backend={backend} edits={} p50_ms={p50:.0} p99_ms={p99:.0} max_ms={max:.0}",
        samples.len()
    );
}

/// A workspace with `CONTACTS` contacts synced in real time, its first run and the webhooks of
/// that run's own writes settled.
async fn in_real_time(backend: Backend, crm: Crm) -> Option<SyncHarness> {
    let h = SyncHarness::start_with(backend, crm, Default::default(), scheduler()).await?;
    if crm == Crm::Hubspot {
        h.deliver_hubspot_webhooks();
    }
    h.put_records("contact", contacts(0..CONTACTS, "")).await;
    let (status, body) = h.patch_settings(json!({"frequency": "realtime"})).await;
    assert!(status.is_success(), "{body}");
    assert!(eventually(Duration::from_secs(30), || async { h.crm_contacts().len() == CONTACTS }).await);
    h.wait_for_runs("schedule", 1, Duration::from_secs(30)).await;
    h.webhooks_settled().await;
    h.wait_until_idle().await;
    Some(h)
}

/// HubSpot edits, each made through HubSpot's API (which sends the webhook).
async fn hubspot_webhook_latency(backend: Backend) {
    let Some(h) = in_real_time(backend, Crm::Hubspot).await else { return };
    let mut samples = Vec::new();
    for i in 0..edits() {
        let record = format!("c{}", i % CONTACTS);
        let crm_id = h.crm_id_of(&format!("{record}@example.com"));
        let title = format!("Title {i}");
        let started = Instant::now();
        h.edit_through_hubspot_api(&crm_id, "jobtitle", &title).await;
        loop {
            if h.record("contact", &record).await["fields"]["title"] == title.as_str() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the change never arrived");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(started.elapsed());
    }
    report(backend, "realtime_hubspot_webhook", "HubSpot edit → workspace (webhook)", samples);
}

/// Workspace writes, each pushed to Salesforce by the real-time push.
async fn salesforce_push_latency(backend: Backend) {
    let Some(h) = in_real_time(backend, Crm::Salesforce).await else { return };
    let mut samples = Vec::new();
    for i in 0..edits() {
        let n = i % CONTACTS;
        let email = format!("c{n}@example.com");
        let title = Value::String(format!("Title {i}"));
        let mut record = contacts(n..n + 1, "").remove(0);
        record["fields"]["title"] = title.clone();
        let started = Instant::now();
        h.put_records("contact", vec![record]).await;
        let took = time_until(started, || {
            h.crm_contacts()
                .values()
                .any(|f| f.get("email").and_then(Value::as_str) == Some(&email) && f.get("title") == Some(&title))
        })
        .await;
        samples.push(took);
    }
    report(backend, "realtime_salesforce_push", "workspace write → Salesforce (push)", samples);
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        hubspot_webhook_latency(backend).await;
        salesforce_push_latency(backend).await;
    }
}
