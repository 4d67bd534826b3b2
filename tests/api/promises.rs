//! Promises of a next update as a duty officer in Helsinki meets them (issue 19, item 6), with
//! the real binary as the client: times of day are read in the organisation's zone, answers show
//! the instant in that zone first and then UTC, across the night the clocks change; a standing
//! promise is kept unless withdrawn, and one that has passed is said to have lapsed; an overdue
//! promise shows in `/metrics`. And the start-up and shutdown of `serve` (item 11).

use crate::helpers::{bin, crier, spawn_app_with, TestApp};
use chrono::{DateTime, Duration as Span, Utc};
use crier::store::port::Incidents;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn out(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// A server in Helsinki whose clock starts at `start`.
async fn helsinki(start: &str) -> TestApp {
    let start = at(start);
    spawn_app_with(&[], move |c| {
        c.render.timezone = "Europe/Helsinki".parse().unwrap();
        c.clock_start = Some(start);
    })
    .await
}

/// Waits (bounded) until `/metrics` reports `n` overdue promises; the scheduler sets the gauge
/// on its next tick.
async fn overdue_gauge_reaches(app: &TestApp, n: u64) {
    let want = format!("crier_promises_overdue {n}\n");
    let mut last = String::new();
    for _ in 0..300 {
        last = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if last.contains(&want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/metrics never reported {want:?}:\n{last}");
}

/// Saturday 2026-10-24 23:00 in Helsinki (EEST, UTC+3); at 04:00 on Sunday the clocks go back to
/// 03:00 (EET, UTC+2).
#[tokio::test]
async fn promises_are_read_and_shown_in_helsinki_time_across_the_autumn_change() {
    let app = helsinki("2026-10-24T20:00:00Z").await;

    // 14:00 typed on Saturday night is Sunday's 14:00, after the change: EET, 12:00 UTC.
    let o = crier(
        &app,
        &[
            "incident",
            "open",
            "--title",
            "Check-in delays",
            "--impact",
            "major",
            "--message",
            "Investigating.",
            "--next-update-at",
            "14:00",
        ],
    )
    .await;
    let text = out(&o);
    assert!(
        text.contains("next update by 2026-10-25 14:00 EET (12:00 UTC)"),
        "{text}"
    );
    let id = text.split_whitespace().nth(2).unwrap().to_owned();
    assert_eq!(id.len(), 26, "{text}");

    // The API answer carries the zone and the local instant.
    let show: Value = serde_json::from_slice(
        &crier(&app, &["--json", "incident", "show", &id])
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(show["timezone"], "Europe/Helsinki", "{show}");
    assert_eq!(show["next_update_due"], "2026-10-25T12:00:00Z");
    assert_eq!(show["next_update_due_local"], "2026-10-25T14:00:00+02:00");

    // 03:30 happens twice that night; the first (still summer time) is meant, and the answer
    // names which by its abbreviation.
    let update = |extra: &[&str]| {
        let mut args = vec![
            "incident",
            "update",
            id.as_str(),
            "--status",
            "identified",
            "--message",
            "A baggage system fault.",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let app = &app;
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            out(&crier(app, &a).await)
        }
    };
    let text = run(update(&["--next-update-at", "03:30"])).await;
    assert!(
        text.contains("next update by 2026-10-25 03:30 EEST (00:30 UTC)"),
        "{text}"
    );
    // A relative promise across the change: 8 hours from 23:00 EEST is 06:00 EET (plus the
    // moments the test has run on the server's clock).
    let text = run(update(&["--next-update", "8h"])).await;
    assert!(
        text.contains("next update by 2026-10-25 06:0") && text.contains(" EET (04:0"),
        "{text}"
    );
    let promised = text
        .lines()
        .find_map(|l| l.strip_prefix("  next update by "))
        .unwrap()
        .to_owned();

    // An update without a promise keeps the standing one, and says so.
    let text = run(update(&[])).await;
    assert!(
        text.contains(&format!("next update by {promised} (the promise stands")),
        "{text}"
    );
    let posted: Value = serde_json::from_str(&{
        let mut a = vec!["--json".to_owned()];
        a.extend(update(&[]));
        run(a).await
    })
    .unwrap();
    assert_eq!(posted["promise"]["change"], "kept", "{posted}");
    let due = posted["incident"]["next_update_due"].as_str().unwrap();
    assert!(due.starts_with("2026-10-25T04:0"), "{posted}");
    assert_eq!(
        posted["update"]["next_update_due"], due,
        "the update repeats the standing promise"
    );
    assert_eq!(posted["incident"]["timezone"], "Europe/Helsinki");
    assert!(
        posted["incident"]["next_update_due_local"]
            .as_str()
            .unwrap()
            .ends_with("+02:00"),
        "{posted}"
    );

    // Withdrawn only on request, and the answer says what was withdrawn.
    let text = run(update(&["--no-next-update"])).await;
    assert!(
        text.contains(&format!(
            "promise withdrawn: no next update is promised now (it was by {promised})"
        )),
        "{text}"
    );
    let show: Value = serde_json::from_slice(
        &crier(&app, &["--json", "incident", "show", &id])
            .await
            .stdout,
    )
    .unwrap();
    assert!(show["next_update_due"].is_null(), "{show}");
    // A new promise and a withdrawal at once is refused.
    let o = crier(
        &app,
        &[
            "incident",
            "update",
            &id,
            "--status",
            "identified",
            "--message",
            "x",
            "--next-update",
            "1h",
            "--no-next-update",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "a usage error");

    // A promise made earlier that has passed by the server's clock (the API refuses past
    // promises, so it is written through the store): counted in /metrics, flagged in the list,
    // and an update without a promise says it lapsed.
    use crier::domain::NewIncident;
    use crier::domain::{Body, Impact, IncidentKind, Locale, Title};
    let start = at("2026-10-24T20:00:00Z");
    let (late, _) = app
        .store
        .create_incident(
            NewIncident {
                titles: Default::default(),
                title: Title::parse("Late").unwrap(),
                kind: IncidentKind::Incident,
                status: None,
                impact: Impact::Major,
                components: vec![],
                body: Body::single(Locale::english(), "m").unwrap(),
                author: "t".into(),
                next_update_due: Some(start - Span::minutes(10)),
                draft: false,
                broadcast: vec![],
                scheduled_for: None,
                scheduled_until: None,
                holding_statement: false,
                remind_before: None,
            },
            start - Span::minutes(40),
        )
        .await
        .unwrap();
    overdue_gauge_reaches(&app, 1).await;
    let list = out(&crier(&app, &["incident", "list"]).await);
    assert!(
        list.contains("2026-10-24 22:50 EEST (19:50 UTC) OVERDUE"),
        "{list}"
    );
    let late = late.id.to_string();
    let text = out(&crier(
        &app,
        &[
            "incident",
            "update",
            &late,
            "--status",
            "identified",
            "--message",
            "Found it.",
        ],
    )
    .await);
    assert!(
        text.contains("no next update is promised now: the promise of 2026-10-24 22:50 EEST (19:50 UTC) had passed, so it could not be kept"),
        "{text}"
    );
    overdue_gauge_reaches(&app, 0).await;
}

/// Sunday 2027-03-28 01:00 in Helsinki (EET): at 03:00 the clocks go forward to 04:00, so 03:30
/// does not exist that day; 05:00 is already summer time.
#[tokio::test]
async fn a_time_skipped_by_the_spring_change_is_refused_and_writes_nothing() {
    let app = helsinki("2027-03-27T23:00:00Z").await;
    let before = app.checksum().await;
    let o = crier(
        &app,
        &[
            "incident",
            "open",
            "--title",
            "Night work",
            "--impact",
            "minor",
            "--message",
            "m",
            "--next-update-at",
            "03:30",
        ],
    )
    .await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(
            "03:30 does not exist on 2027-03-28 in Europe/Helsinki (the clocks go forward)"
        ),
        "{err}"
    );
    assert_eq!(app.checksum().await, before, "nothing written");
    let text = out(&crier(
        &app,
        &[
            "incident",
            "open",
            "--title",
            "Night work",
            "--impact",
            "minor",
            "--message",
            "m",
            "--next-update-at",
            "05:00",
        ],
    )
    .await);
    assert!(
        text.contains("next update by 2027-03-28 05:00 EEST (02:00 UTC)"),
        "{text}"
    );
}

/// `crier serve` as a child with a clean environment; returns its stderr lines up to and
/// including the listening line, and the child.
fn serve(
    dir: &std::path::Path,
    config: Option<&std::path::Path>,
    env: &[(&str, &str)],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(bin());
    cmd.arg("serve");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(["--bind", "127.0.0.1:0", "--data"])
        .arg(dir.join("data"))
        .arg("--channels")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/channels"))
        .arg("--templates")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines until one containing `needle` (bounded wait), that line included.
fn lines_until(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => {
                let done = l.contains(needle);
                lines.push(l);
                if done {
                    return lines;
                }
            }
            Err(_) => panic!("no line with {needle:?}; got:\n{}", lines.join("\n")),
        }
    }
}

fn sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    child.wait().unwrap()
}

/// The shipped channels with no credentials in the environment are a correct setup: start-up
/// prints one summary line (where, data, time zone, channels and where to read more) and no
/// warning; SIGTERM ends with a line saying what was finished and flushed. A half-configured
/// channel is a real problem: exactly it gets a warning.
#[test]
fn startup_of_the_shipped_configuration_prints_one_summary_and_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = serve(dir.path(), None, &[]);
    let lines = lines_until(&rx, "listening on http://");
    let warns: Vec<&String> = lines.iter().filter(|l| l.contains(" WARN ")).collect();
    assert!(warns.is_empty(), "{warns:#?}");
    let summary = lines.last().unwrap();
    for part in [
        "times of day in UTC (set `timezone` in crier.toml for another)",
        "channels: 2 active (log, log-public); 13 waiting for credentials (bluesky, discord, email, facebook, mastodon, matrix, slack, sms, teams, telegram, vonage, webhook, x)",
        "`crier channels check` and GET /readyz say what each needs",
    ] {
        assert!(summary.contains(part), "{part:?} not in {summary}");
    }
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("channel skipped") || l.contains("channel active")),
        "one line for the channels: {lines:#?}"
    );
    assert!(sigterm(&mut child).success());
    let rest: Vec<String> = rx.iter().collect();
    let last = rest.last().expect("a final line");
    assert!(
        last.contains("crier stopped: in-flight requests answered, scheduler stopped, 2 channel worker(s) finished their sends, store flushed to disk"),
        "{rest:#?}"
    );
    assert!(!rest.iter().any(|l| l.contains(" WARN ")), "{rest:#?}");

    // Half-configured: the SID set, the token missing. The organisation's zone is named.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crier.toml");
    std::fs::write(&config, "timezone = \"Europe/Helsinki\"\n").unwrap();
    let (mut child, rx) = serve(
        dir.path(),
        Some(&config),
        &[("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef")],
    );
    let lines = lines_until(&rx, "listening on http://");
    let warns: Vec<&String> = lines.iter().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warns.len(), 1, "{lines:#?}");
    assert!(
        warns[0].contains("credentials missing: set TWILIO_AUTH_TOKEN") && warns[0].contains("sms"),
        "{}",
        warns[0]
    );
    assert!(
        !warns[0].contains("0123456789abcdef"),
        "never the value: {}",
        warns[0]
    );
    let summary = lines.last().unwrap();
    assert!(
        summary.contains("times of day in Europe/Helsinki;")
            && summary.contains("12 waiting for credentials")
            && summary.contains("1 misconfigured (sms)"),
        "{summary}"
    );
    assert!(sigterm(&mut child).success());
}
