//! Acme, the SDK's example CRM, over loopback HTTP: OAuth with PKCE, `me`, contact pages by id
//! with `ids` and `updated_since`, upsert on email, update, delete, and its error answers.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Trades an authorization code (without a PKCE verifier) at Acme's token endpoint.
async fn exchange(base: &str, code: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    send(client().post(format!("{base}/oauth/token")).form(&form)).await
}

/// Acme alone, and an access token from its code flow.
async fn connected() -> (crm_sim::SimHandle, String, String) {
    let sim = crm_sim::start(crm_sim::SimOptions::acme_on_a_free_port()).await.unwrap();
    let base = sim.acme_url().unwrap();
    let url = format!(
        "{base}/oauth/authorize?client_id={CLIENT_ID}&redirect_uri={}&state=a1&code_challenge={}&code_challenge_method=S256",
        urlencode(REDIRECT),
        challenge(VERIFIER)
    );
    let params = authorize(&url).await;
    let (status, refused) = exchange(&base, &params["code"]).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_grant")), "PKCE is checked: {refused}");

    let url = format!("{base}/oauth/authorize?client_id={CLIENT_ID}&redirect_uri={}&state=a2", urlencode(REDIRECT));
    let params = authorize(&url).await;
    assert_eq!(params["state"], "a2");
    let (status, tokens) = exchange(&base, &params["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    (sim, base, token)
}

#[tokio::test]
async fn contacts_page_by_id_upsert_on_email_and_delete_once() {
    let (sim, base, token) = connected().await;
    let api =
        |method: reqwest::Method, path: &str| client().request(method, format!("{base}/v1/{path}")).bearer_auth(&token);
    let (status, me) = send(api(reqwest::Method::GET, "me")).await;
    assert_eq!((status, me["account_id"].as_str()), (200, Some(crm_sim::acme::ACCOUNT_ID)));
    let (status, refused) = send(client().get(format!("{base}/v1/me")).bearer_auth("nope")).await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("invalid_token")));

    sim.sim().seed("contact", 5).unwrap();
    let (_, first) = send(api(reqwest::Method::GET, "contacts?limit=2")).await;
    assert_eq!((first["items"].as_array().unwrap().len(), first["next"].as_str()), (2, Some("2")));
    let (_, last) = send(api(reqwest::Method::GET, "contacts?limit=2&after=4")).await;
    assert_eq!((last["items"][0]["id"].as_str(), &last["next"]), (Some("5"), &Value::Null));
    let (_, picked) = send(api(reqwest::Method::GET, "contacts?ids=1,3,99")).await;
    let ids: Vec<&str> = picked["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "3"]);
    let (_, later) = send(api(reqwest::Method::GET, "contacts?updated_since=2100-01-01T00:00:00Z")).await;
    assert!(later["items"].as_array().unwrap().is_empty());
    let (status, _) = send(api(reqwest::Method::GET, "contacts?limit=500")).await;
    assert_eq!(status, 422);

    // Upsert on email: created once, then the same contact (whatever the case of the email).
    let body = json!({"email": "Ada@Example.com", "first_name": "Ada"});
    let (status, created) = send(api(reqwest::Method::PUT, "contacts?upsert_on=email").json(&body)).await;
    assert_eq!(status, 201, "{created}");
    let body = json!({"email": "ada@example.com", "last_name": "Lovelace"});
    let (status, updated) = send(api(reqwest::Method::PUT, "contacts?upsert_on=email").json(&body)).await;
    assert_eq!((status, &updated["id"], updated["first_name"].as_str()), (200, &created["id"], Some("Ada")));
    let (status, invalid) =
        send(api(reqwest::Method::PUT, "contacts?upsert_on=email").json(&json!({"email": "no-at"}))).await;
    assert_eq!((status, invalid["error"].as_str()), (422, Some("invalid")));
    let (status, _) = send(api(reqwest::Method::PATCH, "contacts/6").json(&json!({"title": "x"}))).await;
    assert_eq!(status, 422, "unknown fields are refused");

    let (status, _) = send(api(reqwest::Method::DELETE, "contacts/6")).await;
    assert_eq!(status, 204);
    let (status, gone) = send(api(reqwest::Method::DELETE, "contacts/6")).await;
    assert_eq!((status, gone["error"].as_str()), (404, Some("not_found")));
    assert_eq!(sim.sim().acme().live().count(), 5);
}
