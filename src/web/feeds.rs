//! `/history.atom` and `/history.rss` as Statuspage writes them: one entry per incident (the 25
//! most recent, maintenances included), its published update trail newest first as HTML content
//! (`<small>time</small><br><strong>Status</strong> - text` per update), the permalink
//! `<public_url>/incidents/<id>`, published (first public update) and updated (last).
//!
//! Written by hand (see [`super::xml`]): every text is escaped, and an update's text is escaped
//! twice, once as HTML and once as the XML that carries the HTML.

use super::documents::DocError;
use super::lang;
use super::public::Public;
use super::public::{self, rfc3339, shown_at, PublicIncident};
use super::xml::{element, escape, html_text};
use crate::domain::IncidentFilter;
use crate::render::i18n;
use chrono::{DateTime, Utc};

/// How many incidents a feed shows.
pub const FEED_LIMIT: usize = 25;

/// A word of the feeds' language.
fn word(state: &Public<'_>, key: &str) -> String {
    let code = state
        .public
        .feed_language
        .as_str()
        .split('-')
        .next()
        .unwrap_or("en")
        .to_owned();
    lang::words(&code)
        .get(key)
        .cloned()
        .unwrap_or_else(|| key.to_owned())
}

fn title(state: &Public<'_>) -> String {
    format!(
        "{} Status - {}",
        state.render.org_name,
        word(state, "feed_history_title")
    )
}

/// A tag: URI (RFC 4151) naming something of this page, as Statuspage names its entries.
pub fn tag(state: &Public<'_>, what: &str) -> String {
    format!("tag:{},2005:{what}", public::host(state))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The HTML of an entry: the published updates, newest first.
fn content(state: &Public<'_>, p: &PublicIncident) -> String {
    let locale = &state.public.feed_language;
    let mut html = String::new();
    for u in p.updates.iter().rev() {
        html.push_str("<p><small>");
        html.push_str(&html_text(&i18n::format_time(
            shown_at(u),
            state.render.timezone,
            locale,
        )));
        html.push_str("</small><br><strong>");
        html.push_str(&html_text(&capitalised(i18n::status_label(
            u.status, locale,
        ))));
        html.push_str("</strong> - ");
        html.push_str(&html_text(u.body.text_for(locale)));
        html.push_str("</p>");
    }
    html
}

fn published(p: &PublicIncident) -> DateTime<Utc> {
    p.updates.first().map_or(p.incident.created_at, shown_at)
}

fn updated(p: &PublicIncident) -> DateTime<Utc> {
    p.updates.last().map_or(p.incident.updated_at, shown_at)
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

/// `/history.atom`: Atom 1.0 (RFC 4287).
pub async fn atom(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    let list = recent(state).await?;
    let base = public::base(state);
    let newest = list
        .iter()
        .map(updated)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\n",
        escape(state.public.feed_language.as_str())
    ));
    element(&mut x, "id", &tag(state, "/history"));
    x.push_str(&format!(
        "<link rel=\"alternate\" type=\"text/html\" href=\"{}/\"/>\n",
        escape(&base)
    ));
    x.push_str(&format!(
        "<link rel=\"self\" type=\"application/atom+xml\" href=\"{}/history.atom\"/>\n",
        escape(&base)
    ));
    element(&mut x, "title", &title(state));
    element(&mut x, "updated", &rfc3339(newest));
    x.push_str("<author>");
    element(&mut x, "name", &state.render.org_name);
    x.push_str("</author>\n");
    for p in &list {
        x.push_str("<entry>\n");
        element(
            &mut x,
            "id",
            &tag(state, &format!("Incident/{}", p.incident.id)),
        );
        element(&mut x, "published", &rfc3339(published(p)));
        element(&mut x, "updated", &rfc3339(updated(p)));
        x.push_str(&format!(
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
            escape(&public::permalink(state, p.incident.id))
        ));
        element(&mut x, "title", p.incident.title.as_str());
        x.push_str("<content type=\"html\">");
        x.push_str(&escape(&content(state, p)));
        x.push_str("</content>\n</entry>\n");
    }
    x.push_str("</feed>\n");
    Ok(("application/atom+xml; charset=utf-8", x.into_bytes()))
}

/// An RFC 822 date as RSS 2.0 wants it (`Wed, 02 Dec 2026 10:05:00 +0000`).
fn rfc822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// `/history.rss`: RSS 2.0.
pub async fn rss(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    let list = recent(state).await?;
    let base = public::base(state);
    let absolute = !base.is_empty();
    let newest = list
        .iter()
        .map(updated)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>\n");
    element(&mut x, "title", &title(state));
    element(&mut x, "link", &format!("{base}/"));
    element(&mut x, "description", &title(state));
    element(&mut x, "language", state.public.feed_language.as_str());
    element(&mut x, "pubDate", &rfc822(newest));
    element(&mut x, "lastBuildDate", &rfc822(newest));
    if absolute {
        x.push_str(&format!(
            "<atom:link href=\"{}/history.rss\" rel=\"self\" type=\"application/rss+xml\"/>\n",
            escape(&base)
        ));
    }
    for p in &list {
        let link = public::permalink(state, p.incident.id);
        x.push_str("<item>\n");
        element(&mut x, "title", p.incident.title.as_str());
        element(&mut x, "description", &content(state, p));
        element(&mut x, "pubDate", &rfc822(published(p)));
        element(&mut x, "link", &link);
        if absolute {
            x.push_str(&format!(
                "<guid isPermaLink=\"true\">{}</guid>\n",
                escape(&link)
            ));
        } else {
            x.push_str(&format!(
                "<guid isPermaLink=\"false\">{}</guid>\n",
                escape(&tag(state, &format!("Incident/{}", p.incident.id)))
            ));
        }
        x.push_str("</item>\n");
    }
    x.push_str("</channel>\n</rss>\n");
    Ok(("application/rss+xml; charset=utf-8", x.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_dates_are_rfc_822() {
        let t = DateTime::parse_from_rfc3339("2026-12-02T10:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc822(t), "Wed, 02 Dec 2026 10:05:00 +0000");
        assert_eq!(capitalised("in progress"), "In progress");
        assert_eq!(capitalised("övervakas"), "Övervakas");
    }
}
