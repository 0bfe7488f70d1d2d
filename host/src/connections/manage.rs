//! Using and ending a connection: the call context a plugin call runs with, test-connection on
//! demand, and disconnect (revoke at the CRM, delete the tokens).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::credentials::ConnectionCredentials;
use super::{ConnectionError, Connections};
use crate::domain::{PluginSlug, WorkspaceId};
use crate::oauth::{OAuthApp, TokenSet};
use crate::plugins::description::AuthKind;
use crate::plugins::{CallContext, LoadedPlugin, adapter_error_summary};
use crate::store::{AuditAction, IntegrationStatus, StoreResultExt};

/// The outcome of a test-connection.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestReport {
    /// Whether the CRM accepted the connection.
    pub ok: bool,
    /// The account, when it did.
    #[schema(value_type = Option<Object>)]
    pub account: Option<serde_json::Value>,
    /// What went wrong, when it did not: `{kind, message}`.
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
}

/// The outcome of a disconnect.
#[derive(Debug, Clone, Serialize)]
pub struct DisconnectReport {
    /// Whether the CRM confirmed the revocation.
    pub revoked: bool,
    /// Why revocation did not happen (tokens are deleted either way).
    pub revoke_error: Option<String>,
}

impl Connections {
    /// A connection's stored credentials row; `NotConnected` when there is none.
    async fn stored_credentials(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
    ) -> Result<crate::store::StoredCredentials, ConnectionError> {
        self.deps
            .store
            .get_credentials(workspace, slug)
            .await
            .or_not_found(|| ConnectionError::NotConnected(slug.to_string()))
    }

    /// The plugin and the context to call it with for a workspace's connection: its facts and
    /// credentials that refresh themselves.
    pub async fn call_context(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
    ) -> Result<(Arc<LoadedPlugin>, CallContext), ConnectionError> {
        let plugin = self.plugin(slug)?;
        let stored = self.stored_credentials(workspace, slug).await?;
        match stored.status {
            IntegrationStatus::NeedsReauth => return Err(ConnectionError::NeedsReauth(slug.to_string())),
            IntegrationStatus::Disconnected => return Err(ConnectionError::NotConnected(slug.to_string())),
            IntegrationStatus::Connected | IntegrationStatus::Paused | IntegrationStatus::Error => {}
        }
        if stored.sealed.is_none() {
            return Err(ConnectionError::NotConnected(slug.to_string()));
        }
        let facts: BTreeMap<String, String> = stored
            .metadata
            .get("facts")
            .and_then(|f| f.as_object())
            .map(|o| o.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect())
            .unwrap_or_default();
        let credentials =
            ConnectionCredentials::new(self.deps.clone(), plugin.clone(), workspace.clone(), slug.clone());
        // One pacer per CRM account: workspaces connected to the same account share its limits.
        let account = stored
            .metadata
            .pointer("/account/id")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_else(|| format!("workspace:{workspace}"));
        let pacer = self.pacers.for_account(&account, plugin.description());
        let context = CallContext {
            connection_label: format!("{workspace}/{slug}"),
            facts,
            credentials: Some(Arc::new(credentials)),
            pacer: Some(pacer),
            auth_kind: connected_with(&stored.metadata),
        };
        Ok((plugin, context))
    }

    /// Runs the plugin's test-connection now, refreshing the token if needed.
    #[tracing::instrument(name = "connect.test", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn test(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> Result<TestReport, ConnectionError> {
        let (plugin, context) = self.call_context(workspace, slug).await?;
        let report = match plugin.test_connection(context).await {
            Ok(Ok(account)) => {
                let account = super::account_json(&account);
                self.deps.store.refresh_integration_account(workspace, slug, &account).await?;
                TestReport { ok: true, account: Some(account), error: None }
            }
            Ok(Err(err)) => {
                let (kind, message) = adapter_error_summary(&err);
                TestReport {
                    ok: false,
                    account: None,
                    error: Some(serde_json::json!({ "kind": kind, "message": message })),
                }
            }
            Err(err) => TestReport {
                ok: false,
                account: None,
                error: Some(serde_json::json!({ "kind": "plugin_failed", "message": err.to_string() })),
            },
        };
        // A refresh during the test may have found the refresh token dead: report that plainly.
        if !report.ok
            && let Ok(stored) = self.deps.store.get_credentials(workspace, slug).await
            && stored.status == IntegrationStatus::NeedsReauth
        {
            return Err(ConnectionError::NeedsReauth(slug.to_string()));
        }
        Ok(report)
    }

    /// Revokes the tokens at the CRM (best effort), deletes them and marks the integration
    /// disconnected.
    #[tracing::instrument(name = "connect.disconnect", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn disconnect(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        user: &str,
    ) -> Result<DisconnectReport, ConnectionError> {
        // Not while a refresh of this connection is in flight here: it would write tokens back.
        let _flight = self.deps.flights.enter(workspace, slug).await;
        let stored = self.stored_credentials(workspace, slug).await?;
        let report = match &stored.sealed {
            None => DisconnectReport { revoked: false, revoke_error: Some("no stored tokens".to_owned()) },
            Some(sealed) => self.revoke(workspace, slug, sealed, connected_with(&stored.metadata)).await,
        };
        self.deps.store.clear_credentials(workspace, slug).await?;
        self.audit(
            workspace,
            user,
            AuditAction::IntegrationDisconnected,
            slug,
            serde_json::json!({ "revoked": report.revoked, "revoke_error": report.revoke_error }),
        )
        .await;
        Ok(report)
    }

    async fn revoke(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        sealed: &crate::vault::Sealed,
        kind: Option<AuthKind>,
    ) -> DisconnectReport {
        let failed = |why: String| DisconnectReport { revoked: false, revoke_error: Some(why) };
        let tokens = match TokenSet::open(&self.deps.vault, workspace, slug, sealed) {
            Ok(tokens) => tokens,
            Err(err) => return failed(err.to_string()),
        };
        let plugin = match self.plugin(slug) {
            Ok(plugin) => plugin,
            Err(err) => return failed(err.to_string()),
        };
        if kind.or(plugin.description().auth.default_kind()).is_some_and(AuthKind::is_entered) {
            return failed("an API key or password is revoked in the CRM itself; crmhost deleted its copy".to_owned());
        }
        let app = match OAuthApp::for_plugin(&plugin, &self.deps.public_url) {
            Ok(app) => app,
            Err(err) => return failed(err.to_string()),
        };
        // Revoking the refresh token ends the whole grant where the CRM supports it.
        let (token, hint) = match tokens.refresh_token() {
            Some(refresh) => (refresh, "refresh_token"),
            None => (tokens.access_token(), "access_token"),
        };
        match app.revoke(token, hint).await {
            Ok(true) => DisconnectReport { revoked: true, revoke_error: None },
            Ok(false) => failed("the CRM has no revocation endpoint".to_owned()),
            Err(err) => failed(err.to_string()),
        }
    }
}

/// How a stored connection authenticated (`metadata.auth`); `None` for connections made before
/// it was recorded, which used the plugin's default.
fn connected_with(metadata: &serde_json::Value) -> Option<AuthKind> {
    metadata.get("auth").and_then(serde_json::Value::as_str).and_then(AuthKind::parse)
}
