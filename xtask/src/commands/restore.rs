//! `cargo xtask restore`: puts a native backup back, all or nothing. The file is known by its
//! content and checked whole before anything changes; the user confirms; the current data is saved
//! first; then the target is replaced in one step (SQLite's backup API) or one transaction
//! (`pg_restore --single-transaction`). A backup of an earlier schema version is brought forward to
//! the current one within that step or transaction.

use app::DatabaseUrl;

use crate::confirm::open_confirmed_target;
use crate::engine::archive::kind::{identify, BackupKind};
use crate::engine::archive::series::Series;
use crate::engine::archive::source::Source;
use crate::engine::archive::{file_size, same_file};
use crate::engine::native;
use crate::flags::{IdentityOptions, ReplaceOptions};
use crate::offsite::Location;
use crate::report::{brought_forward, Report};

/// Options of `cargo xtask restore`.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup to restore: a SQLite backup or a pg_dump custom-format dump made by
    /// `cargo xtask backup`, maybe encrypted (recognised by its content, whatever its name), or an
    /// off-site copy of one: s3://BUCKET/KEY or file:///DIR/NAME (downloaded and checked first)
    #[arg(long, value_name = "PATH", value_parser = Location::parse)]
    file: Location,
    #[command(flatten)]
    replace: ReplaceOptions,
    #[command(flatten)]
    decryption: IdentityOptions,
}

/// Restores `--file` onto the database at `url`.
pub fn run(url: &DatabaseUrl, args: &RestoreArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("restore");
    let replacement = args.replace.prepare(&args.file, &mut report)?;
    let path = replacement.path();
    let source = Source::new(path, &args.decryption.identities())?;
    let kind = identify(&source)?;
    kind.require_native_for(path, url.backend())?;
    if let Some(target) = url.sqlite_path().filter(|target| target.exists()) {
        anyhow::ensure!(
            !same_file(path, target)?,
            "{} is the database being restored onto, not a backup of it: pass a file written by \
             `cargo xtask backup`",
            path.display()
        );
    }
    // The whole file is checked before the target is even opened; an encrypted one is decrypted
    // whole first, into a private directory.
    let plain = source.plain_file()?;
    let backup = native::check_backup(plain.path(), &kind)?;
    let schema_version = backup.schema_version;
    let action = format!("restoring {}", path.display());
    let mut target = open_confirmed_target(url, &action, args.replace.yes)?;
    let safety_copy = args.replace.save_current_data(
        url,
        &mut target.db,
        Series::PreRestore,
        &replacement,
        &mut report,
    )?;
    if let Err(error) = native::restore(backup, plain.path(), url, &mut target.db) {
        target.discard();
        return Err(error);
    }
    let mut db = target.db;
    db.check_schema_version(url)?;
    let counts = db.row_counts()?;
    let line = format!(
        "restored {}{} onto {url} in {:.2} s; rows: {counts}",
        path.display(),
        brought_forward(schema_version),
        report.seconds(),
    );
    report
        .say(line)
        .backup_file(
            path,
            BackupKind::Native,
            url.backend().as_str(),
            file_size(path)?,
            source.is_encrypted(),
        )
        .field("safety_backup", safety_copy)
        .field("schema_version", schema_version)
        .rows(&counts);
    Ok(report)
}
