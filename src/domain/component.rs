//! Components are the parts of the service users recognise ("Check-in", "Mobile app"): incidents
//! name the ones they affect, and subscribers filter on them.

use super::DomainError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A component name: 1–64 characters of letters, digits, space, `-`, `_`, `.` and `/`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, min_length = 1, max_length = 64, pattern = r"^[\w ./-]*[\w./-][\w ./-]*$")]
pub struct ComponentName(String);

impl ComponentName {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let t = s.trim();
        let ok_char = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '/');
        if t.is_empty() || t.chars().count() > 64 || !t.chars().all(ok_char) {
            return Err(DomainError::invalid(
                "component",
                format!("\"{s}\" is not a component name; use 1-64 letters, digits, spaces, '-', '_', '.' or '/'"),
            ));
        }
        Ok(ComponentName(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ComponentName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ComponentName::parse(&s)
    }
}

impl From<ComponentName> for String {
    fn from(c: ComponentName) -> String {
        c.0
    }
}

impl fmt::Display for ComponentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Statuspage's component statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
    UnderMaintenance,
}

impl ComponentStatus {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        const ALL: [ComponentStatus; 5] = [
            ComponentStatus::Operational,
            ComponentStatus::DegradedPerformance,
            ComponentStatus::PartialOutage,
            ComponentStatus::MajorOutage,
            ComponentStatus::UnderMaintenance,
        ];
        match super::names::find(s, &ALL.map(Self::as_str)) {
            Ok(n) => ALL
                .into_iter()
                .find(|c| c.as_str() == n)
                .ok_or_else(|| DomainError::invalid("status", "is not a component status")),
            Err(guess) => Err(DomainError::invalid(
                "status",
                format!("\"{}\" is not a component status; use operational, degraded_performance, partial_outage, major_outage or under_maintenance.{}", s.trim(), super::names::did_you_mean(guess)),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operational => "operational",
            Self::DegradedPerformance => "degraded_performance",
            Self::PartialOutage => "partial_outage",
            Self::MajorOutage => "major_outage",
            Self::UnderMaintenance => "under_maintenance",
        }
    }
}

/// A component and its current status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Component {
    pub name: ComponentName,
    pub group: Option<String>,
    pub status: ComponentStatus,
    pub updated_at: DateTime<Utc>,
}

/// One change of a component's status history: from `at` on, the component had `status` (the
/// uptime bars of the status page are computed from these, `web::uptime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    pub at: DateTime<Utc>,
    pub status: ComponentStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses() {
        assert_eq!(
            ComponentName::parse(" Check-in ").unwrap().as_str(),
            "Check-in"
        );
        assert!(ComponentName::parse("").is_err());
        assert!(ComponentName::parse("a;b").is_err());
        assert!(ComponentName::parse(&"a".repeat(65)).is_err());
        assert_eq!(
            ComponentStatus::parse("partial_outage").unwrap(),
            ComponentStatus::PartialOutage
        );
        assert!(ComponentStatus::parse("down").is_err());
    }
}
