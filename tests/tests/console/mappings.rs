//! The field-mappings screen: Auto-map, the required fields left unmapped, the dialog's searchable
//! pickers and transforms, errors from the API beside the field, the preview on real records, save.

use crmhost::auth::Role;
use crmhost_tests::{Backend, Browser, token};
use fantoccini::Locator;
use reqwest::Method;
use serde_json::{Value, json};

use super::{api_json, assert_no_csp_violations, console_url, start, type_into};

async fn choose(browser: &Browser, css: &str, value: &str) {
    let select = browser.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}"));
    select.select_by_value(value).await.expect("option");
}

/// The dialog's error beside `slot` once it says something.
async fn dialog_error(browser: &Browser, slot: &str, expected: &str) -> String {
    browser.wait_for_text(expected).await;
    browser.text_of(&format!("#dialog-error-{slot}")).await
}

#[tokio::test]
async fn auto_map_adjust_with_the_pickers_preview_and_save() {
    let Some((app, browser)) = start(Backend::Sqlite, Default::default()).await else { return };
    assert_eq!(app.connect("w1", "salesforce").await.status(), reqwest::StatusCode::OK);
    app.sim().sim().seed("contact", 3).expect("seeded");
    // A workspace contact with fields the defaults do not map.
    let put = app.as_role(Method::PUT, "/api/v1/workspaces/w1/records/contact", "w1", Role::Admin).json(&json!({
        "records": [{"id": "c1", "fields": {"email": "ada@example.com", "first_name": "Ada", "last_name": "  Lovelace ",
            "mobile": "+44 (20) 7946-0000"}}]
    }));
    assert!(put.send().await.expect("put").status().is_success());

    let url = format!("{}&next=/integrations/salesforce/mappings", console_url(&app, &token("w1", Role::Admin)));
    browser.open(&url).await;
    browser.wait_for_text("Using Salesforce's default mappings.").await;
    browser.wait_for_text("From Salesforce into your app").await;
    let page = browser.page_text().await;
    assert!(page.contains("Email") && page.contains("match key") && page.contains("Lower-case"), "{page}");

    // Auto-map proposes the mobile number, marked as a suggestion and not saved yet.
    browser.click("Auto-map").await;
    browser.wait_for_text("Auto-map added").await;
    let row = browser.text_of("tr[data-app-field=mobile]").await;
    assert!(row.contains("MobilePhone") && row.contains("Suggested"), "{row}");
    browser.wait_for_text("Unsaved changes").await;

    // Without a last name Salesforce cannot create a contact: the page says so.
    browser.click_css("[aria-label='Remove the mapping of last_name']").await;
    browser.wait_for_text("Salesforce needs these fields to create a contact").await;
    let required = browser.text_of("#required-unmapped").await;
    assert!(required.contains("LastName"), "{required}");
    browser.screenshot("mappings-required").await;

    // "Map it" opens the dialog on that field; map it back with a transform.
    browser.click("Map it").await;
    let crm = browser.client.find(Locator::Css("#pick-crm")).await.expect("crm picker");
    assert_eq!(crm.prop("value").await.expect("value").as_deref(), Some("LastName"));
    let hint = browser.text_of("#pick-crm-hint").await;
    assert!(hint.contains("required to create"), "the picker describes the field: {hint}");
    type_into(&browser, "#pick-app", "last_name").await;
    choose(&browser, "#pick-transform", "trim").await;
    browser.click_css("dialog button[type=submit]").await;
    browser.wait_for_no_text("Salesforce needs these fields").await;

    // Edit the suggestion: a field the CRM lacks, then one it will not write, each refused beside
    // the picker; then the right one with a transform.
    browser.click_css("[aria-label='Edit the mapping of mobile']").await;
    let options = browser.script("return document.querySelectorAll('#crm-fields option').length").await;
    assert!(options.as_u64().is_some_and(|n| n > 10), "the picker lists the CRM's fields: {options}");
    type_into(&browser, "#pick-crm", "NoSuchField").await;
    browser.click_css("dialog button[type=submit]").await;
    let error = dialog_error(&browser, "crm", "has no field").await;
    assert!(error.contains("NoSuchField"), "{error}");
    type_into(&browser, "#pick-crm", "CreatedDate").await;
    browser.click_css("dialog button[type=submit]").await;
    let error = dialog_error(&browser, "crm", "cannot be written").await;
    assert!(error.contains("CreatedDate"), "the API's refusal beside the field: {error}");
    browser.screenshot("mappings-dialog-error").await;
    type_into(&browser, "#pick-crm", "MobilePhone").await;
    choose(&browser, "#pick-transform", "digits_only").await;
    browser.click_css("dialog button[type=submit]").await;
    browser.wait_for_no_text("cannot be written").await;

    // The preview shows the workspace record as it would be sent, transformed.
    browser.wait_for_text("442079460000").await;
    let preview = browser.page_text().await;
    assert!(preview.contains("Lovelace"), "{preview}");
    browser.screenshot("mappings").await;

    // Save: the API now holds exactly what the page showed.
    browser.click("Save mappings").await;
    browser.wait_for_text("Mappings saved.").await;
    browser.wait_for_text("Using this workspace's own mappings.").await;
    let saved = api_json(&app, Method::GET, "/api/v1/workspaces/w1/integrations/salesforce/field-mappings").await;
    let contact =
        saved["entities"].as_array().expect("entities").iter().find(|e| e["entity"] == "contact").expect("contact");
    let by_app = |field: &str| -> Value {
        contact["mappings"]
            .as_array()
            .expect("mappings")
            .iter()
            .find(|m| m["app_field"] == field)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_app("mobile")["crm_field"], "MobilePhone", "{contact}");
    assert_eq!(by_app("mobile")["transform"], "digits_only", "{contact}");
    assert_eq!(by_app("last_name")["transform"], "trim", "{contact}");

    // A member may look and preview but not change them.
    browser
        .open(&format!("{}&next=/integrations/salesforce/mappings/lead", console_url(&app, &token("w1", Role::Member))))
        .await;
    browser.wait_for_text("Using Salesforce's default mappings.").await;
    for admin_only in ["Save mappings", "Add mapping", "Reset to defaults"] {
        let control = browser.control(admin_only).await;
        assert_eq!(control.attr("aria-disabled").await.expect("attr").as_deref(), Some("true"), "{admin_only}");
    }
    assert_no_csp_violations(&app.base);
    browser.close().await;
}

