//! How often an integration syncs by itself, and when its next run is due.
//!
//! Written in settings as `"manual"`, `"realtime"`, `"hourly"`, `"daily"` (00:00 UTC),
//! `{"every_minutes": N}` (N ≥ 1) or `{"daily_at": "HH:MM"}` (UTC).

use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value as Json, json};

/// The schedule of an integration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Frequency {
    /// Only when a user asks.
    #[default]
    Manual,
    /// On webhooks from the CRM, with a short-interval incremental pull as the source of truth.
    Realtime,
    /// Every N minutes.
    EveryMinutes(u32),
    /// At the top of every hour.
    Hourly,
    /// Once a day at this UTC time.
    DailyAt(NaiveTime),
}

/// The longest interval accepted (a week): longer is not a schedule anyone means.
const MAX_MINUTES: u32 = 7 * 24 * 60;

impl Frequency {
    /// Reads a settings value; the message says what is accepted.
    pub fn parse(value: &Json) -> Result<Self, String> {
        const ACCEPTED: &str = "frequency must be \"manual\", \"realtime\", \"hourly\", \"daily\", \
                                {\"every_minutes\": N} (N from 1 to 10080) or {\"daily_at\": \"HH:MM\"} (UTC)";
        match value {
            Json::String(s) => match s.as_str() {
                "manual" => Ok(Self::Manual),
                "realtime" => Ok(Self::Realtime),
                "hourly" => Ok(Self::Hourly),
                "daily" => Ok(Self::DailyAt(NaiveTime::MIN)),
                other => Err(format!("{ACCEPTED}; got \"{other}\"")),
            },
            Json::Object(o) if o.len() == 1 => {
                if let Some(n) = o.get("every_minutes") {
                    let n = n.as_u64().ok_or_else(|| format!("{ACCEPTED}; every_minutes must be a whole number"))?;
                    if !(1..=u64::from(MAX_MINUTES)).contains(&n) {
                        return Err(format!("every_minutes must be from 1 to {MAX_MINUTES}, got {n}"));
                    }
                    return Ok(Self::EveryMinutes(n as u32));
                }
                if let Some(at) = o.get("daily_at") {
                    let text = at.as_str().unwrap_or_default().trim_end_matches('Z');
                    let time = NaiveTime::parse_from_str(text, "%H:%M")
                        .map_err(|_| format!("daily_at must be a UTC time \"HH:MM\", got {at}"))?;
                    return Ok(Self::DailyAt(time));
                }
                Err(format!("{ACCEPTED}; got {value}"))
            }
            other => Err(format!("{ACCEPTED}; got {other}")),
        }
    }

    /// As written in settings.
    pub fn to_json(self) -> Json {
        match self {
            Self::Manual => json!("manual"),
            Self::Realtime => json!("realtime"),
            Self::Hourly => json!("hourly"),
            Self::EveryMinutes(n) => json!({ "every_minutes": n }),
            Self::DailyAt(t) => json!({ "daily_at": t.format("%H:%M").to_string() }),
        }
    }

    /// Whether the scheduler runs it at all.
    pub fn is_scheduled(self) -> bool {
        self != Self::Manual
    }

    /// When the run after one due at `due` (or, for a new schedule, `None`) is due, seen at
    /// `now`. Interval schedules keep their rhythm but never queue up missed runs: a run that
    /// overran its interval is followed one interval after `now`. `realtime_poll` is the
    /// incremental pull interval that backs a real-time integration.
    pub fn next_due(
        self,
        due: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        realtime_poll: Duration,
    ) -> Option<DateTime<Utc>> {
        let every = |interval: Duration| match due {
            Some(due) if due + interval > now => due + interval,
            _ => now + interval,
        };
        match self {
            Self::Manual => None,
            Self::Realtime => Some(every(realtime_poll)),
            Self::EveryMinutes(n) => Some(every(Duration::minutes(i64::from(n)))),
            Self::Hourly => {
                let hour = now.with_minute(0)?.with_second(0)?.with_nanosecond(0)?;
                Some(hour + Duration::hours(1))
            }
            Self::DailyAt(time) => {
                let today = now.date_naive().and_time(time).and_utc();
                Some(if today > now { today } else { today + Duration::days(1) })
            }
        }
    }

    /// When a newly set schedule first runs: interval and real-time schedules at once (so a
    /// user sees it work), clock schedules at their next time.
    pub fn first_due(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Manual => None,
            Self::Realtime | Self::EveryMinutes(_) => Some(now),
            Self::Hourly | Self::DailyAt(_) => self.next_due(None, now, Duration::zero()),
        }
    }
}

impl Serialize for Frequency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Frequency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Json::deserialize(deserializer)?;
        Self::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_spelling_parses_and_round_trips() {
        for text in [
            json!("manual"),
            json!("realtime"),
            json!("hourly"),
            json!({"every_minutes": 15}),
            json!({"daily_at": "02:30"}),
        ] {
            let f = Frequency::parse(&text).unwrap();
            assert_eq!(f.to_json(), text);
        }
        assert_eq!(Frequency::parse(&json!("daily")).unwrap().to_json(), json!({"daily_at": "00:00"}));
        for bad in [
            json!({"every_minutes": 0}),
            json!({"every_minutes": 1.5}),
            json!({"daily_at": "25:00"}),
            json!("weekly"),
            json!(5),
        ] {
            assert!(Frequency::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_runs_keep_rhythm_without_piling_up() {
        let poll = Duration::minutes(1);
        let f = Frequency::EveryMinutes(10);
        let due = at("2026-01-01T10:00:00Z");
        assert_eq!(f.next_due(Some(due), at("2026-01-01T10:00:05Z"), poll), Some(at("2026-01-01T10:10:00Z")));
        // Overran by 25 minutes: one run, ten minutes from now, not three back to back.
        assert_eq!(f.next_due(Some(due), at("2026-01-01T10:25:00Z"), poll), Some(at("2026-01-01T10:35:00Z")));
        assert_eq!(
            Frequency::Hourly.next_due(None, at("2026-01-01T10:25:00Z"), poll),
            Some(at("2026-01-01T11:00:00Z"))
        );
        let daily = Frequency::parse(&json!({"daily_at": "02:30"})).unwrap();
        assert_eq!(daily.next_due(None, at("2026-01-01T01:00:00Z"), poll), Some(at("2026-01-01T02:30:00Z")));
        assert_eq!(daily.next_due(None, at("2026-01-01T02:30:00Z"), poll), Some(at("2026-01-02T02:30:00Z")));
        assert_eq!(Frequency::Manual.next_due(Some(due), due, poll), None);
        assert_eq!(Frequency::Realtime.first_due(due), Some(due));
    }
}
