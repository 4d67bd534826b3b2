//! Affected components' new statuses set with the incident opening or update that names them
//! (`component_statuses`), in the same write: the components API and the public status page
//! show them afterwards, one audit entry names each change, bad input names the component and
//! writes nothing, a draft sets none.

use crate::helpers::{spawn_app, TestApp};
use crier::domain::audit::AuditEntry;
use crier::domain::audit::AuditFilter;
use crier::store::port::Audit;
use serde_json::json;

async fn entries(app: &TestApp) -> Vec<AuditEntry> {
    app.store
        .audit_entries(&AuditFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
}

async fn status_of(app: &TestApp, name: &str) -> String {
    let r = app.get("/api/v1/components").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no component {name}: {:?}", r.body))
}

async fn public_page(app: &TestApp) -> String {
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn an_opening_sets_its_components_statuses_in_the_same_write() {
    let app = spawn_app().await;
    app.component("Check-in").await;
    app.component("Baggage").await;
    app.component("Gates").await;
    assert!(!public_page(&app).await.contains("Major outage"));
    let before = entries(&app).await.len();
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Check-in down", "impact": "major", "message": "Check-in is down.",
                   "components": ["Check-in"],
                   "component_statuses": [
                       {"component": "Check-in", "status": "major_outage"},
                       {"component": "Baggage", "status": "degraded_performance"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let mut affected: Vec<&str> = r.body["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    affected.sort();
    assert_eq!(
        affected,
        ["Baggage", "Check-in"],
        "a component given a status is affected"
    );
    assert_eq!(status_of(&app, "Check-in").await, "major_outage");
    assert_eq!(status_of(&app, "Baggage").await, "degraded_performance");
    assert_eq!(status_of(&app, "Gates").await, "operational");
    let page = public_page(&app).await;
    assert!(page.contains("Major outage"), "{page}");
    assert!(page.contains("Degraded performance"), "{page}");

    // One entry for the write, naming each component's before → after; no separate
    // component entries.
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 1, "{e:?}");
    let last = e.last().unwrap();
    assert_eq!(last.action, "incident.create");
    assert!(
        last.summary.ends_with(
            "; components: Check-in: operational → major_outage, Baggage: operational → degraded_performance"
        ),
        "{last:?}"
    );

    // An update sets them too (and a component already in its status is not named).
    let id = r.body["id"].as_str().unwrap();
    let u = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "message": "Partly back.",
                   "component_statuses": [
                       {"component": "Check-in", "status": "partial_outage"},
                       {"component": "Baggage", "status": "degraded_performance"}]}),
        )
        .await;
    assert_eq!(u.status, 201, "{:?}", u.body);
    assert_eq!(status_of(&app, "Check-in").await, "partial_outage");
    let e = entries(&app).await;
    let last = e.last().unwrap();
    assert_eq!(last.action, "incident.update");
    assert!(
        last.summary
            .ends_with("; components: Check-in: major_outage → partial_outage"),
        "{last:?}"
    );
    assert!(public_page(&app).await.contains("Partial outage"));
}

#[tokio::test]
async fn bad_component_statuses_name_the_component_and_write_nothing() {
    let app = spawn_app().await;
    app.component("Check-in").await;
    let id = app.open_incident("open").await;
    let sum = app.checksum().await;
    let before = entries(&app).await.len();
    let open = |statuses: serde_json::Value, draft: bool| {
        json!({"title": "t", "impact": "minor", "message": "m", "draft": draft,
               "component_statuses": statuses})
    };
    for (body, says) in [
        (
            open(
                json!([{"component": "Gates", "status": "major_outage"}]),
                false,
            ),
            "component \"Gates\": no such component",
        ),
        (
            open(
                json!([{"component": "Check-in", "status": "sideways"}]),
                false,
            ),
            "component \"Check-in\":",
        ),
        (
            open(
                json!([{"component": "Check-in", "status": "major_outage"},
                       {"component": "Check-in", "status": "partial_outage"}]),
                false,
            ),
            "component \"Check-in\": named twice",
        ),
        (
            open(
                json!([{"component": "Check-in", "status": "major_outage"}]),
                true,
            ),
            "a draft changes no component",
        ),
    ] {
        let r = app.post("/api/v1/incidents", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        assert!(r.problem().contains(says), "{body}: {:?}", r.body);
        assert_eq!(r.body["field"], "component_statuses", "{:?}", r.body);
    }
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"message": "m", "component_statuses": [{"component": "Gates", "status": "major_outage"}]}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r.problem().contains("component \"Gates\""), "{:?}", r.body);
    assert_eq!(app.checksum().await, sum, "nothing written");
    assert_eq!(entries(&app).await.len(), before, "nothing audited");
    assert_eq!(status_of(&app, "Check-in").await, "operational");
}

/// A resolving update that sets a component's status keeps that status: only the incident's
/// other components are put back to operational.
#[tokio::test]
async fn a_resolution_keeps_the_statuses_it_sets_and_restores_the_others() {
    let app = spawn_app().await;
    app.component("Check-in").await;
    app.component("Baggage").await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Down", "impact": "major", "message": "Down.",
                   "component_statuses": [
                       {"component": "Check-in", "status": "major_outage"},
                       {"component": "Baggage", "status": "major_outage"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap();
    let u = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "resolved", "message": "Mostly back.",
                   "component_statuses": [{"component": "Check-in", "status": "degraded_performance"}]}),
        )
        .await;
    assert_eq!(u.status, 201, "{:?}", u.body);
    assert_eq!(
        u.body["restored_components"],
        json!(["Baggage"]),
        "{:?}",
        u.body
    );
    assert_eq!(status_of(&app, "Check-in").await, "degraded_performance");
    assert_eq!(status_of(&app, "Baggage").await, "operational");
}
