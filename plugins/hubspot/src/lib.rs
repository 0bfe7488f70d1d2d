//! The HubSpot adapter: contacts, companies, deals and email engagements over the CRM v3 API,
//! contact lists and their memberships over lists v3.
//!
//! Search with a re-anchoring cursor for incremental pulls, batch endpoints for pushes, signed
//! webhooks.

mod api;
mod associations;
mod errors;
mod fields;
mod files;
mod identity;
mod lists;
mod objects;
mod pull;
mod push;
mod webhooks;

use crmhost_sdk::prelude::*;
use crmhost_sdk::{Oauth2Info, RateLimitMeasure};

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
        // Owners name the connected user in record-owner filters; an app without the scope still connects.
        // Files attached to records need `files`; without it listing them fails, nothing else.
        // Lists need `crm.lists.*`; an app without them syncs everything but lists.
        oauth.optional_scopes = vec![
            "crm.objects.owners.read".to_owned(),
            "files".to_owned(),
            "crm.lists.read".to_owned(),
            "crm.lists.write".to_owned(),
        ];
        oauth.token_response_facts = vec!["hub_id".to_owned(), "user_id".to_owned()];

        PluginInfo::builder("hubspot", "HubSpot", env!("CARGO_PKG_VERSION"))
            .description(
                "Syncs contacts, companies, deals, email engagements and contact lists with their \
                 members with HubSpot through the CRM v3 API (search for incremental pulls, batch \
                 upsert for pushes, signed webhooks).",
            )
            .oauth2(oauth)
            .allowed_host("api.hubapi.com")
            // Where the Files API's signed URLs point (unconfirmed list: extend with the
            // operator's `extra_allowed_hosts` if a portal's files live elsewhere).
            .allowed_host("*.hubspotusercontent-na1.net")
            .allowed_host("*.hubspotusercontent-eu1.net")
            .allowed_host("*.hubspotusercontent00.net")
            .allowed_host("*.hubspotusercontent10.net")
            .allowed_host("*.hubspotusercontent20.net")
            .allowed_host("*.hubspotusercontent30.net")
            .allowed_host("*.hubspotusercontent40.net")
            .rate_limit(
                "app-per-account",
                100,
                10_000,
                "Public OAuth apps: 100 requests per 10 s per installed account (429 TEN_SECONDLY_ROLLING); no daily cap.",
            )
            .rate_limit("search", 4, 1_000, "CRM search: 4 requests per second per token (429 \"secondly limit\").")
            // What each answer says of the account's allowance; the host paces by it.
            .rate_limit_header("x-hubspot-ratelimit-max", RateLimitMeasure::WindowLimit, None)
            .rate_limit_header("x-hubspot-ratelimit-interval-milliseconds", RateLimitMeasure::WindowMs, None)
            .rate_limit_header("x-hubspot-ratelimit-remaining", RateLimitMeasure::WindowRemaining, None)
            .rate_limit_header("x-hubspot-ratelimit-daily", RateLimitMeasure::DailyLimit, None)
            .rate_limit_header("x-hubspot-ratelimit-daily-remaining", RateLimitMeasure::DailyRemaining, None)
            .logo_svg(include_str!("../assets/logo.svg"))
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
            // Marketing. An email engagement's contact is an association and a membership's list
            // and contact are HubSpot ids: map them with `references` so workspace ids travel.
            .entity(
                // No natural key: a unique custom property carries the workspace's id.
                EntityInfo::builder("email", "Email (activity)", "emails")
                    .match_key("crmhost_external_id")
                    .map("external_id", "crmhost_external_id")
                    .map("subject", "hs_email_subject")
                    .map("body", "hs_email_text")
                    .map("direction", "hs_email_direction")
                    .map("status", "hs_email_status")
                    .map("sent_at", "hs_timestamp")
                    .map("contact_id", "associations.contact"),
            )
            .entity(
                EntityInfo::builder(lists::LIST, "Contact list", "lists")
                    .match_key("name")
                    .map("name", "name")
                    .map_with("processing_type", "processingType", MappingDirection::Pull, None)
                    .map_with("size", "size", MappingDirection::Pull, None),
            )
            .entity(
                // Identified by its list and contact; the key is never looked up.
                EntityInfo::builder(lists::MEMBERSHIP, "List membership", "list memberships")
                    .match_key("recordId")
                    .map("list_id", "listId")
                    .map("contact_id", "recordId")
                    .map_with("added_at", "membershipTimestamp", MappingDirection::Pull, None),
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

    fn test_connection() -> Result<AccountInfo> {
        identity::test_connection()
    }

    fn list_fields(entity: String) -> Result<Vec<FieldInfo>> {
        if lists::serves(&entity) {
            return Ok(lists::list_fields(&entity));
        }
        fields::list_fields(&entity)
    }

    fn pull(request: PullRequest) -> Result<Page> {
        if lists::serves(&request.entity) {
            return lists::pull(&request);
        }
        pull::pull(request)
    }

    fn count(request: CountRequest) -> Result<Option<u64>> {
        if lists::serves(&request.entity) {
            return lists::count(&request);
        }
        pull::count(request)
    }

    fn push(entity: String, match_key: String, records: Vec<PushRecord>) -> Result<Vec<PushOutcome>> {
        if records.len() > push::MAX_PUSH {
            return Err(AdapterError::invalid(format!(
                "at most {} records per push, got {}",
                push::MAX_PUSH,
                records.len()
            )));
        }
        if lists::serves(&entity) {
            return lists::push(&entity, &match_key, records);
        }
        push::push(&entity, &match_key, records)
    }

    fn delete(entity: String, ids: Vec<String>) -> Result<Vec<DeleteOutcome>> {
        if lists::serves(&entity) {
            return lists::delete(&entity, &ids);
        }
        push::delete(&entity, ids)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Vec<ChangeEvent>> {
        webhooks::parse_webhook(request)
    }

    fn list_files(entity: String, record_id: String) -> Result<Vec<FileInfo>> {
        files::list_files(&entity, &record_id)
    }

    fn download(entity: String, record_id: String, file_id: String) -> Result<DownloadRequest> {
        files::download(&entity, &record_id, &file_id)
    }
}

crmhost_sdk::export_adapter!(HubSpot);
