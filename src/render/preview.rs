//! Preview: exactly what one channel would send for an update — every part, with its length in
//! the channel's own unit, the limit, and for SMS the encoding and segment count — so staff can
//! see a message before the public does. Used by `POST /api/v1/preview` and by `crier preview`,
//! which also works offline.

use super::fitting::fit_rendered;
use super::rules::{bluesky_link_facets, sms_info, ChannelRule, FitError, OverflowPolicy};
use super::{Context, Event, RenderError, Settings, TemplateKind, Templates};
use crate::domain::{Incident, Locale, Update};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{json, Value};

/// A channel kind as the preview knows it: the platform decides the length rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Sms,
    X,
    Mastodon,
    Bluesky,
    Telegram,
    Discord,
    Slack,
    /// Microsoft Teams (Workflows webhook, Adaptive Card).
    Teams,
    /// A Matrix room.
    Matrix,
    /// A Facebook Page.
    Facebook,
    Email,
}

impl Platform {
    pub const ALL: [Platform; 11] = [
        Platform::Sms,
        Platform::X,
        Platform::Mastodon,
        Platform::Bluesky,
        Platform::Telegram,
        Platform::Discord,
        Platform::Slack,
        Platform::Teams,
        Platform::Matrix,
        Platform::Facebook,
        Platform::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Sms => "sms",
            Platform::X => "x",
            Platform::Mastodon => "mastodon",
            Platform::Bluesky => "bluesky",
            Platform::Telegram => "telegram",
            Platform::Discord => "discord",
            Platform::Slack => "slack",
            Platform::Teams => "teams",
            Platform::Matrix => "matrix",
            Platform::Facebook => "facebook",
            Platform::Email => "email",
        }
    }

    /// Parses a kind name; the error lists the valid ones.
    pub fn parse(s: &str) -> Result<Platform, String> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown kind \"{s}\"; use one of {}",
                    Platform::ALL.map(|p| p.as_str()).join(", ")
                )
            })
    }

    pub fn template_kind(self) -> TemplateKind {
        match self {
            Platform::Sms => TemplateKind::Sms,
            Platform::X | Platform::Mastodon | Platform::Bluesky | Platform::Facebook => {
                TemplateKind::Social
            }
            Platform::Telegram
            | Platform::Discord
            | Platform::Slack
            | Platform::Teams
            | Platform::Matrix => TemplateKind::Chat,
            Platform::Email => TemplateKind::Email,
        }
    }

    /// The platform's length rule; `sms_segments` caps SMS cost.
    ///
    /// Teams, Matrix and Facebook have no rule of their own and borrow a stricter one: Teams and
    /// Matrix the 4096 characters of Telegram (a Teams card is limited to about 28 KB, a Matrix
    /// event to 65536 bytes: 4096 characters of up to 4 bytes stay below both), Facebook the
    /// 40000 characters of Slack (a Page post allows 63206).
    pub fn rule(self, sms_segments: usize) -> ChannelRule {
        match self {
            Platform::Sms => ChannelRule::sms(sms_segments),
            Platform::X => ChannelRule::x(),
            Platform::Mastodon => ChannelRule::mastodon(),
            Platform::Bluesky => ChannelRule::bluesky(),
            Platform::Telegram => ChannelRule::telegram(),
            Platform::Discord => ChannelRule::discord(),
            Platform::Slack | Platform::Facebook => ChannelRule::slack(),
            Platform::Teams | Platform::Matrix => ChannelRule::telegram(),
            Platform::Email => ChannelRule::email(),
        }
    }

    /// What a channel of this kind does with a too-long message unless configured otherwise:
    /// SMS is shortened with a link to the full update, everything else is threaded.
    pub fn default_policy(self, link: Option<String>) -> OverflowPolicy {
        match self {
            Platform::Sms => OverflowPolicy::Shorten { link },
            _ => OverflowPolicy::Thread,
        }
    }
}

/// What one channel would send.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Preview {
    pub kind: String,
    pub event: String,
    pub locale: String,
    /// Email subject.
    pub subject: Option<String>,
    /// The messages that would be sent, in order (one unless split into a thread).
    pub parts: Vec<String>,
    /// Each part's length in the channel's unit.
    pub part_lengths: Vec<usize>,
    /// The whole rendered message's length before fitting, in the channel's unit.
    pub length: usize,
    /// The channel's limit (SMS: septets or UTF-16 units for the message's encoding and segment cap).
    pub limit: Option<usize>,
    /// The unit of `length` and `limit`.
    pub unit: String,
    /// SMS: the encoding of the messages sent (after fitting): "GSM-7" or "UCS-2", or
    /// "GSM-7/UCS-2" when the parts of a thread differ.
    pub encoding: Option<String>,
    /// SMS: the segments sent (billed), all parts together, after fitting.
    pub segments: Option<usize>,
    /// SMS: each part's encoding and segments, in order.
    #[serde(default)]
    pub part_sms: Option<Vec<PartSms>>,
    /// SMS: the encoding and segments of the whole rendered message before fitting.
    #[serde(default)]
    pub unfitted: Option<PartSms>,
    /// The too-long policy applied.
    pub policy: String,
    /// Bluesky: link facets per part, with UTF-8 byte offsets.
    #[schema(value_type = Option<Vec<Vec<Object>>>)]
    pub facets: Option<Vec<Vec<Value>>>,
    /// Email: the HTML alternative.
    pub html: Option<String>,
    /// Values in the preview that are samples, not the caller's (e.g. the title of an offline
    /// preview without `--title`), each with how to give one's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
}

