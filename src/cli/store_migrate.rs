//! `crier store migrate --from DIR --to postgres://…`: copies a sled store into PostgreSQL and
//! proves the copy (docs/POSTGRES.md, "Migrating a sled store").
//!
//! The sled store is opened with `Store::open`, which takes its lock, so no server runs on it
//! and what is read is one state. Everything is copied in **one** PostgreSQL transaction, after
//! the schema migrations and under an advisory lock: either the whole store arrives or nothing
//! does, and two runs never interleave. Before writing, the rows already in the database are
//! compared with the store's: rows there and equal are skipped, so a re-run (after an
//! interruption, or to check) is safe; a row there but different, or a row the store does not
//! have, stops the run with an error naming it, and nothing is written. After writing, every
//! aggregate is read back through the row codecs and its count and checksum (SHA-256 over each
//! row's key and canonical serialised form, in key order, computed the same way from both
//! sides) must equal the store's, or the transaction is rolled back.
//!
//! The password comes from an environment variable (`--password-env`, default
//! [`DEFAULT_PASSWORD_ENV`]), never from argv: a URL carrying one is refused, and messages show
//! the URL through `pg::redact_url`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;
use ulid::Ulid;

use crate::domain::alert::AlertGroup;
use crate::domain::{
    ApiToken, Approval, Broadcast, Component, ComponentStatus, Delivery, DeliveryState, Incident,
    IncidentTemplate, Notice, Subscriber, Update, User, UserName,
};
use crate::domain::{Hold, IncidentFilter, Standalone, Thread, TotpRecord};
use crate::pg::rows::{self, Write};
use crate::pg::{redact_url, ConnectOptions, Pg, PgError};
use crate::store::port::{
    AlertGroups, Approvals, Audit, Components, Holds, Incidents, Notices, Outbox, SecondFactors,
    Subscribers, Templates, Tokens, Users,
};
use crate::store::{Store, StoreError};

/// The environment variable holding the database password unless `--password-env` names another.
pub const DEFAULT_PASSWORD_ENV: &str = "CRIER_PG_PASSWORD";

/// The advisory lock key of `store migrate` ("crier-sm").
const MIGRATE_LOCK: i64 = 0x6372_6965_722d_736d;

#[derive(Subcommand, Debug)]
pub enum StoreCmd {
    /// Copy a sled store (the server stopped) into PostgreSQL in one transaction, then verify
    /// every aggregate's count and checksum on both sides. Safe to re-run: rows already there
    /// and equal are skipped; a row there but different stops it with nothing written.
    Migrate(MigrateArgs),
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The data directory of the sled store (the one given to `crier serve --data`).
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The database: postgres://USER@HOST:PORT/DATABASE?sslmode=require (no password in it).
    #[arg(long, value_name = "URL")]
    to: String,
    /// The environment variable holding the database password.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_PASSWORD_ENV)]
    password_env: String,
    /// A PEM file of the CA that signed the server's certificate (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
}

/// Why a migration stopped. None carries the password.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Usage(String),
    #[error("reading the sled store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Pg(#[from] PgError),
    #[error(
        "{aggregate}: the row {key} is in the database already but differs from the sled \
         store's; nothing was written. The database was changed since an earlier migration (or holds \
         another store): migrate into an empty database, or drop it and run this again"
    )]
    Differs {
        aggregate: &'static str,
        key: String,
    },
    #[error(
        "the database holds {count} {aggregate} the sled store does not have (e.g. {key}); \
         nothing was written. Migrate into an empty database (or one an earlier run of this \
         store filled)"
    )]
    Extra {
        aggregate: &'static str,
        count: usize,
        key: String,
    },
    #[error(
        "after copying, {aggregate} in the database do not match the sled store ({detail}); \
         the transaction was rolled back and nothing was written"
    )]
    Mismatch {
        aggregate: &'static str,
        detail: String,
    },
    #[error("the sled store's audit log does not verify ({0}); run `crier audit verify` and restore a backup before migrating")]
    Audit(String),
}

impl MigrateError {
    pub fn exit_code(&self) -> u8 {
        match self {
            MigrateError::Usage(_) => 2,
            MigrateError::Differs { .. }
            | MigrateError::Extra { .. }
            | MigrateError::Mismatch { .. }
            | MigrateError::Audit(_) => 3,
            MigrateError::Store(_) | MigrateError::Pg(_) => 4,
        }
    }
}

