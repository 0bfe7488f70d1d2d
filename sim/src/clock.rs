//! The emulators' clock: real time by default, or set and advanced by tests (and the admin
//! endpoint) so timestamps are deterministic, equal when a test wants them equal, and tokens can
//! be made to expire without waiting.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// A clock that can be frozen, set and advanced.
#[derive(Debug, Default)]
pub struct Clock {
    manual: Mutex<Option<DateTime<Utc>>>,
}

impl Clock {
    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.manual.lock().map(|m| *m).unwrap_or(None).unwrap_or_else(Utc::now)
    }

    /// Freezes the clock at `at`; it stays there until set, advanced or released.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut manual) = self.manual.lock() {
            *manual = Some(at);
        }
    }

    /// Moves the clock forward (freezing it at the new instant if it was running).
    pub fn advance(&self, by: Duration) {
        let next = self.now() + by;
        self.set(next);
    }

    /// Returns to real time.
    pub fn release(&self) {
        if let Ok(mut manual) = self.manual.lock() {
            *manual = None;
        }
    }

    /// Whether the clock is frozen.
    pub fn is_manual(&self) -> bool {
        self.manual.lock().map(|m| m.is_some()).unwrap_or(false)
    }
}
