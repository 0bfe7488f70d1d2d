//! Per-workspace webhook secrets, for CRMs that cannot sign what they send (Salesforce Apex
//! callouts and Outbound Messages): 32 random bytes shown once, kept only as their SHA-256, and
//! compared in constant time. A high-entropy random secret needs no slow hash: nothing to guess.

use base64::Engine as _;
use rand::RngCore as _;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// What marks a secret as crmhost's (and keeps it recognisable in a secret scanner).
const PREFIX: &str = "whsec_";

/// A fresh secret and the digest to store.
#[derive(Debug)]
pub struct NewWebhookSecret {
    /// The secret, for the caller's eyes only.
    pub secret: SecretString,
    /// Hex SHA-256 of the secret: what the store keeps.
    pub sha256: String,
}

/// Makes a secret from the operating system's random source.
pub fn generate() -> NewWebhookSecret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let sha256 = digest(&secret);
    NewWebhookSecret { secret: SecretString::from(secret), sha256 }
}

/// Hex SHA-256 of a secret.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `given` is the secret whose digest is `stored_sha256`, in time that does not depend on
/// where they differ.
pub fn matches(given: &str, stored_sha256: &str) -> bool {
    let Ok(stored) = hex::decode(stored_sha256) else { return false };
    Sha256::digest(given.as_bytes()).as_slice().ct_eq(&stored).into()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn a_secret_matches_its_digest_and_nothing_else() {
        let made = generate();
        let secret = made.secret.expose_secret();
        assert!(secret.starts_with(PREFIX) && secret.len() > 40, "{}", secret.len());
        assert!(matches(secret, &made.sha256));
        assert!(!matches(&format!("{secret}x"), &made.sha256));
        assert!(!matches("", &made.sha256));
        assert!(!matches(secret, "not hex"));
        assert_ne!(generate().sha256, made.sha256, "each secret is new");
        assert!(!format!("{made:?}").contains(secret), "Debug never shows the secret");
    }
}
