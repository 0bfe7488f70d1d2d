//! Names the sync engine parses at the edge: [`EntityName`], [`RecordId`] and [`FieldName`].

use std::fmt;

/// Defines a string newtype with a parser, `as_str`, `Display` and a validating `Deserialize`.
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $check:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses one, saying what is wrong with a bad one.
            pub fn parse(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    let shown: String = s.chars().take(80).collect();
                    Err(format!(concat!("`{}` is not a valid ", $what), shown))
                }
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype!(
    /// An entity name (`contact`, `company`): 1 to 64 lower-case letters, digits and `_`, starting
    /// with a letter, as plugins declare them.
    EntityName,
    |s| {
        (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    },
    "entity name: use 1 to 64 lower-case letters, digits and `_`, starting with a letter"
);

string_newtype!(
    /// The platform's id of one of its records: 1 to 128 ASCII letters, digits and `-_.:@`.
    RecordId,
    |s| {
        (1..=128).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
    },
    "record id: use 1 to 128 letters, digits, `-`, `_`, `.`, `:` or `@`"
);

string_newtype!(
    /// A field name of a workspace record: 1 to 64 ASCII letters, digits and `_`, not starting with
    /// a digit.
    FieldName,
    |s| {
        (1..=64).contains(&s.len())
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    },
    "field name: use 1 to 64 letters, digits and `_`, not starting with a digit"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_names_follow_the_plugin_rules() {
        assert!(EntityName::parse("contact").is_ok());
        assert!(EntityName::parse("sales_order2").is_ok());
        for bad in ["", "Contact", "2x", "a-b", &"x".repeat(65)] {
            assert!(EntityName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn record_ids_allow_common_id_shapes_only() {
        for ok in ["42", "c_1", "user@example.com", "urn:x:1", "a.b-c"] {
            assert!(RecordId::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(129)] {
            assert!(RecordId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn field_names_are_identifiers() {
        assert!(FieldName::parse("first_name").is_ok());
        assert!(FieldName::parse("Email2").is_ok());
        for bad in ["", "1st", "a-b", "a.b", &"x".repeat(65)] {
            assert!(FieldName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
