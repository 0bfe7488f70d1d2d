//! Campaigns, their members and email activity with Salesforce, on both backends: a workspace
//! campaign member names its campaign and contact by workspace id (mappings with `references`),
//! and arrives in Salesforce as a `CampaignMember` naming their Salesforce ids (pushed first when
//! Salesforce lacks them); an email logged in the workspace arrives as a `Task` of subtype
//! `Email` on that contact; a contact joining twice fails with Salesforce's own reason; members
//! and tasks made in Salesforce come back naming workspace records.

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
        let members = h.all_records("campaign_member").await;
        let joined =
            members.iter().find(|m| m["fields"]["external_id"] == "crm-m3").unwrap_or_else(|| panic!("{members:?}"));
        assert_eq!(joined["fields"]["campaign_id"], "spring", "{joined}");
        let bob_id = joined["fields"]["contact_id"].as_str().unwrap().to_owned();
        assert_eq!(h.record("contact", &bob_id).await["fields"]["email"], "bob@camp.example");
        let tasks = h.all_records("task").await;
        let mailed =
            tasks.iter().find(|t| t["fields"]["external_id"] == "crm-t2").unwrap_or_else(|| panic!("{tasks:?}"));
        assert_eq!(
            (mailed["fields"]["who_id"].as_str(), mailed["fields"]["subtype"].as_str()),
            (Some(&*bob_id), Some("Email"))
        );
    }
}
