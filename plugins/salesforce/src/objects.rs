//! The entities this adapter serves and their sObjects, with the fields a pull reads when the host
//! does not name any (the default mappings' CRM fields).

use crmhost_sdk::prelude::*;

/// The sObject of an entity.
pub fn sobject(entity: &str) -> Result<&'static str> {
    Ok(match entity {
        "contact" => "Contact",
        "lead" => "Lead",
        "account" => "Account",
        "opportunity" => "Opportunity",
        "campaign" => "Campaign",
        "campaign_member" => "CampaignMember",
        "task" => "Task",
        other => return Err(AdapterError::not_supported(format!("entity `{other}`"))),
    })
}

/// Whether records of the object can be merged (a merged-away record names its master in
/// `MasterRecordId`): contacts, leads and accounts.
pub fn mergeable(object: &str) -> bool {
    matches!(object, "Contact" | "Lead" | "Account")
}

/// The CRM fields of the entity's default mappings.
pub fn default_fields(entity: &str) -> Vec<String> {
    <crate::Salesforce as Adapter>::describe()
        .entities
        .into_iter()
        .find(|e| e.name == entity)
        .map(|e| e.default_mappings.into_iter().map(|m| m.crm_field).collect())
        .unwrap_or_default()
}
