//! Accessibility and small screens: every form control on every screen has an accessible name,
//! no screen is wider than a 390 px phone, and a keyboard alone reaches (with a visible focus) and
//! operates every action on two screens.

use crmhost::auth::Role;
use crmhost_tests::{Backend, Browser, Crm, SyncHarness, token};
use fantoccini::key::Key;
use reqwest::Method;
use serde_json::{Value, json};

use super::assert_no_csp_violations;
use super::conflicts::conflicts;

/// The controls on the page (hidden ones too: they show later) without an accessible name, by
/// the rules browsers use: `aria-label`, `aria-labelledby`, a `<label>`, a button's or link's
/// text or image `alt`, a `title`.
const UNNAMED_CONTROLS: &str = r#"
const named = (el) => {
  const label = el.getAttribute("aria-label");
  if (label && label.trim()) return true;
  const by = el.getAttribute("aria-labelledby");
  if (by && by.split(/\s+/).some((id) => document.getElementById(id)?.textContent.trim())) return true;
  if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
  if ((el.tagName === "BUTTON" || el.tagName === "A") && (el.textContent.trim() || el.querySelector("img[alt]:not([alt=''])"))) return true;
  return Boolean(el.title && el.title.trim());
};
return [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button, a[href]")]
  .filter((el) => !named(el)).map((el) => el.outerHTML.slice(0, 160));
"#;

/// Numbers every visible action in the page's main area and returns how many there are.
const MARK_ACTIONS: &str = r#"
// A radio group takes one Tab stop (its checked radio); arrow keys move within it.
const groupStop = (el) => el.type !== "radio" || el.checked
  || !document.querySelector(`input[type=radio][name="${el.name}"]:checked`);
const actions = [...document.querySelectorAll("main button, main a[href], main input, main select, main textarea")]
  .filter((el) => el.offsetParent !== null && !el.disabled && el.type !== "hidden" && groupStop(el));
actions.forEach((el, i) => { el.dataset.action = String(i); });
document.activeElement?.blur();
return actions.length;
"#;

/// The focused action's number, its text, and whether the focus is visible.
const FOCUSED: &str = r#"
const el = document.activeElement;
const style = getComputedStyle(el);
const visible = style.boxShadow !== "none" || (style.outlineStyle !== "none" && style.outlineWidth !== "0px");
return { action: el.dataset.action ?? null, text: (el.getAttribute("aria-label") || el.textContent || el.value || "").trim(), visible };
"#;

/// Checks names and width on the screen at `route`, once it shows `marker`; saves a phone shot.
async fn check_screen(browser: &Browser, base: &str, route: &str, marker: &str, shot: &str) {
    browser.open(&format!("{base}/console/#{route}")).await;
    browser.wait_for_text(marker).await;
    check_current(browser, shot).await;
}

async fn check_current(browser: &Browser, shot: &str) {
    let dialogs = browser.script("return document.querySelectorAll('dialog[open]').length").await;
    assert_eq!(dialogs, u64::from(shot.ends_with("dialog")), "dialogs open on {shot}");
    let unnamed = browser.script(UNNAMED_CONTROLS).await;
    assert_eq!(unnamed, json!([]), "controls without an accessible name on {shot}");
    let widths = browser.script("return [document.documentElement.scrollWidth, window.innerWidth]").await;
    assert!(widths[0].as_u64() <= widths[1].as_u64(), "{shot} is wider than the phone: {widths}");
    browser.screenshot(&format!("phone-{shot}")).await;
}

/// Tabs through the page from the top; every action in the main area must take the focus,
/// visibly. Returns what each Tab focused, in order.
async fn tab_through(browser: &Browser, screen: &str) -> Vec<Value> {
    let count = browser.script(MARK_ACTIONS).await.as_u64().expect("a count") as usize;
    assert!(count > 3, "{screen} has actions: {count}");
    let mut reached = std::collections::BTreeSet::new();
    let mut order = Vec::new();
    // The header's links come first; a few more presses than there are actions covers them.
    for _ in 0..count + 10 {
        browser.press(Key::Tab).await;
        let focused = browser.script(FOCUSED).await;
        if let Some(action) = focused["action"].as_str() {
            assert_eq!(focused["visible"], true, "the focus is visible on {focused} ({screen})");
            reached.insert(action.to_owned());
        }
        order.push(focused);
    }
    let missed: Vec<usize> = (0..count).filter(|i| !reached.contains(&i.to_string())).collect();
    assert!(missed.is_empty(), "on {screen}, Tab never reached actions {missed:?}; it went: {order:?}");
    order
}

/// Tabs to the action whose text is `text` and presses Enter on it.
async fn activate_by_keyboard(browser: &Browser, text: &str) {
    browser.script("document.activeElement?.blur(); return null").await;
    for _ in 0..60 {
        browser.press(Key::Tab).await;
        if browser.script(FOCUSED).await["text"] == text {
            browser.press(Key::Enter).await;
            return;
        }
    }
    panic!("Tab never reached {text:?}");
}

#[tokio::test]
async fn every_control_is_named_every_screen_fits_a_phone_and_a_keyboard_reaches_every_action() {
    crmhost_tests::capture_logs();
    let Some(h) = SyncHarness::start(Backend::Sqlite, Crm::Salesforce, Default::default()).await else { return };
    let Some(phone) = Browser::start_phone(390, 844).await else { return };
    conflicts(&h, 2).await;
    let failing = h
        .app
        .as_role(Method::PUT, "/api/v1/workspaces/w1/records/contact", "w1", Role::Admin)
        .json(&json!({"records": [{"id": "bad", "fields": {"email": "not-an-email", "last_name": "Bad"}}]}));
    assert!(failing.send().await.expect("put").status().is_success());
    let run = h.run("push", json!({"entity": "contact", "record_ids": ["bad"]})).await;
    let run_id = run["run_id"].as_str().expect("run id").to_owned();
    let (_, listed) = SyncHarness::send(h.api(Method::GET, "/conflicts?status=pending")).await;
    let conflict = listed["conflicts"][0]["conflict_id"].as_str().expect("a conflict").to_owned();

    let base = h.app.base.clone();
    let admin = token("w1", Role::Admin);
    phone.open(&format!("{base}/console/#token={admin}")).await;
    phone.wait_for_text("Connected as").await;
    let width = phone.script("return window.innerWidth").await;
    assert_eq!(width, 390, "a phone's width");
    check_current(&phone, "integrations").await;
    let sf = "/integrations/salesforce";
    check_screen(&phone, &base, "/connect/salesforce", "Save and continue", "connect").await;
    check_screen(&phone, &base, &format!("{sf}/settings"), "Save settings", "settings").await;
    check_screen(&phone, &base, &format!("{sf}/mappings"), "From Salesforce into your app", "mappings").await;
    phone.click("Add mapping").await;
    phone.wait_for_text("Add a mapping").await;
    check_current(&phone, "mappings-dialog").await;
    check_screen(&phone, &base, &format!("{sf}/history"), "What is failing now", "history").await;
    check_screen(&phone, &base, &format!("{sf}/history/{run_id}"), "Failed records (1)", "history-run").await;
    check_screen(&phone, &base, &format!("{sf}/conflicts"), "Showing 2.", "conflicts").await;
    check_screen(&phone, &base, &format!("{sf}/conflicts/{conflict}"), "differs", "conflict").await;
    phone.close().await;

    // The keyboard alone: the integrations screen, then the conflict's split view.
    let Some(browser) = Browser::start(1280, 900).await else { return };
    browser.open(&format!("{base}/console/#token={admin}")).await;
    browser.wait_for_text("Connected as").await;
    tab_through(&browser, "integrations").await;
    activate_by_keyboard(&browser, "Pause").await;
    browser.wait_for_text("Salesforce paused.").await;

    browser.open(&format!("{base}/console/#{sf}/conflicts/{conflict}")).await;
    browser.wait_for_text("differs").await;
    tab_through(&browser, "conflict").await;
    activate_by_keyboard(&browser, "Ignore").await;
    browser.wait_for_text("Ignored: nothing was written").await;
    let (_, after) = SyncHarness::send(h.api(Method::GET, &format!("/conflicts/{conflict}"))).await;
    assert_eq!(after["status"], "ignored", "{after}");
    assert_no_csp_violations(&base);
    browser.close().await;
}
