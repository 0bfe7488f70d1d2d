//! Field-rule routes (admin+): `PUT …/integrations/{slug}/conflict-rules/{entity}/{app_field}`
//! `{"use": "app" | "crm", "apply_to_pending"?}` makes one side always win conflicts on that field
//! (optionally settling the pending conflicts it now decides); `DELETE` removes the rule. The
//! rules in force show in the settings (`conflict_rules`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, JsonBody, OnIntegration, at_least};
use super::openapi::{ErrorResponses, MappingPath};
use super::records::entity_of;
use super::routes::Routes;
use crate::domain::{EntityName, FieldName};
use crate::state::AppState;
use crate::sync::{FieldRule, RuleChange};

const PATH: &str = "/api/v1/workspaces/{id}/integrations/{slug}/conflict-rules/{entity}/{app_field}";

pub fn router() -> Routes {
    Routes::new().put(PATH, put_rule).delete(PATH, delete_rule)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleBody {
    /// The side that always wins conflicts on this field.
    #[serde(rename = "use")]
    side: FieldRule,
    /// Also resolve the pending conflicts on this field that the rules now decide.
    apply_to_pending: Option<bool>,
}

fn target(entity: &str, app_field: &str) -> ApiResult<(EntityName, FieldName)> {
    Ok((entity_of(entity)?, FieldName::parse(app_field).map_err(ApiError::BadRequest)?))
}

#[utoipa::path(put, path = "/api/v1/workspaces/{id}/integrations/{slug}/conflict-rules/{entity}/{app_field}", tag = "conflicts", operation_id = "put_conflict_rule", params(MappingPath), request_body = RuleBody, security(("workspace_jwt" = [])), responses((status = 200, description = "The entity's rules now, and the pending conflicts settled or left (admin+). Audited.", body = RuleChange), ErrorResponses))]
pub(super) async fn put_rule(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, _, entity, app_field)): ApiPath<(String, String, String, String)>,
    JsonBody(body): JsonBody<RuleBody>,
) -> ApiResult<Json<RuleChange>> {
    let (entity, field) = target(&entity, &app_field)?;
    let apply = body.apply_to_pending.unwrap_or(false);
    let change = state
        .sync
        .change_field_rule(&caller.workspace, &slug, &entity, &field, Some(body.side), apply, &caller.user)
        .await?;
    Ok(Json(change))
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/integrations/{slug}/conflict-rules/{entity}/{app_field}", tag = "conflicts", operation_id = "delete_conflict_rule", params(MappingPath), security(("workspace_jwt" = [])), responses((status = 200, description = "The rule removed: the integration's strategy settles this field again (admin+).", body = RuleChange), ErrorResponses))]
pub(super) async fn delete_rule(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, _, entity, app_field)): ApiPath<(String, String, String, String)>,
) -> ApiResult<Json<RuleChange>> {
    let (entity, field) = target(&entity, &app_field)?;
    let change =
        state.sync.change_field_rule(&caller.workspace, &slug, &entity, &field, None, false, &caller.user).await?;
    Ok(Json(change))
}
