//! `secrets.hmac-sha256`: HMAC with secrets the operator configured for a plugin (for example the
//! OAuth client secret, which keys HubSpot's webhook signatures). The secret never enters the guest.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::plugins::bindings::crmhost::adapter::secrets;
use crate::plugins::runtime::CallState;

/// The most data one HMAC call may cover; webhook bodies are far smaller.
const MAX_HMAC_INPUT_BYTES: usize = 16 << 20;

/// The secrets one plugin may use, by name.
#[derive(Clone, Default)]
pub struct PluginSecrets(BTreeMap<String, SecretString>);

impl PluginSecrets {
    /// Secrets by name.
    pub fn new(secrets: BTreeMap<String, SecretString>) -> Self {
        Self(secrets)
    }

    /// HMAC-SHA256 of `data` keyed with the named secret.
    pub fn hmac_sha256(&self, name: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        let secret =
            self.0.get(name).ok_or_else(|| format!("no secret named `{name}` is configured for this plugin"))?;
        if data.len() > MAX_HMAC_INPUT_BYTES {
            return Err(format!("input of {} bytes is over the {MAX_HMAC_INPUT_BYTES}-byte limit", data.len()));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .map_err(|_| "invalid secret".to_owned())?;
        mac.update(data);
        Ok(mac.finalize().into_bytes().to_vec())
    }

    /// A secret for the host's own use (the OAuth client secret); plugins only ever get HMACs.
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.0.get(name)
    }

    /// The names configured (never the values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for PluginSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl secrets::Host for CallState {
    async fn hmac_sha256(&mut self, name: String, data: Vec<u8>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self.secrets.hmac_sha256(&name, &data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_hubspot_v3_test_vector() {
        // From HubSpot's official client tests (crm-apis.md §8).
        let secrets = PluginSecrets::new(BTreeMap::from([(
            "client_secret".to_owned(),
            SecretString::from("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"),
        )]));
        let msg = "POSThttps://www.example.com/webhook_uri{'example_field':'example_value'}1693657560000";
        let mac = secrets.hmac_sha256("client_secret", msg.as_bytes()).unwrap();
        use base64_check::encode;
        assert_eq!(encode(&mac), "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=");
    }

    #[test]
    fn an_unknown_secret_is_an_error_naming_it() {
        let err = PluginSecrets::default().hmac_sha256("client_secret", b"x").unwrap_err();
        assert!(err.contains("client_secret"));
    }

    #[test]
    fn debug_shows_names_only() {
        let secrets = PluginSecrets::new(BTreeMap::from([("k".to_owned(), SecretString::from("hunter2"))]));
        let shown = format!("{secrets:?}");
        assert!(shown.contains('k') && !shown.contains("hunter2"), "{shown}");
    }

    /// A tiny base64 encoder for the test vector (the host has no other use for base64 yet).
    mod base64_check {
        pub fn encode(bytes: &[u8]) -> String {
            const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..4 {
                    if i <= chunk.len() {
                        out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                    } else {
                        out.push('=');
                    }
                }
            }
            out
        }
    }
}
