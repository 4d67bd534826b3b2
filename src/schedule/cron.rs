//! Crontab(5) schedules for recurring status updates: crier's crontab front on
//! the `cron` crate, with a guard against the crate's daylight-saving faults.
//!
//! # Why a front
//!
//! Crier lets operators schedule recurring status broadcasts ("post the
//! incident summary every weekday at 09:00 Helsinki time"). Operators know the
//! classic five-field crontab(5) syntax, and a crisis tool must do exactly what
//! that syntax means — a missed, doubled or out-of-order status update during
//! an incident is a real-world failure.
//!
//! The `cron` crate (0.17) finds the fire times, but used directly it differs
//! from crontab(5) in ways that silently change the meaning of an expression:
//!
//! * it only accepts Quartz-style 6/7-field expressions (seconds first,
//!   optional year) and rejects the 5-field crontab form;
//! * its day-of-week numbering is 1-7 with Sunday = 1, so the crontab
//!   weekday range `1-5` (Monday–Friday) would mean Sunday–Thursday there;
//! * when both day-of-month and day-of-week are restricted it requires BOTH
//!   to match (AND), whereas crontab(5) fires when EITHER matches (OR);
//! * around a DST fall-back it fires a repeated wall-clock time twice, and its
//!   iterator can step backwards in time (e.g. `03:00 EET` followed by
//!   `03:30 EEST`, which is the earlier instant).
//!
//! So this module parses crontab(5) itself ([`CronExpr::parse`], with errors
//! that name the field and say what to write), translates each field into an
//! explicit Quartz list ([`translate_to_quartz`]: seconds `0`, weekdays
//! shifted by one), and, when both day fields are restricted, builds two
//! crate schedules — one per day field — whose earlier next fire time wins
//! (crontab's OR). Every time the crate yields is mapped back through its
//! local wall-clock time (see the DST policy below). The crate's syntax is
//! never shown to users. The crate's calendar ends in 2100, and so do fire
//! times here.
//!
//! # Accepted syntax
//!
//! `minute hour day-of-month month day-of-week`, separated by whitespace:
//!
//! | field        | values                      |
//! |--------------|-----------------------------|
//! | minute       | 0-59                        |
//! | hour         | 0-23                        |
//! | day-of-month | 1-31                        |
//! | month        | 1-12 or `jan`-`dec`         |
//! | day-of-week  | 0-7 or `sun`-`sat` (0 and 7 are both Sunday) |
//!
//! Each field is `*` or a comma-separated list of values `a`, ranges `a-b`
//! (inclusive, start ≤ end) and stepped ranges `*/n`, `a-b/n` or `a/n`
//! (= `a-max/n`). Names are three letters and case-insensitive, and may be
//! used anywhere a number may (`Mon-Fri`, `jan,jul`). As a convenience a
//! day-of-week range may end in `sun` (`fri-sun` = Friday, Saturday, Sunday).
//! Steps must be between 1 and the width of the field.
//!
//! The aliases `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly` and
//! `@yearly` (`@annually`) are accepted as the whole expression.
//!
//! Day-of-month and day-of-week follow crontab(5): if both fields are
//! restricted (i.e. do not start with `*`) a day matches when EITHER field
//! matches; otherwise both must match (so a field that is `*` has no effect,
//! and `*/2` counts as unrestricted, exactly as in Vixie cron).
//!
//! # DST policy
//!
//! Fire times are wall-clock times in the schedule's time zone:
//!
//! * **Gap (spring forward):** a local time that does not exist that day is
//!   skipped, not shifted. `30 3 * * *` in Europe/Helsinki does not fire on
//!   2026-03-29, when 03:00 jumps to 04:00. (The crate already skips these.)
//! * **Overlap (fall back):** a local time that occurs twice fires once, at its
//!   first (earlier, daylight-saving) occurrence. Each local wall-clock time
//!   fires at most once: in the repeated hour of 2026-10-25 in Helsinki,
//!   `*/30 * * * *` fires at 03:00 and 03:30 EEST only, then next at
//!   04:00 EET — 90 real minutes later. The guard: each local time the crate
//!   yields is resolved to its earliest instant, and kept only if that
//!   instant is strictly after the query — which drops the crate's second
//!   firing and its backward step.
//! * **Monotonic:** fire times returned by [`CronSchedule::next_after`] are
//!   strictly after the given instant, so successive calls never return the
//!   same instant twice and never go backwards.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Reminder of the expected layout, appended to every field error.
const SYNTAX_HINT: &str = "minute hour day-of-month month day-of-week";

/// Errors produced while parsing a crontab(5) expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The expression does not have exactly five whitespace-separated fields.
    #[error(
        "expected 5 fields (crontab syntax: {SYNTAX_HINT}) but found {found}; \
         a seconds or year field (6/7-field Quartz syntax) is not supported"
    )]
    FieldCount {
        /// Number of fields found.
        found: usize,
    },
    /// One field contains an invalid value, range, step or list.
    #[error("{field} field \"{value}\": {reason} (crontab syntax: {SYNTAX_HINT})")]
    Field {
        /// Which field: `minute`, `hour`, `day-of-month`, `month` or
        /// `day-of-week`.
        field: &'static str,
        /// The offending part of the field as the user wrote it.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `@` alias that is not supported, or an alias followed by more text.
    #[error(
        "unknown schedule alias \"{alias}\": use one of @hourly, @daily, @midnight, \
         @weekly, @monthly, @yearly, @annually on its own, or 5 fields ({SYNTAX_HINT})"
    )]
    UnknownAlias {
        /// The alias as written.
        alias: String,
    },
    /// [`translate_to_quartz`] produced an expression the `cron` crate
    /// rejected. This indicates a bug in the translation.
    #[error("internal error: translated expression \"{quartz}\" was rejected by the cron crate: {message}")]
    Translation {
        /// The translated expression.
        quartz: String,
        /// The `cron` crate's error message.
        message: String,
    },
}

/// Static description of one crontab field.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Upper bound used by `*` and `a/n` (6 for day-of-week, so that `*`
    /// does not include the Sunday alias 7 twice).
    star_max: u32,
    /// Three-letter names, the first of which has value `name_base`.
    names: &'static [&'static str],
    name_base: u32,
    range_reason: &'static str,
}

