//! The real binary's client commands against a running server: output, JSON and exit codes.

use crate::helpers::{bin, crier, json, spawn_app, stderr, stdout};

#[tokio::test]
async fn open_update_resolve_list_show() {
    let app = spawn_app().await;
    let o = crier(&app, &["component", "set", "Check-in", "partial_outage"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(
        &crier(
            &app,
            &[
                "incident",
                "open",
                "--title",
                "Check-in delays",
                "--impact",
                "major",
                "--message",
                "Selvitämme",
                "--locale",
                "fi",
                "--component",
                "Check-in",
                "--next-update",
                "30m",
                "--json",
            ],
        )
        .await,
    );
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["status"], "investigating");
    assert_eq!(v["updates"][0]["body"]["fi"], "Selvitämme");

    let o = crier(
        &app,
        &[
            "incident",
            "update",
            &id,
            "--status",
            "identified",
            "--message",
            "Found",
            "--next-update",
            "1h",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("now identified"), "{}", stdout(&o));
    assert!(stdout(&o).contains("next update by"), "{}", stdout(&o));

    let o = crier(&app, &["incident", "resolve", &id, "--message", "Fixed"]).await;
    assert!(o.status.success(), "{}", stderr(&o));

    let list = json(&crier(&app, &["incident", "list", "--json"]).await);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "resolved");
    let open = json(&crier(&app, &["incident", "list", "--open", "--json"]).await);
    assert_eq!(open.as_array().unwrap().len(), 0);

    let o = crier(&app, &["incident", "list"]).await;
    let out = stdout(&o);
    assert!(out.starts_with("ID"), "{out}");
    assert!(
        out.contains(&id) && out.contains("resolved") && out.contains("Check-in delays"),
        "{out}"
    );

    let show = json(&crier(&app, &["incident", "show", &id, "--json"]).await);
    assert_eq!(show["updates"].as_array().unwrap().len(), 3);
    let o = crier(&app, &["incident", "show", &id]).await;
    assert!(stdout(&o).contains("[fi] Selvitämme"), "{}", stdout(&o));
}

#[tokio::test]
async fn exit_codes() {
    let app = spawn_app().await;
    // 2: usage error (clap), before any request.
    let o = crier(
        &app,
        &["incident", "open", "--impact", "major", "--message", "m"],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // 3: rejected by the server, with its message.
    let o = crier(
        &app,
        &[
            "incident",
            "open",
            "--title",
            "t",
            "--impact",
            "huge",
            "--message",
            "m",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("none, minor, major or critical"),
        "{}",
        stderr(&o)
    );
    let o = crier(&app, &["incident", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]).await;
    assert_eq!(o.status.code(), Some(3));
    let o = tokio::process::Command::new(bin())
        .args([
            "--url",
            &app.base,
            "--token",
            "wrong-token-value",
            "incident",
            "list",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));
    // 4: server unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let o = tokio::process::Command::new(bin())
        .args(["--url", &url, "--token", "x", "incident", "list"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is `crier serve` running?"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn token_is_read_from_the_data_dir() {
    let app = spawn_app().await;
    let o = tokio::process::Command::new(bin())
        .args(["--url", &app.base, "--data"])
        .arg(app.dir.path().join("data"))
        .args(["incident", "list", "--json"])
        .env_remove("CRIER_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let empty = tempfile::tempdir().unwrap();
    let o = tokio::process::Command::new(bin())
        .args(["--url", &app.base, "--data"])
        .arg(empty.path())
        .args(["incident", "list"])
        .env_remove("CRIER_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no API token"), "{}", stderr(&o));
}

#[tokio::test]
async fn subscribers_commands_and_import() {
    let app = spawn_app().await;
    let o = crier(
        &app,
        &[
            "subscribers",
            "add",
            "--email",
            "a@example.com",
            "--locale",
            "sv",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = crier(&app, &["subscribers", "add", "--phone", "12345"]).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("E.164"), "{}", stderr(&o));
    let o = crier(&app, &["subscribers", "add"]).await;
    assert_eq!(o.status.code(), Some(2), "email or phone is required");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("subs.csv");
    std::fs::write(
        &file,
        "email,phone\nb@example.com,\n,+358401234567\nbroken,\na@example.com,\n",
    )
    .unwrap();
    let o = crier(&app, &["subscribers", "import", file.to_str().unwrap()]).await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "a rejected row makes the import exit 3"
    );
    assert!(
        stdout(&o).contains("Imported 2 subscriber(s); 1 duplicate(s) skipped; 1 row(s) rejected"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("line 4:"), "{}", stderr(&o));

    let list = json(&crier(&app, &["subscribers", "list", "--json"]).await);
    assert_eq!(list.as_array().unwrap().len(), 3);
    let o = crier(&app, &["subscribers", "remove", "b@example.com"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let list = json(&crier(&app, &["subscribers", "list", "--json"]).await);
    assert_eq!(list.as_array().unwrap().len(), 2);
}

/// `--next-update` is checked by the same duration parser as the server's: an absurd delay is
/// a usage error (exit 2) naming the units and the limit, and nothing reaches the server.
#[tokio::test]
async fn an_absurd_next_update_is_a_usage_error() {
    let app = spawn_app().await;
    let before = app.checksum().await;
    let o = crier(
        &app,
        &[
            "incident",
            "open",
            "--title",
            "t",
            "--impact",
            "minor",
            "--message",
            "m",
            "--next-update",
            "9999999999999999h",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ms, s, m, h or d") && stderr(&o).contains("7d"),
        "{}",
        stderr(&o)
    );
    assert_eq!(app.checksum().await, before);
    // An RFC 3339 instant passes the check (the server judges it against its clock).
    let o = crier(
        &app,
        &[
            "incident",
            "open",
            "--title",
            "t",
            "--impact",
            "minor",
            "--message",
            "m",
            "--next-update",
            "2000-01-01T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "the server refuses a past instant: {}",
        stderr(&o)
    );
}

/// Component and subscriber writes print from the API's own answer types (`Component`,
/// `SubscriberView`): each line names what the server answered.
#[tokio::test]
async fn the_cli_prints_component_and_subscriber_answers() {
    let app = spawn_app().await;
    let o = crier(
        &app,
        &[
            "component",
            "set",
            "Check-in",
            "degraded_performance",
            "--group",
            "Airport",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "Check-in is now degraded_performance");
    let o = crier(&app, &["component", "list"]).await;
    let row = stdout(&o)
        .lines()
        .find(|l| l.starts_with("Check-in"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        row.contains("degraded_performance") && row.contains("Airport"),
        "{}",
        stdout(&o)
    );

    let o = crier(&app, &["subscribers", "add", "--phone", "+358401234567"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let added = stdout(&o);
    assert!(added.starts_with("Subscribed +358401234567 ("), "{added}");
    let o = crier(
        &app,
        &[
            "subscribers",
            "set",
            "+358401234567",
            "--locale",
            "fi",
            "--component",
            "Check-in",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let changed = stdout(&o);
    assert!(
        changed.starts_with("Changed +358401234567 (")
            && changed.contains("locale fi, components Check-in"),
        "{changed}"
    );
    let o = crier(&app, &["subscribers", "remove", "+358401234567"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("Removed +358401234567 ("),
        "{}",
        stdout(&o)
    );
}

/// The human output of `incident open`, `update`, `resolve` and `show` is printed from the API's
/// own answer types (`IncidentView`, `Posted`, `IncidentDetail`), so every line below comes from
/// a typed field; and an answer whose field was renamed is not silently printed as empty.
#[tokio::test]
async fn the_cli_prints_incidents_and_timelines_from_the_apis_types() {
    let app = spawn_app().await;
    let o = crier(&app, &["component", "set", "Check-in", "operational"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
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
            "Investigating",
            "--component",
            "Check-in",
            "--next-update",
            "30m",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let id = out
        .split_whitespace()
        .nth(2)
        .expect("Opened incident ID")
        .to_owned();
    assert!(
        out.starts_with(&format!(
            "Opened incident {id} (investigating, impact major) — published"
        )),
        "{out}"
    );
    assert!(out.contains("\n  Check-in delays\n"), "{out}");
    assert!(out.contains("  next update by "), "{out}");

    let o = crier(
        &app,
        &[
            "incident",
            "update",
            &id,
            "--status",
            "identified",
            "--message",
            "Found",
        ],
    )
    .await;
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.starts_with("Posted update "), "{out}");
    assert!(
        out.contains(&format!(" to {id} — now identified\n")),
        "{out}"
    );
    assert!(
        out.contains("  next update by ") && out.contains("(the promise stands"),
        "{out}"
    );

    // The answers, read as the CLI reads them: the real one parses; with a field renamed (a
    // server of another version) it does not, so the CLI says so (exit 4) instead of printing a
    // blank.
    let update = json(
        &crier(
            &app,
            &[
                "incident",
                "update",
                &id,
                "--status",
                "identified",
                "--message",
                "Still fine",
                "--json",
            ],
        )
        .await,
    );
    assert!(serde_json::from_value::<crier::api::incidents::Posted>(update.clone()).is_ok());
    let mut renamed = update.clone();
    let promise = renamed.as_object_mut().unwrap().remove("promise").unwrap();
    renamed["promised"] = promise;
    assert!(serde_json::from_value::<crier::api::incidents::Posted>(renamed).is_err());
    let o = crier(&app, &["incident", "resolve", &id, "--message", "Fixed"]).await;
    let out = stdout(&o);
    assert!(out.contains("— now resolved"), "{out}");
    assert!(out.contains("ended with the resolution"), "{out}");

    let o = crier(&app, &["incident", "show", &id]).await;
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.starts_with(&format!("Check-in delays (incident {id})\n")),
        "{out}"
    );
    for line in [
        "  status:     resolved\n",
        "  impact:     major\n",
        "  components: Check-in\n",
        "  opened:     ",
        "  resolved:   ",
        " investigating (opened) by ",
        " identified (updated) by ",
        " resolved (resolved) by ",
        "  [en] Found\n",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }

    let show = json(&crier(&app, &["incident", "show", &id, "--json"]).await);
    assert!(serde_json::from_value::<crier::api::incidents::IncidentDetail>(show.clone()).is_ok());
    let mut renamed = show;
    let updates = renamed.as_object_mut().unwrap().remove("updates").unwrap();
    renamed["timeline"] = updates;
    assert!(serde_json::from_value::<crier::api::incidents::IncidentDetail>(renamed).is_err());
}
