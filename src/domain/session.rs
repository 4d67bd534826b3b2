//! A browser session and a user's TOTP second factor, as crier keeps them (no secret of a
//! session: it is looked up by the SHA-256 of its id). What sessions mean — expiry, idle time,
//! enrol-only — is decided in [`crate::api::session`]; a backend stores these records.

use super::{Role, UserName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// A browser session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session's public handle (audit entries name it), not its secret.
    pub id: Ulid,
    pub user: UserName,
    /// The user's role when the session began; a session whose user's role has changed since
    /// is not accepted (role changes also end sessions).
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Signed in with a password only, by a user whose role needs a second factor they have
    /// not enrolled: the session may do nothing but enrol one.
    #[serde(default)]
    pub enrol_only: bool,
}

/// A user's TOTP state. `Debug` leaves the secret out; the API never shows it after enrolment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpRecord {
    /// The shared secret (base32), needed to verify codes.
    pub secret: String,
    /// False between `POST /me/totp` and the confirming first code.
    pub enabled: bool,
    /// The last time step a code was accepted for: that step and earlier ones are refused.
    #[serde(default)]
    pub last_step: Option<i64>,
    /// SHA-256 (hex) of each unused recovery code.
    #[serde(default)]
    pub recovery: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("secret", &"(hidden)")
            .field("enabled", &self.enabled)
            .field("last_step", &self.last_step)
            .field("recovery", &self.recovery.len())
            .field("created_at", &self.created_at)
            .finish()
    }
}
