//! SMS shortening with the shipped templates: a table over encodings, lengths, segment caps, with
//! and without a public link and a next-update promise. Whatever the case, the message sent fits,
//! keeps the promise line and the link (when they fit at all), marks where text was removed, and
//! the preview reports the encoding and segments of what is sent.

use super::preview::{preview, PartSms, Platform, PreviewRequest};
use super::rules::{sms_info, ChannelRule, SmsEncoding};
use super::*;
use crate::domain::Body;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")
}

fn helsinki() -> Tz {
    "Europe/Helsinki".parse().unwrap_or(Tz::UTC)
}

/// Units `c` costs in `enc` (septets or UTF-16 units), from the rules themselves.
fn cost(c: char, enc: SmsEncoding) -> usize {
    match enc {
        SmsEncoding::Gsm7 => sms_info(&c.to_string()).units,
        SmsEncoding::Ucs2 => c.len_utf16(),
    }
}

fn units(s: &str, enc: SmsEncoding) -> usize {
    s.chars().map(|c| cost(c, enc)).sum()
}

/// A body of exactly `n` units in `enc`, made by repeating `pattern` (no edge whitespace, which
/// the domain would trim). A character that would overshoot is replaced by `a`.
fn body_of(pattern: &str, n: usize, enc: SmsEncoding) -> String {
    let mut s = String::new();
    let mut used = 0;
    for c in pattern.chars().cycle() {
        if used == n {
            break;
        }
        let c = if used == 0 || used + 1 == n {
            // Not a sentence end either: the templates add a full stop before the promise
            // unless the text has one, and the frame is measured with a text without.
            if c.is_whitespace() || ".!?…".contains(c) || used + cost(c, enc) > n {
                'a'
            } else {
                c
            }
        } else if used + cost(c, enc) > n {
            'a'
        } else {
            c
        };
        used += cost(c, enc);
        s.push(c);
    }
    s
}

struct Case {
    name: &'static str,
    locale: &'static str,
    pattern: &'static str,
    encoding: SmsEncoding,
}

const CASES: [Case; 5] = [
    Case {
        name: "GSM-7",
        locale: "en",
        pattern: "Flights are delayed at gate 12 because of snow. ",
        encoding: SmsEncoding::Gsm7,
    },
    Case {
        name: "GSM-7 extension chars",
        locale: "en",
        pattern: "Refunds [up to 100€] via {app} ~ desk. ",
        encoding: SmsEncoding::Gsm7,
    },
    Case {
        name: "Finnish GSM-7",
        locale: "fi",
        pattern: "Lennot myöhässä lumimyrskyn vuoksi, älä lähde kentälle. ",
        encoding: SmsEncoding::Gsm7,
    },
    Case {
        name: "Finnish with emoji (UCS-2)",
        locale: "fi",
        pattern: "🌨 Lennot myöhässä lumimyrskyn vuoksi, älä lähde kentälle. ",
        encoding: SmsEncoding::Ucs2,
    },
    Case {
        name: "Greek (UCS-2)",
        locale: "en",
        pattern: "Καθυστερήσεις πτήσεων στην πύλη 12 λόγω χιονιού. ",
        encoding: SmsEncoding::Ucs2,
    },
];

