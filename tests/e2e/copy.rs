//! `copy --to URL`: every row of one database into another with no file in between, in every
//! direction, with what `import` guarantees the target, from one snapshot of the source.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use app::Backend;
use testkit::{Outcome, TestDb};

use crate::export_import::fill_with_fixture;
use crate::prune::names_in;
use crate::scripting::{json_line, terminal_session};
use crate::xtask_ok;

/// Runs `cargo xtask copy --to TO ARGS` on `source`, with safety copies going to `backups`.
fn copy_to(source: &TestDb, to: &str, args: &[&str], backups: &Path) -> Outcome {
    let from = source.url_arg();
    let mut all = vec!["copy", "--to", to, "--database-url", &from];
    all.extend(args);
    let env = [("TOEFL_BACKUPS_DIR", backups.as_os_str())];
    testkit::run_xtask_with_env(env!("CARGO_BIN_EXE_xtask"), &all, &env)
}

/// Copies `source` into `target`, confirmed; fails the test unless it succeeds.
fn copy_ok(source: &TestDb, target: &TestDb, args: &[&str]) -> Outcome {
    let outcome = copy_to(source, &target.url_arg(), args, target.dir.path());
    assert!(outcome.success, "copy into {}: {outcome:#?}", target.url);
    outcome
}

/// A copy from a database of `from` into a new one of `to` holds exactly what exporting the source
/// and importing the file gives.
fn copy_gives_what_export_then_import_gives(from: Backend, to: Backend) {
    let source = TestDb::of(from);
    fill_with_fixture(&source, true);
    let file = source.dir.path().join("source.json");
    xtask_ok(&source, &["export", "--file", file.to_str().unwrap()]);
    let imported = TestDb::of(to);
    let file = file.to_str().unwrap();
    xtask_ok(
        &imported,
        &["import", "--file", file, "--yes", "--no-safety-backup"],
    );

    let copied = TestDb::of(to);
    copy_ok(&source, &copied, &["--yes", "--no-safety-backup"]);
    let grades = source.query_i64("SELECT count(*) FROM grades");
    assert!(grades > 0);
    assert_eq!(copied.query_i64("SELECT count(*) FROM grades"), grades);
    let big_text = "Grande texto — 😀 ".chars().count() as i64 * 50_000;
    assert_eq!(
        copied.query_i64("SELECT CAST(length(notes) AS BIGINT) FROM students WHERE id = 3"),
        big_text,
        "the 1 MB text"
    );
    assert_eq!(copied.content_hash(), imported.content_hash());
    if from == to {
        assert_eq!(copied.content_hash(), source.content_hash());
    }
}

/// Defines, for each direction `name: from -> to`, a test that a copy that way gives what export
/// then import gives.
macro_rules! per_direction {
    ($($name:ident: $from:ident -> $to:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            copy_gives_what_export_then_import_gives(Backend::$from, Backend::$to);
        }
    )*};
}

per_direction!(
    copy_from_sqlite_to_postgres_gives_what_export_then_import_gives: Sqlite -> Postgres,
    copy_from_postgres_to_sqlite_gives_what_export_then_import_gives: Postgres -> Sqlite,
    copy_from_postgres_to_postgres_gives_what_export_then_import_gives: Postgres -> Postgres,
    copy_from_sqlite_to_sqlite_gives_what_export_then_import_gives: Sqlite -> Sqlite,
);

per_backend!(copy_replaces_the_data_and_saves_what_the_target_held);
fn copy_replaces_the_data_and_saves_what_the_target_held(backend: Backend) {
    let source = TestDb::sqlite();
    xtask_ok(&source, &["seed", "--students", "12", "--seed", "4"]);
    let target = TestDb::of(backend);
    xtask_ok(&target, &["seed", "--students", "30", "--seed", "5"]);
    let before = target.dir.path().join("before.json");
    xtask_ok(&target, &["export", "--file", before.to_str().unwrap()]);

    let outcome = copy_ok(&source, &target, &["--yes", "--json"]);
    let line = json_line(&outcome);
    assert_eq!(line["command"], "copy");
    assert_eq!(line["rows"]["students"], 12);
    assert_eq!(target.query_i64("SELECT count(*) FROM students"), 12);
    let saved = line["safety_backup"]
        .as_str()
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        saved.starts_with(target.dir.path().to_str().unwrap()),
        "{saved}"
    );
    // The safety copy holds what the target held: importing it gives it back.
    let saved_rows = std::fs::read_to_string(saved).unwrap();
    let before_rows = std::fs::read_to_string(&before).unwrap();
    let tables = |text: &str| text[text.find("\"tables\"").unwrap()..].to_string();
    assert_eq!(tables(&saved_rows), tables(&before_rows));
}

