//! The incident and its state machine. The vocabulary is Atlassian Statuspage's, so that staff
//! moving from it and tools that speak its API find the same words: incidents go investigating →
//! identified → monitoring → resolved; maintenance goes scheduled → in_progress → verifying →
//! completed.

use super::{ComponentName, DomainError, Locale, Span};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use ulid::Ulid;

/// Whether a record is an unplanned incident or a planned maintenance; each has its own statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    #[default]
    Incident,
    Maintenance,
}

/// Every status of both kinds; [`Status::kind`] tells which kind a status belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
    Scheduled,
    InProgress,
    Verifying,
    Completed,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Investigating,
        Status::Identified,
        Status::Monitoring,
        Status::Resolved,
        Status::Scheduled,
        Status::InProgress,
        Status::Verifying,
        Status::Completed,
    ];

    /// Parses the snake_case name used by the API and the CLI.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let names = Status::ALL.map(Status::as_str);
        match super::names::find(s, &names) {
            Ok(n) => Status::ALL
                .into_iter()
                .find(|st| st.as_str() == n)
                .ok_or_else(|| DomainError::invalid("status", "is not a status")),
            Err(guess) => Err(DomainError::invalid(
                "status",
                format!("\"{}\" is not a status; incidents use investigating, identified, monitoring or resolved, maintenance uses scheduled, in_progress, verifying or completed.{}", s.trim(), super::names::did_you_mean(guess)),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Monitoring => "monitoring",
            Status::Resolved => "resolved",
            Status::Scheduled => "scheduled",
            Status::InProgress => "in_progress",
            Status::Verifying => "verifying",
            Status::Completed => "completed",
        }
    }

    pub fn kind(self) -> IncidentKind {
        match self {
            Status::Investigating | Status::Identified | Status::Monitoring | Status::Resolved => {
                IncidentKind::Incident
            }
            _ => IncidentKind::Maintenance,
        }
    }

    /// Resolved and completed are final: nothing but a reopen follows them.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Resolved | Status::Completed)
    }

    /// Position along the maintenance lifecycle (maintenance only moves forward, except that a
    /// failed verification may go back to in_progress).
    fn maintenance_rank(self) -> u8 {
        match self {
            Status::Scheduled => 0,
            Status::InProgress => 1,
            Status::Verifying => 2,
            Status::Completed => 3,
            _ => 0,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Incident => "incident",
            IncidentKind::Maintenance => "maintenance",
        }
    }

    /// The status a new record of this kind starts in when the client does not name one.
    pub fn initial_status(self) -> Status {
        match self {
            IncidentKind::Incident => Status::Investigating,
            IncidentKind::Maintenance => Status::Scheduled,
        }
    }

    /// The final status `resolve` moves a record of this kind to.
    pub fn final_status(self) -> Status {
        match self {
            IncidentKind::Incident => Status::Resolved,
            IncidentKind::Maintenance => Status::Completed,
        }
    }
}

/// How badly users are affected, as Statuspage grades it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    None,
    Minor,
    Major,
    Critical,
}

impl Impact {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        const ALL: [Impact; 4] = [Impact::None, Impact::Minor, Impact::Major, Impact::Critical];
        match super::names::find(s, &ALL.map(Impact::as_str)) {
            Ok(n) => ALL
                .into_iter()
                .find(|i| i.as_str() == n)
                .ok_or_else(|| DomainError::invalid("impact", "is not an impact")),
            Err(guess) => Err(DomainError::invalid(
                "impact",
                format!(
                    "\"{}\" is not an impact; use none, minor, major or critical.{}",
                    s.trim(),
                    super::names::did_you_mean(guess)
                ),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::None => "none",
            Impact::Minor => "minor",
            Impact::Major => "major",
            Impact::Critical => "critical",
        }
    }
}

/// An incident title: non-blank, at most 255 characters (Statuspage's limit), one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, min_length = 1, max_length = 255, pattern = r"^[^\r\n]*\S[^\r\n]*$")]
pub struct Title(String);

impl Title {
    /// Validates a title given as input: the rules below, and no control character at all.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let t = Self::parse_stored(s)?;
        super::check_line("title", &t.0)?;
        Ok(t)
    }

