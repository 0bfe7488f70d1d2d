//! The token vault: AES-256-GCM encryption of credentials at rest.
//!
//! Each workspace gets its own key, derived with HKDF-SHA256 from the master key, so one
//! workspace's ciphertext is useless with another's key. A fresh 96-bit random nonce is used for
//! every encryption. The additional authenticated data binds a ciphertext to its purpose, workspace
//! and integration, so rows cannot be swapped between workspaces or CRMs. Each ciphertext records
//! the fingerprint of the master key that sealed it (its key version), which makes rotation to a
//! new master key possible while old rows are still readable.

mod master_key;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

pub use master_key::{KeySource, MasterKey, MasterKeyError};

use crate::domain::{PluginSlug, WorkspaceId};

/// A sealed secret, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Ciphertext with the GCM tag.
    pub ciphertext: Vec<u8>,
    /// The 96-bit nonce.
    pub nonce: Vec<u8>,
    /// The fingerprint of the master key that sealed it.
    pub key_version: i64,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed").field("bytes", &self.ciphertext.len()).field("key_version", &self.key_version).finish()
    }
}

impl Sealed {
    /// One line of text for a text column: `v1.<key version>.<nonce>.<ciphertext>` (base64url).
    pub fn to_text(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("v1.{}.{}.{}", self.key_version, b64.encode(&self.nonce), b64.encode(&self.ciphertext))
    }

    /// Reads [`Sealed::to_text`]'s form back; `None` if it is not that form.
    pub fn from_text(text: &str) -> Option<Self> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut parts = text.split('.');
        let (Some("v1"), Some(version), Some(nonce), Some(ciphertext), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Self {
            key_version: version.parse().ok()?,
            nonce: b64.decode(nonce).ok()?,
            ciphertext: b64.decode(ciphertext).ok()?,
        })
    }
}

/// What a sealed value is for; part of the AAD, so a token blob cannot be opened as a PKCE verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An integration's OAuth tokens.
    Tokens,
    /// A pending OAuth flow's PKCE verifier.
    PkceVerifier,
    /// An outbound webhook endpoint's signing secret (bound to the endpoint's id).
    EndpointSecret,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Self::Tokens => "tokens",
            Self::PkceVerifier => "pkce-verifier",
            Self::EndpointSecret => "endpoint-secret",
        }
    }
}

/// Why a value could not be sealed or opened. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    /// The ciphertext was sealed with a master key this host does not have.
    #[error(
        "sealed with master key {0:#x}, which is not configured (set it in CRMHOST_PREVIOUS_MASTER_KEYS to read old rows)"
    )]
    UnknownKey(i64),
    /// Authentication failed: tampered data, or opened for another workspace, integration or purpose.
    #[error("the sealed value does not authenticate for this workspace and integration")]
    Tampered,
    /// The stored nonce is malformed.
    #[error("the stored nonce is malformed")]
    BadNonce,
}

/// Seals and opens secrets with the configured master keys.
pub struct Vault {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("current_key", &format_args!("{:#x}", self.current.fingerprint()))
            .field("previous_keys", &self.previous.len())
            .finish()
    }
}

/// Binds a ciphertext to its purpose, workspace and subject (an integration's slug, or the id of
/// what else it belongs to).
fn aad(purpose: Purpose, workspace: &WorkspaceId, subject: &str) -> Vec<u8> {
    format!("crmhost/v1\0{}\0{workspace}\0{subject}", purpose.label()).into_bytes()
}

