//! End-to-end tests: the real `xtask` binary against real SQLite files and a real PostgreSQL server
//! (see the `testkit` support crate for how the server is found or started).
//!
//! They run on Unix only: the server runs as another user through runuser, stand-ins for pg_dump
//! are shell scripts, and file modes are checked. The Windows build is proven by
//! `.ci/windows-smoke.sh`, which runs it under Wine.
#![cfg(unix)]
// A test's helpers fail the test by panicking, as its assertions do.
#![allow(clippy::unwrap_used)]

/// Defines, for each function `name(backend: Backend)` named, the tests `name::sqlite` and
/// `name::postgres`, so that a failure says which backend broke.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(app::Backend::Sqlite)
            }

            #[test]
            fn postgres() {
                super::$name(app::Backend::Postgres)
            }
        }
    )*};
}

mod backup_restore;
mod compression;
mod copy;
mod encryption;
mod export_import;
mod foundation;
mod interface;
mod list;
mod offsite;
mod old_backups;
mod prune;
mod readme;
mod scripting;
mod secrets;
mod tls;
mod verify;

use testkit::{run_xtask, Outcome, TestDb};

/// An export's text with the fields that differ between two exports of the same data replaced.
pub fn without_time_and_source(export: &str) -> String {
    let mut lines: Vec<&str> = export.lines().collect();
    assert!(lines[1].starts_with(" \"exported_at\": \""), "{}", lines[1]);
    lines[1] = " \"exported_at\": \"[exported_at]\", \"source\": [source],";
    lines.join("\n")
}

/// A schema version newer than this build's, which every file and database of it is refused for.
pub const NEWER_VERSION: i64 = app::SCHEMA_VERSION + 1;

/// The words that refuse a newer schema version, naming both versions.
pub fn newer_version_refusal() -> String {
    format!(
        "schema version {NEWER_VERSION}, newer than this tool's {}",
        app::SCHEMA_VERSION
    )
}

/// The SQL that makes a database look migrated by a newer build.
pub fn record_newer_version() -> String {
    format!(
        "INSERT INTO schema_migrations (version, applied_at) \
         VALUES ({NEWER_VERSION}, '2027-01-01 00:00:00.000000')"
    )
}

/// Runs `cargo xtask ARGS` (the built binary) with no `DATABASE_URL` and no terminal.
pub fn xtask(args: &[&str]) -> Outcome {
    run_xtask(env!("CARGO_BIN_EXE_xtask"), args)
}

/// Runs `cargo xtask ARGS --database-url URL` on `db`.
pub fn xtask_on(db: &TestDb, args: &[&str]) -> Outcome {
    let url = db.url_arg();
    let mut all = args.to_vec();
    all.extend(["--database-url", url.as_str()]);
    xtask(&all)
}

/// Like [`xtask_on`], but fails the test unless the command succeeds.
pub fn xtask_ok(db: &TestDb, args: &[&str]) -> Outcome {
    let outcome = xtask_on(db, args);
    assert!(outcome.success, "xtask {args:?} failed: {outcome:#?}");
    outcome
}
