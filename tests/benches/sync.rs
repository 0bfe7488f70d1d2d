//! Sync engine throughput through the API, per adapter and backend, against the emulators (no
//! latency, limits lifted): push 10,000 records, pull 10,000 into an empty workspace, and a
//! two-way sync of 10,000 linked records with nothing changed, then with 10% changed on each side; records/s and the peak
//! RSS of the process during each (the in-process emulators included). Then HubSpot with its real
//! limit (100 requests / 10 s): the fraction of the limit-bound throughput achieved and the 429s
//! received. Also the two-way sync carrying edits made in the CRM, in a second workspace on the
//! same account and in the workspace (a tenth each). Run with `cargo bench -p crmhost-tests --bench sync`
//! (`CRMHOST_BENCH_ONLY="postgres hubspot"` for one pair); it prints figures and `BENCH` lines.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use crm_sim::knobs::Knobs;
use crmhost_tests::{Backend, Crm, SyncHarness, contacts, peak_rss_mib, reset_peak_rss};
use serde_json::json;

const RECORDS: usize = 10_000;
const BATCH: usize = 200;

fn unlimited() -> Knobs {
    Knobs {
        hubspot_ten_second_limit: 1_000_000,
        hubspot_search_per_second: 1_000_000,
        salesforce_daily_limit: 100_000_000,
        ..Knobs::default()
    }
}

/// Prints one figure for people, then as a machine-readable `BENCH` line named `name`.
fn report(backend: Backend, crm: Crm, (name, what): (&str, &str), records: usize, seconds: f64, extra: &str) {
    let rss = peak_rss_mib();
    println!(
        "{:<8} {:<10} {what:<30} {records:>6} records in {seconds:>7.2} s = {:>7.0} records/s | peak RSS {rss:>6.0} MiB {extra}",
        format!("{backend:?}"),
        crm.slug(),
        records as f64 / seconds,
    );
    println!(
        "BENCH name={name} backend={} crm={} records={records} seconds={seconds:.3} records_per_s={:.0} rss_mb={rss:.0}",
        format!("{backend:?}").to_lowercase(),
        crm.slug(),
        records as f64 / seconds,
    );
}

async fn put_all(h: &SyncHarness, range: std::ops::Range<usize>, prefix: &str) {
    let all = contacts(range, prefix);
    for chunk in all.chunks(BATCH) {
        h.put_records("contact", chunk.to_vec()).await;
    }
}

async fn push_all(h: &SyncHarness, range: std::ops::Range<usize>) -> usize {
    let ids: Vec<String> = range.map(|i| format!("c{i}")).collect();
    let mut ok = 0;
    for chunk in ids.chunks(BATCH) {
        let run = h.run_to_end("push", json!({ "entity": "contact", "record_ids": chunk })).await;
        ok += run["success_count"].as_u64().unwrap() as usize;
    }
    ok
}

async fn scenario(backend: Backend, crm: Crm) {
    let Some(h) = SyncHarness::start(backend, crm, unlimited()).await else {
        println!("{backend:?}: not available, skipped");
        return;
    };
    put_all(&h, 0..RECORDS, "").await;

    reset_peak_rss();
    let started = Instant::now();
    let pushed = push_all(&h, 0..RECORDS).await;
    assert_eq!(pushed, RECORDS);
    report(
        backend,
        crm,
        ("sync_push_runs_of_200", "push (50 calls of 200)"),
        RECORDS,
        started.elapsed().as_secs_f64(),
        "",
    );

    // A first sync sets the base and the pull cursor; then 10% change on each side.
    let baseline = h.run_to_end("sync", json!({ "entities": ["contact"] })).await;
    assert_eq!(baseline["status"], "completed", "{baseline}");

    // Then a sync with nothing changed on either side: what an idle schedule costs.
    reset_peak_rss();
    let started = Instant::now();
    let idle = h.run_to_end("sync", json!({ "entities": ["contact"] })).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!((idle["status"].as_str(), idle["success_count"].as_u64()), (Some("completed"), Some(0)), "{idle}");
    report(backend, crm, ("sync_two_way_unchanged", "two-way (nothing changed)"), RECORDS, seconds, "(0 written)");

    let changed = RECORDS / 10;
    let edits: Vec<serde_json::Value> =
        (0..changed).map(|i| json!({"id": format!("c{i}"), "fields": {"last_name": format!("AppEdit{i}")}})).collect();
    for chunk in edits.chunks(BATCH) {
        h.put_records("contact", chunk.to_vec()).await;
    }
    let crm_ids: Vec<(String, usize)> = {
        let by_email: std::collections::HashMap<String, String> = h
            .crm_contacts()
            .into_iter()
            .filter_map(|(id, f)| f.get("email").and_then(|e| e.as_str()).map(|e| (e.to_owned(), id)))
            .collect();
        (RECORDS / 2..RECORDS / 2 + changed).map(|i| (by_email[&format!("c{i}@example.com")].clone(), i)).collect()
    };
    for (id, i) in &crm_ids {
        h.edit_crm_contact(id, "title", &format!("CrmEdit{i}"));
    }
    reset_peak_rss();
    let calls_before = h.sim.sim().calls();
    let started = Instant::now();
    let run = h.run_to_end("sync", json!({ "entities": ["contact"] })).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        (run["status"].as_str(), run["success_count"].as_u64()),
        (Some("completed"), Some(2 * changed as u64)),
        "{run}"
    );
    let extra = format!("({} written; {}; {})", 2 * changed, phases(&run), requests_since(&h, &calls_before));
    report(backend, crm, ("sync_two_way_10pct", "two-way (10% each side)"), RECORDS, seconds, &extra);
    drop(h);

    let Some(h) = SyncHarness::start(backend, crm, unlimited()).await else { return };
    h.sim.sim().seed("contact", RECORDS).unwrap();
    reset_peak_rss();
    let started = Instant::now();
    let run = h.run_to_end("pull", json!({ "entity": "contact" })).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(run["success_count"].as_u64(), Some(RECORDS as u64), "{run}");
    report(backend, crm, ("sync_pull_empty", "pull (into an empty workspace)"), RECORDS, seconds, "");
}

