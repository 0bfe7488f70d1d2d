//! Relationships between entities through reference mappings, for each CRM on both backends: a
//! contact's `company_id` names a workspace account (Salesforce `AccountId`) or company (HubSpot's
//! primary company association, Pipedrive's `org_id`). A push sends the CRM id of that record (pushing it first when
//! the CRM does not have it), a missing reference fails its record with the reason, a pull brings
//! the lookup back as the workspace id (pulling the referenced record first), and moving the
//! contact in the workspace moves it in the CRM.

use crm_sim::pipedrive::Kind;
use crmhost_tests::{Backend, Crm, SyncHarness};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// What differs between the CRMs here.
struct Side {
    /// The referenced entity.
    entity: &'static str,
    /// The contact's CRM field that refers to it.
    crm_field: &'static str,
    /// A contact field that refers to nothing.
    plain_field: &'static str,
}

fn side(crm: Crm) -> Side {
    match crm {
        Crm::Salesforce => Side { entity: "account", crm_field: "AccountId", plain_field: "Title" },
        Crm::Hubspot => Side { entity: "company", crm_field: "associations.company", plain_field: "jobtitle" },
        Crm::Pipedrive => Side { entity: "company", crm_field: "org_id", plain_field: "first_name" },
    }
}

/// A workspace record of the referenced entity.
fn company(crm: Crm, id: &str, name: &str) -> Value {
    match crm {
        Crm::Salesforce => json!({"id": id, "fields": {"name": name, "phone": "+1 555 0100"}}),
        _ => json!({"id": id, "fields": {"name": name, "domain": format!("{id}.rel.example")}}),
    }
}

