//! The REST API of one org: `{instance_url}/services/data/v{api_version}`, requests with JSON
//! accepted, and every non-2xx answer turned into an [`AdapterError`] by [`crate::errors`].

use crmhost_sdk::prelude::*;

use crate::DEFAULT_API_VERSION;
use crate::errors;

/// The org's REST API.
pub struct Api {
    instance: String,
    version: String,
}

impl Api {
    /// The API of the connection's org (`instance_url` from the token response).
    pub fn from_connection() -> Result<Self> {
        let instance = connection::require("instance_url")?.trim_end_matches('/').to_owned();
        let version = connection::get_or("api_version", DEFAULT_API_VERSION);
        Ok(Self { instance, version })
    }

    /// `/services/data/vXX.X` plus `path`, absolute.
    pub fn url(&self, path: &str) -> String {
        format!("{}/services/data/v{}{path}", self.instance, self.version)
    }

    /// A server-relative path the API returned (`nextRecordsUrl`), absolute.
    pub fn absolute(&self, relative: &str) -> String {
        format!("{}{relative}", self.instance)
    }

    /// Sends a request and checks the answer; `what` names it in errors.
    pub fn send(&self, request: Request, what: &str) -> Result<Response> {
        self.send_accepting(request, "application/json", what)
    }

    /// [`Api::send`] asking for another content type (Bulk results are CSV); errors still come
    /// as JSON.
    pub fn send_accepting(&self, request: Request, accept: &str, what: &str) -> Result<Response> {
        let response = request.header("Accept", accept).send()?;
        errors::check(response, what)
    }

    /// `GET` a URL and parse the JSON answer.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, url: String, what: &str) -> Result<T> {
        self.send(Request::get(url), what)?.json()
    }
}
