//! Backups taken at schema version 1 keep working at version 2: the three files in `fixtures/v1/`,
//! made by the version-1 code before version 2 existed, import, restore and verify into new and
//! non-empty databases of both backends, and a version-1 database migrates to the same data.
//!
//! What the data must be at version 2 is derived here from the version-1 export by a plain text
//! rule, not by the code under test: the same rows, with the band columns of students and grades
//! empty (no bands are invented for tests taken before them).

use std::path::{Path, PathBuf};
use std::process::Command;

use app::{Backend, DatabaseUrl};
use testkit::{run_xtask_with_env, Outcome, TestDb};

use crate::scripting::json_line;
use crate::{without_time_and_source, xtask, xtask_ok, xtask_on};

/// A file of `fixtures/v1/`.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e/fixtures/v1")
        .join(name)
}

fn fixture_arg(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

/// The version-1 native backup of `backend`.
fn native_fixture(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => fixture_arg("backup.db"),
        Backend::Postgres => fixture_arg("backup.dump"),
    }
}

/// The version-1 export's text.
fn v1_export() -> String {
    std::fs::read_to_string(fixture("export.json")).unwrap()
}

/// The columns version 2 adds to students and grades, empty, as an export writes them.
const EMPTY_BANDS: &str = ",\"reading_band\":null,\"listening_band\":null,\"speaking_band\":null,\
                           \"writing_band\":null,\"overall_band\":null";

/// The version-1 export's data as a version-2 export (without its time and source): the header says
/// schema version 2, and every row of students and grades ends with the empty band columns.
fn expected_v2_export() -> String {
    let v1 = v1_export();
    let mut table = "";
    let mut lines = Vec::new();
    for line in v1.lines() {
        if let Some(name) = line
            .strip_prefix("  \"")
            .and_then(|l| l.strip_suffix("\": ["))
        {
            table = if name == "students" || name == "grades" {
                "banded"
            } else {
                ""
            };
        }
        let row = line.starts_with("   {\"id\":");
        lines.push(match (row, table, line.strip_suffix("},")) {
            (true, "banded", Some(start)) => format!("{start}{EMPTY_BANDS}}},"),
            (true, "banded", None) => format!("{}{EMPTY_BANDS}}}", line.strip_suffix('}').unwrap()),
            _ => line.replace("\"schema_version\": 1,", "\"schema_version\": 2,"),
        });
    }
    without_time_and_source(&lines.join("\n"))
}

/// `db` exported, without its time and source.
fn exported(db: &TestDb) -> String {
    let path = db.dir.path().join("now.json");
    let path = path.to_str().unwrap();
    xtask_ok(db, &["export", "--file", path, "--force"]);
    without_time_and_source(&std::fs::read_to_string(path).unwrap())
}

/// Asserts that `db` is at schema version 2 and holds the version-1 fixtures' data.
fn assert_holds_the_fixtures_data(db: &TestDb) {
    assert_eq!(
        db.query_i64("SELECT max(version) FROM schema_migrations"),
        2
    );
    assert!(
        exported(db) == expected_v2_export(),
        "{} does not hold the version-1 data at version 2",
        db.url
    );
}

/// A database of `backend` at schema version 1 with the fixtures' data, made without the code under
/// test: a copy of the SQLite backup, or the dump restored by pg_restore.
pub fn v1_database(backend: Backend) -> TestDb {
    let db = TestDb::of(backend);
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            std::fs::copy(fixture("backup.db"), path).unwrap();
        }
        DatabaseUrl::Postgres(_) => {
            let restored = Command::new("pg_restore")
                .args(["--no-owner", "--exit-on-error", "--dbname"])
                .arg(db.url_arg())
                .arg(fixture("backup.dump"))
                .output()
                .unwrap();
            assert!(restored.status.success(), "{restored:?}");
        }
    }
    assert_eq!(
        db.query_i64("SELECT max(version) FROM schema_migrations"),
        1
    );
    db
}

/// A student of the fixtures with a reading score and no other figure: version 1 took it, version
/// 2's checks refuse it.
const PARTIAL_SCALE_ROW: &str = "INSERT INTO students (id, name, reading, created_at) \
                                 VALUES (999, 'Só Leitura', 20, '2025-01-01 00:00:00.000000')";

/// A seeded database of `backend` at version 2.
fn seeded(backend: Backend) -> TestDb {
    let db = TestDb::of(backend);
    xtask_ok(&db, &["seed", "--students", "12", "--seed", "4"]);
    db
}

fn import_v1_export(db: &TestDb) -> Outcome {
    let file = fixture_arg("export.json");
    xtask_ok(
        db,
        &["import", "--file", &file, "--yes", "--no-safety-backup"],
    )
}

