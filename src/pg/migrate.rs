//! Versioned schema migrations, applied at start-up.
//!
//! `crier_schema` records each applied version. All pending migrations run in one transaction
//! that first takes a transaction-scoped advisory lock, so nodes starting together apply them
//! once, one after the other: the second waits, then finds nothing left to do. A database whose
//! schema is newer than this binary knows is refused before anything is written.

use tokio_postgres::Client;

use super::PgError;

/// The migrations, in order; the version is the position (1-based). Append only: a released
/// migration is never edited.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("outbox", include_str!("migrations/0001_outbox.sql")),
    ("aggregates", include_str!("migrations/0002_aggregates.sql")),
    ("incidents", include_str!("migrations/0003_incidents.sql")),
    ("people", include_str!("migrations/0004_people.sql")),
    (
        "outbox port",
        include_str!("migrations/0005_outbox_port.sql"),
    ),
    ("audience", include_str!("migrations/0006_audience.sql")),
    ("wake-ups", include_str!("migrations/0007_wakeups.sql")),
    (
        "claim order",
        include_str!("migrations/0008_claim_order.sql"),
    ),
    (
        "shared rate",
        include_str!("migrations/0009_shared_rate.sql"),
    ),
];

/// The advisory lock key of migrations ("crier-mg").
pub const MIGRATION_LOCK: i64 = 0x6372_6965_722d_6d67;

/// The newest schema version this binary knows.
pub fn binary_version() -> i32 {
    i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
}

/// Brings the schema to [`binary_version`]; returns the version found before.
pub async fn migrate(client: &mut Client) -> Result<i32, PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS crier_schema (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM crier_schema", &[])
        .await?
        .get(0);
    let binary = binary_version();
    if found > binary {
        // Dropping the transaction rolls it back: nothing is written.
        return Err(PgError::SchemaTooNew {
            database: found,
            binary,
        });
    }
    for (version, (name, sql)) in (1..).zip(MIGRATIONS.iter()) {
        if version <= found {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO crier_schema (version, name) VALUES ($1, $2)",
            &[&version, name],
        )
        .await?;
        tracing::info!(version, name, "applied PostgreSQL schema migration");
    }
    tx.commit().await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::super::testdb::TestDb;
    use super::*;

    #[tokio::test]
    async fn migrates_a_fresh_database_once_and_again_is_a_no_op() {
        let Some(db) = TestDb::create("mig").await else {
            return;
        };
        let pg = db.pg(1);
        assert_eq!(pg.migrate().await.expect("first"), 0);
        assert_eq!(pg.migrate().await.expect("second"), binary_version());
        let client = pg.client().await.expect("client");
        let n: i64 = client
            .query_one("SELECT count(*) FROM crier_schema", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, i64::from(binary_version()));
        client
            .query("SELECT id, lease_owner FROM crier_deliveries", &[])
            .await
            .expect("the outbox table exists");
    }

    #[tokio::test]
    async fn nodes_starting_together_migrate_once_without_error() {
        let Some(db) = TestDb::create("migrace").await else {
            return;
        };
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let pg = db.pg(1);
            tasks.push(tokio::spawn(async move { pg.migrate().await }));
        }
        let mut fresh = 0;
        for t in tasks {
            let found = t.await.expect("join").expect("every node starts");
            if found == 0 {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "exactly one node applies the migrations");
    }

    #[tokio::test]
    async fn a_schema_newer_than_the_binary_is_refused_and_left_alone() {
        let Some(db) = TestDb::create("mignew").await else {
            return;
        };
        let pg = db.migrated(1).await;
        let client = pg.client().await.expect("client");
        let newer = binary_version() + 1;
        client
            .execute(
                "INSERT INTO crier_schema (version, name) VALUES ($1, 'from the future')",
                &[&newer],
            )
            .await
            .expect("insert");
        drop(client);
        let err = pg
            .migrate()
            .await
            .expect_err("a newer schema must be refused");
        assert!(
            matches!(err, PgError::SchemaTooNew { database, binary } if database == newer && binary == binary_version()),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("Run the newer crier"), "{msg}");
        let client = pg.client().await.expect("client");
        let n: i64 = client
            .query_one("SELECT count(*) FROM crier_schema", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, i64::from(newer), "nothing written");
    }
}
