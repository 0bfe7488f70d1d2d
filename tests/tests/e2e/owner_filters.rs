//! Filters naming the connected CRM user (`{"connected_user": true}`): "only records I own" syncs
//! exactly the contacts the connected user owns in the CRM, on both CRMs and both backends.

use crmhost_tests::{Backend, Crm, SyncHarness};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The CRM's record-owner field of a contact, and the ids of the connected user and of another one.
fn owners(crm: Crm) -> (&'static str, String, &'static str) {
    match crm {
        Crm::Salesforce => ("OwnerId", crm_sim::salesforce::USER_ID.to_owned(), "0055g00000OTHERAAA"),
        Crm::Hubspot => {
            let [me, other, ..] = crm_sim::hubspot::owners::OWNERS else { panic!("two owners") };
            ("hubspot_owner_id", me.id.to_owned(), other.id)
        }
        Crm::Pipedrive => unreachable!("this suite runs for the bundled CRMs"),
    }
}

each_crm_and_backend!(only_records_owned_by_the_connected_user_are_pulled, |h| {
    let (owner_field, me, other) = owners(h.crm);

    // The connection reported whose records are "mine".
    let listed = h.listed_integration().await;
    assert_eq!(listed["account"]["details"]["owner_id"], me.as_str(), "{listed}");

    // Six CRM contacts: three of mine, three of another rep's.
    h.sim.sim().seed("contact", 6).expect("seeded");
    let ids: Vec<String> = h.crm_contacts().into_keys().collect();
    assert_eq!(ids.len(), 6);
    for (i, id) in ids.iter().enumerate() {
        h.edit_crm_contact_field(id, owner_field, if i < 3 { &me } else { other });
    }

    // Map the owner into the workspace and keep only the connected user's records.
    let mapping = h.integration_path("/field-mappings/contact/owner");
    let (status, body) =
        SyncHarness::send(h.api(Method::PUT, &mapping).json(&json!({"crm_field": owner_field, "direction": "pull"})))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mine = json!({"contact": [{"field": "owner", "op": "eq", "value": {"connected_user": true}}]});
    let (status, body) = h.patch_settings(json!({ "filters": mine })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["filters"], mine, "the placeholder is stored, not the id: {body}");

    let run = h.run("pull", json!({"entity": "contact"})).await;
    assert_eq!(run["status"], "completed", "{run}");
    let pulled = h.all_records("contact").await;
    assert_eq!(pulled.len(), 3, "only the connected user's contacts: {pulled:?}");
    for record in &pulled {
        assert_eq!(record["fields"]["owner"], me.as_str(), "{record}");
    }

    // Values that cannot mean a user are refused with the reason.
    for (bad, reason) in [
        (json!({"field": "owner", "op": "eq", "value": {"connected_user": false}}), "connected_user"),
        (json!({"field": "owner", "op": "contains", "value": {"connected_user": true}}), "`eq`, `neq` and `in`"),
    ] {
        let (status, body) = h.patch_settings(json!({"filters": {"contact": [bad]}})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(reason), "{body}");
    }
});

#[tokio::test]
async fn a_connection_that_names_no_user_refuses_the_filter_with_the_reason() {
    // HubSpot without the owners API (an app lacking the optional scope): the connection has no owner id.
    let knobs = crm_sim::knobs::Knobs { hubspot_grants_optional_scopes: false, ..Default::default() };
    let h = SyncHarness::start(Backend::Sqlite, Crm::Hubspot, knobs).await.expect("sqlite");
    let listed = h.listed_integration().await;
    assert!(listed["account"]["details"].get("owner_id").is_none(), "{listed}");
    let mine = json!({"contact": [{"field": "email", "op": "eq", "value": {"connected_user": true}}]});
    let (status, body) = h.patch_settings(json!({ "filters": mine })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("crm.objects.owners.read") && message.contains("`email`"), "{body}");
}
