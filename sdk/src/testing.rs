//! A fake host for unit-testing a plugin natively (`cargo test` of the plugin crate, off wasm):
//! [`fake_host`] answers the plugin's [`Request::send`](crate::http::Request::send) from a closure
//! standing in for the CRM, serves [`connection::get`](crate::connection::get) from a list of
//! facts, records what was sent, and prints log lines. In a component (on wasm) none of this
//! exists: the real host answers.
//!
//! ```
//! use crmhost_sdk::prelude::*;
//! use crmhost_sdk::testing::{FakeResponse, fake_host};
//!
//! fn account_name() -> Result<String> {
//!     let base = connection::require("base_url")?;
//!     let me: crmhost_sdk::serde_json::Value =
//!         Request::get(format!("{base}/v1/me")).send()?.error_for_status("me")?.json()?;
//!     Ok(me["name"].as_str().unwrap_or_default().to_owned())
//! }
//!
//! let host = fake_host(&[("base_url", "https://crm.test")], |request| match request.path() {
//!     "/v1/me" => FakeResponse::json(200, crmhost_sdk::serde_json::json!({"name": "Test account"})),
//!     _ => FakeResponse::status(404),
//! });
//! assert_eq!(account_name().unwrap(), "Test account");
//! assert_eq!(host.sent()[0].url, "https://crm.test/v1/me");
//!
//! // The CRM's refusals reach the plugin as they would from the real host.
//! let _host = fake_host(&[("base_url", "https://crm.test")], |_| FakeResponse::status(429).header("retry-after", "3"));
//! assert!(matches!(account_name(), Err(AdapterError::RateLimited(_))));
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::bindings::crmhost::adapter::http as wire;
use crate::http::{HttpError, Method};

/// A request the plugin sent, as the host received it (the query already in `url`).
#[derive(Debug, Clone)]
pub struct SentRequest {
    /// The method.
    pub method: Method,
    /// The full URL.
    pub url: String,
    /// The headers the plugin set.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

impl SentRequest {
    /// The URL's path (`/v1/contacts`).
    pub fn path(&self) -> &str {
        let after_scheme = self.url.split_once("://").map_or(self.url.as_str(), |(_, rest)| rest);
        let path = after_scheme.find('/').map_or("/", |at| &after_scheme[at..]);
        path.split_once('?').map_or(path, |(path, _)| path)
    }

    /// A query parameter, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let (_, query) = self.url.split_once('?')?;
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The body parsed as JSON (`Null` when absent or not JSON).
    pub fn json(&self) -> serde_json::Value {
        self.body.as_deref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(serde_json::Value::Null)
    }
}

/// What the fake CRM answers.
#[derive(Debug, Clone)]
pub struct FakeResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl FakeResponse {
    /// An answer with a status and no body.
    pub fn status(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    /// An answer with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        Self { status, headers, body: body.to_string().into_bytes() }
    }

    /// Adds a header (names are lower-cased, as the host gives them).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }
}

type Crm = Box<dyn FnMut(&SentRequest) -> FakeResponse>;

/// The fake host of the current thread.
struct Installed {
    facts: BTreeMap<String, String>,
    crm: Crm,
    sent: Rc<RefCell<Vec<SentRequest>>>,
}

thread_local! {
    static INSTALLED: RefCell<Option<Installed>> = const { RefCell::new(None) };
}

/// The fake host installed by [`fake_host`]; dropping it uninstalls it.
#[derive(Debug)]
pub struct FakeHost {
    sent: Rc<RefCell<Vec<SentRequest>>>,
}

impl FakeHost {
    /// Every request sent so far, in order.
    pub fn sent(&self) -> Vec<SentRequest> {
        self.sent.borrow().clone()
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        INSTALLED.with(|installed| installed.borrow_mut().take());
    }
}

/// Installs a fake host on this thread (each test runs on its own): `http.send` answers with `crm`,
/// `connection::get` with `facts`. Replaces one installed before.
pub fn fake_host(facts: &[(&str, &str)], crm: impl FnMut(&SentRequest) -> FakeResponse + 'static) -> FakeHost {
    let sent = Rc::new(RefCell::new(Vec::new()));
    let facts = facts.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    INSTALLED.with(|installed| {
        *installed.borrow_mut() = Some(Installed { facts, crm: Box::new(crm), sent: sent.clone() });
    });
    FakeHost { sent }
}

/// `http.send` off wasm: the fake CRM's answer, or a refusal saying how to install one.
pub(crate) fn send(request: &wire::Request) -> Result<wire::Response, HttpError> {
    let sent = SentRequest {
        method: request.method,
        url: request.url.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
    };
    INSTALLED.with(|installed| {
        let mut installed = installed.borrow_mut();
        let Some(host) = installed.as_mut() else {
            return Err(HttpError::Denied(
                "no fake host on this thread: install one with crmhost_sdk::testing::fake_host".to_owned(),
            ));
        };
        host.sent.borrow_mut().push(sent.clone());
        let answer = (host.crm)(&sent);
        Ok(wire::Response { status: answer.status, headers: answer.headers, body: answer.body })
    })
}

/// `connection.get` off wasm.
pub(crate) fn fact(key: &str) -> Option<String> {
    INSTALLED.with(|installed| installed.borrow().as_ref().and_then(|host| host.facts.get(key).cloned()))
}
