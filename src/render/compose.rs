//! Composition: one delivery's message, from what it is about, the channel and the reader.
//!
//! [`Composer::compose`] is the one entry point. It chooses the locale (the reader's, then the
//! channel's, among those with templates and, for an update, a text), builds the template
//! context, renders in the channel's markup, adds the reader's unsubscribe link, fits the text
//! to the channel's length rule (shortened with the template's frame kept, threaded, or
//! rejected), and builds a webhook channel's JSON document. The dispatcher loads the data
//! (the update, the standalone record) and sends what comes back; it knows nothing of templates.
//!
//! Each channel has one `Composer`, with a cache of the messages that are the same for every
//! reader of a broadcast in one locale: a fan-out renders and fits once per (message, locale),
//! not once per reader. An email that shows the reader's unsubscribe link is rendered once with
//! a stand-in token, and each reader's copy has only the token swapped (when swapping is proven
//! the same as rendering, see `placeholder_for`).
//!
//! Failures are typed: [`ComposeError::Permanent`] (the text does not fit the channel under its
//! policy; sending it again would not help) and [`ComposeError::Transient`] (a template error,
//! a record not written yet, no randomness; worth retrying).

use super::preview::Platform;
use super::rules::{ChannelRule, FitError, OverflowPolicy};
use super::{fit_rendered, webhook, Context, Event, RenderError, Rendered, Settings, Templates};
use crate::domain::{Body, Incident, Locale, Target, Update};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use ulid::Ulid;

/// Why a delivery's message could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The message cannot be sent on this channel as written (too long under the `reject`
    /// policy, or a part that cannot be split): the delivery is rejected, not retried.
    #[error(transparent)]
    Permanent(#[from] FitError),
    /// Composing failed for now: the delivery is retried on the channel's schedule.
    #[error(transparent)]
    Transient(#[from] Transient),
}

/// A failure that a later attempt may not meet.
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    /// A template failed to render, or no locale has templates.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Something the message is made from is not there (yet).
    #[error("{0}")]
    Missing(&'static str),
    /// The data the message is made from could not be read.
    #[error("{0}")]
    Unavailable(String),
    /// No stand-in token could be drawn (no randomness).
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
}

impl From<RenderError> for ComposeError {
    fn from(e: RenderError) -> Self {
        ComposeError::Transient(e.into())
    }
}

impl From<crate::token::TokenError> for ComposeError {
    fn from(e: crate::token::TokenError) -> Self {
        ComposeError::Transient(e.into())
    }
}

impl ComposeError {
    /// Something the message is made from is missing.
    pub fn missing(what: &'static str) -> Self {
        ComposeError::Transient(Transient::Missing(what))
    }

    /// The data the message is made from could not be read (`e` says why).
    pub fn unavailable(e: impl std::fmt::Display) -> Self {
        ComposeError::Transient(Transient::Unavailable(e.to_string()))
    }
}

/// What a channel's messages look like: the parts of its configuration composition reads.
#[derive(Debug, Clone)]
pub struct Outlet {
    /// The channel's name when it has its own templates folder (its templates come first).
    pub own_templates: Option<String>,
    /// The platform whose templates, markup and length rule apply.
    pub platform: Platform,
    /// A webhook channel: each message also carries the JSON document.
    pub webhook: bool,
    /// The channel's locale, after the reader's.
    pub locale: Locale,
    /// The zone times are shown in.
    pub timezone: Tz,
    /// The too-long policy; a `Shorten` link is filled in per message (the incident's page).
    pub policy: OverflowPolicy,
}

/// Who wrote a staff detail message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffDetail {
    /// Per-alert detail of a monitoring alert group; its origin is the incident.
    Alert,
    /// A note about a write waiting for approval; its origin is the approval.
    Approval,
}

/// What a message is about, as loaded by the caller.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A published update of an incident.
    Update {
        incident: &'a Incident,
        update: &'a Update,
    },
    /// One firing of a recurring notice (`origin` is the notice).
    Notice {
        origin: Ulid,
        scheduled_for: DateTime<Utc>,
        subject: &'a str,
        body: &'a Body,
    },
    /// Staff detail from monitoring, or a note about an approval.
    Staff {
        detail: StaffDetail,
        origin: Ulid,
        at: DateTime<Utc>,
        subject: &'a str,
        body: &'a Body,
    },
    /// A next-update reminder to staff (`maintenance` false: it shows the incident's latest
    /// published update), or a maintenance reminder to its audience (its first update).
    Reminder {
        incident: &'a Incident,
        updates: &'a [Update],
        due: DateTime<Utc>,
        maintenance: bool,
        now: DateTime<Utc>,
    },
}

