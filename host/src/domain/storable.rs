//! What text the store accepts, decided once for both backends: no NUL character anywhere.
//! PostgreSQL refuses one in `text` and `jsonb` (SQLite would keep it), so the API refuses it at
//! the edge and a pull fails the one CRM record that carries one, on either backend alike.

use serde_json::Value;

/// Where the first NUL character is in a JSON value (a key or a string), as a JSON-pointer-like
/// path (`records[3].fields.name`), or `None`.
pub fn nul_position(value: &Value) -> Option<String> {
    // Iterative: a body nested as deep as the parser allows must not grow the stack again here.
    let mut pending: Vec<(String, &Value)> = vec![(String::new(), value)];
    while let Some((at, value)) = pending.pop() {
        match value {
            Value::String(s) if s.contains('\0') => return Some(display_path(&at)),
            Value::Array(items) => {
                pending.extend(items.iter().enumerate().map(|(i, v)| (format!("{at}[{i}]"), v)));
            }
            Value::Object(map) => {
                for (key, v) in map {
                    let here = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                    if key.contains('\0') {
                        return Some(display_path(&here));
                    }
                    pending.push((here, v));
                }
            }
            _ => {}
        }
    }
    None
}

fn display_path(at: &str) -> String {
    let printable: String = at.chars().map(|c| if c.is_control() { '?' } else { c }).take(200).collect();
    if printable.is_empty() { "the body".to_owned() } else { printable }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn nul_characters_are_found_in_keys_and_values_at_any_depth() {
        assert_eq!(nul_position(&json!({"a": [1, {"b": "x\u{0}y"}]})).unwrap(), "a[1].b");
        assert_eq!(nul_position(&json!({"ok": {"k\u{0}": 1}})).unwrap(), "ok.k?");
        assert_eq!(nul_position(&json!("\u{0}")).unwrap(), "the body");
        assert_eq!(nul_position(&json!({"a": ["text", 1, null, {"b": "\\u0000 as text"}]})), None);
    }
}
