//! The request edge, around every route: a NUL character in a path or query is refused before any
//! handler sees it, and every error leaves in the one JSON shape, including those axum, tower and
//! a panicking handler produce on their own (plain-text rejections, 408 timeouts, 500s).

use std::any::Any;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;

use super::error::ApiError;

/// Refuses a request whose path or query carries an encoded NUL (`%00`): ids and filters are
/// text, and PostgreSQL cannot even compare with a string holding one.
pub async fn refuse_nul(request: Request, next: Next) -> Response<Body> {
    let uri = request.uri();
    let carries_nul = |s: &str| s.contains("%00") || s.contains('\0');
    if carries_nul(uri.path()) || uri.query().is_some_and(carries_nul) {
        return ApiError::BadRequest(
            "the path or query contains a NUL character (%00); ids and filters may not".to_owned(),
        )
        .into_response();
    }
    next.run(request).await
}

/// Rewrites an error response that is not JSON (nor an HTML page the OAuth callback shows a
/// browser on purpose) into `{"error": {"code", "message"}}`, keeping the status and, as the
/// message, the text axum gave when it is short enough to be one.
pub async fn errors_as_json(request: Request, next: Next) -> Response<Body> {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_html(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.ok().and_then(|b| String::from_utf8(b.to_vec()).ok());
    let mut rewritten = shaped(status, text.as_deref().unwrap_or_default());
    // Headers that still hold: an `Allow` on 405, a `WWW-Authenticate`, a `Retry-After`.
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}

fn is_json_or_html(response: &Response<Body>) -> bool {
    response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("application/json") || ct.starts_with("text/html") || ct.starts_with("text/event-stream")
    })
}

/// The JSON error for `status`, with `text` as the message when it reads as one.
pub fn shaped(status: StatusCode, text: &str) -> Response<Body> {
    let text = text.trim();
    let message = if !text.is_empty() && text.len() <= 1000 && !status.is_server_error() {
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
    } else {
        default_message(status).to_owned()
    };
    let error = match status {
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::Internal("a response without a body".to_owned()),
        _ => ApiError::Coded { status, code: code_of(status), message },
    };
    error.into_response()
}

/// The machine-readable code of a status no handler chose.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::REQUEST_TIMEOUT => {
            "the request took too long; try again (long runs: start them without ?wait=true)"
        }
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is over the size limit",
        StatusCode::URI_TOO_LONG => "the request's URL is too long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "the request's headers are too large",
        s => s.canonical_reason().unwrap_or("the request failed"),
    }
}

/// The answer to a handler that panicked: a 500 in the JSON shape, the panic logged with an id.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = crate::telemetry::panic_detail(panic.as_ref());
    let mut response = ApiError::Internal(format!("a request handler panicked: {detail}")).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn body_of(response: Response<Body>) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 8192).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn plain_errors_become_the_json_shape_and_keep_axums_text() {
        let response = shaped(StatusCode::BAD_REQUEST, "Failed to deserialize query string: unknown field `x`\n");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_of(response).await;
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(body["error"]["message"].as_str().unwrap().contains("unknown field"), "{body}");
        let body = body_of(shaped(StatusCode::URI_TOO_LONG, "")).await;
        assert_eq!(body["error"]["code"], "uri_too_long");
    }

    #[tokio::test]
    async fn server_errors_never_echo_their_text() {
        let response = shaped(StatusCode::INTERNAL_SERVER_ERROR, "secret detail");
        let body = body_of(response).await;
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("secret detail"), "{body}");
        let body = body_of(panic_response(Box::new("token=abc"))).await;
        assert!(!body.to_string().contains("token=abc"), "{body}");
    }
}
