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
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery, JsonBody, OnIntegration, OptionalJsonBody, at_least};
use super::openapi::{ErrorResponses, IntegrationPath, RunPath};
use super::routes::Routes;
use crate::auth::Caller;
use crate::connections::ConnectionError;
use crate::domain::{EntityName, ItemOutcome, PluginSlug, RecordId, RunId, RunStatus, SyncDirection, Trigger};
use crate::state::AppState;
use crate::store::{PhaseSpan, RunFilter, RunItem, StoreResultExt, SyncRun};
use crate::sync::{MAX_BATCH, Operation, Progress, check_batch, input};

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
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// The run's id.
    pub run_id: RunId,
    /// The integration (plugin slug).
    pub integration: String,
    /// Which way it moves records.
    pub direction: SyncDirection,
    /// The entity, or null for a sync of several.
    pub entity: Option<String>,
    /// What started it.
    pub trigger: Trigger,
    /// Where it is, or how it ended.
    pub status: RunStatus,
    /// Records looked at.
    pub record_count: i64,
    /// Records written (either side).
    pub success_count: i64,
    /// Records that failed.
    pub failure_count: i64,
    /// Records left as conflicts.
    pub conflict_count: i64,
    /// Records with nothing to do.
    pub skipped_count: i64,
    /// Who started it (a user id, or `scheduler`).
    pub started_by: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended (null while running).
    pub completed_at: Option<DateTime<Utc>>,
    /// How long it ran (so far).
    pub duration_ms: i64,
    /// Why it failed or stopped as a whole.
    pub error: Option<String>,
    /// The run it retries.
    pub retry_of: Option<RunId>,
    /// How many records it expected to handle when it started (null: not known in advance, as
    /// for a two-way sync).
    pub estimated_records: Option<i64>,
    /// What it was asked to do (`operation`, `entity`, `record_ids`, `entities`, …).
    #[schema(value_type = Object)]
    pub request: Value,
}

impl From<&SyncRun> for RunView {
    fn from(run: &SyncRun) -> Self {
        Self {
            run_id: run.run_id.clone(),
            integration: run.integration.clone(),
            direction: run.direction,
            entity: run.entity.clone(),
            trigger: run.trigger,
            status: run.status,
            record_count: run.counts.records,
            success_count: run.counts.succeeded,
            failure_count: run.counts.failed,
            conflict_count: run.counts.conflicts,
            skipped_count: run.counts.skipped,
            started_by: run.started_by.clone(),
            started_at: run.started_at,
            completed_at: run.completed_at,
            duration_ms: run.duration_ms,
            error: run.error.clone(),
            retry_of: run.retry_of.clone(),
            estimated_records: run.estimated_records,
            request: run.params.clone(),
        }
    }
}

/// A run just started (`202`), with where to follow it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    /// The run.
    #[serde(flatten)]
    pub run: RunView,
    /// Relative links to the run and its progress stream.
    pub links: RunLinks,
}

/// Where a started run can be followed, relative to the integration's path.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunLinks {
    /// `sync-runs/{run_id}`.
    #[serde(rename = "self")]
    pub this: String,
    /// `sync-runs/{run_id}/events` (Server-Sent Events).
    pub events: String,
}

/// A page of the sync history.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunHistory {
    /// Runs, newest first.
    pub runs: Vec<RunView>,
    /// Pass as `?before=` for the next page; null on the last.
    pub next_before: Option<RunId>,
}

/// One run with a page of its per-record outcomes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunView,
    /// Its phases (`pulling contact`, `pushing contact`, …) with start and end times.
    pub timeline: Vec<PhaseSpan>,
    /// Per-record outcomes, in order.
    pub items: Vec<RunItem>,
    /// Pass as `?items_after=` for the next page; null on the last.
    pub next_items_after: Option<i64>,
}

/// One Server-Sent Event of a run's progress stream.
#[derive(Debug, ToSchema)]
pub struct RunEvent {
    /// `progress` while the run goes on, then one `end`.
    #[schema(examples("progress", "end"))]
    pub event: String,
    /// JSON text: for `progress` a snapshot (`run_id`, `status`, `phase`, `counts`, `finished`,
    /// `error`); for `end` the run as `GET …/sync-runs/{run_id}` shows it (null if it is gone).
    pub data: String,
}

