//! The checks `crmhost plugin check --against <emulator url>` runs against a crm-sim emulator
//! (`GET /__sim/wiring` says which CRM it emulates and where): the plugin connects (OAuth through
//! the emulator's own code flow; with an API key too when both sides have one), tests the
//! connection, lists fields, pages through a pull with a small limit (no page over the limit, no
//! record twice, the cursor ends), reads by `ids` and by `modified-since`, pushes two new records
//! (outcomes in input order; the same ids again on retry), deletes them (twice, both `deleted`),
//! and maps the CRM's 401, rate limit and 5xx to `unauthorized`, `rate-limited` (saying when to
//! retry) and `unavailable`. The emulator's knobs are put back as they were.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Value, json};

use super::{CheckOutcome, CheckReport, Workbench};
use crate::connections::FixedToken;
use crate::oauth::client::OAuthApp;
use crate::plugins::bindings::adapter::{
    CrmRecord, DeleteOutcome, FieldInfo, FieldType, PullRequest, PushOutcome, PushRecord,
};
use crate::plugins::bindings::{AdapterError, FieldValue, RateLimitPolicy, Value as FieldData};
use crate::plugins::description::{AuthKind, EntityDescription};
use crate::plugins::loaded::{CallResult, LoadedPlugin, PluginSource};
use crate::plugins::{CallContext, OperatorPluginConfig};

/// Records seeded before the pull checks, read back two a page.
const SEEDED: usize = 5;
/// The page size the paging check asks for.
const SMALL_PAGE: u32 = 2;
/// Pages a pull may take before its cursor is taken never to end.
const MOST_PAGES: usize = 2_000;

/// Runs the checks against the emulator at `url`, after the offline ones passed for `offline`.
pub(super) async fn run(
    report: &mut CheckReport,
    bench: &Workbench,
    offline: &LoadedPlugin,
    bytes: Arc<[u8]>,
    file_name: &str,
    url: &str,
) {
    let Some(emulator) = found(report, url).await else { return };
    let Some(plugin) = pointed_at(report, bench, offline, &emulator, bytes, file_name).await else { return };
    let Some(connection) = connects(report, &emulator, &plugin).await else { return };
    tests_the_connection(report, &plugin, &connection).await;
    let Some(entity) = plugin.description().entities.first().cloned() else {
        report.add("records", CheckOutcome::Skip("the plugin declares no entity".to_owned()));
        return;
    };
    let fields = lists_fields(report, &plugin, &connection, &entity).await;
    let caps = plugin.description().capabilities;
    if caps.pull {
        emulator.seed(&entity.name).await;
        let ids = pages_through_a_pull(report, &plugin, &connection, &entity).await;
        reads_by_ids(report, &plugin, &connection, &entity, &ids).await;
        if plugin.has_bulk() {
            reads_as_a_bulk_job(report, &plugin, &connection, &entity, &ids).await;
        }
        reads_by_modified_since(report, &plugin, &connection, &entity).await;
    }
    if caps.push && caps.pull {
        let created = pushes_in_order_and_idempotently(report, &plugin, &connection, &entity, &fields).await;
        if caps.delete && !created.is_empty() {
            deletes_idempotently(report, &plugin, &connection, &entity, &created).await;
        }
    }
    if caps.pull {
        maps_errors(report, &emulator, &plugin, &connection, &entity).await;
    }
}

