//! Fuzzes the crontab(5) parser and the fire-time search: any expression in any of a set of
//! awkward time zones either is refused with an error, or yields fire times that are strictly
//! increasing, strictly after the start, on whole minutes, each the earliest instant of its
//! local wall-clock time, with nothing skipped between two consecutive ones.
#![no_main]

use chrono::{Duration, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use crier::schedule::cron::CronSchedule;
use libfuzzer_sys::fuzz_target;

/// Zones with DST at midnight, half-hour DST, a skipped day, odd offsets and none at all.
const ZONES: [Tz; 9] = [
    Tz::UTC,
    Tz::Europe__Helsinki,
    Tz::America__New_York,
    Tz::Australia__Lord_Howe,
    Tz::Pacific__Chatham,
    Tz::America__Santiago,
    Tz::Asia__Kathmandu,
    Tz::Pacific__Apia,
    Tz::America__St_Johns,
];

/// The input: byte 0 picks the zone, bytes 1..9 the start (i64 LE seconds, folded into
/// 1900..2200), bytes 9..13 the last fire (u32 LE minutes after a year before the start, 0 for
/// none), the rest is the expression (so corpus files are readable).
struct Input {
    zone: u8,
    start: i64,
    last_fired: Option<u32>,
    expr: String,
}

fn input(data: &[u8]) -> Option<Input> {
    let (head, expr) = data.split_at_checked(13)?;
    let last = u32::from_le_bytes(head[9..13].try_into().ok()?);
    Some(Input {
        zone: head[0],
        start: i64::from_le_bytes(head[1..9].try_into().ok()?),
        last_fired: (last != 0).then_some(last),
        expr: std::str::from_utf8(expr).ok()?.to_owned(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else {
        return;
    };
    let tz = ZONES[usize::from(input.zone) % ZONES.len()];
    let Ok(schedule) = CronSchedule::parse(&input.expr, tz) else {
        return;
    };
    assert_eq!(schedule.expression(), input.expr);
    const SPAN: i64 = 300 * 365 * 86_400;
    let secs = input.start.rem_euclid(SPAN) - 70 * 365 * 86_400;
    let Some(after) = Utc.timestamp_opt(secs, 0).single() else {
        return;
    };
    let fires = schedule.upcoming(after, 6);
    let mut prev = after;
    for &f in &fires {
        assert!(f > prev, "{:?}: {f} is not after {prev}", input.expr);
        let local = f.with_timezone(&tz);
        assert_eq!(
            (local.second(), local.nanosecond()),
            (0, 0),
            "{f} not on a minute"
        );
        // The earliest occurrence of its wall-clock time (overlaps fire once, at the first).
        let earliest = tz.from_local_datetime(&local.naive_local()).earliest();
        assert_eq!(
            earliest.map(|e| e.with_timezone(&Utc)),
            Some(f),
            "{:?}",
            input.expr
        );
        // Nothing between the previous fire and this one: searching from just before `f`
        // finds `f` itself.
        let just_before = f - Duration::seconds(1);
        if just_before > prev {
            assert_eq!(
                schedule.next_after(just_before),
                Some(f),
                "{:?}",
                input.expr
            );
        }
        prev = f;
    }
    if let Some(first) = fires.first() {
        assert_eq!(schedule.next_after(after), Some(*first));
    }
    // The guarded variant never repeats or goes back before the last fire, nor before now.
    let last = input
        .last_fired
        .map(|m| after + Duration::minutes(i64::from(m % 5_000_000)) - Duration::days(365));
    if let Some(next) = schedule.next_fire_guarded(last, after) {
        assert!(next > after);
        if let Some(l) = last {
            assert!(next > l);
        }
    }
});
