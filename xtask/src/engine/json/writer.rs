//! Writes every table, from one read snapshot, as an export in the [`super::format`], at the
//! database's own schema version (an older database is exported as it is, before a migration): rows
//! are read from the database on one thread and formatted on another.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use app::{Database, RowCounts, SCHEMA_VERSION, TABLES};

use super::format::{write_header, RowEncoder};
use crate::engine::archive::compression::{CompressedWriter, Compression};
use crate::engine::archive::new_file::NewFile;
use crate::engine::checks::Place;
use crate::engine::crypto::{MaybeEncrypted, Recipients};
use crate::engine::rows::{pipeline, RowReceiver};
use crate::progress::Progress;

/// Writes every table of `db` to `path` from one read snapshot, compressed, then encrypted to
/// `recipients` if any (the plaintext exists only in memory, a chunk at a time); the file gets its
/// name only when it is complete. Returns the rows per table and the file's size in bytes.
pub fn export_to_file(
    db: &mut Database,
    path: &Path,
    force: bool,
    compression: Compression,
    recipients: Option<&Recipients>,
) -> anyhow::Result<(RowCounts, u64)> {
    let mut file = NewFile::create(path, force)?;
    let counts = db.read_snapshot(|db| {
        let schema_version = db
            .schema_version()?
            .filter(|v| (1..=SCHEMA_VERSION).contains(v))
            .context("the database has no schema version this tool knows")?;
        // The counts go in the header, before the rows: they come from the same snapshot.
        let counts = db.row_counts()?;
        let encrypted = MaybeEncrypted::new(file.file(), recipients)?;
        let mut out = CompressedWriter::new(encrypted, compression)?;
        write_tables(db, schema_version, &counts, &mut out)?;
        out.finish()?.finish()?;
        Ok::<_, anyhow::Error>(counts)
    })?;
    let size = file.persist()?;
    Ok((counts, size))
}

/// Writes the header and every table; the rows are read on a thread of their own while this one
/// formats them.
fn write_tables(
    db: &mut Database,
    schema_version: i64,
    counts: &RowCounts,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    write_header(out, db.backend(), schema_version, counts)?;
    pipeline(
        |rows| {
            for table in TABLES {
                let send = |row: &[app::Value]| Ok::<_, anyhow::Error>(rows.send(table, row)?);
                db.for_each_row(table, schema_version, send)?;
            }
            Ok(())
        },
        |rows| write_rows(schema_version, counts, rows, out),
    )?;
    out.write_all(b"\n }}\n")?;
    Ok(())
}

/// Writes the `tables` of the file (rows of `schema_version`): each table's rows, one per line, a
/// megabyte at a time.
fn write_rows(
    schema_version: i64,
    counts: &RowCounts,
    rows: &mut RowReceiver,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    /// Written in pieces this large, the text goes past the writer's buffer instead of through it.
    const PIECE: usize = 1 << 20;
    let mut progress = Progress::new("exporting", Some(counts.total()));
    let mut text = Vec::with_capacity(PIECE + PIECE / 4);
    for (position, (table, expected)) in counts.iter().enumerate() {
        let comma = if position == 0 { "" } else { "," };
        write!(text, "{comma}\n  \"{}\": [", table.name)?;
        let mut encoder = RowEncoder::new(table, schema_version);
        let mut written = 0u64;
        while let Some(batch) = rows.next_of(table)? {
            for row in batch.rows() {
                text.extend_from_slice(if written == 0 { b"\n   " } else { b",\n   " });
                encoder
                    .encode_row(&mut text, row)
                    .with_context(|| Place::of_row(table, written + 1, row).to_string())?;
                written += 1;
            }
            progress.add(batch.len() as u64);
            if text.len() >= PIECE {
                out.write_all(&text)?;
                text.clear();
            }
        }
        anyhow::ensure!(
            written == expected,
            "table {} changed during the export ({expected} rows counted, {written} read): \
             the snapshot was not consistent",
            table.name
        );
        text.extend_from_slice(b"\n  ]");
    }
    out.write_all(&text)?;
    rows.end()
}
