//! An update's text in several languages from the command line.
//!
//! Why this exists: with one `--message` and one `--locale`, a Finnish-only update reaches an
//! English channel as Finnish text. An update carries one text per language (the API's `body`),
//! so the CLI lets the officer give several:
//!
//! - `--message TEXT` (repeatable): a text that starts with a language crier ships templates
//!   for and a colon — `en:`, `fi:`, `sv:`, optionally with a region (`sv-FI:`) — is in that
//!   language; any other text is in `--locale` (default `en`). Only those codes count, written
//!   in lowercase, so `Note: …` or `NO: …` stay plain text; to start a text with such a code
//!   literally, give its language first (`en:fi: stands for Finnish`).
//! - `--message-file FILE`: a TOML file with one text per language, any language tag as key
//!   (`en = "…"`, `fi = """…"""`).
//!
//! Each language may be given once. One plain text is sent as before (`message` + `locale`);
//! anything else as `body` {locale: text}.
//!
//! Titles follow the same rule (`--title TEXT`, `--title fi:TEXT`): the text without a prefix is
//! the main title, the prefixed ones its translations (the API's `titles`).

use super::client::CliError;
use crate::domain::Locale;
use crate::render::i18n::SHIPPED;
use std::collections::BTreeMap;
use std::path::Path;

/// The language of a `xx:`-prefixed text and the text after the colon, when the prefix is one
/// of crier's own languages (see the module docs).
fn prefixed(message: &str) -> Option<(Locale, &str)> {
    let (tag, text) = message.split_once(':')?;
    let lang = tag.split('-').next().unwrap_or_default();
    if !SHIPPED.contains(&lang) || tag.len() > 5 {
        return None;
    }
    Locale::parse(tag).ok().map(|l| (l, text))
}

fn insert(texts: &mut BTreeMap<Locale, String>, l: Locale, text: &str) -> Result<(), CliError> {
    if texts.contains_key(&l) {
        return Err(CliError::Usage(format!(
            "two texts for {l}; give each language once (--message {l}:… or in --message-file)"
        )));
    }
    texts.insert(l, text.trim().to_owned());
    Ok(())
}

/// Reads a `--message-file`: TOML, one text per language.
fn read_file(path: &Path, texts: &mut BTreeMap<Locale, String>) -> Result<(), CliError> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read the message file {}: {e}",
            path.display()
        ))
    })?;
    let map: BTreeMap<String, String> = toml::from_str(&src).map_err(|e| {
        CliError::Usage(format!(
            "{} is not a message file: write one text per language, e.g. en = \"Delays\" and \
             fi = \"Viiveitä\" ({})",
            path.display(),
            e.message()
        ))
    })?;
    if map.is_empty() {
        return Err(CliError::Usage(format!(
            "{} has no texts; write one per language, e.g. en = \"Delays\"",
            path.display()
        )));
    }
    for (tag, text) in map {
        let l = Locale::parse(&tag)
            .map_err(|e| CliError::Usage(format!("{}: key \"{tag}\": {e}", path.display())))?;
        insert(texts, l, &text)?;
    }
    Ok(())
}

/// An update's text as the API's write requests take it: `message` (and `locale`) for one
/// plain text, else `body` with one text per language.
#[derive(Debug, Default, PartialEq, serde::Serialize)]
pub(super) struct Text {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<BTreeMap<String, String>>,
}

/// The text arguments of the incident writes (`open`, `update`, `resolve`, `reopen`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TextArgs {
    /// The update's text (repeatable): `fi:TEXT` is in Finnish, `sv:TEXT` in Swedish, `en:TEXT` in
    /// English (crier's languages, lowercase); any other text is in --locale.
    #[arg(long)]
    pub message: Vec<String>,
    /// Language of the texts without a language prefix, e.g. fi (default en).
    #[arg(long)]
    pub locale: Option<String>,
    /// TOML file with one text per language: en = "…", fi = "…" (with or without --message).
    #[arg(long)]
    pub message_file: Option<std::path::PathBuf>,
}

impl TextArgs {
    /// The text fields of the request: see [`text_fields`].
    pub(super) fn fields(&self) -> Result<Text, CliError> {
        text_fields(
            &self.message,
            self.locale.as_deref(),
            self.message_file.as_deref(),
        )
    }
}

