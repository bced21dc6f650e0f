//! A directory as a remote (`file:///ABSOLUTE/DIR`: a NAS mount, a second disk). An object is a file;
//! the metadata stored with it (its SHA-256 above all) is the JSON sidecar `NAME.meta.json` next to
//! it, a name that `list` and `prune` never take for a backup.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::{Metadata, ObjectInfo, StaleUpload, Store};
use crate::engine::archive::owner_only;

/// The end of a sidecar's name: `NAME.meta.json` holds the metadata of `NAME`.
const SIDECAR: &str = ".meta.json";

/// The files of an upload under way, `.NAME.PID.partial` and `.NAME.PID.meta.partial`: hidden, and
/// renamed to `NAME` and `NAME.meta.json` only once complete.
const PARTIAL: &str = ".partial";
const META_PARTIAL: &str = ".meta.partial";

/// A directory that holds objects.
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    /// Opens `dir`, which must exist: a missing mount must not be silently replaced by an empty
    /// directory on the local disk.
    pub fn open(dir: &Path) -> anyhow::Result<DirStore> {
        if !dir.is_dir() {
            anyhow::bail!(
                "the directory {} does not exist: create it (or mount the disk it is on), or fix \
                 --remote",
                dir.display()
            );
        }
        Ok(DirStore {
            dir: dir.to_path_buf(),
        })
    }

    fn sidecar(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{SIDECAR}"))
    }

    /// The partial files of upload `id` (`NAME.PID`): the bytes and the sidecar.
    fn partials(&self, id: &str) -> [PathBuf; 2] {
        [
            self.dir.join(format!(".{id}{PARTIAL}")),
            self.dir.join(format!(".{id}{META_PARTIAL}")),
        ]
    }

    /// Makes renames and links in the directory durable.
    fn sync_dir(&self) -> anyhow::Result<()> {
        // Windows opens no directory as a file; NTFS journals its own metadata.
        if cfg!(windows) {
            return Ok(());
        }
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("cannot sync the directory {}", self.dir.display()))
    }
}

impl Store for DirStore {
    fn head(&self, name: &str) -> anyhow::Result<Option<ObjectInfo>> {
        let path = self.dir.join(name);
        let size = match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta.len(),
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let sidecar = self.sidecar(name);
        let metadata = match fs::read(&sidecar) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged", sidecar.display()))?,
            // An object without metadata, e.g. copied in by hand.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Metadata::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", sidecar.display())),
        };
        Ok(Some(ObjectInfo {
            name: name.to_string(),
            size,
            metadata,
        }))
    }

    fn create(
        &self,
        name: &str,
        source: &mut dyn Read,
        _size: u64,
        metadata: &Metadata,
    ) -> anyhow::Result<()> {
        let id = format!("{name}.{}", std::process::id());
        // Removed however this ends; once linked, the object keeps its bytes under its own name.
        let upload = Partials(self.partials(&id));
        let [bytes_path, meta_path] = &upload.0;
        let create = |path: &Path| {
            owner_only::create_new(path)
                .with_context(|| format!("cannot create {}", path.display()))
        };
        let mut bytes = create(bytes_path)?;
        io::copy(source, &mut bytes)
            .and_then(|_| bytes.sync_all())
            .with_context(|| format!("cannot write {}", bytes_path.display()))?;
        let mut meta = create(meta_path)?;
        meta.write_all(&serde_json::to_vec_pretty(metadata)?)
            .and_then(|()| meta.sync_all())
            .with_context(|| format!("cannot write {}", meta_path.display()))?;
        // A hard link fails if the name exists: an object is never replaced, even by a race.
        fs::hard_link(bytes_path, self.dir.join(name)).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => {
                anyhow::anyhow!("an object of that name appeared meanwhile")
            }
            _ => anyhow::Error::new(e).context(format!("cannot create {name}")),
        })?;
        // Only a sidecar whose object is gone can be in the way; this one belongs to the new object.
        if let Err(error) = fs::rename(meta_path, self.sidecar(name)) {
            // An object without its checksum could be neither used nor replaced: it goes too.
            let _ = fs::remove_file(self.dir.join(name));
            return Err(error)
                .with_context(|| format!("cannot create {}", self.sidecar(name).display()));
        }
        self.sync_dir()
    }

    fn fetch(&self, name: &str, into: &mut (dyn Write + Send)) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        File::open(&path)
            .and_then(|mut file| io::copy(&mut file, into))
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(())
    }

    fn list(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let cannot_read = || format!("cannot read the directory {}", self.dir.display());
        let mut objects = Vec::new();
        for entry in fs::read_dir(&self.dir).with_context(cannot_read)? {
            let entry = entry.with_context(cannot_read)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') || name.ends_with(SIDECAR) {
                continue;
            }
            let meta = entry.metadata().with_context(cannot_read)?;
            if meta.is_file() {
                objects.push((name, meta.len()));
            }
        }
        Ok(objects)
    }

    fn delete(&self, name: &str) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        let sidecar = self.sidecar(name);
        match fs::remove_file(&sidecar) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removed {name}, but not {}", sidecar.display()))
            }
            _ => Ok(()),
        }
    }

    fn unfinished(&self) -> anyhow::Result<Vec<(StaleUpload, Option<DateTime<Utc>>)>> {
        let cannot_read = || format!("cannot read the directory {}", self.dir.display());
        let mut uploads: Vec<(StaleUpload, Option<DateTime<Utc>>)> = Vec::new();
        for entry in fs::read_dir(&self.dir).with_context(cannot_read)? {
            let entry = entry.with_context(cannot_read)?;
            let file_name = entry.file_name();
            let Some(id) = file_name.to_str().and_then(partial_id) else {
                continue;
            };
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            let modified = modified.map(DateTime::<Utc>::from);
            // The bytes and the sidecar of one upload are one unfinished upload, as new as its newer.
            match uploads.iter_mut().find(|(upload, _)| upload.id == id) {
                Some((_, started)) => *started = (*started).max(modified),
                None => {
                    let (name, _pid) = id.rsplit_once('.').expect("checked by partial_id");
                    let upload = StaleUpload {
                        name: name.to_string(),
                        id: id.to_string(),
                    };
                    uploads.push((upload, modified));
                }
            }
        }
        Ok(uploads)
    }

    fn abort(&self, upload: &StaleUpload) -> anyhow::Result<()> {
        for path in self.partials(&upload.id) {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The upload id `NAME.PID` of a partial file's name, `.NAME.PID.partial` or `.NAME.PID.meta.partial`.
fn partial_id(file_name: &str) -> Option<&str> {
    let rest = file_name.strip_prefix('.')?;
    let id = rest
        .strip_suffix(META_PARTIAL)
        .or_else(|| rest.strip_suffix(PARTIAL))?;
    let (name, pid) = id.rsplit_once('.')?;
    (!name.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// The partial files of one upload, removed when it ends, whether it succeeded or not.
struct Partials([PathBuf; 2]);

impl Drop for Partials {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_name_their_upload() {
        let cases = [
            (
                ".toefl_backup_20260101_000000.db.42.partial",
                Some("toefl_backup_20260101_000000.db.42"),
            ),
            (
                ".toefl_export_20260101_000000.json.7.meta.partial",
                Some("toefl_export_20260101_000000.json.7"),
            ),
            ("toefl_backup_20260101_000000.db", None),
            (".toefl_backup_20260101_000000.db.x.partial", None),
            ("..42.partial", None),
        ];
        for (file_name, id) in cases {
            assert_eq!(partial_id(file_name), id, "{file_name}");
        }
    }
}
