//! [`WorkspaceId`]: the platform's id of a workspace (tenant).

use std::fmt;

/// A workspace id as the platform issues it: 1 to 64 characters of ASCII letters, digits, `-`, `_`
/// and `.`. Opaque to crmhost; it only has to be safe in URLs, logs and keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    /// Parses a workspace id.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok =
            (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("`{s}` is not a valid workspace id: use 1 to 64 letters, digits, `-`, `_` or `.`"))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// One read back from the store, which holds only ids parsed on their way in.
    pub(crate) fn from_stored(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for WorkspaceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_safe_characters_parse_and_others_do_not() {
        assert!(WorkspaceId::parse("ws_1-a.b").is_ok());
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert!(WorkspaceId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
