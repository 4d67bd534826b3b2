//! Rendering tests against the shipped templates (`templates/`) and small temporary ones.

use super::preview::{preview_text, Platform, TextPreview};
use super::*;
use crate::domain::Body;
use std::collections::BTreeMap;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")
}

fn l(s: &str) -> Locale {
    Locale::parse(s).unwrap()
}

fn helsinki() -> Tz {
    "Europe/Helsinki".parse().unwrap()
}

fn settings() -> Settings {
    Settings {
        org_name: "Finnair".into(),
        public_url: Some("https://status.example.com".into()),
        timezone: helsinki(),
        page: Default::default(),
    }
}

#[test]
fn every_shipped_template_renders_for_every_event_kind_and_locale() {
    let t = Templates::load(&shipped(), &[]).unwrap();
    let headline = |e: Event, loc: &str| match (e, loc) {
        (Event::IncidentUpdated, "en") => Some("Update"),
        (Event::IncidentUpdated, "fi") => Some("Päivitys"),
        (Event::IncidentUpdated, "sv") => Some("Uppdatering"),
        (Event::IncidentResolved, "fi") => Some("Korjattu"),
        (Event::MaintenanceCompleted, "sv") => Some("Underhållet är klart"),
        _ => None,
    };
    let mut count = 0;
    for event in Event::ALL {
        for kind in TemplateKind::ALL {
            for loc in i18n::SHIPPED {
                let locale = l(loc);
                let ctx = Context::sample(event, &locale).unwrap();
                let r = t.render(None, event, kind, &locale, &ctx).unwrap();
                assert!(!r.text.trim().is_empty(), "{event:?} {kind:?} {loc}");
                assert_eq!(r.locale, locale);
                if kind == TemplateKind::Email {
                    assert!(!r.subject.as_deref().unwrap_or("").is_empty());
                    assert!(r.html.as_deref().unwrap_or("").contains("<html lang=\""));
                }
                if let Some(h) = headline(event, loc) {
                    assert!(r.text.contains(h), "{event:?} {kind:?} {loc}: {}", r.text);
                }
                count += 1;
            }
        }
    }
    assert_eq!(count, 8 * 4 * 3);
}

fn temp_templates(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    dir
}

#[test]
fn undefined_variable_fails_loading_with_the_file_name() {
    let dir = temp_templates(&[(
        "incident_updated/sms.en.txt.j2",
        "{{ org }}: {{ incident.titel }}",
    )]);
    let err = Templates::load(dir.path(), &[])
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("incident_updated/sms.en.txt.j2"), "{err}");
    assert!(err.contains("undefined"), "{err}");
    let dir = temp_templates(&[("incident_updated/sms.en.txt.j2", "{{ nope }}")]);
    assert!(Templates::load(dir.path(), &[]).is_err());
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = temp_templates(&[(
        "incident_opened/chat.en.md.j2",
        "line one\n{% if incident.title %}\nno endif",
    )]);
    let err = Templates::load(dir.path(), &[])
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("incident_opened/chat.en.md.j2"), "{err}");
    assert!(err.contains("line "), "{err}");
}

#[test]
fn misplaced_template_files_are_refused() {
    let dir = temp_templates(&[("incident_updatd/sms.en.txt.j2", "{{ org }}")]);
    let err = Templates::load(dir.path(), &[])
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("misnamed") && err.contains("incident_updated"),
        "{err}"
    );
}

fn sample_with_text(event: Event, text: &str) -> (Incident, Update) {
    sample_incident(event, text, Utc::now()).unwrap()
}