impl FieldSpec {
    /// A field of plain numbers, `*` covering `min..=max`.
    const fn numeric(name: &'static str, min: u32, max: u32, range_reason: &'static str) -> Self {
        FieldSpec {
            name,
            min,
            max,
            star_max: max,
            names: &[],
            name_base: 0,
            range_reason,
        }
    }
}

const MINUTE: FieldSpec = FieldSpec::numeric("minute", 0, 59, "must be 0-59");
const HOUR: FieldSpec = FieldSpec::numeric("hour", 0, 23, "must be 0-23");
const DAY_OF_MONTH: FieldSpec = FieldSpec::numeric("day-of-month", 1, 31, "must be 1-31");
const MONTH: FieldSpec = FieldSpec {
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    name_base: 1,
    ..FieldSpec::numeric("month", 1, 12, "must be 1-12 or jan-dec")
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    star_max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    ..FieldSpec::numeric("day-of-week", 0, 7, "must be 0-7 or sun-sat")
};

/// Parsed calendar fields as bit sets (bit `n` set = value `n` matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    /// Bits 0-6, 0 = Sunday (7 is folded into 0 while parsing).
    days_of_week: u64,
    /// Day-of-month field does not start with `*`.
    dom_restricted: bool,
    /// Day-of-week field does not start with `*`.
    dow_restricted: bool,
}

impl Fields {
    /// The fields in Quartz syntax: `[sec, min, hour, day-of-month, month,
    /// day-of-week]`, day-of-week renumbered to the crate's Sunday = 1.
    fn quartz(&self) -> [String; 6] {
        let dow_quartz = (0..7)
            .filter(|d| has(self.days_of_week, *d))
            .fold(0u64, |acc, d| acc | (1u64 << (d + 1)));
        [
            "0".to_string(),
            render_set(self.minutes, 0, 59),
            render_set(self.hours, 0, 23),
            render_set(self.days_of_month, 1, 31),
            render_set(self.months, 1, 12),
            render_set(dow_quartz, 1, 7),
        ]
    }

    /// The crate schedules whose union is this crontab: one, or with both
    /// day fields restricted one per day field (crontab's OR; the crate
    /// would AND them).
    fn schedules(&self) -> Result<Vec<::cron::Schedule>, CronError> {
        let [sec, min, hour, dom, month, dow] = self.quartz();
        let quartz = if self.dom_restricted && self.dow_restricted {
            vec![
                format!("{sec} {min} {hour} {dom} {month} *"),
                format!("{sec} {min} {hour} * {month} {dow}"),
            ]
        } else {
            vec![format!("{sec} {min} {hour} {dom} {month} {dow}")]
        };
        quartz
            .into_iter()
            .map(|q| {
                ::cron::Schedule::from_str(&q).map_err(|err| CronError::Translation {
                    message: err.to_string(),
                    quartz: q,
                })
            })
            .collect()
    }
}

fn has(set: u64, value: u32) -> bool {
    value < 64 && set & (1u64 << value) != 0
}

/// A crontab(5) expression, parsed and validated once, not yet tied to a time
/// zone. It is stored (on a notice) and serialised as the text the user
/// wrote; reading it back parses it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    expression: String,
    /// One crate schedule, or two whose union is the expression (see
    /// [`Fields::schedules`]).
    schedules: Vec<::cron::Schedule>,
}

impl CronExpr {
    /// Parses a five-field crontab(5) expression (or an `@` alias).
    ///
    /// Errors name the offending field, e.g. `* * * * 8` gives
    /// `day-of-week field "8": must be 0-7 or sun-sat (...)`. Expressions with
    /// 6 or 7 fields (seconds/year, Quartz style) are rejected, as are
    /// day-of-month/month combinations that can never occur (`0 0 30 2 *`).
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        Ok(CronExpr {
            expression: expr.to_string(),
            schedules: parse_fields(expr)?.schedules()?,
        })
    }

    /// The expression exactly as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.expression
    }

    /// The schedule of this expression in `tz`.
    pub fn in_zone(&self, tz: Tz) -> CronSchedule {
        CronSchedule {
            expr: self.clone(),
            tz,
        }
    }
}

impl std::fmt::Display for CronExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.expression)
    }
}

impl FromStr for CronExpr {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronExpr::parse(s)
    }
}

impl serde::Serialize for CronExpr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expression)
    }
}

impl<'de> serde::Deserialize<'de> for CronExpr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CronExpr::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A recurring schedule: a crontab(5) expression evaluated in a fixed time
/// zone.
///
/// See the module documentation for the accepted syntax and the DST policy
/// (gap times are skipped, overlap times fire once at the earlier instant,
/// fire times are strictly increasing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    expr: CronExpr,
    tz: Tz,
}

impl CronSchedule {
    /// Parses a five-field crontab(5) expression (or an `@` alias) whose
    /// wall-clock times are interpreted in `tz`; see [`CronExpr::parse`].
    pub fn parse(expr: &str, tz: Tz) -> Result<CronSchedule, CronError> {
        Ok(CronExpr::parse(expr)?.in_zone(tz))
    }

    /// The expression exactly as the user wrote it.
    pub fn expression(&self) -> &str {
        self.expr.as_str()
    }

