//! New backup files: written under a temporary name in the destination's directory, readable by
//! their owner only, and given their real name only once complete, so that a file that looks
//! complete always is.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tempfile::NamedTempFile;

/// A file being written. Dropped before [`NewFile::persist`], it is removed: an interrupted or failed
/// write never leaves a file that looks complete.
pub struct NewFile {
    temporary: NamedTempFile,
    destination: PathBuf,
    force: bool,
}

impl NewFile {
    /// Starts writing `destination`; fails at once if it exists and `force` is not set.
    pub fn create(destination: &Path, force: bool) -> anyhow::Result<NewFile> {
        if !force && destination.exists() {
            return Err(already_exists(destination));
        }
        let dir = match destination.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = destination
            .file_name()
            .with_context(|| format!("{} is not a file name", destination.display()))?;
        // Readable by its owner only from the start: mode 0600, or an owner-only ACL on Windows.
        let temporary = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .make_in(dir, super::owner_only::create_new)
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
        })
    }

    /// The temporary path being written, for tools that write the file themselves.
    pub fn temporary_path(&self) -> &Path {
        self.temporary.path()
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.temporary.as_file_mut()
    }

    /// Flushes the file to disk and gives it its real name; returns its size in bytes.
    pub fn persist(self) -> anyhow::Result<u64> {
        let shown = self.temporary.path().display().to_string();
        let file = self.temporary.as_file();
        file.sync_all()
            .with_context(|| format!("cannot write {shown}"))?;
        let size = file.metadata()?.len();
        let persisted = if self.force {
            self.temporary.persist(&self.destination)
        } else {
            // Fails if the destination appeared meanwhile: nothing is overwritten.
            self.temporary.persist_noclobber(&self.destination)
        };
        persisted.map_err(|e| match e.error.kind() {
            io::ErrorKind::AlreadyExists => already_exists(&self.destination),
            _ => anyhow::Error::new(e.error)
                .context(format!("cannot create {}", self.destination.display())),
        })?;
        Ok(size)
    }
}

fn already_exists(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} already exists: choose another --file, or pass --force to overwrite it",
        path.display()
    )
}
