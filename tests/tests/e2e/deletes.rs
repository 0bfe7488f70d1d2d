//! Deletes both ways for every entity of each CRM, on both backends, with `propagate_deletes`:
//! a record deleted in the CRM is deleted in the workspace by the next incremental sync (no
//! webhook: Salesforce's `queryAll`, HubSpot's archived list, Pipedrive's `recents`), and a record
//! deleted in the workspace is deleted in the CRM.

use crmhost_tests::{Backend, Crm, SyncHarness};
use reqwest::Method;
use serde_json::{Value, json};

/// The entities of a CRM.
fn entities(crm: Crm) -> &'static [&'static str] {
    match crm {
        Crm::Salesforce => &["contact", "lead", "account", "opportunity", "campaign", "task"],
        Crm::Hubspot => &["contact", "company", "deal", "email"],
        Crm::Pipedrive => &["contact", "company", "deal"],
    }
}

/// A workspace record of `entity` the CRM accepts (its match key and required fields filled).
fn sample(entity: &str, id: &str) -> Value {
    let fields = match entity {
        "contact" => json!({"email": format!("{id}@example.com"), "first_name": "Del", "last_name": id}),
        "lead" => json!({"email": format!("{id}@example.com"), "last_name": id, "company": "Deleted Inc."}),
        "account" => json!({"name": format!("Account {id}"), "phone": "+1 555 0100"}),
        "company" => json!({"name": format!("Company {id}"), "domain": format!("{id}.example.com")}),
        "opportunity" => json!({"name": format!("Deal {id}"), "stage": "Prospecting", "close_date": "2026-12-31"}),
        "campaign" => json!({"name": format!("Campaign {id}"), "status": "Planned"}),
        "task" => json!({"external_id": id, "subject": format!("Email: {id}"), "subtype": "Email"}),
        "deal" => json!({"name": format!("Deal {id}"), "stage": "appointmentscheduled", "close_date": "2026-12-31"}),
        "email" => json!({"external_id": id, "subject": format!("Hello {id}"), "sent_at": "2026-12-31T09:00:00Z"}),
        other => panic!("no sample for {other}"),
    };
    json!({"id": id, "fields": fields})
}

/// The CRM id each workspace record of a run was written to.
async fn crm_ids(h: &SyncHarness, run: &Value) -> Vec<(String, String)> {
    let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
    detail["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| Some((i["record_id"].as_str()?.to_owned(), i["crm_id"].as_str()?.to_owned())))
        .collect()
}

each_crm_and_backend!(pipedrive_too: deletes_travel_both_ways_for_every_entity, |h| {
    let (status, body) = h.patch_settings(json!({"propagate_deletes": true})).await;
    assert!(status.is_success(), "{body}");
    for entity in entities(h.crm) {
        let ids = [format!("{entity}-1"), format!("{entity}-2")];
        h.put_records(entity, ids.iter().map(|id| sample(entity, id)).collect()).await;
        let pushed = h.run("push", json!({"entity": entity, "record_ids": ids})).await;
        assert_eq!(pushed["success_count"], 2, "{entity}: {pushed}");
        let written = crm_ids(&h, &pushed).await;
        let crm_of = |id: &str| written.iter().find(|(r, _)| r == id).map(|(_, c)| c.clone()).unwrap();
        // A first sync sets the pull cursor: the next one is incremental.
        let first = h.run("sync", json!({"entities": [entity]})).await;
        assert_eq!(first["status"], "completed", "{entity}: {first}");

        // Deleted in the CRM → deleted in the workspace.
        h.delete_crm_record(entity, &crm_of(&ids[0]));
        let run = h.run("sync", json!({"entities": [entity]})).await;
        assert_eq!(run["status"], "completed", "{entity}: {run}");
        let record = h.record(entity, &ids[0]).await;
        assert!(record["deleted_at"].is_string(), "{entity}: deleted in the workspace: {record}");
        assert!(h.record(entity, &ids[1]).await["deleted_at"].is_null(), "{entity}: the other stays");

        // Deleted in the workspace → deleted in the CRM.
        let (status, _) = SyncHarness::send(h.api(Method::DELETE, &format!("/records/{entity}/{}", ids[1]))).await;
        assert!(status.is_success(), "{entity}: {status}");
        let run = h.run("sync", json!({"entities": [entity]})).await;
        assert_eq!(run["status"], "completed", "{entity}: {run}");
        assert!(!h.crm_record_live(entity, &crm_of(&ids[1])), "{entity}: deleted in the CRM");
    }
});

/// Calls to HubSpot's list endpoint: in an incremental sync, only the archived walk lists.
fn archived_walks(h: &SyncHarness) -> u64 {
    h.sim.sim().call_count("hubspot GET /crm/v3/objects/{object}")
}

#[tokio::test]
async fn hubspot_walks_its_archived_list_once_per_sweep_interval_from_the_last_sweep() {
    let scheduler = crmhost::sync::SchedulerOptions {
        deletion_sweep: std::time::Duration::from_secs(3600),
        ..crmhost::sync::SchedulerOptions::default()
    };
    let h = SyncHarness::start_with(Backend::Sqlite, Crm::Hubspot, Default::default(), scheduler).await.unwrap();
    let (status, body) = h.patch_settings(json!({"propagate_deletes": true})).await;
    assert!(status.is_success(), "{body}");
    h.put_records("contact", crmhost_tests::contacts(0..3, "")).await;
    h.run("push", json!({"entity": "contact", "record_ids": ["c0", "c1", "c2"]})).await;
    let sync = || async { h.run("sync", json!({"entities": ["contact"]})).await };
    sync().await; // a full pull: sets the cursor
    let before = archived_walks(&h);
    sync().await; // the first incremental pull sweeps
    assert!(archived_walks(&h) > before, "the first incremental sync walks the archived list");

    // Within the interval: no walk, so a deletion waits for the next sweep...
    h.delete_crm_contact(&h.crm_id_of("c1@example.com"));
    // ...and a later change moves the pull's cursor past the deletion.
    h.edit_crm_contact(&h.crm_id_of("c2@example.com"), "title", "Later change");
    let before = archived_walks(&h);
    sync().await;
    assert_eq!(archived_walks(&h), before, "no walk within the interval");
    assert!(h.record("contact", "c1").await["deleted_at"].is_null());
    assert_eq!(h.record("contact", "c2").await["fields"]["title"], "Later change");

    // The interval passes (the watermark moved back): the sweep runs from the last one's start,
    // so the deletion behind the cursor is still found.
    let (store, ws) = (&h.app.state.store, crmhost::domain::WorkspaceId::parse("w1").unwrap());
    let (slug, entity) = (
        crmhost::domain::PluginSlug::parse("hubspot").unwrap(),
        crmhost::domain::EntityName::parse("contact").unwrap(),
    );
    let swept = store.deletions_swept_at(&ws, &slug, &entity).await.unwrap().expect("a sweep was recorded");
    store.set_deletions_swept_at(&ws, &slug, &entity, swept - chrono::Duration::hours(2)).await.unwrap();
    let before = archived_walks(&h);
    sync().await;
    assert!(archived_walks(&h) > before, "the sweep is due again");
    assert!(h.record("contact", "c1").await["deleted_at"].is_string(), "found from the last sweep's start");
    let again = store.deletions_swept_at(&ws, &slug, &entity).await.unwrap().unwrap();
    assert!(again > swept, "the new sweep is recorded");
}
