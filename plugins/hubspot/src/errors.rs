//! HubSpot errors (`{status, message, category, errors[], context, policyName}`) mapped to the
//! contract's kinds, with the retry-after each rate-limit policy calls for.

use crmhost_sdk::prelude::*;
use serde::Deserialize;

/// An error body; every field optional, as HubSpot's are in practice.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HsError {
    /// The message.
    #[serde(default)]
    pub message: String,
    /// `VALIDATION_ERROR`, `OBJECT_NOT_FOUND`, `CONFLICT`, `RATE_LIMITS`, …
    pub category: Option<String>,
    /// A finer category (`ILS.DUPLICATE_LIST_NAMES`).
    pub sub_category: Option<String>,
    /// The rate-limit policy (`TEN_SECONDLY_ROLLING`, `DAILY`).
    pub policy_name: Option<String>,
    /// Details per input.
    #[serde(default)]
    pub errors: Vec<HsDetail>,
    /// What a batch error is about (`{"toObjectId": ["123"]}`).
    #[serde(default)]
    pub context: Option<serde_json::Value>,
}

/// One detail of an error.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HsDetail {
    /// A code (`INVALID_EMAIL`, `PROPERTY_DOESNT_EXIST`).
    pub code: Option<String>,
    /// The property concerned.
    #[serde(rename = "in")]
    pub field: Option<String>,
}

impl HsError {
    /// Every id a batch error's `context` names (`fromObjectId`, `toObjectId`, `ids`, …).
    pub fn context_ids(&self) -> Vec<String> {
        let Some(context) = self.context.as_ref().and_then(serde_json::Value::as_object) else { return Vec::new() };
        context
            .values()
            .filter_map(serde_json::Value::as_array)
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// The error as the contract's kind, for an answer with `status`.
    pub fn to_adapter_error(&self, status: u16, what: &str) -> AdapterError {
        let message = if what.is_empty() { self.message.clone() } else { format!("{what}: {}", self.message) };
        let code = self
            .errors
            .first()
            .and_then(|d| d.code.clone())
            .or_else(|| embedded_code(&self.message))
            .or_else(|| self.sub_category.clone())
            .or_else(|| self.category.clone());
        let mapped = match status {
            429 => {
                let policy = self.policy_name.as_deref().unwrap_or_default();
                if policy == "DAILY" {
                    AdapterError::rate_limited(RateLimitPolicy::Daily, Some(3_600_000), message)
                } else if self.message.contains("secondly limit") {
                    AdapterError::rate_limited(RateLimitPolicy::Burst, Some(1_000), message)
                } else {
                    AdapterError::rate_limited(RateLimitPolicy::Burst, Some(10_000), message)
                }
            }
            401 => AdapterError::unauthorized(message),
            403 => AdapterError::forbidden(message),
            404 => AdapterError::not_found(message),
            409 => AdapterError::duplicate(message.clone(), existing_id(&self.message)),
            500..=599 => AdapterError::unavailable(message),
            _ if self.category.as_deref() == Some("OBJECT_NOT_FOUND") => AdapterError::not_found(message),
            _ => AdapterError::invalid(message),
        };
        let mapped = match code {
            Some(code) => mapped.with_crm_code(code),
            None => mapped,
        };
        match self.errors.first().and_then(|d| d.field.clone()) {
            Some(field) => mapped.with_field(field),
            None => mapped,
        }
    }
}

/// The `Existing ID: N` of a duplicate-contact message.
pub fn existing_id(message: &str) -> Option<String> {
    let rest = &message[message.find("Existing ID:")? + "Existing ID:".len()..];
    let id: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    (!id.is_empty()).then_some(id)
}

/// Property-validation messages embed a JSON array with an `error` code per property.
fn embedded_code(message: &str) -> Option<String> {
    let start = message.find("\"error\":\"")? + "\"error\":\"".len();
    let code: String = message[start..].chars().take_while(|c| *c != '"').collect();
    (!code.is_empty()).then_some(code)
}

/// The response if 2xx (207 included); otherwise the mapped error.
pub fn check(response: Response, what: &str) -> Result<Response> {
    if response.is_success() {
        return Ok(response);
    }
    let status = response.status();
    match response.json::<HsError>() {
        Ok(error) => Err(error.to_adapter_error(status, what)),
        Err(_) => response.error_for_status(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_policies_and_duplicates_are_recognised() {
        let burst: HsError = serde_json::from_str(
            r#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}"#,
        )
        .unwrap();
        assert!(
            matches!(burst.to_adapter_error(429, ""), AdapterError::RateLimited(r) if r.retry_after_ms == Some(10_000))
        );
        let secondly: HsError = serde_json::from_str(r#"{"message":"You have reached your secondly limit."}"#).unwrap();
        assert!(
            matches!(secondly.to_adapter_error(429, ""), AdapterError::RateLimited(r) if r.retry_after_ms == Some(1_000))
        );
        let dup: HsError =
            serde_json::from_str(r#"{"message":"Contact already exists. Existing ID: 2926551","category":"CONFLICT"}"#)
                .unwrap();
        assert!(
            matches!(dup.to_adapter_error(409, ""), AdapterError::Duplicate(d) if d.existing_id.as_deref() == Some("2926551"))
        );
        let invalid: HsError = serde_json::from_str(
            r#"{"message":"Property values were not valid: [{\"isValid\":false,\"message\":\"x\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}]","category":"VALIDATION_ERROR"}"#,
        )
        .unwrap();
        assert!(
            matches!(invalid.to_adapter_error(400, ""), AdapterError::Invalid(i) if i.crm_code.as_deref() == Some("INVALID_EMAIL"))
        );
    }
}