/// The emulator `GET /__sim/wiring` describes.
struct Emulator {
    crm: crm_sim::Crm,
    base_url: String,
    api_key: Option<SecretString>,
    http: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct Wiring {
    crm: crm_sim::Crm,
    base_url: String,
    api_key: Option<String>,
}

impl Emulator {
    /// Asks the listener at `url` which CRM it emulates.
    async fn discover(url: &str) -> Result<Self, String> {
        let base = url.trim_end_matches('/');
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        let answer =
            http.get(format!("{base}/__sim/wiring")).send().await.map_err(|e| format!("{base} did not answer: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!("{base}/__sim/wiring answered {}: is this a crm-sim emulator?", answer.status()));
        }
        let body = answer.bytes().await.map_err(|e| format!("{base}/__sim/wiring: {e}"))?;
        let wiring: Wiring = serde_json::from_slice(&body)
            .map_err(|e| format!("{base}/__sim/wiring is not an emulator's wiring: {e}"))?;
        Ok(Self { crm: wiring.crm, base_url: wiring.base_url, api_key: wiring.api_key.map(SecretString::from), http })
    }

    /// The operator settings pointing `plugin` here.
    fn operator_config(&self, plugin: &LoadedPlugin) -> OperatorPluginConfig {
        let mut config = OperatorPluginConfig::default();
        crate::sandbox::point_plugin_at(plugin.slug(), self.crm.plugin_wiring(&self.base_url), &mut config);
        config
    }

    /// Creates a few records of `entity` (the emulator knows the host's entity names); a CRM that
    /// has none of that entity keeps what it has.
    async fn seed(&self, entity: &str) {
        let _ = self.post("/__sim/seed", &json!({ "entity": entity, "count": SEEDED })).await;
    }

    async fn knobs(&self) -> Result<Value, String> {
        let answer = self.http.get(format!("{}/__sim/knobs", self.base_url)).send().await.map_err(|e| e.to_string())?;
        let body = answer.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }

    async fn set_knobs(&self, knobs: &Value) -> Result<(), String> {
        self.post("/__sim/knobs", knobs).await
    }

    /// Posts JSON to one of the emulator's own routes.
    async fn post(&self, path: &str, body: &Value) -> Result<(), String> {
        let answer = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if answer.status().is_success() { Ok(()) } else { Err(format!("{path} answered {}", answer.status())) }
    }

    /// The OAuth code flow without a browser: the emulator's authorize endpoint grants at once
    /// and redirects with the code, which the host's own client exchanges.
    async fn authorize(&self, app: &OAuthApp) -> Result<crate::oauth::client::TokenGrant, String> {
        let (state, _) = crate::oauth::state::generate();
        let (url, verifier) = app.authorize_url(&state).map_err(|e| e.to_string())?;
        let answer = self.http.get(url).send().await.map_err(|e| format!("the authorize endpoint: {e}"))?;
        let location = answer
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| url::Url::parse(v).ok())
            .ok_or_else(|| format!("the authorize endpoint answered {} without a redirect", answer.status()))?;
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| SecretString::from(v.into_owned()))
            .ok_or_else(|| "the redirect carries no code".to_owned())?;
        app.exchange_code(&code, verifier.as_ref()).await.map_err(|e| e.to_string())
    }
}

/// A connection the checks call with.
struct Connection {
    facts: BTreeMap<String, String>,
    token: SecretString,
    kind: AuthKind,
}

impl Connection {
    fn context(&self) -> CallContext {
        self.with_token(self.token.clone())
    }

    /// The same connection presenting another credential (a refused one, for the 401 check).
    fn with_token(&self, token: SecretString) -> CallContext {
        CallContext {
            connection_label: "plugin-check".to_owned(),
            facts: self.facts.clone(),
            credentials: Some(Arc::new(FixedToken(token))),
            pacer: None,
            auth_kind: Some(self.kind),
        }
    }
}

async fn found(report: &mut CheckReport, url: &str) -> Option<Emulator> {
    match Emulator::discover(url).await {
        Ok(emulator) => {
            let detail = format!("the {} emulator at {}", emulator.crm.as_str(), emulator.base_url);
            report.add("emulator", CheckOutcome::Pass(detail));
            Some(emulator)
        }
        Err(err) => {
            report.add("emulator", CheckOutcome::Fail(err));
            None
        }
    }
}

