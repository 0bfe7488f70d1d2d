//! All SQL lives here: one [`Store`] API over SQLite (the embedded default) and PostgreSQL.
//!
//! Queries are written once where the dialects agree (`$n` placeholders in order, `on conflict`,
//! `returning`) and run on whichever pool is configured; the two schemas live in
//! `migrations/sqlite` and `migrations/postgres` and are applied at start. Timestamps are bound
//! from Rust (UTC) rather than defaulted in SQL, so both backends hold identical values.

mod audit;
mod bind;
mod bulk_jobs;
mod conflicts;
mod credentials;
mod cursors;
mod error;
mod integrations;
mod links;
mod mappings;
mod oauth_states;
mod records;
mod runs;
mod schedule;
mod statistics;
mod webhook_deliveries;
mod webhook_endpoints;
mod webhook_secrets;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use audit::{AuditAction, AuditEntry, AuditTarget, NewAuditEntry};
pub use bulk_jobs::{BulkDirection, BulkJob};
pub use conflicts::{ConflictFilter, NewConflict, SyncConflict};
pub use credentials::{CredentialsLock, NewConnection, SealedRow, StoredCredentials};
pub use error::{StoreError, StoreResultExt};
pub use integrations::{Integration, IntegrationStatus};
pub use links::{LinkStatus, LinkWrite, RecordLink};
pub use mappings::StoredMapping;
pub use oauth_states::{NewOAuthState, PendingOAuth, StateRejection};
pub use records::{RecordChange, RecordQuery, StoredRecord, UpsertOutcome};
pub use runs::{NewRun, PhaseSpan, RunCounts, RunFilter, RunItem, SyncRun};
pub use schedule::{Lease, ScheduleState, ScheduleUpdate};
pub use webhook_deliveries::{AttemptRecord, DeliveryFilter, DeliveryStatus, DueDelivery, NewDelivery, StoredDelivery};
pub use webhook_endpoints::{EndpointChanges, StoredEndpoint};
pub use webhook_secrets::StoredWebhookSecret;

/// `Result` with [`StoreError`].
pub type StoreResult<T> = Result<T, StoreError>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite (one process).
    Sqlite,
    /// PostgreSQL (one or more processes).
    Postgres,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store: cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// Fields whose match-key index this process has made sure of (see `records.rs`).
    match_indexes: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Rows written to the sync tables, for planner statistics (see `statistics.rs`).
    growth: std::sync::Arc<statistics::GrowthTracker>,
}

/// Runs the same body against whichever pool the store has. The body is type-checked once per
/// backend, so a query that one dialect cannot decode does not compile.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// An instant later than any stored one, for the first page of a newest-first listing. Year 9999,
/// not `MAX_UTC`: SQLite compares instants as text, and `+262143-…` sorts before `2026-…`.
fn far_future() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default()
}

impl Store {
    /// Connects to `url`: `postgres://…` / `postgresql://…` or `sqlite:…`. Does not migrate.
    #[tracing::instrument(name = "store.connect", skip_all, fields(backend))]
    pub async fn connect(url: &str) -> StoreResult<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            tracing::Span::current().record("backend", "postgres");
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            Ok(Self { pool: Pool::Postgres(pool), match_indexes: Default::default(), growth: Default::default() })
        } else if url.starts_with("sqlite:") {
            tracing::Span::current().record("backend", "sqlite");
            let options = SqliteConnectOptions::from_str(url)?;
            Self::sqlite(options).await
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL scheme in `{}`: use postgres://… or sqlite:…",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    /// Opens (creating if missing) the SQLite database file at `path`.
    pub async fn open_sqlite_file(path: &Path) -> StoreResult<Self> {
        Self::sqlite(SqliteConnectOptions::new().filename(path).create_if_missing(true)).await
    }

    async fn sqlite(options: SqliteConnectOptions) -> StoreResult<Self> {
        // WAL lets readers proceed during writes; the busy timeout absorbs short write contention.
        // `synchronous = NORMAL` is the setting WAL is designed for: a commit survives a crash of
        // the process (the sync engine's crash safety rests on that), and only an OS crash or power
        // loss can take back the last commits; FULL would fsync every commit, which caps a sync at
        // a few hundred records per second.
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        Ok(Self { pool: Pool::Sqlite(pool), match_indexes: Default::default(), growth: Default::default() })
    }

    /// Applies pending migrations.
    #[tracing::instrument(name = "store.migrate", skip_all)]
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        with_pool!(self, pool => sqlx::query("select 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// How a read-then-write transaction starts. On SQLite `BEGIN IMMEDIATE` takes the write lock
    /// up front: a deferred transaction that read first cannot upgrade once another connection has
    /// written (`SQLITE_BUSY` at once, the busy timeout does not apply), while an immediate one
    /// waits its turn.
    fn begin_statement(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "BEGIN IMMEDIATE",
            Pool::Postgres(_) => "BEGIN",
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Open connections and how many of them are idle.
    pub fn pool_use(&self) -> (u32, u32) {
        with_pool!(self, pool => (pool.size(), u32::try_from(pool.num_idle()).unwrap_or(u32::MAX)))
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}