/// Every aggregate of a store, read through the sled store's methods or the row codecs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub incidents: Vec<Incident>,
    /// (position, update), by incident and position.
    pub updates: Vec<(u32, Update)>,
    pub components: Vec<Component>,
    pub component_history: Vec<(String, DateTime<Utc>, ComponentStatus)>,
    pub subscribers: Vec<Subscriber>,
    pub notices: Vec<Notice>,
    pub messages: Vec<Standalone>,
    pub threads: Vec<(Ulid, String, Thread)>,
    pub alert_groups: Vec<AlertGroup>,
    pub holds: Vec<Hold>,
    pub broadcasts: Vec<Broadcast>,
    /// Unfinished deliveries only (pending or in flight).
    pub deliveries: Vec<Delivery>,
    /// Each user with their password hash.
    pub users: Vec<(User, String)>,
    /// Each token with its secret's SHA-256.
    /// A revoked token has no hash (sled deletes it on revocation).
    pub tokens: Vec<(ApiToken, Option<[u8; 32]>)>,
    pub totp: Vec<(UserName, TotpRecord)>,
    pub approvals: Vec<Approval>,
    pub templates: Vec<IncidentTemplate>,
    /// The audit log's entries as stored: (number, bytes).
    pub audit: Vec<(u64, Vec<u8>)>,
}

impl Snapshot {
    /// Each aggregate in key order (the order of the checksums), so that two snapshots of the
    /// same state compare equal whichever side they were read from.
    pub fn sorted(mut self) -> Snapshot {
        self.incidents.sort_by_cached_key(key_incident);
        self.updates.sort_by_cached_key(key_update);
        self.components.sort_by_cached_key(key_component);
        self.component_history.sort_by_cached_key(key_change);
        self.subscribers.sort_by_cached_key(key_subscriber);
        self.notices.sort_by_cached_key(key_notice);
        self.messages.sort_by_cached_key(key_message);
        self.threads.sort_by_cached_key(key_thread);
        self.alert_groups.sort_by_cached_key(key_group);
        self.holds.sort_by_cached_key(key_hold);
        self.broadcasts.sort_by_cached_key(key_broadcast);
        self.deliveries.sort_by_cached_key(key_delivery);
        self.users.sort_by_cached_key(key_user);
        self.tokens.sort_by_cached_key(key_token);
        self.totp.sort_by_cached_key(key_totp);
        self.approvals.sort_by_cached_key(key_approval);
        self.templates.sort_by_cached_key(key_template);
        self.audit.sort_by_cached_key(key_audit);
        self
    }
}

fn unfinished(d: &Delivery) -> bool {
    matches!(d.state, DeliveryState::Pending | DeliveryState::InFlight)
}

/// Reads every aggregate from a sled store opened by this process (so no server writes to it).
pub async fn read_sled(store: &Store) -> Result<Snapshot, MigrateError> {
    let Some(sled) = store.as_sled() else {
        return Err(MigrateError::Usage(
            "--from must be a sled data directory".into(),
        ));
    };
    let mut s = Snapshot::default();
    let filter = IncidentFilter {
        limit: usize::MAX,
        ..IncidentFilter::default()
    };
    for summary in store.incidents(&filter).await? {
        let (incident, timeline) = store.incident(summary.id).await?;
        s.updates.extend((1..).zip(timeline));
        s.incidents.push(incident);
    }
    s.broadcasts = sled.all_broadcasts()?;
    // Deliveries are keyed by their origin: an incident, or the notice or approval of a
    // standalone message; every delivery belongs to a broadcast of its origin.
    let origins: std::collections::BTreeSet<Ulid> = s
        .incidents
        .iter()
        .map(|i| i.id)
        .chain(s.broadcasts.iter().map(|b| b.incident_id))
        .collect();
    for origin in origins {
        store
            .for_each_delivery(origin, |d| {
                if unfinished(&d) {
                    s.deliveries.push(d);
                }
            })
            .await?;
    }
    s.components = store.components().await?;
    for (name, changes) in store.component_history(DateTime::<Utc>::MIN_UTC).await? {
        s.component_history
            .extend(changes.into_iter().map(|c| (name.clone(), c.at, c.status)));
    }
    s.subscribers = store.subscribers(usize::MAX).await?;
    s.notices = store.notices().await?;
    s.messages = sled.all_standalones()?;
    s.threads = sled.all_threads()?;
    s.alert_groups = store.alert_groups().await?;
    s.holds = store.holds().await?;
    for u in store.users().await? {
        let hash = store
            .password_hash(&u.name)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("user {} has no password hash", u.name)))?;
        if let Some(t) = store.totp(&u.name).await? {
            s.totp.push((u.name.clone(), t));
        }
        s.users.push((u, hash));
    }
    let hashes: BTreeMap<Ulid, [u8; 32]> = sled.token_hashes()?.into_iter().collect();
    for t in store.tokens(None).await? {
        let hash = hashes.get(&t.id).copied();
        if hash.is_none() && t.revoked_at.is_none() {
            return Err(StoreError::Corrupt(format!(
                "token {} is live but has no secret hash",
                t.id
            ))
            .into());
        }
        s.tokens.push((t, hash));
    }
    s.approvals = store.approvals(None, usize::MAX).await?;
    s.templates = store.templates().await?;
    s.audit = sled.audit_stored()?;
    Ok(s.sorted())
}

