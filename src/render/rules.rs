//! Per-channel length rules for crier's rendered status updates.
//!
//! Why this exists: every channel crier broadcasts to (SMS, X, Mastodon,
//! Bluesky, Telegram, Discord, Slack, email) has its own length limit and its
//! own idea of what a "character" is. Rendering must know, before anything is
//! sent, whether an update fits a channel, and if it does not, turn it into
//! something that does (a numbered thread, or one shortened post with a
//! link) without ever cutting a word, a link or a character in half.
//!
//! Everything here is a pure function of the text; nothing is sent or
//! configured. Submodules:
//! - `sms`: GSM-7 / UCS-2 detection and segmentation,
//! - `urls`: link detection and Bluesky link facets,
//! - `weights`: X, Mastodon and Bluesky length counting,
//! - `fit`: the overflow policies (thread, shorten, reject).

mod fit;
mod sms;
mod urls;
mod weights;

pub use fit::{fit, shorten_body, FitError, OverflowPolicy};
pub use sms::{
    is_gsm7, sms_encoding, sms_info, sms_segments_text, SmsEncoding, SmsInfo, GSM7_CONCAT_SEPTETS,
    GSM7_SINGLE_SEPTETS, UCS2_CONCAT_UNITS, UCS2_SINGLE_UNITS,
};
pub use urls::{bluesky_link_facets, find_urls, Facet};
pub use weights::{
    bluesky_graphemes, is_pictographic, mastodon_length, x_weighted_length, BLUESKY_MAX_BYTES,
    BLUESKY_MAX_GRAPHEMES, MASTODON_DEFAULT_MAX_CHARS, MASTODON_DEFAULT_URL_WEIGHT,
    X_MAX_WEIGHTED_LENGTH, X_URL_WEIGHT,
};

/// Telegram's message length limit in characters.
pub const TELEGRAM_MAX_CHARS: usize = 4096;
/// Discord's message length limit in characters.
pub const DISCORD_MAX_CHARS: usize = 2000;
/// Slack's message length limit in characters.
pub const SLACK_MAX_CHARS: usize = 40000;

/// The kind of channel and the parameters of its length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// SMS: the text may take at most `max_segments` segments (0 is treated
    /// as 1). Lengths are in GSM-7 septets or UTF-16 units.
    Sms {
        /// Most segments one message may be delivered as.
        max_segments: usize,
    },
    /// X (Twitter): weighted length at most 280.
    X,
    /// Mastodon: at most `max_chars` code points, links counting
    /// `url_weight` each.
    Mastodon {
        /// The instance's post length limit (500 by default).
        max_chars: usize,
        /// What one link counts (23 by default).
        url_weight: usize,
    },
    /// Bluesky: at most 300 grapheme clusters and 3000 UTF-8 bytes.
    Bluesky,
    /// Telegram: at most 4096 code points.
    Telegram,
    /// Discord: at most 2000 code points.
    Discord,
    /// Slack: at most 40000 code points.
    Slack,
    /// Email: no limit.
    Email,
}

/// A channel kind's length rule: measures text in the channel's own unit and
/// tells whether it fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelRule {
    /// Which channel kind, with its limit parameters.
    pub limit: Limit,
}

impl From<Limit> for ChannelRule {
    fn from(limit: Limit) -> Self {
        ChannelRule { limit }
    }
}

impl ChannelRule {
    /// A rule for the given limit.
    pub const fn new(limit: Limit) -> Self {
        ChannelRule { limit }
    }

    /// SMS allowing at most `max_segments` segments per message.
    pub const fn sms(max_segments: usize) -> Self {
        Self::new(Limit::Sms { max_segments })
    }

    /// X with its 280 weighted-character limit.
    pub const fn x() -> Self {
        Self::new(Limit::X)
    }

    /// Mastodon with the default limit (500 characters, links count 23).
    pub const fn mastodon() -> Self {
        Self::new(Limit::Mastodon {
            max_chars: MASTODON_DEFAULT_MAX_CHARS,
            url_weight: MASTODON_DEFAULT_URL_WEIGHT,
        })
    }

    /// Bluesky (300 graphemes and 3000 bytes).
    pub const fn bluesky() -> Self {
        Self::new(Limit::Bluesky)
    }

    /// Telegram (4096 characters).
    pub const fn telegram() -> Self {
        Self::new(Limit::Telegram)
    }

