//! The master key: 32 random bytes, from `CRMHOST_MASTER_KEY` (base64) or, in the embedded
//! default, from a key file generated in the data directory with 0600 permissions.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};

/// A 256-bit master key. Its `Debug` shows only the fingerprint.
pub struct MasterKey {
    bytes: SecretBox<[u8; 32]>,
    fingerprint: i64,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({:#x})", self.fingerprint)
    }
}

/// Why a master key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// Not 32 bytes of base64.
    #[error("{source_name}: expected 32 bytes, base64-encoded (generate one with `openssl rand -base64 32`)")]
    Invalid {
        /// Where it came from.
        source_name: String,
    },
    /// The key file could not be read or written.
    #[error("master key file {path}: {detail}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
}

/// Where the key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `CRMHOST_MASTER_KEY`.
    Environment,
    /// A key file; `generated` when this start created it.
    File {
        /// The file.
        path: PathBuf,
        /// Created now.
        generated: bool,
    },
}

impl MasterKey {
    fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        let fingerprint = i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 8 leading bytes"));
        Self { bytes: SecretBox::new(Box::new(bytes)), fingerprint }
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Parses base64 (standard, padding optional).
    pub fn from_base64(text: &str) -> Option<Self> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim()))
            .ok()?;
        let bytes: [u8; 32] = decoded.try_into().ok()?;
        Some(Self::from_bytes(bytes))
    }

    /// The key as base64 (for writing a key file or printing a new key once).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.bytes.expose_secret())
    }

    /// The key version stored beside ciphertexts: the first 8 bytes of its SHA-256.
    pub fn fingerprint(&self) -> i64 {
        self.fingerprint
    }

    pub(super) fn bytes(&self) -> &SecretBox<[u8; 32]> {
        &self.bytes
    }

    /// The key from `env_value` if given, else from (or into a new) `<data_dir>/master.key`.
    pub fn load(env_value: Option<&str>, data_dir: &Path) -> Result<(Self, KeySource), MasterKeyError> {
        if let Some(value) = env_value.filter(|v| !v.trim().is_empty()) {
            let key = Self::from_base64(value)
                .ok_or(MasterKeyError::Invalid { source_name: "CRMHOST_MASTER_KEY".to_owned() })?;
            return Ok((key, KeySource::Environment));
        }
        let path = data_dir.join("master.key");
        let io = |e: std::io::Error| MasterKeyError::Io { path: path.display().to_string(), detail: e.to_string() };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = Self::from_base64(&text)
                    .ok_or(MasterKeyError::Invalid { source_name: path.display().to_string() })?;
                Ok((key, KeySource::File { path, generated: false }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                std::fs::create_dir_all(data_dir).map_err(io)?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&path).map_err(io)?;
                file.write_all(key.to_base64().as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok((key, KeySource::File { path, generated: true }))
            }
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_key_must_be_32_bytes_of_base64() {
        let dir = tempfile::tempdir().unwrap();
        let good = MasterKey::generate().to_base64();
        assert_eq!(MasterKey::load(Some(&good), dir.path()).unwrap().1, KeySource::Environment);
        let err = MasterKey::load(Some("c2hvcnQ="), dir.path()).unwrap_err().to_string();
        assert!(err.starts_with("CRMHOST_MASTER_KEY:") && !err.contains("c2hvcnQ"), "{err}");
    }

    #[test]
    fn without_an_environment_key_a_private_key_file_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = MasterKey::load(None, dir.path()).unwrap();
        let path = dir.path().join("master.key");
        assert_eq!(source, KeySource::File { path: path.clone(), generated: true });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (second, source) = MasterKey::load(None, dir.path()).unwrap();
        assert_eq!(source, KeySource::File { path, generated: false });
        assert_eq!(first.fingerprint(), second.fingerprint());
    }

    #[test]
    fn debug_shows_the_fingerprint_only() {
        let key = MasterKey::generate();
        let shown = format!("{key:?}");
        assert!(shown.starts_with("MasterKey(0x") && !shown.contains(&key.to_base64()), "{shown}");
    }
}
