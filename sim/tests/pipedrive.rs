//! The Pipedrive emulator over loopback HTTP: OAuth and API tokens, v2 items (paging, filters,
//! writes, search), v1 recents and fields, errors and the burst limit.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use crm_sim::pipedrive::API_TOKEN;
use serde_json::{Value, json};

async fn start_pipedrive() -> (crm_sim::SimHandle, String) {
    let sim = crm_sim::start(crm_sim::SimOptions::all_on_free_ports()).await.unwrap();
    let base = sim.pipedrive_url().unwrap();
    (sim, base)
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), headers)
}

fn with_token(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header("x-api-token", API_TOKEN)
}

#[tokio::test]
async fn oauth_issues_tokens_with_the_api_domain_and_every_credential_form_authenticates() {
    let (_sim, base) = start_pipedrive().await;
    let url = format!(
        "{base}/oauth/authorize?client_id={CLIENT_ID}&redirect_uri={}&state=s9&code_challenge={}",
        urlencode(REDIRECT),
        challenge(VERIFIER)
    );
    let params = authorize(&url).await;
    assert_eq!(params["state"], "s9");
    let exchange = |form: Vec<(&'static str, String)>| {
        client().post(format!("{base}/oauth/token")).basic_auth(CLIENT_ID, Some(CLIENT_SECRET)).form(&form)
    };
    let code_form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", params["code"].clone()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("code_verifier", VERIFIER.to_owned()),
    ];
    let (status, tokens, _) = send(exchange(code_form.clone())).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!((tokens["token_type"].as_str(), tokens["expires_in"].as_u64()), (Some("Bearer"), Some(3599)));
    assert_eq!(tokens["api_domain"], base, "OAuth says where the company's API is");
    let (status, again, _) = send(exchange(code_form)).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "a code works once");

    // Bearer, header and query credentials all reach users/me; anything else is 401.
    let access = tokens["access_token"].as_str().unwrap();
    for request in [
        client().get(format!("{base}/v1/users/me")).bearer_auth(access),
        with_token(client().get(format!("{base}/api/v1/users/me"))),
        client().get(format!("{base}/v1/users/me?api_token={API_TOKEN}")),
    ] {
        let (status, me, headers) = send(request).await;
        assert_eq!((status, me["success"].as_bool()), (200, Some(true)), "{me}");
        assert_eq!(me["data"]["company_id"], crm_sim::pipedrive::COMPANY_ID);
        assert!(headers.contains_key("x-ratelimit-remaining"), "{headers:?}");
    }
    let (status, refused, _) = send(client().get(format!("{base}/v1/users/me")).header("x-api-token", "wrong")).await;
    assert_eq!(status, 401);
    assert_eq!(
        (refused["success"].as_bool(), refused["errorCode"].as_u64(), refused["error"].as_str()),
        (Some(false), Some(401), Some("unauthorized access"))
    );

    // Refresh keeps the refresh token; revoking it ends the access tokens it gave.
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed, _) =
        send(exchange(vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh.clone())])).await;
    assert_eq!((status, refreshed["refresh_token"].as_str()), (200, Some(refresh.as_str())));
    let revoke = client()
        .post(format!("{base}/oauth/revoke"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", refresh.as_str()), ("token_type_hint", "refresh_token")]);
    assert_eq!(send(revoke).await.0, 200);
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(send(client().get(format!("{base}/v1/users/me")).bearer_auth(new_access)).await.0, 401);
}

#[tokio::test]
async fn lists_page_by_cursor_in_id_or_update_order_and_filter_by_update_time() {
    let (sim, base) = start_pipedrive().await;
    sim.sim().clock.set("2026-01-01T00:00:00Z".parse().unwrap());
    sim.sim().seed("person", 5).unwrap();
    sim.sim().clock.set("2026-01-02T00:00:00Z".parse().unwrap());
    // Person 2 changes later than the rest.
    let (status, _, _) =
        send(with_token(client().patch(format!("{base}/api/v2/persons/2"))).json(&json!({"first_name": "Later"})))
            .await;
    assert_eq!(status, 200);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v2/persons?limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page, _) = send(with_token(client().get(url))).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["data"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()));
        match page["additional_data"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);

    let (_, changed, _) = send(with_token(
        client().get(format!("{base}/api/v2/persons?sort_by=update_time&updated_since=2026-01-01T12:00:00Z")),
    ))
    .await;
    let ids: Vec<u64> = changed["data"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [2]);
    assert_eq!(changed["data"][0]["update_time"], "2026-01-02T00:00:00Z");
    assert_eq!(
        changed["data"][0]["emails"][0],
        json!({"value": "contact2@example.com", "primary": true, "label": "work"})
    );

    let (_, by_update, _) = send(with_token(
        client().get(format!("{base}/api/v2/persons?sort_by=update_time&sort_direction=desc&limit=1")),
    ))
    .await;
    assert_eq!(by_update["data"][0]["id"], 2);
    let other_order = by_update["additional_data"]["next_cursor"].as_str().unwrap();
    let (status, refused, _) =
        send(with_token(client().get(format!("{base}/api/v2/persons?cursor={other_order}")))).await;
    assert_eq!((status, refused["success"].as_bool()), (400, Some(false)), "a cursor belongs to its sorting");
    for bad in ["limit=501", "limit=0", "sort_by=name", "updated_since=yesterday", "ids=1,x"] {
        let (status, body, _) = send(with_token(client().get(format!("{base}/api/v2/persons?{bad}")))).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, picked, _) = send(with_token(client().get(format!("{base}/api/v2/persons?ids=4,1")))).await;
    assert_eq!(picked["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn writes_validate_like_pipedrive_and_deletes_leave_lists_but_not_recents() {
    let (sim, base) = start_pipedrive().await;
    sim.sim().clock.set("2026-02-01T10:00:00Z".parse().unwrap());
    let create = |kind: &str, body: Value| with_token(client().post(format!("{base}/api/v2/{kind}"))).json(&body);
    let (status, org, _) = send(create("organizations", json!({"name": "Acme"}))).await;
    assert_eq!(status, 200, "{org}");
    let org_id = org["data"]["id"].as_u64().unwrap();
    let (status, person, _) = send(create(
        "persons",
        json!({"name": "Jane Roe", "emails": [{"value": "jane@acme.example"}, {"value": "j@home.example", "label": "home"}], "org_id": org_id}),
    ))
    .await;
    assert_eq!(status, 200, "{person}");
    let person = &person["data"];
    assert_eq!(person["emails"][0]["primary"], true, "the first email becomes primary");
    assert_eq!(person["owner_id"], crm_sim::pipedrive::USER_ID);
    let id = person["id"].as_u64().unwrap();

    for (kind, body, expected) in [
        ("persons", json!({"emails": [{"value": "x@y.example"}]}), "name: is required"),
        ("persons", json!({"name": "X", "org_id": 999}), "Organization 999 does not exist"),
        ("persons", json!({"name": "X", "favourite_colour": "red"}), "favourite_colour"),
        ("persons", json!({"name": "X", "emails": "x@y.example"}), "emails"),
        ("deals", json!({"title": "D", "status": "pending"}), "status"),
        ("deals", json!({"title": "D", "expected_close_date": "31/12/2026"}), "expected_close_date"),
    ] {
        let (status, body, _) = send(create(kind, body)).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap().contains(expected), "{expected}: {body}");
        assert_eq!(body["success"], false);
    }

    let (_, found, _) = send(with_token(
        client().get(format!("{base}/api/v2/persons/search?term=JANE@acme.example&fields=email&exact_match=true")),
    ))
    .await;
    assert_eq!(found["data"]["items"][0]["item"]["id"], id, "{found}");
    assert_eq!(found["data"]["items"][0]["item"]["organization"]["name"], "Acme");
    let (_, partial, _) =
        send(with_token(client().get(format!("{base}/api/v2/persons/search?term=roe&fields=name")))).await;
    assert_eq!(partial["data"]["items"].as_array().unwrap().len(), 1);
    let (status, _, _) = send(with_token(client().get(format!("{base}/api/v2/persons/search?term=j")))).await;
    assert_eq!(status, 400, "two characters at least without exact_match");

    sim.sim().clock.set("2026-02-01T11:00:00Z".parse().unwrap());
    let (status, deleted, _) = send(with_token(client().delete(format!("{base}/api/v2/persons/{id}")))).await;
    assert_eq!((status, deleted["data"]["id"].as_u64()), (200, Some(id)));
    let (status, gone, _) = send(with_token(client().get(format!("{base}/api/v2/persons/{id}")))).await;
    assert_eq!((status, gone["error"].as_str()), (404, Some("Person not found")));
    let (_, listed, _) = send(with_token(client().get(format!("{base}/api/v2/persons")))).await;
    assert!(listed["data"].as_array().unwrap().is_empty());
    assert_eq!(send(with_token(client().delete(format!("{base}/api/v2/persons/{id}")))).await.0, 404);

    // Recents: every change since the instant, deletions included, oldest first.
    let (status, recents, _) = send(with_token(
        client().get(format!("{base}/v1/recents?since_timestamp=2026-02-01%2010:30:00&items=person,organization")),
    ))
    .await;
    assert_eq!(status, 200, "{recents}");
    let items = recents["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{recents}");
    assert_eq!((items[0]["item"].as_str(), items[0]["id"].as_u64()), (Some("person"), Some(id)));
    assert_eq!(items[0]["data"]["active_flag"], false);
    assert_eq!(items[0]["data"]["update_time"], "2026-02-01 11:00:00");
    assert_eq!(items[0]["data"]["email"][0]["value"], "jane@acme.example");
    let (_, all, _) =
        send(with_token(client().get(format!("{base}/v1/recents?since_timestamp=2026-01-01%2000:00:00&limit=1"))))
            .await;
    assert_eq!(all["additional_data"]["pagination"]["more_items_in_collection"], true);
    assert_eq!(all["additional_data"]["pagination"]["next_start"], 1);

    let (_, fields, _) = send(with_token(client().get(format!("{base}/v1/dealFields")))).await;
    let keys: Vec<&str> = fields["data"].as_array().unwrap().iter().filter_map(|f| f["key"].as_str()).collect();
    assert!(keys.contains(&"title") && keys.contains(&"expected_close_date"), "{keys:?}");
}

