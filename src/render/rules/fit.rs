//! Making a too-long status update fit a channel: thread, shorten or reject.
//!
//! Why this exists: a crisis update is written once but broadcast to
//! channels with very different limits. When it does not fit, the channel's
//! configured policy decides what happens, and whatever is produced must be
//! accepted by the provider (every part fits) and must still say what the
//! author wrote (no word, link or character cut in half).
//!
//! # Splitting model
//!
//! The text is seen as a sequence of *units*: extended grapheme clusters,
//! except that all graphemes of one link (see [`find_urls`]) form a single
//! unit. A unit is *whitespace* when every character of it is whitespace.
//! Runs of non-whitespace units are *words*; runs of whitespace units are
//! *gaps*. Text is only ever cut at unit boundaries, so never inside a
//! grapheme or a link.
//!
//! # What `Thread` preserves
//!
//! If the text fits it is returned unchanged as the only part, with no
//! marker. Otherwise each part is a contiguous slice of the original text
//! followed by the marker `" (i/n)"`, and:
//! - every part, marker included, [`fits`](ChannelRule::fits);
//! - parts end at gaps whenever possible; the whole gap at a split point is
//!   dropped (it is not repeated at the end or start of a part), as is any
//!   whitespace at the very start and end of the text;
//! - all whitespace *inside* a part is kept byte for byte (newlines too);
//! - a word too long for a part on its own is cut between graphemes with
//!   nothing dropped; a link is never cut, and a link that does not fit a
//!   part on its own is a [`FitError::UrlTooLong`].
//!
//! So with the markers removed, the original text equals
//! `ws0 + part1 + gap1 + part2 + gap2 + … + partN + wsN` where `ws0`/`wsN`
//! are the leading/trailing whitespace and each `gap` is the (possibly
//! empty, for a word cut between graphemes) whitespace dropped at that
//! split point. Concatenating the parts therefore reproduces the original's
//! graphemes with only whitespace graphemes missing.
//!
//! Among the word boundaries where a part could end, the latest one is used,
//! except that a paragraph break (a gap with two or more newlines), then a
//! line break, then a sentence end (`.`, `!`, `?`, `…` and CJK equivalents,
//! optionally followed by closing quotes or brackets) is preferred when
//! ending there still keeps the part at least half as long (in bytes).

use std::fmt;
use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

use super::{find_urls, is_gsm7, ChannelRule, Limit};

/// Part numbers are tried with up to this many digits (999 999 parts).
const MAX_MARKER_DIGITS: usize = 6;

/// What to do with a text that does not fit a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OverflowPolicy {
    /// Split into numbered parts, each ending with `" (i/n)"`, each fitting
    /// the channel (for SMS: separate messages of at most `max_segments`
    /// segments each). See the module docs for what is preserved.
    Thread,
    /// Cut at a word boundary and append `"… "` plus the link (or only `"…"`
    /// when `link` is `None` or blank), giving exactly one message that
    /// fits. On SMS, when the text and link are GSM-7, three full stops
    /// `"..."` are used instead of `"…"` (which is not in GSM-7 and would
    /// force the far shorter UCS-2 limit). If the first word alone does not
    /// fit next to the ending, it is cut between graphemes (never inside a
    /// link).
    Shorten {
        /// Where the full text can be read, appended after the ellipsis.
        link: Option<String>,
    },
    /// Refuse: a text that does not fit is an error.
    Reject,
}

impl OverflowPolicy {
    /// The policy's configuration name: `"thread"`, `"shorten"` or
    /// `"reject"`.
    pub fn name(&self) -> &'static str {
        match self {
            OverflowPolicy::Thread => "thread",
            OverflowPolicy::Shorten { .. } => "shorten",
            OverflowPolicy::Reject => "reject",
        }
    }
}

/// Why a text could not be made to fit a channel. Every message says what
/// the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FitError {
    /// The text is too long and the policy is `Reject`.
    TooLong {
        /// Channel kind name (see [`ChannelRule::name`]).
        channel: &'static str,
        /// Length of the text, in `unit`.
        length: usize,
        /// The channel's limit, in `unit`.
        limit: usize,
        /// What is counted.
        unit: String,
    },
    /// `Thread`: a link does not fit into a part even on its own with its
    /// marker, and links are never split.
    UrlTooLong {
        /// Channel kind name.
        channel: &'static str,
        /// The link.
        url: String,
        /// Length of the link plus marker, in `unit`.
        length: usize,
        /// The channel's limit, in `unit`.
        limit: usize,
        /// What is counted.
        unit: String,
    },
    /// `Thread`: a single grapheme does not fit into a part on its own with
    /// its marker.
    Unsplittable {
        /// Channel kind name.
        channel: &'static str,
        /// The grapheme.
        piece: String,
        /// Length of the grapheme plus marker, in `unit`.
        length: usize,
        /// The channel's limit, in `unit`.
        limit: usize,
        /// What is counted.
        unit: String,
    },
    /// `Shorten`: the appended ending (ellipsis and link) leaves no room for
    /// even the first grapheme or link of the text.
    NoRoomForText {
        /// Channel kind name.
        channel: &'static str,
        /// The ending that was to be appended.
        ending: String,
        /// Length of the first unit of text plus the ending, in `unit`.
        length: usize,
        /// The channel's limit, in `unit`.
        limit: usize,
        /// What is counted.
        unit: String,
    },
    /// The text is too long but consists only of whitespace.
    Blank {
        /// Channel kind name.
        channel: &'static str,
        /// Length of the text, in `unit`.
        length: usize,
        /// The channel's limit, in `unit`.
        limit: usize,
        /// What is counted.
        unit: String,
    },
    /// `Thread` would need more than 999 999 parts.
    TooManyParts {
        /// Channel kind name.
        channel: &'static str,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::TooLong {
                channel,
                length,
                limit,
                unit,
            } => write!(
                f,
                "message is {length} of {limit} {unit} on {channel} and the channel's policy \
                 is reject; shorten the text or set policy = \"thread\""
            ),
            FitError::UrlTooLong {
                channel,
                url,
                length,
                limit,
                unit,
            } => write!(
                f,
                "link {url} with its part marker is {length} of {limit} {unit} on {channel}; \
                 links are never split, so use a shorter link or set policy = \"shorten\""
            ),
            FitError::Unsplittable {
                channel,
                piece,
                length,
                limit,
                unit,
            } => write!(
                f,
                "the character {piece:?} with its part marker is {length} of {limit} {unit} \
                 on {channel} and cannot be split further; remove it or raise the channel's \
                 limit"
            ),
            FitError::NoRoomForText {
                channel,
                ending,
                length,
                limit,
                unit,
            } => write!(
                f,
                "the ending {ending:?} with the text's first character or link is \
                 {length} of {limit} {unit} on {channel}, leaving no room for the text; \
                 use a shorter link or set policy = \"thread\""
            ),
            FitError::Blank {
                channel,
                length,
                limit,
                unit,
            } => write!(
                f,
                "message is {length} of {limit} {unit} on {channel} but is only whitespace; \
                 write some text or remove the whitespace"
            ),
            FitError::TooManyParts { channel } => write!(
                f,
                "message would need more than 999999 parts on {channel}; shorten the text or \
                 set policy = \"shorten\""
            ),
        }
    }
}

