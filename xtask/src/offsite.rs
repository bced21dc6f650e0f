//! Off-site copies as commands use them: the upload of what a command wrote (with the facts stored
//! beside it, which `list --remote` reads back), the file a command reads from a remote, fetched
//! and checked first, and the place `list` and `prune` work on.

use std::path::{Path, PathBuf};

use app::{Backend, RowCounts};

use crate::engine::archive::compression::Compression;
use crate::engine::archive::kind::BackupKind;
use crate::engine::remote::{Downloaded, Metadata, ObjectUrl, Remote};
use crate::report::{human_size, Report};

/// A place that holds backup files.
pub enum Archive {
    /// A local directory.
    Dir(PathBuf),
    /// A remote.
    Remote(Remote),
}

/// Where a command's files are copied off-site: nowhere without `--remote`.
pub struct Offsite(Option<Remote>);

impl Offsite {
    /// Copies go to `remote`, if any.
    pub fn new(remote: Option<Remote>) -> Offsite {
        Offsite(remote)
    }

    /// Uploads `path`, written and checked, with what it holds (`facts`), and sets the JSON field
    /// `field` to the object's URL. A failed upload is an error that says the local file is kept.
    pub fn upload(
        &self,
        path: &Path,
        facts: &Facts,
        field: &str,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let Some(remote) = &self.0 else {
            return Ok(());
        };
        let object = remote.upload(path, &facts.metadata()).map_err(|error| {
            anyhow::anyhow!("{error:#}; the local file {} is kept", path.display())
        })?;
        let url = remote.url().object(&object.name);
        report.say(format!(
            "uploaded {} to {url} ({}; SHA-256 {} checked)",
            path.display(),
            human_size(object.size),
            object.sha256().unwrap_or("?")
        ));
        report.field(field, url);
        Ok(())
    }
}

/// What a backup file holds, stored with its off-site copy so that `list --remote` can say it
/// without downloading the file.
pub struct Facts<'a> {
    /// Native backup or JSON export.
    pub kind: BackupKind,
    /// The backend the data came from.
    pub backend: Backend,
    /// The schema version of the data.
    pub schema_version: i64,
    /// The rows per table.
    pub counts: &'a RowCounts,
    /// How the file is compressed.
    pub compression: Compression,
}

/// The metadata keys of [`Facts`].
const KIND: &str = "kind";
const BACKEND: &str = "backend";
const SCHEMA_VERSION: &str = "schema-version";
/// The rows of each table, in [`app::TABLES`] order, separated by commas.
const ROWS: &str = "rows";
const COMPRESSION: &str = "compression";

impl Facts<'_> {
    fn metadata(&self) -> Metadata {
        let rows: Vec<String> = self.counts.iter().map(|(_, n)| n.to_string()).collect();
        [
            (KIND, self.kind.as_str().to_string()),
            (BACKEND, self.backend.as_str().to_string()),
            (SCHEMA_VERSION, self.schema_version.to_string()),
            (ROWS, rows.join(",")),
            (COMPRESSION, self.compression.as_str().to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
    }
}

/// What the metadata of an off-site copy says about it; `None` for what it does not say (an object
/// copied there by something else than this tool).
pub struct StoredFacts {
    /// `native` or `json`.
    pub kind: Option<String>,
    /// The backend the data came from.
    pub backend: Option<String>,
    /// The schema version of the data.
    pub schema_version: Option<i64>,
    /// The rows per table.
    pub counts: Option<RowCounts>,
    /// `none`, `gzip` or `zstd`.
    pub compression: Option<String>,
}

impl StoredFacts {
    /// Reads the facts in an object's metadata.
    pub fn of(metadata: &Metadata) -> StoredFacts {
        let counts = metadata.get(ROWS).and_then(|rows| {
            let counts: Option<Vec<u64>> = rows.split(',').map(|n| n.parse().ok()).collect();
            counts
                .filter(|c| c.len() == app::TABLES.len())
                .map(RowCounts::new)
        });
        StoredFacts {
            kind: metadata.get(KIND).cloned(),
            backend: metadata.get(BACKEND).cloned(),
            schema_version: metadata.get(SCHEMA_VERSION).and_then(|v| v.parse().ok()),
            counts,
            compression: metadata.get(COMPRESSION).cloned(),
        }
    }
}

/// A file a command reads: a local path, or an off-site copy (`s3://BUCKET/KEY`,
/// `file:///DIR/NAME`), downloaded first.
#[derive(Debug, Clone)]
pub enum Location {
    /// A local file.
    Local(PathBuf),
    /// An object of a remote.
    Remote(ObjectUrl),
}

impl Location {
    /// Parses `--file` (or `verify`'s FILE): a remote URL, or else a local path.
    pub fn parse(text: &str) -> Result<Location, String> {
        match ObjectUrl::parse(text) {
            Some(object) => object.map(Location::Remote),
            None => Ok(Location::Local(PathBuf::from(text))),
        }
    }

    /// The file to read: the local path, or the object downloaded (streamed, into a private temporary
    /// directory) with its SHA-256 checked against the one stored with it. The download is removed
    /// when the returned [`Fetched`] is dropped. For a remote source, sets the JSON field `remote`.
    pub fn fetch(&self, report: &mut Report) -> anyhow::Result<Fetched> {
        let object = match self {
            Location::Local(path) => {
                return Ok(Fetched {
                    path: path.clone(),
                    _download: None,
                })
            }
            Location::Remote(object) => object,
        };
        let download = Remote::open(&object.remote)?.download(&object.name)?;
        report.tell(format!(
            "downloaded {object} to {} (SHA-256 checked)",
            download.path().display()
        ));
        report.field("remote", object.to_string());
        Ok(Fetched {
            path: download.path().to_path_buf(),
            _download: Some(download),
        })
    }
}

/// A file ready to read (see [`Location::fetch`]).
pub struct Fetched {
    path: PathBuf,
    _download: Option<Downloaded>,
}

impl Fetched {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