#[test]
fn shortened_sms_keeps_promise_and_link_table() {
    let t = Templates::load(&shipped(), &[]).unwrap_or_else(|e| panic!("{e}"));
    let now = Utc::now();
    let tz = helsinki();
    let mut shortened = 0;
    let mut rows = 0;
    for case in &CASES {
        for public_url in [None, Some("https://status.example.com")] {
            for promise in [false, true] {
                for max_segments in [1usize, 2, 3] {
                    let cap = case.encoding.capacity(max_segments);
                    for (label, target) in [
                        ("under", cap - 1),
                        ("at", cap),
                        ("over", cap + 1),
                        ("well over", cap + 40),
                        ("far over", cap * 6),
                    ] {
                        rows += 1;
                        let row = format!(
                            "{} · link {} · promise {promise} · {max_segments} segment(s) · {label}",
                            case.name,
                            public_url.is_some()
                        );
                        let settings = Settings {
                            org_name: "Finnair".into(),
                            public_url: public_url.map(str::to_owned),
                            timezone: tz,
                            page: Default::default(),
                        };
                        let locale = Locale::parse(case.locale).unwrap_or_else(|e| panic!("{e}"));
                        let (incident, mut update) =
                            sample_incident(Event::IncidentUpdated, "x", now)
                                .unwrap_or_else(|e| panic!("{e}"));
                        update.next_update_due = promise.then(|| now + Duration::minutes(30));
                        // The frame alone, in the body's encoding, to size the body exactly.
                        update.body =
                            Body::single(locale.clone(), "x").unwrap_or_else(|e| panic!("{e}"));
                        let ctx = Context::for_update(&settings, &incident, &update, &locale, tz);
                        let framed = t
                            .render(
                                None,
                                Event::IncidentUpdated,
                                TemplateKind::Sms,
                                &locale,
                                &ctx,
                            )
                            .unwrap_or_else(|e| panic!("{e}"))
                            .text;
                        let frame = units(&framed, case.encoding) - 1;
                        let Some(n) = target.checked_sub(frame).filter(|&n| n > 0) else {
                            continue;
                        };
                        let body = body_of(case.pattern, n, case.encoding);
                        update.body =
                            Body::single(locale.clone(), &body).unwrap_or_else(|e| panic!("{e}"));
                        let ctx = Context::for_update(&settings, &incident, &update, &locale, tz);
                        let full = t
                            .render(
                                None,
                                Event::IncidentUpdated,
                                TemplateKind::Sms,
                                &locale,
                                &ctx,
                            )
                            .unwrap_or_else(|e| panic!("{e}"))
                            .text;
                        let info = sms_info(&full);
                        assert_eq!(info.encoding, case.encoding, "{row}: {full}");
                        assert_eq!(
                            info.units, target,
                            "{row}: the table built the wrong length"
                        );

                        let p = preview(
                            &t,
                            &settings,
                            &PreviewRequest {
                                platform: Platform::Sms,
                                event: Event::IncidentUpdated,
                                incident: &incident,
                                update: &update,
                                locales: std::slice::from_ref(&locale),
                                tz,
                                sms_segments: max_segments,
                                channel: None,
                                policy: None,
                            },
                        )
                        .unwrap_or_else(|e| panic!("{row}: {e}"));
                        assert_eq!(p.parts.len(), 1, "{row}: shortening sends one message");
                        let sent = &p.parts[0];
                        let got = sms_info(sent);
                        // Fits the cap, and what is reported is what is sent.
                        assert!(got.segments <= max_segments, "{row}: {got:?} {sent}");
                        assert_eq!(p.segments, Some(got.segments), "{row}");
                        assert_eq!(p.encoding.as_deref(), Some(got.encoding.as_str()), "{row}");
                        assert_eq!(p.part_sms, Some(vec![PartSms::of(sent)]), "{row}");
                        assert_eq!(p.part_lengths, vec![got.units], "{row}");
                        assert_eq!(p.unfitted, Some(PartSms::of(&full)), "{row}");

                        if ChannelRule::sms(max_segments).fits(&full) {
                            assert_eq!(sent, &full, "{row}: a message that fits is not touched");
                            continue;
                        }
                        shortened += 1;
                        assert!(
                            sent.contains('…') || sent.contains("..."),
                            "{row}: no marker where text was removed: {sent}"
                        );
                        // What follows the text in the template: the promise line and the link.
                        let after = full
                            .split_once(body.as_str())
                            .map(|(_, a)| a)
                            .unwrap_or_else(|| panic!("{row}: body not in {full}"));
                        if let Some(due) = &ctx.next_update {
                            assert!(after.contains(due.as_str()), "{row}: {after}");
                        }
                        if let Some(url) = ctx.incident.as_ref().and_then(|i| i.url.as_deref()) {
                            assert!(after.ends_with(url), "{row}: {after}");
                            assert!(sent.contains(url), "{row}: the link is lost: {sent}");
                        }
                        // The frame after the text survives whenever it can fit at all.
                        let rule = ChannelRule::sms(max_segments);
                        let fits_either = |head: &str| {
                            rule.fits(&format!("{head}...{after}"))
                                || rule.fits(&format!("{head}…{after}"))
                        };
                        let room = fits_either("F");
                        if room {
                            assert!(sent.ends_with(after), "{row}: promise or link lost: {sent}");
                        } else {
                            // Only a UCS-2 text on one segment with a link and a promise (70
                            // units) is too small for them; the link is still kept.
                            assert!(
                                max_segments == 1 && case.encoding == SmsEncoding::Ucs2,
                                "{row}: {after}"
                            );
                        }
                        // The headline survives when the whole frame fits with some text.
                        let before = full.split_once(body.as_str()).map(|(b, _)| b).unwrap_or("");
                        let first = body.chars().next().map(String::from).unwrap_or_default();
                        if fits_either(&format!("{before}{first}")) {
                            let kept = format!("{before}{first}");
                            assert!(
                                sent.starts_with(&kept),
                                "{row}: headline or text lost: {sent}"
                            );
                        }
                    }
                }
            }
        }
    }
    assert_eq!(rows, 5 * 2 * 2 * 3 * 5);
    assert!(shortened > 100, "only {shortened} rows were shortened");
}

