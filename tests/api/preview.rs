//! Preview through the API and the CLI (online for an incident, offline for a text), and a broken
//! template stopping `serve`.

use crate::helpers::{bin, spawn_app};
use serde_json::json;

#[tokio::test]
async fn api_previews_an_incidents_latest_update_and_writes_nothing() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Lumimyrsky", "impact": "major",
                   "body": {"fi": "Lennot myöhässä.", "en": "Flights delayed."}, "next_update": "30m"}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let before = app.checksum().await;
    let r = app
        .post(
            "/api/v1/preview",
            json!({"incident": id, "kind": "sms", "locale": "fi", "tz": "Europe/Helsinki"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["kind"], "sms");
    assert_eq!(r.body["locale"], "fi");
    assert_eq!(r.body["event"], "incident_opened");
    assert_eq!(r.body["encoding"], "GSM-7");
    assert!(r.body["segments"].as_u64().unwrap() >= 1);
    let part = r.body["parts"][0].as_str().unwrap();
    assert!(
        part.contains("Uusi häiriö - Lumimyrsky. Lennot myöhässä."),
        "{part}"
    );
    assert!(part.contains("EET"), "times carry their zone: {part}");
    let r = app
        .post(
            "/api/v1/preview",
            json!({"incident": id, "kind": "email", "locale": "sv"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // No Swedish text: the Swedish reader gets English, frame and text, not a mix.
    assert_eq!(r.body["locale"], "en");
    assert!(
        r.body["subject"].as_str().unwrap().contains("New incident"),
        "{:?}",
        r.body
    );
    assert!(r.body["html"]
        .as_str()
        .unwrap()
        .contains("<p>Flights delayed.</p>"));
    for (body, status) in [
        (json!({"incident": id, "kind": "fax"}), 422),
        (
            json!({"message": "x", "kind": "sms", "event": "party"}),
            422,
        ),
        (json!({"message": "x", "incident": id, "kind": "sms"}), 422),
        (
            json!({"message": "x", "kind": "sms", "tz": "Mars/Base"}),
            422,
        ),
        (
            json!({"incident": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "kind": "sms"}),
            404,
        ),
    ] {
        let r = app.post("/api/v1/preview", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
        r.problem();
    }
    assert_eq!(app.checksum().await, before, "preview wrote something");
}

#[tokio::test]
async fn cli_preview_works_offline_and_against_the_server() {
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
    let empty = tempfile::tempdir().unwrap();
    // Offline: no server, no token; a closed URL proves nothing is contacted.
    let o = tokio::process::Command::new(bin())
        .current_dir(empty.path())
        .args([
            "--url",
            "http://127.0.0.1:9",
            "preview",
            "--message",
            "Refunds up to 100 €.",
            "--kind",
            "sms",
            "--locale",
            "fi",
            "--templates",
            templates,
            "--json",
        ])
        .env_remove("CRIER_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "sms");
    assert_eq!(v["encoding"], "GSM-7");
    assert_eq!(v["segments"], 1);
    assert!(v["parts"][0].as_str().unwrap().contains("Päivitys"), "{v}");
    assert!(v["length"].as_u64().unwrap() <= 160);
    assert_eq!(v["limit"], 459);

    let o = tokio::process::Command::new(bin())
        .current_dir(empty.path())
        .args([
            "preview",
            "--message",
            &"Word ".repeat(200),
            "--kind",
            "x",
            "--templates",
            templates,
        ])
        .output()
        .await
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("x · incident_updated · locale en"), "{out}");
    assert!(out.contains("--- part 1/"), "{out}");

    let o = tokio::process::Command::new(bin())
        .current_dir(empty.path())
        .args([
            "preview",
            "--message",
            "x",
            "--kind",
            "pager",
            "--templates",
            templates,
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown kind \"pager\""));

    // Online: an incident's latest update, through the API.
    let app = spawn_app().await;
    let id = app.open_incident("Check-in delays").await;
    let o = tokio::process::Command::new(bin())
        .args([
            "--url",
            &app.base,
            "--token",
            &app.token,
            "preview",
            "--incident",
            &id,
            "--kind",
            "mastodon",
        ])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("mastodon · incident_opened · locale en"),
        "{out}"
    );
    assert!(out.contains("Check-in delays"), "{out}");
}

#[test]
fn serve_refuses_a_broken_template_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("incident_updated")).unwrap();
    std::fs::write(
        t.path().join("incident_updated/sms.en.txt.j2"),
        "{{ org }} {{ incident.titel }}",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let o = std::process::Command::new(bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--templates"])
        .arg(t.path())
        .arg("--data")
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("incident_updated/sms.en.txt.j2 line 1"),
        "{err}"
    );
    assert!(err.contains("incident.titel"), "{err}");
    assert!(
        !data_dir.exists(),
        "a refused start-up created the data dir"
    );
}

#[tokio::test]
async fn preview_for_a_configured_channel_uses_its_rules_templates_and_locale() {
    use crate::helpers::spawn_app_with_channels;
    let app = spawn_app_with_channels(&[
        (
            "ops",
            "kind = \"log\"\nrender = \"sms\"\nlocale = \"fi\"\nsms_max_segments = 1\n",
        ),
        (
            "ops/incident_updated/sms.fi.txt.j2",
            "OPS: {{ incident.title }} / {{ update.text }}",
        ),
        (
            "public",
            "kind = \"log\"\nrender = \"x\"\naudience = \"fixed\"\n",
        ),
    ])
    .await;
    let r = app
        .post(
            "/api/v1/preview",
            json!({"message": "Lennot myöhässä.", "channel": "ops"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["kind"], "sms");
    assert_eq!(r.body["locale"], "fi", "the channel's locale");
    assert_eq!(r.body["limit"], 160, "the channel's one-segment cap");
    assert_eq!(r.body["policy"], "shorten");
    assert_eq!(
        r.body["parts"][0], "OPS: Check-in delays at Helsinki Airport / Lennot myöhässä.",
        "the channel's own template"
    );
    let r = app
        .post(
            "/api/v1/preview",
            json!({"message": "x ".repeat(400), "channel": "public"}),
        )
        .await;
    assert_eq!(r.body["kind"], "x");
    assert_eq!(r.body["policy"], "thread");
    assert!(r.body["parts"].as_array().unwrap().len() > 1);
    for (body, needle) in [
        (
            json!({"message": "x", "channel": "nope"}),
            "no active channel",
        ),
        (
            json!({"message": "x", "channel": "ops", "kind": "sms"}),
            "either `kind`",
        ),
        (json!({"message": "x"}), "either `kind`"),
    ] {
        let r = app.post("/api/v1/preview", body.clone()).await;
        assert_eq!(r.status, 422, "{body}");
        assert!(r.problem().contains(needle), "{body}: {}", r.problem());
    }
    let o = tokio::process::Command::new(bin())
        .args([
            "--url",
            &app.base,
            "--token",
            &app.token,
            "preview",
            "--message",
            "Lennot myöhässä.",
            "--channel",
            "ops",
        ])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("OPS: Check-in delays"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Found by schemathesis: `sms_segments` of 2^64-1 overflowed the capacity multiplication and
/// panicked the request (the connection dropped without an answer); 0 was silently read as 1.
/// Both are refused with a problem naming the range, and the server keeps answering.
#[tokio::test]
async fn preview_refuses_an_sms_segment_cap_outside_1_to_255() {
    let app = spawn_app().await;
    for bad in [json!(0), json!(256), json!(u64::MAX)] {
        let r = app
            .post(
                "/api/v1/preview",
                json!({"kind": "sms", "message": "Check-in is delayed.", "sms_segments": bad}),
            )
            .await;
        assert_eq!(r.status, 422, "{bad}: {:?}", r.body);
        assert!(r.problem().contains("sms_segments"), "{:?}", r.body);
        assert_eq!(r.body["field"], "sms_segments");
    }
    let r = app
        .post(
            "/api/v1/preview",
            json!({"kind": "sms", "message": "Check-in is delayed.", "sms_segments": 255}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["segments"], 1);
}

#[tokio::test]
async fn a_text_preview_takes_the_title_and_promise_as_typed() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/preview",
            json!({"kind": "sms", "message": "Kiosks are slow.", "title": "Check-in is slow at HEL", "next_update": "15m"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let text = r.body["parts"][0].as_str().unwrap();
    assert!(text.contains("Check-in is slow at HEL"), "{text}");
    assert!(
        r.body.get("samples").is_none(),
        "nothing is a sample: {:?}",
        r.body
    );
    // Without them, the samples are said to be samples.
    let r = app
        .post(
            "/api/v1/preview",
            json!({"kind": "sms", "message": "Kiosks are slow."}),
        )
        .await;
    assert_eq!(
        r.body["samples"].as_array().unwrap().len(),
        2,
        "{:?}",
        r.body
    );
    // Bad values are refused with the field's own message.
    let r = app
        .post(
            "/api/v1/preview",
            json!({"kind": "sms", "message": "m", "next_update": "soon"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.problem().starts_with("next_update"), "{}", r.problem());
    let id = app.open_incident("Baggage").await;
    let r = app
        .post(
            "/api/v1/preview",
            json!({"kind": "sms", "incident": id, "title": "Other"}),
        )
        .await;
    assert_eq!(r.status, 422);
}
