//! `crier totp enrol|confirm|disable`: a TOTP second factor for one's own account.
//!
//! `enrol` shows the secret and its `otpauth://` URI once, then reads the app's first code (at a
//! terminal it asks; otherwise the next line of standard input) and prints the 10 recovery
//! codes once. Signed in (`crier login`, `--token`), it acts with that token; with `--user` it
//! signs in to a short browser session with the password instead — the way in for a user whose
//! role requires a second factor and who therefore cannot get a token before enrolling — and
//! ends that session afterwards.

use super::client::{answer_as, failure, Body, CliError, Client};
use super::users::read_line;
use crate::api::signin::{RecoveryCodes, SessionInfo, SessionLogin, TotpCode, TotpEnrolment};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
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
    /// Sends a request in the session; the answer read as the API's type `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&TotpCode>,
    ) -> Result<T, CliError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", format!("crier_session={}", self.cookie))
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            CliError::Unavailable(format!("cannot reach crier at {}: {e}", self.base))
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(failure(status, &text));
        }
        let v = match text.trim() {
            "" => Value::Null,
            t => serde_json::from_str(t).unwrap_or(Value::Null),
        };
        answer_as(path, &v)
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
        .json(&SessionLogin {
            user: user.to_owned(),
            password,
            code: None,
        })
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
    let info: SessionInfo = answer_as("/api/v1/session", &v)?;
    let Some(cookie) = cookie else {
        return Err(CliError::Unavailable(
            "the server's answer has no session".into(),
        ));
    };
    Ok(Session {
        http,
        base,
        cookie,
        csrf: info.csrf_token,
    })
}

fn show_secret(e: &TotpEnrolment) {
    println!(
        "Add this account to your authenticator app (shown once):\nSecret: {}\nURI: {}",
        e.secret, e.uri
    );
}

fn show_codes(r: &RecoveryCodes) {
    println!(
        "Second factor enabled. Recovery codes (each works once; shown once, keep them safe):"
    );
    for c in &r.recovery_codes {
        println!("{c}");
    }
}

/// A code as the API's request.
fn code(code: &str) -> TotpCode {
    TotpCode {
        code: code.trim().to_owned(),
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
        let e: TotpEnrolment = s.call(Method::POST, "/api/v1/me/totp", None).await?;
        show_secret(&e);
        let typed = ask_code()?;
        if typed.is_empty() {
            return Err(CliError::Usage(
                "no code given; run `crier totp enrol` again and type the app's code".into(),
            ));
        }
        let r: RecoveryCodes = s
            .call(Method::POST, "/api/v1/me/totp/confirm", Some(&code(&typed)))
            .await?;
        show_codes(&r);
        Ok(())
    }
    .await;
    // The session was only for enrolling.
    let _ = s.call::<Value>(Method::POST, "/api/v1/logout", None).await;
    if result.is_ok() {
        println!("Now sign in with `crier login`, giving the app's next code.");
    }
    result
}

/// `crier totp …` with the CLI's token.
pub async fn totp(c: &Client, cmd: TotpCmd) -> Result<(), CliError> {
    match cmd {
        TotpCmd::Enrol { .. } => {
            let (_, e) = c
                .call_as::<TotpEnrolment>(Method::POST, "/api/v1/me/totp", None)
                .await?;
            show_secret(&e);
            let typed = ask_code()?;
            if typed.is_empty() {
                println!("Not confirmed yet: run `crier totp confirm CODE` with the app's code.");
                return Ok(());
            }
            confirm(c, &typed).await?;
        }
        TotpCmd::Confirm { code } => confirm(c, &code).await?,
        TotpCmd::Disable { code: typed } => {
            c.call(
                Method::POST,
                "/api/v1/me/totp/disable",
                Some(Body::json(&code(&typed))?),
            )
            .await?;
            println!("Second factor removed.");
        }
    }
    Ok(())
}

/// Confirms an enrolment with the app's code and shows the recovery codes.
async fn confirm(c: &Client, typed: &str) -> Result<(), CliError> {
    let body = Body::json(&code(typed))?;
    let (_, r) = c
        .call_as::<RecoveryCodes>(Method::POST, "/api/v1/me/totp/confirm", Some(body))
        .await?;
    show_codes(&r);
    Ok(())
}
