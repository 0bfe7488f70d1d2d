//! An integration's sync settings, stored as JSON on the integration: conflict strategy, entities,
//! direction, frequency, filters, create/delete propagation and the daily-allocation cap. A PATCH
//! changes only the keys it names and validates each against the plugin.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::filters::Filter;
use super::frequency::Frequency;
use super::merge::{ConflictStrategy, FieldRules};
use crate::domain::EntityName;
use crate::plugins::PluginDescription;

pub use crate::domain::SyncDirection;

/// The settings in force (defaults filled in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SyncSettings {
    /// How conflicts are settled.
    pub conflict_strategy: ConflictStrategy,
    /// The entities a sync without an entity list covers; empty = every entity of the plugin.
    #[schema(value_type = Vec<String>)]
    pub entities: Vec<EntityName>,
    /// Which way scheduled, webhook and two-way runs move records.
    pub direction: SyncDirection,
    /// How often it syncs by itself: `manual`, `realtime`, `hourly`, `daily`,
    /// `{"every_minutes": N}`, `{"hourly_at": M}` or `{"daily_at": "HH:MM"}`, the last two with
    /// an optional IANA `time_zone`.
    #[schema(value_type = serde_json::Value)]
    pub frequency: Frequency,
    /// Per entity: only records passing every filter sync, in either direction.
    #[schema(value_type = BTreeMap<String, Vec<Filter>>)]
    pub filters: BTreeMap<EntityName, Vec<Filter>>,
    /// Create records missing on the other side (off: only records already linked, or matched
    /// by key, are updated).
    pub create_missing: bool,
    /// Delete on the other side what was deleted on one side (linked records only).
    pub propagate_deletes: bool,
    /// Per entity and workspace field: the side that always wins a conflict on that field
    /// (`"app"` or `"crm"`), overriding `conflict_strategy`.
    #[schema(value_type = BTreeMap<String, BTreeMap<String, super::merge::FieldRule>>)]
    pub conflict_rules: BTreeMap<EntityName, FieldRules>,
    /// The operator's cap: runs stop (deferred) once the CRM account has used this percentage of
    /// its daily API allocation. `None`: no cap below the CRM's own.
    pub daily_limit_percent: Option<u8>,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            conflict_strategy: ConflictStrategy::default(),
            entities: Vec::new(),
            direction: SyncDirection::default(),
            frequency: Frequency::default(),
            filters: BTreeMap::new(),
            create_missing: true,
            propagate_deletes: false,
            daily_limit_percent: None,
            conflict_rules: BTreeMap::new(),
        }
    }
}

/// The keys a PATCH may set.
const KEYS: &[&str] = &[
    "conflict_strategy",
    "entities",
    "direction",
    "frequency",
    "filters",
    "create_missing",
    "propagate_deletes",
    "daily_limit_percent",
    "conflict_rules",
];

impl SyncSettings {
    /// Reads stored settings; unknown keys (from a newer version) are ignored, bad values fall
    /// back to the defaults rather than stopping every sync.
    pub fn from_stored(stored: &Json) -> Self {
        let mut settings = Self::default();
        let read = |key: &str| stored.get(key).cloned();
        macro_rules! take {
            ($field:ident) => {
                if let Some(value) = read(stringify!($field)).and_then(|v| serde_json::from_value(v).ok()) {
                    settings.$field = value;
                }
            };
        }
        take!(conflict_strategy);
        take!(entities);
        take!(direction);
        take!(frequency);
        take!(filters);
        take!(create_missing);
        take!(propagate_deletes);
        take!(daily_limit_percent);
        take!(conflict_rules);
        settings
    }

    /// The filters of an entity (none: everything syncs).
    pub fn filters_of(&self, entity: &EntityName) -> &[Filter] {
        self.filters.get(entity).map(Vec::as_slice).unwrap_or_default()
    }

    /// The settings with every filter value naming the connected CRM user replaced by
    /// `owner_id` (what the connection reported); the message names the field when it is unknown.
    pub fn with_connected_user(mut self, owner_id: Option<&str>) -> Result<Self, String> {
        for filters in self.filters.values_mut() {
            for filter in filters.iter_mut() {
                *filter = filter.resolved(owner_id)?;
            }
        }
        Ok(self)
    }

