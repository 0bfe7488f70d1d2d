//! Shared helpers for the end-to-end tests, benchmarks and crash tests; `tests/README.md` says
//! which to use for what. Everything is re-exported at the crate root.
//!
//! PostgreSQL: tests use `CRMHOST_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and create a fresh database per test. Without a reachable server they skip, unless `CI=true` or
//! `CRMHOST_REQUIRE_POSTGRES=1`, in which case they fail: CI must run the PostgreSQL suite.

mod adapter;
mod app;
mod browser;
mod db;
mod egress;
mod logs;
mod metrics;
mod plugins;
mod python;
mod receiver;
mod sync_harness;

pub use adapter::*;
pub use app::*;
pub use browser::*;
pub use db::*;
pub use egress::*;
pub use logs::*;
pub use metrics::*;
pub use plugins::*;
pub use python::*;
pub use receiver::*;
pub use sync_harness::*;
