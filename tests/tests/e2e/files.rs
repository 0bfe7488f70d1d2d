//! Files attached to CRM records, through the API: the Salesforce emulator's Files
//! (ContentDocumentLink → latest ContentVersion, bytes at `VersionData`) listed newest first and
//! streamed by the host — larger than any plugin may hold — capped by the operator, and only
//! through the record they are attached to.

use crmhost_tests::{Backend, Crm, SyncHarness};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Pushes opportunity `id`; its Salesforce id.
async fn pushed_opportunity(h: &SyncHarness, id: &str) -> String {
    let record =
        json!({"id": id, "fields": {"name": format!("Deal {id}"), "stage": "Prospecting", "close_date": "2026-12-31"}});
    h.put_records("opportunity", vec![record]).await;
    let run = h.run("push", json!({"entity": "opportunity", "record_ids": [id]})).await;
    let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
    detail["items"][0]["crm_id"].as_str().unwrap().to_owned()
}

/// Attaches a file in the emulator, `minutes` after the emulator's now; the version id.
fn attach(h: &SyncHarness, crm_id: &str, title: &str, bytes: Vec<u8>, minutes: i64) -> String {
    let at = h.sim.sim().clock.now() + chrono::Duration::minutes(minutes);
    h.sim.sim().salesforce().attach_file(crm_id, title, "pdf", bytes, at).expect("attached")
}

fn files_path(h: &SyncHarness, record: &str, rest: &str) -> String {
    h.integration_path(&format!("/records/opportunity/{record}/files{rest}"))
}

async fn fetch(h: &SyncHarness, record: &str, file: &str) -> reqwest::Response {
    h.api(Method::GET, &files_path(h, record, &format!("/{file}"))).send().await.unwrap()
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test]
async fn the_files_of_an_opportunity_are_listed_newest_first_and_streamed() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = SyncHarness::start(backend, Crm::Salesforce, Default::default()).await else { continue };
        let crm_id = pushed_opportunity(&h, "o1").await;
        let first = attach(&h, &crm_id, "Contract draft", pattern(3_000, 1), 1);
        // Bigger than a plugin may ever hold (16 MiB responses): the host streams it itself.
        let big = pattern(20 * 1024 * 1024 + 17, 2);
        let latest = attach(&h, &crm_id, "Contract signed", big.clone(), 2);

        let (status, body) = SyncHarness::send(h.api(Method::GET, &files_path(&h, "o1", ""))).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        let files = body["files"].as_array().unwrap();
        let listed: Vec<(&str, &str, u64)> = files
            .iter()
            .map(|f| (f["id"].as_str().unwrap(), f["name"].as_str().unwrap(), f["size"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            listed,
            [(latest.as_str(), "Contract signed.pdf", big.len() as u64), (first.as_str(), "Contract draft.pdf", 3_000)],
            "{backend:?}: newest first"
        );
        assert_eq!(files[0]["content_type"], "application/pdf");

        // "The most recent file attached to the Opportunity".
        let response = fetch(&h, "o1", "latest").await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/pdf");
        assert_eq!(headers["content-length"], big.len().to_string().as_str());
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment;") && disposition.contains("Contract%20signed.pdf"),
            "{disposition}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let bytes = response.bytes().await.unwrap();
        assert!(bytes.len() == big.len() && bytes[..] == big[..], "{backend:?}: the bytes arrive intact");

        let response = fetch(&h, "o1", &first).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.bytes().await.unwrap().to_vec(), pattern(3_000, 1));
    }
}

#[tokio::test]
async fn a_file_is_served_only_through_its_record_and_within_the_operators_limit() {
    let h = SyncHarness::start_configured(Backend::Sqlite, Crm::Salesforce, Default::default(), |o| {
        o.max_file_bytes = 4_096;
    })
    .await
    .unwrap();
    let (o1, o2) = (pushed_opportunity(&h, "o1").await, pushed_opportunity(&h, "o2").await);
    let small = attach(&h, &o1, "Small", pattern(100, 3), 1);
    let other = attach(&h, &o2, "Other deal's file", pattern(100, 4), 1);
    attach(&h, &o1, "Huge", pattern(10_000, 5), 2);

    let code = |body: &Value| body["error"]["code"].as_str().unwrap_or_default().to_owned();
    // Over the limit: refused before a byte is sent, saying why.
    let response = fetch(&h, "o1", "latest").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "file_too_large", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("4096"), "{body}");
    assert_eq!(fetch(&h, "o1", &small).await.status(), StatusCode::OK);

    // Another record's file is not reachable through this one; nor is a made-up id.
    for id in [other.as_str(), "068000000000999AAA", "latest%0A"] {
        let response = fetch(&h, "o1", id).await;
        assert!(
            matches!(response.status(), StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST),
            "{id}: {}",
            response.status()
        );
    }
    // A record that follows no Salesforce record yet.
    h.put_records(
        "opportunity",
        vec![json!({"id": "o3", "fields": {"name": "New", "stage": "Prospecting", "close_date": "2026-12-31"}})],
    )
    .await;
    let (status, body) = SyncHarness::send(h.api(Method::GET, &files_path(&h, "o3", ""))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("sync it first"), "{body}");
    // A record without files: an empty list.
    let (status, body) = SyncHarness::send(h.api(Method::GET, &files_path(&h, "o2", ""))).await;
    assert_eq!((status, body["files"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{body}");
}

#[tokio::test]
async fn the_files_attached_to_a_hubspot_deal_through_notes_are_listed_and_fetched_by_signed_url() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Hubspot, Default::default()).await.unwrap();
    let deal = json!({"id": "d1", "fields": {"name": "Acme renewal", "stage": "appointmentscheduled", "amount": 1000}});
    h.put_records("deal", vec![deal]).await;
    let run = h.run("push", json!({"entity": "deal", "record_ids": ["d1"]})).await;
    assert_eq!(run["success_count"], 1, "{run}");
    let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
    let crm_id: u64 = detail["items"][0]["crm_id"].as_str().unwrap().parse().unwrap();
    let now = h.sim.sim().clock.now();
    let older = h.sim.sim().hubspot().attach_file("deals", crm_id, "NDA", "pdf", pattern(500, 6), now).unwrap();
    let later = now + chrono::Duration::minutes(5);
    let newer =
        h.sim.sim().hubspot().attach_file("deals", crm_id, "Order form", "pdf", pattern(900, 7), later).unwrap();

    let path = h.integration_path("/records/deal/d1/files");
    let (status, body) = SyncHarness::send(h.api(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Order form.pdf", "NDA.pdf"], "newest first: {body}");
    assert_eq!(body["files"][0]["id"], newer.to_string());

    let latest = h.api(Method::GET, &format!("{path}/latest")).send().await.unwrap();
    assert_eq!(latest.status(), StatusCode::OK);
    assert_eq!(latest.bytes().await.unwrap().to_vec(), pattern(900, 7));
    let first = h.api(Method::GET, &format!("{path}/{older}")).send().await.unwrap();
    assert_eq!(first.bytes().await.unwrap().to_vec(), pattern(500, 6));
    // The signed URL is fetched without the HubSpot token (a CDN has no business seeing it).
    let fetches = h.sim.sim().hubspot().attachments.signed_fetches.clone();
    assert_eq!(fetches, [false, false], "two signed fetches, neither with a token");
}
