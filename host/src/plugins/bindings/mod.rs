//! The host's Rust types and glue for the plugin contract: `crmhost:adapter@0.2.0`
//! (`wit/crm-adapter.wit`, generated here and used by the whole host) and, in [`v0_1`], the
//! 0.1.0 contract a plugin may still be built against, adapted into the 0.2 types at this
//! boundary. [`AdapterPre`] is a plugin linked against the host's imports, of either version; it
//! requires the `adapter` export and takes the optional ones (`counting`, `files`, `bulk`) when
//! present.
//!
//! Every host import is async and trappable (`wasmtime::Result<T>`): a host failure traps the call,
//! while errors the guest should see travel inside `T`. Exports are async so calls can be
//! preempted by epochs and cancelled by timeouts.

mod carry;
pub mod v0_1;

use wasmtime::AsContextMut;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use carry::Carry;

use super::runtime::CallState;

// The widest world: its imports are every world's, its exports every optional interface's. Only
// `adapter` is required of a plugin (see `AdapterPre`).
wasmtime::component::bindgen!({
    path: "../wit",
    world: "crm-adapter-bulk",
    imports: { default: async | trappable },
    exports: { default: async },
    // Tests and the sync engine compare values and records.
    additional_derives: [PartialEq],
});

pub use self::crmhost::adapter::types::{AdapterError, FieldValue, RateLimitInfo, RateLimitPolicy, Value};
pub use self::exports::crmhost::adapter::{adapter, bulk, counting, files};

/// The contract versions the host loads, newest first.
pub const CONTRACT_VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

/// Adds every contract version's host imports to `linker`.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    CrmAdapterBulk::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)?;
    v0_1::add_to_linker(linker)
}

/// Which contract a plugin was built against, with its export look-ups done once.
enum Contract {
    V0_2 {
        adapter: adapter::GuestIndices,
        counting: Option<counting::GuestIndices>,
        files: Option<files::GuestIndices>,
        bulk: Option<bulk::GuestIndices>,
    },
    V0_1(v0_1::Indices),
}

/// A plugin linked against the host's imports, ready to instantiate: the export look-ups are done
/// once here, not per call.
pub struct AdapterPre<T: 'static> {
    pre: InstancePre<T>,
    contract: Contract,
}

impl<T: Send + 'static> AdapterPre<T> {
    /// Finds the exports: an `adapter` of a known contract version must be there (else the
    /// component is for another contract); `counting`, `files` and `bulk` are taken when present.
    pub fn new(pre: InstancePre<T>) -> wasmtime::Result<Self> {
        let contract = match adapter::GuestIndices::new(&pre) {
            Ok(adapter) => Contract::V0_2 {
                adapter,
                counting: counting::GuestIndices::new(&pre).ok(),
                files: files::GuestIndices::new(&pre).ok(),
                bulk: bulk::GuestIndices::new(&pre).ok(),
            },
            Err(current) => match v0_1::Indices::new(&pre) {
                Ok(indices) => Contract::V0_1(indices),
                // The newest contract's error names what is missing; that is what an author needs.
                Err(_) => return Err(current),
            },
        };
        Ok(Self { pre, contract })
    }

    /// The contract version the plugin was built against (`0.2.0`).
    pub fn contract_version(&self) -> &'static str {
        match self.contract {
            Contract::V0_2 { .. } => CONTRACT_VERSIONS[0],
            Contract::V0_1(_) => "0.1.0",
        }
    }

    /// Whether the plugin exports `files`.
    pub fn has_files(&self) -> bool {
        match &self.contract {
            Contract::V0_2 { files, .. } => files.is_some(),
            Contract::V0_1(indices) => indices.has_files(),
        }
    }

    /// Whether the plugin exports `counting`.
    pub fn counts(&self) -> bool {
        match &self.contract {
            Contract::V0_2 { counting, .. } => counting.is_some(),
            Contract::V0_1(indices) => indices.counts(),
        }
    }

    /// Whether the plugin exports `bulk` (a 0.1 plugin never does).
    pub fn has_bulk(&self) -> bool {
        matches!(&self.contract, Contract::V0_2 { bulk: Some(_), .. })
    }

    /// A fresh instance in `store`, with its exports.
    pub async fn instantiate_async(&self, mut store: impl AsContextMut<Data = T>) -> wasmtime::Result<Exports> {
        let instance = self.pre.instantiate_async(&mut store).await?;
        match &self.contract {
            Contract::V0_2 { adapter, counting, files, bulk } => Ok(Exports::V0_2 {
                adapter: adapter.load(&mut store, &instance)?,
                counting: counting.as_ref().map(|c| c.load(&mut store, &instance)).transpose()?,
                files: files.as_ref().map(|f| f.load(&mut store, &instance)).transpose()?,
                bulk: bulk.as_ref().map(|b| b.load(&mut store, &instance)).transpose()?,
            }),
            Contract::V0_1(indices) => Ok(Exports::V0_1(indices.load(&mut store, &instance)?)),
        }
    }
}

/// The exports of one instance, as 0.2 calls: a 0.1 plugin's inputs and answers are carried
/// across here.
pub enum Exports {
    /// A 0.2 plugin.
    V0_2 {
        adapter: adapter::Guest,
        counting: Option<counting::Guest>,
        files: Option<files::Guest>,
        bulk: Option<bulk::Guest>,
    },
    /// A 0.1 plugin.
    V0_1(v0_1::Guests),
}

/// What an export call returns: the outer error is a trap, the inner the adapter's.
type Answer<T> = wasmtime::Result<Result<T, AdapterError>>;

