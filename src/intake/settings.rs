//! The `[intake]` table of `crier.toml`: flap hold-down, the language of monitoring texts, the
//! HMAC secret for webhooks (by environment-variable name) and the routing rules.
//!
//! ```toml
//! [intake]
//! hold_down = "2m"
//! public_interval = "15m"
//! staff_channels = ["ops-slack"]
//! hmac_secret_env = "CRIER_HOOK_SECRET"
//! grafana_body_signature = false
//!
//! [[intake.routes]]
//! match = { severity = "critical", team = "payments" }
//! components = ["Payments API"]
//! impact = "major"
//! channels = ["sms", "social"]
//! mode = "publish"
//! ```
//! The first route whose every `match` label equals the alert's wins; without a match the
//! defaults apply (impact `minor`, every channel, mode `draft`: a person decides).

use crate::domain::alert::Mode;
use crate::domain::{ComponentName, Impact, Locale, Span};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `[intake]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeFile {
    pub hold_down: Option<String>,
    pub public_interval: Option<String>,
    #[serde(default)]
    pub staff_channels: Vec<String>,
    pub locale: Option<String>,
    pub hmac_secret_env: Option<String>,
    pub grafana_body_signature: Option<bool>,
    pub default_impact: Option<String>,
    pub default_mode: Option<Mode>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
}

/// `[[intake.routes]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    #[serde(rename = "match", default)]
    pub matchers: BTreeMap<String, String>,
    #[serde(default)]
    pub components: Vec<String>,
    pub impact: Option<String>,
    pub channels: Option<Vec<String>>,
    pub mode: Option<Mode>,
}

/// A routing rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub matchers: BTreeMap<String, String>,
    pub components: Vec<ComponentName>,
    pub impact: Impact,
    /// None: every active channel.
    pub channels: Option<Vec<String>>,
    pub mode: Mode,
}

impl Route {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    }
}

/// The validated intake settings.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeSettings {
    pub hold_down: Duration,
    /// At most one public update per alert group per this interval; what happens in between is
    /// folded into a digest in the next public update.
    pub public_interval: Duration,
    /// Channels that receive the per-alert detail (each key firing, resolving, changing its
    /// summary). Staff only: they must have a fixed audience.
    pub staff_channels: Vec<String>,
    pub locale: Locale,
    /// The HMAC-SHA256 secret for webhook signatures (read from the environment at start-up).
    pub hmac_secret: Option<Vec<u8>>,
    /// Accept Grafana's signature over the body alone (no timestamp header), which can be
    /// replayed forever. Off unless the operator opts in.
    pub grafana_body_signature: bool,
    pub routes: Vec<Route>,
    pub default: Route,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            hold_down: Duration::from_secs(120),
            public_interval: Duration::from_secs(15 * 60),
            staff_channels: Vec::new(),
            locale: Locale::english(),
            hmac_secret: None,
            grafana_body_signature: false,
            routes: Vec::new(),
            default: Route {
                matchers: BTreeMap::new(),
                components: Vec::new(),
                impact: Impact::Minor,
                channels: None,
                mode: Mode::Draft,
            },
        }
    }
}

