//! Sync run routes, all member+: `POST …/integrations/{slug}/push`, `…/pull` and `…/sync` start a
//! run (`202 {run_id, …}`, or with `?wait=true` the finished run), `GET …/sync-history` lists runs,
//! `GET …/sync-runs/{run_id}` shows one with its per-record outcomes, `…/events` streams its
//! progress (Server-Sent Events) and `POST …/retry` re-runs what failed.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery, JsonBody, OnIntegration, OptionalJsonBody, at_least};
use super::openapi::{ErrorResponses, IntegrationPath, RunPath};
use super::routes::Routes;
use crate::auth::Caller;
use crate::connections::ConnectionError;
use crate::domain::{EntityName, PluginSlug, RecordId};
use crate::state::AppState;
use crate::store::{RunFilter, StoreResultExt, SyncRun};
use crate::sync::{MAX_BATCH, Operation, Progress, Trigger, check_batch, input};

const BASE: &str = "/api/v1/workspaces/{id}/integrations/{slug}";

pub fn router() -> Routes {
    Routes::new()
        .post(&format!("{BASE}/push"), push)
        .post(&format!("{BASE}/pull"), pull)
        .post(&format!("{BASE}/sync"), sync)
        .get(&format!("{BASE}/sync-history"), history)
        .get(&format!("{BASE}/sync-runs/{{run_id}}"), run)
        .get(&format!("{BASE}/sync-runs/{{run_id}}/events"), events)
        .post(&format!("{BASE}/sync-runs/{{run_id}}/retry"), retry)
}

