//! PostgreSQL backend of the port's subscribers and their sign-ups, notices, hold-downs and
//! standalone messages (Subscribers, SignUps, Notices, Holds, Standalones).
//!
//! Why it looks as it does (the sled store, `store/mod.rs`, `store/signup.rs`,
//! `store/schedule.rs`, is the reference for every answer):
//! - **A subscriber's address is unique** by the table's `UNIQUE (contact_kind, address)`: two
//!   nodes adding or signing up one address at once cannot both create it; the loser gets sled's
//!   conflict message (`rows::put_subscriber`), or, for a sign-up, renews the winner's record.
//! - **Sign-up rules are the domain's** (`domain::signup`): each change reads the subscriber
//!   `FOR UPDATE`, applies the pure rule and writes the result in the same transaction; a
//!   refusal rolls back and writes nothing.
//! - **Unknown components write nothing**: the component check runs inside the write's
//!   transaction and keeps the named components (`FOR KEY SHARE`) until it commits, so a
//!   component removed by another node meanwhile cannot leave a filter naming it.
//! - **Listings read in pages** by id (the order subscribers were added, as sled's keys), inside
//!   one read-only snapshot, so a walk over 100,000 subscribers never holds them all at once.
//!   Ids are compared and ordered `COLLATE "C"` (bytewise, as sled's keys; the database's
//!   collation may order text otherwise), over migration 5's index of that collation.
//! - **A standalone message is posted once** per (origin, seq): its record is inserted with
//!   `ON CONFLICT DO NOTHING` (a second node posting the same one waits on the key until the
//!   first commits, then does nothing), and its broadcasts in the same transaction.

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row, Transaction};
use ulid::Ulid;

use super::{begin, corrupt, db, snapshot, sql_limit, PgStore};
use crate::domain::signup::{self as rules};
use crate::domain::standalone::STANDALONE_BASE;
use crate::domain::{
    Broadcast, CodeCheck, ComponentName, Contact, DomainError, Hold, ImportCounts, Locale,
    NewSubscriber, Notice, Secret, SignUp, Standalone, Subscriber,
};
use crate::pg::rows::{self, Write};
use crate::store::port::{Holds, Notices, SignUps, Standalones, Subscribers};
use crate::store::StoreError;

/// Subscribers read per round trip of a listing.
const PAGE: usize = 1000;

/// Subscribers inserted per statement of an import.
const IMPORT_STATEMENT: usize = 1000;

fn random(n: usize) -> Result<String, StoreError> {
    crate::token::random_hex(n).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))
}

/// A new subscriber record, as the sled store makes it.
fn new_subscriber(new: NewSubscriber, now: DateTime<Utc>) -> Result<Subscriber, StoreError> {
    Ok(Subscriber {
        id: Ulid::new(),
        contact: new.contact,
        locale: new.locale,
        components: new.components,
        confirmed: new.confirmed,
        unsubscribe_token: random(16)?,
        created_at: now,
        opted_out: false,
        pending: None,
    })
}

fn contact_kind(c: &Contact) -> &'static str {
    match c {
        Contact::Email(_) => "email",
        Contact::Phone(_) => "phone",
    }
}

fn subscriber_not_found(id: impl ToString) -> StoreError {
    StoreError::NotFound {
        what: "subscriber",
        id: id.to_string(),
    }
}

fn subscriber_of(row: &Row) -> Result<Subscriber, StoreError> {
    let body: &str = row.try_get(0).map_err(db)?;
    Ok(rows::from_json("subscriber", body)?)
}

