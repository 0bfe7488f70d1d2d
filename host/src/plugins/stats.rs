//! [`CallStats`]: cumulative counters of one loaded plugin's calls — how many, how long in all,
//! and how much of that was spent waiting on the CRM (host HTTP) rather than running the guest —
//! and the server's [`Metrics`] it reports each call, request and pacer wait to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics::Metrics;

use super::error::CallError;

/// Counters, updated lock-free by every call.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    call_nanos: AtomicU64,
    http_requests: AtomicU64,
    http_nanos: AtomicU64,
    /// The plugin's slug and the server's metrics; `None` for calls nobody watches (the probe
    /// that loads a plugin).
    observed: Option<(Arc<str>, Arc<Metrics>)>,
}

/// A snapshot of [`CallStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallStatsSnapshot {
    /// Calls finished.
    pub calls: u64,
    /// Their total duration (instantiation included, slot waits excluded).
    pub call_time: Duration,
    /// Outbound requests sent through `http.send`.
    pub http_requests: u64,
    /// Time spent in those requests (the CRM and the network).
    pub http_time: Duration,
}

impl CallStatsSnapshot {
    /// Time not spent in HTTP: the guest's own work plus instantiation and host glue.
    pub fn plugin_time(&self) -> Duration {
        self.call_time.saturating_sub(self.http_time)
    }

    /// The difference between two snapshots.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            calls: self.calls - earlier.calls,
            call_time: self.call_time.saturating_sub(earlier.call_time),
            http_requests: self.http_requests - earlier.http_requests,
            http_time: self.http_time.saturating_sub(earlier.http_time),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl CallStats {
    /// Counters for the plugin `slug`, reporting to `metrics`.
    pub fn observed(slug: Arc<str>, metrics: Option<Arc<Metrics>>) -> Self {
        Self { observed: metrics.map(|m| (slug, m)), ..Self::default() }
    }

    /// Records a finished call of `operation`.
    pub fn record_call(&self, operation: &'static str, result: Result<(), &CallError>, took: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.call_nanos.fetch_add(nanos(took), Ordering::Relaxed);
        if let Some((slug, metrics)) = &self.observed {
            metrics.plugin_call(slug, operation, result, took);
        }
    }

    /// Records one request sent to the CRM: the status it got (`None`: no answer) and its time.
    pub fn record_outbound(&self, status: Option<u16>, took: Duration) {
        if let Some((slug, metrics)) = &self.observed {
            metrics.outbound_request(slug, status, took);
        }
    }

    /// Records time a request waited for the account's rate budget.
    pub fn record_pacer_wait(&self, waited: Duration) {
        if let Some((slug, metrics)) = &self.observed {
            metrics.pacer_waited(slug, waited);
        }
    }

    /// Records one outbound request.
    pub fn record_http(&self, took: Duration) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
        self.http_nanos.fetch_add(nanos(took), Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> CallStatsSnapshot {
        CallStatsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            call_time: Duration::from_nanos(self.call_nanos.load(Ordering::Relaxed)),
            http_requests: self.http_requests.load(Ordering::Relaxed),
            http_time: Duration::from_nanos(self.http_nanos.load(Ordering::Relaxed)),
        }
    }
}
