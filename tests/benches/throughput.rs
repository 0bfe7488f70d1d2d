//! crmhost's own throughput and memory, with the emulators in a separate process so their cost is
//! counted apart: pull into an empty workspace and a whole-entity push (one `sync` run in the push
//! direction) of 1,000 and 10,000 contacts (`CRMHOST_BENCH_SIZES=1000,10000,100000` for more), per
//! CRM and backend, each in a fresh process. For each: wall time, records/s, crmhost's CPU per
//! record (the measuring process: the server plus a client that only starts the run and polls
//! it), the emulator's CPU per record, and crmhost's peak RSS over the run (the process's, after
//! loading the records a push sends). Ends with how time per record grows from the smallest size
//! to the largest.
//!
//! Every figure is also printed as one machine-readable line:
//! `BENCH name=pull backend=sqlite crm=salesforce records=10000 seconds=… records_per_s=… cpu_us_per_record=… emulator_cpu_us_per_record=… database_cpu_us_per_record=… rss_mb=…`
//! (`database_cpu_us_per_record`: the PostgreSQL server's processes, when it runs on this machine).
//!
//! Run with `cargo bench -p crmhost-tests --bench throughput`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crmhost_tests::{
    AppOptions, Backend, ConnectedWorkspace, Crm, TestApp, contacts, current_rss_mib, peak_rss_mib, reset_peak_rss,
};
use serde_json::json;

/// Set in the child process that serves the emulators.
const EMULATOR_ROLE: &str = "CRMHOST_BENCH_EMULATOR";
/// Records per `PUT …/records` while loading the workspace for a push.
const LOAD_BATCH: usize = 200;

fn main() {
    if std::env::var_os(EMULATOR_ROLE).is_some() {
        serve_emulators();
        return;
    }
    if let Ok(scenario) = std::env::var(SCENARIO_ROLE) {
        run_scenario(&scenario);
        return;
    }
    println!("crmhost throughput, emulators in their own process (no latency, limits lifted):");
    let mut figures = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        for crm in [Crm::Salesforce, Crm::Hubspot] {
            for records in sizes() {
                for direction in [Direction::Pull, Direction::Push] {
                    figures.extend(measure_in_own_process(backend, crm, direction, records));
                }
            }
        }
    }
    print_scaling(&figures);
}

/// Set in a child process that measures one scenario (`backend crm direction records`), so each
/// figure, peak RSS above all, belongs to a fresh process.
const SCENARIO_ROLE: &str = "CRMHOST_BENCH_SCENARIO";

/// Runs one scenario in a child process, passing its output through; its figure, if it ran.
fn measure_in_own_process(backend: Backend, crm: Crm, direction: Direction, records: usize) -> Option<Figure> {
    let scenario = format!("{} {} {} {records}", backend_name(backend), crm.slug(), direction.name());
    let output = Command::new(std::env::current_exe().unwrap())
        .env(SCENARIO_ROLE, &scenario)
        .stderr(Stdio::inherit())
        .output()
        .expect("the scenario process runs");
    let text = String::from_utf8_lossy(&output.stdout);
    print!("{text}");
    assert!(output.status.success(), "scenario `{scenario}` failed");
    let seconds = text
        .lines()
        .find(|l| l.starts_with("BENCH "))?
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("seconds="))?
        .parse()
        .ok()?;
    Some(Figure { backend, crm, direction, records, seconds })
}

/// The child's side of [`measure_in_own_process`].
fn run_scenario(scenario: &str) {
    let parts: Vec<&str> = scenario.split_whitespace().collect();
    let [backend, crm, direction, records] = parts.as_slice() else { panic!("bad scenario `{scenario}`") };
    let backend = if *backend == "postgres" { Backend::Postgres } else { Backend::Sqlite };
    let crm = if *crm == "hubspot" { Crm::Hubspot } else { Crm::Salesforce };
    let direction = if *direction == "push" { Direction::Push } else { Direction::Pull };
    let records: usize = records.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if runtime.block_on(measure(backend, crm, direction, records)).is_none() {
        println!("{backend:?}: not available, skipped");
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// The sizes to measure, smallest first.
fn sizes() -> Vec<usize> {
    let mut sizes: Vec<usize> = std::env::var("CRMHOST_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]);
    sizes.sort_unstable();
    sizes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Pull,
    Push,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
        }
    }
}

/// One measured run.
struct Figure {
    backend: Backend,
    crm: Crm,
    direction: Direction,
    records: usize,
    seconds: f64,
}

/// Starts fresh emulators and a fresh crmhost, prepares `records` contacts on the side the run
/// reads from, and measures the one run that moves them.
async fn measure(backend: Backend, crm: Crm, direction: Direction, records: usize) -> Option<Figure> {
    let emulator = Emulator::spawn();
    let options = AppOptions { backend, remote_sim: Some(emulator.urls.clone()), ..AppOptions::default() };
    let app = TestApp::spawn(options).await?;
    let w = ConnectedWorkspace::connect(app, crm).await;
    let operation = match direction {
        Direction::Pull => {
            emulator.seed(records).await;
            "pull"
        }
        Direction::Push => {
            let (status, body) = w.patch_settings(json!({ "direction": "push" })).await;
            assert!(status.is_success(), "{body}");
            // A batch at a time: the driver shares this process and should hold no more than crmhost.
            for start in (0..records).step_by(LOAD_BATCH) {
                w.put_records("contact", contacts(start..records.min(start + LOAD_BATCH), "")).await;
            }
            "sync"
        }
    };
    let body = match direction {
        Direction::Pull => json!({ "entity": "contact" }),
        Direction::Push => json!({ "entities": ["contact"] }),
    };

    reset_peak_rss();
    let rss_at_start = current_rss_mib();
    let (own_before, emulator_before, database_before) =
        (own_cpu_seconds(), emulator.cpu_seconds(), database_cpu_seconds(backend));
    let started = Instant::now();
    let run = w.run_to_end(operation, body).await;
    let seconds = started.elapsed().as_secs_f64();
    let own = own_cpu_seconds() - own_before;
    let emulator_cpu = emulator.cpu_seconds() - emulator_before;
    let database_cpu = database_cpu_seconds(backend) - database_before;
    let rss = peak_rss_mib();

    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["success_count"].as_u64(), Some(records as u64), "{run}");
    let per_record = |cpu: f64| cpu * 1e6 / records as f64;
    println!(
        "{:<8} {:<10} {:<4} {records:>7} records in {seconds:>7.2} s = {:>7.0} records/s | crmhost CPU {:>6.1} µs/record, emulator {:>6.1}, PostgreSQL server {:>6.1} | peak RSS {rss:>5.0} MiB (at start {rss_at_start:.0})",
        format!("{backend:?}"),
        crm.slug(),
        direction.name(),
        records as f64 / seconds,
        per_record(own),
        per_record(emulator_cpu),
        per_record(database_cpu),
    );
    println!(
        "BENCH name={} backend={} crm={} records={records} seconds={seconds:.3} records_per_s={:.0} cpu_us_per_record={:.1} emulator_cpu_us_per_record={:.1} database_cpu_us_per_record={:.1} rss_mb={rss:.0}",
        direction.name(),
        backend_name(backend),
        crm.slug(),
        records as f64 / seconds,
        per_record(own),
        per_record(emulator_cpu),
        per_record(database_cpu),
    );
    Some(Figure { backend, crm, direction, records, seconds })
}

