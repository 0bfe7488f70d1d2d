//! [`NotifyOptions`]: the operator's settings for outbound webhooks (`[outbound_webhooks]` in the
//! configuration file), and the retry schedule they imply.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// How deliveries are made and retried.
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// Whether endpoints may be on private, loopback or link-local addresses (off: a workspace
    /// admin cannot make crmhost call into the operator's network).
    pub allow_private_addresses: bool,
    /// Whether endpoints may use plain `http` (off: `https` only).
    pub allow_http: bool,
    /// The first retry's wait; each further one doubles, up to `retry_cap`.
    pub retry_base: Duration,
    /// The longest wait between attempts.
    pub retry_cap: Duration,
    /// How long after an event its delivery is retried before it is marked failed.
    pub give_up_after: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// How long finished deliveries stay in the log.
    pub retention: Duration,
    /// Most endpoints per workspace.
    pub max_endpoints_per_workspace: i64,
    /// How long a rotated-out secret still signs, unless the rotation says otherwise.
    pub rotation_overlap: Duration,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            allow_http: false,
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
            attempt_timeout: Duration::from_secs(10),
            retention: Duration::from_secs(30 * 24 * 3600),
            max_endpoints_per_workspace: 20,
            rotation_overlap: Duration::from_secs(24 * 3600),
        }
    }
}

impl NotifyOptions {
    /// When to try a delivery again after its `attempts`-th failed attempt at `now`: the wait
    /// doubles from `retry_base` up to `retry_cap`, stretched by `jitter` (0.8 to 1.2, so many
    /// failed deliveries do not retry in lockstep), and the last attempt is made at `give_up_at`.
    /// `None`: retries are over.
    pub fn next_attempt(
        &self,
        attempts: i64,
        now: DateTime<Utc>,
        give_up_at: DateTime<Utc>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        if now >= give_up_at {
            return None;
        }
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let wait = self.retry_base.saturating_mul(2u32.saturating_pow(doublings)).min(self.retry_cap);
        let wait = wait.mul_f64(jitter.clamp(0.8, 1.2));
        let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
        Some(at.min(give_up_at))
    }
}

/// `[outbound_webhooks]` of the configuration file; see [`NotifyOptions`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFileSettings {
    /// Endpoints on private, loopback or link-local addresses.
    pub allow_private_addresses: Option<bool>,
    /// Endpoints over plain `http`.
    pub allow_http: Option<bool>,
    /// Milliseconds before the first retry.
    pub retry_base_ms: Option<u64>,
    /// The longest wait between attempts, in seconds.
    pub retry_cap_secs: Option<u64>,
    /// Seconds after an event when retries stop.
    pub give_up_after_secs: Option<u64>,
    /// Seconds one attempt may take.
    pub attempt_timeout_secs: Option<u64>,
    /// Days finished deliveries stay in the log.
    pub retention_days: Option<u64>,
    /// Most endpoints per workspace.
    pub max_endpoints_per_workspace: Option<i64>,
}

impl NotifyFileSettings {
    /// The options, defaults filled in and ranges checked.
    pub fn resolve(&self) -> Result<NotifyOptions, String> {
        let d = NotifyOptions::default();
        let within = |v: Option<u64>, range: std::ops::RangeInclusive<u64>, name: &str| match v {
            Some(n) if !range.contains(&n) => {
                Err(format!("[outbound_webhooks] {name}: use {} to {}", range.start(), range.end()))
            }
            other => Ok(other),
        };
        let week = 7 * 24 * 3600;
        Ok(NotifyOptions {
            allow_private_addresses: self.allow_private_addresses.unwrap_or(d.allow_private_addresses),
            allow_http: self.allow_http.unwrap_or(d.allow_http),
            retry_base: within(self.retry_base_ms, 10..=3_600_000, "retry_base_ms")?
                .map_or(d.retry_base, Duration::from_millis),
            retry_cap: within(self.retry_cap_secs, 1..=86_400, "retry_cap_secs")?
                .map_or(d.retry_cap, Duration::from_secs),
            give_up_after: within(self.give_up_after_secs, 1..=week, "give_up_after_secs")?
                .map_or(d.give_up_after, Duration::from_secs),
            attempt_timeout: within(self.attempt_timeout_secs, 1..=60, "attempt_timeout_secs")?
                .map_or(d.attempt_timeout, Duration::from_secs),
            retention: within(self.retention_days, 1..=365, "retention_days")?
                .map_or(d.retention, |days| Duration::from_secs(days * 24 * 3600)),
            max_endpoints_per_workspace: match self.max_endpoints_per_workspace {
                None => d.max_endpoints_per_workspace,
                Some(n) if (1..=1_000).contains(&n) => n,
                Some(_) => return Err("[outbound_webhooks] max_endpoints_per_workspace: use 1 to 1000".to_owned()),
            },
            rotation_overlap: d.rotation_overlap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn retries_double_up_to_the_cap_and_end_with_an_attempt_at_the_deadline() {
        let o = NotifyOptions::default();
        let give_up = at(24 * 3600);
        let waits: Vec<i64> =
            (1..=9).map(|n| (o.next_attempt(n, at(0), give_up, 1.0).unwrap() - at(0)).num_seconds()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        // Late in the day the next wait would pass the deadline: one last attempt at it.
        assert_eq!(o.next_attempt(12, at(24 * 3600 - 100), give_up, 1.0), Some(give_up));
        assert_eq!(o.next_attempt(13, give_up, give_up, 1.0), None);
        // Jitter stretches within 0.8 to 1.2 only.
        assert_eq!(o.next_attempt(1, at(0), give_up, 5.0), Some(at(36)));
        assert_eq!(o.next_attempt(1, at(0), give_up, 0.0), Some(at(24)));
    }

    #[test]
    fn the_whole_schedule_fits_the_day_with_about_thirty_attempts() {
        let o = NotifyOptions::default();
        let (mut now, give_up, mut attempts) = (at(0), at(24 * 3600), 1);
        while let Some(next) = o.next_attempt(attempts, now, give_up, 1.0) {
            now = next;
            attempts += 1;
        }
        assert_eq!(now, give_up);
        assert!((25..=35).contains(&attempts), "{attempts} attempts");
    }

    #[test]
    fn out_of_range_settings_are_refused_by_name() {
        let bad = NotifyFileSettings { retry_base_ms: Some(1), ..Default::default() };
        assert!(bad.resolve().unwrap_err().contains("retry_base_ms"));
        let fine = NotifyFileSettings { retry_base_ms: Some(50), allow_http: Some(true), ..Default::default() };
        let o = fine.resolve().unwrap();
        assert_eq!((o.retry_base, o.allow_http), (Duration::from_millis(50), true));
    }
}
