//! Outbound webhook endpoints (admin+): `…/webhook-endpoints` to register (the signing secret is
//! shown once) and list; `…/{endpoint_id}` to read, change and remove; `…/rotate-secret`;
//! `…/ping` for a test delivery; `…/deliveries` (the delivery log), one delivery with its body, and
//! `…/redeliver`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery, Authorized, JsonBody, OptionalJsonBody, at_least};
use super::openapi::{DeliveryPath, EndpointPath, ErrorResponses, WorkspacePath};
use super::routes::Routes;
use crate::domain::{DeliveryId, EndpointId, EventId};
use crate::notify::signature::SIGNATURE_HEADER;
use crate::notify::{Endpoint, EndpointInput, EndpointPatch, EventFilter, EventType, NotifyError};
use crate::state::AppState;
use crate::store::{DeliveryFilter, DeliveryStatus, StoredDelivery};

const ENDPOINTS: &str = "/api/v1/workspaces/{id}/webhook-endpoints";
const ENDPOINT: &str = "/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}";

pub fn router() -> Routes {
    Routes::new()
        .post(ENDPOINTS, create)
        .get(ENDPOINTS, list)
        .get(ENDPOINT, show)
        .patch(ENDPOINT, update)
        .delete(ENDPOINT, remove)
        .post("/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/rotate-secret", rotate_secret)
        .post("/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/ping", ping)
        .get("/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/deliveries", deliveries)
        .get("/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}", delivery)
        .post("/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver", redeliver)
}

impl From<NotifyError> for ApiError {
    fn from(err: NotifyError) -> Self {
        match err {
            NotifyError::NotFound(message) => ApiError::NotFound(message),
            NotifyError::Invalid(message) => ApiError::Unprocessable(message),
            NotifyError::Refused(message) => ApiError::Conflict(message),
            NotifyError::Store(store) => store.into(),
        }
    }
}

/// An endpoint to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewEndpoint {
    /// Where to post events: `https://…` (plain `http` and private addresses only where the
    /// operator allows them).
    #[schema(example = "https://platform.example.com/hooks/crmhost")]
    url: String,
    /// A note for admins (at most 500 characters).
    #[serde(default)]
    description: Option<String>,
    /// The event types to receive (at least one).
    #[schema(min_items = 1)]
    events: Vec<EventType>,
    /// Narrows the events (see `EventFilter`).
    #[serde(default)]
    filter: Option<EventFilter>,
    /// Start delivering now (default true).
    #[serde(default)]
    enabled: Option<bool>,
}

/// Changes to an endpoint; what is left out stays.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeEndpoint {
    /// A new URL.
    #[serde(default)]
    url: Option<String>,
    /// A new description.
    #[serde(default)]
    description: Option<String>,
    /// New event types.
    #[serde(default)]
    events: Option<Vec<EventType>>,
    /// A new filter; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<EventFilter>)]
    filter: Option<Option<EventFilter>>,
    /// Disable (deliveries wait, kept) or enable.
    #[serde(default)]
    enabled: Option<bool>,
}

/// A field that is present (even as `null`) becomes `Some`, so `null` can mean "remove".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An endpoint (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EndpointView {
    /// Its id.
    id: EndpointId,
    /// Where events go.
    url: String,
    /// The admin's note.
    description: String,
    /// The event types it receives.
    events: Vec<EventType>,
    /// What narrows them, if anything.
    filter: Option<EventFilter>,
    /// Whether deliveries are made.
    enabled: bool,
    /// When it was registered.
    created_at: DateTime<Utc>,
    /// Who registered it.
    created_by: String,
    /// When it last changed.
    updated_at: DateTime<Utc>,
    /// After a rotation: until when deliveries also carry a signature by the previous secret.
    previous_secret_valid_until: Option<DateTime<Utc>>,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        Self {
            events: e.subscription.events().to_vec(),
            filter: e.subscription.filter().cloned(),
            id: e.id,
            url: e.url,
            description: e.description,
            enabled: e.enabled,
            created_at: e.created_at,
            created_by: e.created_by,
            updated_at: e.updated_at,
            previous_secret_valid_until: e.previous_secret_valid_until,
        }
    }
}

/// A registered endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CreatedEndpoint {
    /// The endpoint.
    endpoint: EndpointView,
    /// The signing secret (`whsec_…`). Shown this once; keep it where the receiver can read it.
    secret: String,
    /// The header each delivery's signature is in: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
    /// "<t>.<raw body>" keyed with the secret>`.
    signature_header: &'static str,
}

/// The workspace's endpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EndpointList {
    /// Oldest first.
    endpoints: Vec<EndpointView>,
}

/// How long the previous secret keeps signing.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateSecret {
    /// Seconds the previous secret also signs (default 86400; 0 stops it at once; at most 604800).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    previous_secret_valid_for_secs: Option<u64>,
}

