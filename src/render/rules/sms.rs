//! SMS encoding, length and segmentation rules.
//!
//! Why this exists: an SMS is billed and delivered per *segment*, and how many
//! segments a text needs depends on which alphabet it can be sent in. Crier
//! must know this before sending so that a crisis update never silently turns
//! into five billed messages, or arrives cut in the middle of a character.
//!
//! Rules implemented (3GPP TS 23.038 / TS 23.040):
//! - If every character is in the GSM 7-bit default alphabet (basic set or
//!   extension table) the message is GSM-7: basic characters cost 1 septet,
//!   extension characters (`^ { } \ [ ~ ] | €` and form feed) cost 2 septets
//!   (an escape plus the character).
//! - Otherwise the whole message is UCS-2 and costs one unit per UTF-16 code
//!   unit (a character outside the BMP, e.g. most emoji, costs 2).
//! - A single-segment message holds 160 septets (GSM-7) or 70 UTF-16 units
//!   (UCS-2). A longer message is concatenated and every segment holds 153
//!   septets or 67 units (the rest is the concatenation header).
//! - When splitting, an extension character's two septets never straddle a
//!   segment boundary and a UTF-16 surrogate pair never straddles one; the
//!   segment is closed early instead, which can cost an extra segment.
//!
//! The text is measured exactly as given: no Unicode normalisation is applied,
//! so a decomposed `a` + U+0308 is *not* GSM-7 even though the composed `ä`
//! is. Callers that want the cheaper encoding should NFC-normalise first.

/// Septets in a single, non-concatenated GSM-7 message.
pub const GSM7_SINGLE_SEPTETS: usize = 160;
/// Septets per segment of a concatenated GSM-7 message.
pub const GSM7_CONCAT_SEPTETS: usize = 153;
/// UTF-16 code units in a single, non-concatenated UCS-2 message.
pub const UCS2_SINGLE_UNITS: usize = 70;
/// UTF-16 code units per segment of a concatenated UCS-2 message.
pub const UCS2_CONCAT_UNITS: usize = 67;

/// The alphabet an SMS is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsEncoding {
    /// GSM 7-bit default alphabet; lengths are in septets.
    Gsm7,
    /// UCS-2 (in practice UTF-16); lengths are in UTF-16 code units.
    Ucs2,
}

impl SmsEncoding {
    /// The conventional name of the encoding: `"GSM-7"` or `"UCS-2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "GSM-7",
            SmsEncoding::Ucs2 => "UCS-2",
        }
    }

    /// The name of the unit lengths are counted in for this encoding.
    pub fn unit_name(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "septets",
            SmsEncoding::Ucs2 => "UTF-16 units",
        }
    }

    fn single_capacity(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => GSM7_SINGLE_SEPTETS,
            SmsEncoding::Ucs2 => UCS2_SINGLE_UNITS,
        }
    }

    fn concat_capacity(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => GSM7_CONCAT_SEPTETS,
            SmsEncoding::Ucs2 => UCS2_CONCAT_UNITS,
        }
    }

    /// How many units `max_segments` segments can hold in this encoding,
    /// ignoring the no-straddle rule (which can only lower it). A
    /// `max_segments` of 0 is treated as 1.
    pub fn capacity(self, max_segments: usize) -> usize {
        let n = max_segments.max(1);
        if n == 1 {
            self.single_capacity()
        } else {
            // Saturating: a channel file may name an absurd cap, which must not overflow.
            n.saturating_mul(self.concat_capacity())
        }
    }
}

impl std::fmt::Display for SmsEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Encoding, length and segment count of an SMS text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsInfo {
    /// The alphabet the text must be sent in.
    pub encoding: SmsEncoding,
    /// Length in septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Number of segments the text is delivered (and billed) as. An empty
    /// text still counts as 1 segment, as an empty SMS is one message.
    pub segments: usize,
}

/// Whether `c` is in the GSM-7 basic character set (LF and CR included, the
/// escape code itself excluded as it is not user text).
fn is_gsm7_basic(c: char) -> bool {
    matches!(
        c,
        '@' | '£' | '$' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | '\n' | 'Ø' | 'ø' | '\r'
            | 'Å' | 'å' | 'Δ' | '_' | 'Φ' | 'Γ' | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ'
            | 'Æ' | 'æ' | 'ß' | 'É' | ' ' | '!' | '"' | '#' | '¤' | '%' | '&' | '\''
            | '(' | ')' | '*' | '+' | ',' | '-' | '.' | '/' | '0'..='9' | ':' | ';' | '<'
            | '=' | '>' | '?' | '¡' | 'A'..='Z' | 'Ä' | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿'
            | 'a'..='z' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à'
    )
}

