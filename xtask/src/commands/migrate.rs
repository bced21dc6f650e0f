//! `cargo xtask migrate`: creates or updates the schema.

use app::{Create, Database, DatabaseUrl, SCHEMA_VERSION};

use crate::report::Report;

/// Applies the missing schema versions to `url`, creating a missing SQLite file.
pub fn run(url: &DatabaseUrl) -> anyhow::Result<Report> {
    let mut report = Report::start("migrate");
    let mut db = Database::open(url, Create::IfMissing)?;
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
        .field("applied", applied);
    Ok(report)
}
