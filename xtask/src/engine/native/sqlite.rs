//! Native SQLite backups: the online backup API, never a raw copy of a live file (which can be stale
//! or torn in WAL mode), and `PRAGMA integrity_check` before a copy is kept or restored.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use app::{Create, Database, DatabaseUrl, RowCounts, SCHEMA_VERSION};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;

use crate::engine::crypto::PrivateDir;

/// How long a SQLite backup or restore waits for another connection's lock before it gives up.
const SQLITE_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Copies the live database into the (empty) file at `copy_path`, makes the copy a self-contained
/// file, checks it, and returns its row counts.
pub(super) fn write_copy(live: &Connection, copy_path: &Path) -> anyhow::Result<RowCounts> {
    let mut copy = Connection::open(copy_path)
        .with_context(|| format!("cannot open {} for the copy", copy_path.display()))?;
    copy_whole_database(live, &mut copy).context("the SQLite backup failed")?;
    // A copy of a database in WAL mode is in WAL mode too; a backup file must stand alone.
    copy.pragma_update(None, "journal_mode", "DELETE")?;
    check_integrity(&copy, copy_path)?;
    Ok(Database::Sqlite(copy).row_counts()?)
}

/// Replaces all of `to` with the content of `from` through SQLite's backup API, in one step: it
/// reads `from` at one moment (concurrent writers do not tear it) and writes `to` under its write
/// lock, so that other connections see `to` either as before or as `from`.
pub(super) fn copy_whole_database(from: &Connection, to: &mut Connection) -> anyhow::Result<()> {
    let backup = Backup::new(from, to)?;
    let deadline = Instant::now() + SQLITE_LOCK_WAIT;
    loop {
        // -1: all pages in one step, so the copy is never restarted by a concurrent write.
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            _ if Instant::now() >= deadline => anyhow::bail!(
                "the database stayed locked by another connection for {} s; try again when it is \
                 less busy",
                SQLITE_LOCK_WAIT.as_secs()
            ),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Fails unless SQLite's `integrity_check` finds the database at `path` sound.
fn check_integrity(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let damaged = || format!("{} is damaged", path.display());
    let mut statement = conn
        .prepare("PRAGMA integrity_check")
        .with_context(damaged)?;
    let problems: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .and_then(Iterator::collect)
        .with_context(damaged)?;
    if problems != ["ok"] {
        let first: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
        anyhow::bail!(
            "{} fails SQLite's integrity check: {}",
            path.display(),
            first.join("; ")
        );
    }
    Ok(())
}

/// Checks a SQLite backup without changing it: integrity, and a schema version this tool knows.
/// Returns a read-only connection to it, to restore from, and its schema version.
pub(super) fn check_backup(path: &Path) -> anyhow::Result<(Database, i64)> {
    // It starts like a SQLite database (that is how it was told apart): one SQLite cannot open is
    // a damaged one.
    let mut backup = Database::open_sqlite_read_only(path)
        .with_context(|| format!("{} is damaged", path.display()))?;
    let conn = backup.sqlite_connection().context("opened as SQLite")?;
    check_integrity(conn, path)?;
    let found = backup
        .schema_version()
        .with_context(|| format!("{} is damaged", path.display()))?;
    let version = super::known_version(path, found)?;
    Ok((backup, version))
}

/// Replaces all of `to` with `from`, a database of an earlier schema version, brought forward: it is
/// copied to a private temporary file, migrated there (every row checked against the current
/// version's checks), and only then copied onto `to` in one step, so that `to` is either as before
/// or at the current version.
pub(super) fn copy_brought_forward(from: &Connection, to: &mut Connection) -> anyhow::Result<()> {
    // A whole copy of the data, maybe decrypted: owner-only, and removed even on Ctrl-C.
    let dir = PrivateDir::new()?;
    let url = DatabaseUrl::sqlite(dir.path().join("forward.db"));
    let mut forward = Database::open(&url, Create::IfMissing)?;
    copy_whole_database(from, forward.sqlite_connection().context("a SQLite file")?)?;
    forward.migrate()?;
    copy_whole_database(forward.sqlite_connection().context("a SQLite file")?, to)
}

/// The schema version and, when this tool knows that version, the row counts of a SQLite backup,
/// read without changing it.
pub fn contents(path: &Path) -> anyhow::Result<(Option<i64>, Option<RowCounts>)> {
    let mut db = Database::open_sqlite_read_only(path)?;
    let version = db.schema_version()?;
    let rows = match version {
        Some(1..=SCHEMA_VERSION) => Some(db.row_counts()?),
        _ => None,
    };
    Ok((version, rows))
}