/// The plugin loaded again with the operator settings that point it at the emulator (a cache hit).
async fn pointed_at(
    report: &mut CheckReport,
    bench: &Workbench,
    offline: &LoadedPlugin,
    emulator: &Emulator,
    bytes: Arc<[u8]>,
    file_name: &str,
) -> Option<LoadedPlugin> {
    let loader = bench.loader(emulator.operator_config(offline));
    match loader.load(bytes, PluginSource::File(file_name.into())).await {
        Ok(plugin) => Some(plugin),
        Err(err) => {
            report.add("pointed at the emulator", CheckOutcome::Fail(err.to_string()));
            None
        }
    }
}

/// Connects with each way both the plugin and the emulator offer (OAuth first); the checks that
/// follow use the first that worked.
async fn connects(report: &mut CheckReport, emulator: &Emulator, plugin: &LoadedPlugin) -> Option<Connection> {
    let schemes = &plugin.description().auth;
    let mut first = None;
    if schemes.oauth2().is_some() {
        let outcome = match oauth_connection(emulator, plugin).await {
            Ok(connection) => {
                let detail = format!("code flow and token exchange; facts: {}", fact_names(&connection));
                first.get_or_insert(connection);
                CheckOutcome::Pass(detail)
            }
            Err(err) => CheckOutcome::Fail(err),
        };
        report.add("connects with OAuth", outcome);
    }
    if schemes.of(AuthKind::ApiKey).is_some() {
        let outcome = match &emulator.api_key {
            Some(key) => {
                let connection = Connection { facts: BTreeMap::new(), token: key.clone(), kind: AuthKind::ApiKey };
                match plugin.test_connection(connection.context()).await {
                    Ok(Ok(account)) => {
                        first.get_or_insert(connection);
                        CheckOutcome::Pass(format!("test-connection as `{}`", account.label))
                    }
                    Ok(Err(err)) => CheckOutcome::Fail(format!("test-connection refused the key: {}", summary(&err))),
                    Err(err) => CheckOutcome::Fail(format!("the call broke: {err}")),
                }
            }
            None => CheckOutcome::Skip("this emulator hands out no API key".to_owned()),
        };
        report.add("connects with an API key", outcome);
    }
    if first.is_none() {
        report.add("connects", CheckOutcome::Fail("no way of connecting worked; the checks below need one".to_owned()));
    }
    first
}

async fn oauth_connection(emulator: &Emulator, plugin: &LoadedPlugin) -> Result<Connection, String> {
    let public = url::Url::parse("http://127.0.0.1/").map_err(|e| e.to_string())?;
    let app = OAuthApp::for_plugin(plugin, &public).map_err(|e| e.to_string())?;
    let grant = emulator.authorize(&app).await?;
    Ok(Connection {
        facts: grant.connection_facts(),
        token: grant.tokens.access_token().clone(),
        kind: AuthKind::Oauth2,
    })
}

fn fact_names(connection: &Connection) -> String {
    match connection.facts.keys().map(String::as_str).collect::<Vec<_>>().join(", ") {
        names if names.is_empty() => "none".to_owned(),
        names => names,
    }
}

async fn tests_the_connection(report: &mut CheckReport, plugin: &LoadedPlugin, connection: &Connection) {
    let outcome = match plugin.test_connection(connection.context()).await {
        Ok(Ok(account)) => CheckOutcome::Pass(format!("connected as `{}`", account.label)),
        Ok(Err(AdapterError::NotSupported(_))) => CheckOutcome::Skip("not implemented".to_owned()),
        Ok(Err(err)) => CheckOutcome::Fail(summary(&err)),
        Err(err) => CheckOutcome::Fail(format!("the call broke: {err}")),
    };
    report.add("test-connection", outcome);
}

