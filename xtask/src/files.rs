//! Backup files: where they go, what they are called, and how they are written so that a file that
//! looks complete always is.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Where backups go: `TOEFL_BACKUPS_DIR` if set, else the workspace's `backups/` (whatever the
/// current directory); created when missing.
pub fn backups_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("TOEFL_BACKUPS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => crate::project_root().join("backups"),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the backups directory {}", dir.display()))?;
    Ok(dir)
}

/// `backups/{prefix}_YYYYMMDD_HHMMSS.{extension}`, the time in UTC; when that name is taken (two
/// backups in one second), `..._HHMMSS-2.{extension}` and so on.
pub fn timestamped_path(prefix: &str, extension: &str) -> anyhow::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%d_%H%M%S");
    let dir = backups_dir()?;
    let candidates = (1..).map(|n| match n {
        1 => dir.join(format!("{prefix}_{stamp}.{extension}")),
        n => dir.join(format!("{prefix}_{stamp}-{n}.{extension}")),
    });
    candidates
        .take(1000)
        .find(|path| !path.exists())
        .context("a thousand backups in one second: try again")
}

/// A file being written: it lives under a temporary name in the destination's directory, readable by
/// its owner only, and takes its real name only in [`NewFile::persist`]. Dropped before that, it is
/// removed, so an interrupted or failed write never leaves a file that looks complete.
pub struct NewFile {
    temporary: PathBuf,
    destination: PathBuf,
    force: bool,
    file: Option<File>,
}

impl NewFile {
    /// Starts writing `destination`; fails at once if it exists and `force` is not set.
    pub fn create(destination: &Path, force: bool) -> anyhow::Result<NewFile> {
        if !force && destination.exists() {
            anyhow::bail!(
                "{} already exists: choose another --file, or pass --force to overwrite it",
                destination.display()
            );
        }
        let dir = match destination.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = destination
            .file_name()
            .with_context(|| format!("{} is not a file name", destination.display()))?;
        let temporary = dir.join(format!(
            ".{}.{}.partial",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| {
                format!(
                    "cannot create a file in {}: check that the directory exists and is writable",
                    dir.display()
                )
            })?;
        Ok(NewFile {
            temporary,
            destination: destination.to_path_buf(),
            force,
            file: Some(file),
        })
    }

    /// The temporary path being written, for tools that write the file themselves.
    pub fn temporary_path(&self) -> &Path {
        &self.temporary
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until persisted")
    }

    /// Flushes the file to disk and gives it its real name; returns its size in bytes.
    pub fn persist(mut self) -> anyhow::Result<u64> {
        let file = self.file.take().expect("open until persisted");
        file.sync_all()
            .with_context(|| format!("cannot write {}", self.temporary.display()))?;
        let size = std::fs::metadata(&self.temporary)?.len();
        let rename = if self.force {
            std::fs::rename(&self.temporary, &self.destination)
        } else {
            // A hard link fails if the destination appeared meanwhile: nothing is overwritten.
            std::fs::hard_link(&self.temporary, &self.destination)
                .and_then(|()| std::fs::remove_file(&self.temporary))
        };
        rename.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                "{} already exists: choose another --file, or pass --force to overwrite it",
                self.destination.display()
            ),
            _ => anyhow::Error::new(e)
                .context(format!("cannot create {}", self.destination.display())),
        })?;
        Ok(size)
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        // Gone already after a successful persist; otherwise the partial file must not stay.
        let _ = std::fs::remove_file(&self.temporary);
    }
}

/// `bytes` for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

/// Row counts as `users 3, teachers 2, ...`.
pub fn describe_counts<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(table, rows)| format!("{table} {rows}"))
        .collect();
    parts.join(", ")
}

/// The first `limit` bytes of the file at `path` (fewer if it is shorter).
pub fn read_head(path: &Path, limit: usize) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
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
