//! Salesforce changes in seconds: the workspace's webhook secret (made, shown once, rotated,
//! removed), the Salesforce emulator notifying crmhost as an Apex trigger and as an Outbound
//! Message would, and every way a delivery is refused (no secret, a wrong or old one, the host's
//! own header forged on the public route) — with nothing run for a refused one.

use std::time::{Duration, Instant};

use crm_sim::salesforce::notifications::{NotificationFormat, Subscription};
use crmhost::auth::Role;
use crmhost_tests::{Backend, Crm, SyncHarness, contacts, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Three contacts in step on both sides; the integration syncs in real time.
async fn in_step_in_real_time(h: &SyncHarness) {
    h.put_records("contact", contacts(0..3, "")).await;
    let run = h.run("push", json!({"entity": "contact", "record_ids": ["c0", "c1", "c2"]})).await;
    assert_eq!(run["success_count"], 3, "{run}");
    let (status, body) = h.patch_settings(json!({"frequency": "realtime"})).await;
    assert!(status.is_success(), "{body}");
    h.wait_until_idle().await;
}

async fn make_secret(h: &SyncHarness) -> Value {
    let (status, body) = SyncHarness::send(h.api(Method::POST, &h.integration_path("/webhook-secret"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn subscribe(h: &SyncHarness, url: &str, format: NotificationFormat, secret: Option<&str>) {
    h.sim.sim().salesforce().subscribe(Some(Subscription {
        objects: vec!["Contact".to_owned()],
        url: url.to_owned(),
        format,
        secret: secret.map(str::to_owned),
        max_attempts: 2,
        retry_base_ms: 100,
    }));
}

/// Edits a contact as a Salesforce user would, then waits for the workspace to show it.
async fn edit_and_wait(h: &SyncHarness, record: &str, title: &str) -> Option<Duration> {
    let crm_id = h.crm_id_of(&format!("{record}@example.com"));
    let edited = Instant::now();
    h.edit_crm_contact(&crm_id, "title", title);
    let arrived =
        eventually(Duration::from_secs(10), || async { h.record("contact", record).await["fields"]["title"] == title })
            .await;
    arrived.then(|| edited.elapsed())
}

async fn post_callout(h: &SyncHarness, secret: Option<&str>, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let crm_id = h.crm_id_of("c2@example.com");
    let mut request =
        reqwest::Client::new().post(format!("{}/api/v1/webhooks/salesforce/workspaces/w1", h.app.base)).json(
            &json!({"organizationId": crm_sim::salesforce::ORG_ID, "records": [{"object": "Contact", "id": crm_id}]}),
        );
    if let Some(secret) = secret {
        request = request.header("x-webhook-secret", secret);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    SyncHarness::send(request).await
}

async fn webhook_runs(h: &SyncHarness) -> usize {
    h.history("trigger=webhook").await.len()
}

async fn apex_callouts_bring_changes_in_and_only_the_current_secret_is_taken(backend: Backend) {
    crmhost_tests::capture_logs();
    let Some(h) = SyncHarness::start(backend, Crm::Salesforce, Default::default()).await else { return };
    in_step_in_real_time(&h).await;

    // Before a secret exists every delivery is refused.
    assert_eq!(post_callout(&h, Some("whsec_guess"), &[]).await.0, StatusCode::UNAUTHORIZED);

    // An admin makes the secret: shown once, with the URLs to give Salesforce.
    let made = make_secret(&h).await;
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert_eq!(made["header"], "X-Webhook-Secret");
    let url = made["url"].as_str().unwrap().to_owned();
    assert!(url.ends_with("/api/v1/webhooks/salesforce/workspaces/w1"), "{made}");
    let (_, shown) = SyncHarness::send(h.api(Method::GET, &h.integration_path("/webhook-secret"))).await;
    assert_eq!(shown["configured"], true, "{shown}");
    assert!(!shown.to_string().contains(&secret), "never shown again: {shown}");
    let member = h
        .app
        .as_role(Method::POST, "/api/v1/workspaces/w1/integrations/salesforce/webhook-secret", "w1", Role::Member)
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), StatusCode::FORBIDDEN);

    // The emulator posts as an Apex trigger would; the change lands within seconds, by webhook.
    subscribe(
        &h,
        &format!("{}/api/v1/webhooks/salesforce/workspaces/w1", h.app.base),
        NotificationFormat::Apex,
        Some(&secret),
    );
    let took = edit_and_wait(&h, "c1", "Chief Trigger Officer").await.expect("the change arrived");
    eprintln!("Salesforce Apex callout → workspace record ({backend:?}): {} ms", took.as_millis());
    assert!(webhook_runs(&h).await >= 1, "a webhook-triggered pull brought it");
    let attempts = h.sim.sim().salesforce().notifications.attempts.clone();
    assert!(attempts.iter().all(|a| a.status == Some(200)), "{attempts:?}");

    // Refused: no header, a wrong secret, another workspace, and the host's own mark forged on the
    // public route. None of them starts a run.
    h.wait_until_idle().await;
    let runs_before = webhook_runs(&h).await;
    assert_eq!(post_callout(&h, None, &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(post_callout(&h, Some(&format!("{secret}x")), &[]).await.0, StatusCode::UNAUTHORIZED);
    let other_workspace = reqwest::Client::new()
        .post(format!("{}/api/v1/webhooks/salesforce/workspaces/w2", h.app.base))
        .header("x-webhook-secret", &secret)
        .json(&json!({"records": []}));
    assert_eq!(SyncHarness::send(other_workspace).await.0, StatusCode::UNAUTHORIZED);
    let forged = reqwest::Client::new()
        .post(format!("{}/api/v1/webhooks/salesforce", h.app.base))
        .header("x-crmhost-verified", "workspace-secret")
        .json(&json!({"records": [{"object": "Contact", "id": h.crm_id_of("c2@example.com")}]}));
    let (status, body) = SyncHarness::send(forged).await;
    assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::NOT_FOUND, "{status} {body}");

    // Rotation: the old secret stops at once (the emulator still sends it: refused, nothing runs).
    let rotated = make_secret(&h).await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(post_callout(&h, Some(&secret), &[]).await.0, StatusCode::UNAUTHORIZED);
    let crm_id = h.crm_id_of("c0@example.com");
    h.edit_crm_contact(&crm_id, "title", "Sent with the old secret");
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.sim.sim().salesforce().notifications.attempts.iter().any(|a| a.status == Some(401))
        })
        .await,
        "the emulator's delivery with the old secret was refused"
    );
    assert_eq!(webhook_runs(&h).await, runs_before, "no refused delivery started a run");
    let (status, report) = post_callout(&h, Some(&new_secret), &[]).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["queued"], 1, "{report}");

    // Removed: refused again.
    let (status, _) = SyncHarness::send(h.api(Method::DELETE, &h.integration_path("/webhook-secret"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(post_callout(&h, Some(&new_secret), &[]).await.0, StatusCode::UNAUTHORIZED);

    let logs = crmhost_tests::captured_logs();
    for s in [&secret, &new_secret] {
        assert!(!logs.contains(s.as_str()), "a webhook secret reached the log");
    }
}

#[tokio::test]
async fn apex_callouts_bring_salesforce_changes_in_seconds_sqlite() {
    apex_callouts_bring_changes_in_and_only_the_current_secret_is_taken(Backend::Sqlite).await;
}

#[tokio::test]
async fn apex_callouts_bring_salesforce_changes_in_seconds_postgres() {
    apex_callouts_bring_changes_in_and_only_the_current_secret_is_taken(Backend::Postgres).await;
}

#[tokio::test]
async fn outbound_messages_are_acknowledged_and_bring_changes_in() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Salesforce, Default::default()).await.unwrap();
    in_step_in_real_time(&h).await;
    let made = make_secret(&h).await;
    let url = made["outbound_message_url"].as_str().unwrap().to_owned();
    let secret = made["secret"].as_str().unwrap();
    assert!(url.ends_with(&format!("/outbound-messages/{secret}")), "{made}");
    subscribe(&h, &url, NotificationFormat::OutboundMessage, None);

    let took = edit_and_wait(&h, "c2", "Chief Outbound Officer").await.expect("the change arrived");
    eprintln!("Salesforce Outbound Message → workspace record: {} ms", took.as_millis());
    let attempts = h.sim.sim().salesforce().notifications.attempts.clone();
    assert!(
        !attempts.is_empty() && attempts.iter().all(|a| a.acknowledged),
        "Salesforce got its SOAP ack: {attempts:?}"
    );

    // A wrong secret in the URL: 401, and Salesforce is not acknowledged.
    let wrong = url.replace(secret, "whsec_wrong");
    let response = reqwest::Client::new()
        .post(&wrong)
        .header("content-type", "text/xml")
        .body("<soapenv:Envelope/>")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!response.text().await.unwrap().contains("<Ack>true</Ack>"));
}

#[tokio::test]
async fn a_record_deleted_in_salesforce_is_deleted_in_the_workspace_by_its_notification() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = SyncHarness::start(backend, Crm::Salesforce, Default::default()).await else { continue };
        in_step_in_real_time(&h).await;
        let (status, body) = h.patch_settings(json!({"propagate_deletes": true})).await;
        assert!(status.is_success(), "{body}");
        let made = make_secret(&h).await;
        subscribe(&h, made["url"].as_str().unwrap(), NotificationFormat::Apex, made["secret"].as_str());

        // The trigger reports `"change": "deleted"`; the pull by id reads the recycle bin.
        h.delete_crm_contact(&h.crm_id_of("c1@example.com"));
        let gone =
            eventually(Duration::from_secs(10), || async { h.record("contact", "c1").await["deleted_at"].is_string() })
                .await;
        assert!(gone, "{backend:?}: the deletion never reached the workspace");
        assert!(webhook_runs(&h).await >= 1);
        assert!(h.record("contact", "c0").await["deleted_at"].is_null(), "the others stay");
    }
}