/// A new signing secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RotatedSecret {
    /// The new secret.
    secret: String,
    /// Until when deliveries also carry the previous secret's signature; null: it stopped now.
    previous_secret_valid_until: Option<DateTime<Utc>>,
}

/// One delivery of an event to the endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DeliveryView {
    /// Its id (also sent as `Crmhost-Delivery-Id`).
    id: DeliveryId,
    /// The endpoint.
    endpoint_id: EndpointId,
    /// The event's id (`Crmhost-Event-Id`; the same in a redelivery: deduplicate on it).
    event_id: EventId,
    /// The event's type.
    event_type: String,
    /// `pending` (retrying), `delivered` (2xx) or `failed` (retries ran out).
    status: DeliveryStatus,
    /// Attempts made.
    attempts: i64,
    /// When the next attempt is due, while pending.
    next_attempt_at: Option<DateTime<Utc>>,
    /// When retries stop.
    give_up_at: DateTime<Utc>,
    /// When the last attempt was made.
    last_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status, if the endpoint answered.
    last_status_code: Option<i32>,
    /// Why the last attempt failed (the start of the endpoint's answer, or what went wrong).
    last_error: Option<String>,
    /// When the event was queued for the endpoint.
    created_at: DateTime<Utc>,
    /// When the endpoint accepted it.
    delivered_at: Option<DateTime<Utc>>,
    /// For a redelivery, the delivery it repeats.
    redelivery_of: Option<DeliveryId>,
}

impl From<StoredDelivery> for DeliveryView {
    fn from(d: StoredDelivery) -> Self {
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            give_up_at: d.give_up_at,
            last_attempt_at: d.last_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            redelivery_of: d.redelivery_of,
        }
    }
}

/// One delivery with the exact body sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DeliveryDetail {
    /// The delivery.
    delivery: DeliveryView,
    /// The body: `{id, type, created_at, workspace_id, data}`.
    payload: serde_json::Value,
}

impl From<StoredDelivery> for DeliveryDetail {
    fn from(d: StoredDelivery) -> Self {
        let payload = serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null);
        Self { payload, delivery: d.into() }
    }
}

