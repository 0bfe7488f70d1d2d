//! `test-connection`: one REST call that proves API access on the instance, then who the
//! connection acts as, from the identity URL the token response named (or OpenID `userinfo`).

use crmhost_sdk::prelude::*;

use crate::DEFAULT_API_VERSION;

/// Where `userinfo` lives when the connection has no identity URL.
pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";

/// The fields of the identity URL / `userinfo` answer this adapter reads.
#[derive(serde::Deserialize)]
struct Identity {
    organization_id: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
    preferred_username: Option<String>,
    display_name: Option<String>,
    name: Option<String>,
}

/// The org and user behind the connection.
pub fn test_connection() -> Result<AccountInfo> {
    // The REST call comes first: an expired session answers 401 there (the host then refreshes
    // and retries), whereas the identity URL answers 403 Bad_OAuth_Token.
    if let Some(instance) = connection::get("instance_url") {
        let version = connection::get_or("api_version", DEFAULT_API_VERSION);
        Request::get(format!("{}/services/data/v{version}/", instance.trim_end_matches('/')))
            .header("Accept", "application/json")
            .send()?
            .error_for_status("reading the Salesforce REST API")?;
    }
    let identity_url = match connection::get("id") {
        Some(url) => url,
        None => format!("{}/services/oauth2/userinfo", connection::get_or("login_url", DEFAULT_LOGIN_URL)),
    };
    let identity: Identity = Request::get(identity_url)
        .header("Accept", "application/json")
        .send()?
        .error_for_status("reading the Salesforce identity")?
        .json()?;
    let org = identity.organization_id.clone().unwrap_or_default();
    if org.is_empty() {
        return Err(AdapterError::internal("the Salesforce identity has no organization_id"));
    }
    let user = identity.username.clone().or_else(|| identity.preferred_username.clone());
    let name = identity.display_name.clone().or_else(|| identity.name.clone());
    let label = match (&name, &user) {
        (Some(name), Some(user)) => format!("{name} ({user})"),
        (Some(one), None) | (None, Some(one)) => one.clone(),
        (None, None) => format!("Salesforce org {org}"),
    };
    let mut details = vec![("organization_id".to_owned(), org.clone())];
    if let Some(user_id) = identity.user_id {
        // `OwnerId` holds user ids: filters on "records owned by the connected user" compare with it.
        details.push(("owner_id".to_owned(), user_id.clone()));
        details.push(("user_id".to_owned(), user_id));
    }
    if let Some(instance) = connection::get("instance_url") {
        details.push(("instance_url".to_owned(), instance));
    }
    Ok(AccountInfo { account_id: org, label, user, details })
}
