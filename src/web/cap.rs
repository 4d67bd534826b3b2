//! Every published public update as an OASIS CAP 1.2 alert at `/cap/{id}.xml`, and the
//! `/cap.atom` index that links each with `type="application/cap+xml"` (the OASIS "CAP Feeds"
//! practice), for national alerting systems and aggregators such as Google Public Alerts.
//!
//! One incident is one chain of messages: its first published update is an `Alert`, every later
//! one an `Update` whose `references` name all earlier messages of the chain (`sender,identifier,
//! sent` triples, space-separated), and its resolution (or a maintenance's completion) a `Cancel`;
//! a reopening after it is an `Update` again. Each message has one `info` per language the update
//! is written in. Elements follow the order of the OASIS CAP 1.2 XSD; `sent` and `expires` carry a
//! numeric offset and no fractional seconds, as its pattern demands. The mapping of an impact to
//! category, urgency, severity and certainty comes from `[cap]` (docs/FEEDS.md).

use super::documents::{DocError, NamedDocument};
use super::feeds::{tag, FEED_LIMIT};
use super::lang;
use super::public::Public;
use super::public::{self, rfc3339, shown_at, ulid_id, PublicIncident};
use super::xml::{element, escape};
use crate::domain::IncidentFilter;
use crate::domain::{IncidentKind, Locale, Status, Update, UpdateAction};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub const CAP_TYPE: &str = "application/cap+xml";

/// CAP's `msgType` of each message of a chain, from what each update did.
pub fn msg_types(updates: &[(UpdateAction, Status)]) -> Vec<&'static str> {
    updates
        .iter()
        .enumerate()
        .map(|(n, (action, status))| {
            if n == 0 {
                "Alert"
            } else if *action == UpdateAction::Resolved || status.is_final() {
                "Cancel"
            } else {
                "Update"
            }
        })
        .collect()
}

/// The CAP identifier of an update: its incident's id and its own, lower case.
pub fn identifier(incident: ulid::Ulid, update: ulid::Ulid) -> String {
    format!("{}-{}", ulid_id(incident), ulid_id(update))
}

/// A CAP date-time: the organisation's zone, a numeric offset, no fractional seconds.
pub fn cap_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The `sender`: `[cap] sender`, else the host of `public_url`.
fn sender(state: &Public<'_>) -> String {
    state
        .public
        .cap_sender
        .clone()
        .unwrap_or_else(|| public::host(state))
}

/// The `sender,identifier,sent` triple of each message of an incident's chain.
fn triples(state: &Public<'_>, p: &PublicIncident) -> Vec<String> {
    let sender = sender(state);
    p.updates
        .iter()
        .map(|u| {
            format!(
                "{sender},{},{}",
                identifier(p.incident.id, u.id),
                cap_time(shown_at(u), state.render.timezone)
            )
        })
        .collect()
}

fn headline(title: &str) -> String {
    // CAP 1.2 §3.2.2: a headline SHOULD be under 160 characters.
    if title.chars().count() <= 160 {
        return title.to_owned();
    }
    let mut h: String = title.chars().take(159).collect();
    h.push('…');
    h
}

fn words_for(locale: &Locale) -> std::collections::BTreeMap<String, String> {
    lang::words(locale.as_str().split('-').next().unwrap_or("en"))
}

/// The alert for update number `n` (0-based among the published ones) of `p`.
pub fn alert(state: &Public<'_>, p: &PublicIncident, n: usize) -> Option<String> {
    let u: &Update = p.updates.get(n)?;
    let tz = state.render.timezone;
    let kinds: Vec<(UpdateAction, Status)> =
        p.updates.iter().map(|u| (u.action, u.status)).collect();
    let msg_type = *msg_types(&kinds).get(n)?;
    let triples = triples(state, p);
    let sent_at = shown_at(u);
    let sent = cap_time(sent_at, tz);
    let expires_after = chrono::Duration::from_std(state.public.cap_expires_after)
        .unwrap_or(chrono::Duration::hours(24));
    let expires = cap_time(sent_at + expires_after, tz);
    let mapping = state.public.cap_for(p.incident.impact);
    let urgency = if u.status.is_final() {
        "Past"
    } else if u.status == Status::Scheduled {
        "Future"
    } else {
        mapping.urgency
    };
    let base = public::base(state);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\n");
    element(&mut x, "identifier", &identifier(p.incident.id, u.id));
    element(&mut x, "sender", &sender(state));
    element(&mut x, "sent", &sent);
    element(&mut x, "status", "Actual");
    element(&mut x, "msgType", msg_type);
    element(&mut x, "scope", "Public");
    if n > 0 {
        element(&mut x, "references", &triples[..n].join(" "));
    }
    for (locale, text) in u.body.texts() {
        let words = words_for(locale);
        let event_key = match p.incident.kind {
            IncidentKind::Incident => "cap_event_incident",
            IncidentKind::Maintenance => "cap_event_maintenance",
        };
        x.push_str("<info>\n");
        element(&mut x, "language", locale.as_str());
        element(&mut x, "category", mapping.category);
        element(
            &mut x,
            "event",
            words.get(event_key).map_or(event_key, String::as_str),
        );
        element(&mut x, "urgency", urgency);
        element(&mut x, "severity", mapping.severity);
        element(&mut x, "certainty", mapping.certainty);
        if let Some(start) = p.incident.scheduled_for {
            element(&mut x, "onset", &cap_time(start, tz));
        }
        element(&mut x, "expires", &expires);
        element(&mut x, "senderName", &state.render.org_name);
        element(&mut x, "headline", &headline(p.incident.title.as_str()));
        element(&mut x, "description", text);
        if !base.is_empty() {
            element(&mut x, "web", &public::permalink(state, p.incident.id));
        }
        if let Some(c) = &state.public.cap_contact {
            element(&mut x, "contact", c);
        }
        x.push_str("<area>\n");
        element(&mut x, "areaDesc", &state.public.cap_area);
        x.push_str("</area>\n</info>\n");
    }
    x.push_str("</alert>\n");
    Some(x)
}

