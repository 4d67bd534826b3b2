//! The incident aggregates of the port: incidents and their updates (the timeline, drafts,
//! publishing) and components with their history.
//!
//! One write of each kind is what a backend implements: opening an incident
//! ([`Incidents::create_incident_decided`]), appending to its timeline
//! ([`Incidents::append_update_setting`]) and publishing its drafts
//! ([`Incidents::publish_drafts_decided`]), each taking everything such a write may carry (the
//! component statuses it sets, the approval it releases). The narrower forms callers use
//! (`create_incident`, `append_update`, …) are provided methods, written once here in terms of
//! those, so a second backend cannot make them disagree. The business rules of each write are
//! the domain's (`domain::open_incident`, `domain::apply_update`), applied by the backend under
//! its own lock on the incident, so two concurrent updates cannot both pass a check the other
//! invalidates. Components are a trait of their own: they change on their own
//! ([`Components::set_component`]) as well as with an incident's writes, and the public pages
//! read them with their history.

use crate::domain::{
    Appended, Component, ComponentName, ComponentStatus, Decision, Incident, IncidentFilter,
    NewIncident, NewUpdate, StatusChange, Update,
};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::future::Future;
use ulid::Ulid;

/// Incidents (and maintenances) with their timelines. Every write is durable before its future
/// resolves, and writes the change and the request's audit entry (armed by the handler, see
/// `store::audit`) in one commit: after a crash both are there or neither.
pub trait Incidents: Sync {
    /// Opens incident `id` with its first update, setting the components' `statuses` and
    /// releasing the approval `decision` names (refused as a conflict when it was decided
    /// already) in the same write. Refuses unknown components (the incident's and those in
    /// `statuses`), an id that exists already (a conflict), and statuses on a draft. Returns the
    /// incident, its opening update and each component change (`name: before → after`).
    fn create_incident_decided(
        &self,
        id: Ulid,
        new: NewIncident,
        statuses: &[(ComponentName, ComponentStatus)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> impl Future<Output = Result<(Incident, Update, Vec<String>), StoreError>> + Send;

    /// Appends an update (or a resolve / reopen) to incident `id`, applying
    /// `domain::apply_update` to the incident as stored under the incident's write lock, and sets
    /// the components' `statuses` and releases the approval `decision` names in the same write.
    /// A draft update sets no component. Says what the update did to the incident's promise.
    fn append_update_setting(
        &self,
        id: Ulid,
        new: NewUpdate,
        statuses: &[(ComponentName, ComponentStatus)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send;

    /// Publishes every draft update of incident `id` (sets `published_at`; the content is
    /// untouched), queueing `broadcast` for each, and releases the approval `decision` names in
    /// the same write. Refuses (a conflict) an incident without unpublished drafts. Returns the
    /// incident and the updates published.
    fn publish_drafts_decided(
        &self,
        id: Ulid,
        broadcast: &[(String, bool)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> impl Future<Output = Result<(Incident, Vec<Update>), StoreError>> + Send;

    /// An incident's current state, without its timeline.
    fn incident_summary(
        &self,
        id: Ulid,
    ) -> impl Future<Output = Result<Incident, StoreError>> + Send;

    /// One incident with its timeline, oldest update first, read from one state of the store.
    fn incident(
        &self,
        id: Ulid,
    ) -> impl Future<Output = Result<(Incident, Vec<Update>), StoreError>> + Send;

    /// Incidents matching `filter` (`IncidentFilter::view` decides), newest first, at most
    /// `filter.limit`.
    fn incidents(
        &self,
        filter: &IncidentFilter,
    ) -> impl Future<Output = Result<Vec<Incident>, StoreError>> + Send;

    /// Opens an incident under a new id ([`Incidents::create_incident_decided`], no component
    /// set, no approval).
    fn create_incident(
        &self,
        new: NewIncident,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(Incident, Update), StoreError>> + Send {
        self.create_incident_with_id(Ulid::new(), new, now)
    }

    /// Opens an incident under an id the caller chose beforehand (monitoring intake records the
    /// id in its alert group first, so a crash in between cannot open a second incident).
    fn create_incident_with_id(
        &self,
        id: Ulid,
        new: NewIncident,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(Incident, Update), StoreError>> + Send {
        async move {
            self.create_incident_decided(id, new, &[], now, None)
                .await
                .map(|(i, u, _)| (i, u))
        }
    }

    /// Appends an update ([`Incidents::append_update_setting`], no component set, no approval).
    fn append_update(
        &self,
        id: Ulid,
        new: NewUpdate,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(Incident, Update), StoreError>> + Send {
        async move {
            self.append_update_reported(id, new, now)
                .await
                .map(|a| (a.incident, a.update))
        }
    }

    /// [`Incidents::append_update`], also saying what the update did to the incident's promise
    /// (decided under the write lock, from the promise that stood then).
    fn append_update_reported(
        &self,
        id: Ulid,
        new: NewUpdate,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send {
        self.append_update_decided(id, new, now, None)
    }

    /// [`Incidents::append_update_reported`], releasing an approval in the same write.
    fn append_update_decided(
        &self,
        id: Ulid,
        new: NewUpdate,
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send {
        self.append_update_setting(id, new, &[], now, decision)
    }

    /// Publishes every draft update ([`Incidents::publish_drafts_decided`], no approval).
    fn publish_drafts(
        &self,
        id: Ulid,
        broadcast: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(Incident, Vec<Update>), StoreError>> + Send {
        self.publish_drafts_decided(id, broadcast, now, None)
    }
}

/// Components (the parts of a service the status page lists) and the history of their statuses.
/// Writes are durable before their future resolves; a status change and its history record are
/// one commit, so the uptime bars never miss a change the page showed.
pub trait Components {
    /// Creates or changes a component (a `None` group keeps the stored one), recording a new
    /// status in its history, with the request's audit entry (`before → after`). Returns the
    /// component as stored.
    fn set_component(
        &self,
        name: ComponentName,
        status: ComponentStatus,
        group: Option<String>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Component, StoreError>> + Send;

    /// After `incident` was resolved (or completed): puts each of its components that is not
    /// operational back to operational, unless another open incident still affects it. A
    /// component changed concurrently by someone else is left alone. Returns the names restored.
    fn restore_components(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<ComponentName>, StoreError>> + Send;

    /// Every component, by name.
    fn components(&self) -> impl Future<Output = Result<Vec<Component>, StoreError>> + Send;

    /// Refuses (`DomainError::UnknownComponent`, naming it) the first of `names` that is not a
    /// component.
    fn check_components(
        &self,
        names: &[ComponentName],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every component's status changes that matter from `since` on, by name: the last one at
    /// or before `since` (the status the window starts with) and every later one, oldest first.
    fn component_history(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<StatusChange>>, StoreError>> + Send;

    /// A number that changes after every write the public pages show (incidents, their updates,
    /// components). A page made after reading generation `g` shows at least everything written
    /// before `g`, so a cache keyed by it is never stale for a finished write.
    fn public_generation(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The handle dispatches each method to the open backend (the narrower forms are the trait's).
impl Incidents for Store {
    async fn create_incident_decided(
        &self,
        id: Ulid,
        new: NewIncident,
        statuses: &[(ComponentName, ComponentStatus)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> Result<(Incident, Update, Vec<String>), StoreError> {
        match self {
            Store::Sled(s) => {
                s.create_incident_decided(id, new, statuses, now, decision)
                    .await
            }
            Store::Pg(p) => {
                p.create_incident_decided(id, new, statuses, now, decision)
                    .await
            }
        }
    }

    async fn append_update_setting(
        &self,
        id: Ulid,
        new: NewUpdate,
        statuses: &[(ComponentName, ComponentStatus)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> Result<Appended, StoreError> {
        match self {
            Store::Sled(s) => {
                s.append_update_setting(id, new, statuses, now, decision)
                    .await
            }
            Store::Pg(p) => {
                p.append_update_setting(id, new, statuses, now, decision)
                    .await
            }
        }
    }

    async fn publish_drafts_decided(
        &self,
        id: Ulid,
        broadcast: &[(String, bool)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> Result<(Incident, Vec<Update>), StoreError> {
        match self {
            Store::Sled(s) => s.publish_drafts_decided(id, broadcast, now, decision).await,
            Store::Pg(p) => p.publish_drafts_decided(id, broadcast, now, decision).await,
        }
    }

    async fn incident_summary(&self, id: Ulid) -> Result<Incident, StoreError> {
        match self {
            Store::Sled(s) => s.incident_summary(id).await,
            Store::Pg(p) => p.incident_summary(id).await,
        }
    }

    async fn incident(&self, id: Ulid) -> Result<(Incident, Vec<Update>), StoreError> {
        match self {
            Store::Sled(s) => s.incident(id).await,
            Store::Pg(p) => p.incident(id).await,
        }
    }

    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        match self {
            Store::Sled(s) => s.incidents(filter).await,
            Store::Pg(p) => p.incidents(filter).await,
        }
    }
}

impl Components for Store {
    async fn set_component(
        &self,
        name: ComponentName,
        status: ComponentStatus,
        group: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Component, StoreError> {
        match self {
            Store::Sled(s) => s.set_component(name, status, group, now).await,
            Store::Pg(p) => p.set_component(name, status, group, now).await,
        }
    }

    async fn restore_components(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
    ) -> Result<Vec<ComponentName>, StoreError> {
        match self {
            Store::Sled(s) => s.restore_components(incident, now).await,
            Store::Pg(p) => p.restore_components(incident, now).await,
        }
    }

    async fn components(&self) -> Result<Vec<Component>, StoreError> {
        match self {
            Store::Sled(s) => s.components().await,
            Store::Pg(p) => p.components().await,
        }
    }

    async fn check_components(&self, names: &[ComponentName]) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.check_components(names).await,
            Store::Pg(p) => p.check_components(names).await,
        }
    }

    async fn component_history(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Vec<StatusChange>>, StoreError> {
        match self {
            Store::Sled(s) => s.component_history(since).await,
            Store::Pg(p) => p.component_history(since).await,
        }
    }

    async fn public_generation(&self) -> Result<u64, StoreError> {
        match self {
            Store::Sled(s) => s.public_generation().await,
            Store::Pg(p) => p.public_generation().await,
        }
    }
}