    /// The rules a stored title was written under before control characters were refused, so
    /// a record written by an earlier version still reads.
    fn parse_stored(s: &str) -> Result<Self, DomainError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(DomainError::invalid(
                "title",
                "is empty; give the incident a short headline such as \"Check-in delays at HEL\"",
            ));
        }
        if t.chars().count() > 255 {
            return Err(DomainError::invalid(
                "title",
                format!(
                    "is {} characters; keep it at most 255 and put details in the message",
                    t.chars().count()
                ),
            ));
        }
        if t.contains(['\n', '\r']) {
            return Err(DomainError::invalid(
                "title",
                "contains a line break; a title is one line",
            ));
        }
        Ok(Title(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Title {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Title::parse_stored(&s)
    }
}

impl From<Title> for String {
    fn from(t: Title) -> String {
        t.0
    }
}

/// An incident's title in other languages, by locale: each a [`Title`] like the main one.
pub type Titles = BTreeMap<Locale, Title>;

/// The reason of a validation error, without its field (to be told under another field).
fn reason(e: DomainError) -> String {
    match e {
        DomainError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Validates per-language titles given as input (`{"fi": "Lähtöselvitys viivästyy"}`): every
/// key a locale, every value a title by [`Title::parse`]'s rules, each language once. Errors
/// name the field `titles` and the language at fault.
pub fn parse_titles(raw: &BTreeMap<String, String>) -> Result<Titles, DomainError> {
    let mut out = Titles::new();
    for (tag, text) in raw {
        let locale = Locale::parse(tag)
            .map_err(|e| DomainError::invalid("titles", format!("key \"{tag}\": {}", reason(e))))?;
        let title = Title::parse(text).map_err(|e| {
            DomainError::invalid("titles", format!("the {locale} title {}", reason(e)))
        })?;
        if out.insert(locale.clone(), title).is_some() {
            return Err(DomainError::invalid(
                "titles",
                format!(
                    "two titles for {locale} (\"{tag}\" names it again); give each language once"
                ),
            ));
        }
    }
    Ok(out)
}

/// The current state of one incident or maintenance. Its history is the list of
/// [`super::Update`]s; this record is the summary the list views and the status page show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: Ulid,
    /// The main title: what readers of a language without a title of its own see.
    pub title: Title,
    /// The title in other languages, by locale (`{"fi": "Lähtöselvitys viivästyy"}`); see
    /// [`Incident::title_for`]. Records written before it existed have none.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Title>)]
    pub titles: Titles,
    pub kind: IncidentKind,
    pub status: Status,
    pub impact: Impact,
    pub components: Vec<ComponentName>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The promise made by the latest update: "next update by …". Cleared on resolve.
    pub next_update_due: Option<DateTime<Utc>>,
    /// True while the incident has only draft updates: it is not public and notifies nobody.
    pub draft: bool,
    /// How many updates the timeline holds (also the position of the newest; crash recovery
    /// uses it to find updates whose write was interrupted).
    pub update_count: u32,
    /// Maintenance window start: crier moves a scheduled maintenance to `in_progress` then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Maintenance window end: crier moves it to `completed` then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_until: Option<DateTime<Utc>>,
    /// Opted in to an automatic holding statement when a next-update promise is missed.
    #[serde(default)]
    pub holding_statement: bool,
    /// A maintenance's own reminder to its audience (`"1h"` before the start, or `"none"`).
    /// Absent in records written before it existed and on incidents: the config's
    /// `maintenance.remind_before` applies (see [`Incident::reminder`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "1h")]
    pub remind_before: Option<Reminder>,
    /// What the public sees: the state the last *published* update left. The fields above are
    /// the staff view and move with drafts too; a draft must not change the status page before
    /// it is published. `None` while only drafts exist (and in records written before this
    /// field existed, where the fields above were only moved by published updates in practice
    /// unless `draft` says otherwise; see [`Incident::public_view`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<PublicState>,
}

/// A maintenance window's reminder to its audience: how long before the start it goes, or
/// none at all. Written `30m`, `2h`, `1d` (1 minute to 7 days) or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminder {
    Off,
    Before(Span),
}

impl Reminder {
    /// The shortest lead a reminder may have.
    pub const MIN: Span = Span::from_secs(60);
    /// The longest lead a reminder may have.
    pub const MAX: Span = Span::from_secs(7 * 86_400);

    /// Parses `none` (or `off`) or a span from [`Reminder::MIN`] to [`Reminder::MAX`]; the
    /// error names the field `remind_before`.
    pub fn parse(s: &str) -> Result<Reminder, DomainError> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("off") {
            return Ok(Reminder::Off);
        }
        Span::parse_in(t, Reminder::MIN, Reminder::MAX)
            .map(Reminder::Before)
            .map_err(|e| {
                DomainError::invalid("remind_before", format!("{e}; or none for no reminder"))
            })
    }

    /// How long before the start the reminder goes; `None` for no reminder.
    pub fn lead(self) -> Option<Span> {
        match self {
            Reminder::Off => None,
            Reminder::Before(s) => Some(s),
        }
    }

    /// The reminder a config's `maintenance.remind_before` gives (none: no reminder).
    pub fn from_config(lead: Option<std::time::Duration>) -> Reminder {
        match lead {
            Some(d) => Reminder::Before(Span::from_millis(
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            )),
            None => Reminder::Off,
        }
    }
}