/// A page of the delivery log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DeliveryPage {
    /// Newest first.
    deliveries: Vec<DeliveryView>,
    /// Pass as `?before=` for the next page; null on the last.
    next_before: Option<DeliveryId>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DeliveryQuery {
    /// Only deliveries in this state.
    #[param(inline)]
    status: Option<DeliveryStatus>,
    /// Only this event's deliveries.
    #[param(value_type = Option<String>, pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    event_id: Option<EventId>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The last delivery id of the previous page.
    #[param(value_type = Option<String>, pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    before: Option<DeliveryId>,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/webhook-endpoints", tag = "outbound_webhooks", operation_id = "create_webhook_endpoint", params(WorkspacePath), request_body = NewEndpoint, security(("workspace_jwt" = [])), responses((status = 201, description = "Registered; the signing secret is in this answer only (admin+). Audited.", body = CreatedEndpoint), ErrorResponses))]
pub(super) async fn create(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    let input = EndpointInput {
        url: body.url,
        description: body.description,
        events: body.events,
        filter: body.filter,
        enabled: body.enabled,
    };
    let created = state.notifier.create_endpoint(&caller.workspace, input, &caller.user).await?;
    let body = CreatedEndpoint {
        endpoint: created.endpoint.into(),
        secret: created.secret.expose_secret().to_owned(),
        signature_header: SIGNATURE_HEADER,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/webhook-endpoints", tag = "outbound_webhooks", operation_id = "list_webhook_endpoints", params(WorkspacePath), security(("workspace_jwt" = [])), responses((status = 200, description = "The workspace's endpoints (admin+).", body = EndpointList), ErrorResponses))]
pub(super) async fn list(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
) -> ApiResult<Json<EndpointList>> {
    let endpoints = state.notifier.endpoints(&caller.workspace).await?;
    Ok(Json(EndpointList { endpoints: endpoints.into_iter().map(Into::into).collect() }))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}", tag = "outbound_webhooks", operation_id = "get_webhook_endpoint", params(EndpointPath), security(("workspace_jwt" = [])), responses((status = 200, description = "One endpoint (admin+).", body = EndpointView), ErrorResponses))]
pub(super) async fn show(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, endpoint_id)): ApiPath<(String, EndpointId)>,
) -> ApiResult<Json<EndpointView>> {
    Ok(Json(state.notifier.endpoint(&caller.workspace, &endpoint_id).await?.into()))
}

#[utoipa::path(patch, path = "/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}", tag = "outbound_webhooks", operation_id = "update_webhook_endpoint", params(EndpointPath), request_body = ChangeEndpoint, security(("workspace_jwt" = [])), responses((status = 200, description = "Changed (admin+). Disabling keeps pending deliveries for when it is enabled again. Audited.", body = EndpointView), ErrorResponses))]
pub(super) async fn update(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, endpoint_id)): ApiPath<(String, EndpointId)>,
    JsonBody(body): JsonBody<ChangeEndpoint>,
) -> ApiResult<Json<EndpointView>> {
    let patch = EndpointPatch {
        url: body.url,
        description: body.description,
        events: body.events,
        filter: body.filter,
        enabled: body.enabled,
    };
    let endpoint = state.notifier.update_endpoint(&caller.workspace, &endpoint_id, patch, &caller.user).await?;
    Ok(Json(endpoint.into()))
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}", tag = "outbound_webhooks", operation_id = "delete_webhook_endpoint", params(EndpointPath), security(("workspace_jwt" = [])), responses((status = 204, description = "Removed with its delivery log; nothing more is sent (admin+). Audited."), ErrorResponses))]
pub(super) async fn remove(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, endpoint_id)): ApiPath<(String, EndpointId)>,
) -> ApiResult<StatusCode> {
    state.notifier.delete_endpoint(&caller.workspace, &endpoint_id, &caller.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/rotate-secret", tag = "outbound_webhooks", operation_id = "rotate_webhook_endpoint_secret", params(EndpointPath), request_body = Option<RotateSecret>, security(("workspace_jwt" = [])), responses((status = 200, description = "A new secret, shown once. Deliveries carry a signature by each secret in force (admin+). Audited.", body = RotatedSecret), ErrorResponses))]
pub(super) async fn rotate_secret(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, endpoint_id)): ApiPath<(String, EndpointId)>,
    OptionalJsonBody(body): OptionalJsonBody<RotateSecret>,
) -> ApiResult<Json<RotatedSecret>> {
    let overlap = body.previous_secret_valid_for_secs.map(std::time::Duration::from_secs);
    let rotated = state.notifier.rotate_endpoint_secret(&caller.workspace, &endpoint_id, overlap, &caller.user).await?;
    Ok(Json(RotatedSecret {
        secret: rotated.secret.expose_secret().to_owned(),
        previous_secret_valid_until: rotated.previous_valid_until,
    }))
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/ping", tag = "outbound_webhooks", operation_id = "ping_webhook_endpoint", params(EndpointPath), security(("workspace_jwt" = [])), responses((status = 202, description = "A `ping` event queued for this endpoint; follow the delivery in the log (admin+).", body = DeliveryView), ErrorResponses))]
pub(super) async fn ping(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, endpoint_id)): ApiPath<(String, EndpointId)>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let delivery = state.notifier.ping(&caller.workspace, &endpoint_id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery.into())))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/deliveries", tag = "outbound_webhooks", operation_id = "list_webhook_deliveries", params(EndpointPath, DeliveryQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "The endpoint's delivery log, newest first (admin+).", body = DeliveryPage), ErrorResponses))]
pub(super) async fn deliveries(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, endpoint_id)): ApiPath<(String, EndpointId)>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    let limit = super::paging::page_limit(q.limit)?;
    let before = match &q.before {
        None => None,
        Some(id) => {
            let d = state.notifier.delivery(&caller.workspace, &endpoint_id, id).await.map_err(|_| {
                ApiError::BadRequest("`before` must be a delivery id from this endpoint's log".to_owned())
            })?;
            Some((d.created_at, d.id))
        }
    };
    let filter = DeliveryFilter { status: q.status, event_id: q.event_id, before, limit };
    let found = state.notifier.deliveries(&caller.workspace, &endpoint_id, &filter).await?;
    let next_before = super::paging::next_key(&found, limit, |d| d.id.clone());
    Ok(Json(DeliveryPage { deliveries: found.into_iter().map(Into::into).collect(), next_before }))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}", tag = "outbound_webhooks", operation_id = "get_webhook_delivery", params(DeliveryPath), security(("workspace_jwt" = [])), responses((status = 200, description = "One delivery with the body sent (admin+).", body = DeliveryDetail), ErrorResponses))]
pub(super) async fn delivery(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, endpoint_id, delivery_id)): ApiPath<(String, EndpointId, DeliveryId)>,
) -> ApiResult<Json<DeliveryDetail>> {
    Ok(Json(state.notifier.delivery(&caller.workspace, &endpoint_id, &delivery_id).await?.into()))
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver", tag = "outbound_webhooks", operation_id = "redeliver_webhook", params(DeliveryPath), security(("workspace_jwt" = [])), responses((status = 202, description = "The event queued again as a new delivery (same event id and body, a fresh day of retries) (admin+). Audited.", body = DeliveryView), ErrorResponses))]
pub(super) async fn redeliver(
    Authorized { caller, .. }: Authorized<at_least::Admin>,
    State(state): State<AppState>,
    ApiPath((_, endpoint_id, delivery_id)): ApiPath<(String, EndpointId, DeliveryId)>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let again = state.notifier.redeliver(&caller.workspace, &endpoint_id, &delivery_id, &caller.user).await?;
    Ok((StatusCode::ACCEPTED, Json(again.into())))
}
