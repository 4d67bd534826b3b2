//! The webhook document: what a `webhook` channel posts for an update — a stable, versioned JSON
//! shape (not a text template) for anyone who builds on crier. It carries every locale's text, so
//! the receiver chooses the language.

use super::compose::StaffDetail;
use super::Event;
use crate::domain::{Incident, Locale, Update};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use ulid::Ulid;

/// The document's schema version; bumped on any incompatible change.
pub const WEBHOOK_VERSION: u32 = 1;

/// Builds the document for `update` of `incident`. It contains no send time, so a retried
/// delivery posts byte-identical JSON (receivers can de-duplicate on the idempotency key).
pub fn webhook_document(incident: &Incident, update: &Update, public_url: Option<&str>) -> Value {
    let event = Event::of_update(incident.kind, update);
    json!({
        "version": WEBHOOK_VERSION,
        "event": event.as_str(),
        "incident": {
            "id": incident.id.to_string(),
            "title": incident.title.as_str(),
            "titles": incident.titles,
            "kind": incident.kind.as_str(),
            "status": incident.status.as_str(),
            "impact": incident.impact.as_str(),
            "components": incident.components,
            "created_at": incident.created_at,
            "updated_at": incident.updated_at,
            "resolved_at": incident.resolved_at,
            "next_update_due": incident.next_update_due,
            "url": public_url.map(|u| format!("{}/incidents/{}", u.trim_end_matches('/'), incident.id)),
        },
        "update": {
            "id": update.id.to_string(),
            "action": update.action,
            "status": update.status.as_str(),
            "body": update.body.texts(),
            "created_at": update.created_at,
            "next_update_due": update.next_update_due,
        },
    })
}

/// A notice firing's document (`origin` is the notice).
pub fn notice_document(
    origin: Ulid,
    scheduled_for: DateTime<Utc>,
    subject: &str,
    text: &str,
    locale: &Locale,
) -> Value {
    json!({
        "version": 1,
        "type": "notice",
        "notice_id": origin.to_string(),
        "scheduled_for": scheduled_for.to_rfc3339(),
        "subject": subject,
        "text": text,
        "locale": locale.to_string(),
    })
}

/// A staff detail's document: an alert group's detail (`incident_id` is `origin`) or a note
/// about an approval (`approval_id` is `origin`).
pub fn staff_document(
    detail: StaffDetail,
    origin: Ulid,
    at: DateTime<Utc>,
    subject: &str,
    text: &str,
    locale: &Locale,
) -> Value {
    let (kind, origin_key) = match detail {
        StaffDetail::Approval => ("approval", "approval_id"),
        StaffDetail::Alert => ("alert_detail", "incident_id"),
    };
    let mut doc = json!({
        "version": 1,
        "type": kind,
        "at": at.to_rfc3339(),
        "subject": subject,
        "text": text,
        "locale": locale.to_string(),
    });
    doc[origin_key] = Value::from(origin.to_string());
    doc
}

/// A reminder's document: the update's document with its `type` (`reminder` to staff,
/// `maintenance_reminder` to a maintenance's audience) and when the update or the maintenance
/// is `due`.
pub fn reminder_document(
    incident: &Incident,
    update: &Update,
    public_url: Option<&str>,
    maintenance: bool,
    due: DateTime<Utc>,
) -> Value {
    let mut doc = webhook_document(incident, update, public_url);
    if let Some(o) = doc.as_object_mut() {
        let kind = if maintenance {
            "maintenance_reminder"
        } else {
            "reminder"
        };
        o.insert("type".into(), Value::from(kind));
        o.insert("due".into(), Value::from(due.to_rfc3339()));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sample_incident;
    use chrono::Utc;

    #[test]
    fn document_carries_every_locale_and_no_send_time() {
        let (i, mut u) = sample_incident(Event::IncidentUpdated, "Delays", Utc::now()).unwrap();
        u.body = serde_json::from_value(json!({"en": "Delays", "fi": "Viiveitä"})).unwrap();
        let mut i = i;
        i.titles =
            crate::domain::parse_titles(&[("fi".into(), "Viiveitä HEL".into())].into()).unwrap();
        let d = webhook_document(&i, &u, Some("https://status.example.com/"));
        assert_eq!(d["incident"]["title"], i.title.as_str());
        assert_eq!(d["incident"]["titles"], json!({"fi": "Viiveitä HEL"}));
        assert_eq!(d["version"], 1);
        assert_eq!(d["event"], "incident_updated");
        assert_eq!(d["update"]["body"]["fi"], "Viiveitä");
        assert_eq!(d["update"]["body"]["en"], "Delays");
        assert_eq!(
            d["incident"]["url"],
            format!("https://status.example.com/incidents/{}", i.id)
        );
        assert_eq!(
            d,
            webhook_document(&i, &u, Some("https://status.example.com/")),
            "deterministic"
        );
        assert!(!d.to_string().contains("sent_at"));
    }
}
