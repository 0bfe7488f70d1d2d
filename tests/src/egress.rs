//! A loopback HTTP server plugins can be pointed at (egress tests).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};

/// What the egress test server offers:
/// - `GET /ok` → 200 `hello`
/// - `GET /big?size=N` → N bytes
/// - `GET /slow?ms=N` → 200 after N ms
/// - `GET /redirect` → 302 to `/ok`
/// - `GET /auth` → 200 if `Authorization: Bearer good`, else 401
/// - `POST /echo` → 200 with the request body
pub struct EgressServer {
    /// Its address.
    pub addr: SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(serde::Deserialize)]
struct SizeQuery {
    size: Option<usize>,
    ms: Option<u64>,
}

impl EgressServer {
    /// Starts the server on 127.0.0.1, port 0.
    pub async fn start() -> Self {
        let app = Router::new()
            .route("/ok", get(|| async { "hello" }))
            .route("/big", get(|Query(q): Query<SizeQuery>| async move { vec![b'x'; q.size.unwrap_or(0)] }))
            .route(
                "/slow",
                get(|Query(q): Query<SizeQuery>| async move {
                    tokio::time::sleep(Duration::from_millis(q.ms.unwrap_or(0))).await;
                    "slow"
                }),
            )
            .route(
                "/redirect",
                get(|| async { (StatusCode::FOUND, [(axum::http::header::LOCATION, "/ok")]).into_response() }),
            )
            .route(
                "/auth",
                get(|headers: HeaderMap| async move {
                    let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer good");
                    if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
                }),
            )
            .route("/echo", post(|body: axum::body::Bytes| async move { body }))
            // The Python probe's key check: only `pk-7d1e-good` is accepted.
            .route(
                "/probe-key",
                get(|headers: HeaderMap| async move {
                    let ok = headers.get("x-probe-key").and_then(|v| v.to_str().ok()) == Some("Key pk-7d1e-good");
                    if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
                }),
            )
            // What credential a request carried, wherever the host put it.
            .route(
                "/credential",
                get(|headers: HeaderMap, uri: axum::http::Uri| async move {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
                    let query = uri.query().unwrap_or("-").to_owned();
                    format!(
                        "authorization={};x-probe-key={};query={query}",
                        header("authorization"),
                        header("x-probe-key")
                    )
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::disable());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, _task: task }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