/// `list-fields` answers for the entity and includes its match keys.
async fn lists_fields(
    report: &mut CheckReport,
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
) -> Vec<FieldInfo> {
    let name = format!("list-fields `{}`", entity.name);
    let (outcome, fields) = match plugin.list_fields(connection.context(), &entity.name).await {
        Ok(Ok(fields)) => {
            let known: BTreeSet<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            let missing: Vec<&str> =
                entity.match_keys.iter().map(String::as_str).filter(|k| !known.contains(k)).collect();
            let outcome = if fields.is_empty() {
                CheckOutcome::Fail("no fields".to_owned())
            } else if !missing.is_empty() {
                CheckOutcome::Fail(format!("the match keys {missing:?} are not among the fields"))
            } else {
                CheckOutcome::Pass(format!("{} fields, the match keys among them", fields.len()))
            };
            (outcome, fields)
        }
        Ok(Err(AdapterError::NotSupported(_))) => (CheckOutcome::Skip("not implemented".to_owned()), Vec::new()),
        Ok(Err(err)) => (CheckOutcome::Fail(summary(&err)), Vec::new()),
        Err(err) => (CheckOutcome::Fail(format!("the call broke: {err}")), Vec::new()),
    };
    report.add(&name, outcome);
    fields
}

fn pull_request(entity: &EntityDescription) -> PullRequest {
    PullRequest {
        entity: entity.name.clone(),
        cursor: None,
        modified_since: None,
        ids: Vec::new(),
        fields: Vec::new(),
        limit: SMALL_PAGE,
    }
}

/// A full pull two records a page: no page over the limit, no record twice, and the cursor ends.
/// Returns the ids read.
async fn pages_through_a_pull(
    report: &mut CheckReport,
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
) -> Vec<String> {
    let name = format!("pull `{}` pages by cursor", entity.name);
    let mut request = pull_request(entity);
    let (mut seen, mut ids, mut pages) = (BTreeSet::new(), Vec::new(), 0);
    let outcome = loop {
        let page = match plugin.pull(connection.context(), &request).await {
            Ok(Ok(page)) => page,
            Ok(Err(err)) => break CheckOutcome::Fail(format!("page {}: {}", pages + 1, summary(&err))),
            Err(err) => break CheckOutcome::Fail(format!("page {}: the call broke: {err}", pages + 1)),
        };
        pages += 1;
        if page.records.len() > SMALL_PAGE as usize {
            break CheckOutcome::Fail(format!(
                "page {pages} holds {} records; the limit was {SMALL_PAGE}",
                page.records.len()
            ));
        }
        if let Some(twice) = page.records.iter().find(|r| !seen.insert(r.id.clone())) {
            break CheckOutcome::Fail(format!("record {} came twice (page {pages})", twice.id));
        }
        ids.extend(page.records.iter().map(|r| r.id.clone()));
        match page.next_cursor {
            None if ids.len() < SEEDED => {
                break CheckOutcome::Fail(format!("{} records read; at least {SEEDED} were seeded", ids.len()));
            }
            None => {
                break CheckOutcome::Pass(format!("{} records in {pages} pages of at most {SMALL_PAGE}", ids.len()));
            }
            Some(_) if pages >= MOST_PAGES => {
                break CheckOutcome::Fail(format!("the cursor did not end after {MOST_PAGES} pages"));
            }
            Some(cursor) if request.cursor.as_deref() == Some(cursor.as_str()) => {
                break CheckOutcome::Fail(format!("page {pages} returned the cursor it was given"));
            }
            Some(cursor) => request.cursor = Some(cursor),
        }
    };
    report.add(&name, outcome);
    ids
}

/// A pull by `ids` returns those records and no others.
async fn reads_by_ids(
    report: &mut CheckReport,
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
    ids: &[String],
) {
    let name = format!("pull `{}` by ids", entity.name);
    let wanted: Vec<String> = ids.iter().take(2).cloned().collect();
    if wanted.is_empty() {
        report.add(&name, CheckOutcome::Skip("no records to read".to_owned()));
        return;
    }
    let outcome = match pull_live(plugin, connection, entity, &wanted).await {
        Ok(records) => {
            let got: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
            let asked: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
            if got == asked {
                CheckOutcome::Pass(format!("the {} asked for, no others", wanted.len()))
            } else {
                CheckOutcome::Fail(format!("asked for {asked:?}, got {got:?}"))
            }
        }
        Err(err) => CheckOutcome::Fail(err),
    };
    report.add(&name, outcome);
}

