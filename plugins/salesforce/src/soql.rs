//! Writing SOQL safely: quoted string literals, date-time literals, and Salesforce's
//! `2024-01-15T10:30:00.000+0000` timestamps read back as RFC 3339.

/// A SOQL string literal: single quotes, with `\` and `'` escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A SOQL date-time literal (`2024-01-15T10:30:00.000Z`) for an RFC 3339 or Salesforce timestamp.
pub fn datetime_literal(value: &str) -> Option<String> {
    let parsed = parse(value)?;
    Some(parsed.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// A Salesforce or RFC 3339 timestamp as RFC 3339 UTC with milliseconds.
pub fn rfc3339(value: &str) -> Option<String> {
    Some(parse(value)?.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

fn parse(value: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(value)
        .or_else(|_| chrono::DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// Whether a field name is safe to splice into SOQL (letters, digits, `_`, `.`).
pub fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped_and_timestamps_normalised() {
        assert_eq!(quote("O'Brien\\x"), "'O\\'Brien\\\\x'");
        assert_eq!(datetime_literal("2024-01-15T10:30:00.000+0000").unwrap(), "2024-01-15T10:30:00.000Z");
        assert_eq!(datetime_literal("2024-01-15T11:30:00.250+01:00").unwrap(), "2024-01-15T10:30:00.250Z");
        assert_eq!(rfc3339("2024-01-15T10:30:00.000+0000").unwrap(), "2024-01-15T10:30:00.000Z");
        assert!(datetime_literal("yesterday").is_none());
        assert!(is_field_name("Account.Name") && !is_field_name("Name FROM User--"));
    }
}
