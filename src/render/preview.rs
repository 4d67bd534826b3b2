//! Preview: exactly what one channel would send for an update — every part, with its length in
//! the channel's own unit, the limit, and for SMS the encoding and segment count — so staff can
//! see a message before the public does. Used by `POST /api/v1/preview` and by `crier preview`,
//! which also works offline.

use super::rules::{bluesky_link_facets, fit, sms_info, ChannelRule, FitError, OverflowPolicy};
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
    /// SMS: "GSM-7" or "UCS-2".
    pub encoding: Option<String>,
    /// SMS: segments of the whole rendered message.
    pub segments: Option<usize>,
    /// The too-long policy applied.
    pub policy: String,
    /// Bluesky: link facets per part, with UTF-8 byte offsets.
    #[schema(value_type = Option<Vec<Vec<Object>>>)]
    pub facets: Option<Vec<Vec<Value>>>,
    /// Email: the HTML alternative.
    pub html: Option<String>,
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
    let rendered = templates.render(req.channel, req.event, kind, &locale, &ctx)?;
    let rule = req.platform.rule(req.sms_segments.max(1));
    let policy = match req.policy {
        Some("thread") => OverflowPolicy::Thread,
        Some("reject") => OverflowPolicy::Reject,
        Some("shorten") => OverflowPolicy::Shorten { link },
        _ => req.platform.default_policy(link),
    };
    let parts = fit(&rule, &rendered.text, &policy)?;
    let sms = (req.platform == Platform::Sms).then(|| sms_info(&rendered.text));
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
        encoding: sms.map(|s| s.encoding.as_str().to_owned()),
        segments: sms.map(|s| s.segments),
        policy: policy.name().to_owned(),
        facets,
        html: rendered.html,
        parts,
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

/// Previews a draft text as the body of an update of a sample incident — the offline path of
/// `crier preview` and the `message` form of the API.
pub fn preview_text(
    templates: &Templates,
    settings: &Settings,
    t: &TextPreview<'_>,
) -> Result<Preview, PreviewError> {
    let event = t.event.unwrap_or(Event::IncidentUpdated);
    let (incident, mut update) =
        super::sample_incident(event, t.text, chrono::Utc::now()).map_err(RenderError::from)?;
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
    preview(
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
    )
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
        out.push_str(&format!(" · {enc}, {seg} segment(s)"));
    }
    out.push_str(&format!("\nlength {} {}", p.length, p.unit));
    match p.limit {
        Some(l) => out.push_str(&format!(" of {l}")),
        None => out.push_str(" (no limit)"),
    }
    out.push_str(&format!(
        " · policy {} · {} part(s)\n",
        p.policy,
        p.parts.len()
    ));
    if let Some(s) = &p.subject {
        out.push_str(&format!("subject: {s}\n"));
    }
    let n = p.parts.len();
    for (i, (part, len)) in p.parts.iter().zip(&p.part_lengths).enumerate() {
        out.push_str(&format!(
            "--- part {}/{n}: {len} {}\n{part}\n",
            i + 1,
            p.unit
        ));
    }
    out
}
