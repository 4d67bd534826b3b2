//! The people aggregates of the port: users (and their password hashes), personal API tokens,
//! browser sessions and TOTP second factors.
//!
//! They are separate traits because they change under separate rules and a caller usually needs
//! one: the authentication path of every request reads a token or a session and its user, the
//! team's API manages users and tokens, sign-in manages sessions and second factors. Secrets are
//! never stored: tokens and sessions are found by the SHA-256 of what the client presents, and
//! passwords are argon2id PHC strings computed by the API.
//!
//! Two writes are deliberately not durable when they resolve, because they are on the hot path
//! of every authenticated request (at most once a minute per token or session) and losing them
//! in a crash decides nothing: [`Tokens::touch_tokens`] and [`Sessions::touch_session`] (and the
//! housekeeping [`Sessions::prune_sessions`]). A backend must keep them cheap: no flush, no
//! round trip more than the write itself.

use super::super::users::{Changed, Record};
use super::super::{Store, StoreError};
use crate::domain::{ApiToken, Session, TotpRecord, User, UserName};
use chrono::{DateTime, Duration, Utc};
use std::future::Future;
use ulid::Ulid;

/// Users: names (unique), profile and role, and each one's password hash.
pub trait Users {
    /// Adds a user with the PHC string of their password; a taken name is a conflict. Durable.
    fn add_user(
        &self,
        user: User,
        password_hash: &str,
    ) -> impl Future<Output = Result<User, StoreError>> + Send;

