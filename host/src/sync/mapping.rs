//! Field mappings: which workspace field syncs with which CRM field, in which direction, through
//! which named transform; the plugin's defaults or a workspace's own; and applying them to a
//! record on the way out (push) and on the way in (pull).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::values::{to_app_value, to_crm_value};
use crate::domain::{EntityName, FieldName};
use crate::plugins::bindings::FieldValue;
use crate::plugins::description::EntityDescription;
use crate::store::StoredMapping;

/// Which way a field syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Workspace → CRM only.
    Push,
    /// CRM → workspace only.
    Pull,
    /// Both ways (merged).
    Both,
    /// Not synced.
    None,
}

impl Direction {
    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "push" => Self::Push,
            "pull" => Self::Pull,
            "both" => Self::Both,
            "none" => Self::None,
            _ => return None,
        })
    }

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Pull => "pull",
            Self::Both => "both",
            Self::None => "none",
        }
    }

    /// Whether workspace values go to the CRM.
    pub fn pushes(self) -> bool {
        matches!(self, Self::Push | Self::Both)
    }

    /// Whether CRM values come to the workspace.
    pub fn pulls(self) -> bool {
        matches!(self, Self::Pull | Self::Both)
    }
}

/// A named transform. As JSON: `"trim"`, `"lowercase"`, `"uppercase"`, `"digits_only"`,
/// `{"value_map": {"<workspace value>": "<CRM value>", …}}` (picklists; reversed on pull), or
/// `{"date_format": "<strftime format of the workspace's dates>"}` (the CRM side is ISO `YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Strip surrounding whitespace.
    Trim,
    /// Lower-case (emails, domains).
    Lowercase,
    /// Upper-case (codes).
    Uppercase,
    /// Keep only the digits (phone numbers).
    DigitsOnly,
    /// Translate picklist values.
    ValueMap(std::collections::BTreeMap<String, String>),
    /// Dates in a workspace format.
    DateFormat(String),
}

impl Transform {
    /// Parses a transform from its JSON form; the message says what is accepted.
    pub fn from_json(value: &Json) -> Result<Self, String> {
        let transform: Self = match value {
            Json::String(name) => serde_json::from_value(Json::String(name.clone())),
            other => serde_json::from_value(other.clone()),
        }
        .map_err(|_| {
            format!(
                "unknown transform {value}: use \"trim\", \"lowercase\", \"uppercase\", \"digits_only\", \
                 {{\"value_map\": {{…}}}} or {{\"date_format\": \"%d/%m/%Y\"}}"
            )
        })?;
        if let Self::DateFormat(format) = &transform {
            let sample = chrono::NaiveDate::from_ymd_opt(2026, 1, 31).unwrap_or_default();
            // A bad specifier would make formatting fail; check the items before writing anything.
            let well_formed = chrono::format::StrftimeItems::new(format).all(|i| i != chrono::format::Item::Error);
            let mut written = String::new();
            // `write!` reports a specifier a date cannot fill (`%H`) as an error; `to_string` would panic.
            let round_trips = well_formed
                && std::fmt::Write::write_fmt(&mut written, format_args!("{}", sample.format(format))).is_ok()
                && chrono::NaiveDate::parse_from_str(&written, format).is_ok_and(|d| d == sample);
            if !round_trips {
                return Err(format!("date_format `{format}` does not describe a full date (try \"%d/%m/%Y\")"));
            }
        }
        Ok(transform)
    }

