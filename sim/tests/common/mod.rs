//! Helpers shared by the emulator tests: start both emulators, run the OAuth flows over HTTP.
#![allow(dead_code, clippy::unwrap_used)]

use base64::Engine as _;
use crm_sim::{SimHandle, SimOptions};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "crm-sim-client";
pub const CLIENT_SECRET: &str = "crm-sim-secret";
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub async fn start() -> SimHandle {
    crm_sim::start(SimOptions::both_on_free_ports()).await.unwrap()
}

/// A client that does not follow redirects (the authorize endpoints answer with one).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Follows an authorize URL and returns the redirect's query parameters.
pub async fn authorize(url: &str) -> std::collections::BTreeMap<String, String> {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 302, "authorize should redirect: {}", response.text().await.unwrap_or_default());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let parsed = url::Url::parse(&location).unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    parsed.query_pairs().into_owned().collect()
}

/// Runs Salesforce's web-server flow with PKCE; returns the token response.
pub async fn salesforce_tokens(sim: &SimHandle) -> serde_json::Value {
    let base = sim.salesforce_url().unwrap();
    let url = format!(
        "{base}/services/oauth2/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&state=xyz&scope=api%20refresh_token&code_challenge={}",
        urlencode(REDIRECT),
        challenge(VERIFIER)
    );
    let params = authorize(&url).await;
    assert_eq!(params["state"], "xyz");
    let response = client()
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Runs HubSpot's authorization-code flow; returns the token response.
pub async fn hubspot_tokens(sim: &SimHandle, token_path: &str) -> serde_json::Value {
    let base = sim.hubspot_url().unwrap();
    let url = format!(
        "{base}/oauth/authorize?client_id={CLIENT_ID}&redirect_uri={}&scope=crm.objects.contacts.read%20crm.objects.contacts.write&state=s1",
        urlencode(REDIRECT)
    );
    let params = authorize(&url).await;
    let response = client()
        .post(format!("{base}{token_path}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