/// The JSON bodies of `rows` (column 0), in order.
fn bodies<T: serde::de::DeserializeOwned>(what: &str, rows: &[Row]) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|r| {
            let body: &str = r.try_get(0).map_err(db)?;
            Ok(rows::from_json(what, body)?)
        })
        .collect()
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Refuses components that do not exist (sled's error, in the order named) and keeps those that
/// do from being removed until `tx` ends.
async fn components_exist(tx: &Transaction<'_>, names: &[ComponentName]) -> Result<(), StoreError> {
    if names.is_empty() {
        return Ok(());
    }
    let wanted: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let rows = tx
        .query(
            "SELECT name FROM crier_components WHERE name = ANY($1) FOR KEY SHARE",
            &[&wanted],
        )
        .await
        .map_err(db)?;
    let found: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()
        .map_err(db)?;
    match names.iter().find(|n| !found.contains(n.as_str())) {
        Some(n) => Err(DomainError::UnknownComponent(n.to_string()).into()),
        None => Ok(()),
    }
}

/// A subscriber's id from its id, email or phone number (sled's `subscriber_id`).
async fn subscriber_id<C: GenericClient>(c: &C, key: &str) -> Result<Ulid, StoreError> {
    if let Ok(id) = Ulid::from_string(key.trim()) {
        return Ok(id);
    }
    let contact = Contact::parse_any(key)?;
    let row = c
        .query_opt(
            "SELECT id FROM crier_subscribers WHERE contact_kind = $1 AND address = $2",
            &[&contact_kind(&contact), &contact.address()],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| subscriber_not_found(&contact))?;
    let id: &str = row.try_get(0).map_err(db)?;
    Ulid::from_string(id).map_err(|e| corrupt("subscriber id", e))
}

/// The subscriber of `id`, locked until `tx` ends.
async fn lock_by_id(tx: &Transaction<'_>, id: Ulid) -> Result<Option<Subscriber>, StoreError> {
    tx.query_opt(
        "SELECT body::text FROM crier_subscribers WHERE id = $1 FOR UPDATE",
        &[&id.to_string()],
    )
    .await
    .map_err(db)?
    .as_ref()
    .map(subscriber_of)
    .transpose()
}

/// The subscriber of an address, locked until `tx` ends.
async fn lock_by_address(
    tx: &Transaction<'_>,
    contact: &Contact,
) -> Result<Option<Subscriber>, StoreError> {
    tx.query_opt(
        "SELECT body::text FROM crier_subscribers
         WHERE contact_kind = $1 AND address = $2 FOR UPDATE",
        &[&contact_kind(contact), &contact.address()],
    )
    .await
    .map_err(db)?
    .as_ref()
    .map(subscriber_of)
    .transpose()
}

/// Which subscriber a change is for.
enum Key<'a> {
    Id(Ulid),
    Address(&'a Contact),
}

impl PgStore {
    /// Changes one subscriber in a transaction under its row lock; `f` returns `None` to write
    /// nothing (sled's `update_subscriber`). `None` too when there is no such subscriber.
    async fn update_subscriber<R>(
        &self,
        key: Key<'_>,
        f: impl FnOnce(&mut Subscriber) -> Option<R>,
    ) -> Result<Option<R>, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let found = match key {
            Key::Id(id) => lock_by_id(&tx, id).await?,
            Key::Address(c) => lock_by_address(&tx, c).await?,
        };
        let Some(mut s) = found else {
            return Ok(None);
        };
        let Some(r) = f(&mut s) else {
            return Ok(None);
        };
        rows::put_subscriber(&tx, &s, Write::Upsert).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(r))
    }

    /// Removes the subscriber `id` if `still` holds for it under its row lock; the removed one.
    async fn remove_subscriber_if(
        &self,
        id: Ulid,
        still: impl FnOnce(&Subscriber) -> bool,
    ) -> Result<Option<Subscriber>, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let Some(s) = lock_by_id(&tx, id).await? else {
            return Ok(None);
        };
        if !still(&s) {
            return Ok(None);
        }
        tx.execute(
            "DELETE FROM crier_subscribers WHERE id = $1",
            &[&id.to_string()],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(s))
    }
}

