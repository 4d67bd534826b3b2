//! Health and lifecycle of the PostgreSQL backend: what `Store`'s own methods (`ready`,
//! `checksum`, `close`) ask of it. A database commits each transaction itself, so there is no
//! group commit to wait for, no unsaved write to report and no broken state to recover from:
//! a failed statement fails its own request, and the pool reconnects on the next one.

use sha2::{Digest, Sha256};

use super::PgStore;
use crate::store::StoreError;

/// Tables that do not count in [`PgStore::checksum`]: the audit log (every request may append
/// to it), the schema's own bookkeeping, and the channels' shared rate buckets (run-time
/// pacing, changed by any send, not stored data).
const NOT_SUMMED: [&str; 4] = [
    "crier_audit",
    "crier_audit_head",
    "crier_schema",
    "crier_rate",
];

impl PgStore {
    /// Readiness (`/readyz`): the database answers, and it is a primary that takes writes (a
    /// standby in recovery would refuse every write, so a node on it is not ready).
    pub async fn ready(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(super::db)?;
        let standby: bool = row.try_get(0).map_err(super::db)?;
        if standby {
            return Err(StoreError::Backend(crate::store::BackendError::message(
                "the database is a standby in recovery and takes no writes; point store at the \
                 primary",
            )));
        }
        Ok(())
    }

    /// A checksum over every crier table except the audit log and the schema's bookkeeping:
    /// equal before and after means nothing was written (the tests that prove a refusal writes
    /// nothing). Each table's rows are read as text in a fixed order in one snapshot.
    pub async fn checksum(&self) -> Result<u32, StoreError> {
        let mut client = self.client().await?;
        let tx = super::snapshot(&mut client).await?;
        let tables = tx
            .query(
                "SELECT tablename::text FROM pg_tables \
                 WHERE schemaname = current_schema() AND tablename LIKE 'crier\\_%' \
                 ORDER BY tablename",
                &[],
            )
            .await
            .map_err(super::db)?;
        let mut hash = Sha256::new();
        for row in tables {
            let table: String = row.try_get(0).map_err(super::db)?;
            if NOT_SUMMED.contains(&table.as_str()) {
                continue;
            }
            // The name comes from the catalogue and matched crier_%; quote it all the same.
            let quoted = format!("\"{}\"", table.replace('"', "\"\""));
            let sum = tx
                .query_one(
                    &format!(
                        "SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') \
                         FROM {quoted} t"
                    ),
                    &[],
                )
                .await
                .map_err(super::db)?;
            let sum: String = sum.try_get(0).map_err(super::db)?;
            hash.update(table.as_bytes());
            hash.update([0]);
            hash.update(sum.as_bytes());
            hash.update([0]);
        }
        tx.commit().await.map_err(super::db)?;
        let d = hash.finalize();
        Ok(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }

    /// Closes the pool: connections in use finish their statement and are dropped.
    pub fn close(&self) {
        self.pg().close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::pg::testdb::TestDb;
    use crate::store::port::Threads;

    #[tokio::test]
    async fn ready_on_a_primary_and_the_checksum_moves_with_a_write_only() {
        let Some(db) = TestDb::create("chealth").await else {
            return;
        };
        let s = PgStore::with_pg(db.pg(2), Clock::new()).await.unwrap();
        s.ready().await.unwrap();
        let before = s.checksum().await.unwrap();
        assert_eq!(s.checksum().await.unwrap(), before, "a read changed it");
        s.extend_thread(ulid::Ulid::new(), "x", "post-1")
            .await
            .unwrap();
        let after = s.checksum().await.unwrap();
        assert_ne!(after, before, "a write left it equal");
        assert_eq!(s.checksum().await.unwrap(), after);
    }
}
