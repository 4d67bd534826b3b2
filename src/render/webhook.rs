//! The webhook document: what a `webhook` channel posts for an update — a stable, versioned JSON
//! shape (not a text template) for anyone who builds on crier. It carries every locale's text, so
//! the receiver chooses the language.

use super::Event;
use crate::domain::{Incident, Update};
use serde_json::{json, Value};

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
