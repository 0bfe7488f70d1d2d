//! Salesforce error responses, exactly as the REST API shapes them: always a JSON array of
//! `{"message", "errorCode"[, "fields"]}`, with the status the real API uses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One REST error.
#[derive(Debug, Clone, PartialEq)]
pub struct SfError {
    /// HTTP status.
    pub status: StatusCode,
    /// `errorCode` (`statusCode` inside collection results).
    pub code: &'static str,
    /// `message`.
    pub message: String,
    /// `fields`.
    pub fields: Vec<String>,
}

impl SfError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), fields: Vec::new() }
    }

    /// A 400 error.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Attaches field names.
    pub fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    /// `404 NOT_FOUND`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
    }

    /// The body of a single-record error response.
    pub fn body(&self) -> Value {
        let mut entry = json!({ "message": self.message, "errorCode": self.code });
        if !self.fields.is_empty() {
            entry["fields"] = json!(self.fields);
        }
        json!([entry])
    }

    /// The entry inside a collection (or single create) result: `statusCode`, not `errorCode`.
    pub fn collection_entry(&self) -> Value {
        json!({ "statusCode": self.code, "message": self.message, "fields": self.fields })
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// 401 for an expired, revoked or unknown session.
pub fn invalid_session() -> SfError {
    SfError::new(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid")
}

/// 403 when the daily allocation is used up (Salesforce says 403, not 429).
pub fn request_limit_exceeded() -> SfError {
    SfError::new(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
}

/// 503, for injected failures.
pub fn server_unavailable() -> Response {
    SfError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVER_UNAVAILABLE",
        "Server is temporarily unavailable. Please try again later.",
    )
    .into_response()
}

/// The OAuth token endpoint's error shape: 400 `{"error", "error_description"}`.
pub fn oauth_error(error: &str, description: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": error, "error_description": description }))).into_response()
}
