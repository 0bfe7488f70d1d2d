//! [`ApiError`]: the one error type of the HTTP layer and the only place statuses are chosen:
//! every lower layer's error (auth, connections, sync, store) converts here.
//!
//! Every error answers `{"error": {"code": "...", "message": "..."}}`. A 5xx never carries
//! internals: the cause is logged with an id, and the client gets the id to quote.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::connections::ConnectionError;
use crate::oauth::OAuthError;
use crate::store::{StateRejection, StoreError};

/// An API error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or invalid; the message says what to fix.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing, malformed or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed (or the feature is disabled).
    #[error("{message}")]
    Forbidden {
        /// A machine-readable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 409: conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422: well-formed but semantically invalid.
    #[error("{0}")]
    Unprocessable(String),
    /// 503: a dependency is down.
    #[error("{0}")]
    Unavailable(String),
    /// Any other status with its own machine-readable code (OAuth outcomes, CRM failures).
    #[error("{message}")]
    Coded {
        /// The HTTP status.
        status: StatusCode,
        /// A machine-readable code.
        code: &'static str,
        /// What happened and what to do.
        message: String,
    },
    /// 500: anything unexpected. The inner text is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Coded { status, code, .. } => (*status, code),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Internal(detail) => {
                let id = uuid::Uuid::new_v4();
                tracing::error!(error_id = %id, detail = %detail, "internal error");
                format!("internal error (id {id}); the server log has the details")
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(error_body(code, &message))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound("not found".to_owned()),
            StoreError::Conflict { .. } => Self::Conflict("conflicts with an existing resource".to_owned()),
            StoreError::Changed(what) => Self::Conflict(format!("{what}; try again")),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        ApiError::Unauthorized(err.to_string())
    }
}

impl From<ConnectionError> for ApiError {
    fn from(err: ConnectionError) -> Self {
        let coded = |status: StatusCode, code: &'static str, message: String| ApiError::Coded { status, code, message };
        let message = err.to_string();
        match err {
            ConnectionError::UnknownPlugin(_) => coded(StatusCode::NOT_FOUND, "unknown_integration", message),
            ConnectionError::NotConnected(_) => coded(StatusCode::NOT_FOUND, "not_connected", message),
            ConnectionError::NeedsReauth(_) => coded(StatusCode::CONFLICT, "needs_reauth", message),
            ConnectionError::BadInput(_) => ApiError::BadRequest(message),
            ConnectionError::State(rejection) => {
                let code = match rejection {
                    StateRejection::Unknown => "state_unknown",
                    StateRejection::Replayed => "state_replayed",
                    StateRejection::Expired => "state_expired",
                    StateRejection::WrongIntegration => "state_mismatch",
                };
                coded(StatusCode::BAD_REQUEST, code, message)
            }
            ConnectionError::Denied { .. } => coded(StatusCode::BAD_REQUEST, "access_denied", message),
            ConnectionError::OAuth(oauth) => match oauth {
                OAuthError::NotConfigured(_) => coded(StatusCode::SERVICE_UNAVAILABLE, "oauth_not_configured", message),
                OAuthError::NotOAuth(_) => coded(StatusCode::BAD_REQUEST, "not_oauth", message),
                OAuthError::InvalidGrant(_) => coded(StatusCode::BAD_REQUEST, "invalid_grant", message),
                OAuthError::Rejected { .. } => coded(StatusCode::BAD_GATEWAY, "crm_rejected", message),
                OAuthError::Transient(_) => coded(StatusCode::BAD_GATEWAY, "crm_unavailable", message),
            },
            ConnectionError::TestFailed { .. } => coded(StatusCode::BAD_GATEWAY, "connection_test_failed", message),
            ConnectionError::CredentialsRejected { .. } => {
                coded(StatusCode::BAD_REQUEST, "credentials_rejected", message)
            }
            ConnectionError::Unreadable(detail) => ApiError::Internal(detail),
            ConnectionError::Store(store) => store.into(),
        }
    }
}

impl From<crate::sync::SyncError> for ApiError {
    fn from(err: crate::sync::SyncError) -> Self {
        use crate::sync::SyncError as E;
        let message = err.to_string();
        match err {
            E::Connection(c) => c.into(),
            E::BadInput(_) => ApiError::BadRequest(message),
            E::Unprocessable(_) => ApiError::Unprocessable(message),
            E::NotFound(_) => ApiError::NotFound(message),
            E::NotSupported(_) => ApiError::Coded { status: StatusCode::NOT_FOUND, code: "not_supported", message },
            E::Conflict(_) => ApiError::Conflict(message),
            E::Paused(_) => ApiError::Coded { status: StatusCode::CONFLICT, code: "integration_paused", message },
            E::Unauthorized(_) => ApiError::Unauthorized(message),
            E::Crm { kind, .. } => ApiError::Coded { status: StatusCode::BAD_GATEWAY, code: crm_code(kind), message },
            E::Store(s) => s.into(),
        }
    }
}

/// The API code of a CRM-side failure.
fn crm_code(kind: &str) -> &'static str {
    match kind {
        "rate_limited" => "crm_rate_limited",
        "unauthorized" | "forbidden" => "crm_refused",
        "unavailable" => "crm_unavailable",
        "plugin_failed" => "plugin_failed",
        _ => "crm_error",
    }
}

/// `Result` with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

/// The one JSON error shape, `{"error": {"code", "message"}}` (documented as `ErrorBody`).
pub(crate) fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": { "code": code, "message": message } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_detail() {
        let response = ApiError::Internal("password=hunter2 at db".to_owned()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("\"code\":\"internal\""), "{text}");
    }

    #[test]
    fn store_not_found_is_404_and_conflict_is_409() {
        assert_eq!(ApiError::from(StoreError::NotFound).status_and_code().0, StatusCode::NOT_FOUND);
        let conflict = StoreError::Conflict { constraint: "x".to_owned() };
        assert_eq!(ApiError::from(conflict).status_and_code().0, StatusCode::CONFLICT);
    }
}
