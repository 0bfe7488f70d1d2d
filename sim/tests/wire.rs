//! Both emulators at the HTTP wire: a keep-alive connection survives an answer sent before a
//! chunked request body was read (unknown route, forced limit, injected 503), and an unknown
//! route answers in the CRM's own JSON error shape.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 response read off a connection: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Reads one response (Content-Length framed, as the emulators answer) from `stream`.
async fn read_answer(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Answer> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    buffer.drain(..head_end + 4);
    while buffer.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer.drain(..length).collect();
    Some(Answer { status, headers, body })
}

/// Sends a chunked POST to `path`, then a GET of `/__sim/state` on the same connection; returns
/// both answers (the second `None` if the connection was dropped).
async fn chunked_post_then_get(base: &str, path: &str) -> (Answer, Option<Answer>) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The body in two chunks, the second after a pause, as a streaming client sends it.
    stream.write_all(b"7\r\n{\"a\": 1\r\n").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    stream.write_all(b"1\r\n}\r\n0\r\n\r\n").await.unwrap();
    let mut buffer = Vec::new();
    let first = read_answer(&mut stream, &mut buffer).await.expect("a first answer");
    let second = format!("GET /__sim/state HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let sent = stream.write_all(second.as_bytes()).await;
    let second = match sent {
        Ok(()) => read_answer(&mut stream, &mut buffer).await,
        Err(_) => None,
    };
    (first, second)
}

#[tokio::test]
async fn a_keep_alive_connection_survives_an_answer_before_the_chunked_body_was_read() {
    let sim = start().await;
    let salesforce = sim.salesforce_url().unwrap();
    let hubspot = sim.hubspot_url().unwrap();
    let cases = [
        (salesforce.as_str(), "/services/data/v62.0/no/such/route"),
        (hubspot.as_str(), "/crm/v3/no/such/route"),
        // Without a token: refused before the body matters.
        (salesforce.as_str(), "/services/data/v62.0/composite/sobjects"),
        (hubspot.as_str(), "/crm/v3/objects/contacts/batch/create"),
    ];
    for (base, path) in cases {
        let (first, second) = chunked_post_then_get(base, path).await;
        assert!(first.status >= 400, "{path}: {}", first.status);
        assert!(first.body.starts_with(b"{") || first.body.starts_with(b"["), "{path}: a JSON error body");
        assert_ne!(first.header("connection"), Some("close"), "{path}: the connection stays open");
        let second = second.unwrap_or_else(|| panic!("{path}: the connection was dropped after the first answer"));
        assert_eq!(second.status, 200, "{path}");
    }
    // A forced rate limit and an injected 503 answer before any handler reads the body.
    for knobs in [r#"{"force_rate_limit": true}"#, r#"{"failure_rate": 1.0}"#] {
        for (base, path) in [
            (salesforce.as_str(), "/services/data/v62.0/composite/sobjects"),
            (hubspot.as_str(), "/crm/v3/objects/contacts/batch/create"),
        ] {
            let set = client().post(format!("{base}/__sim/knobs")).header("content-type", "application/json");
            assert!(set.body(knobs).send().await.unwrap().status().is_success());
            let (first, second) = chunked_post_then_get(base, path).await;
            assert!(first.status >= 400, "{knobs} {path}: {}", first.status);
            let second = second.unwrap_or_else(|| panic!("{knobs} {path}: the connection was dropped"));
            assert_eq!(second.status, 200, "{knobs} {path}");
            let reset = client().post(format!("{base}/__sim/knobs")).header("content-type", "application/json");
            let reset = reset.body(r#"{"force_rate_limit": false, "failure_rate": 0.0}"#).send().await.unwrap();
            assert!(reset.status().is_success());
        }
    }
}

#[tokio::test]
async fn unknown_routes_answer_in_each_crms_own_error_shape() {
    let sim = start().await;
    let salesforce = client().get(format!("{}/services/data/v62.0/nope", sim.salesforce_url().unwrap()));
    let answer = salesforce.send().await.unwrap();
    assert_eq!(answer.status(), 404);
    assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "NOT_FOUND", "{body}");
    assert!(body[0]["message"].is_string(), "{body}");

    let hubspot = client().delete(format!("{}/crm/v9/nope", sim.hubspot_url().unwrap()));
    let answer = hubspot.send().await.unwrap();
    assert_eq!(answer.status(), 404);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["category"].as_str()),
        (Some("error"), Some("OBJECT_NOT_FOUND")),
        "{body}"
    );
    assert!(body["correlationId"].is_string(), "{body}");
}