impl Vault {
    /// A vault sealing with `current` and still opening what `previous` keys sealed.
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        Self { current, previous }
    }

    /// The version new seals get.
    pub fn current_version(&self) -> i64 {
        self.current.fingerprint()
    }

    fn cipher(key: &MasterKey, workspace: &WorkspaceId) -> Aes256Gcm {
        let hkdf = Hkdf::<Sha256>::new(Some(b"crmhost/workspace-key/v1"), key.bytes().expose_secret());
        let mut derived = [0u8; 32];
        hkdf.expand(workspace.as_str().as_bytes(), &mut derived)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let cipher = Aes256Gcm::new_from_slice(&derived).expect("AES-256 takes a 32-byte key");
        derived.fill(0);
        cipher
    }

    /// Encrypts `plaintext` for a workspace, integration and purpose.
    pub fn seal(&self, purpose: Purpose, workspace: &WorkspaceId, slug: &PluginSlug, plaintext: &[u8]) -> Sealed {
        self.seal_for(purpose, workspace, slug.as_str(), plaintext)
    }

    /// Encrypts `plaintext` for a workspace, purpose and subject (what it belongs to: an
    /// endpoint's id, say); only [`Vault::open_for`] with the same three opens it.
    pub fn seal_for(&self, purpose: Purpose, workspace: &WorkspaceId, subject: &str, plaintext: &[u8]) -> Sealed {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload { msg: plaintext, aad: &aad(purpose, workspace, subject) };
        let ciphertext = Self::cipher(&self.current, workspace)
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        Sealed { ciphertext, nonce: nonce.to_vec(), key_version: self.current.fingerprint() }
    }

    /// Decrypts what [`Vault::seal`] produced for the same workspace, integration and purpose.
    pub fn open(
        &self,
        purpose: Purpose,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        sealed: &Sealed,
    ) -> Result<SecretBox<Vec<u8>>, VaultError> {
        self.open_for(purpose, workspace, slug.as_str(), sealed)
    }

    /// Decrypts what [`Vault::seal_for`] produced for the same workspace, purpose and subject.
    pub fn open_for(
        &self,
        purpose: Purpose,
        workspace: &WorkspaceId,
        subject: &str,
        sealed: &Sealed,
    ) -> Result<SecretBox<Vec<u8>>, VaultError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.fingerprint() == sealed.key_version)
            .ok_or(VaultError::UnknownKey(sealed.key_version))?;
        if sealed.nonce.len() != 12 {
            return Err(VaultError::BadNonce);
        }
        let payload = Payload { msg: &sealed.ciphertext, aad: &aad(purpose, workspace, subject) };
        let plaintext = Self::cipher(key, workspace)
            .decrypt(Nonce::from_slice(&sealed.nonce), payload)
            .map_err(|_| VaultError::Tampered)?;
        Ok(SecretBox::new(Box::new(plaintext)))
    }

    /// Whether a sealed value should be re-sealed under the current key.
    pub fn needs_rotation(&self, sealed: &Sealed) -> bool {
        sealed.key_version != self.current.fingerprint()
    }

    /// Opens with whatever key sealed it and seals again under the current key.
    pub fn reseal(
        &self,
        purpose: Purpose,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        sealed: &Sealed,
    ) -> Result<Sealed, VaultError> {
        let plaintext = self.open(purpose, workspace, slug, sealed)?;
        Ok(self.seal(purpose, workspace, slug, plaintext.expose_secret()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(s: &str) -> WorkspaceId {
        WorkspaceId::parse(s).unwrap()
    }
    fn slug(s: &str) -> PluginSlug {
        PluginSlug::parse(s).unwrap()
    }
    fn vault() -> Vault {
        Vault::new(MasterKey::generate(), Vec::new())
    }

    #[test]
    fn a_value_sealed_for_a_subject_opens_only_for_that_subject_and_survives_its_text_form() {
        let v = vault();
        let sealed = v.seal_for(Purpose::EndpointSecret, &ws("w1"), "endpoint-a", b"whsec");
        let back = Sealed::from_text(&sealed.to_text()).unwrap();
        assert_eq!(back, sealed);
        assert_eq!(
            v.open_for(Purpose::EndpointSecret, &ws("w1"), "endpoint-a", &back).unwrap().expose_secret(),
            b"whsec"
        );
        assert_eq!(
            v.open_for(Purpose::EndpointSecret, &ws("w1"), "endpoint-b", &back).err(),
            Some(VaultError::Tampered)
        );
        assert_eq!(v.open_for(Purpose::Tokens, &ws("w1"), "endpoint-a", &back).err(), Some(VaultError::Tampered));
        for bad in ["", "v1.1.2", "v2.1.AA.AA", "v1.x.AA.AA", "v1.1.AA.AA.AA", "v1.1.!!.AA"] {
            assert!(Sealed::from_text(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_sealed_value_opens_for_the_same_workspace_integration_and_purpose() {
        let v = vault();
        let sealed = v.seal(Purpose::Tokens, &ws("w1"), &slug("hubspot"), b"access-token-123");
        assert!(!sealed.ciphertext.windows(16).any(|w| w == b"access-token-123"));
        let opened = v.open(Purpose::Tokens, &ws("w1"), &slug("hubspot"), &sealed).unwrap();
        assert_eq!(opened.expose_secret().as_slice(), b"access-token-123");
    }

    #[test]
    fn a_row_moved_to_another_workspace_integration_or_purpose_does_not_open() {
        let v = vault();
        let sealed = v.seal(Purpose::Tokens, &ws("w1"), &slug("hubspot"), b"secret");
        assert_eq!(v.open(Purpose::Tokens, &ws("w2"), &slug("hubspot"), &sealed).unwrap_err(), VaultError::Tampered);
        assert_eq!(v.open(Purpose::Tokens, &ws("w1"), &slug("salesforce"), &sealed).unwrap_err(), VaultError::Tampered);
        assert_eq!(
            v.open(Purpose::PkceVerifier, &ws("w1"), &slug("hubspot"), &sealed).unwrap_err(),
            VaultError::Tampered
        );
    }

    #[test]
    fn tampering_is_detected_and_nonces_never_repeat() {
        let v = vault();
        let mut sealed = v.seal(Purpose::Tokens, &ws("w1"), &slug("hubspot"), b"secret");
        let again = v.seal(Purpose::Tokens, &ws("w1"), &slug("hubspot"), b"secret");
        assert_ne!((sealed.nonce.clone(), sealed.ciphertext.clone()), (again.nonce, again.ciphertext));
        sealed.ciphertext[0] ^= 1;
        assert_eq!(v.open(Purpose::Tokens, &ws("w1"), &slug("hubspot"), &sealed).unwrap_err(), VaultError::Tampered);
    }

    #[test]
    fn rotation_reads_old_rows_and_reseals_them_under_the_new_key() {
        let old = MasterKey::generate();
        let old_copy = MasterKey::from_base64(&old.to_base64()).unwrap();
        let sealed = Vault::new(old, Vec::new()).seal(Purpose::Tokens, &ws("w1"), &slug("hubspot"), b"secret");

        let rotated = Vault::new(MasterKey::generate(), vec![old_copy]);
        assert!(rotated.needs_rotation(&sealed));
        let resealed = rotated.reseal(Purpose::Tokens, &ws("w1"), &slug("hubspot"), &sealed).unwrap();
        assert!(!rotated.needs_rotation(&resealed));
        let opened = rotated.open(Purpose::Tokens, &ws("w1"), &slug("hubspot"), &resealed).unwrap();
        assert_eq!(opened.expose_secret().as_slice(), b"secret");

        let without_old = Vault::new(MasterKey::generate(), Vec::new());
        assert!(matches!(
            without_old.open(Purpose::Tokens, &ws("w1"), &slug("hubspot"), &sealed),
            Err(VaultError::UnknownKey(_))
        ));
    }

    #[test]
    fn debug_output_shows_no_key_or_ciphertext() {
        let v = vault();
        let sealed = v.seal(Purpose::Tokens, &ws("w1"), &slug("hubspot"), b"secret");
        let shown = format!("{v:?} {sealed:?}");
        assert!(!shown.contains(&v.current.to_base64()), "{shown}");
        assert!(shown.contains("key_version"), "{shown}");
    }
}
