//! The web console under `/console/`: its files are embedded in the binary and served with a
//! strict Content-Security-Policy (nothing from another origin; framing only by the origins the
//! operator lists). It signs in with a workspace token in the URL fragment and uses only
//! `/api/v1`, so everything it does a platform can do through the API.

pub mod branding;
mod csp_report;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Serialize;

pub use branding::{ConsoleBranding, ConsoleFileSettings, Theme};

use crate::api::error::ApiError;
use crate::state::AppState;

/// The embedded files: path under `/console/`, content type, text.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("../../console/app.css")),
    ("js/main.js", JS, include_str!("../../console/js/main.js")),
    ("js/api.js", JS, include_str!("../../console/js/api.js")),
    ("js/session.js", JS, include_str!("../../console/js/session.js")),
    ("js/ui.js", JS, include_str!("../../console/js/ui.js")),
    ("js/screens/integrations.js", JS, include_str!("../../console/js/screens/integrations.js")),
    ("js/screens/connect.js", JS, include_str!("../../console/js/screens/connect.js")),
    ("js/screens/integration-header.js", JS, include_str!("../../console/js/screens/integration-header.js")),
    ("js/screens/settings.js", JS, include_str!("../../console/js/screens/settings.js")),
    ("js/screens/history.js", JS, include_str!("../../console/js/screens/history.js")),
    ("js/screens/mappings.js", JS, include_str!("../../console/js/screens/mappings.js")),
    ("js/screens/conflicts.js", JS, include_str!("../../console/js/screens/conflicts.js")),
    ("js/screens/webhook-secret.js", JS, include_str!("../../console/js/screens/webhook-secret.js")),
];

const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &str = include_str!("../../console/index.html");

/// The console's routes (not part of the API's route table or OpenAPI document).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(index))
        .route("/console/config.json", get(config))
        .route("/console/brand.css", get(brand_css))
        .route("/console/logo.svg", get(logo))
        .route(
            csp_report::PATH,
            axum::routing::post(csp_report::receive)
                .layer(axum::extract::DefaultBodyLimit::max(csp_report::MAX_REPORT_BYTES + 1)),
        )
        .route("/console/{*path}", get(asset))
}

/// A sign-in link for a workspace token: the token rides in the fragment, which browsers never
/// send to a server (so it stays out of access logs and `Referer`).
pub fn link(public_url: &url::Url, token: &str) -> String {
    format!("{}/console/#token={token}", public_url.as_str().trim_end_matches('/'))
}

async fn index(State(state): State<AppState>) -> Response {
    with_policy(&state, ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response())
}

async fn asset(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => {
            with_policy(&state, ([(header::CONTENT_TYPE, *content_type)], *body).into_response())
        }
        None => ApiError::NotFound(format!("the console has no file `{}`", path.chars().take(100).collect::<String>()))
            .into_response(),
    }
}

/// What the page needs to brand itself.
#[derive(Serialize)]
struct ConsoleConfig<'a> {
    product_name: &'a str,
    logo_url: Option<&'static str>,
    theme: Theme,
}

async fn config(State(state): State<AppState>) -> Response {
    let branding = &state.console;
    let body = ConsoleConfig {
        product_name: &branding.product_name,
        logo_url: branding.logo_svg.as_ref().map(|_| "/console/logo.svg"),
        theme: branding.theme,
    };
    with_policy(&state, axum::Json(body).into_response())
}

async fn brand_css(State(state): State<AppState>) -> Response {
    let css = state.console.css();
    with_policy(&state, ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response())
}

async fn logo(State(state): State<AppState>) -> Response {
    match &state.console.logo_svg {
        Some(svg) => with_policy(&state, ([(header::CONTENT_TYPE, "image/svg+xml")], svg.clone()).into_response()),
        None => ApiError::NotFound("no console logo is configured".to_owned()).into_response(),
    }
}

/// The console's headers: only this origin's scripts, styles, images and API; framing only by
/// the operator's origins; no referrer; revalidated on every load so an upgrade shows at once.
fn with_policy(state: &AppState, mut response: Response) -> Response {
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors {}; report-uri {}",
        state.console.frame_ancestors_source(),
        csp_report::PATH
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
