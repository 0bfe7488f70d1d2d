//! Body extractors whose every rejection is an [`ApiError`] in the one JSON shape: the content
//! type is checked (415), the size limit holds (413), the JSON is parsed with a message saying
//! where it is wrong, and text holding a NUL character is refused at the edge, so no handler, and
//! no database (PostgreSQL cannot store `\u0000`), ever sees one.
//!
//! Handlers take them as `Result<JsonBody<T>, ApiError>` and unwrap the result after their role
//! check, so a caller without the role learns that first, whatever the body.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::domain::storable::nul_position;

/// A JSON body the route needs.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A JSON body the route can do without: an empty body (with or without a content type) is
/// `T::default()`; anything else is checked like [`JsonBody`].
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (headers, bytes) = read(request, state).await?;
        if bytes.is_empty() {
            return Err(ApiError::BadRequest("send a JSON body with `Content-Type: application/json`".to_owned()));
        }
        parse(&headers, &bytes).map(Self)
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (headers, bytes) = read(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse(&headers, &bytes).map(Self)
    }
}

async fn read<S: Send + Sync>(request: Request, state: &S) -> Result<(HeaderMap, Bytes), ApiError> {
    let headers = request.headers().clone();
    let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("the request body is over the size limit".to_owned())
        } else {
            ApiError::BadRequest("the request body could not be read".to_owned())
        }
    })?;
    Ok((headers, bytes))
}

fn parse<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(unsupported_media_type());
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    if let Some(at) = nul_position(&value) {
        return Err(ApiError::BadRequest(format!(
            "`{at}` contains a NUL character (\\u0000); text may not contain one"
        )));
    }
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Whether the request says its body is JSON (`application/json` or `application/…+json`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// 415, naming the content type to use.
pub fn unsupported_media_type() -> ApiError {
    ApiError::Coded {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        message: "send the body as JSON with `Content-Type: application/json`".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn json_content_types_are_recognized() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }
}
