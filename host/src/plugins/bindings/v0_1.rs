//! Contract `crmhost:adapter@0.1.0` (`wit/0.1.0/`): plugins built against it still load. Its
//! host imports are served by the 0.2 implementations (requests and answers carried across; a
//! missing credential is the `denied("no usable credentials: …")` 0.1 SDKs recognise), and its
//! exports are called through [`super::Exports`], which carries inputs and answers across. What
//! 0.2 added, a 0.1 plugin does not declare: it authenticates with OAuth 2.0 or nothing, names no
//! rate-limit headers (its pacing follows its declared limits and 429s), and is a CRM with a
//! generic logo unless the operator gives one.

use wasmtime::AsContextMut;
use wasmtime::component::{HasSelf, Instance, InstancePre, Linker};

use super::carry::Carry;
use crate::plugins::runtime::CallState;

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "crm-adapter-full",
    imports: { default: async | trappable },
    exports: { default: async },
    // Unchanged in 0.2: the same Rust types serve both (the component model compares shapes, not
    // names), so values, field values and adapter errors need no carrying.
    with: {
        "crmhost:adapter/types@0.1.0": super::crmhost::adapter::types,
    },
});

use self::crmhost::adapter::{connection, http, log, secrets};
pub use self::exports::crmhost::adapter::{adapter, counting, files};
use super::crmhost::adapter as now;

/// Adds the 0.1 imports: its own names, served by the 0.2 implementations.
pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    // `types` has only types; a 0.1 component still imports it by its 0.1 name.
    linker.instance("crmhost:adapter/types@0.1.0")?;
    http::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)?;
    connection::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)?;
    secrets::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)?;
    log::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

/// A 0.1 plugin's export look-ups.
pub struct Indices {
    adapter: adapter::GuestIndices,
    counting: Option<counting::GuestIndices>,
    files: Option<files::GuestIndices>,
}

impl Indices {
    /// Finds a 0.1 `adapter` export (and the optional ones).
    pub(super) fn new<T>(pre: &InstancePre<T>) -> wasmtime::Result<Self> {
        Ok(Self {
            adapter: adapter::GuestIndices::new(pre)?,
            counting: counting::GuestIndices::new(pre).ok(),
            files: files::GuestIndices::new(pre).ok(),
        })
    }

    pub(super) fn counts(&self) -> bool {
        self.counting.is_some()
    }

    pub(super) fn has_files(&self) -> bool {
        self.files.is_some()
    }

    pub(super) fn load(&self, mut store: impl AsContextMut, instance: &Instance) -> wasmtime::Result<Guests> {
        Ok(Guests {
            adapter: self.adapter.load(&mut store, instance)?,
            counting: self.counting.as_ref().map(|c| c.load(&mut store, instance)).transpose()?,
            files: self.files.as_ref().map(|f| f.load(&mut store, instance)).transpose()?,
        })
    }
}

/// A 0.1 instance's exports.
pub struct Guests {
    pub(super) adapter: adapter::Guest,
    pub(super) counting: Option<counting::Guest>,
    pub(super) files: Option<files::Guest>,
}

impl http::Host for CallState {
    async fn send(&mut self, request: http::Request) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        let answer = now::http::Host::send(self, request.carry()).await?;
        Ok(answer.map(Carry::carry).map_err(Carry::carry))
    }
}

impl connection::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        now::connection::Host::get(self, key).await
    }
}

impl secrets::Host for CallState {
    async fn hmac_sha256(&mut self, name: String, data: Vec<u8>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        now::secrets::Host::hmac_sha256(self, name, data).await
    }
}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        now::log::Host::log(self, level.carry(), message).await
    }
}
