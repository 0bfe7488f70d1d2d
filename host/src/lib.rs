//! crmhost: connects a SaaS platform's workspaces to CRMs through sandboxed WebAssembly adapters.
//!
//! The binary (`main.rs`) is thin; everything lives here so tests and other binaries reuse it.
//!
//! # Glossary
//!
//! - **Workspace**: one tenant of the platform crmhost serves ([`domain::WorkspaceId`]); every
//!   record, integration, run and audit entry belongs to one.
//! - **Plugin** (or **adapter**): a WebAssembly component that speaks one CRM's API behind the WIT
//!   contract (`wit/`), sandboxed: it reaches the network, secrets and logs only through the host.
//! - **Slug**: a plugin's key (`salesforce`, `hubspot`; [`domain::PluginSlug`]), in URLs, files
//!   and configuration.
//! - **Integration**: a workspace's use of one plugin: its status, settings, schedule and links.
//! - **Connection**: an integration's credentials (OAuth tokens, sealed in the vault) and the
//!   facts of the CRM account they reach; connecting, refreshing and disconnecting manage it.
//! - **Entity**: a kind of record a plugin syncs (`contact`, `account`, `deal`;
//!   [`domain::EntityName`]).
//! - **Record**: the platform's side of a sync: a workspace's JSON object of one entity under its
//!   id ([`domain::RecordId`]), versioned on every change.
//! - **Link**: what ties a workspace record to its CRM record for one integration: the CRM id, the
//!   sync status, the last error and attempts, and the base.
//! - **Base**: the field values both sides agreed on at the last sync; the three-way merge compares
//!   each side with it to tell a change from a gap.
//! - **Mapping**: which workspace field syncs with which CRM field, which way, through which
//!   transform.
//! - **Run**: one push, pull or two-way sync of an integration, with its counts, per-record
//!   outcomes (items) and status in the sync history (the sync engine's `Job` executes it).
//! - **Conflict**: a record changed differently on both sides, waiting for a user when the
//!   integration's strategy is `manual_review`.

/// The HTTP API.
pub mod api;
/// API authentication: JWTs, roles, the workspace caller.
pub mod auth;
/// Configuration: flags, environment, the TOML file.
pub mod config;
/// Connecting workspaces to CRMs: the OAuth flow, credentials with refresh, test, disconnect.
pub mod connections;
pub mod console;
/// Newtype ids and parsed inputs.
pub mod domain;
/// `crmhost keys`: master-key generation and rotation of stored credentials.
pub mod keys;
pub mod markup;
/// Prometheus metrics: what `GET /metrics` shows operators.
pub mod metrics;
/// Outbound webhooks: signed events to the platform's endpoints, retried, logged, replayable.
pub mod notify;
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
