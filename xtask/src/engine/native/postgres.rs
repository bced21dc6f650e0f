//! Native PostgreSQL backups: `pg_dump --format=custom`, checked whole with pg_restore before
//! anything changes, and restored by `pg_restore --single-transaction`, so that a failed or killed
//! restore is rolled back by the server.

use std::ffi::OsStr;
use std::path::Path;

use anyhow::Context as _;
use app::schema::MIGRATIONS_TABLE;
use app::{Database, DatabaseUrl, SCHEMA_VERSION, TABLES};

use super::pg_tools::{PgTool, PgVersion};

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
/// tables, and that every byte of it can be read (a truncated dump fails here, not midway).
pub(super) fn check_dump(path: &Path, format: (u8, u8)) -> anyhow::Result<PgTool> {
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
    match dump_schema_version(&pg_restore, path)? {
        Some(SCHEMA_VERSION) => Ok(pg_restore),
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

/// Restores a checked dump onto `url` in one transaction: on any error the server rolls it back.
pub(super) fn restore_dump(
    pg_restore: &PgTool,
    url: &DatabaseUrl,
    path: &Path,
) -> anyhow::Result<()> {
    let config = url
        .postgres_config()
        .context("a dump restores only onto PostgreSQL")?;
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
