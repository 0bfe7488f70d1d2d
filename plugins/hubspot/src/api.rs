//! The HubSpot API: the base URL (operator setting `base_url`, else `https://api.hubapi.com`),
//! JSON requests, and every non-2xx answer mapped by [`crate::errors`].

use crmhost_sdk::prelude::*;

use crate::{DEFAULT_BASE_URL, errors};

/// The API base.
pub fn base_url() -> String {
    connection::get_or("base_url", DEFAULT_BASE_URL).trim_end_matches('/').to_owned()
}

/// `base + path`.
pub fn url(path: &str) -> String {
    format!("{}{path}", base_url())
}

/// Sends and checks; 207 multi-status is a success the caller reads per record.
pub fn send(request: Request, what: &str) -> Result<Response> {
    errors::check(request.header("Accept", "application/json").send()?, what)
}

/// `POST` JSON and parse the answer.
pub fn post_json<T: serde::de::DeserializeOwned>(path: &str, body: &serde_json::Value, what: &str) -> Result<T> {
    send(Request::post(url(path)).json(body)?, what)?.json()
}
