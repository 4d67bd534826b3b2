//! Outbox claims with leases (schema: migrations/0001_outbox.sql).
//!
//! Any node may send any delivery. [`claim`] takes up to `n` due pending deliveries with
//! `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent claimers never take the same row and never
//! wait on each other, and leases them to the node until `now + lease`. The outcome ([`ack`],
//! [`retry_later`], [`dead`]) is recorded only by the holder of that very claim (node and
//! attempt number: the attempt is a fencing token), so a node whose lease ran out and whose
//! delivery another node took over cannot overwrite the newer claim. A lease that expires (the
//! node died, or is too slow) lets any node claim the delivery again; the attempt count goes up.
//!
//! Every function takes `now` from the caller: the lease arithmetic is in the caller's clock,
//! and the tests move time without sleeping.

use chrono::{DateTime, Duration, Utc};
use tokio_postgres::Client;

use super::PgError;

/// A delivery to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The idempotency key of (update, channel, recipient).
    pub id: String,
    pub channel: String,
    pub payload: Vec<u8>,
    /// When it is first due.
    pub due: DateTime<Utc>,
}

/// A delivery leased to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: String,
    pub channel: String,
    pub payload: Vec<u8>,
    /// The attempt this claim is (1 for the first); the claim's fencing token.
    pub attempt: i32,
    /// The node holding the lease.
    pub node: String,
    pub lease_expires_at: DateTime<Utc>,
}

/// Adds deliveries; one that exists already (same id) is left as it is. Returns how many were
/// added. The insert notifies `crier_outbox` listeners on commit.
pub async fn enqueue(client: &Client, deliveries: &[NewDelivery]) -> Result<u64, PgError> {
    if deliveries.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
    let channels: Vec<&str> = deliveries.iter().map(|d| d.channel.as_str()).collect();
    let payloads: Vec<&[u8]> = deliveries.iter().map(|d| d.payload.as_slice()).collect();
    let dues: Vec<DateTime<Utc>> = deliveries.iter().map(|d| d.due).collect();
    Ok(client
        .execute(
            "INSERT INTO crier_deliveries (id, channel, payload, next_attempt_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[])
             ON CONFLICT (id) DO NOTHING",
            &[&ids, &channels, &payloads, &dues],
        )
        .await?)
}

/// Leases up to `n` deliveries due at `now` to `node` until `now + lease`, oldest due first.
/// Rows another transaction is claiming are skipped, not waited for.
pub async fn claim(
    client: &Client,
    node: &str,
    n: i64,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<Claim>, PgError> {
    let expires = now + lease;
    let rows = client
        .query(
            "WITH due AS (
                 SELECT id FROM crier_deliveries
                  WHERE state = 'pending' AND next_attempt_at <= $1
                    AND (lease_expires_at IS NULL OR lease_expires_at <= $1)
                  ORDER BY next_attempt_at, id
                  LIMIT $2
                  FOR UPDATE SKIP LOCKED)
             UPDATE crier_deliveries d
                SET lease_owner = $3, lease_expires_at = $4, attempts = d.attempts + 1
               FROM due WHERE d.id = due.id
             RETURNING d.id, d.channel, d.payload, d.attempts, d.lease_expires_at",
            &[&now, &n, &node, &expires],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Claim {
            id: r.get(0),
            channel: r.get(1),
            payload: r.get(2),
            attempt: r.get(3),
            node: node.to_string(),
            lease_expires_at: r.get(4),
        })
        .collect())
}

async fn finish(client: &Client, claim: &Claim, sql: &str, extra: &str) -> Result<(), PgError> {
    let n = client
        .execute(sql, &[&claim.id, &claim.node, &claim.attempt, &extra])
        .await?;
    if n == 1 {
        Ok(())
    } else {
        Err(PgError::LeaseLost {
            id: claim.id.clone(),
            attempt: claim.attempt,
            node: claim.node.clone(),
        })
    }
}

/// Records that the claimed delivery was sent. Refused ([`PgError::LeaseLost`]) unless the claim
/// still holds the delivery: a lease that ran out is still honoured while no other node took the
/// delivery over (the send happened; refusing would only cause a duplicate).
pub async fn ack(client: &Client, claim: &Claim) -> Result<(), PgError> {
    finish(
        client,
        claim,
        "UPDATE crier_deliveries
            SET state = 'sent', lease_owner = NULL, lease_expires_at = NULL,
                finished_at = now(), last_error = NULLIF($4, '')
          WHERE id = $1 AND state = 'pending' AND lease_owner = $2 AND attempts = $3",
        "",
    )
    .await
}