#[tokio::test]
async fn an_admin_maps_a_lookup_as_a_reference_to_another_record_type() {
    let Some((app, browser)) = start(Backend::Sqlite, Default::default()).await else { return };
    assert_eq!(app.connect("w1", "salesforce").await.status(), reqwest::StatusCode::OK);
    let url = format!("{}&next=/integrations/salesforce/mappings", console_url(&app, &token("w1", Role::Admin)));
    browser.open(&url).await;
    browser.wait_for_text("Using Salesforce's default mappings.").await;

    // "Refers to" shows for a lookup only.
    browser.click("Add mapping").await;
    type_into(&browser, "#pick-crm", "Email").await;
    let hidden = browser.script("return document.querySelector('#pick-references').closest('.field').hidden").await;
    assert_eq!(hidden, json!(true), "a plain field refers to nothing");
    type_into(&browser, "#pick-crm", "AccountId").await;
    let hidden = browser.script("return document.querySelector('#pick-references').closest('.field').hidden").await;
    assert_eq!(hidden, json!(false), "a lookup may refer to a record type");
    type_into(&browser, "#pick-app", "company_id").await;
    choose(&browser, "#pick-references", "account").await;
    // A transform on a reference is refused beside the picker.
    choose(&browser, "#pick-transform", "trim").await;
    browser.click_css("dialog button[type=submit]").await;
    let error = dialog_error(&browser, "references", "choose no transform").await;
    assert!(error.contains("ids as they are"), "{error}");
    choose(&browser, "#pick-transform", "").await;
    browser.screenshot("mappings-reference-dialog").await;
    browser.click_css("dialog button[type=submit]").await;
    let row = browser.text_of("tr[data-app-field=company_id]").await;
    assert!(row.contains("AccountId") && row.contains("→ Account"), "{row}");
    browser.screenshot("mappings-reference").await;

    browser.click("Save mappings").await;
    browser.wait_for_text("Mappings saved.").await;
    let saved = api_json(&app, Method::GET, "/api/v1/workspaces/w1/integrations/salesforce/field-mappings").await;
    let contact =
        saved["entities"].as_array().expect("entities").iter().find(|e| e["entity"] == "contact").expect("contact");
    let mapping = contact["mappings"].as_array().expect("mappings").iter().find(|m| m["app_field"] == "company_id");
    assert_eq!(mapping.expect("saved")["references"], "account", "{contact}");
    // Saving again from the page keeps it (the draft carries the reference).
    browser.click_css("[aria-label='Edit the mapping of company_id']").await;
    browser.click_css("dialog button[type=submit]").await;
    browser.click("Save mappings").await;
    browser.wait_for_text("Mappings saved.").await;
    let again = api_json(&app, Method::GET, "/api/v1/workspaces/w1/integrations/salesforce/field-mappings").await;
    let contact = again["entities"].as_array().expect("entities").iter().find(|e| e["entity"] == "contact").cloned();
    let contact = contact.expect("contact");
    let kept =
        contact["mappings"].as_array().expect("mappings").iter().find(|m| m["app_field"] == "company_id").cloned();
    assert_eq!(kept.expect("kept")["references"], "account", "{contact}");
    assert_no_csp_violations(&app.base);
    browser.close().await;
}
