//! Salesforce errors: the REST error array (`[{"message","errorCode","fields"}]`) and the
//! per-record `errors` of sObject Collections (`statusCode`), mapped to the contract's kinds.

use crmhost_sdk::prelude::*;
use serde::Deserialize;

/// One error as the REST API or a collection result reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct SfError {
    /// The message.
    #[serde(default)]
    pub message: String,
    /// `errorCode` in REST errors.
    #[serde(rename = "errorCode")]
    pub error_code: Option<String>,
    /// `statusCode` in collection results.
    #[serde(rename = "statusCode")]
    pub status_code: Option<String>,
    /// The fields concerned.
    #[serde(default)]
    pub fields: Vec<String>,
}

impl SfError {
    fn code(&self) -> &str {
        self.status_code.as_deref().or(self.error_code.as_deref()).unwrap_or("UNKNOWN_EXCEPTION")
    }
}

/// The response if 2xx; otherwise the mapped error. A 401 reaches here only after the host has
/// already refreshed the token once and retried.
pub fn check(response: Response, what: &str) -> Result<Response> {
    let status = response.status();
    if response.is_success() {
        return Ok(response);
    }
    let first = response.json::<Vec<SfError>>().ok().and_then(|errors| errors.into_iter().next());
    let Some(error) = first else {
        return response.error_for_status(what);
    };
    let code = error.code().to_owned();
    let message = format!("{what}: {}", error.message);
    let mapped = match (status, code.as_str()) {
        (403, "REQUEST_LIMIT_EXCEEDED") => {
            // "TotalRequests Limit exceeded." is the rolling 24 h allocation; the concurrent
            // long-request limit clears in seconds.
            if error.message.contains("Concurrent") {
                AdapterError::rate_limited(RateLimitPolicy::Concurrent, Some(20_000), message)
            } else {
                AdapterError::rate_limited(RateLimitPolicy::Daily, Some(3_600_000), message)
            }
        }
        (401, _) => AdapterError::unauthorized(message),
        (403, _) => AdapterError::forbidden(message),
        (404, _) => AdapterError::not_found(message),
        (300, _) => AdapterError::duplicate(message, None),
        (500..=599, _) => AdapterError::unavailable(message),
        _ => AdapterError::invalid(message),
    };
    let mapped = mapped.with_crm_code(code);
    Err(match error.fields.first() {
        Some(field) => mapped.with_field(field.clone()),
        None => mapped,
    })
}

/// The error of one failed record in a collection result.
pub fn record_error(errors: &[SfError]) -> AdapterError {
    let Some(error) = errors.first() else {
        return AdapterError::internal("Salesforce reported a failure without an error");
    };
    let code = error.code();
    let message = error.message.clone();
    let mapped = match code {
        "DUPLICATES_DETECTED" | "DUPLICATE_VALUE" | "DUPLICATE_EXTERNAL_ID" => AdapterError::duplicate(message, None),
        "ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY" | "NOT_FOUND" => AdapterError::not_found(message),
        "UNABLE_TO_LOCK_ROW" | "ALL_OR_NONE_OPERATION_ROLLED_BACK" | "SERVER_UNAVAILABLE" => {
            AdapterError::unavailable(message)
        }
        "INSUFFICIENT_ACCESS_OR_READONLY" | "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY" => {
            AdapterError::forbidden(message)
        }
        "REQUEST_LIMIT_EXCEEDED" => AdapterError::rate_limited(RateLimitPolicy::Daily, Some(3_600_000), message),
        // REQUIRED_FIELD_MISSING, INVALID_EMAIL_ADDRESS, FIELD_CUSTOM_VALIDATION_EXCEPTION,
        // INVALID_FIELD, STRING_TOO_LONG, INVALID_TYPE_ON_FIELD_IN_RECORD, …: the record was refused.
        _ => AdapterError::invalid(message),
    };
    let mapped = mapped.with_crm_code(code);
    match error.fields.first() {
        Some(field) => mapped.with_field(field.clone()),
        None => mapped,
    }
}