/// The text fields of an update: `message` (and `locale`) for one plain text, else `body` with
/// one text per language.
pub(super) fn text_fields(
    messages: &[String],
    locale: Option<&str>,
    file: Option<&Path>,
) -> Result<Text, CliError> {
    if let ([m], None) = (messages, file) {
        if prefixed(m).is_none() {
            return Ok(Text {
                message: Some(m.clone()),
                locale: locale.map(str::to_owned),
                body: None,
            });
        }
    }
    let mut texts = BTreeMap::new();
    let mut plain = false;
    for m in messages {
        match prefixed(m) {
            Some((l, text)) => insert(&mut texts, l, text)?,
            None => {
                plain = true;
                let l = match locale {
                    Some(l) => {
                        Locale::parse(l).map_err(|e| CliError::Usage(format!("--locale: {e}")))?
                    }
                    None => Locale::english(),
                };
                insert(&mut texts, l, m)?;
            }
        }
    }
    if let Some(f) = file {
        read_file(f, &mut texts)?;
    }
    if texts.is_empty() {
        return Err(CliError::Usage(
            "say what is happening with --message TEXT (repeat it as --message fi:TEXT for \
             other languages) or --message-file FILE"
                .into(),
        ));
    }
    if let (Some(l), false) = (locale, plain) {
        return Err(CliError::Usage(format!(
            "--locale {l} names the language of a --message without a language prefix, and \
             there is none; drop --locale or write the text as --message {l}:TEXT"
        )));
    }
    Ok(Text {
        body: Some(texts.into_iter().map(|(l, t)| (l.to_string(), t)).collect()),
        ..Text::default()
    })
}