fn restore(db: &TestDb, file: &str) -> Outcome {
    xtask_on(
        db,
        &["restore", "--file", file, "--yes", "--no-safety-backup"],
    )
}

/// Asserts that a command said it brought a version-1 file forward.
fn assert_brought_forward(outcome: &Outcome) {
    assert!(
        outcome
            .stderr
            .contains("(schema version 1, brought forward to 2)"),
        "{}",
        outcome.stderr
    );
}

per_backend!(the_v1_export_imports_into_a_new_database);
fn the_v1_export_imports_into_a_new_database(backend: Backend) {
    let db = TestDb::of(backend);
    let outcome = import_v1_export(&db);
    assert_brought_forward(&outcome);
    assert_holds_the_fixtures_data(&db);
}

per_backend!(the_v1_export_imports_into_a_database_with_data);
fn the_v1_export_imports_into_a_database_with_data(backend: Backend) {
    let db = seeded(backend);
    import_v1_export(&db);
    assert_holds_the_fixtures_data(&db);
}

per_backend!(the_v1_export_imports_as_migrating_the_v1_backup_gives);
fn the_v1_export_imports_as_migrating_the_v1_backup_gives(backend: Backend) {
    let imported = TestDb::of(backend);
    import_v1_export(&imported);
    let migrated = v1_database(backend);
    xtask_ok(&migrated, &["migrate", "--no-safety-backup"]);
    assert!(exported(&imported) == exported(&migrated));
}

per_backend!(the_v1_backup_restores_onto_a_new_database);
fn the_v1_backup_restores_onto_a_new_database(backend: Backend) {
    let db = TestDb::of(backend);
    xtask_ok(&db, &["migrate"]);
    let outcome = restore(&db, &native_fixture(backend));
    assert!(outcome.success, "{outcome:#?}");
    assert_brought_forward(&outcome);
    assert_holds_the_fixtures_data(&db);
}

per_backend!(the_v1_backup_restores_onto_a_database_with_data);
fn the_v1_backup_restores_onto_a_database_with_data(backend: Backend) {
    let db = seeded(backend);
    let outcome = restore(&db, &native_fixture(backend));
    assert!(outcome.success, "{outcome:#?}");
    assert_holds_the_fixtures_data(&db);
}

per_backend!(a_v1_backup_that_the_new_checks_refuse_restores_nothing);
fn a_v1_backup_that_the_new_checks_refuse_restores_nothing(backend: Backend) {
    let bad = v1_database(backend);
    bad.execute(PARTIAL_SCALE_ROW);
    let file = match &bad.url {
        DatabaseUrl::Sqlite(path) => path.to_str().unwrap().to_string(),
        DatabaseUrl::Postgres(_) => {
            let dump = bad.dir.path().join("bad.dump");
            let dumped = Command::new("pg_dump")
                .args(["--format=custom", "--file"])
                .arg(&dump)
                .arg(bad.url_arg())
                .status()
                .unwrap();
            assert!(dumped.success());
            dump.to_str().unwrap().to_string()
        }
    };
    let db = seeded(backend);
    let before = db.content_hash();
    let outcome = restore(&db, &file);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(
        outcome.stderr.contains(
            "students row id 999 breaks the rule of version 2 that figures come in complete scales"
        ),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("is unchanged"),
        "{}",
        outcome.stderr
    );
    assert_eq!(db.content_hash(), before, "the target is as it was");
}

/// Verifies `file` with `db`'s URL (the server of a dump's scratch database, the backend of an
/// export's); returns the JSON line.
fn verify(db: &TestDb, file: &str) -> serde_json::Value {
    let outcome = xtask_ok(db, &["verify", file, "--json"]);
    assert!(
        outcome
            .stderr
            .contains("at schema version 1: restored and brought forward to schema version 2"),
        "{}",
        outcome.stderr
    );
    json_line(&outcome)
}

per_backend!(the_v1_export_verifies_saying_its_version);
fn the_v1_export_verifies_saying_its_version(backend: Backend) {
    let db = TestDb::of(backend);
    let line = verify(&db, &fixture_arg("export.json"));
    assert_eq!(line["schema_version"], 1);
    assert_eq!(line["rows"]["grades"], 259);
}

per_backend!(the_v1_backup_verifies_saying_its_version);
fn the_v1_backup_verifies_saying_its_version(backend: Backend) {
    let db = TestDb::of(backend);
    let line = verify(&db, &native_fixture(backend));
    assert_eq!(line["schema_version"], 1);
    assert_eq!(line["rows"]["students"], 30);
}

