//! `cargo xtask restore`: puts a native backup back, all or nothing. The file is known by its
//! content and checked whole before anything changes; the user confirms; the current data is saved
//! first; then the target is replaced in one step (SQLite's backup API) or one transaction
//! (`pg_restore --single-transaction`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use app::schema::MIGRATIONS_TABLE;
use app::{Backend, Database, DatabaseUrl, SCHEMA_VERSION, TABLES};
use rusqlite::{Connection, OpenFlags};

use crate::backup::{self, check_integrity, copy_whole_database};
use crate::backup_file::{identify, FileKind};
use crate::confirm::{open_confirmed_target, ReplaceOptions};
use crate::files::{describe_counts, file_size, timestamped_path};
use crate::pg_tools::PgTool;
use crate::report::Report;

/// Options of `cargo xtask restore`.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup to restore: a SQLite backup or a pg_dump custom-format dump made by
    /// `cargo xtask backup` (recognised by its content, whatever its name)
    #[arg(long, value_name = "PATH")]
    file: PathBuf,
    #[command(flatten)]
    replace: ReplaceOptions,
}

/// Restores `--file` onto the database at `url`.
pub fn run(url: &DatabaseUrl, args: &RestoreArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("restore");
    let path = &args.file;
    let kind = identify(path)?;
    check_backend(path, &kind, url.backend())?;
    // The whole file is checked before the target is even opened.
    let check = match kind {
        FileKind::Sqlite => check_sqlite_backup(path)?,
        FileKind::PostgresDump(major, minor) => check_postgres_dump(path, (major, minor))?,
        FileKind::JsonExport | FileKind::Unknown(_) => unreachable!("refused by check_backend"),
    };
    let action = format!("restoring {}", path.display());
    let mut db = open_confirmed_target(url, &action, args.replace.yes)?;
    let mut safety_backup = None;
    if args.replace.no_safety_backup {
        eprintln!("no safety backup of {url} (--no-safety-backup)");
    } else {
        safety_backup = save_current_data(url, &mut db)?;
    }
    match check {
        Checked::Sqlite(backup) => {
            let Database::Sqlite(target) = &mut db else {
                unreachable!("checked by check_backend")
            };
            copy_whole_database(&backup, target).with_context(|| {
                format!("restoring {} failed; {url} is unchanged", path.display())
            })?;
        }
        Checked::Postgres(pg_restore) => restore_dump(&pg_restore, url, path)?,
    }
    db.check_schema_version(url)?;
    let counts = db.row_counts()?;
    let line = format!(
        "restored {} onto {url} in {:.2} s; rows: {}",
        path.display(),
        report.seconds(),
        describe_counts(counts.iter().map(|(t, n)| (t.name, *n)))
    );
    report
        .say(line)
        .backup_file(path, "native", url.backend().as_str(), file_size(path)?)
        .field("safety_backup", safety_backup)
        .rows(counts.iter().map(|(t, n)| (t.name, *n)));
    Ok(report)
}

/// Refuses a file that is not a native backup for `target`, saying which command takes it.
pub fn check_backend(path: &Path, kind: &FileKind, target: Backend) -> anyhow::Result<()> {
    let shown = path.display();
    match (kind, kind.backend()) {
        (FileKind::JsonExport, _) => anyhow::bail!(
            "{shown} is a JSON export, not a native backup: load it with `cargo xtask import --file {shown}`"
        ),
        (FileKind::Unknown(what), _) => anyhow::bail!(
            "{shown} is not a backup this tool knows ({what}); restore takes a SQLite backup or a \
             pg_dump custom-format dump made by `cargo xtask backup`, and `cargo xtask import` takes \
             a JSON export"
        ),
        (_, Some(backend)) if backend != target => anyhow::bail!(
            "{shown} is a {backend} backup, but the target is a {target} database: a native backup \
             restores only onto its own backend; to move data between backends, run `cargo xtask \
             export` on the source and `cargo xtask import` on the target"
        ),
        _ => Ok(()),
    }
}

/// A backup that passed its checks, ready to restore.
pub enum Checked {
    /// The SQLite backup, open read-only.
    Sqlite(Connection),
    /// A dump that pg_restore reads whole, and that pg_restore.
    Postgres(PgTool),
}

/// Opens a SQLite backup read-only and checks its integrity and its schema version.
pub fn check_sqlite_backup(path: &Path) -> anyhow::Result<Checked> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("cannot open {}", path.display()))?;
    check_integrity(&conn, path)?;
    let mut backup = Database::Sqlite(conn);
    match backup
        .schema_version()
        .with_context(|| format!("{} is damaged", path.display()))?
    {
        Some(SCHEMA_VERSION) => {}
        None => anyhow::bail!(
            "{} is a SQLite database without the app's schema, not a backup made by `cargo xtask backup`",
            path.display()
        ),
        Some(found) => anyhow::bail!(
            "{} has schema version {found}, but this tool expects version {SCHEMA_VERSION}: \
             restore it with the version of this tool that made it",
            path.display()
        ),
    }
    let Database::Sqlite(conn) = backup else {
        unreachable!("opened as SQLite")
    };
    Ok(Checked::Sqlite(conn))
}