impl std::fmt::Display for Reminder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reminder::Off => f.write_str("none"),
            Reminder::Before(s) => s.fmt(f),
        }
    }
}

impl Serialize for Reminder {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reminder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reminder::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The part of an incident that updates change, as of its last published update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicState {
    pub status: Status,
    pub impact: Impact,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub next_update_due: Option<DateTime<Utc>>,
    /// The position of that update in the timeline.
    pub update_count: u32,
    /// The titles in other languages as of that update (a draft may change them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, Title>)]
    pub titles: Titles,
}

impl Incident {
    /// How long before its start a maintenance reminds its audience: its own `remind_before`,
    /// else (records written before it existed) the config's `maintenance.remind_before`.
    /// `None`: no reminder.
    pub fn reminder_lead(&self, config: Option<std::time::Duration>) -> Option<Span> {
        self.remind_before
            .unwrap_or(Reminder::from_config(config))
            .lead()
    }

    /// Records the current state as what the public sees: called when an update is published
    /// (an opening, an append that is not a draft, or the publication of the drafts).
    pub fn publish_state(&mut self) {
        self.public = Some(PublicState {
            status: self.status,
            impact: self.impact,
            updated_at: self.updated_at,
            resolved_at: self.resolved_at,
            next_update_due: self.next_update_due,
            update_count: self.update_count,
            titles: self.titles.clone(),
        });
    }

    /// The title a reader of `locale` sees: the title in that language, else the English one,
    /// else the main title — the fallback of an update's text ([`super::Body::text_for`]),
    /// with the main title last.
    pub fn title_for(&self, locale: &Locale) -> &Title {
        self.titles
            .get(locale)
            .or_else(|| self.titles.get(&Locale::english()))
            .unwrap_or(&self.title)
    }

    /// The incident as the public sees it: the state of its last published update, or `None`
    /// when nothing has been published. A record from before `public` existed that is not a
    /// draft shows its own state, as it did then.
    pub fn public_view(&self) -> Option<Incident> {
        let mut v = self.clone();
        match self.public.clone() {
            Some(p) => {
                v.status = p.status;
                v.impact = p.impact;
                v.updated_at = p.updated_at;
                v.resolved_at = p.resolved_at;
                v.next_update_due = p.next_update_due;
                v.update_count = p.update_count;
                v.titles = p.titles;
            }
            None if self.draft => return None,
            None => {}
        }
        v.draft = false;
        v.public = None;
        Some(v)
    }

