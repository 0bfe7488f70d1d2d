//! Campaigns, their members and email activity with Salesforce, and contact lists, their
//! memberships and email engagements with HubSpot, on both backends. Salesforce: a workspace
//! campaign member names its campaign and contact by workspace id (mappings with `references`),
//! and arrives in Salesforce as a `CampaignMember` naming their Salesforce ids (pushed first when
//! Salesforce lacks them); an email logged in the workspace arrives as a `Task` of subtype
//! `Email` on that contact; a contact joining twice fails with Salesforce's own reason; members
//! and tasks made in Salesforce come back naming workspace records. HubSpot: a membership pushes
//! its list (created by name) and contact first and adds the contact to the list, an email
//! arrives associated with its contact; a pair twice in one batch fails; members and emails made
//! in HubSpot come back naming workspace records; a membership deleted in the workspace leaves
//! the list.

use crmhost_tests::{Backend, Crm, SyncHarness};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn refer(h: &SyncHarness, entity: &str, app_field: &str, crm_field: &str, references: &str) {
    let path = h.integration_path(&format!("/field-mappings/{entity}/{app_field}"));
    let body = json!({"crm_field": crm_field, "direction": "both", "references": references});
    let (status, answer) = SyncHarness::send(h.api(Method::PUT, &path).json(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

fn crm_record(h: &SyncHarness, object: &str, id: &str) -> serde_json::Map<String, Value> {
    let state = h.sim.sim().salesforce();
    state
        .object(object)
        .unwrap()
        .live(id)
        .unwrap_or_else(|| panic!("no {object} {id}"))
        .fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// The workspace record of `entity` a pull brought with this `external_id`.
async fn pulled(h: &SyncHarness, entity: &str, external_id: &str) -> Value {
    let records = h.all_records(entity).await;
    let found = records.iter().find(|r| r["fields"]["external_id"] == external_id);
    found.cloned().unwrap_or_else(|| panic!("no {entity} {external_id}: {records:?}"))
}

fn item<'a>(detail: &'a Value, entity: &str, id: &str) -> &'a Value {
    let items = detail["items"].as_array().unwrap();
    items
        .iter()
        .find(|i| i["entity"] == entity && i["record_id"] == id)
        .unwrap_or_else(|| panic!("{entity} {id}: {detail}"))
}

#[tokio::test]
async fn campaign_members_and_email_tasks_travel_both_ways_naming_workspace_records() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = SyncHarness::start(backend, Crm::Salesforce, Default::default()).await else { continue };
        refer(&h, "campaign_member", "campaign_id", "CampaignId", "campaign").await;
        refer(&h, "campaign_member", "contact_id", "ContactId", "contact").await;
        refer(&h, "task", "who_id", "WhoId", "contact").await;

        h.put_records(
            "campaign",
            vec![
                json!({"id": "spring", "fields": {"name": "Spring launch", "type": "Email", "status": "In Progress"}}),
            ],
        )
        .await;
        h.put_records(
            "contact",
            vec![json!({"id": "ann", "fields": {"email": "ann@camp.example", "last_name": "Ann"}})],
        )
        .await;
        let member = json!({"id": "m1", "fields": {"external_id": "m1", "campaign_id": "spring", "contact_id": "ann", "status": "Responded"}});
        let twice = json!({"id": "m2", "fields": {"external_id": "m2", "campaign_id": "spring", "contact_id": "ann"}});
        h.put_records("campaign_member", vec![member, twice]).await;
        let email = json!({"id": "t1", "fields": {"external_id": "t1", "subject": "Email: Spring launch", "status": "Completed",
            "subtype": "Email", "who_id": "ann", "activity_date": "2027-03-01"}});
        h.put_records("task", vec![email]).await;

        // Members and tasks push their campaign and contact first, then name them.
        let run = h.run("sync", json!({"entities": ["campaign_member", "task"]})).await;
        let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
        let spring = item(&detail, "campaign", "spring")["crm_id"].as_str().unwrap().to_owned();
        let ann = item(&detail, "contact", "ann")["crm_id"].as_str().unwrap().to_owned();
        let m1 = item(&detail, "campaign_member", "m1")["crm_id"].as_str().unwrap().to_owned();
        let stored = crm_record(&h, "CampaignMember", &m1);
        assert_eq!((stored["CampaignId"].as_str(), stored["ContactId"].as_str()), (Some(&*spring), Some(&*ann)));
        assert_eq!(stored["Status"], "Responded");
        let refused = item(&detail, "campaign_member", "m2");
        assert_eq!(refused["outcome"], "failed", "{refused}");
        assert_eq!(refused["error"]["crm_code"], "DUPLICATE_VALUE", "{refused}");
        assert_eq!(refused["error"]["message"], "Already a campaign member.", "{refused}");
        let t1 = item(&detail, "task", "t1")["crm_id"].as_str().unwrap().to_owned();
        let task = crm_record(&h, "Task", &t1);
        assert_eq!((task["WhoId"].as_str(), task["TaskSubtype"].as_str()), (Some(&*ann), Some("Email")));
        assert_eq!(task["ActivityDate"], "2027-03-01");

        // Made in Salesforce: a contact joins the campaign and gets an email; both come back
        // naming workspace records (the new contact pulled first).
        let now = h.sim.sim().clock.now();
        let bob = h.create_crm_contact("bob@camp.example", "Bob", "Bobson");
        {
            let mut state = h.sim.sim().salesforce();
            let user = crm_sim::salesforce::USER_ID;
            let joined = json!({"CampaignId": spring, "ContactId": bob, "External_Id__c": "crm-m3", "Status": "Sent"});
            state.object_mut("CampaignMember").unwrap().create(joined.as_object().unwrap(), now, user).unwrap();
            let mailed =
                json!({"Subject": "Email: Welcome", "TaskSubtype": "Email", "WhoId": bob, "External_Id__c": "crm-t2"});
            state.object_mut("Task").unwrap().create(mailed.as_object().unwrap(), now, user).unwrap();
        }
        let run = h.run("sync", json!({"entities": ["campaign_member", "task"]})).await;
        assert_eq!(run["conflict_count"], 0, "{run}");
        let joined = pulled(&h, "campaign_member", "crm-m3").await;
        assert_eq!(joined["fields"]["campaign_id"], "spring", "{joined}");
        let bob_id = joined["fields"]["contact_id"].as_str().unwrap().to_owned();
        assert_eq!(h.record("contact", &bob_id).await["fields"]["email"], "bob@camp.example");
        let mailed = pulled(&h, "task", "crm-t2").await;
        assert_eq!(
            (mailed["fields"]["who_id"].as_str(), mailed["fields"]["subtype"].as_str()),
            (Some(&*bob_id), Some("Email"))
        );
    }
}

