//! Compressed exports: gzip or zstd, chosen by the file name (`.json.gz`, `.json.zst`) or by
//! `--compress` (zstd), and recognised on reading by the file's first bytes, whatever its name.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::Context as _;

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

    /// The compression a file name asks for.
    pub fn for_name(path: &Path) -> Compression {
        let name = path.to_string_lossy();
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

/// Opens `path` for reading, decompressed if it is compressed (known by its first bytes).
pub fn open_decompressed(path: &Path) -> anyhow::Result<Box<dyn Read>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut file = BufReader::with_capacity(1 << 16, file);
    let head = io::BufRead::fill_buf(&mut file)
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

    /// Ends the compressed stream and flushes everything.
    pub fn finish(self) -> io::Result<()> {
        let mut buffered = match self {
            CompressedWriter::Plain(buffered) => buffered,
            CompressedWriter::Gzip(encoder) => encoder.finish()?,
            CompressedWriter::Zstd(encoder) => encoder.finish()?,
        };
        buffered.flush()
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
