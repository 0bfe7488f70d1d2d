//! Connecting with credentials an admin types in: an API key, or a user name and password, for
//! plugins whose auth scheme is `api-key` or `basic`. [`Connections::connect_entered`] checks the
//! input's shape, runs the plugin's test-connection with it (nothing is stored if the CRM refuses
//! it), then seals and stores it exactly like OAuth tokens. Every outcome is audited; the secret
//! is never logged, audited or echoed.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::credentials::FixedToken;
use super::{ConnectionError, Connections};
use crate::domain::{PluginSlug, WorkspaceId};
use crate::oauth::TokenSet;
use crate::plugins::description::{AuthDescription, AuthKind, AuthSchemes};
use crate::plugins::{CallContext, LoadedPlugin, adapter_error_summary};
use crate::store::{AuditAction, Integration, NewConnection};

/// The longest API key or password accepted.
const MAX_SECRET_CHARS: usize = 4096;
/// The longest user name accepted.
const MAX_USERNAME_CHARS: usize = 256;

/// Credentials as an admin entered them.
pub enum EnteredCredentials {
    /// An API key (or personal / company token).
    ApiKey(SecretString),
    /// HTTP Basic credentials.
    Basic {
        /// The user name (not secret, but not logged either).
        username: String,
        /// The password.
        password: SecretString,
    },
}

impl std::fmt::Debug for EnteredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ApiKey(_) => "EnteredCredentials::ApiKey(<redacted>)",
            Self::Basic { .. } => "EnteredCredentials::Basic(<redacted>)",
        })
    }
}

impl EnteredCredentials {
    fn kind(&self) -> AuthKind {
        match self {
            Self::ApiKey(_) => AuthKind::ApiKey,
            Self::Basic { .. } => AuthKind::Basic,
        }
    }

    /// Checks the input against the plugin's schemes and returns the secret the host attaches
    /// (`user:password` for Basic, which the HTTP capability encodes).
    fn into_secret(self, slug: &PluginSlug, schemes: &AuthSchemes) -> Result<SecretString, ConnectionError> {
        if schemes.of(self.kind()).is_none() {
            return Err(ConnectionError::BadInput(match schemes.first_kind() {
                None => format!("`{slug}` needs no credentials: send none"),
                Some(_) => format!("`{slug}` does not take {}: it connects with {}", self.words(), offered(schemes)),
            }));
        }
        match self {
            Self::ApiKey(key) => {
                check_secret("api_key", key.expose_secret())?;
                Ok(key)
            }
            Self::Basic { username, password } => {
                let name_ok = !username.is_empty()
                    && username.chars().count() <= MAX_USERNAME_CHARS
                    && !username.contains(':')
                    && !username.chars().any(char::is_control);
                if !name_ok {
                    return Err(ConnectionError::BadInput(format!(
                        "username must be 1–{MAX_USERNAME_CHARS} characters without `:` or control characters"
                    )));
                }
                check_secret("password", password.expose_secret())?;
                Ok(SecretString::from(format!("{username}:{}", password.expose_secret())))
            }
        }
    }

    fn words(&self) -> &'static str {
        match self {
            Self::ApiKey(_) => "an `api_key`",
            Self::Basic { .. } => "`username` and `password`",
        }
    }
}

/// What a plugin accepts, in the connect body's words.
fn offered(schemes: &AuthSchemes) -> String {
    let words: Vec<String> = schemes
        .all()
        .iter()
        .map(|s| match s {
            AuthDescription::Oauth2(_) => {
                "OAuth (send no credentials; the answer's `authorize_url` is where the user grants access)".to_owned()
            }
            AuthDescription::ApiKey(k) => format!("`api_key` ({})", k.label),
            AuthDescription::Basic(_) => "`username` and `password`".to_owned(),
        })
        .collect();
    words.join(" or ")
}

