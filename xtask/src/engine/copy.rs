//! Copying every row of one database into another, with no file in between: the source is read from
//! one consistent snapshot, on a thread of its own, while the target is loaded in one checked
//! transaction ([`super::load`]), exactly as an import of the source's export would load it.

use app::{Backend, Database, DatabaseUrl, RowCounts, Table, Value, TABLES};

use super::archive::same_file;
use super::load::{self, CheckedRows, RowSource};

/// Replaces all the data of `target` (the database at `target_url`) with the rows of `source`, a
/// database of schema version `version` (this build's or an earlier one, brought forward as an
/// import of its export would be), read from one snapshot while the app may go on writing to it.
/// Returns the rows per table.
pub fn copy_data(
    source: &mut Database,
    version: i64,
    target: &mut Database,
    target_url: &DatabaseUrl,
) -> anyhow::Result<RowCounts> {
    source.read_snapshot(|source| {
        // Counted in the same snapshot the rows are read from.
        let counts = source.row_counts()?;
        let mut rows = SnapshotRows {
            db: source,
            version,
            counts,
        };
        load::replace_data(target, target_url, "copying", &mut rows)
    })
}

/// The rows of a database of schema version `version`, inside the read snapshot that counted them.
struct SnapshotRows<'a> {
    db: &'a mut Database,
    version: i64,
    counts: RowCounts,
}

impl RowSource for SnapshotRows<'_> {
    fn announced(&self) -> RowCounts {
        self.counts.clone()
    }

    fn count_mismatch(&self, table: &Table, found: u64, announced: u64) -> String {
        format!(
            "table {} changed during the copy ({announced} rows counted, {found} read): the \
             source's snapshot was not consistent",
            table.name
        )
    }

    fn send_rows(&mut self, rows: &mut CheckedRows<'_>) -> anyhow::Result<()> {
        for table in TABLES {
            // Where the source's columns are among this schema's; the columns added since stay
            // NULL, as a migration leaves them.
            let places: Vec<usize> = (0..table.columns.len())
                .filter(|i| table.columns[*i].since <= self.version)
                .collect();
            let mut row_now = vec![Value::Null; table.columns.len()];
            self.db.for_each_row(table, self.version, |row| {
                if places.len() == row_now.len() {
                    return Ok::<_, anyhow::Error>(rows.send(table, row)?);
                }
                for (value, place) in row.iter().zip(&places) {
                    row_now[*place].set(value);
                }
                Ok(rows.send(table, &row_now)?)
            })?;
        }
        Ok(())
    }
}

/// Fails when `source` (open, at `source_url`) and `target_url` are one database, however the two
/// URLs spell it: the same SQLite file (by another path, a symbolic link or a hard link), or the same
/// database of the same running PostgreSQL server (by another host name, address, socket or
/// parameters). Connects to a PostgreSQL target to ask it.
pub fn ensure_different(
    source_url: &DatabaseUrl,
    source: &mut Database,
    target_url: &DatabaseUrl,
) -> anyhow::Result<()> {
    let same = match (source_url, target_url) {
        (DatabaseUrl::Sqlite(source_path), DatabaseUrl::Sqlite(target_path)) => {
            target_path.exists() && same_file(source_path, target_path)?
        }
        (DatabaseUrl::Postgres(_), DatabaseUrl::Postgres(_)) => {
            let mut target = Database::open(target_url, app::Create::No)?;
            server_database(source)? == server_database(&mut target)?
        }
        _ => false,
    };
    anyhow::ensure!(
        !same,
        "{source_url} and {target_url} are the same database: copy reads one database and replaces \
         all the data of another; pass another --to (or --database-url)"
    );
    Ok(())
}

/// What tells a PostgreSQL database apart from every other: the moment its server started (to the
/// microsecond) and the database's oid on that server.
fn server_database(db: &mut Database) -> anyhow::Result<(Option<i64>, Option<i64>)> {
    debug_assert_eq!(db.backend(), Backend::Postgres);
    Ok((
        db.query_i64("SELECT (extract(epoch FROM pg_postmaster_start_time()) * 1e6)::bigint")?,
        db.query_i64("SELECT oid::bigint FROM pg_database WHERE datname = current_database()")?,
    ))
}