/// Gives the delivery back to be tried again at `at`, recording `error`.
pub async fn retry_later(
    client: &Client,
    claim: &Claim,
    at: DateTime<Utc>,
    error: &str,
) -> Result<(), PgError> {
    let n = client
        .execute(
            "UPDATE crier_deliveries
                SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $5,
                    last_error = $4
              WHERE id = $1 AND state = 'pending' AND lease_owner = $2 AND attempts = $3",
            &[&claim.id, &claim.node, &claim.attempt, &error, &at],
        )
        .await?;
    if n == 1 {
        Ok(())
    } else {
        Err(PgError::LeaseLost {
            id: claim.id.clone(),
            attempt: claim.attempt,
            node: claim.node.clone(),
        })
    }
}

/// Gives the delivery up for good, recording `error`.
pub async fn dead(client: &Client, claim: &Claim, error: &str) -> Result<(), PgError> {
    finish(
        client,
        claim,
        "UPDATE crier_deliveries
            SET state = 'dead', lease_owner = NULL, lease_expires_at = NULL,
                finished_at = now(), last_error = $4
          WHERE id = $1 AND state = 'pending' AND lease_owner = $2 AND attempts = $3",
        error,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::super::testdb::TestDb;
    use super::*;
    use chrono::TimeZone;
    use std::collections::HashMap;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn deliveries(n: usize, due: DateTime<Utc>) -> Vec<NewDelivery> {
        (0..n)
            .map(|i| NewDelivery {
                id: format!("d{i:05}"),
                channel: "sms".into(),
                payload: format!("payload {i}").into_bytes(),
                due,
            })
            .collect()
    }

    async fn state_of(client: &Client, id: &str) -> (String, i32, Option<String>) {
        let r = client
            .query_one(
                "SELECT state, attempts, lease_owner FROM crier_deliveries WHERE id = $1",
                &[&id],
            )
            .await
            .expect("row");
        (r.get(0), r.get(1), r.get(2))
    }

    #[tokio::test]
    async fn enqueue_is_idempotent_and_claim_takes_only_due_work_in_due_order() {
        let Some(db) = TestDb::create("obq").await else {
            return;
        };
        let pg = db.migrated(1).await;
        let c = pg.client().await.expect("client");
        let mut ds = deliveries(3, t0());
        ds[0].due = t0() + Duration::seconds(60);
        ds[2].due = t0() - Duration::seconds(5);
        assert_eq!(enqueue(&c, &ds).await.expect("enqueue"), 3);
        assert_eq!(
            enqueue(&c, &ds).await.expect("again"),
            0,
            "same ids: nothing new"
        );
        let got = claim(&c, "a", 10, Duration::seconds(30), t0())
            .await
            .expect("claim");
        let ids: Vec<&str> = got.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["d00002", "d00001"], "due ones, oldest due first");
        assert_eq!(got[1].payload, b"payload 1");
        assert_eq!(got[1].attempt, 1);
        assert_eq!(got[1].lease_expires_at, t0() + Duration::seconds(30));
    }

    /// Many claimers at once over one outbox: every delivery is claimed exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claimers_never_get_the_same_delivery() {
        let Some(db) = TestDb::create("obx").await else {
            return;
        };
        const N: usize = 600;
        const CLAIMERS: usize = 12;
        let pg = db.migrated(CLAIMERS).await;
        enqueue(&pg.client().await.expect("client"), &deliveries(N, t0()))
            .await
            .expect("enqueue");
        let mut tasks = Vec::new();
        for k in 0..CLAIMERS {
            let pg = pg.clone();
            tasks.push(tokio::spawn(async move {
                let c = pg.client().await.expect("client");
                let node = format!("node{k}");
                let mut mine = Vec::new();
                let mut refused = Vec::new();
                loop {
                    let got = claim(&c, &node, 3, Duration::seconds(300), t0())
                        .await
                        .expect("claim");
                    if got.is_empty() {
                        break;
                    }
                    for g in got {
                        if ack(&c, &g).await.is_err() {
                            refused.push(g.id.clone());
                        }
                        mine.push(g.id);
                    }
                }
                (mine, refused)
            }));
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut refused = Vec::new();
        for t in tasks {
            let (mine, r) = t.await.expect("join");
            refused.extend(r);
            for id in mine {
                *seen.entry(id).or_default() += 1;
            }
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "claimed more than once: {twice:?}");
        assert!(
            refused.is_empty(),
            "acks of own claims refused: {refused:?}"
        );
        assert_eq!(seen.len(), N, "every delivery claimed");
        let c = pg.client().await.expect("client");
        let r = c
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'sent'), max(attempts) FROM crier_deliveries",
                &[],
            )
            .await
            .expect("count");
        assert_eq!(r.get::<_, i64>(0), N as i64);
        assert_eq!(r.get::<_, i32>(1), 1);
    }

    #[tokio::test]
    async fn a_dead_nodes_claims_return_when_the_lease_expires_and_its_ack_is_refused() {
        let Some(db) = TestDb::create("oblease").await else {
            return;
        };
        let pg = db.migrated(1).await;
        let c = pg.client().await.expect("client");
        enqueue(&c, &deliveries(4, t0())).await.expect("enqueue");
        let lease = Duration::seconds(30);
        let a = claim(&c, "a", 10, lease, t0()).await.expect("a claims");
        assert_eq!(a.len(), 4);

        // While the lease runs, nobody else gets them.
        let b = claim(&c, "b", 10, lease, t0() + Duration::seconds(29))
            .await
            .expect("b claims");
        assert!(b.is_empty(), "leased deliveries must not be claimed: {b:?}");

        // "a" dies. After its lease, "b" takes them over, as attempt 2.
        let b = claim(&c, "b", 10, lease, t0() + Duration::seconds(30))
            .await
            .expect("b claims");
        assert_eq!(b.len(), 4);
        assert!(b.iter().all(|x| x.attempt == 2 && x.node == "b"));

        // "a" comes back and reports: refused, for every kind of outcome.
        for (i, stale) in a.iter().enumerate() {
            let res = match i % 3 {
                0 => ack(&c, stale).await,
                1 => retry_later(&c, stale, t0(), "timeout").await,
                _ => dead(&c, stale, "rejected").await,
            };
            assert!(
                matches!(res, Err(PgError::LeaseLost { .. })),
                "stale outcome {i} must be refused: {res:?}"
            );
        }
        assert_eq!(
            state_of(&c, &a[0].id).await,
            ("pending".into(), 2, Some("b".into()))
        );

        // The current owner's outcomes count.
        ack(&c, &b[0]).await.expect("b acks");
        retry_later(&c, &b[1], t0() + Duration::seconds(90), "429")
            .await
            .expect("b retries");
        dead(&c, &b[2], "invalid number").await.expect("b gives up");
        assert_eq!(state_of(&c, &b[0].id).await, ("sent".into(), 2, None));
        assert_eq!(state_of(&c, &b[1].id).await, ("pending".into(), 2, None));
        assert_eq!(state_of(&c, &b[2].id).await, ("dead".into(), 2, None));
        // An outcome is recorded once: acking again is refused.
        assert!(matches!(
            ack(&c, &b[0]).await,
            Err(PgError::LeaseLost { .. })
        ));

        // The retried one is due again only at its new time.
        let early = claim(&c, "a", 10, lease, t0() + Duration::seconds(59))
            .await
            .expect("claim");
        assert_eq!(
            early.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            Vec::<&str>::new(),
            "b[3] is still leased to b (until +60 s) and b[1] not yet due (+90 s)"
        );
        let later = claim(&c, "a", 10, lease, t0() + Duration::seconds(90))
            .await
            .expect("claim");
        let mut ids: Vec<&str> = later.iter().map(|x| x.id.as_str()).collect();
        ids.sort();
        let mut want = vec![b[1].id.as_str(), b[3].id.as_str()];
        want.sort();
        assert_eq!(ids, want);

        // A node that re-claims its own expired delivery cannot report with the old claim.
        let again = claim(&c, "a", 10, lease, t0() + Duration::seconds(200))
            .await
            .expect("claim");
        let newest = again.first().expect("the expired claims come back");
        let older = later
            .iter()
            .find(|x| x.id == newest.id)
            .expect("same delivery");
        assert!(matches!(
            ack(&c, older).await,
            Err(PgError::LeaseLost { .. })
        ));
        ack(&c, newest).await.expect("the newest claim acks");
    }
}