    /// Applies a PATCH body to the stored settings, validating every key against the plugin;
    /// returns the new stored JSON. The message names the key and what is accepted.
    pub fn patch(stored: &Json, patch: &Json, plugin: &PluginDescription) -> Result<Json, String> {
        let Json::Object(changes) = patch else {
            return Err("send a JSON object of settings, e.g. {\"conflict_strategy\": \"crm_wins\"}".to_owned());
        };
        if changes.is_empty() {
            return Err(format!("name at least one setting: {}", KEYS.join(", ")));
        }
        let known_entity = |entity: &str, key: &str| -> Result<(), String> {
            if plugin.entities.iter().any(|e| e.name == entity) {
                return Ok(());
            }
            Err(format!(
                "{key}: `{}` has no entity `{entity}` (it has {})",
                plugin.slug,
                plugin.entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        };
        let mut next: Map<String, Json> = stored.as_object().cloned().unwrap_or_default();
        for (key, value) in changes {
            let value = match key.as_str() {
                "conflict_strategy" => {
                    serde_json::from_value::<ConflictStrategy>(value.clone()).map_err(|_| {
                        format!(
                            "conflict_strategy {value} is not one of last_write_wins, crm_wins, app_wins, manual_review"
                        )
                    })?;
                    value.clone()
                }
                "entities" => {
                    let entities: Vec<String> = serde_json::from_value(value.clone())
                        .map_err(|_| "entities must be a list of entity names".to_owned())?;
                    for entity in &entities {
                        known_entity(entity, "entities")?;
                    }
                    value.clone()
                }
                "direction" => {
                    let direction = serde_json::from_value::<SyncDirection>(value.clone())
                        .map_err(|_| format!("direction {value} is not one of push, pull, bidirectional"))?;
                    let caps = plugin.capabilities;
                    if (direction.pushes() && !caps.push) || (direction.pulls() && !caps.pull) {
                        return Err(format!("direction: `{}` cannot {value}", plugin.slug));
                    }
                    value.clone()
                }
                "frequency" => Frequency::parse(value)?.to_json(),
                "filters" => {
                    let filters: BTreeMap<String, Vec<Filter>> =
                        serde_json::from_value(value.clone()).map_err(|e| {
                            format!(
                                "filters must map entities to lists of {{\"field\", \"op\", \"value\"}} with op one of \
                             eq, neq, contains, gt, lt, in, exists: {e}"
                            )
                        })?;
                    for (entity, list) in &filters {
                        known_entity(entity, "filters")?;
                        for filter in list {
                            filter.validate().map_err(|e| format!("filters.{entity}: {e}"))?;
                        }
                    }
                    value.clone()
                }
                "create_missing" | "propagate_deletes" => {
                    if !value.is_boolean() {
                        return Err(format!("{key} must be true or false, got {value}"));
                    }
                    value.clone()
                }
                "daily_limit_percent" => {
                    let ok = value.is_null() || value.as_u64().is_some_and(|p| (1..=100).contains(&p));
                    if !ok {
                        return Err(format!(
                            "daily_limit_percent must be a whole number from 1 to 100 (or null), got {value}"
                        ));
                    }
                    value.clone()
                }
                "conflict_rules" => {
                    let rules: BTreeMap<String, FieldRules> = serde_json::from_value(value.clone()).map_err(|e| {
                        format!("conflict_rules must map entities to {{\"<workspace field>\": \"app\" | \"crm\"}}: {e}")
                    })?;
                    for entity in rules.keys() {
                        known_entity(entity, "conflict_rules")?;
                    }
                    value.clone()
                }
                other => {
                    return Err(format!("unknown setting `{other}`; settable: {}", KEYS.join(", ")));
                }
            };
            next.insert(key.clone(), value);
        }
        Ok(Json::Object(next))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stored_settings_fill_in_defaults_and_survive_bad_values() {
        assert_eq!(SyncSettings::from_stored(&json!({})).conflict_strategy, ConflictStrategy::LastWriteWins);
        let s = SyncSettings::from_stored(&json!({"conflict_strategy": "manual_review", "entities": ["contact"]}));
        assert_eq!(s.conflict_strategy, ConflictStrategy::ManualReview);
        assert_eq!(s.entities[0].as_str(), "contact");
        assert_eq!(SyncSettings::from_stored(&json!({"conflict_strategy": 7})), SyncSettings::default());
        let s = SyncSettings::from_stored(&json!({"frequency": {"every_minutes": 5}, "direction": "pull",
            "filters": {"contact": [{"field": "stage", "op": "eq", "value": "customer"}]}, "create_missing": false}));
        assert_eq!(s.frequency, Frequency::EveryMinutes(5));
        assert_eq!(s.direction, SyncDirection::Pull);
        assert!(!s.create_missing && !s.propagate_deletes);
        assert_eq!(s.filters_of(&EntityName::parse("contact").unwrap()).len(), 1);
    }
}
