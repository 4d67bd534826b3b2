//! PostgreSQL backend of the port's users, API tokens, browser sessions and TOTP second factors
//! (`Users`, `Tokens`, `Sessions`, `SecondFactors`, `Dump`), over the tables `crier_users`,
//! `crier_tokens`, `crier_sessions` and `crier_totp` (migrations 2 and 4).
//!
//! Why it looks as it does:
//! - **Only what sled stores**: a user's row holds the argon2id PHC string (sled's
//!   `credentials`), tokens and sessions are keyed by the SHA-256 of their secret, and a revoked
//!   token loses its hash (sled drops it from `token_hashes`; migration 4 lets the column be
//!   NULL), so a revoked token is not found by its secret here either.
//! - **Read-modify-write across nodes**: sled runs a user, password or TOTP change under its one
//!   people lock, so the caller's transform runs once. Here each such method is one transaction
//!   that locks the row it reads (`FOR UPDATE`). A TOTP record may not exist yet, so
//!   [`SecondFactors::change_totp`] locks its user's row instead (and, for a name with no user,
//!   a transaction-scoped advisory lock on the name): two codes checked at once on two nodes are
//!   one after the other, and a code is accepted once.
//! - **The hot path stays cheap**: `touch_tokens` and `touch_session` are one statement each (no
//!   explicit transaction, no read first); a time never goes back because the statement only
//!   updates rows whose stored time is earlier, and an ended session has no row to update.
//! - **The same answers as sled**: its conflict and not-found messages, its orders (users by
//!   name and tokens by id as Rust orders them; sessions by hash, bytewise as `bytea` sorts).
//! - **Dump** gives every row of every crier table as (table without `crier_`, key, value)
//!   bytes, as sled gives its trees, with `bytea` columns appended raw so a test scanning for a
//!   secret's bytes sees exactly what is stored.

use chrono::{DateTime, Duration, Utc};
use tokio_postgres::Row;
use ulid::Ulid;

use super::{begin, db, PgStore};
use crate::domain::{ApiToken, Session, TotpRecord, User, UserName};
use crate::pg::rows;
use crate::store::port::{Dump, SecondFactors, Sessions, Tokens, Users};
use crate::store::users::{Changed, Record};
use crate::store::StoreError;

fn user_not_found(name: &UserName) -> StoreError {
    StoreError::NotFound {
        what: "user",
        id: name.to_string(),
    }
}

fn token_not_found(id: Ulid) -> StoreError {
    StoreError::NotFound {
        what: "token",
        id: id.to_string(),
    }
}

/// A value as the JSON text serde writes (and sled stores) for it.
fn json_text<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The decoded `body` (column 0) of a row.
fn body_of<T: serde::de::DeserializeOwned>(what: &str, r: &Row) -> Result<T, StoreError> {
    let body: &str = r.try_get(0).map_err(db)?;
    Ok(rows::from_json(what, body)?)
}

fn bodies_of<T: serde::de::DeserializeOwned>(
    what: &str,
    found: &[Row],
) -> Result<Vec<T>, StoreError> {
    found.iter().map(|r| body_of(what, r)).collect()
}

/// The advisory lock class of TOTP changes for a name with no user row ("crier-tp").
const TOTP_LOCK_CLASS: i32 = 0x6372_7470;

impl Users for PgStore {
    async fn add_user(&self, user: User, password_hash: &str) -> Result<User, StoreError> {
        let client = self.client().await?;
        rows::put_user(&**client, &user, password_hash, rows::Write::Insert).await?;
        Ok(user)
    }

