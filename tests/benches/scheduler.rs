//! The scheduler at scale: 1,000 workspaces on one host, each connected to the Salesforce
//! emulator (no latency, limits lifted) with 5 records and `every_minutes: 1`, pushing.
//!
//! Two shapes of schedule, each on SQLite and PostgreSQL:
//! - `burst`: every schedule is set at once, so all 1,000 first runs are due together: how many
//!   runs per second one host sustains, and the queue that makes.
//! - `spread`: the schedules are set over one interval (60 s), as real ones are; wave 1 is each
//!   first run, wave 2 the next, one minute after its first (nothing left to push).
//!
//! Prints runs per second, scheduler lag (start minus due) p50/p99 per wave and the peak RSS, each
//! also as a `BENCH` line. Run with `cargo bench -p crmhost-tests --bench scheduler`;
//! `CRMHOST_BENCH_SCHEDULES=spread` (or `burst`) runs one shape only.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crmhost::auth::Role;
use crmhost::sync::SchedulerOptions;
use crmhost_tests::{AppOptions, Backend, TestApp, peak_rss_mib};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

const WORKSPACES: usize = 1_000;
const RECORDS: usize = 5;

fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().with_timezone(&Utc)
}

/// The `p` quantile of sorted lags; NaN when there are none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    crmhost_tests::percentile(sorted, p).unwrap_or(f64::NAN)
}

async fn call(app: &TestApp, method: Method, w: &str, path: &str, body: Option<Value>) -> Value {
    let mut request = app.as_role(method, &format!("/api/v1/workspaces/{w}{path}"), w, Role::Admin);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

/// The scheduled runs of a workspace, oldest first: (started_at, completed_at, status).
async fn scheduled_runs(app: &TestApp, w: &str) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>, String)> {
    let body = call(app, Method::GET, w, "/integrations/salesforce/sync-history?trigger=schedule&limit=10", None).await;
    let mut runs: Vec<_> = body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let done = r["completed_at"].as_str().map(|_| instant(&r["completed_at"]));
            (instant(&r["started_at"]), done, r["status"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    runs.sort_by_key(|r| r.0);
    runs
}

/// How the schedules' first due times are laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// All set at once: every first run due together.
    Burst,
    /// Set one after another over one interval: due times spread evenly.
    Spread,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::Burst => "burst",
            Self::Spread => "spread",
        }
    }
}

/// Sets every workspace's schedule to `every_minutes: 1`; `Spread` paces the requests evenly over
/// one minute. Answers each workspace's first due time, as the API reported it.
async fn set_schedules(app: &Arc<TestApp>, workspaces: &[String], shape: Shape) -> Vec<(String, DateTime<Utc>)> {
    let began = tokio::time::Instant::now();
    let pace = Duration::from_secs(60) / workspaces.len() as u32;
    futures::stream::iter(workspaces.iter().cloned().enumerate())
        .map(|(i, w)| {
            let app = app.clone();
            async move {
                if shape == Shape::Spread {
                    tokio::time::sleep_until(began + pace * i as u32).await;
                }
                let body = call(
                    &app,
                    Method::PATCH,
                    &w,
                    "/integrations/salesforce/settings",
                    Some(json!({"frequency": {"every_minutes": 1}})),
                )
                .await;
                (w, instant(&body["schedule"]["next_sync_at"]))
            }
        })
        // Spread requests wait their turn; enough run at once that none starts late.
        .buffer_unordered(if shape == Shape::Spread { workspaces.len() } else { 16 })
        .collect()
        .await
}

