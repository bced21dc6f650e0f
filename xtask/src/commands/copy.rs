//! `cargo xtask copy --to URL`: replaces all the data of the database at `--to` with every row of
//! the chosen one, streamed with no file in between, with all that `import` guarantees the target:
//! the question first, a safety export, one transaction that checks every value, count, key and
//! reference. The source is read from one snapshot while the app may go on writing to it.

use app::{Create, Database, DatabaseUrl};

use crate::confirm::open_confirmed_target;
use crate::engine::archive::series::Series;
use crate::engine::copy::{copy_data, ensure_different};
use crate::flags::ReplaceOptions;
use crate::report::{brought_forward, Report};

/// Options of `cargo xtask copy`.
#[derive(clap::Args)]
#[command(
    after_help = "The source is the database chosen as for every command (--database-url, \
DATABASE_URL or the development file). The target gets the schema if it has none. Prefer \
COPY_TO_DATABASE_URL to --to for a URL with a password: an argument is visible to every user of \
the machine."
)]
pub struct CopyArgs {
    /// The database whose data is replaced by a copy of the source's
    #[arg(
        long,
        value_name = "URL",
        env = "COPY_TO_DATABASE_URL",
        hide_env_values = true
    )]
    to: String,
    #[command(flatten)]
    replace: ReplaceOptions,
}

/// Replaces all the data of `--to` with the data of `url`.
pub fn run(url: &DatabaseUrl, args: &CopyArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("copy");
    let target_url = DatabaseUrl::parse(&args.to)?;
    // A bad key or an unreachable remote for the safety copy fails before anything happens.
    let safety = &args.replace.safety;
    let recipients = safety.recipients()?;
    let offsite = safety.offsite()?;
    let mut source = Database::open(url, Create::No)?;
    let version = source.known_schema_version(url)?;
    ensure_different(url, &mut source, &target_url)?;
    let action = format!("the copy of {url}");
    let mut target = open_confirmed_target(&target_url, &action, args.replace.yes)?;
    let safety_copy = safety.save_current_data(
        &target_url,
        &mut target.db,
        Series::PreCopy,
        recipients.as_ref(),
        &offsite,
        &mut report,
    )?;
    let counts = match copy_data(&mut source, version, &mut target.db, &target_url) {
        Ok(counts) => counts,
        Err(error) => {
            target.discard();
            let message = format!("cannot copy {url} into {target_url}; nothing was changed");
            return Err(error.context(message));
        }
    };
    let line = format!(
        "copied {url}{} into {target_url}: {counts} in {:.2} s",
        brought_forward(version),
        report.seconds()
    );
    report
        .say(line)
        .field("source", url.to_string())
        .field("target", target_url.to_string())
        .backend(target_url.backend())
        .field("safety_backup", safety_copy)
        .field("schema_version", version)
        .rows(&counts);
    Ok(report)
}
