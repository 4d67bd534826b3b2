//! Rendering: turning an update into each channel's message, in the reader's language and time
//! zone, within the channel's length rules.
//!
//! - [`templates`]: minijinja templates per event × channel kind × locale, checked at start-up;
//! - [`i18n`]: status/impact words and date formats per language;
//! - [`rules`]: channel length rules (SMS segments, X weighting, Bluesky graphemes and facets)
//!   and the too-long policies;
//! - [`markup`]: chat platforms' markup dialects and the escaping of values for each;
//! - [`preview`]: what each channel would send, for staff before they publish;
//! - [`email`]: the multipart text + HTML message;
//! - [`webhook`]: the JSON documents a webhook channel posts;
//! - [`compose`]: one delivery's message, the entry point the dispatcher calls: the locale, the
//!   context, the unsubscribe link, the fitting, the webhook document, and the per-channel cache
//!   that renders a fan-out once per locale.

pub mod compose;
pub mod email;
mod fitting;
pub mod i18n;
pub mod markup;
pub mod preview;
pub mod rules;
mod templates;
pub mod webhook;

pub use compose::{ComposeError, Composed, Composer, Message, Outlet, Request, Source};
pub use fitting::fit_rendered;
pub use templates::{Rendered, Templates};

use crate::domain::{
    DomainError, Impact, Incident, IncidentKind, Locale, Status, Update, UpdateAction,
};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("template {path}{line}: {message}", line = line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("template file {path} is misnamed: {message}")]
    Name { path: PathBuf, message: String },
    #[error(
        "no template {name}: add it under the templates folder (English is the last fallback)"
    )]
    Missing { name: String },
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl RenderError {
    fn template(path: &Path, e: &minijinja::Error) -> Self {
        let mut message = e.kind().to_string();
        if let Some(detail) = e.detail() {
            message = format!("{message}: {detail}");
        }
        // Quote the offending line, so "undefined value" comes with the expression that has it.
        let source_line = e.line().and_then(|n| {
            let text = std::fs::read_to_string(path).ok()?;
            text.lines()
                .nth(n.checked_sub(1)?)
                .map(|l| l.trim().to_owned())
        });
        if let Some(src) = source_line.filter(|l| !l.is_empty()) {
            let src: String = src.chars().take(160).collect();
            message = format!("{message} in `{src}` (variables are listed in docs/TEMPLATES.md)");
        }
        RenderError::Template {
            path: path.to_owned(),
            line: e.line(),
            message,
        }
    }
}

/// The events a message can announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    IncidentOpened,
    IncidentUpdated,
    IncidentResolved,
    MaintenanceScheduled,
    MaintenanceStarted,
    MaintenanceCompleted,
    Notice,
    Reminder,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::IncidentOpened,
        Event::IncidentUpdated,
        Event::IncidentResolved,
        Event::MaintenanceScheduled,
        Event::MaintenanceStarted,
        Event::MaintenanceCompleted,
        Event::Notice,
        Event::Reminder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::IncidentOpened => "incident_opened",
            Event::IncidentUpdated => "incident_updated",
            Event::IncidentResolved => "incident_resolved",
            Event::MaintenanceScheduled => "maintenance_scheduled",
            Event::MaintenanceStarted => "maintenance_started",
            Event::MaintenanceCompleted => "maintenance_completed",
            Event::Notice => "notice",
            Event::Reminder => "reminder",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The event an update announces.
    pub fn of_update(kind: IncidentKind, update: &Update) -> Event {
        match (kind, update.action, update.status) {
            (IncidentKind::Incident, UpdateAction::Opened, _) => Event::IncidentOpened,
            (IncidentKind::Incident, _, Status::Resolved) => Event::IncidentResolved,
            (IncidentKind::Incident, _, _) => Event::IncidentUpdated,
            (IncidentKind::Maintenance, _, Status::Scheduled) => Event::MaintenanceScheduled,
            (IncidentKind::Maintenance, _, Status::Completed) => Event::MaintenanceCompleted,
            (IncidentKind::Maintenance, _, _) => Event::MaintenanceStarted,
        }
    }
}

/// The template families; webhooks get a JSON document instead of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    Sms,
    Email,
    Social,
    Chat,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 4] = [
        TemplateKind::Sms,
        TemplateKind::Email,
        TemplateKind::Social,
        TemplateKind::Chat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Sms => "sms",
            TemplateKind::Email => "email",
            TemplateKind::Social => "social",
            TemplateKind::Chat => "chat",
        }
    }

    pub fn parse(s: &str) -> Option<TemplateKind> {
        TemplateKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The template files of this kind (the `<part>` in the file name).
    pub fn parts(self) -> &'static [&'static str] {
        match self {
            TemplateKind::Sms | TemplateKind::Social => &["txt"],
            TemplateKind::Chat => &["md"],
            TemplateKind::Email => &["subject", "txt", "html"],
        }
    }
}

