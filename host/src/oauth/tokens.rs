//! [`TokenSet`]: a connection's OAuth tokens in memory, and their sealed form in the vault.
//! The tokens never leave this type except as the plaintext the vault seals and the bearer value
//! the HTTP capability attaches; `Debug` shows neither.

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::{PluginSlug, WorkspaceId};
use crate::vault::{Purpose, Sealed, Vault, VaultError};

/// An access token and, usually, a refresh token.
#[derive(Clone)]
pub struct TokenSet {
    access: SecretString,
    refresh: Option<SecretString>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet").field("refresh_token", &self.refresh.is_some()).finish_non_exhaustive()
    }
}

/// The sealed plaintext layout; versioned so a future field does not break old rows.
#[derive(Serialize, Deserialize)]
struct Plain {
    v: u8,
    access_token: String,
    refresh_token: Option<String>,
}

impl Drop for Plain {
    fn drop(&mut self) {
        self.access_token.zeroize();
        if let Some(t) = &mut self.refresh_token {
            t.zeroize();
        }
    }
}

/// Why stored tokens could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenReadError {
    /// The vault refused (wrong key, tampered, swapped row).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The plaintext is not a token set.
    #[error("the stored credentials are not in a known format")]
    Format,
}

impl TokenSet {
    /// Tokens as received.
    pub fn new(access: SecretString, refresh: Option<SecretString>) -> Self {
        Self { access, refresh }
    }

    /// The access token.
    pub fn access_token(&self) -> &SecretString {
        &self.access
    }

    /// The refresh token, if the CRM issued one.
    pub fn refresh_token(&self) -> Option<&SecretString> {
        self.refresh.as_ref()
    }

    /// Seals the tokens for a workspace's integration.
    pub fn seal(&self, vault: &Vault, workspace: &WorkspaceId, slug: &PluginSlug) -> Sealed {
        let plain = Plain {
            v: 1,
            access_token: self.access.expose_secret().to_owned(),
            refresh_token: self.refresh.as_ref().map(|r| r.expose_secret().to_owned()),
        };
        let mut bytes = serde_json::to_vec(&plain).unwrap_or_default();
        let sealed = vault.seal(Purpose::Tokens, workspace, slug, &bytes);
        bytes.zeroize();
        sealed
    }

    /// Opens sealed tokens.
    pub fn open(
        vault: &Vault,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        sealed: &Sealed,
    ) -> Result<Self, TokenReadError> {
        let bytes = vault.open(Purpose::Tokens, workspace, slug, sealed)?;
        let plain: Plain = serde_json::from_slice(bytes.expose_secret()).map_err(|_| TokenReadError::Format)?;
        Ok(Self {
            access: SecretString::from(plain.access_token.clone()),
            refresh: plain.refresh_token.clone().map(SecretString::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::MasterKey;

    #[test]
    fn tokens_round_trip_through_the_vault_and_never_show_in_debug() {
        let vault = Vault::new(MasterKey::generate(), Vec::new());
        let ws = WorkspaceId::parse("ws-1").unwrap();
        let slug = PluginSlug::parse("salesforce").unwrap();
        let tokens = TokenSet::new(SecretString::from("access-123"), Some(SecretString::from("refresh-456")));
        let sealed = tokens.seal(&vault, &ws, &slug);
        assert!(!sealed.ciphertext.windows(10).any(|w| w == b"access-123"));
        let opened = TokenSet::open(&vault, &ws, &slug, &sealed).unwrap();
        assert_eq!(opened.access_token().expose_secret(), "access-123");
        assert_eq!(opened.refresh_token().unwrap().expose_secret(), "refresh-456");
        let shown = format!("{opened:?}");
        assert!(!shown.contains("access-123") && !shown.contains("refresh-456"), "{shown}");

        let other = WorkspaceId::parse("ws-2").unwrap();
        assert!(matches!(TokenSet::open(&vault, &other, &slug, &sealed), Err(TokenReadError::Vault(_))));
    }
}
