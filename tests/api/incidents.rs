//! Incident lifecycle through the API.

use crate::helpers::spawn_app;
use crier::store::port::Audit;
use crier::store::port::Incidents;
use serde_json::json;

#[tokio::test]
async fn create_update_resolve_show() {
    let app = spawn_app().await;
    app.component("Check-in").await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({
                "title": "Check-in delays at HEL",
                "impact": "major",
                "components": ["Check-in"],
                "body": {"en": "We are investigating delays.", "fi": "Selvitämme viiveitä."},
                "next_update": "30m"
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 26);
    assert_eq!(r.body["status"], "investigating");
    assert_eq!(r.body["kind"], "incident");
    assert_eq!(r.body["draft"], false);
    assert!(r.body["next_update_due"].is_string());
    assert_eq!(r.body["updates"][0]["body"]["fi"], "Selvitämme viiveitä.");
    assert_eq!(r.body["updates"][0]["author"], "admin");

    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "message": "A baggage system fault.", "next_update": "1h"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["incident"]["status"], "identified");
    assert_eq!(r.body["update"]["action"], "updated");

    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({"message": "Check-in works normally again."}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["incident"]["status"], "resolved");

    let r = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(r.status, 200);
    let b = &r.body;
    assert_eq!(b["status"], "resolved");
    assert!(b["resolved_at"].is_string());
    assert!(
        b["next_update_due"].is_null(),
        "resolving clears the promise"
    );
    assert_eq!(b["update_count"], 3);
    let updates = b["updates"].as_array().unwrap();
    let statuses: Vec<&str> = updates
        .iter()
        .map(|u| u["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["investigating", "identified", "resolved"]);
    let actions: Vec<&str> = updates
        .iter()
        .map(|u| u["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["opened", "updated", "resolved"]);
}

#[tokio::test]
async fn resolved_incident_needs_reopen_and_rejections_write_nothing() {
    let app = spawn_app().await;
    let id = app.open_incident("Payment outage").await;
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({"message": "Fixed"}),
        )
        .await;
    assert_eq!(r.status, 201);

    let before = app.checksum().await;
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "monitoring", "message": "x"}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(r.problem().contains("reopen"), "{}", r.problem());
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({"message": "again"}),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "in_progress", "message": "x"}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        app.checksum().await,
        before,
        "rejected requests wrote something"
    );

    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/reopen"),
            json!({"message": "It is back", "next_update": "15m"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["incident"]["status"], "investigating");
    assert!(r.body["incident"]["resolved_at"].is_null());
    assert_eq!(r.body["update"]["action"], "reopened");
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/reopen"),
            json!({"message": "twice"}),
        )
        .await;
    assert_eq!(r.status, 409, "an open incident cannot be reopened");
}

#[tokio::test]
async fn maintenance_lifecycle_and_wrong_statuses() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Database upgrade", "kind": "maintenance", "message": "Planned for Sunday"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "scheduled");
    assert_eq!(r.body["impact"], "none");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let before = app.checksum().await;
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "message": "x"}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.problem().contains("belongs to incident"),
        "{}",
        r.problem()
    );
    assert_eq!(app.checksum().await, before);
    for status in ["in_progress", "verifying", "in_progress", "completed"] {
        let r = app
            .post(
                &format!("/api/v1/incidents/{id}/updates"),
                json!({"status": status, "message": format!("now {status}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{status}: {:?}", r.body);
    }
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/reopen"),
            json!({"message": "x"}),
        )
        .await;
    assert_eq!(r.status, 409);
    // An incident cannot start resolved or with a maintenance status.
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "t", "impact": "minor", "status": "resolved", "message": "m"}),
        )
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn unknown_component_is_rejected() {
    let app = spawn_app().await;
    let before = app.checksum().await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "t", "impact": "minor", "message": "m", "components": ["Nope"]}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.problem().contains("crier component set Nope"),
        "{}",
        r.problem()
    );
    assert_eq!(r.body["field"], "components");
    assert_eq!(app.checksum().await, before);
}

#[tokio::test]
async fn list_filters_newest_first_and_limit() {
    let app = spawn_app().await;
    let a = app.open_incident("first").await;
    let b = app.open_incident("second").await;
    let c = app.open_incident("third").await;
    app.post(
        &format!("/api/v1/incidents/{b}/resolve"),
        json!({"message": "ok"}),
    )
    .await;
    let r = app.get("/api/v1/incidents").await;
    let ids: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [c.as_str(), b.as_str(), a.as_str()]);
    let r = app.get("/api/v1/incidents?open=true").await;
    let ids: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [c.as_str(), a.as_str()]);
    let r = app.get("/api/v1/incidents?limit=1").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = app.get("/api/v1/incidents?status=resolved").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = app.get("/api/v1/incidents?limit=0").await;
    assert_eq!(r.status, 400);
    let r = app.get("/api/v1/incidents?colour=red").await;
    assert_eq!(r.status, 400);
    assert!(r.problem().contains("colour"), "{}", r.problem());
}

