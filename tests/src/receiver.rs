//! A loopback webhook receiver, standing in for the platform: it records every request (headers and
//! raw body) and answers with the statuses it is told, in order (then 200).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request's headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    answers: VecDeque<u16>,
    /// Answer this when the queue is empty (default 200).
    otherwise: Option<u16>,
}

/// The receiver: `POST /hook` (any path) records and answers.
pub struct Receiver {
    /// Its address.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn receive(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut inner = inner.lock().expect("receiver lock");
    inner.received.push(Received { headers, body });
    let code = inner.answers.pop_front().or(inner.otherwise).unwrap_or(200);
    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
}

impl Receiver {
    /// Starts one on 127.0.0.1 (port 0, or `port`).
    pub async fn start_on(port: u16) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().route("/{*path}", post(receive)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner, _task: task }
    }

    /// Starts one on a free port.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers these statuses to the next requests, in order.
    pub fn answer(&self, codes: &[u16]) {
        self.inner.lock().expect("receiver lock").answers.extend(codes);
    }

    /// Answers `code` whenever no queued answer is left.
    pub fn answer_always(&self, code: u16) {
        self.inner.lock().expect("receiver lock").otherwise = Some(code);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("receiver lock").received.clone()
    }

    /// The received requests whose event type is `kind`.
    pub fn of_type(&self, kind: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.header("crmhost-event-type") == kind).collect()
    }

    /// Waits (up to `timeout`) until `pred` holds for what was received; whether it did.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(&self.received()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether `header` (`t=…,v1=…[,v1=…]`) signs `body` with `secret`: an independent
/// HMAC-SHA256 over `<t>.<body>`, as the README tells receivers to check.
pub fn signed_by(header: &str, body: &[u8], secret: &str) -> bool {
    use hmac::Mac as _;
    let parts: Vec<(&str, &str)> = header.split(',').filter_map(|p| p.split_once('=')).collect();
    let Some(t) = parts.iter().find(|(k, _)| *k == "t").map(|(_, v)| *v) else { return false };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let want = hex::encode(mac.finalize().into_bytes());
    parts.iter().any(|(k, v)| *k == "v1" && *v == want)
}
