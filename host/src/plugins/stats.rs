//! [`CallStats`]: cumulative counters of one loaded plugin's calls — how many, how long in all,
//! and how much of that was spent waiting on the CRM (host HTTP) rather than running the guest.
//! Benchmarks print them; a metrics endpoint can expose them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters, updated lock-free by every call.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    call_nanos: AtomicU64,
    http_requests: AtomicU64,
    http_nanos: AtomicU64,
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
    /// Records a finished call.
    pub fn record_call(&self, took: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.call_nanos.fetch_add(nanos(took), Ordering::Relaxed);
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
