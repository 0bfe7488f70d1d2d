//! # crmhost-sdk
//!
//! Everything a crmhost CRM adapter plugin needs: implement [`Adapter`], register it with
//! [`export_adapter!`], and build with `cargo build --release --target wasm32-wasip2`.
//!
//! The plugin runs sandboxed. It never sees a token, a client secret or another workspace's data:
//! [`http::Request::send`] goes through the host, which checks the destination against the plugin's
//! allowed hosts and attaches the connection's credentials itself. Non-secret connection facts
//! (Salesforce `instance_url`, HubSpot `hub_id`, API versions) come from [`connection`].
//!
//! ```
//! use crmhost_sdk::prelude::*;
//!
//! struct Example;
//!
//! impl Adapter for Example {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::builder("example", "Example CRM", env!("CARGO_PKG_VERSION")).build()
//!     }
//! }
//!
//! crmhost_sdk::export_adapter!(Example);
//! # fn main() {
//! #     assert_eq!(Example::describe().slug, "example");
//! # }
//! ```
#![deny(missing_docs)]

#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings;

pub mod connection;
mod error;
pub mod files;
pub mod http;
mod info;
pub mod log;
pub mod matching;
pub mod secrets;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod value;

pub use info::{EntityBuilder, PluginInfoBuilder};

/// The version of the WIT contract this SDK builds against (`crmhost:adapter@…`).
pub const CONTRACT_VERSION: &str = "0.2.0";

pub use bindings::crmhost::adapter::types::{
    AdapterError, DuplicateInfo, ErrorInfo, FieldValue, RateLimitInfo, RateLimitPolicy, Value,
};
pub use bindings::exports::crmhost::adapter::adapter::{
    AccountInfo, ApiKeyHeader, ApiKeyInfo, ApiKeyPlacement, AuthInfo, BasicInfo, Capabilities, Category, ChangeEvent,
    ChangeKind, CrmRecord, DeleteOutcome, EntityInfo, FieldInfo, FieldMapping, FieldType, MappingDirection, Oauth2Info,
    Page, PluginInfo, PullRequest, PushOutcome, PushRecord, RateLimit, RateLimitHeader, RateLimitMeasure, SettingInfo,
    WebhookRequest,
};
pub use bindings::exports::crmhost::adapter::bulk::{Pending, PullStep, PushStep};
pub use bindings::exports::crmhost::adapter::counting::CountRequest;
pub use bindings::exports::crmhost::adapter::files::{DownloadRequest, FileInfo};

/// The field a deleted [`CrmRecord`] carries when the CRM merged it into another record: its
/// value (text) is the surviving record's CRM id. The host then moves the workspace record's link
/// to the survivor instead of deleting it. The contract has no field for it, so this name is the
/// convention; [`merged_record`] builds such a record.
pub const MERGED_INTO_FIELD: &str = "crmhost:merged-into";

/// A tombstone for a record the CRM merged into `survivor`.
pub fn merged_record(id: impl Into<String>, survivor: impl Into<String>, modified_at: Option<String>) -> CrmRecord {
    CrmRecord {
        id: id.into(),
        fields: vec![FieldValue::new(MERGED_INTO_FIELD.to_owned(), Value::Text(survivor.into()))],
        modified_at,
        deleted: true,
    }
}

/// `Result` with [`AdapterError`] as the error.
pub type Result<T, E = AdapterError> = core::result::Result<T, E>;

/// Re-exported so plugins use the same `serde_json` as the SDK's helpers.
pub use serde_json;

/// A CRM adapter. Implement [`Adapter::describe`] and whichever operations the CRM supports;
/// every other operation answers [`AdapterError::NotSupported`].
///
/// Every method is called on a fresh instance bound to one connection, so there is no state to
/// keep between calls (and nothing leaks between workspaces).
pub trait Adapter {
    /// Describes the plugin: slug, auth, allowed hosts, entities, defaults. Called without a
    /// connection and must not send HTTP requests.
    fn describe() -> PluginInfo;

    /// Checks the connection and says who it is connected as.
    fn test_connection() -> Result<AccountInfo> {
        Err(AdapterError::not_supported("test-connection"))
    }

    /// Lists the CRM's fields for `entity`.
    fn list_fields(entity: String) -> Result<Vec<FieldInfo>> {
        Err(AdapterError::not_supported(format!("list-fields for {entity}")))
    }

