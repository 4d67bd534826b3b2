//! The configuration of the machine-readable public documents: the feeds' language and the CAP
//! alerts' sender, area, expiry and the mapping from an incident's impact to CAP's category,
//! urgency, severity and certainty (`[feeds]` and `[cap]` in crier.toml; docs/FEEDS.md).

use crate::domain::{Impact, Locale, Span};
use serde::Deserialize;
use std::time::Duration;

/// `[feeds]` as written in crier.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedsFile {
    /// The language of the Atom/RSS history (its words and which text of an update it shows).
    pub language: Option<String>,
}

/// `[cap]` as written in crier.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapFile {
    pub sender: Option<String>,
    pub area: Option<String>,
    pub expires_after: Option<String>,
    pub contact: Option<String>,
    pub impact: Option<ImpactsFile>,
}

/// `[cap.impact.<impact>]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactsFile {
    pub none: Option<MappingFile>,
    pub minor: Option<MappingFile>,
    pub major: Option<MappingFile>,
    pub critical: Option<MappingFile>,
}

/// One impact's CAP values; keys left out keep their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    pub category: Option<String>,
    pub urgency: Option<String>,
    pub severity: Option<String>,
    pub certainty: Option<String>,
}

/// CAP 1.2's value lists (OASIS CAP 1.2 §3.2.2).
pub const CATEGORIES: [&str; 12] = [
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
];
pub const URGENCIES: [&str; 5] = ["Immediate", "Expected", "Future", "Past", "Unknown"];
pub const SEVERITIES: [&str; 5] = ["Extreme", "Severe", "Moderate", "Minor", "Unknown"];
pub const CERTAINTIES: [&str; 5] = ["Observed", "Likely", "Possible", "Unlikely", "Unknown"];

/// CAP's values for one impact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapMapping {
    pub category: &'static str,
    pub urgency: &'static str,
    pub severity: &'static str,
    pub certainty: &'static str,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct PublicSettings {
    pub feed_language: Locale,
    /// CAP `sender`; `None`: the host of `public_url` (or `localhost`).
    pub cap_sender: Option<String>,
    pub cap_area: String,
    pub cap_expires_after: Duration,
    pub cap_contact: Option<String>,
    /// Indexed by impact: none, minor, major, critical.
    pub cap_mapping: [CapMapping; 4],
}

const fn mapping(
    urgency: &'static str,
    severity: &'static str,
    certainty: &'static str,
) -> CapMapping {
    CapMapping {
        category: "Infra",
        urgency,
        severity,
        certainty,
    }
}

impl Default for PublicSettings {
    fn default() -> Self {
        PublicSettings {
            feed_language: Locale::english(),
            cap_sender: None,
            cap_area: "All areas served".to_owned(),
            cap_expires_after: Duration::from_secs(24 * 3600),
            cap_contact: None,
            cap_mapping: [
                mapping("Expected", "Minor", "Observed"),
                mapping("Expected", "Minor", "Observed"),
                mapping("Immediate", "Moderate", "Observed"),
                mapping("Immediate", "Severe", "Observed"),
            ],
        }
    }
}

impl PublicSettings {
    /// The CAP values for an impact.
    pub fn cap_for(&self, impact: Impact) -> &CapMapping {
        let i = match impact {
            Impact::None => 0,
            Impact::Minor => 1,
            Impact::Major => 2,
            Impact::Critical => 3,
        };
        &self.cap_mapping[i]
    }

