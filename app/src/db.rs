//! The database layer: one connection to SQLite or PostgreSQL, and the few operations on it that
//! differ between the two.

use std::path::Path;
use std::time::Duration;

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::backend::Backend;
use crate::counts::RowCounts;
use crate::libpq::CONNECT_TIMEOUT;
use crate::pg_client::{driver_config, ConnectError, PgClient};
use crate::pg_copy::{CopyIn, CopyOut};
use crate::schema::{
    self, Column, ColumnType, RowCheck, Table, MIGRATIONS_TABLE, PRIMARY_KEY, SCHEMA_VERSION,
    TABLES,
};
use crate::tls::SslMode;
use crate::url::{process_environment, redact, DatabaseUrl, UrlError};
use crate::value::{parse_date, parse_timestamp, write_date, write_timestamp, Value};

/// What went wrong in the database layer. Messages say what failed and what to do; none contains a
/// password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL could not be parsed.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A SQLite file that must already exist does not.
    #[error("SQLite database {0} does not exist: check DATABASE_URL, or run `cargo xtask migrate` to create it")]
    SqliteMissing(String),
    /// The SQLite file could not be opened.
    #[error("cannot open SQLite database {path}: {source}")]
    SqliteOpen {
        /// The file.
        path: String,
        /// The driver's error.
        source: rusqlite::Error,
    },
    /// The PostgreSQL server could not be reached or refused the login.
    #[error("cannot connect to {url}: {message}; check that the server is running and that the URL, user and password are right")]
    PostgresConnect {
        /// The URL, redacted.
        url: String,
        /// The driver's message.
        message: String,
    },
    /// TLS settings that cannot be used, a server certificate they refuse, or no password where
    /// the server asks for one.
    #[error("cannot connect to {url}: {message}")]
    PostgresSetup {
        /// The URL, redacted.
        url: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A SQLite statement failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL statement failed. Not a `source`: the driver's own text spans lines and would
    /// repeat what [`postgres_message`] already says.
    #[error("PostgreSQL: {}", postgres_message(.0))]
    Postgres(postgres::Error),
    /// The database has no schema yet.
    #[error("{0} has no schema yet: run `cargo xtask migrate` first")]
    NoSchema(String),
    /// The database's schema version is not the one this build expects.
    #[error("{url} has schema version {found}, but this tool expects version {SCHEMA_VERSION}: {}",
        if *found < SCHEMA_VERSION { "run `cargo xtask migrate` to update it" }
        else { "it was migrated by a newer version of this tool; update your checkout" })]
    SchemaVersion {
        /// The URL, redacted.
        url: String,
        /// The version recorded in the database.
        found: i64,
    },
    /// A row stored at an earlier schema version breaks a rule that a migration adds.
    #[error("{}", check.refusal(table, *version, &id.to_string()))]
    MigrationRefused {
        /// The version the migration was to.
        version: i64,
        /// The table.
        table: &'static Table,
        /// The row's id.
        id: i64,
        /// The check that refuses it.
        check: &'static RowCheck,
    },
    /// A stored value does not have the form its column type demands.
    #[error("{table} row id {id}: column {column} holds {found:?}, which is not a valid {ty:?}")]
    BadStoredValue {
        /// The table.
        table: &'static str,
        /// The row's id.
        id: i64,
        /// The column.
        column: &'static str,
        /// What is stored.
        found: String,
        /// The column type.
        ty: ColumnType,
    },
    /// A value could not be put in, or read from, PostgreSQL's binary COPY format.
    #[error("PostgreSQL COPY: {0}")]
    Encode(String),
}

impl From<postgres::Error> for Error {
    fn from(error: postgres::Error) -> Error {
        Error::Postgres(error)
    }
}

/// Shorthand for this module's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A PostgreSQL error as one line: the server's message, detail and hint, or the client's error.
pub fn postgres_message(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut message = db.message().to_string();
        if let Some(detail) = db.detail() {
            message.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            message.push_str(&format!("; hint: {hint}"));
        }
        return message;
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    redact(&message)
}

/// How long a PostgreSQL statement waits for a lock before it gives up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// How long SQLite waits for another connection's lock before it gives up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open connection to the app's database.
pub enum Database {
    /// A SQLite file.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL server.
    Postgres(PgClient),
}

/// Whether [`Database::open`] may create a SQLite file that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// A missing SQLite file is an error.
    No,
    /// A missing SQLite file is created (empty).
    IfMissing,
}

impl Database {
    /// Connects to `url`.
    pub fn open(url: &DatabaseUrl, create: Create) -> Result<Database> {
        match url {
            DatabaseUrl::Sqlite(path) => open_sqlite(path, create).map(Database::Sqlite),
            DatabaseUrl::Postgres(_) => open_postgres(url).map(Database::Postgres),
        }
    }

