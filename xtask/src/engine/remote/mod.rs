//! Off-site copies: a store that backup files are uploaded to, listed in, downloaded from and pruned
//! from. Two kinds: an S3-compatible bucket (`s3://BUCKET[/PREFIX]`: AWS S3, Cloudflare R2, Backblaze
//! B2, MinIO, ...) and a directory (`file:///ABSOLUTE/DIR`: a NAS mount, a second disk).
//!
//! Every object carries the SHA-256 of its bytes, written when it is created (S3 user metadata; for a
//! directory, a sidecar file) and checked on every download, so a copy that changed in storage is
//! refused before it is used. An object is never overwritten, and an upload that fails leaves nothing
//! under its name. This module knows no command: it copies files, and says what it did.

mod dir;
mod s3;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::archive::owner_only;
use super::crypto::PrivateDir;

/// Where a remote is, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteUrl {
    /// `s3://BUCKET[/PREFIX]`: objects are `PREFIX/NAME` in `BUCKET`.
    S3 {
        /// The bucket's name.
        bucket: String,
        /// The key prefix, without leading or trailing `/`; empty for the bucket's top level.
        prefix: String,
    },
    /// `file:///ABSOLUTE/DIR`: objects are files in that directory.
    Dir(PathBuf),
}

/// What the URL forms are, for errors.
const FORMS: &str = "use s3://BUCKET[/PREFIX] or file:///ABSOLUTE/DIR";

impl RemoteUrl {
    /// Parses `s3://BUCKET[/PREFIX]` or `file:///ABSOLUTE/DIR` (the error says what is wrong).
    pub fn parse(text: &str) -> Result<RemoteUrl, String> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
            if bucket.is_empty() || !bucket.chars().all(valid) {
                return Err(format!(
                    "{text:?} names no valid bucket: {FORMS} (a bucket name has letters, digits, \
                     '.', '-' and '_' only)"
                ));
            }
            let prefix = prefix.trim_matches('/');
            if !prefix.is_empty() && prefix.split('/').any(str::is_empty) {
                return Err(format!("{text:?} has an empty part in its prefix: {FORMS}"));
            }
            Ok(RemoteUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            })
        } else if let Some(path) = text.strip_prefix("file://") {
            // `file:///C:/Backups` on Windows: the path starts after the third slash.
            let path = match path.strip_prefix('/') {
                Some(rest) if cfg!(windows) && rest.get(1..2) == Some(":") => rest,
                _ => path,
            };
            if !Path::new(path).is_absolute() {
                return Err(format!(
                    "{text:?} is not an absolute directory: {FORMS} (three slashes, then the path)"
                ));
            }
            // Without trailing slashes, unless that leaves no root (`/`, `C:/`).
            let trimmed = path.trim_end_matches('/');
            let dir = match Path::new(trimmed).is_absolute() {
                true => trimmed,
                false => path,
            };
            Ok(RemoteUrl::Dir(PathBuf::from(dir)))
        } else {
            Err(format!("{text:?} is not a remote this tool knows: {FORMS}"))
        }
    }

    /// The URL of the object `name` in this remote: `s3://BUCKET/PREFIX/NAME`, `file:///DIR/NAME`.
    pub fn object(&self, name: &str) -> String {
        match self {
            RemoteUrl::S3 { bucket, prefix } if prefix.is_empty() => {
                format!("s3://{bucket}/{name}")
            }
            RemoteUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}/{name}"),
            RemoteUrl::Dir(dir) => file_url(&dir.join(name)),
        }
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}/"),
            RemoteUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            RemoteUrl::Dir(dir) => f.write_str(&file_url(dir)),
        }
    }
}

/// The `file://` URL of an absolute path: `file:///mnt/nas`, and on Windows `file:///C:/Backups`.
fn file_url(path: &Path) -> String {
    let path = path.display().to_string();
    match cfg!(windows) {
        true => format!("file:///{}", path.replace('\\', "/")),
        false => format!("file://{path}"),
    }
}

/// One object named by URL: `s3://BUCKET/[PREFIX/]NAME` or `file:///DIR/NAME`, as `--file` and
/// `verify` take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// The remote that holds it.
    pub remote: RemoteUrl,
    /// Its name there (the last part of the URL).
    pub name: String,
}

