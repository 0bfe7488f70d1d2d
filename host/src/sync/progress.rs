//! Live progress of the runs this process is executing: one `watch` channel per run, read by
//! `?wait=true` callers and Server-Sent-Event subscribers. Runs of other processes (or finished
//! ones) are read from the store instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::watch;

use crate::domain::{RunId, RunStatus};
use crate::store::RunCounts;

/// A run's progress at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The run.
    pub run_id: RunId,
    /// `running` until it ends, then its final status.
    pub status: RunStatus,
    /// What it is doing (`pulling contact`, `pushing contact`, `done`).
    pub phase: String,
    /// Counters so far.
    pub counts: RunCounts,
    /// Whether it has ended.
    pub finished: bool,
    /// Why it failed as a whole.
    pub error: Option<String>,
}

/// The live runs of this process.
#[derive(Debug, Clone, Default)]
pub struct LiveRuns {
    runs: Arc<Mutex<HashMap<RunId, watch::Receiver<Progress>>>>,
}

impl LiveRuns {
    /// Registers a run; the sender reports its progress.
    pub fn start(&self, run_id: &RunId) -> watch::Sender<Progress> {
        let initial = Progress {
            run_id: run_id.clone(),
            status: RunStatus::Running,
            phase: "starting".to_owned(),
            counts: RunCounts::default(),
            finished: false,
            error: None,
        };
        let (tx, rx) = watch::channel(initial);
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).insert(run_id.clone(), rx);
        tx
    }

    /// Forgets a run that ended (its receivers keep the last value).
    pub fn end(&self, run_id: &RunId) {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).remove(run_id);
    }

    /// A receiver for a run this process is executing.
    pub fn subscribe(&self, run_id: &RunId) -> Option<watch::Receiver<Progress>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).get(run_id).cloned()
    }

    /// How many runs are executing.
    pub fn len(&self) -> usize {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
