//! `backup` and `restore`: consistent under load, exact, refusing what they cannot restore, atomic,
//! and never showing the password.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use app::schema::{GRADES, STUDENTS};
use app::{Backend, DatabaseUrl};
use testkit::{password, Outcome, TestDb};

use crate::{xtask_ok, xtask_on};

/// Runs `cargo xtask ARGS --database-url URL` with `PATH` replaced by `path`.
fn xtask_with_path(url: &str, path: &OsStr, args: &[&str]) -> Outcome {
    let mut all = args.to_vec();
    all.extend(["--database-url", url]);
    testkit::run_xtask_with_env(env!("CARGO_BIN_EXE_xtask"), &all, &[("PATH", path)])
}

/// Restores `file` onto `url` without a safety backup, with `PATH` replaced by `path`.
fn restore_with_path(url: &str, path: &OsStr, file: &Path) -> Outcome {
    let file = file.to_str().unwrap();
    let args = ["restore", "--file", file, "--yes", "--no-safety-backup"];
    xtask_with_path(url, path, &args)
}

/// A backup file name in the test's directory, with the backend's usual extension.
fn backup_path(db: &TestDb, name: &str) -> PathBuf {
    let extension = match db.url.backend() {
        Backend::Sqlite => "db",
        Backend::Postgres => "dump",
    };
    db.dir.path().join(format!("{name}.{extension}"))
}

fn seeded(backend: Backend, seed: &str) -> TestDb {
    let db = TestDb::of(backend);
    xtask_ok(&db, &["seed", "--students", "200", "--seed", seed]);
    db
}

fn backup_to(db: &TestDb, path: &Path) -> Outcome {
    xtask_ok(db, &["backup", "--file", path.to_str().unwrap()])
}

/// The absolute path of `tool` on this machine's `PATH`.
fn real_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}