impl ObjectUrl {
    /// `None` when `text` is not a remote URL at all (a local path); otherwise the object, or why the
    /// URL names none.
    pub fn parse(text: &str) -> Option<Result<ObjectUrl, String>> {
        let scheme = ["s3://", "file://"]
            .into_iter()
            .find(|scheme| text.starts_with(scheme))?;
        let parsed = match text[scheme.len()..].rsplit_once('/') {
            Some((parent, name)) if valid_name(name) => {
                RemoteUrl::parse(&format!("{scheme}{parent}/")).map(|remote| ObjectUrl {
                    remote,
                    name: name.to_string(),
                })
            }
            _ => Err(format!(
                "{text:?} names no object: it must end with a file name, as in \
                 s3://BUCKET/PREFIX/NAME or file:///DIR/NAME"
            )),
        };
        Some(parsed)
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.remote.object(&self.name))
    }
}

/// Whether `name` can be an object's name: one plain file name, nothing that walks directories.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// Metadata stored with an object, by key (lowercase letters, digits and `-`; values printable
/// ASCII). [`SHA256`] is the engine's; callers add what describes the file.
pub type Metadata = BTreeMap<String, String>;

/// The metadata key of the SHA-256 (lowercase hex) of an object's bytes.
pub const SHA256: &str = "sha256";

/// An object as the store describes it, without downloading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its name in the remote.
    pub name: String,
    /// Its size in bytes, as the store reports it.
    pub size: u64,
    /// The metadata stored with it.
    pub metadata: Metadata,
}

impl ObjectInfo {
    /// The SHA-256 stored with the object when it was uploaded.
    pub fn sha256(&self) -> Option<&str> {
        self.metadata.get(SHA256).map(String::as_str)
    }
}

/// An upload that was started and never finished (a multipart upload, a partial file), older than
/// [`STALE_AFTER`]: left over by a process that was killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleUpload {
    /// The name the upload was for.
    pub name: String,
    /// The store's handle on it (an upload id, a file name).
    id: String,
}

/// How old an unfinished upload must be before it is taken for a leftover: one still running (a
/// backup uploading while prune runs) is younger.
pub const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// What a kind of remote does; [`Remote`] adds the checks that are the same for all.
trait Store {
    /// Describes `name`; `None` when there is no such object.
    fn head(&self, name: &str) -> anyhow::Result<Option<ObjectInfo>>;
    /// Creates `name` with the `size` bytes of `source` and `metadata`, never replacing an object
    /// (an error then says it exists). On any error, nothing is left under `name`.
    fn create(
        &self,
        name: &str,
        source: &mut dyn Read,
        size: u64,
        metadata: &Metadata,
    ) -> anyhow::Result<()>;
    /// Writes the bytes of `name` to `into`.
    fn fetch(&self, name: &str, into: &mut (dyn Write + Send)) -> anyhow::Result<()>;
    /// The objects directly in the remote (not in deeper prefixes or directories), with their sizes.
    fn list(&self) -> anyhow::Result<Vec<(String, u64)>>;
    /// Deletes `name`.
    fn delete(&self, name: &str) -> anyhow::Result<()>;
    /// Unfinished uploads, with when they started (`None` when the store does not say).
    fn unfinished(&self) -> anyhow::Result<Vec<(StaleUpload, Option<DateTime<Utc>>)>>;
    /// Abandons an unfinished upload.
    fn abort(&self, upload: &StaleUpload) -> anyhow::Result<()>;
}

/// An opened remote: the store behind a [`RemoteUrl`].
pub struct Remote {
    url: RemoteUrl,
    store: Box<dyn Store>,
}

impl Remote {
    /// Opens the remote at `url` and checks that it is there: the bucket exists and answers to the
    /// credentials in the `AWS_*` variables, or the directory exists.
    pub fn open(url: &RemoteUrl) -> anyhow::Result<Remote> {
        let store: Box<dyn Store> = match url {
            RemoteUrl::S3 { bucket, prefix } => {
                let settings = s3::S3Settings::from_env()?;
                Box::new(s3::S3Store::open(bucket, prefix, &settings)?)
            }
            RemoteUrl::Dir(dir) => Box::new(dir::DirStore::open(dir)?),
        };
        Ok(Remote {
            url: url.clone(),
            store,
        })
    }

