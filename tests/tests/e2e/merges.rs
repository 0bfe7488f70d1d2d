//! Merges in the CRM: a record merged into one the workspace does not follow yet moves its
//! workspace record along (relinked, the survivor's values merged in, nothing imported twice); one
//! merged into a record another workspace record follows was a duplicate and goes like a deletion.

use crmhost_tests::{Backend, Crm, SyncHarness, contacts};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The CRM id the workspace record follows, if any.
async fn followed(h: &SyncHarness, id: &str) -> Option<String> {
    let record = h.record("contact", id).await;
    record["sync"].as_array().and_then(|links| links.first()).and_then(|l| l["crm_id"].as_str()).map(str::to_owned)
}

each_crm_and_backend!(a_merge_in_the_crm_moves_or_retires_the_workspace_record, |h| {
    let (status, body) = h.patch_settings(json!({"propagate_deletes": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    h.put_records("contact", contacts(0..3, "")).await;
    let pushed = h.run("push", json!({"entity": "contact", "record_ids": ["c0", "c1", "c2"]})).await;
    assert_eq!(pushed["success_count"], 3, "{pushed}");
    let (x0, x1, x2) = (h.crm_id_of("c0@example.com"), h.crm_id_of("c1@example.com"), h.crm_id_of("c2@example.com"));
    // A first sync sets the pull cursor: the next one is incremental (it reads deletions).
    h.run("sync", json!({"entities": ["contact"]})).await;

    // Two followed records merged: c1 was c0's duplicate. And c2's merged into a record
    // created in the CRM since, which nothing follows yet.
    h.merge_crm_contacts(&x0, &x1);
    let newcomer = h.create_crm_contact("newcomer@example.com", "Nora", "Newcomer");
    h.merge_crm_contacts(&newcomer, &x2);
    let run = h.run("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(run["status"], "completed", "{run}");

    assert!(h.record("contact", "c1").await["deleted_at"].is_string(), "the duplicate went like a deletion");
    assert_eq!(followed(&h, "c0").await, Some(x0.clone()), "the survivor's record stays as it was");
    assert_eq!(followed(&h, "c2").await, Some(newcomer.clone()), "c2 follows the record it was merged into");
    let c2 = h.record("contact", "c2").await;
    assert_eq!(c2["fields"]["first_name"], "Nora", "the survivor's values merged in: {c2}");
    let live: Vec<Value> = h.all_records("contact").await;
    let ids: Vec<&str> = live.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "nothing imported for the survivor: {ids:?}");

    let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
    let items = detail["items"].as_array().unwrap();
    let relinked = items.iter().find(|i| i["record_id"] == "c2" && i["outcome"] == "linked");
    let relinked = relinked.unwrap_or_else(|| panic!("an item says c2 was relinked: {items:?}"));
    assert_eq!(relinked["error"]["kind"], "merged", "{relinked}");
    assert_eq!(relinked["error"]["merged_id"], x2.as_str());

    // Later syncs leave it be: the merge is not applied twice, the survivor stays followed.
    let again = h.run("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(followed(&h, "c2").await, Some(newcomer));
    assert_eq!(h.all_records("contact").await.len(), 2);
    if h.crm == Crm::Hubspot {
        // A merged-away id still reads as the survivor (HubSpot's behaviour), so a push of c0 is safe.
        assert!(h.crm_record_live("contact", &x0));
    }
});
