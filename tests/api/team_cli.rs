//! The team's CLI flows with the real binary: `users add` → `login` → `tokens create` →
//! `audit` → `logout`, and `audit verify` through the API and offline on a tampered data dir.

use crate::helpers::{bin, ServeProcess};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `crier ARGS` with its own config dir (`cfg`) and no token in the environment.
fn crier(cfg: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .env_remove("CRIER_URL")
        .env_remove("CRIER_TOKEN")
        .env_remove("CRIER_DATA")
        .env("XDG_CONFIG_HOME", cfg)
        // No ./data/admin.token to fall back on.
        .current_dir(cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn add_login_make_a_token_read_the_audit_and_logout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    let server = ServeProcess::start(&data);
    let url = server.base();
    let d = data.to_str().unwrap();

    // The bootstrap admin (via --data) adds a person; the password is printed once.
    let o = crier(
        &cfg,
        &[
            "--url",
            &url,
            "--data",
            d,
            "users",
            "add",
            "Maria.K",
            "--role",
            "admin",
            "--display-name",
            "Maria K",
        ],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("Added maria.k as admin"), "{text}");
    let password = text.lines().last().unwrap().trim().to_owned();
    assert_eq!(password.len(), 20, "{text}");

    // A wrong password: exit 3, nothing saved.
    let o = crier(
        &cfg,
        &[
            "--url",
            &url,
            "login",
            "--user",
            "maria.k",
            "--password-stdin",
        ],
        Some("nope nope nope\n"),
    );
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(!cfg.join("crier/login.json").exists());

    let o = crier(
        &cfg,
        &[
            "--url",
            &url,
            "login",
            "--user",
            "maria.k",
            "--password-stdin",
        ],
        Some(&format!("{password}\n")),
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("Signed in as maria.k (admin)"),
        "{}",
        out(&o)
    );
    assert!(!out(&o).contains("crier_"), "the token is not printed");
    let saved = cfg.join("crier/login.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The saved token is only sent to the server it came from.
    let o = crier(
        &cfg,
        &["--url", "http://127.0.0.1:9", "component", "list"],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("no API token"), "{}", out(&o));

    // Client commands now act as maria.k, with no --token and no --data.
    let o = crier(
        &cfg,
        &[
            "--url",
            &url,
            "tokens",
            "create",
            "--name",
            "ci",
            "--role",
            "viewer",
            "--expires",
            "90d",
        ],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    let made = out(&o);
    let secret = made.lines().last().unwrap().trim().to_owned();
    assert!(secret.starts_with("crier_"), "{made}");
    let o = crier(
        &cfg,
        &[
            "--url", &url, "--token", &secret, "tokens", "create", "--name", "x", "--role", "admin",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "a viewer token cannot make an admin one: {}",
        out(&o)
    );

    let o = crier(&cfg, &["--url", &url, "users", "list"], None);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("maria.k") && out(&o).contains("Maria K"),
        "{}",
        out(&o)
    );

    let o = crier(
        &cfg,
        &[
            "--url", &url, "audit", "--since", "1h", "--actor", "maria.k", "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    let actions: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        ["login", "token.create"],
        "failed logins are anonymous"
    );

    // Through the API while the server holds the data dir.
    let o = crier(&cfg, &["--url", &url, "--data", d, "audit", "verify"], None);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("intact") && out(&o).contains("through the API"),
        "{}",
        out(&o)
    );

    let o = crier(&cfg, &["--url", &url, "logout"], None);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!saved.exists());
    let o = crier(
        &cfg,
        &["--url", &url, "--data", d, "tokens", "list", "--json"],
        None,
    );
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let login = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().starts_with("cli login"))
        .unwrap();
    assert!(
        !login["revoked_at"].is_null(),
        "logout revokes the token: {login}"
    );

    // Offline, after the server stopped: untouched, then with entry 2 altered in sled.
    if crate::helpers::sled_only(
        "offline `audit verify --data` and the forged entry read sled's files",
    ) {
        return;
    }
    server.terminate();
    let o = crier(&cfg, &["--data", d, "audit", "verify"], None);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("offline"), "{}", out(&o));
    {
        let db = sled::open(data.join("db")).unwrap();
        // Last-used times, kept in memory while serving, were written at shutdown.
        let used = db
            .open_tree("tokens")
            .unwrap()
            .iter()
            .values()
            .map(|v| serde_json::from_slice::<serde_json::Value>(&v.unwrap()).unwrap())
            .filter(|t| t["last_used_at"].is_string())
            .count();
        assert_eq!(
            used, 2,
            "both tokens were used (the ci one for its refused request)"
        );
        let audit = db.open_tree("audit").unwrap();
        let raw = audit.get(2u64.to_be_bytes()).unwrap().unwrap();
        let forged = String::from_utf8(raw.to_vec())
            .unwrap()
            .replace("\"actor\":\"anonymous\"", "\"actor\":\"mallory\"");
        assert_ne!(forged.as_bytes(), raw.as_ref());
        audit.insert(2u64.to_be_bytes(), forged.as_bytes()).unwrap();
        db.flush().unwrap();
    }
    let o = crier(&cfg, &["--data", d, "audit", "verify"], None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("entry 2 was altered"), "{}", out(&o));
}

