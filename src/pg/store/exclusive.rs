//! A lock across nodes on a name, for read-decide-write sequences that span several store calls.
//!
//! Most writes decide under their own row lock in one transaction. The monitoring intake cannot:
//! handling a notification reads the alert group, may open an incident or append to it, and
//! saves the group, several writes in a row. Within a node its mutex serialises that; with two
//! nodes behind a load balancer, an HA pair of Alertmanagers sending the same notification to
//! both at once would otherwise open two incidents. [`PgStore::exclusive`] takes a PostgreSQL
//! session advisory lock on the name (two-int form, in crier's own class, so it never meets the
//! leader lock's bigint key) on a pooled connection and holds that connection until
//! [`Held::release`]. A holder dropped without releasing (its request cancelled) takes its
//! connection out of the pool and closes it, which frees the lock: a pooled connection never goes
//! back with a lock on it.

use deadpool_postgres::Object;

use super::{db, PgStore};
use crate::store::StoreError;

/// The class (first key) of crier's named locks ("crie").
const CLASS: i32 = 0x6372_6965;

/// A held named lock. Release it with [`Held::release`].
pub struct Held {
    client: Option<Object>,
    name: String,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").field("name", &self.name).finish()
    }
}

impl PgStore {
    /// Waits for, then holds, the lock named `name` across every node on this database.
    pub async fn exclusive(&self, name: &str) -> Result<Held, StoreError> {
        let client = self.pg.client().await?;
        let held = Held {
            client: Some(client),
            name: name.to_owned(),
        };
        if let Some(c) = &held.client {
            c.execute(
                "SELECT pg_advisory_lock($1, hashtext($2))",
                &[&CLASS, &name],
            )
            .await
            .map_err(db)?;
        }
        // From here, dropping `held` closes the connection: the lock cannot outlive it.
        Ok(held)
    }
}

impl Held {
    /// Frees the lock and gives the connection back to the pool. If the unlock cannot be made,
    /// the connection is closed instead, which frees the lock too.
    pub async fn release(mut self) {
        if let Some(c) = self.client.take() {
            match c
                .query_one(
                    "SELECT pg_advisory_unlock($1, hashtext($2))",
                    &[&CLASS, &self.name],
                )
                .await
                .and_then(|r| r.try_get::<_, bool>(0))
            {
                Ok(true) => drop(c),
                _ => drop(Object::take(c)),
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            // Out of the pool and closed: PostgreSQL frees the session's locks with it.
            drop(Object::take(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testdb::TestDb;
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Two nodes (two pools) serialise on one name, not on another; a holder dropped without
    /// releasing (a cancelled request) frees the lock; a released connection is reused.
    #[tokio::test]
    async fn one_name_is_held_by_one_node_at_a_time() {
        let Some(db) = TestDb::create("exclusive").await else {
            return;
        };
        let a = PgStore::with_pg(db.pg(4), crate::clock::Clock::new())
            .await
            .unwrap();
        let b = PgStore::with_pg(db.pg(4), crate::clock::Clock::new())
            .await
            .unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (inside, most) = (inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let held = s.exclusive("alertmanager/db-down").await.unwrap();
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                held.release().await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "two holders at once");

        // Another name is not blocked by this one.
        let x = a.exclusive("alertmanager/db-down").await.unwrap();
        let y = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            b.exclusive("grafana/api-slow"),
        )
        .await
        .expect("another name is free")
        .unwrap();
        y.release().await;
        // Dropped, not released: the lock goes with the closed connection.
        drop(x);
        let z = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            b.exclusive("alertmanager/db-down"),
        )
        .await
        .expect("a dropped holder frees the lock")
        .unwrap();
        z.release().await;
    }
}
