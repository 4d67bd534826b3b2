//! "Next update in 30 minutes": the promise every crisis update should carry. Parsed here from the
//! short forms staff type (`30m`, `1h`, `1h30m`, `90s`) or an absolute RFC 3339 instant.

use super::{DomainError, Span};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// When the next update is promised, as the client gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NextUpdate {
    /// An absolute instant (RFC 3339, any offset; stored in UTC).
    At(DateTime<Utc>),
    /// A relative delay such as `30m`.
    In(String),
}

/// The longest promise crier accepts; anything longer is almost certainly a typo (`30d` for `30m`).
const MAX_PROMISE: Duration = Duration::days(7);

/// Parses `30m`, `1h`, `1h30m`, `90s`, `2d` into a duration (at least one minute, at most a week),
/// with the one duration parser ([`Span`]).
pub fn parse_next_update(s: &str) -> Result<Duration, DomainError> {
    Span::parse_in(s, Span::from_secs(60), Span::from_secs(7 * 86_400))
        .map(Span::as_chrono)
        .map_err(|e| DomainError::invalid("next_update", e.to_string()))
}

impl NextUpdate {
    /// The promised instant, counted from `now` for relative promises. A promise in the past is an
    /// error: it could never be kept.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, DomainError> {
        match self {
            NextUpdate::In(s) => Ok(now + parse_next_update(s)?),
            NextUpdate::At(t) if *t <= now => Err(DomainError::invalid(
                "next_update",
                format!("{t} is already in the past; promise a time in the future"),
            )),
            NextUpdate::At(t) if *t - now > MAX_PROMISE => Err(DomainError::invalid(
                "next_update",
                format!("{t} is more than 7 days away; promise an earlier update"),
            )),
            NextUpdate::At(t) => Ok(*t),
        }
    }
}

/// What an update asks of the incident's standing promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromiseEdit {
    /// No promise given: the standing one stays (if it has not passed).
    Keep,
    /// A new promise.
    Set(DateTime<Utc>),
    /// Withdraw the standing promise explicitly.
    Clear,
}

/// What an update did to the incident's promise, so the answer can say it: a promise is never
/// dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromiseChange {
    /// A new promise was made (replacing any earlier one).
    Made,
    /// The standing promise still holds.
    Kept,
    /// The standing promise was withdrawn on request.
    Cleared,
    /// The standing promise had already passed, so it could not be kept: none stands now.
    Lapsed,
    /// The incident was resolved (or the maintenance completed): no further update is promised.
    Ended,
    /// There was no promise and none was made.
    None,
}

/// The promise after an update: `previous` is the standing one, `edit` what the update asks,
/// `done` whether the update resolves. A standing promise is kept unless it is replaced,
/// withdrawn, or already past at `now` (a promise that has passed cannot be kept).
pub fn apply_promise(
    previous: Option<DateTime<Utc>>,
    edit: PromiseEdit,
    done: bool,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, PromiseChange) {
    if done {
        let change = if previous.is_some() {
            PromiseChange::Ended
        } else {
            PromiseChange::None
        };
        return (None, change);
    }
    match (edit, previous) {
        (PromiseEdit::Set(t), _) => (Some(t), PromiseChange::Made),
        (PromiseEdit::Clear, Some(_)) => (None, PromiseChange::Cleared),
        (PromiseEdit::Keep, Some(t)) if t > now => (Some(t), PromiseChange::Kept),
        (PromiseEdit::Keep, Some(_)) => (None, PromiseChange::Lapsed),
        (PromiseEdit::Clear | PromiseEdit::Keep, None) => (None, PromiseChange::None),
    }
}

/// An instant as a person in `tz` reads it, then in UTC: `2026-10-25 14:00 EET (12:00 UTC)`
/// (the UTC date only when it differs; UTC alone when the zone is UTC).
pub fn local_then_utc(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let local = t.with_timezone(&tz);
    let shown = local.format("%Y-%m-%d %H:%M %Z").to_string();
    if tz == chrono_tz::UTC {
        return shown;
    }
    let utc = if local.date_naive() == t.date_naive() {
        t.format("%H:%M UTC")
    } else {
        t.format("%Y-%m-%d %H:%M UTC")
    };
    format!("{shown} ({utc})")
}

