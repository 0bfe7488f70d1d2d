//! What a plugin call runs for: one connection's non-secret facts and, through a seam, its
//! credentials. The plugin sees the facts via `connection.get`; the credentials only ever reach
//! the host's HTTP capability, which attaches them to outbound requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;

/// Supplies (and refreshes) the bearer token of one connection. Implemented by the token vault;
/// the plugin layer only asks for a token and, after a 401, for a fresh one.
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync {
    /// The current access token, if the connection has one.
    async fn access_token(&self) -> Result<Option<SecretString>, CredentialError>;

    /// Called once after the CRM answered 401: refresh and return the new token (or `None` when
    /// the connection cannot be refreshed, in which case the 401 goes back to the plugin).
    async fn refresh_after_unauthorized(&self) -> Result<Option<SecretString>, CredentialError>;
}

/// Why credentials could not be supplied. The message is safe to show (no secret in it).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// The connection a call runs for.
#[derive(Clone, Default)]
pub struct CallContext {
    /// A label for logs and spans, e.g. `workspace-1/salesforce`; never secret.
    pub connection_label: String,
    /// Facts the plugin may read (`instance_url`, `hub_id`, operator settings).
    pub facts: BTreeMap<String, String>,
    /// Where the bearer token comes from; `None` for calls without a connection.
    pub credentials: Option<Arc<dyn CredentialSource>>,
    /// The CRM account's pacer: every outbound request waits for its token.
    pub pacer: Option<Arc<crate::plugins::pacing::AccountPacer>>,
    /// How the connection authenticated (where the host puts its credential); `None`: the
    /// plugin's default (OAuth when offered, else its first scheme).
    pub auth_kind: Option<crate::plugins::description::AuthKind>,
}

impl CallContext {
    /// A context with no connection (describe, validation, catalogue).
    pub fn detached() -> Self {
        Self { connection_label: "-".to_owned(), ..Self::default() }
    }

    /// A context with facts and no credentials.
    pub fn with_facts(label: impl Into<String>, facts: BTreeMap<String, String>) -> Self {
        Self { connection_label: label.into(), facts, credentials: None, pacer: None, auth_kind: None }
    }
}

impl std::fmt::Debug for CallContext {
    // Hand-written so a credential source can never end up in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("connection_label", &self.connection_label)
            .field("facts", &self.facts)
            .field("credentials", &self.credentials.as_ref().map(|_| "<credential source>"))
            .field("paced", &self.pacer.is_some())
            .field("auth_kind", &self.auth_kind)
            .finish()
    }
}
