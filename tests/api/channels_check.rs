//! `crier channels check`: the real binary checks every social channel's credentials against
//! (mocked) platforms without posting, one line per channel, exit 0 when all are good and 1
//! when any is not, secrets never printed.

use crate::helpers::bin;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use wiremock::matchers::{body_json, header, header_regex, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GOOD: &str = "good-secret-771";
const BAD: &str = "bad-secret-993";

/// Answers like each platform: 200 for the good secret, the platform's refusal otherwise.
async fn platforms() -> MockServer {
    let s = MockServer::start().await;
    let bearer = format!("Bearer {GOOD}");
    let ok = |v: Value| ResponseTemplate::new(200).set_body_json(v);
    Mock::given(method("GET"))
        .and(path("/masto/api/v1/accounts/verify_credentials"))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ok(json!({"acct": "status"})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/masto/api/v1/accounts/verify_credentials"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "The access token is invalid"})),
        )
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/masto/api/v2/instance"))
        .respond_with(ok(
            json!({"configuration": {"statuses": {"max_characters": 5000}}}),
        ))
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path("/bsky/xrpc/com.atproto.server.createSession"))
        .and(body_json(
            json!({"identifier": "status.example.com", "password": GOOD}),
        ))
        .respond_with(ok(
            json!({"accessJwt": "a", "refreshJwt": "r", "did": "did:plc:xyz"}),
        ))
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path("/bsky/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": "AuthenticationRequired", "message": "Invalid identifier or password"}),
        ))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/x/2/users/me"))
        .and(header_regex(
            "authorization",
            &format!(r#"^OAuth .*oauth_consumer_key="{GOOD}""#),
        ))
        .respond_with(ok(
            json!({"data": {"id": "1", "username": "examplestatus"}}),
        ))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/x/2/users/me"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"title": "Unauthorized", "status": 401})),
        )
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/fb/v23.0/4242"))
        .and(query_param("access_token", GOOD))
        .respond_with(ok(json!({"id": "4242", "name": "Example Status"})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/fb/v23.0/4242"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException", "code": 190}})))
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/slack/{GOOD}")))
        .respond_with(ResponseTemplate::new(400).set_body_string("no_text"))
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/slack/{BAD}")))
        .respond_with(ResponseTemplate::new(403).set_body_string("invalid_token"))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/discord/api/webhooks/1/{GOOD}")))
        .respond_with(ok(json!({"id": "1", "name": "Status", "channel_id": "77"})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/discord/api/webhooks/1/{BAD}")))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Invalid Webhook Token", "code": 50027})),
        )
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/tg/bot{GOOD}/getMe")))
        .respond_with(ok(json!({"ok": true, "result": {"username": "crier_bot"}})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/tg/bot{BAD}/getMe")))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            ),
        )
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/mx/_matrix/client/v3/account/whoami"))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ok(json!({"user_id": "@crier:example.org"})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/mx/_matrix/client/v3/rooms/%21r%3Aexample.org/joined_members",
        ))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ok(json!({"joined": {"@crier:example.org": {}}})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/mx/_matrix/client/v3/account/whoami"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed."}),
        ))
        .mount(&s)
        .await;
    s
}

fn write_channels(dir: &Path, base: &str) {
    let files = [
        ("mastodon", format!("kind = \"mastodon\"\nbase_url = \"{base}/masto\"\ntoken_env = \"CRIER_CHK_SECRET\"")),
        ("bluesky", format!("kind = \"bluesky\"\nbase_url = \"{base}/bsky\"\nidentifier = \"status.example.com\"\napp_password_env = \"CRIER_CHK_SECRET\"")),
        ("x", format!("kind = \"x\"\nbase_url = \"{base}/x\"\nconsumer_key_env = \"CRIER_CHK_SECRET\"\nconsumer_secret_env = \"CRIER_CHK_SECRET\"\naccess_token_env = \"CRIER_CHK_SECRET\"\naccess_token_secret_env = \"CRIER_CHK_SECRET\"")),
        ("facebook", format!("kind = \"facebook\"\nbase_url = \"{base}/fb\"\npage_id = \"4242\"\npage_token_env = \"CRIER_CHK_SECRET\"")),
        ("slack", "kind = \"slack\"\nwebhook_url_env = \"CRIER_CHK_SLACK\"".to_owned()),
        ("teams", "kind = \"teams\"\nwebhook_url_env = \"CRIER_CHK_TEAMS\"".to_owned()),
        ("discord", "kind = \"discord\"\nwebhook_url_env = \"CRIER_CHK_DISCORD\"".to_owned()),
        ("telegram", format!("kind = \"telegram\"\nbase_url = \"{base}/tg\"\nbot_token_env = \"CRIER_CHK_SECRET\"\nchat_id = \"-100\"")),
        ("matrix", format!("kind = \"matrix\"\nbase_url = \"{base}/mx\"\naccess_token_env = \"CRIER_CHK_SECRET\"\nroom_id = \"!r:example.org\"")),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    }
}

async fn check(dir: &Path, base: &str, secret: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(bin())
        .args(["channels", "check", "--channels"])
        .arg(dir)
        .args(args)
        .env("CRIER_CHK_SECRET", secret)
        .env("CRIER_CHK_SLACK", format!("{base}/slack/{secret}"))
        .env("CRIER_CHK_TEAMS", format!("{base}/teams/{secret}"))
        .env(
            "CRIER_CHK_DISCORD",
            format!("{base}/discord/api/webhooks/1/{secret}"),
        )
        .env_remove("CRIER_CHANNELS")
        .env_remove("CRIER_CONFIG")
        .output()
        .await
        .unwrap()
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
}

const SOCIAL: [&str; 8] = [
    "mastodon", "bluesky", "x", "facebook", "slack", "discord", "telegram", "matrix",
];

