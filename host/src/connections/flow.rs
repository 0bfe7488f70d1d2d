//! The OAuth connect flow: [`Connections::start`] builds the authorize URL and remembers the
//! flow; [`Connections::complete`] takes the CRM's callback, exchanges the code, tests the
//! connection and stores the sealed tokens. Every outcome is audited.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::credentials::FixedToken;
use super::{ConnectionError, Connections};
use crate::domain::{PluginSlug, WorkspaceId};
use crate::oauth::{OAuthApp, TokenSet, state};
use crate::plugins::description::AuthKind;
use crate::plugins::{CallContext, LoadedPlugin, adapter_error_summary};
use crate::store::{AuditAction, Integration, NewConnection, NewOAuthState};
use crate::vault::Purpose;

/// The start of a flow: where to send the user.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ConnectStart {
    /// The CRM's consent page, with client id, redirect URI, scopes, state and PKCE challenge.
    pub authorize_url: String,
    /// The redirect URI the CRM will send the user back to.
    pub redirect_uri: String,
    /// When the flow stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// The query the CRM sends to the callback.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The authorization code.
    #[param(value_type = Option<String>)]
    pub code: Option<SecretString>,
    /// The state sent in the authorize URL.
    #[param(value_type = Option<String>)]
    pub state: Option<SecretString>,
    /// An OAuth error (`access_denied`).
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams").field("error", &self.error).finish_non_exhaustive()
    }
}

/// A connected integration, as the callback reports it.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The stored integration.
    pub integration: Integration,
    /// Where the user asked to go afterwards.
    pub return_url: Option<String>,
}

/// A failed callback, with where the user should be sent (when the flow was identified).
#[derive(Debug)]
pub struct CallbackFailure {
    /// What went wrong.
    pub error: ConnectionError,
    /// The flow's `return_url`, if the state was valid and it had one.
    pub return_url: Option<String>,
    /// The slug from the callback path.
    pub slug: String,
}