#[test]
fn html_is_escaped_in_html_templates_only() {
    let t = Templates::load(&shipped(), &[]).unwrap();
    let (i, u) = sample_with_text(
        Event::IncidentUpdated,
        "Beware <script>alert('x')</script> & co",
    );
    let ctx = Context::for_update(&settings(), &i, &u, &l("en"), helsinki());
    let r = t
        .render(
            None,
            Event::IncidentUpdated,
            TemplateKind::Email,
            &l("en"),
            &ctx,
        )
        .unwrap();
    let html = r.html.unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("&amp; co"), "{html}");
    assert!(
        r.text.contains("<script>alert('x')</script> & co"),
        "plain text is not escaped: {}",
        r.text
    );
    let sms = t
        .render(
            None,
            Event::IncidentUpdated,
            TemplateKind::Sms,
            &l("en"),
            &ctx,
        )
        .unwrap();
    assert!(sms.text.contains("<script>"), "{}", sms.text);
}

#[test]
fn email_is_multipart_text_and_html() {
    let t = Templates::load(&shipped(), &[]).unwrap();
    let (i, u) = sample_with_text(Event::IncidentOpened, "Kirjautuminen on hidasta.");
    let ctx = Context::for_update(&settings(), &i, &u, &l("fi"), helsinki());
    let r = t
        .render(
            None,
            Event::IncidentOpened,
            TemplateKind::Email,
            &l("fi"),
            &ctx,
        )
        .unwrap();
    let msg = email::build_email(
        "Finnair <status@example.com>".parse().unwrap(),
        "reader@example.com".parse().unwrap(),
        &r,
        "01KEY",
        "example.com",
    )
    .unwrap();
    let raw = String::from_utf8(msg.formatted()).unwrap();
    assert!(raw.contains("multipart/alternative"), "{raw}");
    let plain = raw.find("Content-Type: text/plain").expect("text part");
    let html = raw.find("Content-Type: text/html").expect("html part");
    assert!(plain < html, "plain text must come before HTML");
    assert!(raw.contains("Message-ID: <01KEY@example.com>"), "{raw}");
    assert!(
        raw.contains("Subject: =?utf-8?") || raw.contains("Subject: [Finnair] Uusi"),
        "{raw}"
    );
}

#[test]
fn times_are_local_with_the_zone_named() {
    let t = Templates::load(&shipped(), &[]).unwrap();
    let (i, mut u) = sample_with_text(Event::IncidentUpdated, "x");
    u.next_update_due =
        Some(chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 23, 12, 0, 0).unwrap());
    let ctx = Context::for_update(&settings(), &i, &u, &l("fi"), helsinki());
    let r = t
        .render(
            None,
            Event::IncidentUpdated,
            TemplateKind::Sms,
            &l("fi"),
            &ctx,
        )
        .unwrap();
    assert!(
        r.text
            .contains("Seuraava päivitys viimeistään 23.11.2026 klo 14.00 EET"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("https://status.example.com/incidents/"),
        "{}",
        r.text
    );
}

#[test]
fn locale_falls_back_subscriber_then_channel_then_english() {
    let t = Templates::load(&shipped(), &[]).unwrap();
    let any = |_: &Locale| true;
    let ev = Event::IncidentUpdated;
    let k = TemplateKind::Sms;
    assert_eq!(
        t.choose_locale(None, ev, k, &[l("sv-FI")], any).unwrap(),
        l("sv")
    );
    assert_eq!(
        t.choose_locale(None, ev, k, &[l("de"), l("fi")], any)
            .unwrap(),
        l("fi")
    );
    assert_eq!(
        t.choose_locale(None, ev, k, &[l("de")], any).unwrap(),
        l("en")
    );
    // A Finnish reader of an update written only in English gets the English frame too.
    let body = Body::parse(BTreeMap::from([(l("en"), "English only".to_owned())])).unwrap();
    let has = |loc: &Locale| body.texts().contains_key(loc);
    assert_eq!(
        t.choose_locale(None, ev, k, &[l("fi")], has).unwrap(),
        l("en")
    );
}

