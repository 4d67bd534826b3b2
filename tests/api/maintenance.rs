//! A maintenance window's own reminder: opened through the API and the CLI, validated, stored.

use crate::helpers::{crier, json, spawn_app_with, stderr};
use serde_json::{json, Value};

fn window(extra: Value) -> Value {
    let mut b = json!({"title": "DB upgrade", "kind": "maintenance", "message": "Planned",
                       "scheduled_for": "2030-01-01T22:00:00Z",
                       "scheduled_until": "2030-01-01T23:00:00Z"});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[tokio::test]
async fn a_window_takes_its_own_reminder_or_the_config_s_and_bad_ones_are_refused() {
    let app = spawn_app_with(&[], |c| {
        c.schedule.maintenance_remind_before = Some(std::time::Duration::from_secs(3600));
    })
    .await;
    let before = app.checksum().await;
    for (body, needle) in [
        (
            window(json!({"remind_before": "soon"})),
            "where a number should be",
        ),
        (
            window(json!({"remind_before": "-1h"})),
            "where a number should be",
        ),
        (window(json!({"remind_before": "8d"})), "longer than 7d"),
        (window(json!({"remind_before": "0m"})), "shorter than 1m"),
        (window(json!({"remind_before": ""})), "is empty"),
        (
            json!({"title": "x", "impact": "minor", "message": "m", "remind_before": "1h"}),
            "only a maintenance",
        ),
        (
            json!({"title": "x", "kind": "maintenance", "message": "m", "remind_before": "1h"}),
            "give the window too",
        ),
    ] {
        let r = app.post("/api/v1/incidents", body.clone()).await;
        assert_eq!(r.status, 422, "{body}");
        assert!(r.problem().contains(needle), "{needle}: {}", r.problem());
        assert_eq!(r.body["field"], "remind_before", "{body}");
    }
    assert_eq!(
        app.checksum().await,
        before,
        "rejected requests wrote nothing"
    );

    for (asked, stored) in [
        (json!({"remind_before": "2h"}), "2h"),
        (json!({"remind_before": "90m"}), "1h30m"),
        (json!({"remind_before": "1d"}), "1d"),
        (json!({"remind_before": "none"}), "none"),
        (json!({"remind_before": "off"}), "none"),
        // Not given: the config's.
        (json!({}), "1h"),
    ] {
        let r = app.post("/api/v1/incidents", window(asked.clone())).await;
        assert_eq!(r.status, 201, "{asked}: {:?}", r.body);
        assert_eq!(r.body["remind_before"], stored, "{asked}");
        let id = r.body["id"].as_str().unwrap().to_owned();
        let r = app.get(&format!("/api/v1/incidents/{id}")).await;
        assert_eq!(r.body["remind_before"], stored, "{asked}: read back");
    }
    // An incident has none.
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "x", "impact": "minor", "message": "m"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.body.get("remind_before").is_none(), "{:?}", r.body);
}

#[tokio::test]
async fn the_cli_opens_a_window_with_its_reminder() {
    let app = spawn_app_with(&[], |_| {}).await;
    let open = |remind: &'static str| {
        let app = &app;
        async move {
            crier(
                app,
                &[
                    "incident",
                    "open",
                    "--maintenance",
                    "--title",
                    "DB upgrade",
                    "--impact",
                    "none",
                    "--message",
                    "Planned",
                    "--scheduled-for",
                    "2030-01-01T22:00:00Z",
                    "--scheduled-until",
                    "2030-01-01T23:00:00Z",
                    "--remind-before",
                    remind,
                    "--json",
                ],
            )
            .await
        }
    };
    let v = json(&open("45m").await);
    assert_eq!(v["remind_before"], "45m");
    let o = open("8d").await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("remind_before"), "{}", stderr(&o));
    // Without a window there is nothing to remind of: clap refuses it.
    let o = crier(
        &app,
        &[
            "incident",
            "open",
            "--title",
            "x",
            "--impact",
            "minor",
            "--message",
            "m",
            "--remind-before",
            "1h",
        ],
    )
    .await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--scheduled-for"), "{}", stderr(&o));
}
