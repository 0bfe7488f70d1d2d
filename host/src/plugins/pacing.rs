//! Proactive rate-limit pacing per (plugin, CRM account): a token bucket every call for the
//! account draws from before each outbound request, so concurrent runs for one account share one
//! allowance instead of tripping the CRM's limit. The bucket starts from the plugin's declared
//! limits and follows what the CRM reports in the response headers the plugin declared
//! (`rate-limit-headers`: which header carries the window's limit, what is left, the daily usage,
//! …), so the pacer knows no CRM by name; the daily usage it learns lets the sync engine stop at
//! an operator's cap and defer rather than spin. A 429's `Retry-After` is always obeyed.
//!
//! Declared limits are read by scope and window: a scope naming `search` paces only requests to a
//! path ending in `/search`; a scope naming `concurrent` is a concurrency limit (not paced here);
//! a window of an hour or more is a daily allocation; anything else is the request rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::plugins::description::{PluginDescription, RateLimitDescription, RateLimitHeader, RateLimitMeasure};

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
    /// The declared request rate (requests, window), for headers that report a limit but no window.
    declared_rate: Option<(u32, Duration)>,
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
    headers: Vec<RateLimitHeader>,
}

impl AccountPacer {
    /// A pacer from a plugin's declared limits and the response headers that report usage.
    pub fn new(declared: &[RateLimitDescription], headers: &[RateLimitHeader]) -> Self {
        let mut state = State { rate: None, declared_rate: None, search: None, hold_until: None, daily: None };
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
                state.declared_rate = Some((limit.requests, window));
            }
        }
        Self { state: Mutex::new(state), headers: headers.to_vec() }
    }

    /// Whether `observe` reads this response header (declared, or `Retry-After`).
    pub fn reads_header(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("retry-after") || self.headers.iter().any(|h| h.name.eq_ignore_ascii_case(name))
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
        let reported = Reported::read(&self.headers, headers);
        let mut state = self.lock();
        let now = Instant::now();
        let window = reported.window_ms.map(|ms| Duration::from_millis(ms.max(1)));
        if let Some(limit) = reported.window_limit
            && let Some(window) = window.or(state.declared_rate.map(|(_, w)| w))
        {
            let limit = u32::try_from(limit).unwrap_or(u32::MAX);
            match state.rate.as_mut() {
                Some(bucket) => bucket.retune(limit, window),
                None => state.rate = Some(Bucket::for_limit(limit, window)),
            }
        }
        let limit = reported.window_limit.or(state.declared_rate.map(|(requests, _)| u64::from(requests)));
        if let (Some(remaining), Some(limit)) = (reported.window_remaining, limit)
            && remaining * 20 < limit
        {
            // Nearly spent (other clients, or another host process): wait for the reset when the
            // CRM says when it is, else let a tenth of the window pass.
            let wait = match reported.window_reset_seconds {
                Some(seconds) => Duration::from_secs(seconds),
                None => window.or(state.declared_rate.map(|(_, w)| w)).unwrap_or(Duration::from_secs(1)) / 10,
            };
            state.hold_until = Some(now + wait.min(Duration::from_secs(60)));
        }
        if let Some(usage) = reported.daily() {
            state.daily = Some((usage, now));
        }
        if status == 429 {
            let wait = reported.retry_after_seconds.map_or(Duration::from_secs(1), Duration::from_secs);
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

/// What one response's declared headers reported.
#[derive(Debug, Default, PartialEq, Eq)]
struct Reported {
    window_limit: Option<u64>,
    window_remaining: Option<u64>,
    window_ms: Option<u64>,
    window_reset_seconds: Option<u64>,
    daily_limit: Option<u64>,
    daily_remaining: Option<u64>,
    daily_usage: Option<DailyUsage>,
    retry_after_seconds: Option<u64>,
}

impl Reported {
    /// Reads the declared headers (a value that does not parse is ignored, never fatal).
    fn read(declared: &[RateLimitHeader], headers: &[(String, String)]) -> Self {
        let value = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
        let mut reported = Self { retry_after_seconds: value("retry-after").and_then(number), ..Self::default() };
        for header in declared {
            let Some(raw) = value(&header.name) else { continue };
            let Some(text) = (match &header.item {
                Some(item) => list_item(raw, item),
                None => Some(raw),
            }) else {
                continue;
            };
            let slot = match header.measure {
                RateLimitMeasure::WindowLimit => &mut reported.window_limit,
                RateLimitMeasure::WindowRemaining => &mut reported.window_remaining,
                RateLimitMeasure::WindowMs => &mut reported.window_ms,
                RateLimitMeasure::WindowResetSeconds => &mut reported.window_reset_seconds,
                RateLimitMeasure::DailyLimit => &mut reported.daily_limit,
                RateLimitMeasure::DailyRemaining => &mut reported.daily_remaining,
                RateLimitMeasure::DailyUsage => {
                    reported.daily_usage = used_of(text).or(reported.daily_usage);
                    continue;
                }
            };
            *slot = number(text).or(*slot);
        }
        reported
    }

    /// Today's usage: as reported directly, else from the allowance and what is left.
    fn daily(&self) -> Option<DailyUsage> {
        self.daily_usage.or(match (self.daily_limit, self.daily_remaining) {
            (Some(max), Some(remaining)) => Some(DailyUsage { used: max.saturating_sub(remaining), max }),
            _ => None,
        })
    }
}

/// A whole number of requests, milliseconds or seconds (a fractional second rounds up).
fn number(text: &str) -> Option<u64> {
    let text = text.trim();
    text.parse::<u64>().ok().or_else(|| {
        let value = text.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)?;
        Some(value.ceil().min(u64::MAX as f64) as u64)
    })
}

/// `key`'s value in a `key=value; key=value` (or `,`-separated) list.
fn list_item<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
    raw.split([';', ',']).find_map(|part| {
        let (name, value) = part.split_once('=')?;
        name.trim().eq_ignore_ascii_case(key).then_some(value.trim())
    })
}

