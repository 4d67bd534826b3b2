//! A length of time as people write it — `500ms`, `30s`, `5m`, `1h30m`, `2d` — parsed in one
//! place. Durations arrive from the API (`next_update`), the CLI, channel files (rates, send
//! timeouts, retry schedules) and the config (reminders, grace periods, hold-downs); each of
//! those once had its own parser, and one of them turned `9999999999999999h` into a panic. This
//! parser does checked arithmetic on every digit and stops at a maximum, so any string gives
//! either a bounded [`Span`] or an error that names the allowed units and the limit.

use std::fmt;
use std::time::Duration;

/// A parsed, bounded length of time (never more than [`Span::MAX`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(Duration);

/// The units a span may use, for error messages.
const UNITS: &str = "ms, s, m, h or d";

const MS_PER_DAY: u64 = 86_400_000;

/// Why a string is not an acceptable span. Shows at most the first 40 characters of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanError {
    input: String,
    problem: String,
    min: Span,
    max: Span,
}

impl fmt::Display for SpanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" {}; write numbers with units ({UNITS}), e.g. 30s, 5m or 1h30m, ",
            self.input, self.problem
        )?;
        if self.min.is_zero() {
            write!(f, "at most {}", self.max)
        } else {
            write!(f, "from {} to {}", self.min, self.max)
        }
    }
}

impl std::error::Error for SpanError {}

impl Span {
    /// The longest span crier accepts anywhere: a year.
    pub const MAX: Span = Span(Duration::from_millis(365 * MS_PER_DAY));
    pub const ZERO: Span = Span(Duration::ZERO);

    /// Parses a span of at most [`Span::MAX`].
    pub fn parse(s: &str) -> Result<Span, SpanError> {
        Span::parse_in(s, Span::ZERO, Span::MAX)
    }

    /// Parses a span from `min` to `max` (inclusive; `max` is capped at [`Span::MAX`]).
    pub fn parse_in(s: &str, min: Span, max: Span) -> Result<Span, SpanError> {
        let max = max.min(Span::MAX);
        let err = |problem: String| SpanError {
            input: shown(s),
            problem,
            min,
            max,
        };
        let too_long = || err(format!("is longer than {max}"));
        let limit = u64::try_from(max.0.as_millis()).unwrap_or(u64::MAX);
        let t = s.trim();
        if t.is_empty() {
            return Err(err("is empty".into()));
        }
        let mut total: u64 = 0;
        let mut chars = t.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            if !c.is_ascii_digit() {
                return Err(err(format!(
                    "has \"{}\" where a number should be",
                    shown(&t[start..])
                )));
            }
            let mut n: u64 = 0;
            while let Some(&(_, c)) = chars.peek() {
                let Some(d) = c.to_digit(10) else { break };
                // A number past the limit can only make the span too long.
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .filter(|n| *n <= limit)
                    .ok_or_else(too_long)?;
                chars.next();
            }
            let unit_start = chars.peek().map(|&(i, _)| i).unwrap_or(t.len());
            while chars.peek().is_some_and(|&(_, c)| c.is_alphabetic()) {
                chars.next();
            }
            let unit_end = chars.peek().map(|&(i, _)| i).unwrap_or(t.len());
            let per_ms: u64 = match &t[unit_start..unit_end] {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => MS_PER_DAY,
                "" => return Err(err("lacks a unit after a number".into())),
                other => return Err(err(format!("has the unknown unit \"{}\"", shown(other)))),
            };
            total = n
                .checked_mul(per_ms)
                .and_then(|ms| total.checked_add(ms))
                .filter(|ms| *ms <= limit)
                .ok_or_else(too_long)?;
        }
        let span = Span(Duration::from_millis(total));
        if span < min {
            return Err(err(format!("is shorter than {min}")));
        }
        Ok(span)
    }

    /// A span of whole seconds, for defaults and tests (capped at [`Span::MAX`]).
    pub const fn from_secs(secs: u64) -> Span {
        let d = Duration::from_secs(secs);
        if d.as_secs() > Span::MAX.0.as_secs() {
            Span::MAX
        } else {
            Span(d)
        }
    }

    /// A span of milliseconds, for limits (capped at [`Span::MAX`]).
    pub const fn from_millis(ms: u64) -> Span {
        let d = Duration::from_millis(ms);
        if d.as_millis() > Span::MAX.0.as_millis() {
            Span::MAX
        } else {
            Span(d)
        }
    }

    pub fn as_std(self) -> Duration {
        self.0
    }

    /// As a chrono duration, for arithmetic with instants (exact: a span is at most a year).
    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Span> for Duration {
    fn from(s: Span) -> Duration {
        s.0
    }
}

