//! The team commands: `users`, `tokens`, `login`/`logout` and `audit`.
//!
//! `crier login` asks the server for a personal token and keeps it in
//! `$XDG_CONFIG_HOME/crier/login.json` (else `~/.config/crier/login.json`), mode 0600, with the
//! server's URL: client commands use it when no `--token`/`CRIER_TOKEN` is given and `--url`
//! names the same server, so a token is never sent to a server it was not made by.

use super::client::{Body, CliError, Client};
use super::{enc, output, shown_as};
use crate::api::users::{
    AuditCheck, AuditPage, ChangePassword, ChangeUser, CreateToken, CreateUser, CreatedUser, Login,
    NewToken, ResetPassword,
};
use crate::domain::audit::AuditEntry;
use crate::domain::{ApiToken, Role, User};
use crate::store::port::Audit;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Add a user; prints their initial password once (give it to them; they change it with
    /// `crier password`).
    Add {
        /// Login name: 2-32 lowercase letters, digits, '.', '-' or '_', e.g. maria.k.
        name: String,
        /// viewer, responder, publisher or admin.
        #[arg(long)]
        role: String,
        /// The name shown to colleagues, e.g. "Maria Korhonen" (default: the login name).
        #[arg(long)]
        display_name: Option<String>,
        /// Email for staff notices.
        #[arg(long)]
        email: Option<String>,
        /// Phone for staff notices, in international format.
        #[arg(long)]
        phone: Option<String>,
    },
    /// List users.
    List,
    /// Change a user's role; their tokens are capped at it at once.
    SetRole {
        /// The user's login name.
        name: String,
        /// viewer, responder, publisher or admin.
        role: String,
    },
    /// Disable a user: they cannot sign in and their tokens stop working.
    Disable {
        /// The user's login name.
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user's login name.
        name: String,
    },
    /// Remove a user and revoke their tokens.
    Remove {
        /// The user's login name.
        name: String,
    },
    /// Give a user a new random password (printed once) and revoke their tokens.
    ResetPassword {
        /// The user's login name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokensCmd {
    /// Make a personal token (printed once).
    Create {
        /// What it is for, e.g. laptop or monitoring.
        #[arg(long)]
        name: String,
        /// At most your own role (default: your role).
        #[arg(long)]
        role: Option<String>,
        /// Lifetime, e.g. 12h or 90d (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List your tokens (an admin: everyone's). Secrets are never shown.
    List,
    /// Revoke a token by id (see `tokens list`).
    Revoke {
        /// The token's id (26 characters).
        id: String,
    },
}

#[derive(Args, Debug, Clone)]
pub struct LoginArgs {
    /// Your login name (asked for if missing).
    #[arg(long)]
    user: Option<String>,
    /// Read the password from the first line of standard input instead of asking.
    #[arg(long)]
    password_stdin: bool,
    /// How long the login lasts, e.g. 12h or 30d (default 30d).
    #[arg(long)]
    expires: Option<String>,
    /// The one-time code of your second factor (six digits from the app, or a recovery code);
    /// asked for when needed at a terminal, else read from the line after the password.
    #[arg(long)]
    code: Option<String>,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: Option<AuditCmd>,
    /// Entries from this long ago (e.g. 24h, 7d) or from an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Entries up to this long ago or this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// Only this actor (a user name, admin, anonymous or hook).
    #[arg(long)]
    actor: Option<String>,
    /// Only this action (e.g. login.failed) or a prefix ending in '.' (e.g. incident.).
    #[arg(long)]
    action: Option<String>,
    /// Only entries whose target contains this.
    #[arg(long)]
    target: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the log's hash chain; names the first altered, removed or moved entry (exit 1).
    /// Works offline on --data when the server is not running, else through the API.
    Verify,
}

impl AuditArgs {
    /// `audit verify`.
    pub fn is_verify(&self) -> bool {
        matches!(self.cmd, Some(AuditCmd::Verify))
    }
}

/// What `login` keeps on disk.
#[derive(Serialize, Deserialize)]
struct Saved {
    url: String,
    token: String,
    id: String,
    user: String,
}

/// `$XDG_CONFIG_HOME/crier`, else `~/.config/crier`.
pub fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => Some(PathBuf::from(x).join("crier")),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".config").join("crier")),
    }
}

fn login_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("login.json"))
}

fn read_saved() -> Option<Saved> {
    let text = std::fs::read_to_string(login_file()?).ok()?;
    serde_json::from_str(&text).ok()
}

