//! People and their credentials: users with a role, personal API tokens, and the password rule.
//!
//! Roles are ordered, each including everything the ones below may do:
//! `viewer` < `responder` < `publisher` < `admin` (the route × role table that applies them is
//! in `api::authz`). Secrets never live in these types: a user's password hash is kept apart by
//! the store, and a token is known here only by its id; its secret exists once, in the answer
//! that created it.

use super::DomainError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// What a person (or a token) may do, from least to most.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads incidents, deliveries, components and the audit log; sees subscriber counts, never
    /// subscriber addresses.
    Viewer,
    /// Also drafts and updates incidents and changes component status.
    Responder,
    /// Also publishes, manages subscribers and notices, requeues deliveries.
    Publisher,
    /// Also manages users and everyone's tokens.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Responder, Role::Publisher, Role::Admin];

    pub fn parse(s: &str) -> Result<Role, DomainError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "responder" => Ok(Role::Responder),
            "publisher" => Ok(Role::Publisher),
            "admin" => Ok(Role::Admin),
            other => Err(DomainError::invalid(
                "role",
                format!("\"{other}\" is not a role; use viewer, responder, publisher or admin"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Publisher => "publisher",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The actor name of the bootstrap admin token (`<data>/admin.token`); no user may take it.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// A login name: 2-32 characters, lowercase ASCII letters, digits, `.`, `-` and `_`, starting
/// with a letter. Input is lower-cased first, so `Maria` and `maria` are the same user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<UserName, DomainError> {
        let name = s.trim().to_ascii_lowercase();
        let bad = |why: &str| {
            DomainError::invalid(
                "name",
                format!("\"{}\" {why}; a user name is 2-32 characters: lowercase letters, digits, '.', '-' or '_', starting with a letter (e.g. maria.k)", s.trim()),
            )
        };
        let n = name.chars().count();
        if !(2..=32).contains(&n) {
            return Err(bad("has the wrong length"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(bad("does not start with a letter"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
        {
            return Err(bad("has a character that is not allowed"));
        }
        if name == BOOTSTRAP_ADMIN {
            return Err(DomainError::invalid(
                "name",
                "\"admin\" names the bootstrap admin token (<data>/admin.token); choose a person's name",
            ));
        }
        Ok(UserName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person who may sign in. The password hash is not part of it (the store keeps credentials
/// in a tree of their own), so a `User` can be shown and logged as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    #[schema(value_type = String, example = "maria.k")]
    pub name: UserName,
    pub display_name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<super::PhoneNumber>,
    /// A disabled user cannot sign in and their tokens stop working.
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// Checks a display name: 1-100 characters on one line.
pub fn check_display_name(s: &str) -> Result<String, DomainError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 100 {
        return Err(DomainError::invalid(
            "display_name",
            "give a display name of 1-100 characters, e.g. \"Maria Korhonen\"",
        ));
    }
    super::check_line("display_name", s)?;
    Ok(s.to_owned())
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (argon2 hashes any length; this bounds the work per request).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The password rule: at least 12 characters, at most 1024 bytes, and not containing the user
/// name (in any case). The message never repeats the password.
pub fn check_password(name: &UserName, password: &str) -> Result<(), DomainError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("is too short; use at least {MIN_PASSWORD_CHARS} characters (a few unrelated words make a good one)"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(DomainError::invalid(
            "password",
            format!("is too long; use at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    if password.to_lowercase().contains(name.as_str()) {
        return Err(DomainError::invalid(
            "password",
            "contains the user name; choose one that does not",
        ));
    }
    Ok(())
}

/// A personal API token as stored: everything but its secret (the store keeps only the
/// secret's SHA-256, as the key that finds this record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiToken {
    #[schema(value_type = String)]
    pub id: Ulid,
    /// What it is for, e.g. "laptop" or "login".
    pub name: String,
    #[schema(value_type = String)]
    pub owner: UserName,
    /// The most it may do; never above the owner's role (and capped by the owner's current
    /// role on every request, so demoting a user demotes their tokens).
    pub role: Role,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Approximate: kept in memory and written at most once a minute.
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether it may still be used at `now`.
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// Checks a token's name: 1-64 characters on one line.
pub fn check_token_name(s: &str) -> Result<String, DomainError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 64 {
        return Err(DomainError::invalid(
            "name",
            "give the token a name of 1-64 characters saying what it is for, e.g. \"laptop\"",
        ));
    }
    super::check_line("name", s)?;
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_in_any_case() {
        assert!(Role::Viewer < Role::Responder);
        assert!(Role::Responder < Role::Publisher);
        assert!(Role::Publisher < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(&r.as_str().to_uppercase()).unwrap(), r);
        }
        assert!(Role::parse("root")
            .unwrap_err()
            .to_string()
            .contains("viewer"));
    }

    #[test]
    fn user_names_are_lowercased_and_validated() {
        assert_eq!(UserName::parse(" Maria.K ").unwrap().as_str(), "maria.k");
        for bad in [
            "",
            "a",
            "1abc",
            "maria k",
            "märia",
            "x".repeat(33).as_str(),
            "admin",
            "ADMIN",
        ] {
            assert!(UserName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(UserName::parse("ab").is_ok());
    }

    #[test]
    fn passwords_need_length_and_must_not_contain_the_name() {
        let n = UserName::parse("maria").unwrap();
        assert!(check_password(&n, "short pass").is_err());
        assert!(check_password(&n, "MARIA-is-great-2026").is_err());
        assert!(check_password(&n, &"x".repeat(1025)).is_err());
        assert!(check_password(&n, "correct horse battery").is_ok());
        // Counted in characters, not bytes.
        assert!(check_password(&n, "ääääääääääää").is_ok());
        let e = check_password(&n, "hunter2").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn a_token_is_live_until_revoked_or_expired() {
        let now = Utc::now();
        let mut t = ApiToken {
            id: Ulid::new(),
            name: "x".into(),
            owner: UserName::parse("maria").unwrap(),
            role: Role::Viewer,
            created_at: now,
            expires_at: Some(now + chrono::Duration::seconds(10)),
            last_used_at: None,
            revoked_at: None,
        };
        assert!(t.live(now));
        assert!(!t.live(now + chrono::Duration::seconds(10)));
        t.expires_at = None;
        assert!(t.live(now + chrono::Duration::days(9999)));
        t.revoked_at = Some(now);
        assert!(!t.live(now));
    }
}
