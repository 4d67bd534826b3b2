//! Human (and `--json`) output of the CLI: readable tables for people, the server's JSON verbatim
//! for scripts.

use crate::api::deliveries::{ChannelCounts, Failure, Status};
use crate::api::incidents::IncidentView;
use crate::api::intake::IntakeReply;
use crate::api::notices::NoticeView;
use crate::api::subscribers::{ImportReport, SubscriberView};
use crate::domain::{Component, DeliveryState};
use chrono::{DateTime, Utc};
use serde_json::Value;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// Formats an RFC 3339 instant as `YYYY-MM-DD HH:MM UTC`.
fn when(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

/// Formats the instant at `k` in the organisation's zone the server names in `zone_of`'s
/// `timezone`, then in UTC: `2026-10-25 14:00 EET (12:00 UTC)`.
fn promised(zone_of: &Value, v: &Value, k: &str) -> String {
    let tz = zone_of
        .get("timezone")
        .and_then(Value::as_str)
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok());
    let t = v
        .get(k)
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    match (t, tz) {
        (Some(t), Some(tz)) => crate::domain::local_then_utc(t.to_utc(), tz),
        _ => when(v, k),
    }
}

/// Overdue as the server judged it (its clock, not this machine's).
fn overdue(v: &Value) -> bool {
    v.get("overdue").and_then(Value::as_bool) == Some(true)
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

pub fn incident_written(v: &Value, json: bool, verb: &str) {
    if json {
        return print_json(v);
    }
    let state = if v.get("draft").and_then(Value::as_bool) == Some(true) {
        "draft: not public until `crier incident publish`"
    } else {
        "published"
    };
    println!(
        "{verb} {} {} ({}, impact {}) — {state}",
        s(v, "kind"),
        s(v, "id"),
        s(v, "status"),
        s(v, "impact")
    );
    println!("  {}", s(v, "title"));
    titles(v);
    if v.get("next_update_due").is_some_and(|d| !d.is_null()) {
        println!("  next update by {}", promised(v, v, "next_update_due"));
    }
}

/// The title's translations, one line each (`  fi: Lähtöselvitys viivästyy`).
fn titles(v: &Value) {
    if let Some(m) = v.get("titles").and_then(Value::as_object) {
        for (l, t) in m {
            println!("  {l}: {}", t.as_str().unwrap_or_default());
        }
    }
}

pub fn posted(v: &Value, json: bool) {
    if json {
        return print_json(v);
    }
    let (i, u) = (&v["incident"], &v["update"]);
    println!(
        "Posted update {} to {} — now {}{}",
        s(u, "id"),
        s(i, "id"),
        s(i, "status"),
        if u.get("draft").and_then(Value::as_bool) == Some(true) {
            " (draft)"
        } else {
            ""
        }
    );
    promise_line(v);
    restored(v);
}

/// What the update did to the promise of a next update: a promise never goes silently.
fn promise_line(v: &Value) {
    let (i, p) = (&v["incident"], &v["promise"]);
    let now = promised(i, i, "next_update_due");
    let before = promised(i, p, "previous_due");
    match p.get("change").and_then(Value::as_str).unwrap_or("") {
        "made" => println!("  next update by {now}"),
        "kept" => println!(
            "  next update by {now} (the promise stands; --next-update or --next-update-at changes it, --no-next-update withdraws it)"
        ),
        "cleared" => println!("  promise withdrawn: no next update is promised now (it was by {before})"),
        "lapsed" => println!(
            "  no next update is promised now: the promise of {before} had passed, so it could not be kept; promise one with --next-update 30m or --next-update-at HH:MM"
        ),
        "ended" => println!("  no further update promised: the promise of {before} ended with the resolution"),
        "none" if i.get("resolved_at").is_none_or(Value::is_null) => {
            println!("  no next update promised (--next-update 30m or --next-update-at HH:MM makes one)")
        }
        _ => {}
    }
}

/// The components a resolution put back to operational, if any.
fn restored(v: &Value) {
    let names: Vec<&str> = v
        .get("restored_components")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !names.is_empty() {
        println!("  components back to operational: {}", names.join(", "));
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
            let tz = view.timezone.parse::<chrono_tz::Tz>().ok();
            let at = |t: DateTime<Utc>| match tz {
                Some(tz) => crate::domain::local_then_utc(t, tz),
                None => t.format("%Y-%m-%d %H:%M UTC").to_string(),
            };
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

pub fn incident_detail(v: &Value, json: bool) {
    if json {
        return print_json(v);
    }
    println!("{} ({} {})", s(v, "title"), s(v, "kind"), s(v, "id"));
    titles(v);
    println!("  status:     {}", s(v, "status"));
    println!("  impact:     {}", s(v, "impact"));
    let comps: Vec<&str> = v
        .get("components")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !comps.is_empty() {
        println!("  components: {}", comps.join(", "));
    }
    println!("  opened:     {}", promised(v, v, "created_at"));
    if v.get("resolved_at").is_some_and(|d| !d.is_null()) {
        println!("  resolved:   {}", promised(v, v, "resolved_at"));
    }
    if v.get("next_update_due").is_some_and(|d| !d.is_null()) {
        let flag = if overdue(v) { " (OVERDUE)" } else { "" };
        println!(
            "  next update by {}{flag}",
            promised(v, v, "next_update_due")
        );
    }
    println!();
    for u in v
        .get("updates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let draft = if u.get("draft").and_then(Value::as_bool) == Some(true)
            && u.get("published_at").is_none_or(Value::is_null)
        {
            " [draft]"
        } else {
            ""
        };
        println!(
            "{}  {} ({}) by {}{draft}",
            promised(v, u, "created_at"),
            s(u, "status"),
            s(u, "action"),
            s(u, "author")
        );
        if let Some(body) = u.get("body").and_then(Value::as_object) {
            for (locale, text) in body {
                println!("  [{locale}] {}", text.as_str().unwrap_or(""));
            }
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