impl Connections {
    /// Starts connecting `workspace` to `slug` for `user`.
    #[tracing::instrument(name = "connect.start", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn start(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        user: &str,
        return_url: Option<&str>,
    ) -> Result<ConnectStart, ConnectionError> {
        let plugin = self.plugin(slug)?;
        let schemes = &plugin.description().auth;
        if schemes.oauth2().is_none() {
            match schemes.first_kind() {
                Some(AuthKind::ApiKey) => {
                    return Err(ConnectionError::BadInput(format!(
                        "`{slug}` connects with an API key: send `api_key` in the body"
                    )));
                }
                Some(AuthKind::Basic) => {
                    return Err(ConnectionError::BadInput(format!(
                        "`{slug}` connects with basic credentials: send `username` and `password` in the body"
                    )));
                }
                Some(AuthKind::Oauth2) | None => {}
            }
        }
        let app = OAuthApp::for_plugin(&plugin, &self.deps.public_url)?;
        let return_url = return_url.map(|u| self.check_return_url(u)).transpose()?;

        let (state_value, state_hash) = state::generate();
        let (authorize_url, verifier) = app.authorize_url(&state_value)?;
        let verifier = verifier
            .map(|v| self.deps.vault.seal(Purpose::PkceVerifier, workspace, slug, v.expose_secret().as_bytes()));
        let expires_at = Utc::now() + state::STATE_TTL;
        self.deps
            .store
            .insert_oauth_state(&NewOAuthState {
                state_hash,
                workspace: workspace.clone(),
                user_id: user.to_owned(),
                slug: slug.clone(),
                verifier,
                return_url: return_url.as_ref().map(Url::to_string),
                expires_at,
            })
            .await?;
        // Housekeeping on the way: expired flows are useless and their rows can go.
        if let Err(err) = self.deps.store.purge_expired_oauth_states(Utc::now()).await {
            tracing::warn!(error = %err, "could not purge expired OAuth states");
        }
        self.audit(
            workspace,
            user,
            AuditAction::IntegrationConnectStarted,
            slug,
            serde_json::json!({ "pkce": app.uses_pkce(), "redirect_uri": app.redirect_uri() }),
        )
        .await;
        Ok(ConnectStart {
            authorize_url: authorize_url.to_string(),
            redirect_uri: app.redirect_uri().to_owned(),
            expires_at,
        })
    }

    fn check_return_url(&self, raw: &str) -> Result<Url, ConnectionError> {
        let url =
            Url::parse(raw).map_err(|_| ConnectionError::BadInput("return_url must be an absolute URL".to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConnectionError::BadInput("return_url must be an http or https URL".to_owned()));
        }
        let origin = url.origin();
        if origin == self.deps.public_url.origin() || self.return_origins.contains(&origin) {
            Ok(url)
        } else {
            Err(ConnectionError::BadInput(format!(
                "return_url origin {} is not allowed; the operator lists allowed origins in CRMHOST_ALLOWED_RETURN_ORIGINS",
                origin.ascii_serialization()
            )))
        }
    }

    /// Completes a flow from the CRM's redirect.
    #[tracing::instrument(name = "connect.callback", skip_all, fields(slug = %raw_slug))]
    pub async fn complete(&self, raw_slug: &str, params: CallbackParams) -> Result<Connected, CallbackFailure> {
        let fail = |error: ConnectionError, return_url: Option<String>| CallbackFailure {
            error,
            return_url,
            slug: raw_slug.to_owned(),
        };
        let slug = PluginSlug::parse(raw_slug)
            .map_err(|_| fail(ConnectionError::UnknownPlugin(raw_slug.chars().take(64).collect()), None))?;
        let state_value = params
            .state
            .as_ref()
            .ok_or_else(|| fail(ConnectionError::BadInput("the callback has no `state` parameter".to_owned()), None))?;
        let pending = self
            .deps
            .store
            .consume_oauth_state(&state::hash_secret(state_value), &slug, Utc::now())
            .await
            .map_err(|e| fail(e.into(), None))?
            .map_err(|rejection| fail(rejection.into(), None))?;
        let return_url = pending.return_url.clone();
        let workspace = WorkspaceId::parse(&pending.workspace_id)
            .map_err(|e| fail(ConnectionError::BadInput(e), return_url.clone()))?;
        let user = pending.user_id.clone();

        let result = self.finish(&workspace, &slug, &user, &pending, &params).await;
        match result {
            Ok(integration) => {
                self.audit(
                    &workspace,
                    &user,
                    AuditAction::IntegrationConnected,
                    &slug,
                    serde_json::json!({
                        "account": integration.metadata.get("account"),
                        "scopes": integration.metadata.get("scopes"),
                    }),
                )
                .await;
                Ok(Connected { integration, return_url })
            }
            Err(error) => {
                tracing::warn!(workspace = %workspace, slug = %slug, error = %error, "OAuth callback failed");
                self.audit(
                    &workspace,
                    &user,
                    AuditAction::IntegrationConnectFailed,
                    &slug,
                    serde_json::json!({ "error": error.to_string() }),
                )
                .await;
                Err(fail(error, return_url))
            }
        }
    }

    async fn finish(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        user: &str,
        pending: &crate::store::PendingOAuth,
        params: &CallbackParams,
    ) -> Result<Integration, ConnectionError> {
        if let Some(error) = &params.error {
            return Err(ConnectionError::Denied {
                error: error.chars().take(64).collect(),
                description: params.error_description.as_ref().map(|d| d.chars().take(200).collect()),
            });
        }
        let code = params
            .code
            .as_ref()
            .ok_or_else(|| ConnectionError::BadInput("the callback has neither `code` nor `error`".to_owned()))?;
        let plugin = self.plugin(slug)?;
        let app = OAuthApp::for_plugin(&plugin, &self.deps.public_url)?;
        let verifier = match &pending.verifier {
            Some(sealed) => {
                let bytes = self
                    .deps
                    .vault
                    .open(Purpose::PkceVerifier, workspace, slug, sealed)
                    .map_err(|e| ConnectionError::Unreadable(e.to_string()))?;
                let text = String::from_utf8(bytes.expose_secret().clone())
                    .map_err(|_| ConnectionError::Unreadable("PKCE verifier".to_owned()))?;
                Some(SecretString::from(text))
            }
            None => None,
        };
        let grant = app.exchange_code(code, verifier.as_ref()).await?;

        let facts = grant.connection_facts();
        let account = match self.test_fresh(&plugin, workspace, &facts, &grant.tokens).await {
            Ok(account) => account,
            Err(err) => {
                // The CRM issued tokens we will not keep: hand them back rather than orphan them.
                let token = grant.tokens.refresh_token().unwrap_or(grant.tokens.access_token());
                if let Err(revoke) = app.revoke(token, "refresh_token").await {
                    tracing::warn!(error = %revoke, "could not revoke the tokens of a failed connect");
                }
                return Err(err);
            }
        };
        let metadata = serde_json::json!({
            "facts": facts,
            "account": account,
            "scopes": grant.scopes,
            "auth": AuthKind::Oauth2.as_str(),
        });
        let sealed = grant.tokens.seal(&self.deps.vault, workspace, slug);
        let integration = self
            .deps
            .store
            .save_connection(
                workspace,
                slug,
                &NewConnection {
                    sealed: &sealed,
                    expires_at: grant.expires_at,
                    metadata: &metadata,
                    connected_by: user,
                },
            )
            .await?;
        Ok(integration)
    }

    /// Runs test-connection with freshly issued tokens, before anything is stored. A plugin that
    /// does not implement it still connects, labelled by its name.
    async fn test_fresh(
        &self,
        plugin: &Arc<LoadedPlugin>,
        workspace: &WorkspaceId,
        facts: &BTreeMap<String, String>,
        tokens: &TokenSet,
    ) -> Result<serde_json::Value, ConnectionError> {
        let context = CallContext {
            connection_label: format!("{workspace}/{}", plugin.slug()),
            facts: facts.clone(),
            credentials: Some(Arc::new(FixedToken(tokens.access_token().clone()))),
            pacer: None,
            auth_kind: Some(AuthKind::Oauth2),
        };
        match plugin.test_connection(context).await {
            Ok(Ok(account)) => Ok(super::account_json(&account)),
            Ok(Err(crate::plugins::bindings::AdapterError::NotSupported(_))) => {
                Ok(serde_json::json!({ "id": null, "label": plugin.description().name, "user": null }))
            }
            Ok(Err(err)) => {
                let (kind, message) = adapter_error_summary(&err);
                Err(ConnectionError::TestFailed { kind, message })
            }
            Err(err) => Err(ConnectionError::TestFailed { kind: "plugin_failed", message: err.to_string() }),
        }
    }
}
