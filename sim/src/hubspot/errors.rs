//! HubSpot error bodies: `{"status":"error","message","correlationId","category",…}` with the
//! categories and exact messages clients key on (rate-limit policies, "Existing ID: N").

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Sim;

/// A HubSpot error response.
#[derive(Debug, Clone)]
pub struct HsError {
    /// Status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
}

impl IntoResponse for HsError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// A correlation id (UUID-shaped, from the seeded generator).
pub fn correlation_id(sim: &Sim) -> String {
    sim.token_gen().uuid_like()
}

/// An error with a category and message.
pub fn error(sim: &Sim, status: StatusCode, category: &str, message: impl Into<String>) -> HsError {
    HsError {
        status,
        body: json!({ "status": "error", "message": message.into(), "correlationId": correlation_id(sim), "category": category }),
    }
}

/// 400 VALIDATION_ERROR.
pub fn validation(sim: &Sim, message: impl Into<String>) -> HsError {
    error(sim, StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// 403 MISSING_SCOPES: the token was not granted `scope`.
pub fn missing_scope(sim: &Sim, scope: &str) -> HsError {
    let mut e = error(
        sim,
        StatusCode::FORBIDDEN,
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
    );
    e.body["errors"] = json!([{
        "message": "One or more of the following scopes are required.",
        "context": { "requiredGranularScopes": [scope] },
    }]);
    e
}

/// 404 OBJECT_NOT_FOUND.
pub fn not_found(sim: &Sim) -> HsError {
    error(sim, StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "resource not found")
}

/// 401 for a missing or unknown token.
pub fn invalid_authentication(sim: &Sim) -> HsError {
    error(
        sim,
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
}

/// 401 for an expired token.
pub fn expired_authentication(sim: &Sim, seconds_ago: i64) -> HsError {
    let mut e = error(
        sim,
        StatusCode::UNAUTHORIZED,
        "EXPIRED_AUTHENTICATION",
        format!("The OAuth token used to make this call expired {seconds_ago} second(s) ago."),
    );
    e.body["context"] = json!({ "expire time": [format!("{seconds_ago} second(s) ago")] });
    e
}

fn rate_limited(sim: &Sim, message: &str, policy: Option<&str>) -> HsError {
    let mut body = json!({
        "status": "error", "message": message, "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(sim), "category": "RATE_LIMITS", "requestId": correlation_id(sim),
    });
    if let Some(policy) = policy {
        body["policyName"] = json!(policy);
    }
    HsError { status: StatusCode::TOO_MANY_REQUESTS, body }
}

/// 429 for the rolling ten-second limit.
pub fn ten_secondly_limit(sim: &Sim, _limit: u32) -> HsError {
    rate_limited(sim, "You have reached your ten_secondly_rolling limit.", Some("TEN_SECONDLY_ROLLING"))
}

/// 429 for the search API's per-second limit.
pub fn secondly_limit(sim: &Sim) -> HsError {
    rate_limited(sim, "You have reached your secondly limit.", Some("SECONDLY"))
}

/// 429 for the daily limit.
pub fn daily_limit(sim: &Sim) -> HsError {
    rate_limited(sim, "You have reached your daily limit.", Some("DAILY"))
}

/// 502/503 for injected failures.
pub fn server_error(sim: &Sim) -> Response {
    error(
        sim,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        "The service is temporarily unavailable. Please try again.",
    )
    .into_response()
}

/// One entry of a property-validation error.
pub fn property_problem(name: &str, code: &str, message: &str) -> Value {
    json!({ "isValid": false, "message": message, "error": code, "name": name, "localizedErrorMessage": message })
}

/// 400 VALIDATION_ERROR for invalid property values, in HubSpot's shape (a JSON array inside `message`).
pub fn invalid_properties(sim: &Sim, problems: &[Value]) -> HsError {
    let mut e = validation(sim, format!("Property values were not valid: {}", Value::Array(problems.to_vec())));
    let errors: Vec<Value> = problems
        .iter()
        .map(|p| json!({ "message": p["message"], "code": p["error"], "in": p["name"], "context": { "propertyName": [p["name"]] } }))
        .collect();
    e.body["errors"] = json!(errors);
    e
}

/// 409 for a duplicate contact email, with the message clients parse the id from.
pub fn contact_exists(sim: &Sim, existing_id: u64) -> HsError {
    error(sim, StatusCode::CONFLICT, "CONFLICT", format!("Contact already exists. Existing ID: {existing_id}"))
}
