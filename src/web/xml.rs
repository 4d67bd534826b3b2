//! Writing XML by hand, correctly: escaping of text and attribute values, and the removal of
//! characters XML 1.0 cannot carry at all (control characters other than tab and line breaks,
//! U+FFFE, U+FFFF), which an update stored before crier refused control characters may hold.
//! The feeds and CAP alerts are small fixed shapes, so a writer of a few lines is all they need.

/// True when XML 1.0 allows `c` in a document (the `Char` production).
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// `s` escaped for XML text or a double-quoted attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars().filter(|c| allowed(*c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Line breaks in attribute values would be normalised to spaces by a parser.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` escaped as HTML text (for the HTML a feed entry carries, which is then escaped again as
/// XML text), line breaks as `<br>`.
pub fn html_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars().filter(|c| allowed(*c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `<name>escaped text</name>`.
pub fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_carry() {
        assert_eq!(
            escape("a<b>&\"c'\u{7}\u{1b}d\u{FFFF}\te\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;d\te\n"
        );
        assert_eq!(
            html_text("<script>x & y</script>\nnext"),
            "&lt;script&gt;x &amp; y&lt;/script&gt;<br>next"
        );
        // Escaped twice: the HTML's own `&lt;` survives as text in the XML.
        assert_eq!(escape(&html_text("<b>")), "&amp;lt;b&amp;gt;");
        let mut s = String::new();
        element(&mut s, "title", "R&D <down>");
        assert_eq!(s, "<title>R&amp;D &lt;down&gt;</title>\n");
    }
}