/// Two-way sync of 10,000 contacts, then a tenth edited in the CRM, a tenth through a second
/// workspace on the same account and a tenth in the workspace: the sync that carries them across.
async fn edits_from_three_places(backend: Backend, crm: Crm) {
    let Some(h) = SyncHarness::start(backend, crm, unlimited()).await else { return };
    reset_peak_rss();
    let measured = h.edits_from_three_places(RECORDS).await;
    report(backend, crm, ("sync_first_two_way", "first two-way sync (creates)"), RECORDS, measured.first_sync_secs, "");
    let written = measured.edits_written as usize;
    report(
        backend,
        crm,
        ("sync_edits_from_3_places", "two-way, edits from 3 places"),
        written,
        measured.edit_sync_secs,
        &format!("(of {RECORDS} linked)"),
    );
}

/// HubSpot with its real per-account limit: how close pushes come to the limit-bound rate.
async fn rate_limited_hubspot() {
    const PUSHED: usize = 20_000;
    let knobs = Knobs { hubspot_search_per_second: 1_000_000, ..Knobs::default() };
    let h = SyncHarness::start(Backend::Sqlite, Crm::Hubspot, knobs.clone()).await.unwrap();
    put_all(&h, 0..PUSHED, "").await;
    let key = "hubspot POST /crm/v3/objects/{object}/batch/upsert";
    let before = (h.sim.sim().call_count(key), h.sim.sim().call_count("hubspot 429"));
    let started = Instant::now();
    let pushed = push_all(&h, 0..PUSHED).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(pushed, PUSHED);
    let requests = h.sim.sim().call_count(key) - before.0;
    let throttled = h.sim.sim().call_count("hubspot 429") - before.1;
    let accepted = requests - throttled;
    let limit = knobs.hubspot_ten_second_limit as f64;
    // A rolling window admits `limit` at once, then `limit` more every 10 s.
    let bound = ((accepted as f64 - limit).max(0.0) / limit * 10.0).max(f64::EPSILON);
    println!(
        "Sqlite   hubspot    push under 100 req/10 s     {PUSHED:>6} records in {seconds:>7.2} s = {:>7.0} records/s | {accepted} accepted requests; limit-bound time {bound:.1} s → {:.0}% of the limit-bound throughput; {throttled} × 429",
        PUSHED as f64 / seconds,
        100.0 * bound / seconds,
    );
}

/// How long each phase of a run took, from its timeline: `pull contact 0.21 s, push contact 0.10 s`.
fn phases(run: &serde_json::Value) -> String {
    let instant = |v: &serde_json::Value| v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let spans = run["timeline"].as_array().map(Vec::as_slice).unwrap_or_default();
    let described: Vec<String> = spans
        .iter()
        .filter_map(|span| {
            let took = instant(&span["ended_at"])? - instant(&span["started_at"])?;
            Some(format!("{} {:.2} s", span["phase"].as_str()?, took.num_microseconds()? as f64 / 1e6))
        })
        .collect();
    described.join(", ")
}

/// The CRM requests made since `before` (a snapshot of the emulator's counts), by route.
fn requests_since(h: &SyncHarness, before: &std::collections::BTreeMap<String, u64>) -> String {
    let made: Vec<String> = h
        .sim
        .sim()
        .calls()
        .into_iter()
        .filter_map(|(route, n)| {
            let new = n - before.get(&route).copied().unwrap_or(0);
            (new > 0).then(|| format!("{new} × {route}"))
        })
        .collect();
    made.join(", ")
}

/// Whether `CRMHOST_BENCH_ONLY` (e.g. `postgres hubspot`, or `hubspot`) leaves this pair in; unset, all run.
fn selected(backend: Backend, crm: Crm) -> bool {
    let pair = format!("{} {}", format!("{backend:?}").to_lowercase(), crm.slug());
    std::env::var("CRMHOST_BENCH_ONLY").map_or(true, |only| only.split_whitespace().all(|word| pair.contains(word)))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        println!("sync engine through the API against crm-sim (no latency, limits lifted), {RECORDS} contacts:");
        for backend in [Backend::Sqlite, Backend::Postgres] {
            for crm in [Crm::Salesforce, Crm::Hubspot] {
                if !selected(backend, crm) {
                    continue;
                }
                scenario(backend, crm).await;
                edits_from_three_places(backend, crm).await;
            }
        }
        if selected(Backend::Sqlite, Crm::Hubspot) {
            rate_limited_hubspot().await;
        }
    });
}
