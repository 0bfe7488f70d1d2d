//! The plugin host: sandboxed WebAssembly adapters behind the `crmhost:adapter` contract.
//!
//! Lifecycle of a plugin:
//! 1. [`loader::PluginLoader`] compiles a component on a blocking thread (or loads it from the
//!    [`cache`]), checks its imports, links it against the host imports in [`capability`], calls
//!    `describe()` in a throwaway store and validates the answer ([`description`]).
//! 2. [`registry::PluginRegistry`] swaps the new version in atomically; calls in flight keep the
//!    version they started on. [`watcher`] triggers reloads when the plugins directory changes.
//! 3. Each call ([`runtime`]) gets a fresh store with a memory limit, a CPU budget and a wall-clock
//!    timeout, bound to one connection ([`context`]); the [`egress`] policy governs `http.send`.

pub mod bindings;
pub mod branding;
mod bundled;
pub mod cache;
pub mod capability;
pub mod check;
pub mod context;
pub mod description;
mod download;
pub mod egress;
pub mod engine;
pub mod error;
pub mod limits;
pub mod loaded;
pub mod loader;
pub mod operator;
pub mod pacing;
pub mod registry;
pub mod runtime;
pub mod scaffold;
pub mod stats;
pub mod watcher;

pub use bundled::bundled;
pub use context::{CallContext, CredentialError, CredentialSource};
pub use description::PluginDescription;
pub use download::DownloadError;
pub use engine::{EngineSettings, PluginEngine};
pub use error::{CallError, LoadError, adapter_error_summary};
pub use limits::PluginLimits;
pub use loaded::{CallResult, LoadedPlugin, PluginSource};
pub use loader::{CONTRACT_VERSION, PluginLoader, sha256_hex};
pub use operator::OperatorPluginConfig;
pub use registry::{BundledPlugin, PluginRegistry, PluginStatus, ReloadReport};
