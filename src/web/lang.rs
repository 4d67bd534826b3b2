//! Which language a page is shown in, and the pages' own words in each.
//!
//! A reader gets the language they ask for with `?lang=` (the switcher's links), else the best
//! match of their browser's `Accept-Language` (RFC 9110 §12.5.4: quality values, and `fi-FI`
//! matching `fi`), else English. The words of the pages themselves ("All Systems Operational",
//! "Next update by") live in `web/i18n/*.toml` (one file per area of the site, one table per
//! language in each), so a translator edits text, not code; a test keeps every language's keys
//! the same and every key defined once.

use crate::domain::Locale;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The languages the pages are written in, in switcher order.
pub const LANGUAGES: [(&str, &str); 3] = [("en", "English"), ("fi", "Suomi"), ("sv", "Svenska")];

/// The catalogue files, compiled in: (file name, contents). One per area of the site.
const FILES: [(&str, &str); 4] = [
    ("common.toml", include_str!("../../web/i18n/common.toml")),
    ("feeds.toml", include_str!("../../web/i18n/feeds.toml")),
    ("status.toml", include_str!("../../web/i18n/status.toml")),
    (
        "subscribe.toml",
        include_str!("../../web/i18n/subscribe.toml"),
    ),
];

type Catalogue = BTreeMap<String, BTreeMap<String, String>>;

/// The pages' words, per language code: every file's tables merged.
static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let mut all = Catalogue::new();
    for (_, text) in FILES {
        // The files are part of the binary and a unit test parses them, so this cannot fail at
        // run time without failing that test first; a missing word shows as its key.
        let part: Catalogue = toml::from_str(text).unwrap_or_default();
        for (lang, words) in part {
            all.entry(lang).or_default().extend(words);
        }
    }
    all
});

/// The words of one language (English where a key is missing).
pub fn words(lang: &str) -> BTreeMap<String, String> {
    let mut out = CATALOGUE.get("en").cloned().unwrap_or_default();
    if let Some(own) = CATALOGUE.get(lang) {
        out.extend(own.clone());
    }
    out
}

/// Picks the page language from `?lang=` and `Accept-Language`.
pub fn negotiate(query: Option<&str>, accept_language: Option<&str>) -> &'static str {
    if let Some(l) = query.and_then(supported) {
        return l;
    }
    let Some(header) = accept_language else {
        return "en";
    };
    let mut best: Option<(f32, usize, &'static str)> = None;
    for (pos, item) in header.split(',').enumerate() {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q.is_nan() || q <= 0.0 {
            continue;
        }
        let Some(lang) = supported(tag) else { continue };
        // Highest quality wins; among equals, the one listed first.
        if best.is_none_or(|(bq, bpos, _)| q > bq || (q == bq && pos < bpos)) {
            best = Some((q, pos, lang));
        }
    }
    best.map_or("en", |(_, _, l)| l)
}

/// The supported language a tag names (`fi`, `FI`, `fi-FI`), if any.
fn supported(tag: &str) -> Option<&'static str> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    LANGUAGES
        .iter()
        .map(|(code, _)| *code)
        .find(|code| *code == primary)
}

/// The page language as a [`Locale`], for choosing an update's text.
pub fn locale(lang: &str) -> Locale {
    Locale::parse(lang).unwrap_or_else(|_| Locale::english())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses_and_every_language_has_every_key_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (file, text) in FILES {
            let raw: Catalogue = toml::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            let en: Vec<&String> = raw["en"].keys().collect();
            assert!(!en.is_empty(), "{file} has no English words");
            for (code, _) in LANGUAGES {
                let keys: Vec<&String> = raw[code].keys().collect();
                assert_eq!(
                    keys, en,
                    "web/i18n/{file} [{code}] must have exactly the keys of [en]"
                );
            }
            for k in en {
                assert!(
                    seen.insert(k.clone()),
                    "{k} is defined in two files ({file})"
                );
            }
        }
        assert_eq!(words("fi")["banner_major"], "Laaja järjestelmäkatko");
    }

    #[test]
    fn negotiation_follows_query_then_quality_then_english() {
        assert_eq!(negotiate(Some("sv"), Some("fi")), "sv");
        assert_eq!(negotiate(Some("xx"), Some("fi")), "fi");
        assert_eq!(negotiate(None, Some("fi-FI,fi;q=0.9,en;q=0.8")), "fi");
        assert_eq!(negotiate(None, Some("de, sv;q=0.5, fi;q=0.7")), "fi");
        assert_eq!(negotiate(None, Some("sv;q=0.5, fi;q=0.5")), "sv");
        assert_eq!(negotiate(None, Some("fi;q=0, en;q=0.1")), "en");
        assert_eq!(negotiate(None, Some("de")), "en");
        assert_eq!(negotiate(None, Some(";;;,,q=")), "en");
        assert_eq!(negotiate(None, None), "en");
    }
}