    /// Open (not resolved or completed).
    pub fn is_open(&self) -> bool {
        !self.status.is_final()
    }

    /// Checks that a plain update may move this incident to `to`.
    pub fn check_update(&self, to: Status) -> Result<(), DomainError> {
        check_kind(self.kind, to)?;
        match self.kind {
            IncidentKind::Incident if self.status == Status::Resolved => {
                Err(DomainError::Transition(format!(
                    "incident {} is resolved; reopen it first (`crier incident reopen {} --message ...`) or post a new incident",
                    self.id, self.id
                )))
            }
            IncidentKind::Incident => Ok(()),
            IncidentKind::Maintenance => {
                let (from, to_rank) = (self.status, to.maintenance_rank());
                if from == Status::Completed {
                    return Err(DomainError::Transition(format!(
                        "maintenance {} is completed; schedule a new maintenance instead",
                        self.id
                    )));
                }
                let back_to_work = from == Status::Verifying && to == Status::InProgress;
                if to_rank < from.maintenance_rank() && !back_to_work {
                    return Err(DomainError::Transition(format!(
                        "maintenance {} is {}; it cannot go back to {} (only verifying → in_progress may go back)",
                        self.id, from, to
                    )));
                }
                Ok(())
            }
        }
    }

    /// Checks that `resolve` is allowed: the record is not already final.
    pub fn check_resolve(&self) -> Result<Status, DomainError> {
        if self.status.is_final() {
            return Err(DomainError::Transition(format!(
                "{} {} is already {}",
                self.kind.as_str(),
                self.id,
                self.status
            )));
        }
        Ok(self.kind.final_status())
    }