    /// One user, if there is one by that name.
    fn user(
        &self,
        name: &UserName,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Every user, by name.
    fn users(&self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;

    /// Changes a user with `change` (given the stored one; it may refuse) in one atomic
    /// read-modify-write; returns (before, after). An unknown name is not found. Durable.
    fn change_user(
        &self,
        name: &UserName,
        change: impl FnOnce(&User) -> Result<User, StoreError> + Send,
    ) -> impl Future<Output = Result<Changed, StoreError>> + Send;

    /// Removes a user with their password, second factor and sessions, and revokes their tokens
    /// (which stay listed as revoked), in one consistent step; returns the user. Durable.
    fn remove_user(
        &self,
        name: &UserName,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<User, StoreError>> + Send;

    /// The PHC string of a user's password.
    fn password_hash(
        &self,
        name: &UserName,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Replaces a user's password hash; an unknown name is not found. Durable.
    fn set_password(
        &self,
        name: &UserName,
        password_hash: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Personal API tokens, found by the SHA-256 of their secret (never stored).
pub trait Tokens {
    /// Stores a new token under the hash of its secret (a hash already known is a conflict).
    /// Durable.
    fn add_token(
        &self,
        token: &ApiToken,
        secret_hash: &[u8; 32],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The token whose secret hashes to `secret_hash`, live or not (a revoked token may no
    /// longer be found this way).
    fn token_by_hash(
        &self,
        secret_hash: &[u8; 32],
    ) -> impl Future<Output = Result<Option<ApiToken>, StoreError>> + Send;

    /// One token by id.
    fn token(&self, id: Ulid) -> impl Future<Output = Result<Option<ApiToken>, StoreError>> + Send;

    /// Tokens, oldest first: all of them, or one owner's.
    fn tokens(
        &self,
        owner: Option<&UserName>,
    ) -> impl Future<Output = Result<Vec<ApiToken>, StoreError>> + Send;

    /// Revokes a token: it stops working at once and stays listed as revoked (revoking one
    /// again keeps the first time). Returns it as stored. Durable.
    fn revoke_token(
        &self,
        id: Ulid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ApiToken, StoreError>> + Send;

    /// Records last-used times (a time never goes back; unknown ids are skipped). Not durable
    /// when it resolves: a crash loses at most a minute of "last used", never a security
    /// decision. On every request's path at most once a minute: keep it cheap.
    fn touch_tokens(
        &self,
        used: &[(Ulid, DateTime<Utc>)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Browser sessions, found by the SHA-256 of their id (never stored).
pub trait Sessions {
    /// Stores a new session under the hash of its id (a hash already known is a conflict).
    /// Durable.
    fn add_session(
        &self,
        hash: &[u8; 32],
        session: &Session,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The session whose id hashes to `hash`.
    fn session(
        &self,
        hash: &[u8; 32],
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Records activity (the last-seen time never goes back); a session ended meanwhile stays
    /// ended. Not durable when it resolves: a crash loses at most the last minute of activity,
    /// which can only end a session earlier. On the request path: keep it cheap.
    fn touch_session(
        &self,
        hash: &[u8; 32],
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Lets an enrol-only session act fully (its user has just enrolled a second factor); an
    /// unknown session is left alone. Durable.
    fn upgrade_session(
        &self,
        hash: &[u8; 32],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends one session (logout, expiry); returns it if it existed. Durable.
    fn end_session(
        &self,
        hash: &[u8; 32],
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Ends every session of a user (disabled, role changed, removed, password reset); returns
    /// how many. Durable.
    fn end_sessions_of(
        &self,
        user: &UserName,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Removes sessions past their `idle` or `absolute` limit at `now` (they are refused
    /// already; this keeps the store small); returns how many. Not durable when it resolves: a
    /// crash at worst leaves them to the next pruning.
    fn prune_sessions(
        &self,
        now: DateTime<Utc>,
        idle: Duration,
        absolute: Duration,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Every session of a user (the session listing, tests).
    fn sessions_of(
        &self,
        user: &UserName,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;
}

/// TOTP second factors: one record per user (its secret, the last time step used, the hashes of
/// the unused recovery codes).
pub trait SecondFactors {
    /// A user's TOTP record.
    fn totp(
        &self,
        user: &UserName,
    ) -> impl Future<Output = Result<Option<TotpRecord>, StoreError>> + Send;

    /// Changes a user's TOTP record with `change`, given the current one (it may refuse; it
    /// returns the next record, `None` to remove it, and a value handed back), in one atomic
    /// read-modify-write, so a code or a recovery code is accepted once. `change` runs once.
    /// Durable.
    fn change_totp<R: Send>(
        &self,
        user: &UserName,
        change: impl FnOnce(Option<TotpRecord>) -> Result<(Option<TotpRecord>, R), StoreError> + Send,
    ) -> impl Future<Output = Result<R, StoreError>> + Send;
}

/// Every stored record, raw: for tests that prove a secret (a password, a token, a session id, a
/// recovery code) is stored nowhere. Not for production code.
pub trait Dump {
    /// Every (tree or table name, key, value) in the store, as bytes.
    fn dump(&self) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;
}

/// The handle dispatches each method to the open backend.
impl Users for Store {
    async fn add_user(&self, user: User, password_hash: &str) -> Result<User, StoreError> {
        match self {
            Store::Sled(s) => s.add_user(user, password_hash).await,
            Store::Pg(p) => p.add_user(user, password_hash).await,
        }
    }

    async fn user(&self, name: &UserName) -> Result<Option<User>, StoreError> {
        match self {
            Store::Sled(s) => s.user(name).await,
            Store::Pg(p) => p.user(name).await,
        }
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        match self {
            Store::Sled(s) => s.users().await,
            Store::Pg(p) => p.users().await,
        }
    }

    async fn change_user(
        &self,
        name: &UserName,
        change: impl FnOnce(&User) -> Result<User, StoreError> + Send,
    ) -> Result<Changed, StoreError> {
        match self {
            Store::Sled(s) => s.change_user(name, change).await,
            Store::Pg(p) => p.change_user(name, change).await,
        }
    }

    async fn remove_user(&self, name: &UserName, now: DateTime<Utc>) -> Result<User, StoreError> {
        match self {
            Store::Sled(s) => s.remove_user(name, now).await,
            Store::Pg(p) => p.remove_user(name, now).await,
        }
    }

    async fn password_hash(&self, name: &UserName) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sled(s) => s.password_hash(name).await,
            Store::Pg(p) => p.password_hash(name).await,
        }
    }

    async fn set_password(&self, name: &UserName, password_hash: &str) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.set_password(name, password_hash).await,
            Store::Pg(p) => p.set_password(name, password_hash).await,
        }
    }
}

impl Tokens for Store {
    async fn add_token(&self, token: &ApiToken, secret_hash: &[u8; 32]) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.add_token(token, secret_hash).await,
            Store::Pg(p) => p.add_token(token, secret_hash).await,
        }
    }

    async fn token_by_hash(&self, secret_hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        match self {
            Store::Sled(s) => s.token_by_hash(secret_hash).await,
            Store::Pg(p) => p.token_by_hash(secret_hash).await,
        }
    }

    async fn token(&self, id: Ulid) -> Result<Option<ApiToken>, StoreError> {
        match self {
            Store::Sled(s) => s.token(id).await,
            Store::Pg(p) => p.token(id).await,
        }
    }

    async fn tokens(&self, owner: Option<&UserName>) -> Result<Vec<ApiToken>, StoreError> {
        match self {
            Store::Sled(s) => s.tokens(owner).await,
            Store::Pg(p) => p.tokens(owner).await,
        }
    }

    async fn revoke_token(&self, id: Ulid, now: DateTime<Utc>) -> Result<ApiToken, StoreError> {
        match self {
            Store::Sled(s) => s.revoke_token(id, now).await,
            Store::Pg(p) => p.revoke_token(id, now).await,
        }
    }

    async fn touch_tokens(&self, used: &[(Ulid, DateTime<Utc>)]) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.touch_tokens(used).await,
            Store::Pg(p) => p.touch_tokens(used).await,
        }
    }
}

impl Sessions for Store {
    async fn add_session(&self, hash: &[u8; 32], session: &Session) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.add_session(hash, session).await,
            Store::Pg(p) => p.add_session(hash, session).await,
        }
    }

    async fn session(&self, hash: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        match self {
            Store::Sled(s) => s.session(hash).await,
            Store::Pg(p) => p.session(hash).await,
        }
    }

    async fn touch_session(&self, hash: &[u8; 32], at: DateTime<Utc>) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.touch_session(hash, at).await,
            Store::Pg(p) => p.touch_session(hash, at).await,
        }
    }

    async fn upgrade_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.upgrade_session(hash).await,
            Store::Pg(p) => p.upgrade_session(hash).await,
        }
    }

    async fn end_session(&self, hash: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        match self {
            Store::Sled(s) => s.end_session(hash).await,
            Store::Pg(p) => p.end_session(hash).await,
        }
    }

    async fn end_sessions_of(&self, user: &UserName) -> Result<usize, StoreError> {
        match self {
            Store::Sled(s) => s.end_sessions_of(user).await,
            Store::Pg(p) => p.end_sessions_of(user).await,
        }
    }

    async fn prune_sessions(
        &self,
        now: DateTime<Utc>,
        idle: Duration,
        absolute: Duration,
    ) -> Result<usize, StoreError> {
        match self {
            Store::Sled(s) => s.prune_sessions(now, idle, absolute).await,
            Store::Pg(p) => p.prune_sessions(now, idle, absolute).await,
        }
    }

    async fn sessions_of(&self, user: &UserName) -> Result<Vec<Session>, StoreError> {
        match self {
            Store::Sled(s) => s.sessions_of(user).await,
            Store::Pg(p) => p.sessions_of(user).await,
        }
    }
}

impl SecondFactors for Store {
    async fn totp(&self, user: &UserName) -> Result<Option<TotpRecord>, StoreError> {
        match self {
            Store::Sled(s) => s.totp(user).await,
            Store::Pg(p) => p.totp(user).await,
        }
    }

    async fn change_totp<R: Send>(
        &self,
        user: &UserName,
        change: impl FnOnce(Option<TotpRecord>) -> Result<(Option<TotpRecord>, R), StoreError> + Send,
    ) -> Result<R, StoreError> {
        match self {
            Store::Sled(s) => s.change_totp(user, change).await,
            Store::Pg(p) => p.change_totp(user, change).await,
        }
    }
}

impl Dump for Store {
    async fn dump(&self) -> Result<Vec<Record>, StoreError> {
        match self {
            Store::Sled(s) => s.dump().await,
            Store::Pg(p) => p.dump().await,
        }
    }
}
