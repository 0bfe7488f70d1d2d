//! Non-secret facts about the connection the current call runs for.

#[cfg(target_arch = "wasm32")]
use crate::bindings::crmhost::adapter::connection as host;
use crate::{AdapterError, Result};

/// A fact captured at connect time or set by the operator (`instance_url`, `hub_id`, `api_version`).
pub fn get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return host::get(key);
    // Off wasm (a plugin's own unit tests) the fake host of `crate::testing` answers.
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::fact(key);
}

/// A fact, or `default` when it is not set.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

/// A fact the operation cannot do without; its absence is an `invalid` error naming the key.
pub fn require(key: &str) -> Result<String> {
    get(key).ok_or_else(|| AdapterError::invalid(format!("the connection has no `{key}`; reconnect the integration")))
}
