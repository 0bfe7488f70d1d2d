//! Escaping text placed in HTML or SVG markup the server writes itself (pages, generated logos).

/// `text` safe inside an element or a quoted attribute: `& < > " '` become entities and control
/// characters (other than tab and newline) are dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_characters_become_entities_and_controls_go() {
        assert_eq!(
            super::escape("<a href=\"x\">Tom & Jerry's</a>\u{1b}[31m"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;[31m"
        );
    }
}
