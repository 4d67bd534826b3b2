//! The public pages: the status page (`/`, or `[status_page] path`), the history by month
//! (`/history?month=2026-11`) and one page per incident (`/incidents/{id}`, the `incident.url`
//! messages link to).
//!
//! Only what has been published appears: an incident with only drafts is not found, and of a
//! timeline only the updates with a `published_at` show (drafts and updates awaiting approval
//! have none). Authors never appear. Texts are the update's own in the reader's language, else
//! English, else any language it has (marked with its `lang` so screen readers pronounce it).
//!
//! Each page is built from the store, the settings and an instant by a function of its own
//! ([`status_view`], [`history_view`], [`incident_view`]): the server's handlers and the static
//! copy ([`super::export`]) call the same ones.

use super::lang;
use super::page::{render, render_status, PageLang};
use super::uptime;
use crate::api::AppState;
use crate::domain::IncidentFilter;
use crate::domain::{
    Component, ComponentStatus, Impact, Incident, IncidentKind, Locale, Status, Update,
};
use crate::render::{i18n, Settings};
use crate::store::port::{Components, Incidents};
use crate::store::{Store, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ulid::Ulid;

/// How many days the uptime bars show.
pub const UPTIME_DAYS: u32 = 90;

/// The banner, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Banner {
    Operational,
    Maintenance,
    Degraded,
    Minor,
    Partial,
    Major,
}

impl Banner {
    /// Statuspage's wording for a mix of component statuses: every component in a major outage
    /// is a major system outage; some in a major outage, or all in a partial one, a partial
    /// system outage; some in a partial outage a minor service outage; any degraded a partially
    /// degraded service; maintenance shows only when nothing is broken.
    pub fn of(components: &[Component]) -> Banner {
        use ComponentStatus::*;
        let n = components.len();
        let count = |s: ComponentStatus| components.iter().filter(|c| c.status == s).count();
        let (major, partial) = (count(MajorOutage), count(PartialOutage));
        if n > 0 && major == n {
            Banner::Major
        } else if major > 0 || (n > 0 && partial == n) {
            Banner::Partial
        } else if partial > 0 {
            Banner::Minor
        } else if count(DegradedPerformance) > 0 {
            Banner::Degraded
        } else if count(UnderMaintenance) > 0 {
            Banner::Maintenance
        } else {
            Banner::Operational
        }
    }

    /// Statuspage's page indicator from the worst open incident's impact, in banner terms
    /// (minor: "Minor Service Outage", major: "Partial System Outage", critical: "Major System
    /// Outage"); the page shows the worse of this and the components' mix, so an incident
    /// that names no component still turns the banner.
    pub fn of_impact(impact: Impact) -> Banner {
        match impact {
            Impact::None => Banner::Operational,
            Impact::Minor => Banner::Minor,
            Impact::Major => Banner::Partial,
            Impact::Critical => Banner::Major,
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Banner::Operational => "operational",
            Banner::Maintenance => "maintenance",
            Banner::Degraded => "degraded",
            Banner::Minor => "minor",
            Banner::Partial => "partial",
            Banner::Major => "major",
        }
    }
}

#[derive(Serialize)]
struct Bar {
    level: &'static str,
    text: String,
}

#[derive(Serialize)]
struct ComponentRow {
    name: String,
    status: &'static str,
    label: String,
    uptime: Option<String>,
    bars: Vec<Bar>,
}

#[derive(Serialize)]
struct Group {
    name: String,
    components: Vec<ComponentRow>,
}

#[derive(Serialize)]
struct UpdateRow {
    status_label: &'static str,
    time: String,
    iso: String,
    text: String,
    text_lang: String,
}

#[derive(Serialize)]
struct IncidentRow {
    id: String,
    url: String,
    title: String,
    kind: &'static str,
    impact: &'static str,
    impact_label: &'static str,
    status: &'static str,
    status_label: &'static str,
    created: String,
    created_iso: String,
    updated: String,
    updated_iso: String,
    resolved: Option<String>,
    resolved_iso: Option<String>,
    window_from: Option<String>,
    window_from_iso: Option<String>,
    window_until: Option<String>,
    window_until_iso: Option<String>,
    next_update: Option<String>,
    next_update_iso: Option<String>,
    components: Vec<String>,
    updates: Vec<UpdateRow>,
}

