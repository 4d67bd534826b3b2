//! Control characters in people's text. A title, a text or a name travels to terminals (the
//! CLI, `tail -f` of a log), email subjects and chat platforms; an ESC or a C1 control in it can
//! rewrite a terminal's screen, a CR or a VT can fold an email header. So input is refused
//! (never silently cleaned, which would publish something other than what was written) when it
//! holds any control character — C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F) — other
//! than the line breaks and tabs a multi-line text may have. The error names the character and
//! its position, so the writer can find it.

use super::DomainError;

/// The short name of a control character, when it has a well-known one.
fn control_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\0' => "NUL",
        '\u{7}' => "BEL",
        '\u{8}' => "BS",
        '\t' => "TAB",
        '\n' => "LF",
        '\u{b}' => "VT",
        '\u{c}' => "FF",
        '\r' => "CR",
        '\u{1b}' => "ESC",
        '\u{7f}' => "DEL",
        '\u{85}' => "NEL",
        '\u{9b}' => "CSI",
        _ => return None,
    })
}

fn refuse(field: &'static str, c: char, position: usize, hint: &str) -> DomainError {
    let name = control_name(c)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    DomainError::invalid(
        field,
        format!(
            "contains the control character U+{:04X}{name} at character {position}; remove it ({hint})",
            c as u32
        ),
    )
}

/// Refuses any control character in one-line text (titles, subjects, names). Positions count
/// characters from 1.
pub fn check_line(field: &'static str, s: &str) -> Result<(), DomainError> {
    match s.chars().enumerate().find(|(_, c)| c.is_control()) {
        Some((i, c)) => Err(refuse(
            field,
            c,
            i + 1,
            "this field is one line of printable text",
        )),
        None => Ok(()),
    }
}

/// Refuses control characters in multi-line text other than line feeds and tabs. CR LF and a
/// lone CR are line breaks written by other systems: they become LF first (see [`normalize_breaks`]).
pub fn check_text(field: &'static str, s: &str) -> Result<(), DomainError> {
    match s
        .chars()
        .enumerate()
        .find(|&(_, c)| c.is_control() && c != '\n' && c != '\t')
    {
        Some((i, c)) => Err(refuse(
            field,
            c,
            i + 1,
            "a text may hold printable characters, line breaks and tabs",
        )),
        None => Ok(()),
    }
}

/// For text from machines that cannot correct it (monitoring alerts: a refusal would only make
/// Alertmanager retry the same payload forever): every control character not in `keep` becomes
/// U+FFFD, visibly marking where one was instead of passing it on.
pub fn replace_controls<'a>(s: &'a str, keep: &[char]) -> std::borrow::Cow<'a, str> {
    if !s.chars().any(|c| c.is_control() && !keep.contains(&c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    s.chars()
        .map(|c| {
            if c.is_control() && !keep.contains(&c) {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect::<String>()
        .into()
}

/// CR LF and lone CR become LF, so a text pasted from any system has one kind of line break.
pub fn normalize_breaks(s: &str) -> String {
    if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_refuse_every_control_character_with_its_name_and_position() {
        let e = check_line("title", "Down\u{1b}[2J")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "title: contains the control character U+001B (ESC) at character 5; remove it (this field is one line of printable text)"
        );
        for c in [
            '\u{7}', '\u{b}', '\u{7f}', '\u{9b}', '\u{80}', '\t', '\n', '\0',
        ] {
            assert!(check_line("title", &format!("a{c}b")).is_err(), "{c:?}");
        }
        let e = check_line("subject", "x\u{85}").unwrap_err().to_string();
        assert!(e.contains("U+0085 (NEL) at character 2"), "{e}");
        assert!(check_line("title", "Häiriö – kassat ✓").is_ok());
    }

    #[test]
    fn texts_keep_line_breaks_and_tabs() {
        assert!(check_text("body", "line 1\n\tline 2").is_ok());
        let e = check_text("body", "ok\n\u{7}").unwrap_err().to_string();
        assert!(e.contains("U+0007 (BEL) at character 4"), "{e}");
        assert!(check_text("body", "a\rb").is_err());
        assert_eq!(normalize_breaks("a\r\nb\rc\n"), "a\nb\nc\n");
    }

    #[test]
    fn machine_text_has_its_controls_marked() {
        assert_eq!(
            replace_controls("a\u{1b}[31mb\n\tc\u{9b}", &['\n']),
            "a\u{fffd}[31mb\n\u{fffd}c\u{fffd}"
        );
        assert!(matches!(
            replace_controls("plain\nline", &['\n']),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
