//! `cargo xtask verify`: good backups pass; truncated, tampered and wrong-version ones fail with the
//! reason and exit code 4.

use std::path::Path;

use app::SCHEMA_VERSION;
use testkit::TestDb;

use crate::scripting::json_line;
use crate::{
    newer_version_refusal, record_newer_version, xtask, xtask_ok, xtask_on, NEWER_VERSION,
};

fn sqlite_backup(dir: &Path) -> (TestDb, String) {
    let db = TestDb::sqlite();
    xtask_ok(&db, &["seed", "--students", "40"]);
    let file = dir.join("backup.db").to_str().unwrap().to_string();
    xtask_ok(&db, &["backup", "--file", &file]);
    (db, file)
}

/// Edits a SQLite backup behind the tool's back, with foreign keys not enforced.
fn tamper(file: &str, sql: &str) {
    let conn = rusqlite::Connection::open(file).unwrap();
    conn.execute_batch(&format!("PRAGMA foreign_keys = OFF; {sql}"))
        .unwrap();
}

#[test]
fn a_good_sqlite_backup_verifies_in_a_scratch_file_that_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = sqlite_backup(dir.path());
    let outcome = xtask(&["verify", &file, "--json"]);
    assert!(outcome.success, "{outcome:#?}");
    let line = json_line(&outcome);
    assert_eq!(line["verified"], true);
    assert_eq!(line["backend"], "sqlite");
    assert_eq!(line["rows"]["students"], 40);
    let scratch = line["scratch"].as_str().unwrap();
    let scratch = std::path::Path::new(scratch.strip_prefix("sqlite:").unwrap());
    assert!(
        !scratch.parent().unwrap().exists(),
        "the scratch directory {} is removed, journal files and all",
        scratch.display()
    );
}

#[test]
fn a_good_postgres_dump_verifies_in_a_scratch_database_that_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestDb::postgres();
    xtask_ok(&pg, &["seed", "--students", "40"]);
    let dump = dir.path().join("backup.dump").to_str().unwrap().to_string();
    xtask_ok(&pg, &["backup", "--file", &dump]);
    let outcome = xtask_on(&pg, &["verify", &dump, "--json"]);
    assert!(outcome.success, "{outcome:#?}");
    let line = json_line(&outcome);
    assert_eq!(line["rows"]["students"], 40);
    // The scratch database was on the same server, and is gone.
    let scratch = line["scratch"].as_str().unwrap();
    let name = scratch
        .split('/')
        .nth(3)
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    assert!(name.starts_with("toefl_verify_"), "{scratch}");
    let left = pg.query_i64(&format!(
        "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    ));
    assert_eq!(left, 0, "the scratch database {name} is dropped");

    let without_server = xtask(&["verify", &dump]);
    assert_eq!(without_server.code, Some(1), "{without_server:#?}");
    assert!(
        without_server.stderr.contains("--database-url postgres://"),
        "{}",
        without_server.stderr
    );
}

/// A way to break a backup file, given its path.
type Breakage = dyn Fn(&str);

#[test]
fn broken_backups_fail_verification_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &Breakage, &str); 5] = [
        (
            "truncated",
            &|file| {
                let bytes = std::fs::read(file).unwrap();
                std::fs::write(file, &bytes[..bytes.len() / 2]).unwrap();
            },
            "",
        ),
        (
            "a grade of a missing student",
            &|file| tamper(file, "UPDATE grades SET student_id = 999999 WHERE id = 3"),
            "table grades, row 3 (id 3), column student_id: refers to students id 999999",
        ),
        (
            "a row that breaks a check, written with checks off",
            &|file| {
                tamper(
                    file,
                    "PRAGMA ignore_check_constraints = ON; UPDATE students SET reading = NULL \
                     WHERE id = (SELECT min(id) FROM students WHERE reading IS NOT NULL)",
                )
            },
            "breaks the check students_complete_scales",
        ),
        (
            "another schema version",
            &|file| tamper(file, &record_newer_version()),
            &newer_version_refusal(),
        ),
        (
            "garbage",
            &|file| std::fs::write(file, "not a backup").unwrap(),
            "not a backup this tool knows",
        ),
    ];
    for (what, break_it, reason) in cases {
        let (_, file) = sqlite_backup(dir.path());
        break_it(&file);
        let outcome = xtask(&["verify", &file]);
        assert_eq!(outcome.code, Some(4), "{what}: {outcome:#?}");
        assert!(
            outcome.stderr.contains("failed verification"),
            "{what}: {}",
            outcome.stderr
        );
        assert!(
            outcome.stderr.contains(reason),
            "{what}: {}",
            outcome.stderr
        );
        std::fs::remove_file(&file).unwrap();
    }
}

