//! The JSON engine: the universal export format ([`format`], version 1, documented in
//! `docs/export-format.md`), written from one snapshot by [`writer`], its header read alone by
//! [`header`], and its rows loaded, checked, by [`loader`]. Files are streamed both ways, so memory
//! stays flat whatever their size.

pub mod format;
pub mod header;
pub mod loader;
pub mod scan;
pub mod writer;

use std::io::{BufReader, Read};
use std::path::Path;

use crate::engine::archive::compression::open_decompressed;

/// Opens the export at `path` for parsing, decompressed if it is compressed.
fn open_export(path: &Path) -> anyhow::Result<BufReader<Box<dyn Read>>> {
    // serde_json reads byte by byte: a concrete buffer in front of the boxed (maybe decompressing)
    // reader keeps that from being a dynamic call per byte, which halves the import's CPU time.
    Ok(BufReader::with_capacity(1 << 16, open_decompressed(path)?))
}