    /// The backend of this connection.
    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs statements that return no rows.
    pub fn execute_batch(&mut self, sql: &str) -> Result<()> {
        match self {
            Database::Sqlite(conn) => conn.execute_batch(sql)?,
            Database::Postgres(client) => client.batch_execute(sql)?,
        }
        Ok(())
    }

    /// Runs a query that returns one integer (NULL reads as `None`).
    pub fn query_i64(&mut self, sql: &str) -> Result<Option<i64>> {
        Ok(match self {
            Database::Sqlite(conn) => conn.query_row(sql, [], |row| row.get(0))?,
            Database::Postgres(client) => client.query_one(sql, &[])?.get(0),
        })
    }

    /// Runs `work` in a read-write transaction: committed when it returns `Ok`, rolled back otherwise,
    /// so that the database is either fully changed or exactly as before.
    pub fn transaction<T, E: From<Error>>(
        &mut self,
        work: impl FnOnce(&mut Database) -> Result<T, E>,
    ) -> Result<T, E> {
        let begin = match self {
            // IMMEDIATE takes the write lock now, so a concurrent writer fails fast, not at commit.
            Database::Sqlite(_) => "BEGIN IMMEDIATE",
            Database::Postgres(_) => "BEGIN",
        };
        self.run_in_transaction(begin, work)
    }