/// One delivery's request: which message, about what, for whom.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The message's identity, (incident or notice, seq): with the locale, the cache key.
    pub message: (Ulid, u32),
    pub source: Source<'a>,
    /// The reader (locale and unsubscribe token), or the channel's own endpoint.
    pub target: &'a Target,
}

/// A composed message: one text per part (several when threaded), and the parts every part
/// carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub parts: Vec<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    /// A webhook channel's JSON document.
    pub document: Option<serde_json::Value>,
}

/// What [`Composer::compose`] gives: the message, the locale it is in and the reader's
/// unsubscribe link.
#[derive(Debug, Clone)]
pub struct Composed {
    pub locale: Locale,
    pub message: Arc<Message>,
    pub unsubscribe_url: Option<String>,
}

/// The update a reminder shows: a staff reminder the incident's latest published update, a
/// maintenance reminder its first.
fn reminded(updates: &[Update], maintenance: bool) -> Result<&Update, ComposeError> {
    if maintenance {
        updates.first()
    } else {
        updates.iter().rev().find(|u| u.published_at.is_some())
    }
    .ok_or(ComposeError::missing(
        "the incident has no published update",
    ))
}

/// A cached message.
struct Entry {
    message: Arc<Message>,
    /// Differs per reader (the unsubscribe link in email).
    per_recipient: bool,
    /// For an email that shows the reader's unsubscribe link: the stand-in token rendered where
    /// the reader's token goes, and `message` rendered with it. Each reader's copy replaces it.
    placeholder: Option<String>,
}

/// A cache key: (incident or notice, seq, locale).
type Key = (Ulid, u32, Locale);

/// One channel's composition, with its cache of messages that are the same for every reader.
pub struct Composer {
    templates: Arc<Templates>,
    settings: Arc<Settings>,
    outlet: Outlet,
    cache: Mutex<HashMap<Key, Arc<Entry>>>,
}

