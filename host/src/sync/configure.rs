//! Configuring an integration's sync: the CRM's fields (`list-fields`), field mappings (validated
//! against those fields before they replace a workspace's), and settings. Changes are audited.

use serde_json::{Value as Json, json};

use super::mapping::{Direction, EntityMappings, Transform};
use super::settings::SyncSettings;
use super::{SyncEngine, SyncError};
use crate::domain::{EntityName, FieldName, PluginSlug, WorkspaceId};
use crate::plugins::adapter_error_summary;
use crate::plugins::bindings::adapter::{FieldInfo, FieldType};
use crate::store::{AuditAction, AuditTarget, Integration, StoreResultExt, StoredMapping};

/// One mapping as a client sends it.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingInput {
    /// The workspace field.
    pub app_field: String,
    /// The CRM field.
    pub crm_field: String,
    /// `push` | `pull` | `both` | `none` (default `both`).
    #[serde(default)]
    pub direction: Option<String>,
    /// A transform (see [`Transform`]).
    #[serde(default)]
    pub transform: Option<Json>,
    /// The entity whose workspace record ids the workspace field holds (`account` for a contact's
    /// `company_id`): pushes send the linked CRM id, pulls bring the workspace id back.
    #[serde(default)]
    pub references: Option<String>,
}

/// Most mappings one entity may have.
const MAX_MAPPINGS: usize = 200;

impl SyncEngine {
    /// The CRM's fields of an entity, from the plugin's `list-fields` (through the connection).
    pub async fn list_fields(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
    ) -> Result<Vec<FieldInfo>, SyncError> {
        let (plugin, context) = self.connections.call_context(workspace, slug).await?;
        Self::entity_description(plugin.description(), entity)?;
        match plugin.list_fields(context, entity.as_str()).await {
            Ok(Ok(fields)) => Ok(fields),
            Ok(Err(err)) => {
                let (kind, message) = adapter_error_summary(&err);
                Err(SyncError::Crm { kind, message: format!("the CRM could not list the fields: {message}") })
            }
            Err(err) => Err(SyncError::Crm { kind: "plugin_failed", message: err.to_string() }),
        }
    }

