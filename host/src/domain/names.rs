//! Names and ids the sync engine parses at the edge: [`EntityName`], [`RecordId`], [`FieldName`],
//! [`CrmId`], and the ids it makes itself, [`RunId`] and [`ConflictId`].

use std::fmt;

/// Defines a string newtype with a parser, `as_str`, `Display` and a validating `Deserialize`.
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $check:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, utoipa::ToSchema)]
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

            /// One read back from the store, which holds only values parsed on their way in.
            #[allow(dead_code, reason = "only the ids are read back as themselves")]
            pub(crate) fn from_stored(s: String) -> Self {
                Self(s)
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

string_newtype!(
    /// The CRM's id of one of its records, as the plugin reports it: 1 to 255 characters, none of
    /// them a control character (Salesforce's are 18 letters and digits, HubSpot's digits; other
    /// CRMs' are opaque).
    CrmId,
    |s| (1..=255).contains(&s.chars().count()) && !s.chars().any(char::is_control),
    "CRM id: use 1 to 255 characters, none of them a control character"
);

/// Whether `s` is a UUID as crmhost writes them (lower-case, hyphenated).
fn is_uuid_text(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

string_newtype!(
    /// A sync run's id: a UUID crmhost made when the run started.
    RunId,
    is_uuid_text,
    "run id: runs are named by a lower-case hyphenated UUID"
);

string_newtype!(
    /// A conflict's id: a UUID crmhost made when it found the conflict.
    ConflictId,
    is_uuid_text,
    "conflict id: conflicts are named by a lower-case hyphenated UUID"
);

string_newtype!(
    /// An outbound webhook endpoint's id: a UUID crmhost made when it was registered.
    EndpointId,
    is_uuid_text,
    "endpoint id: endpoints are named by a lower-case hyphenated UUID"
);

string_newtype!(
    /// One delivery of an event to an endpoint: a UUID (a redelivery gets its own).
    DeliveryId,
    is_uuid_text,
    "delivery id: deliveries are named by a lower-case hyphenated UUID"
);

string_newtype!(
    /// An event's id: a UUID, the same in every delivery of the event (receivers deduplicate on it).
    EventId,
    is_uuid_text,
    "event id: events are named by a lower-case hyphenated UUID"
);

impl RunId {
    /// A fresh one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }
}

impl ConflictId {
    /// A fresh one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }
}

impl EndpointId {
    /// A fresh one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }
}

impl DeliveryId {
    /// A fresh one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }
}

impl EventId {
    /// A fresh one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }
}

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

    #[test]
    fn generated_ids_parse_and_foreign_shapes_do_not() {
        let run = RunId::generate();
        assert_eq!(RunId::parse(run.as_str()), Ok(run));
        assert!(ConflictId::parse(ConflictId::generate().as_str()).is_ok());
        for bad in ["", "42", "not-a-uuid", "6F9619FF-8B86-D011-B42D-00C04FC964FF", "6f9619ff8b86d011b42d00c04fc964ff"]
        {
            assert!(RunId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn crm_ids_are_opaque_but_printable() {
        for ok in ["0035g00000AbCdEAAV", "101", "a b/c?d", &"x".repeat(255)] {
            assert!(CrmId::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a\0b", "a\nb", &"x".repeat(256)] {
            assert!(CrmId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