/// A bulk read (the `bulk` export) brings the records the paged read did: step by step, waiting
/// as the plugin asks (bounded), each page within the limit; declining the entity is allowed.
async fn reads_as_a_bulk_job(
    report: &mut CheckReport,
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
    paged: &[String],
) {
    let name = format!("bulk pull `{}` equals the paged pull", entity.name);
    let mut request = pull_request(entity);
    let (mut ids, mut steps) = (BTreeSet::new(), 0);
    let outcome = loop {
        steps += 1;
        if steps > MOST_PAGES {
            break CheckOutcome::Fail(format!("the job did not end after {MOST_PAGES} steps"));
        }
        let page = match plugin.bulk_pull(connection.context(), &request).await {
            Ok(Ok(Some(crate::plugins::bindings::bulk::PullStep::Page(page)))) => page,
            Ok(Ok(Some(crate::plugins::bindings::bulk::PullStep::Pending(pending)))) => {
                let wait = u64::from(pending.wait_ms).clamp(10, 2_000);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                request.cursor = Some(pending.cursor);
                continue;
            }
            Ok(Ok(None)) | Ok(Err(AdapterError::NotSupported(_))) if request.cursor.is_none() => {
                break CheckOutcome::Skip("declined for this entity (records go in batches)".to_owned());
            }
            Ok(Ok(None)) => break CheckOutcome::Fail("the plugin stopped offering the job it started".to_owned()),
            Ok(Err(err)) => break CheckOutcome::Fail(format!("step {steps}: {}", summary(&err))),
            Err(err) => break CheckOutcome::Fail(format!("step {steps}: the call broke: {err}")),
        };
        if page.records.len() > SMALL_PAGE as usize {
            break CheckOutcome::Fail(format!(
                "a page holds {} records; the limit was {SMALL_PAGE}",
                page.records.len()
            ));
        }
        ids.extend(page.records.into_iter().map(|r| r.id));
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => {
                let paged: BTreeSet<String> = paged.iter().cloned().collect();
                break if ids == paged {
                    CheckOutcome::Pass(format!("{} records in {steps} steps", ids.len()))
                } else {
                    let missing = paged.difference(&ids).count();
                    let extra = ids.difference(&paged).count();
                    CheckOutcome::Fail(format!("{missing} records of the paged pull missing, {extra} others"))
                };
            }
        }
    };
    report.add(&name, outcome);
}

/// The live records a pull by `ids` returns (deleted ones left out).
async fn pull_live(
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
    ids: &[String],
) -> Result<Vec<CrmRecord>, String> {
    let request = PullRequest { ids: ids.to_vec(), limit: 200, ..pull_request(entity) };
    match plugin.pull(connection.context(), &request).await {
        Ok(Ok(page)) => Ok(page.records.into_iter().filter(|r| !r.deleted).collect()),
        Ok(Err(err)) => Err(summary(&err)),
        Err(err) => Err(format!("the call broke: {err}")),
    }
}

