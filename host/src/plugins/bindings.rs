//! The only `bindgen!` in the host: Rust types and glue for `wit/crm-adapter.wit`.
//!
//! Every host import is async and trappable (`wasmtime::Result<T>`): a host failure traps the call,
//! while errors the guest should see travel inside `T`. Exports are async so calls can be
//! preempted by epochs and cancelled by timeouts.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "crm-adapter",
    imports: { default: async | trappable },
    exports: { default: async },
    // Tests and the sync engine compare values and records.
    additional_derives: [PartialEq],
});

pub use self::crmhost::adapter::types::{AdapterError, FieldValue, RateLimitInfo, RateLimitPolicy, Value};
pub use self::exports::crmhost::adapter::adapter;