/// `25/5000` (anything after the allowance, like `(appName=x)`, ignored).
fn used_of(text: &str) -> Option<DailyUsage> {
    let (used, max) = text.split_once('/')?;
    let max: String = max.trim().chars().take_while(char::is_ascii_digit).collect();
    Some(DailyUsage { used: used.trim().parse().ok()?, max: max.parse().ok()? })
}

/// Every account's pacer in this process, by (plugin, CRM account).
#[derive(Debug, Default)]
pub struct Pacers {
    by_account: Mutex<HashMap<(String, String), Arc<AccountPacer>>>,
}

impl Pacers {
    /// The pacer of an account, made from the plugin's declared limits and headers on first use.
    pub fn for_account(&self, account: &str, plugin: &PluginDescription) -> Arc<AccountPacer> {
        self.by_account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((plugin.slug.as_str().to_owned(), account.to_owned()))
            .or_insert_with(|| Arc::new(AccountPacer::new(&plugin.rate_limits, &plugin.rate_limit_headers)))
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
        let p = AccountPacer::new(
            &[
                limit("app-per-account", 100, 10_000),
                limit("search", 4, 1_000),
                limit("org-daily", 100_000, 86_400_000),
                limit("org-concurrent-long", 25, 20_000),
            ],
            &[],
        );
        let s = p.lock();
        assert!(s.rate.is_some() && s.search.is_some());
        assert_eq!(s.daily.map(|d| d.0), Some(DailyUsage { used: 0, max: 100_000 }));
    }