    async fn user(&self, name: &UserName) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_users WHERE name = $1",
                &[&name.as_str()],
            )
            .await
            .map_err(db)?;
        row.as_ref().map(|r| body_of("user", r)).transpose()
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let client = self.client().await?;
        let found = client
            .query("SELECT body::text FROM crier_users", &[])
            .await
            .map_err(db)?;
        let mut all: Vec<User> = bodies_of("user", &found)?;
        // sled's key order: the name's bytes, whatever the database's collation.
        all.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(all)
    }

    async fn change_user(
        &self,
        name: &UserName,
        change: impl FnOnce(&User) -> Result<User, StoreError> + Send,
    ) -> Result<Changed, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let row = tx
            .query_opt(
                "SELECT body::text FROM crier_users WHERE name = $1 FOR UPDATE",
                &[&name.as_str()],
            )
            .await
            .map_err(db)?;
        let before: User = match row {
            Some(r) => body_of("user", &r)?,
            None => return Err(user_not_found(name)),
        };
        let after = change(&before)?;
        // Stored under the name it was found by, as sled stores it under its key.
        tx.execute(
            "UPDATE crier_users SET role = $2, disabled = $3, created_at = $4, body = $5::text::jsonb
             WHERE name = $1",
            &[
                &name.as_str(),
                &rows::word(&after.role)?,
                &after.disabled,
                &after.created_at,
                &json_text(&after)?,
            ],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok((before, after))
    }

    async fn remove_user(&self, name: &UserName, now: DateTime<Utc>) -> Result<User, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // The user's row (with the password hash) first: it locks the user against a change or
        // a TOTP change of another node until the commit.
        let row = tx
            .query_opt(
                "DELETE FROM crier_users WHERE name = $1 RETURNING body::text",
                &[&name.as_str()],
            )
            .await
            .map_err(db)?;
        let removed: User = match row {
            Some(r) => body_of("user", &r)?,
            None => return Err(user_not_found(name)),
        };
        tx.execute(
            "DELETE FROM crier_totp WHERE user_name = $1",
            &[&name.as_str()],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "DELETE FROM crier_sessions WHERE user_name = $1",
            &[&name.as_str()],
        )
        .await
        .map_err(db)?;
        // Their live tokens are revoked (and lose their hash, as sled drops it); revoked ones
        // keep their first revocation.
        tx.execute(
            "UPDATE crier_tokens
             SET revoked_at = $2, secret_hash = NULL,
                 body = jsonb_set(body, '{revoked_at}', $3::text::jsonb)
             WHERE owner = $1 AND revoked_at IS NULL",
            &[&name.as_str(), &now, &json_text(&now)?],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(removed)
    }

    async fn password_hash(&self, name: &UserName) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT password_hash FROM crier_users WHERE name = $1",
                &[&name.as_str()],
            )
            .await
            .map_err(db)?;
        row.map(|r| r.try_get(0).map_err(db)).transpose()
    }

    async fn set_password(&self, name: &UserName, password_hash: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE crier_users SET password_hash = $2 WHERE name = $1",
                &[&name.as_str(), &password_hash],
            )
            .await
            .map_err(db)?;
        if n == 0 {
            return Err(user_not_found(name));
        }
        Ok(())
    }
}

impl Tokens for PgStore {
    async fn add_token(&self, token: &ApiToken, secret_hash: &[u8; 32]) -> Result<(), StoreError> {
        let client = self.client().await?;
        // A hash (or an id) already known: "token collision; try again", as on sled.
        Ok(rows::put_token(&**client, token, Some(secret_hash), rows::Write::Insert).await?)
    }

    async fn token_by_hash(&self, secret_hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        let client = self.client().await?;
        Ok(rows::token_by_hash(&**client, secret_hash).await?)
    }