/// Installs a shell script named `tool` in `bin` (created if needed) and returns a `PATH` with `bin`
/// first.
fn install_wrapper(bin: &Path, tool: &str, script: &str) -> std::ffi::OsString {
    std::fs::create_dir_all(bin).unwrap();
    let file = bin.join(tool);
    std::fs::write(&file, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
    std::env::join_paths(dirs).unwrap()
}

/// Inserts, until stopped, one student and one grade of theirs per transaction, counting commits.
struct Writer {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Writer {
    fn start(db: &TestDb) -> Writer {
        let copy = |table: &app::Table, replace: Option<(&str, &str)>| {
            let names: Vec<&str> = table
                .columns
                .iter()
                .map(|c| c.name)
                .filter(|n| *n != "id")
                .collect();
            let values: Vec<&str> = names
                .iter()
                .map(|n| match replace {
                    Some((column, value)) if column == *n => value,
                    _ => n,
                })
                .collect();
            format!(
                "INSERT INTO {t} ({}) SELECT {} FROM {t} WHERE id = 1;",
                names.join(", "),
                values.join(", "),
                t = table.name
            )
        };
        let begin = match db.url.backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE;",
            Backend::Postgres => "BEGIN;",
        };
        let transaction = format!(
            "{begin}{}{}COMMIT;",
            copy(STUDENTS, None),
            copy(
                GRADES,
                Some(("student_id", "(SELECT max(id) FROM students)"))
            )
        );
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let url = db.url.clone();
        let thread = {
            let (stop, committed) = (stop.clone(), committed.clone());
            std::thread::spawn(move || {
                let mut run: Box<dyn FnMut()> = match &url {
                    DatabaseUrl::Sqlite(path) => {
                        let conn = rusqlite::Connection::open(path).unwrap();
                        conn.busy_timeout(Duration::from_secs(10)).unwrap();
                        Box::new(move || conn.execute_batch(&transaction).unwrap())
                    }
                    DatabaseUrl::Postgres(_) => {
                        let mut client = testkit::connect(&url);
                        Box::new(move || client.batch_execute(&transaction).unwrap())
                    }
                };
                while !stop.load(Ordering::SeqCst) {
                    run();
                    committed.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        Writer {
            stop,
            committed,
            thread,
        }
    }

    fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    fn wait_for(&self, commits: u64) {
        while self.committed() < commits {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let committed = self.committed.clone();
        self.thread.join().expect("the writer did not fail");
        committed.load(Ordering::SeqCst)
    }
}

per_backend!(a_backup_taken_while_a_writer_inserts_restores_to_one_moment);
fn a_backup_taken_while_a_writer_inserts_restores_to_one_moment(backend: Backend) {
    let db = TestDb::of(backend);
    xtask_ok(&db, &["seed", "--students", "2000"]);
    if backend == Backend::Sqlite {
        db.execute("PRAGMA journal_mode = WAL");
    }
    let students = db.query_i64("SELECT count(*) FROM students");
    let grades = db.query_i64("SELECT count(*) FROM grades");
    let file = backup_path(&db, "under_load");

    let writer = Writer::start(&db);
    writer.wait_for(20);
    let before = writer.committed();
    backup_to(&db, &file);
    let after = writer.committed();
    let total = writer.stop();
    assert!(
        after > before,
        "{backend}: the writer made no progress during the backup"
    );

    let restored = TestDb::of(backend);
    xtask_ok(
        &restored,
        &["restore", "--file", file.to_str().unwrap(), "--yes"],
    );
    let added_students = restored.query_i64("SELECT count(*) FROM students") - students;
    let added_grades = restored.query_i64("SELECT count(*) FROM grades") - grades;
    assert_eq!(
        added_students, added_grades,
        "{backend}: each transaction adds one of each, so a backup of one moment has as many"
    );
    let added = added_students as u64;
    assert!(
        (before..=after).contains(&added),
        "{backend}: the backup holds {added} of the writer's transactions, not between {before} and {after} (of {total})"
    );
    for table in ["students", "grades"] {
        assert_eq!(
            restored.query_i64(&format!("SELECT max(id) FROM {table}")),
            restored.query_i64(&format!("SELECT count(*) FROM {table}")),
            "{backend}: {table} ids are contiguous: no row of a later moment, none missing"
        );
    }
    let dangling = restored.query_i64(
        "SELECT (SELECT count(*) FROM grades g WHERE NOT EXISTS (SELECT 1 FROM students s WHERE s.id = g.student_id)) \
         + (SELECT count(*) FROM students s WHERE s.class_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM classes c WHERE c.id = s.class_id)) \
         + (SELECT count(*) FROM classes c WHERE c.teacher_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM teachers t WHERE t.id = c.teacher_id))",
    );
    assert_eq!(dangling, 0, "{backend}: every foreign key resolves");
}

per_backend!(a_restore_over_different_data_yields_exactly_the_backup_and_saves_what_it_replaced);
fn a_restore_over_different_data_yields_exactly_the_backup_and_saves_what_it_replaced(
    backend: Backend,
) {
    let db = seeded(backend, "1");
    let file = backup_path(&db, "seed1");
    let out = backup_to(&db, &file);
    assert!(out.stderr.contains("students 200"), "{out:#?}");
    let backed_up = db.content_hash();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600,
        "{backend}: a backup is readable by its owner only"
    );
    let again = xtask_on(&db, &["backup", "--file", file.to_str().unwrap()]);
    assert!(
        !again.success && again.stderr.contains("--force"),
        "{again:#?}"
    );
    backup_to(&db, &file.with_extension("other"));
    xtask_ok(
        &db,
        &["backup", "--file", file.to_str().unwrap(), "--force"],
    );

    xtask_ok(
        &db,
        &["seed", "--students", "150", "--seed", "2", "--force"],
    );
    let replaced = db.content_hash();
    assert_ne!(replaced, backed_up);
    let out = xtask_ok(&db, &["restore", "--file", file.to_str().unwrap(), "--yes"]);
    assert_eq!(db.content_hash(), backed_up, "{backend}: {out:#?}");

    let safety = out
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("safety copy of ")?.split_once(": "))
        .and_then(|(_, rest)| rest.split(" (").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{backend}: no safety backup path in {out:#?}"));
    let name = safety.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("toefl_pre_restore_"), "{name}");
    let saved = TestDb::of(backend);
    xtask_ok(
        &saved,
        &["restore", "--file", safety.to_str().unwrap(), "--yes"],
    );
    std::fs::remove_file(&safety).unwrap();
    assert_eq!(
        saved.content_hash(),
        replaced,
        "{backend}: the safety backup holds the data the restore replaced"
    );
}

per_backend!(files_that_cannot_be_restored_are_refused_and_the_target_is_unchanged);
fn files_that_cannot_be_restored_are_refused_and_the_target_is_unchanged(backend: Backend) {
    let other_backend = match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    };
    let db = &seeded(backend, "1");
    let other_db = seeded(other_backend, "1");
    let own = &backup_path(db, "good");
    let other = &backup_path(&other_db, "good");
    backup_to(db, own);
    backup_to(&other_db, other);
    let dir = db.dir.path();
    let garbage = dir.join("garbage.db");
    std::fs::write(&garbage, "this is not a backup\n").unwrap();
    let gzip = dir.join("backup.dump.gz");
    std::fs::write(&gzip, b"\x1f\x8b\x08\x00rest").unwrap();
    let truncated = dir.join("truncated");
    let bytes = std::fs::read(own).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let export = dir.join("export.db");
    std::fs::write(
        &export,
        r#"{"format": "toefl-dashboard-export", "version": 1, "tables": {}}"#,
    )
    .unwrap();
    let missing = dir.join("missing.db");
    let cases: [(&Path, &str); 6] = [
        (&garbage, "not a backup this tool knows"),
        (&gzip, "gzip-compressed"),
        (&truncated, "damaged"),
        (&export, "cargo xtask import"),
        (other, "cargo xtask export"),
        (&missing, "cannot read"),
    ];
    let before = db.content_hash();
    for (file, expected) in cases {
        let out = xtask_on(db, &["restore", "--file", file.to_str().unwrap(), "--yes"]);
        assert!(
            !out.success && out.code == Some(1) && out.stderr.contains(expected),
            "{backend}: {file:?} should fail with {expected:?}: {out:#?}"
        );
        assert_eq!(
            db.content_hash(),
            before,
            "{backend}: {file:?} changed the target"
        );
    }

    xtask_ok(db, &["seed", "--students", "20", "--force"]);
    let before = db.content_hash();
    let out = xtask_on(db, &["restore", "--file", own.to_str().unwrap()]);
    assert_eq!(out.code, Some(3), "{backend}: {out:#?}");
    assert!(out.stderr.contains("--yes"), "{out:#?}");
    assert_eq!(db.content_hash(), before, "{backend}: refused, yet changed");
}

#[test]
fn a_dump_too_new_for_pg_restore_is_refused_naming_both_versions() {
    let db = seeded(Backend::Postgres, "1");
    let file = backup_path(&db, "good");
    backup_to(&db, &file);
    let mut bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..5], b"PGDMP");
    bytes[6] = 99; // the archive format's minor version
    let too_new = db.dir.path().join("too_new.dump");
    std::fs::write(&too_new, bytes).unwrap();
    xtask_ok(&db, &["seed", "--students", "20", "--force"]);
    let before = db.content_hash();
    let out = xtask_on(
        &db,
        &["restore", "--file", too_new.to_str().unwrap(), "--yes"],
    );
    assert!(!out.success, "{out:#?}");
    assert!(
        out.stderr.contains("archive format 1.99") && out.stderr.contains("pg_restore 15."),
        "{out:#?}"
    );
    assert_eq!(db.content_hash(), before);
}

#[test]
fn a_pg_dump_older_than_the_server_is_refused_naming_both_versions() {
    let db = seeded(Backend::Postgres, "1");
    let path = install_wrapper(
        &db.dir.path().join("bin"),
        "pg_dump",
        r#"[ "$1" = --version ] && echo "pg_dump (PostgreSQL) 14.1" && exit 0; exit 1"#,
    );
    let file = backup_path(&db, "old");
    let out = xtask_with_path(
        &db.url_arg(),
        &path,
        &["backup", "--file", file.to_str().unwrap()],
    );
    assert!(!out.success, "{out:#?}");
    assert!(
        out.stderr
            .contains("pg_dump 14.1 is older than the server, PostgreSQL 15."),
        "{out:#?}"
    );
    assert!(!file.exists());
}

#[test]
fn a_restore_whose_pg_restore_is_killed_midway_leaves_the_target_unchanged() {
    let db = seeded(Backend::Postgres, "1");
    let file = backup_path(&db, "good");
    backup_to(&db, &file);
    xtask_ok(
        &db,
        &["seed", "--students", "150", "--seed", "2", "--force"],
    );
    let before = db.content_hash();

    // Midway, for sure: an event trigger makes the restore's first CREATE TABLE (after it dropped
    // every old table) wait for an advisory lock this test holds. The wrapper lets the checks (which
    // only read the file) through, and kills the restore once its session waits for that lock.
    db.execute(
        "CREATE FUNCTION hold_restore() RETURNS event_trigger LANGUAGE plpgsql \
         AS $$ BEGIN PERFORM pg_advisory_xact_lock(4242); END $$; \
         CREATE EVENT TRIGGER hold_restore ON ddl_command_start WHEN TAG IN ('CREATE TABLE') \
         EXECUTE FUNCTION hold_restore();",
    );
    let real = real_tool("pg_restore");
    let script = format!(
        r#"case " $* " in *" --dbname "*) ;; *) exec '{real}' "$@";; esac
'{real}' "$@" & pid=$!
until [ "$(psql -Atc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore' AND wait_event = 'advisory'")" != 0 ]; do sleep 0.05; done
kill -KILL $pid
exit 137"#,
        real = real.display()
    );
    let path = install_wrapper(&db.dir.path().join("bin"), "pg_restore", &script);
    let mut blocker = testkit::connect(&db.url);
    blocker
        .batch_execute("SELECT pg_advisory_lock(4242)")
        .unwrap();
    let out = restore_with_path(&db.url_arg(), &path, &file);
    blocker
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
    assert!(!out.success, "{out:#?}");
    assert!(
        out.stderr.contains("pg_restore failed") && out.stderr.contains("is unchanged"),
        "{out:#?}"
    );
    assert_eq!(
        db.content_hash(),
        before,
        "the killed restore changed the target"
    );
}

#[test]
fn the_password_appears_neither_in_output_nor_in_child_arguments() {
    let db = seeded(Backend::Postgres, "1");
    let url = db.url_with_password();
    assert!(url.contains(password()));
    let bin = db.dir.path().join("bin");
    let log = db.dir.path().join("arguments.log");
    let mut path = Default::default();
    for tool in ["pg_dump", "pg_restore"] {
        let script = format!(
            r#"echo "{tool} $*" >> '{log}'; exec '{real}' "$@""#,
            log = log.display(),
            real = real_tool(tool).display()
        );
        path = install_wrapper(&bin, tool, &script);
    }
    let file = backup_path(&db, "with_password");
    let before = db.content_hash();
    let outputs = [
        xtask_with_path(&url, &path, &["backup", "--file", file.to_str().unwrap()]),
        restore_with_path(&url, &path, &file),
    ];
    let arguments = std::fs::read_to_string(&log).unwrap();
    assert!(
        arguments.contains("pg_dump --format=custom") && arguments.contains("pg_restore --clean"),
        "the tools ran through the wrappers: {arguments}"
    );
    for out in &outputs {
        assert!(out.success, "{out:#?}");
        assert!(
            !out.stdout.contains(password()) && !out.stderr.contains(password()),
            "{out:#?}"
        );
    }
    assert!(!arguments.contains(password()), "{arguments}");
    assert_eq!(db.content_hash(), before);
}

#[test]
fn missing_postgresql_tools_say_how_to_install_them() {
    let db = seeded(Backend::Postgres, "1");
    let file = backup_path(&db, "good");
    backup_to(&db, &file);
    let empty = empty_dir(&db);
    let out = xtask_with_path(
        &db.url_arg(),
        empty.as_os_str(),
        &[
            "backup",
            "--file",
            db.dir.path().join("b.dump").to_str().unwrap(),
        ],
    );
    assert!(
        out.stderr.contains(
            "pg_dump not found on PATH: install the PostgreSQL client (Debian: apt-get install \
             postgresql-client; Windows: winget install PostgreSQL.PostgreSQL.17, then add \
             C:\\Program Files\\PostgreSQL\\17\\bin to PATH)"
        ),
        "{out:#?}"
    );
    let out = xtask_with_path(
        &db.url_arg(),
        empty.as_os_str(),
        &["restore", "--file", file.to_str().unwrap(), "--yes"],
    );
    assert!(
        out.stderr
            .contains("pg_restore not found on PATH: install the PostgreSQL client"),
        "{out:#?}"
    );
}

/// An empty directory inside the test's directory, as a `PATH` with no tools at all.
fn empty_dir(db: &TestDb) -> PathBuf {
    let dir = db.dir.path().join("empty");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn restoring_the_sqlite_target_onto_itself_is_refused_at_once() {
    let db = seeded(Backend::Sqlite, "1");
    let before = db.content_hash();
    let target = db.url.sqlite_path().unwrap().to_str().unwrap().to_string();
    let out = xtask_on(&db, &["restore", "--file", &target, "--yes"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr.contains("is the database being restored onto"),
        "{}",
        out.stderr
    );
    assert_eq!(db.content_hash(), before);
}

#[test]
fn a_refused_restore_onto_a_missing_sqlite_file_leaves_nothing_behind() {
    let source = TestDb::sqlite();
    xtask_ok(&source, &["seed", "--students", "20"]);
    let file = source.dir.path().join("backup.db");
    xtask_ok(&source, &["backup", "--file", file.to_str().unwrap()]);
    let target = TestDb::sqlite();
    let refused = xtask_on(&target, &["restore", "--file", file.to_str().unwrap()]);
    assert_eq!(refused.code, Some(3), "{refused:#?}");
    assert!(
        refused.stderr.contains("does not exist yet"),
        "{}",
        refused.stderr
    );
    assert!(
        !target.url.sqlite_path().unwrap().exists(),
        "nothing created"
    );
    xtask_ok(
        &target,
        &["restore", "--file", file.to_str().unwrap(), "--yes"],
    );
    assert_eq!(target.content_hash(), source.content_hash());
}