/// The token saved by `crier login` for the server at `url`, if any.
pub fn saved_token(url: &str) -> Option<String> {
    read_saved()
        .filter(|s| s.url.trim_end_matches('/') == url.trim_end_matches('/'))
        .map(|s| s.token)
}

fn write_saved(saved: &Saved) -> Result<PathBuf, CliError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let (Some(dir), Some(path)) = (config_dir(), login_file()) else {
        return Err(CliError::Usage(
            "cannot tell where to keep the login: set HOME or XDG_CONFIG_HOME".into(),
        ));
    };
    let fail = |e: std::io::Error| CliError::Usage(format!("cannot write {}: {e}", path.display()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(fail)?;
    let text = serde_json::to_string_pretty(saved)
        .map_err(|e| CliError::Usage(format!("cannot encode the login: {e}")))?;
    // Written beside it and renamed, so a half-written file never replaces a good one.
    let tmp = dir.join("login.json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(fail)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(path)
}

pub(super) fn read_line(prompt: &str, hidden: bool) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    // No echo for a password typed at a terminal.
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    if hidden && tty {
        let _ = stty("-echo");
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if hidden && tty {
        let _ = stty("echo");
        eprintln!();
    }
    read.map_err(|e| CliError::Usage(format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `crier login`.
pub async fn login(url: &str, args: LoginArgs, json_out: bool) -> Result<(), CliError> {
    let user = match args.user {
        Some(u) => u,
        None if std::io::stdin().is_terminal() => read_line("User: ", false)?,
        None => {
            return Err(CliError::Usage(
                "give --user NAME (standard input is not a terminal to ask on)".into(),
            ))
        }
    };
    if !args.password_stdin && !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "standard input is not a terminal: pass --password-stdin and send the password on it"
                .into(),
        ));
    }
    let password = read_line("Password: ", true)?;
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let mut body = Login {
        user,
        password,
        code: args.code.as_deref().map(|c| c.trim().to_owned()),
        token_name: Some(if host.trim().is_empty() {
            "cli login".to_owned()
        } else {
            format!("cli login on {}", host.trim())
        }),
        expires: args.expires,
    };
    let client = Client::new(url, None)?;
    let first = client
        .call_as::<NewToken>(Method::POST, "/api/v1/login", Some(Body::json(&body)?))
        .await;
    let (v, made) = match first {
        // The account has a second factor and no code was given: ask for it (at a terminal),
        // or take the line after the password.
        Err(CliError::Rejected(m)) if args.code.is_none() && m.contains("has a second factor") => {
            let code = read_line("One-time code: ", false)?;
            if code.trim().is_empty() {
                return Err(CliError::Rejected(
                    "this account has a second factor: pass --code with the six digits your authenticator app shows (or a recovery code)".into(),
                ));
            }
            body.code = Some(code.trim().to_owned());
            client
                .call_as(Method::POST, "/api/v1/login", Some(Body::json(&body)?))
                .await?
        }
        other => other?,
    };
    if made.token.is_empty() {
        return Err(CliError::Unavailable(
            "the server's answer has no token".into(),
        ));
    }
    let saved = Saved {
        url: url.trim_end_matches('/').to_owned(),
        token: made.token,
        id: made.record.id.to_string(),
        user: made.record.owner.to_string(),
    };
    let path = write_saved(&saved)?;
    if json_out {
        let mut shown = v.clone();
        if let Some(o) = shown.as_object_mut() {
            o.remove("token");
        }
        output::print_json(&shown);
    } else {
        println!(
            "Signed in as {} ({}) until {}; token {} kept in {} (crier uses it for {}).",
            saved.user,
            made.record.role,
            made.record.expires_at.map_or_else(
                || "it is revoked".to_owned(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            saved.id,
            path.display(),
            saved.url
        );
    }
    Ok(())
}

/// `crier logout`: revokes the saved token and deletes the file.
pub async fn logout(url: &str) -> Result<(), CliError> {
    let Some(path) = login_file() else {
        return Err(CliError::Usage(
            "not signed in (no config directory)".into(),
        ));
    };
    let Some(saved) = read_saved() else {
        return Err(CliError::Usage(format!(
            "not signed in: no login in {}",
            path.display()
        )));
    };
    let client = Client::new(&saved.url, Some(saved.token.clone()))?;
    match client.call(Method::POST, "/api/v1/logout", None).await {
        Ok(_) => {}
        // Already revoked or expired: the file is all that is left.
        Err(CliError::Rejected(m)) if m.starts_with("401") => {}
        Err(e) => return Err(e),
    }
    std::fs::remove_file(&path)
        .map_err(|e| CliError::Usage(format!("cannot delete {}: {e}", path.display())))?;
    if saved.url != url.trim_end_matches('/') {
        println!("Signed out of {} (token {} revoked).", saved.url, saved.id);
    } else {
        println!("Signed out (token {} revoked).", saved.id);
    }
    Ok(())
}

/// A time as the tables show it, `-` when there is none.
fn short_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// A role as the user typed it, read before anything is sent.
fn role_arg(role: &str) -> Result<Role, CliError> {
    Role::parse(role).map_err(|e| CliError::Usage(format!("{e}; nothing was changed")))
}

/// The change that disables (or enables) a user.
fn switched(disabled: bool) -> ChangeUser {
    ChangeUser {
        disabled: Some(disabled),
        ..ChangeUser::default()
    }
}

fn user_rows(list: &[User]) {
    let rows = list
        .iter()
        .map(|u| {
            vec![
                u.name.to_string(),
                u.role.to_string(),
                if u.disabled { "disabled" } else { "active" }.into(),
                u.display_name.clone(),
            ]
        })
        .collect();
    output::table(&["NAME", "ROLE", "STATE", "DISPLAY NAME"], rows);
}

/// `crier users …`.
pub async fn users(c: &Client, cmd: UsersCmd, json_out: bool) -> Result<(), CliError> {
    let user_path = |n: &str| format!("/api/v1/users/{}", enc(n));
    let row = |u: User| user_rows(std::slice::from_ref(&u));
    let (path, req) = match cmd {
        UsersCmd::Add {
            name,
            role,
            display_name,
            email,
            phone,
        } => {
            let req = Some(Body::json(&CreateUser {
                name,
                role: role_arg(&role)?,
                display_name,
                email,
                phone,
                password: None,
            })?);
            return shown_as(c, Method::POST, "/api/v1/users", req, json_out, |made: CreatedUser| {
                println!(
                    "Added {} as {}.\nInitial password (shown once; they change it with `crier password`):\n{}",
                    made.user.name,
                    made.user.role,
                    made.password.as_deref().unwrap_or("-")
                )
            })
            .await;
        }
        UsersCmd::List => {
            let list = |l: Vec<User>| user_rows(&l);
            return shown_as(c, Method::GET, "/api/v1/users", None, json_out, list).await;
        }
        UsersCmd::Remove { name } => {
            let path = user_path(&name);
            return shown_as(c, Method::DELETE, &path, None, json_out, |u: User| {
                println!("Removed {}; their tokens are revoked.", u.name)
            })
            .await;
        }
        UsersCmd::ResetPassword { name } => {
            let path = format!("{}/password", user_path(&name));
            return shown_as(
                c,
                Method::POST,
                &path,
                None,
                json_out,
                |r: ResetPassword| {
                    println!(
                        "New password for {name} (shown once; {} token(s) revoked):\n{}",
                        r.revoked_tokens, r.password
                    )
                },
            )
            .await;
        }
        UsersCmd::SetRole { name, role } => {
            let role = Some(role_arg(&role)?);
            let req = ChangeUser {
                role,
                ..ChangeUser::default()
            };
            (user_path(&name), req)
        }
        UsersCmd::Disable { name } => (user_path(&name), switched(true)),
        UsersCmd::Enable { name } => (user_path(&name), switched(false)),
    };
    let body = Some(Body::json(&req)?);
    shown_as(c, Method::PATCH, &path, body, json_out, row).await
}

/// `crier tokens …`.
pub async fn tokens(c: &Client, cmd: TokensCmd, json_out: bool) -> Result<(), CliError> {
    match cmd {
        TokensCmd::Create {
            name,
            role,
            expires,
        } => {
            let req = Some(Body::json(&CreateToken {
                name,
                role: role.as_deref().map(role_arg).transpose()?,
                expires,
            })?);
            shown_as(
                c,
                Method::POST,
                "/api/v1/tokens",
                req,
                json_out,
                |made: NewToken| {
                    let t = &made.record;
                    println!(
                        "Token {} \"{}\" ({}, expires {}). The secret is shown once:\n{}",
                        t.id,
                        t.name,
                        t.role,
                        short_time(t.expires_at),
                        made.token
                    );
                },
            )
            .await
        }
        TokensCmd::List => {
            shown_as(
                c,
                Method::GET,
                "/api/v1/tokens",
                None,
                json_out,
                |list: Vec<ApiToken>| token_rows(&list),
            )
            .await
        }
        TokensCmd::Revoke { id } => {
            let path = format!("/api/v1/tokens/{}", enc(&id));
            shown_as(c, Method::DELETE, &path, None, json_out, |t: ApiToken| {
                println!("Revoked token {} \"{}\".", t.id, t.name)
            })
            .await
        }
    }
}

fn token_rows(list: &[ApiToken]) {
    let rows = list
        .iter()
        .map(|t| {
            let state = if t.revoked_at.is_some() {
                "revoked"
            } else {
                "live"
            };
            vec![
                t.id.to_string(),
                t.owner.to_string(),
                t.role.to_string(),
                state.into(),
                short_time(t.expires_at),
                short_time(t.last_used_at),
                t.name.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "OWNER",
            "ROLE",
            "STATE",
            "EXPIRES",
            "LAST USED",
            "NAME",
        ],
        rows,
    );
}

/// `crier audit` (listing; `verify` is [`verify`]).
pub async fn audit(c: &Client, a: AuditArgs, json_out: bool) -> Result<(), CliError> {
    let mut query = Vec::new();
    for (k, v) in [
        ("since", &a.since),
        ("until", &a.until),
        ("actor", &a.actor),
        ("action", &a.action),
        ("target", &a.target),
    ] {
        if let Some(v) = v {
            query.push(format!("{k}={}", enc(v)));
        }
    }
    let mut after: Option<u64> = None;
    let mut all: Vec<AuditEntry> = Vec::new();
    loop {
        let mut q = query.clone();
        q.push("limit=1000".into());
        if let Some(n) = after {
            q.push(format!("after={n}"));
        }
        let path = format!("/api/v1/audit?{}", q.join("&"));
        let (_, page) = c.call_as::<AuditPage>(Method::GET, &path, None).await?;
        all.extend(page.entries);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if json_out {
        // One entry per line (JSON lines), ready for export: the server's own type, as it
        // serialises it.
        for e in &all {
            let line = serde_json::to_string(e)
                .map_err(|e| CliError::Usage(format!("cannot encode an entry: {e}")))?;
            println!("{line}");
        }
        return Ok(());
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let rows = all
        .into_iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                short_time(Some(e.at)),
                e.actor,
                opt(e.role.map(|r| r.to_string())),
                opt(e.client),
                e.action,
                e.target,
                e.summary,
            ]
        })
        .collect();
    output::table(
        &[
            "#",
            "TIME (UTC)",
            "ACTOR",
            "ROLE",
            "CLIENT",
            "ACTION",
            "TARGET",
            "SUMMARY",
        ],
        rows,
    );
    Ok(())
}

/// What `audit verify` found.
pub enum Verdict {
    Intact { entries: u64, head: String },
    Broken(String),
}

/// Verifies offline on `<data>/db` when it can be opened (no server holds it), else `None`.
pub async fn verify_offline(data: &Path) -> Result<Option<Verdict>, CliError> {
    let db = data.join("db");
    if !db.is_dir() {
        return Ok(None);
    }
    match crate::store::Store::open(&db) {
        Ok(store) => match store.verify_audit().await {
            Ok(v) => Ok(Some(Verdict::Intact {
                entries: v.entries,
                head: v.head,
            })),
            Err(crate::store::audit::VerifyError::Chain(e)) => {
                Ok(Some(Verdict::Broken(e.to_string())))
            }
            Err(crate::store::audit::VerifyError::Store(e)) => {
                Err(CliError::Unavailable(e.to_string()))
            }
        },
        Err(crate::store::StoreError::Locked(_)) => Ok(None),
        Err(e) => Err(CliError::Unavailable(e.to_string())),
    }
}

/// Verifies through the API.
pub async fn verify_online(c: &Client) -> Result<Verdict, CliError> {
    let (_, check) = c
        .call_as::<AuditCheck>(Method::GET, "/api/v1/audit/verify", None)
        .await?;
    Ok(match check {
        AuditCheck {
            ok: true,
            entries,
            head,
            ..
        } => Verdict::Intact {
            entries: entries.unwrap_or(0),
            head: head.unwrap_or_else(|| "-".into()),
        },
        AuditCheck { problem, .. } => Verdict::Broken(problem.unwrap_or_else(|| "-".into())),
    })
}

/// Prints a verdict; true when intact.
pub fn report(v: &Verdict, offline: bool, json_out: bool) -> bool {
    let how = if offline {
        "offline"
    } else {
        "through the API"
    };
    match v {
        Verdict::Intact { entries, head } => {
            if json_out {
                output::print_json(
                    &json!({"ok": true, "entries": entries, "head": head, "checked": how}),
                );
            } else {
                println!("The audit log is intact: {entries} entries chain to head {head} (checked {how}).");
            }
            true
        }
        Verdict::Broken(problem) => {
            if json_out {
                output::print_json(&json!({"ok": false, "problem": problem, "checked": how}));
            } else {
                println!("The audit log was tampered with: {problem} (checked {how}).");
            }
            false
        }
    }
}

#[derive(Args, Debug)]
pub struct PasswordArgs {
    /// Read the current and the new password from the first two lines of standard input.
    #[arg(long)]
    password_stdin: bool,
}

/// `crier password`: changes your own password.
pub async fn password(c: &Client, args: PasswordArgs) -> Result<(), CliError> {
    if !args.password_stdin && !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "standard input is not a terminal: pass --password-stdin and send the current and the new password on two lines".into(),
        ));
    }
    let current = read_line("Current password: ", true)?;
    let new = read_line("New password (12 characters or more): ", true)?;
    if std::io::stdin().is_terminal() {
        let again = read_line("New password again: ", true)?;
        if again != new {
            return Err(CliError::Usage(
                "the two new passwords differ; nothing was changed".into(),
            ));
        }
    }
    c.call(
        Method::POST,
        "/api/v1/me/password",
        Some(Body::json(&ChangePassword { current, new })?),
    )
    .await?;
    println!("Password changed.");
    Ok(())
}

#[cfg(test)]
mod wire_tests {
    use crate::api::approvals::Reject;
    use crate::api::signin::{SessionLogin, TotpCode};
    use crate::api::users::{ChangePassword, ChangeUser, CreateToken, CreateUser, Login};
    use crate::intake::payloads::TriggerDoc;
    use serde::{de::DeserializeOwned, Serialize};
    use serde_json::{json, Value};

    fn round_trips<T: Serialize + DeserializeOwned>(sent: &[Value]) {
        for sent in sent {
            let req: T = serde_json::from_value(sent.clone()).unwrap();
            assert_eq!(&serde_json::to_value(&req).unwrap(), sent);
        }
    }

    /// The CLI sends the API's own request structs: what one serialises, the API reads back
    /// unchanged (`deny_unknown_fields`), and a field not given stays absent.
    #[test]
    fn team_approval_and_trigger_requests_round_trip() {
        round_trips::<Login>(&[
            json!({"user": "maria.k", "password": "pw", "code": "123456", "token_name": "cli", "expires": "12h"}),
            json!({"user": "maria.k", "password": "pw"}),
        ]);
        round_trips::<CreateUser>(&[
            json!({"name": "maria.k", "role": "admin", "display_name": "Maria", "email": "m@example.com", "phone": "+358401234567"}),
            json!({"name": "jussi", "role": "viewer"}),
        ]);
        round_trips::<ChangeUser>(&[
            json!({"role": "publisher"}),
            json!({"disabled": false}),
            json!({"email": ""}),
            json!({}),
        ]);
        round_trips::<CreateToken>(&[
            json!({"name": "ci", "role": "viewer", "expires": "90d"}),
            json!({"name": "ci"}),
        ]);
        round_trips::<ChangePassword>(&[json!({"current": "a", "new": "b"})]);
        round_trips::<SessionLogin>(&[json!({"user": "u", "password": "p"})]);
        round_trips::<TotpCode>(&[json!({"code": "123456"})]);
        round_trips::<Reject>(&[json!({"reason": "Wrong airport"})]);
        round_trips::<TriggerDoc>(&[
            json!({"source": "nagios", "key": "db1", "status": "firing", "summary": "Disk", "components": [], "labels": {}}),
            json!({"source": "n", "key": "k", "group": "g", "status": "resolved", "summary": "s", "title": "t", "impact": "minor", "components": ["Check-in"], "labels": {"severity": "critical"}}),
        ]);
    }
}
