//! The secrets that authenticate deliveries a CRM cannot sign: made (or rotated) and revoked by a
//! workspace admin, checked on every delivery. Rotating replaces the digest, so the old secret
//! stops working at once.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::{SyncEngine, SyncError};
use crate::auth::webhook_secret;
use crate::domain::{PluginSlug, WorkspaceId};
use crate::store::{AuditAction, AuditTarget, NewAuditEntry, StoreResultExt};

/// A secret just made: shown to the caller once.
#[derive(Debug)]
pub struct IssuedWebhookSecret {
    /// The secret.
    pub secret: SecretString,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// What is known about an integration's secret (never the secret).
#[derive(Debug, Clone)]
pub struct WebhookSecretInfo {
    /// When it was made or last rotated.
    pub created_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: String,
}

impl SyncEngine {
    /// Makes the integration's webhook secret, replacing any before it.
    #[tracing::instrument(name = "sync.rotate_webhook_secret", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn rotate_webhook_secret(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        user: &str,
    ) -> Result<IssuedWebhookSecret, SyncError> {
        self.webhook_integration(workspace, slug).await?;
        let made = webhook_secret::generate();
        let created_at = self.store.put_webhook_secret(workspace, slug, &made.sha256, user).await?;
        let target = AuditTarget::Integration(slug.clone());
        self.store
            .audit(NewAuditEntry::in_workspace(
                workspace,
                user,
                AuditAction::WebhookSecretRotated,
                target,
                serde_json::json!({}),
            ))
            .await;
        Ok(IssuedWebhookSecret { secret: made.secret, created_at })
    }

    /// When the integration's secret was made, if it has one.
    pub async fn webhook_secret_info(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
    ) -> Result<Option<WebhookSecretInfo>, SyncError> {
        self.webhook_integration(workspace, slug).await?;
        let stored = self.store.webhook_secret(workspace, slug).await?;
        Ok(stored.map(|s| WebhookSecretInfo { created_at: s.created_at, created_by: s.created_by }))
    }

    /// Removes the integration's secret: deliveries are refused until a new one is made.
    pub async fn revoke_webhook_secret(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        user: &str,
    ) -> Result<bool, SyncError> {
        self.webhook_integration(workspace, slug).await?;
        let removed = self.store.delete_webhook_secret(workspace, slug).await?;
        if removed {
            let target = AuditTarget::Integration(slug.clone());
            self.store
                .audit(NewAuditEntry::in_workspace(
                    workspace,
                    user,
                    AuditAction::WebhookSecretRevoked,
                    target,
                    serde_json::json!({}),
                ))
                .await;
        }
        Ok(removed)
    }

    /// Checks a delivery's secret. Every failure reads the same, so callers learn nothing about
    /// which workspaces exist or have a secret.
    pub async fn check_webhook_secret(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        given: &str,
    ) -> Result<(), SyncError> {
        let refused = || SyncError::Unauthorized("the webhook secret does not match".to_owned());
        let stored = self.store.webhook_secret(workspace, slug).await?.ok_or_else(refused)?;
        if webhook_secret::matches(given, &stored.secret_sha256) { Ok(()) } else { Err(refused()) }
    }

    /// The integration, which must exist. (Any plugin may have a secret: its `parse-webhook` reads
    /// what arrives, and one that has none refuses every delivery.)
    async fn webhook_integration(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> Result<(), SyncError> {
        self.plugin(slug)?;
        self.store
            .get_integration(workspace, slug)
            .await
            .or_not_found(|| SyncError::NotFound(format!("`{slug}` is not connected to this workspace")))?;
        Ok(())
    }
}