impl std::error::Error for FitError {}

/// Make `text` fit `rule` according to `policy`.
///
/// A text that already fits is returned unchanged as the only element,
/// whatever the policy. Otherwise:
/// - `Thread` returns two or more numbered parts (or one unmarked part if
///   only surrounding whitespace made it too long); see the module docs for
///   what is preserved;
/// - `Shorten` returns exactly one part;
/// - `Reject` returns [`FitError::TooLong`].
pub fn fit(
    rule: &ChannelRule,
    text: &str,
    policy: &OverflowPolicy,
) -> Result<Vec<String>, FitError> {
    if rule.fits(text) {
        return Ok(vec![text.to_owned()]);
    }
    match policy {
        OverflowPolicy::Reject => {
            let (length, limit, unit) = rule.describe(text);
            Err(FitError::TooLong {
                channel: rule.name(),
                length,
                limit,
                unit,
            })
        }
        OverflowPolicy::Thread => thread(rule, text),
        OverflowPolicy::Shorten { link } => {
            let link = link.as_deref().map(str::trim).filter(|l| !l.is_empty());
            shorten(rule, text, link)
        }
    }
}

/// A cut-free piece of the text: one grapheme, or all graphemes of a link.
#[derive(Debug, Clone)]
struct Unit {
    range: Range<usize>,
    ws: bool,
    url: bool,
}

/// Split `text` into units (see the module docs).
fn units(text: &str) -> Vec<Unit> {
    let urls = find_urls(text);
    let mut out: Vec<Unit> = Vec::new();
    let mut u = 0usize;
    for (start, g) in text.grapheme_indices(true) {
        let end = start + g.len();
        while urls.get(u).is_some_and(|r| r.end <= start) {
            u += 1;
        }
        let url = urls.get(u).filter(|r| r.start < end);
        if let Some(r) = url {
            if let Some(last) = out.last_mut() {
                if last.url && last.range.end > r.start {
                    last.range.end = end;
                    continue;
                }
            }
            out.push(Unit {
                range: start..end,
                ws: false,
                url: true,
            });
        } else {
            out.push(Unit {
                range: start..end,
                ws: g.chars().all(char::is_whitespace),
                url: false,
            });
        }
    }
    out
}

/// Index of the first non-whitespace unit at or after `i` (or `units.len()`).
fn skip_ws(units: &[Unit], mut i: usize) -> usize {
    while units.get(i).is_some_and(|u| u.ws) {
        i += 1;
    }
    i
}

/// Exclusive unit indices at which a word ends.
fn word_ends(units: &[Unit]) -> Vec<usize> {
    (1..=units.len())
        .filter(|&e| !units[e - 1].ws && units.get(e).is_none_or(|next| next.ws))
        .collect()
}