/// Checks a dump with pg_restore: that this pg_restore can read its format, that it holds the app's
/// tables, and that every byte of it can be read (a truncated dump fails here, not midway).
pub fn check_postgres_dump(path: &Path, format: (u8, u8)) -> anyhow::Result<Checked> {
    let pg_restore = PgTool::find("pg_restore")?;
    let listing = pg_restore.output(None, &[OsStr::new("--list"), path.as_os_str()])?;
    if !listing.status.success() {
        if String::from_utf8_lossy(&listing.stderr).contains("unsupported version") {
            anyhow::bail!(
                "{} was made by a newer pg_dump (archive format {}.{}) than pg_restore {} can read: \
                 install a newer PostgreSQL client and put it first on PATH; nothing was changed",
                path.display(),
                format.0,
                format.1,
                pg_restore.version()?
            );
        }
        return Err(pg_restore.failure(&listing))
            .with_context(|| format!("{} is not a readable dump", path.display()));
    }
    let listing = String::from_utf8_lossy(&listing.stdout);
    let names = TABLES.iter().map(|t| t.name).chain([MIGRATIONS_TABLE]);
    let missing: Vec<&str> = names.filter(|name| !lists_table(&listing, name)).collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "{} is not a dump of the app's database: it has no table {}",
            path.display(),
            missing.join(", ")
        );
    }
    pg_restore
        .run(None, &[OsStr::new("--file=/dev/null"), path.as_os_str()])
        .with_context(|| format!("{} is damaged or truncated", path.display()))?;
    match dump_schema_version(&pg_restore, path)? {
        Some(SCHEMA_VERSION) => Ok(Checked::Postgres(pg_restore)),
        found => anyhow::bail!(
            "{} has schema version {}, but this tool expects version {SCHEMA_VERSION}: restore it \
             with the version of this tool that made it",
            path.display(),
            found.map_or("none".to_string(), |v| v.to_string())
        ),
    }
}

/// The schema version a dump records in its migrations table, read without restoring it.
pub fn dump_schema_version(pg_restore: &PgTool, path: &Path) -> anyhow::Result<Option<i64>> {
    let table_arg = format!("--table={MIGRATIONS_TABLE}");
    let args = [
        OsStr::new("--data-only"),
        OsStr::new(&table_arg),
        OsStr::new("--file=-"),
        path.as_os_str(),
    ];
    Ok(dumped_schema_version(&pg_restore.run(None, &args)?))
}

/// The highest version in the `COPY ... FROM stdin` data of the migrations table, as
/// `pg_restore --data-only --file=-` prints it: one row a line, the version first, until `\.`.
fn dumped_schema_version(sql: &str) -> Option<i64> {
    let mut lines = sql.lines().skip_while(|line| !line.starts_with("COPY "));
    lines.next()?;
    lines
        .take_while(|line| *line != "\\.")
        .filter_map(|line| line.split('\t').next()?.parse().ok())
        .max()
}

/// Whether a `pg_restore --list` listing has a `TABLE <schema> <name> <owner>` entry for `name`.
fn lists_table(listing: &str, name: &str) -> bool {
    listing.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(3).any(|w| w[0] == "TABLE" && w[2] == name)
    })
}

/// Saves the target's current data with the `backup` command's own code, unless there is none.
/// Returns the safety backup's path, if it took one.
fn save_current_data(url: &DatabaseUrl, db: &mut Database) -> anyhow::Result<Option<String>> {
    let has_data = db.schema_version()?.is_some() && db.row_counts()?.iter().any(|(_, n)| *n > 0);
    if !has_data {
        eprintln!("no safety backup: {url} holds no data");
        return Ok(None);
    }
    let path = timestamped_path("toefl_pre_restore", backup::extension(url.backend()))?;
    let written = backup::write_backup(url, db, &path, false)
        .context("the safety backup failed, so nothing was restored")?;
    eprintln!("safety backup of {url}: {} ({written})", path.display());
    Ok(Some(path.display().to_string()))
}

/// Restores a checked dump onto `url` in one transaction: on any error the server rolls it back.
pub fn restore_dump(pg_restore: &PgTool, url: &DatabaseUrl, path: &Path) -> anyhow::Result<()> {
    let config = url.postgres_config().expect("a PostgreSQL URL");
    // Only the name: the rest of the connection, password included, is in the environment.
    let dbname = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default();
    let args = [
        OsStr::new("--clean"),
        OsStr::new("--if-exists"),
        OsStr::new("--no-owner"),
        OsStr::new("--single-transaction"),
        OsStr::new("--exit-on-error"),
        OsStr::new("--dbname"),
        OsStr::new(dbname),
        path.as_os_str(),
    ];
    pg_restore.run(Some(url), &args).with_context(|| {
        format!(
            "restoring {} failed; {url} is unchanged: the restore runs in one transaction",
            path.display()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_version_in_a_dump() {
        let sql = "SET x = 1;\nCOPY public.schema_migrations (version, applied_at) FROM stdin;\n\
                   1\t2026-01-01 00:00:00+00\n2\t2026-02-01 00:00:00+00\n\\.\n\n";
        assert_eq!(dumped_schema_version(sql), Some(2));
        assert_eq!(dumped_schema_version("SET x = 1;\n"), None);
    }

    #[test]
    fn tables_in_a_listing() {
        let listing = "; comment\n215; 1259 16390 TABLE public grades postgres\n\
                       3350; 0 16390 TABLE DATA public grades postgres\n";
        assert!(lists_table(listing, "grades"));
        assert!(!lists_table(listing, "students"));
    }
}
