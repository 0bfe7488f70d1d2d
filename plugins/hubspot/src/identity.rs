//! `test-connection`: the portal behind the token. `account-info` gives its time zone and
//! currency but needs the `oauth` scope, which newer apps may not have; without it, one contact
//! read proves the token works and the hub id captured at connect names the portal. The granted
//! scopes (a connection fact) are reported too, and the connected user's owner id (what
//! `hubspot_owner_id` holds for records they own) when the owners API answers.

use crmhost_sdk::prelude::*;

use crate::api::base_url;

/// The portal and user behind the connection.
pub fn test_connection() -> Result<AccountInfo> {
    let base = base_url();
    let mut details = Vec::new();
    if let Some(scopes) = connection::get("scopes") {
        details.push(("scopes".to_owned(), scopes));
    }
    if let Some(owner_id) = connected_owner_id(&base)? {
        details.push(("owner_id".to_owned(), owner_id));
    }
    let response = Request::get(format!("{base}/account-info/v3/details")).send()?;
    if response.status() == 403 || response.status() == 404 {
        let hub_id = connection::get("hub_id")
            .ok_or_else(|| AdapterError::internal("no hub_id was captured at connect time"))?;
        Request::get(format!("{base}/crm/v3/objects/contacts"))
            .query("limit", "1")
            .send()?
            .error_for_status("reading one contact")?;
        return Ok(AccountInfo {
            label: format!("HubSpot account {hub_id}"),
            account_id: hub_id,
            user: connection::get("user_id"),
            details,
        });
    }
    let account: serde_json::Value = crate::errors::check(response, "reading the HubSpot account")?.json()?;
    let portal = match account.get("portalId") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => connection::get("hub_id")
            .ok_or_else(|| AdapterError::internal("HubSpot did not name the account (no portalId)"))?,
    };
    for key in ["accountType", "timeZone", "companyCurrency", "uiDomain", "dataHostingLocation"] {
        if let Some(value) = account.get(key).and_then(|v| v.as_str()) {
            details.push((key.to_owned(), value.to_owned()));
        }
    }
    Ok(AccountInfo {
        label: format!("HubSpot account {portal}"),
        account_id: portal,
        user: connection::get("user_id"),
        details,
    })
}

/// The owner id of the connected user: owners and users are different ids in HubSpot, and record
/// ownership (`hubspot_owner_id`) names owners. `None` when the user is unknown, or the app lacks
/// the optional `crm.objects.owners.read` scope (403), or the user owns nothing (404).
fn connected_owner_id(base: &str) -> Result<Option<String>> {
    let Some(user_id) = connection::get("user_id") else {
        return Ok(None);
    };
    let response = Request::get(format!("{base}/crm/v3/owners/{user_id}")).query("idProperty", "userId").send()?;
    if matches!(response.status(), 403 | 404) {
        crmhost_sdk::log::info(&format!("no HubSpot owner for the connected user (HTTP {})", response.status()));
        return Ok(None);
    }
    let owner: serde_json::Value = crate::errors::check(response, "reading the connected user's owner")?.json()?;
    Ok(match owner.get("id") {
        Some(serde_json::Value::String(id)) => Some(id.clone()),
        Some(serde_json::Value::Number(id)) => Some(id.to_string()),
        _ => None,
    })
}
