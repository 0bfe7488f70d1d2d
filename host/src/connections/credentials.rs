//! The credentials a plugin call runs with: [`ConnectionCredentials`] opens the stored tokens,
//! refreshes an access token that is about to expire (or was just refused with a 401), and keeps
//! refreshes single-flight — one per connection within a process ([`RefreshFlights`]) and, on
//! PostgreSQL, across processes (the row lock and version compare-and-set in the store).
//!
//! Order matters for rotating refresh tokens: the new token set is committed to the database
//! before the new access token is handed to anyone, so a crash cannot lose the only valid
//! refresh token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use url::Url;

use crate::domain::{PluginSlug, WorkspaceId};
use crate::oauth::{OAuthApp, OAuthError, TokenSet};
use crate::plugins::{CredentialError, CredentialSource, LoadedPlugin};
use crate::store::{AuditAction, AuditTarget, IntegrationStatus, NewAuditEntry, Store, StoredCredentials};
use crate::vault::Vault;

/// An access token expiring within this margin is refreshed before use.
pub const REFRESH_MARGIN: chrono::Duration = chrono::Duration::seconds(120);

/// A connection: (workspace, slug).
type ConnectionKey = (String, String);

/// One in-process lock per connection, so concurrent callers wait for a single refresh.
#[derive(Default)]
pub struct RefreshFlights {
    locks: Mutex<HashMap<ConnectionKey, Weak<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for RefreshFlights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshFlights").finish_non_exhaustive()
    }
}

impl RefreshFlights {
    /// Waits for and takes the connection's lock.
    pub async fn enter(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Forget locks nobody holds any more, so the map does not grow with every connection ever seen.
            locks.retain(|_, weak| weak.strong_count() > 0);
            let key = (workspace.as_str().to_owned(), slug.as_str().to_owned());
            match locks.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

/// What every connection's credentials share.
#[derive(Clone)]
pub(super) struct CredentialDeps {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub flights: Arc<RefreshFlights>,
    pub public_url: Url,
    pub notifier: Arc<crate::notify::Notifier>,
}

#[derive(Clone)]
struct Current {
    version: i64,
    tokens: TokenSet,
    expires_at: Option<DateTime<Utc>>,
}

/// The credentials of one workspace's connection to one CRM, for plugin calls.
pub struct ConnectionCredentials {
    deps: CredentialDeps,
    plugin: Arc<LoadedPlugin>,
    workspace: WorkspaceId,
    slug: PluginSlug,
    current: tokio::sync::Mutex<Option<Current>>,
}

impl std::fmt::Debug for ConnectionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionCredentials")
            .field("workspace", &self.workspace)
            .field("slug", &self.slug)
            .finish_non_exhaustive()
    }
}

fn unusable(err: impl std::fmt::Display) -> CredentialError {
    CredentialError(err.to_string())
}

impl ConnectionCredentials {
    pub(super) fn new(
        deps: CredentialDeps,
        plugin: Arc<LoadedPlugin>,
        workspace: WorkspaceId,
        slug: PluginSlug,
    ) -> Self {
        Self { deps, plugin, workspace, slug, current: tokio::sync::Mutex::new(None) }
    }

    fn open(&self, stored: &StoredCredentials) -> Result<Current, CredentialError> {
        match stored.status {
            IntegrationStatus::NeedsReauth => {
                return Err(CredentialError(format!("the `{}` connection needs to be authorized again", self.slug)));
            }
            IntegrationStatus::Disconnected => {
                return Err(CredentialError(format!("the workspace is not connected to `{}`", self.slug)));
            }
            IntegrationStatus::Connected | IntegrationStatus::Paused | IntegrationStatus::Error => {}
        }
        let sealed = stored
            .sealed
            .as_ref()
            .ok_or_else(|| CredentialError(format!("the workspace is not connected to `{}`", self.slug)))?;
        let tokens = TokenSet::open(&self.deps.vault, &self.workspace, &self.slug, sealed).map_err(unusable)?;
        Ok(Current { version: stored.version, tokens, expires_at: stored.expires_at })
    }

