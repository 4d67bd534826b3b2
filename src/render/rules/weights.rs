//! How X, Mastodon and Bluesky measure the length of a post.
//!
//! Why this exists: each social channel counts "characters" differently, and
//! a post that is one unit too long is rejected by the provider at send time,
//! in the middle of a crisis. Measuring the way the provider does lets crier
//! split or shorten *before* sending.
//!
//! - **X**: the text is NFC-normalised, every link counts 23, and each code
//!   point weighs 1 if it is in U+0000–U+10FF, U+2000–U+200D, U+2010–U+201F
//!   or U+2032–U+2037, else 2 (CJK, emoji, …). Emoji *sequences* follow
//!   X's documented rule that every emoji counts 2 "regardless of
//!   complexity" (twitter-text config v3, `emojiParsingEnabled`): a grapheme
//!   cluster made of several code points that is an emoji sequence (ZWJ
//!   sequences such as 👨‍👩‍👧‍👦, skin-tone modified emoji, flags made of two
//!   regional indicators, keycaps, emoji with U+FE0F, tag sequences) weighs
//!   exactly 2. A single-code-point grapheme is weighed by its range, so
//!   `©` (U+00A9) weighs 1 and `😀` weighs 2, as twitter-text does for
//!   characters without an emoji presentation selector. twitter-text
//!   recognises emoji with a regular expression generated from the emoji
//!   data; this module uses code-point ranges instead (see
//!   [`is_pictographic`]), which may disagree for rare or very new emoji.
//! - **Mastodon**: code points, with every link counted as the instance's
//!   URL weight (23 by default). Recent Mastodon servers count grapheme
//!   clusters; code points are never fewer, so this never over-admits.
//! - **Bluesky**: extended grapheme clusters (limit 300) and UTF-8 bytes
//!   (limit 3000), counted on the text as given.

use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

use super::urls::find_urls;

/// X's limit on the weighted length of a post.
pub const X_MAX_WEIGHTED_LENGTH: usize = 280;
/// What every link counts on X (the length of a t.co link).
pub const X_URL_WEIGHT: usize = 23;
/// Mastodon's default post length limit (configurable per instance).
pub const MASTODON_DEFAULT_MAX_CHARS: usize = 500;
/// What every link counts on Mastodon by default (configurable per instance).
pub const MASTODON_DEFAULT_URL_WEIGHT: usize = 23;
/// Bluesky's limit in extended grapheme clusters.
pub const BLUESKY_MAX_GRAPHEMES: usize = 300;
/// Bluesky's limit in UTF-8 bytes.
pub const BLUESKY_MAX_BYTES: usize = 3000;

/// X weight of a single code point by the twitter-text v3 ranges.
fn x_code_point_weight(c: char) -> usize {
    match u32::from(c) {
        0x0000..=0x10FF | 0x2000..=0x200D | 0x2010..=0x201F | 0x2032..=0x2037 => 1,
        _ => 2,
    }
}

/// Whether `c` is (approximately) a pictographic emoji base: the emoji
/// blocks, dingbats, miscellaneous symbols and the few Latin-1/letterlike
/// symbols that have emoji forms.
pub fn is_pictographic(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00A9
            | 0x00AE
            | 0x203C
            | 0x2049
            | 0x2122
            | 0x2139
            | 0x2194..=0x21AA
            | 0x231A..=0x23FF
            | 0x24C2
            | 0x25AA..=0x25FE
            | 0x2600..=0x27BF
            | 0x2934..=0x2935
            | 0x2B05..=0x2B55
            | 0x3030
            | 0x303D
            | 0x3297
            | 0x3299
            | 0x1F000..=0x1FAFF
    )
}

fn is_regional_indicator(c: char) -> bool {
    matches!(u32::from(c), 0x1F1E6..=0x1F1FF)
}

/// Whether a grapheme cluster of several code points is an emoji sequence
/// that X counts as a single emoji.
fn is_emoji_sequence(grapheme: &str) -> bool {
    let mut chars = grapheme.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let rest: Vec<char> = chars.collect();
    if rest.is_empty() {
        return false;
    }
    let keycap_base = first.is_ascii_digit() || first == '#' || first == '*';
    if keycap_base {
        return rest.contains(&'\u{20E3}');
    }
    if !(is_pictographic(first) || is_regional_indicator(first)) {
        return false;
    }
    rest.iter().any(|&c| {
        matches!(
            u32::from(c),
            0xFE0F | 0x200D | 0x20E3 | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F
        ) || is_regional_indicator(c)
    })
}

