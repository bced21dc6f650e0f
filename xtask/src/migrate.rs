//! `cargo xtask migrate`: creates or updates the schema.

use app::{Create, Database, DatabaseUrl, SCHEMA_VERSION};

/// Applies the missing schema versions to `url`, creating a missing SQLite file.
pub fn run(url: &DatabaseUrl) -> anyhow::Result<()> {
    let mut db = Database::open(url, Create::IfMissing)?;
    let applied = db.migrate()?;
    if applied.is_empty() {
        eprintln!("{url} is up to date (schema version {SCHEMA_VERSION})");
    } else {
        let versions: Vec<String> = applied.iter().map(i64::to_string).collect();
        eprintln!(
            "{url}: applied schema version {} (now at {SCHEMA_VERSION})",
            versions.join(", ")
        );
    }
    Ok(())
}
