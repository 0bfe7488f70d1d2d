//! Outbound webhooks end to end: a loopback receiver stands in for the platform. Events reach it
//! signed (checked with an independent HMAC), filtered ("an Opportunity enters Needs Legal
//! Review"), retried with backoff, logged, redelivered, and kept across a restart; endpoints are
//! refused where the operator keeps them off, and secrets never show again.

use std::time::Duration;

use crmhost_tests::{AppOptions, Backend, Crm, Receiver, SyncHarness, TestApp, contacts, eventually, signed_by};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Registers an endpoint; returns its id and secret.
async fn register(h: &SyncHarness, body: Value) -> (String, String) {
    let (status, created) = SyncHarness::send(h.api(Method::POST, "/webhook-endpoints").json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["signature_header"], "Crmhost-Signature");
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    (id, created["secret"].as_str().unwrap().to_owned())
}

/// The endpoint's delivery log (`query` without the `?`).
async fn deliveries(h: &SyncHarness, endpoint: &str, query: &str) -> Vec<Value> {
    let (status, page) =
        SyncHarness::send(h.api(Method::GET, &format!("/webhook-endpoints/{endpoint}/deliveries?{query}"))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["deliveries"].as_array().unwrap().clone()
}

/// Waits until every delivery of the endpoint so far has left `pending`.
async fn settled(h: &SyncHarness, endpoint: &str) -> Vec<Value> {
    let done = eventually(Duration::from_secs(15), || async {
        deliveries(h, endpoint, "").await.iter().all(|d| d["status"] != "pending")
    });
    assert!(done.await, "{:?}", deliveries(h, endpoint, "").await);
    deliveries(h, endpoint, "").await
}

each_crm_and_backend!(a_pull_tells_the_platform_what_changed_signed_and_logged, |h| {
    let hook = Receiver::start().await;
    let (endpoint, secret) = register(
        &h,
        json!({"url": hook.url("/crm-events"), "description": "platform",
               "events": ["record.changed_from_crm", "sync.completed", "conflict.detected"]}),
    )
    .await;
    h.put_records("contact", contacts(0..2, "")).await;
    let pushed = h.run("push", json!({"entity": "contact", "record_ids": ["c0", "c1"]})).await;
    let crm_id = h.crm_id_of("c0@example.com");

    // Changed in the CRM, then pulled: the platform is told which record and which fields.
    h.edit_crm_contact(&crm_id, "first_name", "Renamed");
    let pulled = h.run("pull", json!({"entity": "contact"})).await;
    assert!(hook.wait_for(Duration::from_secs(10), |r| r.len() >= 3).await, "{:?}", hook.received());
    let changes = hook.of_type("record.changed_from_crm");
    assert_eq!(changes.len(), 1, "only the changed record: {:?}", changes.iter().map(|r| r.json()).collect::<Vec<_>>());
    let change = changes[0].json();
    assert_eq!(change["type"], "record.changed_from_crm");
    assert_eq!(change["workspace_id"], "w1");
    let data = &change["data"];
    assert_eq!((data["integration"].as_str(), data["entity"].as_str()), (Some(h.crm.slug()), Some("contact")));
    assert_eq!((data["record_id"].as_str(), data["crm_id"].as_str()), (Some("c0"), Some(crm_id.as_str())));
    assert_eq!((data["change"].as_str(), data["changed_fields"].clone()), (Some("updated"), json!(["first_name"])));
    assert_eq!(data["values"], json!({"first_name": "Renamed"}));
    assert_eq!(data["run_id"], pulled["run_id"]);

    // Signed with the endpoint's secret (an independent HMAC), event id in header and body.
    for received in hook.received() {
        let signature = received.header("crmhost-signature");
        assert!(signed_by(&signature, &received.body, &secret), "{signature}");
        assert!(!signed_by(&signature, &received.body, "whsec_other"));
        assert_eq!(received.header("crmhost-event-id"), received.json()["id"].as_str().unwrap());
        assert_eq!(received.header("content-type"), "application/json");
        let now = chrono::Utc::now().timestamp();
        assert!(crmhost::notify::signature::verify(
            &signature,
            &received.body,
            &secrecy::SecretString::from(secret.clone()),
            now,
            300
        ));
    }
    let runs: Vec<Value> = hook.of_type("sync.completed").iter().map(|r| r.json()["data"].clone()).collect();
    let run_ids: Vec<&Value> = runs.iter().map(|r| &r["run_id"]).collect();
    assert!(run_ids.contains(&&pushed["run_id"]) && run_ids.contains(&&pulled["run_id"]), "{runs:?}");
    let push_event = runs.iter().find(|r| r["run_id"] == pushed["run_id"]).unwrap();
    assert_eq!((push_event["direction"].as_str(), push_event["status"].as_str()), (Some("push"), Some("completed")));
    assert_eq!(push_event["counts"]["succeeded"], 2, "{push_event}");

    // A conflict: changed on both sides, manual review.
    let (status, body) = h.patch_settings(json!({"conflict_strategy": "manual_review"})).await;
    assert!(status.is_success(), "{body}");
    h.edit_crm_contact(&crm_id, "title", "CRM title");
    let mut mine = contacts(0..1, "");
    mine[0]["fields"]["first_name"] = json!("Renamed");
    mine[0]["fields"]["title"] = json!("App title");
    h.put_records("contact", mine).await;
    let synced = h.run("sync", json!({"entities": ["contact"]})).await;
    // Its end is told after the run is recorded: wait for it, so the log below is complete.
    let ended = hook.wait_for(Duration::from_secs(10), |r| {
        r.iter().any(|x| {
            x.header("crmhost-event-type") == "sync.completed" && x.json()["data"]["run_id"] == synced["run_id"]
        })
    });
    assert!(ended.await, "{:?}", hook.received().iter().map(|r| r.json()).collect::<Vec<_>>());
    let conflict = hook.of_type("conflict.detected")[0].json();
    assert_eq!(conflict["data"]["fields"], json!(["title"]), "{conflict}");
    let (status, shown) = SyncHarness::send(
        h.api(Method::GET, &format!("/conflicts/{}", conflict["data"]["conflict_id"].as_str().unwrap())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the event names a real conflict: {shown}");

    // The log: every delivery delivered on the first attempt, the exact body kept.
    let log = settled(&h, &endpoint).await;
    assert_eq!(log.len(), hook.received().len(), "{log:?}");
    assert!(
        log.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1 && d["last_status_code"] == 200),
        "{log:?}"
    );
    let one = &log[log.len() - 1];
    let (status, detail) = SyncHarness::send(
        h.api(Method::GET, &format!("/webhook-endpoints/{endpoint}/deliveries/{}", one["id"].as_str().unwrap())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let sent = hook.received().into_iter().find(|r| r.header("crmhost-delivery-id") == one["id"].as_str().unwrap());
    assert_eq!(detail["payload"], sent.unwrap().json());

    // The secret is never shown again.
    for path in ["/webhook-endpoints".to_owned(), format!("/webhook-endpoints/{endpoint}")] {
        let (_, body) = SyncHarness::send(h.api(Method::GET, &path)).await;
        assert!(!body.to_string().contains(&secret[6..]), "{body}");
    }
});

/// The Opportunity's CRM id after a push of `o1`.
async fn pushed_opportunity(h: &SyncHarness) -> String {
    let opportunity =
        json!({"id": "o1", "fields": {"name": "Acme renewal", "stage": "Prospecting", "close_date": "2026-12-31"}});
    h.put_records("opportunity", vec![opportunity]).await;
    let run = h.run("push", json!({"entity": "opportunity", "record_ids": ["o1"]})).await;
    let detail = h.run_detail(run["run_id"].as_str().unwrap()).await;
    detail["items"][0]["crm_id"].as_str().unwrap().to_owned()
}

fn edit_opportunity(h: &SyncHarness, crm_id: &str, field: &str, value: &str) {
    let now = h.sim.sim().clock.now();
    let mut state = h.sim.sim().salesforce();
    let mut input = serde_json::Map::new();
    input.insert(field.to_owned(), json!(value));
    state.object_mut("Opportunity").unwrap().update(crm_id, &input, now).unwrap();
}

#[tokio::test]
async fn the_platform_is_told_exactly_when_an_opportunity_enters_needs_legal_review() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = SyncHarness::start(backend, Crm::Salesforce, Default::default()).await else { continue };
        let legal = Receiver::start().await;
        let everything = Receiver::start().await;
        register(
            &h,
            json!({"url": legal.url("/legal-review"), "events": ["record.changed_from_crm"],
                   "filter": {"integration": "salesforce", "entity": "opportunity", "field": "stage", "equals": "Needs Legal Review"}}),
        )
        .await;
        register(&h, json!({"url": everything.url("/all"), "events": ["record.changed_from_crm"]})).await;
        let crm_id = pushed_opportunity(&h).await;

        // Each step is a change in Salesforce and a pull; `everything` shows the pull was told.
        let steps = [
            ("Name", "Acme renewal 2027", false),
            ("StageName", "Needs Legal Review", true),
            ("Name", "Acme renewal (legal)", false),
            ("StageName", "Closed Won", false),
        ];
        for (i, (field, value, enters)) in steps.into_iter().enumerate() {
            edit_opportunity(&h, &crm_id, field, value);
            h.run("pull", json!({"entity": "opportunity"})).await;
            let told = everything.wait_for(Duration::from_secs(10), |r| r.len() > i).await;
            assert!(told, "{backend:?}: step {i} produced no record event");
            if enters {
                assert!(legal.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await, "{backend:?}");
            }
        }
        // Let any stray delivery arrive before counting.
        assert!(everything.wait_for(Duration::from_secs(5), |r| r.len() == steps.len()).await);
        let got = legal.received();
        assert_eq!(got.len(), 1, "{backend:?}: exactly once: {:?}", got.iter().map(|r| r.json()).collect::<Vec<_>>());
        let data = &got[0].json()["data"];
        assert_eq!(data["values"]["stage"], "Needs Legal Review");
        assert_eq!((data["record_id"].as_str(), data["crm_id"].as_str()), (Some("o1"), Some(crm_id.as_str())));
    }
}

/// A harness whose retries run on a millisecond scale.
async fn fast_retries(backend: Backend, give_up_after: Duration) -> Option<SyncHarness> {
    SyncHarness::start_configured(backend, Crm::Hubspot, Default::default(), |o| {
        o.outbound_webhooks.retry_base = Duration::from_millis(50);
        o.outbound_webhooks.retry_cap = Duration::from_millis(200);
        o.outbound_webhooks.give_up_after = give_up_after;
    })
    .await
}

async fn ping(h: &SyncHarness, endpoint: &str) -> Value {
    let (status, delivery) =
        SyncHarness::send(h.api(Method::POST, &format!("/webhook-endpoints/{endpoint}/ping"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{delivery}");
    delivery
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_until_it_answers_and_each_attempt_is_logged() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(h) = fast_retries(backend, Duration::from_secs(3600)).await else { continue };
        let hook = Receiver::start().await;
        hook.answer(&[500, 503, 302]);
        let (endpoint, _) = register(&h, json!({"url": hook.url("/flaky"), "events": ["sync.failed"]})).await;
        let queued = ping(&h, &endpoint).await;
        assert_eq!((queued["status"].as_str(), queued["attempts"].as_u64()), (Some("pending"), Some(0)));
        let log = settled(&h, &endpoint).await;
        assert_eq!(log.len(), 1);
        let d = &log[0];
        assert_eq!(
            (d["status"].as_str(), d["attempts"].as_u64(), d["last_status_code"].as_u64()),
            (Some("delivered"), Some(4), Some(200)),
            "{d}"
        );
        let received = hook.received();
        assert_eq!(received.len(), 4);
        let attempts: Vec<String> = received.iter().map(|r| r.header("crmhost-delivery-attempt")).collect();
        assert_eq!(attempts, ["1", "2", "3", "4"]);
        assert!(received.iter().all(|r| r.header("crmhost-event-id") == received[0].header("crmhost-event-id")));
        assert_eq!(received[0].json()["type"], "ping");
    }
}

#[tokio::test]
async fn retries_end_in_failed_at_the_deadline_and_redelivery_sends_the_same_event_again() {
    let h = fast_retries(Backend::Sqlite, Duration::from_millis(600)).await.unwrap();
    let hook = Receiver::start().await;
    hook.answer_always(500);
    let (endpoint, _) = register(&h, json!({"url": hook.url("/down"), "events": ["sync.completed"]})).await;
    let first = ping(&h, &endpoint).await;
    let log = settled(&h, &endpoint).await;
    let failed = &log[0];
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["attempts"].as_u64().unwrap() >= 2, "retried before giving up: {failed}");
    assert_eq!(failed["last_status_code"], 500);
    assert!(failed["last_error"].as_str().unwrap().starts_with("answered 500"), "{failed}");
    assert_eq!(deliveries(&h, &endpoint, "status=failed").await.len(), 1);
    assert!(deliveries(&h, &endpoint, "status=delivered").await.is_empty());

    // Fixed: redelivery sends the same event (id and body) as a new delivery.
    hook.answer_always(200);
    let path = format!("/webhook-endpoints/{endpoint}/deliveries/{}/redeliver", first["id"].as_str().unwrap());
    let (status, again) = SyncHarness::send(h.api(Method::POST, &path)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(
        (again["event_id"].clone(), again["redelivery_of"].clone()),
        (first["event_id"].clone(), first["id"].clone())
    );
    let log = settled(&h, &endpoint).await;
    let redelivered = log.iter().find(|d| d["id"] == again["id"]).unwrap();
    assert_eq!(redelivered["status"], "delivered", "{redelivered}");
    let last = hook.received().pop().unwrap();
    assert_eq!(last.header("crmhost-event-id"), first["event_id"].as_str().unwrap());
    assert_eq!(last.header("crmhost-delivery-id"), again["id"].as_str().unwrap());
    let by_event = deliveries(&h, &endpoint, &format!("event_id={}", first["event_id"].as_str().unwrap())).await;
    assert_eq!(by_event.len(), 2);
}

/// A request to `/api/v1/workspaces/w1{path}` of `app`, as an admin.
fn api(app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.as_role(method, &format!("/api/v1/workspaces/w1{path}"), "w1", crmhost::auth::Role::Admin)
}

async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Registers an endpoint for `sync.completed` on `app`; its id.
async fn register_on(app: &TestApp, url: &str) -> String {
    let body = json!({"url": url, "events": ["sync.completed"]});
    let created = json_of(api(app, Method::POST, "/webhook-endpoints").json(&body)).await;
    created["endpoint"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_pending_delivery_survives_a_restart() {
    let hook = Receiver::start().await;
    hook.answer_always(503);
    let key = crmhost::vault::MasterKey::generate().to_base64();
    let mut first = AppOptions { backend: Backend::Sqlite, master_key: Some(key.clone()), ..AppOptions::default() };
    first.outbound_webhooks.retry_base = Duration::from_secs(2);
    let mut app = TestApp::spawn(first).await.unwrap();
    let database_url = app.database_url.clone();
    let endpoint = register_on(&app, &hook.url("/later")).await;
    let queued = json_of(api(&app, Method::POST, &format!("/webhook-endpoints/{endpoint}/ping"))).await;
    assert!(hook.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await, "the first attempt was made");
    app.shut_down().await;

    // Another process on the same database, the receiver back: the stored delivery goes out.
    hook.answer_always(200);
    let second = AppOptions { database_url: Some(database_url), master_key: Some(key), ..AppOptions::default() };
    let app = TestApp::spawn(second).await.unwrap();
    let path = format!("/webhook-endpoints/{endpoint}/deliveries/{}", queued["id"].as_str().unwrap());
    let delivered = eventually(Duration::from_secs(15), || async {
        json_of(api(&app, Method::GET, &path)).await["delivery"]["status"] == "delivered"
    });
    assert!(delivered.await);
    let received = hook.received();
    assert!(received.len() >= 2, "{}", received.len());
    assert!(received.iter().all(|r| r.header("crmhost-event-id") == queued["event_id"].as_str().unwrap()));
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_for_the_overlap_then_only_the_new_one() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Hubspot, Default::default()).await.unwrap();
    let hook = Receiver::start().await;
    let (endpoint, old) = register(&h, json!({"url": hook.url("/r"), "events": ["sync.completed"]})).await;
    let rotate = |body: Value| h.api(Method::POST, &format!("/webhook-endpoints/{endpoint}/rotate-secret")).json(&body);
    let (status, rotated) = SyncHarness::send(rotate(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(!rotated["previous_secret_valid_until"].is_null());
    ping(&h, &endpoint).await;
    assert!(hook.wait_for(Duration::from_secs(10), |r| r.len() == 1).await);
    let r = &hook.received()[0];
    let signature = r.header("crmhost-signature");
    assert!(signed_by(&signature, &r.body, &new) && signed_by(&signature, &r.body, &old), "{signature}");

    let (status, rotated) = SyncHarness::send(rotate(json!({"previous_secret_valid_for_secs": 0}))).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert!(rotated["previous_secret_valid_until"].is_null());
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    ping(&h, &endpoint).await;
    assert!(hook.wait_for(Duration::from_secs(10), |r| r.len() == 2).await);
    let r = &hook.received()[1];
    let signature = r.header("crmhost-signature");
    assert!(signed_by(&signature, &r.body, &newest), "{signature}");
    assert!(!signed_by(&signature, &r.body, &new) && !signed_by(&signature, &r.body, &old), "{signature}");
    let (status, body) = SyncHarness::send(rotate(json!({"previous_secret_valid_for_secs": 10_000_000}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn endpoints_the_operator_keeps_off_and_subscriptions_that_cannot_work_are_refused() {
    // Production defaults: https only, public addresses only.
    let h = SyncHarness::start_configured(Backend::Sqlite, Crm::Hubspot, Default::default(), |o| {
        o.outbound_webhooks = crmhost::notify::NotifyOptions::default();
    })
    .await
    .unwrap();
    let refused = [
        (json!({"url": "http://hooks.example.com/x", "events": ["sync.completed"]}), "https"),
        (json!({"url": "https://127.0.0.1/x", "events": ["sync.completed"]}), "private"),
        (json!({"url": "https://169.254.169.254/latest", "events": ["sync.completed"]}), "private"),
        (json!({"url": "https://[::1]/x", "events": ["sync.completed"]}), "private"),
        (json!({"url": "https://localhost/x", "events": ["sync.completed"]}), "localhost"),
        (json!({"url": "https://user:pw@hooks.example.com/x", "events": ["sync.completed"]}), "credentials"),
        (json!({"url": "ftp://hooks.example.com/x", "events": ["sync.completed"]}), "scheme"),
        (json!({"url": "not a url", "events": ["sync.completed"]}), "not a URL"),
        (json!({"url": "https://hooks.example.com/x", "events": []}), "`events` is empty"),
        (json!({"url": "https://hooks.example.com/x", "events": ["ping"]}), "`ping`"),
        (
            json!({"url": "https://hooks.example.com/x", "events": ["sync.completed"], "filter": {"field": "stage"}}),
            "`filter.field`",
        ),
    ];
    for (body, expected) in refused {
        let (status, answer) = SyncHarness::send(h.api(Method::POST, "/webhook-endpoints").json(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
    let (status, answer) = SyncHarness::send(
        h.api(Method::POST, "/webhook-endpoints")
            .json(&json!({"url": "https://hooks.example.com/x", "events": ["sync.done"]})),
    )
    .await;
    assert!(status.is_client_error(), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("sync.completed"), "names the valid types: {answer}");

    // A public name is accepted; the operator's limit on endpoints per workspace holds.
    let ok = json!({"url": "https://hooks.example.com/x", "events": ["sync.completed"]});
    let max = crmhost::notify::NotifyOptions::default().max_endpoints_per_workspace;
    let mut last = String::new();
    for _ in 0..max {
        let (status, created) = SyncHarness::send(h.api(Method::POST, "/webhook-endpoints").json(&ok)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        last = created["endpoint"]["id"].as_str().unwrap().to_owned();
    }
    let (status, answer) = SyncHarness::send(h.api(Method::POST, "/webhook-endpoints").json(&ok)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");

    // Another workspace cannot see or touch it; a disabled endpoint takes no ping.
    let other = h.app.as_role(
        Method::GET,
        &format!("/api/v1/workspaces/w2/webhook-endpoints/{last}"),
        "w2",
        crmhost::auth::Role::Admin,
    );
    assert_eq!(other.send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let (status, changed) = SyncHarness::send(
        h.api(Method::PATCH, &format!("/webhook-endpoints/{last}")).json(&json!({"enabled": false, "filter": null})),
    )
    .await;
    assert_eq!((status, changed["enabled"].clone()), (StatusCode::OK, json!(false)), "{changed}");
    let (status, _) = SyncHarness::send(h.api(Method::POST, &format!("/webhook-endpoints/{last}/ping"))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = SyncHarness::send(h.api(Method::DELETE, &format!("/webhook-endpoints/{last}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = SyncHarness::send(h.api(Method::GET, &format!("/webhook-endpoints/{last}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_operator_who_tightens_the_policy_stops_deliveries_to_private_addresses_at_once() {
    let hook = Receiver::start().await;
    let key = crmhost::vault::MasterKey::generate().to_base64();
    let mut app = TestApp::spawn(AppOptions { master_key: Some(key.clone()), ..AppOptions::default() }).await.unwrap();
    let database_url = app.database_url.clone();
    let endpoint = register_on(&app, &hook.url("/internal")).await;
    app.shut_down().await;

    // Restarted with the production policy: the stored endpoint on loopback is not called.
    let mut tightened = AppOptions { database_url: Some(database_url), master_key: Some(key), ..AppOptions::default() };
    tightened.outbound_webhooks = crmhost::notify::NotifyOptions {
        give_up_after: Duration::from_millis(300),
        retry_base: Duration::from_millis(50),
        ..Default::default()
    };
    let app = TestApp::spawn(tightened).await.unwrap();
    let queued: Value = api(&app, Method::POST, &format!("/webhook-endpoints/{endpoint}/ping"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("/webhook-endpoints/{endpoint}/deliveries/{}", queued["id"].as_str().unwrap());
    let failed = eventually(Duration::from_secs(15), || async {
        json_of(api(&app, Method::GET, &path)).await["delivery"]["status"] == "failed"
    });
    assert!(failed.await);
    let d = json_of(api(&app, Method::GET, &path)).await;
    let error = d["delivery"]["last_error"].as_str().unwrap();
    assert!(error.contains("refused by the outbound policy"), "{error}");
    assert!(hook.received().is_empty(), "nothing reached the private address");
}
