//! Subscribers: add, de-duplicate, list, remove, CSV import with per-line errors, unsubscribe.

use crate::helpers::spawn_app;
use crier::store::port::Subscribers;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn add_list_remove_and_duplicates() {
    let app = spawn_app().await;
    app.component("Check-in").await;
    let r = app
        .post(
            "/api/v1/subscribers",
            json!({"phone": "+358 40 123 4567", "locale": "fi", "components": ["Check-in"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["phone"], "+358401234567");
    assert_eq!(r.body["locale"], "fi");
    assert!(
        r.body.get("unsubscribe_token").is_none(),
        "the token is the subscriber's secret"
    );
    let r = app
        .post("/api/v1/subscribers", json!({"email": "Ops@Example.com"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["email"], "ops@example.com");

    let before = app.checksum().await;
    let r = app
        .post("/api/v1/subscribers", json!({"phone": "00358401234567"}))
        .await;
    assert_eq!(r.status, 409, "same number, other spelling");
    assert!(r.problem().contains("already subscribed"));
    let r = app
        .post("/api/v1/subscribers", json!({"email": "OPS@example.com"}))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(app.checksum().await, before);

    let r = app.get("/api/v1/subscribers").await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = app.delete("/api/v1/subscribers/+358401234567").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app.delete("/api/v1/subscribers/+358401234567").await;
    assert_eq!(r.status, 404);
    let r = app.get("/api/v1/subscribers").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    // The address can subscribe again after removal.
    let r = app
        .post("/api/v1/subscribers", json!({"phone": "+358401234567"}))
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn csv_import_reports_bad_rows_by_line_and_imports_the_rest() {
    let app = spawn_app().await;
    app.component("Web").await;
    app.post(
        "/api/v1/subscribers",
        json!({"email": "existing@example.com"}),
    )
    .await;
    let csv = "email,phone,locale,components\n\
               a@example.com,,fi,Web\n\
               not-an-email,,en,\n\
               ,+358401111111,sv,\n\
               ,0401234567,fi,\n\
               A@EXAMPLE.COM,,en,\n\
               existing@example.com,,en,\n\
               b@example.com,,en,Nope\n\
               ,,en,\n\
               c@example.com,,en,Web;Web\n";
    let r = app
        .raw(
            Method::POST,
            "/api/v1/subscribers/import",
            csv.as_bytes().to_vec(),
            Some("text/csv"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["added"], 3, "{:?}", r.body);
    assert_eq!(r.body["duplicates"], 2, "{:?}", r.body);
    assert_eq!(r.body["rejected"], 4, "{:?}", r.body);
    let lines: Vec<u64> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 5, 8, 9]);
    let msgs = r.body["errors"].to_string();
    assert!(msgs.contains("E.164") && msgs.contains("Nope"), "{msgs}");
    let r = app.get("/api/v1/subscribers").await;
    assert_eq!(r.body.as_array().unwrap().len(), 4);

    // Re-importing the same file adds nothing and writes nothing.
    let before = app.checksum().await;
    let r = app
        .raw(
            Method::POST,
            "/api/v1/subscribers/import",
            csv.as_bytes().to_vec(),
            Some("text/csv"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.body["added"], 0);
    assert_eq!(app.checksum().await, before);

    let r = app
        .raw(
            Method::POST,
            "/api/v1/subscribers/import",
            b"name,address\nx,y\n".to_vec(),
            Some("text/csv"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.problem().contains("unknown CSV column"),
        "{}",
        r.problem()
    );
    assert_eq!(app.checksum().await, before);
}

/// A large import is parsed and written `IMPORT_CHUNK` rows at a time; the report must be the
/// one a whole-file parse gives: line numbers run on across chunks, an address repeated in a
/// later chunk (in another spelling) is a duplicate, bad rows on either side of a boundary are
/// rejected with their own lines, and an unreadable row does not shift the rows after it.
#[tokio::test]
async fn csv_import_chunks_report_like_one_file() {
    use crier::store::IMPORT_CHUNK;
    let app = spawn_app().await;
    app.component("Web").await;
    app.post("/api/v1/subscribers", json!({"email": "u9@example.com"}))
        .await;
    let n = 2 * IMPORT_CHUNK + 10;
    let mut csv = b"email,locale,components\n".to_vec();
    let mut bad_lines = Vec::new();
    let mut duplicates = 1; // u9, already in the store
    for i in 0..n {
        // Row i is on line i + 2 (the header is line 1).
        let line = i as u64 + 2;
        let row: Vec<u8> = if i == IMPORT_CHUNK - 1 {
            // The last row of the first chunk.
            bad_lines.push(line);
            b"not-an-email,en,".to_vec()
        } else if i == IMPORT_CHUNK {
            // The first row of the second chunk: not UTF-8, so unreadable.
            bad_lines.push(line);
            b"x\xff@example.com,en,".to_vec()
        } else if i == IMPORT_CHUNK + 1 {
            bad_lines.push(line);
            b"v@example.com,en,Nope".to_vec()
        } else if (IMPORT_CHUNK + 2..IMPORT_CHUNK + 7).contains(&i) {
            // Rows 0..5 of the first chunk again, in capitals.
            duplicates += 1;
            format!("U{}@EXAMPLE.COM,fi,", i - IMPORT_CHUNK - 2).into_bytes()
        } else if i == 2 * IMPORT_CHUNK {
            // The first row of the third chunk repeats the last good row of the second.
            duplicates += 1;
            format!("u{}@example.com,en,Web", 2 * IMPORT_CHUNK - 1).into_bytes()
        } else if i == 2 * IMPORT_CHUNK + 1 {
            // The next one is repeated by the one after it, within the third chunk.
            duplicates += 1;
            format!("u{}@example.com,en,", 2 * IMPORT_CHUNK + 2).into_bytes()
        } else {
            format!("u{i}@example.com,en,Web").into_bytes()
        };
        csv.extend_from_slice(&row);
        csv.push(b'\n');
    }
    let rejected = bad_lines.len();
    let added = n - rejected - duplicates;
    let before = app.store.subscriber_count().await.unwrap();
    let r = app
        .raw(
            Method::POST,
            "/api/v1/subscribers/import",
            csv.clone(),
            Some("text/csv"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["added"], added, "{:?}", r.body["errors"]);
    assert_eq!(r.body["duplicates"], duplicates);
    assert_eq!(r.body["rejected"], rejected);
    let lines: Vec<u64> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, bad_lines);
    let msgs = r.body["errors"].to_string();
    assert!(
        msgs.contains("unreadable row") && msgs.contains("Nope"),
        "{msgs}"
    );
    assert_eq!(app.store.subscriber_count().await.unwrap(), before + added);

    // The same file again: every good row is a duplicate now, the bad ones are bad again.
    let r = app
        .raw(
            Method::POST,
            "/api/v1/subscribers/import",
            csv,
            Some("text/csv"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["added"], 0);
    assert_eq!(r.body["duplicates"], n - rejected);
    assert_eq!(r.body["rejected"], rejected);
    assert_eq!(app.store.subscriber_count().await.unwrap(), before + added);
}

#[tokio::test]
async fn one_click_unsubscribe_by_token() {
    let app = spawn_app().await;
    app.post("/api/v1/subscribers", json!({"email": "leave@example.com"}))
        .await;
    let token = app.store.subscribers(10).await.unwrap()[0]
        .unsubscribe_token
        .clone();
    let r = app
        .client
        .post(app.url("/api/v1/unsubscribe/wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .client
        .post(app.url(&format!("/api/v1/unsubscribe/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.store.subscriber_count().await.unwrap(), 0);
}