    /// Runs `work` in a read-write transaction for loading rows that the caller checks itself, which
    /// `work` starts with [`Database::start_bulk_load`] and ends with
    /// [`Database::finish_bulk_load`]. On SQLite the connection then neither evaluates CHECK
    /// constraints (of columns and of rows) nor looks up the row each reference points to, row by
    /// row: the caller checks every value and row before writing it, and every reference before the
    /// commit in one pass per key ([`Database::find_dangling_reference`]), as PostgreSQL's key
    /// rebuild does. NOT NULL, column types and unique keys are still enforced, and atomicity is
    /// untouched: the journal is SQLite's usual one, and a failure rolls everything back.
    pub fn bulk_load<T, E: From<Error>>(
        &mut self,
        work: impl FnOnce(&mut Database) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.backend() == Backend::Postgres {
            return self.transaction(work);
        }
        // Outside the transaction: SQLite ignores `foreign_keys` inside one. The statement journals
        // of many-row INSERTs stay in memory rather than in a temporary file.
        self.execute_batch(
            "PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON; \
             PRAGMA temp_store = MEMORY",
        )?;
        let loaded = self.transaction(work);
        let restored = self.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA ignore_check_constraints = OFF; \
             PRAGMA temp_store = DEFAULT",
        );
        let value = loaded?;
        restored?;
        Ok(value)
    }

    /// Runs `work` in one read-only transaction, so every table is read at the same moment even
    /// while the app writes.
    pub fn read_snapshot<T, E: From<Error>>(
        &mut self,
        work: impl FnOnce(&mut Database) -> Result<T, E>,
    ) -> Result<T, E> {
        let begin = match self {
            Database::Sqlite(_) => "BEGIN DEFERRED",
            Database::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        self.run_in_transaction(begin, work)
    }

    fn run_in_transaction<T, E: From<Error>>(
        &mut self,
        begin: &str,
        work: impl FnOnce(&mut Database) -> Result<T, E>,
    ) -> Result<T, E> {
        self.execute_batch(begin)?;
        match work(self) {
            Ok(value) => {
                self.execute_batch("COMMIT")?;
                Ok(value)
            }
            Err(error) => {
                // The work's error is the one to report; a failed rollback also ends the transaction
                // (the connection is dropped right after by every caller).
                let _ = self.execute_batch("ROLLBACK");
                Err(error)
            }
        }
    }

    fn table_exists(&mut self, name: &str) -> Result<bool> {
        Ok(match self {
            Database::Sqlite(conn) => conn
                .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
                .exists([name])?,
            Database::Postgres(client) => client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])?
                .get(0),
        })
    }

    /// The schema version recorded in the database, or `None` when it has no schema.
    pub fn schema_version(&mut self) -> Result<Option<i64>> {
        if !self.table_exists(MIGRATIONS_TABLE)? {
            return Ok(None);
        }
        self.query_i64(&format!("SELECT max(version) FROM {MIGRATIONS_TABLE}"))
    }

    /// Fails unless the database has exactly the schema version this build expects; `url` names the
    /// database in the message.
    pub fn check_schema_version(&mut self, url: &DatabaseUrl) -> Result<()> {
        match self.known_schema_version(url)? {
            SCHEMA_VERSION => Ok(()),
            found => Err(Error::SchemaVersion {
                url: url.to_string(),
                found,
            }),
        }
    }

    /// The database's schema version, if this build knows it: at most [`SCHEMA_VERSION`] (an older
    /// one is read and written as it is, e.g. exported before it is migrated). Fails when the
    /// database has no schema, or one of a newer build; `url` names the database in the message.
    pub fn known_schema_version(&mut self, url: &DatabaseUrl) -> Result<i64> {
        match self.schema_version()? {
            None => Err(Error::NoSchema(url.to_string())),
            Some(found) if found > SCHEMA_VERSION => Err(Error::SchemaVersion {
                url: url.to_string(),
                found,
            }),
            Some(found) => Ok(found),
        }
    }

    /// Creates or updates the schema to [`SCHEMA_VERSION`], all versions in one transaction; returns
    /// the versions it applied (none when the database was up to date).
    pub fn migrate(&mut self) -> Result<Vec<i64>> {
        self.transaction(Database::migrate_in_transaction)
    }

    /// Like [`Database::migrate`], inside the caller's transaction: a load into an empty database
    /// that fails then leaves it without a schema, exactly as it was.
    pub fn migrate_in_transaction(&mut self) -> Result<Vec<i64>> {
        self.execute_batch(&schema::create_migrations_table(self.backend()))?;
        let current = self.schema_version()?.unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(Error::SchemaVersion {
                url: "the database".into(),
                found: current,
            });
        }
        let versions: Vec<i64> = (current + 1..=SCHEMA_VERSION).collect();
        for &version in &versions {
            self.check_rows_allow(version)?;
            self.apply_migration(version)?;
        }
        Ok(versions)
    }

    /// Fails, naming the row, if a row stored at `version - 1` breaks a row check that `version`
    /// adds: the database would refuse it midway, with a message that names no row.
    fn check_rows_allow(&mut self, version: i64) -> Result<()> {
        for table in TABLES {
            for check in table.row_checks.iter().filter(|c| c.since == version) {
                if let Some(id) = self.first_refused_row(table, check, version - 1)? {
                    return Err(Error::MigrationRefused {
                        version,
                        table,
                        id,
                        check,
                    });
                }
            }
        }
        Ok(())
    }

    /// The lowest id of a row of `table` that `check` refuses, the table being stored at schema
    /// version `stored` (the columns added since read as NULL, as a migration adds them).
    pub fn first_refused_row(
        &mut self,
        table: &'static Table,
        check: &RowCheck,
        stored: i64,
    ) -> Result<Option<i64>> {
        let sql = check.first_refused_row_sql(table, stored, self.backend());
        self.query_i64(&sql)
    }

    fn apply_migration(&mut self, version: i64) -> Result<()> {
        self.execute_batch(&schema::migration_script(version, self.backend()))
    }

    /// The number of rows in each table, in dependency order.
    pub fn row_counts(&mut self) -> Result<RowCounts> {
        TABLES
            .iter()
            .map(|table| {
                let count = self
                    .query_i64(&format!("SELECT count(*) FROM {}", table.name))?
                    .unwrap_or(0);
                Ok(count as u64)
            })
            .collect::<Result<Vec<u64>>>()
            .map(RowCounts::new)
    }

    /// Whether the database has the app's schema and at least one row in it.
    pub fn holds_data(&mut self) -> Result<bool> {
        Ok(self.schema_version()?.is_some() && self.any_rows()?)
    }

    /// Whether any table has a row: one query that stops at the first row, not a count of all.
    fn any_rows(&mut self) -> Result<bool> {
        let any_row: Vec<String> = TABLES
            .iter()
            .map(|t| format!("EXISTS (SELECT 1 FROM {})", t.name))
            .collect();
        let sql = format!(
            "SELECT CASE WHEN {} THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END",
            any_row.join(" OR ")
        );
        Ok(self.query_i64(&sql)? == Some(1))
    }

    /// The SQLite connection, for what only SQLite does (its online backup API); `None` on
    /// PostgreSQL.
    pub fn sqlite_connection(&mut self) -> Option<&mut rusqlite::Connection> {
        match self {
            Database::Sqlite(conn) => Some(conn),
            Database::Postgres(_) => None,
        }
    }

    /// Opens the SQLite file at `path` read-only (a backup being checked or listed): nothing done
    /// through this connection can change the file.
    pub fn open_sqlite_read_only(path: &Path) -> Result<Database> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        connect_sqlite(path, flags).map(Database::Sqlite)
    }

    /// Deletes every row of every table (children first), leaving the schema.
    fn delete_all_rows(&mut self) -> Result<()> {
        match self {
            Database::Sqlite(_) => {
                for table in TABLES.iter().rev() {
                    self.execute_batch(&format!("DELETE FROM {}", table.name))?;
                }
                Ok(())
            }
            Database::Postgres(_) => {
                let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
                let names = names.join(", ");
                // Locked before looking, so that no row comes in between. TRUNCATE gives every
                // table new files, which takes a moment even when they are empty: not then.
                self.execute_batch(&format!("LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))?;
                if self.any_rows()? {
                    self.execute_batch(&format!("TRUNCATE {names}"))?;
                }
                Ok(())
            }
        }
    }

    /// Starts loading rows with explicit ids into every table (an import, the demo data): deletes
    /// every row, then on PostgreSQL drops every key and index, so that rows go into bare tables and
    /// [`Database::finish_bulk_load`] builds each index once and checks each reference in one pass,
    /// as `pg_restore` does, several times faster than row by row. SQLite, which cannot drop
    /// constraints, instead checks references only at commit, so that a caller can look for a broken
    /// one first and name its row. Call inside the load's transaction: a failure undoes all of it.
    pub fn start_bulk_load(&mut self) -> Result<()> {
        self.delete_all_rows()?;
        match self {
            Database::Sqlite(_) => self.execute_batch("PRAGMA defer_foreign_keys = ON"),
            Database::Postgres(_) => {
                for key in schema::keys().iter().rev() {
                    self.execute_batch(&key.drop_sql())?;
                }
                Ok(())
            }
        }
    }

    /// Ends a bulk load: rebuilds what [`Database::start_bulk_load`] dropped, which checks the rows
    /// against every key, and moves the id sequences past the loaded ids.
    pub fn finish_bulk_load(&mut self) -> Result<()> {
        if let Database::Postgres(_) = self {
            for key in schema::keys() {
                self.execute_batch(&key.create_sql())?;
            }
        }
        self.reset_id_sequences()
    }

    /// Moves PostgreSQL's identity sequences past the highest id of each table, so that the app's
    /// next insert after rows were written with explicit ids does not collide. SQLite needs nothing:
    /// its `INTEGER PRIMARY KEY` always continues from the highest id.
    fn reset_id_sequences(&mut self) -> Result<()> {
        if let Database::Postgres(_) = self {
            for table in TABLES {
                self.execute_batch(&format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', '{PRIMARY_KEY}'), \
                     coalesce(max({PRIMARY_KEY}), 0) + 1, false) FROM {t}",
                    t = table.name
                ))?;
            }
        }
        Ok(())
    }

    /// The first row of `table` (lowest id) whose reference in some column points at no row, as
    /// `(id, column, referenced id)`.
    pub fn find_dangling_reference(
        &mut self,
        table: &'static Table,
    ) -> Result<Option<(i64, &'static str, i64)>> {
        for (column, fk) in table.foreign_keys() {
            let sql = format!(
                "SELECT c.{PRIMARY_KEY}, c.{col} FROM {child} c WHERE c.{col} IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM {parent} p WHERE p.{PRIMARY_KEY} = c.{col}) ORDER BY c.{PRIMARY_KEY} LIMIT 1",
                col = column.name,
                child = table.name,
                parent = fk.table,
            );
            if let Some((id, value)) = self.query_pair(&sql)? {
                return Ok(Some((id, column.name, value)));
            }
        }
        Ok(None)
    }

    /// The first row of `table` (lowest id) whose value in a unique column another row with a lower
    /// id already has, as `(id, column, that other row's id)`.
    pub fn find_duplicate(
        &mut self,
        table: &'static Table,
    ) -> Result<Option<(i64, &'static str, i64)>> {
        for column in table.columns.iter().filter(|c| c.unique) {
            let sql = format!(
                "SELECT t.{PRIMARY_KEY}, (SELECT min(u.{PRIMARY_KEY}) FROM {table} u WHERE u.{col} = t.{col}) \
                 FROM {table} t WHERE EXISTS (SELECT 1 FROM {table} u WHERE u.{col} = t.{col} \
                 AND u.{PRIMARY_KEY} < t.{PRIMARY_KEY}) ORDER BY t.{PRIMARY_KEY} LIMIT 1",
                col = column.name,
                table = table.name,
            );
            if let Some((id, first)) = self.query_pair(&sql)? {
                return Ok(Some((id, column.name, first)));
            }
        }
        Ok(None)
    }

    /// Runs a query that returns at most one row of two integers.
    fn query_pair(&mut self, sql: &str) -> Result<Option<(i64, i64)>> {
        Ok(match self {
            Database::Sqlite(conn) => {
                let mut statement = conn.prepare(sql)?;
                let mut rows = statement.query([])?;
                match rows.next()? {
                    Some(row) => Some((row.get(0)?, row.get(1)?)),
                    None => None,
                }
            }
            Database::Postgres(client) => client
                .query_opt(sql, &[])?
                .map(|row| (row.get(0), row.get(1))),
        })
    }

    /// Calls `each` with every row of `table`, by id ascending, typed as the schema says: the values
    /// of the columns the table has at schema version `version` (the database's own), in schema
    /// order. Rows are streamed, never all held in memory. Returns the number of rows.
    pub fn for_each_row<E: From<Error>>(
        &mut self,
        table: &'static Table,
        version: i64,
        mut each: impl FnMut(&[Value]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let select = format!(
            "SELECT {} FROM {} ORDER BY {PRIMARY_KEY}",
            table.column_list_at(version),
            table.name
        );
        let columns: Vec<&'static Column> = table.columns_at(version).collect();
        let mut values = vec![Value::Null; columns.len()];
        let mut count = 0;
        match self {
            Database::Sqlite(conn) => {
                let mut statement = conn.prepare(&select).map_err(Error::from)?;
                let mut rows = statement.query([]).map_err(Error::from)?;
                while let Some(row) = rows.next().map_err(Error::from)? {
                    for (i, column) in columns.iter().enumerate() {
                        let raw = row.get_ref(i).map_err(Error::from)?;
                        if !set_sqlite_value(&mut values[i], raw, column.ty) {
                            let error =
                                bad_stored_value(table, &values, column.name, raw, column.ty);
                            return Err(error.into());
                        }
                    }
                    each(&values)?;
                    count += 1;
                }
            }
            Database::Postgres(client) => {
                // Binary COPY: the server streams the rows without a message per column, and they
                // are decoded straight from what it sends.
                let copy = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
                let mut rows = CopyOut::new(table, columns);
                client.copy_out(&copy, |data| {
                    rows.decode(data, &mut values, |values| {
                        count += 1;
                        each(values)
                    })
                })?;
                rows.end()?;
            }
        }
        Ok(count)
    }

    /// Starts a bulk insert into `table`, with values for every column in schema order: prepared
    /// statements on SQLite, binary `COPY` on PostgreSQL. Call inside [`Database::transaction`].
    pub fn insert_rows(&mut self, table: &'static Table) -> Result<RowWriter<'_>> {
        let columns = table.column_list();
        Ok(match self {
            Database::Sqlite(conn) => {
                let row = format!("({})", vec!["?"; table.columns.len()].join(", "));
                let insert = |rows: usize| {
                    let rows = vec![row.as_str(); rows].join(", ");
                    format!("INSERT INTO {} ({columns}) VALUES {rows}", table.name)
                };
                RowWriter(Writer::Sqlite {
                    connection: conn,
                    one: conn.prepare(&insert(1))?,
                    many: None,
                    many_sql: insert(ROWS_PER_INSERT),
                    text: String::with_capacity(32),
                })
            }
            Database::Postgres(client) => {
                let sink = client.copy_in(&format!(
                    "COPY {} ({columns}) FROM STDIN (FORMAT binary)",
                    table.name
                ))?;
                RowWriter(Writer::Postgres(CopyIn::new(client, sink, table)))
            }
        })
    }
}

/// How many rows one SQLite `INSERT` of [`RowWriter::write_rows`] takes: one statement's run, reset
/// and bookkeeping per 64 rows instead of per row.
const ROWS_PER_INSERT: usize = 64;

/// A bulk insert in progress; see [`Database::insert_rows`].
pub struct RowWriter<'a>(Writer<'a>);

enum Writer<'a> {
    /// `INSERT`s of one row and of [`ROWS_PER_INSERT`] rows, and room to write a date or timestamp
    /// in. The second is prepared only once rows come that many at a time: while it is, SQLite
    /// runs the first several times slower (page faults in its page cache, row after row).
    Sqlite {
        connection: &'a rusqlite::Connection,
        one: rusqlite::Statement<'a>,
        many: Option<rusqlite::Statement<'a>>,
        many_sql: String,
        text: String,
    },
    /// A binary `COPY ... FROM STDIN`.
    Postgres(CopyIn<'a>),
}

impl RowWriter<'_> {
    /// Inserts one row: a value for each column, in schema order.
    pub fn write(&mut self, row: &[Value]) -> Result<()> {
        match &mut self.0 {
            Writer::Sqlite { one, text, .. } => insert_one(one, row, text),
            Writer::Postgres(copy) => copy.write(row),
        }
    }

    /// Inserts rows given one after the other in `values`, each a value for each column in schema
    /// order. On failure, gives the position in `values` of the row that failed (its first
    /// value's, divided by the number of columns).
    pub fn write_rows(&mut self, values: &[Value], columns: usize) -> Result<(), (usize, Error)> {
        // Whole rows only: a partial one would be dropped by the chunks below without a word.
        if columns == 0 || !values.len().is_multiple_of(columns) {
            let message = format!("{} values are not rows of {columns} columns", values.len());
            return Err((0, Error::Encode(message)));
        }
        let mut rows = values.chunks_exact(columns).enumerate();
        match &mut self.0 {
            Writer::Sqlite {
                connection,
                one,
                many,
                many_sql,
                text,
            } => {
                let mut chunks = values.chunks_exact(columns * ROWS_PER_INSERT);
                for (chunk_number, chunk) in chunks.by_ref().enumerate() {
                    let first = chunk_number * ROWS_PER_INSERT;
                    let many = match many {
                        Some(many) => many,
                        None => many.insert(
                            connection
                                .prepare(many_sql)
                                .map_err(|e| (first, e.into()))?,
                        ),
                    };
                    if let Err(error) = insert_many(many, chunk, columns, text) {
                        // SQLite undid the failed statement alone: inserted one by one, the first
                        // row it refuses is the one to name.
                        for (i, row) in chunk.chunks_exact(columns).enumerate() {
                            insert_one(one, row, text).map_err(|e| (first + i, e))?;
                        }
                        return Err((first, error));
                    }
                }
                let done = values.len() / columns - chunks.remainder().len() / columns;
                for (i, row) in rows.skip(done) {
                    insert_one(one, row, text).map_err(|e| (i, e))?;
                }
            }
            Writer::Postgres(copy) => {
                for (i, row) in rows.by_ref() {
                    copy.write(row).map_err(|e| (i, e))?;
                }
            }
        }
        Ok(())
    }

    /// Ends the insert; on PostgreSQL this is when the server checks the rows it received.
    pub fn finish(self) -> Result<()> {
        match self.0 {
            Writer::Sqlite { .. } => Ok(()),
            Writer::Postgres(copy) => copy.finish(),
        }
    }
}

