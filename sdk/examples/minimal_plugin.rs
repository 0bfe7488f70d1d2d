//! The complete minimal plugin of the SDK README, compiled by `cargo test` so the README stays true.

use crmhost_sdk::prelude::*;
use crmhost_sdk::serde_json::Value as Json;

struct Acme;

/// A URL of Acme's API. Its base is a setting, so an operator (or `crmhost plugin check
/// --against`, with crm-sim's Acme) can point the plugin elsewhere.
fn api(path: &str) -> String {
    format!("{}/v1/{path}", connection::get_or("base_url", "https://api.acme.example"))
}

/// An Acme contact as the host sees it.
fn contact(item: &Json) -> CrmRecord {
    CrmRecord {
        id: item["id"].as_str().unwrap_or_default().to_owned(),
        fields: ["email", "first_name", "last_name"]
            .into_iter()
            .map(|name| FieldValue::new(name, Value::from_json(&item[name])))
            .collect(),
        modified_at: item["updated_at"].as_str().map(str::to_owned),
        deleted: false,
    }
}

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
            .setting("base_url", "Acme's API base URL.", Some("https://api.acme.example"))
            .rate_limit("account", 100, 10_000, "100 requests per 10 s")
            .entity(
                EntityInfo::builder("contact", "Contact", "contacts")
                    .match_key("email")
                    .map("email", "email")
                    .map("first_name", "first_name")
                    .map("last_name", "last_name"),
            )
            .capabilities(Capabilities::PULL | Capabilities::PUSH | Capabilities::DELETE)
            .build()
    }

    fn test_connection() -> Result<AccountInfo> {
        let me: Json = Request::get(api("me")).send()?.error_for_status("reading the account")?.json()?;
        Ok(AccountInfo {
            account_id: me["account_id"].as_str().unwrap_or_default().to_owned(),
            label: me["name"].as_str().unwrap_or("Acme account").to_owned(),
            user: me["email"].as_str().map(str::to_owned),
            details: vec![],
        })
    }

    fn pull(request: PullRequest) -> Result<Page> {
        // One page per call: the host passes back the cursor this page returns.
        let mut http = Request::get(api("contacts")).query("limit", request.limit.to_string());
        if let Some(cursor) = &request.cursor {
            http = http.query("after", cursor);
        }
        if !request.ids.is_empty() {
            http = http.query("ids", request.ids.join(","));
        }
        if let Some(since) = &request.modified_since {
            http = http.query("updated_since", since);
        }
        // 401, 429 (with Retry-After) and 5xx become the errors the host acts on.
        let body: Json = http.send()?.error_for_status("listing contacts")?.json()?;
        let records = body["items"].as_array().into_iter().flatten().map(contact).collect();
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
                Some(id) => Request::patch(api(&format!("contacts/{id}"))),
                None => Request::put(api("contacts")).query("upsert_on", &match_key),
            };
            let response = request.json(&fields)?.send()?;
            let id = || response.json::<Json>().ok().and_then(|b| b["id"].as_str().map(str::to_owned));
            outcomes.push(match (response.status(), id()) {
                (201, Some(id)) => PushOutcome::Created(id),
                (200, Some(id)) => PushOutcome::Updated(id),
                (404 | 422, _) => PushOutcome::Failed(AdapterError::invalid(response.text())),
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
            let response = Request::delete(api(&format!("contacts/{id}"))).send()?;
            outcomes.push(match response.status() {
                // Already gone counts as deleted: deletes are retried and must be idempotent.
                200 | 204 | 404 => DeleteOutcome::Deleted,
                // Whole-call failures (401, 429, 5xx) end the call, as in `push`.
                status => {
                    return Err(response
                        .error_for_status("deleting a contact")
                        .err()
                        .unwrap_or_else(|| AdapterError::internal(format!("Acme answered {status}"))));
                }
            });
        }
        Ok(outcomes)
    }
}

crmhost_sdk::export_adapter!(Acme);

// Unit tests run natively (`cargo test`), against a fake host standing in for Acme.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crmhost_sdk::serde_json::json;
    use crmhost_sdk::testing::{FakeResponse, fake_host};

    fn contact(email: &str) -> PushRecord {
        PushRecord { crm_id: None, fields: vec![FieldValue::new("email", Value::Text(email.to_owned()))] }
    }

    #[test]
    fn a_page_asks_from_the_cursor_and_returns_the_next() {
        let host = fake_host(&[("base_url", "https://acme.test")], |request| {
            assert_eq!((request.path(), request.query("after").as_deref()), ("/v1/contacts", Some("7")));
            FakeResponse::json(200, json!({"items": [{"id": "8", "email": "ada@example.com"}], "next": "8"}))
        });
        let request = PullRequest {
            entity: "contact".to_owned(),
            cursor: Some("7".to_owned()),
            modified_since: None,
            ids: vec![],
            fields: vec![],
            limit: 50,
        };
        let page = Acme::pull(request).unwrap();
        assert_eq!((page.records[0].id.as_str(), page.next_cursor.as_deref()), ("8", Some("8")));
        assert_eq!(host.sent().len(), 1);
    }

    #[test]
    fn a_refused_record_fails_alone_and_a_rate_limit_fails_the_call() {
        let _host = fake_host(&[], |request| match request.json()["email"].as_str() {
            Some("ada@example.com") => FakeResponse::json(201, json!({"id": "1"})),
            Some("busy@example.com") => FakeResponse::status(429).header("retry-after", "2"),
            _ => FakeResponse::json(422, json!({"error": "invalid"})),
        });
        let outcomes =
            Acme::push("contact".to_owned(), "email".to_owned(), vec![contact("ada@example.com"), contact("x")]);
        let outcomes = outcomes.unwrap();
        assert!(matches!(&outcomes[0], PushOutcome::Created(id) if id == "1"));
        assert!(matches!(&outcomes[1], PushOutcome::Failed(AdapterError::Invalid(_))));
        let busy = Acme::push("contact".to_owned(), "email".to_owned(), vec![contact("busy@example.com")]);
        assert!(matches!(busy, Err(AdapterError::RateLimited(info)) if info.retry_after_ms == Some(2_000)));
    }
}
