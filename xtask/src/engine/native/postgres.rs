//! Native PostgreSQL backups: `pg_dump --format=custom`, checked whole with pg_restore before
//! anything changes, and restored by `pg_restore --single-transaction`, so that a failed or killed
//! restore is rolled back by the server. A dump of an earlier schema version is restored with its
//! migration in one transaction: pg_restore writes the restore as SQL, and psql runs it and the
//! migration in one transaction.

use std::ffi::OsStr;
use std::path::Path;

use anyhow::Context as _;
use app::schema::{migration_script, postgres_refused_row_guards, MIGRATIONS_TABLE};
use app::{Backend, Database, DatabaseUrl, SCHEMA_VERSION, TABLES};

use super::pg_tools::{PgTool, PgVersion};
use crate::engine::crypto::PrivateDir;

/// The server's release, from `server_version_num` (e.g. 150018 for 15.18).
fn server_version(db: &mut Database) -> anyhow::Result<PgVersion> {
    let number = db
        .query_i64("SELECT current_setting('server_version_num')::bigint")?
        .context("the server did not report its version")?;
    Ok(PgVersion {
        major: (number / 10_000) as u32,
        minor: (number % 10_000) as u32,
    })
}

/// Writes a custom-format dump of `url` to `path`, after checking that pg_dump is not older than
/// the server (it refuses to dump a newer server, with a less helpful message).
pub(super) fn dump(url: &DatabaseUrl, db: &mut Database, path: &Path) -> anyhow::Result<()> {
    let pg_dump = PgTool::find("pg_dump")?;
    let ours = pg_dump.version()?;
    let server = server_version(db)?;
    if ours.major < server.major {
        anyhow::bail!(
            "pg_dump {ours} is older than the server, PostgreSQL {server}, and cannot dump it: \
             install the PostgreSQL {} client (e.g. apt-get install postgresql-client-{}) and put \
             it first on PATH",
            server.major,
            server.major
        );
    }
    let mut file_arg = OsStr::new("--file=").to_os_string();
    file_arg.push(path);
    pg_dump.run(Some(url), &[OsStr::new("--format=custom"), &file_arg])?;
    Ok(())
}

/// Checks a dump with pg_restore: that this pg_restore can read its format, that it holds the app's
/// tables, that every byte of it can be read (a truncated dump fails here, not midway), and that its
/// schema version is one this tool knows. Returns that pg_restore and the schema version.
pub(super) fn check_dump(path: &Path, format: (u8, u8)) -> anyhow::Result<(PgTool, i64)> {
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
    // Reading the whole dump into the null device proves every byte can be read.
    let to_nowhere = if cfg!(windows) {
        "--file=NUL"
    } else {
        "--file=/dev/null"
    };
    pg_restore
        .run(None, &[OsStr::new(to_nowhere), path.as_os_str()])
        .with_context(|| format!("{} is damaged or truncated", path.display()))?;
    let version = super::known_version(path, dump_schema_version(&pg_restore, path)?)?;
    Ok((pg_restore, version))
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

/// The name of the database `url` names: the only part of the connection that goes on a tool's
/// command line; the rest, password included, is in its environment.
fn database_name(url: &DatabaseUrl) -> anyhow::Result<String> {
    let config = url
        .postgres_config()
        .context("a dump restores only onto PostgreSQL")?;
    Ok(config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default()
        .to_string())
}

/// Restores a checked dump onto `url` in one transaction: on any error the server rolls it back.
pub(super) fn restore_dump(
    pg_restore: &PgTool,
    url: &DatabaseUrl,
    path: &Path,
) -> anyhow::Result<()> {
    let dbname = database_name(url)?;
    let args = [
        OsStr::new("--clean"),
        OsStr::new("--if-exists"),
        OsStr::new("--no-owner"),
        OsStr::new("--single-transaction"),
        OsStr::new("--exit-on-error"),
        OsStr::new("--dbname"),
        OsStr::new(&dbname),
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

/// Restores a checked dump of schema version `stored`, older than this tool's, onto `url` and brings
/// it forward, in one transaction: pg_restore writes the restore as SQL to a private temporary file,
/// and psql runs that and the migrations in one transaction, which the server rolls back on any
/// error.
pub(super) fn restore_dump_brought_forward(
    pg_restore: &PgTool,
    url: &DatabaseUrl,
    path: &Path,
    stored: i64,
) -> anyhow::Result<()> {
    let psql = PgTool::find("psql")?;
    // The script holds all the data, maybe decrypted: owner-only, and removed even on Ctrl-C.
    let dir = PrivateDir::new()?;
    let script = dir.path().join("restore.sql");
    let mut script_arg = OsStr::new("--file=").to_os_string();
    script_arg.push(&script);
    pg_restore.run(
        None,
        &[
            OsStr::new("--clean"),
            OsStr::new("--if-exists"),
            OsStr::new("--no-owner"),
            &script_arg,
            path.as_os_str(),
        ],
    )?;
    // The restore's SQL empties search_path; the migrations name tables as the app does. Each
    // version first names a row that its new checks would refuse, as `migrate` does.
    let mut migrations = String::from("RESET search_path;\n");
    for version in stored + 1..=SCHEMA_VERSION {
        for guard in postgres_refused_row_guards(version) {
            migrations.push_str(&guard);
            migrations.push_str(";\n");
        }
        migrations.push_str(&migration_script(version, Backend::Postgres));
        migrations.push_str(";\n");
    }
    let dbname = database_name(url)?;
    let args = [
        OsStr::new("--no-psqlrc"),
        OsStr::new("--quiet"),
        OsStr::new("--single-transaction"),
        OsStr::new("--set=ON_ERROR_STOP=1"),
        OsStr::new("--dbname"),
        OsStr::new(&dbname),
        &script_arg,
        OsStr::new("--command"),
        OsStr::new(&migrations),
    ];
    psql.run(Some(url), &args).with_context(|| {
        format!(
            "restoring {} (schema version {stored}) and migrating it to version {SCHEMA_VERSION} \
             failed; {url} is unchanged: both run in one transaction",
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
