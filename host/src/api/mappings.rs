//! Field-mapping assistance and single-mapping routes: `POST …/{slug}/field-mappings/suggest`
//! (member+) suggests mappings, `POST …/field-mappings/preview` (member+) shows what mappings would
//! do to real records without writing, `PUT` / `DELETE …/field-mappings/{entity}/{app_field}`
//! (admin+) add, change or remove one mapping (a mapping's id is its workspace field, unique within
//! the entity, so the plugin's default mappings are addressable too).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, JsonBody, OnIntegration, at_least};
use super::openapi::{ErrorResponses, IntegrationPath, MappingPath};
use super::records::entity_of;
use super::routes::Routes;
use crate::domain::FieldName;
use crate::state::AppState;
use crate::sync::{EntityMappings, MappingInput, MappingPreview, MappingSuggestions, PREVIEW_SAMPLE_MAX};

const BASE: &str = "/api/v1/workspaces/{id}/integrations/{slug}/field-mappings";

pub fn router() -> Routes {
    Routes::new()
        .post(&format!("{BASE}/suggest"), suggest)
        .post(&format!("{BASE}/preview"), preview)
        .put(&format!("{BASE}/{{entity}}/{{app_field}}"), put_one)
        .delete(&format!("{BASE}/{{entity}}/{{app_field}}"), delete_one)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SuggestBody {
    /// The entity to suggest mappings for.
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    entity: String,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/field-mappings/suggest", tag = "configure", operation_id = "suggest_field_mappings", params(IntegrationPath), request_body = SuggestBody, security(("workspace_jwt" = [])), responses((status = 200, description = "Suggested mappings with confidence and reason, and the CRM's required fields left unmapped (member+). Nothing is saved.", body = MappingSuggestions), ErrorResponses))]
pub(super) async fn suggest(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SuggestBody>,
) -> ApiResult<Json<MappingSuggestions>> {
    let entity = entity_of(&body.entity)?;
    Ok(Json(state.sync.suggest_mappings(&caller.workspace, &slug, &entity).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewBody {
    /// The entity.
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    entity: String,
    /// The mappings to try (default: those in force).
    #[schema(max_items = 200)]
    mappings: Option<Vec<MappingInput>>,
    /// Records to show per side (default 5).
    #[schema(minimum = 1, maximum = 20)]
    sample: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/field-mappings/preview", tag = "configure", operation_id = "preview_field_mappings", params(IntegrationPath), request_body = PreviewBody, security(("workspace_jwt" = [])), responses((status = 200, description = "A few CRM records as they would land in the workspace and workspace records as they would be sent, with problems flagged per field (member+). Nothing is written on either side.", body = MappingPreview), ErrorResponses))]
pub(super) async fn preview(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<PreviewBody>,
) -> ApiResult<Json<MappingPreview>> {
    let entity = entity_of(&body.entity)?;
    let sample = body.sample.unwrap_or(5);
    if !(1..=PREVIEW_SAMPLE_MAX).contains(&sample) {
        return Err(ApiError::BadRequest(format!("sample must be between 1 and {PREVIEW_SAMPLE_MAX}")));
    }
    let mappings = match &body.mappings {
        Some(input) => state.sync.check_mappings(&caller.workspace, &slug, &entity, input).await?,
        None => {
            let plugin = state.sync.plugin(&slug)?;
            state.sync.mappings_for(&caller.workspace, &plugin, &entity).await?
        }
    };
    Ok(Json(state.sync.preview_mappings(&caller.workspace, &slug, &entity, &mappings, sample).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OneMappingBody {
    /// The CRM field.
    #[schema(min_length = 1, max_length = 255)]
    crm_field: String,
    /// `push`, `pull`, `both` or `none` (default `both`).
    #[schema(pattern = "^(push|pull|both|none)$")]
    direction: Option<String>,
    /// A transform (a name such as `lowercase`, or an object for value maps and date formats).
    #[schema(value_type = Option<serde_json::Value>)]
    transform: Option<Value>,
    /// The entity whose workspace record ids this field holds (a contact's `company_id` →
    /// `account`): pushes send the linked CRM id, pulls map it back.
    references: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/workspaces/{id}/integrations/{slug}/field-mappings/{entity}/{app_field}", tag = "configure", operation_id = "put_field_mapping", params(MappingPath), request_body = OneMappingBody, security(("workspace_jwt" = [])), responses((status = 200, description = "The mapping of this workspace field added or changed; the entity's mappings now in force (admin+).", body = EntityMappings), ErrorResponses))]
pub(super) async fn put_one(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, _, entity, app_field)): ApiPath<(String, String, String, String)>,
    JsonBody(body): JsonBody<OneMappingBody>,
) -> ApiResult<Json<EntityMappings>> {
    let entity = entity_of(&entity)?;
    let app_field = FieldName::parse(&app_field).map_err(ApiError::BadRequest)?;
    let mapping = MappingInput {
        app_field: app_field.to_string(),
        crm_field: body.crm_field,
        direction: body.direction,
        transform: body.transform,
        references: body.references,
    };
    Ok(Json(state.sync.put_mapping(&caller.workspace, &slug, &entity, mapping, &caller.user).await?))
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/integrations/{slug}/field-mappings/{entity}/{app_field}", tag = "configure", operation_id = "delete_field_mapping", params(MappingPath), security(("workspace_jwt" = [])), responses((status = 200, description = "The mapping of this workspace field removed; the entity's mappings now in force (admin+). The match key's mapping cannot be removed.", body = EntityMappings), ErrorResponses))]
pub(super) async fn delete_one(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, _, entity, app_field)): ApiPath<(String, String, String, String)>,
) -> ApiResult<Json<EntityMappings>> {
    let entity = entity_of(&entity)?;
    let app_field = FieldName::parse(&app_field).map_err(ApiError::BadRequest)?;
    Ok(Json(state.sync.delete_mapping(&caller.workspace, &slug, &entity, &app_field, &caller.user).await?))
}
