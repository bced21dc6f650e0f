//! The archive: where backup files go, what they are called ([`series`]), what a file is, known by
//! its content ([`kind`]), [`compression`], [`new_file`]s that take their name only once complete
//! (readable by their [`owner_only`], on Unix and Windows alike), [`retention`], and the [`source`]
//! files are read from, plaintext or encrypted.

pub mod compression;
pub mod kind;
pub mod new_file;
pub mod owner_only;
pub mod retention;
pub mod series;
pub mod source;

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Where backups go: `TOEFL_BACKUPS_DIR` if set, else the workspace's `backups/` (whatever the
/// current directory); created when missing.
pub fn backups_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("TOEFL_BACKUPS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => crate::workspace::root().join("backups"),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the backups directory {}", dir.display()))?;
    Ok(dir)
}

/// The first `limit` bytes of the file at `path` (fewer if it is shorter).
pub fn read_head(path: &Path, limit: usize) -> anyhow::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(limit);
    File::open(path)
        .and_then(|file| file.take(limit as u64).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(head)
}

/// The size of the file at `path`, in bytes.
pub fn file_size(path: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len())
}

/// Whether `a` and `b` are the same file, however the paths spell it (symbolic and, on Unix, hard
/// links included).
pub fn same_file(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let canonical = |path: &Path| {
        std::fs::canonicalize(path).with_context(|| format!("cannot resolve {}", path.display()))
    };
    if canonical(a)? == canonical(b)? {
        return Ok(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
        Ok(a.dev() == b.dev() && a.ino() == b.ino())
    }
    #[cfg(not(unix))]
    Ok(false)
}
