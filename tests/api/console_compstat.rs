//! The compose form's component statuses (each affected component's new status, set in the
//! same write as the incident or update) and a responder's "Submit for approval", over plain
//! HTTP. The browser scenario is in `console_browser.rs`.

use crate::console::{add_user, console_app, get, login, post};
use crate::helpers::TestApp;
use crier::domain::audit::AuditEntry;
use crier::domain::audit::AuditFilter;
use crier::store::port::Audit;
use crier::store::port::{Components, Incidents};

async fn entries(app: &TestApp) -> Vec<AuditEntry> {
    app.store
        .audit_entries(&AuditFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
}

async fn status_of(app: &TestApp, name: &str) -> String {
    app.store
        .components()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name.as_str() == name)
        .map(|c| c.status.as_str().to_owned())
        .unwrap_or_else(|| panic!("no component {name}"))
}

async fn incidents(app: &TestApp) -> usize {
    app.store
        .incidents(&crier::domain::IncidentFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

const OPEN: [(&str, &str); 4] = [
    ("title", "Check-in is down"),
    ("impact", "major"),
    ("msg_en", "Check-in kiosks are down."),
    ("action", "publish"),
];

/// The form offers each component's new status; a published opening sets the chosen ones in
/// its one write (one audit entry naming each change), an unchanged row sets nothing, a bad
/// status shows the API's message next to the statuses and writes nothing, a draft sets none
/// (the form says so), and an update sets them too.
#[tokio::test]
async fn console_compose_sets_component_statuses_in_the_same_write() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    app.component("Check-in").await;
    app.component("Baggage").await;
    let anna = login(&app, "anna").await;

    let form = get(&app, Some(&anna.cookie), "/console/compose").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"cs.Check-in\""), "{}", form.body);
    assert!(form.body.contains("(now operational)"), "{}", form.body);
    assert!(form.body.contains("A draft changes none"), "{}", form.body);

    // A bad status: the API's message next to the statuses, the typed value kept, nothing
    // written or audited.
    let before = entries(&app).await.len();
    let sum = app.checksum().await;
    let mut bad = OPEN.to_vec();
    bad.extend([("cs.Check-in", "sideways"), ("cs.Baggage", "")]);
    let p = post(&app, &anna, "/console/incidents", &bad, true).await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(
        p.body.contains("id=\"err-component_statuses\""),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("component &quot;Check-in&quot;:")
            || p.body.contains("component \"Check-in\":"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("<option value=\"sideways\" selected>"),
        "{}",
        p.body
    );
    assert_eq!(incidents(&app).await, 0);
    assert_eq!(app.checksum().await, sum);
    assert_eq!(
        entries(&app).await.len(),
        before,
        "a refused write is not audited"
    );

    // A draft: refused with the form's reason, nothing written.
    let mut draft = OPEN.to_vec();
    draft.retain(|(k, _)| *k != "action");
    draft.extend([("action", "draft"), ("cs.Check-in", "major_outage")]);
    let p = post(&app, &anna, "/console/incidents", &draft, true).await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(
        p.body.contains("a draft changes no component"),
        "{}",
        p.body
    );
    assert_eq!(app.checksum().await, sum);

    // Published: Check-in changes, Baggage (unchanged in the form) keeps its status, one entry.
    let mut good = OPEN.to_vec();
    good.extend([("cs.Check-in", "major_outage"), ("cs.Baggage", "")]);
    let p = post(&app, &anna, "/console/incidents", &good, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(incidents(&app).await, 1);
    assert_eq!(status_of(&app, "Check-in").await, "major_outage");
    assert_eq!(status_of(&app, "Baggage").await, "operational");
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 1, "exactly one entry for the write");
    let last = e.last().unwrap();
    assert_eq!(last.action, "incident.create");
    assert!(
        last.summary
            .ends_with("; components: Check-in: operational → major_outage"),
        "{last:?}"
    );

    // An update from the console sets them too.
    let id = p.location["/console/incidents/".len()..]
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let form = get(
        &app,
        Some(&anna.cookie),
        &format!("/console/compose?incident={id}"),
    )
    .await;
    assert!(form.body.contains("(now major outage)"), "{}", form.body);
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/updates"),
        &[
            ("msg_en", "Partly back."),
            ("action", "publish"),
            ("cs.Check-in", "partial_outage"),
        ],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(status_of(&app, "Check-in").await, "partial_outage");
    let last = entries(&app).await.pop().unwrap();
    assert_eq!(last.action, "incident.update");
    assert!(
        last.summary
            .ends_with("; components: Check-in: major_outage → partial_outage"),
        "{last:?}"
    );
}