    /// The time zone in which the schedule's wall-clock times are evaluated.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The first fire time strictly after `after`, or `None` if there is none
    /// before the crate's calendar ends (2100).
    ///
    /// Local times that fall in a DST gap are skipped; local times that occur
    /// twice resolve to their earlier occurrence, and a candidate whose
    /// instant is not strictly after `after` (the already-passed first
    /// occurrence of a repeated time) is skipped rather than fired again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local_after = after.with_timezone(&self.tz);
        self.expr
            .schedules
            .iter()
            .filter_map(|schedule| {
                // The crate walks local wall-clock times upwards from
                // `after`'s (skipping gap times) but yields a repeated time
                // twice, the second after the first's later neighbours. Each
                // local time resolved to its earliest instant and kept only
                // when strictly after `after` fires once, never backwards.
                // Local times before `after`'s own have all occurred already,
                // so nothing is lost by starting there. Only repeated times
                // are skipped, so the search ends within one overlap.
                schedule.after(&local_after).find_map(|candidate| {
                    self.tz
                        .from_local_datetime(&candidate.naive_local())
                        .earliest()
                        .map(|fire| fire.with_timezone(&Utc))
                        .filter(|fire| *fire > after)
                })
            })
            .min()
    }

    /// Up to `count` consecutive fire times strictly after `after`, strictly
    /// increasing.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut fires = Vec::with_capacity(count.min(1024));
        let mut cursor = after;
        while fires.len() < count {
            match self.next_after(cursor) {
                Some(next) if next > cursor => {
                    fires.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        fires
    }

    /// The next fire time for a scheduler that persists the last instant it
    /// fired (in UTC).
    ///
    /// Returns the first fire time strictly after
    /// `max(last_fired, now)`:
    ///
    /// * never at or before `last_fired`, so a fire is never repeated even if
    ///   the wall clock steps backwards or the process restarts;
    /// * never at or before `now`, so fire times missed while the scheduler
    ///   was down are not replayed in a burst — the schedule simply resumes
    ///   with its next future occurrence (callers that want catch-up must
    ///   decide that themselves, e.g. by comparing with [`Self::next_after`]
    ///   of `last_fired`);
    /// * with `last_fired == None` (never fired) it is the next fire after
    ///   `now`.
    ///
    /// Intended loop: `next = next_fire_guarded(last, now)`, sleep until
    /// `next`, broadcast, store `last = next`, repeat.
    pub fn next_fire_guarded(
        &self,
        last_fired: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let floor = match last_fired {
            Some(last) if last > now => last,
            _ => now,
        };
        let next = self.next_after(floor)?;
        match last_fired {
            Some(last) if next <= last => None,
            _ => Some(next),
        }
    }
}

/// Translates a crontab(5) expression into the `cron` crate's Quartz-style
/// syntax (`sec min hour day-of-month month day-of-week`, seconds = 0,
/// day-of-week 1-7 with Sunday = 1), validating the result with the `cron`
/// crate.
///
/// Fields are emitted as `*` when every value matches and otherwise as an
/// explicit sorted list, e.g. `0 9 * * 1-5` → `0 0 9 * * 2,3,4,5,6`.
///
/// Caveat: when both day-of-month and day-of-week are restricted, crontab(5)
/// fires when either matches, but the `cron` crate requires both, so this
/// field-for-field translation is NOT equivalent in that case;
/// [`CronSchedule`] then evaluates two translations, one per day field. For
/// tests and diagnostics; never show its output to users.
pub fn translate_to_quartz(expr: &str) -> Result<String, CronError> {
    let quartz = parse_fields(expr)?.quartz().join(" ");
    match ::cron::Schedule::from_str(&quartz) {
        Ok(_) => Ok(quartz),
        Err(err) => Err(CronError::Translation {
            quartz,
            message: err.to_string(),
        }),
    }
}

fn render_set(set: u64, min: u32, max: u32) -> String {
    if (min..=max).all(|v| has(set, v)) {
        return "*".to_string();
    }
    (min..=max)
        .filter(|v| has(set, *v))
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn alias_expansion(alias: &str) -> Option<&'static str> {
    match alias.to_ascii_lowercase().as_str() {
        "@hourly" => Some("0 * * * *"),
        "@daily" | "@midnight" => Some("0 0 * * *"),
        "@weekly" => Some("0 0 * * 0"),
        "@monthly" => Some("0 0 1 * *"),
        "@yearly" | "@annually" => Some("0 0 1 1 *"),
        _ => None,
    }
}

fn parse_fields(expr: &str) -> Result<Fields, CronError> {
    let trimmed = expr.trim();
    if trimmed.starts_with('@') {
        let mut parts = trimmed.split_whitespace();
        let expansion = match (parts.next(), parts.next()) {
            (Some(alias), None) => alias_expansion(alias),
            _ => None,
        };
        return match expansion {
            Some(expansion) => parse_fields(expansion),
            None => Err(CronError::UnknownAlias {
                alias: trimmed.to_string(),
            }),
        };
    }

    let parts: Vec<&str> = trimmed.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = parts.as_slice() else {
        return Err(CronError::FieldCount { found: parts.len() });
    };

    let fields = Fields {
        minutes: parse_field(&MINUTE, minute)?,
        hours: parse_field(&HOUR, hour)?,
        days_of_month: parse_field(&DAY_OF_MONTH, dom)?,
        months: parse_field(&MONTH, month)?,
        days_of_week: {
            let set = parse_field(&DAY_OF_WEEK, dow)?;
            // 7 is Sunday, same as 0.
            (set | ((set >> 7) & 1)) & 0x7f
        },
        dom_restricted: !dom.starts_with('*'),
        dow_restricted: !dow.starts_with('*'),
    };

    // Reject day-of-month/month combinations that can never occur, unless
    // day-of-week can still fire on its own (OR semantics).
    let dom_alone_decides = !(fields.dom_restricted && fields.dow_restricted);
    if dom_alone_decides && !dom_possible(fields.days_of_month, fields.months) {
        return Err(CronError::Field {
            field: DAY_OF_MONTH.name,
            value: (*dom).to_string(),
            reason: "none of these days exists in the selected month(s)".to_string(),
        });
    }
    Ok(fields)
}

/// Whether some selected day exists in some selected month (February counts
/// as 29 days).
fn dom_possible(days: u64, months: u64) -> bool {
    const MONTH_LENGTHS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12u32).filter(|m| has(months, *m)).any(|m| {
        let len = MONTH_LENGTHS.get((m - 1) as usize).copied().unwrap_or(31);
        (1..=len).any(|d| has(days, d))
    })
}

