//! Outbound HTTP through the host: a request builder with query strings and JSON or form bodies,
//! and response helpers.
//!
//! The host checks every request against the plugin's allowed hosts, refuses private addresses,
//! attaches the connection's credentials, and caps sizes and time. Setting `Authorization` yourself
//! is refused.

use serde::{Serialize, de::DeserializeOwned};

use crate::{AdapterError, Result, bindings::crmhost::adapter::http as host};

pub use host::{HttpError, Method};

/// An outbound request; build it with [`Request::get`], [`Request::post`], ... and [`Request::send`] it.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout_ms: Option<u32>,
}

impl Request {
    /// A request with any method.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self { method, url: url.into(), query: Vec::new(), headers: Vec::new(), body: None, timeout_ms: None }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A POST request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A PATCH request.
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }

    /// A PUT request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// A DELETE request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Adds a query parameter (percent-encoded for you).
    pub fn query(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.query.push((name.to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        self.body = Some(serde_json::to_vec(body)?);
        Ok(self.header("content-type", "application/json"))
    }

    /// Sets a form body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        self.body = Some(encoded.into_bytes());
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// Sets a raw body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// A timeout for this request; the host's maximum still applies.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// The full URL, with the query string appended.
    pub fn full_url(&self) -> String {
        if self.query.is_empty() {
            return self.url.clone();
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.query.iter())
            .finish()
            // Form encoding writes spaces as `+`; in a query both are read as a space by every CRM,
            // but `%20` is the unambiguous form.
            .replace('+', "%20");
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{query}", self.url)
    }

    /// Sends the request through the host. Transport failures and egress denials become
    /// [`AdapterError`]s (`unavailable` for timeouts and connection failures, `internal` otherwise).
    pub fn send(self) -> Result<Response> {
        let request = host::Request {
            method: self.method,
            url: self.full_url(),
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout_ms,
        };
        #[cfg(target_arch = "wasm32")]
        let answer = host::send(&request);
        // Off wasm (a plugin's own unit tests) the fake host of `crate::testing` answers.
        #[cfg(not(target_arch = "wasm32"))]
        let answer = crate::testing::send(&request);
        answer.map(Response).map_err(AdapterError::from)
    }
}

/// A response from the CRM.
#[derive(Debug, Clone)]
pub struct Response(host::Response);

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.0.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.0.status)
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.0.body
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.body).into_owned()
    }

    /// The body parsed as JSON into `T`; a parse failure is an `internal` error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(&self.0.body)?)
    }

    /// The response if it is 2xx; otherwise a generic [`AdapterError`] chosen by status (401
    /// unauthorized, 403 forbidden, 404 not found, 400/422 invalid, 409 duplicate, 429 rate
    /// limited with `Retry-After`, 5xx unavailable, anything else internal). `what` names the
    /// request in the message. Adapters that understand their CRM's error bodies should map those
    /// first and use this as the fallback.
    pub fn error_for_status(self, what: &str) -> Result<Self> {
        let status = self.status();
        if self.is_success() {
            return Ok(self);
        }
        let message = format!("{what}: the CRM answered HTTP {status}");
        Err(match status {
            401 => AdapterError::unauthorized(message),
            403 => AdapterError::forbidden(message),
            404 => AdapterError::not_found(message),
            400 | 422 => AdapterError::invalid(message),
            409 => AdapterError::duplicate(message, None),
            429 => {
                let retry_after_ms =
                    self.header("retry-after").and_then(|s| s.trim().parse::<u64>().ok()).map(|s| s * 1000);
                AdapterError::rate_limited(crate::RateLimitPolicy::Unknown, retry_after_ms, message)
            }
            500..=599 => AdapterError::unavailable(message),
            _ => AdapterError::internal(message),
        })
    }
}

impl From<HttpError> for AdapterError {
    fn from(err: HttpError) -> Self {
        match err {
            HttpError::Timeout => AdapterError::unavailable("the CRM did not answer in time"),
            HttpError::Connection(msg) => AdapterError::unavailable(format!("could not reach the CRM: {msg}")),
            // The host could not supply credentials (the connection needs re-authorization).
            HttpError::NoCredentials(msg) => AdapterError::unauthorized(format!("no usable credentials: {msg}")),
            HttpError::Denied(msg) => AdapterError::internal(format!("request refused by the host: {msg}")),
            HttpError::TooLarge(msg) => AdapterError::internal(format!("too large: {msg}")),
            HttpError::InvalidRequest(msg) => AdapterError::internal(format!("invalid request: {msg}")),
        }
    }
}
