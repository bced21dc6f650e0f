//! `cargo xtask list`: the backups and exports in `backups/`, newest first, each described from its
//! content: kind, backend, when it was taken, size, schema version and rows. With `--remote`, those
//! of the remote, described from their names and the metadata stored with them (nothing is
//! downloaded).

use std::path::PathBuf;

use app::{Backend, RowCounts};
use serde_json::{json, Value};

use crate::engine::archive::compression::Compression;
use crate::engine::archive::kind::{identify, BackupKind, FileKind};
use crate::engine::archive::series::{files_named_by_us, BackupName};
use crate::engine::archive::{file_size, read_head};
use crate::engine::json::header::read_header;
use crate::engine::native::{self, dump_schema_version, PgTool};
use crate::engine::remote::Remote;
use crate::flags::{Archive, RemoteOptions, StoredFacts};
use crate::report::{human_size, Report};

/// Options of `cargo xtask list`.
#[derive(clap::Args)]
#[command(
    after_help = "Only files named by this tool (toefl_backup_*, toefl_export_*, \
toefl_pre_import_*, toefl_pre_restore_*) whose content is a backup or export are listed. Rows of \
a PostgreSQL dump are not known without restoring it (`cargo xtask verify` does that). With \
--remote, the remote's objects with these names are listed, from the metadata stored with them."
)]
pub struct ListArgs {
    /// The directory to list, even with a remote configured [default: the remote with --remote,
    /// else the workspace's backups/]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    remote: RemoteOptions,
}

/// One listed file.
struct Listed {
    name: BackupName,
    /// Its path, or its object's URL.
    path: String,
    file: String,
    kind: String,
    backend: String,
    bytes: u64,
    compression: String,
    schema_version: Option<i64>,
    rows: Option<RowCounts>,
}

/// Lists the backups in `--dir` or `backups/`, or in the remote.
pub fn run(args: &ListArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("list");
    let (place, mut listed) = match args.remote.archive(args.dir.as_deref())? {
        Archive::Remote(remote) => (remote.url().to_string(), list_remote(&remote)?),
        Archive::Dir(dir) => (dir.display().to_string(), list_dir(&dir)?),
    };
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
            file.rows
                .as_ref()
                .map_or("-".into(), |rows| rows.total().to_string()),
            file.path
        ));
    }
    report.say(format!("{} backups in {place}", listed.len()));
    let backups: Vec<Value> = listed.iter().map(Listed::to_json).collect();
    report.field("path", place).field("backups", backups);
    Ok(report)
}

/// The backups in `dir`, described from their content.
fn list_dir(dir: &std::path::Path) -> anyhow::Result<Vec<Listed>> {
    // pg_restore reads a dump's schema version; without it, dumps are still listed.
    let pg_restore = PgTool::find("pg_restore").ok();
    let mut listed = Vec::new();
    for (name, path) in files_named_by_us(dir)? {
        listed.extend(describe(name, path, pg_restore.as_ref())?);
    }
    Ok(listed)
}

/// The backups in `remote`, described from their names and metadata.
fn list_remote(remote: &Remote) -> anyhow::Result<Vec<Listed>> {
    let mut listed = Vec::new();
    for (file, _) in remote.list()? {
        let Some(name) = BackupName::parse(&file) else {
            continue;
        };
        let object = remote.describe(&file)?;
        let facts = StoredFacts::of(&object.metadata);
        let unknown = || "?".to_string();
        listed.push(Listed {
            name,
            path: remote.url().object(&file),
            kind: facts.kind.unwrap_or_else(unknown),
            backend: facts.backend.unwrap_or_else(unknown),
            bytes: object.size,
            compression: facts.compression.unwrap_or_else(unknown),
            schema_version: facts.schema_version,
            rows: facts.counts,
            file,
        });
    }
    Ok(listed)
}

/// Describes the file at `path` from its content; `None` when it is not a backup after all.
fn describe(
    name: BackupName,
    path: PathBuf,
    pg_restore: Option<&PgTool>,
) -> anyhow::Result<Option<Listed>> {
    let bytes = file_size(&path)?;
    let compression = Compression::of(&read_head(&path, 4)?);
    let listed = |kind: BackupKind, backend: &str, schema_version, rows| Listed {
        name: name.clone(),
        path: path.display().to_string(),
        file: path
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned()),
        kind: kind.as_str().to_string(),
        backend: backend.to_string(),
        bytes,
        compression: compression.as_str().to_string(),
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
            "path": self.path,
            "file": self.file,
            "kind": self.kind,
            "backend": self.backend,
            "created": format!("{}Z", self.name.taken_at.format("%Y-%m-%dT%H:%M:%S")),
            "bytes": self.bytes,
            "compression": self.compression,
            "schema_version": self.schema_version,
            "rows": self.rows,
        })
    }
}