/// Settings that every message shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who is speaking ("Finnair"): the SMS sender prefix and the email subject tag.
    pub org_name: String,
    /// The public status page; incident links are `<public_url>/incidents/<id>`.
    pub public_url: Option<String>,
    /// The zone times are shown in when the reader has none.
    pub timezone: Tz,
    /// The public pages: on or off, where, the logo, the static copy.
    pub page: crate::web::PageSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            org_name: "Status".into(),
            public_url: None,
            timezone: Tz::UTC,
            page: crate::web::PageSettings::default(),
        }
    }
}

/// The incident as templates see it (`incident.*`).
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    pub id: String,
    /// The title in the reader's language ([`Incident::title_for`]).
    pub title: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub status_label: &'static str,
    pub impact: &'static str,
    pub impact_label: &'static str,
    pub components: Vec<String>,
    pub url: Option<String>,
}

/// The update as templates see it (`update.*`).
#[derive(Debug, Clone, Serialize)]
pub struct UpdateView {
    pub status: &'static str,
    pub status_label: &'static str,
    pub action: &'static str,
    pub text: String,
    pub paragraphs: Vec<String>,
    /// Local time with the zone named.
    pub time: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// A scheduled notice as templates see it (`notice.*`).
#[derive(Debug, Clone, Serialize)]
pub struct NoticeView {
    pub subject: String,
    pub text: String,
    pub paragraphs: Vec<String>,
    pub url: Option<String>,
}

/// Every variable a template may use. All keys are always present (absent values are `none`),
/// so strict undefined checking catches typos, not missing optional data.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub org: String,
    pub locale: String,
    pub tz: String,
    pub incident: Option<IncidentView>,
    pub update: Option<UpdateView>,
    pub next_update: Option<String>,
    pub window: Option<String>,
    pub unsubscribe_url: Option<String>,
    pub notice: Option<NoticeView>,
    pub due: Option<String>,
    pub minutes_left: Option<i64>,
}

fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn incident_url(settings: &Settings, id: &str) -> Option<String> {
    settings
        .public_url
        .as_ref()
        .map(|u| format!("{}/incidents/{id}", u.trim_end_matches('/')))
}

impl Context {
    /// The context for one update of an incident, in `locale` and zone `tz`.
    pub fn for_update(
        settings: &Settings,
        incident: &Incident,
        update: &Update,
        locale: &Locale,
        tz: Tz,
    ) -> Context {
        let text = update.body.text_for(locale).to_owned();
        Context {
            org: settings.org_name.clone(),
            locale: locale.to_string(),
            tz: tz.name().to_owned(),
            incident: Some(IncidentView {
                id: incident.id.to_string(),
                // The one place a message gets its title: in the reader's language.
                title: incident.title_for(locale).as_str().to_owned(),
                kind: incident.kind.as_str(),
                status: incident.status.as_str(),
                status_label: i18n::status_label(incident.status, locale),
                impact: incident.impact.as_str(),
                impact_label: i18n::impact_label(incident.impact, locale),
                components: incident.components.iter().map(|c| c.to_string()).collect(),
                url: incident_url(settings, &incident.id.to_string()),
            }),
            update: Some(UpdateView {
                status: update.status.as_str(),
                status_label: i18n::status_label(update.status, locale),
                action: match update.action {
                    UpdateAction::Opened => "opened",
                    UpdateAction::Updated => "updated",
                    UpdateAction::Resolved => "resolved",
                    UpdateAction::Reopened => "reopened",
                },
                paragraphs: paragraphs(&text),
                text,
                time: i18n::format_time(update.created_at, tz, locale),
                created_at: update.created_at.to_rfc3339(),
            }),
            next_update: update
                .next_update_due
                .map(|t| i18n::format_time(t, tz, locale)),
            window: None,
            unsubscribe_url: None,
            notice: None,
            due: None,
            minutes_left: None,
        }
    }

