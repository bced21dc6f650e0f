//! What a backup file is, known by its content (never by its name): a SQLite database, a pg_dump
//! custom-format archive, a JSON export, or something this tool does not take.

use std::io::Read as _;
use std::path::Path;

use app::Backend;

use super::compression::Compression;
use super::source::Source;

/// The two kinds of file this tool writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    /// A native backup: a SQLite database file or a pg_dump custom-format archive.
    Native,
    /// A JSON export, which either backend can import.
    Json,
}

impl BackupKind {
    /// The name in messages and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Native => "native",
            BackupKind::Json => "json",
        }
    }
}

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

    /// Refuses a file that is not a native backup for a `target` database, saying which command
    /// takes it; `path` names it in the message.
    pub fn require_native_for(&self, path: &Path, target: Backend) -> anyhow::Result<()> {
        let shown = path.display();
        match (self, self.backend()) {
            (FileKind::JsonExport, _) => anyhow::bail!(
                "{shown} is a JSON export, not a native backup: load it with `cargo xtask import --file {shown}`"
            ),
            (FileKind::Unknown(what), _) => anyhow::bail!(
                "{shown} is not a backup this tool knows ({what}); restore takes a SQLite backup or a \
                 pg_dump custom-format dump made by `cargo xtask backup`, and `cargo xtask import` takes \
                 a JSON export"
            ),
            (_, Some(backend)) if backend != target => anyhow::bail!(
                "{shown} is a {backend} backup, but the target is a {target} database: a native backup \
                 restores only onto its own backend; to move data between backends, run `cargo xtask \
                 export` on the source and `cargo xtask import` on the target"
            ),
            _ => Ok(()),
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

/// Reads the first bytes of `source` (decrypted, and decompressed for a compressed file) to tell what
/// it is. An encrypted file needs its identity here already.
pub fn identify(source: &Source) -> anyhow::Result<FileKind> {
    let head = source.head(HEAD)?;
    let compression = Compression::of(&head);
    if compression == Compression::None {
        return Ok(FileKind::of(&head));
    }
    let mut plain = Vec::with_capacity(HEAD);
    // A file whose start does not decompress, or decompresses to something else, is not ours.
    let _ = source.open()?.take(HEAD as u64).read_to_end(&mut plain);
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
