//! The OAuth `state` parameter: 256 random bits, sent to the CRM in the authorize URL and stored
//! only as its SHA-256, so a database read does not let anyone complete someone else's flow.

use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// How long a user has to finish consenting at the CRM.
pub const STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// A fresh state: the value for the authorize URL and the hash to store.
pub fn generate() -> (SecretString, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&value);
    (SecretString::from(value), hash)
}

/// The stored form of a state value.
pub fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The hash of a state the CRM sent back.
pub fn hash_secret(value: &SecretString) -> String {
    hash(value.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_256_bit_unique_and_stored_only_as_their_hash() {
        let (a, hash_a) = generate();
        let (b, _) = generate();
        assert_eq!(a.expose_secret().len(), 43, "32 bytes in unpadded base64url");
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(hash_secret(&a), hash_a);
        assert!(!hash_a.contains(a.expose_secret()));
    }
}
