//! `crier notice next` (offline): crontab(5) semantics and DST behaviour, as a table.

use crate::helpers::bin;

fn next(cron: &str, tz: &str, after: &str, count: usize) -> Vec<String> {
    let o = std::process::Command::new(bin())
        .args([
            "--json", "notice", "next", "--cron", cron, "--tz", tz, "--after", after, "--count",
        ])
        .arg(count.to_string())
        .env_remove("CRIER_TOKEN")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{cron}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["fires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn fire_times_table() {
    // 2026-11-21 is a Saturday.
    let weekdays = [
        "2026-11-23T09:00:00Z",
        "2026-11-24T09:00:00Z",
        "2026-11-25T09:00:00Z",
        "2026-11-26T09:00:00Z",
        "2026-11-27T09:00:00Z",
    ];
    let sundays = ["2026-11-22T09:00:00Z", "2026-11-29T09:00:00Z"];
    let table: &[(&str, &str, &str, usize, &[&str])] = &[
        ("0 9 * * 1-5", "UTC", "2026-11-21T00:00:00Z", 5, &weekdays),
        (
            "0 9 * * Mon-Fri",
            "UTC",
            "2026-11-21T00:00:00Z",
            5,
            &weekdays,
        ),
        (
            "0 9 * * mon,tue,wed,thu,fri",
            "UTC",
            "2026-11-21T00:00:00Z",
            5,
            &weekdays,
        ),
        ("0 9 * * 0", "UTC", "2026-11-21T00:00:00Z", 2, &sundays),
        ("0 9 * * 7", "UTC", "2026-11-21T00:00:00Z", 2, &sundays),
        ("0 9 * * Sun", "UTC", "2026-11-21T00:00:00Z", 2, &sundays),
        (
            "*/15 * * * *",
            "UTC",
            "2026-11-23T10:07:00Z",
            3,
            &[
                "2026-11-23T10:15:00Z",
                "2026-11-23T10:30:00Z",
                "2026-11-23T10:45:00Z",
            ],
        ),
        (
            "0 8,12,16 * * *",
            "UTC",
            "2026-11-23T09:00:00Z",
            3,
            &[
                "2026-11-23T12:00:00Z",
                "2026-11-23T16:00:00Z",
                "2026-11-24T08:00:00Z",
            ],
        ),
        (
            "0 8-18/4 * * *",
            "UTC",
            "2026-11-23T09:00:00Z",
            3,
            &[
                "2026-11-23T12:00:00Z",
                "2026-11-23T16:00:00Z",
                "2026-11-24T08:00:00Z",
            ],
        ),
        // Helsinki local time, shown in UTC: 09:00 EET is 07:00Z.
        (
            "0 9 * * 1-5",
            "Europe/Helsinki",
            "2026-11-21T00:00:00Z",
            1,
            &["2026-11-23T07:00:00Z"],
        ),
        // Spring forward 2026-03-29 03:00 -> 04:00: 03:30 does not exist that day and is skipped.
        (
            "30 3 * * *",
            "Europe/Helsinki",
            "2026-03-27T12:00:00Z",
            2,
            &["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"],
        ),
        // Fall back 2026-10-25 04:00 -> 03:00: 03:30 happens twice and fires once (the first).
        (
            "30 3 * * *",
            "Europe/Helsinki",
            "2026-10-24T12:00:00Z",
            2,
            &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        ),
        // Every half hour across the fall-back: strictly increasing, the repeated hour once.
        (
            "*/30 * * * *",
            "Europe/Helsinki",
            "2026-10-24T23:00:00Z",
            6,
            &[
                "2026-10-24T23:30:00Z",
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T02:00:00Z",
                "2026-10-25T02:30:00Z",
                "2026-10-25T03:00:00Z",
            ],
        ),
        // New York: 2026-03-08 02:00 -> 03:00 (02:30 skipped); 2026-11-01 02:00 -> 01:00 (01:30 once).
        (
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00:00Z",
            2,
            &["2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"],
        ),
        (
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            2,
            &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        ),
    ];
    for (cron, tz, after, count, want) in table {
        let got = next(cron, tz, after, *count);
        assert_eq!(&got, want, "{cron} in {tz} after {after}");
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "{cron}: not strictly increasing: {got:?}"
        );
    }
}

#[test]
fn bad_expressions_point_at_the_field() {
    for (cron, needle) in [
        ("0 9 * * 8", "day-of-week"),
        ("61 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day-of-month"),
        ("* * * 13 *", "month"),
        ("0 0 9 * * 1-5", "5 fields"),
    ] {
        let o = std::process::Command::new(bin())
            .args(["notice", "next", "--cron", cron, "--tz", "UTC"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{cron}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{cron}: {err}");
    }
    let o = std::process::Command::new(bin())
        .args([
            "notice",
            "next",
            "--cron",
            "0 9 * * *",
            "--tz",
            "Europe/Helsinky",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("IANA"));
}
