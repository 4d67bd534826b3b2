//! The few words crier itself puts into messages — status and impact names, and date formats —
//! in each shipped language. Everything else a reader sees comes from the templates.

use crate::domain::{Impact, Locale, Status};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The shipped languages; any other locale falls back to English here.
pub const SHIPPED: [&str; 3] = ["en", "fi", "sv"];

fn lang(locale: &Locale) -> &str {
    locale.as_str().split('-').next().unwrap_or("en")
}

/// A status as readers of `locale` call it.
pub fn status_label(status: Status, locale: &Locale) -> &'static str {
    use Status::*;
    match (lang(locale), status) {
        ("fi", Investigating) => "selvitetään",
        ("fi", Identified) => "syy tunnistettu",
        ("fi", Monitoring) => "seurataan",
        ("fi", Resolved) => "korjattu",
        ("fi", Scheduled) => "suunniteltu",
        ("fi", InProgress) => "käynnissä",
        ("fi", Verifying) => "tarkistetaan",
        ("fi", Completed) => "valmis",
        ("sv", Investigating) => "undersöks",
        ("sv", Identified) => "orsak identifierad",
        ("sv", Monitoring) => "övervakas",
        ("sv", Resolved) => "åtgärdat",
        ("sv", Scheduled) => "planerat",
        ("sv", InProgress) => "pågår",
        ("sv", Verifying) => "verifieras",
        ("sv", Completed) => "klart",
        (_, Investigating) => "investigating",
        (_, Identified) => "identified",
        (_, Monitoring) => "monitoring",
        (_, Resolved) => "resolved",
        (_, Scheduled) => "scheduled",
        (_, InProgress) => "in progress",
        (_, Verifying) => "verifying",
        (_, Completed) => "completed",
    }
}

/// An impact as readers of `locale` call it.
pub fn impact_label(impact: Impact, locale: &Locale) -> &'static str {
    use Impact::*;
    match (lang(locale), impact) {
        ("fi", None) => "ei vaikutusta",
        ("fi", Minor) => "vähäinen",
        ("fi", Major) => "merkittävä",
        ("fi", Critical) => "kriittinen",
        ("sv", None) => "ingen",
        ("sv", Minor) => "mindre",
        ("sv", Major) => "betydande",
        ("sv", Critical) => "kritisk",
        (_, None) => "none",
        (_, Minor) => "minor",
        (_, Major) => "major",
        (_, Critical) => "critical",
    }
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An instant as a reader of `locale` in zone `tz` writes it, always naming the zone
/// (`23 Nov 2026 14:00 EET`, `23.11.2026 klo 14.00 EET`, `2026-11-23 kl. 14:00 EET`).
pub fn format_time(t: DateTime<Utc>, tz: Tz, locale: &Locale) -> String {
    use chrono::Datelike;
    let local = t.with_timezone(&tz);
    let zone = local.format("%Z");
    match lang(locale) {
        "fi" => format!(
            "{} klo {} {zone}",
            local.format("%-d.%-m.%Y"),
            local.format("%H.%M")
        ),
        "sv" => format!(
            "{} kl. {} {zone}",
            local.format("%Y-%m-%d"),
            local.format("%H:%M")
        ),
        _ => {
            let month = MONTHS_EN
                .get(local.month0() as usize)
                .copied()
                .unwrap_or("");
            format!(
                "{} {month} {} {} {zone}",
                local.day(),
                local.year(),
                local.format("%H:%M")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_name_their_zone_in_each_language() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let hel: Tz = "Europe/Helsinki".parse().unwrap();
        let l = |s: &str| Locale::parse(s).unwrap();
        assert_eq!(format_time(t, hel, &l("en")), "23 Nov 2026 14:00 EET");
        assert_eq!(format_time(t, hel, &l("fi")), "23.11.2026 klo 14.00 EET");
        assert_eq!(format_time(t, hel, &l("sv")), "2026-11-23 kl. 14:00 EET");
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(format_time(summer, hel, &l("en")), "1 Jul 2026 15:00 EEST");
        assert_eq!(format_time(t, Tz::UTC, &l("de")), "23 Nov 2026 12:00 UTC");
    }

    #[test]
    fn labels_fall_back_to_english() {
        let l = |s: &str| Locale::parse(s).unwrap();
        assert_eq!(status_label(Status::Resolved, &l("fi")), "korjattu");
        assert_eq!(status_label(Status::Resolved, &l("sv-FI")), "åtgärdat");
        assert_eq!(status_label(Status::Resolved, &l("de")), "resolved");
        assert_eq!(impact_label(Impact::Major, &l("fi")), "merkittävä");
    }
}