#[tokio::test]
async fn the_burst_limit_answers_429_with_the_headers_that_say_when_it_resets() {
    let (sim, base) = start_pipedrive().await;
    sim.sim().update_knobs(|k| k.pipedrive_two_second_limit = 3).unwrap();
    sim.sim().clock.set("2026-03-01T00:00:00Z".parse().unwrap());
    for remaining in ["2", "1", "0"] {
        let (status, _, headers) = send(with_token(client().get(format!("{base}/v1/users/me")))).await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-ratelimit-limit"], "3");
        assert_eq!(headers["x-ratelimit-remaining"], remaining);
    }
    let (status, body, headers) = send(with_token(client().get(format!("{base}/api/v2/deals")))).await;
    assert_eq!(
        (status, body["errorCode"].as_u64(), body["error"].as_str()),
        (429, Some(429), Some("Request over limit"))
    );
    assert_eq!(
        (headers["x-ratelimit-remaining"].to_str().unwrap(), headers["x-ratelimit-reset"].to_str().unwrap()),
        ("0", "2")
    );
    // The window is the token's: two seconds later it has room again.
    sim.sim().clock.advance(chrono::Duration::seconds(2));
    assert_eq!(send(with_token(client().get(format!("{base}/api/v2/deals")))).await.0, 200);
    assert!(sim.sim().call_count("pipedrive 429") >= 1);
}