    /// Where the remote is.
    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    /// Uploads the file at `local` under its own file name, with `metadata` and the SHA-256 of its
    /// bytes, and checks that the store reports the same size and checksum afterwards. Refuses when
    /// an object of that name exists. On failure nothing is left under that name.
    pub fn upload(&self, local: &Path, metadata: &Metadata) -> anyhow::Result<ObjectInfo> {
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| valid_name(n))
            .with_context(|| format!("{} has no file name to upload under", local.display()))?;
        let target = self.url.object(name);
        self.upload_as(local, name, metadata)
            .with_context(|| format!("cannot upload {} to {target}", local.display()))
    }

    fn upload_as(
        &self,
        local: &Path,
        name: &str,
        metadata: &Metadata,
    ) -> anyhow::Result<ObjectInfo> {
        check_metadata(metadata)?;
        // S3 takes metadata before the bytes: the file is hashed first, then hashed again as it is
        // sent, and the upload is abandoned unless the two agree (the file changed meanwhile).
        let (size, sha256) = hash_file(local)?;
        if self.store.head(name)?.is_some() {
            anyhow::bail!(
                "an object of that name exists already: an off-site copy is never replaced (give \
                 the file another name)"
            );
        }
        let mut metadata = metadata.clone();
        metadata.insert(SHA256.into(), sha256.clone());
        let mut source = CheckedReader::open(local, size, &sha256)?;
        self.store.create(name, &mut source, size, &metadata)?;
        let stored = self
            .store
            .head(name)?
            .context("the store does not show the object after its upload")?;
        if stored.size != size || stored.sha256() != Some(sha256.as_str()) {
            anyhow::bail!(
                "the store reports {} bytes with SHA-256 {} for {}, but {size} bytes with SHA-256 \
                 {sha256} were sent: check the object before relying on it",
                stored.size,
                stored.sha256().unwrap_or("(none)"),
                self.url.object(name)
            );
        }
        Ok(stored)
    }

    /// Downloads `name` into a private temporary directory and checks its bytes against the SHA-256
    /// stored with it; the file is removed when the returned [`Downloaded`] is dropped (on an error,
    /// before this returns).
    pub fn download(&self, name: &str) -> anyhow::Result<Downloaded> {
        let source = self.url.object(name);
        self.download_checked(name)
            .with_context(|| format!("cannot use {source}"))
    }

    fn download_checked(&self, name: &str) -> anyhow::Result<Downloaded> {
        anyhow::ensure!(valid_name(name), "{name:?} is not an object name");
        let info = self
            .store
            .head(name)?
            .context("there is no such object: `cargo xtask list --remote` shows what there is")?;
        let expected = info.sha256().with_context(|| {
            format!(
                "it has no SHA-256 stored with it (metadata `{SHA256}`), so its bytes cannot be \
                 checked: only copies uploaded by this tool are used"
            )
        })?;
        // The directory is private (0700) and removed with everything in it on drop, even on Ctrl-C.
        let dir = PrivateDir::new()?;
        let path = dir.path().join(name);
        let file = owner_only::create_new(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut into = HashingWriter {
            inner: io::BufWriter::new(file),
            hasher: Sha256::new(),
            written: 0,
        };
        self.store.fetch(name, &mut into)?;
        into.inner
            .flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        let sha256 = hex(&into.hasher.finalize());
        if sha256 != expected || into.written != info.size {
            return Err(Damaged(format!(
                "its bytes have SHA-256 {sha256} ({} bytes), but SHA-256 {expected} ({} bytes) was \
                 stored with it when it was uploaded: the object was changed or damaged in \
                 storage, and is refused",
                into.written, info.size
            ))
            .into());
        }
        Ok(Downloaded { _dir: dir, path })
    }

    /// The objects directly in the remote, with their sizes, in no particular order.
    pub fn list(&self) -> anyhow::Result<Vec<(String, u64)>> {
        self.store
            .list()
            .with_context(|| format!("cannot list {}", self.url))
    }

    /// Describes `name` (size and metadata) without downloading it; an error when it is absent.
    pub fn describe(&self, name: &str) -> anyhow::Result<ObjectInfo> {
        let object = self.url.object(name);
        self.store
            .head(name)
            .with_context(|| format!("cannot describe {object}"))?
            .with_context(|| format!("{object} does not exist"))
    }

    /// Deletes `name`; the error names the object and says what the store answered.
    pub fn delete(&self, name: &str) -> anyhow::Result<()> {
        self.store
            .delete(name)
            .with_context(|| format!("cannot delete {}", self.url.object(name)))
    }

    /// Unfinished uploads started more than [`STALE_AFTER`] ago whose names `ours` accepts: left
    /// over by killed processes. Younger ones, and ones whose start the store does not say, are
    /// left alone: they may still be running.
    pub fn stale_uploads(&self, ours: impl Fn(&str) -> bool) -> anyhow::Result<Vec<StaleUpload>> {
        let cutoff = Utc::now() - STALE_AFTER;
        let unfinished = self
            .store
            .unfinished()
            .with_context(|| format!("cannot list the unfinished uploads in {}", self.url))?;
        Ok(unfinished
            .into_iter()
            .filter(|(upload, started)| ours(&upload.name) && started.is_some_and(|t| t < cutoff))
            .map(|(upload, _)| upload)
            .collect())
    }

    /// Abandons an unfinished upload (its parts or partial file are deleted).
    pub fn abort(&self, upload: &StaleUpload) -> anyhow::Result<()> {
        self.store.abort(upload).with_context(|| {
            format!(
                "cannot abort the unfinished upload of {}",
                self.url.object(&upload.name)
            )
        })
    }
}

