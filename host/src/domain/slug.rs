//! [`PluginSlug`]: the registry key of a plugin (`salesforce`, `hubspot`, ...).

use std::fmt;

/// A plugin slug: 2 to 32 characters of lower-case ASCII letters, digits and `-`, starting with a
/// letter and not ending with `-`. Slugs appear in URLs, file names and environment variable names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PluginSlug(String);

impl PluginSlug {
    /// Parses a slug, saying what is wrong with a bad one.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok_len = (2..=32).contains(&s.len());
        let ok_chars = s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let ok_ends = s.starts_with(|c: char| c.is_ascii_lowercase()) && !s.ends_with('-');
        if ok_len && ok_chars && ok_ends {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not a valid slug: use 2 to 32 lower-case letters, digits and `-`, starting with a letter"
            ))
        }
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The slug as it appears in environment variable names: `my-crm` → `MY_CRM`.
    pub fn env_name(&self) -> String {
        self.0.to_ascii_uppercase().replace('-', "_")
    }
}

impl fmt::Display for PluginSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PluginSlug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for PluginSlug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_slugs_parse() {
        for s in ["salesforce", "hubspot", "my-crm2", "ab"] {
            assert_eq!(PluginSlug::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn malformed_slugs_are_rejected() {
        for s in ["", "a", "Salesforce", "2crm", "crm-", "my_crm", "crm/../x", &"x".repeat(33)] {
            assert!(PluginSlug::parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn env_name_upper_cases_and_replaces_dashes() {
        assert_eq!(PluginSlug::parse("my-crm").unwrap().env_name(), "MY_CRM");
    }
}
