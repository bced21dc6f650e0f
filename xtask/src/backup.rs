//! `cargo xtask backup`: a native backup, consistent even while the app writes: SQLite's online
//! backup API (never a raw copy of a live file, which can be stale or torn in WAL mode), checked
//! before it is kept; `pg_dump --format=custom` for PostgreSQL.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use app::{Backend, Create, Database, DatabaseUrl, Table};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;

use crate::files::{describe_counts, human_size, timestamped_path, NewFile};
use crate::pg_tools;
use crate::report::Report;

/// Options of `cargo xtask backup`.
#[derive(clap::Args)]
pub struct BackupArgs {
    /// Where to write the backup [default: backups/toefl_backup_YYYYMMDD_HHMMSS.db for SQLite,
    /// .dump for PostgreSQL, in UTC]
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Overwrite the file if it already exists
    #[arg(long)]
    force: bool,
}

/// How long a SQLite backup waits for another connection's lock before it gives up.
const SQLITE_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Backs up the database at `url` to `--file` or a new timestamped file in `backups/`.
pub fn run(url: &DatabaseUrl, args: &BackupArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("backup");
    let mut db = Database::open(url, Create::No)?;
    db.check_schema_version(url)?;
    let path = match &args.file {
        Some(path) => path.clone(),
        None => timestamped_path("toefl_backup", extension(url.backend()))?,
    };
    let written = write_backup(url, &mut db, &path, args.force)?;
    report
        .say(format!("backed up {url} to {}: {written}", path.display()))
        .backup_file(&path, "native", url.backend().as_str(), written.size)
        .rows(written.counts.iter().map(|(t, n)| (t.name, *n)));
    Ok(report)
}

/// The extension of a native backup of `backend`.
pub fn extension(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "db",
        Backend::Postgres => "dump",
    }
}

/// What a backup wrote: its size, how long it took and the rows it holds.
pub struct Written {
    size: u64,
    elapsed: Duration,
    counts: Vec<(&'static Table, u64)>,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {:.2} s; rows: {}",
            human_size(self.size),
            self.elapsed.as_secs_f64(),
            describe_counts(self.counts.iter().map(|(t, n)| (t.name, *n)))
        )
    }
}

/// Writes a native backup of `db` (the database at `url`) to `path`, which is created only once the
/// backup is complete and checked, and never overwritten unless `force`.
pub fn write_backup(
    url: &DatabaseUrl,
    db: &mut Database,
    path: &Path,
    force: bool,
) -> anyhow::Result<Written> {
    let started = Instant::now();
    let file = NewFile::create(path, force)?;
    let counts = match db {
        Database::Sqlite(live) => copy_sqlite(live, file.temporary_path())?,
        Database::Postgres(_) => {
            pg_tools::dump(url, db, file.temporary_path())?;
            // The dump's own moment is not observable from here; these are counted just after it.
            db.row_counts()?
        }
    };
    let size = file.persist()?;
    Ok(Written {
        size,
        elapsed: started.elapsed(),
        counts,
    })
}

/// Copies the live database into the (empty) file at `copy_path`, makes the copy a self-contained
/// file, checks it, and returns its row counts.
fn copy_sqlite(live: &Connection, copy_path: &Path) -> anyhow::Result<Vec<(&'static Table, u64)>> {
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
pub fn copy_whole_database(from: &Connection, to: &mut Connection) -> anyhow::Result<()> {
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
pub fn check_integrity(conn: &Connection, path: &Path) -> anyhow::Result<()> {
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
