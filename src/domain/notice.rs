//! Recurring notices: a message sent to named channels at the fire times of a crontab(5)
//! expression evaluated in an IANA time zone ("every weekday at 09:00 Helsinki time"). A notice
//! remembers the last instant it fired (UTC), so a restart or a DST change never fires it twice.

use super::{Body, DomainError};
use crate::schedule::cron::CronExpr;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// One recurring notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notice {
    pub id: Ulid,
    /// crontab(5) expression, 5 fields, parsed when the notice is made or read; stored as the
    /// text the user wrote.
    #[schema(value_type = String)]
    pub cron: CronExpr,
    /// IANA zone the expression is evaluated in.
    pub tz: String,
    /// Short subject (email subject; the first line elsewhere).
    pub subject: String,
    /// The text, one per locale.
    pub body: Body,
    /// Channels it goes out on (names from `channels/`).
    pub channels: Vec<String>,
    /// First local day it may fire (inclusive).
    pub from: Option<NaiveDate>,
    /// Last local day it may fire (inclusive).
    pub until: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    /// The scheduled instant it last fired for (or decided to skip); the next firing is strictly
    /// after it, which is what keeps fire times from repeating or going backwards.
    pub last_fired: Option<DateTime<Utc>>,
}

impl Notice {
    /// The zone, parsed (checked when the notice was created).
    pub fn zone(&self) -> Result<Tz, DomainError> {
        parse_tz(&self.tz)
    }

    /// Whether `instant` falls within the notice's from/until days (local dates).
    pub fn in_window(&self, instant: DateTime<Utc>, tz: Tz) -> bool {
        let day = instant.with_timezone(&tz).date_naive();
        self.from.is_none_or(|f| day >= f) && self.until.is_none_or(|u| day <= u)
    }
}

/// Parses an IANA zone name, with an error that says what to write.
pub fn parse_tz(s: &str) -> Result<Tz, DomainError> {
    s.trim().parse::<Tz>().map_err(|_| {
        DomainError::invalid(
            "tz",
            format!(
                "\"{s}\" is not an IANA time zone; write e.g. Europe/Helsinki or America/New_York"
            ),
        )
    })
}

/// Parses a `YYYY-MM-DD` day.
pub fn parse_day(field: &'static str, s: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        DomainError::invalid(
            field,
            format!("\"{s}\" is not a date; write YYYY-MM-DD, e.g. 2026-12-24"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Locale;

    #[test]
    fn zone_and_day_errors_say_what_to_write() {
        assert!(parse_tz("Europe/Helsinki").is_ok());
        let e = parse_tz("Helsinki").unwrap_err().to_string();
        assert!(e.contains("Europe/Helsinki"), "{e}");
        let e = parse_day("from", "24.12.2026").unwrap_err().to_string();
        assert!(e.contains("YYYY-MM-DD"), "{e}");
    }

    #[test]
    fn window_is_in_local_days() {
        let tz: Tz = "Europe/Helsinki".parse().unwrap();
        let n = Notice {
            id: Ulid::new(),
            cron: "0 0 * * *".parse().unwrap(),
            tz: "Europe/Helsinki".into(),
            subject: "s".into(),
            body: Body::single(Locale::english(), "x").unwrap(),
            channels: vec!["log".into()],
            from: Some(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()),
            until: Some(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()),
            created_at: Utc::now(),
            last_fired: None,
        };
        // 2026-11-30 23:30 UTC is already 1 December in Helsinki.
        let t = DateTime::parse_from_rfc3339("2026-11-30T23:30:00Z")
            .unwrap()
            .to_utc();
        assert!(n.in_window(t, tz));
        let t = DateTime::parse_from_rfc3339("2026-11-30T21:30:00Z")
            .unwrap()
            .to_utc();
        assert!(!n.in_window(t, tz));
        let t = DateTime::parse_from_rfc3339("2026-12-31T22:30:00Z")
            .unwrap()
            .to_utc();
        assert!(!n.in_window(t, tz), "1 January local is past until");
    }

    /// A stored notice keeps its expression as the text the user wrote (the storage format of
    /// notices stored before it was parsed once), and one that is not crontab(5) does not load.
    #[test]
    fn the_cron_expression_is_stored_as_text_and_checked_when_read() {
        let stored = |cron: &str| {
            serde_json::json!({
                "id": "01KB3Z6QX5ZKQ8K4V1R2S3T4V5",
                "cron": cron,
                "tz": "Europe/Helsinki",
                "subject": "Weekly",
                "body": serde_json::to_value(Body::single(Locale::english(), "x").unwrap()).unwrap(),
                "channels": ["log"],
                "from": null,
                "until": null,
                "created_at": "2026-11-23T06:00:00Z",
                "last_fired": null,
            })
        };
        let old = stored("0 9 * * Mon-Fri");
        let n: Notice = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(n.cron.to_string(), "0 9 * * Mon-Fri");
        assert_eq!(serde_json::to_value(&n).unwrap(), old, "stored as before");
        let e = serde_json::from_value::<Notice>(stored("0 9 * * 8"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("day-of-week field \"8\": must be 0-7 or sun-sat"),
            "{e}"
        );
    }
}