/// `modified-since` in the future finds nothing; long ago, something.
async fn reads_by_modified_since(
    report: &mut CheckReport,
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
) {
    let name = format!("pull `{}` by modified-since", entity.name);
    let since = |instant: chrono::DateTime<chrono::Utc>| PullRequest {
        modified_since: Some(instant.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        limit: 200,
        ..pull_request(entity)
    };
    let now = chrono::Utc::now();
    let later = plugin.pull(connection.context(), &since(now + chrono::Duration::days(1))).await;
    let long_ago = plugin.pull(connection.context(), &since(now - chrono::Duration::days(3650))).await;
    let outcome = match (later, long_ago) {
        (Ok(Ok(later)), Ok(Ok(long_ago))) => {
            let future = later.records.iter().filter(|r| !r.deleted).count();
            if future > 0 {
                CheckOutcome::Fail(format!("{future} records changed after tomorrow"))
            } else if long_ago.records.is_empty() {
                CheckOutcome::Fail("nothing changed in ten years, though records were just seeded".to_owned())
            } else {
                CheckOutcome::Pass(format!(
                    "none after tomorrow, {} on the first page since ten years ago",
                    long_ago.records.len()
                ))
            }
        }
        (Ok(Err(err)), _) | (_, Ok(Err(err))) => CheckOutcome::Fail(summary(&err)),
        (Err(err), _) | (_, Err(err)) => CheckOutcome::Fail(format!("the call broke: {err}")),
    };
    report.add(&name, outcome);
}

/// Pushes two new records: each outcome belongs to its input (read back by id, the match key
/// agrees), and pushing them again updates the same two. Returns their CRM ids.
async fn pushes_in_order_and_idempotently(
    report: &mut CheckReport,
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
    fields: &[FieldInfo],
) -> Vec<String> {
    let name = format!("push `{}` in input order", entity.name);
    let Some(key) = entity.match_keys.first() else {
        report.add(&name, CheckOutcome::Skip("the entity has no match key".to_owned()));
        return Vec::new();
    };
    let stamp = chrono::Utc::now().timestamp_millis();
    let records: Vec<PushRecord> = (0..2).map(|i| sample_record(entity, fields, key, &format!("{stamp}{i}"))).collect();
    let first = push(plugin, connection, entity, key, &records).await;
    let created = match first.and_then(|outcomes| written_ids(&outcomes, "created")) {
        Ok(ids) => ids,
        Err(err) => {
            report.add(&name, CheckOutcome::Fail(err));
            return Vec::new();
        }
    };
    report.add(&name, in_input_order(plugin, connection, entity, key, &records, &created).await);

    let again = push(plugin, connection, entity, key, &records).await;
    let outcome = match again.and_then(|outcomes| written_ids(&outcomes, "updated")) {
        Ok(ids) if ids == created => CheckOutcome::Pass("the same records updated, nothing created".to_owned()),
        Ok(ids) => CheckOutcome::Fail(format!("the retry wrote {ids:?}, the first push {created:?}")),
        Err(err) => CheckOutcome::Fail(err),
    };
    report.add(&format!("push `{}` again is idempotent", entity.name), outcome);
    created
}

async fn push(
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
    key: &str,
    records: &[PushRecord],
) -> Result<Vec<PushOutcome>, String> {
    match plugin.push(connection.context(), &entity.name, key, records).await {
        Ok(Ok(outcomes)) if outcomes.len() == records.len() => Ok(outcomes),
        Ok(Ok(outcomes)) => Err(format!("{} outcomes for {} records", outcomes.len(), records.len())),
        Ok(Err(err)) => Err(summary(&err)),
        Err(err) => Err(format!("the call broke: {err}")),
    }
}

/// The ids of outcomes that all wrote a record, as `expected` (`created` or `updated`) says.
fn written_ids(outcomes: &[PushOutcome], expected: &str) -> Result<Vec<String>, String> {
    outcomes
        .iter()
        .enumerate()
        .map(|(i, outcome)| match (outcome, expected) {
            (PushOutcome::Created(id), "created") | (PushOutcome::Updated(id), "updated") => Ok(id.clone()),
            (PushOutcome::Failed(err), _) => Err(format!("record {i} failed: {}", summary(err))),
            (other, _) => Err(format!("record {i}: {} where {expected} was expected", outcome_word(other))),
        })
        .collect()
}

fn outcome_word(outcome: &PushOutcome) -> &'static str {
    match outcome {
        PushOutcome::Created(_) => "created",
        PushOutcome::Updated(_) => "updated",
        PushOutcome::Failed(_) => "failed",
    }
}

