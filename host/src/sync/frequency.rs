//! How often an integration syncs by itself, and when its next run is due.
//!
//! Written in settings as `"manual"`, `"realtime"`, `"hourly"` (at :00 UTC), `"daily"` (00:00 UTC),
//! `{"every_minutes": N}` (N ≥ 1), `{"hourly_at": M, "time_zone"?: "Europe/Paris"}` (minute M of
//! every hour) or `{"daily_at": "HH:MM", "time_zone"?: "Europe/Paris"}`. Clock schedules keep to
//! their zone's wall clock across daylight-saving changes (a time skipped in spring runs an hour
//! later on the new clock, 02:30 at 03:30; a time repeated in autumn runs once, the first time).

use chrono::offset::{LocalResult, Offset};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value as Json, json};

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
    /// At this minute of every hour, on the zone's clock.
    HourlyAt {
        /// 0 to 59.
        minute: u32,
        /// The IANA time zone.
        zone: Tz,
    },
    /// Once a day at this time of the zone's day.
    DailyAt {
        /// The wall-clock time.
        time: NaiveTime,
        /// The IANA time zone.
        zone: Tz,
    },
}

/// The longest interval accepted (a week): longer is not a schedule anyone means.
const MAX_MINUTES: u32 = 7 * 24 * 60;

const ACCEPTED: &str = "frequency must be \"manual\", \"realtime\", \"hourly\", \"daily\", \
                        {\"every_minutes\": N} (N from 1 to 10080), {\"hourly_at\": M} (M from 0 to 59) or \
                        {\"daily_at\": \"HH:MM\"}, the last two with an optional \"time_zone\" (IANA, default UTC)";

/// The zone an object names (`time_zone`), UTC when it names none.
fn zone_of(o: &Map<String, Json>) -> Result<Tz, String> {
    match o.get("time_zone") {
        None => Ok(Tz::UTC),
        Some(Json::String(name)) => name
            .parse::<Tz>()
            .map_err(|_| format!("time_zone \"{name}\" is not an IANA time zone (e.g. \"Europe/Paris\", \"UTC\")")),
        Some(other) => Err(format!("time_zone must be an IANA time zone name, got {other}")),
    }
}

impl Frequency {
    /// Reads a settings value; the message says what is accepted.
    pub fn parse(value: &Json) -> Result<Self, String> {
        match value {
            Json::String(s) => match s.as_str() {
                "manual" => Ok(Self::Manual),
                "realtime" => Ok(Self::Realtime),
                "hourly" => Ok(Self::HourlyAt { minute: 0, zone: Tz::UTC }),
                "daily" => Ok(Self::DailyAt { time: NaiveTime::MIN, zone: Tz::UTC }),
                other => Err(format!("{ACCEPTED}; got \"{other}\"")),
            },
            Json::Object(o) => {
                Self::parse_object(o).map_err(|e| if e.is_empty() { format!("{ACCEPTED}; got {value}") } else { e })
            }
            other => Err(format!("{ACCEPTED}; got {other}")),
        }
    }

    /// The object forms; an empty message means "none of them".
    fn parse_object(o: &Map<String, Json>) -> Result<Self, String> {
        let keys = |allowed: &[&str]| o.keys().all(|k| allowed.contains(&k.as_str()));
        if let Some(n) = o.get("every_minutes") {
            if o.len() != 1 {
                return Err(String::new());
            }
            let n = n.as_u64().ok_or_else(|| format!("{ACCEPTED}; every_minutes must be a whole number"))?;
            if !(1..=u64::from(MAX_MINUTES)).contains(&n) {
                return Err(format!("every_minutes must be from 1 to {MAX_MINUTES}, got {n}"));
            }
            return Ok(Self::EveryMinutes(n as u32));
        }
        if let Some(m) = o.get("hourly_at") {
            if !keys(&["hourly_at", "time_zone"]) {
                return Err(String::new());
            }
            let minute = m
                .as_u64()
                .filter(|m| *m < 60)
                .ok_or_else(|| format!("hourly_at must be a minute from 0 to 59, got {m}"))?;
            return Ok(Self::HourlyAt { minute: minute as u32, zone: zone_of(o)? });
        }
        if let Some(at) = o.get("daily_at") {
            if !keys(&["daily_at", "time_zone"]) {
                return Err(String::new());
            }
            let text = at.as_str().unwrap_or_default().trim_end_matches('Z');
            let time = NaiveTime::parse_from_str(text, "%H:%M")
                .map_err(|_| format!("daily_at must be a time \"HH:MM\", got {at}"))?;
            return Ok(Self::DailyAt { time, zone: zone_of(o)? });
        }
        Err(String::new())
    }

    /// As written in settings.
    pub fn to_json(self) -> Json {
        let with_zone = |mut value: Json, zone: Tz| {
            if zone != Tz::UTC {
                value["time_zone"] = json!(zone.name());
            }
            value
        };
        match self {
            Self::Manual => json!("manual"),
            Self::Realtime => json!("realtime"),
            Self::HourlyAt { minute: 0, zone: Tz::UTC } => json!("hourly"),
            Self::EveryMinutes(n) => json!({ "every_minutes": n }),
            Self::HourlyAt { minute, zone } => with_zone(json!({ "hourly_at": minute }), zone),
            Self::DailyAt { time, zone } => with_zone(json!({ "daily_at": time.format("%H:%M").to_string() }), zone),
        }
    }

