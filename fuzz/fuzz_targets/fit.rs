//! Fuzzes length fitting and SMS segmentation against what src/render/rules/fit.rs and sms.rs
//! document: every part fits the channel; `Thread` parts, markers removed, are the text's
//! words in order with only whitespace between them dropped; `Shorten` gives one part that is a
//! prefix of the text plus the ending; `Reject` refuses exactly what does not fit; SMS segments
//! concatenate back to the text.
#![no_main]

use crier::render::rules::{
    fit, sms_info, sms_segments_text, ChannelRule, FitError, Limit, OverflowPolicy,
};
use libfuzzer_sys::fuzz_target;
use unicode_segmentation::UnicodeSegmentation;

/// The input: byte 0 picks the channel, bytes 1..3 a size (u16 LE; small limits make splitting
/// work hard on short inputs), byte 3 the policy, the rest is the text, then optionally a NUL
/// and the link for `shorten` (so corpus files are readable).
struct Input {
    rule: u8,
    size: u16,
    policy: u8,
    link: Option<String>,
    text: String,
}

fn input(data: &[u8]) -> Option<Input> {
    let (head, rest) = data.split_at_checked(4)?;
    let rest = std::str::from_utf8(rest).ok()?;
    let (text, link) = match rest.split_once('\0') {
        Some((t, l)) => (t, Some(l.to_owned())),
        None => (rest, None),
    };
    Some(Input {
        rule: head[0],
        size: u16::from_le_bytes([head[1], head[2]]),
        policy: head[3],
        link,
        text: text.to_owned(),
    })
}

fn rule(input: &Input) -> ChannelRule {
    let size = usize::from(input.size);
    ChannelRule::new(match input.rule % 7 {
        0 => Limit::Sms {
            max_segments: size % 4,
        },
        1 => Limit::X,
        2 => Limit::Mastodon {
            max_chars: 8 + size % 600,
            url_weight: size % 40,
        },
        3 => Limit::Bluesky,
        4 => Limit::Telegram,
        5 => Limit::Discord,
        _ => Limit::Email,
    })
}

fn all_ws(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// `text` without its leading and trailing whitespace graphemes (a grapheme is whitespace when
/// all its characters are; `" \u{200d}"` is not, though `str::trim` would cut its space).
fn trim_graphemes(text: &str) -> &str {
    let g: Vec<(usize, &str)> = text.grapheme_indices(true).collect();
    let Some(first) = g.iter().position(|(_, x)| !all_ws(x)) else {
        return "";
    };
    let last = g.iter().rposition(|(_, x)| !all_ws(x)).unwrap_or(first);
    &text[g[first].0..g[last].0 + g[last].1.len()]
}

/// `text` == ws + body1 + gap1 + body2 + … + bodyN + ws, gaps all whitespace (possibly empty).
fn check_rejoin(text: &str, bodies: &[&str]) {
    let mut rest = text;
    for (k, b) in bodies.iter().enumerate() {
        assert!(!b.is_empty(), "part {k} is empty");
        let g: Vec<&str> = b.graphemes(true).collect();
        assert!(
            !all_ws(g[0]) && !all_ws(g[g.len() - 1]),
            "part {k} {b:?} has edge whitespace"
        );
        let at = rest
            .find(b)
            .unwrap_or_else(|| panic!("part {k} {b:?} is not next in the text {text:?}"));
        assert!(
            all_ws(&rest[..at]),
            "non-whitespace {:?} dropped before part {k}",
            &rest[..at]
        );
        rest = &rest[at + b.len()..];
    }
    assert!(
        all_ws(rest),
        "text {rest:?} after the last part was dropped"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else {
        return;
    };
    let rule = rule(&input);
    let text = input.text.as_str();
    let policy = match input.policy % 3 {
        0 => OverflowPolicy::Thread,
        1 => OverflowPolicy::Shorten {
            link: input.link.clone(),
        },
        _ => OverflowPolicy::Reject,
    };

    // SMS segments are the text, cut without loss, as many as sms_info counts.
    let segments = sms_segments_text(text);
    assert_eq!(segments.concat(), text);
    assert_eq!(segments.len(), sms_info(text).segments);

    let fits = rule.fits(text);
    let result = fit(&rule, text, &policy);
    if fits {
        assert_eq!(
            result,
            Ok(vec![text.to_owned()]),
            "a text that fits is unchanged"
        );
        return;
    }
    let parts = match (&policy, result) {
        (OverflowPolicy::Reject, r) => {
            assert!(matches!(r, Err(FitError::TooLong { .. })), "{r:?}");
            return;
        }
        (_, Err(e)) => {
            assert!(!e.to_string().is_empty());
            assert!(
                !matches!(e, FitError::TooLong { .. }),
                "TooLong is for reject only"
            );
            return;
        }
        (_, Ok(parts)) => parts,
    };
    for p in &parts {
        assert!(rule.fits(p), "part {p:?} does not fit {}", rule.name());
    }
    match &policy {
        OverflowPolicy::Thread => {
            let n = parts.len();
            assert!(n >= 1);
            let bodies: Vec<&str> = if n == 1 {
                vec![parts[0].as_str()]
            } else {
                parts
                    .iter()
                    .enumerate()
                    .map(|(k, p)| {
                        let mk = format!(" ({}/{n})", k + 1);
                        p.strip_suffix(&mk)
                            .unwrap_or_else(|| panic!("part {p:?} lacks marker {mk:?}"))
                    })
                    .collect()
            };
            check_rejoin(text, &bodies);
        }
        OverflowPolicy::Shorten { link } => {
            assert_eq!(parts.len(), 1, "shorten gives one message");
            let p = parts[0].as_str();
            let trimmed = trim_graphemes(text);
            if p != trimmed {
                let link = link.as_deref().map(str::trim).filter(|l| !l.is_empty());
                let body = ["...", "…"]
                    .iter()
                    .find_map(|e| {
                        let ending = match link {
                            Some(l) => format!("{e} {l}"),
                            None => (*e).to_owned(),
                        };
                        p.strip_suffix(&ending)
                    })
                    .unwrap_or_else(|| panic!("{p:?} lacks the ending"));
                assert!(!body.is_empty());
                assert!(
                    trimmed.starts_with(body),
                    "{body:?} is not a prefix of the text"
                );
            }
        }
        OverflowPolicy::Reject => unreachable!(),
    }
});
