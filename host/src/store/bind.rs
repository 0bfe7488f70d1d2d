//! Binding a whole list as one statement parameter. SQLite looks each `$N` up by name in a linear
//! list, so a statement with hundreds of parameters pays quadratically to bind them; one
//! parameter per list (a JSON array read with `json_each` on SQLite, a `text[]` on PostgreSQL)
//! costs the same for ten values or ten thousand.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo};
use sqlx::{Encode, Postgres, Sqlite, Type};

use super::{Backend, Store};

/// Texts bound as one parameter; match them with [`Store::any_of`].
#[derive(Debug, Clone)]
pub(crate) struct TextList<'a>(pub Vec<&'a str>);

impl<'a> TextList<'a> {
    /// The list of `values`.
    pub fn of<S: AsRef<str>>(values: &'a [S]) -> Self {
        Self(values.iter().map(AsRef::as_ref).collect())
    }
}

impl Type<Sqlite> for TextList<'_> {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for TextList<'_> {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(serde_json::to_string(&self.0)?, buf)
    }
}

impl Type<Postgres> for TextList<'_> {
    fn type_info() -> PgTypeInfo {
        <Vec<&str> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for TextList<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Vec<&str> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Store {
    /// `in (…)` over the [`TextList`] bound as parameter `param`, in this backend's dialect.
    pub(crate) fn any_of(&self, param: usize) -> String {
        match self.backend() {
            Backend::Sqlite => format!("in (select value from json_each(${param}))"),
            Backend::Postgres => format!("= any(${param})"),
        }
    }

    /// `from <rows>` over a JSON array of objects bound as parameter `param`, each row's fields
    /// readable as `r.<name>` (PostgreSQL: typed by `columns`, `name type, …`) or through
    /// [`Store::json_field`] (SQLite).
    pub(crate) fn json_rows(&self, param: usize, columns: &str) -> String {
        match self.backend() {
            Backend::Sqlite => format!("json_each(${param}) r"),
            Backend::Postgres => format!("jsonb_to_recordset(${param}::jsonb) as r({columns})"),
        }
    }

    /// A field of a [`Store::json_rows`] row: `->>` (a scalar) or, with `json`, `->` (a JSON
    /// value, SQL NULL when the key is absent).
    pub(crate) fn json_field(&self, name: &str, json: bool) -> String {
        match (self.backend(), json) {
            (Backend::Sqlite, false) => format!("r.value ->> '{name}'"),
            (Backend::Sqlite, true) => format!("r.value -> '{name}'"),
            (Backend::Postgres, _) => format!("r.{name}"),
        }
    }
}