/// Reads the created records back: the one at each position carries that input's match key.
async fn in_input_order(
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
    key: &str,
    records: &[PushRecord],
    ids: &[String],
) -> CheckOutcome {
    let read = match pull_live(plugin, connection, entity, ids).await {
        Ok(read) => read,
        Err(err) => return CheckOutcome::Fail(format!("reading them back: {err}")),
    };
    for (i, (id, record)) in ids.iter().zip(records).enumerate() {
        let sent = text_of(&record.fields, key);
        let stored = read.iter().find(|r| &r.id == id).and_then(|r| text_of(&r.fields, key));
        if sent.map(|s| s.to_lowercase()) != stored.map(|s| s.to_lowercase()) {
            return CheckOutcome::Fail(format!(
                "outcome {i} names {id}, whose `{key}` is {stored:?}; record {i} sent {sent:?}"
            ));
        }
    }
    CheckOutcome::Pass(format!("{} created, each outcome naming its own record", ids.len()))
}

fn text_of<'a>(fields: &'a [FieldValue], name: &str) -> Option<&'a str> {
    fields.iter().find(|f| f.name == name).and_then(|f| match &f.value {
        FieldData::Text(text) => Some(text.as_str()),
        _ => None,
    })
}

/// Deletes the records twice: every outcome `deleted` both times, and they no longer read back.
async fn deletes_idempotently(
    report: &mut CheckReport,
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
    ids: &[String],
) {
    let name = format!("delete `{}`, twice", entity.name);
    let outcome = match delete_then_again(plugin, connection, entity, ids).await {
        Ok(()) => CheckOutcome::Pass(format!("{} deleted; deleting them again answers deleted", ids.len())),
        Err(problem) => CheckOutcome::Fail(problem),
    };
    report.add(&name, outcome);
}

async fn delete_then_again(
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
    ids: &[String],
) -> Result<(), String> {
    delete_all(plugin, connection, entity, ids).await.map_err(|p| format!("first delete: {p}"))?;
    let live = pull_live(plugin, connection, entity, ids).await.map_err(|e| format!("reading them back: {e}"))?;
    if !live.is_empty() {
        return Err(format!("{} still read back after the delete", live.len()));
    }
    delete_all(plugin, connection, entity, ids).await.map_err(|p| format!("second delete: {p}"))
}

/// Deletes `ids`; an error unless every outcome is `deleted`.
async fn delete_all(
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
    ids: &[String],
) -> Result<(), String> {
    match plugin.delete(connection.context(), &entity.name, ids).await {
        Ok(Ok(outcomes)) if outcomes.len() != ids.len() => {
            Err(format!("{} outcomes for {} ids", outcomes.len(), ids.len()))
        }
        Ok(Ok(outcomes)) => outcomes.iter().try_for_each(|o| match o {
            DeleteOutcome::Deleted => Ok(()),
            DeleteOutcome::Failed(err) => Err(summary(err)),
        }),
        Ok(Err(err)) => Err(summary(&err)),
        Err(err) => Err(format!("the call broke: {err}")),
    }
}

/// A refused credential is `unauthorized`; the CRM's rate limit `rate-limited` with when to retry
/// (a daily allowance may not say); its server errors `unavailable`.
async fn maps_errors(
    report: &mut CheckReport,
    emulator: &Emulator,
    plugin: &LoadedPlugin,
    connection: &Connection,
    entity: &EntityDescription,
) {
    let request = PullRequest { limit: 1, ..pull_request(entity) };
    let refused = connection.with_token(SecretString::from("crmhost-check-refused-credential"));
    let answer = plugin.pull(refused, &request).await;
    report.add("401 → unauthorized", expect(answer, "unauthorized", |e| matches!(e, AdapterError::Unauthorized(_))));

    let Ok(knobs) = emulator.knobs().await else {
        report.add("rate limit and 5xx", CheckOutcome::Fail("the emulator's knobs could not be read".to_owned()));
        return;
    };
    for (name, turned, word) in [
        ("rate limit → rate-limited", json!({"force_rate_limit": true}), "rate-limited"),
        ("5xx → unavailable", json!({"failure_rate": 1.0}), "unavailable"),
    ] {
        let outcome = match emulator.set_knobs(&turned).await {
            Ok(()) => {
                let answer = plugin.pull(connection.context(), &request).await;
                expect(answer, word, |e| match e {
                    AdapterError::RateLimited(info) => {
                        word == "rate-limited"
                            && (info.retry_after_ms.is_some() || info.policy == RateLimitPolicy::Daily)
                    }
                    AdapterError::Unavailable(_) => word == "unavailable",
                    _ => false,
                })
            }
            Err(err) => CheckOutcome::Fail(err),
        };
        if let Err(err) = emulator.set_knobs(&knobs).await {
            report.add(name, CheckOutcome::Fail(format!("the emulator's knobs could not be put back: {err}")));
            return;
        }
        report.add(name, outcome);
    }
}

