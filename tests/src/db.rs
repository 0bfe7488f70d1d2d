//! Databases for tests on both backends (a SQLite file, or a fresh PostgreSQL database dropped
//! afterwards), and raw SQL for tests that look at or tamper with stored rows.

use crmhost::store::Store;
use sqlx::Connection;

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A database for one test; dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub struct TestDb {
    /// The URL crmhost connects with.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn postgres_admin_url() -> String {
    std::env::var("CRMHOST_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") || std::env::var_os("CRMHOST_REQUIRE_POSTGRES").is_some()
}

impl TestDb {
    /// A database on `backend`, or `None` when PostgreSQL is unavailable and not required.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Some(Self { url, _dir: Some(dir), pg_name: None })
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let mut conn = match sqlx::PgConnection::connect(&admin).await {
                    Ok(conn) => conn,
                    Err(err) if !postgres_required() => {
                        eprintln!("skipping PostgreSQL test: cannot connect to {admin}: {err}");
                        return None;
                    }
                    Err(err) => panic!("PostgreSQL is required (CI) but unreachable at {admin}: {err}"),
                };
                let name = format!("crmhost_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("create database {name}")).execute(&mut conn).await.expect("create database");
                let _ = conn.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Some(Self { url: format!("{base}/{name}"), _dir: None, pg_name: Some(name) })
            }
        }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        let admin = postgres_admin_url();
        // Drop runs outside any runtime we may block; use a private one on a plain thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("drop database if exists {name} with (force)")).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// Runs one statement (no parameters) on the database at `url`; returns rows affected.
pub async fn raw_execute(url: &str, sql: &str) -> u64 {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        let done = sqlx::query(sql).execute(&pool).await.expect("statement").rows_affected();
        pool.close().await;
        done
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let done = sqlx::query(sql).execute(&pool).await.expect("statement").rows_affected();
        pool.close().await;
        done
    }
}

/// Every row of a query (no parameters), each as its columns' bytes (text as UTF-8, nulls empty).
pub async fn raw_rows(url: &str, sql: &str) -> Vec<Vec<Vec<u8>>> {
    use sqlx::Row;
    fn cell<R: Row>(row: &R, i: usize) -> Vec<u8>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
        if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>, _>(i) {
            return bytes;
        }
        if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
            return text.into_bytes();
        }
        if let Ok(Some(n)) = row.try_get::<Option<i64>, _>(i) {
            return n.to_string().into_bytes();
        }
        Vec::new()
    }
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        let rows = sqlx::query(sql).fetch_all(&pool).await.expect("query");
        pool.close().await;
        rows.iter().map(|r| (0..r.columns().len()).map(|i| cell(r, i)).collect()).collect()
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let rows = sqlx::query(sql).fetch_all(&pool).await.expect("query");
        pool.close().await;
        rows.iter().map(|r| (0..r.columns().len()).map(|i| cell(r, i)).collect()).collect()
    }
}
