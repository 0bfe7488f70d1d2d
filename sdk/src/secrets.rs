//! Operations with host-held secrets: the secret itself never enters the plugin.

#[cfg(target_arch = "wasm32")]
use crate::bindings::crmhost::adapter::secrets as host;

/// HMAC-SHA256 of `data` keyed with the host-held secret `name` (for example `client_secret`).
/// Off wasm (a plugin's own unit tests) there are no host-held secrets: an error says so.
pub fn hmac_sha256(name: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    #[cfg(target_arch = "wasm32")]
    return host::hmac_sha256(name, data);
    #[cfg(not(target_arch = "wasm32"))]
    return Err(format!("no host-held secret `{name}` off wasm ({} bytes not signed)", data.len()));
}

/// Compares two byte strings in time independent of where they differ (for signatures).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
