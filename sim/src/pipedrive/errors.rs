//! Pipedrive error bodies: `{"success": false, "error", "error_info", "data": null,
//! "additional_data": null}` (401 and 429 also carry `errorCode`), as the API answers them.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Where every Pipedrive error points.
const ERROR_INFO: &str = "Please check developers.pipedrive.com for more information about Pipedrive API.";

/// A Pipedrive error response, with the rate-limit headers of the request that caused it.
#[derive(Debug, Clone)]
pub struct PdError {
    /// Status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
    /// Headers to send with it.
    pub headers: Vec<(&'static str, String)>,
}

impl IntoResponse for PdError {
    fn into_response(self) -> Response {
        super::with_headers((self.status, Json(self.body)).into_response(), &self.headers)
    }
}

/// An error with Pipedrive's body.
pub fn error(status: StatusCode, message: impl Into<String>) -> PdError {
    PdError {
        status,
        body: json!({ "success": false, "error": message.into(), "error_info": ERROR_INFO, "data": null, "additional_data": null }),
        headers: Vec::new(),
    }
}

/// 400: the input was refused (`Validation failed: …`).
pub fn validation(message: impl Into<String>) -> PdError {
    error(StatusCode::BAD_REQUEST, format!("Validation failed: {}", message.into()))
}

/// 400: a bad query parameter.
pub fn bad_request(message: impl Into<String>) -> PdError {
    error(StatusCode::BAD_REQUEST, message)
}

/// 401: no token, an unknown one, a revoked or expired one.
pub fn unauthorized(message: &str) -> PdError {
    let mut e = error(StatusCode::UNAUTHORIZED, message);
    e.body["errorCode"] = json!(401);
    e
}

/// 404: `Person not found`, `Deal not found`, …
pub fn not_found(what: &str) -> PdError {
    error(StatusCode::NOT_FOUND, format!("{what} not found"))
}

/// 404 for a path the API does not have.
pub fn unknown_path() -> PdError {
    error(StatusCode::NOT_FOUND, "Unknown method .")
}

/// 429: the burst window is spent.
pub fn over_limit(headers: Vec<(&'static str, String)>) -> PdError {
    let mut e = error(StatusCode::TOO_MANY_REQUESTS, "Request over limit");
    e.body["errorCode"] = json!(429);
    e.headers = headers;
    e
}

/// 500, as an injected failure answers.
pub fn server_error() -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error").into_response()
}
