//! Authentication and bad input: every rejection is problem+json with a useful detail, and
//! writes nothing.

use crate::helpers::spawn_app;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn private_routes_need_a_token_and_write_nothing_without_one() {
    let app = spawn_app().await;
    let id = app.open_incident("x").await;
    let before = app.checksum().await;
    let routes = [
        (Method::GET, "/api/v1/incidents".to_owned()),
        (Method::POST, "/api/v1/incidents".to_owned()),
        (Method::GET, format!("/api/v1/incidents/{id}")),
        (Method::POST, format!("/api/v1/incidents/{id}/updates")),
        (Method::POST, format!("/api/v1/incidents/{id}/resolve")),
        (Method::POST, format!("/api/v1/incidents/{id}/reopen")),
        (Method::POST, format!("/api/v1/incidents/{id}/publish")),
        (Method::GET, "/api/v1/components".to_owned()),
        (Method::PUT, "/api/v1/components/Web".to_owned()),
        (Method::GET, "/api/v1/subscribers".to_owned()),
        (Method::POST, "/api/v1/subscribers".to_owned()),
        (Method::POST, "/api/v1/subscribers/import".to_owned()),
        (
            Method::DELETE,
            "/api/v1/subscribers/x@example.com".to_owned(),
        ),
    ];
    let body = serde_json::to_vec(&json!({"title": "t", "impact": "minor", "message": "m", "status": "operational", "email": "a@example.com"})).unwrap();
    for (m, path) in &routes {
        for token in [None, Some("wrong-token-0123456789")] {
            let r = app
                .raw(
                    m.clone(),
                    path,
                    body.clone(),
                    Some("application/json"),
                    token,
                )
                .await;
            assert_eq!(r.status, 401, "{m} {path} with {token:?}");
            assert!(r.problem().contains("Bearer"), "{}", r.problem());
        }
    }
    assert_eq!(
        app.checksum().await,
        before,
        "an unauthenticated request wrote"
    );
}

#[tokio::test]
async fn probes_and_public_status_need_no_token() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/api/v1/status"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = app.get("/api/v1/nothing-here").await;
    assert_eq!(r.status, 404);
    assert!(r.problem().contains("/api/v1"));
}

#[tokio::test]
async fn malformed_bodies_get_problem_json_and_write_nothing() {
    let app = spawn_app().await;
    app.component("Web").await;
    let id = app.open_incident("x").await;
    let before = app.checksum().await;
    let t = Some(app.token.as_str());
    let ct = Some("application/json");

    let r = app
        .raw(
            Method::POST,
            "/api/v1/incidents",
            b"{\"title\": ".to_vec(),
            ct,
            t,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.problem().contains("not valid JSON"), "{}", r.problem());

    let r = app
        .raw(
            Method::POST,
            "/api/v1/incidents",
            br#"{"title":"t","impact":"minor","message":"m","colour":"red"}"#.to_vec(),
            ct,
            t,
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.problem().contains("unknown field `colour`"),
        "{}",
        r.problem()
    );

    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/incidents/{id}/updates"),
            br#"{"status":"monitoring","message":"m","sattus":"x"}"#.to_vec(),
            ct,
            t,
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.problem().contains("sattus"), "{}", r.problem());

    let r = app
        .raw(
            Method::POST,
            "/api/v1/incidents",
            br#"{"title":"t","impact":"minor","message":"m"}"#.to_vec(),
            None,
            t,
        )
        .await;
    assert_eq!(r.status, 415);
    assert!(r.problem().contains("application/json"));

    let huge = json!({"title": "t", "impact": "minor", "message": "a".repeat(200_000)});
    let r = app
        .raw(
            Method::POST,
            "/api/v1/incidents",
            serde_json::to_vec(&huge).unwrap(),
            ct,
            t,
        )
        .await;
    assert_eq!(r.status, 413);
    r.problem();

    let cases = [
        (
            json!({"title": "", "impact": "minor", "message": "m"}),
            "title",
        ),
        (
            json!({"title": "t", "impact": "huge", "message": "m"}),
            "impact",
        ),
        (json!({"title": "t", "impact": "minor"}), "message"),
        (
            json!({"title": "t", "impact": "minor", "message": "   "}),
            "body",
        ),
        (
            json!({"title": "t", "impact": "minor", "message": "m", "locale": "english"}),
            "locale",
        ),
        (
            json!({"title": "t", "impact": "minor", "message": "m", "next_update": "soon"}),
            "next_update",
        ),
        (
            json!({"title": "t", "impact": "minor", "message": "m", "next_update": "2001-01-01T00:00:00Z"}),
            "next_update",
        ),
        (
            json!({"title": "t", "impact": "minor", "message": "m", "body": {"en": "x"}}),
            "not both",
        ),
    ];
    for (body, needle) in cases {
        let r = app.post("/api/v1/incidents", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        assert!(r.problem().contains(needle), "{body}: {}", r.problem());
    }

    let r = app.get("/api/v1/incidents/not-an-id").await;
    assert_eq!(r.status, 404);
    assert!(r.problem().contains("ULID"));
    let r = app
        .get("/api/v1/incidents/01ARZ3NDEKTSV4RRFFQ69G5FAV")
        .await;
    assert_eq!(r.status, 404);

    for (body, field) in [
        (json!({"phone": "0401234567"}), "phone"),
        (json!({"phone": "+358 40 abc"}), "phone"),
        (json!({"email": "not-an-address"}), "email"),
        (json!({"email": "a@b.com", "phone": "+358401234567"}), ""),
        (json!({}), ""),
        (json!({"email": "a@b.com", "locale": "xx-yy-zz"}), "locale"),
        (
            json!({"email": "a@b.com", "components": ["Nope"]}),
            "components",
        ),
    ] {
        let r = app.post("/api/v1/subscribers", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        if !field.is_empty() {
            assert_eq!(r.body["field"], field, "{body}");
        }
        r.problem();
    }
    assert_eq!(
        app.checksum().await,
        before,
        "a rejected request wrote something"
    );
}

/// A promise too long for any clock used to panic inside chrono and drop the connection; every
/// form of it is a 422 that names the units and the limit, and writes nothing.
#[tokio::test]
async fn absurd_durations_are_422_not_a_dropped_connection() {
    let app = spawn_app().await;
    let id = app.open_incident("x").await;
    let before = app.checksum().await;
    for huge in [
        "9999999999999999h",
        "99999999999999999999999999d",
        "1h30",
        "30x",
    ] {
        let r = app
            .post(
                "/api/v1/incidents",
                json!({"title": "t", "impact": "minor", "message": "m", "next_update": huge}),
            )
            .await;
        assert_eq!(r.status, 422, "{huge}: {:?}", r.body);
        let detail = r.problem();
        assert!(
            detail.contains("next_update")
                && detail.contains("ms, s, m, h or d")
                && detail.contains("7d"),
            "{huge}: {detail}"
        );
        let r = app
            .post(
                &format!("/api/v1/incidents/{id}/updates"),
                json!({"status": "identified", "message": "m", "next_update": huge}),
            )
            .await;
        assert_eq!(r.status, 422, "{huge}: {:?}", r.body);
        r.problem();
    }
    assert_eq!(app.checksum().await, before, "a rejected promise wrote");
}
