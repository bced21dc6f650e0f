//! `cargo xtask restore`: puts a native backup back, all or nothing. The file is known by its
//! content and checked whole before anything changes; the user confirms; the current data is saved
//! first; then the target is replaced in one step (SQLite's backup API) or one transaction
//! (`pg_restore --single-transaction`).

use app::DatabaseUrl;

use crate::confirm::open_confirmed_target;
use crate::engine::archive::file_size;
use crate::engine::archive::kind::{identify, BackupKind};
use crate::engine::archive::series::Series;
use crate::engine::native;
use crate::flags::{RemoteOptions, ReplaceOptions, Source};
use crate::report::Report;

/// Options of `cargo xtask restore`.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup to restore: a SQLite backup or a pg_dump custom-format dump made by
    /// `cargo xtask backup` (recognised by its content, whatever its name), or an off-site copy of
    /// one: s3://BUCKET/KEY or file:///DIR/NAME (downloaded and checked first)
    #[arg(long, value_name = "PATH", value_parser = Source::parse)]
    file: Source,
    #[command(flatten)]
    replace: ReplaceOptions,
    #[command(flatten)]
    remote: RemoteOptions,
}

/// Restores `--file` onto the database at `url`.
pub fn run(url: &DatabaseUrl, args: &RestoreArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("restore");
    let offsite = args.remote.open()?;
    let source = args.file.fetch(&mut report)?;
    let path = source.path();
    let kind = identify(path)?;
    kind.require_native_for(path, url.backend())?;
    // The whole file is checked before the target is even opened.
    let backup = native::check_backup(path, &kind)?;
    let action = format!("restoring {}", path.display());
    let mut db = open_confirmed_target(url, &action, args.replace.yes)?;
    let safety_copy =
        args.replace
            .save_current_data(url, &mut db, Series::PreRestore, &offsite, &mut report)?;
    native::restore(backup, path, url, &mut db)?;
    db.check_schema_version(url)?;
    let counts = db.row_counts()?;
    let line = format!(
        "restored {} onto {url} in {:.2} s; rows: {counts}",
        path.display(),
        report.seconds(),
    );
    report
        .say(line)
        .backup_file(
            path,
            BackupKind::Native,
            url.backend().as_str(),
            file_size(path)?,
        )
        .field("safety_backup", safety_copy)
        .rows(&counts);
    Ok(report)
}
