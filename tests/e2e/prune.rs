//! `cargo xtask prune`: retention over files with made-up timestamps.

use std::collections::BTreeSet;
use std::path::Path;

use crate::xtask;

/// The names of the files in `dir`.
pub fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn prune_keeps_what_the_rules_say_and_dry_run_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ours = [
        "toefl_export_20260110_230000.json",
        "toefl_export_20260110_080000.json",
        "toefl_export_20260109_120000.json.gz",
        "toefl_export_20251231_120000.json",
        "toefl_export_20251115_120000.json",
        "toefl_backup_20250101_120000.db",
        "toefl_backup_20240101_120000.dump",
    ];
    let foreign = [
        "notes.txt",
        "toefl_export_latest.json",
        "toefl_backup_20240101_120000.db.old",
    ];
    for name in ours.iter().chain(&foreign) {
        std::fs::write(dir.path().join(name), "x").unwrap();
    }
    std::fs::create_dir(dir.path().join("toefl_export_20200101_000000.json")).unwrap();
    let everything = names_in(dir.path());
    let dir_arg = dir.path().to_str().unwrap();

    let dry = xtask(&[
        "prune",
        "--keep-last",
        "1",
        "--keep-daily",
        "2",
        "--dry-run",
        "--dir",
        dir_arg,
    ]);
    assert!(dry.success, "{dry:#?}");
    assert_eq!(
        names_in(dir.path()),
        everything,
        "--dry-run deletes nothing"
    );
    assert!(
        dry.stderr.contains("would delete")
            && dry.stderr.contains("toefl_export_20251231_120000.json")
    );

    let real = xtask(&[
        "prune",
        "--keep-last",
        "1",
        "--keep-daily",
        "2",
        "--dir",
        dir_arg,
    ]);
    assert!(real.success, "{real:#?}");
    let mut expected = everything.clone();
    // Each series keeps its newest file and its newest of each of the last two days with files.
    for gone in [ours[1], ours[3], ours[4]] {
        expected.remove(gone);
    }
    assert_eq!(names_in(dir.path()), expected, "{}", real.stderr);
}

#[test]
fn prune_takes_any_one_rule() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap();
    for rule in [
        "--keep-last",
        "--keep-daily",
        "--keep-weekly",
        "--keep-monthly",
    ] {
        let outcome = xtask(&["prune", rule, "2", "--dry-run", "--dir", dir]);
        assert!(outcome.success, "{rule} alone: {outcome:#?}");
    }
}

#[test]
fn prune_needs_a_rule_and_an_existing_directory() {
    let missing_rule = xtask(&["prune"]);
    assert_eq!(missing_rule.code, Some(2), "{missing_rule:#?}");
    let missing_dir = xtask(&["prune", "--keep-last", "3", "--dir", "/nonexistent/backups"]);
    assert_eq!(missing_dir.code, Some(1));
    assert!(
        missing_dir
            .stderr
            .contains("cannot read directory /nonexistent/backups"),
        "{}",
        missing_dir.stderr
    );
}
