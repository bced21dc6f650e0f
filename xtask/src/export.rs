//! `cargo xtask export`: every row of every table, from one consistent snapshot, to a JSON file in the
//! universal format of [`crate::export_format`], streamed so that memory stays flat.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use app::{Create, Database, DatabaseUrl, Table};

use crate::compression::{CompressedWriter, Compression};
use crate::export_format::{write_header, RowEncoder};
use crate::files::{describe_counts, human_size, timestamped_path, NewFile};
use crate::progress::Progress;
use crate::report::Report;

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
}

/// Exports `url` to the chosen file and prints where it went and what it holds.
pub fn run(url: &DatabaseUrl, args: &ExportArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("export");
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
            let name = timestamped_path("toefl_export", compression.export_extension())?;
            (name, compression)
        }
    };
    let (counts, size) = export_to_file(&mut db, &path, args.force, compression)
        .with_context(|| format!("cannot export {url} to {}", path.display()))?;
    let rows = || counts.iter().map(|(t, n)| (t.name, *n));
    let line = format!(
        "exported {url} to {}: {}; {} in {:.2} s",
        path.display(),
        describe_counts(rows()),
        human_size(size),
        report.seconds()
    );
    report
        .say(line)
        .backup_file(&path, "json", url.backend().as_str(), size)
        .field("compression", compression.as_str())
        .rows(rows());
    Ok(report)
}

/// Writes every table of `db` to `path` from one read snapshot; the file gets its name only when it
/// is complete. Returns the rows per table and the file's size in bytes.
pub fn export_to_file(
    db: &mut Database,
    path: &Path,
    force: bool,
    compression: Compression,
) -> anyhow::Result<(Vec<(&'static Table, u64)>, u64)> {
    let mut file = NewFile::create(path, force)?;
    let counts = db.read_snapshot(|db| {
        // The counts go in the header, before the rows: they come from the same snapshot.
        let counts = db.row_counts()?;
        let mut out = CompressedWriter::new(file.file(), compression)?;
        write_tables(db, &counts, &mut out)?;
        out.finish()?;
        Ok::<_, anyhow::Error>(counts)
    })?;
    let size = file.persist()?;
    Ok((counts, size))
}

fn write_tables(
    db: &mut Database,
    counts: &[(&'static Table, u64)],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    write_header(out, db.backend(), counts)?;
    let mut progress = Progress::new("exporting", Some(counts.iter().map(|(_, n)| n).sum()));
    for (position, (table, expected)) in counts.iter().enumerate() {
        let comma = if position == 0 { "" } else { "," };
        write!(out, "{comma}\n  \"{}\": [", table.name)?;
        let mut encoder = RowEncoder::new(table);
        let mut written = 0u64;
        db.for_each_row(table, |row| {
            out.write_all(if written == 0 { b"\n   " } else { b",\n   " })?;
            encoder
                .write_row(out, row)
                .with_context(|| format!("table {}, row id {:?}", table.name, row[0]))?;
            progress.add(1);
            written += 1;
            Ok::<_, anyhow::Error>(())
        })?;
        anyhow::ensure!(
            written == *expected,
            "table {} changed during the export ({expected} rows counted, {written} read): \
             the snapshot was not consistent",
            table.name
        );
        out.write_all(b"\n  ]")?;
    }
    out.write_all(b"\n }}\n")?;
    Ok(())
}