/// "Next update at 14:00": the next occurrence of a local wall-clock time `HH:MM` in `tz` after
/// `now` (today, or tomorrow when today's has passed). A time that does not exist that day
/// (the spring-forward gap) is an error that says so; in the autumn overlap the first is meant.
pub fn next_local_time(
    s: &str,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, DomainError> {
    use chrono::{NaiveTime, TimeZone};
    let bad = || {
        DomainError::invalid(
            "next_update_at",
            format!("\"{s}\" is not a time of day; write HH:MM, e.g. 14:00"),
        )
    };
    let t = NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad())?;
    let today = now.with_timezone(&tz).date_naive();
    for day in [today, today + Duration::days(1)] {
        let local = day.and_time(t);
        match tz.from_local_datetime(&local).earliest() {
            Some(at) if at.with_timezone(&Utc) > now => return Ok(at.with_timezone(&Utc)),
            Some(_) => continue,
            None => {
                return Err(DomainError::invalid(
                    "next_update_at",
                    format!(
                        "{s} does not exist on {day} in {tz} (the clocks go forward); promise another time"
                    ),
                ))
            }
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_local_time_is_today_or_tomorrow_in_the_zone() {
        let tz: chrono_tz::Tz = "Europe/Helsinki".parse().unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc(); // 12:00 local
        let at = next_local_time("14:00", tz, now).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-23T12:00:00+00:00");
        let at = next_local_time("11:00", tz, now).unwrap();
        assert_eq!(
            at.to_rfc3339(),
            "2026-11-24T09:00:00+00:00",
            "passed today: tomorrow"
        );
        assert!(next_local_time("25:00", tz, now).is_err());
        // 2027-03-28 03:30 does not exist in Helsinki (03:00 → 04:00).
        let before_gap = DateTime::parse_from_rfc3339("2027-03-27T23:00:00Z")
            .unwrap()
            .to_utc();
        let e = next_local_time("03:30", tz, before_gap)
            .unwrap_err()
            .to_string();
        assert!(e.contains("clocks go forward"), "{e}");
    }

    #[test]
    fn a_standing_promise_is_kept_unless_replaced_withdrawn_passed_or_resolved() {
        let now = DateTime::parse_from_rfc3339("2026-10-24T20:00:00Z")
            .unwrap()
            .to_utc();
        let later = now + Duration::hours(2);
        let past = now - Duration::minutes(1);
        let newer = now + Duration::hours(3);
        use PromiseChange as C;
        use PromiseEdit as E;
        for (previous, edit, done, want) in [
            (Some(later), E::Keep, false, (Some(later), C::Kept)),
            (Some(past), E::Keep, false, (None, C::Lapsed)),
            (Some(later), E::Clear, false, (None, C::Cleared)),
            (Some(later), E::Set(newer), false, (Some(newer), C::Made)),
            (None, E::Set(newer), false, (Some(newer), C::Made)),
            (None, E::Keep, false, (None, C::None)),
            (None, E::Clear, false, (None, C::None)),
            (Some(later), E::Keep, true, (None, C::Ended)),
            (None, E::Keep, true, (None, C::None)),
        ] {
            assert_eq!(
                apply_promise(previous, edit, done, now),
                want,
                "{previous:?} {edit:?} {done}"
            );
        }
    }

    #[test]
    fn instants_read_in_the_zone_first_then_utc() {
        let hel: chrono_tz::Tz = "Europe/Helsinki".parse().unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        for (t, tz, want) in [
            (
                "2026-10-25T12:00:00Z",
                hel,
                "2026-10-25 14:00 EET (12:00 UTC)",
            ),
            (
                "2026-10-25T00:30:00Z",
                hel,
                "2026-10-25 03:30 EEST (00:30 UTC)",
            ),
            (
                "2026-10-24T22:30:00Z",
                hel,
                "2026-10-25 01:30 EEST (2026-10-24 22:30 UTC)",
            ),
            (
                "2026-10-25T12:00:00Z",
                chrono_tz::UTC,
                "2026-10-25 12:00 UTC",
            ),
        ] {
            assert_eq!(local_then_utc(at(t), tz), want);
        }
    }

    #[test]
    fn parses_short_forms() {
        assert_eq!(parse_next_update("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_next_update("1h").unwrap(), Duration::hours(1));
        assert_eq!(parse_next_update("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_next_update("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_next_update("2d").unwrap(), Duration::days(2));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "",
            "30",
            "m",
            "30x",
            "10s",
            "8d",
            "1h30",
            "9999999999999999h",
        ] {
            let e = parse_next_update(bad).unwrap_err().to_string();
            assert!(e.contains("from 1m to 7d"), "{bad}: {e}");
        }
    }

    #[test]
    fn absolute_promise_must_be_future() {
        let now = Utc::now();
        assert!(NextUpdate::At(now - Duration::minutes(1))
            .resolve(now)
            .is_err());
        let t = now + Duration::hours(2);
        assert_eq!(NextUpdate::At(t).resolve(now).unwrap(), t);
    }
}
