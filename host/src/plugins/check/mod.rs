//! `crmhost plugin check <file.wasm>`: the conformance checks a plugin author runs before shipping
//! a component, each printed as a pass / fail / skip line. These are the checks that need no CRM:
//! the component loads in this host's sandbox, describes itself the same way every time, keeps its
//! description's promises (a claimed capability is implemented, an unclaimed one answers
//! `not-supported`, a webhook it cannot verify is `unauthorized`), and fails cleanly without a
//! connection. With `--against <emulator url>`, the checks that need a CRM follow ([`against`]).

mod against;

use std::sync::Arc;
use std::time::Instant;

use super::bindings::AdapterError;
use super::bindings::adapter::{PullRequest, PushRecord, WebhookRequest};
use super::cache::ComponentCache;
use super::loaded::{CallResult, LoadedPlugin, PluginSource};
use super::{CallContext, EngineSettings, OperatorPluginConfig, PluginEngine, PluginLoader};

/// How one check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Kept, with what was seen.
    Pass(String),
    /// Broken, with why.
    Fail(String),
    /// Not applicable to this plugin, with why.
    Skip(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    /// What was checked.
    pub name: String,
    /// How it went.
    pub outcome: CheckOutcome,
}

impl std::fmt::Display for CheckLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (word, detail) = match &self.outcome {
            CheckOutcome::Pass(d) => ("pass", d),
            CheckOutcome::Fail(d) => ("FAIL", d),
            CheckOutcome::Skip(d) => ("skip", d),
        };
        write!(f, "{word}  {}: {detail}", self.name)
    }
}

/// Every check's line, in order.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The lines.
    pub lines: Vec<CheckLine>,
}

impl CheckReport {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        !self.lines.iter().any(|l| matches!(l.outcome, CheckOutcome::Fail(_)))
    }

    fn add(&mut self, name: &str, outcome: CheckOutcome) {
        self.lines.push(CheckLine { name: name.to_owned(), outcome });
    }
}

/// `crmhost plugin check <file> [--against <emulator url>]`: prints each check's line; an error
/// when the file cannot be read or a check failed.
pub async fn check_file(path: &std::path::Path, against: Option<&str>) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let report = check_component_against(bytes, &name, against).await;
    for line in &report.lines {
        println!("{line}");
    }
    let failed = report.lines.iter().filter(|l| matches!(l.outcome, CheckOutcome::Fail(_))).count();
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} of {} checks failed for {}", report.lines.len(), path.display())),
    }
}

/// Runs the checks that need no CRM on a component's bytes with the host's default engine settings.
pub async fn check_component(bytes: Vec<u8>, file_name: &str) -> CheckReport {
    check_component_against(bytes, file_name, None).await
}

/// Runs the checks on a component's bytes and, given an emulator's URL, the checks against it.
pub async fn check_component_against(bytes: Vec<u8>, file_name: &str, against: Option<&str>) -> CheckReport {
    let mut report = CheckReport::default();
    let Some(bench) = Workbench::start(&mut report) else { return report };
    let bytes: Arc<[u8]> = Arc::from(bytes);
    let Some(plugin) = loads(&mut report, &bench, bytes.clone(), file_name).await else { return report };
    describes_stably(&mut report, &plugin).await;
    keeps_capability_promises(&mut report, &plugin).await;
    refuses_unverified_webhooks(&mut report, &plugin).await;
    if let Some(url) = against {
        against::run(&mut report, &bench, &plugin, bytes, file_name, url).await;
    }
    report
}

/// The engine and the compiled-component cache the checks load a plugin with: a private
/// temporary cache, so loading it again (pointed at an emulator) does not compile it twice.
struct Workbench {
    engine: Arc<PluginEngine>,
    cache: ComponentCache,
    _cache_dir: Option<tempfile::TempDir>,
}

impl Workbench {
    fn start(report: &mut CheckReport) -> Option<Self> {
        let engine = match PluginEngine::new(EngineSettings::default()) {
            Ok(engine) => engine,
            Err(err) => {
                report.add("loads", CheckOutcome::Fail(format!("the plugin engine could not start: {err:#}")));
                return None;
            }
        };
        // Without a temporary directory the checks still run; a second load compiles again.
        let dir = tempfile::tempdir().ok();
        let cache = ComponentCache::new(dir.as_ref().map(|d| d.path().to_path_buf()));
        Some(Self { engine, cache, _cache_dir: dir })
    }

    /// A loader applying `operator`'s policy.
    fn loader(&self, operator: OperatorPluginConfig) -> PluginLoader {
        PluginLoader::new(self.engine.clone(), self.cache.clone(), Arc::new(operator))
    }
}

