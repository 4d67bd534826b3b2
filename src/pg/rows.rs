//! Row codecs: every aggregate of the store to and from its PostgreSQL table(s)
//! (migrations/0002_aggregates.sql), in domain terms. These are what the PostgreSQL backend of
//! the store port calls; `crier store migrate` uses them to copy a sled store.
//!
//! Each table has typed columns for what is looked up, ordered, unique or referenced, written
//! from the same value in the same statement as `body`, the domain type's serde JSON (what sled
//! stores for it); reading decodes `body` (or, for deliveries, the sled binary record in
//! `payload`; for the audit log, the entry's stored bytes), so a row reads back exactly the
//! value written. JSON goes over the wire as text (`$n::text::jsonb`, `body::text`), so no
//! serde feature of tokio-postgres is needed.
//!
//! Writes take a [`Write`]: `Insert` refuses a row whose key (or another unique column: a
//! subscriber's address, a token's hash, a template's name) is taken, with
//! [`PgError::Conflict`] and the message the sled store gives; `Upsert` replaces the row with
//! the same primary key (a unique column taken by *another* row is still a conflict).

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};
use ulid::Ulid;

use super::PgError;
use crate::domain::alert::AlertGroup;
use crate::domain::audit::{self, AuditEntry, Verified};
use crate::domain::{
    ApiToken, Approval, Broadcast, Component, ComponentName, ComponentStatus, Contact, Delivery,
    DeliveryState, Incident, IncidentTemplate, Notice, Subscriber, Target, Update, User, UserName,
};
use crate::domain::{Hold, Session, Standalone, Thread, TotpRecord};

/// How a write treats a row that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A new row: an existing one with the same key is a conflict.
    Insert,
    /// Insert or replace the row with the same primary key.
    Upsert,
}

/// `INSERT INTO table (cols) VALUES ($1, ...)`; a column named `body` (or ending in `:json`)
/// is JSON sent as text; with `Upsert`, `ON CONFLICT (pk) DO UPDATE` every other column.
fn write_sql(table: &str, cols: &[&str], pk: &[&str], mode: Write) -> String {
    let names: Vec<&str> = cols.iter().map(|c| c.trim_end_matches(":json")).collect();
    let values: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if *c == "body" || c.ends_with(":json") {
                format!("${}::text::jsonb", i + 1)
            } else {
                format!("${}", i + 1)
            }
        })
        .collect();
    let mut sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        values.join(", ")
    );
    if mode == Write::Upsert {
        let sets: Vec<String> = names
            .iter()
            .filter(|n| !pk.contains(n))
            .map(|n| format!("{n} = EXCLUDED.{n}"))
            .collect();
        sql.push_str(&format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            pk.join(", "),
            sets.join(", ")
        ));
    }
    sql
}

/// Runs a write; a unique violation becomes [`PgError::Conflict`] with `conflict(constraint)`.
async fn exec<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    conflict: impl FnOnce(&str) -> String,
) -> Result<u64, PgError> {
    match c.execute(sql, params).await {
        Ok(n) => Ok(n),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            let constraint = e
                .as_db_error()
                .and_then(|d| d.constraint())
                .unwrap_or("")
                .to_owned();
            Err(PgError::Conflict(conflict(&constraint)))
        }
        Err(e) => Err(e.into()),
    }
}

fn json<T: Serialize>(v: &T) -> Result<String, PgError> {
    serde_json::to_string(v).map_err(|e| PgError::Corrupt(e.to_string()))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, s: &str) -> Result<T, PgError> {
    serde_json::from_str(s).map_err(|e| PgError::Corrupt(format!("{what}: {e}")))
}

/// An enum's serde name (`"investigating"`), as the typed columns hold it.
pub(crate) fn word<T: Serialize>(v: &T) -> Result<String, PgError> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Err(PgError::Corrupt(format!("not a word: {other}"))),
        Err(e) => Err(PgError::Corrupt(e.to_string())),
    }
}

fn int(what: &str, n: u32) -> Result<i32, PgError> {
    i32::try_from(n).map_err(|_| PgError::Corrupt(format!("{what} {n} is out of range")))
}

fn uint(what: &str, n: i32) -> Result<u32, PgError> {
    u32::try_from(n).map_err(|_| PgError::Corrupt(format!("{what} {n} is out of range")))
}

fn bodies<T: DeserializeOwned>(what: &str, rows: &[Row]) -> Result<Vec<T>, PgError> {
    rows.iter()
        .map(|r| from_json(what, r.get::<_, &str>(0)))
        .collect()
}

pub(crate) fn body<T: DeserializeOwned>(
    what: &str,
    row: Option<Row>,
) -> Result<Option<T>, PgError> {
    row.map(|r| from_json(what, r.get::<_, &str>(0)))
        .transpose()
}

fn duplicate(what: &str, id: impl std::fmt::Display) -> String {
    format!("{what} {id} exists already")
}

// ---- incidents and their timelines ----------------------------------------------------------

/// Writes an incident (not its updates).
pub async fn put_incident<C: GenericClient>(
    c: &C,
    i: &Incident,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_incidents",
        &[
            "id",
            "kind",
            "status",
            "impact",
            "draft",
            "created_at",
            "updated_at",
            "resolved_at",
            "next_update_due",
            "update_count",
            "scheduled_for",
            "scheduled_until",
            "body",
        ],
        &["id"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &i.id.to_string(),
            &word(&i.kind)?,
            &word(&i.status)?,
            &word(&i.impact)?,
            &i.draft,
            &i.created_at,
            &i.updated_at,
            &i.resolved_at,
            &i.next_update_due,
            &int("update_count", i.update_count)?,
            &i.scheduled_for,
            &i.scheduled_until,
            &json(i)?,
        ],
        |_| duplicate("incident", i.id),
    )
    .await?;
    Ok(())
}