/// Reads every aggregate through the row codecs.
pub async fn read_pg<C: GenericClient>(c: &C) -> Result<Snapshot, PgError> {
    Ok(Snapshot {
        incidents: rows::incidents(c).await?,
        updates: rows::all_updates(c).await?,
        components: rows::components(c).await?,
        component_history: rows::component_changes(c).await?,
        subscribers: rows::subscribers(c).await?,
        notices: rows::notices(c).await?,
        messages: rows::standalones(c).await?,
        threads: rows::threads(c).await?,
        alert_groups: rows::alert_groups(c).await?,
        holds: rows::holds(c).await?,
        broadcasts: rows::broadcasts(c).await?,
        deliveries: rows::deliveries(c).await?,
        users: rows::users(c).await?,
        tokens: rows::tokens(c).await?,
        totp: rows::totps(c).await?,
        approvals: rows::approvals(c).await?,
        templates: rows::templates(c).await?,
        audit: rows::audit_stored(c).await?,
    }
    .sorted())
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // The domain types serialise infallibly (no maps with non-string keys); an error would be
    // a bug, and shows as a checksum mismatch rather than a panic.
    serde_json::to_vec(v).unwrap_or_default()
}

fn pos(n: u32) -> String {
    format!("{n:010}")
}

fn at(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// One aggregate's rows: key → canonical serialised form, in key order.
type Rows = BTreeMap<String, Vec<u8>>;

fn rows_of<T>(items: &[T], key: impl Fn(&T) -> String, canon: impl Fn(&T) -> Vec<u8>) -> Rows {
    items.iter().map(|x| (key(x), canon(x))).collect()
}

fn key_incident(i: &Incident) -> String {
    i.id.to_string()
}
fn key_update(u: &(u32, Update)) -> String {
    format!("{}/{}", u.1.incident_id, pos(u.0))
}
fn key_component(c: &Component) -> String {
    c.name.to_string()
}
fn key_change(c: &(String, DateTime<Utc>, ComponentStatus)) -> String {
    format!("{}/{}", c.0, at(&c.1))
}
fn key_subscriber(s: &Subscriber) -> String {
    s.id.to_string()
}
fn key_notice(n: &Notice) -> String {
    n.id.to_string()
}
fn key_message(m: &Standalone) -> String {
    format!("{}/{}", m.origin, pos(m.seq))
}
fn key_thread(t: &(Ulid, String, Thread)) -> String {
    format!("{}/{}", t.0, t.1)
}
fn key_group(g: &AlertGroup) -> String {
    format!("{}\u{0}{}", g.source, g.group)
}
fn key_hold(h: &Hold) -> String {
    h.incident_id.to_string()
}
fn key_broadcast(b: &Broadcast) -> String {
    format!("{}/{}/{}", b.incident_id, pos(b.seq), b.channel)
}
fn key_delivery(d: &Delivery) -> String {
    d.idempotency_key.clone()
}
fn key_user(u: &(User, String)) -> String {
    u.0.name.to_string()
}
fn key_token(t: &(ApiToken, Option<[u8; 32]>)) -> String {
    t.0.id.to_string()
}
fn key_totp(t: &(UserName, TotpRecord)) -> String {
    t.0.to_string()
}
fn key_approval(a: &Approval) -> String {
    a.id.to_string()
}
fn key_template(t: &IncidentTemplate) -> String {
    t.id.to_string()
}
fn key_audit(e: &(u64, Vec<u8>)) -> String {
    format!("{:020}", e.0)
}

/// Every aggregate's rows, in the order they are written (incidents before their updates).
fn tables(s: &Snapshot) -> Vec<(&'static str, Rows)> {
    let with = |mut a: Vec<u8>, b: &[u8]| {
        a.push(0);
        a.extend_from_slice(b);
        a
    };
    vec![
        ("incidents", rows_of(&s.incidents, key_incident, json)),
        ("updates", rows_of(&s.updates, key_update, |u| json(&u.1))),
        ("components", rows_of(&s.components, key_component, json)),
        (
            "component changes",
            rows_of(&s.component_history, key_change, |c| json(&c.2)),
        ),
        ("subscribers", rows_of(&s.subscribers, key_subscriber, json)),
        ("notices", rows_of(&s.notices, key_notice, json)),
        ("messages", rows_of(&s.messages, key_message, json)),
        ("threads", rows_of(&s.threads, key_thread, |t| json(&t.2))),
        ("alert groups", rows_of(&s.alert_groups, key_group, json)),
        ("holds", rows_of(&s.holds, key_hold, json)),
        ("broadcasts", rows_of(&s.broadcasts, key_broadcast, json)),
        (
            "deliveries",
            rows_of(&s.deliveries, key_delivery, crate::store::codec::encode),
        ),
        (
            "users",
            rows_of(&s.users, key_user, |u| with(json(&u.0), u.1.as_bytes())),
        ),
        (
            "tokens",
            rows_of(&s.tokens, key_token, |t| {
                with(json(&t.0), t.1.as_ref().map_or(&[][..], |h| &h[..]))
            }),
        ),
        ("totp", rows_of(&s.totp, key_totp, |t| json(&t.1))),
        ("approvals", rows_of(&s.approvals, key_approval, json)),
        ("templates", rows_of(&s.templates, key_template, json)),
        (
            "audit entries",
            rows_of(&s.audit, key_audit, |e| e.1.clone()),
        ),
    ]
}

/// SHA-256 over each row's key and canonical form (length-prefixed), in key order.
fn checksum(rows: &Rows) -> String {
    let mut h = Sha256::new();
    for (k, v) in rows {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(v);
    }
    hex::encode(h.finalize())
}

/// One aggregate's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub aggregate: &'static str,
    /// Rows in the sled store (and, verified, in the database).
    pub rows: usize,
    /// Rows this run wrote (the rest were there and equal).
    pub copied: usize,
    /// The checksum both sides gave.
    pub sha256: String,
}

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub aggregates: Vec<Line>,
    /// Audit entries whose chain verified in the database.
    pub audit_verified: u64,
}

