//! [`StoreError`]: what can go wrong in the store, with named constraints mapped to conflicts.

/// A store failure. Details are for logs; the API layer shows users only a generic message for
/// anything but `NotFound` and `Conflict`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row.
    #[error("not found")]
    NotFound,
    /// A unique constraint was violated.
    #[error("conflicts with an existing row ({constraint})")]
    Conflict {
        /// The constraint's name (or the columns, for SQLite).
        constraint: String,
    },
    /// A compare-and-set found the row changed by someone else.
    #[error("{0}")]
    Changed(&'static str),
    /// Bad configuration (for example an unsupported URL).
    #[error("{0}")]
    Config(String),
    /// A stored value could not be understood (a bug or a manual edit).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict {
                constraint: db.constraint().map(str::to_owned).unwrap_or_else(|| db.message().to_owned()),
            },
            _ => Self::Database(err),
        }
    }
}

/// Turning a store's `NotFound` into the caller's own "no such thing", every other failure into
/// the caller's error as it converts store errors.
pub trait StoreResultExt<T> {
    /// `NotFound` becomes `not_found()`; anything else converts with `From<StoreError>`.
    fn or_not_found<E: From<StoreError>>(self, not_found: impl FnOnce() -> E) -> Result<T, E>;
}

impl<T> StoreResultExt<T> for Result<T, StoreError> {
    fn or_not_found<E: From<StoreError>>(self, not_found: impl FnOnce() -> E) -> Result<T, E> {
        self.map_err(|err| match err {
            StoreError::NotFound => not_found(),
            other => E::from(other),
        })
    }
}
