//! Incident templates over the API: create, list, show by id or name, edit, remove; who may
//! write them; bad input refused with the field named and nothing written; one audit entry per
//! write with what changed.

use crate::authz::{add_token, add_user};
use crate::helpers::{spawn_app, TestApp};
use crier::domain::audit::AuditEntry;
use crier::domain::audit::AuditFilter;
use crier::domain::Role;
use crier::store::port::Audit;
use serde_json::{json, Value};

async fn audit(app: &TestApp, action: &str) -> Vec<AuditEntry> {
    app.store
        .audit_entries(&AuditFilter {
            action: Some(action.into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
}

async fn all_audit(app: &TestApp) -> usize {
    app.store
        .audit_entries(&AuditFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
        .len()
}

pub fn slow_checkin() -> Value {
    json!({
        "name": "Check-in slow",
        "title": "Check-in delays at Helsinki Airport",
        "impact": "major",
        "status": "investigating",
        "components": ["Check-in"],
        "messages": {"en": "Check-in is slower than usual.", "fi": "Lähtöselvitys on tavallista hitaampi."}
    })
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn templates_are_created_listed_shown_edited_and_removed_with_audit_entries() {
    let app = spawn_app().await;
    app.component("Check-in").await;
    let pub_user = add_user(&app, "pia", Role::Publisher).await;
    let (publisher, _) = add_token(&app, &pub_user, Role::Publisher, None).await;
    let viewer_user = add_user(&app, "ville", Role::Viewer).await;
    let (viewer, _) = add_token(&app, &viewer_user, Role::Viewer, None).await;

    let (status, t) = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/templates",
        &publisher,
        Some(slow_checkin()),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_str().unwrap().to_owned();
    assert_eq!(t["name"], "Check-in slow");
    assert_eq!(t["impact"], "major");
    assert_eq!(t["status"], "investigating");
    assert_eq!(t["components"], json!(["Check-in"]));
    assert_eq!(t["messages"]["fi"], "Lähtöselvitys on tavallista hitaampi.");
    assert_eq!(t["created_by"], "pia");
    assert_eq!(t["updated_by"], "pia");
    let created = audit(&app, "template.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].actor, "pia");
    assert_eq!(created[0].target, format!("template {id}"));
    assert!(
        created[0].summary.contains("\"Check-in slow\"")
            && created[0].summary.contains("messages in en, fi"),
        "{}",
        created[0].summary
    );

    // Every role reads them, by id or by name in any case.
    let (status, list) = send(
        &app,
        reqwest::Method::GET,
        "/api/v1/templates",
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, one) = send(
        &app,
        reqwest::Method::GET,
        "/api/v1/templates/check-in%20SLOW",
        &viewer,
        None,
    )
    .await;
    assert_eq!((status, one["id"].as_str()), (200, Some(id.as_str())));
    let (status, one) = send(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/templates/{id}"),
        &viewer,
        None,
    )
    .await;
    assert_eq!((status, one["name"].as_str()), (200, Some("Check-in slow")));

    // An edit replaces what it names and keeps the rest; "" removes a language.
    let (status, t) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/templates/{id}"),
        &publisher,
        Some(json!({"impact": "critical", "messages": {"fi": "", "sv": "Incheckningen är långsam."}})),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["impact"], "critical");
    assert_eq!(t["title"], "Check-in delays at Helsinki Airport");
    assert_eq!(
        t["messages"],
        json!({"en": "Check-in is slower than usual.", "sv": "Incheckningen är långsam."})
    );
    let updated = audit(&app, "template.update").await;
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0].summary,
        "template \"Check-in slow\": impact major → critical, message fi removed, message sv added"
    );

    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/templates/Check-in%20slow",
        &publisher,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let removed = audit(&app, "template.remove").await;
    assert_eq!(removed.len(), 1);
    assert!(
        removed[0].summary.ends_with("removed"),
        "{}",
        removed[0].summary
    );
    let (status, body) = send(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/templates/{id}"),
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn a_responder_or_viewer_cannot_write_templates_and_nothing_is_written() {
    let app = spawn_app().await;
    app.component("Check-in").await;
    let r = app.post("/api/v1/templates", slow_checkin()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    for role in [Role::Responder, Role::Viewer] {
        let user = add_user(&app, &format!("u-{role}"), role).await;
        let (token, _) = add_token(&app, &user, role, None).await;
        let (before, entries) = (app.checksum().await, all_audit(&app).await);
        let mut other = slow_checkin();
        other["name"] = json!("Another");
        let (status, body) = send(
            &app,
            reqwest::Method::POST,
            "/api/v1/templates",
            &token,
            Some(other),
        )
        .await;
        assert_eq!(status, 403, "{role}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("publisher"),
            "{body}"
        );
        let (status, _) = send(
            &app,
            reqwest::Method::PATCH,
            &format!("/api/v1/templates/{id}"),
            &token,
            Some(json!({"impact": "minor"})),
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = send(
            &app,
            reqwest::Method::DELETE,
            &format!("/api/v1/templates/{id}"),
            &token,
            None,
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(app.checksum().await, before, "{role}: nothing written");
        assert_eq!(
            all_audit(&app).await,
            entries,
            "{role}: no audit entry for a refused write"
        );
        // …but reads them.
        let (status, list) = send(
            &app,
            reqwest::Method::GET,
            "/api/v1/templates",
            &token,
            None,
        )
        .await;
        assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(1)));
    }
}

#[tokio::test]
async fn bad_templates_are_refused_with_the_field_named_and_nothing_is_written() {
    let app = spawn_app().await;
    app.component("Check-in").await;
    let r = app.post("/api/v1/templates", slow_checkin()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let with = |k: &str, v: Value| {
        let mut b = slow_checkin();
        b["name"] = json!("Other");
        b[k] = v;
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (with("name", json!("  ")), 422, "name: is empty"),
        (with("name", json!("x".repeat(81))), 422, "keep it at most 80"),
        (with("name", json!("CHECK-IN SLOW")), 409, "exists already"),
        (with("title", json!("")), 422, "title: is empty"),
        (with("impact", json!("huge")), 422, "impact"),
        (with("status", json!("resolved")), 422, "status: \"resolved\" is not a status a template can set; write investigating, identified or monitoring"),
        (with("components", json!(["Runway"])), 422, "unknown component \"Runway\""),
        (with("messages", json!({})), 422, "messages: has no text"),
        (with("messages", json!({"de": "Hallo"})), 422, "\"de\" is not one of the configured languages; write one of en, fi, sv"),
        (with("messages", json!({"en": "bell\u{7}"})), 422, "messages: the en text"),
        (with("messages", json!({"en": "x".repeat(25_001)})), 422, "keep it at most"),
        (with("colour", json!("red")), 422, "unknown field `colour`"),
    ];
    let before = (app.checksum().await, all_audit(&app).await);
    for (body, status, says) in cases {
        let r = app.post("/api/v1/templates", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
        assert!(r.problem().contains(says), "{says}: {}", r.problem());
    }
    let r = app
        .raw(
            reqwest::Method::POST,
            "/api/v1/templates",
            b"{not json".to_vec(),
            Some("application/json"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 400);
    r.problem();
    // Edits likewise.
    for (body, status, says) in [
        (json!({}), 422, "nothing to change"),
        (
            json!({"messages": {"en": "", "FI": " "}}),
            422,
            "messages: has no text",
        ),
        (json!({"status": "completed"}), 422, "status:"),
        (
            json!({"messages": {"de": ""}}),
            422,
            "\"de\" is not one of the configured languages",
        ),
        (json!({"components": ["Runway"]}), 422, "unknown component"),
    ] {
        let r = app
            .raw(
                reqwest::Method::PATCH,
                &format!("/api/v1/templates/{id}"),
                serde_json::to_vec(&body).unwrap(),
                Some("application/json"),
                Some(&app.token),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
        assert!(r.problem().contains(says), "{says}: {}", r.problem());
    }
    let r = app.get("/api/v1/templates/no-such").await;
    assert_eq!(r.status, 404);
    assert!(
        r.problem().contains("crier templates list"),
        "{}",
        r.problem()
    );
    assert_eq!(
        (app.checksum().await, all_audit(&app).await),
        before,
        "nothing written"
    );
}

/// `crier templates add | list | show | edit | remove` with the real binary.
#[tokio::test]
async fn the_cli_adds_lists_shows_edits_and_removes_templates() {
    use crate::helpers::{crier, json, stderr, stdout};
    let app = spawn_app().await;
    app.component("Check-in").await;
    let o = crier(
        &app,
        &[
            "templates",
            "add",
            "--name",
            "Check-in slow",
            "--title",
            "Check-in delays at HEL",
            "--impact",
            "Major",
            "--status",
            "identified",
            "--component",
            "Check-in",
            "--message",
            "en=Check-in is slow.",
            "--message",
            "fi=Lähtöselvitys on hidas; a=b stays.",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Added template \"Check-in slow\""), "{out}");
    assert!(
        out.contains("message fi: Lähtöselvitys on hidas; a=b stays."),
        "{out}"
    );

    let o = crier(&app, &["templates", "list"]).await;
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.lines().any(|l| l.starts_with("Check-in slow")
            && l.contains("major")
            && l.contains("en,fi")
            && l.contains("Check-in delays at HEL")),
        "{out}"
    );

    let o = crier(&app, &["--json", "templates", "show", "check-in slow"]).await;
    let t = json(&o);
    assert_eq!(t["components"], json!(["Check-in"]));
    assert_eq!(t["status"], "identified");

    let o = crier(
        &app,
        &[
            "templates",
            "edit",
            "Check-in slow",
            "--impact",
            "critical",
            "--no-components",
            "--message",
            "fi=",
            "--message",
            "sv=Incheckningen är långsam.",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let t = app.get("/api/v1/templates/Check-in%20slow").await.body;
    assert_eq!(t["impact"], "critical");
    assert_eq!(t["components"], json!([]));
    assert_eq!(
        t["messages"],
        json!({"en": "Check-in is slow.", "sv": "Incheckningen är långsam."})
    );

    // Usage errors before the server (exit 2), the server's refusal (exit 3), nothing written.
    let before = app.checksum().await;
    let o = crier(
        &app,
        &[
            "templates",
            "add",
            "--name",
            "X",
            "--title",
            "T",
            "--impact",
            "minor",
            "--status",
            "identified",
            "--message",
            "just text",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("write LANG=TEXT"), "{}", stderr(&o));
    let o = crier(
        &app,
        &[
            "templates",
            "add",
            "--name",
            "X",
            "--title",
            "T",
            "--impact",
            "minor",
            "--status",
            "resolved",
            "--message",
            "en=x",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("write investigating, identified or monitoring"),
        "{}",
        stderr(&o)
    );
    assert_eq!(app.checksum().await, before);

    let o = crier(&app, &["templates", "remove", "CHECK-IN SLOW"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Removed template \"Check-in slow\""),
        "{}",
        stdout(&o)
    );
    let o = crier(&app, &["templates", "list"]).await;
    assert!(stdout(&o).contains("No templates yet"), "{}", stdout(&o));
}

/// The console's templates page (plain HTTP): a publisher adds, edits and removes (after a
/// confirmation), one audit entry each; bad input shows the API's message next to its field
/// and writes nothing; a viewer sees the list without the form; a responder's compose page is
/// filled from a template without JavaScript.
#[tokio::test]
async fn console_templates_are_kept_by_publishers_and_fill_the_compose_form() {
    use crate::console::{add_user as console_user, console_app, get, login, post};
    let (app, _clock) = console_app(&[], |_| {}).await;
    app.component("Check-in").await;
    console_user(&app, "pia", "publisher").await;
    console_user(&app, "rob", "responder").await;
    console_user(&app, "vera", "viewer").await;
    let pia = login(&app, "pia").await;
    let fields = [
        ("name", "Check-in slow"),
        ("title", "Check-in delays at HEL"),
        ("impact", "major"),
        ("status", "identified"),
        ("components", "Check-in"),
        ("msg_en", "Check-in is slow."),
        ("msg_fi", "Lähtöselvitys on hidas."),
        ("msg_sv", ""),
    ];

    // Bad input: the API's message next to the field, nothing written.
    let before = (app.checksum().await, all_audit(&app).await);
    let mut bad = fields.to_vec();
    bad[3] = ("status", "resolved");
    let p = post(&app, &pia, "/console/templates", &bad, true).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body.contains(
            "id=\"err-status\">status: &quot;resolved&quot; is not a status a template can set"
        ),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("value=\"Check-in delays at HEL\""),
        "what was typed stays: {}",
        p.body
    );
    let mut bad = fields.to_vec();
    bad[5] = ("msg_en", "");
    bad[6] = ("msg_fi", " ");
    let p = post(&app, &pia, "/console/templates", &bad, true).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body.contains("id=\"err-messages\">messages: has no text"),
        "{}",
        p.body
    );
    assert_eq!(
        (app.checksum().await, all_audit(&app).await),
        before,
        "nothing written"
    );

    let p = post(&app, &pia, "/console/templates", &fields, true).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/console/templates?done=added"),
        "{}",
        p.body
    );
    assert_eq!(audit(&app, "template.create").await.len(), 1);
    assert_eq!(all_audit(&app).await, before.1 + 1, "one entry");
    let id = app.get("/api/v1/templates").await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Edit: the form filled with it; a blank message removes that language.
    let form = get(
        &app,
        Some(&pia.cookie),
        &format!("/console/templates?edit={id}"),
    )
    .await;
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains(&format!("action=\"/console/templates/{id}\"")),
        "{}",
        form.body
    );
    assert!(
        form.body.contains(">Lähtöselvitys on hidas.</textarea>"),
        "{}",
        form.body
    );
    let mut edited = fields.to_vec();
    edited[2] = ("impact", "critical");
    edited[6] = ("msg_fi", "");
    let p = post(
        &app,
        &pia,
        &format!("/console/templates/{id}"),
        &edited,
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let upd = audit(&app, "template.update").await;
    assert_eq!(upd.len(), 1);
    assert_eq!(
        upd[0].summary,
        "template \"Check-in slow\": impact major → critical, message fi removed"
    );

    // A viewer reads the list, without the form or the buttons.
    let vera = login(&app, "vera").await;
    let list = get(&app, Some(&vera.cookie), "/console/templates").await;
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains("Check-in slow") && list.body.contains("Check-in is slow."),
        "{}",
        list.body
    );
    assert!(
        !list.body.contains("id=\"template-form\"") && !list.body.contains("Remove…"),
        "{}",
        list.body
    );
    assert!(
        list.body
            .contains("href=\"/console/templates\">Templates</a>"),
        "in the nav: {}",
        list.body
    );
    let p = post(
        &app,
        &vera,
        &format!("/console/templates/{id}/remove"),
        &[],
        true,
    )
    .await;
    assert_eq!(p.status, 403, "{}", p.body);

    // A responder applies it on the compose page without JavaScript.
    let rob = login(&app, "rob").await;
    let compose = get(
        &app,
        Some(&rob.cookie),
        &format!("/console/compose?template={id}"),
    )
    .await;
    assert_eq!(compose.status, 200, "{}", compose.body);
    let b = &compose.body;
    assert!(b.contains(&format!("<option value=\"{id}\"")), "{b}");
    assert!(
        b.contains(
            "id=\"title\" name=\"title\" maxlength=\"200\" value=\"Check-in delays at HEL\""
        ),
        "{b}"
    );
    assert!(b.contains("<option value=\"critical\" selected>"), "{b}");
    assert!(b.contains("<option value=\"identified\" selected>"), "{b}");
    assert!(b.contains("value=\"Check-in\" checked"), "{b}");
    assert!(b.contains(">Check-in is slow.</textarea>"), "{b}");
    let missing = get(&app, Some(&rob.cookie), "/console/compose?template=nope").await;
    assert_eq!(missing.status, 404);

    // Remove: a confirmation first, then the button.
    let confirm = get(
        &app,
        Some(&pia.cookie),
        &format!("/console/templates?remove={id}"),
    )
    .await;
    assert!(
        confirm
            .body
            .contains("Remove the template “Check-in slow”?"),
        "{}",
        confirm.body
    );
    assert_eq!(
        app.get("/api/v1/templates")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1,
        "asking removes nothing"
    );
    let p = post(
        &app,
        &pia,
        &format!("/console/templates/{id}/remove"),
        &[],
        true,
    )
    .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/console/templates?done=removed")
    );
    assert_eq!(audit(&app, "template.remove").await.len(), 1);
    assert_eq!(app.get("/api/v1/templates").await.body, json!([]));
}