async fn scenario(backend: Backend, shape: Shape) {
    let mut options = crm_sim::SimOptions::both_on_free_ports();
    options.hubspot = None;
    options.knobs.salesforce_daily_limit = 100_000_000;
    let sim = Arc::new(crm_sim::start(options).await.unwrap());
    let scheduler =
        SchedulerOptions { tick: Duration::from_millis(100), max_concurrent_runs: 16, ..Default::default() };
    let Some(app) =
        TestApp::spawn(AppOptions { backend, sim: Some(sim.clone()), scheduler, ..AppOptions::default() }).await
    else {
        println!("{backend:?}: not available, skipped");
        return;
    };
    let app = Arc::new(app);
    let workspaces: Vec<String> = (0..WORKSPACES).map(|i| format!("w{i}")).collect();

    let setup = Instant::now();
    futures::stream::iter(workspaces.clone())
        .for_each_concurrent(16, |w| {
            let app = app.clone();
            async move {
                assert!(app.connect(&w, "salesforce").await.status().is_success());
                let records: Vec<Value> = (0..RECORDS)
                    .map(|i| json!({"id": format!("r{i}"), "fields": {"email": format!("{w}-{i}@example.com"), "last_name": "L"}}))
                    .collect();
                call(&app, Method::PUT, &w, "/records/contact", Some(json!({"records": records}))).await;
                call(&app, Method::PATCH, &w, "/integrations/salesforce/settings", Some(json!({"direction": "push", "entities": ["contact"]}))).await;
            }
        })
        .await;
    let setup_secs = setup.elapsed().as_secs_f64();

    let scheduling = Instant::now();
    let first_due = set_schedules(&app, &workspaces, shape).await;
    let scheduling_secs = scheduling.elapsed().as_secs_f64();

    // Wave 1 ends when every workspace has a finished scheduled run; wave 2 when each has two.
    for wave in 1..=2usize {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let contacts =
                sim.sim().salesforce().objects.iter().find(|o| o.schema.name == "Contact").unwrap().records.len();
            if wave == 1 && contacts >= WORKSPACES * RECORDS {
                break;
            }
            if wave == 2 {
                let sample = scheduled_runs(&app, &workspaces[WORKSPACES - 1]).await;
                if sample.iter().filter(|r| r.1.is_some()).count() >= 2 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "wave {wave} did not finish");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    let mut lags = [Vec::new(), Vec::new()];
    let (mut first_start, mut last_end) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
    let mut not_completed = 0;
    let runs: Vec<(DateTime<Utc>, Vec<_>)> = futures::stream::iter(first_due.clone())
        .map(|(w, due)| {
            let app = app.clone();
            async move { (due, scheduled_runs(&app, &w).await) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (due, runs) in runs {
        for (wave, run) in runs.iter().take(2).enumerate() {
            let due = due + chrono::Duration::minutes(wave as i64);
            lags[wave].push((run.0 - due).num_milliseconds() as f64);
            if run.2 != "completed" {
                not_completed += 1;
            }
            if wave == 0 {
                first_start = Some(first_start.map_or(run.0, |f| f.min(run.0)));
                if let Some(end) = run.1 {
                    last_end = Some(last_end.map_or(end, |l| l.max(end)));
                }
            }
        }
    }
    for l in &mut lags {
        l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    let wave1_secs = (last_end.unwrap() - first_start.unwrap()).num_milliseconds() as f64 / 1000.0;
    let rss = peak_rss_mib();
    let shape_name = shape.name();
    println!(
        "{backend:<8?} {shape_name:<6} {WORKSPACES} workspaces: setup {setup_secs:.1} s, scheduling {scheduling_secs:.1} s; \
         wave 1 ({} first runs, 5 pushes each): {:.1} runs/s over {wave1_secs:.1} s, lag p50 {:.0} ms p99 {:.0} ms; \
         wave 2 (each due 1 min after its first, {} runs, nothing to push): lag p50 {:.0} ms p99 {:.0} ms; \
         runs not completed {not_completed}; peak RSS {rss:.0} MiB",
        lags[0].len(),
        lags[0].len() as f64 / wave1_secs,
        percentile(&lags[0], 0.5),
        percentile(&lags[0], 0.99),
        lags[1].len(),
        percentile(&lags[1], 0.5),
        percentile(&lags[1], 0.99),
    );
    let backend_name = format!("{backend:?}").to_lowercase();
    for (wave, lags) in lags.iter().enumerate() {
        // Only the first wave has work to measure a rate by; the second is about punctuality.
        let rate =
            if wave == 0 { format!(" runs_per_second={:.1}", lags.len() as f64 / wave1_secs) } else { String::new() };
        println!(
            "BENCH name=scheduler_{shape_name} backend={backend_name} integrations={WORKSPACES} wave={} runs={}{rate} \
             lag_p50_ms={:.0} lag_p99_ms={:.0} rss_mb={rss:.0}",
            wave + 1,
            lags.len(),
            percentile(lags, 0.5),
            percentile(lags, 0.99),
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let only = std::env::var("CRMHOST_BENCH_SCHEDULES").unwrap_or_default();
    for shape in [Shape::Burst, Shape::Spread] {
        if !only.is_empty() && only != shape.name() {
            continue;
        }
        for backend in [Backend::Sqlite, Backend::Postgres] {
            scenario(backend, shape).await;
        }
    }
}
