//! Uptime from a component's recorded status history, with Statuspage's arithmetic: time in a
//! major outage counts in full, time in a partial outage at 30 %; degraded performance and
//! maintenance count as up (Atlassian, "Display historical uptime of components",
//! <https://support.atlassian.com/statuspage/docs/display-historical-uptime-of-components/>).
//!
//! Days are the organisation's calendar days (23 or 25 hours on the nights the clocks change).
//! A day before the first record has no data; today counts only up to now.

use crate::domain::ComponentStatus;
use crate::domain::StatusChange;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// Statuspage's weight of a partial outage against a major one.
pub const PARTIAL_WEIGHT: f64 = 0.3;

/// One day's figures, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Day {
    pub date: NaiveDate,
    /// Seconds of the day with a known status (0: no data).
    pub observed: i64,
    pub major: i64,
    pub partial: i64,
}

impl Day {
    /// The weighted downtime in seconds.
    pub fn downtime(&self) -> f64 {
        self.major as f64 + PARTIAL_WEIGHT * self.partial as f64
    }

    /// Uptime as a fraction in [0, 1], or `None` with no data.
    pub fn uptime(&self) -> Option<f64> {
        (self.observed > 0).then(|| 1.0 - self.downtime() / self.observed as f64)
    }
}

/// The time spent in a major and in a partial outage during `[from, to)`, and how much of it
/// has a known status: `history` is ordered oldest first, each change holding until the next.
pub fn span(history: &[StatusChange], from: DateTime<Utc>, to: DateTime<Utc>) -> (i64, i64, i64) {
    let (mut observed, mut major, mut partial) = (0, 0, 0);
    for (i, c) in history.iter().enumerate() {
        let start = c.at.max(from);
        let end = history.get(i + 1).map_or(to, |n| n.at.min(to));
        if end <= start {
            continue;
        }
        let secs = (end - start).num_seconds();
        observed += secs;
        match c.status {
            ComponentStatus::MajorOutage => major += secs,
            ComponentStatus::PartialOutage => partial += secs,
            _ => {}
        }
    }
    (observed, major, partial)
}

/// The instant a local calendar day starts in `tz` (the first instant of that date, also in a
/// zone whose clocks skip midnight).
pub fn day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut t = date.and_time(chrono::NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(local) = tz.from_local_datetime(&t).earliest() {
            return local.to_utc();
        }
        t += Duration::minutes(30);
    }
    // No zone skips more than two hours; treat the date as UTC rather than fail.
    Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
}

/// One day's figures, counted up to `now`.
pub fn day(history: &[StatusChange], tz: Tz, date: NaiveDate, now: DateTime<Utc>) -> Day {
    let from = day_start(tz, date);
    let to = date
        .succ_opt()
        .map_or(now, |next| day_start(tz, next))
        .min(now);
    let (observed, major, partial) = if to > from {
        span(history, from, to)
    } else {
        (0, 0, 0)
    };
    Day {
        date,
        observed,
        major,
        partial,
    }
}

/// The last `n` days up to today (in `tz`), oldest first.
pub fn days(history: &[StatusChange], tz: Tz, now: DateTime<Utc>, n: u32) -> Vec<Day> {
    let today = now.with_timezone(&tz).date_naive();
    (0..n)
        .rev()
        .filter_map(|back| today.checked_sub_days(chrono::Days::new(u64::from(back))))
        .map(|d| day(history, tz, d, now))
        .collect()
}

/// The uptime over several days (observed time only), or `None` with no data at all.
pub fn total(days: &[Day]) -> Option<f64> {
    let observed: i64 = days.iter().map(|d| d.observed).sum();
    let down: f64 = days.iter().map(Day::downtime).sum();
    (observed > 0).then(|| 1.0 - down / observed as f64)
}

/// A bar's colour class, by weighted downtime in the day (green → yellow → orange → red as on
/// Statuspage; the thresholds are crier's: none, up to 1 hour, up to 4 hours, more).
pub fn level(d: &Day) -> &'static str {
    if d.observed == 0 {
        return "nodata";
    }
    let down = d.downtime();
    if down <= 0.0 {
        "up"
    } else if down <= 3600.0 {
        "low"
    } else if down <= 4.0 * 3600.0 {
        "mid"
    } else {
        "high"
    }
}