/// A run as the API shows it.
pub fn run_json(run: &SyncRun) -> Value {
    json!({
        "run_id": run.run_id,
        "integration": run.integration,
        "direction": run.direction,
        "entity": run.entity,
        "trigger": run.trigger,
        "status": run.status,
        "record_count": run.counts.records,
        "success_count": run.counts.succeeded,
        "failure_count": run.counts.failed,
        "conflict_count": run.counts.conflicts,
        "skipped_count": run.counts.skipped,
        "started_by": run.started_by,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
        "duration_ms": run.duration_ms,
        "error": run.error,
        "retry_of": run.retry_of,
        "request": run.params,
    })
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct WaitQuery {
    wait: Option<bool>,
}

/// How long `?wait=true` waits before answering with the run still running (under the
/// server's 120 s request timeout).
const WAIT_LIMIT: Duration = Duration::from_secs(100);

async fn started(state: &AppState, caller: &Caller, run: SyncRun, wait: bool) -> ApiResult<Response> {
    if wait {
        let done = state.sync.wait(&caller.workspace, &run.run_id, WAIT_LIMIT).await?;
        return Ok((StatusCode::OK, Json(run_json(&done))).into_response());
    }
    let mut body = run_json(&run);
    body["links"] =
        json!({ "self": format!("sync-runs/{}", run.run_id), "events": format!("sync-runs/{}/events", run.run_id) });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PushBody {
    entity: String,
    record_ids: Option<Vec<String>>,
    records: Option<Vec<Value>>,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/push", tag = "sync", operation_id = "push", params(IntegrationPath, WaitQuery), request_body = PushBody, security(("workspace_jwt" = [])), responses((status = 200, description = "With `?wait=true`: the run as it ended.", body = serde_json::Value), (status = 202, description = "The run, started (member+).", body = serde_json::Value), ErrorResponses))]
pub(super) async fn push(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    JsonBody(body): JsonBody<PushBody>,
) -> ApiResult<Response> {
    let wait = query.wait.unwrap_or(false);
    let entity = EntityName::parse(&body.entity).map_err(ApiError::BadRequest)?;
    let record_ids: Vec<RecordId> = match (body.record_ids, body.records) {
        (Some(ids), None) => {
            check_batch(ids.len())?;
            ids.iter().map(|id| RecordId::parse(id).map_err(ApiError::BadRequest)).collect::<ApiResult<_>>()?
        }
        (None, Some(records)) => {
            check_batch(records.len())?;
            let mut parsed = Vec::with_capacity(records.len());
            for (i, raw) in records.iter().enumerate() {
                let record = input::parse_record(raw)
                    .map_err(|(_, message)| ApiError::BadRequest(format!("records[{i}]: {message}")))?;
                parsed.push((record.id, record.fields));
            }
            state.store.upsert_records(&caller.workspace, &entity, &parsed).await?;
            parsed.into_iter().map(|(id, _)| id).collect()
        }
        _ => {
            return Err(ApiError::BadRequest(format!(
                "send either `record_ids` (up to {MAX_BATCH}) or `records` (up to {MAX_BATCH}, upserted first)"
            )));
        }
    };
    if record_ids.is_empty() {
        return Err(ApiError::BadRequest("name at least one record to push".to_owned()));
    }
    let mut unique = std::collections::HashSet::new();
    if let Some(dup) = record_ids.iter().find(|id| !unique.insert(*id)) {
        return Err(ApiError::BadRequest(format!("record `{dup}` is named twice")));
    }
    let run = state
        .sync
        .start(&caller.workspace, &slug, Operation::Push { entity, record_ids }, Trigger::Manual, &caller.user, None)
        .await?;
    started(&state, &caller, run, wait).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PullBody {
    entity: String,
    since: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/pull", tag = "sync", operation_id = "pull", params(IntegrationPath, WaitQuery), request_body = PullBody, security(("workspace_jwt" = [])), responses((status = 200, description = "With `?wait=true`: the run as it ended.", body = serde_json::Value), (status = 202, description = "The run, started (member+).", body = serde_json::Value), ErrorResponses))]
pub(super) async fn pull(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    JsonBody(body): JsonBody<PullBody>,
) -> ApiResult<Response> {
    let wait = query.wait.unwrap_or(false);
    let entity = EntityName::parse(&body.entity).map_err(ApiError::BadRequest)?;
    if let Some(since) = &body.since
        && DateTime::parse_from_rfc3339(since).is_err()
    {
        return Err(ApiError::BadRequest(format!("since `{since}` is not an RFC 3339 instant (2026-01-31T12:00:00Z)")));
    }
    if body.limit == Some(0) || body.limit.is_some_and(|l| l > 1_000_000) {
        return Err(ApiError::BadRequest("limit must be between 1 and 1000000".to_owned()));
    }
    let since =
        body.since.map(|s| DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc).to_rfc3339()).unwrap_or(s));
    let operation = Operation::Pull { entity, since, limit: body.limit, crm_ids: Vec::new() };
    let run = state.sync.start(&caller.workspace, &slug, operation, Trigger::Manual, &caller.user, None).await?;
    started(&state, &caller, run, wait).await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SyncBody {
    entities: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync", tag = "sync", operation_id = "sync", params(IntegrationPath, WaitQuery), request_body = Option<SyncBody>, security(("workspace_jwt" = [])), responses((status = 200, description = "With `?wait=true`: the run as it ended.", body = serde_json::Value), (status = 202, description = "The run, started (member+).", body = serde_json::Value), ErrorResponses))]
pub(super) async fn sync(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    OptionalJsonBody(body): OptionalJsonBody<SyncBody>,
) -> ApiResult<Response> {
    let wait = query.wait.unwrap_or(false);
    let integration = state
        .store
        .get_integration(&caller.workspace, &slug)
        .await
        .or_not_found(|| ApiError::from(ConnectionError::NotConnected(slug.to_string())))?;
    let settings = crate::sync::SyncSettings::from_stored(&integration.settings);
    let entities: Vec<EntityName> = match body.entities {
        Some(list) => {
            list.iter().map(|e| EntityName::parse(e).map_err(ApiError::BadRequest)).collect::<ApiResult<_>>()?
        }
        None => state.sync.default_entities(&slug, &settings)?,
    };
    let run = state
        .sync
        .start(
            &caller.workspace,
            &slug,
            Operation::Sync { entities, direction: settings.direction },
            Trigger::Manual,
            &caller.user,
            None,
        )
        .await?;
    started(&state, &caller, run, wait).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct HistoryQuery {
    status: Option<String>,
    direction: Option<String>,
    entity: Option<String>,
    trigger: Option<String>,
    limit: Option<i64>,
    before: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync-history", tag = "sync", operation_id = "sync_history", params(IntegrationPath, HistoryQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "Runs, newest first (member+).", body = serde_json::Value), ErrorResponses))]
pub(super) async fn history(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be between 1 and 500".to_owned()));
    }
    const STATUSES: &[&str] = &["running", "completed", "partial", "failed", "cancelled", "interrupted", "deferred"];
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!("status must be one of {}", STATUSES.join(", "))));
    }
    if let Some(d) = &q.direction
        && !["push", "pull", "bidirectional"].contains(&d.as_str())
    {
        return Err(ApiError::BadRequest("direction must be push, pull or bidirectional".to_owned()));
    }
    if let Some(e) = &q.entity {
        EntityName::parse(e).map_err(ApiError::BadRequest)?;
    }
    if let Some(t) = &q.trigger
        && !["manual", "schedule", "webhook", "retry"].contains(&t.as_str())
    {
        return Err(ApiError::BadRequest("trigger must be manual, schedule, webhook or retry".to_owned()));
    }
    let before = match &q.before {
        None => None,
        Some(run_id) => {
            let run = state
                .store
                .get_run(&caller.workspace, run_id)
                .await
                .or_not_found(|| ApiError::BadRequest("`before` must be a run id from this history".to_owned()))?;
            Some((run.started_at, run.run_id))
        }
    };
    let filter =
        RunFilter { status: q.status, direction: q.direction, entity: q.entity, trigger: q.trigger, before, limit };
    let runs = state.store.list_runs(&caller.workspace, &slug, &filter).await?;
    let next = (runs.len() as i64 == limit).then(|| runs.last().map(|r| r.run_id.clone())).flatten();
    Ok(Json(json!({ "runs": runs.iter().map(run_json).collect::<Vec<_>>(), "next_before": next })))
}

async fn find_run(state: &AppState, caller: &Caller, slug: &PluginSlug, run_id: &str) -> ApiResult<SyncRun> {
    let not_found = || ApiError::NotFound(format!("no sync run `{run_id}` for `{slug}`"));
    let run = state.store.get_run(&caller.workspace, run_id).await.or_not_found(not_found)?;
    if run.integration != slug.as_str() {
        return Err(not_found());
    }
    Ok(run)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ItemsQuery {
    outcome: Option<String>,
    items_after: Option<i64>,
    items_limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync-runs/{run_id}", tag = "sync", operation_id = "get_sync_run", params(RunPath, ItemsQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "One run with a page of its per-record outcomes (member+).", body = serde_json::Value), ErrorResponses))]
pub(super) async fn run(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, _, run_id)): ApiPath<(String, String, String)>,
    ApiQuery(q): ApiQuery<ItemsQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.items_limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("items_limit must be between 1 and 1000".to_owned()));
    }
    let run = find_run(&state, &caller, &slug, &run_id).await?;
    let items = state.store.run_items(&run.run_id, q.outcome.as_deref(), q.items_after.unwrap_or(-1), limit).await?;
    let next = (items.len() as i64 == limit).then(|| items.last().map(|i| i.index)).flatten();
    let mut body = run_json(&run);
    body["items"] = json!(items);
    body["next_items_after"] = json!(next);
    Ok(Json(body))
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync-runs/{run_id}/retry", tag = "sync", operation_id = "retry_sync_run", params(RunPath, WaitQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "With `?wait=true`: the retry as it ended.", body = serde_json::Value), (status = 202, description = "The retry, started (member+).", body = serde_json::Value), ErrorResponses))]
pub(super) async fn retry(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, _, run_id)): ApiPath<(String, String, String)>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> ApiResult<Response> {
    let wait = query.wait.unwrap_or(false);
    find_run(&state, &caller, &slug, &run_id).await?;
    let run = state.sync.retry(&caller.workspace, &slug, &run_id, &caller.user).await?;
    started(&state, &caller, run, wait).await
}

/// `progress` events while the run goes on (the current state first, at once), then one `end`
/// event with the run as stored. A run another process executes, or one that already ended,
/// gets the `end` event straight away.
#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync-runs/{run_id}/events", tag = "sync", operation_id = "sync_run_events", params(RunPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Server-Sent Events: `progress` events while the run goes on, then one `end` event with the run (member+).", content_type = "text/event-stream", body = String), ErrorResponses))]
pub(super) async fn events(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, _, run_id)): ApiPath<(String, String, String)>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let run = find_run(&state, &caller, &slug, &run_id).await?;
    let receiver = state.sync.live().subscribe(&run.run_id);
    let workspace = caller.workspace.clone();
    enum Step {
        Live(tokio::sync::watch::Receiver<Progress>, bool),
        End,
        Done,
    }
    let start = match receiver {
        Some(rx) => Step::Live(rx, true),
        None => Step::End,
    };
    let stream = futures::stream::unfold(start, move |step| {
        let (store, workspace, run_id) = (state.store.clone(), workspace.clone(), run_id.clone());
        async move {
            match step {
                Step::Live(mut rx, first) => {
                    if !first && rx.changed().await.is_err() {
                        return Some((progress_event(&rx.borrow().clone()), Step::End));
                    }
                    let progress = rx.borrow_and_update().clone();
                    let next = if progress.finished { Step::End } else { Step::Live(rx, false) };
                    Some((progress_event(&progress), next))
                }
                Step::End => {
                    // The run row is final once the run ended; a short grace covers the write.
                    let mut run = store.get_run(&workspace, &run_id).await.ok();
                    for _ in 0..20 {
                        if run.as_ref().is_none_or(|r| r.status != "running") {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        run = store.get_run(&workspace, &run_id).await.ok();
                    }
                    let data = run.as_ref().map(run_json).unwrap_or(Value::Null);
                    Some((Ok(Event::default().event("end").data(data.to_string())), Step::Done))
                }
                Step::Done => None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn progress_event(progress: &Progress) -> Result<Event, Infallible> {
    Ok(Event::default().event("progress").data(json!(progress).to_string()))
}
