//! Every route, taken from the router's own table (a new route is covered without touching this
//! file), sent malformed input on SQLite and PostgreSQL: hostile path segments and queries, wrong
//! and missing content types, broken, wrongly typed, deeply nested and oversized bodies, NUL and
//! invalid UTF-8, SQL metacharacters, out-of-range numbers; and at the wire, requests hyper cannot
//! parse. Each answer must be under 500, in the one JSON error shape when it is an error, and the
//! server must still answer afterwards. The counts are printed for the record.

use std::collections::BTreeMap;
use std::time::Duration;

use crmhost::auth::Role;
use crmhost_tests::{ADMIN_TOKEN, Backend, Crm, SyncHarness, contacts, token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Hostile values for one path segment (already percent-encoded where they need to be).
const HOSTILE_SEGMENTS: &[&str] = &[
    "%00",
    "a%00b",
    "..%2F..%2Fetc%2Fpasswd",
    "..",
    "%2e%2e",
    "'%20OR%201%3D1--",
    "x%22%3B%20drop%20table%20records%3B--",
    "%FF%FE",
    "%C0%AF",
    "%E2%80%AE",
    "%0D%0Ainjected",
    "-1",
    "99999999999999999999999999",
    "%F0%9F%92%A9",
];

/// Hostile query strings.
const HOSTILE_QUERIES: &[&str] = &[
    "limit=-1",
    "limit=0",
    "limit=99999999999999999999",
    "limit=abc",
    "limit=1&limit=2",
    "before=%00",
    "before=x'--",
    "before=..%2F..",
    "after=%FF%FE",
    "after=%00",
    "wait=maybe",
    "wait=true&wait=false",
    "unknown=1",
    "status=%00",
    "status='%20or%201=1",
    "entity=../../x",
    "entity=%00",
    "items_after=-99999999999999999999",
    "items_limit=1e9",
    "changed_since=not-a-date",
    "changed_since=%00",
    "include_deleted=2",
    "outcome=%00",
    "record_id=%00",
    "state=a&state=b",
    "code=%00&state=%00",
    "error=x%0D%0Ay",
    "%ZZ=%ZZ",
];

/// A body and its content type (`None`: no content-type header).
struct BodyCase {
    name: &'static str,
    content_type: Option<&'static str>,
    bytes: Vec<u8>,
}

fn body_cases() -> Vec<BodyCase> {
    let json =
        |name, v: Value| BodyCase { name, content_type: Some("application/json"), bytes: v.to_string().into_bytes() };
    let raw = |name, ct, bytes: &[u8]| BodyCase { name, content_type: ct, bytes: bytes.to_vec() };
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    vec![
        raw("no content type", None, b"{}"),
        raw("text/plain", Some("text/plain"), b"{\"entity\":\"contact\"}"),
        raw("form", Some("application/x-www-form-urlencoded"), b"entity=contact"),
        raw("broken JSON", Some("application/json"), b"{\"entity\": "),
        raw("not JSON", Some("application/json"), b"nul"),
        raw("invalid UTF-8", Some("application/json"), b"{\"entity\": \"\xff\xfe\"}"),
        raw("empty with a type", Some("application/json"), b""),
        raw("deep array", Some("application/json"), deep_array.as_bytes()),
        raw("deep object", Some("application/json"), deep_object.as_bytes()),
        raw("over the size limit", Some("application/json"), &vec![b' '; 2 << 20]),
        json("array", json!([])),
        json("string", json!("contact")),
        json("number", json!(1)),
        json("null", json!(null)),
        json("unknown field", json!({"zzz": 1})),
        json("entity as number", json!({"entity": 1})),
        json("entity as list", json!({"entity": ["contact"]})),
        json("entity with NUL", json!({"entity": "con\u{0}tact"})),
        json("entity SQL", json!({"entity": "contact'; drop table records;--"})),
        json("entity long", json!({"entity": "x".repeat(100_000)})),
        json("entity traversal", json!({"entity": "../../etc/passwd"})),
        json("records not a list", json!({"records": "x"})),
        json("records of numbers", json!({"records": [1, 2, 3]})),
        json("record with NUL", json!({"records": [{"id": "a", "fields": {"x": "\u{0}"}}]})),
        json("record key with NUL", json!({"records": [{"id": "a", "fields": {"x\u{0}": "y"}}]})),
        json("record id hostile", json!({"records": [{"id": "../../x'--", "fields": {}}]})),
        json("record nested fields", json!({"records": [{"id": "a", "fields": {"x": {"y": [1, {"z": 2}]}}}]})),
        json("push ids", json!({"entity": "contact", "record_ids": ["%00", "'--", "x".repeat(5000)]})),
        json("push empty", json!({"entity": "contact", "record_ids": []})),
        json("push both", json!({"entity": "contact", "record_ids": ["a"], "records": []})),
        json("pull since", json!({"entity": "contact", "since": "yesterday"})),
        json("pull limit huge", json!({"entity": "contact", "limit": 1e300})),
        raw(
            "pull limit negative",
            Some("application/json"),
            br#"{"entity": "contact", "limit": -99999999999999999999999}"#,
        ),
        raw("pull limit 1e400", Some("application/json"), br#"{"entity": "contact", "limit": 1e400}"#),
        json("sync entities", json!({"entities": ["contact", "\u{0}", "x".repeat(300)]})),
        json("mappings object", json!({"entity": "contact", "mappings": {}})),
        json(
            "mappings hostile",
            json!({"entity": "contact", "mappings": [
                {"app_field": "a\u{0}", "crm_field": "Email"},
                {"app_field": "../x", "crm_field": "'; drop table x;--", "direction": "sideways"},
                {"app_field": "y", "crm_field": "Email", "transform": {"date_format": "%Q%H%"}},
                {"app_field": "z", "crm_field": "Email", "transform": {"value_map": {"a": 1}}},
            ]}),
        ),
        json(
            "settings hostile",
            json!({"direction": 5, "frequency": {"every_minutes": -5}, "daily_limit_percent": -1,
            "filters": {"contact": [{"field": "x", "op": "regex", "value": "("}]}, "entities": ["\u{0}"]}),
        ),
        raw(
            "settings numbers",
            Some("application/json"),
            br#"{"frequency": {"every_minutes": 99999999999999999999999}, "daily_limit_percent": 1e308}"#,
        ),
        raw(
            "settings 1e400",
            Some("application/json"),
            br#"{"daily_limit_percent": 1e400, "frequency": {"every_minutes": 1e400}}"#,
        ),
        json("resolution hostile", json!({"resolution": "merge", "values": {"x": "\u{0}"}})),
        json("resolution types", json!({"resolution": 7})),
        json("return_url hostile", json!({"return_url": "javascript:alert(1)"})),
        json("return_url NUL", json!({"return_url": "https://example.com/\u{0}"})),
    ]
}

/// Tallies answers and checks each one.
#[derive(Default)]
struct Tally {
    sent: usize,
    statuses: BTreeMap<u16, usize>,
    problems: Vec<String>,
}

impl Tally {
    async fn check(&mut self, what: &str, response: Result<reqwest::Response, reqwest::Error>) {
        self.sent += 1;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                self.problems.push(format!("{what}: no answer ({e})"));
                return;
            }
        };
        let status = response.status();
        *self.statuses.entry(status.as_u16()).or_default() += 1;
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = response.bytes().await.unwrap_or_default();
        if status.is_server_error() {
            self.problems.push(format!("{what}: {status} {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
            return;
        }
        if !status.is_client_error() {
            return;
        }
        let shaped = content_type.starts_with("application/json")
            && serde_json::from_slice::<Value>(&body).is_ok_and(|v| {
                v["error"]["code"].as_str().is_some_and(|c| !c.is_empty()) && v["error"]["message"].is_string()
            });
        if !shaped {
            self.problems.push(format!(
                "{what}: {status} not in the JSON error shape ({content_type}): {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
    }
}

/// Real values for every path parameter the router uses (a new parameter fails here by name).
fn real_value(param: &str, run_id: &str) -> String {
    match param {
        "id" => "w1".to_owned(),
        "slug" => "salesforce".to_owned(),
        "entity" => "contact".to_owned(),
        "record_id" => "c1".to_owned(),
        "run_id" => run_id.to_owned(),
        "cid" => "no-such-conflict".to_owned(),
        "app_field" => "first_name".to_owned(),
        "secret" => "whsec_not-the-secret".to_owned(),
        "file_id" => "latest".to_owned(),
        "endpoint_id" => "00000000-0000-4000-8000-000000000001".to_owned(),
        "delivery_id" => "00000000-0000-4000-8000-000000000002".to_owned(),
        other => panic!("the fuzz suite has no real value for path parameter `{{{other}}}`: add one"),
    }
}

/// The path with each `{param}` replaced: `hostile` for the one at `target`, real values elsewhere.
fn fill(path: &str, run_id: &str, target: Option<(usize, &str)>) -> String {
    let mut out = String::new();
    let mut index = 0;
    for part in path.split('/') {
        if !out.is_empty() || path.starts_with('/') {
            out.push('/');
        }
        match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(param) => {
                match target {
                    Some((i, hostile)) if i == index => out.push_str(hostile),
                    _ => out.push_str(&real_value(param, run_id)),
                }
                index += 1;
            }
            None => out.push_str(part),
        }
    }
    out.replacen("//", "/", 1)
}

fn params_of(path: &str) -> usize {
    path.matches('{').count()
}

/// A request to `path` with the credentials its route takes.
fn request(h: &SyncHarness, method: Method, path: &str, role: Role) -> reqwest::RequestBuilder {
    let builder = h.app.client.request(method, format!("{}{path}", h.app.base));
    if path.starts_with("/api/v1/admin") {
        builder.bearer_auth(ADMIN_TOKEN)
    } else {
        builder.bearer_auth(token("w1", role))
    }
}

async fn fuzz_backend(backend: Backend) -> Option<Tally> {
    let h = SyncHarness::start(backend, Crm::Salesforce, crm_sim::knobs::Knobs::default()).await?;
    h.put_records("contact", contacts(0..3, "")).await;
    let run = h.run("push", json!({"entity": "contact", "record_ids": ["c0", "c1", "c2"]})).await;
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let routes = crmhost::api::route_table();
    assert!(routes.len() >= 25, "the router's table lists its routes: {routes:?}");
    let bodies = body_cases();
    let mut tally = Tally::default();

    for route in &routes {
        let method = route.method.clone();
        let label = format!("{method} {}", route.path);
        // Hostile path segments, one parameter at a time.
        for index in 0..params_of(&route.path) {
            for hostile in HOSTILE_SEGMENTS {
                let path = fill(&route.path, &run_id, Some((index, hostile)));
                let answer = request(&h, method.clone(), &path, Role::Admin).json(&json!({})).send().await;
                tally.check(&format!("{label} [{path}]"), answer).await;
            }
        }
        // Hostile queries on the real path.
        let real = fill(&route.path, &run_id, None);
        for query in HOSTILE_QUERIES {
            let path = format!("{real}?{query}");
            let answer = request(&h, method.clone(), &path, Role::Admin).send().await;
            tally.check(&format!("{label} ?{query}"), answer).await;
        }
        // Hostile bodies (on every method: a body where none belongs must not hurt either).
        for case in &bodies {
            let mut builder = request(&h, method.clone(), &real, Role::Admin).body(case.bytes.clone());
            if let Some(ct) = case.content_type {
                builder = builder.header("content-type", ct);
            }
            tally.check(&format!("{label} body {}", case.name), builder.send().await).await;
        }
        // No credentials, a forged token, another workspace's token.
        for auth in [None, Some("not.a.jwt".to_owned()), Some(token("w2", Role::Owner))] {
            let mut builder = h.app.client.request(method.clone(), format!("{}{real}", h.app.base));
            if let Some(auth) = auth {
                builder = builder.bearer_auth(auth);
            }
            tally.check(&format!("{label} auth"), builder.send().await).await;
        }
    }
    tally.check("after: healthz", h.app.client.get(format!("{}/healthz", h.app.base)).send().await).await;
    let ready = h.app.client.get(format!("{}/readyz", h.app.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "{backend:?}: the server still answers and is ready");
    Some(tally)
}

#[tokio::test]
async fn every_route_survives_malformed_input_on_both_backends() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(tally) = fuzz_backend(backend).await else { continue };
        eprintln!("fuzz {backend:?}: {} requests, statuses {:?}", tally.sent, tally.statuses);
        assert!(
            tally.problems.is_empty(),
            "{backend:?}: {} problems:\n{}",
            tally.problems.len(),
            tally.problems.join("\n")
        );
    }
}

/// One raw exchange on a fresh connection: what came back, as text.
async fn raw_exchange(base: &str, request: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A refused request may be answered before it is all sent; the answer is what matters.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn requests_hyper_cannot_parse_are_answered_in_the_json_shape() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Salesforce, crm_sim::knobs::Knobs::default()).await.unwrap();
    let long_uri = format!("GET /api/v1/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let huge_header = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(600_000));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("a URL over 64 KiB", long_uri.into_bytes(), 414, "uri_too_long"),
        (
            "too many headers",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            431,
            "headers_too_large",
        ),
        ("a header over the buffer", huge_header.into_bytes(), 431, "headers_too_large"),
        ("a broken request line", b"GET\x01 / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400, "bad_request"),
        ("a bad header name", b"GET /healthz HTTP/1.1\r\nHo st: x\r\n\r\n".to_vec(), 400, "bad_request"),
    ];
    for (what, bytes, status, code) in cases {
        let answer = raw_exchange(&h.app.base, &bytes).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{what}: {answer}");
        assert!(answer.to_ascii_lowercase().contains("content-type: application/json"), "{what}: {answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        assert_eq!(json["error"]["code"], code, "{what}");
    }
    // And a normal request on a kept-alive connection still works after all of that.
    assert_eq!(h.app.client.get(format!("{}/healthz", h.app.base)).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn the_role_check_comes_before_the_body_and_json_routes_want_json() {
    let h = SyncHarness::start(Backend::Sqlite, Crm::Salesforce, crm_sim::knobs::Knobs::default()).await.unwrap();
    let run = h.run("pull", json!({"entity": "contact"})).await;
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let mut checked = 0;
    for route in crmhost::api::route_table().iter().filter(|r| r.path.starts_with("/api/v1/workspaces/")) {
        let path = fill(&route.path, &run_id, None);
        let as_viewer = |body: &'static [u8], ct: &'static str| {
            request(&h, route.method.clone(), &path, Role::Viewer).header("content-type", ct).body(body)
        };
        let plain = as_viewer(b"", "application/json").send().await.unwrap().status();
        if plain != StatusCode::FORBIDDEN {
            continue;
        }
        for (body, ct) in
            [(&b"{\"entity\": "[..], "application/json"), (b"{}", "text/plain"), (b"[1]", "application/json")]
        {
            let status = as_viewer(body, ct).send().await.unwrap().status();
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{} {}: a viewer learns the role first",
                route.method,
                route.path
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "write routes checked: {checked}");

    // A JSON route given another content type says 415 instead of ignoring the body.
    let json_routes = [
        (Method::POST, "/integrations/salesforce/push"),
        (Method::POST, "/integrations/salesforce/pull"),
        (Method::POST, "/integrations/salesforce/sync"),
        (Method::POST, "/integrations/salesforce/connect"),
        (Method::PUT, "/integrations/salesforce/field-mappings"),
        (Method::PATCH, "/integrations/salesforce/settings"),
        (Method::PUT, "/records/contact"),
        (Method::POST, "/conflicts/00000000-0000-4000-8000-000000000000/resolve"),
        (Method::POST, "/integrations/salesforce/field-mappings/suggest"),
        (Method::POST, "/integrations/salesforce/field-mappings/preview"),
        (Method::PUT, "/integrations/salesforce/field-mappings/contact/first_name"),
        (Method::PUT, "/integrations/salesforce/conflict-rules/contact/first_name"),
    ];
    for (method, rest) in json_routes {
        let response =
            h.api(method.clone(), rest).header("content-type", "text/plain").body("{}").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{method} {rest}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unsupported_media_type", "{method} {rest}");
    }
    // Optional bodies: none at all is fine; a broken one is an error, not silently ignored.
    let (status, _) = SyncHarness::send(h.api(Method::POST, &h.integration_path("/sync?wait=true"))).await;
    assert_eq!(status, StatusCode::OK);
    let broken = h.api(Method::POST, &h.integration_path("/sync")).header("content-type", "application/json").body("{");
    let (status, body) = SyncHarness::send(broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