/// One incident, without its timeline.
pub async fn incident<C: GenericClient>(c: &C, id: Ulid) -> Result<Option<Incident>, PgError> {
    let row = c
        .query_opt(
            "SELECT body::text FROM crier_incidents WHERE id = $1",
            &[&id.to_string()],
        )
        .await?;
    body("incident", row)
}

/// Every incident, in id (creation) order.
pub async fn incidents<C: GenericClient>(c: &C) -> Result<Vec<Incident>, PgError> {
    let rows = c
        .query("SELECT body::text FROM crier_incidents ORDER BY id", &[])
        .await?;
    bodies("incident", &rows)
}

/// Writes the update at position `seq` of its incident's timeline. The position is unique per
/// incident: inserting a second update at a taken position is a conflict.
pub async fn put_update<C: GenericClient>(
    c: &C,
    seq: u32,
    u: &Update,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_updates",
        &[
            "incident_id",
            "seq",
            "id",
            "status",
            "draft",
            "created_at",
            "published_at",
            "body",
        ],
        &["incident_id", "seq"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &u.incident_id.to_string(),
            &int("seq", seq)?,
            &u.id.to_string(),
            &word(&u.status)?,
            &u.draft,
            &u.created_at,
            &u.published_at,
            &json(u)?,
        ],
        |constraint| {
            if constraint == "crier_updates_id_key" {
                duplicate("update", u.id)
            } else {
                format!(
                    "incident {} already has an update at position {seq}; reload the incident and \
                     try again",
                    u.incident_id
                )
            }
        },
    )
    .await?;
    Ok(())
}

/// An incident's timeline, in order, with each update's position.
pub async fn updates<C: GenericClient>(
    c: &C,
    incident: Ulid,
) -> Result<Vec<(u32, Update)>, PgError> {
    let rows = c
        .query(
            "SELECT body::text, seq FROM crier_updates WHERE incident_id = $1 ORDER BY seq",
            &[&incident.to_string()],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((uint("seq", r.get(1))?, from_json("update", r.get(0))?)))
        .collect()
}

/// Every update of every incident, in (incident, position) order.
pub async fn all_updates<C: GenericClient>(c: &C) -> Result<Vec<(u32, Update)>, PgError> {
    let rows = c
        .query(
            "SELECT body::text, seq FROM crier_updates ORDER BY incident_id, seq",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((uint("seq", r.get(1))?, from_json("update", r.get(0))?)))
        .collect()
}

// ---- components -----------------------------------------------------------------------------

pub async fn put_component<C: GenericClient>(
    c: &C,
    comp: &Component,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_components",
        &["name", "grp", "status", "updated_at", "body"],
        &["name"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &comp.name.as_str(),
            &comp.group,
            &word(&comp.status)?,
            &comp.updated_at,
            &json(comp)?,
        ],
        |_| duplicate("component", &comp.name),
    )
    .await?;
    Ok(())
}

/// Every component, by name.
pub async fn components<C: GenericClient>(c: &C) -> Result<Vec<Component>, PgError> {
    let rows = c
        .query("SELECT body::text FROM crier_components ORDER BY name", &[])
        .await?;
    bodies("component", &rows)
}

/// Records that from `at` on the component had `status` (a second record at the same instant
/// replaces the first, as in sled, whose key is the name and the time).
pub async fn put_component_change<C: GenericClient>(
    c: &C,
    name: &ComponentName,
    at: DateTime<Utc>,
    status: ComponentStatus,
) -> Result<(), PgError> {
    c.execute(
        "INSERT INTO crier_component_history (name, at, status) VALUES ($1, $2, $3)
         ON CONFLICT (name, at) DO UPDATE SET status = EXCLUDED.status",
        &[&name.as_str(), &at, &word(&status)?],
    )
    .await?;
    Ok(())
}

/// Every component's changes, by name and time.
pub async fn component_changes<C: GenericClient>(
    c: &C,
) -> Result<Vec<(String, DateTime<Utc>, ComponentStatus)>, PgError> {
    let rows = c
        .query(
            "SELECT name, at, to_json(status)::text FROM crier_component_history ORDER BY name, at",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.get(0), r.get(1), from_json("component status", r.get(2))?)))
        .collect()
}

// ---- subscribers ----------------------------------------------------------------------------

fn contact_kind(c: &Contact) -> &'static str {
    match c {
        Contact::Email(_) => "email",
        Contact::Phone(_) => "phone",
    }
}

pub async fn put_subscriber<C: GenericClient>(
    c: &C,
    s: &Subscriber,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_subscribers",
        &[
            "id",
            "contact_kind",
            "address",
            "unsubscribe_token",
            "confirmed",
            "opted_out",
            "created_at",
            "body",
        ],
        &["id"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &s.id.to_string(),
            &contact_kind(&s.contact),
            &s.contact.address(),
            &s.unsubscribe_token,
            &s.confirmed,
            &s.opted_out,
            &s.created_at,
            &json(s)?,
        ],
        |constraint| match constraint {
            "crier_subscribers_contact_kind_address_key" => format!(
                "{} is already subscribed; change its language or components with `crier \
                 subscribers set` (PATCH /api/v1/subscribers/{{address}})",
                s.contact
            ),
            "crier_subscribers_unsubscribe_token_key" => {
                "unsubscribe token collision; try again".to_owned()
            }
            _ => duplicate("subscriber", s.id),
        },
    )
    .await?;
    Ok(())
}

pub async fn subscriber<C: GenericClient>(c: &C, id: Ulid) -> Result<Option<Subscriber>, PgError> {
    let row = c
        .query_opt(
            "SELECT body::text FROM crier_subscribers WHERE id = $1",
            &[&id.to_string()],
        )
        .await?;
    body("subscriber", row)
}

