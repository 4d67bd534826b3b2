//! The server reads the secrets its files name by environment variable (channels' `*_env`
//! keys, `admin_token_env`) through the lookup on its `Config`, never from the process
//! environment behind it: the variables below are set nowhere else.

use crate::helpers::{env, spawn_app_with};
use crier::config::Config;
use crier::server::{Server, TokenSource};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn base_config(dir: &std::path::Path) -> Config {
    Config {
        channels_dir: dir.join("channels"),
        data_dir: dir.join("data"),
        bind: "127.0.0.1:0".parse().unwrap(),
        admin_token_env: "CRIER_TEST_INJECTED_ADMIN".into(),
        templates_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/templates").into(),
        ..Config::default()
    }
}

#[tokio::test]
async fn the_admin_token_comes_from_the_injected_environment() {
    assert!(std::env::var_os("CRIER_TEST_INJECTED_ADMIN").is_none());
    let dir = tempfile::tempdir().unwrap();
    let token = "injected-admin-token-0123456789abcdef";
    let config = Config {
        env: env(&[("CRIER_TEST_INJECTED_ADMIN", token)]),
        ..base_config(dir.path())
    };
    let (server, source) = Server::build(&config).await.unwrap();
    assert_eq!(source, TokenSource::Env("CRIER_TEST_INJECTED_ADMIN".into()));
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/incidents");
    let ok = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let no = client
        .get(&url)
        .bearer_auth("x".repeat(40))
        .send()
        .await
        .unwrap();
    assert_eq!(no.status(), 401);
    tx.send(()).unwrap();
    running.await.unwrap().unwrap();

    // A short token in the injected environment stops start-up, without echoing it.
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        env: env(&[("CRIER_TEST_INJECTED_ADMIN", "short-secret")]),
        ..base_config(dir.path())
    };
    let e = format!("{:#}", Server::build(&config).await.err().unwrap());
    assert!(e.contains("shorter than 16"), "{e}");
    assert!(!e.contains("short-secret"), "{e}");
}

#[tokio::test]
async fn a_channel_secret_comes_from_the_injected_environment() {
    assert!(std::env::var_os("CRIER_TEST_INJECTED_SLACK").is_none());
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/injected/hook"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let hook = format!("{}/injected/hook", server.uri());
    let app = spawn_app_with(
        &[(
            "ops",
            "kind = \"slack\"\nwebhook_url_env = \"CRIER_TEST_INJECTED_SLACK\"\n",
        )],
        |c| c.env = env(&[("CRIER_TEST_INJECTED_SLACK", &hook)]),
    )
    .await;
    app.open_incident("Injected").await;
    let mut n = 0;
    for _ in 0..400 {
        n = server.received_requests().await.unwrap_or_default().len();
        if n > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(n, 1);
}
