//! Errors of the plugin layer: loading a component, and the outer (host-level) failure of a call.
//!
//! An adapter's own error ([`AdapterError`](super::bindings::AdapterError)) is not here: it is the
//! inner `Result` of a successful call. A [`CallError`] means the call itself failed: a trap,
//! a sandbox limit, a timeout, or the host being out of capacity.

/// Why a component could not be loaded into the registry.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid WebAssembly component (or compiling them failed).
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// The component imports something the host does not provide or does not allow.
    #[error(
        "the component imports `{0}`, which plugins may not use (allowed: {allowed}; wasi:sockets always denies)",
        allowed = super::loader::ALLOWED_IMPORT_PREFIXES.iter().map(|p| format!("{p}*")).collect::<Vec<_>>().join(", ")
    )]
    ForbiddenImport(String),
    /// The component implements none of the contract versions this host loads.
    #[error(
        "the component does not implement crmhost:adapter@{contract} (nor an older version this host loads): {detail}"
    )]
    Incompatible {
        /// The newest contract version the host speaks.
        contract: &'static str,
        /// What the linker said.
        detail: String,
    },
    /// The component instantiates more core modules than the operator allows per plugin.
    #[error(
        "the component needs more core module instances than `[engine] max_core_instances_per_plugin` = {limit} allows; raise it to load this plugin ({detail})"
    )]
    TooManyCoreInstances {
        /// The operator's limit.
        limit: u32,
        /// What wasmtime said.
        detail: String,
    },
    /// `describe()` failed.
    #[error("describe() failed: {0}")]
    Describe(#[from] CallError),
    /// `describe()` returned something the host cannot accept.
    #[error("invalid plugin description: {0}")]
    InvalidDescription(String),
    /// The operator's configuration for this plugin is invalid.
    #[error("invalid operator configuration for plugin `{slug}`: {detail}")]
    Config {
        /// The plugin.
        slug: String,
        /// What is wrong.
        detail: String,
    },
    /// Reading the file failed.
    #[error("could not read {path}: {detail}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
}

/// Why a plugin call failed as a whole (the outer error layer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The guest ran longer than its CPU budget.
    #[error("the plugin exceeded its CPU budget of {budget_ms} ms")]
    CpuBudgetExceeded {
        /// The budget.
        budget_ms: u64,
    },
    /// The call, including time waiting on HTTP, ran past its wall-clock timeout.
    #[error("the plugin call exceeded its timeout of {timeout_ms} ms")]
    WallClockTimeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The guest tried to grow its memory past the limit.
    #[error("the plugin exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimitExceeded {
        /// The limit.
        limit_bytes: u64,
    },
    /// The guest trapped (a panic, an out-of-bounds access, `unreachable`, ...).
    #[error("the plugin crashed: {0}")]
    Trap(String),
    /// Every instance slot is in use.
    #[error("too many plugin calls in flight; try again shortly")]
    Busy,
    /// Instantiation or a host-side failure.
    #[error("plugin runtime failure: {0}")]
    Runtime(String),
}

/// An adapter's error as a machine-readable kind and a message safe to show (the plugin contract
/// forbids secrets in messages; the host also caps their length).
pub fn adapter_error_summary(err: &super::bindings::AdapterError) -> (&'static str, String) {
    use super::bindings::AdapterError as E;
    let cap = |s: &str| s.chars().take(500).collect::<String>();
    match err {
        E::Unauthorized(i) => ("unauthorized", cap(&i.message)),
        E::Forbidden(i) => ("forbidden", cap(&i.message)),
        E::NotFound(i) => ("not_found", cap(&i.message)),
        E::Invalid(i) => ("invalid", cap(&i.message)),
        E::Duplicate(d) => ("duplicate", cap(&d.message)),
        E::RateLimited(r) => ("rate_limited", cap(&r.message)),
        E::Unavailable(i) => ("unavailable", cap(&i.message)),
        E::NotSupported(what) => ("not_supported", cap(what)),
        E::Internal(i) => ("internal", cap(&i.message)),
    }
}