impl IntakeSettings {
    /// Validates the table; errors name the key. Reads the HMAC secret from the environment
    /// variable it names (a named but unset variable is an error: hooks would be unverifiable).
    pub fn from_file(
        f: Option<IntakeFile>,
        env: &crate::config::Environment,
    ) -> Result<Self, String> {
        let mut s = IntakeSettings::default();
        let Some(f) = f else { return Ok(s) };
        if let Some(v) = f.hold_down {
            s.hold_down = Span::parse(&v)
                .map(Span::as_std)
                .map_err(|e| format!("intake.hold_down: {e}"))?;
        }
        if let Some(v) = f.public_interval {
            s.public_interval = Span::parse(&v)
                .map(Span::as_std)
                .map_err(|e| format!("intake.public_interval: {e}"))?;
        }
        s.staff_channels = f.staff_channels;
        s.grafana_body_signature = f.grafana_body_signature.unwrap_or(false);
        if let Some(v) = f.locale {
            s.locale = Locale::parse(&v).map_err(|e| format!("intake.locale: {e}"))?;
        }
        if let Some(name) = f.hmac_secret_env {
            let value = env.var(&name).ok_or_else(|| {
                format!("intake.hmac_secret_env names ${name}, which is not set; set it, or remove the key to accept only bearer tokens")
            })?;
            if value.len() < 16 {
                return Err(format!(
                    "the secret in ${name} is shorter than 16 bytes; use a long random secret"
                ));
            }
            s.hmac_secret = Some(value.into_bytes());
        }
        if let Some(v) = f.default_impact {
            s.default.impact =
                Impact::parse(&v).map_err(|e| format!("intake.default_impact: {e}"))?;
        }
        if let Some(m) = f.default_mode {
            s.default.mode = m;
        }
        for (i, r) in f.routes.into_iter().enumerate() {
            let at = |k: &str| format!("intake.routes[{i}].{k}");
            let components = r
                .components
                .iter()
                .map(|c| ComponentName::parse(c).map_err(|e| format!("{}: {e}", at("components"))))
                .collect::<Result<Vec<_>, _>>()?;
            let impact = match r.impact {
                Some(v) => Impact::parse(&v).map_err(|e| format!("{}: {e}", at("impact")))?,
                None => s.default.impact,
            };
            s.routes.push(Route {
                matchers: r.matchers,
                components,
                impact,
                channels: r.channels,
                mode: r.mode.unwrap_or(s.default.mode),
            });
        }
        Ok(s)
    }

    /// The route for an alert's labels.
    pub fn route_for(&self, labels: &BTreeMap<String, String>) -> &Route {
        self.routes
            .iter()
            .find(|r| r.matches(labels))
            .unwrap_or(&self.default)
    }

    /// Every channel name the routes mention.
    pub fn channel_names(&self) -> Vec<&str> {
        self.routes
            .iter()
            .filter_map(|r| r.channels.as_ref())
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// The staff channels among the active `targets`.
    pub fn staff_targets(&self, targets: &[(String, bool)]) -> Vec<(String, bool)> {
        targets
            .iter()
            .filter(|(n, subscribers)| !subscribers && self.staff_channels.contains(n))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_route_wins_and_defaults_otherwise() {
        let f: IntakeFile = toml::from_str(
            r#"
            hold_down = "30s"
            [[routes]]
            match = { severity = "critical" }
            impact = "critical"
            channels = ["sms"]
            mode = "publish"
            [[routes]]
            match = { severity = "critical", team = "web" }
            impact = "major"
            "#,
        )
        .unwrap();
        let s = IntakeSettings::from_file(Some(f), &crate::config::Environment::process()).unwrap();
        assert_eq!(s.hold_down, Duration::from_secs(30));
        let labels: BTreeMap<String, String> = [
            ("severity".into(), "critical".into()),
            ("team".into(), "web".into()),
        ]
        .into();
        let r = s.route_for(&labels);
        assert_eq!(r.impact, Impact::Critical);
        assert_eq!(r.mode, Mode::Publish);
        let r = s.route_for(&BTreeMap::new());
        assert_eq!(r.impact, Impact::Minor);
        assert_eq!(r.mode, Mode::Draft);
    }

    #[test]
    fn bad_values_name_their_key() {
        let f: IntakeFile = toml::from_str("[[routes]]\nimpact = \"huge\"\n").unwrap();
        let e =
            IntakeSettings::from_file(Some(f), &crate::config::Environment::process()).unwrap_err();
        assert!(e.contains("intake.routes[0].impact"), "{e}");
        assert!(toml::from_str::<IntakeFile>("holddown = \"1m\"").is_err());
        let f: IntakeFile =
            toml::from_str("hmac_secret_env = \"CRIER_TEST_SURELY_UNSET_SECRET\"").unwrap();
        let none = crate::config::Environment::from_pairs::<&str, &str>([]);
        let e = IntakeSettings::from_file(Some(f), &none).unwrap_err();
        assert!(e.contains("CRIER_TEST_SURELY_UNSET_SECRET"), "{e}");
    }
}
