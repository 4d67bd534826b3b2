//! The payloads monitoring sends, turned into [`Trigger`]s: crier's own trigger document, the
//! Alertmanager webhook (payload version 4) and the Grafana webhook contact point. Unknown fields
//! in the monitoring payloads are accepted (both add fields over time); crier's own document
//! rejects them (a typo there is ours to catch).

use super::{AlertStatus, Trigger};
use crate::domain::{ComponentName, DomainError, Impact};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Longest summary kept (monitoring annotations can be long; the update text limit is larger,
/// but a status message should be short).
const MAX_SUMMARY: usize = 1000;

/// `POST /api/v1/triggers` and `crier trigger`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"source": "nagios", "key": "db1-disk", "status": "firing", "summary": "Disk almost full on db1", "impact": "minor"})))]
pub struct TriggerDoc {
    /// The monitoring system, e.g. `nagios`.
    #[schema(min_length = 1)]
    pub source: String,
    /// The alert's key within the source.
    #[schema(min_length = 1)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub status: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn required(field: &'static str, v: &str, hint: &str) -> Result<String, DomainError> {
    let t = v.trim();
    if t.is_empty() {
        return Err(DomainError::invalid(field, format!("is empty; {hint}")));
    }
    if t.chars().count() > 200 {
        return Err(DomainError::invalid(field, "is longer than 200 characters"));
    }
    Ok(t.to_owned())
}

fn summary(s: &str) -> Result<String, DomainError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DomainError::invalid(
            "summary",
            "is empty; say in a sentence what is wrong (the public may read it)",
        ));
    }
    let cut: String = t.chars().take(MAX_SUMMARY).collect();
    // The cut can end inside a run of spaces.
    Ok(cut.trim_end().to_owned())
}

/// Splits a possibly multi-line text into its first non-empty line and the rest (trimmed; `None`
/// when nothing follows). Monitoring summaries and annotations are often several lines long; a
/// title is one line, so the first line heads and the rest is the text.
pub fn first_line(s: &str) -> (String, Option<String>) {
    let t = s.trim();
    match t.split_once(['\n', '\r']) {
        Some((head, rest)) => {
            let rest = rest.trim();
            (
                head.trim().to_owned(),
                (!rest.is_empty()).then(|| rest.to_owned()),
            )
        }
        None => (t.to_owned(), None),
    }
}

/// The trigger's title and summary from what monitoring sent: a title is the first line of the
/// given title (or of the summary, when none is given); a multi-line summary used as the title
/// keeps its remaining lines as the text.
fn title_and_summary(title: Option<&str>, summary: &str) -> (Option<String>, String) {
    let title = title.map(str::trim).filter(|t| !t.is_empty());
    match title {
        Some(t) => {
            let (head, _) = first_line(t);
            match first_line(summary) {
                // The summary is the title's text (Alertmanager's common summary annotation is
                // usually each alert's too): its first line heads, the rest is the text.
                (s, Some(rest)) if s == head => (Some(head), rest),
                _ => (Some(head), summary.to_owned()),
            }
        }
        None => match first_line(summary) {
            (_, None) => (None, summary.to_owned()),
            (head, Some(rest)) => (Some(head), rest),
        },
    }
}

impl TriggerDoc {
    /// Validates the document field by field.
    pub fn into_trigger(self) -> Result<Trigger, DomainError> {
        let source = required(
            "source",
            &self.source,
            "name the monitoring system, e.g. nagios",
        )?;
        let key = required(
            "key",
            &self.key,
            "give the alert's identity, e.g. db-latency",
        )?;
        let group = match self.group {
            Some(g) => required("group", &g, "leave it out to group by key")?,
            None => key.clone(),
        };
        let (title, text) = title_and_summary(self.title.as_deref(), &summary(&self.summary)?);
        Ok(Trigger {
            source,
            group,
            key,
            status: AlertStatus::parse(&self.status)?,
            summary: text,
            title,
            impact: self.impact.as_deref().map(Impact::parse).transpose()?,
            components: self
                .components
                .iter()
                .map(|c| ComponentName::parse(c))
                .collect::<Result<_, _>>()?,
            labels: self.labels,
        })
    }
}

