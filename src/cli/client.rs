//! The CLI's HTTP client: a thin layer over reqwest that turns every failure into an exit code
//! (3 = the server rejected the request, 4 = the server is unreachable or failed) and a message
//! that says what to do.

use crate::domain::HttpUrl;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// A CLI failure and the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage found before contacting the server (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server answered 4xx (exit 3).
    #[error("{0}")]
    Rejected(String),
    /// The server is unreachable or answered 5xx (exit 4).
    #[error("{0}")]
    Unavailable(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Rejected(_) => 3,
            CliError::Unavailable(_) => 4,
        }
    }
}

/// A client bound to one server and token.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, CliError> {
        let url = check_url(base)?;
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5));
        if !url.is_https() {
            // Plain HTTP (the usual loopback case): skip loading the system's root
            // certificates, which costs most of a short CLI call's time.
            builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
        }
        let http = builder
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sends a request and returns the JSON answer (or `Value::Null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Csv(bytes)) => req.header("content-type", "text/csv").body(bytes),
            None => req,
        };
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| CliError::Unavailable(format!("the server's answer was cut off: {e}")))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).or(Ok(Value::String(text)));
        }
        Err(failure(status, &text))
    }

    /// [`Client::call`], and the answer read as the API's own response type `T` (the struct the
    /// server serialises, shared with it): the JSON as it came, for `--json`, and the typed
    /// value for the tables. A field the server renamed or dropped is an error here, not a
    /// silent 0 in a table.
    pub async fn call_as<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<(Value, T), CliError> {
        let v = self.call(method, path, body).await?;
        let t = answer_as(path, &v)?;
        Ok((v, t))
    }

    /// Sends a bodiless POST and writes a successful answer's body to `dest` as it arrives
    /// (a backup can be larger than memory). Returns the answer's headers and the bytes written.
    /// Waits up to `timeout` in all.
    pub async fn download(
        &self,
        path: &str,
        dest: &mut impl std::io::Write,
        timeout: Duration,
    ) -> Result<(reqwest::header::HeaderMap, u64), CliError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.post(&url).timeout(timeout);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(failure(status, &text));
        }
        let headers = resp.headers().clone();
        let mut written = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| CliError::Unavailable(format!("the server's answer was cut off: {e}")))?
        {
            dest.write_all(&chunk)
                .map_err(|e| CliError::Usage(format!("cannot write the answer: {e}")))?;
            written += chunk.len() as u64;
        }
        Ok((headers, written))
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        let why = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection refused"
        } else {
            "request failed"
        };
        CliError::Unavailable(format!(
            "cannot reach crier at {} ({why}); is `crier serve` running? set --url or CRIER_URL",
            self.base
        ))
    }
}

/// An error answer as a CLI failure: 4xx rejected (exit 3), 5xx unavailable (exit 4).
pub(super) fn failure(status: StatusCode, text: &str) -> CliError {
    let detail = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned());
    let msg = format!(
        "{} {}: {detail}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    if status.is_client_error() {
        if status == StatusCode::UNAUTHORIZED {
            return CliError::Rejected(format!(
                "{msg}\n(the CLI sends --token, $CRIER_TOKEN, the token `crier login` saved for this --url, or <data>/admin.token; check it matches the server's — an expired or revoked login needs `crier login` again)"
            ));
        }
        CliError::Rejected(msg)
    } else {
        CliError::Unavailable(msg)
    }
}

/// Refuses a server URL that cannot work before trying to connect, so that `127.0.0.1:8080`
/// is not reported as "unreachable" while the server runs.
pub(super) fn check_url(base: &str) -> Result<HttpUrl, CliError> {
    HttpUrl::parse(base).map_err(|why| {
        CliError::Usage(format!(
            "--url \"{base}\" {why}; write it as http://HOST:PORT, e.g. http://127.0.0.1:8080"
        ))
    })
}

/// Reads a server's JSON answer as the API's response type `T`.
pub fn answer_as<T: serde::de::DeserializeOwned>(path: &str, v: &Value) -> Result<T, CliError> {
    T::deserialize(v).map_err(|e| {
        CliError::Unavailable(format!(
            "the server's answer to {path} is not what this CLI understands ({e}); use a CLI of the server's version (`crier --version`), or --json to see the answer as it is"
        ))
    })
}

/// A request body.
pub enum Body {
    Json(Value),
    Csv(Vec<u8>),
}

impl Body {
    /// A typed request (the API's own request struct) as a JSON body.
    pub fn json<T: serde::Serialize>(req: &T) -> Result<Body, CliError> {
        serde_json::to_value(req)
            .map(Body::Json)
            .map_err(|e| CliError::Usage(format!("cannot encode the request: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_a_scheme_are_refused_with_the_reason() {
        for (url, why) in [
            ("127.0.0.1:8080", "no http:// or https:// scheme"),
            ("localhost:8080", "\"localhost:\" was read as one"),
            ("ftp://example.com", "\"ftp:\" was read as one"),
            ("http://", "is not a URL"),
        ] {
            let e = check_url(url).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
        check_url("http://127.0.0.1:8080").unwrap();
        check_url("https://status.example.com/").unwrap();
    }
}