/// The words of one language with `{name}` placeholders filled.
fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut s = template.to_owned();
    for (k, v) in args {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const MONTHS_SV: [&str; 12] = [
    "jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
];

/// A day as a bar's label says it: "1 Dec", "1.12.", "1 dec".
fn short_date(lang: &str, d: NaiveDate) -> String {
    let m = d.month0() as usize;
    match lang {
        "fi" => format!("{}.{}.", d.day(), d.month()),
        "sv" => format!("{} {}", d.day(), MONTHS_SV.get(m).copied().unwrap_or("")),
        _ => format!("{} {}", d.day(), MONTHS_EN.get(m).copied().unwrap_or("")),
    }
}

fn minutes(secs: f64) -> String {
    format!("{}", (secs / 60.0).round() as i64)
}

fn bars(
    history: &[crate::domain::StatusChange],
    tz: Tz,
    now: DateTime<Utc>,
    lang: &str,
    words: &BTreeMap<String, String>,
) -> (Option<String>, Vec<Bar>) {
    let word = |k: &str| words.get(k).cloned().unwrap_or_else(|| k.to_owned());
    let comma = lang != "en";
    let days = uptime::days(history, tz, now, UPTIME_DAYS);
    let bars = days
        .iter()
        .map(|d| {
            let date = short_date(lang, d.date);
            let text = match d.uptime() {
                None => fill(&word("uptime_no_data"), &[("date", &date)]),
                Some(u) => {
                    let mut t = fill(
                        &word("uptime_day"),
                        &[("date", &date), ("pct", &uptime::percent(u, comma))],
                    );
                    if d.major > 0 {
                        t.push_str(&fill(
                            &word("uptime_major"),
                            &[("min", &minutes(d.major as f64))],
                        ));
                    }
                    if d.partial > 0 {
                        t.push_str(&fill(
                            &word("uptime_partial"),
                            &[("min", &minutes(d.partial as f64))],
                        ));
                    }
                    t
                }
            };
            Bar {
                level: uptime::level(d),
                text,
            }
        })
        .collect();
    (
        uptime::total(&days).map(|u| uptime::percent(u, comma)),
        bars,
    )
}

/// Components grouped in the order groups first appear; ungrouped ones last, under "Other"
/// when there are groups at all.
fn groups(
    components: &[Component],
    history: &BTreeMap<String, Vec<crate::domain::StatusChange>>,
    tz: Tz,
    now: DateTime<Utc>,
    lang: &str,
    words: &BTreeMap<String, String>,
) -> Vec<Group> {
    let word = |k: &str| words.get(k).cloned().unwrap_or_else(|| k.to_owned());
    let mut out: Vec<Group> = Vec::new();
    let mut loose = Vec::new();
    for c in components {
        // A component from before history was recorded has had its status since it last
        // changed.
        let fallback = [crate::domain::StatusChange {
            at: c.updated_at,
            status: c.status,
        }];
        let h = history
            .get(c.name.as_str())
            .map_or(&fallback[..], Vec::as_slice);
        let (uptime, bars) = bars(h, tz, now, lang, words);
        let row = ComponentRow {
            name: c.name.to_string(),
            status: c.status.as_str(),
            label: word(c.status.as_str()),
            uptime,
            bars,
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

/// The language a text is actually in: the reader's if the update has it, else the fallback's.
fn text_lang(u: &Update, locale: &Locale) -> String {
    let texts = u.body.texts();
    if texts.contains_key(locale) {
        return locale.as_str().to_owned();
    }
    if texts.contains_key(&Locale::english()) {
        return "en".into();
    }
    texts
        .keys()
        .next()
        .map_or_else(|| "en".into(), |l| l.as_str().to_owned())
}

fn incident_row(i: &Incident, updates: &[Update], tz: Tz, locale: &Locale) -> IncidentRow {
    let time = |t: DateTime<Utc>| i18n::format_time(t, tz, locale);
    let mut shown_updates: Vec<UpdateRow> = updates
        .iter()
        .filter(|u| super::public::is_published(u))
        .map(|u| {
            let at = u.published_at.unwrap_or(u.created_at);
            UpdateRow {
                status_label: i18n::status_label(u.status, locale),
                time: time(at),
                iso: at.to_rfc3339(),
                text: u.body.text_for(locale).to_owned(),
                text_lang: text_lang(u, locale),
            }
        })
        .collect();
    shown_updates.reverse();
    IncidentRow {
        id: i.id.to_string(),
        url: format!("/incidents/{}", i.id),
        title: i.title_for(locale).as_str().to_owned(),
        kind: match i.kind {
            IncidentKind::Incident => "incident",
            IncidentKind::Maintenance => "maintenance",
        },
        impact: i.impact.as_str(),
        impact_label: i18n::impact_label(i.impact, locale),
        status: i.status.as_str(),
        status_label: i18n::status_label(i.status, locale),
        created: time(i.created_at),
        created_iso: i.created_at.to_rfc3339(),
        updated: time(i.updated_at),
        updated_iso: i.updated_at.to_rfc3339(),
        resolved: i.resolved_at.map(time),
        resolved_iso: i.resolved_at.map(|t| t.to_rfc3339()),
        window_from: i.scheduled_for.map(time),
        window_from_iso: i.scheduled_for.map(|t| t.to_rfc3339()),
        window_until: i.scheduled_until.map(time),
        window_until_iso: i.scheduled_until.map(|t| t.to_rfc3339()),
        next_update: i.next_update_due.map(time),
        next_update_iso: i.next_update_due.map(|t| t.to_rfc3339()),
        components: i.components.iter().map(|c| c.to_string()).collect(),
        updates: shown_updates,
    }
}

/// The status page's data.
pub async fn status_view(
    store: &Store,
    settings: &Settings,
    now: DateTime<Utc>,
    lang: PageLang,
) -> Result<Value, StoreError> {
    let locale: Locale = lang::locale(lang.0);
    let words = lang::words(lang.0);
    let tz = settings.timezone;
    let components = store.components().await?;
    let open = store
        .incidents(&IncidentFilter {
            open: Some(true),
            published_only: true,
            limit: 500,
            ..Default::default()
        })
        .await?;
    let mut banner = Banner::of(&components);
    let (mut incidents, mut active, mut upcoming) = (Vec::new(), Vec::new(), Vec::new());
    for i in open {
        let (_, updates) = store.incident(i.id).await?;
        let row = incident_row(&i, &updates, tz, &locale);
        match (i.kind, i.status) {
            (IncidentKind::Incident, _) => {
                banner = banner.max(Banner::of_impact(i.impact));
                incidents.push(row);
            }
            (IncidentKind::Maintenance, Status::Scheduled) => upcoming.push(row),
            (IncidentKind::Maintenance, _) => {
                banner = banner.max(Banner::Maintenance);
                active.push(row);
            }
        }
    }
    // Upcoming maintenance soonest first.
    upcoming.sort_by(|a, b| a.window_from_iso.cmp(&b.window_from_iso));
    let since = uptime::day_start(tz, now.with_timezone(&tz).date_naive())
        - Duration::days(i64::from(UPTIME_DAYS));
    let history = store.component_history(since).await?;
    let banner_text = words
        .get(&format!("banner_{}", banner.class()))
        .cloned()
        .unwrap_or_default();
    Ok(context! {
        banner => context! { class => banner.class(), text => banner_text },
        incidents => incidents,
        maintenance_active => active,
        maintenance_upcoming => upcoming,
        groups => groups(&components, &history, tz, now, lang.0, &words),
        uptime_days => UPTIME_DAYS,
    })
}

/// A month of the history: `YYYY-MM`.
pub fn parse_month(s: &str) -> Option<NaiveDate> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

fn month_name(words: &BTreeMap<String, String>, d: NaiveDate) -> String {
    let m = words
        .get(&format!("month_{}", d.month()))
        .cloned()
        .unwrap_or_else(|| d.month().to_string());
    format!("{m} {}", d.year())
}

/// The history page's data for the month starting `month` (its first day); incidents and
/// maintenance that started that month in the organisation's zone, newest first.
pub async fn history_view(
    store: &Store,
    settings: &Settings,
    now: DateTime<Utc>,
    lang: PageLang,
    month: NaiveDate,
) -> Result<Value, StoreError> {
    let locale: Locale = lang::locale(lang.0);
    let words = lang::words(lang.0);
    let tz = settings.timezone;
    let from = uptime::day_start(tz, month);
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(month);
    let until = uptime::day_start(tz, next);
    let all = store
        .incidents(&IncidentFilter {
            published_only: true,
            limit: usize::MAX,
            ..Default::default()
        })
        .await?;
    let mut rows = Vec::new();
    for i in all
        .into_iter()
        .filter(|i| i.created_at >= from && i.created_at < until)
    {
        let (_, updates) = store.incident(i.id).await?;
        rows.push(incident_row(&i, &updates, tz, &locale));
    }
    let this_month = now
        .with_timezone(&tz)
        .date_naive()
        .with_day(1)
        .unwrap_or(month);
    let prev = month.checked_sub_months(chrono::Months::new(1));
    let link = |d: NaiveDate| format!("/history?month={}", d.format("%Y-%m"));
    Ok(context! {
        month => month_name(&words, month),
        month_iso => month.format("%Y-%m").to_string(),
        incidents => rows,
        previous => prev.map(link),
        previous_name => prev.map(|d| month_name(&words, d)),
        next => (next <= this_month).then(|| link(next)),
        next_name => (next <= this_month).then(|| month_name(&words, next)),
    })
}

/// One incident's page data, or `None` when it does not exist or nothing of it is published.
pub async fn incident_view(
    store: &Store,
    settings: &Settings,
    lang: PageLang,
    id: Ulid,
) -> Result<Option<Value>, StoreError> {
    let locale: Locale = lang::locale(lang.0);
    let (incident, updates) = match store.incident(id).await {
        Ok(v) => v,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(public) = incident.public_view() else {
        return Ok(None);
    };
    let row = incident_row(&public, &updates, settings.timezone, &locale);
    Ok(Some(context! { incident => row }))
}

fn unavailable(e: &StoreError) -> Response {
    tracing::error!(error = %e, "a public page could not read the store");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The status page cannot read its data right now; try again in a minute.",
    )
        .into_response()
}

/// The page in the reader's language saying there is nothing here.
pub fn not_found(state: &AppState, lang: PageLang) -> Response {
    let words = lang::words(lang.0);
    let w = |k: &str| words.get(k).cloned().unwrap_or_default();
    render_status(
        state,
        lang,
        "error.html",
        context! { heading => w("not_found"), text => w("not_found_text") },
        StatusCode::NOT_FOUND,
    )
}

enum PageError {
    Store(StoreError),
    Render(minijinja::Error),
}

/// `GET /` (or the configured path), from the render cache ([`super::cache`]).
pub async fn page(State(state): State<AppState>, lang: PageLang) -> Response {
    // Read before rendering: a write after this point moves it and the next reader renders.
    let generation = match state.store.public_generation().await {
        Ok(g) => g,
        Err(e) => return unavailable(&e),
    };
    let now = state.dispatcher.now();
    let rendered = state
        .render
        .page
        .cache
        .get_or_render(lang.0, generation, now.timestamp(), || async {
            let v = status_view(&state.store, &state.render, now, lang)
                .await
                .map_err(PageError::Store)?;
            super::page::render_html(&state.render, lang, "status.html", v)
                .map_err(PageError::Render)
        })
        .await;
    match rendered {
        Ok(p) => {
            let mut res = (
                [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                p.html,
            )
                .into_response();
            let h = res.headers_mut();
            h.insert(
                axum::http::header::VARY,
                axum::http::HeaderValue::from_static("Accept-Language"),
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&p.etag) {
                h.insert(axum::http::header::ETAG, v);
            }
            res
        }
        Err(PageError::Store(e)) => unavailable(&e),
        Err(PageError::Render(e)) => {
            tracing::error!(error = %e, "the status page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be shown; the server log says why.",
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    month: Option<String>,
}

/// `GET /history?month=YYYY-MM` (default: this month in the organisation's zone).
pub async fn history(
    State(state): State<AppState>,
    lang: PageLang,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let now = state.dispatcher.now();
    let month = match q.month.as_deref() {
        None => now
            .with_timezone(&state.render.timezone)
            .date_naive()
            .with_day(1),
        Some(m) => parse_month(m),
    };
    let Some(month) = month else {
        let words = lang::words(lang.0);
        let w = |k: &str| words.get(k).cloned().unwrap_or_default();
        return render_status(
            &state,
            lang,
            "error.html",
            context! { heading => w("bad_month_heading"), text => w("bad_month") },
            StatusCode::BAD_REQUEST,
        );
    };
    match history_view(&state.store, &state.render, now, lang, month).await {
        Ok(v) => render(&state, lang, "history.html", v),
        Err(e) => unavailable(&e),
    }
}

/// `GET /incidents/{id}`: the permalink messages link to.
pub async fn incident(
    State(state): State<AppState>,
    lang: PageLang,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<Ulid>() else {
        return not_found(&state, lang);
    };
    match incident_view(&state.store, &state.render, lang, id).await {
        Ok(Some(v)) => render(&state, lang, "incident.html", v),
        Ok(None) => not_found(&state, lang),
        Err(e) => unavailable(&e),
    }
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
        // Some partial: minor; all partial: partial; some major: partial; all major: major.
        assert_eq!(
            Banner::of(&[c(PartialOutage), c(Operational)]),
            Banner::Minor
        );
        assert_eq!(
            Banner::of(&[c(PartialOutage), c(PartialOutage)]),
            Banner::Partial
        );
        assert_eq!(Banner::of(&[c(MajorOutage), c(MajorOutage)]), Banner::Major);
        assert_eq!(Banner::of_impact(Impact::Minor), Banner::Minor);
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
            Banner::Minor
        );
        assert_eq!(
            Banner::of(&[c(PartialOutage), c(MajorOutage), c(Operational)]),
            Banner::Partial
        );
    }
}
