//! Extractors whose every rejection is an [`ApiError`] in the one JSON shape, so handlers hold
//! only their own logic:
//! - [`Authorized`] and [`OnIntegration`]: the workspace caller, checked to hold at least a role
//!   (`at_least::Member`…), and for integration routes the `{slug}` parsed too.
//! - [`JsonBody`] / [`OptionalJsonBody`]: the content type is checked (415), the size limit holds
//!   (413), the JSON is parsed with a message saying where it is wrong, and text holding a NUL
//!   character is refused, so no handler, and no database (PostgreSQL cannot store `\u0000`),
//!   ever sees one.
//! - [`ApiQuery`] and [`ApiPath`]: axum's, with their rejections in the JSON shape.
//!
//! axum runs a handler's extractors in order, the body last: with the caller first, a caller
//! without the role learns that before anything about the body or query.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::auth::{AuthError, Caller, Role};
use crate::connections::ConnectionError;
use crate::domain::storable::nul_position;
use crate::domain::{PluginSlug, WorkspaceId};
use crate::state::AppState;

/// The least role a route needs, as a type: `Authorized<at_least::Member>`.
pub trait RoleFloor: Send + Sync + 'static {
    /// The role.
    const ROLE: Role;
}

/// The role floors routes use.
pub mod at_least {
    use super::{Role, RoleFloor};

    /// Any role (read-only routes).
    #[derive(Debug)]
    pub struct Viewer;
    /// Members and up (sync, records, conflicts).
    #[derive(Debug)]
    pub struct Member;
    /// Admins and up (connect, mappings, settings, audit log).
    #[derive(Debug)]
    pub struct Admin;

    impl RoleFloor for Viewer {
        const ROLE: Role = Role::Viewer;
    }
    impl RoleFloor for Member {
        const ROLE: Role = Role::Member;
    }
    impl RoleFloor for Admin {
        const ROLE: Role = Role::Admin;
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// Verifies the bearer token and that its workspace is the path's `{id}`.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let verifier = state.jwt.as_ref().ok_or_else(|| {
            ApiError::Unavailable(
                "the workspace API needs CRMHOST_JWT_SECRET or CRMHOST_JWT_PUBLIC_KEY to be configured".to_owned(),
            )
        })?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AuthError::Missing)?;
        let claims = verifier.verify(token)?;
        let params = path_params(parts, state).await?;
        let raw =
            params.get("id").ok_or_else(|| ApiError::BadRequest("missing workspace id in the path".to_owned()))?;
        let workspace = WorkspaceId::parse(raw).map_err(ApiError::BadRequest)?;
        if claims.workspace != workspace.as_str() {
            return Err(ApiError::Forbidden {
                code: "wrong_workspace",
                message: "the token is for another workspace".to_owned(),
            });
        }
        Ok(Caller { user: claims.sub, workspace, role: claims.role })
    }
}

async fn path_params(parts: &mut Parts, state: &AppState) -> Result<HashMap<String, String>, ApiError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    Ok(params)
}

/// The caller of a workspace route, holding at least the role `R` (403 `insufficient_role`).
#[derive(Debug)]
pub struct Authorized<R> {
    /// The caller.
    pub caller: Caller,
    floor: PhantomData<R>,
}

impl<R: RoleFloor> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.holds(R::ROLE) {
            return Err(ApiError::Forbidden {
                code: "insufficient_role",
                message: format!(
                    "this needs the {} role or higher; the token's role is {}",
                    R::ROLE.as_str(),
                    caller.role.as_str()
                ),
            });
        }
        Ok(Self { caller, floor: PhantomData })
    }
}

/// The caller of an integration route (`…/integrations/{slug}/…`), holding at least the role `R`,
/// and the integration's slug (404 `unknown_integration` when it cannot be one).
#[derive(Debug)]
pub struct OnIntegration<R> {
    /// The caller.
    pub caller: Caller,
    /// The integration.
    pub slug: PluginSlug,
    floor: PhantomData<R>,
}

impl<R: RoleFloor> FromRequestParts<AppState> for OnIntegration<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authorized { caller, .. } = Authorized::<R>::from_request_parts(parts, state).await?;
        let params = path_params(parts, state).await?;
        let slug = slug_of(params.get("slug").map(String::as_str).unwrap_or_default())?;
        Ok(Self { caller, slug, floor: PhantomData })
    }
}

/// A path segment as a plugin slug: one that cannot be a slug names no installed plugin either.
pub fn slug_of(raw: &str) -> Result<PluginSlug, ApiError> {
    PluginSlug::parse(raw).map_err(|_| ApiError::from(ConnectionError::UnknownPlugin(raw.chars().take(64).collect())))
}

/// A query string (axum's [`Query`]), refused in the JSON shape.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(query) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        Ok(Self(query))
    }
}

/// Path parameters (axum's [`Path`]), refused in the JSON shape.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(path) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        Ok(Self(path))
    }
}

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
    // Every body of this API is an object; serde would otherwise read a struct from an array.
    if !value.is_object() {
        return Err(ApiError::BadRequest("the JSON body must be an object (`{…}`)".to_owned()));
    }
    if let Some(at) = nul_position(&value) {
        return Err(ApiError::BadRequest(format!(
            "`{at}` contains a NUL character (\\u0000); text may not contain one"
        )));
    }
    // The path names the field at fault (`api_key`, `records[3].id`), which serde alone leaves out.
    serde_path_to_error::deserialize(value).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        match at.as_str() {
            "." | "" => ApiError::BadRequest(format!("invalid JSON body: {inner}")),
            _ => ApiError::BadRequest(format!("invalid JSON body at `{at}`: {inner}")),
        }
    })
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