/// Whether `c` is in the GSM-7 extension table (costs 2 septets).
fn is_gsm7_extension(c: char) -> bool {
    matches!(
        c,
        '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' | '\u{000C}'
    )
}

/// Septets `c` costs in GSM-7, or `None` if it is not representable.
fn gsm7_septets(c: char) -> Option<usize> {
    if is_gsm7_basic(c) {
        Some(1)
    } else if is_gsm7_extension(c) {
        Some(2)
    } else {
        None
    }
}

/// Whether the whole text can be sent in the GSM-7 alphabet (basic set plus
/// extension table). The empty text is GSM-7.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_septets(c).is_some())
}

/// The encoding `text` must be sent in.
pub fn sms_encoding(text: &str) -> SmsEncoding {
    if is_gsm7(text) {
        SmsEncoding::Gsm7
    } else {
        SmsEncoding::Ucs2
    }
}

/// Cost of one character in the given encoding's unit.
fn char_units(c: char, encoding: SmsEncoding) -> usize {
    match encoding {
        // Not reachable for non-GSM chars (the encoding would be UCS-2), but
        // fall back to the UTF-16 cost rather than panic.
        SmsEncoding::Gsm7 => gsm7_septets(c).unwrap_or_else(|| c.len_utf16()),
        SmsEncoding::Ucs2 => c.len_utf16(),
    }
}

/// Byte offsets in `text` where each segment *ends* (the last is
/// `text.len()`), following the no-straddle rule. Never empty.
fn segment_ends(text: &str, encoding: SmsEncoding) -> Vec<usize> {
    let total: usize = text.chars().map(|c| char_units(c, encoding)).sum();
    if total <= encoding.single_capacity() {
        return vec![text.len()];
    }
    let cap = encoding.concat_capacity();
    let mut ends = Vec::new();
    let mut used = 0usize;
    for (i, c) in text.char_indices() {
        let cost = char_units(c, encoding);
        if used + cost > cap {
            ends.push(i);
            used = 0;
        }
        used += cost;
    }
    ends.push(text.len());
    ends
}

/// Encoding, length in units and number of segments of `text`.
///
/// An empty text is `Gsm7`, 0 units, 1 segment.
pub fn sms_info(text: &str) -> SmsInfo {
    let encoding = sms_encoding(text);
    let units = text.chars().map(|c| char_units(c, encoding)).sum();
    SmsInfo {
        encoding,
        units,
        segments: segment_ends(text, encoding).len(),
    }
}