/// Largest `j < len` with `pred(j)`, assuming `pred` holds for a prefix of
/// `0..len`. Only ever returns an index for which `pred` was evaluated true.
fn last_true(len: usize, mut pred: impl FnMut(usize) -> bool) -> Option<usize> {
    if len == 0 || !pred(0) {
        return None;
    }
    let (mut lo, mut hi) = (0usize, len);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

fn slice(text: &str, r: Range<usize>) -> &str {
    text.get(r).unwrap_or_default()
}

fn marker(i: usize, n: &str) -> String {
    format!(" ({i}/{n})")
}

/// How good a split point the word ending at unit index `e` is: 3 for a
/// paragraph break, 2 for a line break, 1 for a sentence end, else 0.
fn break_score(text: &str, units: &[Unit], e: usize) -> u8 {
    let word_end = units[e - 1].range.end;
    let next = skip_ws(units, e);
    let gap_end = units.get(next).map_or(text.len(), |u| u.range.start);
    let newlines = slice(text, word_end..gap_end).matches('\n').count();
    if newlines >= 2 {
        return 3;
    }
    if newlines == 1 {
        return 2;
    }
    let before = slice(text, 0..word_end)
        .trim_end_matches(['"', '\'', ')', ']', '”', '’', '»', '」', '』', '）']);
    if before.ends_with(['.', '!', '?', '…', '。', '！', '？']) {
        1
    } else {
        0
    }
}

/// Among `cands[..=j]` (word ends whose part fits), the one to end the part
/// at, preferring paragraph, line and sentence breaks that keep at least
/// half of the longest possible part.
fn preferred_end(text: &str, units: &[Unit], cands: &[usize], j: usize, start: usize) -> usize {
    let full = units[cands[j] - 1].range.end - start;
    let mut best = j;
    let mut best_score = break_score(text, units, cands[j]);
    for c in (0..j).rev() {
        let len = units[cands[c] - 1].range.end - start;
        if len * 2 < full {
            break;
        }
        let score = break_score(text, units, cands[c]);
        if score > best_score {
            best = c;
            best_score = score;
        }
    }
    best
}

/// Byte ranges of the thread's parts, sized so that each fits with a marker
/// whose total is `placeholder` (digits only matter by count).
fn thread_ranges(
    rule: &ChannelRule,
    text: &str,
    units: &[Unit],
    placeholder: &str,
) -> Result<Vec<Range<usize>>, FitError> {
    let ends = word_ends(units);
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut i = skip_ws(units, 0);
    while i < units.len() {
        let mk = marker(out.len() + 1, placeholder);
        let start = units[i].range.start;
        let fits_to = |e: usize| {
            let mut part = slice(text, start..units[e - 1].range.end).to_owned();
            part.push_str(&mk);
            rule.fits(&part)
        };
        let cands = &ends[ends.partition_point(|&e| e <= i)..];
        let whole = last_true(cands.len(), |j| fits_to(cands[j]));
        if let Some(j) = whole {
            let mut e = cands[j];
            if j + 1 < cands.len() {
                let p = cands[preferred_end(text, units, cands, j, start)];
                if p != e && fits_to(p) {
                    e = p;
                }
            }
            out.push(start..units[e - 1].range.end);
            i = skip_ws(units, e);
            continue;
        }
        // Not even the rest of the current word fits: cut it between units.
        let word_end = cands.first().copied().unwrap_or(units.len());
        let inner: Vec<usize> = (i + 1..word_end).collect();
        match last_true(inner.len(), |j| fits_to(inner[j])) {
            Some(j) => {
                let e = inner[j];
                out.push(start..units[e - 1].range.end);
                i = e;
            }
            None => return Err(unit_error(rule, text, &units[i], &mk)),
        }
    }
    Ok(out)
}

fn unit_error(rule: &ChannelRule, text: &str, unit: &Unit, mk: &str) -> FitError {
    let piece = slice(text, unit.range.clone()).to_owned();
    let (length, limit, unit_name) = rule.describe(&format!("{piece}{mk}"));
    if unit.url {
        FitError::UrlTooLong {
            channel: rule.name(),
            url: piece,
            length,
            limit,
            unit: unit_name,
        }
    } else {
        FitError::Unsplittable {
            channel: rule.name(),
            piece,
            length,
            limit,
            unit: unit_name,
        }
    }
}

fn blank_error(rule: &ChannelRule, text: &str) -> FitError {
    let (length, limit, unit) = rule.describe(text);
    FitError::Blank {
        channel: rule.name(),
        length,
        limit,
        unit,
    }
}

fn thread(rule: &ChannelRule, text: &str) -> Result<Vec<String>, FitError> {
    let units = units(text);
    if units.iter().all(|u| u.ws) {
        return Err(blank_error(rule, text));
    }
    for digits in 1..=MAX_MARKER_DIGITS {
        let ranges = thread_ranges(rule, text, &units, &"9".repeat(digits))?;
        let n = ranges.len();
        if n.to_string().len() > digits {
            continue;
        }
        if n == 1 {
            // Only surrounding whitespace made the text too long.
            let only = slice(text, ranges[0].clone()).to_owned();
            if rule.fits(&only) {
                return Ok(vec![only]);
            }
        }
        let total = n.to_string();
        let parts: Vec<String> = ranges
            .into_iter()
            .enumerate()
            .map(|(k, r)| format!("{}{}", slice(text, r), marker(k + 1, &total)))
            .collect();
        if parts.iter().all(|p| rule.fits(p)) {
            return Ok(parts);
        }
    }
    Err(FitError::TooManyParts {
        channel: rule.name(),
    })
}

/// The ellipsis to use: `"..."` on SMS when everything else is GSM-7 (so the
/// ellipsis does not force UCS-2), `"…"` otherwise.
fn ellipsis(rule: &ChannelRule, text: &str, link: Option<&str>) -> &'static str {
    let gsm = matches!(rule.limit, Limit::Sms { .. }) && is_gsm7(text) && link.is_none_or(is_gsm7);
    if gsm {
        "..."
    } else {
        "…"
    }
}

fn shorten(rule: &ChannelRule, text: &str, link: Option<&str>) -> Result<Vec<String>, FitError> {
    let units = units(text);
    let i = skip_ws(&units, 0);
    let Some(first) = units.get(i) else {
        return Err(blank_error(rule, text));
    };
    let ell = ellipsis(rule, text, link);
    let ending = match link {
        Some(l) => format!("{ell} {l}"),
        None => ell.to_owned(),
    };
    let start = first.range.start;
    let with_ending = |e: usize| format!("{}{ending}", slice(text, start..units[e - 1].range.end));

    let ends = word_ends(&units);
    if let Some(&last) = ends.last() {
        // Only surrounding whitespace made the text too long.
        let trimmed = slice(text, start..units[last - 1].range.end);
        if rule.fits(trimmed) {
            return Ok(vec![trimmed.to_owned()]);
        }
    }
    if let Some(j) = last_true(ends.len(), |j| rule.fits(&with_ending(ends[j]))) {
        return Ok(vec![with_ending(ends[j])]);
    }
    let word_end = ends.first().copied().unwrap_or(units.len());
    let inner: Vec<usize> = (i + 1..word_end).collect();
    if let Some(j) = last_true(inner.len(), |j| rule.fits(&with_ending(inner[j]))) {
        return Ok(vec![with_ending(inner[j])]);
    }
    let (length, limit, unit) = rule.describe(&with_ending(i + 1));
    Err(FitError::NoRoomForText {
        channel: rule.name(),
        ending,
        length,
        limit,
        unit,
    })
}

