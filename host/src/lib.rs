//! crmhost: connects a SaaS platform's workspaces to CRMs through sandboxed WebAssembly adapters.
//!
//! The binary (`main.rs`) is thin; everything lives here so tests and other binaries reuse it.

/// The HTTP API.
pub mod api;
/// API authentication: JWTs, roles, the workspace caller.
pub mod auth;
/// Configuration: flags, environment, the TOML file.
pub mod config;
/// Connecting workspaces to CRMs: the OAuth flow, credentials with refresh, test, disconnect.
pub mod connections;
/// Newtype ids and parsed inputs.
pub mod domain;
/// `crmhost keys`: master-key generation and rotation of stored credentials.
pub mod keys;
/// OAuth 2.0 as the host does it: state, authorize URL, code exchange, refresh, revocation.
pub mod oauth;
/// The plugin host: engine, runtime, capabilities, registry, hot reload.
pub mod plugins;
/// `--sandbox`: in-process CRM emulators wired to the bundled plugins.
pub mod sandbox;
/// Building and running the server.
pub mod startup;
/// Shared request-handler state.
pub mod state;
/// All SQL: one API over SQLite and PostgreSQL.
pub mod store;
/// The sync engine: push, pull and two-way runs, mappings, merge, conflicts.
pub mod sync;
/// Logging set-up.
pub mod telemetry;
/// The token vault: AES-256-GCM with per-workspace keys.
pub mod vault;