impl std::str::FromStr for Span {
    type Err = SpanError;
    fn from_str(s: &str) -> Result<Span, SpanError> {
        Span::parse(s)
    }
}

/// Writes the span in the form it is parsed from, largest units first: `1h30m`, `500ms`, `0s`.
impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", MS_PER_DAY),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

/// The input as an error message shows it: at most 40 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.trim().chars().take(40).collect();
    if s.trim().chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Span {
        Span(Duration::from_millis(n))
    }

    #[test]
    fn parses_every_unit_and_combinations() {
        assert_eq!(Span::parse("500ms").unwrap(), ms(500));
        assert_eq!(Span::parse("30s").unwrap(), ms(30_000));
        assert_eq!(Span::parse(" 5m ").unwrap(), ms(300_000));
        assert_eq!(Span::parse("1h30m").unwrap(), ms(5_400_000));
        assert_eq!(Span::parse("2d").unwrap(), ms(2 * MS_PER_DAY));
        assert_eq!(Span::parse("1m5s").unwrap(), ms(65_000));
        assert_eq!(Span::parse("0s").unwrap(), Span::ZERO);
        assert_eq!(Span::parse("365d").unwrap(), Span::MAX);
    }

    #[test]
    fn rejects_with_the_units_and_the_limit() {
        for bad in [
            "",
            "30",
            "m",
            "30x",
            "1h30",
            "-5m",
            "5 m",
            "1.5h",
            "30S",
            "9999999999999999h",
            "366d",
            "99999999999999999999999999999s",
            "h1",
        ] {
            let e = Span::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("ms, s, m, h or d") && e.contains("at most 365d"),
                "{bad}: {e}"
            );
        }
        let e = Span::parse("9999999999999999h").unwrap_err().to_string();
        assert!(e.contains("longer than 365d"), "{e}");
        let e = Span::parse_in("10s", Span::from_secs(60), Span::from_secs(7 * 86_400))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("shorter than 1m") && e.contains("from 1m to 7d"),
            "{e}"
        );
    }

    #[test]
    fn long_input_is_cut_in_the_message() {
        let e = Span::parse(&"x".repeat(10_000)).unwrap_err().to_string();
        assert!(e.len() < 300, "{e}");
    }

    #[test]
    fn displays_as_it_parses() {
        for s in ["0s", "500ms", "1h30m", "2d3h", "1m1s1ms", "365d"] {
            assert_eq!(Span::parse(s).unwrap().to_string(), s);
        }
    }

    proptest! {
        /// Any string at all gives a span within the bounds or an error: never a panic.
        #[test]
        fn never_panics_and_stays_in_bounds(s in any::<String>()) {
            if let Ok(span) = Span::parse(&s) {
                prop_assert!(span <= Span::MAX);
            }
        }

        /// Strings made of the parser's own alphabet reach its arithmetic paths.
        #[test]
        fn digits_and_units_never_panic(s in "[0-9msdh ]{0,40}") {
            if let Ok(span) = Span::parse(&s) {
                prop_assert!(span <= Span::MAX);
                prop_assert_eq!(Span::parse(&span.to_string()), Ok(span));
            }
        }
    }
}
