//! Finding links in status-update text, and Bluesky link facets.
//!
//! Why this exists: several channels count a link at a fixed weight (X and
//! Mastodon count every URL as 23 characters) and Bluesky only makes a link
//! clickable when the post carries a *facet* with the link's UTF-8 byte
//! range. Splitting and shortening must also never cut through a link. All of
//! that needs one shared, predictable notion of "where the links are".
//!
//! Detection rules (deliberately simple and documented, not a full URL
//! grammar):
//! - A link starts with `http://` or `https://` (ASCII case-insensitive).
//! - The scheme must be at the start of the text or follow a character that
//!   is not alphanumeric (so `xhttps://…` is not a link, `(https://…` is).
//! - The first character after `://` must be alphanumeric or `[` (IPv6).
//! - The link runs until whitespace, a control character, or one of `<>"`.
//! - Trailing characters that usually end the sentence rather than the link
//!   are then stripped, repeatedly: `. , ; : ! ? ' * …` and closing quotes
//!   `” ’ »`, and a closing `)` `]` `}` only when the link has more closers
//!   than openers of that kind (so `https://en.wikipedia.org/wiki/Foo_(bar)`
//!   keeps its `)` while `(see https://example.com)` does not take it).
//! - Bare domains without a scheme (`example.com`) are *not* detected; X
//!   would count those as links too, so such text measures longer here than
//!   on X, never shorter.

use std::ops::Range;

/// A Bluesky rich-text link facet: the UTF-8 byte range of a link in the post
/// text (`byte_end` exclusive) and the link target.
///
/// Serialises as `{"index": {"byteStart": byte_start, "byteEnd": byte_end},
/// "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Facet {
    /// Byte offset of the first byte of the link in the UTF-8 text.
    pub byte_start: usize,
    /// Byte offset one past the last byte of the link (exclusive).
    pub byte_end: usize,
    /// The link target, exactly as written in the text.
    pub uri: String,
}

impl Facet {
    /// The `$type` of the facet feature Bluesky expects for links.
    pub const LINK_TYPE: &'static str = "app.bsky.richtext.facet#link";
}

fn ends_link(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"')
}

fn is_trailing_punct(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*' | '…' | '”' | '’' | '»'
    )
}

/// Length in bytes of the link candidate `s` after stripping trailing
/// punctuation and unbalanced closers.
fn trimmed_len(s: &str) -> usize {
    let mut end = s.len();
    loop {
        let cur = s.get(..end).unwrap_or_default();
        let Some(last) = cur.chars().next_back() else {
            return end;
        };
        let strip = if is_trailing_punct(last) {
            true
        } else {
            let opener = match last {
                ')' => Some('('),
                ']' => Some('['),
                '}' => Some('{'),
                _ => None,
            };
            match opener {
                Some(open) => {
                    let opens = cur.chars().filter(|&c| c == open).count();
                    let closes = cur.chars().filter(|&c| c == last).count();
                    closes > opens
                }
                None => false,
            }
        };
        if !strip {
            return end;
        }
        end -= last.len_utf8();
    }
}

/// If a link's scheme starts at byte `i` of `text`, the byte length of the
/// scheme including `://`.
fn scheme_len_at(text: &str, i: usize) -> Option<usize> {
    let rest = text.as_bytes().get(i..)?;
    for scheme in [&b"https://"[..], &b"http://"[..]] {
        if rest.len() >= scheme.len() && rest[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(scheme.len());
        }
    }
    None
}

/// Byte ranges of the `http://` and `https://` links in `text`, in order and
/// non-overlapping. See the module docs for the exact rules.
pub fn find_urls(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    let mut skip_until = 0usize;
    for (i, c) in text.char_indices() {
        let before = prev;
        prev = Some(c);
        if i < skip_until || !(c == 'h' || c == 'H') {
            continue;
        }
        if before.is_some_and(|p| p.is_alphanumeric()) {
            continue;
        }
        let Some(scheme_len) = scheme_len_at(text, i) else {
            continue;
        };
        let host_start = i + scheme_len;
        let tail = text.get(host_start..).unwrap_or_default();
        match tail.chars().next() {
            Some(first) if first.is_alphanumeric() || first == '[' => {}
            _ => continue,
        }
        let raw_len = tail.find(ends_link).unwrap_or(tail.len());
        let candidate = text.get(i..host_start + raw_len).unwrap_or_default();
        let len = trimmed_len(candidate);
        if len <= scheme_len {
            continue;
        }
        out.push(i..i + len);
        skip_until = i + len;
    }
    out
}

