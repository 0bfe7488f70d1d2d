//! The HubSpot emulator over loopback HTTP: OAuth, objects, batches, search, properties, limits.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

async fn api(sim: &crm_sim::SimHandle) -> (reqwest::Client, String, String) {
    let tokens = hubspot_tokens(sim, "/oauth/v1/token").await;
    (client(), sim.hubspot_url().unwrap(), tokens["access_token"].as_str().unwrap().to_owned())
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn token_exchange_works_on_every_token_path_and_refresh_does_not_rotate() {
    let sim = start().await;
    for path in ["/oauth/v1/token", "/oauth/v3/token", "/oauth/2026-03/token"] {
        let tokens = hubspot_tokens(&sim, path).await;
        assert_eq!(
            (tokens["token_type"].as_str(), tokens["expires_in"].as_u64(), tokens["token_use"].as_str()),
            (Some("bearer"), Some(1800), Some("access_token")),
            "{path}"
        );
        assert_eq!(tokens["hub_id"], crm_sim::hubspot::HUB_ID);
    }
    let tokens = hubspot_tokens(&sim, "/oauth/v1/token").await;
    let base = sim.hubspot_url().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    let (status, again) = send(client().post(format!("{base}/oauth/v1/token")).form(&form)).await;
    assert_eq!(status, 200);
    assert_eq!(again["refresh_token"], refresh, "HubSpot refresh tokens do not rotate");
    assert_ne!(again["access_token"], tokens["access_token"]);

    let bad = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "nope"),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    let (status, body) = send(client().post(format!("{base}/oauth/v1/token")).form(&bad)).await;
    assert_eq!(
        (status, body["status"].as_str(), body["error"].as_str()),
        (400, Some("BAD_REFRESH_TOKEN"), Some("invalid_grant"))
    );

    // Metadata, deletion, introspection.
    let access = again["access_token"].as_str().unwrap();
    let (_, meta) = send(client().get(format!("{base}/oauth/v1/access-tokens/{}", urlencode(access)))).await;
    assert_eq!(meta["scopes"], json!(["crm.objects.contacts.read", "crm.objects.contacts.write"]));
    assert_eq!(meta["hub_id"], crm_sim::hubspot::HUB_ID);
    let (status, _) = send(client().delete(format!("{base}/oauth/v1/refresh-tokens/{refresh}"))).await;
    assert_eq!(status, 204);
    let (status, _) = send(client().post(format!("{base}/oauth/v1/token")).form(&form)).await;
    assert_eq!(status, 400, "a deleted refresh token no longer refreshes");
    let (_, introspected) = send(client().post(format!("{base}/oauth/v3/token/introspect")).form(&[
        ("token", access),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ]))
    .await;
    assert_eq!(
        (introspected["active"].as_bool(), introspected["token_use"].as_str()),
        (Some(true), Some("access_token"))
    );
}

#[tokio::test]
async fn expired_and_missing_tokens_answer_401_with_hubspot_categories() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}/crm/v3/objects/contacts");
    let (status, body) = send(http.get(&url)).await;
    assert_eq!((status, body["category"].as_str()), (401, Some("INVALID_AUTHENTICATION")));
    sim.sim().clock.advance(chrono::Duration::seconds(1830));
    let (status, body) = send(http.get(&url).bearer_auth(&token)).await;
    assert_eq!((status, body["category"].as_str()), (401, Some("EXPIRED_AUTHENTICATION")));
    assert_eq!(body["message"], "The OAuth token used to make this call expired 30 second(s) ago.");
}