    /// Checks that `reopen` is allowed: only a resolved incident reopens (to investigating).
    pub fn check_reopen(&self) -> Result<Status, DomainError> {
        match (self.kind, self.status) {
            (IncidentKind::Incident, Status::Resolved) => Ok(Status::Investigating),
            (IncidentKind::Incident, s) => Err(DomainError::Transition(format!(
                "incident {} is {s}, not resolved; post an update instead of reopening",
                self.id
            ))),
            (IncidentKind::Maintenance, _) => Err(DomainError::Transition(format!(
                "maintenance {} cannot be reopened; schedule a new maintenance instead",
                self.id
            ))),
        }
    }
}

/// A status must belong to the record's kind: `in_progress` makes no sense on an incident.
pub(crate) fn check_kind(kind: IncidentKind, status: Status) -> Result<(), DomainError> {
    if status.kind() != kind {
        let allowed = match kind {
            IncidentKind::Incident => "investigating, identified, monitoring or resolved",
            IncidentKind::Maintenance => "scheduled, in_progress, verifying or completed",
        };
        return Err(DomainError::Transition(format!(
            "status {status} belongs to {}, not to an {}; use {allowed}",
            status.kind().as_str(),
            kind.as_str()
        )));
    }
    Ok(())
}

/// The status a new record may start in: of its kind, and not already final.
pub fn check_status_for_new(kind: IncidentKind, status: Status) -> Result<(), DomainError> {
    check_kind(kind, status)?;
    if status.is_final() {
        return Err(DomainError::Transition(format!(
            "a new {} cannot start as {status}; open it, then resolve it",
            kind.as_str()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: IncidentKind, status: Status) -> Incident {
        let now = Utc::now();
        Incident {
            id: Ulid::new(),
            title: Title::parse("t").unwrap(),
            titles: Titles::new(),
            kind,
            status,
            impact: Impact::Minor,
            components: vec![],
            created_at: now,
            updated_at: now,
            resolved_at: None,
            next_update_due: None,
            draft: false,
            update_count: 1,
            scheduled_for: None,
            scheduled_until: None,
            holding_statement: false,
            remind_before: None,
            public: None,
        }
    }

    #[test]
    fn the_public_view_is_the_last_published_state() {
        let mut i = record(IncidentKind::Incident, Status::Investigating);
        i.publish_state();
        i.status = Status::Identified;
        i.impact = Impact::Critical;
        i.update_count = 2;
        let v = i.public_view().unwrap();
        assert_eq!(
            (v.status, v.impact, v.update_count),
            (Status::Investigating, Impact::Minor, 1)
        );
        assert!(v.public.is_none() && !v.draft);
        // Never published: nothing public.
        let mut d = record(IncidentKind::Incident, Status::Investigating);
        d.draft = true;
        assert!(d.public_view().is_none());
        // A record written before `public` existed shows its own state unless it is a draft.
        let legacy = record(IncidentKind::Incident, Status::Monitoring);
        assert_eq!(legacy.public_view().unwrap().status, Status::Monitoring);
    }

    use IncidentKind::{Incident as Inc, Maintenance as Mnt};
    use Status::*;

    #[test]
    fn incident_statuses_move_freely_until_resolved() {
        for from in [Investigating, Identified, Monitoring] {
            for to in [Investigating, Identified, Monitoring, Resolved] {
                assert!(
                    record(Inc, from).check_update(to).is_ok(),
                    "{from} -> {to} should be allowed"
                );
            }
        }
    }

    #[test]
    fn resolved_incident_needs_reopen() {
        let r = record(Inc, Resolved);
        let err = r.check_update(Monitoring).unwrap_err();
        assert!(err.to_string().contains("reopen"), "{err}");
        assert_eq!(r.check_reopen().unwrap(), Investigating);
        assert!(r.check_resolve().is_err());
        assert!(record(Inc, Monitoring).check_reopen().is_err());
    }

    #[test]
    fn maintenance_status_on_incident_is_rejected_and_vice_versa() {
        for s in [Scheduled, InProgress, Verifying, Completed] {
            let err = record(Inc, Investigating).check_update(s).unwrap_err();
            assert!(err.to_string().contains("belongs to maintenance"), "{err}");
        }
        for s in [Investigating, Identified, Monitoring, Resolved] {
            assert!(record(Mnt, Scheduled).check_update(s).is_err());
        }
    }

    #[test]
    fn maintenance_moves_forward() {
        let ok = [
            (Scheduled, Scheduled),
            (Scheduled, InProgress),
            (Scheduled, Completed),
            (InProgress, Verifying),
            (InProgress, Completed),
            (Verifying, InProgress),
            (Verifying, Completed),
        ];
        for (from, to) in ok {
            assert!(record(Mnt, from).check_update(to).is_ok(), "{from} -> {to}");
        }
        let bad = [
            (InProgress, Scheduled),
            (Verifying, Scheduled),
            (Completed, InProgress),
            (Completed, Completed),
        ];
        for (from, to) in bad {
            assert!(
                record(Mnt, from).check_update(to).is_err(),
                "{from} -> {to}"
            );
        }
        assert_eq!(record(Mnt, Verifying).check_resolve().unwrap(), Completed);
        assert!(record(Mnt, Completed).check_reopen().is_err());
    }

    #[test]
    fn parses_names() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()).unwrap(), s);
        }
        assert!(Status::parse("fixed").is_err());
        assert_eq!(Impact::parse("major").unwrap(), Impact::Major);
        assert!(Impact::parse("huge").is_err());
    }