/// The component compiles, imports only what the host allows, links, and describes itself validly.
async fn loads(report: &mut CheckReport, bench: &Workbench, bytes: Arc<[u8]>, file_name: &str) -> Option<LoadedPlugin> {
    let loader = bench.loader(OperatorPluginConfig::default());
    let (size, started) = (bytes.len(), Instant::now());
    match loader.load(bytes, PluginSource::File(file_name.into())).await {
        Ok(plugin) => {
            let d = plugin.description();
            let detail = format!(
                "`{}` {} (contract {}, auth {}, {} KB, compiled and described in {:.1} s); entities: {}",
                d.slug,
                d.version,
                plugin.contract_version(),
                d.auth.summary(),
                size / 1024,
                started.elapsed().as_secs_f64(),
                match d.entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ") {
                    names if names.is_empty() => "none".to_owned(),
                    names => names,
                }
            );
            report.add("loads", CheckOutcome::Pass(detail));
            Some(plugin)
        }
        Err(err) => {
            report.add("loads", CheckOutcome::Fail(err.to_string()));
            None
        }
    }
}

/// `describe()` answers the same every time: the host calls it on fresh instances and relies on it.
async fn describes_stably(report: &mut CheckReport, plugin: &LoadedPlugin) {
    let first = plugin.describe(CallContext::detached()).await;
    let second = plugin.describe(CallContext::detached()).await;
    let outcome = match (first, second) {
        (Ok(a), Ok(b)) if format!("{a:?}") == format!("{b:?}") => CheckOutcome::Pass("identical twice".to_owned()),
        (Ok(_), Ok(_)) => CheckOutcome::Fail("two calls answered differently".to_owned()),
        (Err(err), _) | (_, Err(err)) => CheckOutcome::Fail(format!("a call failed: {err}")),
    };
    report.add("describe is stable", outcome);
}

/// Each operation the description claims is implemented, each it does not claim answers
/// `not-supported`. Called without a connection, an implemented operation fails for want of
/// credentials (or answers from what it was given), which is not `not-supported`.
async fn keeps_capability_promises(report: &mut CheckReport, plugin: &LoadedPlugin) {
    let description = plugin.description();
    let caps = description.capabilities;
    let Some(entity) = description.entities.first().map(|e| e.name.clone()) else {
        report.add("capabilities", CheckOutcome::Skip("the plugin declares no entity".to_owned()));
        return;
    };
    let detached = CallContext::detached;
    let pull = PullRequest {
        entity: entity.clone(),
        cursor: None,
        modified_since: None,
        ids: Vec::new(),
        fields: Vec::new(),
        limit: 1,
    };
    let record = PushRecord { crm_id: None, fields: Vec::new() };
    let key = description.entities[0].match_keys.first().cloned().unwrap_or_default();
    let answers = [
        ("pull", caps.pull, supported(plugin.pull(detached(), &pull).await)),
        ("push", caps.push, supported(plugin.push(detached(), &entity, &key, &[record]).await)),
        ("delete", caps.delete, supported(plugin.delete(detached(), &entity, &["1".to_owned()]).await)),
    ];
    for (operation, claimed, answer) in answers {
        let name = format!("capability `{operation}`");
        let outcome = match (claimed, answer) {
            (_, Err(broken)) => CheckOutcome::Fail(broken),
            (true, Ok(true)) => CheckOutcome::Pass("claimed and implemented".to_owned()),
            (false, Ok(false)) => CheckOutcome::Pass("not claimed, answers not-supported".to_owned()),
            (true, Ok(false)) => CheckOutcome::Fail("claimed, but the call answers not-supported".to_owned()),
            (false, Ok(true)) => CheckOutcome::Fail(format!(
                "implemented but not claimed: add `{operation}` to the capabilities, or answer not-supported"
            )),
        };
        report.add(&name, outcome);
    }
}

/// Whether a call was implemented (anything but `not-supported`); a trap or a sandbox limit is
/// an error in words.
fn supported<T>(result: CallResult<T>) -> Result<bool, String> {
    match result {
        Ok(Err(AdapterError::NotSupported(_))) => Ok(false),
        Ok(_) => Ok(true),
        Err(err) => Err(format!("the call broke: {err}")),
    }
}

/// A plugin claiming `webhooks` verifies deliveries itself: one without a valid signature must be
/// `unauthorized` (the host answers the CRM 401).
async fn refuses_unverified_webhooks(report: &mut CheckReport, plugin: &LoadedPlugin) {
    let name = "unverified webhook is unauthorized";
    if !plugin.description().capabilities.webhooks {
        report.add(name, CheckOutcome::Skip("the plugin does not claim `webhooks`".to_owned()));
        return;
    }
    let delivery = WebhookRequest {
        method: "POST".to_owned(),
        url: format!("https://crmhost.invalid/api/v1/webhooks/{}", plugin.slug()),
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: b"[]".to_vec(),
        received_at_ms: 0,
    };
    let outcome = match plugin.parse_webhook(CallContext::detached(), &delivery).await {
        Ok(Err(AdapterError::Unauthorized(_))) => CheckOutcome::Pass("refused as unauthorized".to_owned()),
        Ok(Err(other)) => CheckOutcome::Fail(format!("refused, but not as unauthorized: {other:?}")),
        Ok(Ok(events)) => CheckOutcome::Fail(format!("accepted an unsigned delivery ({} events)", events.len())),
        Err(err) => CheckOutcome::Fail(format!("the call broke: {err}")),
    };
    report.add(name, outcome);
}
