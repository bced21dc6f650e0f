//! Compressed exports: gzip or zstd, chosen by the file name (`.json.gz`, `.json.zst`, also before
//! `.age`) or by `--compress` (zstd), and recognised on reading by the first bytes, whatever the name.

use std::io::{self, BufRead as _, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::Context as _;

use crate::engine::crypto::AGE_EXTENSION;

/// How a file's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
}

/// zstd's level for exports: fast, and already several times smaller than plain JSON.
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// The compression a file starting with `head` uses.
    pub fn of(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The compression a file name asks for (`.age`, for encryption, may follow).
    pub fn for_name(path: &Path) -> Compression {
        let name = path.to_string_lossy();
        let name = name
            .strip_suffix(AGE_EXTENSION)
            .and_then(|name| name.strip_suffix('.'))
            .unwrap_or(&name);
        if name.ends_with(".gz") {
            Compression::Gzip
        } else if name.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The file extension of an export with this compression.
    pub fn export_extension(self) -> &'static str {
        match self {
            Compression::None => "json",
            Compression::Gzip => "json.gz",
            Compression::Zstd => "json.zst",
        }
    }

    /// The name in messages and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// `input` (read from `path`) decompressed if it is compressed, known by its first bytes.
pub fn decompressed(input: Box<dyn Read>, path: &Path) -> anyhow::Result<Box<dyn Read>> {
    let mut file = BufReader::with_capacity(1 << 16, input);
    let head = file
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(match Compression::of(head) {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(file),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            1 << 16,
            zstd::Decoder::with_buffer(file).context("cannot start zstd decompression")?,
        )),
    })
}

/// A buffered writer that compresses as asked; [`CompressedWriter::finish`] writes the end of the
/// compressed stream, without which the file is incomplete.
pub enum CompressedWriter<W: Write> {
    /// Plain.
    Plain(BufWriter<W>),
    /// gzip.
    Gzip(flate2::write::GzEncoder<BufWriter<W>>),
    /// zstd.
    Zstd(zstd::Encoder<'static, BufWriter<W>>),
}

impl<W: Write> CompressedWriter<W> {
    /// Starts writing to `inner` with `compression`.
    pub fn new(inner: W, compression: Compression) -> io::Result<CompressedWriter<W>> {
        let buffered = BufWriter::with_capacity(1 << 20, inner);
        Ok(match compression {
            Compression::None => CompressedWriter::Plain(buffered),
            Compression::Gzip => CompressedWriter::Gzip(flate2::write::GzEncoder::new(
                buffered,
                flate2::Compression::default(),
            )),
            Compression::Zstd => CompressedWriter::Zstd(zstd::Encoder::new(buffered, ZSTD_LEVEL)?),
        })
    }

    /// Ends the compressed stream, flushes everything, and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        let buffered = match self {
            CompressedWriter::Plain(buffered) => buffered,
            CompressedWriter::Gzip(encoder) => encoder.finish()?,
            CompressedWriter::Zstd(encoder) => encoder.finish()?,
        };
        buffered
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

impl<W: Write> Write for CompressedWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            CompressedWriter::Plain(w) => w.write(bytes),
            CompressedWriter::Gzip(w) => w.write(bytes),
            CompressedWriter::Zstd(w) => w.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            CompressedWriter::Plain(w) => w.flush(),
            CompressedWriter::Gzip(w) => w.flush(),
            CompressedWriter::Zstd(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ask_for_compression_also_before_age() {
        let cases = [
            ("toefl.json", Compression::None),
            ("toefl.json.gz", Compression::Gzip),
            ("toefl.json.zst", Compression::Zstd),
            ("toefl.json.zst.age", Compression::Zstd),
            ("toefl.json.gz.age", Compression::Gzip),
            ("toefl.json.age", Compression::None),
            ("toefl.zstage", Compression::None),
        ];
        for (name, compression) in cases {
            assert_eq!(
                Compression::for_name(Path::new(name)),
                compression,
                "{name}"
            );
        }
    }
}