    #[test]
    fn names_are_case_insensitive_and_typos_get_a_suggestion() {
        assert_eq!(Status::parse("Resolved").unwrap(), Status::Resolved);
        assert_eq!(Status::parse("IN-PROGRESS").unwrap(), Status::InProgress);
        assert_eq!(Impact::parse("Major").unwrap(), Impact::Major);
        let e = Status::parse("resovled").unwrap_err().to_string();
        assert!(e.contains("Did you mean \"resolved\"?"), "{e}");
        let e = Impact::parse("critcal").unwrap_err().to_string();
        assert!(e.contains("Did you mean \"critical\"?"), "{e}");
        let e = Status::parse("fixed").unwrap_err().to_string();
        assert!(!e.contains("Did you mean"), "{e}");
        assert_eq!(
            crate::domain::ComponentStatus::parse("Partial Outage").unwrap(),
            crate::domain::ComponentStatus::PartialOutage
        );
    }

    #[test]
    fn title_rules() {
        assert!(Title::parse("  ").is_err());
        assert!(Title::parse(&"x".repeat(256)).is_err());
        assert!(Title::parse("a\nb").is_err());
        assert_eq!(Title::parse(" Delays ").unwrap().as_str(), "Delays");
    }

    #[test]
    fn titles_refuse_control_characters() {
        for c in ['\u{1b}', '\u{7}', '\u{b}', '\u{7f}', '\u{9b}', '\t'] {
            let e = Title::parse(&format!("Down{c}x")).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "title: contains the control character U+{:04X}",
                    c as u32
                )) && e.contains("at character 5"),
                "{e}"
            );
        }
        // A record stored by an earlier version still reads.
        let stored: Title = serde_json::from_str("\"old \\u001b title\"").unwrap();
        assert_eq!(stored.as_str(), "old \u{1b} title");
    }

    #[test]
    fn titles_are_checked_like_the_title_and_name_their_language() {
        let raw = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let t = parse_titles(&raw(&[("FI", " Viiveitä "), ("sv_fi", "Förseningar")])).unwrap();
        let keys: Vec<&str> = t.keys().map(Locale::as_str).collect();
        assert_eq!(keys, ["fi", "sv-FI"]);
        assert_eq!(t[&Locale::parse("fi").unwrap()].as_str(), "Viiveitä");
        let long = "x".repeat(256);
        for (pairs, want) in [
            (
                vec![("finnish", "x")],
                "titles: key \"finnish\": \"finnish\" is not a language tag",
            ),
            (vec![("fi", " ")], "titles: the fi title is empty"),
            (
                vec![("fi", long.as_str())],
                "titles: the fi title is 256 characters",
            ),
            (
                vec![("fi", "a\u{1b}b")],
                "titles: the fi title contains the control character U+001B",
            ),
            (vec![("fi", "a"), ("FI", "b")], "titles: two titles for fi"),
        ] {
            let e = parse_titles(&raw(&pairs)).unwrap_err();
            assert!(
                matches!(
                    &e,
                    DomainError::Invalid {
                        field: "titles",
                        ..
                    }
                ),
                "{e}"
            );
            assert!(e.to_string().starts_with(want), "{e}");
        }
    }

    #[test]
    fn a_reader_gets_their_title_else_english_else_the_main_one() {
        let mut i = record(IncidentKind::Incident, Status::Investigating);
        let l = |s: &str| Locale::parse(s).unwrap();
        assert_eq!(i.title_for(&l("fi")).as_str(), "t");
        i.titles.insert(l("fi"), Title::parse("Otsikko").unwrap());
        assert_eq!(i.title_for(&l("fi")).as_str(), "Otsikko");
        assert_eq!(i.title_for(&l("sv")).as_str(), "t");
        i.titles.insert(l("en"), Title::parse("Headline").unwrap());
        assert_eq!(i.title_for(&l("sv")).as_str(), "Headline");
        // A draft's titles stay out of the public view until published.
        i.publish_state();
        i.titles.insert(l("sv"), Title::parse("Rubrik").unwrap());
        assert_eq!(
            i.public_view().unwrap().title_for(&l("sv")).as_str(),
            "Headline"
        );
        i.publish_state();
        assert_eq!(
            i.public_view().unwrap().title_for(&l("sv")).as_str(),
            "Rubrik"
        );
    }
}
