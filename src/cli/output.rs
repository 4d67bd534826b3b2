//! Human (and `--json`) output of the CLI: readable tables for people, the server's JSON verbatim
//! for scripts.

use crate::api::deliveries::{ChannelCounts, Failure, Status};
use crate::api::incidents::{IncidentDetail, IncidentView, Posted};
use crate::api::intake::IntakeReply;
use crate::api::notices::NoticeView;
use crate::api::subscribers::{ImportReport, SubscriberView};
use crate::domain::{Component, DeliveryState, PromiseChange};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// Prints rows as an aligned table; the last column is not padded.
pub(super) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        let mut out = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                out.push_str(&c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

/// An instant in the organisation's zone the server names (`zone`), then in UTC:
/// `2026-10-25 14:00 EET (12:00 UTC)`; in UTC alone if the zone is not one.
fn in_zone(t: DateTime<Utc>, zone: &str) -> String {
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => crate::domain::local_then_utc(t, tz),
        Err(_) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

pub fn incident_written(view: &IncidentView, verb: &str) {
    let i = &view.incident;
    let state = if i.draft {
        "draft: not public until `crier incident publish`"
    } else {
        "published"
    };
    println!(
        "{verb} {} {} ({}, impact {}) — {state}",
        i.kind.as_str(),
        i.id,
        i.status.as_str(),
        i.impact.as_str()
    );
    println!("  {}", i.title.as_str());
    titles(&i.titles);
    if let Some(due) = i.next_update_due {
        println!("  next update by {}", in_zone(due, &view.timezone));
    }
}

/// The title's translations, one line each (`  fi: Lähtöselvitys viivästyy`).
fn titles(titles: &crate::domain::Titles) {
    for (l, t) in titles {
        println!("  {l}: {}", t.as_str());
    }
}

pub fn posted(p: &Posted) {
    let (i, u) = (&p.incident.incident, &p.update);
    println!(
        "Posted update {} to {} — now {}{}",
        u.id,
        i.id,
        i.status.as_str(),
        if u.draft { " (draft)" } else { "" }
    );
    promise_line(p);
    if !p.restored_components.is_empty() {
        let names: Vec<&str> = p.restored_components.iter().map(|c| c.as_str()).collect();
        println!("  components back to operational: {}", names.join(", "));
    }
}

/// What the update did to the promise of a next update: a promise never goes silently.
fn promise_line(p: &Posted) {
    let (view, promise) = (&p.incident, &p.promise);
    let zone = &view.timezone;
    let at = |t: Option<DateTime<Utc>>| t.map_or_else(|| "-".to_owned(), |t| in_zone(t, zone));
    let now = at(view.incident.next_update_due);
    let before = at(promise.previous_due);
    match promise.change {
        PromiseChange::Made => println!("  next update by {now}"),
        PromiseChange::Kept => println!(
            "  next update by {now} (the promise stands; --next-update or --next-update-at changes it, --no-next-update withdraws it)"
        ),
        PromiseChange::Cleared => println!("  promise withdrawn: no next update is promised now (it was by {before})"),
        PromiseChange::Lapsed => println!(
            "  no next update is promised now: the promise of {before} had passed, so it could not be kept; promise one with --next-update 30m or --next-update-at HH:MM"
        ),
        PromiseChange::Ended => println!("  no further update promised: the promise of {before} ended with the resolution"),
        PromiseChange::None if view.incident.resolved_at.is_none() => {
            println!("  no next update promised (--next-update 30m or --next-update-at HH:MM makes one)")
        }
        PromiseChange::None => {}
    }
}

pub fn incident_list(v: &Value, items: &[IncidentView], json: bool) {
    if json {
        return print_json(v);
    }
    if items.is_empty() {
        println!("No incidents.");
        return;
    }
    let rows = items
        .iter()
        .map(|view| {
            let i = &view.incident;
            // In the organisation's zone the server names, then in UTC.
            let at = |t: DateTime<Utc>| in_zone(t, &view.timezone);
            let mut next = i.next_update_due.map_or_else(|| "-".to_owned(), at);
            if view.overdue {
                next.push_str(" OVERDUE");
            }
            let mut title = i.title.as_str().to_owned();
            if i.draft {
                title.push_str(" [draft]");
            }
            vec![
                i.id.to_string(),
                i.status.as_str().to_owned(),
                i.impact.as_str().to_owned(),
                at(i.updated_at),
                next,
                title,
            ]
        })
        .collect();
    table(
        &["ID", "STATUS", "IMPACT", "UPDATED", "NEXT UPDATE", "TITLE"],
        rows,
    );
}

pub fn incident_detail(d: &IncidentDetail) {
    let (view, i) = (&d.incident, &d.incident.incident);
    let zone = &view.timezone;
    println!("{} ({} {})", i.title.as_str(), i.kind.as_str(), i.id);
    titles(&i.titles);
    println!("  status:     {}", i.status.as_str());
    println!("  impact:     {}", i.impact.as_str());
    if !i.components.is_empty() {
        let comps: Vec<&str> = i.components.iter().map(|c| c.as_str()).collect();
        println!("  components: {}", comps.join(", "));
    }
    println!("  opened:     {}", in_zone(i.created_at, zone));
    if let Some(at) = i.resolved_at {
        println!("  resolved:   {}", in_zone(at, zone));
    }
    if let Some(due) = i.next_update_due {
        // Overdue as the server judged it (its clock, not this machine's).
        let flag = if view.overdue { " (OVERDUE)" } else { "" };
        println!("  next update by {}{flag}", in_zone(due, zone));
    }
    println!();
    for u in &d.updates {
        let draft = if u.draft && u.published_at.is_none() {
            " [draft]"
        } else {
            ""
        };
        println!(
            "{}  {} ({}) by {}{draft}",
            in_zone(u.created_at, zone),
            u.status.as_str(),
            u.action.as_str(),
            u.author
        );
        for (locale, text) in u.body.texts() {
            println!("  [{locale}] {text}");
        }
    }
}

/// The components (`shown_as` prints `--json` as it came).
pub fn component_list(items: Vec<Component>) {
    if items.is_empty() {
        println!("No components. Add one with `crier component set NAME operational`.");
        return;
    }
    let rows = items
        .into_iter()
        .map(|c| {
            vec![
                c.name.to_string(),
                c.status.as_str().to_owned(),
                c.group.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["NAME", "STATUS", "GROUP"], rows);
}

pub fn component_set(c: Component) {
    println!("{} is now {}", c.name, c.status.as_str());
}

pub fn subscriber_added(x: SubscriberView) {
    println!("Subscribed {} ({})", x.contact.address(), x.id);
}

pub fn subscriber_changed(x: SubscriberView) {
    let comps: Vec<&str> = x.components.iter().map(|c| c.as_str()).collect();
    println!(
        "Changed {} ({}): locale {}, components {}",
        x.contact.address(),
        x.id,
        x.locale.as_str(),
        if comps.is_empty() {
            "all".to_owned()
        } else {
            comps.join(", ")
        }
    );
}

pub fn subscriber_removed(x: SubscriberView) {
    println!("Removed {} ({})", x.contact.address(), x.id);
}

pub fn subscriber_list(v: &Value, items: &[SubscriberView], json: bool) {
    if json {
        return print_json(v);
    }
    if items.is_empty() {
        println!("No subscribers.");
        return;
    }
    let rows = items
        .iter()
        .map(|x| {
            let comps: Vec<&str> = x.components.iter().map(|c| c.as_str()).collect();
            vec![
                x.id.to_string(),
                x.contact.address().to_owned(),
                x.locale.as_str().to_owned(),
                if comps.is_empty() {
                    "all".to_owned()
                } else {
                    comps.join(";")
                },
            ]
        })
        .collect();
    table(&["ID", "CONTACT", "LOCALE", "COMPONENTS"], rows);
}

pub fn import_report(v: &Value, r: &ImportReport, json: bool) {
    if json {
        return print_json(v);
    }
    println!(
        "Imported {} subscriber(s); {} duplicate(s) skipped; {} row(s) rejected.",
        r.added, r.duplicates, r.rejected
    );
    for e in &r.errors {
        eprintln!("  line {}: {}", e.line, e.message);
    }
}

fn counts_line(c: &ChannelCounts) -> String {
    let mut parts = vec![format!("delivered {}", c.delivered)];
    for (n, label) in [
        (c.pending, "pending"),
        (c.in_flight, "in flight"),
        (c.retrying, "retrying"),
        (c.dead, "dead"),
        (c.rejected, "rejected"),
    ] {
        if n > 0 {
            parts.push(format!("{label} {n}"));
        }
    }
    if c.expanding > 0 {
        parts.push("expanding…".into());
    }
    parts.join(" · ")
}

/// The failures, each with its next attempt and the wait until it from `now`.
fn print_failures(failures: &[Failure], now: DateTime<Utc>) {
    if failures.is_empty() {
        return;
    }
    println!("\nFailures:");
    for f in failures {
        let next = f
            .next_attempt_at
            .map(|t| {
                let wait = (t - now).num_seconds().max(0);
                format!(
                    "; next attempt {} (in {}m {:02}s)",
                    t.format("%Y-%m-%d %H:%M:%S UTC"),
                    wait / 60,
                    wait % 60
                )
            })
            .unwrap_or_default();
        let state = match f.state {
            DeliveryState::Pending => "retrying",
            other => other.as_str(),
        };
        println!(
            "  {} {} {} (attempts {}): {}{next}",
            f.channel, f.recipient, state, f.attempts, f.reason
        );
    }
}

/// One status table: `v` as the server sent it (for `--json`), `st` the same read as the API's
/// [`Status`].
pub fn delivery_status(v: &Value, st: &Status, json: bool, now: DateTime<Utc>) {
    if json {
        return print_json(v);
    }
    if st.channels.is_empty() {
        println!("No deliveries (no channels were active when the updates were published).");
        return;
    }
    let rows = st
        .channels
        .iter()
        .map(|(name, c)| vec![name.clone(), c.total.to_string(), counts_line(c)])
        .collect();
    table(&["CHANNEL", "TOTAL", "STATE"], rows);
    print_failures(&st.failures, now);
}

/// Progress bars per channel for `deliveries --follow`.
pub struct DeliveryBars {
    multi: indicatif::MultiProgress,
    bars: std::collections::BTreeMap<String, indicatif::ProgressBar>,
    json: bool,
}

impl DeliveryBars {
    pub fn new(json: bool) -> Self {
        DeliveryBars {
            multi: indicatif::MultiProgress::new(),
            bars: Default::default(),
            json,
        }
    }

    pub fn update(&mut self, st: &Status) {
        if self.json {
            return;
        }
        let style =
            indicatif::ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> ");
        for (name, c) in &st.channels {
            let bar = self.bars.entry(name.clone()).or_insert_with(|| {
                let b = self.multi.add(indicatif::ProgressBar::new(0));
                b.set_style(style.clone());
                b.set_prefix(name.clone());
                b
            });
            bar.set_length(c.total as u64);
            bar.set_position((c.delivered + c.dead + c.rejected) as u64);
            bar.set_message(counts_line(c));
        }
    }

    pub fn finish(self, v: &Value, st: &Status, now: DateTime<Utc>) {
        if self.json {
            return print_json(v);
        }
        for b in self.bars.values() {
            b.finish();
        }
        // Progress bars are only drawn on a terminal; elsewhere (scripts, logs) print the
        // final table instead.
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            print_failures(&st.failures, now);
        } else {
            delivery_status(v, st, false, now);
        }
    }
}

/// Notices with their next fire times, local and UTC (`shown_as` prints `--json` as it came).
pub fn notices(list: &[NoticeView], added: bool) {
    if list.is_empty() {
        println!("No notices. Add one with `crier notice add --cron ... --tz ... --message ... --channel ...`.");
        return;
    }
    for v in list {
        let n = &v.notice;
        println!(
            "{}{}  \"{}\"  {} ({})  → {}",
            if added { "Added notice " } else { "" },
            n.id,
            n.cron,
            n.subject,
            n.tz,
            n.channels.join(", ")
        );
        if v.next.is_empty() {
            println!("  (no upcoming firing)");
        }
        for f in &v.next {
            println!(
                "  {}   {}",
                f.local,
                f.utc.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            );
        }
    }
}

/// What a trigger did, one line per alert.
pub fn trigger(v: &Value, reply: &IntakeReply, json: bool) {
    use crate::intake::Outcome;
    if json {
        return print_json(v);
    }
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    for o in &reply.outcomes {
        let incident = o
            .incident()
            .map_or_else(|| "-".to_owned(), |i| i.to_string());
        match o {
            Outcome::Opened {
                held_until, draft, ..
            } => {
                let how = if *draft {
                    "as a draft (waits for `crier incident publish`)".to_owned()
                } else if let Some(t) = held_until {
                    format!("held: published at {} if still firing", at(*t))
                } else {
                    "published".to_owned()
                };
                println!("opened incident {incident} — {how}");
            }
            Outcome::Noted { .. } => {
                println!("noted for staff on incident {incident} (no public update)")
            }
            Outcome::Deferred { until, .. } => println!(
                "incident {incident}: its public update waits until {} (public interval)",
                at(*until)
            ),
            Outcome::Reopened { .. } => println!("reopened incident {incident} (it flapped)"),
            Outcome::Absorbed { .. } => println!("absorbed: nothing new (incident {incident})"),
            Outcome::PartlyResolved { still_firing, .. } => println!(
                "resolved this alert; incident {incident} stays open with {still_firing} still firing"
            ),
            Outcome::Resolved { .. } => println!("resolved incident {incident}"),
        }
    }
}
