//! The conflicts screen: the list (paged), the split view resolved field by field with an edited
//! merged value, a conflict ignored, and "always use the CRM" set for a field from a conflict —
//! with the workspace, the CRM and the API as witnesses, on SQLite and PostgreSQL.

use std::time::Duration;

use crmhost::auth::Role;
use crmhost_tests::{Backend, Browser, Crm, SyncHarness, contacts, token};
use reqwest::Method;
use serde_json::{Value, json};

use super::{assert_no_csp_violations, type_into};

/// Contacts in step on both sides under `manual_review`, then `first_name` changed differently on
/// both sides of all of them and `last_name` too on `c0`; a sync finds the conflicts.
pub(super) async fn conflicts(h: &SyncHarness, count: usize) {
    let ids: Vec<String> = (0..count).map(|i| format!("c{i}")).collect();
    h.put_records("contact", contacts(0..count, "")).await;
    let run = h.run("push", json!({"entity": "contact", "record_ids": ids})).await;
    assert_eq!(run["success_count"], count, "{run}");
    h.run("sync", json!({"entities": ["contact"]})).await;
    let (status, body) = h.patch_settings(json!({"conflict_strategy": "manual_review"})).await;
    assert!(status.is_success(), "{body}");
    let edits: Vec<Value> = (0..count)
        .map(|i| {
            let mut fields = json!({"first_name": format!("App{i}")});
            if i == 0 {
                fields["last_name"] = json!("AppLast");
            }
            json!({"id": format!("c{i}"), "fields": fields})
        })
        .collect();
    h.put_records("contact", edits).await;
    // The CRM's edits come later by its own clock.
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..count {
        let crm_id = h.crm_id_of(&format!("c{i}@example.com"));
        h.edit_crm_contact(&crm_id, "first_name", &format!("Crm{i}"));
        if i == 0 {
            h.edit_crm_contact(&crm_id, "last_name", "CrmLast");
        }
    }
    let run = h.run("sync", json!({"entities": ["contact"]})).await;
    assert_eq!(run["conflict_count"], count, "{run}");
}

async fn conflict_of(h: &SyncHarness, record: &str) -> Value {
    let (_, listed) = SyncHarness::send(h.api(Method::GET, &format!("/conflicts?record_id={record}"))).await;
    listed["conflicts"][0].clone()
}

async fn resolve_ignore_and_always(backend: Backend, shots: &str) {
    crmhost_tests::capture_logs();
    let Some(h) = SyncHarness::start(backend, Crm::Salesforce, Default::default()).await else { return };
    let Some(browser) = Browser::start(1280, 900).await else { return };
    conflicts(&h, 23).await;
    let url =
        format!("{}/console/#token={}&next=/integrations/salesforce/conflicts", h.app.base, token("w1", Role::Admin));
    browser.open(&url).await;

    // The list pages: 20, then the rest.
    browser.wait_for_text("Showing 20 (more below).").await;
    browser.screenshot(&format!("{shots}conflicts")).await;
    browser.click("Show more conflicts").await;
    browser.wait_for_text("Showing 23.").await;

    // c0 differs in two fields: keep the CRM's first name, write a merged last name.
    browser.click_css("[aria-label='Review the conflict on c0']").await;
    browser.wait_for_text("differs").await;
    let page = browser.page_text().await;
    for expected in ["First0", "App0", "Crm0", "AppLast", "CrmLast", "differs", "same on both sides"] {
        assert!(page.contains(expected), "{expected:?} in the split view:\n{page}");
    }
    browser.click_css("input[name=pick-first_name][value=crm]").await;
    browser.click_css("input[name=pick-last_name][value=edit]").await;
    type_into(&browser, "#merged-last_name", "Merged-Last").await;
    browser.screenshot(&format!("{shots}conflict-split")).await;
    browser.click("Resolve").await;
    browser.wait_for_text("Resolved: the kept values were written to both sides.").await;
    let record = h.record("contact", "c0").await;
    assert_eq!(record["fields"]["first_name"], "Crm0", "{record}");
    assert_eq!(record["fields"]["last_name"], "Merged-Last", "{record}");
    let crm = h.crm_contacts();
    let in_crm = &crm[&h.crm_id_of("c0@example.com")];
    assert_eq!(in_crm["last_name"], "Merged-Last", "written to the CRM too: {in_crm:?}");
    assert_eq!(conflict_of(&h, "c0").await["status"], "resolved");

    // c1: ignored, nothing written.
    browser.wait_for_text("Showing 20 (more below).").await;
    browser.click("Show more conflicts").await;
    browser.wait_for_text("Showing 22.").await;
    browser.click_css("[aria-label='Review the conflict on c1']").await;
    browser.wait_for_text("differs").await;
    browser.click("Ignore").await;
    browser.wait_for_text("Ignored: nothing was written").await;
    assert_eq!(conflict_of(&h, "c1").await["status"], "ignored");
    assert_eq!(h.record("contact", "c1").await["fields"]["first_name"], "App1");

    // c2: the CRM always wins first_name from now on; the 21 conflicts waiting on it settle.
    browser.click("Show more conflicts").await;
    browser.wait_for_text("Showing 21.").await;
    browser.click_css("[aria-label='Review the conflict on c2']").await;
    browser.wait_for_text("differs").await;
    browser.click("Always use Salesforce for first_name").await;
    browser.wait_for_text("Salesforce now always wins first_name. 21 waiting conflicts were settled.").await;
    browser.wait_for_text("Resolved").await;
    let settings = SyncHarness::send(h.api(Method::GET, &h.integration_path("/settings"))).await.1;
    assert_eq!(settings["settings"]["conflict_rules"]["contact"]["first_name"], "crm", "{settings}");
    assert_eq!(h.record("contact", "c2").await["fields"]["first_name"], "Crm2");
    let (_, pending) = SyncHarness::send(h.api(Method::GET, "/conflicts?status=pending")).await;
    assert_eq!(pending["conflicts"], json!([]), "{pending}");
    browser.screenshot(&format!("{shots}conflict-resolved")).await;

    // The list says nothing is waiting.
    browser.click("← All conflicts").await;
    browser.wait_for_text("No conflicts are waiting.").await;
    assert_no_csp_violations(&h.app.base);
    browser.close().await;
}

#[tokio::test]
async fn a_conflict_is_resolved_field_by_field_another_ignored_and_a_field_rule_set_from_one() {
    resolve_ignore_and_always(Backend::Sqlite, "").await;
}

#[tokio::test]
async fn the_conflict_journey_works_on_postgres_too() {
    resolve_ignore_and_always(Backend::Postgres, "postgres-").await;
}
