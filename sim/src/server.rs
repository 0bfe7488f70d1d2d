//! Serving an emulator: `TCP_NODELAY` on every connection (keep-alive clients stall ~40 ms per
//! response with Nagle on), trailing slashes trimmed before routing (real clients use both forms),
//! request bodies read to their end before any answer (so a keep-alive connection survives an
//! early answer), per-route call counting, and the latency / failure / forced-rate-limit knobs
//! for API routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use crate::{Crm, Sim};

/// Serves `router` on `listener` until the task is aborted.
pub(crate) fn spawn(listener: tokio::net::TcpListener, router: Router) -> tokio::task::JoinHandle<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = NormalizePathLayer::trim_trailing_slash().layer(router.layer(axum::middleware::from_fn(read_body_first)));
    tokio::spawn(async move {
        let service = axum::ServiceExt::<Request>::into_make_service(app);
        if let Err(err) = axum::serve(listener, service).await {
            tracing::error!(error = %err, "emulator listener failed");
        }
    })
}

/// Serves `router` over TLS on `listener` until the task is aborted.
pub(crate) fn spawn_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: crate::tls::TlsMaterial,
) -> tokio::task::JoinHandle<()> {
    let app = NormalizePathLayer::trim_trailing_slash().layer(router.layer(axum::middleware::from_fn(read_body_first)));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            let (acceptor, app) = (tls.acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    })
}

/// The largest request body an emulator reads (Salesforce's own REST limit is far below it).
const MAX_BODY_BYTES: usize = 64 << 20;

/// Reads the whole request body before routing and answering. An answer sent before the body
/// was read (an unknown route, a forced limit, an injected 503) would otherwise leave the body's
/// unread rest on a keep-alive connection, which the server then drops without saying
/// `Connection: close`, and the client's next request on it fails. A body over the limit gets
/// 413 with `Connection: close`.
pub(crate) async fn read_body_first(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            [(axum::http::header::CONNECTION, "close")],
            "request body too large",
        )
            .into_response(),
    }
}

/// Counts every call by route (admin routes excepted).
pub(crate) async fn count_calls(State((sim, crm)): State<(Arc<Sim>, Crm)>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let path = request.uri().path().to_owned();
    let counted = !path.starts_with("/__sim");
    if counted {
        let key = format!("{} {} {}", crm.as_str(), request.method(), route.unwrap_or(path));
        sim.count_call(key);
    }
    let response = next.run(request).await;
    // Rate-limit answers are counted too (`"<crm> 429"`), so tests and benchmarks can tell how
    // often a client tripped a limit.
    if counted && response.status() == axum::http::StatusCode::TOO_MANY_REQUESTS {
        sim.count_call(format!("{} 429", crm.as_str()));
    }
    // And server errors (`"<crm> 5xx"`), injected or not.
    if counted && response.status().is_server_error() {
        sim.count_call(format!("{} 5xx", crm.as_str()));
    }
    response
}

/// Latency, random 5xx and forced rate limiting, for API routes (not OAuth, not admin).
pub(crate) async fn faults(State((sim, crm)): State<(Arc<Sim>, Crm)>, request: Request, next: Next) -> Response {
    let knobs = sim.knobs();
    if knobs.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(knobs.latency_ms)).await;
    }
    if knobs.failure_rate > 0.0 && sim.token_gen().fraction() < knobs.failure_rate {
        return match crm {
            Crm::Salesforce => crate::salesforce::errors::server_unavailable(),
            Crm::Hubspot => crate::hubspot::errors::server_error(&sim),
            Crm::Pipedrive => crate::pipedrive::errors::server_error(),
            Crm::Acme => crate::acme::unavailable(),
        };
    }
    if knobs.force_rate_limit {
        return match crm {
            Crm::Salesforce => crate::salesforce::errors::request_limit_exceeded().into_response(),
            Crm::Hubspot => {
                crate::hubspot::errors::ten_secondly_limit(&sim, knobs.hubspot_ten_second_limit).into_response()
            }
            Crm::Pipedrive => {
                let limit = knobs.pipedrive_two_second_limit.to_string();
                let headers = vec![
                    ("x-ratelimit-limit", limit),
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", "2".to_owned()),
                ];
                crate::pipedrive::errors::over_limit(headers).into_response()
            }
            Crm::Acme => crate::acme::rate_limited(),
        };
    }
    next.run(request).await
}