/// The subscriber of an address (email or E.164 number), if any.
pub async fn subscriber_by_address<C: GenericClient>(
    c: &C,
    contact: &Contact,
) -> Result<Option<Subscriber>, PgError> {
    let row = c
        .query_opt(
            "SELECT body::text FROM crier_subscribers WHERE contact_kind = $1 AND address = $2",
            &[&contact_kind(contact), &contact.address()],
        )
        .await?;
    body("subscriber", row)
}

pub async fn subscriber_by_token<C: GenericClient>(
    c: &C,
    token: &str,
) -> Result<Option<Subscriber>, PgError> {
    let row = c
        .query_opt(
            "SELECT body::text FROM crier_subscribers WHERE unsubscribe_token = $1",
            &[&token],
        )
        .await?;
    body("subscriber", row)
}

/// Every subscriber, in id order.
pub async fn subscribers<C: GenericClient>(c: &C) -> Result<Vec<Subscriber>, PgError> {
    let rows = c
        .query("SELECT body::text FROM crier_subscribers ORDER BY id", &[])
        .await?;
    bodies("subscriber", &rows)
}

// ---- notices and standalone messages --------------------------------------------------------

pub async fn put_notice<C: GenericClient>(c: &C, n: &Notice, mode: Write) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_notices",
        &["id", "created_at", "last_fired", "body"],
        &["id"],
        mode,
    );
    exec(
        c,
        &sql,
        &[&n.id.to_string(), &n.created_at, &n.last_fired, &json(n)?],
        |_| duplicate("notice", n.id),
    )
    .await?;
    Ok(())
}

pub async fn notices<C: GenericClient>(c: &C) -> Result<Vec<Notice>, PgError> {
    let rows = c
        .query("SELECT body::text FROM crier_notices ORDER BY id", &[])
        .await?;
    bodies("notice", &rows)
}

/// Records a standalone message as posted; `Insert` on one posted before is a conflict (the
/// backend's "post once" uses `ON CONFLICT DO NOTHING` on the same key).
pub async fn put_standalone<C: GenericClient>(
    c: &C,
    m: &Standalone,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_messages",
        &["origin", "seq", "body"],
        &["origin", "seq"],
        mode,
    );
    exec(
        c,
        &sql,
        &[&m.origin.to_string(), &i64::from(m.seq), &json(m)?],
        |_| format!("message {} of {} was posted already", m.seq, m.origin),
    )
    .await?;
    Ok(())
}

/// Every standalone message, by (origin, seq as stored).
pub async fn standalones<C: GenericClient>(c: &C) -> Result<Vec<Standalone>, PgError> {
    let rows = c
        .query(
            "SELECT body::text FROM crier_messages ORDER BY origin, seq",
            &[],
        )
        .await?;
    bodies("message", &rows)
}

// ---- social threads -------------------------------------------------------------------------

pub async fn put_thread<C: GenericClient>(
    c: &C,
    incident: Ulid,
    channel: &str,
    t: &Thread,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_threads",
        &["incident_id", "channel", "root", "last"],
        &["incident_id", "channel"],
        mode,
    );
    exec(
        c,
        &sql,
        &[&incident.to_string(), &channel, &t.root, &t.last],
        |_| format!("incident {incident} has a thread on {channel} already"),
    )
    .await?;
    Ok(())
}

/// Every thread: (incident, channel, thread), in that order.
pub async fn threads<C: GenericClient>(c: &C) -> Result<Vec<(Ulid, String, Thread)>, PgError> {
    let rows = c
        .query(
            "SELECT incident_id, channel, root, last FROM crier_threads \
             ORDER BY incident_id, channel",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id: &str = r.get(0);
            let id = Ulid::from_string(id)
                .map_err(|e| PgError::Corrupt(format!("thread incident id: {e}")))?;
            Ok((
                id,
                r.get(1),
                Thread {
                    root: r.get(2),
                    last: r.get(3),
                },
            ))
        })
        .collect()
}

// ---- intake ---------------------------------------------------------------------------------

pub async fn put_alert_group<C: GenericClient>(
    c: &C,
    g: &AlertGroup,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_alert_groups",
        &["source", "grp", "incident_id", "updated_at", "body"],
        &["source", "grp"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &g.source,
            &g.group,
            &g.incident_id.to_string(),
            &g.updated_at,
            &json(g)?,
        ],
        |_| format!("alert group {}/{} exists already", g.source, g.group),
    )
    .await?;
    Ok(())
}

pub async fn alert_groups<C: GenericClient>(c: &C) -> Result<Vec<AlertGroup>, PgError> {
    let rows = c
        .query(
            "SELECT body::text FROM crier_alert_groups ORDER BY source, grp",
            &[],
        )
        .await?;
    bodies("alert group", &rows)
}

pub async fn put_hold<C: GenericClient>(c: &C, h: &Hold, mode: Write) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_holds",
        &["incident_id", "until_at", "body"],
        &["incident_id"],
        mode,
    );
    exec(
        c,
        &sql,
        &[&h.incident_id.to_string(), &h.until, &json(h)?],
        |_| format!("incident {} has a hold-down already", h.incident_id),
    )
    .await?;
    Ok(())
}

pub async fn holds<C: GenericClient>(c: &C) -> Result<Vec<Hold>, PgError> {
    let rows = c
        .query(
            "SELECT body::text FROM crier_holds ORDER BY incident_id",
            &[],
        )
        .await?;
    bodies("hold", &rows)
}

// ---- the outbox -----------------------------------------------------------------------------

pub async fn put_broadcast<C: GenericClient>(
    c: &C,
    b: &Broadcast,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_broadcasts",
        &[
            "incident_id",
            "seq",
            "channel",
            "update_id",
            "done",
            "created_at",
            "body",
        ],
        &["incident_id", "seq", "channel"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &b.incident_id.to_string(),
            &i64::from(b.seq),
            &b.channel,
            &b.update_id.to_string(),
            &b.done,
            &b.created_at,
            &json(b)?,
        ],
        |_| {
            format!(
                "update {} of incident {} is broadcast on {} already",
                b.seq, b.incident_id, b.channel
            )
        },
    )
    .await?;
    Ok(())
}

