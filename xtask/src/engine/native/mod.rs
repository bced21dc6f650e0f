//! The native engine: backups in each backend's own format (a SQLite database file through the online
//! backup API, a pg_dump custom-format archive), checked whole before anything changes, and restored
//! in one step or one transaction.

mod pg_tools;
mod postgres;
mod sqlite;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use app::{Backend, Database, DatabaseUrl, RowCounts};

use crate::engine::archive::kind::FileKind;
use crate::engine::archive::new_file::NewFile;
use crate::report::human_size;

pub use pg_tools::PgTool;
pub use postgres::dump_schema_version;
pub use sqlite::contents as sqlite_contents;

/// The extension of a native backup of `backend`.
pub fn extension(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "db",
        Backend::Postgres => "dump",
    }
}

/// What a backup wrote: its size, how long it took and the rows it holds.
pub struct Written {
    /// The file's size in bytes.
    pub size: u64,
    elapsed: Duration,
    /// The rows per table.
    pub counts: RowCounts,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {:.2} s; rows: {}",
            human_size(self.size),
            self.elapsed.as_secs_f64(),
            self.counts
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
    let counts = match db.sqlite_connection() {
        Some(live) => sqlite::write_copy(live, file.temporary_path())?,
        None => {
            postgres::dump(url, db, file.temporary_path())?;
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

/// A native backup that passed its checks, ready to restore.
pub enum CheckedBackup {
    /// A SQLite backup, open read-only.
    Sqlite(Box<Database>),
    /// A dump that pg_restore reads whole, and that pg_restore.
    Postgres(PgTool),
}

/// Checks the whole native backup at `path` (of `kind`) without changing anything: a SQLite backup's
/// integrity and schema version; a dump's listing, every byte of it, and its schema version.
pub fn check_backup(path: &Path, kind: &FileKind) -> anyhow::Result<CheckedBackup> {
    match kind {
        FileKind::Sqlite => Ok(CheckedBackup::Sqlite(Box::new(sqlite::check_backup(path)?))),
        FileKind::PostgresDump(major, minor) => Ok(CheckedBackup::Postgres(postgres::check_dump(
            path,
            (*major, *minor),
        )?)),
        FileKind::JsonExport | FileKind::Unknown(_) => {
            kind.require_native_for(path, Backend::Sqlite)?;
            anyhow::bail!("{} is not a native backup", path.display())
        }
    }
}

/// Replaces all the data of `db` (the database at `url`) with the checked backup from `path`: in one
/// step through SQLite's backup API, or in one `pg_restore --single-transaction`. On failure the
/// target is unchanged.
pub fn restore(
    backup: CheckedBackup,
    path: &Path,
    url: &DatabaseUrl,
    db: &mut Database,
) -> anyhow::Result<()> {
    match backup {
        CheckedBackup::Sqlite(mut backup) => {
            let from = backup.sqlite_connection().context("opened as SQLite")?;
            let to = db
                .sqlite_connection()
                .context("a SQLite backup restores only onto SQLite")?;
            sqlite::copy_whole_database(from, to)
                .with_context(|| format!("restoring {} failed; {url} is unchanged", path.display()))
        }
        CheckedBackup::Postgres(pg_restore) => postgres::restore_dump(&pg_restore, url, path),
    }
}
