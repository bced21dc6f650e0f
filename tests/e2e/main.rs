//! End-to-end tests: the real `xtask` binary against real SQLite files and a real PostgreSQL server
//! (see the `tests` support crate for how the server is found or started).

mod backup_restore;
mod compression;
mod export_import;
mod foundation;
mod list;
mod prune;
mod readme;
mod scripting;
mod secrets;
mod tls;
mod verify;

use tests::{run_xtask, Outcome, TestDb};

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

/// One database of each backend.
pub fn both_backends() -> [TestDb; 2] {
    [TestDb::sqlite(), TestDb::postgres()]
}