    async fn token(&self, id: Ulid) -> Result<Option<ApiToken>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_tokens WHERE id = $1",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?;
        row.as_ref().map(|r| body_of("token", r)).transpose()
    }

    async fn tokens(&self, owner: Option<&UserName>) -> Result<Vec<ApiToken>, StoreError> {
        let client = self.client().await?;
        let owner = owner.map(UserName::as_str);
        let found = client
            .query(
                "SELECT body::text FROM crier_tokens WHERE $1::text IS NULL OR owner = $1",
                &[&owner],
            )
            .await
            .map_err(db)?;
        let mut all: Vec<ApiToken> = bodies_of("token", &found)?;
        // Oldest first: ULID order, as sled's keys.
        all.sort_by_key(|t| t.id);
        Ok(all)
    }

    async fn revoke_token(&self, id: Ulid, now: DateTime<Utc>) -> Result<ApiToken, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // Locked until the commit: of two revocations at once, the second keeps the first's
        // time.
        let row = tx
            .query_opt(
                "SELECT body::text FROM crier_tokens WHERE id = $1 FOR UPDATE",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?;
        let mut token: ApiToken = match row {
            Some(r) => body_of("token", &r)?,
            None => return Err(token_not_found(id)),
        };
        if token.revoked_at.is_none() {
            token.revoked_at = Some(now);
        }
        tx.execute(
            "UPDATE crier_tokens
             SET revoked_at = $2, secret_hash = NULL, body = $3::text::jsonb
             WHERE id = $1",
            &[&id.to_string(), &token.revoked_at, &json_text(&token)?],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(token)
    }

    /// One statement for the whole batch: each known token's `last_used_at` moves to the
    /// latest time given for it, only forward.
    async fn touch_tokens(&self, used: &[(Ulid, DateTime<Utc>)]) -> Result<(), StoreError> {
        // The latest time per token (sled applies them in turn, keeping the latest).
        let mut latest: std::collections::BTreeMap<Ulid, DateTime<Utc>> = Default::default();
        for (id, at) in used {
            let e = latest.entry(*id).or_insert(*at);
            if *e < *at {
                *e = *at;
            }
        }
        if latest.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = latest.keys().map(Ulid::to_string).collect();
        let ats: Vec<DateTime<Utc>> = latest.values().copied().collect();
        let texts = latest
            .values()
            .map(json_text)
            .collect::<Result<Vec<String>, StoreError>>()?;
        let client = self.client().await?;
        client
            .execute(
                "UPDATE crier_tokens t
                 SET body = jsonb_set(t.body, '{last_used_at}', u.js::jsonb)
                 FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(id, at, js)
                 WHERE t.id = u.id
                   AND (jsonb_typeof(t.body -> 'last_used_at') IS DISTINCT FROM 'string'
                        OR (t.body ->> 'last_used_at')::timestamptz < u.at)",
                &[&ids, &ats, &texts],
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}

impl Sessions for PgStore {
    async fn add_session(&self, hash: &[u8; 32], session: &Session) -> Result<(), StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO crier_sessions (secret_hash, id, user_name, last_seen_at, body)
                 VALUES ($1, $2, $3, $4, $5::text::jsonb)
                 ON CONFLICT DO NOTHING",
                &[
                    &hash.as_slice(),
                    &session.id.to_string(),
                    &session.user.as_str(),
                    &session.last_seen_at,
                    &json_text(session)?,
                ],
            )
            .await
            .map_err(db)?;
        if n == 0 {
            return Err(StoreError::Conflict(
                "session collision; sign in again".into(),
            ));
        }
        Ok(())
    }

    async fn session(&self, hash: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        let client = self.client().await?;
        Ok(rows::session(&**client, hash).await?)
    }

    /// One statement: a row that is gone (ended) is not brought back, and the time only moves
    /// forward.
    async fn touch_session(&self, hash: &[u8; 32], at: DateTime<Utc>) -> Result<(), StoreError> {
        let js = json_text(&at)?;
        let client = self.client().await?;
        client
            .execute(
                "UPDATE crier_sessions
                 SET last_seen_at = $2, body = jsonb_set(body, '{last_seen_at}', $3::text::jsonb)
                 WHERE secret_hash = $1 AND last_seen_at < $2",
                &[&hash.as_slice(), &at, &js],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn upgrade_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE crier_sessions SET body = jsonb_set(body, '{enrol_only}', 'false')
                 WHERE secret_hash = $1",
                &[&hash.as_slice()],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn end_session(&self, hash: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM crier_sessions WHERE secret_hash = $1 RETURNING body::text",
                &[&hash.as_slice()],
            )
            .await
            .map_err(db)?;
        row.as_ref().map(|r| body_of("session", r)).transpose()
    }

    async fn end_sessions_of(&self, user: &UserName) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM crier_sessions WHERE user_name = $1",
                &[&user.as_str()],
            )
            .await
            .map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// One statement: past the idle limit by the `last_seen_at` column, past the absolute one
    /// by the body's `created_at`.
    async fn prune_sessions(
        &self,
        now: DateTime<Utc>,
        idle: Duration,
        absolute: Duration,
    ) -> Result<usize, StoreError> {
        // "now >= last_seen + idle" is "last_seen <= now - idle"; a limit too large to subtract
        // prunes nothing by it.
        let seen_before = now.checked_sub_signed(idle);
        let created_before = now.checked_sub_signed(absolute);
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM crier_sessions
                 WHERE ($1::timestamptz IS NOT NULL AND last_seen_at <= $1)
                    OR ($2::timestamptz IS NOT NULL
                        AND (body ->> 'created_at')::timestamptz <= $2)",
                &[&seen_before, &created_before],
            )
            .await
            .map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn sessions_of(&self, user: &UserName) -> Result<Vec<Session>, StoreError> {
        let client = self.client().await?;
        // By hash, bytewise, as sled's keys.
        let found = client
            .query(
                "SELECT body::text FROM crier_sessions WHERE user_name = $1 ORDER BY secret_hash",
                &[&user.as_str()],
            )
            .await
            .map_err(db)?;
        bodies_of("session", &found)
    }
}