    /// The mappings in force for every entity of the integration.
    pub async fn field_mappings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
    ) -> Result<Vec<EntityMappings>, SyncError> {
        let plugin = self.plugin(slug)?;
        let stored = self.store.mappings(workspace, slug, None).await?;
        plugin
            .description()
            .entities
            .iter()
            .map(|e| {
                EntityMappings::effective(e, &stored).map_err(|m| SyncError::Crm {
                    kind: "invalid_mapping",
                    message: format!("stored mappings are invalid: {m}"),
                })
            })
            .collect()
    }

    /// Replaces a workspace's mappings of one entity after checking each against the CRM's
    /// fields: unknown fields, and fields the CRM will not write for push mappings, are refused
    /// (422) by name. An empty list goes back to the plugin's defaults.
    #[tracing::instrument(name = "sync.replace_mappings", skip_all, fields(workspace = %workspace, slug = %slug, entity = %entity))]
    pub async fn replace_mappings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        input: &[MappingInput],
        user: &str,
    ) -> Result<EntityMappings, SyncError> {
        let (described, rows) = self.validated_mappings(workspace, slug, entity, input).await?;
        self.store.replace_mappings(workspace, slug, entity, &rows).await?;
        self.audit(workspace, user, AuditAction::MappingsUpdated, AuditTarget::Integration(slug.clone()), json!({
            "entity": entity,
            "mappings": rows.iter().map(|r| json!({"app_field": r.app_field, "crm_field": r.crm_field, "direction": r.direction})).collect::<Vec<_>>(),
            "reset_to_defaults": rows.is_empty(),
        }))
        .await;
        let stored = self.store.mappings(workspace, slug, Some(entity)).await?;
        EntityMappings::effective(&described, &stored).map_err(SyncError::BadInput)
    }

    /// Checks mappings as [`SyncEngine::replace_mappings`] does and returns them as they would be
    /// in force, saving nothing (for previews).
    pub async fn check_mappings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        input: &[MappingInput],
    ) -> Result<EntityMappings, SyncError> {
        let (described, rows) = self.validated_mappings(workspace, slug, entity, input).await?;
        EntityMappings::effective(&described, &rows).map_err(SyncError::BadInput)
    }

    /// Adds or changes the mapping of one workspace field, keeping the entity's others (the
    /// plugin's defaults, while no mapping of the entity is stored).
    pub async fn put_mapping(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        mapping: MappingInput,
        user: &str,
    ) -> Result<EntityMappings, SyncError> {
        let mut input = self.mappings_in_force(workspace, slug, entity).await?;
        input.retain(|m| m.app_field != mapping.app_field);
        input.push(mapping);
        self.replace_mappings(workspace, slug, entity, &input, user).await
    }

    /// Removes the mapping of one workspace field (404 if it has none); the match key's mapping
    /// stays (422).
    pub async fn delete_mapping(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        app_field: &FieldName,
        user: &str,
    ) -> Result<EntityMappings, SyncError> {
        let mut input = self.mappings_in_force(workspace, slug, entity).await?;
        let before = input.len();
        input.retain(|m| m.app_field != app_field.as_str());
        if input.len() == before {
            return Err(SyncError::NotFound(format!("`{entity}` has no mapping of the workspace field `{app_field}`")));
        }
        self.replace_mappings(workspace, slug, entity, &input, user).await
    }

    /// The entity's mappings in force, as input for a replacement.
    async fn mappings_in_force(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
    ) -> Result<Vec<MappingInput>, SyncError> {
        let plugin = self.plugin(slug)?;
        let current = self.mappings_for(workspace, &plugin, entity).await?;
        Ok(current
            .mappings
            .iter()
            .map(|m| MappingInput {
                app_field: m.app_field.to_string(),
                crm_field: m.crm_field.clone(),
                direction: Some(m.direction.as_str().to_owned()),
                transform: m.transform.as_ref().map(super::mapping::Transform::to_json),
                references: m.references.as_ref().map(EntityName::to_string),
            })
            .collect())
    }

    /// Parses mappings and checks each against the CRM's fields: unknown fields, fields the CRM
    /// will not write for push mappings and date transforms on other types are refused (422) by
    /// name, and the match key must be mapped.
    async fn validated_mappings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        input: &[MappingInput],
    ) -> Result<(crate::plugins::description::EntityDescription, Vec<StoredMapping>), SyncError> {
        if input.len() > MAX_MAPPINGS {
            return Err(SyncError::BadInput(format!(
                "at most {MAX_MAPPINGS} mappings per entity, got {}",
                input.len()
            )));
        }
        let plugin = self.plugin(slug)?;
        let described = Self::entity_description(plugin.description(), entity)?;
        let mut rows = Vec::with_capacity(input.len());
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in input.iter().enumerate() {
            let at = format!("mappings[{i}]");
            let app_field = match FieldName::parse(&m.app_field) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(format!("{at}.app_field: {e}"));
                    continue;
                }
            };
            if !seen.insert(app_field.clone()) {
                problems.push(format!("{at}: app field `{app_field}` is mapped twice"));
            }
            if m.crm_field.is_empty() || m.crm_field.len() > 255 {
                problems.push(format!("{at}.crm_field: must be 1 to 255 characters"));
            }
            let direction = match m.direction.as_deref().map(Direction::parse) {
                None => Direction::Both,
                Some(Some(d)) => d,
                Some(None) => {
                    problems.push(format!("{at}.direction: use push, pull, both or none"));
                    continue;
                }
            };
            let transform = match &m.transform {
                None | Some(Json::Null) => None,
                Some(t) => match Transform::from_json(t) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        problems.push(format!("{at}.transform: {e}"));
                        continue;
                    }
                },
            };
            let references = match referenced_entity(plugin.description(), m, transform.is_some()) {
                Ok(references) => references,
                Err(e) => {
                    problems.push(format!("{at}.references: {e}"));
                    continue;
                }
            };
            rows.push(StoredMapping {
                entity: entity.to_string(),
                app_field: app_field.to_string(),
                crm_field: m.crm_field.clone(),
                direction: direction.as_str().to_owned(),
                transform: transform.map(|t| sqlx::types::Json(t.to_json())),
                references,
            });
        }
        if !problems.is_empty() {
            return Err(SyncError::BadInput(format!("invalid mappings: {}", problems.join("; "))));
        }

        if !rows.is_empty() {
            let fields = self.list_fields(workspace, slug, entity).await?;
            let mut unknown = Vec::new();
            let mut read_only = Vec::new();
            let mut not_dates = Vec::new();
            let mut not_references = Vec::new();
            for row in &rows {
                let Some(field) = fields.iter().find(|f| f.name.eq_ignore_ascii_case(&row.crm_field)) else {
                    unknown.push(row.crm_field.clone());
                    continue;
                };
                if !field.writable && Direction::parse(&row.direction).is_some_and(Direction::pushes) {
                    read_only.push(row.crm_field.clone());
                }
                if is_date_format(row) && !matches!(field.field_type, FieldType::Date | FieldType::DateTime) {
                    not_dates.push(row.crm_field.clone());
                }
                if row.references.is_some() && !matches!(field.field_type, FieldType::Reference | FieldType::Id) {
                    not_references.push(row.crm_field.clone());
                }
            }
            let mut messages = Vec::new();
            if !unknown.is_empty() {
                messages.push(format!("`{entity}` in {slug} has no field {}", quoted(&unknown)));
            }
            if !read_only.is_empty() {
                messages
                    .push(format!("{} cannot be written in {slug}: map it with direction `pull`", quoted(&read_only)));
            }
            if !not_dates.is_empty() {
                messages.push(format!(
                    "{} in {slug} is not a date or date-time field: a `date_format` transform converts dates only",
                    quoted(&not_dates)
                ));
            }
            if !not_references.is_empty() {
                messages.push(format!(
                    "{} in {slug} does not refer to records: `references` needs a lookup or association field",
                    quoted(&not_references)
                ));
            }
            if !messages.is_empty() {
                return Err(SyncError::Unprocessable(messages.join("; ")));
            }
            let key = &described.match_keys.first().cloned().unwrap_or_default();
            if !rows.iter().any(|r| r.crm_field.eq_ignore_ascii_case(key) && r.direction != "none") {
                return Err(SyncError::Unprocessable(format!(
                    "map the match key `{key}` to a workspace field: records are matched on it"
                )));
            }
        }
        Ok((described, rows))
    }

    /// Changes an integration's settings (only the keys the patch names) and audits it.
    pub async fn update_settings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        patch: &Json,
        user: &str,
    ) -> Result<(Integration, SyncSettings), SyncError> {
        let plugin = self.plugin(slug)?;
        let integration = self.store.get_integration(workspace, slug).await.or_not_found(|| {
            SyncError::Connection(crate::connections::ConnectionError::NotConnected(slug.to_string()))
        })?;
        let next =
            SyncSettings::patch(&integration.settings, patch, plugin.description()).map_err(SyncError::BadInput)?;
        // New filters naming the connected user must resolve now, not fail every later run.
        if patch.get("filters").is_some() {
            SyncSettings::from_stored(&next)
                .with_connected_user(integration.connected_owner_id())
                .map_err(SyncError::Unprocessable)?;
        }
        let mut updated = self.store.set_integration_settings(workspace, slug, &next).await?;
        if patch.get("frequency").is_some() {
            self.reschedule(&updated).await?;
            updated = self.store.get_integration(workspace, slug).await?;
        }
        self.audit(
            workspace,
            user,
            AuditAction::SettingsUpdated,
            AuditTarget::Integration(slug.clone()),
            json!({ "changes": patch }),
        )
        .await;
        let settings = SyncSettings::from_stored(&updated.settings);
        Ok((updated, settings))
    }
}

/// The entity a mapping's `references` names, checked: one the plugin syncs, on a mapping without a
/// transform (ids pass as they are).
fn referenced_entity(
    plugin: &crate::plugins::description::PluginDescription,
    m: &MappingInput,
    has_transform: bool,
) -> Result<Option<String>, String> {
    let Some(name) = m.references.as_deref() else { return Ok(None) };
    let entity = EntityName::parse(name)?;
    if !plugin.entities.iter().any(|e| e.name == entity.as_str()) {
        let known: Vec<&str> = plugin.entities.iter().map(|e| e.name.as_str()).collect();
        return Err(format!("`{entity}` is not an entity of this integration (it has {})", known.join(", ")));
    }
    if has_transform {
        return Err("a reference carries record ids as they are: remove the transform".to_owned());
    }
    Ok(Some(entity.to_string()))
}

/// Whether a stored mapping converts dates.
fn is_date_format(row: &StoredMapping) -> bool {
    row.transform.as_ref().is_some_and(|t| t.0.get("date_format").is_some())
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}
