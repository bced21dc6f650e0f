//! `cargo xtask verify FILE`: proves that a backup can be restored, by restoring it into a scratch
//! database (a temporary SQLite file, or a temporary PostgreSQL database created and dropped on the
//! target's server) and checking integrity, schema version, foreign keys and row counts there.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use app::{Backend, Create, Database, DatabaseUrl, TABLES};

use crate::backup::copy_whole_database;
use crate::backup_file::{identify, FileKind};
use crate::files::{describe_counts, file_size};
use crate::import::load_into;
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
    let mut scratch = match (&kind, kind.backend()) {
        (_, Some(Backend::Sqlite)) => Scratch::sqlite(path)?,
        (_, Some(Backend::Postgres)) => Scratch::postgres(&url()?)?,
        // An export goes into a scratch database of the target's backend, the one it is meant for.
        (FileKind::JsonExport, None) => match url()? {
            url @ DatabaseUrl::Postgres(_) => Scratch::postgres(&url)?,
            DatabaseUrl::Sqlite(_) => Scratch::sqlite(path)?,
        },
        (_, None) => {
            // Let restore's own check say what the file is and which command takes it.
            let refusal = check_backend(path, &kind, Backend::Sqlite).err();
            return Err(failed(
                path,
                refusal.unwrap_or_else(|| anyhow::anyhow!("unknown file")),
            ));
        }
    };
    let restored = restore_and_check(path, &kind, &mut scratch).map_err(|e| failed(path, e))?;
    let line = format!(
        "{} is a good {} backup of a {} database: restored into a scratch {} database, it has \
         schema version {}, and its row counts and every foreign key hold; rows: {}",
        path.display(),
        restored.kind,
        restored.backend,
        scratch.url.backend(),
        app::SCHEMA_VERSION,
        describe_counts(restored.counts.iter().map(|(t, n)| (*t, *n)))
    );
    report
        .say(line)
        .backup_file(path, restored.kind, &restored.backend, file_size(path)?)
        .field("verified", true)
        .field("scratch", scratch.url.to_string())
        .rows(restored.counts.iter().map(|(t, n)| (*t, *n)));
    Ok(report)
}

/// What a verified file turned out to hold.
struct Restored {
    /// `native` or `json`.
    kind: &'static str,
    /// The backend the data came from.
    backend: String,
    /// Rows per table.
    counts: Vec<(&'static str, u64)>,
}

fn failed(path: &Path, error: anyhow::Error) -> anyhow::Error {
    Exit::VerificationFailed(format!("{} failed verification: {error:#}", path.display())).into()
}

/// Restores the file into the scratch database and checks it there.
fn restore_and_check(
    path: &Path,
    kind: &FileKind,
    scratch: &mut Scratch,
) -> anyhow::Result<Restored> {
    let target = scratch.url.clone();
    let mut db = Database::open(&target, Create::IfMissing)?;
    let (check, backend) = match kind {
        FileKind::Sqlite => (check_sqlite_backup(path)?, Backend::Sqlite),
        FileKind::PostgresDump(major, minor) => (
            check_postgres_dump(path, (*major, *minor))?,
            Backend::Postgres,
        ),
        FileKind::JsonExport => {
            // The import checks every value, the row counts against the header, and every reference.
            let (header, _) = load_into(&mut db, path)?;
            return Ok(Restored {
                kind: "json",
                backend: header.source_backend().unwrap_or("unknown").to_string(),
                counts: check_restored(&mut db, &target)?,
            });
        }
        FileKind::Unknown(_) => unreachable!("refused before"),
    };
    match check {
        Checked::Sqlite(backup) => {
            let Database::Sqlite(conn) = &mut db else {
                unreachable!("a SQLite scratch file")
            };
            copy_whole_database(&backup, conn)?;
        }
        Checked::Postgres(pg_restore) => restore_dump(&pg_restore, &target, path)?,
    }
    Ok(Restored {
        kind: "native",
        backend: backend.to_string(),
        counts: check_restored(&mut db, &target)?,
    })
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