    async fn load(&self) -> Result<Current, CredentialError> {
        let stored = self.deps.store.get_credentials(&self.workspace, &self.slug).await.map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                CredentialError(format!("the workspace is not connected to `{}`", self.slug))
            }
            other => unusable(other),
        })?;
        self.open(&stored)
    }

    fn expiring(current: &Current) -> bool {
        current.expires_at.is_some_and(|at| at - REFRESH_MARGIN <= Utc::now())
    }

    /// Refreshes unless someone already replaced the tokens this caller saw (`seen_version`), in
    /// which case their tokens are used. `Ok(None)`: there is no refresh token.
    async fn refresh(&self, seen_version: i64) -> Result<Option<Current>, CredentialError> {
        let _flight = self.deps.flights.enter(&self.workspace, &self.slug).await;
        let lock = self.deps.store.lock_credentials(&self.workspace, &self.slug).await.map_err(unusable)?;
        if lock.current().version != seen_version {
            let stored = lock.current().clone();
            lock.release().await;
            return self.open(&stored).map(Some);
        }
        let current = match self.open(lock.current()) {
            Ok(current) => current,
            Err(err) => {
                lock.release().await;
                return Err(err);
            }
        };
        let Some(refresh_token) = current.tokens.refresh_token().cloned() else {
            lock.release().await;
            return Ok(None);
        };
        let app = match OAuthApp::for_plugin(&self.plugin, &self.deps.public_url) {
            Ok(app) => app,
            Err(err) => {
                lock.release().await;
                return Err(unusable(err));
            }
        };
        match app.refresh(&refresh_token).await {
            Ok(grant) => {
                let mut metadata = lock.current().metadata.clone();
                merge_facts(&mut metadata, &grant.facts);
                let sealed = grant.tokens.seal(&self.deps.vault, &self.workspace, &self.slug);
                let version = lock.replace(&sealed, grant.expires_at, &metadata).await.map_err(unusable)?;
                tracing::info!(workspace = %self.workspace, slug = %self.slug, version, "access token refreshed");
                Ok(Some(Current { version, tokens: grant.tokens, expires_at: grant.expires_at }))
            }
            Err(OAuthError::InvalidGrant(reason)) => {
                lock.mark_needs_reauth().await.map_err(unusable)?;
                tracing::warn!(workspace = %self.workspace, slug = %self.slug, "refresh token rejected; connection needs re-authorization");
                self.audit_refresh_failure("invalid_grant", &reason, IntegrationStatus::NeedsReauth).await;
                let scope = crate::notify::event::Scope { workspace: &self.workspace, slug: &self.slug };
                let why = format!("the CRM rejected the refresh token ({reason})");
                self.deps.notifier.emit(vec![crate::notify::Event::needs_reauth(scope, &why)]).await;
                Err(CredentialError(format!(
                    "the CRM rejected the refresh token ({reason}); the `{}` connection needs to be authorized again",
                    self.slug
                )))
            }
            Err(err) => {
                lock.release().await;
                tracing::warn!(workspace = %self.workspace, slug = %self.slug, error = %err, "token refresh failed; will retry later");
                let kind = if err.is_transient() { "transient" } else { "rejected" };
                self.audit_refresh_failure(kind, &err.to_string(), IntegrationStatus::Connected).await;
                Err(unusable(err))
            }
        }
    }

    async fn audit_refresh_failure(&self, reason: &str, detail: &str, status: IntegrationStatus) {
        let details = serde_json::json!({ "reason": reason, "detail": detail, "status": status });
        let (action, target) = (AuditAction::IntegrationRefreshFailed, AuditTarget::Integration(self.slug.clone()));
        self.deps.store.audit(NewAuditEntry::in_workspace(&self.workspace, "system", action, target, details)).await;
    }
}

/// Puts token-response facts (a new `instance_url`, say) into the metadata's `facts`.
pub(super) fn merge_facts(metadata: &mut serde_json::Value, facts: &std::collections::BTreeMap<String, String>) {
    if facts.is_empty() {
        return;
    }
    if !metadata.is_object() {
        *metadata = serde_json::json!({});
    }
    let Some(object) = metadata.as_object_mut() else { return };
    let stored = object.entry("facts").or_insert_with(|| serde_json::json!({}));
    if !stored.is_object() {
        *stored = serde_json::json!({});
    }
    if let Some(stored) = stored.as_object_mut() {
        for (k, v) in facts {
            stored.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
}

#[async_trait::async_trait]
impl CredentialSource for ConnectionCredentials {
    async fn access_token(&self) -> Result<Option<SecretString>, CredentialError> {
        let mut current = self.current.lock().await;
        let mut loaded = match current.take() {
            Some(c) => c,
            None => self.load().await?,
        };
        if Self::expiring(&loaded)
            && let Some(refreshed) = self.refresh(loaded.version).await?
        {
            loaded = refreshed;
        }
        let token = loaded.tokens.access_token().clone();
        *current = Some(loaded);
        Ok(Some(token))
    }

    async fn refresh_after_unauthorized(&self) -> Result<Option<SecretString>, CredentialError> {
        let mut current = self.current.lock().await;
        let seen = match current.as_ref() {
            Some(c) => c.version,
            None => self.load().await?.version,
        };
        match self.refresh(seen).await? {
            Some(refreshed) => {
                let token = refreshed.tokens.access_token().clone();
                *current = Some(refreshed);
                Ok(Some(token))
            }
            None => Ok(None),
        }
    }
}

/// A fixed credential, never refreshed: the callback tests a connection with it before storing
/// it, and `crmhost plugin check --against` calls with one.
pub struct FixedToken(pub SecretString);

#[async_trait::async_trait]
impl CredentialSource for FixedToken {
    async fn access_token(&self) -> Result<Option<SecretString>, CredentialError> {
        Ok(Some(self.0.clone()))
    }

    async fn refresh_after_unauthorized(&self) -> Result<Option<SecretString>, CredentialError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_merge_into_metadata_without_dropping_others() {
        let mut metadata = serde_json::json!({ "account": { "id": "1" }, "facts": { "id": "x", "instance_url": "a" } });
        let facts = [("instance_url".to_owned(), "b".to_owned())].into_iter().collect();
        merge_facts(&mut metadata, &facts);
        assert_eq!(metadata["facts"]["instance_url"], "b");
        assert_eq!(metadata["facts"]["id"], "x");
        assert_eq!(metadata["account"]["id"], "1");
    }

    #[tokio::test]
    async fn one_flight_per_connection() {
        let flights = Arc::new(RefreshFlights::default());
        let ws = WorkspaceId::parse("ws").unwrap();
        let (a, b) = (PluginSlug::parse("crm-a").unwrap(), PluginSlug::parse("crm-b").unwrap());
        let held = flights.enter(&ws, &a).await;
        // Another connection is not blocked...
        let _other = tokio::time::timeout(std::time::Duration::from_millis(100), flights.enter(&ws, &b)).await.unwrap();
        // ...the same one is, until the holder lets go.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), flights.enter(&ws, &a)).await.is_err());
        drop(held);
        tokio::time::timeout(std::time::Duration::from_millis(100), flights.enter(&ws, &a)).await.unwrap();
    }
}