impl Subscribers for PgStore {
    async fn add_subscriber(
        &self,
        new: NewSubscriber,
        now: DateTime<Utc>,
    ) -> Result<Subscriber, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        components_exist(&tx, &new.components).await?;
        let s = new_subscriber(new, now)?;
        // A taken address (or one taken by another node at the same moment: the unique index
        // waits for its transaction) is sled's conflict.
        rows::put_subscriber(&tx, &s, Write::Insert).await?;
        tx.commit().await.map_err(db)?;
        Ok(s)
    }

    /// One transaction for the whole batch (callers send it in chunks of the import's size):
    /// duplicates within the batch are counted here, the first one kept, as sled does; addresses
    /// already subscribed (by anyone, on any node) are skipped by the unique index.
    async fn import_subscribers(
        &self,
        batch: Vec<NewSubscriber>,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        for n in &batch {
            components_exist(&tx, &n.components).await?;
        }
        let mut counts = ImportCounts::default();
        let mut seen = std::collections::HashSet::new();
        let mut subs = Vec::with_capacity(batch.len());
        for n in batch {
            if seen.insert((contact_kind(&n.contact), n.contact.address().to_owned())) {
                subs.push(new_subscriber(n, now)?);
            } else {
                counts.duplicates += 1;
            }
        }
        for chunk in subs.chunks(IMPORT_STATEMENT) {
            let ids: Vec<String> = chunk.iter().map(|s| s.id.to_string()).collect();
            let kinds: Vec<&str> = chunk.iter().map(|s| contact_kind(&s.contact)).collect();
            let addresses: Vec<&str> = chunk.iter().map(|s| s.contact.address()).collect();
            let tokens: Vec<&str> = chunk.iter().map(|s| s.unsubscribe_token.as_str()).collect();
            let confirmed: Vec<bool> = chunk.iter().map(|s| s.confirmed).collect();
            let opted_out: Vec<bool> = chunk.iter().map(|s| s.opted_out).collect();
            let created: Vec<DateTime<Utc>> = chunk.iter().map(|s| s.created_at).collect();
            let bodies: Vec<String> = chunk.iter().map(json).collect::<Result<_, _>>()?;
            let added = tx
                .execute(
                    "INSERT INTO crier_subscribers
                       (id, contact_kind, address, unsubscribe_token, confirmed, opted_out,
                        created_at, body)
                     SELECT id, kind, address, token, confirmed, opted_out, created_at,
                            body::jsonb
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[],
                                 $6::bool[], $7::timestamptz[], $8::text[])
                          AS u(id, kind, address, token, confirmed, opted_out, created_at, body)
                     ON CONFLICT (contact_kind, address) DO NOTHING",
                    &[
                        &ids, &kinds, &addresses, &tokens, &confirmed, &opted_out, &created,
                        &bodies,
                    ],
                )
                .await
                .map_err(db)?;
            let added = usize::try_from(added).unwrap_or(usize::MAX);
            counts.added += added;
            counts.duplicates += chunk.len().saturating_sub(added);
        }
        tx.commit().await.map_err(db)?;
        Ok(counts)
    }

    async fn subscribers(&self, limit: usize) -> Result<Vec<Subscriber>, StoreError> {
        self.subscribers_where(limit, |_| true).await
    }

    /// Pages of [`PAGE`] subscribers by id inside one snapshot; `keep` sees each in turn and the
    /// walk stops once `limit` are kept. Each page is a round trip, so other tasks run between.
    async fn subscribers_where(
        &self,
        limit: usize,
        mut keep: impl FnMut(&Subscriber) -> bool + Send,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut client = self.client().await?;
        let tx = snapshot(&mut client).await?;
        let page = sql_limit(PAGE);
        let mut cursor = String::new();
        loop {
            let rows = tx
                .query(
                    "SELECT id, body::text FROM crier_subscribers
                     WHERE id COLLATE \"C\" > $1 ORDER BY id COLLATE \"C\" LIMIT $2",
                    &[&cursor, &page],
                )
                .await
                .map_err(db)?;
            let fetched = rows.len();
            for r in &rows {
                let body: &str = r.try_get(1).map_err(db)?;
                let s: Subscriber = rows::from_json("subscriber", body)?;
                if keep(&s) {
                    out.push(s);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            match rows.last() {
                Some(last) if fetched >= PAGE => cursor = last.try_get(0).map_err(db)?,
                _ => break,
            }
            tokio::task::yield_now().await;
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn subscriber_count(&self) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT count(*) FROM crier_subscribers", &[])
            .await
            .map_err(db)?;
        let n: i64 = row.try_get(0).map_err(db)?;
        usize::try_from(n).map_err(|e| corrupt("subscriber count", e))
    }

    async fn subscriber_standing(&self, id: Ulid) -> Result<Option<bool>, StoreError> {
        let client = self.client().await?;
        // Asked before every subscriber's send: prepared once per connection.
        let read = client
            .prepare_cached("SELECT body::text FROM crier_subscribers WHERE id = $1")
            .await
            .map_err(db)?;
        let row = client
            .query_opt(&read, &[&id.to_string()])
            .await
            .map_err(db)?;
        Ok(rows::body::<Subscriber>("subscriber", row)?.map(|s| s.receives()))
    }

    async fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>, StoreError> {
        let client = self.client().await?;
        Ok(rows::subscriber_by_token(&**client, token).await?)
    }

    async fn change_subscriber(
        &self,
        key: &str,
        locale: Option<Locale>,
        components: Option<Vec<ComponentName>>,
    ) -> Result<(Subscriber, Subscriber), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let id = subscriber_id(&tx, key).await?;
        if let Some(c) = &components {
            components_exist(&tx, c).await?;
        }
        let was = lock_by_id(&tx, id)
            .await?
            .ok_or_else(|| subscriber_not_found(id))?;
        let mut s = was.clone();
        if let Some(l) = locale {
            s.locale = l;
        }
        if let Some(c) = components {
            s.components = c;
        }
        rows::put_subscriber(&tx, &s, Write::Upsert).await?;
        tx.commit().await.map_err(db)?;
        Ok((was, s))
    }

    async fn remove_subscriber(&self, key: &str) -> Result<Subscriber, StoreError> {
        let client = self.client().await?;
        let id = subscriber_id(&**client, key).await?;
        let row = client
            .query_opt(
                "DELETE FROM crier_subscribers WHERE id = $1 RETURNING body::text",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| subscriber_not_found(id))?;
        subscriber_of(&row)
    }

    async fn unsubscribe(&self, token: &str) -> Result<Subscriber, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM crier_subscribers WHERE unsubscribe_token = $1 RETURNING body::text",
                &[&token],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound {
                what: "subscription",
                id: "for this link".into(),
            })?;
        subscriber_of(&row)
    }
}

