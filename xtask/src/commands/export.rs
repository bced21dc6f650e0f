//! `cargo xtask export`: every row of every table, from one consistent snapshot, to a JSON file in the
//! universal format, streamed so that memory stays flat. A database of an earlier schema version is
//! exported as it is (the export before a deploy runs before its migration).

use std::path::PathBuf;

use anyhow::Context as _;
use app::{Create, Database, DatabaseUrl};

use crate::engine::archive::compression::Compression;
use crate::engine::archive::kind::BackupKind;
use crate::engine::archive::series::Series;
use crate::engine::json::writer::export_to_file;
use crate::flags::RecipientOptions;
use crate::flags::RemoteOptions;
use crate::offsite::Facts;
use crate::report::{human_size, Report};

/// Options of `cargo xtask export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The file to write [default: backups/toefl_export_YYYYMMDD_HHMMSS.json, UTC]
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Overwrite the file if it exists
    #[arg(long)]
    force: bool,
    /// Compress with zstd (default name .json.zst); a --file ending in .json.gz or .json.zst is
    /// compressed with gzip or zstd anyway
    #[arg(long)]
    compress: bool,
    #[command(flatten)]
    encryption: RecipientOptions,
    #[command(flatten)]
    remote: RemoteOptions,
}

/// Exports `url` to the chosen file (and then to the remote, if any) and prints where it went and
/// what it holds.
pub fn run(url: &DatabaseUrl, args: &ExportArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("export");
    let recipients = args.encryption.recipients()?;
    let offsite = args.remote.open()?;
    let mut db = Database::open(url, Create::No)?;
    let schema_version = db.known_schema_version(url)?;
    let compression = match &args.file {
        Some(path) => match (Compression::for_name(path), args.compress) {
            (Compression::None, true) => anyhow::bail!(
                "--compress writes zstd, but {} does not end in .json.zst: name it so (or .json.gz \
                 for gzip), or leave --file out",
                path.display()
            ),
            (compression, _) => compression,
        },
        None if args.compress => Compression::Zstd,
        None => Compression::None,
    };
    let extension = compression.export_extension();
    let path = Series::Export.path_for(args.file.as_deref(), extension, recipients.as_ref())?;
    let (counts, size) =
        export_to_file(&mut db, &path, args.force, compression, recipients.as_ref())
            .with_context(|| format!("cannot export {url} to {}", path.display()))?;
    let line = format!(
        "exported {url} to {}: {counts}; {} in {:.2} s",
        path.display(),
        human_size(size),
        report.seconds()
    );
    report
        .say(line)
        .backup_file(
            &path,
            BackupKind::Json,
            url.backend().as_str(),
            size,
            recipients.is_some(),
        )
        .field("compression", compression.as_str())
        .field("schema_version", schema_version)
        .rows(&counts);
    let facts = Facts {
        kind: BackupKind::Json,
        backend: url.backend(),
        schema_version,
        counts: &counts,
        compression,
    };
    offsite.upload(&path, &facts, "remote", &mut report)?;
    Ok(report)
}
