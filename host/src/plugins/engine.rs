//! The one wasmtime engine of the process: compiler and allocator settings, the epoch ticker, the
//! linker with every host import, and the back-pressure semaphore in front of instance slots.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::runtime::CallState;

/// How often the epoch advances. Every CPU budget is a whole number of ticks; 10 ms keeps the
/// overhead negligible (one atomic increment) while interrupting a runaway loop within ~10 ms.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings (per-plugin limits live in [`PluginLimits`](super::limits::PluginLimits)).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Plugin calls that may run at once; further calls wait for a slot.
    pub max_concurrent_calls: u32,
    /// The hard ceiling on one instance's linear memory; per-plugin limits must stay below it.
    pub max_memory_bytes: u64,
    /// Try the pooling allocator (falls back to on-demand when the address space is too small).
    pub pooling: bool,
    /// Core module instances one plugin instance may create. A Rust guest makes a handful; a
    /// Python one (componentize-py 0.25: CPython, libc and their shims linked as separate
    /// modules) makes 14. A plugin needing more fails to load, naming this setting.
    pub max_core_instances_per_plugin: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self { max_concurrent_calls: 64, max_memory_bytes: 256 << 20, pooling: true, max_core_instances_per_plugin: 64 }
    }
}

/// Which instance allocator the engine ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocator {
    /// Pre-reserved slots: ~10 µs instantiation.
    Pooling,
    /// mmap per instance: slower, but works in small address spaces.
    OnDemand,
}

/// The shared engine.
pub struct PluginEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    pub(crate) slots: Arc<Semaphore>,
    allocator: Allocator,
    settings: EngineSettings,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine").field("allocator", &self.allocator).field("settings", &self.settings).finish()
    }
}

fn base_config() -> Config {
    let mut config = Config::new();
    // Epochs interrupt guest code cheaply; a callback turns ticks into a CPU budget.
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config
}

fn pooling_config(settings: &EngineSettings) -> PoolingAllocationConfig {
    let slots = settings.max_concurrent_calls;
    let core_instances = settings.max_core_instances_per_plugin;
    let mut pool = PoolingAllocationConfig::new();
    // One component instance per call. A Rust guest is a handful of core instances (the program
    // and small shims), one memory and a few tables; a Python guest's dynamically linked modules
    // share one memory and one table. Core instances are only counted by the pool (nothing is
    // reserved for them), so every slot may hold the most a plugin may make.
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(core_instances))
        .total_memories(slots * 2)
        .total_tables(slots * 4)
        .total_stacks(slots)
        .max_core_instances_per_component(core_instances)
        .max_memories_per_component(2)
        .max_tables_per_component(8)
        .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX))
        // Keep 1 MiB of each slot resident so the next call does not fault it in again.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        // Where the kernel can say which pages a call dirtied (Linux 6.7+), reset only those.
        .pagemap_scan(Enabled::Auto);
    pool
}

impl PluginEngine {
    /// Builds the engine (pooling if possible), links the host imports and starts the ticker.
    pub fn new(settings: EngineSettings) -> wasmtime::Result<Arc<Self>> {
        let (engine, allocator) = if settings.pooling {
            let mut config = base_config();
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(&settings)));
            match Engine::new(&config) {
                Ok(engine) => (engine, Allocator::Pooling),
                Err(err) => {
                    // Small virtual address spaces (39-bit VMs, strict overcommit) cannot reserve the pool.
                    tracing::warn!(error = %err, "pooling allocator unavailable; falling back to on-demand allocation");
                    (Engine::new(&base_config())?, Allocator::OnDemand)
                }
            }
        } else {
            (Engine::new(&base_config())?, Allocator::OnDemand)
        };

        let mut linker = Linker::<CallState>::new(&engine);
        // Rust's wasm32-wasip2 std imports cli, clocks, random, io and filesystem even when unused.
        // The WasiCtx of each call grants nothing: no preopens, no env, no args, no sockets.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        super::bindings::add_to_linker(&mut linker)?;

        start_epoch_ticker(&engine);
        let slots = Arc::new(Semaphore::new(settings.max_concurrent_calls as usize));
        Ok(Arc::new(Self { engine, linker, slots, allocator, settings }))
    }

    /// The allocator in use.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// The settings the engine was built with.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Ticks the epoch from a plain OS thread: on the async executor it could starve exactly when
/// every worker is busy running guest code, which is when it is needed. Stops with the engine.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("crmhost-epoch".to_owned()).spawn(move || {
        loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        }
    });
    if let Err(err) = spawned {
        // Without a ticker no CPU budget fires; the wall-clock timeout still bounds every call.
        tracing::error!(error = %err, "could not start the epoch ticker thread");
    }
}