#[test]
fn copy_into_an_empty_postgres_database_creates_the_schema_and_ids_continue() {
    let source = TestDb::sqlite();
    fill_with_fixture(&source, false);
    let target = TestDb::postgres();
    let outcome = copy_ok(&source, &target, &["--yes"]);
    assert!(
        outcome.stderr.contains("holds no data"),
        "{}",
        outcome.stderr
    );
    target.execute("INSERT INTO teachers (name, created_at) VALUES ('Nova', now())");
    assert_eq!(
        target.query_i64("SELECT id FROM teachers WHERE name = 'Nova'"),
        8,
        "the identity continues past the highest copied id (7)"
    );
}

#[test]
fn copy_without_a_terminal_or_yes_refuses_and_touches_nothing() {
    let source = TestDb::sqlite();
    xtask_ok(&source, &["seed", "--students", "5"]);
    let target = TestDb::postgres();
    xtask_ok(&target, &["seed", "--students", "7"]);
    let before = target.content_hash();
    let outcome = copy_to(&source, &target.url_arg(), &[], target.dir.path());
    assert_eq!(outcome.code, Some(3), "{outcome:#?}");
    assert!(outcome.stderr.contains("--yes"), "{}", outcome.stderr);
    assert_eq!(target.content_hash(), before);
    assert!(names_in(target.dir.path()).is_empty(), "no safety copy");
}

#[test]
fn on_a_terminal_copy_asks_first_showing_the_redacted_target_and_what_it_holds() {
    let source = TestDb::sqlite();
    xtask_ok(&source, &["seed", "--students", "20"]);
    let target = TestDb::postgres();
    xtask_ok(&target, &["seed", "--students", "7"]);
    let before = target.content_hash();
    let from = source.url_arg();
    let to = target.url_with_password();
    let args = [
        "copy",
        "--to",
        &to,
        "--no-safety-backup",
        "--database-url",
        &from,
    ];

    let (success, screen) = terminal_session(&args, "n\n");
    assert!(!success, "{screen}");
    assert!(
        screen.contains("the copy of sqlite:") && screen.contains("students 7"),
        "{screen}"
    );
    assert!(screen.contains(":***@"), "the target, redacted: {screen}");
    assert!(screen.contains("cancelled"), "{screen}");
    assert!(!screen.contains(testkit::password()), "{screen}");
    assert_eq!(target.content_hash(), before);

    let (success, screen) = terminal_session(&args, "y\n");
    assert!(success, "{screen}");
    assert!(
        screen.contains("copied") && screen.contains("rows/s"),
        "a progress line, then the result: {screen}"
    );
    assert!(!screen.contains(testkit::password()), "{screen}");
    assert_eq!(target.query_i64("SELECT count(*) FROM students"), 20);
}

/// Other spellings of `db`'s URL that name the same database.
fn spellings_of(db: &TestDb) -> Vec<String> {
    let url = db.url_arg();
    match db.url.backend() {
        Backend::Sqlite => {
            let path = db.url.sqlite_path().unwrap();
            let dir = path.parent().unwrap();
            let link = dir.join("link.db");
            std::os::unix::fs::symlink(path, &link).unwrap();
            let hard = dir.join("hard.db");
            std::fs::hard_link(path, &hard).unwrap();
            vec![
                format!("sqlite:{}", path.display()),
                format!("sqlite://{}/./toefl.db", dir.display()),
                format!("sqlite://{}/../{}/toefl.db", dir.display(), {
                    dir.file_name().unwrap().to_str().unwrap()
                }),
                format!("sqlite://{}", link.display()),
                format!("sqlite://{}", hard.display()),
            ]
        }
        Backend::Postgres => {
            let other_scheme = match url.strip_prefix("postgresql://") {
                Some(rest) => format!("postgres://{rest}"),
                None => url.replacen("postgres://", "postgresql://", 1),
            };
            let separator = if url.contains('?') { '&' } else { '?' };
            vec![
                other_scheme,
                format!("{url}{separator}application_name=another"),
                db.url_with_password(),
            ]
        }
    }
}