    /// A scheduled notice's context.
    pub fn for_notice(
        settings: &Settings,
        subject: &str,
        text: &str,
        url: Option<String>,
        locale: &Locale,
        tz: Tz,
    ) -> Context {
        Context {
            org: settings.org_name.clone(),
            locale: locale.to_string(),
            tz: tz.name().to_owned(),
            incident: None,
            update: None,
            next_update: None,
            window: None,
            unsubscribe_url: None,
            notice: Some(NoticeView {
                subject: subject.to_owned(),
                text: text.to_owned(),
                paragraphs: paragraphs(text),
                url,
            }),
            due: None,
            minutes_left: None,
        }
    }

    /// A next-update reminder's context (to staff): the incident, when the update is due, and
    /// how many minutes are left.
    pub fn for_reminder(
        settings: &Settings,
        incident: &Incident,
        update: &Update,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        locale: &Locale,
        tz: Tz,
    ) -> Context {
        let mut c = Context::for_update(settings, incident, update, locale, tz);
        c.due = Some(i18n::format_time(due, tz, locale));
        c.minutes_left = Some((due - now).num_minutes().max(0));
        c
    }

    /// A complete sample context for `event`, used to check templates at start-up.
    pub fn sample(event: Event, locale: &Locale) -> Result<Context, DomainError> {
        let settings = Settings {
            public_url: Some("https://status.example.com".into()),
            ..Settings::default()
        };
        // A fixed instant: the sample only checks that templates render, so its time is no
        // reading of any clock.
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let (incident, update) = sample_incident(
            event,
            "We are investigating slow check-in.\n\nPlease allow extra time.",
            now,
        )?;
        let tz = Tz::UTC;
        let mut c = match event {
            Event::Notice => Context::for_notice(
                &settings,
                "Weekly maintenance window",
                "Maintenance tonight 22:00-23:00.\n\nServices may be briefly unavailable.",
                Some("https://status.example.com".into()),
                locale,
                tz,
            ),
            Event::Reminder => Context::for_reminder(
                &settings,
                &incident,
                &update,
                now + Duration::minutes(10),
                now,
                locale,
                tz,
            ),
            _ => Context::for_update(&settings, &incident, &update, locale, tz),
        };
        c.unsubscribe_url = Some("https://status.example.com/unsubscribe/token".into());
        if matches!(
            event,
            Event::MaintenanceScheduled | Event::MaintenanceStarted
        ) {
            c.window = Some(format!(
                "{} – {}",
                i18n::format_time(now, tz, locale),
                i18n::format_time(now + Duration::hours(2), tz, locale)
            ));
        }
        Ok(c)
    }
}

/// An incident and update standing in for real ones in checks and offline previews; `text` is
/// the update's (English) body.
pub fn sample_incident(
    event: Event,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(Incident, Update), DomainError> {
    use crate::domain::{Body, Title};
    let (kind, status, action) = match event {
        Event::IncidentOpened | Event::Notice | Event::Reminder => (
            IncidentKind::Incident,
            Status::Investigating,
            UpdateAction::Opened,
        ),
        Event::IncidentUpdated => (
            IncidentKind::Incident,
            Status::Identified,
            UpdateAction::Updated,
        ),
        Event::IncidentResolved => (
            IncidentKind::Incident,
            Status::Resolved,
            UpdateAction::Resolved,
        ),
        Event::MaintenanceScheduled => (
            IncidentKind::Maintenance,
            Status::Scheduled,
            UpdateAction::Opened,
        ),
        Event::MaintenanceStarted => (
            IncidentKind::Maintenance,
            Status::InProgress,
            UpdateAction::Updated,
        ),
        Event::MaintenanceCompleted => (
            IncidentKind::Maintenance,
            Status::Completed,
            UpdateAction::Resolved,
        ),
    };
    let id = ulid::Ulid::new();
    let update_id = ulid::Ulid::new();
    let title = Title::parse("Check-in delays at Helsinki Airport")?;
    let body = Body::single(Locale::english(), text)?;
    let next = (!status.is_final()).then(|| now + Duration::minutes(30));
    let incident = Incident {
        id,
        title,
        titles: Default::default(),
        kind,
        status,
        impact: Impact::Major,
        components: vec![],
        created_at: now,
        updated_at: now,
        resolved_at: status.is_final().then_some(now),
        next_update_due: next,
        draft: false,
        update_count: 1,
        scheduled_for: None,
        scheduled_until: None,
        holding_statement: false,
        remind_before: None,
        public: None,
    };
    let update = Update {
        id: update_id,
        incident_id: id,
        action,
        status,
        body,
        author: "preview".into(),
        created_at: now,
        next_update_due: next,
        draft: false,
        published_at: Some(now),
    };
    Ok((incident, update))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_shorten;