/// Runs `statement`, an `INSERT` of one row, with `row`.
fn insert_one(
    statement: &mut rusqlite::Statement<'_>,
    row: &[Value],
    text: &mut String,
) -> Result<()> {
    bind_row(statement, 1, row, text)?;
    statement.raw_execute()?;
    Ok(())
}

/// Runs `statement`, an `INSERT` of several rows, with `values`, their values one row after the
/// other.
fn insert_many(
    statement: &mut rusqlite::Statement<'_>,
    values: &[Value],
    columns: usize,
    text: &mut String,
) -> Result<()> {
    for (i, row) in values.chunks_exact(columns).enumerate() {
        bind_row(statement, i * columns + 1, row, text)?;
    }
    statement.raw_execute()?;
    Ok(())
}

/// Binds `row` to the parameters of `statement` from `first` on.
fn bind_row(
    statement: &mut rusqlite::Statement<'_>,
    first: usize,
    row: &[Value],
    text: &mut String,
) -> Result<()> {
    for (i, value) in row.iter().enumerate() {
        // Dates and timestamps are written in one reused string rather than a new one each
        // (SQLite copies what is bound).
        match value {
            Value::Date(date) => {
                text.clear();
                write_date(text, *date);
                statement.raw_bind_parameter(first + i, text.as_str())?;
            }
            Value::Timestamp(time) => {
                text.clear();
                write_timestamp(text, time, ' ');
                statement.raw_bind_parameter(first + i, text.as_str())?;
            }
            other => statement.raw_bind_parameter(first + i, other)?,
        }
    }
    Ok(())
}

