//! Adapter throughput through the real host runtime against the emulators (no latency, no rate
//! limits): push and pull of 10,000 records per adapter, with the time spent inside the plugin
//! (guest work, instantiation, glue) separated from the time spent in host HTTP (the emulator and
//! the network). Run with `cargo bench -p crmhost-tests --bench adapters`; it prints figures.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use crmhost::domain::{PluginSlug, WorkspaceId};
use crmhost::plugins::bindings::adapter::{PullRequest, PushOutcome, PushRecord};
use crmhost::plugins::bindings::{FieldValue, Value};
use crmhost::plugins::stats::CallStatsSnapshot;
use crmhost_tests::{AppOptions, TestApp};

const RECORDS: usize = 10_000;
const BATCH: usize = 200;

fn text(name: &str, value: String) -> FieldValue {
    FieldValue { name: name.to_owned(), value: Value::Text(value) }
}

fn report(adapter: &str, operation: &str, records: usize, seconds: f64, stats: CallStatsSnapshot) {
    println!(
        "{adapter:<10} {operation:<5} {records:>6} records in {seconds:>6.2} s = {:>8.0} records/s | {} calls, {} HTTP requests | plugin {:>6.0} ms ({:>4.1}%), host HTTP {:>6.0} ms",
        records as f64 / seconds,
        stats.calls,
        stats.http_requests,
        stats.plugin_time().as_secs_f64() * 1000.0,
        100.0 * stats.plugin_time().as_secs_f64() / stats.call_time.as_secs_f64().max(f64::EPSILON),
        stats.http_time.as_secs_f64() * 1000.0,
    );
}

async fn run(app: &TestApp, slug: &str, entity: &str, key: &str, record: impl Fn(usize) -> Vec<FieldValue>) {
    assert!(app.connect("bench", slug).await.status().is_success());
    let (plugin, context) = app
        .state
        .connections
        .call_context(&WorkspaceId::parse("bench").unwrap(), &PluginSlug::parse(slug).unwrap())
        .await
        .unwrap();

    let before = plugin.stats();
    let started = Instant::now();
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(BATCH) {
        let records: Vec<PushRecord> = chunk.iter().map(|i| PushRecord { crm_id: None, fields: record(*i) }).collect();
        let outcomes = plugin.push(context.clone(), entity, key, &records).await.unwrap().unwrap();
        assert!(outcomes.iter().all(|o| matches!(o, PushOutcome::Created(_))), "{:?}", outcomes.first());
    }
    report(slug, "push", RECORDS, started.elapsed().as_secs_f64(), plugin.stats().since(&before));

    let before = plugin.stats();
    let started = Instant::now();
    let mut request = PullRequest {
        entity: entity.to_owned(),
        cursor: None,
        modified_since: None,
        ids: vec![],
        fields: vec![],
        limit: 200,
    };
    let mut pulled = 0;
    loop {
        let page = plugin.pull(context.clone(), &request).await.unwrap().unwrap();
        pulled += page.records.len();
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    assert!(pulled >= RECORDS, "pulled {pulled}");
    report(slug, "pull", pulled, started.elapsed().as_secs_f64(), plugin.stats().since(&before));
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let app = TestApp::spawn(AppOptions { sandbox: true, ..AppOptions::default() }).await.unwrap();
        app.sim()
            .sim()
            .update_knobs(|k| {
                k.latency_ms = 0;
                k.hubspot_ten_second_limit = 1_000_000;
                k.hubspot_search_per_second = 1_000_000;
                k.salesforce_daily_limit = 10_000_000;
                k.salesforce_query_batch_size = 2000;
            })
            .unwrap();
        println!("adapters through the host runtime against crm-sim, {RECORDS} records, batches of {BATCH}:");
        run(&app, "salesforce", "contact", "Email", |i| {
            vec![text("Email", format!("bench{i}@example.com")), text("LastName", format!("Bench {i}"))]
        })
        .await;
        run(&app, "hubspot", "contact", "email", |i| {
            vec![text("email", format!("bench{i}@example.com")), text("lastname", format!("Bench {i}"))]
        })
        .await;
    });
}