    /// Reads one page of records; the host pages, one page per call.
    ///
    /// - **Cursor**: absent on the first page; answer `next_cursor` while more remain and `None`
    ///   on the last. It is opaque to the host: put in it all the next page needs (a keyset
    ///   position outlives a server-side locator). Never return more than `limit` records.
    /// - **`modified_since`** (RFC 3339): only records modified at or after it, each with
    ///   `modified_at`; the host keeps the newest it saw for the next run, so records sharing a
    ///   timestamp across a page boundary must not be dropped. Deleted records come back with
    ///   `deleted: true` where the CRM can list them (a merged one with `crmhost:merged-into`).
    /// - **`ids`**: when not empty, exactly those records; ids the CRM no longer has come back
    ///   deleted or are left out.
    /// - **`fields`**: the CRM fields to read; empty means the adapter's defaults.
    ///
    /// `crmhost plugin check --against <emulator>` checks paging, `ids` and `modified_since`.
    fn pull(request: PullRequest) -> Result<Page> {
        Err(AdapterError::not_supported(format!("pull for {}", request.entity)))
    }

    /// Upserts records on `match_key`; one outcome per input, in input order: `Created(id)`,
    /// `Updated(id)`, or `Failed(error)` for that record alone. A record with `crm_id` is updated
    /// by id; one without is matched on `match_key` (see [`matching::plan_matches`]). Pushing the
    /// same records twice must not create duplicates: the host retries after timeouts. An `Err`
    /// fails the whole call (`rate_limited` and `unavailable` are retried, `unauthorized`
    /// re-authenticates), so keep it for what concerns every record.
    fn push(entity: String, match_key: String, records: Vec<PushRecord>) -> Result<Vec<PushOutcome>> {
        let _ = (match_key, records);
        Err(AdapterError::not_supported(format!("push for {entity}")))
    }

    /// Deletes records by CRM id; one outcome per input, in order. A record already gone is
    /// `Deleted`: deletes are retried and must be idempotent.
    fn delete(entity: String, ids: Vec<String>) -> Result<Vec<DeleteOutcome>> {
        let _ = ids;
        Err(AdapterError::not_supported(format!("delete for {entity}")))
    }

    /// Verifies an inbound webhook and turns it into change events.
    fn parse_webhook(request: WebhookRequest) -> Result<Vec<ChangeEvent>> {
        let _ = request;
        Err(AdapterError::not_supported("webhooks"))
    }

    /// How many records a pull of `request.entity` since `request.modified_since` would return,
    /// when the CRM can tell in one cheap request (`Ok(None)` otherwise, the default). The host
    /// shows it as a run's `estimated_records`; it is never used to decide what to sync.
    fn count(request: CountRequest) -> Result<Option<u64>> {
        let _ = request;
        Ok(None)
    }

    /// The files attached to the CRM record `record_id` of `entity`, newest first.
    fn list_files(entity: String, record_id: String) -> Result<Vec<FileInfo>> {
        let _ = (entity, record_id);
        Err(AdapterError::not_supported("files"))
    }

    /// How the host fetches one of those files: a `GET` it sends itself, with the credentials.
    fn download(entity: String, record_id: String, file_id: String) -> Result<DownloadRequest> {
        let _ = (entity, record_id, file_id);
        Err(AdapterError::not_supported("files"))
    }

    /// A step of a bulk read (the host calls it instead of [`Adapter::pull`] for large reads):
    /// start a job when `request.cursor` is `None`, else continue the one the cursor names.
    /// Answer [`PullStep::Page`] with records (its `next_cursor` continuing the job) or
    /// [`PullStep::Pending`] — "not ready: call again with this cursor after `wait_ms`". Keep each
    /// call short (no waiting inside it): the host waits between calls and keeps the cursor, so a
    /// run resumed after a crash continues the job. The default answers `not-supported`, and the
    /// host then pulls page by page.
    fn bulk_pull(request: PullRequest) -> Result<PullStep> {
        let _ = request;
        Err(AdapterError::not_supported("bulk"))
    }

    /// A step of a bulk write of `records` upserted on `match_key` (the host calls it instead of
    /// [`Adapter::push`] for large writes): start a job when `job` is `None`, else continue it
    /// (the host passes the same records again). Answer [`PushStep::Done`] with one outcome per
    /// record in input order, or [`PushStep::Pending`]. The default answers `not-supported`, and
    /// the host then pushes in batches.
    fn bulk_push(entity: String, match_key: String, records: Vec<PushRecord>, job: Option<String>) -> Result<PushStep> {
        let _ = (entity, match_key, records, job);
        Err(AdapterError::not_supported("bulk"))
    }
}

