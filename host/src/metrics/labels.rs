//! The label sets of crmhost's metrics and the closed sets of values some of them take; every
//! value is a fixed spelling or a plugin slug, so no label can carry a secret or personal data.

use prometheus_client::encoding::EncodeLabelSet;

use crate::plugins::CallError;

/// What became of a record a run handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordOutcome {
    /// Written (either side).
    Succeeded,
    /// Failed.
    Failed,
    /// Left as a conflict for a user.
    Conflict,
    /// Nothing to do.
    Skipped,
}

impl RecordOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Conflict => "conflict",
            Self::Skipped => "skipped",
        }
    }
}

/// How a plugin call ended, as the sandbox sees it (a CRM error the plugin reports is `ok` here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// The guest returned.
    Ok,
    /// The sandbox stopped the call or the runtime failed.
    Error,
}

/// What an outbound webhook delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; another attempt is scheduled.
    Retrying,
    /// It failed for the last time.
    Failed,
}

impl DeliveryOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }
}

/// An outbound response's status, grouped; a rate limit (429) stands alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum StatusClass {
    Success,
    Redirect,
    RateLimited,
    ClientError,
    ServerError,
    NoResponse,
}

impl StatusClass {
    pub(super) fn of(status: Option<u16>) -> Self {
        match status {
            None => Self::NoResponse,
            Some(429) => Self::RateLimited,
            Some(s) if s >= 500 => Self::ServerError,
            Some(s) if s >= 400 => Self::ClientError,
            Some(s) if s >= 300 => Self::Redirect,
            Some(_) => Self::Success,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "2xx",
            Self::Redirect => "3xx",
            Self::RateLimited => "429",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
            Self::NoResponse => "none",
        }
    }
}

/// The failure kind a sandbox stop counts as; `None` for failures that are not the sandbox's.
pub(super) fn failure_kind(err: &CallError) -> Option<&'static str> {
    match err {
        CallError::CpuBudgetExceeded { .. } => Some("cpu_budget"),
        CallError::WallClockTimeout { .. } => Some("wall_clock"),
        CallError::MemoryLimitExceeded { .. } => Some("memory"),
        CallError::Trap(_) => Some("trap"),
        CallError::Busy => Some("busy"),
        CallError::Runtime(_) => Some("runtime"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RunLabels {
    pub operation: &'static str,
    pub trigger: &'static str,
    pub status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RunKindLabels {
    pub operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RecordLabels {
    pub outcome: &'static str,
}

impl From<RecordOutcome> for RecordLabels {
    fn from(outcome: RecordOutcome) -> Self {
        Self { outcome: outcome.as_str() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct PluginLabels {
    pub plugin: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct PluginCallLabels {
    pub plugin: String,
    pub operation: &'static str,
    pub outcome: &'static str,
}

impl PluginCallLabels {
    pub(super) fn new(plugin: &str, operation: &'static str, outcome: CallOutcome) -> Self {
        let outcome = match outcome {
            CallOutcome::Ok => "ok",
            CallOutcome::Error => "error",
        };
        Self { plugin: plugin.to_owned(), operation, outcome }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct PluginFailureLabels {
    pub plugin: String,
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct OutboundLabels {
    pub plugin: String,
    pub status: &'static str,
}

impl OutboundLabels {
    pub(super) fn new(plugin: &str, status: StatusClass) -> Self {
        Self { plugin: plugin.to_owned(), status: status.as_str() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct DeliveryLabels {
    pub outcome: &'static str,
}

impl From<DeliveryOutcome> for DeliveryLabels {
    fn from(outcome: DeliveryOutcome) -> Self {
        Self { outcome: outcome.as_str() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct PoolLabels {
    pub state: &'static str,
}
