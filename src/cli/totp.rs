//! `crier totp enrol|confirm|disable`: a TOTP second factor for one's own account.
//!
//! `enrol` shows the secret and its `otpauth://` URI once, then reads the app's first code (at a
//! terminal it asks; otherwise the next line of standard input) and prints the 10 recovery
//! codes once. Signed in (`crier login`, `--token`), it acts with that token; with `--user` it
//! signs in to a short browser session with the password instead — the way in for a user whose
//! role requires a second factor and who therefore cannot get a token before enrolling — and
//! ends that session afterwards.

use super::client::{failure, Body, CliError, Client};
use super::users::read_line;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct TotpArgs {
    #[command(subcommand)]
    pub cmd: TotpCmd,
}

#[derive(Subcommand, Debug, Clone)]
pub enum TotpCmd {
    /// Add a second factor: shows the secret (and its otpauth:// URI for a QR code), asks for
    /// the app's first code, and prints 10 recovery codes once.
    Enrol {
        /// Sign in as this user with the password instead of a saved login (needed when your
        /// role requires a second factor you do not have yet).
        #[arg(long)]
        user: Option<String>,
        /// With --user: read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Confirm an enrolment started with `enrol` whose code was not given then.
    Confirm {
        /// The six digits the app shows now.
        code: String,
    },
    /// Remove your second factor.
    Disable {
        /// The app's current code, or a recovery code.
        #[arg(long)]
        code: String,
    },
}

impl TotpCmd {
    /// Whether it runs without a token (signing in with a password).
    pub fn signs_in(&self) -> bool {
        matches!(self, TotpCmd::Enrol { user: Some(_), .. })
    }
}

/// A short browser session for `enrol --user`: the cookie and the CSRF token.
struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Session {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", format!("crier_session={}", self.cookie))
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            CliError::Unavailable(format!("cannot reach crier at {}: {e}", self.base))
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(failure(status, &text));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

async fn sign_in(url: &str, user: &str, password_stdin: bool) -> Result<Session, CliError> {
    if !password_stdin && !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "standard input is not a terminal: pass --password-stdin and send the password on it"
                .into(),
        ));
    }
    let password = read_line("Password: ", true)?;
    super::client::check_url(url)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| CliError::Usage(format!("cannot set up the HTTP client: {e}")))?;
    let base = url.trim_end_matches('/').to_owned();
    let resp = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"user": user, "password": password}))
        .send()
        .await
        .map_err(|e| CliError::Unavailable(format!("cannot reach crier at {base}: {e}")))?;
    let status = resp.status();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("crier_session="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned());
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(failure(status, &text));
    }
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let (Some(cookie), Some(csrf)) = (cookie, v["csrf_token"].as_str()) else {
        return Err(CliError::Unavailable(
            "the server's answer has no session".into(),
        ));
    };
    Ok(Session {
        http,
        base,
        cookie,
        csrf: csrf.to_owned(),
    })
}

fn show_secret(v: &Value) {
    println!(
        "Add this account to your authenticator app (shown once):\nSecret: {}\nURI: {}",
        v["secret"].as_str().unwrap_or_default(),
        v["uri"].as_str().unwrap_or_default()
    );
}

fn show_codes(v: &Value) {
    println!(
        "Second factor enabled. Recovery codes (each works once; shown once, keep them safe):"
    );
    for c in v["recovery_codes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!("{}", c.as_str().unwrap_or_default());
    }
}

fn ask_code() -> Result<String, CliError> {
    Ok(read_line("Code from the app: ", false)?.trim().to_owned())
}

/// `crier totp enrol --user NAME`: through a session signed in with the password.
pub async fn enrol_signing_in(url: &str, cmd: &TotpCmd) -> Result<(), CliError> {
    let TotpCmd::Enrol {
        user: Some(user),
        password_stdin,
    } = cmd
    else {
        return Ok(());
    };
    let s = sign_in(url, user, *password_stdin).await?;
    let result = async {
        let v = s.call(Method::POST, "/api/v1/me/totp", None).await?;
        show_secret(&v);
        let code = ask_code()?;
        if code.is_empty() {
            return Err(CliError::Usage(
                "no code given; run `crier totp enrol` again and type the app's code".into(),
            ));
        }
        let v = s
            .call(
                Method::POST,
                "/api/v1/me/totp/confirm",
                Some(json!({"code": code})),
            )
            .await?;
        show_codes(&v);
        Ok(())
    }
    .await;
    // The session was only for enrolling.
    let _ = s.call(Method::POST, "/api/v1/logout", None).await;
    if result.is_ok() {
        println!("Now sign in with `crier login`, giving the app's next code.");
    }
    result
}

/// `crier totp …` with the CLI's token.
pub async fn totp(c: &Client, cmd: TotpCmd) -> Result<(), CliError> {
    match cmd {
        TotpCmd::Enrol { .. } => {
            let v = c.call(Method::POST, "/api/v1/me/totp", None).await?;
            show_secret(&v);
            let code = ask_code()?;
            if code.is_empty() {
                println!("Not confirmed yet: run `crier totp confirm CODE` with the app's code.");
                return Ok(());
            }
            let v = c
                .call(
                    Method::POST,
                    "/api/v1/me/totp/confirm",
                    Some(Body::Json(json!({"code": code}))),
                )
                .await?;
            show_codes(&v);
        }
        TotpCmd::Confirm { code } => {
            let v = c
                .call(
                    Method::POST,
                    "/api/v1/me/totp/confirm",
                    Some(Body::Json(json!({"code": code.trim()}))),
                )
                .await?;
            show_codes(&v);
        }
        TotpCmd::Disable { code } => {
            c.call(
                Method::POST,
                "/api/v1/me/totp/disable",
                Some(Body::Json(json!({"code": code.trim()}))),
            )
            .await?;
            println!("Second factor removed.");
        }
    }
    Ok(())
}