#[tokio::test]
async fn contacts_crud_with_string_values_duplicate_email_and_id_property() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}/crm/v3/objects/contacts");
    let (status, created) = send(
        http.post(&url)
            .bearer_auth(&token)
            .json(&json!({"properties": {"email": "ann@example.com", "firstname": "Ann"}})),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["archived"], false);
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));

    let (status, dup) =
        send(http.post(&url).bearer_auth(&token).json(&json!({"properties": {"email": "ANN@example.com"}}))).await;
    assert_eq!((status, dup["category"].as_str()), (409, Some("CONFLICT")));
    assert_eq!(dup["message"], format!("Contact already exists. Existing ID: {id}"));

    let (status, by_email) = send(
        http.get(format!("{url}/ann@example.com?idProperty=email&properties=firstname,email")).bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_email["id"], id.as_str());
    assert_eq!(by_email["properties"]["firstname"], "Ann");

    let (status, updated) = send(
        http.patch(format!("{url}/{id}"))
            .bearer_auth(&token)
            .json(&json!({"properties": {"firstname": "", "phone": 5551234}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["properties"]["phone"], "5551234", "values come back as strings");
    let (_, fetched) =
        send(http.get(format!("{url}/{id}?properties=firstname&properties=phone")).bearer_auth(&token)).await;
    assert_eq!(
        (fetched["properties"]["firstname"].clone(), fetched["properties"]["phone"].clone()),
        (Value::Null, json!("5551234"))
    );

    let (status, bad) =
        send(http.post(&url).bearer_auth(&token).json(&json!({"properties": {"foo": "x", "createdate": "1"}}))).await;
    assert_eq!((status, bad["category"].as_str()), (400, Some("VALIDATION_ERROR")));
    let message = bad["message"].as_str().unwrap();
    assert!(
        message.starts_with("Property values were not valid: ")
            && message.contains("PROPERTY_DOESNT_EXIST")
            && message.contains("READ_ONLY_VALUE"),
        "{message}"
    );
    let (_, bad_email) =
        send(http.post(&url).bearer_auth(&token).json(&json!({"properties": {"email": "nope"}}))).await;
    assert!(bad_email["message"].as_str().unwrap().contains("INVALID_EMAIL"));

    let (status, _) = send(http.delete(format!("{url}/{id}")).bearer_auth(&token)).await;
    assert_eq!(status, 204);
    let (status, missing) = send(http.get(format!("{url}/{id}")).bearer_auth(&token)).await;
    assert_eq!((status, missing["category"].as_str()), (404, Some("OBJECT_NOT_FOUND")));
}

#[tokio::test]
async fn lists_page_with_after_and_accept_repeated_or_comma_joined_properties() {
    let sim = start().await;
    sim.sim().seed("contact", 25).unwrap();
    let (http, base, token) = api(&sim).await;
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let mut url = format!("{base}/crm/v3/objects/contact?limit=10&properties=email,firstname&properties=lastname");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let (status, page) = send(http.get(&url).bearer_auth(&token)).await;
        assert_eq!(status, 200);
        for r in page["results"].as_array().unwrap() {
            assert!(r["properties"]["lastname"].is_string() && r["properties"]["email"].is_string());
            seen.push(r["id"].as_str().unwrap().to_owned());
        }
        match page["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (25, 25));
    let (status, _) = send(http.get(format!("{base}/crm/v3/objects/contacts?limit=101")).bearer_auth(&token)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn batch_upsert_by_email_reports_new_and_batch_read_reports_missing_with_207() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}/crm/v3/objects/contacts/batch");
    http.post(format!("{base}/crm/v3/objects/contacts"))
        .bearer_auth(&token)
        .json(&json!({"properties": {"email": "old@example.com"}}))
        .send()
        .await
        .unwrap();
    let inputs = json!({"inputs": [
        {"id": "old@example.com", "idProperty": "email", "properties": {"firstname": "Old"}},
        {"id": "new@example.com", "idProperty": "email", "properties": {"firstname": "New"}},
    ]});
    let (status, upserted) = send(http.post(format!("{url}/upsert")).bearer_auth(&token).json(&inputs)).await;
    assert_eq!((status, upserted["status"].as_str()), (200, Some("COMPLETE")));
    let news: Vec<bool> = upserted["results"].as_array().unwrap().iter().map(|r| r["new"].as_bool().unwrap()).collect();
    assert_eq!(news, [false, true]);
    assert_eq!(sim.sim().hubspot().records("contacts").len(), 2, "upserting twice creates nothing twice");
    send(http.post(format!("{url}/upsert")).bearer_auth(&token).json(&inputs)).await;
    assert_eq!(sim.sim().hubspot().records("contacts").len(), 2);

    let read = json!({"properties": ["email"], "idProperty": "email", "inputs": [{"id": "new@example.com"}, {"id": "ghost@example.com"}]});
    let (status, body) = send(http.post(format!("{url}/read")).bearer_auth(&token).json(&read)).await;
    assert_eq!((status, body["numErrors"].as_u64()), (207, Some(1)));
    assert_eq!(body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(body["errors"][0]["context"]["ids"], json!(["ghost@example.com"]));

    let too_many: Vec<Value> =
        (0..101).map(|i| json!({"properties": {"email": format!("m{i}@example.com")}})).collect();
    let (status, body) =
        send(http.post(format!("{url}/create")).bearer_auth(&token).json(&json!({"inputs": too_many}))).await;
    assert_eq!((status, body["category"].as_str()), (400, Some("VALIDATION_ERROR")));
}

#[tokio::test]
async fn batch_create_is_all_or_nothing_unless_every_input_is_traced() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}/crm/v3/objects/companies/batch/create");
    let untraced = json!({"inputs": [{"properties": {"name": "Good"}}, {"properties": {"industry": "NOT_AN_OPTION"}}]});
    let (status, _) = send(http.post(&url).bearer_auth(&token).json(&untraced)).await;
    assert_eq!(status, 400);
    assert_eq!(sim.sim().hubspot().records("companies").len(), 0, "one bad input fails the whole batch");

    let traced = json!({"inputs": [
        {"properties": {"name": "Good"}, "objectWriteTraceId": "t1"},
        {"properties": {"industry": "NOT_AN_OPTION"}, "objectWriteTraceId": "t2"},
    ]});
    let (status, body) = send(http.post(&url).bearer_auth(&token).json(&traced)).await;
    assert_eq!((status, body["numErrors"].as_u64()), (207, Some(1)));
    assert_eq!(body["results"][0]["objectWriteTraceId"], "t1");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("INVALID_OPTION"));
    assert_eq!(sim.sim().hubspot().records("companies").len(), 1);
}

#[tokio::test]
async fn search_filters_sorts_pages_and_enforces_its_limits() {
    let sim = start().await;
    sim.sim().clock.set("2024-01-01T00:00:00Z".parse().unwrap());
    sim.sim().seed("contact", 30).unwrap();
    sim.sim().clock.set("2024-01-02T00:00:00Z".parse().unwrap());
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}/crm/v3/objects/contacts/search");
    let ids: Vec<String> =
        sim.sim().hubspot().records("contacts")[..3].iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    for id in &ids {
        http.patch(format!("{base}/crm/v3/objects/contacts/{id}"))
            .bearer_auth(&token)
            .json(&json!({"properties": {"jobtitle": "CTO"}}))
            .send()
            .await
            .unwrap();
    }
    let since_ms = chrono::DateTime::parse_from_rfc3339("2024-01-01T12:00:00Z").unwrap().timestamp_millis();
    let body = json!({
        "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": since_ms}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "jobtitle"], "limit": 2,
    });
    let (status, page) = send(http.post(&url).bearer_auth(&token).json(&body)).await;
    assert_eq!((status, page["total"].as_u64()), (200, Some(3)));
    assert_eq!(page["results"][0]["properties"]["jobtitle"], "CTO");
    assert_eq!(page["paging"]["next"]["after"], "2");

    // Top-level filters, string sorts, ISO dates, IN, CONTAINS_TOKEN.
    let alt = json!({"filters": [{"propertyName": "email", "operator": "IN", "values": ["contact1@example.com", "contact2@example.com"]}], "sorts": ["-email"], "limit": 10});
    let (_, page) = send(http.post(&url).bearer_auth(&token).json(&alt)).await;
    let emails: Vec<&str> =
        page["results"].as_array().unwrap().iter().map(|r| r["properties"]["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["contact2@example.com", "contact1@example.com"]);

    let (status, _) = send(http.post(&url).bearer_auth(&token).json(&json!({"limit": 201}))).await;
    assert_eq!(status, 400);
    let (status, body) = send(http.post(&url).bearer_auth(&token).json(&json!({"limit": 10, "after": "10000"}))).await;
    assert_eq!((status, body["category"].as_str()), (400, Some("VALIDATION_ERROR")));

    // The secondly limit (4 per second by default), with the exact message.
    let mut limited = None;
    for _ in 0..6 {
        let (status, body) = send(http.post(&url).bearer_auth(&token).json(&json!({"limit": 1}))).await;
        if status == 429 {
            limited = Some(body);
            break;
        }
    }
    let body = limited.expect("the secondly limit was never hit");
    assert_eq!(body["message"], "You have reached your secondly limit.");
    assert_eq!(body["category"], "RATE_LIMITS");
}

#[tokio::test]
async fn the_ten_second_limit_sends_headers_and_the_exact_429() {
    let sim = start().await;
    sim.sim().update_knobs(|k| k.hubspot_ten_second_limit = 3).unwrap();
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}/crm/v3/objects/deals");
    let first = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(first.headers()["x-hubspot-ratelimit-max"], "3");
    assert_eq!(first.headers()["x-hubspot-ratelimit-remaining"], "2");
    assert_eq!(first.headers()["x-hubspot-ratelimit-interval-milliseconds"], "10000");
    assert!(first.headers().get("x-hubspot-ratelimit-daily").is_none(), "OAuth apps have no daily cap");
    http.get(&url).bearer_auth(&token).send().await.unwrap();
    http.get(&url).bearer_auth(&token).send().await.unwrap();
    let (status, body) = send(http.get(&url).bearer_auth(&token)).await;
    assert_eq!(status, 429);
    assert_eq!(
        (body["policyName"].as_str(), body["errorType"].as_str()),
        (Some("TEN_SECONDLY_ROLLING"), Some("RATE_LIMIT"))
    );
    assert_eq!(body["message"], "You have reached your ten_secondly_rolling limit.");
    // The window rolls.
    sim.sim().clock.advance(chrono::Duration::seconds(11));
    assert_eq!(send(http.get(&url).bearer_auth(&token)).await.0, 200);

    sim.sim().update_knobs(|k| k.hubspot_daily_limit = Some(0)).unwrap();
    let (status, body) = send(http.get(&url).bearer_auth(&token)).await;
    assert_eq!((status, body["policyName"].as_str()), (429, Some("DAILY")));
}

