//! The public status page at `/`: the overall banner in Statuspage's wording, the open
//! incidents with their latest published words in the reader's language, and the components by
//! group. Only what has been published appears: drafts never do (the store's public view).

use super::lang;
use super::page::{render, PageLang};
use crate::api::AppState;
use crate::domain::{Component, ComponentStatus, Locale};
use crate::render::i18n;
use crate::store::IncidentFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Serialize;

/// The banner: a CSS class and the words for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Banner {
    Operational,
    Maintenance,
    Degraded,
    Partial,
    Major,
}

impl Banner {
    /// The worst status among the components decides, as on Statuspage; maintenance shows only
    /// when nothing is broken.
    pub fn of(components: &[Component]) -> Banner {
        components
            .iter()
            .map(|c| match c.status {
                ComponentStatus::Operational => Banner::Operational,
                ComponentStatus::UnderMaintenance => Banner::Maintenance,
                ComponentStatus::DegradedPerformance => Banner::Degraded,
                ComponentStatus::PartialOutage => Banner::Partial,
                ComponentStatus::MajorOutage => Banner::Major,
            })
            .max_by_key(|b| *b as u8)
            .unwrap_or(Banner::Operational)
    }

    fn class(self) -> &'static str {
        match self {
            Banner::Operational => "operational",
            Banner::Maintenance => "maintenance",
            Banner::Degraded => "degraded",
            Banner::Partial => "partial",
            Banner::Major => "major",
        }
    }
}

#[derive(Serialize)]
struct ComponentRow {
    name: String,
    status: &'static str,
    label: String,
}

#[derive(Serialize)]
struct Group {
    name: String,
    components: Vec<ComponentRow>,
}

#[derive(Serialize)]
struct IncidentRow {
    title: String,
    impact: &'static str,
    impact_label: &'static str,
    status_label: &'static str,
    updated: String,
    updated_iso: String,
    text: Option<String>,
    next_update: Option<String>,
    next_update_iso: Option<String>,
}

/// Components grouped in the order groups first appear; ungrouped ones last, under "Other"
/// when there are groups at all.
fn groups(
    components: &[Component],
    words: &std::collections::BTreeMap<String, String>,
) -> Vec<Group> {
    let word = |k: &str| words.get(k).cloned().unwrap_or_else(|| k.to_owned());
    let mut out: Vec<Group> = Vec::new();
    let mut loose = Vec::new();
    for c in components {
        let row = ComponentRow {
            name: c.name.to_string(),
            status: c.status.as_str(),
            label: word(c.status.as_str()),
        };
        match &c.group {
            Some(g) => match out.iter_mut().find(|x| &x.name == g) {
                Some(x) => x.components.push(row),
                None => out.push(Group {
                    name: g.clone(),
                    components: vec![row],
                }),
            },
            None => loose.push(row),
        }
    }
    if !loose.is_empty() {
        let name = if out.is_empty() {
            String::new()
        } else {
            word("other")
        };
        out.push(Group {
            name,
            components: loose,
        });
    }
    out
}

/// `GET /`.
pub async fn page(State(state): State<AppState>, lang: PageLang) -> Response {
    match build(&state, lang) {
        Ok(v) => render(&state, lang, "status.html", v),
        Err(e) => {
            tracing::error!(error = %e, "the status page could not read the store");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The status page cannot read its data right now; try again in a minute.",
            )
                .into_response()
        }
    }
}

fn build(state: &AppState, lang: PageLang) -> Result<minijinja::Value, crate::store::StoreError> {
    let locale: Locale = lang::locale(lang.0);
    let words = lang::words(lang.0);
    let tz = state.render.timezone;
    let components = state.store.components()?;
    let banner = Banner::of(&components);
    let open = state.store.incidents(&IncidentFilter {
        open: Some(true),
        published_only: true,
        limit: 100,
        ..Default::default()
    })?;
    let mut incidents = Vec::with_capacity(open.len());
    for i in open {
        let (_, updates) = state.store.incident(i.id)?;
        let text = updates
            .iter()
            .rev()
            // A draft published later keeps `draft` set; `published_at` says it is public.
            .find(|u| u.published_at.is_some())
            .map(|u| u.body.text_for(&locale).to_owned());
        incidents.push(IncidentRow {
            title: i.title_for(&locale).as_str().to_owned(),
            impact: i.impact.as_str(),
            impact_label: i18n::impact_label(i.impact, &locale),
            status_label: i18n::status_label(i.status, &locale),
            updated: i18n::format_time(i.updated_at, tz, &locale),
            updated_iso: i.updated_at.to_rfc3339(),
            text,
            next_update: i.next_update_due.map(|t| i18n::format_time(t, tz, &locale)),
            next_update_iso: i.next_update_due.map(|t| t.to_rfc3339()),
        });
    }
    let banner_text = words
        .get(&format!("banner_{}", banner.class()))
        .cloned()
        .unwrap_or_default();
    Ok(context! {
        banner => context! { class => banner.class(), text => banner_text },
        incidents => incidents,
        groups => groups(&components, &words),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ComponentName;
    use chrono::Utc;

    fn c(status: ComponentStatus) -> Component {
        Component {
            name: ComponentName::parse("x").unwrap(),
            group: None,
            status,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn the_worst_component_decides_the_banner() {
        use ComponentStatus::*;
        assert_eq!(Banner::of(&[]), Banner::Operational);
        assert_eq!(Banner::of(&[c(Operational)]), Banner::Operational);
        assert_eq!(
            Banner::of(&[c(Operational), c(UnderMaintenance)]),
            Banner::Maintenance
        );
        assert_eq!(
            Banner::of(&[c(UnderMaintenance), c(DegradedPerformance)]),
            Banner::Degraded
        );
        assert_eq!(
            Banner::of(&[c(PartialOutage), c(DegradedPerformance)]),
            Banner::Partial
        );
        assert_eq!(
            Banner::of(&[c(PartialOutage), c(MajorOutage), c(Operational)]),
            Banner::Major
        );
    }
}