/// X weight of text that contains no links.
fn x_weight_plain(text: &str) -> usize {
    text.graphemes(true)
        .map(|g| {
            if is_emoji_sequence(g) {
                2
            } else {
                g.chars().map(x_code_point_weight).sum()
            }
        })
        .sum()
}

/// Sum of `plain(…)` over the text between links plus `url_weight` per link.
fn with_links(text: &str, url_weight: usize, plain: impl Fn(&str) -> usize) -> usize {
    let mut total = 0;
    let mut pos = 0;
    for r in find_urls(text) {
        total += plain(text.get(pos..r.start).unwrap_or_default()) + url_weight;
        pos = r.end;
    }
    total + plain(text.get(pos..).unwrap_or_default())
}

/// Weighted length of `text` as X counts it (limit
/// [`X_MAX_WEIGHTED_LENGTH`]): NFC first, each link 23, then per-code-point
/// weights with emoji sequences at 2. See the module docs.
pub fn x_weighted_length(text: &str) -> usize {
    let nfc: String = text.nfc().collect();
    with_links(&nfc, X_URL_WEIGHT, x_weight_plain)
}

/// Length of `text` as Mastodon counts it: code points, with every link
/// counting `url_weight`.
pub fn mastodon_length(text: &str, url_weight: usize) -> usize {
    with_links(text, url_weight, |s| s.chars().count())
}

/// Number of extended grapheme clusters in `text` (Bluesky's length unit).
pub fn bluesky_graphemes(text: &str) -> usize {
    text.graphemes(true).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_weights_table() {
        let long_url = format!("https://example.com/{}", "a".repeat(200));
        let table: Vec<(String, usize)> = vec![
            (String::new(), 0),
            ("hello".into(), 5),
            ("Hyvää yötä".into(), 10),
            (long_url.clone(), 23),
            (format!("Lue lisää: {long_url}"), 11 + 23),
            (format!("{long_url} {long_url}"), 23 + 1 + 23),
            ("地震".into(), 4),
            ("避難してください".into(), 16),
            ("😀".into(), 2),
            ("🔥🔥".into(), 4),
            // Family ZWJ sequence: one emoji -> 2.
            ("👨‍👩‍👧‍👦".into(), 2),
            // Skin tone modifier, flag, keycap, emoji presentation selector.
            ("👍🏽".into(), 2),
            ("🇫🇮".into(), 2),
            ("1️⃣".into(), 2),
            ("❤️".into(), 2),
            // NFC: e + combining acute is é, weight 1 (2 code points before).
            ("e\u{0301}".into(), 1),
            ("cafe\u{0301}".into(), 4),
            // General punctuation ranges weigh 1; other symbols weigh 2.
            ("\u{2014}\u{2019}\u{2032}".into(), 3),
            ("\u{2026}".into(), 2),
            ("©".into(), 1),
        ];
        for (text, want) in table {
            assert_eq!(x_weighted_length(&text), want, "X weight of {text:?}");
        }
    }

    #[test]
    fn mastodon_counts_code_points_and_links() {
        assert_eq!(mastodon_length("hei", 23), 3);
        assert_eq!(mastodon_length("äöå 😀", 23), 5);
        let text = format!("Lue https://example.com/{}", "x".repeat(100));
        assert_eq!(mastodon_length(&text, 23), 4 + 23);
        assert_eq!(mastodon_length(&text, 10), 4 + 10);
        assert_eq!(mastodon_length("👨‍👩‍👧‍👦", 23), 7);
    }

    #[test]
    fn bluesky_counts_graphemes() {
        assert_eq!(bluesky_graphemes(""), 0);
        assert_eq!(bluesky_graphemes("äö"), 2);
        assert_eq!(bluesky_graphemes("a\u{0308}"), 1);
        assert_eq!(bluesky_graphemes("👨‍👩‍👧‍👦"), 1);
        assert_eq!("👨‍👩‍👧‍👦".len(), 25);
        assert_eq!(bluesky_graphemes("Hi 👨‍👩‍👧‍👦!"), 5);
        assert_eq!(bluesky_graphemes("🇫🇮🇸🇪"), 2);
    }
}
