//! An integration's sync settings, stored as JSON on the integration: the conflict strategy and
//! the entities a two-way sync covers by default. A PATCH changes only the keys it names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::merge::ConflictStrategy;
use crate::domain::EntityName;
use crate::plugins::PluginDescription;

/// The settings in force (defaults filled in).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncSettings {
    /// How conflicts are settled.
    pub conflict_strategy: ConflictStrategy,
    /// The entities a sync without an entity list covers; empty = every entity of the plugin.
    pub entities: Vec<EntityName>,
}

/// The keys a PATCH may set.
const KEYS: &[&str] = &["conflict_strategy", "entities"];

impl SyncSettings {
    /// Reads stored settings; unknown keys (from a newer version) are ignored, bad values fall
    /// back to the defaults rather than stopping every sync.
    pub fn from_stored(stored: &Json) -> Self {
        let mut settings = Self::default();
        if let Some(strategy) = stored.get("conflict_strategy").and_then(|v| serde_json::from_value(v.clone()).ok()) {
            settings.conflict_strategy = strategy;
        }
        if let Some(entities) = stored.get("entities").and_then(|v| serde_json::from_value(v.clone()).ok()) {
            settings.entities = entities;
        }
        settings
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
        let mut next: Map<String, Json> = stored.as_object().cloned().unwrap_or_default();
        for (key, value) in changes {
            match key.as_str() {
                "conflict_strategy" => {
                    serde_json::from_value::<ConflictStrategy>(value.clone()).map_err(|_| {
                        format!(
                            "conflict_strategy {value} is not one of last_write_wins, crm_wins, app_wins, manual_review"
                        )
                    })?;
                }
                "entities" => {
                    let entities: Vec<String> = serde_json::from_value(value.clone())
                        .map_err(|_| "entities must be a list of entity names".to_owned())?;
                    for entity in &entities {
                        if !plugin.entities.iter().any(|e| &e.name == entity) {
                            return Err(format!(
                                "entities: `{}` has no entity `{entity}` (it has {})",
                                plugin.slug,
                                plugin.entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!("unknown setting `{other}`; settable: {}", KEYS.join(", ")));
                }
            }
            next.insert(key.clone(), value.clone());
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
    }
}