/// Runs `cargo xtask ARGS` on `db` with `TOEFL_BACKUPS_DIR` at `backups`.
fn xtask_with_backups(db: &TestDb, backups: &Path, args: &[&str]) -> Outcome {
    let url = db.url_arg();
    let mut all = args.to_vec();
    all.extend(["--database-url", url.as_str()]);
    let env = [("TOEFL_BACKUPS_DIR", backups.as_os_str())];
    run_xtask_with_env(env!("CARGO_BIN_EXE_xtask"), &all, &env)
}

per_backend!(migrating_a_v1_database_gives_what_the_fixtures_predict_after_a_safety_export);
fn migrating_a_v1_database_gives_what_the_fixtures_predict_after_a_safety_export(backend: Backend) {
    let db = v1_database(backend);
    let backups = tempfile::tempdir().unwrap();
    let outcome = xtask_with_backups(&db, backups.path(), &["migrate", "--json"]);
    assert!(outcome.success, "{outcome:#?}");
    assert!(
        outcome.stderr.contains("schema version 2 will change it")
            && outcome
                .stderr
                .contains("grades gains the columns reading_band"),
        "says what it will change: {}",
        outcome.stderr
    );
    assert_holds_the_fixtures_data(&db);
    let line = json_line(&outcome);
    let saved = PathBuf::from(line["safety_backup"].as_str().unwrap());
    let name = saved.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("toefl_pre_migrate_") && name.ends_with(".json"),
        "{name}"
    );
    assert_eq!(saved.parent(), Some(backups.path()));
    let saved = std::fs::read_to_string(&saved).unwrap();
    assert!(
        without_time_and_source(&saved) == without_time_and_source(&v1_export()),
        "the safety export holds exactly the version-1 data"
    );
}

per_backend!(migrate_without_a_safety_backup_saves_nothing);
fn migrate_without_a_safety_backup_saves_nothing(backend: Backend) {
    let db = v1_database(backend);
    let backups = tempfile::tempdir().unwrap();
    let outcome = xtask_with_backups(&db, backups.path(), &["migrate", "--no-safety-backup"]);
    assert!(outcome.success, "{outcome:#?}");
    assert!(
        outcome.stderr.contains("no safety copy"),
        "{}",
        outcome.stderr
    );
    assert_eq!(std::fs::read_dir(backups.path()).unwrap().count(), 0);
    assert_holds_the_fixtures_data(&db);
}

per_backend!(migrate_names_a_v1_row_that_the_new_checks_refuse_and_changes_nothing);
fn migrate_names_a_v1_row_that_the_new_checks_refuse_and_changes_nothing(backend: Backend) {
    let db = v1_database(backend);
    db.execute(PARTIAL_SCALE_ROW);
    let before = db.content_hash();
    let backups = tempfile::tempdir().unwrap();
    let outcome = xtask_with_backups(&db, backups.path(), &["migrate"]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(
        outcome
            .stderr
            .contains("cannot migrate to schema version 2: students row id 999 breaks the rule"),
        "{}",
        outcome.stderr
    );
    assert_eq!(
        db.query_i64("SELECT max(version) FROM schema_migrations"),
        1
    );
    assert_eq!(db.content_hash(), before);
}

#[test]
fn list_shows_the_schema_version_of_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |name: &str, to: &str| std::fs::copy(fixture(name), dir.path().join(to)).unwrap();
    copy("export.json", "toefl_export_20251101_080000.json");
    copy("backup.db", "toefl_backup_20251102_080000.db");
    copy("backup.dump", "toefl_backup_20251103_080000.dump");
    let db = TestDb::sqlite();
    xtask_ok(&db, &["seed", "--students", "3"]);
    let now = dir.path().join("toefl_export_20261104_080000.json");
    xtask_ok(&db, &["export", "--file", now.to_str().unwrap()]);
    let outcome = xtask(&["list", "--json", "--dir", dir.path().to_str().unwrap()]);
    assert!(outcome.success, "{outcome:#?}");
    let line = json_line(&outcome);
    let versions: Vec<(&str, i64)> = line["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let file = b["file"].as_str().unwrap();
            (file, b["schema_version"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("toefl_export_20261104_080000.json", 2),
            ("toefl_backup_20251103_080000.dump", 1),
            ("toefl_backup_20251102_080000.db", 1),
            ("toefl_export_20251101_080000.json", 1),
        ]
    );
}

per_backend!(a_refused_seed_leaves_a_v1_database_at_version_1);
fn a_refused_seed_leaves_a_v1_database_at_version_1(backend: Backend) {
    let db = v1_database(backend);
    let before = db.content_hash();
    let refused = xtask_on(&db, &["seed", "--students", "5"]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(
        db.query_i64("SELECT max(version) FROM schema_migrations"),
        1
    );
    assert_eq!(db.content_hash(), before);
}
