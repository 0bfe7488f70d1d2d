//! Integration configuration routes: `GET …/{slug}/fields?entity=` (member+) lists the CRM's
//! fields, `GET …/{slug}/field-mappings` (member+) shows the mappings in force, `PUT` (admin+)
//! replaces an entity's, `GET …/{slug}/settings` (member+) and `PATCH` (admin+) the sync settings.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, JsonBody, OnIntegration, at_least};
use super::openapi::{ErrorResponses, IntegrationPath};
use super::records::entity_of;
use super::routes::Routes;
use super::schedule::ScheduleView;
use crate::plugins::bindings::adapter::FieldType;
use crate::state::AppState;
use crate::store::StoreResultExt;
use crate::sync::{EntityMappings, MappingInput, SyncSettings};

const BASE: &str = "/api/v1/workspaces/{id}/integrations/{slug}";

pub fn router() -> Routes {
    Routes::new()
        .get(&format!("{BASE}/fields"), fields)
        .get(&format!("{BASE}/field-mappings"), mappings)
        .put(&format!("{BASE}/field-mappings"), replace_mappings)
        .get(&format!("{BASE}/settings"), settings)
        .patch(&format!("{BASE}/settings"), patch_settings)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct EntityQuery {
    /// The entity whose fields to list (required).
    #[param(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    entity: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/fields", tag = "configure", operation_id = "list_fields", params(IntegrationPath, EntityQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "The CRM's fields of an entity (member+).", body = FieldList), ErrorResponses))]
pub(super) async fn fields(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EntityQuery>,
) -> ApiResult<Json<FieldList>> {
    let entity = entity_of(q.entity.as_deref().ok_or_else(|| ApiError::BadRequest("add ?entity=<name>".to_owned()))?)?;
    let fields = state.sync.list_fields(&caller.workspace, &slug, &entity).await?;
    let fields = fields
        .into_iter()
        .map(|f| FieldView {
            field_type: field_type_name(f.field_type),
            name: f.name,
            label: f.label,
            required: f.required,
            writable: f.writable,
            unique: f.unique,
            options: f.options,
        })
        .collect();
    Ok(Json(FieldList { entity: entity.to_string(), fields }))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/field-mappings", tag = "configure", operation_id = "get_field_mappings", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "The mappings in force per entity (member+).", body = MappingsView), ErrorResponses))]
pub(super) async fn mappings(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
) -> ApiResult<Json<MappingsView>> {
    let all = state.sync.field_mappings(&caller.workspace, &slug).await?;
    Ok(Json(MappingsView { integration: slug.to_string(), entities: all }))
}

/// A CRM field as `list-fields` reports it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct FieldView {
    /// The CRM's field name.
    name: String,
    /// A human label.
    label: String,
    /// The kind of value the field holds.
    #[serde(rename = "type")]
    #[schema(
        example = "email",
        pattern = "^(text|textarea|email|phone|url|integer|number|currency|percent|boolean|date|date_time|picklist|multi_picklist|reference|id|other)$"
    )]
    field_type: &'static str,
    /// Must be set when creating a record.
    required: bool,
    /// Can be written.
    writable: bool,
    /// Usable as an upsert match key.
    unique: bool,
    /// For picklists: the allowed values.
    options: Vec<String>,
}

/// The wire name of a field type (the contract's names, with `_` for `-`).
fn field_type_name(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Text => "text",
        FieldType::Textarea => "textarea",
        FieldType::Email => "email",
        FieldType::Phone => "phone",
        FieldType::Url => "url",
        FieldType::Integer => "integer",
        FieldType::Number => "number",
        FieldType::Currency => "currency",
        FieldType::Percent => "percent",
        FieldType::Boolean => "boolean",
        FieldType::Date => "date",
        FieldType::DateTime => "date_time",
        FieldType::Picklist => "picklist",
        FieldType::MultiPicklist => "multi_picklist",
        FieldType::Reference => "reference",
        FieldType::Id => "id",
        FieldType::Other => "other",
    }
}

/// The CRM's fields of an entity.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct FieldList {
    /// The entity.
    entity: String,
    /// Its fields.
    fields: Vec<FieldView>,
}

/// The mappings in force for every entity of an integration.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct MappingsView {
    /// The integration.
    integration: String,
    /// One entry per entity of the plugin.
    entities: Vec<EntityMappings>,
}

/// An integration's settings and schedule.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SettingsView {
    /// The integration.
    integration: String,
    /// The settings in force (defaults filled in).
    settings: SyncSettings,
    /// Where its schedule stands.
    schedule: ScheduleView,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MappingsBody {
    entity: String,
    mappings: Vec<MappingInput>,
}

#[utoipa::path(put, path = "/api/v1/workspaces/{id}/integrations/{slug}/field-mappings", tag = "configure", operation_id = "replace_field_mappings", params(IntegrationPath), request_body = MappingsBody, security(("workspace_jwt" = [])), responses((status = 200, description = "The entity's mappings now in force (admin+).", body = EntityMappings), ErrorResponses))]
pub(super) async fn replace_mappings(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<MappingsBody>,
) -> ApiResult<Json<EntityMappings>> {
    let entity = entity_of(&body.entity)?;
    let resolved = state.sync.replace_mappings(&caller.workspace, &slug, &entity, &body.mappings, &caller.user).await?;
    Ok(Json(resolved))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/settings", tag = "configure", operation_id = "get_settings", params(IntegrationPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Sync settings and schedule (member+).", body = SettingsView), ErrorResponses))]
pub(super) async fn settings(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
) -> ApiResult<Json<SettingsView>> {
    let integration = state
        .store
        .get_integration(&caller.workspace, &slug)
        .await
        .or_not_found(|| ApiError::from(crate::connections::ConnectionError::NotConnected(slug.to_string())))?;
    let settings = SyncSettings::from_stored(&integration.settings);
    Ok(Json(SettingsView { integration: slug.to_string(), settings, schedule: ScheduleView::of(&integration) }))
}

#[utoipa::path(patch, path = "/api/v1/workspaces/{id}/integrations/{slug}/settings", tag = "configure", operation_id = "update_settings", params(IntegrationPath), request_body(content = serde_json::Value, description = "The settings to change, by key."), security(("workspace_jwt" = [])), responses((status = 200, description = "Settings and schedule after the change (admin+).", body = SettingsView), ErrorResponses))]
pub(super) async fn patch_settings(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
    JsonBody(patch): JsonBody<Value>,
) -> ApiResult<Json<SettingsView>> {
    let (integration, settings) = state.sync.update_settings(&caller.workspace, &slug, &patch, &caller.user).await?;
    Ok(Json(SettingsView { integration: slug.to_string(), settings, schedule: ScheduleView::of(&integration) }))
}
