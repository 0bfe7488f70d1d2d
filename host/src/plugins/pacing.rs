//! Proactive rate-limit pacing per (plugin, CRM account): a token bucket every call for the
//! account draws from before each outbound request, so concurrent runs for one account share one
//! allowance instead of tripping the CRM's limit. The bucket starts from the plugin's declared
//! limits and follows what the CRM reports in its response headers
//! (`X-HubSpot-RateLimit-*`, `Sforce-Limit-Info`); the daily usage it learns lets the sync engine
//! stop at an operator's cap and defer rather than spin.
//!
//! Declared limits are read by scope and window: a scope naming `search` paces only requests to a
//! path ending in `/search`; a scope naming `concurrent` is a concurrency limit (not paced here);
//! a window of an hour or more is a daily allocation; anything else is the request rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::plugins::description::RateLimitDescription;

/// The share of a declared or reported rate the bucket uses: headroom for clock skew between the
/// CRM's window and ours, and for other clients of the same account.
const RATE_SHARE: f64 = 0.9;

/// A token bucket: `burst` tokens at most, refilled at `per_second`.
#[derive(Debug, Clone)]
struct Bucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    /// A bucket that keeps any window of `window` under `requests`: burst + rate × window ≤ requests.
    fn for_limit(requests: u32, window: Duration) -> Self {
        let requests = f64::from(requests.max(1));
        let burst = (requests / 10.0).max(1.0);
        let per_second = ((requests * RATE_SHARE - burst).max(1.0)) / window.as_secs_f64().max(0.001);
        Self { per_second, burst, tokens: burst, refilled: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_second))
    }

    fn retune(&mut self, requests: u32, window: Duration) {
        let fresh = Self::for_limit(requests, window);
        if (fresh.per_second - self.per_second).abs() > f64::EPSILON || (fresh.burst - self.burst).abs() > f64::EPSILON
        {
            self.per_second = fresh.per_second;
            self.burst = fresh.burst;
            self.tokens = self.tokens.min(self.burst);
        }
    }
}

/// Daily API usage as the CRM last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyUsage {
    /// Requests used in the current day (or rolling 24 h).
    pub used: u64,
    /// The allocation.
    pub max: u64,
}

/// How long a reported daily usage is believed: usage of a rolling allocation falls again, and a
/// deferred run must be allowed one request to learn the current figure.
const DAILY_USAGE_FRESH_FOR: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
struct State {
    rate: Option<Bucket>,
    search: Option<Bucket>,
    /// No request before this (after the CRM said the window is spent).
    hold_until: Option<Instant>,
    /// The daily usage and when it was reported.
    daily: Option<(DailyUsage, Instant)>,
}

/// The pacer of one CRM account.
#[derive(Debug)]
pub struct AccountPacer {
    state: Mutex<State>,
}

