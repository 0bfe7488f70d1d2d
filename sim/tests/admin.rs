//! The `/__sim` control surface, the `crm-sim` binary, and HTTP details real clients rely on.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn admin_endpoints_seed_move_the_clock_revoke_and_register_clients() {
    let sim = start().await;
    let http = client();
    let base = sim.hubspot_url().unwrap();

    let seeded: Value = http
        .post(format!("{base}/__sim/seed"))
        .json(&json!({"entity": "contact", "count": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seeded["created"], 10, "contact exists in both CRMs");
    let unknown =
        http.post(format!("{base}/__sim/seed")).json(&json!({"entity": "widget", "count": 1})).send().await.unwrap();
    assert_eq!(unknown.status(), 400);

    let clock: Value = http
        .post(format!("{base}/__sim/clock"))
        .json(&json!({"set": "2030-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((clock["now"].as_str(), clock["manual"].as_bool()), (Some("2030-01-01T00:00:00Z"), Some(true)));
    let clock: Value = http
        .post(format!("{base}/__sim/clock"))
        .json(&json!({"advance_secs": 60}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["now"], "2030-01-01T00:01:00Z");

    let tokens = hubspot_tokens(&sim, "/oauth/v1/token").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        http.get(format!("{base}/crm/v3/objects/contacts")).bearer_auth(access).send().await.unwrap().status(),
        200
    );
    let revoked = http.post(format!("{base}/__sim/revoke")).json(&json!({"token": access})).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        http.get(format!("{base}/crm/v3/objects/contacts")).bearer_auth(access).send().await.unwrap().status(),
        401
    );

    let registered = http
        .post(format!("{base}/__sim/clients"))
        .json(&json!({"id": "other-app", "secret": "other-secret", "redirect_uris": ["https://app.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let authorize = client()
        .get(format!("{base}/oauth/authorize?client_id=other-app&redirect_uri={}", urlencode("https://app.example/cb")))
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), 302);
    let wrong_redirect = client()
        .get(format!("{base}/oauth/authorize?client_id=other-app&redirect_uri={}", urlencode(REDIRECT)))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_redirect.status(), 400);

    let state: Value = http.get(format!("{base}/__sim/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["hubspot"]["records"]["contacts"], 5);
    assert_eq!(state["salesforce"]["records"]["Contact"], 5);
    assert_eq!(state["hubspot"]["access_tokens_issued"], 1);
    let calls: Value = http.get(format!("{base}/__sim/calls")).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls["hubspot GET /crm/v3/objects/{object}"], 2);
}

#[tokio::test]
async fn chunked_request_bodies_are_accepted_on_the_token_endpoint() {
    let sim = start().await;
    let base = sim.salesforce_url().unwrap();
    let url = format!(
        "{base}/services/oauth2/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}",
        urlencode(REDIRECT)
    );
    let code = authorize(&url).await["code"].clone();
    let form = format!(
        "grant_type=authorization_code&code={code}&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&redirect_uri={}",
        urlencode(REDIRECT)
    );
    // Written by hand so the body really goes out chunked (no Content-Length), as real clients send it.
    let addr = sim.salesforce_addr().unwrap();
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(stream, "POST /services/oauth2/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap();
        for chunk in form.as_bytes().chunks(7) {
            write!(stream, "{:x}\r\n", chunk.len()).unwrap();
            stream.write_all(chunk).unwrap();
            write!(stream, "\r\n").unwrap();
        }
        write!(stream, "0\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"access_token\""), "{response}");
}

#[test]
fn the_binary_serves_seeded_emulators_on_the_given_addresses() {
    let port = |_: ()| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (sf, hs) = (port(()), port(()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_crm-sim"))
        .args([
            "--salesforce",
            &format!("127.0.0.1:{sf}"),
            "--hubspot",
            &format!("127.0.0.1:{hs}"),
            "--seed",
            "contact=3",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let state: Value = loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", hs)).ok().and_then(|mut s| {
            use std::io::{Read, Write};
            write!(s, "GET /__sim/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
            let mut text = String::new();
            s.read_to_string(&mut text).ok()?;
            serde_json::from_str(text.split("\r\n\r\n").nth(1)?).ok()
        });
        if let Some(state) = got {
            break state;
        }
        assert!(std::time::Instant::now() < deadline, "crm-sim never answered");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(state["hubspot"]["records"]["contacts"], 3);
    assert_eq!(state["salesforce"]["base_url"], format!("http://127.0.0.1:{sf}"));
}