/// Refuses metadata that S3 would mangle or reject.
fn check_metadata(metadata: &Metadata) -> anyhow::Result<()> {
    for (key, value) in metadata {
        let key_ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let value_ok = value.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        anyhow::ensure!(
            key_ok && value_ok && key != SHA256,
            "metadata {key:?} = {value:?} cannot be stored with an object"
        );
    }
    Ok(())
}

/// The error of a download whose bytes do not have the SHA-256 stored with the object.
#[derive(Debug)]
pub struct Damaged(String);

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Damaged {}

/// A downloaded object in a private temporary directory, removed (with the directory) on drop.
pub struct Downloaded {
    _dir: PrivateDir,
    path: PathBuf,
}

impl Downloaded {
    /// The downloaded, checked file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The size and SHA-256 (lowercase hex) of the file at `path`.
fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut hasher = HashingWriter {
        inner: io::sink(),
        hasher: Sha256::new(),
        written: 0,
    };
    File::open(path)
        .and_then(|mut file| io::copy(&mut file, &mut hasher))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok((hasher.written, hex(&hasher.hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes and counts what goes through to `inner`.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a file being uploaded, hashing it; at its end, fails unless it had the size and SHA-256
/// stored with the object, so that a store commits the object only when the bytes sent are those.
struct CheckedReader {
    inner: File,
    hasher: Sha256,
    read: u64,
    expected: (u64, String),
    path: PathBuf,
}

impl CheckedReader {
    /// Opens the file at `path`, expected to hold `size` bytes with SHA-256 `sha256`.
    fn open(path: &Path, size: u64, sha256: &str) -> anyhow::Result<CheckedReader> {
        Ok(CheckedReader {
            inner: File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
            hasher: Sha256::new(),
            read: 0,
            expected: (size, sha256.to_string()),
            path: path.to_path_buf(),
        })
    }
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if n == 0 || self.read > self.expected.0 {
            let sha256 = hex(&self.hasher.clone().finalize());
            if (self.read, sha256) != self.expected {
                return Err(io::Error::other(format!(
                    "{} changed while it was being uploaded",
                    self.path.display()
                )));
            }
        }
        Ok(n)
    }
}

/// Reads from `source` until `buf` is full or the source ends; returns how much was read.
fn read_full(source: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests;