/// Make a message that is `before + body + after` fit `rule` by shortening only
/// `body`: the frame around it (the headline before, the "next update" promise
/// and link after) is kept byte for byte.
///
/// A message that already fits is returned unchanged. Otherwise `body` is cut
/// at the latest word boundary that fits (a first word too long on its own is
/// cut between graphemes, never inside a link) and the marker `"…"` shows
/// where text was removed. When `link` is given and the frame does not
/// already contain it, `" "` and the link follow the marker, so a reader can
/// always find the rest. On SMS the three full stops `"..."` are used instead
/// of `"…"` when that keeps more of the body (it keeps the message GSM-7,
/// whose segments hold more than twice as much as UCS-2's).
///
/// Errors with [`FitError::NoRoomForText`] when the frame and marker leave no
/// room for even the body's first grapheme or link, and with
/// [`FitError::Blank`] when the body is only whitespace and the message does
/// not fit.
pub fn shorten_body(
    rule: &ChannelRule,
    before: &str,
    body: &str,
    after: &str,
    link: Option<&str>,
) -> Result<String, FitError> {
    let whole = format!("{before}{body}{after}");
    if rule.fits(&whole) {
        return Ok(whole);
    }
    let link = link
        .map(str::trim)
        .filter(|l| !l.is_empty() && !before.contains(l) && !after.contains(l));
    let units = units(body);
    let i = skip_ws(&units, 0);
    if units.get(i).is_none() {
        return Err(blank_error(rule, &whole));
    }
    let sms = matches!(rule.limit, Limit::Sms { .. });
    let ellipses: &[&str] = if sms { &["...", "…"] } else { &["…"] };
    let mut best: Option<(usize, String)> = None;
    let mut first_error = None;
    for ell in ellipses {
        let ending = match link {
            Some(l) => format!("{ell} {l}"),
            None => (*ell).to_owned(),
        };
        match cut_to_fit(rule, body, &units, i, |kept| {
            format!("{before}{kept}{ending}{after}")
        }) {
            Ok((kept_len, msg)) => {
                // More of the body wins; on a tie, the earlier (GSM-7) ellipsis.
                if best.as_ref().is_none_or(|(b, _)| kept_len > *b) {
                    best = Some((kept_len, msg));
                }
            }
            Err(length) => {
                first_error.get_or_insert((ending, length));
            }
        }
    }
    if let Some((_, msg)) = best {
        return Ok(msg);
    }
    let (ending, probe) = first_error.unwrap_or_default();
    let (length, limit, unit) = rule.describe(&probe);
    Err(FitError::NoRoomForText {
        channel: rule.name(),
        ending,
        length,
        limit,
        unit,
    })
}

/// The longest start of `body` (from unit `i`, at a word end if possible, else
/// between graphemes of the first word) for which `compose(kept)` fits:
/// `(bytes of body kept, message)`, or the smallest message tried when
/// nothing fits.
fn cut_to_fit(
    rule: &ChannelRule,
    body: &str,
    units: &[Unit],
    i: usize,
    compose: impl Fn(&str) -> String,
) -> Result<(usize, String), String> {
    let start = units[i].range.start;
    let at = |e: usize| compose(slice(body, start..units[e - 1].range.end));
    let ends: Vec<usize> = word_ends(units).into_iter().filter(|&e| e > i).collect();
    if let Some(j) = last_true(ends.len(), |j| rule.fits(&at(ends[j]))) {
        return Ok((units[ends[j] - 1].range.end - start, at(ends[j])));
    }
    let word_end = ends.first().copied().unwrap_or(units.len());
    let inner: Vec<usize> = (i + 1..word_end).collect();
    if let Some(j) = last_true(inner.len(), |j| rule.fits(&at(inner[j]))) {
        return Ok((units[inner[j] - 1].range.end - start, at(inner[j])));
    }
    Err(at(i + 1))
}

#[cfg(test)]
mod tests {
    use super::super::{find_urls, sms_info, sms_segments_text, SmsEncoding};
    use super::*;
    use proptest::prelude::*;

    fn is_ws_grapheme(g: &str) -> bool {
        g.chars().all(char::is_whitespace)
    }

