//! `cargo xtask backup`: a native backup, consistent even while the app writes: SQLite's online
//! backup API, checked before it is kept; `pg_dump --format=custom` for PostgreSQL.

use std::path::PathBuf;

use app::{Create, Database, DatabaseUrl};

use crate::engine::archive::compression::Compression;
use crate::engine::archive::kind::BackupKind;
use crate::engine::archive::series::Series;
use crate::engine::native;
use crate::flags::RecipientOptions;
use crate::flags::RemoteOptions;
use crate::offsite::Facts;
use crate::report::Report;

/// Options of `cargo xtask backup`.
#[derive(clap::Args)]
pub struct BackupArgs {
    /// Where to write the backup [default: backups/toefl_backup_YYYYMMDD_HHMMSS.db for SQLite,
    /// .dump for PostgreSQL, in UTC]
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Overwrite the file if it already exists
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    encryption: RecipientOptions,
    #[command(flatten)]
    remote: RemoteOptions,
}

/// Backs up the database at `url` to `--file` or a new timestamped file in `backups/`, then to the
/// remote, if any.
pub fn run(url: &DatabaseUrl, args: &BackupArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("backup");
    let recipients = args.encryption.recipients()?;
    let offsite = args.remote.open()?;
    let mut db = Database::open(url, Create::No)?;
    // A database of an earlier schema version is backed up as it is, before its migration.
    let schema_version = db.known_schema_version(url)?;
    let extension = native::extension(url.backend());
    let path = Series::Backup.path_for(args.file.as_deref(), extension, recipients.as_ref())?;
    let written = native::write_backup(url, &mut db, &path, args.force, recipients.as_ref())?;
    report
        .say(format!("backed up {url} to {}: {written}", path.display()))
        .backup_file(
            &path,
            BackupKind::Native,
            url.backend().as_str(),
            written.size,
            recipients.is_some(),
        )
        .rows(&written.counts);
    let facts = Facts {
        kind: BackupKind::Native,
        backend: url.backend(),
        schema_version,
        counts: &written.counts,
        compression: Compression::None,
    };
    offsite.upload(&path, &facts, "remote", &mut report)?;
    Ok(report)
}