impl AccountPacer {
    /// A pacer from a plugin's declared limits.
    pub fn new(declared: &[RateLimitDescription]) -> Self {
        let mut state = State { rate: None, search: None, hold_until: None, daily: None };
        for limit in declared {
            let scope = limit.scope.to_ascii_lowercase();
            let window = Duration::from_millis(limit.window_ms);
            if scope.contains("concurrent") || limit.requests == 0 {
                continue;
            }
            if window >= Duration::from_secs(3_600) {
                state.daily = Some((DailyUsage { used: 0, max: u64::from(limit.requests) }, Instant::now()));
            } else if scope.contains("search") {
                state.search = Some(Bucket::for_limit(limit.requests, window));
            } else {
                state.rate = Some(Bucket::for_limit(limit.requests, window));
            }
        }
        Self { state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a request to `path` may go out, and takes its token.
    pub async fn acquire(&self, path: &str) {
        let search = path.trim_end_matches('/').ends_with("/search");
        loop {
            let wait = {
                let mut state = self.lock();
                let now = Instant::now();
                match state.hold_until {
                    Some(until) if until > now => Err(until - now),
                    _ => {
                        state.hold_until = None;
                        let bucket = if search { state.search.as_mut() } else { state.rate.as_mut() };
                        match bucket {
                            Some(bucket) => bucket.take(now),
                            None => Ok(()),
                        }
                    }
                }
            };
            match wait {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait.min(Duration::from_secs(60))).await,
            }
        }
    }

    /// Learns from a response: the rate the CRM reports, how much of the window is left, the daily
    /// usage, and a 429's `Retry-After`.
    pub fn observe(&self, status: u16, headers: &[(String, String)]) {
        let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
        let number = |name: &str| header(name).and_then(|v| v.parse::<u64>().ok());
        let mut state = self.lock();
        let now = Instant::now();
        if let (Some(max), Some(interval)) =
            (number("x-hubspot-ratelimit-max"), number("x-hubspot-ratelimit-interval-milliseconds"))
        {
            let window = Duration::from_millis(interval.max(1));
            let max = u32::try_from(max).unwrap_or(u32::MAX);
            match state.rate.as_mut() {
                Some(bucket) => bucket.retune(max, window),
                None => state.rate = Some(Bucket::for_limit(max, window)),
            }
            // Nearly spent (other clients, or another host process): let a tenth of the window pass.
            if let Some(remaining) = number("x-hubspot-ratelimit-remaining")
                && remaining * 20 < u64::from(max)
            {
                state.hold_until = Some(now + window / 10);
            }
        }
        if let (Some(max), Some(remaining)) =
            (number("x-hubspot-ratelimit-daily"), number("x-hubspot-ratelimit-daily-remaining"))
        {
            state.daily = Some((DailyUsage { used: max.saturating_sub(remaining), max }, now));
        }
        if let Some(info) = header("sforce-limit-info")
            && let Some(usage) = parse_sforce_usage(info)
        {
            state.daily = Some((usage, now));
        }
        if status == 429 {
            let wait = number("retry-after").map_or(Duration::from_secs(1), Duration::from_secs);
            state.hold_until = Some(now + wait.min(Duration::from_secs(60)));
        }
    }

    /// The daily usage last reported (or declared, before any report), unless it is stale.
    pub fn daily_usage(&self) -> Option<DailyUsage> {
        self.lock().daily.filter(|(_, at)| at.elapsed() < DAILY_USAGE_FRESH_FOR).map(|(usage, _)| usage)
    }

    /// The request rate in force (requests per second), for diagnostics.
    pub fn rate_per_second(&self) -> Option<f64> {
        self.lock().rate.as_ref().map(|b| b.per_second)
    }
}

/// `api-usage=18/5000; per-app-api-usage=17/250(appName=x)` → the org's usage.
fn parse_sforce_usage(info: &str) -> Option<DailyUsage> {
    let part = info.split(';').map(str::trim).find_map(|p| p.strip_prefix("api-usage="))?;
    let (used, max) = part.split_once('/')?;
    Some(DailyUsage { used: used.trim().parse().ok()?, max: max.trim().parse().ok()? })
}

/// Every account's pacer in this process, by (plugin, CRM account).
#[derive(Debug, Default)]
pub struct Pacers {
    by_account: Mutex<HashMap<(String, String), Arc<AccountPacer>>>,
}

impl Pacers {
    /// The pacer of an account, made from the declared limits on first use.
    pub fn for_account(&self, slug: &str, account: &str, declared: &[RateLimitDescription]) -> Arc<AccountPacer> {
        self.by_account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((slug.to_owned(), account.to_owned()))
            .or_insert_with(|| Arc::new(AccountPacer::new(declared)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(scope: &str, requests: u32, window_ms: u64) -> RateLimitDescription {
        RateLimitDescription { scope: scope.to_owned(), requests, window_ms, notes: String::new() }
    }

    #[test]
    fn a_bucket_never_lets_a_window_exceed_its_limit() {
        // Worst case: a full burst, then the refill rate for a whole window.
        let b = Bucket::for_limit(100, Duration::from_secs(10));
        assert!(b.burst + b.per_second * 10.0 <= 100.0, "{b:?}");
        assert!(b.per_second > 7.0, "{b:?}");
    }

    #[test]
    fn declared_limits_are_read_by_scope_and_window() {
        let p = AccountPacer::new(&[
            limit("app-per-account", 100, 10_000),
            limit("search", 4, 1_000),
            limit("org-daily", 100_000, 86_400_000),
            limit("org-concurrent-long", 25, 20_000),
        ]);
        let s = p.lock();
        assert!(s.rate.is_some() && s.search.is_some());
        assert_eq!(s.daily.map(|d| d.0), Some(DailyUsage { used: 0, max: 100_000 }));
    }

    #[test]
    fn headers_retune_the_rate_and_report_daily_usage() {
        let p = AccountPacer::new(&[limit("app", 100, 10_000)]);
        let h = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        p.observe(
            200,
            &h(&[
                ("x-hubspot-ratelimit-max", "190"),
                ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
                ("x-hubspot-ratelimit-remaining", "150"),
                ("x-hubspot-ratelimit-daily", "1000"),
                ("x-hubspot-ratelimit-daily-remaining", "400"),
            ]),
        );
        assert!(p.rate_per_second().unwrap() > 15.0);
        assert_eq!(p.daily_usage(), Some(DailyUsage { used: 600, max: 1000 }));
        p.observe(200, &h(&[("sforce-limit-info", "api-usage=25/5000; per-app-api-usage=17/250(appName=x)")]));
        assert_eq!(p.daily_usage(), Some(DailyUsage { used: 25, max: 5000 }));
    }

    #[tokio::test]
    async fn acquiring_waits_once_the_burst_is_spent() {
        let p = AccountPacer::new(&[limit("app", 20, 1_000)]);
        let started = Instant::now();
        for _ in 0..6 {
            p.acquire("/crm/v3/objects/contacts").await;
        }
        // 2 in the burst, then ~16/s: four more take about a quarter of a second.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(150), "{took:?}");
        // Search has no bucket here, so it does not wait.
        let started = Instant::now();
        p.acquire("/crm/v3/objects/contacts/search").await;
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
