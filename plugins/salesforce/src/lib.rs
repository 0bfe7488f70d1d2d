//! The Salesforce adapter: Contact, Lead, Account and Opportunity over the REST API.
//!
//! `describe()` is complete; the data operations arrive with the adapters issue and answer
//! "not supported" until then (the SDK's defaults).

use crmhost_sdk::Oauth2Info;
use crmhost_sdk::prelude::*;

/// The REST API version used when the connection does not set `api_version`.
pub const DEFAULT_API_VERSION: &str = "62.0";

/// The Salesforce adapter.
pub struct Salesforce;

impl Adapter for Salesforce {
    fn describe() -> PluginInfo {
        let mut oauth = Oauth2Info::new(
            "https://login.salesforce.com/services/oauth2/authorize",
            "https://login.salesforce.com/services/oauth2/token",
            // `api` for REST, `refresh_token` so the host can refresh without the user.
            &["api", "refresh_token"],
        );
        oauth.revoke_url = Some("https://login.salesforce.com/services/oauth2/revoke".to_owned());
        oauth.pkce = true;
        // Every later call goes to `instance_url`; `id` is the identity URL (org and user ids).
        oauth.token_response_facts = vec!["instance_url".to_owned(), "id".to_owned()];

        PluginInfo::builder("salesforce", "Salesforce", env!("CARGO_PKG_VERSION"))
            .description(
                "Syncs contacts, leads, accounts and opportunities with Salesforce through the REST API \
                 (SOQL for pulls, sObject Collections for pushes in batches of 200).",
            )
            .oauth2(oauth)
            // Login hosts and every instance (`*.my.salesforce.com`, sandboxes, legacy `na1.salesforce.com`).
            .allowed_host("login.salesforce.com")
            .allowed_host("test.salesforce.com")
            .allowed_host("*.salesforce.com")
            .rate_limit(
                "org-daily",
                100_000,
                86_400_000,
                "Rolling 24 h allocation: 100,000 plus a per-licence adder; exceeding it is 403 REQUEST_LIMIT_EXCEEDED.",
            )
            .rate_limit(
                "org-concurrent-long",
                25,
                20_000,
                "At most 25 concurrent requests lasting 20 s or longer (5 on Developer Edition).",
            )
            .entity(
                EntityInfo::builder("contact", "Contact", "Contact")
                    .match_key("Email")
                    .map_with("email", "Email", MappingDirection::Both, Some("lowercase"))
                    .map("first_name", "FirstName")
                    .map("last_name", "LastName")
                    .map("phone", "Phone")
                    .map("title", "Title"),
            )
            .entity(
                EntityInfo::builder("lead", "Lead", "Lead")
                    .match_key("Email")
                    .map_with("email", "Email", MappingDirection::Both, Some("lowercase"))
                    .map("first_name", "FirstName")
                    .map("last_name", "LastName")
                    .map("company", "Company")
                    .map("phone", "Phone")
                    .map("title", "Title")
                    .map_with("status", "Status", MappingDirection::Pull, None),
            )
            .entity(
                EntityInfo::builder("account", "Account", "Account")
                    .match_key("Name")
                    .map("name", "Name")
                    .map("website", "Website")
                    .map("phone", "Phone")
                    .map("industry", "Industry")
                    .map("employees", "NumberOfEmployees"),
            )
            .entity(
                EntityInfo::builder("opportunity", "Opportunity", "Opportunity")
                    .match_key("Name")
                    .map("name", "Name")
                    .map("amount", "Amount")
                    .map("stage", "StageName")
                    .map("close_date", "CloseDate"),
            )
            .capabilities(Capabilities::PUSH | Capabilities::PULL | Capabilities::INCREMENTAL | Capabilities::DELETE)
            .setting("api_version", "REST API version, without the leading `v`.", Some(DEFAULT_API_VERSION))
            .setting("instance_url", "The org's instance URL, captured from the token response.", None)
            .build()
    }

    /// Who the connection acts as: the identity URL from the token response (`id`) names the org
    /// and user. Without it, the OpenID `userinfo` endpoint on the login host answers the same.
    fn test_connection() -> Result<AccountInfo> {
        // A REST call first: it proves API access on the instance, and an expired session answers
        // 401 there (the host then refreshes and retries), whereas the identity URL answers 403.
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
            details.push(("user_id".to_owned(), user_id));
        }
        if let Some(instance) = connection::get("instance_url") {
            details.push(("instance_url".to_owned(), instance));
        }
        Ok(AccountInfo { account_id: org, label, user, details })
    }
}

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

crmhost_sdk::export_adapter!(Salesforce);
