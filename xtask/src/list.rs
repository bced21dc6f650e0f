//! `cargo xtask list`: the backups and exports in `backups/`, newest first, each described from its
//! content: kind, backend, when it was taken, size, schema version and rows.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

use crate::backup_file::{identify, FileKind};
use crate::backup_name::{files_named_by_us, BackupName};
use crate::compression::Compression;
use crate::files::{file_size, human_size, read_head};
use crate::import::read_header;
use crate::pg_tools::PgTool;
use crate::report::Report;
use crate::restore::dump_schema_version;

/// Options of `cargo xtask list`.
#[derive(clap::Args)]
#[command(
    after_help = "Only files named by this tool (toefl_backup_*, toefl_export_*, \
toefl_pre_import_*, toefl_pre_restore_*) whose content is a backup or export are listed. Rows of \
a PostgreSQL dump are not known without restoring it (`cargo xtask verify` does that)."
)]
pub struct ListArgs {
    /// The directory to list [default: the workspace's backups/]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// One listed file.
struct Listed {
    name: BackupName,
    path: PathBuf,
    kind: &'static str,
    backend: String,
    bytes: u64,
    compression: Compression,
    schema_version: Option<i64>,
    rows: Option<RowCounts>,
}

/// Rows per table, by table name.
type RowCounts = Vec<(String, u64)>;

/// Lists the backups in `--dir` or `backups/`.
pub fn run(args: &ListArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("list");
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => crate::files::backups_dir()?,
    };
    // pg_restore reads a dump's schema version; without it, dumps are still listed.
    let pg_restore = PgTool::find("pg_restore").ok();
    let mut listed = Vec::new();
    for (name, path) in files_named_by_us(&dir)? {
        listed.extend(describe(name, path, pg_restore.as_ref())?);
    }
    listed.sort_by(|a, b| (b.name.taken_at, &b.path).cmp(&(a.name.taken_at, &a.path)));
    report.say(format!(
        "{:<19}  {:<6}  {:<8}  {:>9}  {:>6}  {:>9}  FILE",
        "CREATED (UTC)", "KIND", "BACKEND", "SIZE", "SCHEMA", "ROWS"
    ));
    for file in &listed {
        report.say(format!(
            "{:<19}  {:<6}  {:<8}  {:>9}  {:>6}  {:>9}  {}",
            file.name.taken_at.format("%Y-%m-%d %H:%M:%S"),
            file.kind,
            file.backend,
            human_size(file.bytes),
            file.schema_version.map_or("?".into(), |v| v.to_string()),
            file.rows.as_ref().map_or("-".into(), |rows| rows
                .iter()
                .map(|(_, n)| n)
                .sum::<u64>()
                .to_string()),
            file.path.display()
        ));
    }
    report.say(format!("{} backups in {}", listed.len(), dir.display()));
    let backups: Vec<Value> = listed.iter().map(Listed::to_json).collect();
    report
        .field("path", dir.display().to_string())
        .field("backups", backups);
    Ok(report)
}

/// Describes the file at `path` from its content; `None` when it is not a backup after all.
fn describe(
    name: BackupName,
    path: PathBuf,
    pg_restore: Option<&PgTool>,
) -> anyhow::Result<Option<Listed>> {
    let bytes = file_size(&path)?;
    let compression = Compression::of(&read_head(&path, 4)?);
    let listed = |kind, backend: &str, schema_version, rows| Listed {
        name: name.clone(),
        path: path.clone(),
        kind,
        backend: backend.to_string(),
        bytes,
        compression,
        schema_version,
        rows,
    };
    Ok(Some(match identify(&path)? {
        FileKind::JsonExport => match read_header(&path) {
            Ok(header) => {
                let rows = header
                    .row_counts
                    .clone()
                    .map(|counts| counts.into_iter().collect());
                let backend = header.source_backend().unwrap_or("?").to_string();
                listed("json", &backend, header.schema_version, rows)
            }
            Err(_) => listed("json", "?", None, None),
        },
        FileKind::Sqlite => {
            let (schema_version, rows) = sqlite_contents(&path).unwrap_or((None, None));
            listed("native", "sqlite", schema_version, rows)
        }
        FileKind::PostgresDump(..) => {
            let version =
                pg_restore.and_then(|tool| dump_schema_version(tool, &path).ok().flatten());
            listed("native", "postgres", version, None)
        }
        FileKind::Unknown(_) => return Ok(None),
    }))
}

/// The schema version and row counts of a SQLite backup, read without changing it.
fn sqlite_contents(path: &Path) -> anyhow::Result<(Option<i64>, Option<RowCounts>)> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut db = app::Database::Sqlite(Connection::open_with_flags(path, flags)?);
    let version = db.schema_version()?;
    let rows = match version {
        Some(app::SCHEMA_VERSION) => Some(
            db.row_counts()?
                .into_iter()
                .map(|(t, n)| (t.name.to_string(), n))
                .collect(),
        ),
        _ => None,
    };
    Ok((version, rows))
}

impl Listed {
    fn to_json(&self) -> Value {
        let rows = self.rows.as_ref().map(|rows| {
            rows.iter()
                .map(|(table, n)| (table.clone(), json!(n)))
                .collect::<serde_json::Map<_, _>>()
        });
        json!({
            "path": self.path.display().to_string(),
            "file": self.path.file_name().unwrap_or(OsStr::new("")).to_string_lossy(),
            "kind": self.kind,
            "backend": self.backend,
            "created": format!("{}Z", self.name.taken_at.format("%Y-%m-%dT%H:%M:%S")),
            "bytes": self.bytes,
            "compression": self.compression.as_str(),
            "schema_version": self.schema_version,
            "rows": rows,
        })
    }
}
