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
            .capabilities(Capabilities::PULL | Capabilities::PUSH | Capabilities::DELETE)
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

    fn push(_entity: String, match_key: String, records: Vec<PushRecord>) -> Result<Vec<PushOutcome>> {
        // One outcome per record, in input order; one record failing never fails the others.
        // (One request per record keeps the example short: send batches where the CRM has them.)
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            let fields: crmhost_sdk::serde_json::Map<String, Json> =
                record.fields.iter().map(|f| (f.name.clone(), f.value.to_json())).collect();
            let request = match &record.crm_id {
                Some(id) => Request::patch(format!("https://api.acme.example/v1/contacts/{id}")),
                None => Request::put("https://api.acme.example/v1/contacts").query("upsert_on", &match_key),
            };
            let response = request.json(&fields)?.send()?;
            let id = || response.json::<Json>().ok().and_then(|b| b["id"].as_str().map(str::to_owned));
            outcomes.push(match (response.status(), id()) {
                (201, Some(id)) => PushOutcome::Created(id),
                (200, Some(id)) => PushOutcome::Updated(id),
                (422, _) => PushOutcome::Failed(AdapterError::invalid(response.text())),
                // Whole-call failures (401, 429, 5xx) end the call: the host retries or re-authenticates.
                _ => {
                    return Err(response
                        .error_for_status("pushing a contact")
                        .err()
                        .unwrap_or_else(|| AdapterError::internal("Acme answered without the record's id")));
                }
            });
        }
        Ok(outcomes)
    }

    fn delete(_entity: String, ids: Vec<String>) -> Result<Vec<DeleteOutcome>> {
        let mut outcomes = Vec::with_capacity(ids.len());
        for id in ids {
            let response = Request::delete(format!("https://api.acme.example/v1/contacts/{id}")).send()?;
            outcomes.push(match response.status() {
                // Already gone counts as deleted: deletes are retried and must be idempotent.
                200 | 204 | 404 => DeleteOutcome::Deleted,
                _ => DeleteOutcome::Failed(AdapterError::unavailable(format!("Acme answered {}", response.status()))),
            });
        }
        Ok(outcomes)
    }
}

crmhost_sdk::export_adapter!(Acme);