    /// Whether the scheduler runs it at all.
    pub fn is_scheduled(self) -> bool {
        self != Self::Manual
    }

    /// The zone of a clock schedule (UTC for the others).
    pub fn zone(self) -> Tz {
        match self {
            Self::HourlyAt { zone, .. } | Self::DailyAt { zone, .. } => zone,
            _ => Tz::UTC,
        }
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
            Self::HourlyAt { minute, zone } => next_minute_of_hour(now, minute, zone),
            Self::DailyAt { time, zone } => next_time_of_day(now, time, zone),
        }
    }

    /// When a newly set schedule first runs: interval and real-time schedules at once (so a
    /// user sees it work), clock schedules at their next time.
    pub fn first_due(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Manual => None,
            Self::Realtime | Self::EveryMinutes(_) => Some(now),
            Self::HourlyAt { .. } | Self::DailyAt { .. } => self.next_due(None, now, Duration::zero()),
        }
    }
}

/// The next instant after `now` whose minute on `zone`'s clock is `minute` (zones offset by a
/// part of an hour, such as Asia/Kolkata, shift it against UTC).
fn next_minute_of_hour(now: DateTime<Utc>, minute: u32, zone: Tz) -> Option<DateTime<Utc>> {
    let offset_minutes = now.with_timezone(&zone).offset().fix().local_minus_utc().div_euclid(60);
    let utc_minute = (i64::from(minute) - i64::from(offset_minutes)).rem_euclid(60) as u32;
    let this_hour = now.with_minute(utc_minute)?.with_second(0)?.with_nanosecond(0)?;
    Some(if this_hour > now { this_hour } else { this_hour + Duration::hours(1) })
}

/// The next instant after `now` at `time` of `zone`'s day.
fn next_time_of_day(now: DateTime<Utc>, time: NaiveTime, zone: Tz) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&zone).date_naive();
    (0..=2).find_map(|days| {
        let local = (today + Duration::days(days)).and_time(time);
        let instant = match zone.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
            // Skipped by a daylight-saving change: an hour later on the new clock.
            LocalResult::None => zone.from_local_datetime(&(local + Duration::hours(1))).earliest()?,
        };
        let utc = instant.with_timezone(&Utc);
        (utc > now).then_some(utc)
    })
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
            json!({"hourly_at": 15, "time_zone": "Europe/Paris"}),
            json!({"daily_at": "09:00", "time_zone": "America/New_York"}),
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
            json!({"hourly_at": 60}),
            json!({"hourly_at": 5, "time_zone": "Mars/Olympus"}),
            json!({"daily_at": "09:00", "every": 1}),
            json!({"every_minutes": 5, "time_zone": "UTC"}),
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
            Frequency::HourlyAt { minute: 0, zone: Tz::UTC }.next_due(None, at("2026-01-01T10:25:00Z"), poll),
            Some(at("2026-01-01T11:00:00Z"))
        );
        let daily = Frequency::parse(&json!({"daily_at": "02:30"})).unwrap();
        assert_eq!(daily.next_due(None, at("2026-01-01T01:00:00Z"), poll), Some(at("2026-01-01T02:30:00Z")));
        assert_eq!(daily.next_due(None, at("2026-01-01T02:30:00Z"), poll), Some(at("2026-01-02T02:30:00Z")));
        assert_eq!(Frequency::Manual.next_due(Some(due), due, poll), None);
        assert_eq!(Frequency::Realtime.first_due(due), Some(due));
    }

    #[test]
    fn clock_schedules_keep_to_their_zones_wall_clock() {
        let poll = Duration::minutes(1);
        let paris = Frequency::parse(&json!({"hourly_at": 15, "time_zone": "Europe/Paris"})).unwrap();
        assert_eq!(paris.next_due(None, at("2026-01-01T10:20:00Z"), poll), Some(at("2026-01-01T11:15:00Z")));
        // India is UTC+05:30: its :15 is :45 in UTC.
        let kolkata = Frequency::parse(&json!({"hourly_at": 15, "time_zone": "Asia/Kolkata"})).unwrap();
        assert_eq!(kolkata.next_due(None, at("2026-01-01T10:20:00Z"), poll), Some(at("2026-01-01T10:45:00Z")));
        // 09:00 in New York: 14:00 UTC in winter, 13:00 UTC in summer.
        let ny = Frequency::parse(&json!({"daily_at": "09:00", "time_zone": "America/New_York"})).unwrap();
        assert_eq!(ny.next_due(None, at("2026-01-15T12:00:00Z"), poll), Some(at("2026-01-15T14:00:00Z")));
        assert_eq!(ny.next_due(None, at("2026-07-15T13:30:00Z"), poll), Some(at("2026-07-16T13:00:00Z")));
        // 02:30 on the night Paris skips from 02:00 to 03:00 (2026-03-29): the first minute after.
        let skipped = Frequency::parse(&json!({"daily_at": "02:30", "time_zone": "Europe/Paris"})).unwrap();
        assert_eq!(skipped.next_due(None, at("2026-03-28T23:00:00Z"), poll), Some(at("2026-03-29T01:30:00Z")));
        assert_eq!(ny.zone().name(), "America/New_York");
    }
}
