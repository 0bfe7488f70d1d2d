//! Conversions between Rust values, JSON and the typed [`Value`] that crosses the boundary.

use crate::{FieldValue, Value};

impl Value {
    /// The text, if this is [`Value::Text`].
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The value as the JSON a CRM API expects: text, numbers and booleans as themselves,
    /// dates and date-times as strings, null as null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Text(s) | Self::DateTime(s) | Self::Date(s) => serde_json::Value::String(s.clone()),
            Self::Number(n) => {
                serde_json::Number::from_f64(*n).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
            }
            Self::Boolean(b) => serde_json::Value::Bool(*b),
        }
    }

    /// The value as a string, as CRMs that send every property as text (HubSpot) expect.
    /// `None` for null.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Self::Null => None,
            Self::Text(s) | Self::DateTime(s) | Self::Date(s) => Some(s.clone()),
            Self::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(format!("{}", *n as i64)),
            Self::Number(n) => Some(n.to_string()),
            Self::Boolean(b) => Some(b.to_string()),
        }
    }

    /// A value from untyped JSON: strings become text, numbers numbers, booleans booleans,
    /// anything else (arrays, objects) its JSON text.
    pub fn from_json(json: &serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Boolean(*b),
            serde_json::Value::Number(n) => n.as_f64().map(Self::Number).unwrap_or(Self::Null),
            serde_json::Value::String(s) => Self::Text(s.clone()),
            other => Self::Text(other.to_string()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Self::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Boolean(b)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Self::Null)
    }
}

impl FieldValue {
    /// A named field value.
    pub fn new(name: impl Into<String>, value: impl Into<Value>) -> Self {
        Self { name: name.into(), value: value.into() }
    }
}