    /// Builds the settings from the file's tables; an error names the key and what to write.
    pub fn from_file(feeds: Option<FeedsFile>, cap: Option<CapFile>) -> Result<Self, String> {
        let mut s = PublicSettings::default();
        if let Some(lang) = feeds.and_then(|f| f.language) {
            s.feed_language = Locale::parse(&lang).map_err(|_| {
                format!("feeds.language = \"{lang}\" is not a language tag; use e.g. en, fi or sv")
            })?;
        }
        let Some(cap) = cap else { return Ok(s) };
        if let Some(v) = cap.sender {
            let v = v.trim().to_owned();
            if v.is_empty() || v.contains([' ', ',', '<', '&']) || v.chars().any(char::is_control) {
                return Err(format!("cap.sender = \"{v}\" may not be empty or contain spaces, commas, '<' or '&' (CAP 1.2 §3.2.1); use e.g. status.example.com"));
            }
            s.cap_sender = Some(v);
        }
        if let Some(v) = cap.area {
            if v.trim().is_empty() {
                return Err("cap.area is empty; name the area the alerts concern, e.g. \"Finland\" (Google Public Alerts requires it)".into());
            }
            s.cap_area = v.trim().to_owned();
        }
        if let Some(v) = cap.expires_after {
            s.cap_expires_after = Span::parse_in(&v, Span::from_secs(60), Span::MAX)
                .map_err(|e| format!("cap.expires_after: {e}"))?
                .as_std();
        }
        s.cap_contact = cap
            .contact
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if let Some(impacts) = cap.impact {
            let tables = [
                ("none", impacts.none),
                ("minor", impacts.minor),
                ("major", impacts.major),
                ("critical", impacts.critical),
            ];
            for (i, (name, table)) in tables.into_iter().enumerate() {
                let Some(t) = table else { continue };
                let m = &mut s.cap_mapping[i];
                let pick = |key: &str,
                            v: Option<String>,
                            all: &[&'static str],
                            cur: &'static str| {
                    match v {
                        None => Ok(cur),
                        Some(v) => all.iter().find(|a| **a == v.trim()).copied().ok_or_else(|| {
                            format!(
                                "cap.impact.{name}.{key} = \"{v}\" is not a CAP 1.2 {key}; use one of {}",
                                all.join(", ")
                            )
                        }),
                    }
                };
                m.category = pick("category", t.category, &CATEGORIES, m.category)?;
                m.urgency = pick("urgency", t.urgency, &URGENCIES, m.urgency)?;
                m.severity = pick("severity", t.severity, &SEVERITIES, m.severity)?;
                m.certainty = pick("certainty", t.certainty, &CERTAINTIES, m.certainty)?;
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PublicSettings, String> {
        #[derive(Deserialize)]
        struct F {
            feeds: Option<FeedsFile>,
            cap: Option<CapFile>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        PublicSettings::from_file(f.feeds, f.cap)
    }

    #[test]
    fn defaults_and_overrides() {
        let d = parse("").unwrap();
        assert_eq!(d.cap_for(Impact::Critical).severity, "Severe");
        assert_eq!(d.cap_for(Impact::Minor).urgency, "Expected");
        let s = parse(
            "[feeds]\nlanguage = \"fi\"\n[cap]\nsender = \"status.example.com\"\narea = \"Finland\"\nexpires_after = \"6h\"\n[cap.impact.critical]\nseverity = \"Extreme\"\ncategory = \"Transport\"\n",
        )
        .unwrap();
        assert_eq!(s.feed_language.as_str(), "fi");
        assert_eq!(s.cap_sender.as_deref(), Some("status.example.com"));
        assert_eq!(s.cap_expires_after, Duration::from_secs(6 * 3600));
        let c = s.cap_for(Impact::Critical);
        assert_eq!(
            (c.category, c.urgency, c.severity),
            ("Transport", "Immediate", "Extreme")
        );
    }

    #[test]
    fn crier_toml_carries_the_tables_to_the_server_config() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[feeds]\nlanguage = \"sv\"\n[cap]\narea = \"Sverige\"\n",
        )
        .unwrap();
        let c = crate::config::Config::load(&crate::config::Overrides {
            config_file: Some(f.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.public.feed_language.as_str(), "sv");
        assert_eq!(c.public.cap_area, "Sverige");
        std::fs::write(&f, "[cap.impact.minor]\nurgency = \"Now\"\n").unwrap();
        let e = crate::config::Config::load(&crate::config::Overrides {
            config_file: Some(f),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("cap.impact.minor.urgency"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key_and_the_choices() {
        let e = parse("[cap.impact.major]\nseverity = \"Huge\"\n").unwrap_err();
        assert!(
            e.contains("cap.impact.major.severity") && e.contains("Moderate"),
            "{e}"
        );
        let e = parse("[cap]\nsender = \"a b\"\n").unwrap_err();
        assert!(e.contains("cap.sender"), "{e}");
        let e = parse("[cap]\narea = \" \"\n").unwrap_err();
        assert!(e.contains("cap.area"), "{e}");
        let e = parse("[cap]\nexpires_after = \"soon\"\n").unwrap_err();
        assert!(e.contains("cap.expires_after"), "{e}");
        let e = parse("[feeds]\nlanguage = \"klingon\"\n").unwrap_err();
        assert!(e.contains("feeds.language"), "{e}");
        assert!(parse("[cap]\nsendr = \"x\"\n").is_err());
    }
}
