//! Fuzzes the Alertmanager and Grafana webhook parsers: any body is either refused with an
//! error or becomes one trigger per alert, all in one group, each with a non-empty key, a
//! trimmed non-empty summary of at most 1000 characters and the alert's own labels.
#![no_main]

use crier::intake::payloads::{HookKind, HookPayload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let kind = if first % 2 == 0 {
        HookKind::Alertmanager
    } else {
        HookKind::Grafana
    };
    let Ok(payload) = HookPayload::parse(kind, body) else {
        return;
    };
    let alerts: Vec<_> = payload
        .alerts
        .iter()
        .map(|a| (a.labels.clone(), a.fingerprint.clone()))
        .collect();
    let source = (first & 2 == 0).then_some("prometheus-prod");
    let Ok(triggers) = payload.into_triggers(kind, source) else {
        return;
    };
    assert_eq!(triggers.len(), alerts.len(), "one trigger per alert");
    for (t, (labels, fingerprint)) in triggers.iter().zip(&alerts) {
        assert_eq!(t.source, source.unwrap_or(kind.source()));
        assert_eq!(t.group, triggers[0].group, "one group per notification");
        assert!(!t.key.trim().is_empty(), "empty key");
        if let Some(f) = fingerprint.as_deref().filter(|f| !f.trim().is_empty()) {
            assert_eq!(t.key, f);
        }
        assert!(!t.summary.is_empty(), "empty summary");
        assert_eq!(t.summary.trim(), t.summary, "untrimmed summary");
        assert!(
            t.summary.chars().count() <= 1000,
            "summary over 1000 characters"
        );
        for (k, v) in labels {
            assert_eq!(t.labels.get(k), Some(v), "the alert's own label {k} wins");
        }
    }
});