fn field_error(spec: &FieldSpec, value: &str, reason: impl Into<String>) -> CronError {
    CronError::Field {
        field: spec.name,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Parses one field into a bit set.
fn parse_field(spec: &FieldSpec, text: &str) -> Result<u64, CronError> {
    let mut set = 0u64;
    for element in text.split(',') {
        if element.is_empty() {
            return Err(field_error(spec, text, "empty element in list"));
        }
        set |= parse_element(spec, element)?;
    }
    Ok(set)
}

/// Parses one list element: `*`, `a`, `a-b`, optionally followed by `/n`.
fn parse_element(spec: &FieldSpec, element: &str) -> Result<u64, CronError> {
    let (base, step) = match element.split_once('/') {
        Some((base, step_text)) => (base, Some(parse_step(spec, element, step_text)?)),
        None => (element, None),
    };

    let (low, high) = if base == "*" {
        (spec.min, spec.star_max)
    } else if let Some((low_text, high_text)) = base.split_once('-') {
        let low = parse_value(spec, element, low_text)?;
        let mut high = parse_value(spec, element, high_text)?;
        if spec.name == DAY_OF_WEEK.name && high == 0 && high_text.eq_ignore_ascii_case("sun") {
            // `fri-sun`: a range ending on Sunday by name means Sunday = 7.
            high = 7;
        }
        if low > high {
            return Err(field_error(
                spec,
                element,
                format!(
                    "range start {low} is greater than range end {high} \
                     (wrap-around ranges are not supported)"
                ),
            ));
        }
        (low, high)
    } else {
        let value = parse_value(spec, element, base)?;
        match step {
            // `a/n` means `a-max/n`.
            Some(_) => (value, spec.star_max.max(value)),
            None => (value, value),
        }
    };

    let step = step.unwrap_or(1);
    let mut set = 0u64;
    let mut value = low;
    while value <= high {
        set |= 1u64 << value;
        value += step;
    }
    Ok(set)
}

fn parse_step(spec: &FieldSpec, element: &str, text: &str) -> Result<u32, CronError> {
    let width = spec.max - spec.min;
    let reason = || format!("step must be a whole number from 1 to {width}");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(field_error(spec, element, reason()));
    }
    match text.parse::<u32>() {
        Ok(0) => Err(field_error(
            spec,
            element,
            format!("step must be at least 1 (step 0 is not allowed; use 1 to {width})"),
        )),
        Ok(step) if step <= width => Ok(step),
        _ => Err(field_error(spec, element, reason())),
    }
}

fn parse_value(spec: &FieldSpec, element: &str, text: &str) -> Result<u32, CronError> {
    if text == "?" {
        return Err(field_error(
            spec,
            element,
            "'?' is Quartz syntax and is not supported; use *",
        ));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(value) if (spec.min..=spec.max).contains(&value) => Ok(value),
            _ => Err(field_error(spec, element, spec.range_reason)),
        };
    }
    spec.names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .and_then(|index| u32::try_from(index).ok())
        .map(|index| index + spec.name_base)
        .ok_or_else(|| field_error(spec, element, spec.range_reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Helsinki;
    use chrono_tz::UTC;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("bad test timestamp {s}: {e}"))
            .with_timezone(&Utc)
    }

    fn fmt(times: &[DateTime<Utc>]) -> Vec<String> {
        times
            .iter()
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .collect()
    }

    fn fires(expr: &str, tz: Tz, after: &str, count: usize) -> Vec<String> {
        let schedule =
            CronSchedule::parse(expr, tz).unwrap_or_else(|e| panic!("{expr:?} should parse: {e}"));
        fmt(&schedule.upcoming(utc(after), count))
    }

    fn assert_strictly_increasing(times: &[DateTime<Utc>]) {
        for pair in times.windows(2) {
            assert!(pair[0] < pair[1], "not strictly increasing: {pair:?}");
        }
    }

    #[test]
    fn calendar_table_utc() {
        // 2026-11-23 is a Monday.
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "0 9 * * 1-5",
                "2026-11-22T09:00:00Z",
                &[
                    "2026-11-23T09:00:00Z",
                    "2026-11-24T09:00:00Z",
                    "2026-11-25T09:00:00Z",
                    "2026-11-26T09:00:00Z",
                    "2026-11-27T09:00:00Z",
                    "2026-11-30T09:00:00Z",
                ],
            ),
            (
                "0 9 * * Mon-Fri",
                "2026-11-22T09:00:00Z",
                &[
                    "2026-11-23T09:00:00Z",
                    "2026-11-24T09:00:00Z",
                    "2026-11-25T09:00:00Z",
                    "2026-11-26T09:00:00Z",
                    "2026-11-27T09:00:00Z",
                    "2026-11-30T09:00:00Z",
                ],
            ),
            (
                "0 9 * * 0",
                "2026-11-23T00:00:00Z",
                &["2026-11-29T09:00:00Z", "2026-12-06T09:00:00Z"],
            ),
            (
                "0 9 * * 7",
                "2026-11-23T00:00:00Z",
                &["2026-11-29T09:00:00Z", "2026-12-06T09:00:00Z"],
            ),
            (
                "0 9 * * sun",
                "2026-11-23T00:00:00Z",
                &["2026-11-29T09:00:00Z", "2026-12-06T09:00:00Z"],
            ),
            (
                "0 9 * * SUN",
                "2026-11-23T00:00:00Z",
                &["2026-11-29T09:00:00Z", "2026-12-06T09:00:00Z"],
            ),
            (
                "0 9 * * 5-7",
                "2026-11-23T00:00:00Z",
                &[
                    "2026-11-27T09:00:00Z",
                    "2026-11-28T09:00:00Z",
                    "2026-11-29T09:00:00Z",
                    "2026-12-04T09:00:00Z",
                ],
            ),
            (
                "0 9 * * fri-sun",
                "2026-11-23T00:00:00Z",
                &[
                    "2026-11-27T09:00:00Z",
                    "2026-11-28T09:00:00Z",
                    "2026-11-29T09:00:00Z",
                    "2026-12-04T09:00:00Z",
                ],
            ),
            (
                "0 9,17 * * *",
                "2026-11-23T00:00:00Z",
                &[
                    "2026-11-23T09:00:00Z",
                    "2026-11-23T17:00:00Z",
                    "2026-11-24T09:00:00Z",
                ],
            ),
            (
                "*/15 * * * *",
                "2026-11-23T23:40:00Z",
                &[
                    "2026-11-23T23:45:00Z",
                    "2026-11-24T00:00:00Z",
                    "2026-11-24T00:15:00Z",
                    "2026-11-24T00:30:00Z",
                ],
            ),
            (
                "0 8-18/2 * * *",
                "2026-11-23T00:00:00Z",
                &[
                    "2026-11-23T08:00:00Z",
                    "2026-11-23T10:00:00Z",
                    "2026-11-23T12:00:00Z",
                    "2026-11-23T14:00:00Z",
                    "2026-11-23T16:00:00Z",
                    "2026-11-23T18:00:00Z",
                    "2026-11-24T08:00:00Z",
                ],
            ),
            (
                "0 0 1 jan,jul *",
                "2026-11-23T00:00:00Z",
                &[
                    "2027-01-01T00:00:00Z",
                    "2027-07-01T00:00:00Z",
                    "2028-01-01T00:00:00Z",
                ],
            ),
            (
                "0 0 1 JAN,Jul *",
                "2026-11-23T00:00:00Z",
                &[
                    "2027-01-01T00:00:00Z",
                    "2027-07-01T00:00:00Z",
                    "2028-01-01T00:00:00Z",
                ],
            ),
            // Both day fields restricted: the 13th OR any Friday.
            (
                "0 0 13 * 5",
                "2026-11-01T00:00:00Z",
                &[
                    "2026-11-06T00:00:00Z",
                    "2026-11-13T00:00:00Z",
                    "2026-11-20T00:00:00Z",
                    "2026-11-27T00:00:00Z",
                    "2026-12-04T00:00:00Z",
                    "2026-12-11T00:00:00Z",
                    "2026-12-13T00:00:00Z",
                    "2026-12-18T00:00:00Z",
                ],
            ),
            // Only one day field restricted: only it counts.
            (
                "0 0 13 * *",
                "2026-11-01T00:00:00Z",
                &["2026-11-13T00:00:00Z", "2026-12-13T00:00:00Z"],
            ),
            (
                "0 0 * * 5",
                "2026-11-01T00:00:00Z",
                &["2026-11-06T00:00:00Z", "2026-11-13T00:00:00Z"],
            ),
            // Day-of-month starting with `*` is unrestricted → AND, as in
            // Vixie cron: odd days that are Fridays.
            (
                "0 0 */2 * 5",
                "2026-11-01T00:00:00Z",
                &[
                    "2026-11-13T00:00:00Z",
                    "2026-11-27T00:00:00Z",
                    "2026-12-11T00:00:00Z",
                    "2026-12-25T00:00:00Z",
                ],
            ),
            (
                "0 0 29 2 *",
                "2026-11-01T00:00:00Z",
                &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
            ),
            (
                "@hourly",
                "2026-11-23T10:30:00Z",
                &["2026-11-23T11:00:00Z", "2026-11-23T12:00:00Z"],
            ),
            (
                "@daily",
                "2026-11-23T10:30:00Z",
                &["2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"],
            ),
            (
                "@weekly",
                "2026-11-23T10:30:00Z",
                &["2026-11-29T00:00:00Z", "2026-12-06T00:00:00Z"],
            ),
            (
                "@monthly",
                "2026-11-23T10:30:00Z",
                &["2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"],
            ),
            (
                "@YEARLY",
                "2026-11-23T10:30:00Z",
                &["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"],
            ),
        ];
        for (expr, after, expected) in cases {
            assert_eq!(
                fires(expr, UTC, after, expected.len()),
                *expected,
                "expression {expr:?}"
            );
        }
    }

    #[test]
    fn equivalent_spellings_match() {
        let pairs = [
            ("0 9 * * 1-5", "0 9 * * Mon-Fri"),
            ("0 9 * * 1-5", "0 9 * * mon,tue,wed,thu,fri"),
            ("0 9 * * 0", "0 9 * * 7"),
            ("0 9 * * 5-7", "0 9 * * 0,5,6"),
            ("0 0 1 1,7 *", "0 0 1 jan,jul *"),
            ("0 0 * * 0", "@weekly"),
            ("0 0 * * *", "@midnight"),
            ("0 0 1 1 *", "@annually"),
            ("0 8-18/2 * * *", "0 8,10,12,14,16,18 * * *"),
            ("30 22/1 * * *", "30 22,23 * * *"),
        ];
        for (a, b) in pairs {
            assert_eq!(
                fires(a, UTC, "2026-01-01T00:00:00Z", 60),
                fires(b, UTC, "2026-01-01T00:00:00Z", 60),
                "{a:?} vs {b:?}"
            );
        }
        assert_eq!(
            fires("0 9 * * 1-5", UTC, "2026-01-01T00:00:00Z", 60).len(),
            60
        );
    }

    #[test]
    fn accessors_and_strictly_after() {
        let schedule = CronSchedule::parse("  0 9 * * Mon-Fri ", Helsinki).unwrap();
        assert_eq!(schedule.expression(), "  0 9 * * Mon-Fri ");
        assert_eq!(schedule.tz(), Helsinki);
        // 09:00 Helsinki (EET, UTC+2) on Monday 2026-11-23 is 07:00 UTC.
        let fire = utc("2026-11-23T07:00:00Z");
        assert_eq!(schedule.next_after(utc("2026-11-23T06:59:59Z")), Some(fire));
        // Exactly at a fire time: the next one, never the same instant.
        assert_eq!(schedule.next_after(fire), Some(utc("2026-11-24T07:00:00Z")));
        assert_eq!(
            schedule.next_after(utc("2026-11-23T07:00:00.5Z")),
            Some(utc("2026-11-24T07:00:00Z"))
        );
        assert!(schedule.upcoming(fire, 0).is_empty());
    }

    #[test]
    fn helsinki_spring_forward_gap_is_skipped() {
        // 2026-03-29 03:00 EET → 04:00 EEST (01:00 UTC).
        assert_eq!(
            fires("30 3 * * *", Helsinki, "2026-03-27T12:00:00Z", 2),
            ["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"]
        );
        // Half-hourly: 02:30 EET is followed directly by 04:00 EEST.
        assert_eq!(
            fires("*/30 * * * *", Helsinki, "2026-03-29T00:00:00Z", 3),
            [
                "2026-03-29T00:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:30:00Z",
            ]
        );
    }

    #[test]
    fn helsinki_autumn_overlap_fires_once_at_first_occurrence() {
        // 2026-10-25 04:00 EEST → 03:00 EET (01:00 UTC); 03:00-03:59 repeats.
        assert_eq!(
            fires("30 3 * * *", Helsinki, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
        // Asking from inside the second pass of the repeated hour does not
        // fire 03:30 again.
        let schedule = CronSchedule::parse("30 3 * * *", Helsinki).unwrap();
        assert_eq!(
            schedule.next_after(utc("2026-10-25T01:10:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn helsinki_half_hourly_across_autumn_change_is_strictly_increasing() {
        let schedule = CronSchedule::parse("*/30 * * * *", Helsinki).unwrap();
        let start = utc("2026-10-24T00:00:00Z");
        let end = utc("2026-10-26T00:00:00Z");
        let times: Vec<_> = schedule
            .upcoming(start, 200)
            .into_iter()
            .filter(|t| *t <= end)
            .collect();
        assert_strictly_increasing(&times);
        // 48 real hours hold 96 instants at minute 0/30; the second pass of
        // the repeated hour (03:00 and 03:30 EET = 01:00Z and 01:30Z) does not
        // fire, so 94 fires.
        assert_eq!(times.len(), 94);
        assert!(!times.contains(&utc("2026-10-25T01:00:00Z")));
        assert!(!times.contains(&utc("2026-10-25T01:30:00Z")));
        // Around the change: 02:30 EEST, 03:00 EEST, 03:30 EEST, 04:00 EET.
        assert_eq!(
            fmt(&schedule.upcoming(utc("2026-10-24T23:00:00Z"), 4)),
            [
                "2026-10-24T23:30:00Z",
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T02:00:00Z",
            ]
        );
        // Every consecutive call from every instant in the window is
        // strictly after its input.
        let mut t = start;
        while t < end {
            let next = schedule.next_after(t).unwrap();
            assert!(next > t);
            t += Duration::minutes(7);
        }
    }

    #[test]
    fn new_york_dst() {
        // 2026-03-08 02:00 EST → 03:00 EDT: 02:30 does not exist that day.
        assert_eq!(
            fires("30 2 * * *", New_York, "2026-03-07T00:00:00Z", 2),
            ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"]
        );
        // 2026-11-01 02:00 EDT → 01:00 EST: 01:30 fires once, as EDT.
        assert_eq!(
            fires("30 1 * * *", New_York, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
        let schedule = CronSchedule::parse("*/30 * * * *", New_York).unwrap();
        let times = schedule.upcoming(utc("2026-10-31T00:00:00Z"), 200);
        assert_strictly_increasing(&times);
        assert!(!times.contains(&utc("2026-11-01T06:00:00Z")));
        assert!(!times.contains(&utc("2026-11-01T06:30:00Z")));
    }

    #[test]
    fn guarded_next_fire() {
        let schedule = CronSchedule::parse("0 * * * *", UTC).unwrap();
        let now = utc("2026-11-23T10:20:00Z");
        // Never fired: next after now.
        assert_eq!(
            schedule.next_fire_guarded(None, now),
            Some(utc("2026-11-23T11:00:00Z"))
        );
        // Fired recently: next after now (equals next after last).
        assert_eq!(
            schedule.next_fire_guarded(Some(utc("2026-11-23T10:00:00Z")), now),
            Some(utc("2026-11-23T11:00:00Z"))
        );
        // Missed fires while down are not replayed.
        assert_eq!(
            schedule.next_fire_guarded(Some(utc("2026-11-20T10:00:00Z")), now),
            Some(utc("2026-11-23T11:00:00Z"))
        );
        // Wall clock went backwards: still strictly after the last fire.
        assert_eq!(
            schedule.next_fire_guarded(Some(utc("2026-11-23T12:00:00Z")), now),
            Some(utc("2026-11-23T13:00:00Z"))
        );
        // Woken exactly at the fire instant that was just broadcast.
        let fired = utc("2026-11-23T11:00:00Z");
        assert_eq!(
            schedule.next_fire_guarded(Some(fired), fired),
            Some(utc("2026-11-23T12:00:00Z"))
        );
        // Through the Helsinki overlap the guarded loop never repeats.
        let hel = CronSchedule::parse("30 3 * * *", Helsinki).unwrap();
        let first = hel
            .next_fire_guarded(None, utc("2026-10-24T12:00:00Z"))
            .unwrap();
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        let second = hel
            .next_fire_guarded(Some(first), utc("2026-10-25T01:30:00Z"))
            .unwrap();
        assert_eq!(second, utc("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn parse_errors_point_at_the_field() {
        let field_cases: &[(&str, &str, &str, &str)] = &[
            ("61 * * * *", "minute", "61", "must be 0-59"),
            ("* 24 * * *", "hour", "24", "must be 0-23"),
            ("* * 0 * *", "day-of-month", "0", "must be 1-31"),
            ("* * 32 * *", "day-of-month", "32", "must be 1-31"),
            ("* * * 13 *", "month", "13", "must be 1-12 or jan-dec"),
            ("* * * 0 *", "month", "0", "must be 1-12 or jan-dec"),
            ("* * * mon *", "month", "mon", "must be 1-12 or jan-dec"),
            ("* * * * 8", "day-of-week", "8", "must be 0-7 or sun-sat"),
            (
                "* * * * jan",
                "day-of-week",
                "jan",
                "must be 0-7 or sun-sat",
            ),
            (
                "* * * * monday",
                "day-of-week",
                "monday",
                "must be 0-7 or sun-sat",
            ),
            ("x * * * *", "minute", "x", "must be 0-59"),
            ("-5 * * * *", "minute", "-5", "must be 0-59"),
            ("1-2-3 * * * *", "minute", "1-2-3", "must be 0-59"),
            (
                "99999999999 * * * *",
                "minute",
                "99999999999",
                "must be 0-59",
            ),
            (
                "? * * * *",
                "minute",
                "?",
                "'?' is Quartz syntax and is not supported; use *",
            ),
            (
                "* * ? * *",
                "day-of-month",
                "?",
                "'?' is Quartz syntax and is not supported; use *",
            ),
            ("1,,2 * * * *", "minute", "1,,2", "empty element in list"),
            (
                "*/0 * * * *",
                "minute",
                "*/0",
                "step must be at least 1 (step 0 is not allowed; use 1 to 59)",
            ),
            (
                "* */x * * *",
                "hour",
                "*/x",
                "step must be a whole number from 1 to 23",
            ),
            (
                "*/60 * * * *",
                "minute",
                "*/60",
                "step must be a whole number from 1 to 59",
            ),
            (
                "5-1 * * * *",
                "minute",
                "5-1",
                "range start 5 is greater than range end 1 (wrap-around ranges are not supported)",
            ),
            (
                "* * * * sat-mon",
                "day-of-week",
                "sat-mon",
                "range start 6 is greater than range end 1 (wrap-around ranges are not supported)",
            ),
            (
                "0 0 30 2 *",
                "day-of-month",
                "30",
                "none of these days exists in the selected month(s)",
            ),
            (
                "0 0 31 apr,jun,sep,nov *",
                "day-of-month",
                "31",
                "none of these days exists in the selected month(s)",
            ),
        ];
        for (expr, field, value, reason) in field_cases {
            let err = CronSchedule::parse(expr, UTC).unwrap_err();
            assert_eq!(
                err,
                CronError::Field {
                    field,
                    value: value.to_string(),
                    reason: reason.to_string(),
                },
                "expression {expr:?}"
            );
            assert_eq!(translate_to_quartz(expr).unwrap_err(), err);
        }

        let err = CronSchedule::parse("* * * * 8", UTC).unwrap_err();
        assert_eq!(
            err.to_string(),
            "day-of-week field \"8\": must be 0-7 or sun-sat \
             (crontab syntax: minute hour day-of-month month day-of-week)"
        );

        // 30 February can still fire through the day-of-week (OR semantics).
        assert!(CronSchedule::parse("0 0 30 2 1", UTC).is_ok());
    }

    #[test]
    fn wrong_field_count_is_rejected() {
        for (expr, found) in [
            ("0 0 9 * * 1-5", 6),
            ("0 0 9 * * 1-5 2026", 7),
            ("0 9 * *", 4),
            ("", 0),
            ("   ", 0),
        ] {
            let err = CronSchedule::parse(expr, UTC).unwrap_err();
            assert_eq!(err, CronError::FieldCount { found }, "{expr:?}");
            let message = err.to_string();
            assert!(message.contains("expected 5 fields"), "{message}");
            assert!(message.contains("seconds"), "{message}");
            assert!(message.contains(&format!("found {found}")), "{message}");
        }
    }

    #[test]
    fn bad_aliases_are_rejected() {
        for expr in ["@reboot", "@every 5m", "@daily 0", "@"] {
            let err = CronSchedule::parse(expr, UTC).unwrap_err();
            assert!(
                matches!(err, CronError::UnknownAlias { .. }),
                "{expr:?}: {err}"
            );
        }
    }

    #[test]
    fn translation_to_quartz() {
        let cases = [
            ("0 9 * * 1-5", "0 0 9 * * 2,3,4,5,6"),
            ("0 9 * * Mon-Fri", "0 0 9 * * 2,3,4,5,6"),
            ("0 9 * * 0", "0 0 9 * * 1"),
            ("0 9 * * 7", "0 0 9 * * 1"),
            ("0 9 * * 5-7", "0 0 9 * * 1,6,7"),
            ("*/15 * * * *", "0 0,15,30,45 * * * *"),
            ("0 8-18/2 * * *", "0 0 8,10,12,14,16,18 * * *"),
            ("0 0 1 jan,jul *", "0 0 0 1 1,7 *"),
            ("0 0 13 * 5", "0 0 0 13 * 6"),
            ("* * * * *", "0 * * * * *"),
            ("0 0 * * 0-7", "0 0 0 * * *"),
            ("@weekly", "0 0 0 * * 1"),
        ];
        for (crontab, quartz) in cases {
            assert_eq!(translate_to_quartz(crontab).unwrap(), quartz, "{crontab:?}");
        }
    }

    /// Where crontab(5) and Quartz agree (at most one restricted day field,
    /// no DST), our matcher must produce exactly what the cron crate does
    /// with the translated expression.
    #[test]
    fn agrees_with_cron_crate_in_utc() {
        let exprs = [
            "0 9 * * 1-5",
            "0 9 * * 5-7",
            "*/15 * * * *",
            "0 8-18/2 * * *",
            "0 0 1 jan,jul *",
            "23 0-20/3 * * *",
            "5 4 * * sun",
            "0 12 */3 * *",
            "0 0 29 2 *",
            "0 0 */2 * 5",
            "15 10 1-7 * *",
            "0 6 * 3-5,10 1,3",
        ];
        let start = utc("2026-01-01T00:00:00Z");
        // The cron crate's year field stops at 2100, so compare before then.
        let horizon = utc("2100-01-01T00:00:00Z");
        for expr in exprs {
            let ours: Vec<DateTime<Utc>> = CronSchedule::parse(expr, UTC)
                .unwrap()
                .upcoming(start, 300)
                .into_iter()
                .filter(|t| *t < horizon)
                .collect();
            let quartz = translate_to_quartz(expr).unwrap();
            let theirs: Vec<DateTime<Utc>> = ::cron::Schedule::from_str(&quartz)
                .unwrap()
                .after(&start)
                .take(300)
                .filter(|t| *t < horizon)
                .collect();
            assert!(ours.len() >= 15, "{expr:?}");
            assert_eq!(ours, theirs, "{expr:?} / {quartz:?}");
        }
    }

    /// Documents the cron 0.17 behaviour this module guards against.
    #[test]
    fn cron_crate_misbehaviour_is_not_inherited() {
        // 1. It rejects the 5-field crontab form outright.
        assert!(::cron::Schedule::from_str("0 9 * * 1-5").is_err());

        // 2. Day-of-week 1 is Sunday there: a raw `1-5` means Sun-Thu.
        let raw = ::cron::Schedule::from_str("0 0 9 * * 1-5").unwrap();
        let raw_days: Vec<String> = raw
            .after(&utc("2026-11-22T00:00:00Z"))
            .take(5)
            .map(|t| t.format("%a").to_string())
            .collect();
        assert_eq!(raw_days, ["Sun", "Mon", "Tue", "Wed", "Thu"]);

        // 3. Both day fields restricted: the cron crate ANDs them (only
        //    Friday the 13th) where crontab(5) ORs them.
        let raw = ::cron::Schedule::from_str(&translate_to_quartz("0 0 13 * 5").unwrap()).unwrap();
        let raw_fires: Vec<DateTime<Utc>> =
            raw.after(&utc("2026-01-01T00:00:00Z")).take(3).collect();
        assert_eq!(
            fmt(&raw_fires),
            [
                "2026-02-13T00:00:00Z",
                "2026-03-13T00:00:00Z",
                "2026-11-13T00:00:00Z",
            ]
        );
        assert_eq!(
            fires("0 0 13 * 5", UTC, "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-02T00:00:00Z",
                "2026-01-09T00:00:00Z",
                "2026-01-13T00:00:00Z",
            ]
        );

        // 4. Autumn overlap in Helsinki: the repeated 03:00 and 03:30 fire
        //    twice each, and the sequence steps backwards (03:00 EET = 01:00Z
        //    is followed by 03:30 EEST = 00:30Z).
        let raw =
            ::cron::Schedule::from_str(&translate_to_quartz("*/30 * * * *").unwrap()).unwrap();
        let from = utc("2026-10-24T23:00:00Z").with_timezone(&Helsinki);
        let raw_fires: Vec<DateTime<Utc>> = raw
            .after(&from)
            .take(6)
            .map(|t| t.with_timezone(&Utc))
            .collect();
        assert_eq!(
            fmt(&raw_fires),
            [
                "2026-10-24T23:30:00Z",
                "2026-10-25T00:00:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-25T02:00:00Z",
            ]
        );
        assert!(raw_fires.windows(2).any(|pair| pair[1] < pair[0]));
        let ours = CronSchedule::parse("*/30 * * * *", Helsinki)
            .unwrap()
            .upcoming(utc("2026-10-24T23:00:00Z"), 6);
        assert_strictly_increasing(&ours);

        // 5. A daily 03:30 fires twice on the fall-back day.
        let raw = ::cron::Schedule::from_str(&translate_to_quartz("30 3 * * *").unwrap()).unwrap();
        let from = utc("2026-10-24T12:00:00Z").with_timezone(&Helsinki);
        let raw_fires: Vec<DateTime<Utc>> = raw
            .after(&from)
            .take(3)
            .map(|t| t.with_timezone(&Utc))
            .collect();
        assert_eq!(
            fmt(&raw_fires),
            [
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-26T01:30:00Z",
            ]
        );
        assert_eq!(
            fires("30 3 * * *", Helsinki, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
    }

    /// The reference the crate-backed evaluator is held to: every UTC minute
    /// after `after`, in order, fires when its local wall-clock time matches
    /// the crontab fields (crontab's day OR rule) and the minute is that
    /// local time's earliest instant (gap times never occur, repeated times
    /// fire once, at the first pass). `None`: no fire within `minutes`.
    fn reference_next(
        f: &Fields,
        tz: Tz,
        after: DateTime<Utc>,
        minutes: i64,
    ) -> Option<DateTime<Utc>> {
        use chrono::{Datelike, Timelike};
        let first = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        (0..minutes)
            .map(|m| first + Duration::minutes(m))
            .find(|t| {
                let local = t.with_timezone(&tz).naive_local();
                let dom = has(f.days_of_month, local.day());
                let dow = has(f.days_of_week, local.weekday().num_days_from_sunday());
                let day = if f.dom_restricted && f.dow_restricted {
                    dom || dow
                } else {
                    dom && dow
                };
                day && has(f.minutes, local.minute())
                    && has(f.hours, local.hour())
                    && has(f.months, local.month())
                    && tz
                        .from_local_datetime(&local)
                        .earliest()
                        .map(|e| e.to_utc())
                        == Some(*t)
            })
    }

    /// The instants in `year` where `tz` changes its offset (found hourly).
    fn transitions(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
        use chrono::Offset;
        let start = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap();
        let offset = |t: DateTime<Utc>| t.with_timezone(&tz).offset().fix();
        (0..366 * 24)
            .map(|h| start + Duration::hours(h))
            .filter(|t| offset(*t) != offset(*t + Duration::hours(1)))
            .collect()
    }

    fn field(max: u32, first: u32) -> impl Strategy<Value = String> {
        let value = first..=max;
        prop_oneof![
            3 => Just("*".to_string()),
            2 => (1..=max.min(20)).prop_map(|n| format!("*/{n}")),
            2 => value.clone().prop_map(|a| a.to_string()),
            2 => (value.clone(), value.clone(), 1..=max.min(12))
                .prop_map(|(a, b, n)| format!("{}-{}/{n}", a.min(b), a.max(b))),
            1 => (value.clone(), value).prop_map(|(a, b)| format!("{a},{b}")),
        ]
    }

    fn expression() -> impl Strategy<Value = String> {
        let month = prop_oneof![4 => Just("*".to_string()), 1 => field(12, 1)];
        (field(59, 0), field(23, 0), field(31, 1), month, field(7, 0))
            .prop_map(|(mi, h, dom, mo, dow)| format!("{mi} {h} {dom} {mo} {dow}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Every parsed expression, in zones with whole-hour, half-hour
        /// (Lord Howe) and 45-minute (Chatham) offsets, from instants around
        /// their DST changes, fires exactly when the minute-by-minute
        /// reference says: same next instant, or none within four days.
        #[test]
        fn the_crate_backed_evaluator_matches_the_minute_by_minute_reference(
            expr in expression(),
            zone in proptest::sample::select(vec![
                Helsinki,
                New_York,
                chrono_tz::Australia::Lord_Howe,
                chrono_tz::Pacific::Chatham,
                chrono_tz::America::Santiago,
                UTC,
            ]),
            year in 2026i32..2030,
            which in 0usize..4,
            offset_secs in prop_oneof![-2 * 86_400i64..86_400, -7_200i64..7_200],
        ) {
            let Ok(fields) = parse_fields(&expr) else { return Ok(()) };
            let schedule = CronSchedule::parse(&expr, zone).unwrap();
            let changes = transitions(zone, year);
            let base = changes
                .get(which % changes.len().max(1))
                .copied()
                .unwrap_or_else(|| Utc.with_ymd_and_hms(year, 3, 1, 0, 0, 0).unwrap());
            let after = base + Duration::seconds(offset_secs);
            let horizon = 4 * 24 * 60;
            let ours = schedule.next_after(after);
            match reference_next(&fields, zone, after, horizon) {
                Some(expected) => prop_assert_eq!(ours, Some(expected), "{} in {} after {}", expr, zone, after),
                None => prop_assert!(
                    ours.is_none_or(|t| t > after + Duration::minutes(horizon)),
                    "{} in {} after {}: {:?} but the reference has none", expr, zone, after, ours
                ),
            }
        }
    }
}
