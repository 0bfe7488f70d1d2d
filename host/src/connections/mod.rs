//! Connecting workspaces to CRMs and using those connections: the OAuth connect flow, credentials
//! an admin enters (API keys, basic), stored credentials with single-flight refresh,
//! test-connection and disconnect. The API layer calls
//! these; they own the rules, the audit entries and the errors.

mod credentials;
mod entered;
mod error;
mod flow;
mod manage;

use std::sync::Arc;

use url::{Origin, Url};

use credentials::CredentialDeps;
pub use credentials::{ConnectionCredentials, FixedToken, REFRESH_MARGIN, RefreshFlights};
pub use entered::EnteredCredentials;
pub use error::ConnectionError;
pub use flow::{CallbackFailure, CallbackParams, ConnectStart, Connected};
pub use manage::{DisconnectReport, TestReport};

use crate::domain::{PluginSlug, WorkspaceId};
use crate::plugins::bindings::adapter::AccountInfo;
use crate::plugins::pacing::Pacers;
use crate::plugins::{LoadedPlugin, PluginRegistry};
use crate::store::{AuditAction, AuditTarget, NewAuditEntry, Store};
use crate::vault::Vault;

/// The connection service.
pub struct Connections {
    deps: CredentialDeps,
    plugins: Arc<PluginRegistry>,
    return_origins: Vec<Origin>,
    pacers: Pacers,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").field("public_url", &self.deps.public_url.as_str()).finish_non_exhaustive()
    }
}

impl Connections {
    /// A service over the store, vault and plugins; `public_url` is where browsers reach crmhost,
    /// `return_origins` the extra origins a `return_url` may point at; `notifier` tells the
    /// platform when a connection needs to be authorized again.
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        plugins: Arc<PluginRegistry>,
        public_url: Url,
        return_origins: Vec<Origin>,
        notifier: Arc<crate::notify::Notifier>,
    ) -> Self {
        let flights = Arc::new(RefreshFlights::default());
        let deps = CredentialDeps { store, vault, flights, public_url, notifier };
        Self { deps, plugins, return_origins, pacers: Pacers::default() }
    }

    /// Where browsers reach crmhost.
    pub fn public_url(&self) -> &Url {
        &self.deps.public_url
    }

    /// The plugin registry.
    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.plugins
    }

    /// The pacers of every CRM account this process calls.
    pub fn pacers(&self) -> &Pacers {
        &self.pacers
    }

    fn plugin(&self, slug: &PluginSlug) -> Result<Arc<LoadedPlugin>, ConnectionError> {
        self.plugins.get(slug).ok_or_else(|| ConnectionError::UnknownPlugin(slug.to_string()))
    }

    async fn audit(
        &self,
        workspace: &WorkspaceId,
        actor: &str,
        action: AuditAction,
        slug: &PluginSlug,
        details: serde_json::Value,
    ) {
        let target = AuditTarget::Integration(slug.clone());
        self.deps.store.audit(NewAuditEntry::in_workspace(workspace, actor, action, target, details)).await;
    }
}

/// An account as stored in metadata and shown by the API.
fn account_json(account: &AccountInfo) -> serde_json::Value {
    let details: serde_json::Map<String, serde_json::Value> =
        account.details.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    serde_json::json!({
        "id": account.account_id,
        "label": account.label,
        "user": account.user,
        "details": details,
    })
}
