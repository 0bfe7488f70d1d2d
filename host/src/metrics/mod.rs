//! What an operator watches on a live server: counters, gauges and histograms in the Prometheus
//! text format (`GET /metrics`): sync runs and records, plugin calls and failures, outbound CRM
//! requests and 429s, pacer waits, scheduler lag and queue depth, webhook deliveries, database pool
//! use. One [`Metrics`] per server, shared by the parts that move it.

mod labels;

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use labels::{CallOutcome, DeliveryOutcome, RecordOutcome};
use labels::{
    DeliveryLabels, OutboundLabels, PluginCallLabels, PluginFailureLabels, PluginLabels, PoolLabels, RecordLabels,
    RunKindLabels, RunLabels, StatusClass,
};

use crate::domain::{RunStatus, Trigger};
use crate::plugins::CallError;
use crate::store::RunCounts;

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_seconds: Family<RunKindLabels, Histogram>,
    run_records_per_second: Family<RunKindLabels, Histogram>,
    records: Family<RecordLabels, Counter>,
    plugin_calls: Family<PluginCallLabels, Histogram>,
    plugin_failures: Family<PluginFailureLabels, Counter>,
    outbound_requests: Family<OutboundLabels, Counter>,
    outbound_seconds: Family<PluginLabels, Histogram>,
    pacer_wait_seconds: Family<PluginLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    scheduler_lag_seconds: Histogram,
    scheduler_due: Gauge,
    scheduler_claimed: Counter,
    webhook_deliveries: Family<DeliveryLabels, Counter>,
    db_pool: Family<PoolLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Histogram buckets for durations from 1 ms to about 9 minutes.
fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 20)
}