/// Runs `write` for every item, up to [`PIPELINE`] statements in flight at a time (tokio-postgres
/// pipelines concurrent queries on one connection, so a round trip is paid per batch, not per
/// row); returns how many were written.
async fn pipelined<'a, T, F, Fut>(items: &[&'a T], write: F) -> Result<usize, PgError>
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = Result<(), PgError>>,
{
    for chunk in items.chunks(PIPELINE) {
        futures_util::future::try_join_all(chunk.iter().map(|x| write(x))).await?;
    }
    Ok(items.len())
}

/// Statements in flight at a time in [`pipelined`].
const PIPELINE: usize = 256;

/// Copies `store` into the database behind `pg` (see the module docs).
pub async fn migrate(store: &Store, pg: &Pg) -> Result<Report, MigrateError> {
    let sled = read_sled(store).await?;
    // The sled log must verify before it is copied; its head is what the copy must reach.
    let sled_chain = store
        .verify_audit()
        .await
        .map_err(|e| MigrateError::Audit(e.to_string()))?;
    let want = tables(&sled);

    pg.migrate().await?;
    let mut pooled = pg.client().await?;
    let client: &mut tokio_postgres::Client = &mut pooled;
    let tx = client.transaction().await.map_err(PgError::from)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(PgError::from)?;
    let have = tables(&read_pg(&tx).await?);

    // Compare first: a difference stops the run before anything is written.
    let mut present: BTreeMap<&'static str, Rows> = BTreeMap::new();
    for ((name, wanted), (_, there)) in want.iter().zip(have) {
        let extra: Vec<&String> = there.keys().filter(|k| !wanted.contains_key(*k)).collect();
        if let Some(first) = extra.first() {
            return Err(MigrateError::Extra {
                aggregate: name,
                count: extra.len(),
                key: (*first).clone(),
            });
        }
        for (k, v) in &there {
            if wanted.get(k) != Some(v) {
                return Err(MigrateError::Differs {
                    aggregate: name,
                    key: k.clone(),
                });
            }
        }
        present.insert(name, there);
    }

    let mut copied: BTreeMap<&'static str, usize> = BTreeMap::new();
    let missing = |name: &'static str, key: String| !present[name].contains_key(&key);
    let mut count = |name: &'static str, n: usize| *copied.entry(name).or_default() += n;
    for x in &sled.incidents {
        if missing("incidents", key_incident(x)) {
            rows::put_incident(&tx, x, Write::Insert).await?;
            count("incidents", 1);
        }
    }
    for x in &sled.updates {
        if missing("updates", key_update(x)) {
            rows::put_update(&tx, x.0, &x.1, Write::Insert).await?;
            count("updates", 1);
        }
    }
    for x in &sled.components {
        if missing("components", key_component(x)) {
            rows::put_component(&tx, x, Write::Insert).await?;
            count("components", 1);
        }
    }
    for x in &sled.component_history {
        if missing("component changes", key_change(x)) {
            let name = crate::domain::ComponentName::parse(&x.0).map_err(StoreError::from)?;
            rows::put_component_change(&tx, &name, x.1, x.2).await?;
            count("component changes", 1);
        }
    }
    // The two bulk aggregates go pipelined: many statements in flight on the one connection.
    let todo: Vec<&Subscriber> = sled
        .subscribers
        .iter()
        .filter(|x| missing("subscribers", key_subscriber(x)))
        .collect();
    let n = pipelined(&todo, |x| rows::put_subscriber(&tx, x, Write::Insert)).await?;
    count("subscribers", n);
    for x in &sled.notices {
        if missing("notices", key_notice(x)) {
            rows::put_notice(&tx, x, Write::Insert).await?;
            count("notices", 1);
        }
    }
    for x in &sled.messages {
        if missing("messages", key_message(x)) {
            rows::put_standalone(&tx, x, Write::Insert).await?;
            count("messages", 1);
        }
    }
    for x in &sled.threads {
        if missing("threads", key_thread(x)) {
            rows::put_thread(&tx, x.0, &x.1, &x.2, Write::Insert).await?;
            count("threads", 1);
        }
    }
    for x in &sled.alert_groups {
        if missing("alert groups", key_group(x)) {
            rows::put_alert_group(&tx, x, Write::Insert).await?;
            count("alert groups", 1);
        }
    }
    for x in &sled.holds {
        if missing("holds", key_hold(x)) {
            rows::put_hold(&tx, x, Write::Insert).await?;
            count("holds", 1);
        }
    }
    for x in &sled.broadcasts {
        if missing("broadcasts", key_broadcast(x)) {
            rows::put_broadcast(&tx, x, Write::Insert).await?;
            count("broadcasts", 1);
        }
    }
    let todo: Vec<&Delivery> = sled
        .deliveries
        .iter()
        .filter(|x| missing("deliveries", key_delivery(x)))
        .collect();
    let n = pipelined(&todo, |x| rows::put_delivery(&tx, x, Write::Insert)).await?;
    count("deliveries", n);
    for x in &sled.users {
        if missing("users", key_user(x)) {
            rows::put_user(&tx, &x.0, &x.1, Write::Insert).await?;
            count("users", 1);
        }
    }
    for x in &sled.tokens {
        if missing("tokens", key_token(x)) {
            rows::put_token(&tx, &x.0, x.1.as_ref(), Write::Insert).await?;
            count("tokens", 1);
        }
    }
    for x in &sled.totp {
        if missing("totp", key_totp(x)) {
            rows::put_totp(&tx, &x.0, &x.1, Write::Insert).await?;
            count("totp", 1);
        }
    }
    for x in &sled.approvals {
        if missing("approvals", key_approval(x)) {
            rows::put_approval(&tx, x, Write::Insert).await?;
            count("approvals", 1);
        }
    }
    for x in &sled.templates {
        if missing("templates", key_template(x)) {
            rows::put_template(&tx, x, Write::Insert).await?;
            count("templates", 1);
        }
    }
    for x in &sled.audit {
        if missing("audit entries", key_audit(x)) {
            let entry = rows::audit_entry(&x.1)?;
            if entry.seq != x.0 {
                return Err(MigrateError::Audit(format!(
                    "entry {} is stored under number {}",
                    entry.seq, x.0
                )));
            }
            rows::append_audit(&tx, &entry, &x.1).await?;
            count("audit entries", 1);
        }
    }

    // Read everything back through the codecs: counts and checksums must be the store's.
    let got = tables(&read_pg(&tx).await?);
    let mut lines = Vec::new();
    for ((name, wanted), (_, there)) in want.iter().zip(got) {
        let (a, b) = (checksum(wanted), checksum(&there));
        if wanted.len() != there.len() || a != b {
            return Err(MigrateError::Mismatch {
                aggregate: name,
                detail: format!(
                    "{} rows in sled, {} in the database; checksums {a} and {b}",
                    wanted.len(),
                    there.len()
                ),
            });
        }
        lines.push(Line {
            aggregate: name,
            rows: wanted.len(),
            copied: copied.get(name).copied().unwrap_or(0),
            sha256: a,
        });
    }
    let pg_chain = rows::verify_audit(&tx)
        .await?
        .map_err(|e| MigrateError::Audit(format!("in the database: {e}")))?;
    if pg_chain != sled_chain {
        return Err(MigrateError::Mismatch {
            aggregate: "audit entries",
            detail: format!(
                "the chain verifies to entry {} ({}) in the database but {} ({}) in sled",
                pg_chain.entries, pg_chain.head, sled_chain.entries, sled_chain.head
            ),
        });
    }
    tx.commit().await.map_err(PgError::from)?;
    Ok(Report {
        aggregates: lines,
        audit_verified: pg_chain.entries,
    })
}