/// Why a server that asks for a password got none, and where it can come from.
const NO_PASSWORD: &str =
    "the server asks for a password and none was found: put it in PGPASSWORD, \
     or in the passfile (PGPASSFILE, else ~/.pgpass, ignored unless only its owner may read it: \
     chmod 600; on Windows %APPDATA%\\postgresql\\pgpass.conf), or in the URL";

/// Connects to a PostgreSQL URL as libpq would (see [`crate::libpq`]): password and TLS from the
/// URL, else from the environment; a TLS failure is explained in one line with its fix.
fn open_postgres(url: &DatabaseUrl) -> Result<PgClient> {
    let failed = |message: String| Error::PostgresSetup {
        url: url.to_string(),
        message,
    };
    let connection = url
        .postgres_connection(&process_environment)
        .expect("a postgres URL")
        .map_err(|e| failed(e.to_string()))?;
    let mut config = driver_config(&connection.config);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let tls = connection
        .tls
        .connector()
        .map_err(|e| failed(e.to_string()))?;
    let mut attempt = PgClient::connect(&config, tls.clone());
    // libpq's `allow`: plain first, then TLS only if the server itself refused the plain connection
    // (its pg_hba demands TLS). An unreachable server or a wrong password is not retried, and if
    // the retry fails too, the first refusal is the one reported.
    let refused_by_server =
        matches!(&attempt, Err(ConnectError::Postgres(e)) if e.as_db_error().is_some());
    if refused_by_server && connection.tls.mode() == SslMode::Allow {
        config.ssl_mode(postgres::config::SslMode::Require);
        if let Ok(client) = PgClient::connect(&config, tls) {
            attempt = Ok(client);
        }
    }
    let mut client = attempt.map_err(|e| {
        let e = match e {
            ConnectError::Postgres(e) => e,
            ConnectError::Runtime(e) => return failed(format!("cannot start a connection: {e}")),
        };
        let message = postgres_message(&e);
        if message.contains("password missing") {
            return failed(NO_PASSWORD.into());
        }
        match connection.tls.explain_failure(&message) {
            Some(explanation) => failed(explanation),
            None => Error::PostgresConnect {
                url: url.to_string(),
                message,
            },
        }
    })?;
    // A lock the app holds must make a restore or an import fail, not wait forever.
    client.batch_execute(&format!("SET lock_timeout = '{}s'", LOCK_TIMEOUT.as_secs()))?;
    Ok(client)
}