#[tokio::test]
async fn properties_describe_read_only_and_unique_values() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let (status, body) = send(http.get(format!("{base}/crm/v3/properties/contacts")).bearer_auth(&token)).await;
    assert_eq!(status, 200);
    let find = |name: &str| body["results"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
    assert_eq!(find("email")["hasUniqueValue"], true);
    assert_eq!(find("lastmodifieddate")["modificationMetadata"]["readOnlyValue"], true);
    assert_eq!(find("firstname")["modificationMetadata"]["readOnlyValue"], false);
    let (status, deal_stage) =
        send(http.get(format!("{base}/crm/v3/properties/deals/dealstage")).bearer_auth(&token)).await;
    assert_eq!((status, deal_stage["type"].as_str()), (200, Some("enumeration")));
    assert!(!deal_stage["options"].as_array().unwrap().is_empty());
    let (_, companies) = send(http.get(format!("{base}/crm/v3/properties/0-2")).bearer_auth(&token)).await;
    assert!(companies["results"].as_array().unwrap().iter().any(|p| p["name"] == "hs_lastmodifieddate"));
}

#[tokio::test]
async fn webhooks_deliver_signed_batches_and_retry_failures() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let (received, calls) = (received.clone(), calls.clone());
            move |headers: axum::http::HeaderMap, body: String| async move {
                // The first delivery fails, so the emulator must retry it.
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                received.lock().unwrap().push((headers, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let (status, _) =
        send(http.post(format!("{base}/__sim/webhooks")).json(&json!({"target_url": target, "retry_base_ms": 50})))
            .await;
    assert_eq!(status, 200);
    let (_, created) = send(
        http.post(format!("{base}/crm/v3/objects/contacts"))
            .bearer_auth(&token)
            .json(&json!({"properties": {"email": "hook@example.com"}})),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, patched) = send(
        http.patch(format!("{base}/crm/v3/objects/contacts/{id}"))
            .bearer_auth(&token)
            .json(&json!({"properties": {"firstname": "Hooked"}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    send(http.delete(format!("{base}/crm/v3/objects/contacts/{id}")).bearer_auth(&token)).await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut events: Vec<Value> = Vec::new();
    while events.len() < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        events =
            received.lock().unwrap().iter().flat_map(|(_, b)| serde_json::from_str::<Vec<Value>>(b).unwrap()).collect();
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["subscriptionType"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["contact.creation", "contact.propertyChange", "contact.propertyChange", "contact.deletion"],
        "{events:?}"
    );
    assert_eq!(events[1]["propertyName"], "email");
    assert_eq!(
        (events[2]["propertyName"].as_str(), events[2]["propertyValue"].as_str()),
        (Some("firstname"), Some("Hooked"))
    );
    let object_id: u64 = id.parse().unwrap();
    assert!(events.iter().all(|e| e["objectId"] == object_id && e["portalId"] == crm_sim::hubspot::HUB_ID));

    // Every delivery is signed: v3 = base64(HMAC-SHA256(secret, "POST" + url + body + timestamp)).
    for (headers, body) in received.lock().unwrap().iter() {
        use base64::Engine as _;
        use hmac::Mac;
        let timestamp = headers["x-hubspot-request-timestamp"].to_str().unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(CLIENT_SECRET.as_bytes()).unwrap();
        mac.update(format!("POST{target}{body}{timestamp}").as_bytes());
        let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(headers["x-hubspot-signature-v3"], expected.as_str());
    }
    let (_, log) = send(http.get(format!("{base}/__sim/webhooks"))).await;
    let attempts = log["attempts"].as_array().unwrap();
    assert_eq!(
        (attempts[0]["status"].as_u64(), attempts[1]["attempt"].as_u64(), attempts[1]["status"].as_u64()),
        (Some(500), Some(1), Some(200))
    );
    assert_eq!(events[0]["attemptNumber"], 1, "the retried batch says which attempt it is");
}

#[tokio::test]
async fn association_batches_create_move_the_primary_company_and_archive() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    sim.sim().seed("contact", 1).unwrap();
    sim.sim().seed("company", 2).unwrap();
    let ids = |object: &str| -> Vec<u64> {
        let state = sim.sim().hubspot();
        state.objects[object].records.keys().copied().collect()
    };
    let (contact, companies) = (ids("contacts")[0], ids("companies"));
    let batch = |what: &str| format!("{base}/crm/v4/associations/contacts/companies/batch/{what}");
    let primary_with = |company: u64| {
        json!({"inputs": [{"from": {"id": contact.to_string()}, "to": {"id": company.to_string()}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279},
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1},
        ]}]})
    };
    let (status, made) = send(http.post(batch("create")).bearer_auth(&token).json(&primary_with(companies[0]))).await;
    assert_eq!((status, &made["results"][0]["labels"]), (201, &json!(["Primary"])), "{made}");
    // A second primary takes the label; the first company stays associated, unlabelled.
    send(http.post(batch("create")).bearer_auth(&token).json(&primary_with(companies[1]))).await;
    let read = json!({"inputs": [{"id": contact.to_string()}]});
    let (_, now) = send(http.post(batch("read")).bearer_auth(&token).json(&read)).await;
    let types = |company: u64| -> Vec<u64> {
        let to = now["results"][0]["to"].as_array().unwrap();
        let target = to.iter().find(|t| t["toObjectId"] == company).unwrap();
        target["associationTypes"].as_array().unwrap().iter().map(|t| t["typeId"].as_u64().unwrap()).collect()
    };
    assert_eq!(types(companies[0]), [279], "{now}");
    assert_eq!(types(companies[1]), [1, 279], "{now}");
    let (_, from_company) = send(
        http.get(format!("{base}/crm/v4/objects/companies/{}/associations/contacts", companies[0])).bearer_auth(&token),
    )
    .await;
    assert_eq!(
        from_company["results"][0]["associationTypes"].as_array().unwrap().len(),
        1,
        "the reverse label went too"
    );

    // An unknown record fails its input (207) and names the ids.
    let (status, partly) = send(http.post(batch("create")).bearer_auth(&token).json(&primary_with(999_999))).await;
    assert_eq!(status, 207, "{partly}");
    assert_eq!(partly["errors"][0]["context"]["toObjectId"], json!(["999999"]));
    // Default associations in a batch, then archive every association of a pair.
    let pair = json!({"inputs": [{"from": {"id": contact.to_string()}, "to": {"id": companies[0].to_string()}}]});
    let (status, _) = send(http.post(batch("associate/default")).bearer_auth(&token).json(&pair)).await;
    assert_eq!(status, 200);
    let archive = json!({"inputs": [{"from": {"id": contact.to_string()}, "to": [{"id": companies[1].to_string()}]}]});
    assert_eq!(send(http.post(batch("archive")).bearer_auth(&token).json(&archive)).await.0, 204);
    let (_, after) = send(http.post(batch("read")).bearer_auth(&token).json(&read)).await;
    let left: Vec<&Value> = after["results"][0]["to"].as_array().unwrap().iter().map(|t| &t["toObjectId"]).collect();
    assert_eq!(left, [&json!(companies[0])], "{after}");
}

#[tokio::test]
async fn associations_v4_link_both_ways_with_labels_page_batch_read_and_unlink() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    sim.sim().seed("contact", 3).unwrap();
    sim.sim().seed("company", 1).unwrap();
    sim.sim().seed("deal", 1).unwrap();
    let ids = |object: &str| -> Vec<u64> {
        let state = sim.sim().hubspot();
        state.objects[object].records.keys().copied().collect()
    };
    let (contacts, company, deal) = (ids("contacts"), ids("companies")[0], ids("deals")[0]);
    let v4 = |path: String| format!("{base}/crm/v4/{path}");

    // The default association, answered in both directions with their own type ids.
    let (status, made) = send(
        http.put(v4(format!("objects/contacts/{}/associations/default/companies/{company}", contacts[0])))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let type_ids: Vec<u64> = made["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["associationSpec"]["associationTypeId"].as_u64().unwrap())
        .collect();
    assert_eq!(type_ids, [279, 280]);
    // A labelled one (Primary), and a deal with two contacts.
    let primary = json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]);
    let (status, labelled) = send(
        http.put(v4(format!("objects/contacts/{}/associations/companies/{company}", contacts[1])))
            .bearer_auth(&token)
            .json(&primary),
    )
    .await;
    assert_eq!((status, &labelled["labels"]), (201, &json!(["Primary"])), "{labelled}");
    for contact in &contacts[..2] {
        let path = format!("objects/deals/{deal}/associations/default/contacts/{contact}");
        assert_eq!(send(http.put(v4(path)).bearer_auth(&token)).await.0, 200);
    }

    // Read from the other side, paged; the reverse types are there.
    let (_, page) =
        send(http.get(v4(format!("objects/companies/{company}/associations/contacts?limit=1"))).bearer_auth(&token))
            .await;
    assert_eq!(page["results"][0]["toObjectId"], contacts[0], "{page}");
    assert_eq!(page["results"][0]["associationTypes"][0]["typeId"], 280);
    let after = page["paging"]["next"]["after"].as_str().unwrap();
    let (_, rest) = send(
        http.get(v4(format!("objects/companies/{company}/associations/contacts?limit=1&after={after}")))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(rest["results"][0]["toObjectId"], contacts[1]);
    assert_eq!(rest["results"][0]["associationTypes"][0]["label"], "Primary", "{rest}");
    assert!(rest["paging"].is_null(), "the last page has no paging");

    // Batch read: each input's associations; an unknown record is an error of the batch (207).
    let inputs = json!({"inputs": [{"id": deal.to_string()}, {"id": "999999"}]});
    let (status, batch) =
        send(http.post(v4("associations/deals/contacts/batch/read".into())).bearer_auth(&token).json(&inputs)).await;
    assert_eq!((status, batch["numErrors"].as_u64()), (207, Some(1)), "{batch}");
    let linked: Vec<u64> =
        batch["results"][0]["to"].as_array().unwrap().iter().map(|t| t["toObjectId"].as_u64().unwrap()).collect();
    assert_eq!(linked, contacts[..2]);

    // Labels of a pair; an unknown type id or record is refused.
    let (_, labels) = send(http.get(v4("associations/contacts/companies/labels".into())).bearer_auth(&token)).await;
    let listed: Vec<(u64, Value)> = labels["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["typeId"].as_u64().unwrap(), l["label"].clone()))
        .collect();
    assert_eq!(listed, [(279, Value::Null), (1, json!("Primary"))]);
    let wrong = json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]);
    let path = format!("objects/contacts/{}/associations/companies/{company}", contacts[2]);
    assert_eq!(send(http.put(v4(path.clone())).bearer_auth(&token).json(&wrong)).await.0, 400);
    let missing = format!("objects/contacts/{}/associations/default/companies/999999", contacts[2]);
    assert_eq!(send(http.put(v4(missing)).bearer_auth(&token)).await.0, 404);

    // Unlinking removes both directions.
    let unlink = format!("objects/companies/{company}/associations/contacts/{}", contacts[0]);
    assert_eq!(send(http.delete(v4(unlink)).bearer_auth(&token)).await.0, 204);
    let (_, after_unlink) =
        send(http.get(v4(format!("objects/contacts/{}/associations/companies", contacts[0]))).bearer_auth(&token))
            .await;
    assert_eq!(after_unlink["results"], json!([]));
    let (status, _) = send(http.get(v4(format!("objects/contacts/{}/associations/companies", contacts[0])))).await;
    assert_eq!(status, 401, "a token is required");
}

#[tokio::test]
async fn lists_take_members_page_them_by_record_id_and_refuse_dynamic_changes() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let contacts: Vec<String> = {
        let mut ids = Vec::new();
        for i in 0..5 {
            let body = json!({"properties": {"email": format!("m{i}@lists.example")}});
            let (_, created) =
                send(http.post(format!("{base}/crm/v3/objects/contacts")).bearer_auth(&token).json(&body)).await;
            ids.push(created["id"].as_str().unwrap().to_owned());
        }
        ids
    };
    let create = |name: &str, processing: &str| {
        http.post(format!("{base}/crm/v3/lists"))
            .bearer_auth(&token)
            .json(&json!({"name": name, "objectTypeId": "0-1", "processingType": processing}))
    };
    let (status, created) = send(create("Newsletter", "MANUAL")).await;
    assert_eq!((status, created["list"]["processingType"].as_str()), (200, Some("MANUAL")), "{created}");
    let list = created["list"]["listId"].as_str().unwrap().to_owned();
    let (status, dup) = send(create("newsletter", "MANUAL")).await;
    assert_eq!((status, dup["subCategory"].as_str()), (400, Some("ILS.DUPLICATE_LIST_NAMES")), "{dup}");
    let (status, bad) = send(create("Other", "SOMETIMES")).await;
    assert_eq!((status, bad["category"].as_str()), (400, Some("VALIDATION_ERROR")), "{bad}");

    // Added once each; an unknown id is missing; adding again changes nothing.
    let members = format!("{base}/crm/v3/lists/{list}/memberships");
    let mut ids: Vec<Value> = contacts.iter().map(|c| json!(c)).collect();
    ids.push(json!(999_999));
    let (status, added) = send(http.put(format!("{members}/add")).bearer_auth(&token).json(&ids)).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["recordIdsAdded"].as_array().unwrap().len(), 5, "{added}");
    assert_eq!(added["recordIdsMissing"], json!(["999999"]));
    let (_, again) = send(http.put(format!("{members}/add")).bearer_auth(&token).json(&json!([contacts[0]]))).await;
    assert_eq!(
        (again["recordIdsAdded"].as_array().unwrap().len(), again["recordIdsMissing"].as_array().unwrap().len()),
        (0, 0)
    );

    // Paged in record-id order, with when each joined.
    let (_, first) = send(http.get(format!("{members}?limit=2")).bearer_auth(&token)).await;
    let page: Vec<&str> =
        first["results"].as_array().unwrap().iter().map(|m| m["recordId"].as_str().unwrap()).collect();
    assert_eq!(page, [contacts[0].as_str(), contacts[1].as_str()]);
    assert!(first["results"][0]["membershipTimestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(first["total"], 5);
    let after = first["paging"]["next"]["after"].as_str().unwrap();
    let (_, second) = send(http.get(format!("{members}?limit=3&after={after}")).bearer_auth(&token)).await;
    assert_eq!(second["results"].as_array().unwrap().len(), 3);
    assert!(second.get("paging").is_none(), "the last page has no paging: {second}");
    let (status, _) = send(http.get(format!("{members}?limit=251")).bearer_auth(&token)).await;
    assert_eq!(status, 400);

    // Removed, and the lists of one record.
    let (_, removed) =
        send(http.put(format!("{members}/remove")).bearer_auth(&token).json(&json!([contacts[1], "42424242"]))).await;
    assert_eq!(
        (removed["recordIdsRemoved"].clone(), removed["recordIdsMissing"].clone()),
        (json!([contacts[1]]), json!(["42424242"]))
    );
    let record_lists = format!("{base}/crm/v3/lists/records/0-1/{}/memberships", contacts[2]);
    let (_, of_record) = send(http.get(&record_lists).bearer_auth(&token)).await;
    assert_eq!(of_record["results"][0]["listId"], list.as_str(), "{of_record}");

    // Search, rename, and a dynamic list refusing members.
    let (_, dynamic) = send(create("Engaged", "DYNAMIC")).await;
    let dynamic = dynamic["list"]["listId"].as_str().unwrap().to_owned();
    let (status, refused) = send(
        http.put(format!("{base}/crm/v3/lists/{dynamic}/memberships/add"))
            .bearer_auth(&token)
            .json(&json!([contacts[0]])),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let (_, found) =
        send(http.post(format!("{base}/crm/v3/lists/search")).bearer_auth(&token).json(&json!({"query": "NEWS"})))
            .await;
    assert_eq!((found["total"].as_u64(), found["lists"][0]["listId"].as_str()), (Some(1), Some(list.as_str())));
    assert_eq!(found["lists"][0]["additionalProperties"]["hs_list_size"], "4");
    let (status, renamed) = send(
        http.put(format!("{base}/crm/v3/lists/{list}/update-list-name?listName=Monthly%20news")).bearer_auth(&token),
    )
    .await;
    assert_eq!((status, renamed["updatedList"]["name"].as_str()), (200, Some("Monthly news")));
    let (status, _) = send(http.delete(format!("{base}/crm/v3/lists/{list}")).bearer_auth(&token)).await;
    assert_eq!(status, 204);
    let (status, gone) = send(http.get(format!("{base}/crm/v3/lists/{list}")).bearer_auth(&token)).await;
    assert_eq!((status, gone["category"].as_str()), (404, Some("OBJECT_NOT_FOUND")));
}

#[tokio::test]
async fn email_engagements_need_a_timestamp_and_associate_with_contacts() {
    let sim = start().await;
    let (http, base, token) = api(&sim).await;
    let url = format!("{base}/crm/v3/objects/emails");
    let (status, refused) =
        send(http.post(&url).bearer_auth(&token).json(&json!({"properties": {"hs_email_subject": "Hi"}}))).await;
    assert_eq!((status, refused["category"].as_str()), (400, Some("VALIDATION_ERROR")), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("hs_timestamp"), "{refused}");
    let body = json!({"properties": {"hs_email_subject": "Hi", "hs_timestamp": "2027-01-01T09:00:00Z", "hs_email_direction": "EMAIL"}});
    let (status, email) = send(http.post(&url).bearer_auth(&token).json(&body)).await;
    assert_eq!(status, 201, "{email}");
    let (status, bad) = send(
        http.post(&url)
            .bearer_auth(&token)
            .json(&json!({"properties": {"hs_timestamp": "2027-01-01T09:00:00Z", "hs_email_direction": "SIDEWAYS"}})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    let (_, contact) = send(
        http.post(format!("{base}/crm/v3/objects/contacts"))
            .bearer_auth(&token)
            .json(&json!({"properties": {"email": "e@mail.example"}})),
    )
    .await;
    let (e, c) = (email["id"].as_str().unwrap(), contact["id"].as_str().unwrap());
    let input = json!({"inputs": [{"from": {"id": e}, "to": {"id": c}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 198}]}]});
    let (status, created) = send(
        http.post(format!("{base}/crm/v4/associations/emails/contacts/batch/create")).bearer_auth(&token).json(&input),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (_, back) =
        send(http.get(format!("{base}/crm/v4/objects/contacts/{c}/associations/emails")).bearer_auth(&token)).await;
    assert_eq!(back["results"][0]["toObjectId"].as_u64(), e.parse::<u64>().ok(), "{back}");
    assert_eq!(back["results"][0]["associationTypes"][0]["typeId"], 197, "the reverse type");
}