impl SignUps for PgStore {
    async fn sign_up(
        &self,
        contact: Contact,
        locale: Locale,
        components: Vec<ComponentName>,
        secret: &Secret,
        valid: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<SignUp, StoreError> {
        let salt = match secret {
            Secret::Code(_) => random(16)?,
            Secret::Link(_) => String::new(),
        };
        let pending = rules::pending_for(secret, salt, now, valid);
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        components_exist(&tx, &components).await?;
        let mut existing = lock_by_address(&tx, &contact).await?;
        if existing.is_none() {
            let mut fresh = new_subscriber(
                NewSubscriber {
                    contact: contact.clone(),
                    locale: locale.clone(),
                    components: components.clone(),
                    confirmed: false,
                },
                now,
            )?;
            fresh.pending = Some(pending.clone());
            let inserted = tx
                .execute(
                    "INSERT INTO crier_subscribers
                       (id, contact_kind, address, unsubscribe_token, confirmed, opted_out,
                        created_at, body)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb)
                     ON CONFLICT (contact_kind, address) DO NOTHING",
                    &[
                        &fresh.id.to_string(),
                        &contact_kind(&fresh.contact),
                        &fresh.contact.address(),
                        &fresh.unsubscribe_token,
                        &fresh.confirmed,
                        &fresh.opted_out,
                        &fresh.created_at,
                        &json(&fresh)?,
                    ],
                )
                .await
                .map_err(db)?;
            if inserted == 1 {
                tx.commit().await.map_err(db)?;
                return Ok(SignUp::Created(fresh));
            }
            // Another node signed the address up meanwhile (the insert waited for its commit):
            // its record is visible now, and this sign-up renews it as sled's would.
            existing = lock_by_address(&tx, &contact).await?;
        }
        let Some(mut s) = existing else {
            return Err(StoreError::Conflict(format!(
                "{contact} was signed up and removed at the same moment; try again"
            )));
        };
        let outcome = rules::renew(&mut s, &locale, &components, &pending);
        if let SignUp::Renewed(_) = outcome {
            rows::put_subscriber(&tx, &s, Write::Upsert).await?;
            tx.commit().await.map_err(db)?;
        }
        Ok(outcome)
    }