fn open_sqlite(path: &Path, create: Create) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let shown = path.display().to_string();
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match create {
        Create::No if !path.exists() => return Err(Error::SqliteMissing(shown)),
        Create::No => {}
        Create::IfMissing => flags |= OpenFlags::SQLITE_OPEN_CREATE,
    }
    connect_sqlite(path, flags)
}

/// Opens the SQLite file at `path` with `flags`: it waits for other connections' locks, and is
/// proved to be a SQLite database, or the error names the file.
fn connect_sqlite(path: &Path, flags: rusqlite::OpenFlags) -> Result<rusqlite::Connection> {
    let open_error = |source| Error::SqliteOpen {
        path: path.display().to_string(),
        source,
    };
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(SQLITE_BUSY_TIMEOUT).map_err(open_error)?;
    // Reading the schema proves that the file is a SQLite database, not just any file.
    conn.execute_batch("PRAGMA foreign_keys = ON; SELECT count(*) FROM sqlite_master;")
        .map_err(open_error)?;
    Ok(conn)
}

/// Sets `value` to what SQLite stores, `raw`, read as a value of `ty`; `false` when `raw` is not in
/// the form the column type demands.
fn set_sqlite_value(value: &mut Value, raw: ValueRef<'_>, ty: ColumnType) -> bool {
    let text = || match raw {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    };
    let read = match (raw, ty) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(i), ColumnType::Integer) => Value::Integer(i),
        (ValueRef::Integer(i @ (0 | 1)), ColumnType::Boolean) => Value::Boolean(i == 1),
        (ValueRef::Real(r), ColumnType::Real) => Value::Real(r),
        (ValueRef::Integer(i), ColumnType::Real) => Value::Real(i as f64),
        (ValueRef::Text(_), ColumnType::Text) => match text() {
            Some(text) => {
                value.set_text(text);
                return true;
            }
            None => return false,
        },
        (ValueRef::Text(_), ColumnType::Date) => match text().and_then(parse_date) {
            Some(date) => Value::Date(date),
            None => return false,
        },
        (ValueRef::Text(_), ColumnType::Timestamp) => match text().and_then(parse_timestamp) {
            Some(time) => Value::Timestamp(time),
            None => return false,
        },
        _ => return false,
    };
    *value = read;
    true
}

