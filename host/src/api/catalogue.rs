//! `GET /api/v1/integrations`: the public catalogue of CRMs this server can connect to.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::routes::Routes;
use crate::plugins::description::{CapabilitySet, MappingDescription};
use crate::state::AppState;

/// One catalogue entry: what a platform needs to offer the integration, nothing operational.
#[derive(Debug, Serialize)]
struct CatalogueEntry {
    slug: String,
    name: String,
    version: String,
    description: String,
    auth_type: &'static str,
    capabilities: CapabilitySet,
    entities: Vec<CatalogueEntity>,
}

#[derive(Debug, Serialize)]
struct CatalogueEntity {
    name: String,
    label: String,
    match_keys: Vec<String>,
    default_field_mappings: Vec<MappingDescription>,
}

pub fn router() -> Routes {
    Routes::new().get("/api/v1/integrations", list)
}

/// Lists the serving plugins, by slug.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "catalogue", operation_id = "list_catalogue", responses((status = 200, description = "Every serving plugin: slug, name, version, auth, capabilities, entities with match keys and default mappings.", body = serde_json::Value)))]
pub(super) async fn list(State(state): State<AppState>) -> Json<serde_json::Value> {
    let entries: Vec<CatalogueEntry> = state
        .plugins
        .all()
        .iter()
        .map(|plugin| {
            let d = plugin.description();
            CatalogueEntry {
                slug: d.slug.to_string(),
                name: d.name.clone(),
                version: d.version.clone(),
                description: d.description.clone(),
                auth_type: match d.auth {
                    crate::plugins::description::AuthDescription::Oauth2(_) => "oauth2",
                    crate::plugins::description::AuthDescription::None => "none",
                },
                capabilities: d.capabilities,
                entities: d
                    .entities
                    .iter()
                    .map(|e| CatalogueEntity {
                        name: e.name.clone(),
                        label: e.label.clone(),
                        match_keys: e.match_keys.clone(),
                        default_field_mappings: e.default_mappings.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    Json(serde_json::json!({ "integrations": entries }))
}
