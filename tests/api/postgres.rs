//! What only the PostgreSQL store has (run with `CRIER_TEST_STORE=postgres`, which
//! scripts/test.sh sets for the suite's second run; on the sled run these say so and stop).

use crate::helpers::{on_postgres, pg_store_for_tests};
use crier::config::Config;
use crier::server::Server;

fn config(dir: &std::path::Path, store: crier::pg::settings::StoreSetting) -> Config {
    Config {
        channels_dir: dir.join("channels"),
        data_dir: dir.join("data"),
        bind: "127.0.0.1:0".parse().unwrap(),
        admin_token_env: "CRIER_TEST_UNSET_TOKEN_VAR".into(),
        templates_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/templates").into(),
        env: crate::helpers::env(&[]),
        store,
        ..Config::default()
    }
}

/// Until the scheduler's singletons run on an elected leader, a second node on the same
/// database is refused at start-up (it would fire notices twice), and writes nothing; once the
/// first node is gone, a node starts again on the same data.
#[tokio::test]
async fn a_second_node_on_one_database_is_refused_until_the_first_is_gone() {
    if !on_postgres() {
        eprintln!("PostgreSQL only: run with CRIER_TEST_STORE=postgres (scripts/test.sh does)");
        return;
    }
    let store = pg_store_for_tests().await.unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::create_dir_all(d1.path().join("channels")).unwrap();
    std::fs::create_dir_all(d2.path().join("channels")).unwrap();
    let (first, _) = Server::build(&config(d1.path(), store.clone()))
        .await
        .unwrap();
    let before = first.store().checksum().await.unwrap();
    let Err(e) = Server::build(&config(d2.path(), store.clone())).await else {
        panic!("a second node started on the same database");
    };
    let e = format!("{e:#}");
    assert!(e.contains("another crier node is serving"), "{e}");
    assert_eq!(first.store().checksum().await.unwrap(), before);
    assert!(
        !d2.path().join("data").exists(),
        "the refused node wrote locally"
    );

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(first.run(async {
        let _ = rx.await;
    }));
    tx.send(()).unwrap();
    running.await.unwrap().unwrap();
    let (again, _) = Server::build(&config(d2.path(), store)).await.unwrap();
    assert_eq!(again.store().checksum().await.unwrap(), before);
}