pub async fn broadcasts<C: GenericClient>(c: &C) -> Result<Vec<Broadcast>, PgError> {
    let rows = c
        .query(
            "SELECT body::text FROM crier_broadcasts ORDER BY incident_id, seq, channel",
            &[],
        )
        .await?;
    bodies("broadcast", &rows)
}

/// The outbox's claim state of a delivery state (migration 1's `state`).
fn claim_state(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending | DeliveryState::InFlight => "pending",
        DeliveryState::Delivered => "sent",
        DeliveryState::Dead | DeliveryState::Rejected => "dead",
    }
}

/// Writes a delivery: the outbox row of migration 1 (keyed by the idempotency key) with the
/// whole record in `payload` in the sled store's binary encoding, and its typed columns.
pub async fn put_delivery<C: GenericClient>(
    c: &C,
    d: &Delivery,
    mode: Write,
) -> Result<(), PgError> {
    let subscriber = match &d.target {
        Target::Endpoint => None,
        Target::Subscriber { id, .. } => Some(id.to_string()),
    };
    let finished = match d.state {
        DeliveryState::Pending | DeliveryState::InFlight => None,
        _ => Some(d.updated_at),
    };
    let sql = write_sql(
        "crier_deliveries",
        &[
            "id",
            "channel",
            "payload",
            "state",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
            "finished_at",
            "delivery_id",
            "incident_id",
            "seq",
            "update_id",
            "subscriber_id",
            "delivery_state",
            "parts_done",
            "receipt",
            "provider_status",
            "provider_error",
        ],
        &["id"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &d.idempotency_key,
            &d.channel,
            &crate::store::codec::encode(d),
            &claim_state(d.state),
            &i32::try_from(d.attempts).unwrap_or(i32::MAX),
            &d.next_at,
            &d.last_error,
            &d.created_at,
            &finished,
            &d.id.to_string(),
            &d.incident_id.to_string(),
            &i64::from(d.seq),
            &d.update_id.to_string(),
            &subscriber,
            &word(&d.state)?,
            &int("parts_done", d.parts_done)?,
            &d.receipt,
            &d.provider_status,
            &d.provider_error.map(i64::from),
        ],
        |constraint| {
            if constraint == "crier_deliveries_receipt" {
                format!(
                    "receipt {} on {} belongs to another delivery",
                    d.receipt.as_deref().unwrap_or(""),
                    d.channel
                )
            } else {
                duplicate("delivery", &d.idempotency_key)
            }
        },
    )
    .await?;
    Ok(())
}

fn delivery_of(r: &Row) -> Result<Delivery, PgError> {
    crate::store::codec::decode(r.get::<_, &[u8]>(0))
        .map_err(|e| PgError::Corrupt(format!("delivery: {e}")))
}

/// Every delivery, by (incident, update position, id).
pub async fn deliveries<C: GenericClient>(c: &C) -> Result<Vec<Delivery>, PgError> {
    let rows = c
        .query(
            "SELECT payload FROM crier_deliveries ORDER BY incident_id, seq, delivery_id",
            &[],
        )
        .await?;
    rows.iter().map(delivery_of).collect()
}

/// The delivery a provider's receipt names.
pub async fn delivery_by_receipt<C: GenericClient>(
    c: &C,
    channel: &str,
    receipt: &str,
) -> Result<Option<Delivery>, PgError> {
    let row = c
        .query_opt(
            "SELECT payload FROM crier_deliveries WHERE channel = $1 AND receipt = $2",
            &[&channel, &receipt],
        )
        .await?;
    row.as_ref().map(delivery_of).transpose()
}

// ---- users, tokens, sessions, TOTP ----------------------------------------------------------

/// Writes a user and their password hash (an argon2id PHC string).
pub async fn put_user<C: GenericClient>(
    c: &C,
    u: &User,
    password_hash: &str,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_users",
        &[
            "name",
            "role",
            "disabled",
            "created_at",
            "password_hash",
            "body",
        ],
        &["name"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &u.name.as_str(),
            &word(&u.role)?,
            &u.disabled,
            &u.created_at,
            &password_hash,
            &json(u)?,
        ],
        |_| {
            format!(
                "there is already a user {}; choose another name, or change theirs with `crier \
                 users set-role`",
                u.name
            )
        },
    )
    .await?;
    Ok(())
}

/// Every user with their password hash, by name.
pub async fn users<C: GenericClient>(c: &C) -> Result<Vec<(User, String)>, PgError> {
    let rows = c
        .query(
            "SELECT body::text, password_hash FROM crier_users ORDER BY name",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((from_json("user", r.get(0))?, r.get(1))))
        .collect()
}

/// Writes a token with the SHA-256 of its secret (never the secret).
pub async fn put_token<C: GenericClient>(
    c: &C,
    t: &ApiToken,
    secret_hash: Option<&[u8; 32]>,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_tokens",
        &[
            "id",
            "owner",
            "secret_hash",
            "revoked_at",
            "expires_at",
            "body",
        ],
        &["id"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &t.id.to_string(),
            &t.owner.as_str(),
            &secret_hash.map(|h| h.as_slice()),
            &t.revoked_at,
            &t.expires_at,
            &json(t)?,
        ],
        |_| "token collision; try again".to_owned(),
    )
    .await?;
    Ok(())
}

fn hash32(what: &str, b: &[u8]) -> Result<[u8; 32], PgError> {
    b.try_into()
        .map_err(|_| PgError::Corrupt(format!("{what} is not 32 bytes")))
}

