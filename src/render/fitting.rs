//! Fitting a rendered message to its channel with the template's frame kept.
//!
//! Why this exists: a template wraps the author's text in a frame — the organisation and
//! headline before it, the "Next update by …" promise and the link after it. Shortening the
//! whole rendered message (what `rules::fit` does with a plain text) cuts from the end, so it
//! drops exactly the promise and the link, the parts a reader needs most. Here, when the policy
//! is to shorten, the frame is found by rendering the template once more with a placeholder in
//! place of the text, and only the text is shortened (`rules::shorten_body`), with a visible
//! marker where text was removed.
//!
//! In order of preference: (1) shorten the text, keeping the whole frame; (2) when the frame is
//! too long for that (a long title on a one-segment SMS), shorten everything before the text's
//! end as one piece, still keeping what follows it (the promise and the link); (3) shorten the
//! whole message as a plain text. A template that shows the text more than once, or changes it
//! (a filter), has no single frame: it gets (3). Threading and rejecting work on the whole
//! message as before.

use super::rules::{fit, shorten_body, ChannelRule, FitError, OverflowPolicy};
use super::{Context, Event, TemplateKind, Templates};
use crate::domain::Locale;

/// Stands in for the text while the frame is rendered: private-use characters no text or
/// filter produces (case filters leave them alone).
const PLACEHOLDER: &str = "\u{E000}\u{E001}\u{E002}";

/// What a template rendered, with the frame found around the author's text.
struct Framed<'a> {
    before: &'a str,
    body: &'a str,
    after: &'a str,
}

/// Splits `text` (the template rendered with `ctx`) into the frame and the author's text, or
/// `None` when the template shows the text other than exactly once and unchanged.
fn frame<'a>(
    templates: &Templates,
    channel: Option<&str>,
    event: Event,
    kind: TemplateKind,
    locale: &Locale,
    ctx: &Context,
    text: &'a str,
) -> Option<Framed<'a>> {
    let mut probe = ctx.clone();
    let slot = if let Some(u) = probe.update.as_mut() {
        &mut u.text
    } else if let Some(n) = probe.notice.as_mut() {
        &mut n.text
    } else {
        return None;
    };
    let body = slot.clone();
    // A template may branch on how the text ends (the shipped ones add a full stop before the
    // promise unless the text ends a sentence itself), so the placeholder ends as the text does;
    // that final character then belongs to the frame's part after the text.
    let end = body.chars().last().filter(|c| ".!?…".contains(*c));
    *slot = match end {
        Some(c) => format!("{PLACEHOLDER}{c}"),
        None => PLACEHOLDER.to_owned(),
    };
    let body = match end {
        Some(c) => body.strip_suffix(c)?.to_owned(),
        None => body,
    };
    let rendered = templates
        .render(channel, event, kind, locale, &probe)
        .ok()?
        .text;
    let (head, tail) = rendered.split_once(PLACEHOLDER)?;
    if tail.contains(PLACEHOLDER) {
        return None;
    }
    // The frame must be the same with the real text (the template does not otherwise branch on
    // it).
    let (before, rest) = (text.get(..head.len())?, text.get(head.len()..)?);
    let (shown, after) = (
        rest.get(..rest.len().checked_sub(tail.len())?)?,
        rest.get(rest.len() - tail.len()..)?,
    );
    (before == head && after == tail && shown == body).then_some(Framed {
        before,
        body: shown,
        after,
    })
}

/// Makes the rendered `text` fit `rule` under `policy`: like [`rules::fit`](fit), except that
/// `Shorten` shortens the author's text and keeps the template's frame (see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn fit_rendered(
    templates: &Templates,
    channel: Option<&str>,
    event: Event,
    kind: TemplateKind,
    locale: &Locale,
    ctx: &Context,
    text: &str,
    rule: &ChannelRule,
    policy: &OverflowPolicy,
) -> Result<Vec<String>, FitError> {
    let link = match policy {
        OverflowPolicy::Shorten { link } if !rule.fits(text) => link.as_deref(),
        _ => return fit(rule, text, policy),
    };
    if let Some(f) = frame(templates, channel, event, kind, locale, ctx, text) {
        if let Ok(m) = shorten_body(rule, f.before, f.body, f.after, link) {
            return Ok(vec![m]);
        }
        let head = format!("{}{}", f.before, f.body);
        if let Ok(m) = shorten_body(rule, "", &head, f.after, link) {
            return Ok(vec![m]);
        }
    }
    fit(rule, text, policy)
}
