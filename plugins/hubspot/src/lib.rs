//! The HubSpot adapter: contacts, companies and deals over the CRM v3 API.
//!
//! `describe()` is complete; the data operations arrive with the adapters issue and answer
//! "not supported" until then (the SDK's defaults).

use crmhost_sdk::Oauth2Info;
use crmhost_sdk::prelude::*;

/// The API base used when the connection does not set `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

/// The HubSpot adapter.
pub struct HubSpot;

impl Adapter for HubSpot {
    fn describe() -> PluginInfo {
        let mut oauth = Oauth2Info::new(
            "https://app.hubspot.com/oauth/authorize",
            // v3 is current; v1 is deprecated on 2027-02-16.
            "https://api.hubapi.com/oauth/v3/token",
            &[
                "crm.objects.contacts.read",
                "crm.objects.contacts.write",
                "crm.objects.companies.read",
                "crm.objects.companies.write",
                "crm.objects.deals.read",
                "crm.objects.deals.write",
            ],
        );
        oauth.revoke_url = Some("https://api.hubapi.com/oauth/v3/token/revoke".to_owned());
        oauth.pkce = true;
        oauth.token_response_facts = vec!["hub_id".to_owned(), "user_id".to_owned()];

        PluginInfo::builder("hubspot", "HubSpot", env!("CARGO_PKG_VERSION"))
            .description(
                "Syncs contacts, companies and deals with HubSpot through the CRM v3 API \
                 (search for incremental pulls, batch upsert for pushes, signed webhooks).",
            )
            .oauth2(oauth)
            .allowed_host("api.hubapi.com")
            .rate_limit(
                "app-per-account",
                100,
                10_000,
                "Public OAuth apps: 100 requests per 10 s per installed account (429 TEN_SECONDLY_ROLLING); no daily cap.",
            )
            .rate_limit("search", 4, 1_000, "CRM search: 4 requests per second per token (429 \"secondly limit\").")
            .entity(
                EntityInfo::builder("contact", "Contact", "contacts")
                    .match_key("email")
                    .map_with("email", "email", MappingDirection::Both, Some("lowercase"))
                    .map("first_name", "firstname")
                    .map("last_name", "lastname")
                    .map("phone", "phone")
                    .map("title", "jobtitle")
                    .map("company", "company"),
            )
            .entity(
                EntityInfo::builder("company", "Company", "companies")
                    .match_key("domain")
                    .match_key("name")
                    .map("name", "name")
                    .map_with("domain", "domain", MappingDirection::Both, Some("lowercase"))
                    .map("phone", "phone")
                    .map("industry", "industry")
                    .map("employees", "numberofemployees"),
            )
            .entity(
                EntityInfo::builder("deal", "Deal", "deals")
                    .match_key("dealname")
                    .map("name", "dealname")
                    .map("amount", "amount")
                    .map("stage", "dealstage")
                    .map("close_date", "closedate")
                    .map_with("pipeline", "pipeline", MappingDirection::Pull, None),
            )
            .capabilities(
                Capabilities::PUSH
                    | Capabilities::PULL
                    | Capabilities::INCREMENTAL
                    | Capabilities::DELETE
                    | Capabilities::WEBHOOKS,
            )
            .setting("base_url", "The API base URL.", Some(DEFAULT_BASE_URL))
            .setting("hub_id", "The HubSpot account (portal) id, captured at connect time.", None)
            .build()
    }

    /// The portal behind the token. `account-info` gives its time zone and currency but needs the
    /// `oauth` scope, which newer apps may not have; without it, one contact read proves the token
    /// works and the hub id captured at connect names the portal.
    fn test_connection() -> Result<AccountInfo> {
        let base = base_url();
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
                details: Vec::new(),
            });
        }
        let details: serde_json::Value = response.error_for_status("reading the HubSpot account")?.json()?;
        let portal = match details.get("portalId") {
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => connection::get("hub_id")
                .ok_or_else(|| AdapterError::internal("HubSpot did not name the account (no portalId)"))?,
        };
        let mut facts = Vec::new();
        for key in ["accountType", "timeZone", "companyCurrency", "uiDomain", "dataHostingLocation"] {
            if let Some(value) = details.get(key).and_then(|v| v.as_str()) {
                facts.push((key.to_owned(), value.to_owned()));
            }
        }
        Ok(AccountInfo {
            label: format!("HubSpot account {portal}"),
            account_id: portal,
            user: connection::get("user_id"),
            details: facts,
        })
    }
}

/// The API base: the connection's `base_url` setting, else HubSpot's.
fn base_url() -> String {
    connection::get_or("base_url", DEFAULT_BASE_URL).trim_end_matches('/').to_owned()
}

crmhost_sdk::export_adapter!(HubSpot);