/// The text of each segment the message is delivered as, in order. Their
/// concatenation is exactly `text`. A text that fits a single SMS (including
/// the empty text) yields one segment.
pub fn sms_segments_text(text: &str) -> Vec<String> {
    let encoding = sms_encoding(text);
    let mut start = 0usize;
    let mut out = Vec::new();
    for end in segment_ends(text, encoding) {
        out.push(text.get(start..end).unwrap_or_default().to_owned());
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str, enc: SmsEncoding) -> usize {
        s.chars().map(|c| char_units(c, enc)).sum()
    }

    #[test]
    fn encoding_and_segment_table() {
        let a160 = "a".repeat(160);
        let a161 = "a".repeat(161);
        let a306 = "a".repeat(306);
        let a307 = "a".repeat(307);
        let u70 = "Ж".repeat(70);
        let u71 = "Ж".repeat(71);
        let e35 = "😀".repeat(35);
        let e36 = "😀".repeat(36);
        // (text, encoding, units, segments)
        let table: Vec<(&str, SmsEncoding, usize, usize)> = vec![
            ("", SmsEncoding::Gsm7, 0, 1),
            ("Hyvää päivää", SmsEncoding::Gsm7, 12, 1),
            ("Tulva Åbossa, älä mene rantaan!", SmsEncoding::Gsm7, 31, 1),
            (
                "Översvämning i Åbo – undvik stranden",
                SmsEncoding::Ucs2,
                36,
                1,
            ),
            (
                "Översvämning i Åbo - undvik stranden",
                SmsEncoding::Gsm7,
                36,
                1,
            ),
            ("ÄÖÅäöå", SmsEncoding::Gsm7, 6, 1),
            ("Maksu 5€", SmsEncoding::Gsm7, 9, 1),
            ("€", SmsEncoding::Gsm7, 2, 1),
            ("[x]{y}|~^\\", SmsEncoding::Gsm7, 18, 1),
            ("Hi 😀", SmsEncoding::Ucs2, 5, 1),
            ("😀", SmsEncoding::Ucs2, 2, 1),
            ("Ša", SmsEncoding::Ucs2, 2, 1),
            (&a160, SmsEncoding::Gsm7, 160, 1),
            (&a161, SmsEncoding::Gsm7, 161, 2),
            (&a306, SmsEncoding::Gsm7, 306, 2),
            (&a307, SmsEncoding::Gsm7, 307, 3),
            (&u70, SmsEncoding::Ucs2, 70, 1),
            (&u71, SmsEncoding::Ucs2, 71, 2),
            (&e35, SmsEncoding::Ucs2, 70, 1),
            (&e36, SmsEncoding::Ucs2, 72, 2),
        ];
        for (text, enc, u, seg) in table {
            let info = sms_info(text);
            assert_eq!(info.encoding, enc, "encoding of {text:?}");
            assert_eq!(info.units, u, "units of {text:?}");
            assert_eq!(info.segments, seg, "segments of {text:?}");
            assert_eq!(is_gsm7(text), enc == SmsEncoding::Gsm7);
            let segs = sms_segments_text(text);
            assert_eq!(segs.len(), seg);
            assert_eq!(segs.concat(), text);
        }
    }

    #[test]
    fn encoding_names() {
        assert_eq!(SmsEncoding::Gsm7.as_str(), "GSM-7");
        assert_eq!(SmsEncoding::Ucs2.as_str(), "UCS-2");
        assert_eq!(SmsEncoding::Ucs2.to_string(), "UCS-2");
    }

    #[test]
    fn euro_counts_two_septets_and_fills_single_segment() {
        // 79 basic + 1 euro... 158 + 2 = 160 fits one segment exactly.
        let text = format!("{}€", "a".repeat(158));
        assert_eq!(sms_info(&text).units, 160);
        assert_eq!(sms_info(&text).segments, 1);
        let text = format!("{}€", "a".repeat(159));
        assert_eq!(sms_info(&text).units, 161);
        assert_eq!(sms_info(&text).segments, 2);
    }

    #[test]
    fn extension_char_does_not_straddle_boundary() {
        // 152 septets then a euro: 154 septets would straddle the 153 boundary,
        // so the euro starts segment 2.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let segs = sms_segments_text(&text);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0], "a".repeat(152));
        assert!(segs[1].starts_with('€'));
        assert_eq!(units(&segs[0], SmsEncoding::Gsm7), 152);

        // 306 septets that would fit in exactly two segments if the euro could
        // straddle, but need three because it cannot.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(152));
        let info = sms_info(&text);
        assert_eq!(info.units, 306);
        assert_eq!(info.segments, 3);
        // Control: same length with the euro moved off the boundary.
        let text = format!("€{}", "a".repeat(304));
        assert_eq!(sms_info(&text).units, 306);
        assert_eq!(sms_info(&text).segments, 2);
    }

    #[test]
    fn surrogate_pair_does_not_straddle_boundary() {
        // 66 UCS-2 units then an emoji (2 units) would straddle the 67 boundary.
        let text = format!("{}😀{}", "Ж".repeat(66), "Ж".repeat(5));
        let segs = sms_segments_text(&text);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0], "Ж".repeat(66));
        assert!(segs[1].starts_with('😀'));
        for s in &segs {
            assert!(units(s, SmsEncoding::Ucs2) <= UCS2_CONCAT_UNITS);
        }
    }

    #[test]
    fn segments_respect_capacity() {
        let text = "Kokoontukaa koululle € heti. ".repeat(30);
        let segs = sms_segments_text(&text);
        assert_eq!(segs.len(), sms_info(&text).segments);
        for s in &segs {
            assert!(units(s, SmsEncoding::Gsm7) <= GSM7_CONCAT_SEPTETS);
        }
        assert_eq!(segs.concat(), text);
    }

    #[test]
    fn capacity_per_segment_count() {
        assert_eq!(SmsEncoding::Gsm7.capacity(0), 160);
        assert_eq!(SmsEncoding::Gsm7.capacity(1), 160);
        assert_eq!(SmsEncoding::Gsm7.capacity(3), 459);
        assert_eq!(SmsEncoding::Ucs2.capacity(1), 70);
        assert_eq!(SmsEncoding::Ucs2.capacity(2), 134);
    }
}
