//! The Salesforce adapter: Contact, Lead, Account, Opportunity, Campaign, CampaignMember and Task over the REST API — SOQL with a
//! keyset cursor for pulls, sObject Collections for pushes and deletes (200 per request), Bulk
//! API 2.0 jobs for the large reads and writes the host hands it as such, and
//! change notifications (Apex callouts, Outbound Messages) the host authenticated, and the files
//! attached to records (Salesforce Files).

mod api;
mod bulk;
mod errors;
mod fields;
mod files;
mod identity;
mod objects;
mod pull;
mod push;
mod soql;
mod webhooks;

use crmhost_sdk::prelude::*;
use crmhost_sdk::{Oauth2Info, RateLimitMeasure};

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
                "Syncs contacts, leads, accounts, opportunities, campaigns with their members, and tasks (email activity) with Salesforce through the REST API \
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
            // `Sforce-Limit-Info: api-usage=25/5000` on every REST answer: the org's daily usage.
            .rate_limit_header("sforce-limit-info", RateLimitMeasure::DailyUsage, Some("api-usage"))
            .logo_svg(include_str!("../assets/logo.svg"))
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
            // Marketing. A member's campaign and contact (or lead), and a task's contact, are
            // lookups: map them with `references` so workspace ids travel as Salesforce ids.
            .entity(
                EntityInfo::builder("campaign", "Campaign", "Campaign")
                    .match_key("Name")
                    .map("name", "Name")
                    .map("type", "Type")
                    .map("status", "Status")
                    .map("start_date", "StartDate")
                    .map("end_date", "EndDate")
                    .map("active", "IsActive"),
            )
            .entity(
                // No natural key: the org's external id field carries the workspace's.
                EntityInfo::builder("campaign_member", "Campaign member", "CampaignMember")
                    .match_key("External_Id__c")
                    .map("external_id", "External_Id__c")
                    .map("campaign_id", "CampaignId")
                    .map("contact_id", "ContactId")
                    .map("lead_id", "LeadId")
                    .map("status", "Status"),
            )
            .entity(
                // Activities: an email sent or logged is a task of subtype `Email`.
                EntityInfo::builder("task", "Task (activity)", "Task")
                    .match_key("External_Id__c")
                    .map("external_id", "External_Id__c")
                    .map("subject", "Subject")
                    .map("status", "Status")
                    .map("subtype", "TaskSubtype")
                    .map("who_id", "WhoId")
                    .map("activity_date", "ActivityDate"),
            )
            // Not `WEBHOOKS`: Salesforce does not sign deliveries app-wide; each workspace's
            // deliveries are authenticated by the host with that workspace's secret.
            .capabilities(Capabilities::PUSH | Capabilities::PULL | Capabilities::INCREMENTAL | Capabilities::DELETE)
            .setting("api_version", "REST API version, without the leading `v`.", Some(DEFAULT_API_VERSION))
            .setting("instance_url", "The org's instance URL, captured from the token response.", None)
            .build()
    }

    fn test_connection() -> Result<AccountInfo> {
        identity::test_connection()
    }

    fn list_fields(entity: String) -> Result<Vec<FieldInfo>> {
        fields::list_fields(&entity)
    }

    fn pull(request: PullRequest) -> Result<Page> {
        pull::pull(request)
    }

    fn bulk_pull(request: PullRequest) -> Result<PullStep> {
        bulk::bulk_pull(request)
    }

    fn bulk_push(entity: String, match_key: String, records: Vec<PushRecord>, job: Option<String>) -> Result<PushStep> {
        bulk::bulk_push(&entity, &match_key, records, job)
    }

    fn count(request: CountRequest) -> Result<Option<u64>> {
        pull::count(request)
    }

    fn push(entity: String, match_key: String, records: Vec<PushRecord>) -> Result<Vec<PushOutcome>> {
        push::push(&entity, &match_key, records)
    }

    fn delete(entity: String, ids: Vec<String>) -> Result<Vec<DeleteOutcome>> {
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

crmhost_sdk::export_adapter!(Salesforce);
