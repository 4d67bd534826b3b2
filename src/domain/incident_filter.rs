//! Which incidents a listing shows: the filter of `GET /api/v1/incidents`, the status page and
//! the feeds, and the one rule that applies it ([`IncidentFilter::view`]), so every backend
//! lists the same incidents for the same filter.

use super::{ComponentName, Impact, Incident, IncidentKind, Status};

/// Filters for listing incidents; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub open: Option<bool>,
    pub kind: Option<IncidentKind>,
    pub status: Option<Status>,
    pub impact: Option<Impact>,
    pub component: Option<ComponentName>,
    /// Only incidents with at least one published update, each as the public sees it (the
    /// state of its last published update; filters apply to that state).
    pub published_only: bool,
    pub limit: usize,
}

impl IncidentFilter {
    /// `incident` as this listing shows it, or `None` when the filter leaves it out. A public
    /// listing (`published_only`) shows each incident as its last published update left it, and
    /// filters that state. (`limit` is the caller's: it counts what this returns.)
    pub fn view(&self, incident: Incident) -> Option<Incident> {
        let i = match self.published_only {
            true => incident.public_view()?,
            false => incident,
        };
        let keep = self.open.is_none_or(|o| i.is_open() == o)
            && self.kind.is_none_or(|k| i.kind == k)
            && self.status.is_none_or(|s| i.status == s)
            && self.impact.is_none_or(|m| i.impact == m)
            && self
                .component
                .as_ref()
                .is_none_or(|c| i.components.contains(c));
        keep.then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{open_incident, Body, Locale, NewIncident, Title, Titles};
    use chrono::Utc;
    use ulid::Ulid;

    fn incident(draft: bool, components: &[&str]) -> Incident {
        let new = NewIncident {
            title: Title::parse("Outage").unwrap(),
            titles: Titles::new(),
            kind: IncidentKind::Incident,
            status: None,
            impact: Impact::Minor,
            components: components
                .iter()
                .map(|c| ComponentName::parse(c).unwrap())
                .collect(),
            body: Body::single(Locale::english(), "x").unwrap(),
            author: "ops".into(),
            next_update_due: None,
            draft,
            broadcast: Vec::new(),
            scheduled_for: None,
            scheduled_until: None,
            holding_statement: false,
            remind_before: None,
        };
        open_incident(Ulid::new(), Ulid::new(), new, Utc::now())
            .unwrap()
            .0
    }

    #[test]
    fn every_field_filters_and_a_public_listing_shows_only_what_was_published() {
        let all = IncidentFilter::default();
        let api = incident(false, &["API"]);
        assert!(all.view(api.clone()).is_some());
        assert!(all.view(incident(true, &[])).is_some());
        let public = IncidentFilter {
            published_only: true,
            ..Default::default()
        };
        assert!(public.view(incident(true, &[])).is_none());
        assert_eq!(public.view(api.clone()).unwrap().id, api.id);
        let closed = IncidentFilter {
            open: Some(false),
            ..Default::default()
        };
        assert!(closed.view(api.clone()).is_none());
        let web = IncidentFilter {
            component: Some(ComponentName::parse("Web").unwrap()),
            ..Default::default()
        };
        assert!(web.view(api.clone()).is_none());
        assert!(web.view(incident(false, &["API", "Web"])).is_some());
        let major = IncidentFilter {
            impact: Some(Impact::Major),
            ..Default::default()
        };
        assert!(major.view(api.clone()).is_none());
        let identified = IncidentFilter {
            status: Some(Status::Identified),
            kind: Some(IncidentKind::Incident),
            ..Default::default()
        };
        assert!(identified.view(api).is_none());
    }
}
