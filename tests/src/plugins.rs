//! The test plugins (fixture v1 and v2, hostile; built to wasm by `build.rs`) and plugin
//! loaders over a fresh engine.

use std::path::PathBuf;
use std::sync::Arc;

use crmhost::plugins::cache::ComponentCache;
use crmhost::plugins::{EngineSettings, OperatorPluginConfig, PluginEngine, PluginLoader, PluginSource};

use crate::*;

/// The fixture plugin, version 1.0.0.
pub fn fixture_v1() -> Vec<u8> {
    std::fs::read(env!("FIXTURE_V1_WASM")).expect("fixture v1 was built by build.rs")
}

/// The fixture plugin, version 2.0.0.
pub fn fixture_v2() -> Vec<u8> {
    std::fs::read(env!("FIXTURE_V2_WASM")).expect("fixture v2 was built by build.rs")
}

/// The fixture plugin 1.0.0 as built against the first published contract (`crm-adapter` world,
/// exporting `adapter` only), kept as a file: newer hosts must keep loading it.
pub fn fixture_contract_0_1_0() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/contract-0.1.0/fixture.wasm");
    std::fs::read(path).expect("the contract-0.1.0 fixture is committed")
}

/// The hostile plugin.
pub fn hostile() -> Vec<u8> {
    std::fs::read(env!("HOSTILE_WASM")).expect("hostile was built by build.rs")
}

/// A loader over a fresh engine with the given operator configuration (no compile cache).
pub fn loader(operator: OperatorPluginConfig) -> PluginLoader {
    init_logs();
    let engine = PluginEngine::new(EngineSettings { max_concurrent_calls: 16, ..EngineSettings::default() })
        .expect("engine starts");
    PluginLoader::new(engine, ComponentCache::new(None), Arc::new(operator))
}

/// Loads `bytes` as a file plugin with `operator` settings.
pub async fn load(bytes: Vec<u8>, operator: OperatorPluginConfig) -> crmhost::plugins::LoadedPlugin {
    loader(operator).load(Arc::from(bytes), PluginSource::File(PathBuf::from("test.wasm"))).await.expect("plugin loads")
}

/// Parses an operator configuration from TOML.
pub fn operator(toml_text: &str) -> OperatorPluginConfig {
    toml::from_str(toml_text).expect("valid operator TOML")
}

/// The checks `crmhost plugin check --against` runs on a plugin's first entity (`contact`) that
/// every plugin pulling, pushing and deleting contacts passes.
pub const CHECKS_AGAINST_A_CRM: [&str; 11] = [
    "connects with OAuth",
    "test-connection",
    "pull `contact` pages by cursor",
    "pull `contact` by ids",
    "pull `contact` by modified-since",
    "push `contact` in input order",
    "push `contact` again is idempotent",
    "delete `contact`, twice",
    "401 → unauthorized",
    "rate limit → rate-limited",
    "5xx → unavailable",
];

/// Panics unless the report passed and has a passing line for each of `checks` (a check that
/// was skipped or left out does not count); `what` names the plugin in the message.
pub fn assert_checks_passed(report: &crmhost::plugins::check::CheckReport, checks: &[&str], what: &str) {
    let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
    assert!(report.passed(), "{what}: {lines:#?}");
    for check in checks {
        let line = report.lines.iter().find(|l| l.name == *check);
        let passed = matches!(line.map(|l| &l.outcome), Some(crmhost::plugins::check::CheckOutcome::Pass(_)));
        assert!(passed, "{what}: {check} did not pass: {lines:#?}");
    }
}