/// A run as JSON (the `end` event of a progress stream).
pub fn run_json(run: &SyncRun) -> Value {
    serde_json::to_value(RunView::from(run)).unwrap_or(Value::Null)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct WaitQuery {
    /// Answer when the run ends (up to 100 s) instead of at once with `202`.
    wait: Option<bool>,
}

/// How long `?wait=true` waits before answering with the run still running (under the
/// server's 120 s request timeout).
const WAIT_LIMIT: Duration = Duration::from_secs(100);

async fn started(state: &AppState, caller: &Caller, run: SyncRun, wait: bool) -> ApiResult<Response> {
    if wait {
        let done = state.sync.wait(&caller.workspace, &run.run_id, WAIT_LIMIT).await?;
        return Ok((StatusCode::OK, Json(RunView::from(&done))).into_response());
    }
    let links =
        RunLinks { this: format!("sync-runs/{}", run.run_id), events: format!("sync-runs/{}/events", run.run_id) };
    Ok((StatusCode::ACCEPTED, Json(RunStarted { run: RunView::from(&run), links })).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PushBody {
    /// The entity.
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    entity: String,
    /// Workspace records to push, by id (send this or `records`).
    #[schema(max_items = 200, min_items = 1)]
    record_ids: Option<Vec<String>>,
    /// Records to upsert into the workspace first, then push (send this or `record_ids`).
    #[schema(max_items = 200, min_items = 1)]
    records: Option<Vec<Value>>,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/push", tag = "sync", operation_id = "push", params(IntegrationPath, WaitQuery), request_body = PushBody, security(("workspace_jwt" = [])), responses((status = 200, description = "With `?wait=true`: the run as it ended.", body = RunView), (status = 202, description = "The run, started (member+).", body = RunStarted, links(("GetRun" = (operation_id = "get_sync_run", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))), ("RunEvents" = (operation_id = "sync_run_events", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))), ("RetryRun" = (operation_id = "retry_sync_run", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))))), ErrorResponses))]
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
            let mut seen = std::collections::HashSet::new();
            for (i, raw) in records.iter().enumerate() {
                let record = input::parse_record(raw)
                    .map_err(|(_, message)| ApiError::BadRequest(format!("records[{i}]: {message}")))?;
                if !seen.insert(record.id.clone()) {
                    return Err(ApiError::BadRequest(format!(
                        "records[{i}]: the id `{}` appears earlier in this batch",
                        record.id
                    )));
                }
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
    /// The entity.
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    entity: String,
    /// Only CRM records changed at or after this RFC 3339 instant.
    since: Option<String>,
    /// At most this many records.
    #[schema(minimum = 1, maximum = 1_000_000)]
    limit: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/pull", tag = "sync", operation_id = "pull", params(IntegrationPath, WaitQuery), request_body = PullBody, security(("workspace_jwt" = [])), responses((status = 200, description = "With `?wait=true`: the run as it ended.", body = RunView), (status = 202, description = "The run, started (member+).", body = RunStarted, links(("GetRun" = (operation_id = "get_sync_run", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))), ("RunEvents" = (operation_id = "sync_run_events", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))), ("RetryRun" = (operation_id = "retry_sync_run", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))))), ErrorResponses))]
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
    /// The entities, in order (default: the settings' entities, else all of the plugin's).
    entities: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync", tag = "sync", operation_id = "sync", params(IntegrationPath, WaitQuery), request_body = Option<SyncBody>, security(("workspace_jwt" = [])), responses((status = 200, description = "With `?wait=true`: the run as it ended.", body = RunView), (status = 202, description = "The run, started (member+).", body = RunStarted, links(("GetRun" = (operation_id = "get_sync_run", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))), ("RunEvents" = (operation_id = "sync_run_events", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))), ("RetryRun" = (operation_id = "retry_sync_run", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))))), ErrorResponses))]
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
    /// Only runs that ended (or are) so.
    #[param(inline)]
    status: Option<RunStatus>,
    /// Only runs of this direction.
    #[param(inline)]
    direction: Option<SyncDirection>,
    /// Only runs of this entity.
    #[param(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    entity: Option<String>,
    /// Only runs started so.
    #[param(inline)]
    trigger: Option<Trigger>,
    /// Only runs started at or after this RFC 3339 instant.
    from: Option<DateTime<Utc>>,
    /// Only runs started before this RFC 3339 instant.
    to: Option<DateTime<Utc>>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The last run id of the previous page.
    #[param(value_type = Option<String>, pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    before: Option<RunId>,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync-history", tag = "sync", operation_id = "sync_history", params(IntegrationPath, HistoryQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "Runs, newest first (member+).", body = RunHistory, links(("FirstRun" = (operation_id = "get_sync_run", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/runs/0/run_id")))))), ErrorResponses))]
pub(super) async fn history(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<RunHistory>> {
    let limit = super::paging::page_limit(q.limit)?;
    if let Some(e) = &q.entity {
        EntityName::parse(e).map_err(ApiError::BadRequest)?;
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
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        return Err(ApiError::BadRequest("`from` must be before `to`".to_owned()));
    }
    let filter = RunFilter {
        status: q.status,
        direction: q.direction,
        entity: q.entity,
        trigger: q.trigger,
        before,
        limit,
        started_from: q.from,
        started_to: q.to,
    };
    let runs = state.store.list_runs(&caller.workspace, &slug, &filter).await?;
    let next_before = super::paging::next_key(&runs, limit, |r| r.run_id.clone());
    Ok(Json(RunHistory { runs: runs.iter().map(RunView::from).collect(), next_before }))
}

async fn find_run(state: &AppState, caller: &Caller, slug: &PluginSlug, run_id: &RunId) -> ApiResult<SyncRun> {
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
    /// Only items with this outcome.
    #[param(inline)]
    outcome: Option<ItemOutcome>,
    /// The `next_items_after` of the previous page.
    items_after: Option<i64>,
    /// Items per page (default 200).
    #[param(minimum = 1, maximum = 1000)]
    items_limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync-runs/{run_id}", tag = "sync", operation_id = "get_sync_run", params(RunPath, ItemsQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "One run with a page of its per-record outcomes (member+).", body = RunDetail), ErrorResponses))]
pub(super) async fn run(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, _, run_id)): ApiPath<(String, String, RunId)>,
    ApiQuery(q): ApiQuery<ItemsQuery>,
) -> ApiResult<Json<RunDetail>> {
    let limit = super::paging::bounded_limit("items_limit", q.items_limit, 200, 1000)?;
    let run = find_run(&state, &caller, &slug, &run_id).await?;
    let items = state.store.run_items(&run.run_id, q.outcome, q.items_after.unwrap_or(-1), limit).await?;
    let next_items_after = super::paging::next_key(&items, limit, |i| i.index);
    Ok(Json(RunDetail { run: RunView::from(&run), timeline: run.timeline.clone(), items, next_items_after }))
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync-runs/{run_id}/retry", tag = "sync", operation_id = "retry_sync_run", params(RunPath, WaitQuery), security(("workspace_jwt" = [])), responses((status = 200, description = "With `?wait=true`: the retry as it ended.", body = RunView), (status = 202, description = "The retry, started (member+).", body = RunStarted, links(("GetRun" = (operation_id = "get_sync_run", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))), ("RunEvents" = (operation_id = "sync_run_events", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))), ("RetryRun" = (operation_id = "retry_sync_run", parameters(("id" = "$request.path.id"), ("slug" = "$request.path.slug"), ("run_id" = "$response.body#/run_id")))))), ErrorResponses))]
pub(super) async fn retry(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, _, run_id)): ApiPath<(String, String, RunId)>,
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
#[utoipa::path(get, path = "/api/v1/workspaces/{id}/integrations/{slug}/sync-runs/{run_id}/events", tag = "sync", operation_id = "sync_run_events", params(RunPath), security(("workspace_jwt" = [])), responses((status = 200, description = "Server-Sent Events: `progress` events while the run goes on, then one `end` event with the run (member+).", content_type = "text/event-stream", body = RunEvent), ErrorResponses))]
pub(super) async fn events(
    OnIntegration { caller, slug, .. }: OnIntegration<at_least::Member>,
    State(state): State<AppState>,
    ApiPath((_, _, run_id)): ApiPath<(String, String, RunId)>,
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
                        if run.as_ref().is_none_or(|r| r.status != RunStatus::Running) {
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
