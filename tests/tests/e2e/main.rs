//! End-to-end tests: one binary, one module per area (zero2prod's layout).
// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used)]

mod api;
mod automatic;
mod connect;
mod contract;
mod fuzz;
mod hardening;
mod hot_reload;
mod hubspot;
mod plugin_calls;
mod salesforce;
mod sandbox;
mod sandbox_mode;
mod store;
mod sync;
mod workspaces;
