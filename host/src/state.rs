//! [`AppState`]: what every request handler can reach. Cheap to clone (handles and `Arc`s).

use std::sync::Arc;

use secrecy::SecretString;

use crate::plugins::PluginRegistry;
use crate::store::Store;

/// Shared application state.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The plugin registry.
    pub plugins: Arc<PluginRegistry>,
    /// The operator token for `/api/v1/admin/*`; `None` disables the admin API.
    pub admin_token: Option<Arc<SecretString>>,
    /// Seals and opens stored credentials.
    pub vault: Arc<crate::vault::Vault>,
    /// Verifies workspace bearer tokens; `None` when no key is configured.
    pub jwt: Option<Arc<crate::auth::JwtVerifier>>,
    /// Connecting workspaces to CRMs, and their credentials.
    pub connections: Arc<crate::connections::Connections>,
    /// The sync engine: runs, mappings, settings, conflicts.
    pub sync: Arc<crate::sync::SyncEngine>,
    /// Outbound webhooks: endpoints, deliveries.
    pub notifier: Arc<crate::notify::Notifier>,
    /// What `GET /metrics` shows operators.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The largest file attached to a CRM record the API serves.
    pub max_file_bytes: u64,
    /// The emulators' addresses, in sandbox mode.
    pub sandbox: Option<Arc<crate::sandbox::SandboxInfo>>,
    /// The console's branding.
    pub console: Arc<crate::console::ConsoleBranding>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.backend())
            .field("admin_api", &self.admin_token.is_some())
            .finish_non_exhaustive()
    }
}