/// The code the app shows `ahead` steps from now.
fn totp_code(secret: &str, ahead: i64) -> String {
    let key = crier::totp::base32_decode(secret).unwrap();
    crier::totp::code_at(
        &key,
        chrono::Utc::now().timestamp() + ahead * crier::totp::STEP_SECS,
    )
}

#[test]
fn login_with_a_required_second_factor_through_the_real_binary() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    let config = dir.path().join("crier.toml");
    std::fs::write(&config, "[auth]\nrequire_totp = [\"admin\"]\n").unwrap();
    let server = ServeProcess::start_env(&data, &data.join("no-channels"), Some(&config), &[]);
    let url = server.base();
    let d = data.to_str().unwrap();
    let o = crier(
        &cfg,
        &[
            "--url", &url, "--data", d, "users", "add", "maria.k", "--role", "admin",
        ],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    let password = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let login = |extra: &[&str], stdin: &str| {
        let mut args = vec![
            "--url",
            url.as_str(),
            "login",
            "--user",
            "maria.k",
            "--password-stdin",
        ];
        args.extend_from_slice(extra);
        crier(&cfg, &args, Some(stdin))
    };
    let saved = cfg.join("crier/login.json");

    // An admin without a second factor gets no token, and is told how to enrol.
    let o = login(&[], &format!("{password}\n"));
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(
        out(&o).contains("crier totp enrol --user maria.k"),
        "{}",
        out(&o)
    );
    assert!(!saved.exists());

    // Enrol through a password session: the secret is shown, the app's code typed back.
    let mut child = Command::new(bin())
        .args([
            "--url",
            &url,
            "totp",
            "enrol",
            "--user",
            "maria.k",
            "--password-stdin",
        ])
        .env_remove("CRIER_URL")
        .env_remove("CRIER_TOKEN")
        .env("XDG_CONFIG_HOME", &cfg)
        .current_dir(&cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut secret = None;
    let mut shown = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        shown.push(line.clone());
        if let Some(s) = line.strip_prefix("Secret: ") {
            secret = Some(s.trim().to_owned());
        }
        if line.starts_with("URI: otpauth://totp/") {
            break;
        }
    }
    let secret = secret.unwrap_or_else(|| panic!("no secret shown: {shown:?}"));
    let enrol_code = totp_code(&secret, 0);
    writeln!(stdin, "{enrol_code}").unwrap();
    drop(stdin);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{shown:?} {rest:?}");
    let recovery: Vec<&String> = rest
        .iter()
        .filter(|l| l.len() == 19 && l.matches('-').count() == 3)
        .collect();
    assert_eq!(recovery.len(), 10, "{rest:?}");

    // Now login needs a code: without one (none on stdin either) it is refused...
    let o = login(&[], &format!("{password}\n"));
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(out(&o).contains("--code"), "{}", out(&o));
    assert!(!saved.exists());
    // ... the code used to enrol is refused (a code is good once) ...
    let o = login(&["--code", &enrol_code], &format!("{password}\n"));
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    // ... and the app's next code signs in.
    let o = login(
        &["--code", &totp_code(&secret, 1)],
        &format!("{password}\n"),
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("Signed in as maria.k (admin)"),
        "{}",
        out(&o)
    );
    assert!(saved.exists());
    // A recovery code on the line after the password works once.
    let o = login(&[], &format!("{password}\n{}\n", recovery[0]));
    assert!(o.status.success(), "{}", out(&o));
    let o = login(&["--code", recovery[0]], &format!("{password}\n"));
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    // Signed in, the user may remove the factor with a recovery code.
    let o = crier(
        &cfg,
        &["--url", &url, "totp", "disable", "--code", recovery[1]],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    server.terminate();
}

/// The rest of the team commands, each through the real binary and the API's own request and
/// answer types: `users set-role|disable|enable|reset-password|remove`, `tokens revoke`,
/// `password`; a role that is not one is refused before anything is sent.
#[test]
fn the_cli_changes_disables_resets_and_removes_users_revokes_tokens_and_changes_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    let server = ServeProcess::start(&data);
    let url = server.base();
    let d = data.to_str().unwrap();
    let o = crier(
        &cfg,
        &[
            "--url", &url, "--data", d, "users", "add", "jussi", "--role", "viewer",
        ],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    let password = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    // The bootstrap admin's token, given explicitly: jussi's saved login comes first otherwise.
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec!["--url", url.as_str(), "--token", token.trim()];
        all.extend_from_slice(args);
        crier(&cfg, &all, None)
    };

    // Not a role: refused by the CLI itself (exit 2), and the user is unchanged.
    for args in [
        &["users", "set-role", "jussi", "root"][..],
        &["users", "add", "anna", "--role", "boss"][..],
        &["tokens", "create", "--name", "x", "--role", "root"][..],
    ] {
        let o = admin(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", out(&o));
        assert!(out(&o).contains("is not a role"), "{}", out(&o));
    }
    let o = admin(&["--json", "users", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["role"], "viewer");

    let o = admin(&["users", "set-role", "jussi", "Publisher"]);
    assert!(o.status.success(), "{}", out(&o));
    let row = out(&o);
    assert!(
        row.contains("jussi") && row.contains("publisher") && row.contains("active"),
        "{row}"
    );
    let o = admin(&["users", "disable", "jussi"]);
    assert!(out(&o).contains("disabled"), "{}", out(&o));
    let login = |pw: &str| {
        crier(
            &cfg,
            &[
                "--url",
                url.as_str(),
                "login",
                "--user",
                "jussi",
                "--password-stdin",
            ],
            Some(&format!("{pw}\n")),
        )
    };
    assert_eq!(login(&password).status.code(), Some(3), "disabled");
    let o = admin(&["users", "enable", "jussi"]);
    assert!(out(&o).contains("active"), "{}", out(&o));

    // Signed in, jussi changes the password; the old one stops working.
    let o = login(&password);
    assert!(o.status.success(), "{}", out(&o));
    let new = "a much longer passphrase";
    let o = crier(
        &cfg,
        &["--url", url.as_str(), "password", "--password-stdin"],
        Some(&format!("{password}\n{new}\n")),
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Password changed."), "{}", out(&o));
    assert_eq!(login(&password).status.code(), Some(3));
    let o = login(new);
    assert!(o.status.success(), "{}", out(&o));

    // A token made and revoked by its id.
    let o = crier(
        &cfg,
        &["--url", url.as_str(), "tokens", "create", "--name", "ci"],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    let id = out(&o).split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(id.len(), 26, "{}", out(&o));
    let o = crier(
        &cfg,
        &["--url", url.as_str(), "tokens", "revoke", &id],
        None,
    );
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(out(&o).trim(), format!("Revoked token {id} \"ci\"."));
    let o = admin(&["tokens", "list"]);
    let row = out(&o)
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_default()
        .to_owned();
    assert!(row.contains("revoked") && row.contains("ci"), "{}", out(&o));

    // A new password revokes jussi's tokens; removal answers with the user.
    let o = admin(&["users", "reset-password", "jussi"]);
    assert!(o.status.success(), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("New password for jussi"), "{text}");
    // Both of his logins (the ci token was revoked already).
    assert!(text.contains("2 token(s) revoked"), "{text}");
    assert_eq!(text.lines().last().unwrap().trim().len(), 20, "{text}");
    let o = admin(&["users", "remove", "jussi"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(out(&o).trim(), "Removed jussi; their tokens are revoked.");
    let o = admin(&["--json", "users", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));
    server.terminate();
}
