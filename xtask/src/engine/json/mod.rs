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

use crate::engine::archive::source::Source;

/// Opens the export `source` for parsing, decrypted and decompressed.
fn open_export(source: &Source) -> anyhow::Result<BufReader<Box<dyn Read>>> {
    // serde_json reads byte by byte: a concrete buffer in front of the boxed (maybe decompressing)
    // reader keeps that from being a dynamic call per byte, which halves the import's CPU time.
    Ok(BufReader::with_capacity(1 << 16, source.open()?))
}
