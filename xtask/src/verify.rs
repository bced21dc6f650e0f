//! `cargo xtask verify FILE`: proves that a backup can be restored, by restoring it into a scratch
//! database (a temporary SQLite file, or a temporary PostgreSQL database created and dropped on the
//! target's server) and checking integrity, schema version, foreign keys and row counts there.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use app::{Backend, Create, Database, DatabaseUrl, TABLES};

use crate::backup::copy_whole_database;
use crate::backup_file::{identify, FileKind};
use crate::files::describe_counts;
use crate::report::Report;
use crate::restore::{
    check_backend, check_postgres_dump, check_sqlite_backup, restore_dump, Checked,
};
use crate::Exit;

/// Options of `cargo xtask verify`.
#[derive(clap::Args)]
#[command(
    after_help = "A SQLite backup is restored into a temporary SQLite file. A PostgreSQL \
dump is restored into a temporary database created (and dropped) on the server that \
--database-url or DATABASE_URL names, so verifying a dump needs a PostgreSQL URL whose user may \
create databases. Exit code 4 means the file failed verification."
)]
pub struct VerifyArgs {
    /// The backup to verify (recognised by its content, whatever its name)
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Restores `FILE` into a scratch database and checks it; `url` names the server for dumps.
pub fn run(
    url: impl FnOnce() -> anyhow::Result<DatabaseUrl>,
    args: &VerifyArgs,
) -> anyhow::Result<Report> {
    let mut report = Report::start("verify");
    let path = &args.file;
    let kind = identify(path)?;
    let (backend, mut scratch) = match kind.backend() {
        Some(Backend::Sqlite) => (Backend::Sqlite, Scratch::sqlite(path)?),
        Some(Backend::Postgres) => (Backend::Postgres, Scratch::postgres(&url()?)?),
        None => {
            // Let restore's own check say what the file is and which command takes it.
            let refusal = check_backend(path, &kind, Backend::Sqlite).err();
            return Err(failed(
                path,
                refusal.unwrap_or_else(|| anyhow::anyhow!("unknown file")),
            ));
        }
    };
    let counts = restore_and_check(path, &kind, &mut scratch).map_err(|e| failed(path, e))?;
    let line = format!(
        "{} is a good {backend} backup: it restores with schema version {}, integrity and every \
         foreign key hold; rows: {}",
        path.display(),
        app::SCHEMA_VERSION,
        describe_counts(counts.iter().map(|(t, n)| (*t, *n)))
    );
    report
        .say(line)
        .field("path", path.display().to_string())
        .field("kind", "native")
        .field("backend", backend.as_str())
        .field("bytes", std::fs::metadata(path)?.len())
        .field("verified", true)
        .rows(counts.iter().map(|(t, n)| (*t, *n)));
    Ok(report)
}

fn failed(path: &Path, error: anyhow::Error) -> anyhow::Error {
    Exit::VerificationFailed(format!("{} failed verification: {error:#}", path.display())).into()
}

/// Restores the file into the scratch database and checks it there; returns its row counts.
fn restore_and_check(
    path: &Path,
    kind: &FileKind,
    scratch: &mut Scratch,
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let target = scratch.url.clone();
    let check = match kind {
        FileKind::Sqlite => check_sqlite_backup(path)?,
        FileKind::PostgresDump(major, minor) => check_postgres_dump(path, (*major, *minor))?,
        FileKind::JsonExport | FileKind::Unknown(_) => unreachable!("refused before"),
    };
    let mut db = Database::open(&target, Create::IfMissing)?;
    match check {
        Checked::Sqlite(backup) => {
            let Database::Sqlite(conn) = &mut db else {
                unreachable!("a SQLite scratch file")
            };
            copy_whole_database(&backup, conn)?;
        }
        Checked::Postgres(pg_restore) => restore_dump(&pg_restore, &target, path)?,
    }
    check_restored(&mut db, &target)
}

/// Checks a restored database: schema version, every foreign key; returns the row counts.
pub fn check_restored(
    db: &mut Database,
    url: &DatabaseUrl,
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    db.check_schema_version(url)?;
    for table in TABLES {
        if let Some((id, column, missing)) = db.find_dangling_reference(table)? {
            let parent = table
                .column(column)
                .and_then(|c| c.references)
                .map(|fk| fk.table);
            anyhow::bail!(
                "{} row id {id}: {column} refers to {} row {missing}, which does not exist",
                table.name,
                parent.unwrap_or("a missing")
            );
        }
    }
    Ok(db
        .row_counts()?
        .into_iter()
        .map(|(t, n)| (t.name, n))
        .collect())
}

/// A database that exists only while a verification runs.
pub struct Scratch {
    /// Where it is.
    pub url: DatabaseUrl,
    /// For PostgreSQL: the connection to the server that created it, and which drops it.
    server: Option<(Database, String)>,
}

impl Scratch {
    /// A SQLite file that does not exist yet, in the system's temporary directory.
    fn sqlite(for_file: &Path) -> anyhow::Result<Scratch> {
        let name = for_file.file_name().unwrap_or_default().to_string_lossy();
        let path =
            std::env::temp_dir().join(format!("toefl_verify_{}_{name}.db", std::process::id()));
        Ok(Scratch {
            url: DatabaseUrl::sqlite(path),
            server: None,
        })
    }

    /// A new database on the PostgreSQL server `url` names.
    pub fn postgres(url: &DatabaseUrl) -> anyhow::Result<Scratch> {
        if url.backend() != Backend::Postgres {
            anyhow::bail!(
                "verifying a PostgreSQL dump restores it into a scratch database on a PostgreSQL \
                 server: pass --database-url postgres://... (its user must be allowed to create \
                 databases)"
            );
        }
        let mut server = Database::open(url, Create::No)?;
        let name = format!(
            "toefl_verify_{}_{}",
            std::process::id(),
            chrono::Utc::now().format("%Y%m%d%H%M%S%6f")
        );
        server
            .execute_batch(&format!("CREATE DATABASE {name}"))
            .with_context(|| {
                format!(
                    "cannot create a scratch database on {url}: verify needs a user with CREATEDB"
                )
            })?;
        Ok(Scratch {
            url: url.with_postgres_database(&name).expect("a PostgreSQL URL"),
            server: Some((server, name)),
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a scratch database left behind holds a copy, never the only one.
        match &mut self.server {
            Some((server, name)) => {
                let _ =
                    server.execute_batch(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
            None => {
                if let Some(path) = self.url.sqlite_path() {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}
