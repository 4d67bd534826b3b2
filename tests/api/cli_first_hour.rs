//! The real binary as a duty officer meets it in the first hour (issue 19): flags that work where
//! they are offered, help and error messages that say what to do, delivery counts that add up,
//! resolutions that restore components, an offline preview that invents nothing, and editing a
//! subscriber.

use crate::helpers::{
    bin, crier, env, json as json_of, spawn_app, spawn_app_with, stderr, stdout, ServeProcess,
    TestApp,
};
use serde_json::{json, Value};
use std::process::Output;
use std::time::Duration;

/// The binary without a server: usage errors, help, offline commands. A command that does not
/// finish (a `serve` that started instead of refusing) is killed and fails the test.
async fn offline(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(bin())
        .args(args)
        .env_remove("CRIER_URL")
        .env_remove("CRIER_TOKEN")
        .env_remove("CRIER_CONFIG")
        .env_remove("CRIER_TEMPLATES")
        .env("CRIER_DATA", "/nonexistent/crier-test-data")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("crier {args:?} did not finish (serve started?)"))
        .unwrap()
}

#[tokio::test]
async fn serve_refuses_client_flags_and_hides_them_from_its_help() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    for args in [
        vec!["serve", "--data", d, "--token", "X"],
        vec!["--token", "X", "serve", "--data", d],
    ] {
        let o = offline(&args).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("admin_token_env") && e.contains("CRIER_ADMIN_TOKEN"),
            "{e}"
        );
        assert!(e.contains("admin.token"), "{e}");
    }
    let o = offline(&["serve", "--data", d, "--url", "http://127.0.0.1:1"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--bind"), "{}", stderr(&o));
    let o = offline(&["serve", "--data", d, "--json"]).await;
    assert_eq!(o.status.code(), Some(2));
    // Nothing was started: no store, no generated token.
    assert!(!data.path().join("admin.token").exists());

    let o = offline(&["serve", "--help"]).await;
    assert!(o.status.success());
    let help = stdout(&o);
    assert!(help.contains("--bind"), "{help}");
    for flag in ["--url", "--token", "--json"] {
        assert!(!help.contains(flag), "serve --help lists {flag}:\n{help}");
    }
    let o = offline(&["incident", "list", "--help"]).await;
    let help = stdout(&o);
    assert!(help.contains("Client options:"), "{help}");
    assert!(help.contains("--token"), "{help}");

    // An exported CRIER_URL / CRIER_TOKEN (a client's settings) does not stop `serve`.
    let channels = data.path().join("no-channels");
    let srv = ServeProcess::start_env(
        data.path(),
        &channels,
        None,
        &[("CRIER_URL", "http://127.0.0.1:1"), ("CRIER_TOKEN", "x")],
    );
    srv.terminate();
}

#[tokio::test]
async fn help_describes_every_argument_and_statuses_forgive_case_and_typos() {
    let o = offline(&["incident", "update", "--help"]).await;
    let help = stdout(&o);
    for (arg, words) in [
        ("<ID>", "incident's id"),
        ("--message", "update's text"),
        ("--next-update ", "30m"),
        ("--locale", "e.g. fi"),
        ("--impact", "none, minor, major or critical"),
        ("--draft", "draft"),
    ] {
        let line = help
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(arg))
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(line.contains(words), "{arg}: {line:?}\n{help}");
    }
    let o = offline(&["serve", "--help"]).await;
    assert!(!stdout(&o).contains("and later"), "{}", stdout(&o));

    let app = spawn_app().await;
    let id = app.open_incident("Check-in delays").await;
    let o = crier(
        &app,
        &[
            "incident",
            "update",
            &id,
            "--status",
            "Identified",
            "--message",
            "Found",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("now identified"), "{}", stdout(&o));
    let o = crier(
        &app,
        &[
            "incident",
            "update",
            &id,
            "--status",
            "resovled",
            "--message",
            "Fixed",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Did you mean \"resolved\"?"),
        "{}",
        stderr(&o)
    );
    let o = crier(&app, &["component", "set", "Check-in", "Partial-Outage"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
}

#[tokio::test]
async fn misleading_messages_say_what_is_wrong() {
    let app = spawn_app().await;
    // A URL without a scheme is a usage error, not "unreachable", while the server runs.
    let hostport = app.base.trim_start_matches("http://").to_owned();
    let o = tokio::process::Command::new(bin())
        .args([
            "--url", &hostport, "--token", &app.token, "incident", "list",
        ])
        .env_remove("CRIER_URL")
        .env_remove("CRIER_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no http:// or https:// scheme"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("cannot reach"), "{}", stderr(&o));

    // A spreadsheet's `;`-separated CSV imports.
    let csv = app.dir.path().join("semicolons.csv");
    std::fs::write(
        &csv,
        "email;phone;locale\nanna@example.com;;fi\n;+358 40 765 4321;sv\n",
    )
    .unwrap();
    let o = crier(
        &app,
        &["subscribers", "import", csv.to_str().unwrap(), "--json"],
    )
    .await;
    let v = json_of(&o);
    assert_eq!(v["added"], 2, "{v}");
    assert_eq!(v["rejected"], 0, "{v}");

    // A number with E.164's shape but no such number in its country is refused, one rule for
    // the CLI, the API and the import.
    let before = app.checksum().await;
    let o = crier(&app, &["subscribers", "add", "--phone", "+1 555 0100"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("numbering plan"), "{}", stderr(&o));
    let r = app
        .post("/api/v1/subscribers", json!({"phone": "+44 20 7946"}))
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(app.checksum().await, before);
    let o = crier(
        &app,
        &["subscribers", "add", "--phone", "+1 (202) 555-0123"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Polls the delivery status until `ok` holds (bounded; no fixed sleeps in assertions).
async fn wait_status(app: &TestApp, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let r = app.get(&format!("/api/v1/incidents/{id}/deliveries")).await;
        if ok(&r.body) {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the delivery status of {id} never matched");
}

#[tokio::test]
async fn delivery_states_add_up_to_the_total_and_failures_say_when_next() {
    let mock = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .mount(&mock)
        .await;
    let hook = format!("{}/slack/hook", mock.uri());
    let app = spawn_app_with(
        &[(
            "ops",
            "kind = \"slack\"\nwebhook_url_env = \"CRIER_H19_SLACK\"\n",
        )],
        |c| c.env = env(&[("CRIER_H19_SLACK", &hook)]),
    )
    .await;
    let id = app.open_incident("Check-in delays").await;
    wait_status(&app, &id, |v| v["channels"]["ops"]["retrying"] == 1).await;
    let o = crier(&app, &["deliveries", &id]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let row = out
        .lines()
        .find(|l| l.starts_with("ops"))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    let total: u64 = cells[1].parse().unwrap();
    // "delivered 0 · retrying 1": the numbers after each state name add up to the total.
    let states: u64 = row
        .split(" · ")
        .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    assert_eq!(total, 1, "{out}");
    assert_eq!(states, total, "{out}");
    assert!(!row.contains("pending"), "{out}");
    assert!(out.contains("next attempt"), "{out}");
    let v = json_of(&crier(&app, &["deliveries", &id, "--json"]).await);
    let c = &v["channels"]["ops"];
    let parts: u64 = [
        "pending",
        "retrying",
        "in_flight",
        "delivered",
        "dead",
        "rejected",
    ]
    .iter()
    .map(|k| c[k].as_u64().unwrap())
    .sum();
    assert_eq!(parts, c["total"].as_u64().unwrap(), "{v}");
    assert!(v["failures"][0]["next_attempt_at"].is_string(), "{v}");
    assert_eq!(v["complete"], false);
}

async fn component_status(app: &TestApp, name: &str) -> String {
    let r = app.get("/api/v1/components").await;
    r.body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .unwrap()
}

async fn open_on(app: &TestApp, title: &str, components: &[&str]) -> String {
    let mut args = vec![
        "incident",
        "open",
        "--title",
        title,
        "--impact",
        "major",
        "--message",
        "Looking",
        "--json",
    ];
    for c in components {
        args.extend(["--component", c]);
    }
    json_of(&crier(app, &args).await)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn resolving_restores_components_unless_another_incident_holds_them() {
    let app = spawn_app().await;
    for (c, s) in [("Check-in", "partial_outage"), ("Baggage", "major_outage")] {
        let o = crier(&app, &["component", "set", c, s]).await;
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let first = open_on(&app, "Check-in and baggage", &["Check-in", "Baggage"]).await;
    let second = open_on(&app, "Baggage belts", &["Baggage"]).await;

    let o = crier(&app, &["incident", "resolve", &first, "--message", "Fixed"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("components back to operational: Check-in"),
        "{}",
        stdout(&o)
    );
    assert_eq!(component_status(&app, "Check-in").await, "operational");
    // Still affected by the second, open incident.
    assert_eq!(component_status(&app, "Baggage").await, "major_outage");

    let o = crier(
        &app,
        &[
            "incident",
            "resolve",
            &second,
            "--message",
            "Belts run",
            "--keep-components",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(component_status(&app, "Baggage").await, "major_outage");

    // Without the flag, the last incident holding a component restores it.
    let third = open_on(&app, "Baggage again", &["Baggage"]).await;
    let v = json_of(
        &crier(
            &app,
            &["incident", "resolve", &third, "--message", "Done", "--json"],
        )
        .await,
    );
    assert_eq!(v["restored_components"], json!(["Baggage"]), "{v}");
    assert_eq!(component_status(&app, "Baggage").await, "operational");
}

#[tokio::test]
async fn offline_preview_uses_the_given_title_and_promise_and_labels_samples() {
    let o = offline(&["preview", "--kind", "sms", "--message", "Hello"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("sample value, not yours: title"), "{out}");
    assert!(
        !out.contains("Next update"),
        "a promise was made up:\n{out}"
    );

    let o = offline(&[
        "preview",
        "--kind",
        "sms",
        "--message",
        "Hello",
        "--title",
        "Baggage belts stopped",
        "--next-update",
        "45m",
    ])
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("sample value"), "{out}");
    assert!(
        out.contains("Baggage belts stopped. Hello. Next update by"),
        "{out}"
    );

    let o = offline(&[
        "preview",
        "--kind",
        "sms",
        "--message",
        "Hello",
        "--next-update",
        "soon",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--next-update"), "{}", stderr(&o));
}

#[tokio::test]
async fn subscribers_set_changes_locale_and_components_and_nothing_on_bad_input() {
    let app = spawn_app().await;
    app.component("Check-in").await;
    app.component("Baggage").await;
    let o = crier(&app, &["subscribers", "add", "--email", "anna@example.com"]).await;
    assert!(o.status.success(), "{}", stderr(&o));

    let v = json_of(
        &crier(
            &app,
            &[
                "subscribers",
                "set",
                "anna@example.com",
                "--locale",
                "fi",
                "--component",
                "Check-in",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(v["locale"], "fi", "{v}");
    assert_eq!(v["components"], json!(["Check-in"]), "{v}");
    assert_eq!(v["email"], "anna@example.com", "{v}");

    let before = app.checksum().await;
    for args in [
        vec![
            "subscribers",
            "set",
            "anna@example.com",
            "--component",
            "Nope",
        ],
        vec![
            "subscribers",
            "set",
            "anna@example.com",
            "--locale",
            "not a locale",
        ],
        vec!["subscribers", "set", "bob@example.com", "--locale", "fi"],
    ] {
        let o = crier(&app, &args).await;
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
    }
    let o = crier(&app, &["subscribers", "set", "anna@example.com"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        app.checksum().await,
        before,
        "a rejected change wrote something"
    );

    let o = crier(
        &app,
        &["subscribers", "set", "anna@example.com", "--all-components"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("components all"), "{}", stdout(&o));
    let list = json_of(&crier(&app, &["subscribers", "list", "--json"]).await);
    assert_eq!(list[0]["components"], json!([]), "{list}");
    assert_eq!(list[0]["locale"], "fi", "{list}");
}

/// `--store` (and `store = …` in the file) is checked before anything is opened or written: a
/// URL that is not PostgreSQL's, or one carrying a password (which is never echoed back), gets a
/// message saying what to write, and the data directory stays empty.
#[tokio::test]
async fn serve_checks_the_store_setting_before_writing_anything() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().join("data");
    let d = d.to_str().unwrap();
    let cases: [(&str, &str); 3] = [
        (
            "mysql://crier@db/crier",
            "neither \"sled\" nor a PostgreSQL URL",
        ),
        (
            "postgres://crier:pw-not-to-echo@127.0.0.1:1/crier",
            "has a password in the URL",
        ),
        // A valid URL where no database listens: said so, before anything is written locally.
        (
            "postgres://crier@127.0.0.1:1/crier",
            "cannot connect to PostgreSQL at postgres://crier@127.0.0.1:1/crier",
        ),
    ];
    for (url, want) in cases {
        let o = offline(&[
            "serve",
            "--data",
            d,
            "--bind",
            "127.0.0.1:0",
            "--store",
            url,
        ])
        .await;
        assert!(!o.status.success(), "{url}: serve started");
        let e = stderr(&o);
        assert!(e.contains(want), "{url}: {e}");
        assert!(!e.contains("pw-not-to-echo"), "{url}: {e}");
        assert!(
            !std::path::Path::new(d).exists(),
            "{url}: the data directory was created"
        );
    }
}
