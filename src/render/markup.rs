//! Chat markup: what a chat platform makes of the characters in a message, and how crier keeps
//! people's words (titles, texts, component names) from becoming markup there.
//!
//! Chat templates (`chat.<locale>.md.j2`) are written once, in Markdown (`**bold**`, `_italic_`).
//! Each platform gets them in its own dialect, and every value a template interpolates is
//! escaped for that dialect — one place per syntax, the way `.html.j2` templates escape HTML:
//!
//! - **Slack** (mrkdwn): `&`, `<` and `>` become `&amp;`, `&lt;`, `&gt;` — Slack's documented
//!   escaping — so `<!channel>`, `<@U123>` and `<https://evil|label>` in an update are shown as
//!   text, never as a mention or a disguised link. The template's own `**bold**` is translated
//!   to Slack's `*bold*` (in the template source, outside `{{ }}`/`{% %}`/`{# #}`), so Slack
//!   receives mrkdwn it renders, not literal asterisks.
//! - **Teams** (Adaptive Card `TextBlock`, a CommonMark subset with `[label](url)` links): the
//!   characters that start emphasis, links, code or HTML are backslash-escaped.
//! - Discord, Matrix and Telegram get the text as written: Discord's adapter disables every
//!   mention with `allowed_mentions`, the Matrix adapter sends an empty `m.mentions` (so `@room`
//!   in a body notifies nobody), and Telegram is sent without a parse mode.

use super::preview::Platform;
use std::borrow::Cow;

/// A chat platform's markup dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// The text goes out as the template renders it.
    AsWritten,
    /// Slack mrkdwn.
    Slack,
    /// Teams' Adaptive Card Markdown.
    Teams,
}

impl Markup {
    /// The dialects that have their own compiled template variants.
    pub const VARIANTS: [Markup; 2] = [Markup::Slack, Markup::Teams];

    /// The name prefix of this dialect's template variants (`slack:incident_opened/…`), and the
    /// name minijinja knows its escaping by.
    pub fn prefix(self) -> Option<&'static str> {
        match self {
            Markup::AsWritten => None,
            Markup::Slack => Some("slack"),
            Markup::Teams => Some("teams"),
        }
    }

    /// The dialect a template variant's prefix names.
    pub fn from_prefix(p: &str) -> Option<Markup> {
        Markup::VARIANTS.into_iter().find(|m| m.prefix() == Some(p))
    }

    /// A value interpolated into a template, escaped for this dialect.
    pub fn escape(self, s: &str) -> Cow<'_, str> {
        match self {
            Markup::AsWritten => Cow::Borrowed(s),
            Markup::Slack => escape_slack(s),
            Markup::Teams => escape_markdown(s),
        }
    }

    /// A template's source translated into this dialect.
    pub fn translate_source(self, source: &str) -> String {
        match self {
            Markup::Slack => outside_tags(source, |text| text.replace("**", "*")),
            Markup::AsWritten | Markup::Teams => source.to_owned(),
        }
    }
}

impl Platform {
    /// The markup dialect of this platform's messages.
    pub fn markup(self) -> Markup {
        match self {
            Platform::Slack => Markup::Slack,
            Platform::Teams => Markup::Teams,
            _ => Markup::AsWritten,
        }
    }
}

/// Slack's escaping: `&`, `<`, `>` as HTML entities (nothing else is decoded by Slack).
pub fn escape_slack(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The characters that start Markdown markup in a Teams card: emphasis, links, code, HTML.
const MARKDOWN_SPECIAL: [char; 8] = ['\\', '*', '_', '[', ']', '`', '<', '>'];

/// CommonMark backslash escapes for [`MARKDOWN_SPECIAL`].
pub fn escape_markdown(s: &str) -> Cow<'_, str> {
    if !s.contains(MARKDOWN_SPECIAL) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if MARKDOWN_SPECIAL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Applies `f` to the literal text of a template source, leaving `{{ … }}`, `{% … %}` and
/// `{# … #}` as they are. An unclosed tag is left alone (the compiler reports it).
fn outside_tags(source: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    loop {
        let open = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|o| rest.find(o).map(|i| (i, *o)))
            .min_by_key(|(i, _)| *i);
        let Some((i, o)) = open else {
            out.push_str(&f(rest));
            return out;
        };
        out.push_str(&f(&rest[..i]));
        let close = match o {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        match rest[i + 2..].find(close) {
            Some(j) => {
                let end = i + 2 + j + 2;
                out.push_str(&rest[i..end]);
                rest = &rest[end..];
            }
            None => {
                out.push_str(&rest[i..]);
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_escapes_its_three_characters() {
        assert_eq!(
            escape_slack("<!channel> <@U123> <https://evil.example|bank> a&b"),
            "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|bank&gt; a&amp;b"
        );
        assert!(matches!(escape_slack("plain *text*"), Cow::Borrowed(_)));
    }

    #[test]
    fn markdown_escapes_links_emphasis_and_html() {
        assert_eq!(
            escape_markdown("[bank](https://evil.example) **x** <at>all</at> a\\b"),
            "\\[bank\\](https://evil.example) \\*\\*x\\*\\* \\<at\\>all\\</at\\> a\\\\b"
        );
    }

    #[test]
    fn slack_source_translation_leaves_tags_alone() {
        let src = "**{% block h %}{% endblock %}: {{ a ** 2 }}** {# **note** #}_x_";
        assert_eq!(
            Markup::Slack.translate_source(src),
            "*{% block h %}{% endblock %}: {{ a ** 2 }}* {# **note** #}_x_"
        );
        assert_eq!(Markup::Slack.translate_source("**a {{ open"), "*a {{ open");
    }
}
