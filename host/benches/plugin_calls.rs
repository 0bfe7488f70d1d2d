//! Plugin runtime benchmark. Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p crmhost --bench plugin_calls`
//!
//! Measures, with the bundled Salesforce component (~130 KB):
//! - compile time (Cranelift, no cache),
//! - cache load time (deserializing the artifact this host wrote),
//! - per-call overhead: a fresh store + instantiate + one call with a small payload
//!   (`parse-webhook` of an unverified delivery, refused without HTTP) and a larger one
//!   (`describe`),
//! - calls per second with 1 to 64 concurrent callers, each figure also as a `BENCH` line.
//!
//! `CRMHOST_BENCH_PLUGIN=<file.wasm>` measures that component instead (say the Python probe of
//! `tests/plugins/python-probe`, built with componentize-py), with fewer rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crmhost::plugins::bindings::adapter::WebhookRequest;
use crmhost::plugins::cache::ComponentCache;
use crmhost::plugins::sha256_hex;
use crmhost::plugins::{CallContext, EngineSettings, OperatorPluginConfig, PluginEngine, PluginLoader, PluginSource};

fn stats(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    let pct = |p: f64| samples[((n as f64 * p) as usize).min(n - 1)];
    format!("mean {:>9.1?}  p50 {:>9.1?}  p99 {:>9.1?}  (n={n})", mean, pct(0.50), pct(0.99))
}

/// A delivery without the host's verification mark: the Salesforce adapter refuses it at once,
/// so the call costs the runtime's own overhead and no HTTP.
fn unverified_delivery() -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_owned(),
        url: "http://127.0.0.1/api/v1/webhooks/salesforce".to_owned(),
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: b"{}".to_vec(),
        received_at_ms: 0,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

/// The component measured and how many rounds each measurement takes (a 100th for a file).
fn subject() -> (Vec<u8>, &'static str, usize) {
    if let Some(path) = std::env::var_os("CRMHOST_BENCH_PLUGIN") {
        return (std::fs::read(&path).expect("CRMHOST_BENCH_PLUGIN names a readable file"), "file", 100);
    }
    let bundled = crmhost::plugins::bundled();
    let salesforce = bundled.iter().find(|b| b.name == "crmhost-plugin-salesforce").expect("bundled salesforce");
    (salesforce.bytes.to_vec(), "salesforce", 1)
}

async fn run() {
    let (bytes, name, fewer) = subject();
    let bytes = bytes.as_slice();
    let rounds = |n: usize| (n / fewer).max(3);
    let sha = sha256_hex(bytes);
    let engine = PluginEngine::new(EngineSettings::default()).expect("engine");
    println!(
        "crmhost plugin benchmark — {name} component {} KB, allocator {:?}, {} cores",
        bytes.len() / 1024,
        engine.allocator(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    // Compile (no cache).
    let mut compile = Vec::new();
    for _ in 0..rounds(5) {
        let start = Instant::now();
        ComponentCache::new(None).load_or_compile(engine.engine(), bytes, &sha).expect("compile");
        compile.push(start.elapsed());
    }
    println!("compile (Cranelift)        {}", stats(compile));

    // Cache load.
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = ComponentCache::new(Some(dir.path().to_path_buf()));
    cache.load_or_compile(engine.engine(), bytes, &sha).expect("first load writes the cache");
    let mut loads = Vec::new();
    for _ in 0..rounds(50) {
        let start = Instant::now();
        let (_, outcome) = cache.load_or_compile(engine.engine(), bytes, &sha).expect("cache load");
        loads.push(start.elapsed());
        assert_eq!(outcome, crmhost::plugins::cache::CacheOutcome::Hit);
    }
    println!("cache load (deserialize)   {}", stats(loads));

    let loader = PluginLoader::new(engine.clone(), cache, Arc::new(OperatorPluginConfig::default()));
    let plugin = Arc::new(loader.load(Arc::from(bytes), PluginSource::Bundled).await.expect("load"));

    // Per-call overhead.
    let delivery = Arc::new(unverified_delivery());
    for _ in 0..rounds(200) {
        let _ = plugin.parse_webhook(CallContext::detached(), &delivery).await;
    }
    let mut small = Vec::new();
    for _ in 0..rounds(5_000) {
        let start = Instant::now();
        let outcome = plugin.parse_webhook(CallContext::detached(), &delivery).await.expect("call");
        small.push(start.elapsed());
        assert!(outcome.is_err(), "an unverified delivery is refused (or webhooks are not supported)");
    }
    println!("call: instantiate+parse-webhook   {}", stats(small));
    let mut large = Vec::new();
    for _ in 0..rounds(2_000) {
        let start = Instant::now();
        plugin.describe(CallContext::detached()).await.expect("describe");
        large.push(start.elapsed());
    }
    println!("call: instantiate+describe        {}", stats(large));

    // Throughput.
    for concurrency in [1usize, 2, 8, 64] {
        let total = rounds(20_000).max(concurrency);
        let per_task = total / concurrency;
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (plugin, delivery) = (plugin.clone(), delivery.clone());
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        plugin.parse_webhook(CallContext::detached(), &delivery).await.expect("call").ok();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        let elapsed = start.elapsed();
        let calls = per_task * concurrency;
        let per_second = calls as f64 / elapsed.as_secs_f64();
        println!(
            "throughput: {concurrency:>3} concurrent callers  {per_second:>9.0} calls/s  ({calls} calls in {elapsed:.2?})"
        );
        println!(
            "BENCH name=plugin_calls plugin={name} callers={concurrency} calls={calls} seconds={:.3} calls_per_second={per_second:.0}",
            elapsed.as_secs_f64()
        );
    }
}