#[test]
fn a_channel_overrides_templates_from_its_own_folder() {
    let own = temp_templates(&[(
        "incident_updated/sms.en.txt.j2",
        "OPS {{ incident.title }}: {{ update.text }}",
    )]);
    let t = Templates::load(&shipped(), &[("ops-sms".into(), own.path().to_path_buf())]).unwrap();
    let (i, u) = sample_with_text(Event::IncidentUpdated, "Fixed soon");
    let ctx = Context::for_update(&settings(), &i, &u, &l("en"), helsinki());
    let mine = t
        .render(
            Some("ops-sms"),
            Event::IncidentUpdated,
            TemplateKind::Sms,
            &l("en"),
            &ctx,
        )
        .unwrap();
    assert_eq!(
        mine.text,
        "OPS Check-in delays at Helsinki Airport: Fixed soon"
    );
    let shared = t
        .render(
            Some("other"),
            Event::IncidentUpdated,
            TemplateKind::Sms,
            &l("en"),
            &ctx,
        )
        .unwrap();
    assert!(
        shared.text.starts_with("Finnair: Update - "),
        "{}",
        shared.text
    );
    // An override with an undefined variable fails loading too, naming the channel's file.
    let bad = temp_templates(&[("incident_updated/sms.en.txt.j2", "{{ oops }}")]);
    let err = Templates::load(&shipped(), &[("x".into(), bad.path().to_path_buf())])
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains(&bad.path().display().to_string()), "{err}");
}

#[test]
fn sms_preview_shortens_with_the_link_and_counts_segments() {
    let t = Templates::load(&shipped(), &[]).unwrap();
    let text = "Lennot ovat myöhässä lumimyrskyn vuoksi. ".repeat(20);
    let p = preview_text(
        &t,
        &settings(),
        &TextPreview {
            platform: Platform::Sms,
            event: None,
            text: &text,
            locale: Some(l("fi")),
            tz: helsinki(),
            sms_segments: 1,
            channel: None,
            policy: None,
            channel_locale: None,
        },
    )
    .unwrap();
    assert_eq!(p.parts.len(), 1);
    assert_eq!(p.encoding.as_deref(), Some("GSM-7"));
    assert!(
        p.unfitted.as_ref().unwrap().segments > 1,
        "the full message needs several segments"
    );
    assert_eq!(p.segments, Some(1), "the shortened message is one segment");
    assert!(p.part_lengths[0] <= 160, "{:?}", p.part_lengths);
    let last_word = p.parts[0].rsplit(' ').next().unwrap();
    assert!(
        last_word.starts_with("https://status.example.com/incidents/"),
        "the link ends the shortened SMS: {}",
        p.parts[0]
    );
    // A euro sign keeps GSM-7 (extension table); an emoji switches to UCS-2.
    let euro = preview_text(
        &t,
        &settings(),
        &TextPreview {
            platform: Platform::Sms,
            event: None,
            text: "Refunds up to 100 €.",
            locale: Some(l("fi")),
            tz: helsinki(),
            sms_segments: 3,
            channel: None,
            policy: None,
            channel_locale: None,
        },
    )
    .unwrap();
    assert_eq!(euro.encoding.as_deref(), Some("GSM-7"));
    let emoji = preview_text(
        &t,
        &settings(),
        &TextPreview {
            platform: Platform::Sms,
            event: None,
            text: "Fixed 👍",
            locale: Some(l("fi")),
            tz: helsinki(),
            sms_segments: 3,
            channel: None,
            policy: None,
            channel_locale: None,
        },
    )
    .unwrap();
    assert_eq!(emoji.encoding.as_deref(), Some("UCS-2"));
}