impl Exports {
    /// `describe()`.
    pub async fn describe<S: AsContextMut<Data: Send>>(&self, store: S) -> wasmtime::Result<adapter::PluginInfo> {
        match self {
            Self::V0_2 { adapter, .. } => adapter.call_describe(store).await,
            Self::V0_1(g) => Ok(g.adapter.call_describe(store).await?.carry()),
        }
    }

    /// `test-connection()`.
    pub async fn test_connection<S: AsContextMut<Data: Send>>(&self, store: S) -> Answer<adapter::AccountInfo> {
        match self {
            Self::V0_2 { adapter, .. } => adapter.call_test_connection(store).await,
            Self::V0_1(g) => Ok(g.adapter.call_test_connection(store).await?.map(Carry::carry)),
        }
    }

    /// `list-fields(entity)`.
    pub async fn list_fields<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        entity: &str,
    ) -> Answer<Vec<adapter::FieldInfo>> {
        match self {
            Self::V0_2 { adapter, .. } => adapter.call_list_fields(store, entity).await,
            Self::V0_1(g) => Ok(g.adapter.call_list_fields(store, entity).await?.map(Carry::carry)),
        }
    }

    /// `pull(request)`.
    pub async fn pull<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        request: &adapter::PullRequest,
    ) -> Answer<adapter::Page> {
        match self {
            Self::V0_2 { adapter, .. } => adapter.call_pull(store, request).await,
            Self::V0_1(g) => Ok(g.adapter.call_pull(store, &request.clone().carry()).await?.map(Carry::carry)),
        }
    }

    /// `push(entity, match-key, records)`.
    pub async fn push<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        entity: &str,
        match_key: &str,
        records: &[adapter::PushRecord],
    ) -> Answer<Vec<adapter::PushOutcome>> {
        match self {
            Self::V0_2 { adapter, .. } => adapter.call_push(store, entity, match_key, records).await,
            Self::V0_1(g) => {
                let records: Vec<_> = records.to_vec().carry();
                Ok(g.adapter.call_push(store, entity, match_key, &records).await?.map(Carry::carry))
            }
        }
    }

    /// `delete(entity, ids)`.
    pub async fn delete<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        entity: &str,
        ids: &[String],
    ) -> Answer<Vec<adapter::DeleteOutcome>> {
        match self {
            Self::V0_2 { adapter, .. } => adapter.call_delete(store, entity, ids).await,
            Self::V0_1(g) => Ok(g.adapter.call_delete(store, entity, ids).await?.map(Carry::carry)),
        }
    }

    /// `parse-webhook(request)`.
    pub async fn parse_webhook<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        request: &adapter::WebhookRequest,
    ) -> Answer<Vec<adapter::ChangeEvent>> {
        match self {
            Self::V0_2 { adapter, .. } => adapter.call_parse_webhook(store, request).await,
            Self::V0_1(g) => Ok(g.adapter.call_parse_webhook(store, &request.clone().carry()).await?.map(Carry::carry)),
        }
    }

    /// `counting.count(request)`; `Ok(None)` when the plugin does not export `counting`.
    pub async fn count<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        request: &counting::CountRequest,
    ) -> Answer<Option<u64>> {
        match self {
            Self::V0_2 { counting: Some(counting), .. } => counting.call_count(store, request).await,
            Self::V0_1(v0_1::Guests { counting: Some(counting), .. }) => {
                counting.call_count(store, &request.clone().carry()).await
            }
            _ => Ok(Ok(None)),
        }
    }

    /// `files.list-files(entity, record-id)`; `Ok(None)` when the plugin does not export `files`.
    pub async fn list_files<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        entity: &str,
        record_id: &str,
    ) -> Answer<Option<Vec<files::FileInfo>>> {
        match self {
            Self::V0_2 { files: Some(files), .. } => {
                Ok(files.call_list_files(store, entity, record_id).await?.map(Some))
            }
            Self::V0_1(v0_1::Guests { files: Some(files), .. }) => {
                Ok(files.call_list_files(store, entity, record_id).await?.map(|f| Some(f.carry())))
            }
            _ => Ok(Ok(None)),
        }
    }

    /// `files.download(entity, record-id, file-id)`; `Ok(None)` when the plugin does not export
    /// `files`.
    pub async fn download<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        entity: &str,
        record_id: &str,
        file_id: &str,
    ) -> Answer<Option<files::DownloadRequest>> {
        match self {
            Self::V0_2 { files: Some(files), .. } => {
                Ok(files.call_download(store, entity, record_id, file_id).await?.map(Some))
            }
            Self::V0_1(v0_1::Guests { files: Some(files), .. }) => {
                Ok(files.call_download(store, entity, record_id, file_id).await?.map(|d| Some(d.carry())))
            }
            _ => Ok(Ok(None)),
        }
    }

    /// `bulk.pull(request)`; `Ok(None)` when the plugin does not export `bulk`.
    pub async fn bulk_pull<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        request: &adapter::PullRequest,
    ) -> Answer<Option<bulk::PullStep>> {
        match self {
            Self::V0_2 { bulk: Some(bulk), .. } => Ok(bulk.call_pull(store, request).await?.map(Some)),
            _ => Ok(Ok(None)),
        }
    }

    /// `bulk.push(entity, match-key, records, job)`; `Ok(None)` when the plugin does not export
    /// `bulk`.
    pub async fn bulk_push<S: AsContextMut<Data: Send>>(
        &self,
        store: S,
        entity: &str,
        match_key: &str,
        records: &[adapter::PushRecord],
        job: Option<&str>,
    ) -> Answer<Option<bulk::PushStep>> {
        match self {
            Self::V0_2 { bulk: Some(bulk), .. } => {
                Ok(bulk.call_push(store, entity, match_key, records, job).await?.map(Some))
            }
            _ => Ok(Ok(None)),
        }
    }
}
