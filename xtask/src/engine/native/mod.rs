//! The native engine: backups in each backend's own format (a SQLite database file through the online
//! backup API, a pg_dump custom-format archive), checked whole before anything changes, and restored
//! in one step or one transaction. A backup of an earlier schema version is brought forward to the
//! current one within that same step or transaction.

mod pg_tools;
mod postgres;
mod sqlite;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use app::{Backend, Database, DatabaseUrl, RowCounts, SCHEMA_VERSION};

use crate::engine::archive::kind::FileKind;
use crate::engine::archive::new_file::NewFile;
use crate::engine::crypto::{self, PrivateDir, Recipients};
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
/// backup is complete and checked, and never overwritten unless `force`. With `recipients`, the
/// backup is made in a [`PrivateDir`] first (SQLite and pg_dump need a file), then encrypted into
/// `path`; the plaintext never lands next to it, and is removed whatever happens.
pub fn write_backup(
    url: &DatabaseUrl,
    db: &mut Database,
    path: &Path,
    force: bool,
    recipients: Option<&Recipients>,
) -> anyhow::Result<Written> {
    let started = Instant::now();
    let mut file = NewFile::create(path, force)?;
    let counts = match recipients {
        None => write_plain(url, db, file.temporary_path())?,
        Some(recipients) => {
            let private = PrivateDir::new()?;
            let plain = private
                .path()
                .join(format!("backup.{}", extension(url.backend())));
            let counts = write_plain(url, db, &plain)?;
            crypto::encrypt_file(&plain, recipients, file.file())
                .with_context(|| format!("cannot encrypt the backup into {}", path.display()))?;
            counts
        }
    };
    let size = file.persist()?;
    Ok(Written {
        size,
        elapsed: started.elapsed(),
        counts,
    })
}

/// Writes a native backup of `db` to the file at `path`; returns the rows it holds.
fn write_plain(url: &DatabaseUrl, db: &mut Database, path: &Path) -> anyhow::Result<RowCounts> {
    match db.sqlite_connection() {
        Some(live) => sqlite::write_copy(live, path),
        None => {
            postgres::dump(url, db, path)?;
            // The dump's own moment is not observable from here; these are counted just after it.
            Ok(db.row_counts()?)
        }
    }
}

/// A native backup that passed its checks, ready to restore.
pub struct CheckedBackup {
    /// The schema version of the backup's data: the current one, or an earlier one that the restore
    /// brings forward.
    pub schema_version: i64,
    source: Source,
}

/// Where a checked backup is read from.
enum Source {
    /// A SQLite backup, open read-only.
    Sqlite(Box<Database>),
    /// A dump that pg_restore reads whole, and that pg_restore.
    Postgres(PgTool),
}

/// Checks the whole native backup at `path` (of `kind`) without changing anything: a SQLite backup's
/// integrity and schema version; a dump's listing, every byte of it, and its schema version.
pub fn check_backup(path: &Path, kind: &FileKind) -> anyhow::Result<CheckedBackup> {
    let (source, schema_version) = match kind {
        FileKind::Sqlite => {
            let (backup, version) = sqlite::check_backup(path)?;
            (Source::Sqlite(Box::new(backup)), version)
        }
        FileKind::PostgresDump(major, minor) => {
            let (pg_restore, version) = postgres::check_dump(path, (*major, *minor))?;
            (Source::Postgres(pg_restore), version)
        }
        FileKind::JsonExport | FileKind::Unknown(_) => {
            kind.require_native_for(path, Backend::Sqlite)?;
            anyhow::bail!("{} is not a native backup", path.display())
        }
    };
    Ok(CheckedBackup {
        schema_version,
        source,
    })
}

/// Fails unless `found`, the schema version of the backup at `path`, is one this tool knows: the
/// current one or an earlier one. A backup without a version is not one of this tool's.
fn known_version(path: &Path, found: Option<i64>) -> anyhow::Result<i64> {
    match found {
        Some(version @ 1..=SCHEMA_VERSION) => Ok(version),
        Some(version) if version > SCHEMA_VERSION => anyhow::bail!(
            "{} has schema version {version}, newer than this tool's {SCHEMA_VERSION}: it was \
             made by a newer version of this tool; update your checkout",
            path.display()
        ),
        _ => anyhow::bail!(
            "{} holds no schema version of the app, so it is not a backup made by `cargo xtask \
             backup`",
            path.display()
        ),
    }
}

/// Replaces all the data of `db` (the database at `url`) with the checked backup from `path`: in one
/// step through SQLite's backup API, or in one `pg_restore --single-transaction`; a backup of an
/// earlier schema version is migrated within that step or transaction. On failure the target is
/// unchanged.
pub fn restore(
    backup: CheckedBackup,
    path: &Path,
    url: &DatabaseUrl,
    db: &mut Database,
) -> anyhow::Result<()> {
    let version = backup.schema_version;
    match backup.source {
        Source::Sqlite(mut backup) => {
            let from = backup.sqlite_connection().context("opened as SQLite")?;
            let to = db
                .sqlite_connection()
                .context("a SQLite backup restores only onto SQLite")?;
            let restored = match version {
                SCHEMA_VERSION => sqlite::copy_whole_database(from, to),
                _ => sqlite::copy_brought_forward(from, to),
            };
            restored
                .with_context(|| format!("restoring {} failed; {url} is unchanged", path.display()))
        }
        Source::Postgres(pg_restore) => match version {
            SCHEMA_VERSION => postgres::restore_dump(&pg_restore, url, path),
            old => postgres::restore_dump_brought_forward(&pg_restore, url, path, old),
        },
    }
}
