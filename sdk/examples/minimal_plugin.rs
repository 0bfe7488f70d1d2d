//! The complete minimal plugin of the SDK README, compiled by `cargo test` so the README stays true.

use crmhost_sdk::prelude::*;
use crmhost_sdk::serde_json::Value as Json;

struct Acme;

impl Adapter for Acme {
    fn describe() -> PluginInfo {
        PluginInfo::builder("acme", "Acme CRM", env!("CARGO_PKG_VERSION"))
            .description("Syncs contacts with Acme CRM.")
            .oauth2(crmhost_sdk::Oauth2Info::new(
                "https://login.acme.example/oauth/authorize",
                "https://login.acme.example/oauth/token",
                &["contacts"],
            ))
            .allowed_host("api.acme.example")
            .rate_limit("account", 100, 10_000, "100 requests per 10 s")
            .entity(
                EntityInfo::builder("contact", "Contact", "contacts")
                    .match_key("email")
                    .map("email", "email")
                    .map("first_name", "first_name"),
            )
            .capabilities(Capabilities::PULL)
            .build()
    }

    fn test_connection() -> Result<AccountInfo> {
        let me: Json = Request::get("https://api.acme.example/v1/me").send()?.json()?;
        Ok(AccountInfo {
            account_id: me["account_id"].as_str().unwrap_or_default().to_owned(),
            label: me["name"].as_str().unwrap_or("Acme account").to_owned(),
            user: me["email"].as_str().map(str::to_owned),
            details: vec![],
        })
    }

    fn pull(request: PullRequest) -> Result<Page> {
        let mut http = Request::get("https://api.acme.example/v1/contacts").query("limit", request.limit.to_string());
        if let Some(cursor) = &request.cursor {
            http = http.query("after", cursor);
        }
        let response = http.send()?;
        if !response.is_success() {
            return Err(AdapterError::unavailable(format!("Acme answered {}", response.status())));
        }
        let body: Json = response.json()?;
        let records = body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| CrmRecord {
                id: item["id"].as_str().unwrap_or_default().to_owned(),
                fields: vec![FieldValue::new("email", Value::from_json(&item["email"]))],
                modified_at: item["updated_at"].as_str().map(str::to_owned),
                deleted: false,
            })
            .collect();
        Ok(Page { records, next_cursor: body["next"].as_str().map(str::to_owned) })
    }
}

crmhost_sdk::export_adapter!(Acme);