/// Bluesky link facets for every link [`find_urls`] finds in `text`, with
/// UTF-8 byte offsets into `text` exactly as given (Bluesky indexes the
/// UTF-8 encoding of the post text, so do not normalise between computing
/// facets and posting).
pub fn bluesky_link_facets(text: &str) -> Vec<Facet> {
    find_urls(text)
        .into_iter()
        .map(|r| Facet {
            byte_start: r.start,
            byte_end: r.end,
            uri: text.get(r).unwrap_or_default().to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> Vec<&str> {
        find_urls(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn finds_and_trims_links() {
        let table: Vec<(&str, Vec<&str>)> = vec![
            ("no links here", vec![]),
            ("see https://example.com", vec!["https://example.com"]),
            ("see https://example.com.", vec!["https://example.com"]),
            ("(https://example.com/a)", vec!["https://example.com/a"]),
            (
                "https://en.wikipedia.org/wiki/Foo_(bar), ok",
                vec!["https://en.wikipedia.org/wiki/Foo_(bar)"],
            ),
            (
                "a http://a.fi/x?y=1&z=2! b HTTPS://B.FI",
                vec!["http://a.fi/x?y=1&z=2", "HTTPS://B.FI"],
            ),
            ("xhttps://example.com", vec![]),
            ("https:// nothing", vec![]),
            ("https://. dot", vec![]),
            ("\"https://q.fi/p\"", vec!["https://q.fi/p"]),
            (
                "https://fi.wikipedia.org/wiki/Hämeenlinna…",
                vec!["https://fi.wikipedia.org/wiki/Hämeenlinna"],
            ),
            (
                "https://a.fi\nhttps://b.fi",
                vec!["https://a.fi", "https://b.fi"],
            ),
        ];
        for (text, want) in table {
            assert_eq!(urls(text), want, "links in {text:?}");
        }
    }

    #[test]
    fn facets_use_utf8_byte_offsets() {
        // "ä" is 2 bytes, "😀" is 4 bytes, so the link starts at
        // 2 ("ä") + 1 (" ") + 4 ("😀") + 1 (" ") = byte 8, and
        // "https://bsky.app" is 16 bytes, so it ends at 24.
        let text = "ä 😀 https://bsky.app ok";
        let facets = bluesky_link_facets(text);
        assert_eq!(
            facets,
            vec![Facet {
                byte_start: 8,
                byte_end: 24,
                uri: "https://bsky.app".to_owned()
            }]
        );
        assert_eq!(&text.as_bytes()[8..24], b"https://bsky.app");
        // Code-point offsets would be wrong: the link starts at char 4.
        assert_eq!(text[..8].chars().count(), 4);
        assert_eq!(Facet::LINK_TYPE, "app.bsky.richtext.facet#link");
    }

    #[test]
    fn facets_for_several_links() {
        // "Tulva! 👨‍👩‍👧 " : "Tulva!" 6 bytes, space 1, family emoji
        // 4+3+4+3+4 = 18 bytes, space 1 -> link at 26; 18 bytes long -> 44.
        // Then " ja " 4 bytes -> second link at 48, "http://ä.fi/ö" is
        // 7 + 2 + 3 + 1 + 2 = 15 bytes -> ends at 63; "." is stripped.
        let text = "Tulva! 👨‍👩‍👧 https://crier.fi/a ja http://ä.fi/ö.";
        let facets = bluesky_link_facets(text);
        assert_eq!(facets.len(), 2);
        assert_eq!((facets[0].byte_start, facets[0].byte_end), (26, 44));
        assert_eq!((facets[1].byte_start, facets[1].byte_end), (48, 63));
        assert_eq!(&text.as_bytes()[26..44], b"https://crier.fi/a");
        assert_eq!(&text.as_bytes()[48..63], "http://ä.fi/ö".as_bytes());
        assert_eq!(facets[1].uri, "http://ä.fi/ö");
    }
}
