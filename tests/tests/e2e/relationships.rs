//! Relationships between entities through reference mappings, on both backends: a contact's
//! `company_id` names a workspace account; a push sends the CRM id of that account (pushing the
//! account first when the CRM does not have it), a missing reference fails its record with the
//! reason, and a pull brings the lookup back as the workspace id (pulling the account first).

use crmhost_tests::{Backend, Crm, SyncHarness};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Maps the workspace contact's `company_id` to Salesforce's `AccountId`, as a reference to `account`.
async fn map_company_id(h: &SyncHarness) {
    let path = h.integration_path("/field-mappings/contact/company_id");
    let body = json!({"crm_field": "AccountId", "direction": "both", "references": "account"});
    let (status, mappings) = SyncHarness::send(h.api(Method::PUT, &path).json(&body)).await;
    assert_eq!(status, StatusCode::OK, "{mappings}");
    let mapped = mappings["mappings"].as_array().unwrap().iter().find(|m| m["app_field"] == "company_id").cloned();
    assert_eq!(mapped.unwrap()["references"], "account", "{mappings}");
}

/// Mappings naming what is not an entity, or a field that refers to nothing, are refused by name.
async fn bad_references_are_refused(h: &SyncHarness) {
    let path = h.integration_path("/field-mappings/contact/company_id");
    let put = |body: Value| SyncHarness::send(h.api(Method::PUT, &path).json(&body));
    let (status, body) = put(json!({"crm_field": "AccountId", "references": "planet"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`planet` is not an entity"), "{body}");
    let (status, body) = put(json!({"crm_field": "Title", "references": "account"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("does not refer to records"), "{body}");
    let (status, body) = put(json!({"crm_field": "AccountId", "references": "account", "transform": "trim"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn run(h: SyncHarness) {
    bad_references_are_refused(&h).await;
    map_company_id(&h).await;
    h.put_records("account", vec![json!({"id": "acme", "fields": {"name": "Acme Rel", "phone": "+1 555 0100"}})]).await;
    h.put_records(
        "contact",
        vec![
            json!({"id": "ann", "fields": {"email": "ann@rel.example", "last_name": "Ann", "company_id": "acme"}}),
            json!({"id": "bob", "fields": {"email": "bob@rel.example", "last_name": "Bob", "company_id": "ghost"}}),
        ],
    )
    .await;

    // Pushing the contacts pushes their account first; the missing one fails its record.
    let pushed = h.run("push", json!({"entity": "contact", "record_ids": ["ann", "bob"]})).await;
    let detail = h.run_detail(pushed["run_id"].as_str().unwrap()).await;
    let items = detail["items"].as_array().unwrap();
    let item = |entity: &str, id: &str| {
        items
            .iter()
            .find(|i| i["entity"] == entity && i["record_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{entity} {id}: {detail}"))
    };
    assert_eq!(item("account", "acme")["outcome"], "created", "{detail}");
    assert_eq!(item("contact", "ann")["outcome"], "created", "{detail}");
    let bob = item("contact", "bob");
    assert_eq!(bob["outcome"], "failed", "{detail}");
    assert_eq!(bob["error"]["kind"], "missing_reference");
    assert_eq!(bob["error"]["message"], "company_id: refers to account `ghost`, which is not in the workspace");
    let account_crm_id = item("account", "acme")["crm_id"].as_str().unwrap().to_owned();
    let ann_crm_id = item("contact", "ann")["crm_id"].as_str().unwrap().to_owned();
    {
        let state = h.sim.sim().salesforce();
        let ann = state.object("Contact").unwrap().live(&ann_crm_id).unwrap().fields.clone();
        assert_eq!(ann.get("AccountId"), Some(&json!(account_crm_id)), "the lookup names the pushed account");
    }

    // Nothing changed: a sync sends nothing again (the base holds the workspace id, not the CRM's).
    let quiet = h.run("sync", json!({"entities": ["contact", "account"]})).await;
    assert_eq!(quiet["status"], "completed", "{quiet}");
    let detail = h.run_detail(quiet["run_id"].as_str().unwrap()).await;
    let sent: Vec<&Value> = detail["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["record_id"] != "bob" && matches!(i["outcome"].as_str(), Some("created" | "updated")))
        .collect();
    assert!(sent.is_empty(), "nothing to send: {detail}");

    // Made in Salesforce: an account and a contact under it. Syncing contacts alone brings both,
    // the contact's lookup as the imported account's workspace id.
    let (globex, carl) = {
        let now = h.sim.sim().clock.now();
        let mut state = h.sim.sim().salesforce();
        let user = crm_sim::salesforce::USER_ID;
        let account = json!({"Name": "Globex Rel"}).as_object().unwrap().clone();
        let globex = state.object_mut("Account").unwrap().create(&account, now, user).unwrap();
        let contact = json!({"LastName": "Carl", "Email": "carl@rel.example", "AccountId": globex});
        let carl = state.object_mut("Contact").unwrap().create(contact.as_object().unwrap(), now, user).unwrap();
        (globex, carl)
    };
    let synced = h.run("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(synced["status"], "completed", "{synced}");
    let accounts = h.all_records("account").await;
    let imported =
        accounts.iter().find(|a| a["fields"]["name"] == "Globex Rel").unwrap_or_else(|| panic!("{accounts:?}"));
    let contacts = h.all_records("contact").await;
    let carl_record = contacts.iter().find(|c| c["fields"]["email"] == "carl@rel.example").unwrap();
    assert_eq!(carl_record["fields"]["company_id"], imported["id"], "{carl_record}");
    assert!(imported["id"].as_str().unwrap().contains(&globex), "imported under its CRM id: {imported}");

    // Moved to another account in the workspace: the push sends the new account's CRM id.
    let carl_id = carl_record["id"].as_str().unwrap().to_owned();
    let mut fields = carl_record["fields"].clone();
    fields["company_id"] = json!("acme");
    h.put_records("contact", vec![json!({"id": carl_id, "fields": fields})]).await;
    let moved = h.run("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(moved["status"], "completed", "{moved}");
    let state = h.sim.sim().salesforce();
    let carl_now = state.object("Contact").unwrap().live(&carl).unwrap().fields.clone();
    assert_eq!(carl_now.get("AccountId"), Some(&json!(account_crm_id)));
}

#[tokio::test]
async fn salesforce_lookups_push_and_pull_as_workspace_references_on_sqlite() {
    run(SyncHarness::start(Backend::Sqlite, Crm::Salesforce, Default::default()).await.unwrap()).await;
}

#[tokio::test]
async fn salesforce_lookups_push_and_pull_as_workspace_references_on_postgres() {
    let Some(h) = SyncHarness::start(Backend::Postgres, Crm::Salesforce, Default::default()).await else { return };
    run(h).await;
}