/// `GET /cap/{id}.xml` as a document: the alert named by `file` (`<incident>-<update>.xml`), or
/// `None` when there is no such published update.
pub async fn alert_file(state: &Public<'_>, file: &str) -> Result<Option<Vec<u8>>, DocError> {
    let Some(stem) = file.strip_suffix(".xml") else {
        return Ok(None);
    };
    let Some((incident, update)) = stem.split_once('-') else {
        return Ok(None);
    };
    let (Ok(incident), Ok(update)) = (
        ulid::Ulid::from_string(&incident.to_ascii_uppercase()),
        ulid::Ulid::from_string(&update.to_ascii_uppercase()),
    ) else {
        return Ok(None);
    };
    let Some(p) = public::incident_by_id(state, incident).await? else {
        return Ok(None);
    };
    let Some(n) = p.updates.iter().position(|u| u.id == update) else {
        return Ok(None);
    };
    Ok(alert(state, &p, n).map(String::into_bytes))
}

async fn recent(state: &Public<'_>) -> Result<Vec<PublicIncident>, DocError> {
    Ok(public::incidents(
        state,
        IncidentFilter {
            limit: FEED_LIMIT,
            ..Default::default()
        },
    )
    .await?)
}

/// Every alert of the recent incidents, for the static copy: (path, content type, bytes).
pub async fn all_alerts(state: &Public<'_>) -> Result<Vec<NamedDocument>, DocError> {
    let mut out = Vec::new();
    for p in recent(state).await? {
        for (n, u) in p.updates.iter().enumerate() {
            if let Some(x) = alert(state, &p, n) {
                out.push((
                    format!("/cap/{}.xml", identifier(p.incident.id, u.id)),
                    CAP_TYPE,
                    x.into_bytes(),
                ));
            }
        }
    }
    Ok(out)
}

/// `/cap.atom`: an Atom feed with one entry per alert of the recent incidents, newest first,
/// each linking its alert with `type="application/cap+xml"`.
pub async fn index(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    let list = recent(state).await?;
    let base = public::base(state);
    let locale = &state.public.feed_language;
    let mut entries: Vec<(DateTime<Utc>, &PublicIncident, &Update)> = list
        .iter()
        .flat_map(|p| p.updates.iter().map(move |u| (shown_at(u), p, u)))
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    let newest = entries.first().map_or(DateTime::<Utc>::UNIX_EPOCH, |e| e.0);
    let words = words_for(locale);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\n",
        escape(locale.as_str())
    ));
    element(&mut x, "id", &tag(state, "/cap"));
    x.push_str(&format!(
        "<link rel=\"self\" type=\"application/atom+xml\" href=\"{}/cap.atom\"/>\n",
        escape(&base)
    ));
    element(
        &mut x,
        "title",
        &format!(
            "{} - {}",
            state.render.org_name,
            words.get("feed_cap_title").map_or("Alerts", String::as_str)
        ),
    );
    element(&mut x, "updated", &rfc3339(newest));
    x.push_str("<author>");
    element(&mut x, "name", &state.render.org_name);
    x.push_str("</author>\n");
    for (at, p, u) in entries {
        let id = identifier(p.incident.id, u.id);
        x.push_str("<entry>\n");
        element(&mut x, "id", &tag(state, &format!("cap/{id}")));
        element(&mut x, "title", &headline(p.incident.title.as_str()));
        element(&mut x, "updated", &rfc3339(at));
        element(&mut x, "summary", u.body.text_for(locale));
        x.push_str(&format!(
            "<link rel=\"alternate\" type=\"{CAP_TYPE}\" href=\"{}/cap/{}.xml\"/>\n",
            escape(&base),
            escape(&id)
        ));
        x.push_str("</entry>\n");
    }
    x.push_str("</feed>\n");
    Ok(("application/atom+xml; charset=utf-8", x.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use UpdateAction::*;

    #[test]
    fn a_chain_is_alert_then_updates_then_cancel() {
        assert_eq!(
            msg_types(&[
                (Opened, Status::Investigating),
                (Updated, Status::Identified),
                (Updated, Status::Monitoring),
                (Resolved, Status::Resolved),
                (Reopened, Status::Investigating),
                (Resolved, Status::Resolved),
            ]),
            ["Alert", "Update", "Update", "Cancel", "Update", "Cancel"]
        );
        // A maintenance's completion cancels it too.
        assert_eq!(
            msg_types(&[
                (Opened, Status::Scheduled),
                (Updated, Status::InProgress),
                (Updated, Status::Completed),
            ]),
            ["Alert", "Update", "Cancel"]
        );
    }

    #[test]
    fn cap_times_have_an_offset_and_no_fraction() {
        let t = DateTime::parse_from_rfc3339("2026-12-02T10:05:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(cap_time(t, Tz::UTC), "2026-12-02T10:05:00+00:00");
        assert_eq!(
            cap_time(t, Tz::Europe__Helsinki),
            "2026-12-02T12:05:00+02:00"
        );
    }

    #[test]
    fn long_headlines_are_shortened_visibly() {
        let h = headline(&"x".repeat(255));
        assert_eq!(h.chars().count(), 160);
        assert!(h.ends_with('…'));
        assert_eq!(headline("Short"), "Short");
    }
}