#[tokio::test]
async fn good_credentials_pass_and_bad_ones_fail_per_platform_without_printing_secrets() {
    let server = platforms().await;
    let dir = tempfile::tempdir().unwrap();
    write_channels(dir.path(), &server.uri());

    let o = check(dir.path(), &server.uri(), GOOD, &[]).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for name in SOCIAL {
        assert!(line(&out, name).starts_with("OK "), "{out}");
    }
    assert!(line(&out, "teams").starts_with("UNCHECKED"), "{out}");
    assert!(line(&out, "teams").contains("without posting"));
    assert!(line(&out, "mastodon").contains("@status") && line(&out, "mastodon").contains("5000"));
    assert!(line(&out, "x").contains("@examplestatus"));
    assert!(line(&out, "facebook").contains("Example Status"));
    assert!(line(&out, "telegram").contains("@crier_bot"));
    assert!(line(&out, "matrix").contains("@crier:example.org"));
    assert!(line(&out, "bluesky").contains("did:plc:xyz"));
    assert!(!out.contains(GOOD), "a secret was printed:\n{out}");

    let o = check(dir.path(), &server.uri(), BAD, &[]).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    for name in SOCIAL {
        assert!(line(&out, name).starts_with("FAILED "), "{out}");
    }
    assert!(line(&out, "mastodon").contains("401"));
    assert!(line(&out, "facebook").contains("code 190"));
    assert!(line(&out, "matrix").contains("M_UNKNOWN_TOKEN"));
    assert!(line(&out, "slack").contains("403"));
    let all = format!("{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(!all.contains(BAD), "a secret was printed:\n{all}");

    // Nothing was posted anywhere: the only POSTs are Bluesky's login and Slack's empty probe.
    for r in server.received_requests().await.unwrap() {
        if r.method.as_str() == "POST" {
            let p = r.url.path();
            assert!(
                p.ends_with("createSession") || (p.starts_with("/slack/") && r.body == b"{}"),
                "{p}"
            );
        }
    }
}

#[tokio::test]
async fn one_channel_by_name_and_json_output() {
    let server = platforms().await;
    let dir = tempfile::tempdir().unwrap();
    write_channels(dir.path(), &server.uri());
    let o = check(dir.path(), &server.uri(), GOOD, &["telegram", "--json"]).await;
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["channels"].as_array().unwrap().len(), 1);
    assert_eq!(v["channels"][0]["name"], "telegram");
    assert_eq!(v["channels"][0]["status"], "ok");

    let o = check(dir.path(), &server.uri(), BAD, &["matrix"]).await;
    assert_eq!(o.status.code(), Some(1));
    let o = check(dir.path(), &server.uri(), GOOD, &["nope"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no channel named \"nope\""));
}

/// One malformed credential must not take the other channels down: `serve` starts with a Twilio
/// channel whose account SID has a dash, skips it like a channel with missing credentials, and
/// the log channel delivers; `/readyz` and `crier channels check` name the bad channel, the
/// variable and what to fix, never the value.
#[tokio::test]
async fn a_malformed_credential_skips_its_channel_and_the_others_serve() {
    const SID: &str = "AC-dashed-sid-4417";
    let dir = tempfile::tempdir().unwrap();
    let channels = dir.path().join("channels");
    std::fs::create_dir_all(&channels).unwrap();
    std::fs::write(
        channels.join("sms.toml"),
        "kind = \"twilio\"\naccount_sid_env = \"CRIER_BADSID_SID\"\nauth_token_env = \"CRIER_BADSID_TOKEN\"\nfrom = \"+15005550006\"\n",
    )
    .unwrap();
    std::fs::write(
        channels.join("public.toml"),
        "kind = \"log\"\nrender = \"x\"\naudience = \"fixed\"\n",
    )
    .unwrap();
    let env = [
        ("CRIER_BADSID_SID", SID),
        ("CRIER_BADSID_TOKEN", "twilio-token-0123456789"),
    ];
    let serve =
        crate::helpers::ServeProcess::start_env(&dir.path().join("data"), &channels, None, &env);
    let (base, token) = (serve.base(), serve.token());
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/v1/incidents"))
        .bearer_auth(&token)
        .json(&json!({"title": "Outage", "impact": "major", "message": "Investigating"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut delivered = false;
    for _ in 0..400 {
        let v: Value = client
            .get(format!("{base}/api/v1/incidents/{id}/deliveries"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["channels"]["public"]["delivered"] == 1 {
            assert!(v["channels"].get("sms").is_none(), "{v}");
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(delivered, "the good channel did not deliver");

    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["channels"]["active"], json!(["public"]), "{ready}");
    let skipped = &ready["channels"]["skipped"];
    assert_eq!(skipped[0]["name"], "sms", "{ready}");
    let reason = skipped[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("credentials invalid")
            && reason.contains("$CRIER_BADSID_SID")
            && reason.contains("letters and digits"),
        "{reason}"
    );
    assert!(
        !ready.to_string().contains(SID),
        "the value leaked: {ready}"
    );
    serve.terminate();

    let o = tokio::process::Command::new(bin())
        .args(["channels", "check", "--channels"])
        .arg(&channels)
        .envs(env)
        .env_remove("CRIER_CHANNELS")
        .env_remove("CRIER_CONFIG")
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let sms = line(&out, "sms");
    assert!(
        sms.starts_with("SKIPPED")
            && sms.contains("$CRIER_BADSID_SID")
            && sms.contains("letters and digits"),
        "{out}"
    );
    assert!(!out.contains(SID), "the value leaked: {out}");
    assert_eq!(
        o.status.code(),
        Some(0),
        "a skipped channel is not a failure: {out}"
    );
}