/// The encoding and segment count of one SMS text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PartSms {
    /// "GSM-7" or "UCS-2".
    pub encoding: String,
    /// Segments the text is delivered (and billed) as.
    pub segments: usize,
}

impl PartSms {
    /// The encoding and segments of `text`, recomputed from the text itself.
    pub fn of(text: &str) -> PartSms {
        let info = sms_info(text);
        PartSms {
            encoding: info.encoding.as_str().to_owned(),
            segments: info.segments,
        }
    }
}

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{0}")]
    Fit(#[from] FitError),
}

/// What to preview.
pub struct PreviewRequest<'a> {
    pub platform: Platform,
    pub event: Event,
    pub incident: &'a Incident,
    pub update: &'a Update,
    /// Locale preference, best first (subscriber, channel); English is the last fallback.
    pub locales: &'a [Locale],
    pub tz: Tz,
    pub sms_segments: usize,
    /// A channel whose own templates override the shared ones.
    pub channel: Option<&'a str>,
    /// The channel's too-long policy (`thread`, `shorten`, `reject`); default per platform.
    pub policy: Option<&'a str>,
}

/// Renders and fits one message.
pub fn preview(
    templates: &Templates,
    settings: &Settings,
    req: &PreviewRequest<'_>,
) -> Result<Preview, PreviewError> {
    let kind = req.platform.template_kind();
    let locale = templates.choose_locale(req.channel, req.event, kind, req.locales, |l| {
        req.update.body.texts().contains_key(l)
    })?;
    let ctx = Context::for_update(settings, req.incident, req.update, &locale, req.tz);
    let link = ctx.incident.as_ref().and_then(|i| i.url.clone());
    let rendered = templates.render_as(
        req.channel,
        req.event,
        kind,
        req.platform.markup(),
        &locale,
        &ctx,
    )?;
    let rule = req.platform.rule(req.sms_segments.max(1));
    let policy = match req.policy {
        Some("thread") => OverflowPolicy::Thread,
        Some("reject") => OverflowPolicy::Reject,
        Some("shorten") => OverflowPolicy::Shorten { link },
        _ => req.platform.default_policy(link),
    };
    let parts = fit_rendered(
        templates,
        req.channel,
        req.event,
        kind,
        &locale,
        &ctx,
        &rendered.text,
        &rule,
        &policy,
    )?;
    let sms = req.platform == Platform::Sms;
    let part_sms: Option<Vec<PartSms>> =
        sms.then(|| parts.iter().map(|p| PartSms::of(p)).collect());
    let encoding = part_sms.as_ref().map(|ps| {
        let gsm = ps.iter().filter(|p| p.encoding == "GSM-7").count();
        match gsm {
            0 => "UCS-2".to_owned(),
            n if n == ps.len() => "GSM-7".to_owned(),
            _ => "GSM-7/UCS-2".to_owned(),
        }
    });
    let facets = (req.platform == Platform::Bluesky).then(|| {
        parts
            .iter()
            .map(|p| {
                bluesky_link_facets(p)
                    .into_iter()
                    .map(|f| {
                        json!({
                            "index": {"byteStart": f.byte_start, "byteEnd": f.byte_end},
                            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": f.uri}],
                        })
                    })
                    .collect()
            })
            .collect()
    });
    Ok(Preview {
        kind: req.platform.as_str().to_owned(),
        event: req.event.as_str().to_owned(),
        locale: locale.to_string(),
        subject: rendered.subject,
        part_lengths: parts.iter().map(|p| rule.measure(p)).collect(),
        length: rule.measure(&rendered.text),
        limit: rule.limit_for(&rendered.text),
        unit: rule.unit_for(&rendered.text).to_owned(),
        encoding,
        segments: part_sms
            .as_ref()
            .map(|ps| ps.iter().map(|p| p.segments).sum()),
        unfitted: sms.then(|| PartSms::of(&rendered.text)),
        part_sms,
        policy: policy.name().to_owned(),
        facets,
        html: rendered.html,
        parts,
        samples: Vec::new(),
    })
}

/// A draft text to preview.
pub struct TextPreview<'a> {
    pub platform: Platform,
    /// Default: incident updated.
    pub event: Option<Event>,
    pub text: &'a str,
    /// The text's language (default English).
    pub locale: Option<Locale>,
    pub tz: Tz,
    pub sms_segments: usize,
    /// A channel whose own templates override the shared ones, and its policy and locale.
    pub channel: Option<&'a str>,
    pub policy: Option<&'a str>,
    pub channel_locale: Option<Locale>,
}

