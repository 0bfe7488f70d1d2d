//! Signing deliveries: `Crmhost-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
//! one `v1` per secret in force (two for a while after a rotation). A receiver recomputes the HMAC
//! with its secret over the timestamp, a dot and the raw body, compares in constant time, and
//! refuses timestamps too far from its clock (replays).

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Crmhost-Signature";

/// The prefix of every endpoint secret, so a leaked one is recognisable in a scan.
const SECRET_PREFIX: &str = "whsec_";

/// A fresh endpoint secret: `whsec_` and 32 random bytes, base64url.
pub fn generate_secret() -> SecretString {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    bytes.fill(0);
    SecretString::from(secret)
}

/// The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The signature header's value for `body` sent at `timestamp`, signed by every secret given
/// (the current one first).
pub fn header_value(secrets: &[&SecretString], timestamp: i64, body: &[u8]) -> String {
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        value.push_str(",v1=");
        value.push_str(&sign(secret, timestamp, body));
    }
    value
}

/// Whether `header` signs `body` with `secret`, at a timestamp within `tolerance_secs` of `now`:
/// what a receiver does (the README shows the same steps).
pub fn verify(header: &str, body: &[u8], secret: &SecretString, now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let Some(t) = timestamp.filter(|t| (now - t).abs() <= tolerance_secs) else { return false };
    // `verify_slice` compares in constant time (and checks the length).
    let signed_with_secret = |signature: &[u8]| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else { return false };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(signature).is_ok()
    };
    signatures.iter().filter_map(|s| hex::decode(s).ok()).any(|s| signed_with_secret(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_secret_only_and_only_near_its_time() {
        let (secret, other) = (generate_secret(), generate_secret());
        assert!(secret.expose_secret().starts_with("whsec_") && secret.expose_secret().len() > 40);
        let body = br#"{"id":"e1"}"#;
        let header = header_value(&[&secret], 1_000, body);
        assert!(verify(&header, body, &secret, 1_100, 300));
        assert!(!verify(&header, body, &other, 1_100, 300), "another secret");
        assert!(!verify(&header, br#"{"id":"e2"}"#, &secret, 1_100, 300), "another body");
        assert!(!verify(&header, body, &secret, 2_000, 300), "too old: a replay");
        assert!(!verify(&header.replace("t=1000", "t=1001"), body, &secret, 1_100, 300), "another time");
    }

    #[test]
    fn after_a_rotation_both_secrets_verify() {
        let (new, old) = (generate_secret(), generate_secret());
        let header = header_value(&[&new, &old], 50, b"x");
        assert_eq!(header.matches("v1=").count(), 2);
        assert!(verify(&header, b"x", &new, 50, 1) && verify(&header, b"x", &old, 50, 1));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231-style fixed vector, computed independently: HMAC-SHA256("key", "1.body").
        let header = header_value(&[&SecretString::from("key")], 1, b"body");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1.body");
        assert_eq!(header, format!("t=1,v1={}", hex::encode(mac.finalize().into_bytes())));
    }
}
