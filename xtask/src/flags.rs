//! Groups of options that several commands share, defined once.

use std::path::{Path, PathBuf};

use app::{Database, DatabaseUrl};

use crate::engine::archive::backups_dir;
use crate::engine::archive::compression::Compression;
use crate::engine::archive::series::Series;
use crate::engine::crypto::{Identities, Recipients, RECIPIENTS_ENV};
use crate::engine::remote::{Remote, RemoteUrl};
use crate::engine::safety;
use crate::exit::Exit;
use crate::offsite::{Archive, Facts, Fetched, Location, Offsite};
use crate::report::{human_size, Report};

/// The options that make a command encrypt the files it writes (with age).
#[derive(clap::Args)]
#[command(next_help_heading = "Encryption")]
pub struct RecipientOptions {
    /// Encrypt what this command writes (for import, copy, restore and migrate: the safety copy) to this age
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

impl ReplaceOptions {
    /// Gets ready to replace a database's data with `file`'s: the safety copy's recipients and remote
    /// are checked first (a bad key or an unreachable remote fails before anything happens), then
    /// the file is fetched.
    pub fn prepare(&self, file: &Location, report: &mut Report) -> anyhow::Result<Replacement> {
        Ok(Replacement {
            recipients: self.safety.recipients()?,
            offsite: self.safety.offsite()?,
            fetched: file.fetch(report)?,
        })
    }

    /// Takes the safety copy of `db` before `replacement` replaces its data (see
    /// [`SafetyOptions::save_current_data`]).
    pub fn save_current_data(
        &self,
        url: &DatabaseUrl,
        db: &mut Database,
        series: Series,
        replacement: &Replacement,
        report: &mut Report,
    ) -> anyhow::Result<Option<String>> {
        self.safety.save_current_data(
            url,
            db,
            series,
            replacement.recipients.as_ref(),
            &replacement.offsite,
            report,
        )
    }
}

/// What [`ReplaceOptions::prepare`] readied: where the safety copy goes, and the file to read.
pub struct Replacement {
    recipients: Option<Recipients>,
    offsite: Offsite,
    fetched: Fetched,
}

impl Replacement {
    /// The file to read, local (or downloaded and checked).
    pub fn path(&self) -> &Path {
        self.fetched.path()
    }
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
        Ok(Offsite::new(
            self.remote.as_ref().map(Remote::open).transpose()?,
        ))
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
