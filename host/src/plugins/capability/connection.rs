//! `connection.get`: the non-secret facts of the connection a call runs for.

use crate::plugins::bindings::crmhost::adapter::connection;
use crate::plugins::runtime::CallState;

impl connection::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.context.facts.get(&key).cloned())
    }
}