/// A percentage for people: rounded down to two decimals (so 99.999 % never reads as 100),
/// trailing zeros dropped, with the language's decimal separator.
pub fn percent(fraction: f64, decimal_comma: bool) -> String {
    let p = (fraction.clamp(0.0, 1.0) * 10_000.0).floor() / 100.0;
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    if decimal_comma {
        s.replace('.', ",")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ComponentStatus::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn ch(s: &str, status: ComponentStatus) -> StatusChange {
        StatusChange { at: at(s), status }
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn major_counts_in_full_partial_at_30_percent_the_rest_as_up() {
        let h = [
            ch("2026-11-01T00:00:00Z", Operational),
            ch("2026-11-10T06:00:00Z", MajorOutage),
            ch("2026-11-10T08:24:00Z", PartialOutage), // 2.4 h major
            ch("2026-11-10T12:24:00Z", DegradedPerformance), // 4 h partial
            ch("2026-11-10T14:00:00Z", UnderMaintenance),
            ch("2026-11-10T16:00:00Z", Operational),
        ];
        let now = at("2026-12-01T00:00:00Z");
        let d = day(&h, Tz::UTC, date("2026-11-10"), now);
        assert_eq!(d.observed, 86_400);
        assert_eq!(d.major, 2 * 3600 + 24 * 60);
        assert_eq!(d.partial, 4 * 3600);
        // (2.4 h + 0.3 × 4 h) / 24 h = 3.6 / 24 = 15 % down.
        assert!((d.uptime().unwrap() - 0.85).abs() < 1e-9);
        assert_eq!(percent(d.uptime().unwrap(), false), "85");
        assert_eq!(level(&d), "mid");
        let quiet = day(&h, Tz::UTC, date("2026-11-11"), now);
        assert_eq!(quiet.uptime(), Some(1.0));
        assert_eq!(level(&quiet), "up");
    }

    #[test]
    fn days_before_the_first_record_have_no_data_and_today_counts_up_to_now() {
        let h = [ch("2026-11-10T12:00:00Z", MajorOutage)];
        let now = at("2026-11-11T06:00:00Z");
        assert_eq!(day(&h, Tz::UTC, date("2026-11-09"), now).uptime(), None);
        assert_eq!(level(&day(&h, Tz::UTC, date("2026-11-09"), now)), "nodata");
        // Half a day observed, all of it down.
        let first = day(&h, Tz::UTC, date("2026-11-10"), now);
        assert_eq!(first.observed, 12 * 3600);
        assert_eq!(first.uptime(), Some(0.0));
        let today = day(&h, Tz::UTC, date("2026-11-11"), now);
        assert_eq!(today.observed, 6 * 3600);
        let all = days(&h, Tz::UTC, now, 90);
        assert_eq!(all.len(), 90);
        assert_eq!(all.last().unwrap().date, date("2026-11-11"));
        assert_eq!(total(&all), Some(0.0));
    }

    #[test]
    fn days_are_the_organisations_days_also_when_the_clocks_change() {
        let helsinki: Tz = "Europe/Helsinki".parse().unwrap();
        // 2026-10-25 in Helsinki lasts 25 hours: 2026-10-24T21:00Z to 2026-10-25T22:00Z.
        let h = [ch("2026-10-24T21:00:00Z", MajorOutage)];
        let d = day(&h, helsinki, date("2026-10-25"), at("2026-12-01T00:00:00Z"));
        assert_eq!(d.observed, 25 * 3600);
        assert_eq!(d.major, 25 * 3600);
        // The same outage seen in UTC starts 3 hours before the UTC day ends.
        let d = day(&h, Tz::UTC, date("2026-10-24"), at("2026-12-01T00:00:00Z"));
        assert_eq!(d.observed, 3 * 3600);
    }

    #[test]
    fn percentages_round_down_and_speak_the_language() {
        assert_eq!(percent(1.0, false), "100");
        assert_eq!(percent(0.99999, false), "99.99");
        assert_eq!(percent(0.992, true), "99,2");
        assert_eq!(percent(0.0, false), "0");
    }

    fn status() -> impl Strategy<Value = ComponentStatus> {
        prop_oneof![
            Just(Operational),
            Just(DegradedPerformance),
            Just(PartialOutage),
            Just(MajorOutage),
            Just(UnderMaintenance),
        ]
    }

    proptest! {
        /// For any history: the days' observed time never exceeds the day, the parts add up,
        /// the uptime stays in [0, 1], and summing the days equals counting the whole span.
        #[test]
        fn day_figures_are_consistent(
            steps in proptest::collection::vec((1i64..200_000, status()), 1..30),
        ) {
            let mut t = at("2026-11-01T00:00:00Z");
            let mut h = Vec::new();
            for (gap, s) in steps {
                t += Duration::seconds(gap);
                h.push(StatusChange { at: t, status: s });
            }
            let now = at("2026-12-15T00:00:00Z");
            let all = days(&h, Tz::UTC, now, 60);
            for d in &all {
                prop_assert!(d.observed <= 86_400);
                prop_assert!(d.major + d.partial <= d.observed);
                if let Some(u) = d.uptime() {
                    prop_assert!((0.0..=1.0).contains(&u));
                }
            }
            let from = day_start(Tz::UTC, all[0].date);
            let (observed, major, partial) = span(&h, from, now);
            prop_assert_eq!(observed, all.iter().map(|d| d.observed).sum::<i64>());
            prop_assert_eq!(major, all.iter().map(|d| d.major).sum::<i64>());
            prop_assert_eq!(partial, all.iter().map(|d| d.partial).sum::<i64>());
        }
    }
}
