//! The write load shared by bench_writes and bench_auth: clients that each open an incident and
//! post updates to it over their own keep-alive connection with a minimal HTTP/1.1 client
//! ([`Conn`]), and the server's group-commit counters.
#![allow(dead_code)]

use super::common::CrierServe;
use anyhow::{bail, Context, Result};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server under test.
type BenchServer = CrierServe;

/// One simulated client: its own incident, and its own keep-alive connection for the timed
/// requests (see [`Conn`]).
#[derive(Clone)]
pub struct Worker {
    /// `127.0.0.1:PORT` of the server.
    addr: String,
    /// `/api/v1/incidents/{id}/updates`.
    path: String,
    token: Arc<str>,
    n: usize,
}

impl Worker {
    pub async fn open(server: &BenchServer, token: Arc<str>, n: usize) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let resp = http
            .post(format!("{}/api/v1/incidents", server.url))
            .bearer_auth(&*token)
            .json(&json!({
                "title": format!("Benchmark incident {n}"),
                "impact": "minor",
                "message": "Opened by a benchmark.",
            }))
            .send()
            .await
            .context("cannot open an incident")?;
        let status = resp.status();
        let body = resp.text().await?;
        if status != StatusCode::CREATED {
            bail!("opening an incident answered {status}: {body}");
        }
        let v: Value = serde_json::from_str(&body)?;
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .with_context(|| format!("no id in the answer: {body}"))?;
        let addr = server
            .url
            .strip_prefix("http://")
            .with_context(|| format!("unexpected server URL {}", server.url))?
            .to_owned();
        Ok(Worker {
            addr,
            path: format!("/api/v1/incidents/{id}/updates"),
            token,
            n,
        })
    }

    /// Posts updates until `deadline` over one keep-alive connection; returns the latency of
    /// each one.
    pub async fn post_until(self, deadline: Instant) -> Result<Vec<Duration>> {
        let mut conn = Conn::connect(&self.addr).await?;
        let mut latencies = Vec::new();
        let mut seq = 0u64;
        while Instant::now() < deadline {
            seq += 1;
            let body = json!({
                "status": "monitoring",
                "message": format!("Benchmark update {seq} from client {}.", self.n),
            })
            .to_string();
            let t0 = Instant::now();
            let (status, answer) = conn
                .post(&self.addr, &self.path, &self.token, &body)
                .await
                .with_context(|| format!("client {}: the request failed", self.n))?;
            if status != 201 {
                bail!(
                    "client {}: posting an update answered {status}: {}",
                    self.n,
                    String::from_utf8_lossy(&answer)
                );
            }
            latencies.push(t0.elapsed());
        }
        Ok(latencies)
    }
}

/// A minimal HTTP/1.1 keep-alive client for the timed requests. A general-purpose client
/// (reqwest, with its pool, its per-request allocations and its wake-ups across runtime threads)
/// cost ≈ 40 µs of CPU per request here; on two shared cores that is CPU taken from the server,
/// and at 64 clients it made the benchmark measure its own client (`cli cpu` 66 %, server 103 %).
/// Like `wrk`, this one writes a request and reads exactly one answer (status line, headers,
/// `content-length` bytes of body) on a single-threaded runtime.
pub struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: &str) -> Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends one JSON POST and returns the status code and the body of the answer.
    pub async fn post(
        &mut self,
        host: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> Result<(u16, Vec<u8>)> {
        use tokio::io::AsyncWriteExt;
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(request.as_bytes()).await?;
        self.buf.clear();
        loop {
            if let Some((status, head_len, body_len)) = parse_head(&self.buf)? {
                while self.buf.len() < head_len + body_len {
                    self.read_more().await?;
                }
                if self.buf.len() > head_len + body_len {
                    bail!("the server sent more than one answer");
                }
                return Ok((status, self.buf.split_off(head_len)));
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> Result<()> {
        use tokio::io::AsyncReadExt;
        if self.buf.len() > 1024 * 1024 {
            bail!("an answer of more than 1 MiB");
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }
}

/// Parses an HTTP/1.1 answer's head once it is complete: (status, head length, body length).
pub fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, usize)>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).context("the answer's head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP/1.1 status line: {status_line}"))?;
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse().context("a bad content-length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("a chunked answer; this client reads content-length bodies only");
        }
    }
    let length = length.context("an answer without content-length")?;
    Ok(Some((status, end + 4, length)))
}

/// All workers post until the phase ends; returns every latency and the phase's length.
pub async fn phase(workers: &[Worker], length: Duration) -> Result<(Vec<Duration>, Duration)> {
    let start = Instant::now();
    let deadline = start + length;
    let tasks: Vec<_> = workers
        .iter()
        .cloned()
        .map(|w| tokio::spawn(w.post_until(deadline)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.context("a client task panicked")??);
    }
    Ok((all, start.elapsed()))
}

/// The server's group-commit counters from `/metrics`: (syncs, synced writes).
pub async fn sync_counters(http: &reqwest::Client, url: &str) -> Result<(u64, u64)> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let value = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .with_context(|| format!("/metrics has no {name}"))
    };
    Ok((
        value("crier_store_syncs_total ")?,
        value("crier_store_synced_writes_total ")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_only_when_complete() {
        let answer = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_head(&answer[..30]).unwrap(), None);
        let head_len = answer.len() - 2;
        assert_eq!(parse_head(answer).unwrap(), Some((201, head_len, 2)));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse_head(chunked).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"SSH-2.0-x\r\n\r\n").is_err());
    }

    /// The client reads an answer that arrives in pieces, and two answers in a row on one
    /// connection; it sends the request it was given.
    #[tokio::test]
    async fn answers_in_pieces_are_read_whole_on_a_kept_alive_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for body in ["{\"n\":1}", "{\"n\":22}"] {
                let mut buf = [0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let answer = format!(
                    "HTTP/1.1 201 Created\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let (a, b) = answer.as_bytes().split_at(20);
                sock.write_all(a).await.unwrap();
                sock.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                sock.write_all(b).await.unwrap();
            }
            seen
        });
        let mut conn = Conn::connect(&addr).await.unwrap();
        let first = conn.post(&addr, "/p", "tok", "{\"a\":1}").await.unwrap();
        assert_eq!(first, (201, b"{\"n\":1}".to_vec()));
        let second = conn.post(&addr, "/p", "tok", "{}").await.unwrap();
        assert_eq!(second, (201, b"{\"n\":22}".to_vec()));
        let seen = server.await.unwrap();
        assert!(seen[0].starts_with("POST /p HTTP/1.1\r\n"), "{}", seen[0]);
        assert!(seen[0].contains("authorization: Bearer tok\r\n"));
        assert!(
            seen[0].ends_with("content-length: 7\r\n\r\n{\"a\":1}"),
            "{}",
            seen[0]
        );
    }
}
