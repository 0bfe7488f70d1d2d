//! `GET /api/v1/integrations`: the public catalogue of CRMs this server can connect to, and
//! `GET /api/v1/integrations/{slug}/logo.svg`: each one's logo, for provider cards.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{ApiPath, slug_of};
use super::openapi::{ErrorResponses, SlugPath};
use super::routes::Routes;
use crate::connections::ConnectionError;
use crate::plugins::branding::{Category, LogoOrigin};
use crate::plugins::description::{AuthDescription, AuthSchemes, CapabilitySet, MappingDescription};
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
    /// What kind of system it is (the console groups provider cards by it).
    category: Category,
    /// Its logo, an SVG image (public; the operator's, the plugin's own, or a generic icon).
    logo_url: String,
    /// Where the logo came from.
    logo_origin: LogoOrigin,
    /// How to connect it, the way to offer first: `oauth2`, `api_key`, `basic` or `none`.
    #[schema(value_type = String)]
    auth_type: &'static str,
    /// Every way it may be connected, `auth_type` first (empty for `none`).
    #[schema(value_type = Vec<String>)]
    auth_types: Vec<&'static str>,
    /// When it takes an API key or basic credentials: what an admin types in at connect (sent to
    /// the connect route).
    credential_form: Option<CredentialForm>,
    /// What it can do.
    capabilities: CapabilitySet,
    /// The CRM objects it syncs.
    entities: Vec<CatalogueEntity>,
}

/// The fields an admin fills in to connect with an API key or basic credentials.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CredentialForm {
    /// The fields, in order; their `name`s are the connect body's keys.
    fields: Vec<CredentialField>,
    /// Where the admin finds them (the plugin's words; may be empty).
    help: String,
}

/// One field of a [`CredentialForm`].
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CredentialField {
    /// The connect body's key: `api_key`, `username` or `password`.
    #[schema(value_type = String)]
    name: &'static str,
    /// The label to show ("API token").
    label: String,
    /// Whether to mask it as it is typed.
    secret: bool,
}

impl CredentialForm {
    /// The form of the first scheme an admin types in, if the plugin offers one.
    fn for_schemes(schemes: &AuthSchemes) -> Option<Self> {
        let field = |name, label: &str, secret| CredentialField { name, label: label.to_owned(), secret };
        schemes.all().iter().find_map(|scheme| match scheme {
            AuthDescription::ApiKey(k) => {
                Some(Self { fields: vec![field("api_key", &k.label, true)], help: k.help.clone() })
            }
            AuthDescription::Basic(b) => Some(Self {
                fields: vec![field("username", &b.username_label, false), field("password", &b.password_label, true)],
                help: b.help.clone(),
            }),
            AuthDescription::Oauth2(_) => None,
        })
    }
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
    Routes::new().get("/api/v1/integrations", list).get("/api/v1/integrations/{slug}/logo.svg", logo)
}

/// A plugin's logo. Served with a policy that keeps any SVG inert even when opened on its own.
#[utoipa::path(get, path = "/api/v1/integrations/{slug}/logo.svg", tag = "catalogue", operation_id = "integration_logo", params(SlugPath), responses((status = 200, description = "The plugin's logo (SVG).", content_type = "image/svg+xml", body = String), ErrorResponses))]
pub(super) async fn logo(State(state): State<AppState>, ApiPath(slug): ApiPath<String>) -> Result<Response, ApiError> {
    let slug = slug_of(&slug)?;
    let plugin = state.plugins.get(&slug).ok_or_else(|| ConnectionError::UnknownPlugin(slug.to_string()))?;
    let svg = plugin.branding().logo.svg.to_string();
    let headers = [
        (header::CONTENT_TYPE, "image/svg+xml"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; sandbox"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "public, max-age=300"),
    ];
    Ok((headers, svg).into_response())
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
                category: plugin.branding().category,
                logo_url: format!("/api/v1/integrations/{}/logo.svg", d.slug),
                logo_origin: plugin.branding().logo.origin,
                auth_type: d.auth.primary(),
                auth_types: d.auth.all().iter().map(|a| a.kind().as_str()).collect(),
                credential_form: CredentialForm::for_schemes(&d.auth),
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