/// Whether the URL carries a password (`postgres://user:secret@…`).
fn url_has_password(url: &str) -> bool {
    redact_url(url) != url
}

/// The data directory's store: DIR/db, as `crier serve --data DIR` keeps it.
fn store_dir(from: &Path) -> Result<PathBuf, MigrateError> {
    let db = from.join("db");
    if db.is_dir() {
        Ok(db)
    } else {
        Err(MigrateError::Usage(format!(
            "{} holds no crier store (no {}); give --from the data directory the server runs \
             with (`crier serve --data DIR`)",
            from.display(),
            db.display()
        )))
    }
}

/// Checks the arguments and opens both sides.
fn open(a: &MigrateArgs) -> Result<(Store, Pg), MigrateError> {
    if url_has_password(&a.to) {
        return Err(MigrateError::Usage(format!(
            "--to {} carries a password; leave it out of the URL (command lines are visible to \
             other users) and put it in the environment variable {} (or the one --password-env \
             names)",
            redact_url(&a.to),
            a.password_env
        )));
    }
    let password = std::env::var(&a.password_env).ok();
    let dir = store_dir(&a.from)?;
    let store = Store::open(&dir)?;
    let pg = Pg::new(&ConnectOptions {
        url: &a.to,
        password: password.as_deref(),
        ca_file: a.ca.as_deref(),
        pool_size: 1,
    })?;
    Ok((store, pg))
}

