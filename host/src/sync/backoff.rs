//! When a record whose push failed is tried again: exponential backoff with a cap, and a limit
//! after which only a change to the record brings it back.

use chrono::{DateTime, Utc};

/// When a record whose push failed is tried again: after `base × 2^(attempts-1)`, at most
/// `cap`; after `max_attempts` failures only a change to the record (which resets the count)
/// brings it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    /// The first delay.
    pub base: std::time::Duration,
    /// The longest delay.
    pub cap: std::time::Duration,
    /// Failures after which automatic retries stop.
    pub max_attempts: i64,
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self {
            base: std::time::Duration::from_secs(60),
            cap: std::time::Duration::from_secs(6 * 3600),
            max_attempts: 10,
        }
    }
}

impl RetryBackoff {
    /// The delay after `attempts` consecutive failures.
    pub fn delay(&self, attempts: i64) -> std::time::Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.base.saturating_mul(1u32 << doublings).min(self.cap)
    }

    /// Whether a record that failed `attempts` times, last at `failed_at`, is due at `now`.
    pub fn due(&self, attempts: i64, failed_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        if attempts == 0 {
            return true;
        }
        if attempts >= self.max_attempts {
            return false;
        }
        let delay = chrono::Duration::from_std(self.delay(attempts)).unwrap_or(chrono::Duration::MAX);
        failed_at + delay <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stop_after_the_limit() {
        let policy = RetryBackoff::default();
        assert_eq!(policy.delay(1), std::time::Duration::from_secs(60));
        assert_eq!(policy.delay(3), std::time::Duration::from_secs(240));
        assert_eq!(policy.delay(40), policy.cap);
        let failed_at = Utc::now();
        assert!(policy.due(0, failed_at, failed_at), "never failed: due at once");
        assert!(!policy.due(1, failed_at, failed_at + chrono::Duration::seconds(59)));
        assert!(policy.due(1, failed_at, failed_at + chrono::Duration::seconds(60)));
        assert!(!policy.due(policy.max_attempts, failed_at, failed_at + chrono::Duration::days(365)));
    }
}
