//! Facebook Page adapter: the incident's first update is a Page post, every later one a comment
//! on that post, so the Page shows one post per incident with its updates underneath.
//!
//! Requests (Graph API, <https://developers.facebook.com/docs/pages-api/posts>):
//! - first post: `POST {base}/{version}/{page-id}/feed` with form fields `message` and
//!   `access_token` (a Page access token with `pages_manage_posts`);
//! - follow-ups: `POST {base}/{version}/{root-post-id}/comments` with `message` and
//!   `access_token` (comments on Pages are flat, so each follow-up comments on the root post).
//!
//! The token travels in the form body, never in a URL. The answer `{"id": …}` is the receipt.
//!
//! Classification: 2xx → `Delivered`. Errors are `{"error": {message, type, code,
//! error_subcode, is_transient}}`: throttling codes 4, 17, 32, 613 and 80001 (Page rate limit)
//! → `Retry` after `estimated_time_to_regain_access` (minutes) from `X-Business-Use-Case-Usage`
//! when present; `is_transient` or codes 1, 2 → `Retry`; 190 (token invalid or expired), 10 and
//! 200-299 (permissions), 506 (duplicate post) and other 4xx → `Rejected`; 5xx → `Retry`.
//! Check: `GET /{version}/{page-id}?fields=id,name`.

use super::http::{failure, header, snippet};
use super::outcome::{HttpReply, OutMessage, Outcome};
use super::{Check, Http, Provider, Request};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;

/// The Graph API's origin.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";

/// The Graph API version used unless the channel names one.
pub const DEFAULT_GRAPH_VERSION: &str = "v23.0";

/// Error codes that mean "too many calls, try later".
pub const THROTTLING_CODES: [i64; 5] = [4, 17, 32, 613, 80001];

/// Settings for one Facebook Page channel.
#[derive(Debug, Clone)]
pub struct FacebookConfig {
    /// API origin, normally [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// Graph API version, e.g. `v23.0`.
    pub graph_version: String,
    /// The Page's numeric id.
    pub page_id: String,
    /// A Page access token. Never printed.
    pub page_token: SecretString,
}

/// Posts to one Facebook Page.
#[derive(Debug, Clone)]
pub struct FacebookAdapter {
    config: FacebookConfig,
}

impl FacebookAdapter {
    /// Wraps a config.
    pub fn new(config: FacebookConfig) -> Self {
        FacebookAdapter { config }
    }

    fn url(&self, node: &str, edge: &str) -> String {
        format!(
            "{}/{}/{}{edge}",
            self.config.base_url.trim_end_matches('/'),
            self.config.graph_version,
            super::http::path_segment(node)
        )
    }

    /// Where `msg` goes: the Page's feed, or the comments of the thread's root post.
    fn target_url(&self, msg: &OutMessage) -> String {
        match &msg.thread {
            Some(t) => self.url(&t.root, "/comments"),
            None => self.url(&self.config.page_id, "/feed"),
        }
    }
}

impl Provider for FacebookAdapter {
    const NAME: &'static str = "Facebook";

    /// Posts one message or comment.
    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        let form = [
            ("message", msg.text.as_str()),
            ("access_token", self.config.page_token.expose_secret()),
        ];
        Ok(http.client.post(self.target_url(msg)).form(&form))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }

    /// Reads the Page's id and name with the token (posts nothing).
    async fn check(&self, http: &Http) -> Check {
        let url = format!(
            "{}?fields=id%2Cname&access_token={}",
            self.url(&self.config.page_id, ""),
            super::http::path_segment(self.config.page_token.expose_secret())
        );
        let request = http.client.get(url);
        match http.exchange(request).await {
            Ok(r) if (200..300).contains(&r.status) => {
                let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
                Check::Ok(format!(
                    "token valid for the Page \"{}\" ({})",
                    v["name"].as_str().unwrap_or("?"),
                    v["id"].as_str().unwrap_or("?")
                ))
            }
            Ok(r) => Check::Failed(format!(
                "the Graph API answered HTTP {}: {}",
                r.status,
                error_message(&r.body)
            )),
            Err(o) => Check::Failed(o.reason().to_owned()),
        }
    }
}

fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let e = &v["error"];
            Some(format!(
                "{} (code {})",
                e["message"].as_str()?,
                e["code"].as_i64().unwrap_or(0)
            ))
        })
        .unwrap_or_else(|| snippet(body))
}

/// The longest `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage`.
fn regain_access(headers: &HeaderMap) -> Option<Duration> {
    let v: Value = serde_json::from_str(header(headers, "x-business-use-case-usage")?).ok()?;
    let minutes = v
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|u| u["estimated_time_to_regain_access"].as_u64())
        .max()?;
    Some(
        Duration::from_secs(minutes.saturating_mul(60))
            .min(super::retry_after::DEFAULT_MAX_RETRY_AFTER),
    )
}

/// Classifies one Graph API answer. Pure.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    if (200..300).contains(&status) {
        return Outcome::Delivered {
            receipt: v["id"].as_str().map(str::to_owned),
        };
    }
    let e = &v["error"];
    if let Some(code) = e["code"].as_i64() {
        let reason = format!("Facebook HTTP {status}: {}", error_message(body));
        if THROTTLING_CODES.contains(&code) {
            return Outcome::Retry {
                reason,
                after: regain_access(headers),
            };
        }
        if e["is_transient"].as_bool() == Some(true) || code == 1 || code == 2 {
            return Outcome::Retry {
                reason,
                after: None,
            };
        }
        if code == 506 {
            return Outcome::rejected(format!("duplicate post: {reason}"));
        }
        if status < 500 {
            return Outcome::rejected(reason);
        }
    }
    failure("Facebook", status, headers, body, now, None)
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `facebook` kind: a Page, through the Graph API.
pub static KIND: KindSpec = KindSpec::social("facebook", Platform::Facebook, true, "30/m", declare);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FacebookFile {
    page_id: Option<String>,
    page_token_env: Option<String>,
    #[serde(default = "graph_version")]
    graph_version: String,
}