/// A key or password: present, bounded, and sendable (no control characters: it goes in a header).
fn check_secret(what: &str, secret: &str) -> Result<(), ConnectionError> {
    let trimmed = secret.trim();
    if trimmed.is_empty() || secret.chars().count() > MAX_SECRET_CHARS || secret.chars().any(char::is_control) {
        return Err(ConnectionError::BadInput(format!(
            "{what} must be 1–{MAX_SECRET_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

impl Connections {
    /// Connects `workspace` to `slug` with credentials an admin entered: tested first, then
    /// sealed and stored (replacing any earlier connection).
    #[tracing::instrument(name = "connect.entered", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn connect_entered(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        user: &str,
        entered: EnteredCredentials,
    ) -> Result<Integration, ConnectionError> {
        let plugin = self.plugin(slug)?;
        let kind = entered.kind();
        let secret = entered.into_secret(slug, &plugin.description().auth)?;
        match self.store_entered(&plugin, workspace, slug, user, kind, secret).await {
            Ok(integration) => {
                let details =
                    serde_json::json!({ "account": integration.metadata.get("account"), "auth": kind.as_str() });
                self.audit(workspace, user, AuditAction::IntegrationConnected, slug, details).await;
                Ok(integration)
            }
            Err(error) => {
                tracing::warn!(error = %error, "connecting with entered credentials failed");
                let details = serde_json::json!({ "error": error.to_string(), "auth": kind.as_str() });
                self.audit(workspace, user, AuditAction::IntegrationConnectFailed, slug, details).await;
                Err(error)
            }
        }
    }

    async fn store_entered(
        &self,
        plugin: &Arc<LoadedPlugin>,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        user: &str,
        kind: AuthKind,
        secret: SecretString,
    ) -> Result<Integration, ConnectionError> {
        let account = self.test_entered(plugin, workspace, kind, &secret).await?;
        let metadata = serde_json::json!({ "facts": {}, "account": account, "scopes": [], "auth": kind.as_str() });
        let sealed = TokenSet::new(secret, None).seal(&self.deps.vault, workspace, slug);
        let connection = NewConnection { sealed: &sealed, expires_at: None, metadata: &metadata, connected_by: user };
        Ok(self.deps.store.save_connection(workspace, slug, &connection).await?)
    }

    /// Runs test-connection with the entered secret. The CRM refusing it is the admin's input
    /// being wrong ([`ConnectionError::CredentialsRejected`]), not a failed service.
    async fn test_entered(
        &self,
        plugin: &Arc<LoadedPlugin>,
        workspace: &WorkspaceId,
        kind: AuthKind,
        secret: &SecretString,
    ) -> Result<serde_json::Value, ConnectionError> {
        let context = CallContext {
            connection_label: format!("{workspace}/{}", plugin.slug()),
            facts: Default::default(),
            credentials: Some(Arc::new(FixedToken(secret.clone()))),
            pacer: None,
            auth_kind: Some(kind),
        };
        match plugin.test_connection(context).await {
            Ok(Ok(account)) => Ok(super::account_json(&account)),
            // Nothing proves the key works; refuse rather than keep an unverified secret.
            Ok(Err(crate::plugins::bindings::AdapterError::NotSupported(_))) => {
                Err(ConnectionError::BadInput(format!(
                    "`{}` cannot verify entered credentials (it does not implement test-connection)",
                    plugin.slug()
                )))
            }
            Ok(Err(err)) => {
                let (kind, message) = adapter_error_summary(&err);
                match kind {
                    "unauthorized" | "forbidden" => Err(ConnectionError::CredentialsRejected { kind, message }),
                    _ => Err(ConnectionError::TestFailed { kind, message }),
                }
            }
            Err(err) => Err(ConnectionError::TestFailed { kind: "plugin_failed", message: err.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::description::{ApiKeyDescription, ApiKeyPlacement, BasicDescription};

    fn api_key() -> AuthDescription {
        AuthDescription::ApiKey(ApiKeyDescription {
            placement: ApiKeyPlacement::Header { name: "x-api-token".to_owned(), prefix: String::new() },
            label: "API token".to_owned(),
            help: String::new(),
        })
    }

    fn basic() -> AuthDescription {
        AuthDescription::Basic(BasicDescription {
            username_label: "Email".to_owned(),
            password_label: "API token".to_owned(),
            help: String::new(),
        })
    }

    fn schemes(list: Vec<AuthDescription>) -> AuthSchemes {
        AuthSchemes::new(list)
    }

    fn message(result: Result<SecretString, ConnectionError>) -> String {
        match result {
            Ok(_) => "accepted".to_owned(),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn entered_credentials_must_fit_the_plugins_scheme_and_be_sendable() {
        let slug = PluginSlug::parse("acme").unwrap();
        let key = |k: &str| EnteredCredentials::ApiKey(SecretString::from(k.to_owned()));
        let keyed = schemes(vec![api_key()]);
        assert_eq!(message(key("abc123").into_secret(&slug, &keyed)), "accepted");
        for bad in ["", "   ", "line\r\nx-injected: 1", &"k".repeat(MAX_SECRET_CHARS + 1)] {
            assert!(message(key(bad).into_secret(&slug, &keyed)).contains("api_key must be"), "{bad:?}");
        }
        let with_login = schemes(vec![basic()]);
        assert!(
            message(key("abc").into_secret(&slug, &with_login)).contains("connects with `username` and `password`")
        );
        let login = |u: &str| EnteredCredentials::Basic { username: u.to_owned(), password: SecretString::from("pw") };
        let secret = login("jane@acme.test").into_secret(&slug, &with_login).unwrap();
        assert_eq!(secret.expose_secret(), "jane@acme.test:pw");
        assert!(message(login("jane:x").into_secret(&slug, &with_login)).contains("without `:`"));
        assert!(message(login("jane").into_secret(&slug, &keyed)).contains("`api_key` (API token)"));
        assert!(message(key("abc").into_secret(&slug, &schemes(vec![]))).contains("needs no credentials"));
        // A plugin offering both takes either.
        let both = schemes(vec![basic(), api_key()]);
        assert_eq!(message(key("abc").into_secret(&slug, &both)), "accepted");
        assert_eq!(message(login("jane").into_secret(&slug, &both)), "accepted");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let entered = EnteredCredentials::Basic { username: "jane".to_owned(), password: SecretString::from("pw-123") };
        let shown = format!("{entered:?}");
        assert!(!shown.contains("pw-123") && !shown.contains("jane"), "{shown}");
    }
}
