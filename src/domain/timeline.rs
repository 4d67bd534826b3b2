//! Writes to an incident's timeline, in the domain's terms: a new incident, a new update, what an
//! update does to its incident ([`Change`]) and what came of it ([`Appended`]).
//!
//! [`open_incident`] and [`apply_update`] are the rules of such a write — the state machine
//! check, the promise, the status and impact and titles carried forward, the public state — as
//! pure functions: a backend reads the incident under its write lock, calls them, and writes
//! what they return, so the sled backend and any other apply exactly the same rules.

use super::{
    apply_promise, check_status_for_new, Body, ComponentName, DomainError, Impact, Incident,
    IncidentKind, PromiseChange, PromiseEdit, Status, Title, Titles, Update, UpdateAction,
};
use chrono::{DateTime, Utc};
use ulid::Ulid;

/// A new incident or maintenance as the client describes it, already validated field by field.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub title: Title,
    /// The title in other languages.
    pub titles: Titles,
    pub kind: IncidentKind,
    pub status: Option<Status>,
    pub impact: Impact,
    pub components: Vec<ComponentName>,
    pub body: Body,
    pub author: String,
    pub next_update_due: Option<DateTime<Utc>>,
    pub draft: bool,
    /// Channels to announce it on once published: (name, audience is subscribers).
    pub broadcast: Vec<(String, bool)>,
    /// Maintenance window (both or neither; checked by the caller).
    pub scheduled_for: Option<DateTime<Utc>>,
    pub scheduled_until: Option<DateTime<Utc>>,
    /// Opt in to an automatic holding statement when a promise is missed.
    pub holding_statement: bool,
    /// A maintenance's own reminder (`None`: the config's applies).
    pub remind_before: Option<crate::domain::Reminder>,
}

/// What a new timeline entry does to its incident.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// A progress update, optionally changing the status (None keeps it).
    Update(Option<Status>),
    Resolve,
    Reopen,
}

/// A timeline entry to append.
#[derive(Debug, Clone)]
pub struct NewUpdate {
    pub change: Change,
    /// Titles in other languages to add or replace (the others stay).
    pub titles: Titles,
    pub body: Body,
    pub author: String,
    pub impact: Option<Impact>,
    /// The promise: a new one, the standing one kept, or the standing one withdrawn.
    pub promise: PromiseEdit,
    pub draft: bool,
    /// Channels to announce it on once published: (name, audience is subscribers).
    pub broadcast: Vec<(String, bool)>,
    /// Appended only if the incident still has exactly this many updates when the write holds
    /// its lock; otherwise refused ([`DomainError::Transition`], "changed meanwhile"). The
    /// scheduler's own updates (holding statements, maintenance transitions) set it to the
    /// count they decided on, so two nodes that both believed they led for a moment cannot
    /// both post one. `None`: unconditional (people's updates).
    pub expect_count: Option<u32>,
}

/// An appended update, with what it did to the incident's promise.
#[derive(Debug, Clone)]
pub struct Appended {
    pub incident: Incident,
    pub update: Update,
    pub promise: PromiseChange,
    /// The promise that stood before this update.
    pub previous_due: Option<DateTime<Utc>>,
    /// Before → after, as the audit log says it ([`crate::domain::audit::changed`]).
    pub summary: String,
}

/// The incident `new` describes and its opening update (`update_id`, timeline position 1), after
/// the state machine's check of the first status. `new.broadcast` is the caller's: it says
/// where to announce the opening, not what the incident is.
pub fn open_incident(
    id: Ulid,
    update_id: Ulid,
    new: NewIncident,
    now: DateTime<Utc>,
) -> Result<(Incident, Update), DomainError> {
    let status = new.status.unwrap_or(new.kind.initial_status());
    check_status_for_new(new.kind, status)?;
    let mut incident = Incident {
        id,
        title: new.title,
        titles: new.titles,
        kind: new.kind,
        status,
        impact: new.impact,
        components: new.components,
        created_at: now,
        updated_at: now,
        resolved_at: None,
        next_update_due: new.next_update_due,
        draft: new.draft,
        update_count: 1,
        scheduled_for: new.scheduled_for,
        scheduled_until: new.scheduled_until,
        holding_statement: new.holding_statement,
        remind_before: new.remind_before,
        public: None,
    };
    if !new.draft {
        incident.publish_state();
    }
    let update = Update {
        id: update_id,
        incident_id: id,
        action: UpdateAction::Opened,
        status,
        body: new.body,
        author: new.author,
        created_at: now,
        next_update_due: new.next_update_due,
        draft: new.draft,
        published_at: (!new.draft).then_some(now),
    };
    Ok((incident, update))
}