    /// Parses a plugin's default transform (a bare name, or JSON).
    fn from_plugin(text: &str) -> Option<Self> {
        let value = serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()));
        Self::from_json(&value).ok()
    }

    /// The JSON form.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    fn text(value: &Json, f: impl Fn(&str) -> String) -> Json {
        match value {
            Json::String(s) => Json::String(f(s)),
            other => other.clone(),
        }
    }

    /// Workspace value → CRM value.
    pub fn outbound(&self, value: &Json) -> Result<Json, String> {
        Ok(match self {
            Self::Trim => Self::text(value, |s| s.trim().to_owned()),
            Self::Lowercase => Self::text(value, str::to_lowercase),
            Self::Uppercase => Self::text(value, str::to_uppercase),
            Self::DigitsOnly => Self::text(value, |s| s.chars().filter(char::is_ascii_digit).collect()),
            Self::ValueMap(map) => match value {
                Json::String(s) => Json::String(map.get(s).cloned().unwrap_or_else(|| s.clone())),
                other => other.clone(),
            },
            Self::DateFormat(format) => match value {
                Json::String(s) if !s.is_empty() => {
                    let date = chrono::NaiveDate::parse_from_str(s, format)
                        .map_err(|_| format!("`{s}` is not a date in the format `{format}`"))?;
                    Json::String(date.format("%Y-%m-%d").to_string())
                }
                other => other.clone(),
            },
        })
    }

    /// CRM value → workspace value.
    pub fn inbound(&self, value: &Json) -> Json {
        match self {
            Self::ValueMap(map) => match value {
                Json::String(s) => Json::String(
                    map.iter().find(|(_, crm)| *crm == s).map(|(app, _)| app.clone()).unwrap_or_else(|| s.clone()),
                ),
                other => other.clone(),
            },
            Self::DateFormat(format) => match value {
                // `get` rather than slicing: a CRM value is any text, and byte 10 may fall inside a
                // character.
                Json::String(s) => match s.get(..10).map(|day| chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")) {
                    Some(Ok(date)) => Json::String(date.format(format).to_string()),
                    _ => value.clone(),
                },
                other => other.clone(),
            },
            // The text transforms normalize: the same normalization holds both ways.
            other => other.outbound(value).unwrap_or_else(|_| value.clone()),
        }
    }
}

/// One field mapping.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldMapping {
    /// The workspace record's field.
    #[schema(value_type = String)]
    pub app_field: FieldName,
    /// The CRM's field.
    pub crm_field: String,
    /// Which way it syncs.
    pub direction: Direction,
    /// How values are converted.
    pub transform: Option<Transform>,
    /// The entity whose workspace record ids the workspace field holds (one id, or a list of them):
    /// a push sends the CRM ids those records are linked to, a pull maps CRM ids back.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub references: Option<EntityName>,
}

impl FieldMapping {
    /// The workspace value after a trip to the CRM and back: what a pull of what we push would
    /// read. Comparing in this space keeps a normalizing transform (lower-casing an email) from
    /// looking like a change on every sync.
    pub fn round_trip(&self, value: &Json) -> Json {
        match &self.transform {
            None => value.clone(),
            Some(t) => t.outbound(value).map(|crm| t.inbound(&crm)).unwrap_or_else(|_| value.clone()),
        }
    }
}

/// Where an entity's mappings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MappingSource {
    /// The plugin's defaults.
    Default,
    /// The workspace's own.
    Workspace,
}

/// The mappings in force for one entity of one integration.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntityMappings {
    /// The entity.
    #[schema(value_type = String)]
    pub entity: EntityName,
    /// The CRM field records are matched on (the plugin's first match key).
    pub match_key: String,
    /// Where they come from.
    pub source: MappingSource,
    /// The mappings.
    pub mappings: Vec<FieldMapping>,
}

