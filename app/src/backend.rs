//! The database backends the app runs on.

use std::fmt;

/// The database backends the app runs on; also the SQL dialect a piece of DDL is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (development), with STRICT tables.
    Sqlite,
    /// A PostgreSQL server (production).
    Postgres,
}

impl Backend {
    /// The name used in messages and in export files.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
