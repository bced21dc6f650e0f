//! `cargo xtask list`: the backups and exports in `backups/`, newest first, each described from its
//! content: kind, backend, when it was taken, size, schema version and rows.

use std::ffi::OsStr;
use std::path::PathBuf;

use app::{Backend, RowCounts};
use serde_json::{json, Value};

use crate::engine::archive::compression::Compression;
use crate::engine::archive::kind::{identify, BackupKind, FileKind};
use crate::engine::archive::series::{files_named_by_us, BackupName};
use crate::engine::archive::{backups_dir, file_size, read_head};
use crate::engine::json::header::read_header;
use crate::engine::native::{self, dump_schema_version, PgTool};
use crate::report::{human_size, Report};

/// Options of `cargo xtask list`.
#[derive(clap::Args)]
#[command(
    after_help = "Only files named by this tool (toefl_backup_*, toefl_export_*, \
toefl_pre_import_*, toefl_pre_restore_*, toefl_pre_migrate_*) whose content is a backup or export \
are listed. SCHEMA is the schema version of the file's data: older ones restore and import too, \
brought forward. Rows of a PostgreSQL dump are not known without restoring it (`cargo xtask \
verify` does that)."
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
    kind: BackupKind,
    backend: String,
    bytes: u64,
    compression: Compression,
    schema_version: Option<i64>,
    rows: Option<RowCounts>,
}

/// Lists the backups in `--dir` or `backups/`.
pub fn run(args: &ListArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("list");
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => backups_dir()?,
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
            file.kind.as_str(),
            file.backend,
            human_size(file.bytes),
            file.schema_version.map_or("?".into(), |v| v.to_string()),
            file.rows
                .as_ref()
                .map_or("-".into(), |rows| rows.total().to_string()),
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
                let rows = header.row_counts.as_ref().map(|_| header.counts());
                let backend = header.source_backend().unwrap_or("?").to_string();
                listed(BackupKind::Json, &backend, header.schema_version, rows)
            }
            Err(_) => listed(BackupKind::Json, "?", None, None),
        },
        FileKind::Sqlite => {
            let (schema_version, rows) = native::sqlite_contents(&path).unwrap_or((None, None));
            listed(
                BackupKind::Native,
                Backend::Sqlite.as_str(),
                schema_version,
                rows,
            )
        }
        FileKind::PostgresDump(..) => {
            let version =
                pg_restore.and_then(|tool| dump_schema_version(tool, &path).ok().flatten());
            listed(
                BackupKind::Native,
                Backend::Postgres.as_str(),
                version,
                None,
            )
        }
        FileKind::Unknown(_) => return Ok(None),
    }))
}

impl Listed {
    fn to_json(&self) -> Value {
        json!({
            "path": self.path.display().to_string(),
            "file": self.path.file_name().unwrap_or(OsStr::new("")).to_string_lossy(),
            "kind": self.kind.as_str(),
            "backend": self.backend,
            "created": format!("{}Z", self.name.taken_at.format("%Y-%m-%dT%H:%M:%S")),
            "bytes": self.bytes,
            "compression": self.compression.as_str(),
            "schema_version": self.schema_version,
            "rows": self.rows,
        })
    }
}
