//! The console's maintenance window: its reminder in the compose form, its schedule on the
//! incident page and its next transition on the dashboard (plain HTTP with a session).

use crate::console::{add_user, console_app, get, login, post};
use crier::domain::{Reminder, Span};
use crier::store::port::Incidents;

async fn maintenances(app: &crate::helpers::TestApp) -> Vec<crier::domain::Incident> {
    app.store
        .incidents(&crier::domain::IncidentFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn console_schedules_a_window_with_its_reminder_and_shows_its_transitions() {
    let (app, _) = console_app(&[], |c| {
        c.render.timezone = "Europe/Helsinki".parse().unwrap();
        c.schedule.maintenance_remind_before = Some(std::time::Duration::from_secs(86_400));
    })
    .await;
    add_user(&app, "anna", "publisher").await;
    let anna = login(&app, "anna").await;

    // The form: the field with its picks, the config's (1 day) chosen, and the hint.
    let form = get(&app, Some(&anna.cookie), "/console/compose").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Remind the audience"), "{}", form.body);
    for pick in ["none", "15m", "1h", "1d"] {
        assert!(
            form.body
                .contains(&format!("name=\"remind_before\" value=\"{pick}\"")),
            "{pick}"
        );
    }
    assert!(
        form.body
            .contains("name=\"remind_before\" value=\"1d\" checked"),
        "{}",
        form.body
    );
    assert!(form.body.contains("Default: 1d before the start"));

    let window = [
        ("kind", "maintenance"),
        ("title", "Check-in system upgrade"),
        ("msg_en", "Check-in kiosks are offline during the upgrade."),
        ("scheduled_for", "2031-01-15T02:00"),
        ("scheduled_until", "2031-01-15T04:00"),
        ("remind_before", "8d"),
        ("action", "publish"),
    ];
    // A reminder longer than 7 days: the API's message next to the field, nothing written.
    let p = post(&app, &anna, "/console/incidents", &window, true).await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.body.contains("id=\"err-remind_before\""), "{}", p.body);
    assert!(p.body.contains("longer than 7d"), "{}", p.body);
    assert!(maintenances(&app).await.is_empty());

    let mut ok = window;
    ok[5] = ("remind_before", "1h");
    let p = post(&app, &anna, "/console/incidents", &ok, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    let all = maintenances(&app).await;
    assert_eq!(
        all[0].remind_before,
        Some(Reminder::Before(Span::from_secs(3600)))
    );
    let id = all[0].id;

    // The incident page: the three coming transitions, in the zone and in UTC.
    let page = get(
        &app,
        Some(&anna.cookie),
        &format!("/console/incidents/{id}"),
    )
    .await;
    assert_eq!(page.status, 200);
    let b = &page.body;
    assert!(b.contains("1h before the start"), "{b}");
    assert!(
        b.contains(
            "Reminder at 2031-01-15 01:00 EET (23:00 UTC)</strong> — <span class=\"state\">not yet"
        ),
        "{b}"
    );
    assert!(
        b.contains(
            "In progress at 2031-01-15 02:00 EET (00:00 UTC)</strong> — <span class=\"state\">upcoming"
        ),
        "{b}"
    );
    assert!(
        b.contains(
            "Completed at 2031-01-15 04:00 EET (02:00 UTC)</strong> — <span class=\"state\">upcoming"
        ),
        "{b}"
    );
    // The dashboard: the next transition.
    let dash = get(&app, Some(&anna.cookie), "/console/").await;
    assert!(
        dash.body
            .contains("Next: Reminder at 2031-01-15 01:00 EET (23:00 UTC)"),
        "{}",
        dash.body
    );

    // Started early by hand: the step is done, with the time it happened.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            serde_json::json!({"status": "in_progress", "message": "Started early."}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let page = get(
        &app,
        Some(&anna.cookie),
        &format!("/console/incidents/{id}"),
    )
    .await;
    assert!(
        page.body.contains("id=\"step-in-progress\"><strong>In progress at 2031-01-15 02:00 EET (00:00 UTC)</strong> — <span class=\"state\">done at "),
        "{}",
        page.body
    );
    // The reminder goes only while the window is still scheduled: it will not be sent now.
    assert!(
        page.body
            .contains("(23:00 UTC)</strong> — <span class=\"state\">not sent"),
        "{}",
        page.body
    );
    let dash = get(&app, Some(&anna.cookie), "/console/").await;
    assert!(
        dash.body
            .contains("Next: Completed at 2031-01-15 04:00 EET (02:00 UTC)"),
        "{}",
        dash.body
    );
}

#[tokio::test]
async fn console_leaves_the_reminder_out_of_an_incident_and_none_shows_no_reminder() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let anna = login(&app, "anna").await;
    // No config default: "none" is chosen.
    let form = get(&app, Some(&anna.cookie), "/console/compose").await;
    assert!(
        form.body
            .contains("name=\"remind_before\" value=\"none\" checked"),
        "{}",
        form.body
    );
    // The field is in every form (it works without JavaScript); an incident ignores it.
    let p = post(
        &app,
        &anna,
        "/console/incidents",
        &[
            ("kind", "incident"),
            ("title", "Check-in is slow"),
            ("impact", "major"),
            ("msg_en", "Slow."),
            ("remind_before", "1h"),
            ("action", "publish"),
        ],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    let i = &maintenances(&app).await[0];
    assert_eq!(i.remind_before, None);
    let page = get(
        &app,
        Some(&anna.cookie),
        &format!("/console/incidents/{}", i.id),
    )
    .await;
    assert!(!page.body.contains("id=\"h-sched\""), "{}", page.body);

    let p = post(
        &app,
        &anna,
        "/console/incidents",
        &[
            ("kind", "maintenance"),
            ("title", "Upgrade"),
            ("msg_en", "Planned."),
            ("scheduled_for", "2031-01-15T02:00"),
            ("scheduled_until", "2031-01-15T04:00"),
            ("remind_before", "none"),
            ("action", "publish"),
        ],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    let m = maintenances(&app)
        .await
        .into_iter()
        .find(|i| i.title.as_str() == "Upgrade")
        .unwrap();
    assert_eq!(m.remind_before, Some(Reminder::Off));
    let page = get(
        &app,
        Some(&anna.cookie),
        &format!("/console/incidents/{}", m.id),
    )
    .await;
    assert!(
        page.body.contains("Reminder to the audience: none."),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Reminder at"), "{}", page.body);
    assert!(
        page.body
            .contains("In progress at 2031-01-15 02:00 UTC (02:00 UTC)"),
        "{}",
        page.body
    );
}