    /// Strip the `" (i/n)"` markers, checking they are present and correct.
    fn strip_markers(parts: &[String]) -> Vec<String> {
        let n = parts.len();
        if n == 1 {
            return parts.to_vec();
        }
        parts
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let mk = format!(" ({}/{n})", k + 1);
                match p.strip_suffix(&mk) {
                    Some(body) => body.to_owned(),
                    None => panic!("part {p:?} lacks marker {mk:?}"),
                }
            })
            .collect()
    }

    fn grapheme_boundaries(text: &str) -> Vec<usize> {
        let mut b: Vec<usize> = text.grapheme_indices(true).map(|(i, _)| i).collect();
        b.push(text.len());
        b
    }

    /// Checks every promise `Thread` makes.
    fn check_thread(rule: &ChannelRule, text: &str, parts: &[String]) {
        assert!(!parts.is_empty());
        for p in parts {
            assert!(rule.fits(p), "part does not fit {}: {p:?}", rule.name());
        }
        if rule.fits(text) {
            assert_eq!(parts, [text.to_owned()]);
            return;
        }
        let bodies = strip_markers(parts);
        let bounds = grapheme_boundaries(text);
        // Walk the original: parts appear in order, separated only by
        // whitespace graphemes.
        let mut pos = 0usize;
        let mut ranges = Vec::new();
        let skip = |mut pos: usize| {
            while let Some(g) = text[pos..].graphemes(true).next() {
                if !is_ws_grapheme(g) {
                    break;
                }
                pos += g.len();
            }
            pos
        };
        for body in &bodies {
            assert!(!body.is_empty());
            pos = skip(pos);
            assert!(
                text[pos..].starts_with(body.as_str()),
                "part {body:?} not found at byte {pos} of {text:?}"
            );
            let r = pos..pos + body.len();
            assert!(bounds.contains(&r.start) && bounds.contains(&r.end));
            assert_eq!(
                body.graphemes(true).collect::<Vec<_>>(),
                text[r.clone()].graphemes(true).collect::<Vec<_>>()
            );
            pos = r.end;
            ranges.push(r);
        }
        assert_eq!(skip(pos), text.len(), "text left over after the last part");
        // Graphemes: only whitespace graphemes are missing.
        let orig: Vec<&str> = text
            .graphemes(true)
            .filter(|g| !is_ws_grapheme(g))
            .collect();
        let joined: Vec<&str> = bodies
            .iter()
            .flat_map(|b| b.graphemes(true))
            .filter(|g| !is_ws_grapheme(g))
            .collect();
        assert_eq!(orig, joined);
        // Links: each lies within exactly one part.
        for u in find_urls(text) {
            let holders = ranges
                .iter()
                .filter(|r| r.start <= u.start && u.end <= r.end)
                .count();
            assert_eq!(holders, 1, "link {:?} was split", &text[u]);
        }
    }

    /// Checks every promise `Shorten` makes.
    fn check_shorten(rule: &ChannelRule, text: &str, link: Option<&str>, parts: &[String]) {
        assert_eq!(parts.len(), 1);
        let part = &parts[0];
        assert!(rule.fits(part), "shortened text does not fit: {part:?}");
        if rule.fits(text) {
            assert_eq!(part, text);
            return;
        }
        // The kept text starts at the first grapheme that is not only
        // whitespace: a space followed by a combining mark or a ZWJ is one
        // grapheme with them, and is kept whole.
        let start = text
            .grapheme_indices(true)
            .find(|(_, g)| !is_ws_grapheme(g))
            .map_or(text.len(), |(i, _)| i);
        let endings: Vec<String> = ["…", "..."]
            .iter()
            .map(|e| match link {
                Some(l) => format!("{e} {l}"),
                None => (*e).to_owned(),
            })
            .collect();
        let body = endings
            .iter()
            .find_map(|e| part.strip_suffix(e.as_str()))
            .unwrap_or(part.as_str());
        assert!(text[start..].starts_with(body), "{body:?} is not a prefix");
        let end = start + body.len();
        assert!(grapheme_boundaries(text).contains(&end));
        for u in find_urls(text) {
            assert!(u.end <= end || u.start >= end, "link cut: {:?}", &text[u]);
        }
    }

    #[test]
    fn shorten_keeps_a_space_joined_to_a_zwj_as_one_grapheme() {
        // Found by `prop_small_limit_channels` in CI: the space before the ZWJ
        // is part of the ZWJ's grapheme, so the kept text starts at it.
        let text = "  \u{200d} https://aaaaa.fi/AaA_00AA https://aaaaaaaa.fi/A_0___a92V9_5tO_2U__ \
            https://bbbbbbbb.fi/B_0___b92V9_5tO_2U__ https://cccccccc.fi/C_0___c92V9_5tO_2U__ \
            Hätätiedote väestönsuojaan";
        for rule in small_rules() {
            check_all_policies(&rule, text);
        }
    }

    #[test]
    fn whitespace_only_text_too_long_for_a_channel_is_refused_as_blank() {
        // Found by `prop_large_limit_channels` (minimal input "\r\n " repeated).
        let text = "\r\n \n".repeat(700);
        check_all_policies(&ChannelRule::discord(), &text);
    }

    #[test]
    fn a_parenthesised_link_with_text_glued_to_it_is_one_unsplittable_link() {
        // Found by `prop_small_limit_channels`: the link runs on through the glued
        // word, is too long for one SMS with its marker, and threading refuses it
        // with the link named rather than splitting it.
        let text = format!("(https://a.fi/b_(c)){} x", "地".repeat(60));
        let err = fit(&ChannelRule::sms(1), &text, &OverflowPolicy::Thread).unwrap_err();
        assert!(matches!(err, FitError::UrlTooLong { .. }), "{err:?}");
    }

    const STORM: &str = "Myrskyvaroitus Uudellemaalle. Pysy sisällä, älä liiku rannoilla \
        ja seuraa viranomaisten ohjeita. Lisätietoja https://crier.example/fi/myrsky-2024 \
        sekä paikallisradiosta. Sähkökatkoja on odotettavissa koko yön ajan, joten lataa \
        puhelimesi ja varaa taskulamppu. Åbo/Turku: evakuointi alkaa klo 18. Kokoontumispaikka \
        on koulun pihalla 🏫. Hätänumero 112 on käytössä normaalisti. Seuraava tiedote \
        julkaistaan klo 20 🙏. Alueella asuvat: tarkistakaa naapurit! https://example.fi/naapuri";

    #[test]
    fn text_that_fits_is_returned_unchanged() {
        for policy in [
            OverflowPolicy::Thread,
            OverflowPolicy::Reject,
            OverflowPolicy::Shorten { link: None },
        ] {
            let out = fit(&ChannelRule::x(), "  Hei maailma \n", &policy);
            assert_eq!(out, Ok(vec!["  Hei maailma \n".to_owned()]));
        }
    }

    #[test]
    fn thread_on_x_numbers_parts() {
        let rule = ChannelRule::x();
        assert!(!rule.fits(STORM));
        let parts = fit(&rule, STORM, &OverflowPolicy::Thread).unwrap_or_default();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].ends_with(" (1/2)"));
        assert!(parts[1].ends_with(" (2/2)"));
        // The split lands at a sentence end.
        assert!(parts[0].ends_with(". (1/2)"), "{:?}", parts[0]);
        check_thread(&rule, STORM, &parts);
    }

    #[test]
    fn thread_on_sms_uses_separate_messages() {
        for (segments, text) in [
            (1, STORM.to_owned()),
            (2, STORM.to_owned()),
            (1, STORM.replace('🏫', "koulu")),
        ] {
            let rule = ChannelRule::sms(segments);
            let parts = fit(&rule, &text, &OverflowPolicy::Thread).unwrap_or_default();
            assert!(parts.len() > 1);
            for p in &parts {
                assert!(sms_info(p).segments <= segments);
            }
            check_thread(&rule, &text, &parts);
        }
        // Without the emoji every part is GSM-7 and holds up to 160 septets.
        let text = STORM.replace(['🏫', '🙏'], "!");
        let parts = fit(&ChannelRule::sms(1), &text, &OverflowPolicy::Thread).unwrap_or_default();
        for p in &parts {
            assert_eq!(sms_info(p).encoding, SmsEncoding::Gsm7);
        }
    }

    #[test]
    fn thread_prefers_paragraph_breaks() {
        let para1 = "Vesikatko Kalliossa. ".repeat(4);
        let para2 = "Jakelupiste on kirjaston edessä. ".repeat(4);
        let text = format!("{}\n\n{}", para1.trim_end(), para2.trim_end());
        let rule = ChannelRule::new(Limit::Mastodon {
            max_chars: 150,
            url_weight: 23,
        });
        let parts = fit(&rule, &text, &OverflowPolicy::Thread).unwrap_or_default();
        assert_eq!(
            parts[0],
            format!("{} (1/{})", para1.trim_end(), parts.len())
        );
        check_thread(&rule, &text, &parts);
    }

    #[test]
    fn thread_keeps_whitespace_inside_parts() {
        let text = format!("a  b\tc\nd {}", "sana ".repeat(40));
        let rule = ChannelRule::new(Limit::Mastodon {
            max_chars: 60,
            url_weight: 23,
        });
        let parts = fit(&rule, &text, &OverflowPolicy::Thread).unwrap_or_default();
        assert!(parts[0].starts_with("a  b\tc\nd sana"));
        check_thread(&rule, &text, &parts);
    }

    #[test]
    fn thread_splits_an_overlong_word_between_graphemes() {
        let word = "ä👍🏽e\u{301}".repeat(60);
        let rule = ChannelRule::sms(1);
        let parts = fit(&rule, &word, &OverflowPolicy::Thread).unwrap_or_default();
        assert!(parts.len() > 1);
        check_thread(&rule, &word, &parts);
    }

    #[test]
    fn thread_never_splits_a_link() {
        // 180 septets: more than one GSM-7 SMS even on its own.
        let url = format!("https://example.com/{}", "x".repeat(160));
        let text = format!("Lue lisää {url} nyt");
        let err = fit(&ChannelRule::sms(1), &text, &OverflowPolicy::Thread);
        let Err(FitError::UrlTooLong { url: got, .. }) = &err else {
            panic!("expected UrlTooLong, got {err:?}");
        };
        assert_eq!(got, &url);
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("links are never split"), "{msg}");
        // On X the same link counts 23 and fits easily.
        let parts =
            fit(&ChannelRule::x(), &text.repeat(20), &OverflowPolicy::Thread).unwrap_or_default();
        check_thread(&ChannelRule::x(), &text.repeat(20), &parts);
    }

    #[test]
    fn thread_with_only_surrounding_whitespace_too_long() {
        let text = format!("  hei{}", " ".repeat(200));
        let parts = fit(&ChannelRule::sms(1), &text, &OverflowPolicy::Thread);
        assert_eq!(parts, Ok(vec!["hei".to_owned()]));
        let blank = " ".repeat(200);
        let err = fit(&ChannelRule::sms(1), &blank, &OverflowPolicy::Thread);
        assert!(matches!(err, Err(FitError::Blank { .. })));
    }

    #[test]
    fn thread_with_many_parts_widens_markers() {
        let text = "sana ".repeat(400);
        let rule = ChannelRule::new(Limit::Mastodon {
            max_chars: 20,
            url_weight: 23,
        });
        let parts = fit(&rule, &text, &OverflowPolicy::Thread).unwrap_or_default();
        assert!(parts.len() >= 100);
        assert!(parts[0].ends_with(&format!(" (1/{})", parts.len())));
        check_thread(&rule, &text, &parts);
    }

    #[test]
    fn reject_explains_what_to_do() {
        let text = "a".repeat(412);
        let err = fit(&ChannelRule::x(), &text, &OverflowPolicy::Reject);
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            msg,
            "message is 412 of 280 weighted characters on x and the channel's policy is \
             reject; shorten the text or set policy = \"thread\""
        );
        let err = fit(
            &ChannelRule::sms(1),
            &"€".repeat(100),
            &OverflowPolicy::Reject,
        );
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            msg,
            "message is 2 of 1 SMS segments (GSM-7, 200 septets) on sms and the channel's \
             policy is reject; shorten the text or set policy = \"thread\""
        );
        let err = fit(
            &ChannelRule::bluesky(),
            &"😀".repeat(800),
            &OverflowPolicy::Reject,
        );
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.starts_with("message is 3200 of 3000 UTF-8 bytes on bluesky"),
            "{msg}"
        );
    }

    #[test]
    fn shorten_appends_ellipsis_and_link() {
        let link = "https://crier.example/t/42";
        let policy = OverflowPolicy::Shorten {
            link: Some(link.to_owned()),
        };
        let rule = ChannelRule::x();
        let parts = fit(&rule, STORM, &policy).unwrap_or_default();
        assert_eq!(parts.len(), 1);
        assert!(parts[0].ends_with(&format!("… {link}")), "{:?}", parts[0]);
        check_shorten(&rule, STORM, Some(link), &parts);
        // The cut is at a word boundary: the next character of the original
        // after the kept text is whitespace.
        let body = parts[0].trim_end_matches(&format!("… {link}")[..]);
        assert!(STORM[body.len()..].starts_with(char::is_whitespace));
    }

    #[test]
    fn shorten_without_link_on_sms_keeps_gsm7() {
        let text = STORM.replace(['🏫', '🙏'], "!");
        let rule = ChannelRule::sms(1);
        let policy = OverflowPolicy::Shorten { link: None };
        let parts = fit(&rule, &text, &policy).unwrap_or_default();
        assert!(parts[0].ends_with("..."));
        let info = sms_info(&parts[0]);
        assert_eq!(info.encoding, SmsEncoding::Gsm7);
        assert!(info.units > 140, "used only {} septets", info.units);
        check_shorten(&rule, &text, None, &parts);
        // With emoji the message is UCS-2 anyway and gets a real ellipsis.
        let parts = fit(&rule, STORM, &policy).unwrap_or_default();
        assert!(parts[0].ends_with('…'));
        check_shorten(&rule, STORM, None, &parts);
    }

    #[test]
    fn shorten_link_affects_sms_encoding() {
        let text = "Tulva! ".repeat(40);
        let rule = ChannelRule::sms(1);
        let gsm = fit(
            &rule,
            &text,
            &OverflowPolicy::Shorten {
                link: Some("https://a.fi/x".into()),
            },
        )
        .unwrap_or_default();
        let ucs = fit(
            &rule,
            &text,
            &OverflowPolicy::Shorten {
                link: Some("https://ä.fi/✓".into()),
            },
        )
        .unwrap_or_default();
        assert_eq!(sms_info(&gsm[0]).encoding, SmsEncoding::Gsm7);
        assert_eq!(sms_info(&ucs[0]).encoding, SmsEncoding::Ucs2);
        assert!(gsm[0].len() > ucs[0].len());
    }

    #[test]
    fn shorten_with_no_room_is_an_error() {
        // 160 septets of link: with "... " nothing else fits one SMS.
        let link = format!("https://example.com/{}", "ö".repeat(140));
        let policy = OverflowPolicy::Shorten { link: Some(link) };
        let err = fit(&ChannelRule::sms(1), &"sana ".repeat(50), &policy);
        assert!(
            matches!(err, Err(FitError::NoRoomForText { .. })),
            "{err:?}"
        );
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("use a shorter link"), "{msg}");
    }

    #[test]
    fn shorten_cuts_an_overlong_first_word() {
        let text = "ä".repeat(500);
        let rule = ChannelRule::x();
        let parts = fit(&rule, &text, &OverflowPolicy::Shorten { link: None }).unwrap_or_default();
        assert_eq!(parts, vec![format!("{}…", "ä".repeat(278))]);
    }

    #[test]
    fn shorten_body_keeps_the_frame() {
        let before = "Org: Update - Delays. ";
        let after = " Next update by 14:30 EET. https://s.example/i/1";
        let body = "Flights are delayed at gate 12 because of snow. ".repeat(10);
        let body = body.trim_end();
        let rule = ChannelRule::sms(1);
        let out = shorten_body(&rule, before, body, after, Some("https://s.example/i/1"))
            .unwrap_or_default();
        assert!(rule.fits(&out), "{out}");
        assert!(out.starts_with(&format!("{before}Flights")), "{out}");
        // The link is already in the frame: not repeated after the marker.
        assert!(out.ends_with(&format!("...{after}")), "{out}");
        assert_eq!(out.matches("https://").count(), 1, "{out}");
        // The kept text ends at a word: the original continues with a space.
        let kept = &out[before.len()..out.len() - after.len() - 3];
        assert!(body[kept.len()..].starts_with(' '), "{kept:?}");
        // A link the frame lacks follows the marker.
        let out = shorten_body(&rule, before, body, " Next.", Some("https://s.example/i/1"))
            .unwrap_or_default();
        assert!(out.ends_with("... https://s.example/i/1 Next."), "{out}");
        // Text that fits is not touched.
        assert_eq!(
            shorten_body(&rule, before, "Short.", after, None),
            Ok(format!("{before}Short.{after}"))
        );
        // On UCS-2 the one-unit ellipsis keeps more than three full stops.
        let body = "Σεισμός στην Αθήνα, μείνετε έξω. ".repeat(6);
        let out = shorten_body(&ChannelRule::sms(2), "", body.trim_end(), after, None)
            .unwrap_or_default();
        assert!(out.ends_with(&format!("…{after}")), "{out}");
        assert!(ChannelRule::sms(2).fits(&out));
        // A frame that leaves no room is an error that says so.
        let err = shorten_body(&rule, &"x".repeat(158), "more words", "", None);
        assert!(
            matches!(err, Err(FitError::NoRoomForText { .. })),
            "{err:?}"
        );
        let err = shorten_body(&rule, &"x".repeat(170), "   ", "", None);
        assert!(matches!(err, Err(FitError::Blank { .. })), "{err:?}");
    }

    #[test]
    fn policy_names() {
        assert_eq!(OverflowPolicy::Thread.name(), "thread");
        assert_eq!(OverflowPolicy::Shorten { link: None }.name(), "shorten");
        assert_eq!(OverflowPolicy::Reject.name(), "reject");
    }

    // ---- property tests ----

    fn piece() -> impl Strategy<Value = (String, bool)> {
        let fixed = prop::sample::select(vec![
            "Hätätiedote",
            "väestönsuojaan",
            "Åbo",
            "ÄÖÅ",
            "😀",
            "👨‍👩‍👧‍👦",
            "🇫🇮",
            "👍🏽",
            "1️⃣",
            "❤️",
            "€",
            "[info]",
            "地震",
            "避難",
            "e\u{301}",
            "\u{301}",
            ".",
            ",",
            "!",
            "?",
            "—",
            // Awkward grapheme cases: prepend, lone ZWJ, CRLF, Hangul jamo,
            // ideographic space, a link with parentheses.
            "\u{600}",
            "\u{200D}",
            "\r\n",
            "\u{1100}\u{1161}",
            "\u{3000}",
            "(https://a.fi/b_(c))",
        ]);
        prop_oneof![
            4 => "[a-zäöåÄÖÅ]{1,10}".prop_map(|s| (s, false)),
            // A fixed piece with a link in it is a link too: nothing is glued to it.
            3 => fixed.prop_map(|s| (s.to_owned(), s.contains("://"))),
            2 => "https://[a-z]{1,10}\\.fi/[a-zA-Z0-9_]{0,20}".prop_map(|s| (s, true)),
            1 => "[a-zäö]{30,90}".prop_map(|s| (s, false)),
        ]
    }

    fn separator() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![" ", " ", " ", "", "  ", "\n", "\n\n", "\t", " \n "])
    }

    fn text_strategy(max_pieces: usize) -> impl Strategy<Value = String> {
        prop::collection::vec((piece(), separator()), 1..max_pieces).prop_map(|items| {
            let mut s = String::new();
            for ((p, is_url), sep) in items {
                s.push_str(&p);
                // Nothing may be glued to the end of a link, so links stay
                // short enough to fit every channel's parts.
                s.push_str(if is_url && sep.is_empty() { " " } else { sep });
            }
            s
        })
    }

    fn small_rules() -> Vec<ChannelRule> {
        vec![
            ChannelRule::sms(1),
            ChannelRule::sms(2),
            ChannelRule::sms(3),
            ChannelRule::x(),
            ChannelRule::mastodon(),
            ChannelRule::new(Limit::Mastodon {
                max_chars: 80,
                url_weight: 23,
            }),
            ChannelRule::bluesky(),
            ChannelRule::email(),
        ]
    }

    fn check_all_policies(rule: &ChannelRule, text: &str) {
        if !rule.fits(text) && text.graphemes(true).all(is_ws_grapheme) {
            // Only whitespace, too long: every policy says so, none sends it.
            for policy in [
                OverflowPolicy::Thread,
                OverflowPolicy::Shorten { link: None },
            ] {
                match fit(rule, text, &policy) {
                    Err(FitError::Blank { .. }) => {}
                    other => panic!("blank text on {}: {other:?}", rule.name()),
                }
            }
            let rejected = fit(rule, text, &OverflowPolicy::Reject);
            assert!(
                matches!(rejected, Err(FitError::TooLong { .. })),
                "{rejected:?}"
            );
            return;
        }
        let parts = fit(rule, text, &OverflowPolicy::Thread);
        match parts {
            Ok(parts) => check_thread(rule, text, &parts),
            Err(e) => panic!("thread failed on {}: {e}", rule.name()),
        }
        for link in [None, Some("https://crier.example/t/1")] {
            let policy = OverflowPolicy::Shorten {
                link: link.map(str::to_owned),
            };
            match fit(rule, text, &policy) {
                Ok(parts) => check_shorten(rule, text, link, &parts),
                Err(e) => panic!("shorten failed on {}: {e}", rule.name()),
            }
        }
        let rejected = fit(rule, text, &OverflowPolicy::Reject);
        assert_eq!(rejected.is_ok(), rule.fits(text));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn prop_small_limit_channels(text in text_strategy(160), which in 0usize..8) {
            let rule = small_rules()[which];
            check_all_policies(&rule, &text);
        }

        #[test]
        fn prop_shorten_body_keeps_frame(
            before in text_strategy(6),
            body in text_strategy(120),
            after in text_strategy(6),
            which in 0usize..8,
        ) {
            let rule = small_rules()[which];
            let link = "https://crier.example/t/1";
            match shorten_body(&rule, &before, &body, &after, Some(link)) {
                Ok(out) => {
                    prop_assert!(rule.fits(&out));
                    prop_assert!(out.starts_with(&before));
                    prop_assert!(out.ends_with(&after));
                    let whole = format!("{before}{body}{after}");
                    if out != whole {
                        let mid = &out[before.len()..out.len() - after.len()];
                        prop_assert!(mid.contains('…') || mid.contains("..."));
                        prop_assert!(mid.ends_with(link));
                    }
                }
                Err(FitError::NoRoomForText { .. } | FitError::Blank { .. }) => {}
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        #[test]
        fn prop_sms_segments_rejoin(text in text_strategy(80)) {
            let segs = sms_segments_text(&text);
            prop_assert_eq!(segs.concat(), text.clone());
            prop_assert_eq!(segs.len(), sms_info(&text).segments);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn prop_large_limit_channels(text in text_strategy(120), which in 0usize..3) {
            let rule = [ChannelRule::discord(), ChannelRule::telegram(), ChannelRule::slack()][which];
            let limit = rule.limit().unwrap_or(0);
            let mut big = text.clone();
            while big.chars().count() <= limit + limit / 3 {
                big.push_str(&text);
                big.push('\n');
            }
            check_all_policies(&rule, &big);
        }
    }

    /// From the fit fuzz target: a space joined to a ZWJ is one grapheme that is not
    /// whitespace, so it is text (never cut in half, never dropped as leading whitespace),
    /// although `str::trim` would cut its space.
    #[test]
    fn a_space_joined_to_a_zwj_is_kept_whole_as_text() {
        let text = format!("   \n \u{200d}\u{1f467}{}", " word".repeat(80));
        let rule = ChannelRule::x();
        let parts = fit(&rule, &text, &OverflowPolicy::Shorten { link: None }).unwrap();
        assert_eq!(parts.len(), 1);
        assert!(rule.fits(&parts[0]));
        assert!(
            parts[0].starts_with(" \u{200d}\u{1f467} word"),
            "{:?}",
            parts[0]
        );
        let parts = fit(&rule, &text, &OverflowPolicy::Thread).unwrap();
        check_thread(&rule, &text, &parts);
        assert!(
            parts[0].starts_with(" \u{200d}\u{1f467} word"),
            "{:?}",
            parts[0]
        );
    }
}