/// The token whose secret hashes to `secret_hash`.
pub async fn token_by_hash<C: GenericClient>(
    c: &C,
    secret_hash: &[u8; 32],
) -> Result<Option<ApiToken>, PgError> {
    let row = c
        .query_opt(
            "SELECT body::text FROM crier_tokens WHERE secret_hash = $1",
            &[&secret_hash.as_slice()],
        )
        .await?;
    body("token", row)
}

/// Every token with its secret's hash, by id. A revoked token has no hash any more (migration
/// 4, as in sled): it is an error here, as the sled side of `crier store migrate` says it.
pub async fn tokens<C: GenericClient>(c: &C) -> Result<Vec<(ApiToken, Option<[u8; 32]>)>, PgError> {
    let rows = c
        .query(
            "SELECT body::text, secret_hash FROM crier_tokens ORDER BY id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let t: ApiToken = from_json("token", r.try_get(0)?)?;
            // A revoked token's hash is gone (as on sled): it can no longer be looked up.
            let h = match r.try_get::<_, Option<&[u8]>>(1)? {
                Some(h) => Some(hash32("token hash", h)?),
                None if t.revoked_at.is_some() => None,
                None => {
                    return Err(PgError::Corrupt(format!(
                        "token {} is live but has no secret hash",
                        t.id
                    )))
                }
            };
            Ok((t, h))
        })
        .collect()
}

pub async fn put_session<C: GenericClient>(
    c: &C,
    secret_hash: &[u8; 32],
    s: &Session,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_sessions",
        &["secret_hash", "id", "user_name", "last_seen_at", "body"],
        &["secret_hash"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &secret_hash.as_slice(),
            &s.id.to_string(),
            &s.user.as_str(),
            &s.last_seen_at,
            &json(s)?,
        ],
        |_| "session collision; try again".to_owned(),
    )
    .await?;
    Ok(())
}

pub async fn session<C: GenericClient>(
    c: &C,
    secret_hash: &[u8; 32],
) -> Result<Option<Session>, PgError> {
    let row = c
        .query_opt(
            "SELECT body::text FROM crier_sessions WHERE secret_hash = $1",
            &[&secret_hash.as_slice()],
        )
        .await?;
    body("session", row)
}

pub async fn put_totp<C: GenericClient>(
    c: &C,
    user: &UserName,
    t: &TotpRecord,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql("crier_totp", &["user_name", "body"], &["user_name"], mode);
    exec(c, &sql, &[&user.as_str(), &json(t)?], |_| {
        format!("{user} has a second factor already")
    })
    .await?;
    Ok(())
}

/// Every user's TOTP record, by user name.
pub async fn totps<C: GenericClient>(c: &C) -> Result<Vec<(UserName, TotpRecord)>, PgError> {
    let rows = c
        .query(
            "SELECT to_json(user_name)::text, body::text FROM crier_totp ORDER BY user_name",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                from_json("user name", r.get(0))?,
                from_json("totp", r.get(1))?,
            ))
        })
        .collect()
}

// ---- approvals, templates -------------------------------------------------------------------

pub async fn put_approval<C: GenericClient>(
    c: &C,
    a: &Approval,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_approvals",
        &["id", "state", "incident_id", "requested_at", "body"],
        &["id"],
        mode,
    );
    exec(
        c,
        &sql,
        &[
            &a.id.to_string(),
            &word(&a.state)?,
            &a.incident_id.to_string(),
            &a.requested_at,
            &json(a)?,
        ],
        |_| duplicate("approval", a.id),
    )
    .await?;
    Ok(())
}

pub async fn approvals<C: GenericClient>(c: &C) -> Result<Vec<Approval>, PgError> {
    let rows = c
        .query("SELECT body::text FROM crier_approvals ORDER BY id", &[])
        .await?;
    bodies("approval", &rows)
}

pub async fn put_template<C: GenericClient>(
    c: &C,
    t: &IncidentTemplate,
    mode: Write,
) -> Result<(), PgError> {
    let sql = write_sql(
        "crier_templates",
        &["id", "name_key", "body"],
        &["id"],
        mode,
    );
    exec(
        c,
        &sql,
        &[&t.id.to_string(), &t.name.key(), &json(t)?],
        |constraint| {
            if constraint == "crier_templates_name_key_key" {
                format!(
                    "name: a template named \"{}\" exists already; choose another name, or edit \
                     that one (`crier templates edit \"{}\" …`)",
                    t.name, t.name
                )
            } else {
                duplicate("template", t.id)
            }
        },
    )
    .await?;
    Ok(())
}

pub async fn templates<C: GenericClient>(c: &C) -> Result<Vec<IncidentTemplate>, PgError> {
    let rows = c
        .query("SELECT body::text FROM crier_templates ORDER BY id", &[])
        .await?;
    bodies("template", &rows)
}

// ---- the audit log --------------------------------------------------------------------------

/// Appends an entry with its stored bytes (the JSON the chain hashes: the next entry's `prev`
/// is its SHA-256) and moves the head to it. The log is append-only: an entry at a taken
/// number is a conflict, and the table refuses UPDATE and DELETE.
pub async fn append_audit<C: GenericClient>(
    c: &C,
    e: &AuditEntry,
    stored: &[u8],
) -> Result<(), PgError> {
    let seq = i64::try_from(e.seq)
        .map_err(|_| PgError::Corrupt(format!("audit entry {} is out of range", e.seq)))?;
    exec(
        c,
        "INSERT INTO crier_audit (seq, at, actor, action, entry) VALUES ($1, $2, $3, $4, $5)",
        &[&seq, &e.at, &e.actor, &e.action, &stored],
        |_| format!("audit entry {} exists already", e.seq),
    )
    .await?;
    c.execute(
        "INSERT INTO crier_audit_head (one, seq, hash) VALUES (true, $1, $2)
         ON CONFLICT (one) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
        &[&seq, &audit::hash(stored)],
    )
    .await?;
    Ok(())
}