impl EntityMappings {
    /// The plugin's defaults for an entity.
    pub fn defaults(entity: &EntityDescription) -> Result<Self, String> {
        let mappings = entity
            .default_mappings
            .iter()
            .map(|m| {
                Ok(FieldMapping {
                    app_field: FieldName::parse(&m.app_field)?,
                    crm_field: m.crm_field.clone(),
                    direction: Direction::parse(m.direction).unwrap_or(Direction::None),
                    transform: m.transform.as_deref().and_then(Transform::from_plugin),
                    references: None,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            entity: EntityName::parse(&entity.name)?,
            match_key: entity.match_keys.first().cloned().unwrap_or_default(),
            source: MappingSource::Default,
            mappings,
        })
    }

    /// The workspace's stored mappings for an entity, or the defaults when it has none.
    pub fn effective(entity: &EntityDescription, stored: &[StoredMapping]) -> Result<Self, String> {
        let mut resolved = Self::defaults(entity)?;
        let own: Vec<&StoredMapping> = stored.iter().filter(|m| m.entity == entity.name).collect();
        if own.is_empty() {
            return Ok(resolved);
        }
        resolved.source = MappingSource::Workspace;
        resolved.mappings = own
            .into_iter()
            .map(|m| {
                Ok(FieldMapping {
                    app_field: FieldName::parse(&m.app_field)?,
                    crm_field: m.crm_field.clone(),
                    direction: Direction::parse(&m.direction).unwrap_or(Direction::None),
                    transform: m.transform.as_ref().map(|t| Transform::from_json(&t.0)).transpose()?,
                    references: m.references.as_deref().map(EntityName::parse).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(resolved)
    }

    /// The mappings that sync at all.
    pub fn active(&self) -> impl Iterator<Item = &FieldMapping> {
        self.mappings.iter().filter(|m| m.direction != Direction::None)
    }

    /// The workspace field the match key maps to, if it is mapped.
    pub fn match_app_field(&self) -> Option<&FieldMapping> {
        self.active().find(|m| m.crm_field.eq_ignore_ascii_case(&self.match_key))
    }

    /// The CRM fields a pull asks for.
    pub fn pull_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> =
            self.active().filter(|m| m.direction.pulls()).map(|m| m.crm_field.clone()).collect();
        if !fields.iter().any(|f| f.eq_ignore_ascii_case(&self.match_key)) && !self.match_key.is_empty() {
            fields.push(self.match_key.clone());
        }
        fields.sort();
        fields.dedup();
        fields
    }

    /// The workspace record's synced fields as they would read after a round trip through the CRM
    /// (the space the merge compares in). Missing fields are null.
    pub fn app_view(&self, record: &Map<String, Json>) -> Map<String, Json> {
        self.active()
            .map(|m| {
                let value = record.get(m.app_field.as_str()).unwrap_or(&Json::Null);
                (m.app_field.to_string(), m.round_trip(value))
            })
            .collect()
    }

    /// A CRM record's pulled fields, by workspace field, transformed inbound.
    pub fn crm_view(&self, crm_fields: &Map<String, Json>) -> Map<String, Json> {
        self.active()
            .filter(|m| m.direction.pulls())
            .map(|m| {
                let raw = crm_fields
                    .get(&m.crm_field)
                    .or_else(|| crm_fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(&m.crm_field)).map(|(_, v)| v))
                    .unwrap_or(&Json::Null);
                let value = m.transform.as_ref().map(|t| t.inbound(raw)).unwrap_or_else(|| raw.clone());
                (m.app_field.to_string(), value)
            })
            .collect()
    }

    /// The CRM fields to send for a workspace record: every push mapping, or only those in
    /// `only` (plus the match key, which the CRM needs to find the record). An error names the
    /// workspace field whose value could not be converted.
    pub fn outbound(
        &self,
        record: &Map<String, Json>,
        only: Option<&[String]>,
    ) -> Result<Vec<FieldValue>, (String, String)> {
        let mut out = Vec::new();
        for m in self.active().filter(|m| m.direction.pushes()) {
            let is_key = m.crm_field.eq_ignore_ascii_case(&self.match_key);
            if let Some(only) = only
                && !is_key
                && !only.iter().any(|f| f == m.app_field.as_str())
            {
                continue;
            }
            let Some(value) = record.get(m.app_field.as_str()) else { continue };
            let value = match &m.transform {
                Some(t) => t.outbound(value).map_err(|e| (m.app_field.to_string(), e))?,
                None => value.clone(),
            };
            out.push(FieldValue { name: m.crm_field.clone(), value: to_crm_value(&value) });
        }
        Ok(out)
    }

    /// The workspace representation of values sent by [`EntityMappings::outbound`], by app field
    /// (what becomes the new merge base for those fields).
    pub fn sent_as_app(&self, sent: &[FieldValue]) -> Map<String, Json> {
        let mut out = Map::new();
        for f in sent {
            if let Some(m) = self.active().find(|m| m.direction.pushes() && m.crm_field == f.name) {
                let raw = to_app_value(&f.value);
                let value = m.transform.as_ref().map(|t| t.inbound(&raw)).unwrap_or(raw);
                out.insert(m.app_field.to_string(), value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mapping(app: &str, crm: &str, direction: Direction, transform: Option<Transform>) -> FieldMapping {
        FieldMapping {
            app_field: FieldName::parse(app).unwrap(),
            crm_field: crm.to_owned(),
            direction,
            transform,
            references: None,
        }
    }

    fn contact() -> EntityMappings {
        EntityMappings {
            entity: EntityName::parse("contact").unwrap(),
            match_key: "Email".to_owned(),
            source: MappingSource::Default,
            mappings: vec![
                mapping("email", "Email", Direction::Both, Some(Transform::Lowercase)),
                mapping("first_name", "FirstName", Direction::Both, None),
                mapping("status", "Status", Direction::Pull, None),
                mapping("note", "Note__c", Direction::Push, None),
                mapping("secret", "Secret__c", Direction::None, None),
            ],
        }
    }

    #[test]
    fn transforms_parse_from_names_and_objects_and_refuse_the_rest() {
        assert_eq!(Transform::from_json(&json!("lowercase")).unwrap(), Transform::Lowercase);
        assert_eq!(Transform::from_json(&json!("digits_only")).unwrap(), Transform::DigitsOnly);
        let map = Transform::from_json(&json!({"value_map": {"open": "Open - Not Contacted"}})).unwrap();
        assert_eq!(map.outbound(&json!("open")).unwrap(), json!("Open - Not Contacted"));
        assert_eq!(map.inbound(&json!("Open - Not Contacted")), json!("open"));
        assert_eq!(map.outbound(&json!("other")).unwrap(), json!("other"), "unmapped values pass through");
        assert!(Transform::from_json(&json!("rot13")).unwrap_err().contains("unknown transform"));
        assert!(Transform::from_json(&json!({"date_format": "%H"})).unwrap_err().contains("full date"));
    }

    #[test]
    fn date_formats_convert_both_ways_and_name_bad_values() {
        let t = Transform::from_json(&json!({"date_format": "%d/%m/%Y"})).unwrap();
        assert_eq!(t.outbound(&json!("31/01/2026")).unwrap(), json!("2026-01-31"));
        assert_eq!(t.inbound(&json!("2026-01-31")), json!("31/01/2026"));
        assert_eq!(t.inbound(&json!("2026-01-31T00:00:00.000Z")), json!("31/01/2026"));
        assert!(t.outbound(&json!("2026-01-31")).unwrap_err().contains("%d/%m/%Y"));
    }

    #[test]
    fn date_formats_pass_any_crm_text_through_without_panicking() {
        let t = Transform::from_json(&json!({"date_format": "%d/%m/%Y"})).unwrap();
        // Byte 10 falls inside a multi-byte character in each of these.
        for text in ["2026-01-3é", "ééééé-01-31", "日本語のテキストです", "2026-01-31\u{0}", "", "short"]
        {
            let value = json!(text);
            let inbound = t.inbound(&value);
            assert!(inbound == value || inbound.is_string(), "{text}: {inbound}");
        }
        assert_eq!(t.inbound(&json!("日本語のテキストです")), json!("日本語のテキストです"));
    }

    #[test]
    fn outbound_sends_push_fields_and_only_the_changed_ones_when_asked() {
        let m = contact();
        let record = json!({"email": "Ann@X.com", "first_name": "Ann", "status": "x", "note": "n", "secret": "s"});
        let record = record.as_object().unwrap();
        let all: Vec<String> = m.outbound(record, None).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(all, ["Email", "FirstName", "Note__c"]);
        let sent = m.outbound(record, Some(&["note".to_owned()])).unwrap();
        let names: Vec<&str> = sent.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["Email", "Note__c"], "the match key always goes along");
        assert_eq!(m.sent_as_app(&sent)["email"], json!("ann@x.com"));
    }

    #[test]
    fn views_compare_in_round_trip_space() {
        let m = contact();
        let app = m.app_view(json!({"email": "Ann@X.com"}).as_object().unwrap());
        assert_eq!(app["email"], json!("ann@x.com"));
        assert_eq!(app["first_name"], Json::Null);
        assert!(!app.contains_key("secret"));
        let crm = m.crm_view(json!({"Email": "ann@x.com", "FirstName": "Ann", "Note__c": "x"}).as_object().unwrap());
        assert_eq!(
            crm.keys().collect::<Vec<_>>(),
            ["email", "first_name", "status"],
            "push-only fields are not pulled"
        );
        assert_eq!(m.pull_fields(), ["Email", "FirstName", "Status"]);
        assert_eq!(m.match_app_field().unwrap().app_field.as_str(), "email");
    }
}