/// Time per record at the largest size over that at the smallest, per backend, CRM and direction.
fn print_scaling(figures: &[Figure]) {
    println!("scaling (time per record at the largest size / at the smallest; linear = 1.0):");
    for first in figures.iter().filter(|f| Some(f.records) == figures.iter().map(|f| f.records).min()) {
        let same = |f: &&Figure| f.backend == first.backend && f.crm == first.crm && f.direction == first.direction;
        let Some(last) = figures.iter().filter(same).max_by_key(|f| f.records) else { continue };
        if last.records == first.records {
            continue;
        }
        let ratio = (last.seconds / last.records as f64) / (first.seconds / first.records as f64);
        println!(
            "BENCH name=scaling_{} backend={} crm={} from={} to={} time_per_record_ratio={ratio:.2}",
            first.direction.name(),
            backend_name(first.backend),
            first.crm.slug(),
            first.records,
            last.records,
        );
    }
}

/// The emulators in a child process (this benchmark's own binary in the emulator role).
struct Emulator {
    child: Child,
    /// Base URLs: Salesforce, HubSpot.
    urls: (String, String),
}

impl Emulator {
    fn spawn() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(EMULATOR_ROLE, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the emulator process starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next_url = || lines.next().expect("an emulator URL").expect("readable");
        let urls = (next_url(), next_url());
        Self { child, urls }
    }

    /// Creates `count` contacts in both CRMs.
    async fn seed(&self, count: usize) {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{}/__sim/seed", self.urls.0))
            .json(&json!({ "entity": "contact", "count": count }))
            .send()
            .await
            .expect("seed request");
        assert!(response.status().is_success(), "seeding answered {}", response.status());
    }

    /// CPU time the emulator process has used (user + system).
    fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&format!("/proc/{}/stat", self.child.id()))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Closing its stdin ends the child; kill it in case it does not notice.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator role: serve both CRMs with limits lifted, print their URLs, run until stdin closes.
fn serve_emulators() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut options = crm_sim::SimOptions::both_on_free_ports();
        options.knobs = crm_sim::knobs::Knobs {
            hubspot_ten_second_limit: 1_000_000,
            hubspot_search_per_second: 1_000_000,
            salesforce_daily_limit: 100_000_000,
            ..crm_sim::knobs::Knobs::default()
        };
        let sim = crm_sim::start(options).await.expect("emulators start");
        let mut out = std::io::stdout();
        writeln!(out, "{}", sim.salesforce_url().unwrap()).unwrap();
        writeln!(out, "{}", sim.hubspot_url().unwrap()).unwrap();
        out.flush().unwrap();
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await
        .unwrap();
    });
}

/// CPU time of the PostgreSQL server's processes so far (every `postgres` process this user may
/// read: the server runs on this machine in the benchmark's setup); 0 on SQLite, which runs
/// inside this process and is counted in its own CPU.
fn database_cpu_seconds(backend: Backend) -> f64 {
    if backend != Backend::Postgres {
        return 0.0;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(|e| cpu_seconds_of(&e.path().join("stat").to_string_lossy()))
        .sum()
}

/// CPU time of this process so far (user + system).
fn own_cpu_seconds() -> f64 {
    cpu_seconds_of("/proc/self/stat")
}

/// User + system CPU time from a `/proc/<pid>/stat` file (fields 14 and 15, in USER_HZ = 100 ticks
/// per second on Linux); 0 elsewhere.
fn cpu_seconds_of(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<f64> = after_name.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // After the name: state (not numeric, filtered out), then ppid … ; utime and stime are the
    // 14th and 15th fields of the whole line, the 11th and 12th numeric ones after the name.
    match (fields.get(10), fields.get(11)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => 0.0,
    }
}