/// Applies `new` to `incident` (read under the incident's write lock): the state machine's check
/// of the change, the status, impact and titles, the promise ([`apply_promise`]), the timeline
/// position and the public state. Returns the update to write (`update_id`, at the incident's
/// new `update_count`), what it did to the promise and the promise that stood before. On an
/// error the incident is unchanged. `new.broadcast` is the caller's.
pub fn apply_update(
    incident: &mut Incident,
    new: NewUpdate,
    update_id: Ulid,
    now: DateTime<Utc>,
) -> Result<(Update, PromiseChange, Option<DateTime<Utc>>), DomainError> {
    if let Some(expected) = new.expect_count {
        if incident.update_count != expected {
            return Err(DomainError::Transition(format!(
                "incident {} changed meanwhile: it has {} updates, this one was decided on {}; \
                 read it again and decide anew",
                incident.id, incident.update_count, expected
            )));
        }
    }
    let (action, status) = match new.change {
        Change::Update(to) => {
            let to = to.unwrap_or(incident.status);
            incident.check_update(to)?;
            let action = if to.is_final() {
                UpdateAction::Resolved
            } else {
                UpdateAction::Updated
            };
            (action, to)
        }
        Change::Resolve => (UpdateAction::Resolved, incident.check_resolve()?),
        Change::Reopen => (UpdateAction::Reopened, incident.check_reopen()?),
    };
    incident.status = status;
    incident.updated_at = now;
    incident.update_count += 1;
    if let Some(i) = new.impact {
        incident.impact = i;
    }
    incident.titles.extend(new.titles);
    let previous_due = incident.next_update_due;
    let (due, promise) = apply_promise(previous_due, new.promise, status.is_final(), now);
    incident.next_update_due = due;
    incident.resolved_at = status.is_final().then_some(now);
    if !new.draft {
        incident.draft = false;
        incident.publish_state();
    }
    let update = Update {
        id: update_id,
        incident_id: incident.id,
        action,
        status,
        body: new.body,
        author: new.author,
        created_at: now,
        next_update_due: incident.next_update_due,
        draft: new.draft,
        published_at: (!new.draft).then_some(now),
    };
    Ok((update, promise, previous_due))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Locale, UpdateAction};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn new_incident(kind: IncidentKind, status: Option<Status>, draft: bool) -> NewIncident {
        NewIncident {
            title: Title::parse("Check-in delays").unwrap(),
            titles: Titles::new(),
            kind,
            status,
            impact: Impact::Major,
            components: Vec::new(),
            body: Body::single(Locale::english(), "Investigating.").unwrap(),
            author: "ops".into(),
            next_update_due: Some(at("2026-12-03T12:30:00Z")),
            draft,
            broadcast: vec![("log".into(), true)],
            scheduled_for: None,
            scheduled_until: None,
            holding_statement: false,
            remind_before: None,
        }
    }

    fn new_update(change: Change, promise: PromiseEdit) -> NewUpdate {
        NewUpdate {
            expect_count: None,
            change,
            titles: Titles::new(),
            body: Body::single(Locale::english(), "More.").unwrap(),
            author: "ops".into(),
            impact: Some(Impact::Critical),
            promise,
            draft: false,
            broadcast: Vec::new(),
        }
    }

    fn opened() -> Incident {
        let now = at("2026-12-03T12:00:00Z");
        open_incident(
            Ulid::new(),
            Ulid::new(),
            new_incident(IncidentKind::Incident, None, false),
            now,
        )
        .unwrap()
        .0
    }

    #[test]
    fn an_opening_starts_at_the_kinds_first_status_and_refuses_the_other_kinds() {
        let now = at("2026-12-03T12:00:00Z");
        let (id, uid) = (Ulid::new(), Ulid::new());
        let (i, u) = open_incident(
            id,
            uid,
            new_incident(IncidentKind::Incident, None, false),
            now,
        )
        .unwrap();
        assert_eq!(
            (i.id, i.status, i.update_count),
            (id, Status::Investigating, 1)
        );
        assert_eq!(
            (u.id, u.incident_id, u.action),
            (uid, id, UpdateAction::Opened)
        );
        assert_eq!(u.published_at, Some(now));
        assert!(
            i.public.is_some(),
            "a published opening is what the public sees"
        );
        let (m, _) = open_incident(
            id,
            uid,
            new_incident(IncidentKind::Maintenance, None, false),
            now,
        )
        .unwrap();
        assert_eq!(m.status, Status::Scheduled);
        let err = open_incident(
            id,
            uid,
            new_incident(IncidentKind::Incident, Some(Status::Scheduled), false),
            now,
        )
        .unwrap_err();
        assert!(err.to_string().contains("maintenance"), "{err}");
        let (d, u) = open_incident(
            id,
            uid,
            new_incident(IncidentKind::Incident, None, true),
            now,
        )
        .unwrap();
        assert!(d.draft && d.public.is_none() && u.published_at.is_none());
    }

    #[test]
    fn an_update_moves_the_state_machine_the_promise_and_the_timeline_position() {
        let mut i = opened();
        let now = at("2026-12-03T12:10:00Z");
        let (u, promise, before) = apply_update(
            &mut i,
            new_update(Change::Update(Some(Status::Identified)), PromiseEdit::Keep),
            Ulid::new(),
            now,
        )
        .unwrap();
        assert_eq!(
            (i.status, i.impact, i.update_count),
            (Status::Identified, Impact::Critical, 2)
        );
        assert_eq!(
            (u.action, u.status, u.incident_id),
            (UpdateAction::Updated, Status::Identified, i.id)
        );
        assert_eq!(
            (promise, before),
            (PromiseChange::Kept, Some(at("2026-12-03T12:30:00Z")))
        );
        assert_eq!(i.next_update_due, Some(at("2026-12-03T12:30:00Z")));

        let (u, promise, _) = apply_update(
            &mut i,
            new_update(Change::Resolve, PromiseEdit::Keep),
            Ulid::new(),
            now,
        )
        .unwrap();
        assert_eq!(
            (u.action, i.status, i.resolved_at),
            (UpdateAction::Resolved, Status::Resolved, Some(now))
        );
        assert_eq!((promise, i.next_update_due), (PromiseChange::Ended, None));
    }

    #[test]
    fn a_refused_change_leaves_the_incident_as_it_was() {
        let mut i = opened();
        let now = at("2026-12-03T12:10:00Z");
        apply_update(
            &mut i,
            new_update(Change::Resolve, PromiseEdit::Keep),
            Ulid::new(),
            now,
        )
        .unwrap();
        let resolved = i.clone();
        let err = apply_update(
            &mut i,
            new_update(Change::Update(Some(Status::Monitoring)), PromiseEdit::Clear),
            Ulid::new(),
            now,
        )
        .unwrap_err();
        assert!(err.to_string().contains("reopen"), "{err}");
        assert_eq!(i, resolved);
        let (u, _, _) = apply_update(
            &mut i,
            new_update(Change::Reopen, PromiseEdit::Keep),
            Ulid::new(),
            now,
        )
        .unwrap();
        assert_eq!(
            (u.action, i.status, i.update_count),
            (UpdateAction::Reopened, Status::Investigating, 3)
        );
    }
}