/// Every entry as stored: (number, bytes), in order.
pub async fn audit_stored<C: GenericClient>(c: &C) -> Result<Vec<(u64, Vec<u8>)>, PgError> {
    let rows = c
        .query("SELECT seq, entry FROM crier_audit ORDER BY seq", &[])
        .await?;
    rows.iter()
        .map(|r| {
            let seq: i64 = r.get(0);
            let seq = u64::try_from(seq)
                .map_err(|_| PgError::Corrupt(format!("audit entry {seq} is out of range")))?;
            Ok((seq, r.get(1)))
        })
        .collect()
}

/// The head: (number, hash) of the last entry, `None` for an empty log.
pub async fn audit_head<C: GenericClient>(c: &C) -> Result<Option<(u64, String)>, PgError> {
    let row = c
        // A head at 0 is only ever seen inside an append's own transaction (`pg::store`
        // creates the row there before locking it): an empty log.
        .query_opt("SELECT seq, hash FROM crier_audit_head WHERE seq > 0", &[])
        .await?;
    row.map(|r| {
        let seq: i64 = r.get(0);
        let seq = u64::try_from(seq)
            .map_err(|_| PgError::Corrupt(format!("audit head {seq} is out of range")))?;
        Ok((seq, r.get(1)))
    })
    .transpose()
}

/// Walks the chain as `crier audit verify` does on sled ([`audit::verify`]): same bytes, same
/// verdicts.
pub async fn verify_audit<C: GenericClient>(
    c: &C,
) -> Result<Result<Verified, audit::ChainError>, PgError> {
    let entries = audit_stored(c).await?;
    let head = audit_head(c).await?;
    Ok(audit::verify(entries, head))
}

/// Decodes a stored audit entry.
pub fn audit_entry(stored: &[u8]) -> Result<AuditEntry, PgError> {
    serde_json::from_slice(stored).map_err(|e| PgError::Corrupt(format!("audit entry: {e}")))
}

// ---- the outbox as the store port's (pg::store::outbox) ---------------------------------------

/// Adds new pending deliveries (an expansion batch) in one statement; a delivery whose row
/// exists already (same idempotency key: the recipient was expanded before a crash) is left as
/// it is. Returns how many were added.
pub async fn insert_new_deliveries<C: GenericClient>(
    c: &C,
    ds: &[Delivery],
) -> Result<u64, PgError> {
    if ds.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(ds.len());
    let mut channels = Vec::with_capacity(ds.len());
    let mut payloads = Vec::with_capacity(ds.len());
    let mut states = Vec::with_capacity(ds.len());
    let mut dues = Vec::with_capacity(ds.len());
    let mut created = Vec::with_capacity(ds.len());
    let mut delivery_ids = Vec::with_capacity(ds.len());
    let mut incidents = Vec::with_capacity(ds.len());
    let mut seqs = Vec::with_capacity(ds.len());
    let mut updates = Vec::with_capacity(ds.len());
    let mut subscribers = Vec::with_capacity(ds.len());
    let mut words = Vec::with_capacity(ds.len());
    for d in ds {
        ids.push(d.idempotency_key.as_str());
        channels.push(d.channel.as_str());
        payloads.push(crate::store::codec::encode(d));
        states.push(claim_state(d.state));
        dues.push(d.next_at);
        created.push(d.created_at);
        delivery_ids.push(d.id.to_string());
        incidents.push(d.incident_id.to_string());
        seqs.push(i64::from(d.seq));
        updates.push(d.update_id.to_string());
        subscribers.push(match &d.target {
            Target::Endpoint => None,
            Target::Subscriber { id, .. } => Some(id.to_string()),
        });
        words.push(word(&d.state)?);
    }
    Ok(c.execute(
        "INSERT INTO crier_deliveries (id, channel, payload, state, next_attempt_at, created_at,
                                       delivery_id, incident_id, seq, update_id, subscriber_id,
                                       delivery_state)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[],
                              $5::timestamptz[], $6::timestamptz[], $7::text[], $8::text[],
                              $9::bigint[], $10::text[], $11::text[], $12::text[])
         ON CONFLICT DO NOTHING",
        &[
            &ids,
            &channels,
            &payloads,
            &states,
            &dues,
            &created,
            &delivery_ids,
            &incidents,
            &seqs,
            &updates,
            &subscribers,
            &words,
        ],
    )
    .await?)
}

/// A delivery's row from its `payload` column (the first of the row).
pub(crate) fn delivery_from_row(r: &Row) -> Result<Delivery, PgError> {
    delivery_of(r)
}