fn graph_version() -> String {
    DEFAULT_GRAPH_VERSION.into()
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: FacebookFile = r.declared(table)?;
    let page_token = r.secret("page_token_env", f.page_token_env);
    match &f.page_id {
        Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {}
        _ => r.invalid("page_id must be the Page's numeric id"),
    }
    if !f.graph_version.starts_with('v') {
        r.invalid(format!(
            "graph_version = \"{}\": use e.g. v23.0",
            f.graph_version
        ));
    }
    let (Some(page_id), Some(page_token)) = (f.page_id, page_token) else {
        return Ok(None);
    };
    Ok(Some(Settings::new(FacebookConfig {
        base_url: r.base(DEFAULT_BASE_URL),
        graph_version: f.graph_version,
        page_id,
        page_token: page_token.into(),
    })))
}

impl KindSettings for FacebookConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(FacebookAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{client, once, post, reply};
    use super::super::HttpAdapter;
    use super::*;
    use crate::inbound::twilio::decode_form;
    use serde_json::json;
    use wiremock::matchers::{header as h, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "EAAB-page-token";

    fn adapter(base: &str, token: &str) -> HttpAdapter<FacebookAdapter> {
        HttpAdapter::new(
            FacebookAdapter::new(FacebookConfig {
                base_url: base.into(),
                graph_version: "v23.0".into(),
                page_id: "1234567890".into(),
                page_token: token.into(),
            }),
            client(),
        )
    }

    fn form(req: &wiremock::Request) -> Vec<(String, String)> {
        decode_form(std::str::from_utf8(&req.body).unwrap()).unwrap()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn first_update_is_a_post_later_ones_comment_on_it() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v23.0/1234567890/feed"))
            .and(h("content-type", "application/x-www-form-urlencoded"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1234567890_555"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v23.0/1234567890_555/comments"))
            .and(h("content-type", "application/x-www-form-urlencoded"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "555_777"})))
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter(&server.uri(), TOKEN);
        assert_eq!(
            a.send(&post("k1", "Kassat kiinni & hitaat")).await,
            Outcome::Delivered {
                receipt: Some("1234567890_555".into())
            }
        );
        assert_eq!(
            a.send(&reply("k2", "Korjattu", "1234567890_555", "1234567890_555"))
                .await,
            Outcome::Delivered {
                receipt: Some("555_777".into())
            }
        );
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(
            form(&reqs[0]),
            pairs(&[
                ("message", "Kassat kiinni & hitaat"),
                ("access_token", TOKEN)
            ])
        );
        assert_eq!(
            form(&reqs[1]),
            pairs(&[("message", "Korjattu"), ("access_token", TOKEN)])
        );
        assert!(
            reqs.iter().all(|r| r.url.query().is_none()),
            "no token in URLs"
        );
    }

    #[tokio::test]
    async fn page_throttling_retries_after_the_usage_header() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(400)
                    .insert_header(
                        "X-Business-Use-Case-Usage",
                        r#"{"1234567890":[{"type":"pages","call_count":100,"total_cputime":10,"total_time":10,"estimated_time_to_regain_access":5}]}"#,
                    )
                    .set_body_json(json!({"error": {
                        "message": "(#32) Page request limit reached", "type": "OAuthException",
                        "code": 32, "fbtrace_id": "A1"
                    }})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let out = adapter(&server.uri(), TOKEN).send(&post("k", "x")).await;
        assert!(
            matches!(&out, Outcome::Retry { after: Some(d), .. } if *d == Duration::from_secs(300)),
            "{out:?}"
        );
        assert!(!out.reason().contains(TOKEN));
    }

    #[test]
    fn expired_token_and_duplicates_are_rejected_transient_errors_retried() {
        let now = Utc::now();
        let hm = HeaderMap::new();
        let o = classify(
            400,
            &hm,
            r#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463}}"#,
            now,
        );
        assert!(matches!(&o, Outcome::Rejected { reason } if reason.contains("code 190")));
        let o = classify(
            400,
            &hm,
            r#"{"error":{"message":"Duplicate status message","type":"OAuthException","code":506}}"#,
            now,
        );
        assert!(matches!(&o, Outcome::Rejected { reason } if reason.starts_with("duplicate")));
        let o = classify(
            500,
            &hm,
            r#"{"error":{"message":"An unexpected error has occurred.","type":"OAuthException","code":2,"is_transient":true}}"#,
            now,
        );
        assert!(matches!(o, Outcome::Retry { .. }));
    }

    #[tokio::test]
    async fn check_reads_the_page() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v23.0/1234567890"))
            .and(query_param("fields", "id,name"))
            .and(query_param("access_token", TOKEN))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "1234567890", "name": "Example Status"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        once(
            &server,
            "GET",
            "/v23.0/1234567890",
            ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "Invalid OAuth access token - Cannot parse access token",
                "type": "OAuthException", "code": 190
            }})),
        )
        .await;
        let good = adapter(&server.uri(), TOKEN).check().await;
        assert!(
            matches!(&good, Check::Ok(s) if s.contains("Example Status")),
            "{good:?}"
        );
        let bad = adapter(&server.uri(), "bad-token").check().await;
        assert!(
            matches!(&bad, Check::Failed(s) if s.contains("code 190") && !s.contains("bad-token")),
            "{bad:?}"
        );
    }
}
