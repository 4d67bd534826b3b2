//! A real headless Chromium for page tests, driven over W3C WebDriver by Debian's
//! `chromium-driver` (`scripts/test.sh` installs `chromium` and `chromium-driver`; nothing is
//! downloaded at test time). The client is the few WebDriver commands the page tests need, on
//! the `reqwest` crier already depends on.
//!
//! Browser tests are `#[ignore]`d in a bare `cargo test` (they need the browser) and named
//! `e2e_browser_*`, so the e2e step of `scripts/test.sh` runs them. Screenshots go to
//! `target/screenshots/`; the ones shown in docs/ are copies of those.

use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One browser session with its own chromedriver process.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    /// Whether pages may run JavaScript in this session.
    pub js: bool,
    /// chromium's profile directory (see [`kill_processes_of`]).
    profile: tempfile::TempDir,
}

/// What the browser is asked to be.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub width: u32,
    pub height: u32,
    pub javascript: bool,
}

impl Options {
    /// A phone: 360 CSS pixels wide, JavaScript off.
    pub fn phone_without_js() -> Self {
        Options {
            width: 360,
            height: 780,
            javascript: false,
        }
    }

    /// The staff console on a phone: 360×740, JavaScript on.
    pub fn console_phone() -> Self {
        Options {
            width: 360,
            height: 740,
            javascript: true,
        }
    }

    /// A laptop: 1280×900, JavaScript on.
    pub fn laptop() -> Self {
        Options {
            width: 1280,
            height: 900,
            javascript: true,
        }
    }

    /// A phone with JavaScript on (to measure the page with scripts).
    pub fn phone() -> Self {
        Options {
            javascript: true,
            ..Self::phone_without_js()
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find(names: &[&str]) -> PathBuf {
    for n in names {
        for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
            let p = PathBuf::from(dir).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("none of {names:?} is installed: apt-get install chromium chromium-driver (scripts/test.sh does)")
}

impl Browser {
    pub async fn start(o: Options) -> Browser {
        let port = free_port();
        let driver = Command::new(find(&["chromedriver"]))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        // chromedriver takes a moment to listen.
        let mut ready = false;
        for _ in 0..100 {
            if client
                .get(format!("{base}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not start on port {port}");
        // A profile of its own: it names this session's chromium processes, so that they can be
        // ended with the session even when a test panics (chromedriver leaves them behind).
        let profile = tempfile::Builder::new()
            .prefix("crier-chromium-")
            .tempdir()
            .unwrap();
        let mut prefs = json!({});
        if !o.javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": find(&["chromium"]).to_string_lossy(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         format!("--user-data-dir={}", profile.path().display()),
                         "--disable-dev-shm-usage", "--hide-scrollbars",
                         "--force-device-scale-factor=1",
                         format!("--window-size={},{}", o.width, o.height)],
                "prefs": prefs
            }
        }}});
        let r: Value = client
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        let b = Browser {
            driver,
            base,
            session,
            client,
            js: o.javascript,
            profile,
        };
        // --window-size sets the outer window; make the viewport itself the asked width.
        b.cmd(
            reqwest::Method::POST,
            "window/rect",
            json!({"width": o.width, "height": o.height}),
        )
        .await;
        b
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{}", self.base, self.session, path);
        let mut req = self.client.request(method.clone(), url);
        if method != reqwest::Method::GET {
            req = req.json(&body);
        }
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        if r["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", r["value"]);
        }
        r["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "url", json!({ "url": url }))
            .await;
    }

