//! Operations with host-held secrets: the secret itself never enters the plugin.

use crate::bindings::crmhost::adapter::secrets as host;

/// HMAC-SHA256 of `data` keyed with the host-held secret `name` (for example `client_secret`).
pub fn hmac_sha256(name: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    host::hmac_sha256(name, data)
}

/// Compares two byte strings in time independent of where they differ (for signatures).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