/// What an offline preview's caller gave besides the text (`crier preview --title
/// --next-update`); everything else in the sample incident is labelled as a sample.
#[derive(Debug, Default, Clone, Copy)]
pub struct Given<'a> {
    /// The incident title (None: a sample title, listed in `samples`).
    pub title: Option<&'a str>,
    /// The promised next update, from now (None: no promise).
    pub next_update: Option<chrono::Duration>,
}

/// Previews a draft text as the body of an update of a sample incident — the `message` form
/// of the API: a sample title and a sample 30-minute promise, both listed in `samples`.
#[cfg(test)]
pub fn preview_text(
    templates: &Templates,
    settings: &Settings,
    t: &TextPreview<'_>,
) -> Result<Preview, PreviewError> {
    preview_text_with(templates, settings, t, None, chrono::Utc::now())
}

/// A draft text previewed with the caller's own title and promise (`crier preview --message`):
/// nothing is invented beyond what `samples` lists. `now` is the sample incident's time (the
/// server's clock; the CLI's own wall clock offline).
pub fn preview_text_with(
    templates: &Templates,
    settings: &Settings,
    t: &TextPreview<'_>,
    given: Option<&Given<'_>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Preview, PreviewError> {
    let event = t.event.unwrap_or(Event::IncidentUpdated);
    let (mut incident, mut update) =
        super::sample_incident(event, t.text, now).map_err(RenderError::from)?;
    let mut samples = Vec::new();
    match given.and_then(|g| g.title) {
        Some(title) => {
            incident.title = crate::domain::Title::parse(title).map_err(RenderError::from)?
        }
        None => samples.push(format!(
            "title \"{}\" (give yours with --title)",
            incident.title.as_str()
        )),
    }
    if let Some(g) = given {
        let due = g
            .next_update
            .filter(|_| !incident.status.is_final())
            .map(|d| now + d);
        incident.next_update_due = due;
        update.next_update_due = due;
    } else if incident.next_update_due.is_some() {
        samples.push("next update promised in 30 minutes (give yours with --next-update)".into());
    }
    // A draft text is in the given locale, else in the channel's.
    if let Some(l) = t.locale.as_ref().or(t.channel_locale.as_ref()) {
        update.body = crate::domain::Body::single(l.clone(), t.text).map_err(RenderError::from)?;
    }
    let locales: Vec<Locale> = t
        .locale
        .iter()
        .chain(t.channel_locale.iter())
        .cloned()
        .collect();
    let (platform, tz, sms_segments) = (t.platform, t.tz, t.sms_segments);
    let mut p = preview(
        templates,
        settings,
        &PreviewRequest {
            platform,
            event,
            incident: &incident,
            update: &update,
            locales: &locales,
            tz,
            sms_segments,
            channel: t.channel,
            policy: t.policy,
        },
    )?;
    p.samples = samples;
    Ok(p)
}

/// Parses an event name for a preview; notices and reminders have their own previews.
pub fn parse_event(s: &str) -> Result<Event, String> {
    match Event::parse(s) {
        Some(Event::Notice | Event::Reminder) => Err(format!(
            "event \"{s}\" is previewed with its schedule, not here; use an incident or maintenance event"
        )),
        Some(e) => Ok(e),
        None => Err(format!(
            "unknown event \"{s}\"; use one of {}",
            Event::ALL[..6].iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The human form of a preview: a header with the counters, then each part with its own.
pub fn describe(p: &Preview) -> String {
    let mut out = format!("{} · {} · locale {}", p.kind, p.event, p.locale);
    if let (Some(enc), Some(seg)) = (&p.encoding, p.segments) {
        out.push_str(&format!(" · sends {enc}, {seg} segment(s)"));
        if let Some(u) = p
            .unfitted
            .as_ref()
            .filter(|u| p.parts.len() > 1 || u.segments != seg)
        {
            out.push_str(&format!(
                " (the full text: {}, {} segment(s))",
                u.encoding, u.segments
            ));
        }
    }
    out.push_str(&format!("\nfull text {} {}", p.length, p.unit));
    match p.limit {
        Some(l) => out.push_str(&format!(" of {l}")),
        None => out.push_str(" (no limit)"),
    }
    out.push_str(&format!(
        " · policy {} · {} part(s)\n",
        p.policy,
        p.parts.len()
    ));
    for s in &p.samples {
        out.push_str(&format!("sample value, not yours: {s}\n"));
    }
    if let Some(s) = &p.subject {
        out.push_str(&format!("subject: {s}\n"));
    }
    let n = p.parts.len();
    for (i, (part, len)) in p.parts.iter().zip(&p.part_lengths).enumerate() {
        let sms = p
            .part_sms
            .as_ref()
            .and_then(|ps| ps.get(i))
            .map(|s| format!(" · {}, {} segment(s)", s.encoding, s.segments))
            .unwrap_or_default();
        out.push_str(&format!(
            "--- part {}/{n}: {len} {}{sms}\n{part}\n",
            i + 1,
            // A part's unit follows its own encoding (septets or UTF-16 units).
            match p.part_sms.as_ref().and_then(|ps| ps.get(i)) {
                Some(s) if s.encoding == "GSM-7" => "septets",
                Some(_) => "UTF-16 units",
                None => p.unit.as_str(),
            }
        ));
    }
    out
}
