//! The real binary: one update in several languages (`--message fi:…`, `--message-file`), and a
//! reopen announced as a reopening.

use crate::helpers::{crier, json, spawn_app, stderr as err, stdout as out, TestApp};

/// What an SMS channel in `locale` would send for the incident's latest update.
async fn sms(app: &TestApp, id: &str, locale: &str) -> String {
    preview_as(app, id, "sms", locale).await
}

#[tokio::test]
async fn one_update_in_several_languages_from_the_cli() {
    let app = spawn_app().await;
    let v = json(
        &crier(
            &app,
            &[
                "incident",
                "open",
                "--title",
                "Check-in delays",
                "--impact",
                "major",
                "--message",
                "Check-in is slow.",
                "--message",
                "fi:Lähtöselvitys on hidas.",
                "--message",
                "sv: Incheckningen går långsamt.",
                "--json",
            ],
        )
        .await,
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let body = &v["updates"][0]["body"];
    assert_eq!(body["en"], "Check-in is slow.");
    assert_eq!(body["fi"], "Lähtöselvitys on hidas.");
    assert_eq!(body["sv"], "Incheckningen går långsamt.");
    // The English channel gets the English text, the Finnish one the Finnish text.
    let en = sms(&app, &id, "en").await;
    assert!(
        en.contains("Check-in is slow.") && !en.contains("hidas"),
        "{en}"
    );
    let fi = sms(&app, &id, "fi").await;
    assert!(fi.contains("Lähtöselvitys on hidas."), "{fi}");

    // A message file: TOML, one text per language; a plain --message with --locale joins it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("update.toml");
    std::fs::write(
        &file,
        "en = \"Note: the cause is a network fault.\"\nfi = \"\"\"\nSyy on verkkovika.\n\"\"\"\n",
    )
    .unwrap();
    let v = json(
        &crier(
            &app,
            &[
                "incident",
                "update",
                &id,
                "--status",
                "identified",
                "--message-file",
                file.to_str().unwrap(),
                "--message",
                "Orsaken är ett nätverksfel.",
                "--locale",
                "sv",
                "--json",
            ],
        )
        .await,
    );
    let body = &v["update"]["body"];
    assert_eq!(body["en"], "Note: the cause is a network fault.");
    assert_eq!(body["fi"], "Syy on verkkovika.");
    assert_eq!(body["sv"], "Orsaken är ett nätverksfel.");

    // "Note:" is not a language: a plain text stays whole, in the default language.
    let v = json(
        &crier(
            &app,
            &[
                "incident",
                "update",
                &id,
                "--status",
                "monitoring",
                "--message",
                "Note: gate 12 is open again.",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(
        v["update"]["body"],
        serde_json::json!({"en": "Note: gate 12 is open again."})
    );

    // Two texts for one language: a usage error (exit 2) and nothing is written.
    let before = app.checksum().await;
    let o = crier(
        &app,
        &[
            "incident",
            "update",
            &id,
            "--status",
            "monitoring",
            "--message",
            "fi:Yksi",
            "--message",
            "fi:Kaksi",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("two texts for fi"), "{}", err(&o));
    assert_eq!(
        app.checksum().await,
        before,
        "a refused update writes nothing"
    );
    let show = json(&crier(&app, &["incident", "show", &id, "--json"]).await);
    assert_eq!(show["updates"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_reopen_is_announced_as_a_reopening() {
    let app = spawn_app().await;
    let v = json(
        &crier(
            &app,
            &[
                "incident",
                "open",
                "--title",
                "Baggage delays",
                "--impact",
                "minor",
                "--message",
                "Bags are late.",
                "--json",
            ],
        )
        .await,
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let o = crier(
        &app,
        &[
            "incident",
            "update",
            &id,
            "--status",
            "identified",
            "--message",
            "Belt fault.",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(sms(&app, &id, "en")
        .await
        .contains(": Update - Baggage delays"));
    let o = crier(
        &app,
        &[
            "incident",
            "resolve",
            &id,
            "--message",
            "en:Fixed.",
            "--message",
            "fi:Korjattu.",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    let o = crier(
        &app,
        &[
            "incident",
            "reopen",
            &id,
            "--message",
            "Bags are late again.",
            "--message",
            "fi:Laukut myöhässä taas.",
            "--message",
            "sv:Väskorna är sena igen.",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    for (locale, headline, text) in [
        ("en", ": Reopened - Baggage delays", "Bags are late again."),
        (
            "fi",
            ": Avattu uudelleen - Baggage delays",
            "Laukut myöhässä taas.",
        ),
        (
            "sv",
            ": Återöppnad - Baggage delays",
            "Väskorna är sena igen.",
        ),
    ] {
        let p = sms(&app, &id, locale).await;
        assert!(p.contains(headline) && p.contains(text), "{locale}: {p}");
        assert!(!p.contains("Update -"), "{locale}: {p}");
    }
}

/// What a channel of `kind` in `locale` would send for the incident's latest update.
async fn preview_as(app: &TestApp, id: &str, kind: &str, locale: &str) -> String {
    let o = crier(
        app,
        &[
            "preview",
            "--incident",
            id,
            "--kind",
            kind,
            "--locale",
            locale,
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    out(&o)
}

#[tokio::test]
async fn titles_per_language_from_the_cli() {
    let app = spawn_app().await;
    let v = json(
        &crier(
            &app,
            &[
                "incident",
                "open",
                "--title",
                "Check-in delays",
                "--title",
                "fi:Lähtöselvitys viivästyy",
                "--title",
                "sv: Incheckningen är försenad",
                "--impact",
                "major",
                "--message",
                "Check-in is slow.",
                "--message",
                "fi:Lähtöselvitys on hidas.",
                "--message",
                "sv:Incheckningen går långsamt.",
                "--json",
            ],
        )
        .await,
    );
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["title"], "Check-in delays");
    assert_eq!(
        v["titles"],
        serde_json::json!({"fi": "Lähtöselvitys viivästyy", "sv": "Incheckningen är försenad"})
    );
    // Each reader sees the title in their language, with the text in it.
    for (locale, title, text, other) in [
        ("en", "Check-in delays", "Check-in is slow.", "viivästyy"),
        (
            "fi",
            "Lähtöselvitys viivästyy",
            "Lähtöselvitys on hidas.",
            "Check-in delays",
        ),
        (
            "sv",
            "Incheckningen är försenad",
            "Incheckningen går långsamt.",
            "Check-in delays",
        ),
    ] {
        let sms = preview_as(&app, &id, "sms", locale).await;
        assert!(
            sms.contains(&format!("- {title}. {text}")) && !sms.contains(other),
            "{locale}: {sms}"
        );
        let email = preview_as(&app, &id, "email", locale).await;
        assert!(email.contains(&format!(": {title}")), "{locale}: {email}");
        assert!(!email.contains(other), "{locale}: {email}");
    }

    // A language without a title of its own falls back to the main title; an update adds one.
    let v = json(
        &crier(
            &app,
            &[
                "incident",
                "open",
                "--title",
                "Baggage delays",
                "--title",
                "fi:Matkatavarat myöhässä",
                "--impact",
                "minor",
                "--message",
                "Bags are late.",
                "--message",
                "sv:Väskorna är sena.",
                "--json",
            ],
        )
        .await,
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let sv = preview_as(&app, &id, "sms", "sv").await;
    assert!(
        sv.contains("- Baggage delays. Väskorna är sena."),
        "sv falls back to the main title: {sv}"
    );
    let v = json(
        &crier(
            &app,
            &[
                "incident",
                "update",
                &id,
                "--status",
                "identified",
                "--title",
                "sv:Väskorna är försenade",
                "--title",
                "fi:Matkatavarat ovat myöhässä",
                "--message",
                "Belt fault.",
                "--message",
                "sv:Fel på bandet.",
                "--message",
                "fi:Hihnavika.",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(
        v["incident"]["titles"],
        serde_json::json!({"fi": "Matkatavarat ovat myöhässä", "sv": "Väskorna är försenade"})
    );
    assert_eq!(v["incident"]["title"], "Baggage delays");
    let sv = preview_as(&app, &id, "sms", "sv").await;
    assert!(
        sv.contains("- Väskorna är försenade. Fel på bandet."),
        "{sv}"
    );
    let fi = preview_as(&app, &id, "sms", "fi").await;
    assert!(
        fi.contains("- Matkatavarat ovat myöhässä. Hihnavika."),
        "{fi}"
    );
    let en = preview_as(&app, &id, "sms", "en").await;
    assert!(en.contains("- Baggage delays. Belt fault."), "{en}");

    // `incident show` lists the translations.
    let o = crier(&app, &["incident", "show", &id]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("sv: Väskorna är försenade"), "{}", out(&o));

    // Titles the CLI can tell are wrong are usage errors (exit 2): two main titles, none, a
    // language given twice, the main title on an update.
    let before = app.checksum().await;
    let open = |titles: &[&'static str]| {
        let mut a = vec!["incident", "open", "--impact", "minor", "--message", "x"];
        for t in titles {
            a.extend(["--title", t]);
        }
        a
    };
    for (args, want) in [
        (open(&["A", "B"]), "two main titles"),
        (open(&["fi:A"]), "main title"),
        (open(&["A", "fi:B", "fi:C"]), "two titles for fi"),
        (
            vec![
                "incident",
                "update",
                &id,
                "--status",
                "monitoring",
                "--title",
                "New",
                "--message",
                "x",
            ],
            "--title fi:",
        ),
    ] {
        let o = crier(&app, &args).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(err(&o).contains(want), "{args:?}: {}", err(&o));
    }
    // Titles the server refuses (exit 3): an empty translation, a control character.
    for (args, want) in [
        (open(&["A", "fi:  "]), "the fi title is empty"),
        (
            vec![
                "incident",
                "update",
                &id,
                "--status",
                "monitoring",
                "--title",
                "sv:a\u{1b}b",
                "--message",
                "x",
            ],
            "the sv title contains the control character U+001B",
        ),
    ] {
        let o = crier(&app, &args).await;
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", err(&o));
        assert!(err(&o).contains(want), "{args:?}: {}", err(&o));
    }
    assert_eq!(
        app.checksum().await,
        before,
        "a refused title writes nothing"
    );
}