impl Composer {
    pub fn new(templates: Arc<Templates>, settings: Arc<Settings>, outlet: Outlet) -> Composer {
        Composer {
            templates,
            settings,
            outlet,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Composes one delivery's message. `rule` gives the channel's length rule (the one its
    /// platform announced, or its kind's default); it is asked only when the message is not
    /// cached.
    pub fn compose(
        &self,
        req: &Request<'_>,
        rule: impl FnOnce() -> ChannelRule,
    ) -> Result<Composed, ComposeError> {
        let unsubscribe = unsubscribe_url(&self.settings, req.target);
        // The event, and the texts whose languages the message can be in (`None`: any; a staff
        // reminder is in the channel's language whatever the update was written in).
        let (event, texts) = match req.source {
            Source::Update { incident, update } => {
                (Event::of_update(incident.kind, update), Some(&update.body))
            }
            Source::Notice { body, .. } | Source::Staff { body, .. } => (Event::Notice, Some(body)),
            Source::Reminder {
                updates,
                maintenance,
                ..
            } => {
                let update = reminded(updates, maintenance)?;
                if maintenance {
                    (Event::MaintenanceScheduled, Some(&update.body))
                } else {
                    (Event::Reminder, None)
                }
            }
        };
        let locale = self.locale(req.target, event, |l| {
            texts.is_none_or(|b| b.texts().contains_key(l))
        })?;
        let message = self.rendered(req, &locale, event, &unsubscribe, rule, || {
            self.context(req.source, &locale)
        })?;
        Ok(Composed {
            locale,
            message,
            unsubscribe_url: unsubscribe,
        })
    }

    /// The template context of `source` in `locale`, and a webhook channel's document.
    fn context(
        &self,
        source: Source<'_>,
        locale: &Locale,
    ) -> Result<(Context, Option<serde_json::Value>), ComposeError> {
        let (settings, tz) = (&*self.settings, self.outlet.timezone);
        let public_url = settings.public_url.as_deref();
        let webhook = self.outlet.webhook;
        Ok(match source {
            Source::Update { incident, update } => (
                Context::for_update(settings, incident, update, locale, tz),
                webhook.then(|| webhook::webhook_document(incident, update, public_url)),
            ),
            Source::Notice {
                origin,
                scheduled_for,
                subject,
                body,
            } => {
                let text = body.text_for(locale);
                let url = settings.public_url.clone();
                (
                    Context::for_notice(settings, subject, text, url, locale, tz),
                    webhook.then(|| {
                        webhook::notice_document(origin, scheduled_for, subject, text, locale)
                    }),
                )
            }
            // Staff detail, or a note about an approval: rendered like a notice, without a link.
            Source::Staff {
                detail,
                origin,
                at,
                subject,
                body,
            } => {
                let text = body.text_for(locale);
                (
                    Context::for_notice(settings, subject, text, None, locale, tz),
                    webhook.then(|| {
                        webhook::staff_document(detail, origin, at, subject, text, locale)
                    }),
                )
            }
            Source::Reminder {
                incident,
                updates,
                due,
                maintenance,
                now,
            } => {
                let update = reminded(updates, maintenance)?;
                let ctx = if maintenance {
                    Context::for_update(settings, incident, update, locale, tz)
                } else {
                    Context::for_reminder(settings, incident, update, due, now, locale, tz)
                };
                let document = webhook.then(|| {
                    webhook::reminder_document(incident, update, public_url, maintenance, due)
                });
                (ctx, document)
            }
        })
    }

    /// The locale a delivery is rendered in: the reader's, then the channel's, among those with
    /// templates (and, for an update, a text).
    fn locale(
        &self,
        target: &Target,
        event: Event,
        has_text: impl Fn(&Locale) -> bool,
    ) -> Result<Locale, ComposeError> {
        let o = &self.outlet;
        let mut chain: Vec<Locale> = Vec::new();
        if let Target::Subscriber { locale, .. } = target {
            chain.push(locale.clone());
        }
        chain.push(o.locale.clone());
        Ok(self.templates.choose_locale(
            o.own_templates.as_deref(),
            event,
            o.platform.template_kind(),
            &chain,
            has_text,
        )?)
    }

    /// Renders and fits a delivery's message, or takes it from the cache when it is the same
    /// for every reader. `context` builds the template context (and webhook document).
    #[allow(clippy::too_many_arguments)]
    fn rendered(
        &self,
        req: &Request<'_>,
        locale: &Locale,
        event: Event,
        unsubscribe: &Option<String>,
        rule: impl FnOnce() -> ChannelRule,
        context: impl FnOnce() -> Result<(Context, Option<serde_json::Value>), ComposeError>,
    ) -> Result<Arc<Message>, ComposeError> {
        let o = &self.outlet;
        let rkey = (req.message.0, req.message.1, locale.clone());
        let token = match req.target {
            Target::Subscriber {
                unsubscribe_token, ..
            } if unsubscribe.is_some() => Some(unsubscribe_token.as_str()),
            _ => None,
        };
        let cached_before = self.cache.lock().ok().and_then(|m| m.get(&rkey).cloned());
        if let Some(e) = &cached_before {
            if !e.per_recipient {
                return Ok(e.message.clone());
            }
            if let (Some(p), Some(t)) = (&e.placeholder, token) {
                if substitutable(t, p.len()) {
                    return Ok(Arc::new(with_token(&e.message, p, t)));
                }
            }
        }
        let own = o.own_templates.as_deref();
        let kind = o.platform.template_kind();
        let (mut ctx, document) = context()?;
        let link = ctx.incident.as_ref().and_then(|i| i.url.clone());
        let render = |ctx: &Context| {
            self.templates
                .render_as(own, event, kind, o.platform.markup(), locale, ctx)
        };
        // Rendered once without the reader's unsubscribe link: if the output is the same with
        // it, the message is the same for everyone and is rendered and fitted only once per
        // message and locale (SMS and social templates do not show the link).
        let shared = render(&ctx)?;
        ctx.unsubscribe_url = unsubscribe.clone();
        let out = if ctx.unsubscribe_url.is_some() {
            render(&ctx)?
        } else {
            shared.clone()
        };
        let per_recipient = out != shared;
        // An email that shows the link: rendered with two stand-in tokens, and if swapping one
        // for the other, and for this reader's token, gives exactly those renderings (the
        // templates only print the link), later readers get a copy with their own token swapped
        // in. Tried once per message and locale: an entry in the cache means it was tried
        // already (this reader's token did not fit, or the templates do more with the link than
        // print it), and the entry is kept for the readers it serves.
        let placeholder = match (
            per_recipient && o.platform == Platform::Email && cached_before.is_none(),
            token,
        ) {
            (true, Some(t)) if substitutable(t, t.len()) => {
                placeholder_for(&render, &mut ctx, &self.settings, t, &out)?
            }
            _ => None,
        };
        let parts = if o.platform == Platform::Email {
            vec![out.text.clone()]
        } else {
            let policy = match &o.policy {
                OverflowPolicy::Shorten { .. } => OverflowPolicy::Shorten { link },
                p => p.clone(),
            };
            fit_rendered(
                &self.templates,
                own,
                event,
                kind,
                locale,
                &ctx,
                &out.text,
                &rule(),
                &policy,
            )?
        };
        let m = Arc::new(Message {
            parts,
            subject: out.subject,
            html: out.html,
            document,
        });
        let entry = match placeholder {
            Some((p, r)) => Entry {
                message: Arc::new(Message {
                    parts: vec![r.text],
                    subject: r.subject,
                    html: r.html,
                    document: m.document.clone(),
                }),
                per_recipient: true,
                placeholder: Some(p),
            },
            None => Entry {
                message: m.clone(),
                per_recipient,
                placeholder: None,
            },
        };
        if cached_before.is_none() {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() > 256 {
                    cache.clear();
                }
                cache.insert(rkey, Arc::new(entry));
            }
        }
        Ok(m)
    }

    /// For each cached message: whether readers get a copy with their token swapped in.
    #[cfg(test)]
    pub(crate) fn cached_swaps(&self) -> Vec<bool> {
        self.cache
            .lock()
            .map(|c| c.values().map(|e| e.placeholder.is_some()).collect())
            .unwrap_or_default()
    }
}

/// `message` with `placeholder` replaced by `token` everywhere.
fn with_token(message: &Message, placeholder: &str, token: &str) -> Message {
    let swap = |s: &String| s.replace(placeholder, token);
    Message {
        parts: message.parts.iter().map(swap).collect(),
        subject: message.subject.as_ref().map(swap),
        html: message.html.as_ref().map(swap),
        document: message.document.clone(),
    }
}

/// Whether a reader's unsubscribe token can stand where a placeholder of `len` characters was
/// rendered: the same length and only characters that no template escaping changes (crier's
/// tokens are 32 hex digits).
fn substitutable(token: &str, len: usize) -> bool {
    token.len() == len && !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A reader's one-click unsubscribe link, when there is a public URL.
pub fn unsubscribe_url(settings: &Settings, target: &Target) -> Option<String> {
    match target {
        Target::Subscriber {
            unsubscribe_token, ..
        } => unsubscribe_url_for(settings, unsubscribe_token),
        Target::Endpoint => None,
    }
}

/// The one-click unsubscribe link for `token`, when there is a public URL.
fn unsubscribe_url_for(settings: &Settings, token: &str) -> Option<String> {
    settings
        .public_url
        .as_ref()
        .map(|base| format!("{}/api/v1/unsubscribe/{token}", base.trim_end_matches('/')))
}

/// A stand-in token and the email rendered with it, when swapping tokens in the output is the
/// same as rendering again: checked with a second stand-in and with the reader's own rendering
/// `out` (token `token`). `None` (render per reader) when a template does more with the link
/// than print it.
fn placeholder_for(
    render: &impl Fn(&Context) -> Result<Rendered, RenderError>,
    ctx: &mut Context,
    settings: &Settings,
    token: &str,
    out: &Rendered,
) -> Result<Option<(String, Rendered)>, ComposeError> {
    let stand_in = || -> Result<String, ComposeError> {
        let mut s = crate::token::random_hex(token.len().div_ceil(2))?;
        s.truncate(token.len());
        Ok(s)
    };
    let (p, q) = (stand_in()?, stand_in()?);
    if p.len() != token.len() || p == q {
        return Ok(None);
    }
    ctx.unsubscribe_url = unsubscribe_url_for(settings, &p);
    let with_p = render(ctx)?;
    ctx.unsubscribe_url = unsubscribe_url_for(settings, &q);
    let with_q = render(ctx)?;
    let swap = |r: &Rendered, to: &str| {
        (
            r.subject.as_ref().map(|s| s.replace(&p, to)),
            r.text.replace(&p, to),
            r.html.as_ref().map(|s| s.replace(&p, to)),
        )
    };
    let parts = |r: &Rendered| (r.subject.clone(), r.text.clone(), r.html.clone());
    let consistent = swap(&with_p, &q) == parts(&with_q) && swap(&with_p, token) == parts(out);
    Ok(consistent.then_some((p, with_p)))
}

#[cfg(test)]
mod tests;
