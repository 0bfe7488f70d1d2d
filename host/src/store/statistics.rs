//! Keeping PostgreSQL's planner statistics current while the sync tables grow from empty. Until
//! autovacuum first analyzes a table (up to a minute after it grew), the planner believes it is
//! tiny and reads a page's links or records by scanning the workspace's whole key range instead of
//! looking each one up: a first import slows by the table's size per page. So the store analyzes
//! `records` and `record_links` itself, each when the rows it wrote to that table double (from
//! 1,000): a handful of times over any import, cheap (a sample of the table, JSON columns left out
//! by migration 0009) and in the background, so the writer that crossed the mark does not wait.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Backend, Store, with_pool};

/// Rows written before the first analyze.
const FIRST_ANALYZE_AT: u64 = 1_000;

/// A table whose growth is tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SyncTable {
    /// `records`.
    Records,
    /// `record_links`.
    Links,
}

impl SyncTable {
    fn analyze(self) -> &'static str {
        match self {
            Self::Records => "analyze records",
            Self::Links => "analyze record_links",
        }
    }
}

/// Rows this process wrote to one table, and when to analyze it next.
#[derive(Debug)]
struct Growth {
    written: AtomicU64,
    next_analyze_at: AtomicU64,
}

impl Default for Growth {
    fn default() -> Self {
        Self { written: AtomicU64::new(0), next_analyze_at: AtomicU64::new(FIRST_ANALYZE_AT) }
    }
}

/// The growth of each sync table.
#[derive(Debug, Default)]
pub(super) struct GrowthTracker {
    records: Growth,
    links: Growth,
}

impl Store {
    /// Counts rows written to `table`; when the count doubled, starts analyzing it on a task of its
    /// own. Only on PostgreSQL (SQLite's planner uses the primary key without statistics).
    pub(super) fn note_rows_written(&self, table: SyncTable, rows: usize) {
        if self.backend() != Backend::Postgres || rows == 0 {
            return;
        }
        let growth = match table {
            SyncTable::Records => &self.growth.records,
            SyncTable::Links => &self.growth.links,
        };
        let written = growth.written.fetch_add(rows as u64, Ordering::Relaxed) + rows as u64;
        let due = growth.next_analyze_at.load(Ordering::Relaxed);
        // Whoever moves the mark analyzes; a concurrent writer sees it moved and does not.
        if written < due
            || growth
                .next_analyze_at
                .compare_exchange(due, written.saturating_mul(2), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move { store.analyze(table, written).await });
    }

    #[tracing::instrument(name = "store.analyze", skip(self))]
    async fn analyze(&self, table: SyncTable, written: u64) {
        let analyzed = with_pool!(self, pool => sqlx::query(table.analyze()).execute(pool).await.map(|_| ()));
        match analyzed {
            Ok(()) => tracing::debug!("analyzed a sync table"),
            Err(err) => tracing::warn!(error = %err, "could not analyze a sync table"),
        }
    }
}
