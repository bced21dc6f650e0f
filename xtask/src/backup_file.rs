//! What a backup file is, known by its content (never by its name): a SQLite database, a pg_dump
//! custom-format archive, a JSON export, or something this tool does not take.

use std::io::Read as _;
use std::path::Path;

use app::Backend;

use crate::compression::{open_decompressed, Compression};
use crate::files::read_head;

/// What a file is, from its first bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A SQLite database.
    Sqlite,
    /// A pg_dump custom-format archive, with its format version (major, minor).
    PostgresDump(u8, u8),
    /// A JSON export of `cargo xtask export`.
    JsonExport,
    /// Something else, described for the message.
    Unknown(&'static str),
}

impl FileKind {
    /// Identifies a file by its `head` (its first few kilobytes).
    pub fn of(head: &[u8]) -> FileKind {
        if head.starts_with(b"SQLite format 3\0") {
            FileKind::Sqlite
        } else if let Some([major, minor, _revision]) =
            head.strip_prefix(b"PGDMP").and_then(|v| v.get(..3))
        {
            FileKind::PostgresDump(*major, *minor)
        } else if head.trim_ascii_start().starts_with(b"{")
            && head
                .windows(b"toefl-dashboard-export".len())
                .any(|w| w == b"toefl-dashboard-export")
        {
            FileKind::JsonExport
        } else if head.is_empty() {
            FileKind::Unknown("it is empty")
        } else {
            FileKind::Unknown("neither a SQLite database nor a pg_dump custom-format dump")
        }
    }

    /// The backend of a native backup.
    pub fn backend(&self) -> Option<Backend> {
        match self {
            FileKind::Sqlite => Some(Backend::Sqlite),
            FileKind::PostgresDump(..) => Some(Backend::Postgres),
            FileKind::JsonExport | FileKind::Unknown(_) => None,
        }
    }
}

/// Reads the first bytes of `path` (decompressed, for a compressed file) to tell what it is.
pub fn identify(path: &Path) -> anyhow::Result<FileKind> {
    let head = read_head(path, HEAD)?;
    let compression = Compression::of(&head);
    if compression == Compression::None {
        return Ok(FileKind::of(&head));
    }
    let mut plain = Vec::with_capacity(HEAD);
    // A file whose start does not decompress, or decompresses to something else, is not ours.
    let _ = open_decompressed(path)?
        .take(HEAD as u64)
        .read_to_end(&mut plain);
    Ok(match FileKind::of(&plain) {
        FileKind::JsonExport => FileKind::JsonExport,
        _ => FileKind::Unknown(match compression {
            Compression::Gzip => "gzip-compressed, but not an export of this tool",
            _ => "zstd-compressed, but not an export of this tool",
        }),
    })
}

/// How much of a file identification reads.
const HEAD: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_known_by_their_content() {
        let cases: [(&[u8], FileKind); 6] = [
            (b"SQLite format 3\0rest", FileKind::Sqlite),
            (b"PGDMP\x01\x0e\x00rest", FileKind::PostgresDump(1, 14)),
            (
                b" {\"format\": \"toefl-dashboard-export\"}",
                FileKind::JsonExport,
            ),
            (
                b"{\"other\": 1}",
                FileKind::Unknown("neither a SQLite database nor a pg_dump custom-format dump"),
            ),
            (
                b"\x1f\x8b\x08",
                FileKind::Unknown("neither a SQLite database nor a pg_dump custom-format dump"),
            ),
            (b"", FileKind::Unknown("it is empty")),
        ];
        for (head, kind) in cases {
            assert_eq!(FileKind::of(head), kind, "{head:?}");
        }
    }
}
