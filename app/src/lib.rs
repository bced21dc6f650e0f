//! The TOEFL Dashboard application library: the schema ([`schema`]), the database layer ([`db`]) on
//! SQLite and PostgreSQL, the database URL ([`url`]) and the domain's vocabularies ([`domain`]).
//!
//! The operations tooling in `xtask` builds on this crate and never names a table or column itself.

pub mod backend;
pub mod counts;
pub mod db;
pub mod demo;
pub mod domain;
pub mod libpq;
pub mod passfile;
pub mod schema;
pub mod tls;
pub mod url;
pub mod value;

mod pg_client;
mod pg_copy;

pub use backend::Backend;
pub use counts::RowCounts;
pub use db::{Create, Database, Error, RowWriter};
pub use schema::{Column, ColumnType, Table, SCHEMA_VERSION, TABLES};
pub use url::DatabaseUrl;
pub use value::Value;
