//! `cargo xtask migrate`: creates or updates the schema. On a database that holds data, it first says
//! what the migration will change and saves the data as it is (a safety export of the old schema
//! version, which `import` reads and brings forward again), then migrates in one transaction.

use app::schema::describe_changes;
use app::{Create, Database, DatabaseUrl, SCHEMA_VERSION};

use crate::engine::archive::series::Series;
use crate::flags::SafetyOptions;
use crate::report::Report;

/// Options of `cargo xtask migrate`.
#[derive(clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    safety: SafetyOptions,
}

/// Applies the missing schema versions to `url`, creating a missing SQLite file.
pub fn run(url: &DatabaseUrl, args: &MigrateArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("migrate");
    let recipients = args.safety.recipients()?;
    let offsite = args.safety.offsite()?;
    let mut db = Database::open(url, Create::IfMissing)?;
    let mut safety_copy = None;
    if let Some(current) = db.schema_version()? {
        // A newer database is refused by the migration itself, naming both versions.
        for version in current + 1..=SCHEMA_VERSION {
            let changes = describe_changes(version).join("; ");
            report.tell(format!(
                "{url}: schema version {version} will change it: {changes}; the rows already \
                 there keep their values, and their new columns stay empty"
            ));
        }
        if current < SCHEMA_VERSION {
            safety_copy = args.safety.save_current_data(
                url,
                &mut db,
                Series::PreMigrate,
                recipients.as_ref(),
                &offsite,
                &mut report,
            )?;
        }
    }
    let applied = db.migrate()?;
    if applied.is_empty() {
        report.say(format!(
            "{url} is up to date (schema version {SCHEMA_VERSION})"
        ));
    } else {
        let versions: Vec<String> = applied.iter().map(i64::to_string).collect();
        report.say(format!(
            "{url}: applied schema version {} (now at {SCHEMA_VERSION})",
            versions.join(", ")
        ));
    }
    report
        .backend(url.backend())
        .field("schema_version", SCHEMA_VERSION)
        .field("applied", applied)
        .field("safety_backup", safety_copy);
    Ok(report)
}