    /// Discord (2000 characters).
    pub const fn discord() -> Self {
        Self::new(Limit::Discord)
    }

    /// Slack (40000 characters).
    pub const fn slack() -> Self {
        Self::new(Limit::Slack)
    }

    /// Email (unlimited).
    pub const fn email() -> Self {
        Self::new(Limit::Email)
    }

    /// Short lowercase name of the channel kind, for messages: `"sms"`,
    /// `"x"`, `"mastodon"`, `"bluesky"`, `"telegram"`, `"discord"`,
    /// `"slack"` or `"email"`.
    pub fn name(&self) -> &'static str {
        match self.limit {
            Limit::Sms { .. } => "sms",
            Limit::X => "x",
            Limit::Mastodon { .. } => "mastodon",
            Limit::Bluesky => "bluesky",
            Limit::Telegram => "telegram",
            Limit::Discord => "discord",
            Limit::Slack => "slack",
            Limit::Email => "email",
        }
    }

    /// The unit [`measure`](Self::measure) counts in for `text` (for SMS it
    /// depends on the text's encoding).
    pub fn unit_for(&self, text: &str) -> &'static str {
        match self.limit {
            Limit::Sms { .. } => sms_encoding(text).unit_name(),
            Limit::X => "weighted characters",
            Limit::Bluesky => "graphemes",
            Limit::Mastodon { .. }
            | Limit::Telegram
            | Limit::Discord
            | Limit::Slack
            | Limit::Email => "characters",
        }
    }

    /// Length of `text` in the channel's own unit: septets (GSM-7) or UTF-16
    /// units (UCS-2) for SMS, weighted length for X, code points with links
    /// at the URL weight for Mastodon, grapheme clusters for Bluesky (whose
    /// byte limit [`fits`](Self::fits) checks as well), and code points for
    /// Telegram, Discord, Slack and email.
    pub fn measure(&self, text: &str) -> usize {
        match self.limit {
            Limit::Sms { .. } => sms_info(text).units,
            Limit::X => x_weighted_length(text),
            Limit::Mastodon { url_weight, .. } => mastodon_length(text, url_weight),
            Limit::Bluesky => bluesky_graphemes(text),
            Limit::Telegram | Limit::Discord | Limit::Slack | Limit::Email => text.chars().count(),
        }
    }

    /// The limit in the unit of [`measure`](Self::measure), or `None` when
    /// unlimited (email).
    ///
    /// For SMS the capacity depends on the encoding; this returns the GSM-7
    /// septet capacity of `max_segments` segments (160, or 153 per segment).
    /// Use [`limit_for`](Self::limit_for) for the text's actual encoding.
    /// For Bluesky this is the grapheme limit; the 3000-byte limit applies
    /// too. [`fits`](Self::fits) is authoritative in every case.
    pub fn limit(&self) -> Option<usize> {
        match self.limit {
            Limit::Sms { max_segments } => Some(SmsEncoding::Gsm7.capacity(max_segments)),
            _ => self.limit_for(""),
        }
    }

    /// Like [`limit`](Self::limit), but for SMS in the unit of `text`'s own
    /// encoding (septets for GSM-7, UTF-16 units for UCS-2).
    pub fn limit_for(&self, text: &str) -> Option<usize> {
        match self.limit {
            Limit::Sms { max_segments } => Some(sms_encoding(text).capacity(max_segments)),
            Limit::X => Some(X_MAX_WEIGHTED_LENGTH),
            Limit::Mastodon { max_chars, .. } => Some(max_chars),
            Limit::Bluesky => Some(BLUESKY_MAX_GRAPHEMES),
            Limit::Telegram => Some(TELEGRAM_MAX_CHARS),
            Limit::Discord => Some(DISCORD_MAX_CHARS),
            Limit::Slack => Some(SLACK_MAX_CHARS),
            Limit::Email => None,
        }
    }

    /// Whether `text` can be sent as one message on this channel. For SMS
    /// this counts real segments (so the no-straddle rule is honoured); for
    /// Bluesky both the grapheme and the byte limit must hold.
    pub fn fits(&self, text: &str) -> bool {
        match self.limit {
            Limit::Sms { max_segments } => sms_info(text).segments <= max_segments.max(1),
            Limit::Bluesky => {
                text.len() <= BLUESKY_MAX_BYTES && bluesky_graphemes(text) <= BLUESKY_MAX_GRAPHEMES
            }
            _ => match self.limit_for(text) {
                Some(max) => self.measure(text) <= max,
                None => true,
            },
        }
    }

    /// `(length, limit, unit)` describing how `text` compares with the
    /// limit, in the terms most useful to a person: SMS in segments (with the
    /// encoding), Bluesky in bytes when the byte limit is the one exceeded.
    fn describe(&self, text: &str) -> (usize, usize, String) {
        match self.limit {
            Limit::Sms { max_segments } => {
                let info = sms_info(text);
                (
                    info.segments,
                    max_segments.max(1),
                    format!(
                        "SMS segments ({}, {} {})",
                        info.encoding,
                        info.units,
                        info.encoding.unit_name()
                    ),
                )
            }
            Limit::Bluesky if text.len() > BLUESKY_MAX_BYTES => {
                (text.len(), BLUESKY_MAX_BYTES, "UTF-8 bytes".to_owned())
            }
            _ => (
                self.measure(text),
                self.limit_for(text).unwrap_or(usize::MAX),
                self.unit_for(text).to_owned(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_fits_and_limit_per_channel() {
        let url = format!("https://example.com/{}", "p".repeat(60));
        let emoji = "👨‍👩‍👧‍👦";
        let text = format!("Hätä {emoji} {url}");
        // (rule, measure, limit, fits)
        let table: Vec<(ChannelRule, usize, Option<usize>, bool)> = vec![
            (ChannelRule::sms(1), 4 + 1 + 11 + 1 + 80, Some(160), false),
            (ChannelRule::sms(3), 4 + 1 + 11 + 1 + 80, Some(459), true),
            (ChannelRule::x(), 4 + 1 + 2 + 1 + 23, Some(280), true),
            (ChannelRule::mastodon(), 4 + 1 + 7 + 1 + 23, Some(500), true),
            (ChannelRule::bluesky(), 4 + 1 + 1 + 1 + 80, Some(300), true),
            (
                ChannelRule::telegram(),
                4 + 1 + 7 + 1 + 80,
                Some(4096),
                true,
            ),
            (ChannelRule::discord(), 4 + 1 + 7 + 1 + 80, Some(2000), true),
            (ChannelRule::slack(), 4 + 1 + 7 + 1 + 80, Some(40000), true),
            (ChannelRule::email(), 4 + 1 + 7 + 1 + 80, None, true),
        ];
        for (rule, measure, limit, fits) in table {
            assert_eq!(rule.measure(&text), measure, "measure on {}", rule.name());
            assert_eq!(rule.limit(), limit, "limit on {}", rule.name());
            assert_eq!(rule.fits(&text), fits, "fits on {}", rule.name());
        }
    }

    #[test]
    fn sms_limit_for_depends_on_encoding() {
        let rule = ChannelRule::sms(2);
        assert_eq!(rule.limit_for("hei"), Some(306));
        assert_eq!(rule.limit_for("hei 😀"), Some(134));
        assert_eq!(ChannelRule::sms(0).limit_for("x"), Some(160));
        assert!(ChannelRule::sms(0).fits(&"a".repeat(160)));
        assert!(!ChannelRule::sms(0).fits(&"a".repeat(161)));
        assert_eq!(ChannelRule::sms(1).unit_for("😀"), "UTF-16 units");
    }

    #[test]
    fn bluesky_byte_limit_applies() {
        // 300 graphemes of 25 bytes each: grapheme limit holds, bytes do not.
        let text = "👨‍👩‍👧‍👦".repeat(300);
        assert_eq!(ChannelRule::bluesky().measure(&text), 300);
        assert!(!ChannelRule::bluesky().fits(&text));
        assert!(ChannelRule::bluesky().fits(&"ä".repeat(300)));
        assert!(!ChannelRule::bluesky().fits(&"a".repeat(301)));
    }

    #[test]
    fn mastodon_custom_limits() {
        let rule = ChannelRule::new(Limit::Mastodon {
            max_chars: 30,
            url_weight: 10,
        });
        let text = format!("abc https://example.com/{}", "z".repeat(50));
        assert_eq!(rule.measure(&text), 14);
        assert!(rule.fits(&text));
        assert_eq!(rule.limit(), Some(30));
    }
}