/// Issue 13, scenario 2 in the console: a responder's compose page offers "Submit for
/// approval…" (not "Publish…"), the confirmation says it waits for a second person, the write
/// is held (nothing published, components untouched); the author has no approve button and a
/// forged approve is refused; a publisher approves it and it is published once, setting the
/// components.
#[tokio::test]
async fn console_a_responder_submits_for_approval_and_a_publisher_approves() {
    let (app, _) = console_app(&[("log", "kind = \"log\"\naudience = \"fixed\"\n")], |_| {}).await;
    add_user(&app, "rita", "responder").await;
    add_user(&app, "pekka", "publisher").await;
    app.component("Check-in").await;
    let rita = login(&app, "rita").await;
    let pekka = login(&app, "pekka").await;

    let form = get(&app, Some(&rita.cookie), "/console/compose").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Submit for approval…"), "{}", form.body);
    assert!(!form.body.contains("Publish…"), "{}", form.body);
    let form = get(&app, Some(&pekka.cookie), "/console/compose").await;
    assert!(form.body.contains("Publish…"), "{}", form.body);

    let mut fields = OPEN.to_vec();
    fields.push(("cs.Check-in", "major_outage"));
    let c = post(&app, &rita, "/console/confirm", &fields, true).await;
    assert_eq!(c.status, 200, "{c:?}");
    assert!(c.body.contains("Submit for approval?"), "{}", c.body);
    assert!(
        c.body
            .contains("the author&#x27;s role (responder) may not publish alone")
            || c.body
                .contains("the author's role (responder) may not publish alone"),
        "{}",
        c.body
    );
    assert!(c.body.contains("Nothing is sent until then"), "{}", c.body);
    // The summary names the languages written in, as words (it once printed the page's
    // language records).
    assert!(c.body.contains(", in English."), "{}", c.body);
    assert!(
        !c.body.contains("&quot;code&quot;") && !c.body.contains("\"code\""),
        "{}",
        c.body
    );
    assert!(
        c.body.contains("Check-in → major_outage, once approved"),
        "{}",
        c.body
    );

    let p = post(&app, &rita, "/console/incidents", &fields, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert!(p.location.starts_with("/console/?held="), "{p:?}");
    assert_eq!(incidents(&app).await, 0, "nothing published while held");
    assert_eq!(status_of(&app, "Check-in").await, "operational");
    let approval = p.location["/console/?held=".len()..].to_owned();

    let dash = get(&app, Some(&rita.cookie), "/console/").await;
    assert!(
        !dash
            .body
            .contains(&format!("/console/approvals/{approval}/approve")),
        "no approve button for the author"
    );
    let before = entries(&app).await.len();
    let forged = post(
        &app,
        &rita,
        &format!("/console/approvals/{approval}/approve"),
        &[],
        true,
    )
    .await;
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(incidents(&app).await, 0);
    assert_eq!(
        entries(&app).await.len(),
        before,
        "a refused approval writes nothing"
    );

    let dash = get(&app, Some(&pekka.cookie), "/console/").await;
    assert!(
        dash.body.contains("Waiting for approval (1)"),
        "{}",
        dash.body
    );
    let p = post(
        &app,
        &pekka,
        &format!("/console/approvals/{approval}/approve"),
        &[],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(incidents(&app).await, 1, "published once");
    assert_eq!(status_of(&app, "Check-in").await, "major_outage");
    let last = entries(&app).await.pop().unwrap();
    assert_eq!(last.action, "approval.approve");
    assert!(
        last.summary
            .contains("components: Check-in: operational → major_outage"),
        "{last:?}"
    );
    let again = post(
        &app,
        &pekka,
        &format!("/console/approvals/{approval}/approve"),
        &[],
        true,
    )
    .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(incidents(&app).await, 1);
}