/// A draft update on a published incident changes nothing the public sees (status, impact,
/// the promise, open or resolved) until it is published; the staff view shows it at once.
#[tokio::test]
async fn draft_updates_do_not_move_the_public_status_until_published() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Check-in delays", "impact": "minor", "message": "Looking into it"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let public = || async {
        let v: serde_json::Value = app
            .client
            .get(app.url("/api/v1/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v
    };
    let before = public().await;
    assert_eq!(
        before["incidents"][0]["status"], "investigating",
        "{before}"
    );
    assert_eq!(before["incidents"][0]["impact"], "minor", "{before}");

    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "impact": "critical", "message": "not yet", "draft": true, "next_update": "30m"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let staff = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(staff.body["status"], "identified", "staff see the draft");
    let during = public().await;
    assert_eq!(
        during["incidents"], before["incidents"],
        "a draft moved the public status"
    );
    // A draft that resolves does not take the incident off the public list either.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "resolved", "message": "fixed (draft)", "draft": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(public().await["incidents"], before["incidents"]);

    let r = app
        .post(&format!("/api/v1/incidents/{id}/publish"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let after = public().await;
    assert_eq!(
        after["incidents"].as_array().unwrap().len(),
        0,
        "published: resolved, off the open list: {after}"
    );
}

#[tokio::test]
async fn drafts_stay_private_until_published() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Strike", "impact": "critical", "message": "draft text", "draft": true}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["draft"], true);
    assert!(r.body["updates"][0]["published_at"].is_null());
    let id = r.body["id"].as_str().unwrap().to_owned();
    let public = app
        .client
        .get(app.url("/api/v1/status"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = public.json().await.unwrap();
    assert_eq!(
        v["incidents"].as_array().unwrap().len(),
        0,
        "draft leaked: {v}"
    );

    let r = app
        .post(&format!("/api/v1/incidents/{id}/publish"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["draft"], false);
    assert!(r.body["updates"][0]["published_at"].is_string());
    let v: serde_json::Value = app
        .client
        .get(app.url("/api/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["incidents"][0]["id"], id.as_str());
    let r = app
        .post(&format!("/api/v1/incidents/{id}/publish"), json!({}))
        .await;
    assert_eq!(r.status, 409, "nothing left to publish");
}

#[tokio::test]
async fn concurrent_updates_to_one_incident_are_all_recorded() {
    let app = spawn_app().await;
    let id = app.open_incident("busy").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/api/v1/incidents/{id}/updates")),
            app.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"status": "monitoring", "message": format!("update {i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let r = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(r.body["update_count"], 41);
    assert_eq!(r.body["updates"].as_array().unwrap().len(), 41);
}

#[tokio::test]
async fn components_set_and_list() {
    let app = spawn_app().await;
    let r = app
        .put(
            "/api/v1/components/Website",
            json!({"status": "degraded_performance", "group": "Public"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .put(
            "/api/v1/components/Website",
            json!({"status": "operational"}),
        )
        .await;
    assert_eq!(r.body["group"], "Public", "group is kept when not given");
    let before = app.checksum().await;
    let r = app
        .put("/api/v1/components/Website", json!({"status": "down"}))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.problem().contains("major_outage"), "{}", r.problem());
    assert_eq!(app.checksum().await, before);
    let r = app.get("/api/v1/components").await;
    assert_eq!(r.body[0]["name"], "Website");
    assert_eq!(r.body[0]["status"], "operational");
}

#[tokio::test]
async fn overdue_promises_are_flagged_until_resolved() {
    use crier::domain::NewIncident;
    use crier::domain::{Body, Impact, IncidentKind, Locale, Title};
    let app = spawn_app().await;
    let now = chrono::Utc::now();
    // A promise made earlier that is now past due (the API refuses past promises, so write it
    // through the store as an update made 40 minutes ago with a 30-minute promise would be).
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
                next_update_due: Some(now - chrono::Duration::minutes(10)),
                draft: false,
                broadcast: vec![],
                scheduled_for: None,
                scheduled_until: None,
                holding_statement: false,
                remind_before: None,
            },
            now - chrono::Duration::minutes(40),
        )
        .await
        .unwrap();
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "On time", "impact": "minor", "message": "m", "next_update": "30m"}),
        )
        .await;
    let on_time = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["overdue"], false);
    let list = app.get("/api/v1/incidents").await.body;
    let flag = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()["overdue"]
            .clone()
    };
    assert_eq!(flag(&late.id.to_string()), true);
    assert_eq!(flag(&on_time), false);
    let show = app
        .get(&format!("/api/v1/incidents/{}", late.id))
        .await
        .body;
    assert_eq!(show["overdue"], true);
    app.post(
        &format!("/api/v1/incidents/{}/resolve", late.id),
        json!({"message": "done"}),
    )
    .await;
    let show = app
        .get(&format!("/api/v1/incidents/{}", late.id))
        .await
        .body;
    assert_eq!(show["overdue"], false, "resolving clears the promise");
    assert!(show["next_update_due"].is_null());
}

#[tokio::test]
async fn titles_per_language_are_validated_and_a_bad_map_writes_nothing() {
    let app = spawn_app().await;
    let open = |titles: serde_json::Value| json!({"title": "Check-in delays", "impact": "major", "message": "Slow.", "titles": titles});
    let before = app.checksum().await;
    for (titles, want) in [
        (json!({"finnish": "Viiveitä"}), "titles: key \"finnish\""),
        (json!({"fi": "   "}), "titles: the fi title is empty"),
        (json!({"fi": "a\nb"}), "titles: the fi title contains"),
        (
            json!({"sv": "x".repeat(256)}),
            "titles: the sv title is 256 characters",
        ),
        (
            json!({"fi": "Viiveitä", "FI": "Viiveitä taas"}),
            "titles: two titles for fi",
        ),
    ] {
        let r = app.post("/api/v1/incidents", open(titles.clone())).await;
        assert_eq!(r.status, 422, "{titles}: {:?}", r.body);
        assert!(r.problem().contains(want), "{titles}: {}", r.problem());
        assert_eq!(r.body["field"], "titles", "{titles}");
    }
    assert_eq!(
        app.checksum().await,
        before,
        "a refused incident writes nothing"
    );

    // Good titles are stored and returned; an update adds and replaces translations.
    let r = app
        .post(
            "/api/v1/incidents",
            open(json!({"fi": " Lähtöselvitys viivästyy ", "sv-fi": "Incheckningen är försenad"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["titles"],
        json!({"fi": "Lähtöselvitys viivästyy", "sv-FI": "Incheckningen är försenad"})
    );
    let id = r.body["id"].as_str().unwrap().to_owned();
    let before = app.checksum().await;
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"message": "Still slow.", "titles": {"fi": ""}}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(
        r.problem().contains("the fi title is empty"),
        "{}",
        r.problem()
    );
    assert_eq!(
        app.checksum().await,
        before,
        "a refused update writes nothing"
    );
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"message": "Still slow.", "titles": {"fi": "Viiveitä", "en": "Check-in is slow"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["incident"]["titles"],
        json!({"en": "Check-in is slow", "fi": "Viiveitä", "sv-FI": "Incheckningen är försenad"})
    );
    // The audit log says which languages' titles the update changed.
    let (audit, _) = app
        .store
        .audit_entries(&crier::domain::audit::AuditFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        last.summary,
        "investigating → investigating, title in en, fi"
    );
    let r = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(r.body["titles"]["fi"], "Viiveitä");
    assert_eq!(r.body["title"], "Check-in delays");
}

#[tokio::test]
async fn a_draft_translation_of_the_title_stays_private_until_published() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Check-in delays", "impact": "major", "message": "Slow.", "titles": {"fi": "Viiveitä"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"message": "Draft.", "titles": {"fi": "Lähtöselvitys viivästyy"}, "draft": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // Staff see the draft's title; the public status page still shows the published one.
    assert_eq!(
        r.body["incident"]["titles"]["fi"],
        "Lähtöselvitys viivästyy"
    );
    let public = app.get("/api/v1/status").await;
    let shown = public.body.to_string();
    assert!(shown.contains("Viiveitä"), "{shown}");
    assert!(!shown.contains("Lähtöselvitys viivästyy"), "{shown}");
    let r = app
        .post(&format!("/api/v1/incidents/{id}/publish"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let shown = app.get("/api/v1/status").await.body.to_string();
    assert!(shown.contains("Lähtöselvitys viivästyy"), "{shown}");
}

/// A write's answer is its struct serialised once, in the fields' declared order (as the
/// OpenAPI document lists them), not re-sorted through a `serde_json::Value`: `incident`
/// before `update` before `promise`, and the incident's `id` and `title` first.
#[tokio::test]
async fn update_answer_keeps_the_declared_field_order() {
    let app = spawn_app().await;
    let id = app.open_incident("Check-in delays at HEL").await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/incidents/{id}/updates")))
        .bearer_auth(&app.token)
        .json(&json!({"status": "identified", "message": "A baggage system fault."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers().get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with(&format!("{{\"incident\":{{\"id\":\"{id}\",\"title\":")),
        "{text}"
    );
    let at = |key: &str| {
        text.find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
    };
    assert!(at("incident") < at("update"), "{text}");
    assert!(at("update") < at("promise"), "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["incident"]["status"], "identified");
    assert_eq!(body["update"]["action"], "updated");
}