#[test]
fn social_previews_thread_within_limits_and_facet_links() {
    let t = Templates::load(&shipped(), &[]).unwrap();
    let text =
        "Check-in is slow at Helsinki Airport because of a baggage system fault. ".repeat(10);
    for (platform, limit) in [
        (Platform::X, 280),
        (Platform::Mastodon, 500),
        (Platform::Bluesky, 300),
    ] {
        let p = preview_text(
            &t,
            &settings(),
            &TextPreview {
                platform,
                event: None,
                text: &text,
                locale: None,
                tz: helsinki(),
                sms_segments: 3,
                channel: None,
                policy: None,
                channel_locale: None,
            },
        )
        .unwrap();
        assert!(p.parts.len() > 1, "{platform:?}");
        assert!(
            p.part_lengths.iter().all(|&n| n <= limit),
            "{platform:?}: {:?}",
            p.part_lengths
        );
        let n = p.parts.len();
        assert!(p.parts[0].ends_with(&format!("(1/{n})")), "{}", p.parts[0]);
    }
    let p = preview_text(
        &t,
        &settings(),
        &TextPreview {
            platform: Platform::Bluesky,
            event: None,
            text: "Häiriö 😀 ohi",
            locale: None,
            tz: helsinki(),
            sms_segments: 3,
            channel: None,
            policy: None,
            channel_locale: None,
        },
    )
    .unwrap();
    let facets = p.facets.unwrap();
    let f = &facets[0][0];
    let (s, e) = (
        f["index"]["byteStart"].as_u64().unwrap() as usize,
        f["index"]["byteEnd"].as_u64().unwrap() as usize,
    );
    assert_eq!(
        &p.parts[0].as_bytes()[s..e],
        f["features"][0]["uri"].as_str().unwrap().as_bytes()
    );
}

#[test]
fn a_reopen_is_announced_as_a_reopening_in_every_kind_and_language() {
    let t = Templates::load(&shipped(), &[]).unwrap();
    for (loc, reopened, update) in [
        ("en", "Reopened", "Update"),
        ("fi", "Avattu uudelleen", "Päivitys"),
        ("sv", "Återöppnad", "Uppdatering"),
    ] {
        for kind in TemplateKind::ALL {
            let (i, mut u) = sample_with_text(Event::IncidentUpdated, "Delays again");
            u.action = UpdateAction::Reopened;
            assert_eq!(Event::of_update(i.kind, &u), Event::IncidentUpdated);
            let ctx = Context::for_update(&settings(), &i, &u, &l(loc), helsinki());
            let r = t
                .render(None, Event::IncidentUpdated, kind, &l(loc), &ctx)
                .unwrap();
            let shown = format!("{}\n{}", r.subject.unwrap_or_default(), r.text);
            assert!(shown.contains(reopened), "{kind:?} {loc}: {shown}");
            assert!(!shown.contains(update), "{kind:?} {loc}: {shown}");
            // An ordinary update keeps its wording.
            u.action = UpdateAction::Updated;
            let ctx = Context::for_update(&settings(), &i, &u, &l(loc), helsinki());
            let r = t
                .render(None, Event::IncidentUpdated, kind, &l(loc), &ctx)
                .unwrap();
            assert!(
                r.text.contains(update) && !r.text.contains(reopened),
                "{}",
                r.text
            );
        }
    }
}

/// A draft's preview takes its time from the caller's clock (the server's injected `Clock`),
/// not the wall clock: the promised next update is the given delay after the given `now`.
#[test]
fn text_preview_follows_the_given_clock() {
    use chrono::TimeZone;
    let t = Templates::load(&shipped(), &[]).unwrap();
    let now = chrono::Utc.with_ymd_and_hms(2031, 6, 2, 9, 0, 0).unwrap();
    let given = super::preview::Given {
        title: Some("Delays"),
        next_update: Some(chrono::Duration::minutes(47)),
    };
    let p = super::preview::preview_text_with(
        &t,
        &settings(),
        &TextPreview {
            platform: Platform::Slack,
            event: None,
            text: "Check-in is slow.",
            locale: Some(l("en")),
            tz: helsinki(),
            sms_segments: 3,
            channel: None,
            policy: None,
            channel_locale: None,
        },
        Some(&given),
        now,
    )
    .unwrap();
    let text = p.parts.join("\n");
    // 09:47 UTC is 12:47 in Helsinki in June.
    assert!(text.contains("2 Jun 2031 12:47"), "{text}");
}