fn bad_stored_value(
    table: &'static Table,
    values: &[Value],
    column: &'static str,
    raw: ValueRef<'_>,
    ty: ColumnType,
) -> Error {
    let id = match values.first() {
        Some(Value::Integer(id)) => *id,
        _ => 0,
    };
    let found = match raw {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        other => format!("{other:?}"),
    };
    Error::BadStoredValue {
        table: table.name,
        id,
        column,
        found,
        ty,
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(r) => ToSqlOutput::Borrowed(ValueRef::Real(*r)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Boolean(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Date(d) => {
                let mut text = String::with_capacity(10);
                write_date(&mut text, *d);
                ToSqlOutput::from(text)
            }
            Value::Timestamp(t) => {
                let mut text = String::with_capacity(26);
                write_timestamp(&mut text, t, ' ');
                ToSqlOutput::from(text)
            }
        })
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => i.to_sql(ty, out),
            Value::Real(r) => r.to_sql(ty, out),
            Value::Text(t) => t.to_sql(ty, out),
            Value::Boolean(b) => b.to_sql(ty, out),
            Value::Date(d) => d.to_sql(ty, out),
            Value::Timestamp(t) => t.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Each variant's own `to_sql` checks the type it is written as.
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::Value as Stored;

    /// A new in-memory SQLite database with schema version 1 and a few rows of every kind: scores,
    /// no scores, a grade left unfinished.
    fn sqlite_at_version_1() -> Database {
        let url = DatabaseUrl::sqlite(":memory:");
        let mut db = Database::open(&url, Create::IfMissing).unwrap();
        db.execute_batch(&schema::create_migrations_table(Backend::Sqlite))
            .unwrap();
        db.apply_migration(1).unwrap();
        db.execute_batch(
            "INSERT INTO users VALUES (1, 'ana', 'ana@x', 'h', 'teacher', 1, '2024-01-01 00:00:00.000000', NULL);
             INSERT INTO teachers VALUES (1, 1, 'Ana', NULL, NULL, '2024-01-01 00:00:00.000000');
             INSERT INTO classes VALUES (1, 'T1', 1, 'B2', NULL, NULL, NULL, '2024-01-01 00:00:00.000000');
             INSERT INTO students VALUES
               (1, 'Bia', NULL, 1, 20, 21, 22, 23, 86, 'B2', NULL, '2024-01-01 00:00:00.000000', NULL),
               (2, 'Caio', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-01 00:00:00.000000', NULL);
             INSERT INTO grades VALUES
               (1, 1, '2024-02-01', 'placement', 20, 21, 22, 23, 86, 'B2', 50.5, NULL, '2024-02-01 10:00:00.000000'),
               (2, 1, '2024-03-01', 'mock', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'unfinished', '2024-03-01 10:00:00.000000');",
        )
        .unwrap();
        db
    }

    /// Every row of every table, the columns of version 1 only, as SQLite stores them.
    fn version_1_rows(db: &mut Database) -> Vec<Vec<Stored>> {
        let Database::Sqlite(conn) = db else {
            unreachable!()
        };
        let mut rows = Vec::new();
        for table in TABLES {
            let sql = format!(
                "SELECT {} FROM {} ORDER BY id",
                table.column_list_at(1),
                table.name
            );
            let mut statement = conn.prepare(&sql).unwrap();
            let width = statement.column_count();
            let read = statement
                .query_map([], |row| (0..width).map(|i| row.get(i)).collect())
                .unwrap();
            rows.extend(read.map(Result::unwrap));
        }
        rows
    }

    #[test]
    fn migrating_sqlite_from_version_1_keeps_every_row_and_adds_no_bands() {
        let mut db = sqlite_at_version_1();
        let before = version_1_rows(&mut db);
        assert_eq!(db.migrate().unwrap(), vec![2]);
        assert_eq!(db.schema_version().unwrap(), Some(2));
        assert_eq!(version_1_rows(&mut db), before);
        for table in [schema::STUDENTS, schema::GRADES] {
            let bands = db
                .query_i64(&format!(
                    "SELECT count(*) FROM {} WHERE {} IS NOT NULL",
                    table.name,
                    schema::SCALES.section_bands.join(" IS NOT NULL OR ")
                ))
                .unwrap();
            assert_eq!(bands, Some(0), "no invented bands in {}", table.name);
        }
        let leftovers = db
            .query_i64("SELECT count(*) FROM sqlite_master WHERE name GLOB '*_v1'")
            .unwrap();
        assert_eq!(leftovers, Some(0), "the old tables are gone");
        for key in schema::keys() {
            if let schema::Key::Index(..) = key {
                let sql = format!(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '{}'",
                    key.name()
                );
                assert_eq!(db.query_i64(&sql).unwrap(), Some(1), "{}", key.name());
            }
        }
        // The rebuilt grades still refer to the rebuilt students, and still cascade.
        db.execute_batch("DELETE FROM students WHERE id = 1")
            .unwrap();
        assert_eq!(
            db.query_i64("SELECT count(*) FROM grades").unwrap(),
            Some(0)
        );
        assert!(db
            .execute_batch("INSERT INTO grades (student_id, taken_on, kind, created_at) VALUES (99, '2024-01-01', 'mock', '2024-01-01 00:00:00.000000')")
            .is_err());
    }

    #[test]
    fn a_version_1_row_with_a_partial_scale_stops_the_migration_and_is_named() {
        let mut db = sqlite_at_version_1();
        db.execute_batch(
            "INSERT INTO students (id, name, reading, created_at) VALUES (7, 'Dani', 20, '2024-01-01 00:00:00.000000')",
        )
        .unwrap();
        let before = version_1_rows(&mut db);
        let error = db.migrate().unwrap_err();
        assert!(
            matches!(
                error,
                Error::MigrationRefused {
                    version: 2,
                    table: schema::STUDENTS,
                    id: 7,
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("complete scales"), "{error}");
        assert_eq!(db.schema_version().unwrap(), Some(1), "nothing changed");
        assert_eq!(version_1_rows(&mut db), before);
    }

    #[test]
    fn a_new_database_goes_through_every_version_in_one_transaction() {
        let url = DatabaseUrl::sqlite(":memory:");
        let mut db = Database::open(&url, Create::IfMissing).unwrap();
        assert_eq!(db.migrate().unwrap(), vec![1, 2]);
        assert_eq!(db.migrate().unwrap(), Vec::<i64>::new());
        assert_eq!(
            db.query_i64("SELECT count(*) FROM schema_migrations")
                .unwrap(),
            Some(2)
        );
    }
}
