//! One plugin call: a fresh `Store` bound to one connection, with a memory limit, a CPU budget
//! (epoch ticks spent inside the guest) and a wall-clock timeout (which also covers time blocked in
//! host calls, where epochs cannot reach). A trap fails that call only: the store is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{AdapterPre, Exports};
use super::capability::http::{CredentialPlacement, PluginHttp};
use super::capability::log::PluginLog;
use super::capability::secrets::PluginSecrets;
use super::context::CallContext;
use super::egress::EgressPolicy;
use super::engine::{EPOCH_TICK, PluginEngine};
use super::error::CallError;
use super::limits::PluginLimits;

/// How much of a crashed guest's stderr (its panic message) is kept for the error.
const STDERR_CAPTURE_BYTES: usize = 4096;

/// The store data of one call.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    cpu_ticks_left: u64,
    pub(crate) context: CallContext,
    pub(crate) http: PluginHttp,
    pub(crate) secrets: Arc<PluginSecrets>,
    pub(crate) log: PluginLog,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Refuses memory growth past the plugin's limit and remembers that it did, so the resulting trap
/// is reported as what it is.
struct MemoryLimiter {
    limit: usize,
    exceeded: bool,
    /// Core instances one plugin instance may create ([`EngineSettings::max_core_instances_per_plugin`]).
    ///
    /// [`EngineSettings::max_core_instances_per_plugin`]: super::EngineSettings::max_core_instances_per_plugin
    core_instances: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; no adapter needs more than a few thousand.
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        self.core_instances
    }
    fn tables(&self) -> usize {
        16
    }
    fn memories(&self) -> usize {
        4
    }
}

/// What a call needs from the loaded plugin.
pub(crate) struct CallTarget<'a> {
    pub engine: &'a PluginEngine,
    pub pre: &'a AdapterPre<CallState>,
    pub slug: &'a Arc<str>,
    pub limits: &'a PluginLimits,
    pub policy: &'a Arc<EgressPolicy>,
    pub client: &'a reqwest::Client,
    pub secrets: &'a Arc<PluginSecrets>,
    pub stats: &'a Arc<super::stats::CallStats>,
    /// How the plugin's connections may authenticate (where each kind's credential goes).
    pub auth: &'a super::description::AuthSchemes,
}

/// A boxed future borrowing the store for one export call.
pub(crate) type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl CallTarget<'_> {
    /// Runs `call` against a fresh instance. Every plugin call goes through here, so this span
    /// (`plugin.call`, with the slug and the WIT operation) wraps each one, its host HTTP included.
    #[tracing::instrument(name = "plugin.call", skip_all, fields(slug = %self.slug, operation = operation))]
    pub(crate) async fn run<R, F>(&self, context: CallContext, operation: &'static str, call: F) -> Result<R, CallError>
    where
        R: Send,
        F: for<'s> FnOnce(&'s mut Store<CallState>, &'s Exports) -> CallFuture<'s, R> + Send,
    {
        let wall = Duration::from_millis(self.limits.wall_ms);
        // Waiting for a slot counts against the wall clock too: a caller is never stuck forever.
        let permit = tokio::time::timeout(wall, self.engine.slots.clone().acquire_owned())
            .await
            .map_err(|_| CallError::Busy)?
            .map_err(|_| CallError::Busy)?;

        let started = std::time::Instant::now();
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let mut store = self.new_store(context, stderr.clone());
        let outcome = tokio::time::timeout(wall, async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            call(&mut store, &instance).await
        })
        .await;
        drop(permit);
        let took = started.elapsed();

        let state = store.data();
        if state.log.suppressed() > 0 {
            tracing::warn!(plugin = %self.slug, operation, suppressed = state.log.suppressed(), "plugin log lines suppressed");
        }
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Err(_elapsed) => Err(CallError::WallClockTimeout { timeout_ms: self.limits.wall_ms }),
            Ok(Err(err)) => Err(if state.limiter.exceeded {
                CallError::MemoryLimitExceeded { limit_bytes: self.limits.memory_bytes }
            } else {
                match err.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => CallError::CpuBudgetExceeded { budget_ms: self.limits.cpu_ms },
                    Some(trap) => CallError::Trap(describe_trap(*trap, &stderr.contents())),
                    None => CallError::Runtime(format!("{err:#}")),
                }
            }),
        };
        self.stats.record_call(operation, result.as_ref().map(|_| ()), took);
        if let Err(error) = &result {
            tracing::warn!(plugin = %self.slug, operation, error = %error, "plugin call failed");
        }
        result
    }

    fn new_store(&self, context: CallContext, stderr: MemoryOutputPipe) -> Store<CallState> {
        // No preopens, no environment, no arguments, no sockets: the guest can reach nothing
        // through WASI. stdout is discarded; stderr is captured (capped) for panic messages.
        let wasi =
            WasiCtx::builder().stderr(stderr).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
        let http = PluginHttp::new(
            self.slug.clone(),
            context.connection_label.clone(),
            self.policy.clone(),
            self.client.clone(),
            context.credentials.clone(),
            Arc::new(CredentialPlacement::for_kind(self.auth, context.auth_kind.or(self.auth.default_kind()))),
            context.pacer.clone(),
            self.limits,
            self.stats.clone(),
        );
        let log = PluginLog::new(self.slug, &context.connection_label, self.limits.log_lines_per_call);
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: usize::try_from(self.limits.memory_bytes).unwrap_or(usize::MAX),
                exceeded: false,
                core_instances: self.engine.settings().max_core_instances_per_plugin as usize,
            },
            cpu_ticks_left: self.limits.cpu_ticks(EPOCH_TICK.as_millis() as u64),
            context,
            http,
            secrets: self.secrets.clone(),
            log,
        };
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|state| &mut state.limiter);
        // The callback runs once per tick observed inside the guest. Time blocked in host calls
        // costs at most one tick, so this budgets CPU, not waiting.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if state.cpu_ticks_left == 0 {
                return Ok(UpdateDeadline::Interrupt);
            }
            state.cpu_ticks_left -= 1;
            // `yield_now` rather than `Yield`: tokio's LIFO slot would otherwise resume us at once.
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        });
        store
    }
}

fn describe_trap(trap: Trap, stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // Rust prints `thread '…' panicked at src/lib.rs:L:C:` and the message on the next line.
    if let Some(at) = lines.iter().position(|l| l.contains("panicked at")) {
        let location = lines[at].split("panicked at").nth(1).unwrap_or_default().trim().trim_end_matches(':');
        let message = lines.get(at + 1).copied().unwrap_or_default();
        return format!("{trap}: panicked at {location}: {message}");
    }
    match lines.last() {
        Some(last) => format!("{trap}: {last}"),
        None => trap.to_string(),
    }
}