    pub async fn title(&self) -> String {
        self.cmd(reqwest::Method::GET, "title", json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element ids matching a CSS selector.
    pub async fn all(&self, css: &str) -> Vec<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "elements",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_object()
                    .unwrap()
                    .values()
                    .next()
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    /// The one element matching `css` (its WebDriver id).
    async fn one(&self, css: &str) -> String {
        let ids = self.all(css).await;
        assert_eq!(ids.len(), 1, "{css} should match exactly one element");
        ids[0].clone()
    }

    /// Clears a text field and types `text` into it, as a person would.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.one(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("element/{id}/clear"),
            json!({}),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Clicks the one element matching `css` (a button submits its form, JavaScript or not).
    pub async fn click(&self, css: &str) {
        let id = self.one(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("element/{id}/click"),
            json!({}),
        )
        .await;
    }

    /// Clicks what submits a form or follows a link, and waits until the next page replaced
    /// this one (its document element is a new one).
    pub async fn click_and_load(&self, css: &str) {
        let before = self.all("html").await;
        self.click(css).await;
        for _ in 0..200 {
            let now = self.all("html").await;
            if !now.is_empty() && now != before {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("clicking {css} did not load another page");
    }

    /// An attribute of the one element matching `css`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let id = self.one(css).await;
        self.cmd(
            reqwest::Method::GET,
            &format!("element/{id}/attribute/{name}"),
            json!({}),
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// The rendered text of each element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = vec![];
        for id in self.all(css).await {
            let t = self
                .cmd(
                    reqwest::Method::GET,
                    &format!("element/{id}/text"),
                    json!({}),
                )
                .await;
            out.push(t.as_str().unwrap_or_default().to_owned());
        }
        out
    }

    /// The rendered text of the one element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let t = self.texts(css).await;
        assert_eq!(t.len(), 1, "{css} should match exactly one element");
        t[0].clone()
    }

    /// An element's laid-out rectangle (x, y, width, height) in CSS pixels.
    pub async fn rect(&self, css: &str) -> (f64, f64, f64, f64) {
        let id = self
            .all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {css}"));
        let r = self
            .cmd(
                reqwest::Method::GET,
                &format!("element/{id}/rect"),
                json!({}),
            )
            .await;
        let f = |k: &str| r[k].as_f64().unwrap();
        (f("x"), f("y"), f("width"), f("height"))
    }

    /// Runs a script in the page (only in a session with JavaScript on).
    pub async fn script(&self, body: &str) -> Value {
        assert!(self.js, "this session has JavaScript off");
        self.cmd(
            reqwest::Method::POST,
            "execute/sync",
            json!({"script": body, "args": []}),
        )
        .await
    }

    /// The short words on the page that are broken across two lines (as `Dashb|oard`), each
    /// with the tag of its element. A word here is a run of letters and digits of at most 16
    /// characters; longer tokens (addresses, ids, URLs) may break so as to fit, and a break
    /// at a hyphen or a slash is a normal one. Hidden text (no boxes) and visually hidden text
    /// (inside a box at most 1 px wide, as `.vh` and the honeypot) are not counted.
    async fn split_words(&self) -> Vec<String> {
        let v = self
            .script(
                "const out = []; \
                 const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); \
                 const word = /[\\p{L}\\p{N}]+/gu; let n; \
                 const hidden = e => { for (; e; e = e.parentElement) \
                   if (e.getBoundingClientRect().width <= 1) return true; return false; }; \
                 while ((n = walk.nextNode())) { \
                   if (hidden(n.parentElement)) continue; \
                   const s = n.textContent; let m; word.lastIndex = 0; \
                   while ((m = word.exec(s))) { \
                     if (m[0].length < 2 || m[0].length > 16) continue; \
                     const r = document.createRange(); \
                     r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length); \
                     const tops = new Set([...r.getClientRects()].filter(b => b.width > 0) \
                       .map(b => Math.round(b.top))); \
                     if (tops.size > 1) out.push(n.parentElement.tagName.toLowerCase() + ': ' + m[0]); \
                   } \
                 } \
                 return out;",
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect()
    }

    /// Fails, naming `when` and the words, if [`Browser::split_words`] finds any.
    pub async fn assert_words_whole(&self, when: &str) {
        let split = self.split_words().await;
        assert!(
            split.is_empty(),
            "{when}: words broken across lines: {split:?}"
        );
    }

    /// The page's console messages at level SEVERE (CSP violations and failed loads among
    /// them) since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let v = self
            .cmd(reqwest::Method::POST, "se/log", json!({"type": "browser"}))
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Types `text` into the one element matching `css` after what it holds (key events: the
    /// page's input handlers run).
    pub async fn append_text(&self, css: &str, text: &str) {
        let id = self.one(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// [`Browser::texts`], or `None` when the page changed under the query.
    async fn try_texts(&self, css: &str) -> Option<Vec<String>> {
        let url = |p: &str| format!("{}/session/{}/{}", self.base, self.session, p);
        let found: Value = self
            .client
            .post(url("elements"))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let mut out = vec![];
        for e in found["value"].as_array()? {
            let id = e.as_object()?.values().next()?.as_str()?;
            let t: Value = self
                .client
                .get(url(&format!("element/{id}/text")))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            out.push(t["value"].as_str()?.to_owned());
        }
        Some(out)
    }

    /// The page's URL.
    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "url", json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's source.
    pub async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "source", json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Polls (at most `bound`) until the text of `css` (all matches joined) satisfies `ok`;
    /// returns that text, or panics with the last one seen.
    pub async fn wait_text(&self, css: &str, bound: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = std::time::Instant::now();
        let mut last = String::new();
        while start.elapsed() < bound {
            // The page may be navigating: an element gone stale is read again next time.
            let Some(t) = self.try_texts(css).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            last = t.join("\n");
            if ok(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never became as expected within {bound:?}; last: {last:?}");
    }

    /// Saves a PNG of the viewport to `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let v = self
            .cmd(reqwest::Method::GET, "screenshot", json!({}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn close(mut self) {
        let _ = self
            .client
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Ends every process whose command line names `profile` (this session's chromium and its
/// helpers), found in /proc, with the shell's own `kill`.
fn kill_processes_of(profile: &std::path::Path) {
    let needle = profile.to_string_lossy().into_owned();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    let pids: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect();
    if !pids.is_empty() {
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -9 {} 2>/dev/null", pids.join(" "))])
            .status();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        kill_processes_of(self.profile.path());
    }
}