/// One alert in an Alertmanager or Grafana notification.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct HookAlert {
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// An Alertmanager (version 4) or Grafana webhook notification; other fields are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(examples(json!({"version": "4", "groupKey": "{}:{alertname=\"HighLatency\"}", "status": "firing", "groupLabels": {"alertname": "HighLatency"}, "commonLabels": {"alertname": "HighLatency", "severity": "major"}, "commonAnnotations": {"summary": "Check-in API latency above 2 s"}, "alerts": [{"status": "firing", "labels": {"alertname": "HighLatency", "instance": "api-1"}, "annotations": {"summary": "Check-in API latency above 2 s"}, "fingerprint": "a1b2c3"}]})))]
pub struct HookPayload {
    pub version: String,
    #[serde(default)]
    pub group_key: Option<String>,
    #[serde(default)]
    pub receiver: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Grafana only.
    #[serde(default)]
    pub title: Option<String>,
    pub alerts: Vec<HookAlert>,
}

/// Which system sent a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Alertmanager,
    Grafana,
}

impl HookKind {
    pub fn source(self) -> &'static str {
        match self {
            HookKind::Alertmanager => "alertmanager",
            HookKind::Grafana => "grafana",
        }
    }
}

/// A stable key for an alert without a fingerprint: a hash of its sorted labels.
fn label_key(labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

impl HookPayload {
    /// Parses a notification body with a message that says what is wrong.
    pub fn parse(kind: HookKind, body: &[u8]) -> Result<HookPayload, DomainError> {
        let p: HookPayload = serde_json::from_slice(body).map_err(|e| {
            DomainError::invalid(
                "body",
                format!(
                    "is not a {} webhook notification: {e}",
                    match kind {
                        HookKind::Alertmanager => "Alertmanager (version 4)",
                        HookKind::Grafana => "Grafana",
                    }
                ),
            )
        })?;
        if kind == HookKind::Alertmanager && p.version != "4" {
            return Err(DomainError::invalid(
                "version",
                format!(
                    "\"{}\" is not supported; crier reads Alertmanager webhook payload version 4",
                    p.version
                ),
            ));
        }
        Ok(p)
    }

    /// One trigger per alert, in order. `source` overrides the kind's default source name.
    pub fn into_triggers(
        self,
        kind: HookKind,
        source: Option<&str>,
    ) -> Result<Vec<Trigger>, DomainError> {
        let source = source.unwrap_or(kind.source()).to_owned();
        let group = self.group_key.clone().unwrap_or_else(|| {
            format!(
                "{}:{}",
                self.receiver.as_deref().unwrap_or(""),
                label_key(&self.group_labels)
            )
        });
        let title = self
            .common_annotations
            .get("summary")
            .cloned()
            .or_else(|| match kind {
                HookKind::Grafana => self.title.clone(),
                HookKind::Alertmanager => None,
            })
            .or_else(|| self.common_labels.get("alertname").cloned())
            .or_else(|| self.group_labels.get("alertname").cloned());
        let mut out = Vec::with_capacity(self.alerts.len());
        for a in self.alerts {
            let mut labels = self.common_labels.clone();
            labels.extend(a.labels.clone());
            let key = a
                .fingerprint
                .clone()
                .filter(|f| !f.trim().is_empty())
                .unwrap_or_else(|| label_key(&a.labels));
            let text = a
                .annotations
                .get("summary")
                .or_else(|| a.annotations.get("description"))
                .or_else(|| labels.get("alertname"))
                .cloned()
                .unwrap_or_else(|| format!("Alert {key}"));
            let status = AlertStatus::parse(&a.status)?;
            let impact = labels.get("impact").and_then(|i| Impact::parse(i).ok());
            let (title, text) = title_and_summary(title.as_deref(), &summary(&text)?);
            out.push(Trigger {
                source: source.clone(),
                group: group.clone(),
                key,
                status,
                summary: text,
                title,
                impact,
                components: Vec::new(),
                labels,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Alertmanager documentation's webhook_config section, with two alerts.
    pub const ALERTMANAGER: &str = r#"{
      "version": "4",
      "groupKey": "{}:{alertname=\"HighLatency\"}",
      "truncatedAlerts": 0,
      "status": "firing",
      "receiver": "crier",
      "groupLabels": {"alertname": "HighLatency"},
      "commonLabels": {"alertname": "HighLatency", "severity": "critical"},
      "commonAnnotations": {"summary": "Checkout is slow"},
      "externalURL": "http://alertmanager:9093",
      "alerts": [
        {"status": "firing", "labels": {"alertname": "HighLatency", "instance": "web-1"},
         "annotations": {"summary": "web-1 p99 over 2s"}, "startsAt": "2026-11-23T08:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "aaa111"},
        {"status": "firing", "labels": {"alertname": "HighLatency", "instance": "web-2"},
         "annotations": {"summary": "web-2 p99 over 2s"}, "startsAt": "2026-11-23T08:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "bbb222",
         "someNewField": {"nested": true}}
      ]
    }"#;

    #[test]
    fn alertmanager_alerts_become_one_trigger_each_in_one_group() {
        let p = HookPayload::parse(HookKind::Alertmanager, ALERTMANAGER.as_bytes()).unwrap();
        let t = p.into_triggers(HookKind::Alertmanager, None).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].source, "alertmanager");
        assert_eq!(t[0].group, "{}:{alertname=\"HighLatency\"}");
        assert_eq!(t[0].group, t[1].group);
        assert_eq!((t[0].key.as_str(), t[1].key.as_str()), ("aaa111", "bbb222"));
        assert_eq!(t[0].summary, "web-1 p99 over 2s");
        assert_eq!(t[0].title.as_deref(), Some("Checkout is slow"));
        assert_eq!(
            t[0].labels.get("severity").map(String::as_str),
            Some("critical")
        );
        assert_eq!(t[1].status, AlertStatus::Firing);
    }

    #[test]
    fn other_alertmanager_versions_and_garbage_are_refused_clearly() {
        let v3 = ALERTMANAGER.replace("\"version\": \"4\"", "\"version\": \"3\"");
        let e = HookPayload::parse(HookKind::Alertmanager, v3.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("version 4"), "{e}");
        let e = HookPayload::parse(HookKind::Grafana, b"{").unwrap_err();
        assert!(e.to_string().contains("Grafana"), "{e}");
    }

    /// Found by the hook_payloads fuzz target: cutting a long summary at 1000 characters could
    /// end inside a run of spaces, leaving trailing whitespace in the published text.
    #[test]
    fn a_long_summary_cut_at_the_limit_is_still_trimmed() {
        let long = format!("{}    and more", "a".repeat(MAX_SUMMARY - 2));
        let body = serde_json::json!({"version": "4", "alerts": [
            {"status": "firing", "annotations": {"summary": long}}]});
        let p = HookPayload::parse(HookKind::Alertmanager, body.to_string().as_bytes()).unwrap();
        let t = p.into_triggers(HookKind::Alertmanager, None).unwrap();
        assert_eq!(t[0].summary, "a".repeat(MAX_SUMMARY - 2));
    }

    #[test]
    fn trigger_documents_are_validated_field_by_field() {
        let ok: TriggerDoc = serde_json::from_str(
            r#"{"source":"nagios","key":"db","status":"firing","summary":"DB down","impact":"major"}"#,
        )
        .unwrap();
        let t = ok.into_trigger().unwrap();
        assert_eq!(t.group, "db");
        assert_eq!(t.impact, Some(Impact::Major));
        let bad: TriggerDoc = serde_json::from_str(
            r#"{"source":"nagios","key":"db","status":"burning","summary":"DB down"}"#,
        )
        .unwrap();
        let e = bad.into_trigger().unwrap_err().to_string();
        assert!(e.contains("firing or resolved"), "{e}");
        assert!(serde_json::from_str::<TriggerDoc>(
            r#"{"source":"n","key":"k","status":"firing","summary":"s","sumary":"x"}"#
        )
        .is_err());
    }
}