impl SecondFactors for PgStore {
    async fn totp(&self, user: &UserName) -> Result<Option<TotpRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_totp WHERE user_name = $1",
                &[&user.as_str()],
            )
            .await
            .map_err(db)?;
        row.as_ref().map(|r| body_of("totp", r)).transpose()
    }

    async fn change_totp<R: Send>(
        &self,
        user: &UserName,
        change: impl FnOnce(Option<TotpRecord>) -> Result<(Option<TotpRecord>, R), StoreError> + Send,
    ) -> Result<R, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // The record may not exist yet (nothing to lock): lock the user's row, which every
        // change of this record takes first, so changes of two nodes run one after the other.
        let locked = tx
            .query_opt(
                "SELECT 1 FROM crier_users WHERE name = $1 FOR UPDATE",
                &[&user.as_str()],
            )
            .await
            .map_err(db)?;
        if locked.is_none() {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&TOTP_LOCK_CLASS, &user.as_str()],
            )
            .await
            .map_err(db)?;
        }
        let row = tx
            .query_opt(
                "SELECT body::text FROM crier_totp WHERE user_name = $1 FOR UPDATE",
                &[&user.as_str()],
            )
            .await
            .map_err(db)?;
        let current: Option<TotpRecord> = row.as_ref().map(|r| body_of("totp", r)).transpose()?;
        let (next, out) = change(current)?;
        match next {
            Some(r) => rows::put_totp(&tx, user, &r, rows::Write::Upsert).await?,
            None => {
                tx.execute(
                    "DELETE FROM crier_totp WHERE user_name = $1",
                    &[&user.as_str()],
                )
                .await
                .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }
}

impl Dump for PgStore {
    /// Every row of every crier table, from one snapshot: (the table's name without `crier_`,
    /// its primary key as JSON, the row as JSON followed by each `bytea` column's raw bytes).
    async fn dump(&self) -> Result<Vec<Record>, StoreError> {
        let mut client = self.client().await?;
        let tx = super::snapshot(&mut client).await?;
        let tables = tx
            .query(
                "SELECT c.relname::text,
                        COALESCE((SELECT array_agg(quote_ident(a.attname::text) ORDER BY k.ord)
                                  FROM pg_index i
                                  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(att, ord)
                                  JOIN pg_attribute a
                                    ON a.attrelid = c.oid AND a.attnum = k.att
                                  WHERE i.indrelid = c.oid AND i.indisprimary),
                                 '{}') AS pk,
                        COALESCE((SELECT array_agg(quote_ident(a.attname::text) ORDER BY a.attnum)
                                  FROM pg_attribute a
                                  WHERE a.attrelid = c.oid AND a.attnum > 0
                                    AND NOT a.attisdropped
                                    AND a.atttypid = 'bytea'::regtype),
                                 '{}') AS raw
                 FROM pg_class c
                 WHERE c.relkind = 'r' AND c.relname LIKE 'crier\\_%'
                   AND c.relnamespace = current_schema()::regnamespace
                 ORDER BY c.relname",
                &[],
            )
            .await
            .map_err(db)?;
        let mut out = Vec::new();
        for t in &tables {
            let table: String = t.try_get(0).map_err(db)?;
            let pk: Vec<String> = t.try_get(1).map_err(db)?;
            let raw: Vec<String> = t.try_get(2).map_err(db)?;
            let key = if pk.is_empty() {
                "NULL::text".to_owned()
            } else {
                format!("json_build_array({})::text", pk.join(", "))
            };
            let mut cols = vec![key, "row_to_json(t)::text".to_owned()];
            cols.extend(raw.iter().cloned());
            let order = if pk.is_empty() {
                String::new()
            } else {
                format!(" ORDER BY {}", pk.join(", "))
            };
            let sql = format!(
                "SELECT {} FROM {} t{order}",
                cols.join(", "),
                quote_ident(&table)
            );
            let name = table.strip_prefix("crier_").unwrap_or(&table).as_bytes();
            for r in tx.query(&sql, &[]).await.map_err(db)? {
                let k: Option<String> = r.try_get(0).map_err(db)?;
                let v: String = r.try_get(1).map_err(db)?;
                let mut value = v.into_bytes();
                for i in 0..raw.len() {
                    if let Some(b) = r.try_get::<_, Option<Vec<u8>>>(2 + i).map_err(db)? {
                        value.push(0);
                        value.extend_from_slice(&b);
                    }
                }
                out.push((name.to_vec(), k.unwrap_or_default().into_bytes(), value));
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }
}

/// A table name as an SQL identifier (the names come from the catalogue, but are quoted all the
/// same).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
