//! Logging and tracing set-up: `RUST_LOG` filters (default `info`), `CRMHOST_LOG_FORMAT=json` for
//! machine-readable lines. In the text format every field is escaped: a request can carry CR, LF
//! or terminal escapes (an OAuth callback's `error=`), and one log line must stay one line that
//! no client wrote.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;

/// Installs the global subscriber once; later calls are no-ops (tests call it repeatedly).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CRMHOST_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    let _ = if json {
        // JSON strings escape control characters by themselves.
        builder.json().try_init()
    } else {
        builder.fmt_fields(text_fields()).try_init()
    };
}

/// The field formatter of the text format: `name=value` pairs, the message bare, every value's
/// control characters escaped.
pub fn text_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = escape_controls(&format!("{value:?}"));
        if field.name() == "message" { writer.write_str(&text) } else { write!(writer, "{field}={text}") }
    })
    .delimited(" ")
}

/// What a caught panic said (its `&str` or `String` payload), for the log only.
pub fn panic_detail(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// `text` with every control character written as an escape (`\r`, `\n`, `\u{1b}`).
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("access_denied\r\nFAKE LOG LINE"), "access_denied\\r\\nFAKE LOG LINE");
        assert_eq!(escape_controls("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape_controls("plain é text"), "plain é text");
    }
}