/// Glue between the generated export trait and [`Adapter`]; not part of the public API.
#[doc(hidden)]
pub struct __Exported<T>(core::marker::PhantomData<T>);

impl<T: Adapter> bindings::exports::crmhost::adapter::adapter::Guest for __Exported<T> {
    fn describe() -> PluginInfo {
        T::describe()
    }
    fn test_connection() -> Result<AccountInfo> {
        T::test_connection()
    }
    fn list_fields(entity: String) -> Result<Vec<FieldInfo>> {
        T::list_fields(entity)
    }
    fn pull(request: PullRequest) -> Result<Page> {
        T::pull(request)
    }
    fn push(entity: String, match_key: String, records: Vec<PushRecord>) -> Result<Vec<PushOutcome>> {
        T::push(entity, match_key, records)
    }
    fn delete(entity: String, ids: Vec<String>) -> Result<Vec<DeleteOutcome>> {
        T::delete(entity, ids)
    }
    fn parse_webhook(request: WebhookRequest) -> Result<Vec<ChangeEvent>> {
        T::parse_webhook(request)
    }
}

impl<T: Adapter> bindings::exports::crmhost::adapter::counting::Guest for __Exported<T> {
    fn count(request: CountRequest) -> Result<Option<u64>> {
        T::count(request)
    }
}

impl<T: Adapter> bindings::exports::crmhost::adapter::files::Guest for __Exported<T> {
    fn list_files(entity: String, record_id: String) -> Result<Vec<FileInfo>> {
        T::list_files(entity, record_id)
    }
    fn download(entity: String, record_id: String, file_id: String) -> Result<DownloadRequest> {
        T::download(entity, record_id, file_id)
    }
}

impl<T: Adapter> bindings::exports::crmhost::adapter::bulk::Guest for __Exported<T> {
    fn pull(request: PullRequest) -> Result<PullStep> {
        T::bulk_pull(request)
    }
    fn push(entity: String, match_key: String, records: Vec<PushRecord>, job: Option<String>) -> Result<PushStep> {
        T::bulk_push(entity, match_key, records, job)
    }
}

/// Registers a type implementing [`Adapter`] as the plugin's export. Use it once per plugin crate.
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ty) => {
        #[doc(hidden)]
        type __CrmhostExported = $crate::__Exported<$adapter>;
        // The export glue only means something in a wasm component; off wasm (`cargo test` of a
        // plugin crate) the symbols' WIT names would not even link.
        // Off wasm, still check (and use) the adapter so a native `cargo test` sees the same errors.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $crate::PluginInfo = <$adapter as $crate::Adapter>::describe;
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __crmhost_exports {
            use super::__CrmhostExported;
            $crate::bindings::__export_crm_adapter!(__CrmhostExported with_types_in $crate::bindings);
        }
    };
}

/// The names most plugins need: `use crmhost_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::http::{Method, Request, Response};
    pub use crate::{
        AccountInfo, Adapter, AdapterError, Capabilities, ChangeEvent, ChangeKind, CountRequest, CrmRecord,
        DeleteOutcome, DownloadRequest, EntityInfo, FieldInfo, FieldMapping, FieldType, FieldValue, FileInfo,
        MERGED_INTO_FIELD, MappingDirection, Page, Pending, PluginInfo, PullRequest, PullStep, PushOutcome, PushRecord,
        PushStep, RateLimitPolicy, Result, Value, WebhookRequest, connection, merged_record,
    };
}

#[cfg(test)]
mod readme_tests {
    /// The README's complete plugin is the example the test suite compiles, line for line.
    #[test]
    fn the_readme_plugin_is_the_compiled_example() {
        let readme = include_str!("../README.md");
        let example = include_str!("../examples/minimal_plugin.rs");
        let start = readme.find("```rust\n").expect("the README shows the plugin") + "```rust\n".len();
        let end = start + readme[start..].find("```\n").expect("the block ends");
        let body = example.split_once("\n\n").expect("the example opens with its //! line").1;
        assert_eq!(&readme[start..end], body, "update sdk/README.md from sdk/examples/minimal_plugin.rs");
    }
}