    fn header(name: &str, measure: RateLimitMeasure, item: Option<&str>) -> RateLimitHeader {
        RateLimitHeader { name: name.to_owned(), measure, item: item.map(str::to_owned) }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn declared_headers_retune_the_rate_and_report_daily_usage() {
        use RateLimitMeasure::*;
        let declared = [
            header("x-acme-max", WindowLimit, None),
            header("x-acme-interval-ms", WindowMs, None),
            header("x-acme-remaining", WindowRemaining, None),
            header("x-acme-daily", DailyLimit, None),
            header("x-acme-daily-remaining", DailyRemaining, None),
            header("x-acme-usage", DailyUsage, Some("api-usage")),
        ];
        let p = AccountPacer::new(&[limit("app", 100, 10_000)], &declared);
        p.observe(
            200,
            &h(&[
                ("X-Acme-Max", "190"),
                ("x-acme-interval-ms", "10000"),
                ("x-acme-remaining", "150"),
                ("x-acme-daily", "1000"),
                ("x-acme-daily-remaining", "400"),
            ]),
        );
        assert!(p.rate_per_second().unwrap() > 15.0);
        assert_eq!(p.daily_usage(), Some(super::DailyUsage { used: 600, max: 1000 }));
        p.observe(200, &h(&[("x-acme-usage", "api-usage=25/5000; per-app-api-usage=17/250(appName=x)")]));
        assert_eq!(p.daily_usage(), Some(super::DailyUsage { used: 25, max: 5000 }));
        assert!(p.reads_header("X-ACME-USAGE") && p.reads_header("retry-after") && !p.reads_header("x-other"));
    }

    #[test]
    fn undeclared_headers_are_not_read_and_bad_values_are_ignored() {
        let p = AccountPacer::new(&[limit("app", 100, 10_000)], &[]);
        let before = p.rate_per_second();
        p.observe(200, &h(&[("x-hubspot-ratelimit-max", "5"), ("x-hubspot-ratelimit-interval-milliseconds", "10000")]));
        assert_eq!(p.rate_per_second(), before, "nothing was declared, so nothing is read");
        let declared = [header("x-limit", RateLimitMeasure::WindowLimit, None)];
        let p = AccountPacer::new(&[limit("app", 100, 10_000)], &declared);
        p.observe(200, &h(&[("x-limit", "lots")]));
        assert_eq!(p.rate_per_second(), before);
    }

    #[test]
    fn a_spent_window_holds_until_the_reported_reset() {
        use RateLimitMeasure::*;
        let declared =
            [header("x-ratelimit-limit", WindowLimit, None), header("x-ratelimit-remaining", WindowRemaining, None)];
        let mut with_reset = declared.to_vec();
        with_reset.push(header("x-ratelimit-reset", WindowResetSeconds, None));
        let p = AccountPacer::new(&[limit("app", 80, 2_000)], &with_reset);
        p.observe(200, &h(&[("x-ratelimit-limit", "80"), ("x-ratelimit-remaining", "1"), ("x-ratelimit-reset", "2")]));
        let hold = p.lock().hold_until.expect("nearly spent").saturating_duration_since(Instant::now());
        assert!(hold > Duration::from_millis(1_500) && hold <= Duration::from_secs(2), "{hold:?}");
        // Without a reset header: a tenth of the (declared) window.
        let p = AccountPacer::new(&[limit("app", 80, 2_000)], &declared);
        p.observe(200, &h(&[("x-ratelimit-limit", "80"), ("x-ratelimit-remaining", "3")]));
        let hold = p.lock().hold_until.expect("nearly spent").saturating_duration_since(Instant::now());
        assert!(hold <= Duration::from_millis(200) && hold > Duration::from_millis(100), "{hold:?}");
    }

    #[test]
    fn list_items_and_usage_parse_tolerantly() {
        assert_eq!(list_item("a=1; api-usage = 25/5000 ,b=2", "API-USAGE"), Some("25/5000"));
        assert_eq!(list_item("a=1", "b"), None);
        assert_eq!(used_of("17/250(appName=x)"), Some(DailyUsage { used: 17, max: 250 }));
        assert_eq!(used_of("x/5"), None);
        assert_eq!(number("1.2"), Some(2));
        assert_eq!(number("-1"), None);
    }

    #[tokio::test]
    async fn acquiring_waits_once_the_burst_is_spent() {
        let p = AccountPacer::new(&[limit("app", 20, 1_000)], &[]);
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
