//! `cargo xtask list`: the backups and exports in `backups/`, newest first, each described from its
//! content: kind, backend, when it was taken, size, schema version and rows. An encrypted file is
//! described from its content too when an identity is given; without one, from its name and size.
//! With `--remote`, those of the remote, described from their names and the metadata stored with
//! them (nothing is downloaded).

use std::path::{Path, PathBuf};

use app::{Backend, RowCounts};
use serde_json::{json, Value};

use crate::engine::archive::compression::Compression;
use crate::engine::archive::file_size;
use crate::engine::archive::kind::{identify, BackupKind, FileKind};
use crate::engine::archive::series::{files_named_by_us, BackupName};
use crate::engine::archive::source::Source;
use crate::engine::crypto::{Identities, AGE_EXTENSION};
use crate::engine::json::header::read_header;
use crate::engine::native::{self, dump_schema_version, PgTool};
use crate::engine::remote::Remote;
use crate::flags::{IdentityOptions, RemoteOptions};
use crate::offsite::{Archive, StoredFacts};
use crate::report::{human_size, Report};

/// Options of `cargo xtask list`.
#[derive(clap::Args)]
#[command(
    after_help = "Only files named by this tool (toefl_backup_*, toefl_export_*, \
toefl_pre_import_*, toefl_pre_restore_*, toefl_pre_migrate_*, toefl_pre_copy_*) whose content is a backup or export \
are listed. SCHEMA is the schema version of the file's data: older ones restore and import too, \
brought forward. Rows of a PostgreSQL dump are not known without restoring it (`cargo xtask \
verify` does that). An encrypted file (.age) is listed with what its name and size tell; with \
--identity, with the rest. With --remote, the remote's objects with these names are listed, from \
the metadata stored with them."
)]
pub struct ListArgs {
    /// The directory to list, even with a remote configured [default: the remote with --remote,
    /// else the workspace's backups/]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    decryption: IdentityOptions,
    #[command(flatten)]
    remote: RemoteOptions,
}

/// One listed file. What its content tells is unknown (`None`, `?`) for an encrypted file that
/// could not be decrypted, or an object whose metadata does not say.
struct Listed {
    name: BackupName,
    /// Its path, or its object's URL.
    path: String,
    file: String,
    encrypted: bool,
    kind: Option<String>,
    backend: String,
    bytes: u64,
    compression: Option<String>,
    schema_version: Option<i64>,
    rows: Option<RowCounts>,
}

/// Lists the backups in `--dir` or `backups/`, or in the remote.
pub fn run(args: &ListArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("list");
    let (place, mut listed) = match args.remote.archive(args.dir.as_deref())? {
        Archive::Remote(remote) => (remote.url().to_string(), list_remote(&remote)?),
        Archive::Dir(dir) => {
            let identities = args.decryption.identities();
            (dir.display().to_string(), list_dir(&dir, &identities)?)
        }
    };
    listed.sort_by(|a, b| (b.name.order(), &b.path).cmp(&(a.name.order(), &a.path)));
    report.say(format!(
        "{:<19}  {:<6}  {:<8}  {:>9}  {:>6}  {:>9}  {:<9}  FILE",
        "CREATED (UTC)", "KIND", "BACKEND", "SIZE", "SCHEMA", "ROWS", "ENCRYPTED"
    ));
    for file in &listed {
        report.say(format!(
            "{:<19}  {:<6}  {:<8}  {:>9}  {:>6}  {:>9}  {:<9}  {}",
            file.name.taken_at.format("%Y-%m-%d %H:%M:%S"),
            file.kind.as_deref().unwrap_or("?"),
            file.backend,
            human_size(file.bytes),
            file.schema_version.map_or("?".into(), |v| v.to_string()),
            file.rows
                .as_ref()
                .map_or("-".into(), |rows| rows.total().to_string()),
            if file.encrypted { "yes" } else { "no" },
            file.path
        ));
    }
    report.say(format!("{} backups in {place}", listed.len()));
    let unread = listed
        .iter()
        .filter(|file| file.encrypted && file.kind.is_none())
        .count();
    if unread > 0 {
        report.say(format!(
            "{unread} encrypted, described by name and size only: pass --identity with their \
             private key to describe them whole"
        ));
    }
    let backups: Vec<Value> = listed.iter().map(Listed::to_json).collect();
    report.field("path", place).field("backups", backups);
    Ok(report)
}