fn print(report: &Report, to: &str, json_out: bool) {
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    println!(
        "{:<18} {:>9} {:>9}  sha256 (sled = postgres)",
        "aggregate", "rows", "copied"
    );
    for l in &report.aggregates {
        println!(
            "{:<18} {:>9} {:>9}  {}",
            l.aggregate, l.rows, l.copied, l.sha256
        );
    }
    let copied: usize = report.aggregates.iter().map(|l| l.copied).sum();
    println!(
        "migrated to {}: {copied} rows written, every count and checksum equal; audit chain \
         verified ({} entries)",
        redact_url(to),
        report.audit_verified
    );
}

/// `crier store …`: runs the command on a runtime of its own.
pub fn main(cmd: &StoreCmd, json_out: bool) -> std::process::ExitCode {
    let StoreCmd::Migrate(a) = cmd;
    let run = async {
        let (store, pg) = open(a)?;
        let report = migrate(&store, &pg).await;
        // Closing flushes nothing new (nothing was written) but releases the lock cleanly.
        let _ = store.close().await;
        report
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(4);
        }
    };
    match rt.block_on(run) {
        Ok(report) => {
            print(&report, &a.to, json_out);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Contact, Target};
    use crate::pg::fixture;
    use crate::pg::testdb::TestDb;

    fn by_name(r: &Report) -> BTreeMap<&'static str, Line> {
        r.aggregates
            .iter()
            .map(|l| (l.aggregate, l.clone()))
            .collect()
    }

    #[tokio::test]
    async fn migrate_copies_every_aggregate_and_a_rerun_changes_nothing() {
        let Some(db) = TestDb::create("smig").await else {
            return;
        };
        let f = fixture::populated(5).await;
        let pg = db.pg(2);
        let report = migrate(&f.store, &pg).await.expect("migrate");
        let lines = by_name(&report);
        for (name, rows) in [
            ("incidents", 2),
            ("updates", 5),
            ("components", 2),
            ("component changes", 3),
            ("subscribers", 6),
            ("notices", 1),
            ("messages", 1),
            ("threads", 1),
            ("alert groups", 1),
            ("holds", 1),
            ("broadcasts", 2),
            ("deliveries", 10),
            ("users", 1),
            ("tokens", 2),
            ("totp", 1),
            ("approvals", 1),
            ("templates", 1),
            ("audit entries", 3),
        ] {
            assert_eq!(lines[name].rows, rows, "{name}");
            assert_eq!(lines[name].copied, rows, "{name} copied on the first run");
        }
        assert_eq!(lines.len(), 18, "every aggregate is reported");
        assert_eq!(report.audit_verified, 3);

        // Every field of every row, read back through the row codecs, equals the sled store's.
        let pooled = pg.client().await.unwrap();
        let c: &tokio_postgres::Client = &pooled;
        let sled = read_sled(&f.store).await.unwrap();
        let there = read_pg(c).await.unwrap();
        // Field by field first, for a readable failure, then the whole.
        assert_eq!(there.incidents, sled.incidents);
        assert_eq!(there.updates, sled.updates);
        assert_eq!(there.subscribers, sled.subscribers);
        assert_eq!(there.deliveries, sled.deliveries);
        assert_eq!(there.audit, sled.audit);
        assert!(there == sled, "every aggregate equal");
        // And in the terms a reader cares about: the busy incident's ordered timeline, ...
        let timeline = rows::updates(c, f.busy.id).await.unwrap();
        assert_eq!(
            timeline
                .iter()
                .map(|(n, u)| (*n, u.status))
                .collect::<Vec<_>>(),
            [
                (1, crate::domain::Status::Investigating),
                (2, crate::domain::Status::Identified),
                (3, crate::domain::Status::Monitoring),
                (4, crate::domain::Status::Monitoring),
            ]
        );
        assert_eq!(
            rows::incident(c, f.busy.id)
                .await
                .unwrap()
                .unwrap()
                .update_count,
            4
        );
        // ... subscribers found by address and token, ...
        let email = Contact::email("ops@example.com").unwrap();
        let sub = rows::subscriber_by_address(c, &email)
            .await
            .unwrap()
            .unwrap();
        assert!(!sub.confirmed);
        assert_eq!(
            rows::subscriber_by_token(c, &sub.unsubscribe_token)
                .await
                .unwrap()
                .map(|s| s.id),
            Some(sub.id)
        );
        // ... pending deliveries claimable from the outbox, one per phone subscriber, ...
        let ds = rows::deliveries(c).await.unwrap();
        assert!(ds
            .iter()
            .all(|d| d.state == DeliveryState::Pending
                && matches!(d.target, Target::Subscriber { .. })));
        let notice = f.store.notices().await.unwrap()[0].id;
        let of = |origin: Ulid| ds.iter().filter(|d| d.incident_id == origin).count();
        assert_eq!(
            (of(f.busy.id), of(notice)),
            (5, 5),
            "the incident's and the notice's deliveries, one per phone subscriber each"
        );
        assert!(ds.iter().any(
            |d| d.incident_id == notice && d.seq >= crate::domain::standalone::STANDALONE_BASE
        ));
        let pending: i64 = c
            .query_one(
                "SELECT count(*) FROM crier_deliveries WHERE state = 'pending' AND lease_owner IS NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(pending, 10);
        // ... the token found by its hash, and the audit chain walking the same bytes.
        assert!(rows::token_by_hash(c, &f.token_hash)
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            rows::verify_audit(c).await.unwrap().unwrap(),
            f.store.verify_audit().await.unwrap()
        );
        drop(pooled);

        // Again: nothing to copy, the same checksums.
        let again = migrate(&f.store, &pg).await.expect("a re-run succeeds");
        for (first, second) in report.aggregates.iter().zip(&again.aggregates) {
            assert_eq!(second.copied, 0, "{}", second.aggregate);
            assert_eq!(second.rows, first.rows, "{}", second.aggregate);
            assert_eq!(second.sha256, first.sha256, "{}", second.aggregate);
        }
    }

    #[tokio::test]
    async fn a_row_changed_in_the_database_stops_the_migration_with_nothing_written() {
        let Some(db) = TestDb::create("smigtamper").await else {
            return;
        };
        let f = fixture::populated(2).await;
        let pg = db.pg(2);
        migrate(&f.store, &pg).await.expect("first run");
        let victim = f.store.subscribers(usize::MAX).await.unwrap()[0].id;
        {
            let c = pg.client().await.unwrap();
            c.execute(
                "UPDATE crier_subscribers SET body = jsonb_set(body, '{locale}', '\"sv\"') WHERE id = $1",
                &[&victim.to_string()],
            )
            .await
            .unwrap();
            // A row the re-run would copy again, to show that it writes nothing.
            c.execute("DELETE FROM crier_notices", &[]).await.unwrap();
        }
        let err = migrate(&f.store, &pg)
            .await
            .expect_err("a changed row must stop the run");
        assert!(
            matches!(&err, MigrateError::Differs { aggregate: "subscribers", key } if *key == victim.to_string()),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("nothing was written"), "{msg}");
        assert_eq!(err.exit_code(), 3);
        let c = pg.client().await.unwrap();
        let notices: i64 = c
            .query_one("SELECT count(*) FROM crier_notices", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(notices, 0, "nothing was written");

        // A row the sled store does not have is refused too.
        let mut stranger = f.store.notices().await.unwrap().remove(0);
        stranger.id = Ulid::new();
        rows::put_notice(&**c, &stranger, Write::Insert)
            .await
            .unwrap();
        c.execute(
            "UPDATE crier_subscribers SET body = jsonb_set(body, '{locale}', '\"en\"') WHERE id = $1",
            &[&victim.to_string()],
        )
        .await
        .unwrap();
        drop(c);
        let err = migrate(&f.store, &pg).await.expect_err("an extra row");
        assert!(
            matches!(&err, MigrateError::Extra { aggregate: "notices", count: 1, key } if *key == stranger.id.to_string()),
            "{err:?}"
        );
    }

    #[test]
    fn a_url_with_a_password_is_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = MigrateArgs {
            from: dir.path().to_owned(),
            to: "postgres://crier:hunter2@db.example/crier".into(),
            password_env: DEFAULT_PASSWORD_ENV.into(),
            ca: None,
        };
        let err = open(&a).expect_err("refused");
        let msg = err.to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(
            msg.contains("postgres://crier:***@db.example/crier"),
            "{msg}"
        );
        assert!(msg.contains(DEFAULT_PASSWORD_ENV), "{msg}");
        assert_eq!(err.exit_code(), 2);
        // Without a store in --from, the operator is told where it should be.
        let a = MigrateArgs {
            to: "postgres://crier@db.example/crier".into(),
            ..a
        };
        let msg = open(&a).expect_err("no store").to_string();
        assert!(msg.contains("holds no crier store"), "{msg}");
    }
}