/// Mappings naming what is not an entity, a field that refers to nothing, or a transform are
/// refused by name; then `company_id` is mapped as a reference.
async fn map_company_id(h: &SyncHarness, side: &Side) {
    let path = h.integration_path("/field-mappings/contact/company_id");
    let put = |body: Value| SyncHarness::send(h.api(Method::PUT, &path).json(&body));
    let (status, body) = put(json!({"crm_field": side.crm_field, "references": "planet"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`planet` is not an entity"), "{body}");
    let (status, body) = put(json!({"crm_field": side.plain_field, "references": side.entity})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("does not refer to records"), "{body}");
    let (status, body) =
        put(json!({"crm_field": side.crm_field, "references": side.entity, "transform": "trim"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, mappings) =
        put(json!({"crm_field": side.crm_field, "direction": "both", "references": side.entity})).await;
    assert_eq!(status, StatusCode::OK, "{mappings}");
    let mapped = mappings["mappings"].as_array().unwrap().iter().find(|m| m["app_field"] == "company_id").cloned();
    assert_eq!(mapped.unwrap()["references"], side.entity, "{mappings}");
}

/// The CRM id of the record a CRM contact refers to (Salesforce's lookup, HubSpot's primary company).
fn crm_reference(h: &SyncHarness, contact: &str) -> Option<String> {
    match h.crm {
        Crm::Salesforce => {
            let state = h.sim.sim().salesforce();
            let fields = &state.object("Contact").unwrap().live(contact).unwrap().fields;
            fields.get("AccountId").and_then(Value::as_str).map(str::to_owned)
        }
        Crm::Hubspot => {
            let state = h.sim.sim().hubspot();
            let companies = state.associations.of("contacts", contact.parse().unwrap(), "companies");
            companies.iter().find(|(_, types)| types.contains(&1)).map(|(id, _)| id.to_string())
        }
        Crm::Pipedrive => {
            let state = h.sim.sim().pipedrive();
            let person = state.live(Kind::Persons, contact.parse().unwrap()).unwrap();
            person.fields.get("org_id").and_then(Value::as_u64).map(|id| id.to_string())
        }
    }
}

/// Makes a company and a contact under it in the CRM, as a CRM user would: their CRM ids.
fn crm_company_with_contact(h: &SyncHarness, name: &str, email: &str) -> (String, String) {
    let contact = h.create_crm_contact(email, "Carl", "Rel");
    let now = h.sim.sim().clock.now();
    match h.crm {
        Crm::Salesforce => {
            let mut state = h.sim.sim().salesforce();
            let user = crm_sim::salesforce::USER_ID;
            let account = json!({"Name": name}).as_object().unwrap().clone();
            let company = state.object_mut("Account").unwrap().create(&account, now, user).unwrap();
            let link = json!({"AccountId": company}).as_object().unwrap().clone();
            state.object_mut("Contact").unwrap().update(&contact, &link, now).unwrap();
            (company, contact)
        }
        Crm::Pipedrive => {
            let mut state = h.sim.sim().pipedrive();
            let fields = json!({"name": name, "owner_id": crm_sim::pipedrive::USER_ID}).as_object().unwrap().clone();
            let company = state.create(Kind::Organizations, fields, now);
            let person: u64 = contact.parse().unwrap();
            assert!(state.edit(Kind::Persons, person, now, |fields| {
                fields.insert("org_id".into(), json!(company));
            }));
            (company.to_string(), contact)
        }
        Crm::Hubspot => {
            let mut state = h.sim.sim().hubspot();
            let id = state.new_id();
            let properties = [("name".to_owned(), name.to_owned())].into_iter().collect();
            let record =
                crm_sim::hubspot::HsRecord { id, properties, created_at: now, updated_at: now, archived_at: None };
            state.objects.get_mut("companies").unwrap().insert(record);
            let contact_id: u64 = contact.parse().unwrap();
            assert!(state.associations.link(("contacts", contact_id), ("companies", id), 1));
            (id.to_string(), contact)
        }
    }
}

each_crm_and_backend!(pipedrive_too: references_push_and_pull_as_workspace_ids, |h| {
    let side = side(h.crm);
    map_company_id(&h, &side).await;
    h.put_records(side.entity, vec![company(h.crm, "acme", "Acme Rel")]).await;
    h.put_records(
        "contact",
        vec![
            json!({"id": "ann", "fields": {"email": "ann@rel.example", "last_name": "Ann", "company_id": "acme"}}),
            json!({"id": "bob", "fields": {"email": "bob@rel.example", "last_name": "Bob", "company_id": "ghost"}}),
        ],
    )
    .await;

    // Pushing the contacts pushes their company first; the missing one fails its record.
    let pushed = h.run("push", json!({"entity": "contact", "record_ids": ["ann", "bob"]})).await;
    let detail = h.run_detail(pushed["run_id"].as_str().unwrap()).await;
    let items = detail["items"].as_array().unwrap();
    let item = |entity: &str, id: &str| {
        let found = items.iter().find(|i| i["entity"] == entity && i["record_id"] == id).cloned();
        found.unwrap_or_else(|| panic!("{entity} {id}: {detail}"))
    };
    assert_eq!(item(side.entity, "acme")["outcome"], "created", "{detail}");
    assert_eq!(item("contact", "ann")["outcome"], "created", "{detail}");
    let bob = item("contact", "bob");
    assert_eq!(bob["outcome"], "failed", "{detail}");
    assert_eq!(bob["error"]["kind"], "missing_reference");
    let why = format!("company_id: refers to {} `ghost`, which is not in the workspace", side.entity);
    assert_eq!(bob["error"]["message"], why);
    let acme_crm_id = item(side.entity, "acme")["crm_id"].as_str().unwrap().to_owned();
    let ann_crm_id = item("contact", "ann")["crm_id"].as_str().unwrap().to_owned();
    assert_eq!(crm_reference(&h, &ann_crm_id), Some(acme_crm_id.clone()), "the contact refers to the pushed company");

    // Nothing changed: a sync sends nothing again (the base holds the workspace id, not the CRM's).
    let quiet = h.run("sync", json!({"entities": ["contact", side.entity]})).await;
    assert_eq!(quiet["status"], "completed", "{quiet}");
    let detail = h.run_detail(quiet["run_id"].as_str().unwrap()).await;
    let sent: Vec<&Value> = detail["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["record_id"] != "bob" && matches!(i["outcome"].as_str(), Some("created" | "updated")))
        .collect();
    assert!(sent.is_empty(), "nothing to send: {detail}");

    // Made in the CRM: a company and a contact under it. Syncing contacts alone brings both, the
    // contact's reference as the imported company's workspace id.
    let (globex, carl) = crm_company_with_contact(&h, "Globex Rel", "carl@rel.example");
    let synced = h.run("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(synced["status"], "completed", "{synced}");
    let companies = h.all_records(side.entity).await;
    let imported = companies.iter().find(|a| a["fields"]["name"] == "Globex Rel");
    let imported = imported.unwrap_or_else(|| panic!("{companies:?}"));
    assert!(imported["id"].as_str().unwrap().contains(&globex), "imported under its CRM id: {imported}");
    let contacts = h.all_records("contact").await;
    let carl_record = contacts.iter().find(|c| c["fields"]["email"] == "carl@rel.example").unwrap();
    assert_eq!(carl_record["fields"]["company_id"], imported["id"], "{carl_record}");

    // Moved to another company in the workspace: the push names the new company's CRM id.
    let mut moved = carl_record.clone();
    moved["fields"]["company_id"] = json!("acme");
    h.put_records("contact", vec![json!({"id": moved["id"], "fields": moved["fields"]})]).await;
    let run = h.run("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(crm_reference(&h, &carl), Some(acme_crm_id), "{}", h.run_detail(run["run_id"].as_str().unwrap()).await);

    // A reference to a record deleted in the workspace, and (with `create_missing` off) to one the
    // CRM does not have: each fails its record with the reason, and nothing else is created.
    h.put_records(side.entity, vec![company(h.crm, "gone", "Gone Rel"), company(h.crm, "local", "Local Rel")]).await;
    let (status, _) = SyncHarness::send(h.api(Method::DELETE, &format!("/records/{}/gone", side.entity))).await;
    assert!(status.is_success());
    let (status, body) = h.patch_settings(json!({"create_missing": false})).await;
    assert!(status.is_success(), "{body}");
    let mut ann = json!({"email": "ann@rel.example", "last_name": "Ann", "company_id": "gone"});
    h.put_records("contact", vec![json!({"id": "ann", "fields": ann.clone()})]).await;
    ann["company_id"] = json!("local");
    ann["email"] = json!("dan@rel.example");
    h.put_records("contact", vec![json!({"id": "dan", "fields": ann})]).await;
    let run = h.run("push", json!({"entity": "contact", "record_ids": ["ann"]})).await;
    let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
    let ann_item = detail["items"].as_array().unwrap().iter().find(|i| i["record_id"] == "ann").cloned().unwrap();
    let why = format!("company_id: refers to {} `gone`, which is deleted in the workspace", side.entity);
    assert_eq!(ann_item["error"]["message"], why, "{detail}");
    // An automatic sync with create_missing off creates neither Dan nor his company (Ann, if she
    // is due again, fails again for the same reason).
    let synced = h.run("sync", json!({"entities": ["contact"]})).await;
    let detail = h.run_detail(synced["run_id"].as_str().unwrap()).await;
    let items = detail["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["outcome"] != "created"), "{detail}");
    assert!(items.iter().filter(|i| i["outcome"] == "failed").all(|i| i["error"]["message"] == why), "{detail}");
    // Pushed by name (create as told), Dan's company goes first.
    let run = h.run("push", json!({"entity": "contact", "record_ids": ["dan"]})).await;
    let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
    let outcome = |id: &str| detail["items"].as_array().unwrap().iter().find(|i| i["record_id"] == id).map(|i| i["outcome"].clone());
    assert_eq!((outcome("local"), outcome("dan")), (Some(json!("created")), Some(json!("created"))), "{detail}");
});