/// The backups in `dir`, described from their content (decrypted with `identities`).
fn list_dir(dir: &Path, identities: &Identities) -> anyhow::Result<Vec<Listed>> {
    // pg_restore reads a dump's schema version; without it, dumps are still listed.
    let pg_restore = PgTool::find("pg_restore").ok();
    let mut listed = Vec::new();
    for (name, path) in files_named_by_us(dir)? {
        listed.extend(describe(name, path, identities, pg_restore.as_ref())?);
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
        listed.push(Listed {
            name,
            path: remote.url().object(&file),
            encrypted: file.ends_with(&format!(".{AGE_EXTENSION}")),
            kind: facts.kind,
            backend: facts.backend.unwrap_or_else(|| "?".to_string()),
            bytes: object.size,
            compression: facts.compression,
            schema_version: facts.schema_version,
            rows: facts.counts,
            file,
        });
    }
    Ok(listed)
}

/// Describes the file at `path` from its content (decrypted with `identities` if it is encrypted);
/// `None` when it is not a backup after all.
fn describe(
    name: BackupName,
    path: PathBuf,
    identities: &Identities,
    pg_restore: Option<&PgTool>,
) -> anyhow::Result<Option<Listed>> {
    let bytes = file_size(&path)?;
    let source = Source::new(&path, identities)?;
    let listed = |kind: Option<BackupKind>,
                  backend: &str,
                  compression: Option<Compression>,
                  schema_version,
                  rows| Listed {
        name: name.clone(),
        path: path.display().to_string(),
        file: path
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned()),
        encrypted: source.is_encrypted(),
        kind: kind.map(|k| k.as_str().to_string()),
        backend: backend.to_string(),
        bytes,
        compression: compression.map(|c| c.as_str().to_string()),
        schema_version,
        rows,
    };
    // Without its key, an encrypted file tells only what its name and size do.
    let sealed = || Ok(Some(listed(None, "?", None, None, None)));
    if source.lacks_identity() {
        return sealed();
    }
    let (kind, compression) =
        match identify(&source).and_then(|kind| Ok((kind, source.compression()?))) {
            Ok(known) => known,
            Err(_) if source.is_encrypted() => return sealed(),
            Err(error) => return Err(error),
        };
    let compression = Some(compression);
    Ok(Some(match kind {
        FileKind::JsonExport => match read_header(&source) {
            Ok(header) => {
                let rows = header.row_counts.as_ref().map(|_| header.counts());
                let backend = header.source_backend().unwrap_or("?").to_string();
                let kind = Some(BackupKind::Json);
                listed(kind, &backend, compression, header.schema_version, rows)
            }
            Err(_) => listed(Some(BackupKind::Json), "?", compression, None, None),
        },
        FileKind::Sqlite => {
            let contents = source
                .plain_file()
                .and_then(|plain| native::sqlite_contents(plain.path()));
            let (schema_version, rows) = contents.unwrap_or((None, None));
            let backend = Backend::Sqlite.as_str();
            listed(
                Some(BackupKind::Native),
                backend,
                compression,
                schema_version,
                rows,
            )
        }
        FileKind::PostgresDump(..) => {
            let version = pg_restore.and_then(|tool| {
                let plain = source.plain_file().ok()?;
                dump_schema_version(tool, plain.path()).ok().flatten()
            });
            let backend = Backend::Postgres.as_str();
            listed(
                Some(BackupKind::Native),
                backend,
                compression,
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
            "encrypted": self.encrypted,
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