per_backend!(copy_onto_the_same_database_however_spelled_is_refused_before_anything_changes);
fn copy_onto_the_same_database_however_spelled_is_refused_before_anything_changes(
    backend: Backend,
) {
    let db = TestDb::of(backend);
    xtask_ok(&db, &["seed", "--students", "6"]);
    let before = db.content_hash();
    let backups = tempfile::tempdir().unwrap();
    for to in spellings_of(&db) {
        let outcome = copy_to(&db, &to, &["--yes"], backups.path());
        assert_eq!(outcome.code, Some(1), "{to}: {outcome:#?}");
        assert!(
            outcome.stderr.contains("are the same database"),
            "{to}: {}",
            outcome.stderr
        );
        assert!(
            !outcome.stderr.contains(testkit::password()),
            "{}",
            outcome.stderr
        );
        assert!(names_in(backups.path()).is_empty(), "{to}: no safety copy");
        assert_eq!(db.content_hash(), before, "{to}");
    }
}

/// A SQLite source holding rows that its own checks would refuse, written with them off.
fn broken_source(sql: &str) -> TestDb {
    let source = TestDb::sqlite();
    xtask_ok(&source, &["seed", "--students", "8", "--seed", "2"]);
    source.execute(&format!(
        "PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON; {sql}"
    ));
    source
}

/// Copies `source` into a seeded database of `backend`: the copy must fail with `expected` and leave
/// the target exactly as it was.
fn copy_fails_and_changes_nothing(source: &TestDb, backend: Backend, expected: &str) {
    let target = TestDb::of(backend);
    xtask_ok(&target, &["seed", "--students", "3", "--seed", "5"]);
    let before = target.content_hash();
    let outcome = copy_to(
        source,
        &target.url_arg(),
        &["--yes", "--no-safety-backup"],
        target.dir.path(),
    );
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(
        outcome.stderr.contains(expected) && outcome.stderr.contains("nothing was changed"),
        "expected {expected:?} in {}",
        outcome.stderr
    );
    assert_eq!(target.content_hash(), before, "{}", target.url);
}

per_backend!(copy_refuses_a_value_its_column_forbids);
fn copy_refuses_a_value_its_column_forbids(backend: Backend) {
    let source = broken_source("UPDATE grades SET kind = 'bogus' WHERE id = 5");
    copy_fails_and_changes_nothing(
        &source,
        backend,
        "table grades, row 5 (id 5), column kind: holds Text(\"bogus\"), which the check",
    );
}

per_backend!(copy_refuses_a_reference_to_a_missing_row);
fn copy_refuses_a_reference_to_a_missing_row(backend: Backend) {
    let source = broken_source("UPDATE grades SET student_id = 999999 WHERE id = 7");
    copy_fails_and_changes_nothing(
        &source,
        backend,
        "table grades, row 7 (id 7), column student_id: refers to students id 999999",
    );
}

per_backend!(copy_refuses_a_row_that_breaks_a_row_check);
fn copy_refuses_a_row_that_breaks_a_row_check(backend: Backend) {
    let source = TestDb::sqlite();
    fill_with_fixture(&source, false);
    source.execute(
        "PRAGMA ignore_check_constraints = ON; UPDATE students SET overall_band = 5.0 WHERE id = 4",
    );
    copy_fails_and_changes_nothing(
        &source,
        backend,
        "table students, row 4 (id 4): the row breaks the check students_overall_band_average",
    );
}

per_backend!(copy_of_a_version_1_database_gives_what_export_then_import_gives);
fn copy_of_a_version_1_database_gives_what_export_then_import_gives(backend: Backend) {
    let source = TestDb::sqlite();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/fixtures/v1/backup.db");
    std::fs::copy(fixture, source.url.sqlite_path().unwrap()).unwrap();
    assert_eq!(
        source.query_i64("SELECT max(version) FROM schema_migrations"),
        1
    );
    let file = source.dir.path().join("v1.json");
    xtask_ok(&source, &["export", "--file", file.to_str().unwrap()]);
    let imported = TestDb::of(backend);
    let file = file.to_str().unwrap();
    xtask_ok(&imported, &["import", "--file", file, "--yes"]);

    let copied = TestDb::of(backend);
    let outcome = copy_ok(&source, &copied, &["--yes", "--json"]);
    assert_eq!(
        json_line(&outcome)["schema_version"],
        1,
        "the source's version"
    );
    assert!(
        outcome.stderr.contains("brought forward to"),
        "{}",
        outcome.stderr
    );
    assert!(copied.query_i64("SELECT count(*) FROM grades") > 0);
    assert_eq!(copied.content_hash(), imported.content_hash());
    assert_eq!(
        source.query_i64("SELECT max(version) FROM schema_migrations"),
        1,
        "the source is read, not migrated"
    );
}