impl Metrics {
    /// Every family, registered under `crmhost_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("crmhost");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register("sync_runs", "Sync runs ended, by operation, trigger and status", runs.clone());
        let run_seconds =
            Family::<RunKindLabels, Histogram>::new_with_constructor(|| Histogram::new(seconds_buckets()));
        registry.register("sync_run_duration_seconds", "Wall time of ended sync runs", run_seconds.clone());
        let run_records_per_second = Family::<RunKindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1.0, 2.0, 20))
        });
        registry.register(
            "sync_run_records_per_second",
            "Records looked at per second of wall time, per ended run that looked at any",
            run_records_per_second.clone(),
        );
        let records = Family::<RecordLabels, Counter>::default();
        registry.register("sync_records", "Records handled by ended runs, by outcome", records.clone());
        let plugin_calls =
            Family::<PluginCallLabels, Histogram>::new_with_constructor(|| Histogram::new(seconds_buckets()));
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin calls by plugin, operation and outcome (their CRM requests included)",
            plugin_calls.clone(),
        );
        let plugin_failures = Family::<PluginFailureLabels, Counter>::default();
        registry.register(
            "plugin_failures",
            "Plugin calls stopped by the sandbox: traps, CPU, memory and wall-clock limits, busy",
            plugin_failures.clone(),
        );
        let outbound_requests = Family::<OutboundLabels, Counter>::default();
        registry.register(
            "outbound_requests",
            "Requests plugins sent to CRMs, by plugin and status class (429 counted on its own)",
            outbound_requests.clone(),
        );
        let outbound_seconds =
            Family::<PluginLabels, Histogram>::new_with_constructor(|| Histogram::new(seconds_buckets()));
        registry.register(
            "outbound_request_duration_seconds",
            "Time CRMs took to answer plugins' requests",
            outbound_seconds.clone(),
        );
        let pacer_wait_seconds = Family::<PluginLabels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "pacer_wait_seconds",
            "Time requests waited for the CRM account's rate budget",
            pacer_wait_seconds.clone(),
        );
        let scheduler_lag_seconds = Histogram::new(seconds_buckets());
        registry.register(
            "scheduler_lag_seconds",
            "How late scheduled syncs were claimed after they fell due",
            scheduler_lag_seconds.clone(),
        );
        let scheduler_due = Gauge::default();
        registry.register(
            "scheduler_due_integrations",
            "Integrations due for a scheduled sync and not yet claimed (at scrape time)",
            scheduler_due.clone(),
        );
        let scheduler_claimed = Counter::default();
        registry.register("scheduler_claims", "Integrations the scheduler claimed to run", scheduler_claimed.clone());
        let webhook_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_delivery_attempts",
            "Outbound webhook delivery attempts, by outcome",
            webhook_deliveries.clone(),
        );
        let db_pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections by state (at scrape time)",
            db_pool.clone(),
        );
        Self {
            registry,
            runs,
            run_seconds,
            run_records_per_second,
            records,
            plugin_calls,
            plugin_failures,
            outbound_requests,
            outbound_seconds,
            pacer_wait_seconds,
            scheduler_lag_seconds,
            scheduler_due,
            scheduler_claimed,
            webhook_deliveries,
            db_pool,
        }
    }

    /// Records an ended run: its status, duration, rate and records by outcome.
    pub fn run_ended(
        &self,
        operation: &'static str,
        trigger: Trigger,
        status: RunStatus,
        counts: &RunCounts,
        took: Duration,
    ) {
        let kind = RunKindLabels { operation };
        self.runs.get_or_create(&RunLabels { operation, trigger: trigger.as_str(), status: status.as_str() }).inc();
        self.run_seconds.get_or_create(&kind).observe(took.as_secs_f64());
        if counts.records > 0 && !took.is_zero() {
            self.run_records_per_second.get_or_create(&kind).observe(counts.records as f64 / took.as_secs_f64());
        }
        let outcomes = [
            (RecordOutcome::Succeeded, counts.succeeded),
            (RecordOutcome::Failed, counts.failed),
            (RecordOutcome::Conflict, counts.conflicts),
            (RecordOutcome::Skipped, counts.skipped),
        ];
        for (outcome, n) in outcomes {
            if let Ok(n) = u64::try_from(n)
                && n > 0
            {
                self.records.get_or_create(&RecordLabels::from(outcome)).inc_by(n);
            }
        }
    }

    /// Records a finished plugin call; a sandbox stop also counts as a failure of its kind.
    pub fn plugin_call(&self, plugin: &str, operation: &'static str, result: Result<(), &CallError>, took: Duration) {
        let outcome = match result {
            Ok(()) => CallOutcome::Ok,
            Err(_) => CallOutcome::Error,
        };
        self.plugin_calls.get_or_create(&PluginCallLabels::new(plugin, operation, outcome)).observe(took.as_secs_f64());
        if let Err(err) = result
            && let Some(kind) = labels::failure_kind(err)
        {
            self.plugin_failures.get_or_create(&PluginFailureLabels { plugin: plugin.to_owned(), kind }).inc();
        }
    }

    /// Records a plugin's request to its CRM: the status it got (`None`: no answer) and how long.
    pub fn outbound_request(&self, plugin: &str, status: Option<u16>, took: Duration) {
        self.outbound_requests.get_or_create(&OutboundLabels::new(plugin, StatusClass::of(status))).inc();
        self.outbound_seconds.get_or_create(&PluginLabels { plugin: plugin.to_owned() }).observe(took.as_secs_f64());
    }

    /// Records time a request waited for its account's rate budget.
    pub fn pacer_waited(&self, plugin: &str, waited: Duration) {
        if !waited.is_zero() {
            self.pacer_wait_seconds
                .get_or_create(&PluginLabels { plugin: plugin.to_owned() })
                .inc_by(waited.as_secs_f64());
        }
    }

    /// Records a scheduled sync claimed `lag` after it fell due.
    pub fn scheduler_claimed(&self, lag: Duration) {
        self.scheduler_claimed.inc();
        self.scheduler_lag_seconds.observe(lag.as_secs_f64());
    }

    /// Records an outbound webhook delivery attempt.
    pub fn webhook_delivery(&self, outcome: DeliveryOutcome) {
        self.webhook_deliveries.get_or_create(&DeliveryLabels::from(outcome)).inc();
    }

    /// The text exposition, with the gauges read at scrape time set first.
    pub fn render(&self, scrape: &ScrapeTime) -> String {
        self.scheduler_due.set(scrape.due_integrations);
        self.db_pool.get_or_create(&PoolLabels { state: "in_use" }).set(i64::from(scrape.pool_size - scrape.pool_idle));
        self.db_pool.get_or_create(&PoolLabels { state: "idle" }).set(i64::from(scrape.pool_idle));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The gauges read when `/metrics` is scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrapeTime {
    /// Integrations due and not claimed.
    pub due_integrations: i64,
    /// Open database connections.
    pub pool_size: u32,
    /// Of which idle.
    pub pool_idle: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_run_moves_its_counters_and_the_text_names_them() {
        let metrics = Metrics::new();
        let counts = RunCounts { records: 10, succeeded: 8, failed: 2, conflicts: 0, skipped: 0 };
        metrics.run_ended("pull", Trigger::Manual, RunStatus::Partial, &counts, Duration::from_millis(500));
        metrics.outbound_request("hubspot", Some(429), Duration::from_millis(3));
        let text = metrics.render(&ScrapeTime { due_integrations: 3, pool_size: 5, pool_idle: 4 });
        for line in [
            r#"crmhost_sync_runs_total{operation="pull",trigger="manual",status="partial"} 1"#,
            r#"crmhost_sync_records_total{outcome="succeeded"} 8"#,
            r#"crmhost_sync_records_total{outcome="failed"} 2"#,
            r#"crmhost_outbound_requests_total{plugin="hubspot",status="429"} 1"#,
            "crmhost_scheduler_due_integrations 3",
            r#"crmhost_db_pool_connections{state="in_use"} 1"#,
            r#"crmhost_sync_run_records_per_second_sum{operation="pull"} 20.0"#,
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
