//! Typed constructors and accessors for [`AdapterError`], so plugins never build WIT records by hand.

use crate::{AdapterError, DuplicateInfo, ErrorInfo, RateLimitInfo, RateLimitPolicy};

fn info(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo { message: message.into(), crm_code: None, field: None }
}

impl AdapterError {
    /// The credentials were rejected.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(info(message))
    }

    /// The credentials lack permission or scope.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(info(message))
    }

    /// The record or resource does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(info(message))
    }

    /// The input was rejected.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(info(message))
    }

    /// The input was rejected because of one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(ErrorInfo { message: message.into(), crm_code: None, field: Some(field.into()) })
    }

    /// The record already exists.
    pub fn duplicate(message: impl Into<String>, existing_id: Option<String>) -> Self {
        Self::Duplicate(DuplicateInfo { message: message.into(), crm_code: None, existing_id })
    }

    /// A rate limit was hit.
    pub fn rate_limited(policy: RateLimitPolicy, retry_after_ms: Option<u64>, message: impl Into<String>) -> Self {
        Self::RateLimited(RateLimitInfo { message: message.into(), policy, retry_after_ms })
    }

    /// A transient failure; retrying later may succeed.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(info(message))
    }

    /// This operation or entity is not implemented by the plugin.
    pub fn not_supported(what: impl Into<String>) -> Self {
        Self::NotSupported(what.into())
    }

    /// A bug, or an answer the adapter could not understand.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(info(message))
    }

    /// Attaches the CRM's own error code (where the variant carries one).
    pub fn with_crm_code(mut self, code: impl Into<String>) -> Self {
        let code = Some(code.into());
        match &mut self {
            Self::Unauthorized(i)
            | Self::Forbidden(i)
            | Self::NotFound(i)
            | Self::Invalid(i)
            | Self::Unavailable(i)
            | Self::Internal(i) => i.crm_code = code,
            Self::Duplicate(d) => d.crm_code = code,
            Self::RateLimited(_) | Self::NotSupported(_) => {}
        }
        self
    }

    /// Attaches the field the error is about (where the variant carries one).
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        if let Self::Unauthorized(i)
        | Self::Forbidden(i)
        | Self::NotFound(i)
        | Self::Invalid(i)
        | Self::Unavailable(i)
        | Self::Internal(i) = &mut self
        {
            i.field = Some(field.into());
        }
        self
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            Self::Unauthorized(i)
            | Self::Forbidden(i)
            | Self::NotFound(i)
            | Self::Invalid(i)
            | Self::Unavailable(i)
            | Self::Internal(i) => &i.message,
            Self::Duplicate(d) => &d.message,
            Self::RateLimited(r) => &r.message,
            Self::NotSupported(what) => what,
        }
    }
}

impl From<serde_json::Error> for AdapterError {
    fn from(err: serde_json::Error) -> Self {
        Self::internal(format!("unexpected JSON from the CRM: {err}"))
    }
}
