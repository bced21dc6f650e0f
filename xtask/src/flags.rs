//! Groups of options that several commands share, defined once.

use std::path::{Path, PathBuf};

use app::{Backend, Database, DatabaseUrl, RowCounts};

use crate::engine::archive::backups_dir;
use crate::engine::archive::compression::Compression;
use crate::engine::archive::kind::BackupKind;
use crate::engine::archive::series::Series;
use crate::engine::crypto::{Identities, Recipients, RECIPIENTS_ENV};
use crate::engine::remote::{Downloaded, Metadata, ObjectUrl, Remote, RemoteUrl};
use crate::engine::safety;
use crate::exit::Exit;
use crate::report::{human_size, Report};

/// The options that make a command encrypt the files it writes (with age).
#[derive(clap::Args)]
#[command(next_help_heading = "Encryption")]
pub struct RecipientOptions {
    /// Encrypt what this command writes (for import, restore and migrate: the safety copy) to this age
    /// public key (age1..., as age-keygen prints it); repeatable. Without this option and
    /// --recipients-file, to the keys in TOEFL_BACKUP_RECIPIENTS (separated by commas or whitespace)
    /// if it is set. An encrypted file's name ends in .age
    #[arg(long = "recipient", value_name = "AGE_PUBLIC_KEY")]
    recipient_keys: Vec<String>,
    /// Encrypt to every public key in FILE (one a line; blank lines and # comments are skipped), as
    /// `age -R`; repeatable
    #[arg(long = "recipients-file", value_name = "FILE")]
    recipients_files: Vec<PathBuf>,
}

impl RecipientOptions {
    /// The recipients these options or `TOEFL_BACKUP_RECIPIENTS` name; `None` when neither names
    /// any. A bad key or recipients file is a usage error (exit 2): call this before writing anything.
    pub fn recipients(&self) -> anyhow::Result<Option<Recipients>> {
        let env = std::env::var_os(RECIPIENTS_ENV);
        Recipients::resolve(&self.recipient_keys, &self.recipients_files, env.as_deref())
            .map_err(|message| Exit::Usage(message).into())
    }
}

/// The options that let a command read encrypted files.
#[derive(clap::Args)]
#[command(next_help_heading = "Encryption")]
pub struct IdentityOptions {
    /// The private key file (as age-keygen writes it) that decrypts encrypted backups and exports, as
    /// `age -i`; repeatable. Read only when a file is encrypted
    #[arg(
        long = "identity",
        value_name = "FILE",
        env = "TOEFL_BACKUP_IDENTITY_FILE",
        hide_env_values = true
    )]
    identity_files: Vec<PathBuf>,
}

impl IdentityOptions {
    /// The identity files given.
    pub fn identities(&self) -> Identities {
        Identities::new(self.identity_files.clone())
    }
}

/// The options of the commands that replace all of a database's data (import, restore).
#[derive(clap::Args)]
pub struct ReplaceOptions {
    /// Replace the data without asking (required without a terminal)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub safety: SafetyOptions,
}

/// The options of the commands that save a database's data before they change it (import, restore,
/// migrate): whether to, the recipients to encrypt the safety copy to, and the remote it also goes
/// to.
#[derive(clap::Args)]
pub struct SafetyOptions {
    /// Do not first save the current data to a safety copy in backups/ (toefl_pre_<command>_*)
    #[arg(long)]
    pub no_safety_backup: bool,
    #[command(flatten)]
    encryption: RecipientOptions,
    #[command(flatten)]
    remote: RemoteOptions,
}

impl SafetyOptions {
    /// Where the safety copy also goes (see [`RemoteOptions::open`]): call this before anything is
    /// asked or written, so that an unreachable remote fails first.
    pub fn offsite(&self) -> anyhow::Result<Offsite> {
        self.remote.open()
    }

    /// The recipients of the safety copy (see [`RecipientOptions::recipients`]): call this before
    /// anything is asked or written.
    pub fn recipients(&self) -> anyhow::Result<Option<Recipients>> {
        self.encryption.recipients()
    }

    /// Saves what `db` (the database at `url`) holds as a new file of `series` before it is replaced,
    /// encrypted to `recipients` if any, unless `--no-safety-backup`, and tells where it went at
    /// once: the user must know even if the replacement then fails. The copy goes `offsite` too (an
    /// ephemeral disk must not hold the only undo; the JSON field `safety_backup_remote`). Returns
    /// the copy's path, for the JSON line.
    pub fn save_current_data(
        &self,
        url: &DatabaseUrl,
        db: &mut Database,
        series: Series,
        recipients: Option<&Recipients>,
        offsite: &Offsite,
        report: &mut Report,
    ) -> anyhow::Result<Option<String>> {
        if self.no_safety_backup {
            report.tell(format!("no safety copy of {url} (--no-safety-backup)"));
            return Ok(None);
        }
        let schema_version = db.schema_version()?.unwrap_or(app::SCHEMA_VERSION);
        let Some(copy) = safety::save_current_data(url, db, series, recipients)? else {
            report.tell(format!("no safety copy: {url} holds no data"));
            return Ok(None);
        };
        let path = copy.path.display().to_string();
        report.tell(format!(
            "safety copy of {url}: {path} ({}; rows: {})",
            human_size(copy.size),
            copy.counts
        ));
        let facts = Facts {
            kind: copy.kind,
            backend: url.backend(),
            schema_version,
            counts: &copy.counts,
            compression: Compression::None,
        };
        offsite
            .upload(&copy.path, &facts, "safety_backup_remote", report)
            .map_err(|error| anyhow::anyhow!("{error:#}; nothing was changed"))?;
        Ok(Some(path))
    }
}

/// `--remote URL` (or `TOEFL_BACKUP_REMOTE`): off-site copies, in an S3-compatible bucket or another
/// directory.
#[derive(clap::Args)]
pub struct RemoteOptions {
    /// Off-site copies: s3://BUCKET[/PREFIX] (credentials and settings from the AWS_* variables) or
    /// file:///ABSOLUTE/DIR
    #[arg(
        long,
        env = "TOEFL_BACKUP_REMOTE",
        hide_env_values = true,
        value_name = "URL",
        value_parser = RemoteUrl::parse
    )]
    pub remote: Option<RemoteUrl>,
}

impl RemoteOptions {
    /// Opens the remote, if one is configured, before the command does any work: a missing bucket
    /// or directory, or an unreachable service, fails at once.
    pub fn open(&self) -> anyhow::Result<Offsite> {
        Ok(Offsite(self.remote.as_ref().map(Remote::open).transpose()?))
    }

    /// Where `list` and `prune` work: `dir` when given (even with a remote configured), else the
    /// remote, else `backups/`.
    pub fn archive(&self, dir: Option<&Path>) -> anyhow::Result<Archive> {
        Ok(match (dir, &self.remote) {
            (Some(dir), _) => Archive::Dir(dir.to_path_buf()),
            (None, Some(url)) => Archive::Remote(Remote::open(url)?),
            (None, None) => Archive::Dir(backups_dir()?),
        })
    }
}

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