/// The titles of `--title` (repeatable): the main title (the one without a language prefix,
/// at most one; `main` says whether it is required, else refused) and the translations by
/// language.
pub(super) fn title_fields(
    titles: &[String],
    main: bool,
) -> Result<(Option<String>, BTreeMap<Locale, String>), CliError> {
    let mut plain: Option<&String> = None;
    let mut translations = BTreeMap::new();
    for t in titles {
        match prefixed(t) {
            Some((l, text)) => {
                if translations.contains_key(&l) {
                    return Err(CliError::Usage(format!(
                        "two titles for {l}; give each language once (--title {l}:TEXT)"
                    )));
                }
                translations.insert(l, text.trim().to_owned());
            }
            None if !main => {
                return Err(CliError::Usage(format!(
                    "--title \"{t}\" has no language prefix, and an update does not change the \
                     main title; give a translation as --title fi:TEXT (or sv:, en:)"
                )))
            }
            None => {
                if let Some(first) = plain {
                    return Err(CliError::Usage(format!(
                        "two main titles (\"{first}\" and \"{t}\"); give one --title without a \
                         language prefix and the others as --title fi:TEXT (or sv:, en:)"
                    )));
                }
                plain = Some(t);
            }
        }
    }
    if main && plain.is_none() {
        return Err(CliError::Usage(
            "give the main title as --title TEXT (without a language prefix, e.g. --title \
             \"Check-in delays\"); translations go as --title fi:TEXT"
                .into(),
        ));
    }
    Ok((plain.cloned(), translations))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn titles_main_and_translations() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (main, tr) = title_fields(&v(&["Delays", "fi: Viiveitä", "sv-fi:Förseningar"]), true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(main.as_deref(), Some("Delays"));
        assert_eq!(
            serde_json::to_value(&tr).unwrap_or_default(),
            json!({"fi": "Viiveitä", "sv-FI": "Förseningar"})
        );
        // "Note:" is no language: a plain title.
        let (main, tr) =
            title_fields(&v(&["Note: gate change"]), true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((main.as_deref(), tr.len()), (Some("Note: gate change"), 0));
        let (main, tr) =
            title_fields(&v(&["sv:Förseningar"]), false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((main, tr.len()), (None, 1));
        for (titles, main, want) in [
            (vec!["A", "B"], true, "two main titles"),
            (vec!["fi:A"], true, "give the main title"),
            (vec!["A", "fi:B", "fi:C"], true, "two titles for fi"),
            (vec!["A"], false, "does not change the main title"),
        ] {
            match title_fields(&v(&titles), main) {
                Err(CliError::Usage(m)) => assert!(m.contains(want), "{titles:?}: {m}"),
                other => panic!("{titles:?}: {other:?}"),
            }
        }
    }

    fn fields(messages: &[&str], locale: Option<&str>) -> Result<Value, CliError> {
        let m: Vec<String> = messages.iter().map(|s| s.to_string()).collect();
        text_fields(&m, locale, None).map(|t| serde_json::to_value(t).unwrap())
    }

    #[test]
    fn prefixes_and_plain_texts() {
        // (messages, --locale, expected JSON)
        let table: Vec<(Vec<&str>, Option<&str>, Value)> = vec![
            (vec!["Delays"], None, json!({"message": "Delays"})),
            (
                vec!["Viiveitä"],
                Some("fi"),
                json!({"message": "Viiveitä", "locale": "fi"}),
            ),
            (
                vec!["Note: gate changed"],
                None,
                json!({"message": "Note: gate changed"}),
            ),
            (vec!["NO: flights"], None, json!({"message": "NO: flights"})),
            (vec!["no: flights"], None, json!({"message": "no: flights"})),
            (
                vec!["fi: Viiveitä"],
                None,
                json!({"body": {"fi": "Viiveitä"}}),
            ),
            (
                vec!["en:Delays", "fi:Viiveitä", "sv-fi:Förseningar"],
                None,
                json!({"body": {"en": "Delays", "fi": "Viiveitä", "sv-FI": "Förseningar"}}),
            ),
            (
                vec!["Delays", "fi:Viiveitä"],
                None,
                json!({"body": {"en": "Delays", "fi": "Viiveitä"}}),
            ),
            (
                vec!["Viiveitä", "sv:Förseningar"],
                Some("fi"),
                json!({"body": {"fi": "Viiveitä", "sv": "Förseningar"}}),
            ),
            (
                vec!["en:fi: stands for Finnish"],
                None,
                json!({"body": {"en": "fi: stands for Finnish"}}),
            ),
        ];
        for (messages, locale, want) in table {
            let got = fields(&messages, locale).unwrap_or_else(|e| panic!("{messages:?}: {e}"));
            assert_eq!(got, want, "{messages:?} {locale:?}");
        }
    }

    #[test]
    fn usage_errors_say_what_to_do() {
        let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
            (vec!["fi:a", "fi:b"], None, "two texts for fi"),
            (vec!["a", "en:b"], None, "two texts for en"),
            (vec![], None, "--message-file"),
            (vec!["fi:a"], Some("sv"), "drop --locale"),
            (vec!["a", "fi:b"], Some("x1"), "--locale"),
        ];
        for (messages, locale, want) in cases {
            match fields(&messages, locale) {
                Err(CliError::Usage(m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{messages:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn message_file_is_toml_by_language() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("texts.toml");
        std::fs::write(&path, "en = \"Delays\"\nfi = \"\"\"\nViiveitä\n\"\"\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let got = text_fields(&["sv:Förseningar".into()], None, Some(&path))
            .map(|t| serde_json::to_value(t).unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            got,
            json!({"body": {"en": "Delays", "fi": "Viiveitä", "sv": "Förseningar"}})
        );
        let err = text_fields(&["en:x".into()], None, Some(&path));
        assert!(matches!(err, Err(CliError::Usage(m)) if m.contains("two texts for en")));
        std::fs::write(&path, "en: Delays\n").unwrap_or_else(|e| panic!("{e}"));
        let err = text_fields(&[], None, Some(&path));
        assert!(
            matches!(&err, Err(CliError::Usage(m)) if m.contains("en = \\\"Delays\\\"") || m.contains("en = \"Delays\"")),
            "{err:?}"
        );
        std::fs::write(&path, "english = \"x\"\n").unwrap_or_else(|e| panic!("{e}"));
        let err = text_fields(&[], None, Some(&path));
        assert!(
            matches!(&err, Err(CliError::Usage(m)) if m.contains("key \"english\"")),
            "{err:?}"
        );
        let err = text_fields(&[], None, Some(&dir.path().join("missing.toml")));
        assert!(
            matches!(&err, Err(CliError::Usage(m)) if m.contains("cannot read the message file")),
            "{err:?}"
        );
    }
}