/// The HubSpot list (by name) and the ids of its members.
fn hubspot_members(h: &SyncHarness, name: &str) -> Vec<String> {
    let state = h.sim.sim().hubspot();
    let list = state.lists.by_name("contacts", name).unwrap_or_else(|| panic!("no HubSpot list {name}"));
    list.members.keys().map(u64::to_string).collect()
}

#[tokio::test]
async fn hubspot_list_memberships_and_email_engagements_travel_both_ways_naming_workspace_records() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = SyncHarness::start(backend, Crm::Hubspot, Default::default()).await else { continue };
        refer(&h, "list_membership", "list_id", "listId", "list").await;
        refer(&h, "list_membership", "contact_id", "recordId", "contact").await;
        refer(&h, "email", "contact_id", "associations.contact", "contact").await;

        h.put_records("list", vec![json!({"id": "spring", "fields": {"name": "Spring launch"}})]).await;
        h.put_records(
            "contact",
            vec![json!({"id": "ann", "fields": {"email": "ann@lists.example", "last_name": "Ann"}})],
        )
        .await;
        let member = json!({"id": "m1", "fields": {"list_id": "spring", "contact_id": "ann"}});
        let twice = json!({"id": "m2", "fields": {"list_id": "spring", "contact_id": "ann"}});
        h.put_records("list_membership", vec![member, twice]).await;
        let email = json!({"id": "e1", "fields": {"external_id": "e1", "subject": "Spring launch", "body": "Hello Ann",
            "direction": "EMAIL", "status": "SENT", "sent_at": "2027-03-01T09:00:00Z", "contact_id": "ann"}});
        h.put_records("email", vec![email]).await;

        // Memberships and emails push their list and contact first, then name them.
        let run = h.run("sync", json!({"entities": ["list_membership", "email"]})).await;
        let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
        let spring = item(&detail, "list", "spring")["crm_id"].as_str().unwrap().to_owned();
        let ann = item(&detail, "contact", "ann")["crm_id"].as_str().unwrap().to_owned();
        let m1 = item(&detail, "list_membership", "m1");
        assert_eq!(
            (m1["outcome"].as_str(), m1["crm_id"].as_str()),
            (Some("created"), Some(&*format!("{spring}:{ann}")))
        );
        assert_eq!(hubspot_members(&h, "Spring launch"), [ann.as_str()]);
        let refused = item(&detail, "list_membership", "m2");
        assert_eq!(refused["outcome"], "failed", "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("more than once"), "{refused}");
        let e1: u64 = item(&detail, "email", "e1")["crm_id"].as_str().unwrap().parse().unwrap();
        {
            let state = h.sim.sim().hubspot();
            let stored = &state.objects["emails"].records[&e1].properties;
            assert_eq!(stored["hs_email_subject"], "Spring launch");
            assert_eq!(stored["hs_email_direction"], "EMAIL");
            let contacts = state.associations.of("emails", e1, "contacts");
            assert_eq!(contacts.keys().map(u64::to_string).collect::<Vec<_>>(), [ann.as_str()]);
            assert!(contacts.values().all(|types| types.contains(&198)), "{contacts:?}");
        }

        // Made in HubSpot: a contact joins the list and gets an email; both come back naming
        // workspace records (the new contact pulled first).
        let now = h.sim.sim().clock.now();
        let bob = h.create_crm_contact("bob@lists.example", "Bob", "Bobson");
        {
            let mut state = h.sim.sim().hubspot();
            let bob_id: u64 = bob.parse().unwrap();
            assert_eq!(state.add_list_members(spring.parse().unwrap(), &[bob_id], now), [bob_id]);
            let id = state.new_id();
            let properties = [
                ("hs_timestamp", "2027-03-02T10:00:00.000Z"),
                ("hs_email_subject", "Welcome"),
                ("hs_email_direction", "INCOMING_EMAIL"),
                ("crmhost_external_id", "crm-e2"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            let record =
                crm_sim::hubspot::HsRecord { id, properties, created_at: now, updated_at: now, archived_at: None };
            state.objects.get_mut("emails").unwrap().insert(record);
            assert!(state.associations.link(("emails", id), ("contacts", bob_id), 198));
        }
        let run = h.run("sync", json!({"entities": ["list_membership", "email"]})).await;
        assert_eq!((run["conflict_count"].as_i64(), run["failure_count"].as_i64()), (Some(0), Some(0)), "{run}");
        let members = h.all_records("list_membership").await;
        let joined = members
            .iter()
            .find(|m| m["fields"]["contact_id"] != "ann" && m["id"] != "m2")
            .unwrap_or_else(|| panic!("{members:?}"));
        assert_eq!(joined["fields"]["list_id"], "spring", "{joined}");
        assert!(joined["fields"]["added_at"].is_string(), "{joined}");
        let bob_ws = joined["fields"]["contact_id"].as_str().unwrap().to_owned();
        assert_eq!(h.record("contact", &bob_ws).await["fields"]["email"], "bob@lists.example");
        let welcome = pulled(&h, "email", "crm-e2").await;
        assert_eq!(
            (welcome["fields"]["contact_id"].as_str(), welcome["fields"]["direction"].as_str()),
            (Some(&*bob_ws), Some("INCOMING_EMAIL"))
        );

        // Deleted in the workspace: the contact leaves the HubSpot list; the list stays.
        let (status, body) = h.patch_settings(json!({"propagate_deletes": true})).await;
        assert!(status.is_success(), "{body}");
        let (status, _) = SyncHarness::send(h.api(Method::DELETE, "/records/list_membership/m1")).await;
        assert!(status.is_success(), "{status}");
        let run = h.run("sync", json!({"entities": ["list_membership"]})).await;
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(hubspot_members(&h, "Spring launch"), [bob]);
    }
}