#[test]
fn copy_refuses_text_that_postgres_cannot_store() {
    let source = broken_source("UPDATE students SET notes = 'a' || char(0) || 'b' WHERE id = 2");
    copy_fails_and_changes_nothing(
        &source,
        Backend::Postgres,
        "table students, row 2 (id 2), column notes: holds a NUL character",
    );
}

#[test]
fn a_failed_copy_into_a_new_sqlite_file_leaves_no_file() {
    let source = broken_source("UPDATE grades SET student_id = 999999 WHERE id = 1");
    let target = TestDb::sqlite();
    let outcome = copy_to(&source, &target.url_arg(), &["--yes"], target.dir.path());
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(
        !target.url.sqlite_path().unwrap().exists(),
        "the file it created is gone"
    );
}

/// Inserts into `db`, until `stop`, one student and one grade of theirs per transaction, as the app
/// would: in every committed state, students and grades grow together. Returns the pairs written.
fn write_pairs(db: &TestDb, stop: &AtomicBool) -> i64 {
    let student = "INSERT INTO students (id, name, created_at) VALUES \
                   ((SELECT max(id) + 1 FROM students), 'Nova', '2025-01-01 00:00:00.000000')";
    let grade = "INSERT INTO grades (id, student_id, taken_on, kind, created_at) VALUES \
                 ((SELECT max(id) + 1 FROM grades), (SELECT max(id) FROM students), '2025-01-01', \
                 'mock', '2025-01-01 00:00:00.000000')";
    let mut pairs = 0;
    let mut write = |run: &mut dyn FnMut(&str) -> Result<(), String>| {
        while !stop.load(Ordering::Relaxed) {
            run(&format!("BEGIN; {student}; {grade}; COMMIT")).unwrap();
            pairs += 1;
        }
    };
    match &db.url {
        app::DatabaseUrl::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            // The copy holds its read lock for a while: the app waits, as it would.
            conn.busy_timeout(Duration::from_secs(60)).unwrap();
            write(&mut |sql| conn.execute_batch(sql).map_err(|e| e.to_string()));
        }
        app::DatabaseUrl::Postgres(_) => {
            let mut client = testkit::connect(&db.url);
            write(&mut |sql| client.batch_execute(sql).map_err(|e| e.to_string()));
        }
    }
    pairs
}

per_backend!(copy_reads_one_snapshot_while_the_app_writes);
fn copy_reads_one_snapshot_while_the_app_writes(backend: Backend) {
    let source = TestDb::of(backend);
    xtask_ok(&source, &["seed", "--students", "3000", "--seed", "8"]);
    let gap = source.query_i64("SELECT count(*) FROM grades")
        - source.query_i64("SELECT count(*) FROM students");
    let target = TestDb::sqlite();
    let stop = AtomicBool::new(false);
    let (pairs, outcome) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_pairs(&source, &stop));
        // The app is writing before the copy starts, and goes on until it ends.
        while source.query_i64("SELECT count(*) FROM students") < 3010 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let outcome = copy_to(&source, &target.url_arg(), &["--yes"], target.dir.path());
        if outcome.success {
            let copied = target.query_i64("SELECT count(*) FROM students");
            while source.query_i64("SELECT count(*) FROM students") <= copied {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        stop.store(true, Ordering::Relaxed);
        (writer.join().unwrap(), outcome)
    });
    assert!(outcome.success, "{outcome:#?}");
    let students = target.query_i64("SELECT count(*) FROM students");
    let grades = target.query_i64("SELECT count(*) FROM grades");
    assert_eq!(grades - students, gap, "students and grades of one moment");
    assert!(students >= 3010, "the copy saw the app's first writes");
    assert_eq!(
        source.query_i64("SELECT count(*) FROM students"),
        3000 + pairs,
        "the app's writes all went in"
    );
}
