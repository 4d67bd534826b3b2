//! Composition's failures are classified: a message that cannot fit is permanent (the delivery
//! is rejected), a failure that may pass is transient (the delivery is retried).

use super::*;
use crate::render::rules::FitError;
use crate::render::sample_incident;
use std::path::PathBuf;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")
}

fn outlet(own: Option<&str>, policy: OverflowPolicy) -> Outlet {
    Outlet {
        own_templates: own.map(str::to_owned),
        platform: Platform::Sms,
        webhook: false,
        locale: Locale::english(),
        timezone: Tz::UTC,
        policy,
    }
}

fn composer(templates: Templates, outlet: Outlet) -> Composer {
    let settings = Settings {
        public_url: Some("https://status.example.com".into()),
        ..Settings::default()
    };
    Composer::new(Arc::new(templates), Arc::new(settings), outlet)
}

fn update_request<'a>(incident: &'a Incident, update: &'a Update) -> Request<'a> {
    Request {
        message: (incident.id, 1),
        source: Source::Update { incident, update },
        target: &Target::Endpoint,
    }
}

#[test]
fn a_message_that_cannot_fit_is_permanent() {
    let long = "Check-in is slow at every desk. ".repeat(20);
    let (incident, update) = sample_incident(Event::IncidentUpdated, &long, Utc::now()).unwrap();
    let reject = composer(
        Templates::load(&shipped(), &[]).unwrap(),
        outlet(None, OverflowPolicy::Reject),
    );
    let req = update_request(&incident, &update);
    match reject.compose(&req, || ChannelRule::sms(1)) {
        Err(ComposeError::Permanent(FitError::TooLong { .. })) => {}
        other => panic!("too long under `reject` must be permanent: {other:?}"),
    }
    // The same message threads on a channel that threads: the policy made it permanent.
    let thread = composer(
        Templates::load(&shipped(), &[]).unwrap(),
        outlet(None, OverflowPolicy::Thread),
    );
    let m = thread.compose(&req, || ChannelRule::sms(1)).unwrap();
    assert!(m.message.parts.len() > 1, "{:?}", m.message.parts);
}

#[test]
fn a_template_failure_or_a_missing_update_is_transient() {
    // The channel's own template passes the start-up check (the sample text) but fails on this
    // update's text.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("incident_updated")).unwrap();
    std::fs::write(
        dir.path().join("incident_updated/sms.en.txt.j2"),
        "{% if update.text == \"boom\" %}{{ no_such_variable }}{% endif %}{{ update.text }}",
    )
    .unwrap();
    let templates = Templates::load(&shipped(), &[("ops".into(), dir.path().to_owned())]).unwrap();
    let c = composer(templates, outlet(Some("ops"), OverflowPolicy::Reject));
    let (incident, update) = sample_incident(Event::IncidentUpdated, "boom", Utc::now()).unwrap();
    match c.compose(&update_request(&incident, &update), || ChannelRule::sms(1)) {
        Err(ComposeError::Transient(Transient::Render(_))) => {}
        other => panic!("a template failure must be transient: {other:?}"),
    }

    // A reminder of an incident with no published update yet.
    let req = Request {
        message: (incident.id, 1),
        source: Source::Reminder {
            incident: &incident,
            updates: &[],
            due: Utc::now(),
            maintenance: false,
            now: Utc::now(),
        },
        target: &Target::Endpoint,
    };
    match c.compose(&req, || ChannelRule::sms(1)) {
        Err(e @ ComposeError::Transient(Transient::Missing(_))) => {
            assert_eq!(e.to_string(), "the incident has no published update");
        }
        other => panic!("a missing update must be transient: {other:?}"),
    }
}
