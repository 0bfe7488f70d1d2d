//! The entities this adapter serves: their object paths, last-modified properties and the
//! properties a pull reads when the host names none.

use crmhost_sdk::prelude::*;

/// One HubSpot object type.
pub struct Object {
    /// The path segment (`contacts`).
    pub path: &'static str,
    /// The property incremental pulls sort and filter on.
    pub modified: &'static str,
}

/// The object of an entity.
pub fn object(entity: &str) -> Result<Object> {
    Ok(match entity {
        "contact" => Object { path: "contacts", modified: "lastmodifieddate" },
        "company" => Object { path: "companies", modified: "hs_lastmodifieddate" },
        "deal" => Object { path: "deals", modified: "hs_lastmodifieddate" },
        "email" => Object { path: "emails", modified: "hs_lastmodifieddate" },
        other => return Err(AdapterError::not_supported(format!("entity `{other}`"))),
    })
}

/// The CRM properties of the entity's default mappings (association fields are not properties:
/// a pull reads those only when asked).
pub fn default_properties(entity: &str) -> Vec<String> {
    <crate::HubSpot as Adapter>::describe()
        .entities
        .into_iter()
        .find(|e| e.name == entity)
        .map(|e| {
            e.default_mappings
                .into_iter()
                .map(|m| m.crm_field)
                .filter(|f| !crate::associations::is_association(f))
                .collect()
        })
        .unwrap_or_default()
}
