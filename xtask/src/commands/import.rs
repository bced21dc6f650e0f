//! `cargo xtask import`: replaces all the data of a database with an export file's, in one
//! transaction that checks every value, count, unique key and reference, streaming the file so that
//! memory stays flat. The header is checked before the target is touched (or the user asked). A file
//! of an earlier schema version is brought forward to the current one as it is loaded.

use app::DatabaseUrl;

use crate::confirm::open_confirmed_target;
use crate::engine::archive::file_size;
use crate::engine::archive::kind::BackupKind;
use crate::engine::archive::series::Series;
use crate::engine::archive::source::Source;
use crate::engine::json::header::read_header;
use crate::engine::json::loader::replace_data;
use crate::flags::{IdentityOptions, ReplaceOptions};
use crate::offsite::Location;
use crate::report::{brought_forward, Report};

/// Options of `cargo xtask import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The export file to import (written by `cargo xtask export`; plain, compressed or encrypted),
    /// or an off-site copy of one: s3://BUCKET/KEY or file:///DIR/NAME (downloaded and checked first)
    #[arg(long, value_name = "PATH", value_parser = Location::parse)]
    file: Location,
    #[command(flatten)]
    replace: ReplaceOptions,
    #[command(flatten)]
    decryption: IdentityOptions,
}

/// Replaces all the data of `url` with the data of the chosen file.
pub fn run(url: &DatabaseUrl, args: &ImportArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("import");
    let replacement = args.replace.prepare(&args.file, &mut report)?;
    let path = replacement.path();
    let source = Source::new(path, &args.decryption.identities())?;
    let header = read_header(&source)?;
    let schema_version = header.check(path)?;
    let action = format!("the import of {}", path.display());
    let mut target = open_confirmed_target(url, &action, args.replace.yes)?;
    let safety_copy = args.replace.save_current_data(
        url,
        &mut target.db,
        Series::PreImport,
        &replacement,
        &mut report,
    )?;
    let counts = match replace_data(&mut target.db, url, &source, &header, schema_version) {
        Ok(counts) => counts,
        Err(error) => {
            target.discard();
            let message = format!(
                "cannot import {} into {url}; nothing was changed",
                path.display()
            );
            return Err(error.context(message));
        }
    };
    let line = format!(
        "imported {}{} into {url}: {counts} in {:.2} s",
        path.display(),
        brought_forward(schema_version),
        report.seconds()
    );
    report
        .say(line)
        .backup_file(
            path,
            BackupKind::Json,
            url.backend().as_str(),
            file_size(path)?,
            source.is_encrypted(),
        )
        .field("safety_backup", safety_copy)
        .field("schema_version", schema_version)
        .rows(&counts);
    Ok(report)
}
