//! `cargo xtask export`: every row of every table, from one consistent snapshot, to a JSON file in the
//! universal format, streamed so that memory stays flat.

use std::path::PathBuf;

use anyhow::Context as _;
use app::{Create, Database, DatabaseUrl};

use crate::engine::archive::compression::Compression;
use crate::engine::archive::kind::BackupKind;
use crate::engine::archive::series::Series;
use crate::engine::json::writer::export_to_file;
use crate::flags::{Facts, RemoteOptions};
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
    remote: RemoteOptions,
}

/// Exports `url` to the chosen file (and then to the remote, if any) and prints where it went and
/// what it holds.
pub fn run(url: &DatabaseUrl, args: &ExportArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("export");
    let offsite = args.remote.open()?;
    let mut db = Database::open(url, Create::No)?;
    db.check_schema_version(url)?;
    let (path, compression) = match &args.file {
        Some(path) => match (Compression::for_name(path), args.compress) {
            (Compression::None, true) => anyhow::bail!(
                "--compress writes zstd, but {} does not end in .json.zst: name it so (or .json.gz \
                 for gzip), or leave --file out",
                path.display()
            ),
            (compression, _) => (path.clone(), compression),
        },
        None => {
            let compression = match args.compress {
                true => Compression::Zstd,
                false => Compression::None,
            };
            let path = Series::Export.new_path(compression.export_extension())?;
            (path, compression)
        }
    };
    let (counts, size) = export_to_file(&mut db, &path, args.force, compression)
        .with_context(|| format!("cannot export {url} to {}", path.display()))?;
    let line = format!(
        "exported {url} to {}: {counts}; {} in {:.2} s",
        path.display(),
        human_size(size),
        report.seconds()
    );
    report
        .say(line)
        .backup_file(&path, BackupKind::Json, url.backend().as_str(), size)
        .field("compression", compression.as_str())
        .rows(&counts);
    let facts = Facts {
        kind: BackupKind::Json,
        backend: url.backend(),
        counts: &counts,
        compression,
    };
    offsite.upload(&path, &facts, "remote", &mut report)?;
    Ok(report)
}
