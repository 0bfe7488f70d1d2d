//! The only `bindgen!` in the host: Rust types and glue for `wit/crm-adapter.wit`, and the linked
//! form of a plugin ([`AdapterPre`]) that requires the `adapter` export and takes the optional ones
//! (`counting`, `files`) when the plugin has them.
//!
//! Every host import is async and trappable (`wasmtime::Result<T>`): a host failure traps the call,
//! while errors the guest should see travel inside `T`. Exports are async so calls can be
//! preempted by epochs and cancelled by timeouts.

use wasmtime::AsContextMut;
use wasmtime::component::InstancePre;

// The widest world: its imports are every world's, its exports every optional interface's. Only
// `adapter` is required of a plugin (see `AdapterPre`).
wasmtime::component::bindgen!({
    path: "../wit",
    world: "crm-adapter-full",
    imports: { default: async | trappable },
    exports: { default: async },
    // Tests and the sync engine compare values and records.
    additional_derives: [PartialEq],
});

pub use self::crmhost::adapter::types::{AdapterError, FieldValue, RateLimitInfo, RateLimitPolicy, Value};
pub use self::exports::crmhost::adapter::{adapter, counting, files};

/// A plugin linked against the host's imports, ready to instantiate: the export look-ups are done
/// once here, not per call.
pub struct AdapterPre<T: 'static> {
    pre: InstancePre<T>,
    adapter: adapter::GuestIndices,
    counting: Option<counting::GuestIndices>,
    files: Option<files::GuestIndices>,
}

impl<T: Send + 'static> AdapterPre<T> {
    /// Finds the exports: `adapter` must be there (else the component is for another contract);
    /// `counting` and `files` are taken when present.
    pub fn new(pre: InstancePre<T>) -> wasmtime::Result<Self> {
        let adapter = adapter::GuestIndices::new(&pre)?;
        let counting = counting::GuestIndices::new(&pre).ok();
        let files = files::GuestIndices::new(&pre).ok();
        Ok(Self { pre, adapter, counting, files })
    }

    /// Whether the plugin exports `files`.
    pub fn has_files(&self) -> bool {
        self.files.is_some()
    }

    /// Whether the plugin exports `counting`.
    pub fn counts(&self) -> bool {
        self.counting.is_some()
    }

    /// A fresh instance in `store`, with its exports.
    pub async fn instantiate_async(&self, mut store: impl AsContextMut<Data = T>) -> wasmtime::Result<Exports> {
        let instance = self.pre.instantiate_async(&mut store).await?;
        let adapter = self.adapter.load(&mut store, &instance)?;
        let counting = self.counting.as_ref().map(|c| c.load(&mut store, &instance)).transpose()?;
        let files = self.files.as_ref().map(|f| f.load(&mut store, &instance)).transpose()?;
        Ok(Exports { adapter, counting, files })
    }
}

/// The exports of one instance.
pub struct Exports {
    adapter: adapter::Guest,
    counting: Option<counting::Guest>,
    files: Option<files::Guest>,
}

impl Exports {
    /// The required `adapter` interface.
    pub fn adapter(&self) -> &adapter::Guest {
        &self.adapter
    }

    /// The optional `counting` interface.
    pub fn counting(&self) -> Option<&counting::Guest> {
        self.counting.as_ref()
    }

    /// The optional `files` interface.
    pub fn files(&self) -> Option<&files::Guest> {
        self.files.as_ref()
    }
}