    async fn confirm_link(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscriber>, StoreError> {
        let Some((id, presented)) = rules::link_token(token) else {
            return Ok(None);
        };
        self.update_subscriber(Key::Id(id), |s| rules::confirm_by_link(s, &presented, now))
            .await
    }

    async fn confirm_code(
        &self,
        phone: &Contact,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeCheck, StoreError> {
        let out = self
            .update_subscriber(Key::Address(phone), |s| {
                rules::confirm_by_code(s, code, now)
            })
            .await?;
        Ok(rules::code_outcome(out))
    }

    async fn set_opted_out(
        &self,
        phone: &Contact,
        out: bool,
    ) -> Result<Option<Subscriber>, StoreError> {
        self.update_subscriber(Key::Address(phone), |s| rules::set_opted_out(s, out))
            .await
    }

    async fn opt_out_id(&self, id: Ulid) -> Result<bool, StoreError> {
        Ok(self
            .update_subscriber(Key::Id(id), |s| rules::set_opted_out(s, true).map(|_| ()))
            .await?
            .is_some())
    }

    /// Each stale sign-up is removed in its own transaction, re-checked under its row lock: one
    /// confirmed meanwhile stays, and two nodes purging at once remove each one once.
    async fn purge_unconfirmed(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let stale = self
            .subscribers_where(usize::MAX, |s| rules::unconfirmed_since(s, cutoff))
            .await?;
        let mut removed = 0;
        for s in stale {
            if self
                .remove_subscriber_if(s.id, |s| rules::unconfirmed_since(s, cutoff))
                .await?
                .is_some()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn notice_not_found(id: Ulid) -> StoreError {
    StoreError::NotFound {
        what: "notice",
        id: id.to_string(),
    }
}

impl Notices for PgStore {
    async fn put_notice(&self, n: &Notice) -> Result<(), StoreError> {
        let client = self.client().await?;
        Ok(rows::put_notice(&**client, n, Write::Upsert).await?)
    }

    async fn notice(&self, id: Ulid) -> Result<Notice, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_notices WHERE id = $1",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| notice_not_found(id))?;
        let body: &str = row.try_get(0).map_err(db)?;
        Ok(rows::from_json("notice", body)?)
    }

    async fn notices(&self) -> Result<Vec<Notice>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT body::text FROM crier_notices ORDER BY id COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(db)?;
        bodies("notice", &rows)
    }

    async fn remove_notice(&self, id: Ulid) -> Result<Notice, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM crier_notices WHERE id = $1 RETURNING body::text",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| notice_not_found(id))?;
        let body: &str = row.try_get(0).map_err(db)?;
        Ok(rows::from_json("notice", body)?)
    }
}

impl Holds for PgStore {
    async fn put_hold(&self, h: &Hold) -> Result<(), StoreError> {
        let client = self.client().await?;
        Ok(rows::put_hold(&**client, h, Write::Upsert).await?)
    }

    async fn hold(&self, incident: Ulid) -> Result<Option<Hold>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT body::text FROM crier_holds WHERE incident_id = $1",
                &[&incident.to_string()],
            )
            .await
            .map_err(db)?
            .map(|r| {
                let body: &str = r.try_get(0).map_err(db)?;
                Ok(rows::from_json("hold", body)?)
            })
            .transpose()
    }

    async fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT body::text FROM crier_holds ORDER BY incident_id COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(db)?;
        bodies("hold", &rows)
    }

    async fn remove_hold(&self, incident: Ulid) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM crier_holds WHERE incident_id = $1",
                &[&incident.to_string()],
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}

impl Standalones for PgStore {
    async fn post_standalone(
        &self,
        msg: &Standalone,
        broadcast: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let inserted = tx
            .execute(
                "INSERT INTO crier_messages (origin, seq, body) VALUES ($1, $2, $3::text::jsonb)
                 ON CONFLICT (origin, seq) DO NOTHING",
                &[&msg.origin.to_string(), &i64::from(msg.seq), &json(msg)?],
            )
            .await
            .map_err(db)?;
        if inserted == 0 {
            return Ok(false);
        }
        for (channel, subscribers) in broadcast {
            let b = Broadcast {
                incident_id: msg.origin,
                seq: msg.seq,
                update_id: msg.update_id,
                channel: channel.clone(),
                subscribers: *subscribers,
                cursor: None,
                done: false,
                created_at: now,
            };
            // Sled overwrites a broadcast of the same key; so does this.
            rows::put_broadcast(&tx, &b, Write::Upsert).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn standalone(&self, origin: Ulid, seq: u32) -> Result<Option<Standalone>, StoreError> {
        if seq < STANDALONE_BASE {
            return Ok(None);
        }
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT body::text FROM crier_messages WHERE origin = $1 AND seq = $2",
                &[&origin.to_string(), &i64::from(seq)],
            )
            .await
            .map_err(db)?
            .map(|r| {
                let body: &str = r.try_get(0).map_err(db)?;
                Ok(rows::from_json("message", body)?)
            })
            .transpose()
    }

    async fn standalones_of(&self, origin: Ulid) -> Result<Vec<Standalone>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT body::text FROM crier_messages WHERE origin = $1 ORDER BY seq",
                &[&origin.to_string()],
            )
            .await
            .map_err(db)?;
        bodies("message", &rows)
    }
}
