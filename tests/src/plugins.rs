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