/// The outbox's claim state (`pending`, `sent`, `dead`) of a delivery state.
pub(crate) fn delivery_claim_state(s: DeliveryState) -> &'static str {
    claim_state(s)
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::super::testdb::TestDb;
    use super::*;
    use crate::domain::Locale;
    use crate::store::port::{
        AlertGroups, Approvals, Audit, Components, Holds, Incidents, Notices, Outbox,
        SecondFactors, Standalones, Subscribers, Templates, Threads, Tokens, Users,
    };

    /// The audit log's entries as sled stores them (`Store::audit_entries` decodes them; the
    /// stored bytes are their JSON, which re-encodes to the same bytes: `verify` proves it).
    async fn sled_audit(store: &crate::store::Store) -> Vec<(AuditEntry, Vec<u8>)> {
        let filter = crate::domain::audit::AuditFilter {
            limit: usize::MAX,
            ..Default::default()
        };
        let (entries, _) = store.audit_entries(&filter).await.unwrap();
        entries
            .into_iter()
            .map(|e| {
                let b = serde_json::to_vec(&e).unwrap();
                (e, b)
            })
            .collect()
    }

    #[tokio::test]
    async fn every_aggregate_round_trips_through_its_table() {
        let Some(db) = TestDb::create("rows").await else {
            return;
        };
        let f = fixture::populated(3).await;
        let s = &f.store;
        let pg = db.migrated(1).await;
        let pooled = pg.client().await.unwrap();
        let c: &tokio_postgres::Client = &pooled;

        let filter = crate::domain::IncidentFilter {
            limit: usize::MAX,
            ..Default::default()
        };
        let incidents = s.incidents(&filter).await.unwrap();
        let mut full: Vec<Incident> = Vec::new();
        for i in incidents {
            full.push(s.incident(i.id).await.unwrap().0);
        }
        let mut incidents = full;
        incidents.sort_by_key(|i| i.id);
        assert_eq!(incidents.len(), 2);
        for i in &incidents {
            put_incident(c, i, Write::Insert).await.unwrap();
        }
        assert_eq!(super::incidents(c).await.unwrap(), incidents);
        assert_eq!(
            incident(c, f.busy.id).await.unwrap().as_ref(),
            Some(&f.busy)
        );

        let (_, timeline) = s.incident(f.busy.id).await.unwrap();
        assert_eq!(timeline.len(), 4);
        for (n, u) in (1..).zip(&timeline) {
            put_update(c, n, u, Write::Insert).await.unwrap();
        }
        let back = updates(c, f.busy.id).await.unwrap();
        assert_eq!(
            back.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            back.into_iter().map(|(_, u)| u).collect::<Vec<_>>(),
            timeline
        );

        let comps = s.components().await.unwrap();
        for comp in &comps {
            put_component(c, comp, Write::Insert).await.unwrap();
        }
        assert_eq!(components(c).await.unwrap(), comps);
        let history = s
            .component_history(Utc::now() - chrono::Duration::days(1))
            .await
            .unwrap();
        for (name, changes) in &history {
            for ch in changes {
                let name = ComponentName::parse(name).unwrap();
                put_component_change(c, &name, ch.at, ch.status)
                    .await
                    .unwrap();
            }
        }
        let back = component_changes(c).await.unwrap();
        assert_eq!(back.len(), history.values().map(Vec::len).sum::<usize>());
        assert_eq!(back.len(), 3, "api twice, web once");

        let mut subs = s.subscribers(usize::MAX).await.unwrap();
        subs.sort_by_key(|s| s.id);
        for sub in &subs {
            put_subscriber(c, sub, Write::Insert).await.unwrap();
        }
        assert_eq!(subscribers(c).await.unwrap(), subs);
        let email = subs
            .iter()
            .find(|s| matches!(s.contact, Contact::Email(_)))
            .unwrap();
        assert_eq!(
            subscriber_by_address(c, &email.contact)
                .await
                .unwrap()
                .as_ref(),
            Some(email)
        );
        assert_eq!(
            subscriber_by_token(c, &email.unsubscribe_token)
                .await
                .unwrap()
                .as_ref(),
            Some(email)
        );
        assert_eq!(subscriber(c, email.id).await.unwrap().as_ref(), Some(email));

        let ns = s.notices().await.unwrap();
        for n in &ns {
            put_notice(c, n, Write::Insert).await.unwrap();
        }
        assert_eq!(notices(c).await.unwrap(), ns);
        let msgs = s.standalones_of(ns[0].id).await.unwrap();
        assert_eq!(msgs.len(), 1);
        put_standalone(c, &msgs[0], Write::Insert).await.unwrap();
        assert_eq!(standalones(c).await.unwrap(), msgs);

        let thread = s.thread(f.busy.id, "mastodon").await.unwrap().unwrap();
        put_thread(c, f.busy.id, "mastodon", &thread, Write::Insert)
            .await
            .unwrap();
        assert_eq!(
            threads(c).await.unwrap(),
            vec![(f.busy.id, "mastodon".to_owned(), thread)]
        );

        let groups = s.alert_groups().await.unwrap();
        for g in &groups {
            put_alert_group(c, g, Write::Insert).await.unwrap();
        }
        assert_eq!(alert_groups(c).await.unwrap(), groups);
        let hs = s.holds().await.unwrap();
        for h in &hs {
            put_hold(c, h, Write::Insert).await.unwrap();
        }
        assert_eq!(holds(c).await.unwrap(), hs);

        let bs = s.broadcasts_of_all().await.unwrap();
        assert!(!bs.is_empty());
        for b in &bs {
            put_broadcast(c, b, Write::Insert).await.unwrap();
        }
        assert_eq!(broadcasts(c).await.unwrap(), bs);
        let ds = s.deliveries_of(f.busy.id).await.unwrap();
        assert_eq!(ds.len(), 3);
        for d in &ds {
            put_delivery(c, d, Write::Insert).await.unwrap();
        }
        assert_eq!(deliveries(c).await.unwrap(), ds);

        let us = s.users().await.unwrap();
        let mut with_hashes = Vec::new();
        for u in &us {
            let h = s.password_hash(&u.name).await.unwrap().unwrap();
            put_user(c, u, &h, Write::Insert).await.unwrap();
            with_hashes.push((u.clone(), h));
        }
        assert_eq!(users(c).await.unwrap(), with_hashes);
        let ts = s.tokens(None).await.unwrap();
        put_token(c, &ts[0], Some(&f.token_hash), Write::Insert)
            .await
            .unwrap();
        assert_eq!(
            tokens(c).await.unwrap(),
            vec![(ts[0].clone(), Some(f.token_hash))]
        );
        assert_eq!(
            token_by_hash(c, &f.token_hash).await.unwrap().as_ref(),
            Some(&ts[0])
        );
        let maria = UserName::parse("maria").unwrap();
        let totp = s.totp(&maria).await.unwrap().unwrap();
        put_totp(c, &maria, &totp, Write::Insert).await.unwrap();
        assert!(totps(c).await.unwrap() == vec![(maria.clone(), totp)]);
        let session = Session {
            id: Ulid::new(),
            user: maria.clone(),
            role: crate::domain::Role::Publisher,
            created_at: Utc::now(),
            last_seen_at: Utc::now(),
            enrol_only: false,
        };
        put_session(c, &[9; 32], &session, Write::Insert)
            .await
            .unwrap();
        assert_eq!(super::session(c, &[9; 32]).await.unwrap(), Some(session));

        let aps = s.approvals(None, usize::MAX).await.unwrap();
        for a in &aps {
            put_approval(c, a, Write::Insert).await.unwrap();
        }
        assert_eq!(approvals(c).await.unwrap(), aps);
        let tpls = s.templates().await.unwrap();
        for t in &tpls {
            put_template(c, t, Write::Insert).await.unwrap();
        }
        assert_eq!(templates(c).await.unwrap(), tpls);

        let entries = sled_audit(s).await;
        assert_eq!(entries.len(), 3);
        for (e, b) in &entries {
            append_audit(c, e, b).await.unwrap();
        }
        let stored = audit_stored(c).await.unwrap();
        assert_eq!(
            stored
                .iter()
                .map(|(_, b)| audit_entry(b).unwrap())
                .collect::<Vec<_>>(),
            entries.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>()
        );
        // The same walk as on sled, over the same bytes, to the same head.
        let on_sled = s.verify_audit().await.unwrap();
        assert_eq!(verify_audit(c).await.unwrap().unwrap(), on_sled);
    }

    #[tokio::test]
    async fn taken_keys_are_conflicts_with_the_sled_stores_messages() {
        let Some(db) = TestDb::create("rowsdup").await else {
            return;
        };
        let f = fixture::populated(1).await;
        let s = &f.store;
        let pg = db.migrated(1).await;
        let pooled = pg.client().await.unwrap();
        let c: &tokio_postgres::Client = &pooled;
        let conflict = |r: Result<(), PgError>| match r {
            Err(PgError::Conflict(m)) => m,
            other => panic!("expected a conflict, got {other:?}"),
        };

        // A second subscriber at the same address (another id, another token).
        let sub = s.subscribers(usize::MAX).await.unwrap().remove(0);
        put_subscriber(c, &sub, Write::Insert).await.unwrap();
        let mut twin = sub.clone();
        twin.id = Ulid::new();
        twin.unsubscribe_token = "another-token".into();
        let m = conflict(put_subscriber(c, &twin, Write::Insert).await);
        assert!(m.contains("is already subscribed"), "{m}");
        // Upsert of the same subscriber replaces it; of another id at the same address, refused.
        let mut changed = sub.clone();
        changed.locale = Locale::parse("sv").unwrap();
        put_subscriber(c, &changed, Write::Upsert).await.unwrap();
        assert_eq!(subscriber(c, sub.id).await.unwrap(), Some(changed));
        let m = conflict(put_subscriber(c, &twin, Write::Upsert).await);
        assert!(m.contains("is already subscribed"), "{m}");
        // The same unsubscribe token on another address.
        let mut token_twin = twin.clone();
        token_twin.contact = Contact::email("other@example.com").unwrap();
        token_twin.unsubscribe_token = sub.unsubscribe_token.clone();
        let m = conflict(put_subscriber(c, &token_twin, Write::Insert).await);
        assert!(m.contains("token"), "{m}");

        // A second update at a taken position of the timeline.
        put_incident(c, &f.busy, Write::Insert).await.unwrap();
        let m = conflict(put_incident(c, &f.busy, Write::Insert).await);
        assert!(m.contains("exists already"), "{m}");
        let (_, timeline) = s.incident(f.busy.id).await.unwrap();
        put_update(c, 1, &timeline[0], Write::Insert).await.unwrap();
        let m = conflict(put_update(c, 1, &timeline[1], Write::Insert).await);
        assert!(m.contains("already has an update at position 1"), "{m}");

        // A user name, a template name in another case, a token hash.
        let u = s.users().await.unwrap().remove(0);
        put_user(c, &u, "h", Write::Insert).await.unwrap();
        let m = conflict(put_user(c, &u, "h", Write::Insert).await);
        assert!(m.contains("there is already a user maria"), "{m}");
        let t = s.templates().await.unwrap().remove(0);
        put_template(c, &t, Write::Insert).await.unwrap();
        let mut other: IncidentTemplate = t.clone();
        other.id = Ulid::new();
        other.name = serde_json::from_str("\"CHECK-IN DOWN\"").unwrap();
        let m = conflict(put_template(c, &other, Write::Insert).await);
        assert!(
            m.contains("a template named \"Check-in down\" exists already")
                || m.contains("exists already"),
            "{m}"
        );
        let tok = s.tokens(None).await.unwrap().remove(0);
        put_token(c, &tok, Some(&f.token_hash), Write::Insert)
            .await
            .unwrap();
        let mut tok2 = tok.clone();
        tok2.id = Ulid::new();
        let m = conflict(put_token(c, &tok2, Some(&f.token_hash), Write::Insert).await);
        assert!(m.contains("token collision"), "{m}");

        // The audit log is append-only: a taken number is a conflict, rewriting is refused.
        let entries = sled_audit(s).await;
        append_audit(c, &entries[0].0, &entries[0].1).await.unwrap();
        let m = conflict(append_audit(c, &entries[0].0, &entries[0].1).await);
        assert!(m.contains("audit entry 1 exists already"), "{m}");
        for sql in [
            "UPDATE crier_audit SET actor = 'mallory'",
            "DELETE FROM crier_audit",
            "TRUNCATE crier_audit",
        ] {
            let e = c.batch_execute(sql).await.expect_err(sql);
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
        assert_eq!(audit_stored(c).await.unwrap().len(), 1);
    }
}