/// Pass when the call failed as `wanted`; otherwise what came instead.
fn expect<T>(answer: CallResult<T>, word: &str, wanted: impl Fn(&AdapterError) -> bool) -> CheckOutcome {
    match answer {
        Ok(Err(err)) if wanted(&err) => CheckOutcome::Pass(summary(&err)),
        Ok(Err(err)) => CheckOutcome::Fail(format!("expected {word}, got {}", summary(&err))),
        Ok(Ok(_)) => CheckOutcome::Fail(format!("expected {word}, the call succeeded")),
        Err(err) => CheckOutcome::Fail(format!("expected {word}, the call broke: {err}")),
    }
}

/// A record of `entity` its CRM accepts: a value for each field the default mappings write and
/// each other required writable field, by type; the match key `key` unique to `tag`.
fn sample_record(entity: &EntityDescription, fields: &[FieldInfo], key: &str, tag: &str) -> PushRecord {
    let mapped: BTreeSet<&str> = entity
        .default_mappings
        .iter()
        .filter(|m| m.direction == "push" || m.direction == "both")
        .map(|m| m.crm_field.as_str())
        .collect();
    let mut values: Vec<FieldValue> = fields
        .iter()
        .filter(|f| f.writable && (mapped.contains(f.name.as_str()) || f.required) && f.name != key)
        .filter_map(|f| sample_value(f, tag).map(|value| FieldValue { name: f.name.clone(), value }))
        .collect();
    // An email key by its type, or by its name when the plugin lists no fields.
    let key_type = fields.iter().find(|f| f.name == key).map(|f| f.field_type);
    let email_key = key_type == Some(FieldType::Email) || (key_type.is_none() && key.contains("mail"));
    let key_value = if email_key { format!("check-{tag}@example.com") } else { format!("Check {tag}") };
    values.push(FieldValue { name: key.to_owned(), value: FieldData::Text(key_value) });
    PushRecord { crm_id: None, fields: values }
}

/// A plausible value of a field's type; `None` for types no sample can fill (references, ids).
fn sample_value(field: &FieldInfo, tag: &str) -> Option<FieldData> {
    Some(match field.field_type {
        FieldType::Text | FieldType::Textarea => FieldData::Text(format!("Check{tag}")),
        FieldType::Email => FieldData::Text(format!("check-{tag}@example.com")),
        FieldType::Phone => FieldData::Text("+1 555 0100".to_owned()),
        FieldType::Url => FieldData::Text("https://example.com".to_owned()),
        FieldType::Integer | FieldType::Number | FieldType::Currency | FieldType::Percent => FieldData::Number(10.0),
        FieldType::Boolean => FieldData::Boolean(true),
        FieldType::Date => FieldData::Date("2030-01-15".to_owned()),
        FieldType::DateTime => FieldData::DateTime("2030-01-15T10:00:00Z".to_owned()),
        FieldType::Picklist => FieldData::Text(field.options.first()?.clone()),
        FieldType::MultiPicklist | FieldType::Reference | FieldType::Id | FieldType::Other => return None,
    })
}

/// An adapter error in words: its kind and message (the CRM's code when it gave one).
fn summary(err: &AdapterError) -> String {
    let (kind, message) = crate::plugins::adapter_error_summary(err);
    format!("{kind}: {message}")
}