#[test]
fn preview_header_reports_what_is_sent() {
    let t = Templates::load(&shipped(), &[]).unwrap_or_else(|e| panic!("{e}"));
    let settings = Settings {
        org_name: "Finnair".into(),
        public_url: None,
        timezone: helsinki(),
        page: Default::default(),
    };
    let text = "Flights are delayed at gate 12 because of snow. ".repeat(12);
    let p = super::preview::preview_text(
        &t,
        &settings,
        &super::preview::TextPreview {
            platform: Platform::Sms,
            event: None,
            text: text.trim(),
            locale: None,
            tz: helsinki(),
            sms_segments: 1,
            channel: None,
            policy: None,
            channel_locale: None,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let shown = super::preview::describe(&p);
    let header = shown.lines().next().unwrap_or_default();
    let full = p
        .unfitted
        .clone()
        .unwrap_or_else(|| panic!("no unfitted counts"));
    assert!(full.segments > 1, "{full:?}");
    assert!(
        header.ends_with(&format!(
            "sends GSM-7, 1 segment(s) (the full text: GSM-7, {} segment(s))",
            full.segments
        )),
        "{header}"
    );
    assert!(
        shown.contains("--- part 1/1: ") && shown.contains(" septets · GSM-7, 1 segment(s)\n"),
        "{shown}"
    );
    assert!(p.parts[0].contains("Next update by"), "{}", p.parts[0]);
}

#[test]
fn a_shortened_notice_keeps_its_link_and_a_frameless_template_still_fits() {
    let t = Templates::load(&shipped(), &[]).unwrap_or_else(|e| panic!("{e}"));
    let settings = Settings::default();
    let en = Locale::english();
    let url = "https://status.example.com/n/1";
    let text = "Maintenance tonight: services may be briefly unavailable. ".repeat(10);
    let ctx = Context::for_notice(
        &settings,
        "Maintenance",
        text.trim(),
        Some(url.into()),
        &en,
        Tz::UTC,
    );
    let full = t
        .render(None, Event::Notice, TemplateKind::Sms, &en, &ctx)
        .unwrap_or_else(|e| panic!("{e}"))
        .text;
    let rule = ChannelRule::sms(1);
    let policy = super::rules::OverflowPolicy::Shorten { link: None };
    let parts = fit_rendered(
        &t,
        None,
        Event::Notice,
        TemplateKind::Sms,
        &en,
        &ctx,
        &full,
        &rule,
        &policy,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parts.len(), 1);
    assert!(rule.fits(&parts[0]), "{}", parts[0]);
    assert!(
        parts[0].starts_with("Status: Maintenance tonight"),
        "{}",
        parts[0]
    );
    assert!(parts[0].ends_with(&format!("... {url}")), "{}", parts[0]);

    // A template that shows the text twice has no single frame: the whole message is shortened,
    // still with a marker and the link.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("notice");
    std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        path.join("sms.en.txt.j2"),
        "{{ notice.text }} / {{ notice.text }}{% if notice.url %} {{ notice.url }}{% endif %}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let t = Templates::load(&shipped(), &[("twice".into(), dir.path().to_path_buf())])
        .unwrap_or_else(|e| panic!("{e}"));
    let full = t
        .render(Some("twice"), Event::Notice, TemplateKind::Sms, &en, &ctx)
        .unwrap_or_else(|e| panic!("{e}"))
        .text;
    let policy = super::rules::OverflowPolicy::Shorten {
        link: Some(url.into()),
    };
    let parts = fit_rendered(
        &t,
        Some("twice"),
        Event::Notice,
        TemplateKind::Sms,
        &en,
        &ctx,
        &full,
        &rule,
        &policy,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(rule.fits(&parts[0]), "{}", parts[0]);
    assert!(parts[0].ends_with(&format!("... {url}")), "{}", parts[0]);
}
