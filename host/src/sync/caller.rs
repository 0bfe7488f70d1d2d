//! [`PluginCaller`]: a run's plugin calls with their retry rules — burst rate limits waited out (as
//! long as the CRM asks, up to a minute a time), transient failures retried with backoff, a daily
//! limit (the CRM's, or the operator's cap on it) deferring the run instead. Owned, so a call can
//! run beside the run's own work: a pull fetches its next page while the current one is written.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::plugins::bindings::{AdapterError, RateLimitPolicy};
use crate::plugins::pacing::AccountPacer;
use crate::plugins::{CallError, CallResult};

/// What a run's plugin calls need.
#[derive(Clone)]
pub(super) struct PluginCaller {
    /// The CRM account's pacer (its daily usage decides the operator's cap).
    pub pacer: Option<Arc<AccountPacer>>,
    /// The operator's cap, in percent of the daily allocation.
    pub daily_limit_percent: Option<u8>,
    /// Set when a daily limit stops the run: when to try again (shared with the run).
    pub deferred_until: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl PluginCaller {
    /// Calls the plugin, waiting out burst rate limits and retrying transient failures with
    /// backoff. A daily limit is not waited out: the run is marked to defer.
    pub async fn call<T, F, Fut>(&self, what: &str, mut call: F) -> Result<Result<T, AdapterError>, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = CallResult<T>>,
    {
        const MAX_ATTEMPTS: u32 = 8;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(why) = self.over_daily_cap() {
                self.defer_until(Utc::now() + chrono::Duration::hours(1));
                return Ok(Err(AdapterError::RateLimited(crate::plugins::bindings::RateLimitInfo {
                    message: format!("{why}; the run continues when the allocation allows"),
                    policy: RateLimitPolicy::Daily,
                    retry_after_ms: None,
                })));
            }
            let result = call().await;
            if let Ok(Err(AdapterError::RateLimited(info))) = &result
                && info.policy == RateLimitPolicy::Daily
            {
                // Never spin on a daily limit: come back when the CRM says, else in an hour (a
                // rolling 24-hour allocation frees up gradually; HubSpot's resets at midnight in
                // the account's own time zone, which we do not know).
                let wait = info.retry_after_ms.map_or(chrono::Duration::hours(1), |ms| {
                    chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX).max(60_000))
                });
                self.defer_until(Utc::now() + wait);
                return result;
            }
            let wait = match &result {
                Ok(Err(AdapterError::RateLimited(info))) if info.policy != RateLimitPolicy::Daily => {
                    Duration::from_millis(info.retry_after_ms.unwrap_or(1_000).clamp(100, 60_000))
                }
                Ok(Err(AdapterError::Unavailable(_))) | Err(CallError::Busy) if attempt < 5 => {
                    Duration::from_millis(250 << attempt)
                }
                _ => return result,
            };
            if attempt >= MAX_ATTEMPTS {
                return result;
            }
            tracing::info!(what, attempt, wait_ms = wait.as_millis() as u64, "CRM asked us to wait; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn defer_until(&self, until: DateTime<Utc>) {
        *self.deferred_until.lock().unwrap_or_else(PoisonError::into_inner) = Some(until);
    }

    /// The operator's cap on the account's daily allocation, or a daily limit already hit by
    /// another run: either way nothing more is sent today, and the run defers.
    fn over_daily_cap(&self) -> Option<String> {
        let pacer = self.pacer.as_ref()?;
        let usage = pacer.daily_usage()?;
        let percent = u64::from(self.daily_limit_percent.unwrap_or(100));
        (usage.max > 0 && usage.used.saturating_mul(100) >= usage.max.saturating_mul(percent)).then(|| {
            format!("the CRM account has used {} of its {} daily API requests (cap {percent}%)", usage.used, usage.max)
        })
    }
}
