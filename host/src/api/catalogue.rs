//! `GET /api/v1/integrations`: the public catalogue of CRMs this server can connect to.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::routes::Routes;
use crate::plugins::description::{CapabilitySet, MappingDescription};
use crate::state::AppState;

/// The catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Catalogue {
    /// The serving plugins, by slug.
    integrations: Vec<CatalogueEntry>,
}

/// One catalogue entry: what a platform needs to offer the integration, nothing operational.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CatalogueEntry {
    /// The plugin's slug.
    slug: String,
    /// Its display name.
    name: String,
    /// Its version.
    version: String,
    /// What it connects to.
    description: String,
    /// `oauth2` or `none`.
    #[schema(value_type = String)]
    auth_type: &'static str,
    /// What it can do.
    capabilities: CapabilitySet,
    /// The CRM objects it syncs.
    entities: Vec<CatalogueEntity>,
}

/// One entity a plugin syncs.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CatalogueEntity {
    /// The entity's name (`contact`, `company`, …).
    name: String,
    /// A human label.
    label: String,
    /// The CRM fields records are matched on, first preferred.
    match_keys: Vec<String>,
    /// The mappings in force until a workspace sets its own.
    default_field_mappings: Vec<MappingDescription>,
}

pub fn router() -> Routes {
    Routes::new().get("/api/v1/integrations", list)
}

/// Lists the serving plugins, by slug.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "catalogue", operation_id = "list_catalogue", responses((status = 200, description = "Every serving plugin: slug, name, version, auth, capabilities, entities with match keys and default mappings.", body = Catalogue)))]
pub(super) async fn list(State(state): State<AppState>) -> Json<Catalogue> {
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
    Json(Catalogue { integrations: entries })
}