#[test]
fn a_dump_of_another_schema_version_is_refused_before_anything_changes() {
    let source = TestDb::postgres();
    xtask_ok(&source, &["seed", "--students", "10"]);
    source.execute(&record_newer_version());
    let dump = source.dir.path().join("newer.dump");
    let dumped = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(source.url_arg())
        .status()
        .unwrap();
    assert!(dumped.success());
    let dump = dump.to_str().unwrap();

    let verified = xtask_on(&source, &["verify", dump]);
    assert_eq!(verified.code, Some(4), "{verified:#?}");
    assert!(
        verified.stderr.contains(&newer_version_refusal()),
        "{}",
        verified.stderr
    );

    let target = TestDb::postgres();
    xtask_ok(&target, &["seed", "--students", "5"]);
    let before = target.content_hash();
    let restored = xtask_on(
        &target,
        &["restore", "--file", dump, "--yes", "--no-safety-backup"],
    );
    assert_eq!(restored.code, Some(1), "{restored:#?}");
    assert!(
        restored.stderr.contains(&newer_version_refusal()),
        "{}",
        restored.stderr
    );
    assert_eq!(target.content_hash(), before);
}

/// A seeded SQLite database and its export at `dir/NAME`.
fn json_export(dir: &Path, name: &str) -> (TestDb, String) {
    let db = TestDb::sqlite();
    xtask_ok(&db, &["seed", "--students", "30"]);
    let file = dir.join(name).to_str().unwrap().to_string();
    xtask_ok(&db, &["export", "--file", &file]);
    (db, file)
}

#[test]
fn good_exports_verify_into_either_backend_plain_or_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestDb::postgres();
    for name in ["plain.json", "small.json.gz", "small.json.zst"] {
        let (_, file) = json_export(dir.path(), name);
        let on_sqlite = xtask(&["verify", &file, "--json"]);
        assert!(on_sqlite.success, "{name}: {on_sqlite:#?}");
        let line = json_line(&on_sqlite);
        assert_eq!(
            (&line["kind"], &line["backend"]),
            (&"json".into(), &"sqlite".into())
        );
        assert_eq!(line["rows"]["students"], 30);
        let on_postgres = xtask_on(&pg, &["verify", &file]);
        assert!(on_postgres.success, "{name}: {on_postgres:#?}");
        assert!(
            on_postgres.stderr.contains("scratch postgres database"),
            "{}",
            on_postgres.stderr
        );
    }
}

#[test]
fn broken_exports_fail_verification_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &Breakage, &str); 4] = [
        (
            "truncated",
            &|file| {
                let text = std::fs::read_to_string(file).unwrap();
                std::fs::write(file, &text[..text.len() * 2 / 3]).unwrap();
            },
            "EOF",
        ),
        (
            "a row count that disagrees",
            &|file| edit(file, "\"students\": 30", "\"students\": 31"),
            "table students: the file holds 30 rows but its row_counts says 31",
        ),
        (
            "a grade of a missing student",
            &|file| {
                edit(
                    file,
                    "{\"id\":1,\"student_id\":1,",
                    "{\"id\":1,\"student_id\":999,",
                )
            },
            "refers to students id 999",
        ),
        (
            "another schema version",
            &|file| {
                edit(
                    file,
                    &format!("\"schema_version\": {SCHEMA_VERSION}"),
                    &format!("\"schema_version\": {NEWER_VERSION}"),
                )
            },
            &newer_version_refusal(),
        ),
    ];
    for (what, break_it, reason) in cases {
        let (_, file) = json_export(dir.path(), "export.json");
        break_it(&file);
        let outcome = xtask(&["verify", &file]);
        assert_eq!(outcome.code, Some(4), "{what}: {outcome:#?}");
        assert!(
            outcome.stderr.contains(reason),
            "{what}: {}",
            outcome.stderr
        );
        std::fs::remove_file(&file).unwrap();
    }
}

/// Replaces the first `from` in the file by `to`, failing if it is not there.
fn edit(file: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains(from),
        "{from} in {}",
        &text[..400.min(text.len())]
    );
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}
