//! `export` and `import`: the JSON format, round trips between the backends, replacing data, and bad
//! files that must leave the target exactly as it was.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use app::{Backend, SCHEMA_VERSION};
use testkit::{Outcome, TestDb};

use crate::{newer_version_refusal, without_time_and_source, xtask_ok, xtask_on, NEWER_VERSION};

/// Rows that exercise every type and the values that are easy to get wrong, as SQL that both backends
/// accept: both TOEFL scales, each alone, both in one row, a comparable total beside bands, and no
/// figures at all; with `big_text`, one student's notes are a 1 MB text.
fn fixture_sql(big_text: bool) -> String {
    let big = if big_text {
        format!("'{}'", "Grande texto — 😀 ".repeat(50_000))
    } else {
        "NULL".into()
    };
    format!(
        "INSERT INTO users (id, username, email, password_hash, role, is_active, created_at, last_login_at) VALUES
           (1, 'admin', 'admin@escola.example', 'pbkdf2:x', 'admin', '1', '2024-02-29 23:59:59.000001', NULL),
           (2, 'joão.açaí', 'joao@escola.example', 'pbkdf2:y', 'teacher', '0', '2024-01-01 00:00:00.000000', '2025-12-31 12:34:56.999999');
         INSERT INTO teachers (id, user_id, name, email, phone, created_at) VALUES
           (1, 2, 'João Açaí 🎓', '', NULL, '2024-01-02 03:04:05.060708'),
           (7, NULL, 'مريم العربية', NULL, '+55 11 9999-0000', '2024-03-01 00:00:00.000001');
         INSERT INTO classes (id, name, teacher_id, cefr_target, schedule, starts_on, ends_on, created_at) VALUES
           (1, 'Turma \"A\" 2024', 1, 'B2', 'Seg/Qua 19h', '2024-02-29', '2024-12-31', '2024-01-05 08:00:00.000000'),
           (2, 'Sem professor', NULL, NULL, NULL, NULL, NULL, '2024-01-06 08:00:00.000000');
         INSERT INTO students (id, name, email, class_id, reading, listening, speaking, writing, total_score, cefr_level, notes, created_at, updated_at) VALUES
           (1, 'Zoë O''Brien', 'zoe@example.com', 1, 30, 0, 15, 22, 67, 'B1', 'quotes '' \" and back\\slash \\n, a tab\tand
a newline', '2024-02-29 12:00:00.500000', NULL),
           (2, 'שלום עליכם', '', 2, NULL, NULL, NULL, NULL, NULL, NULL, '', '2024-03-01 00:00:00.000000', '2024-03-02 00:00:00.000001'),
           (3, 'Big notes', NULL, NULL, 1, 2, 3, 4, 10, 'A1', {big}, '2024-03-03 00:00:00.000000', NULL);
         INSERT INTO grades (id, student_id, taken_on, kind, reading, listening, speaking, writing, total_score, cefr_level, percentile, comments, created_at) VALUES
           (1, 1, '2024-02-29', 'placement', 30, 0, 15, 22, 67, 'B1', 0.1, 'emoji 👩‍🏫 and control \u{7}', '2024-02-29 23:59:59.999999'),
           (2, 1, '2023-12-31', 'mock', NULL, NULL, NULL, NULL, NULL, NULL, 33.333333333333336, NULL, '2024-01-01 00:00:00.000000'),
           (9007199254740993, 2, '2000-02-29', 'official', 1, 1, 1, 1, 4, 'A1', 1e-300, '', '2024-01-01 00:00:00.000001'),
           (9007199254740995, 3, '2024-06-01', 'official', 30, 30, 30, 30, 120, 'C2', 100.0, NULL, '2024-06-01 00:00:00.000000');
         INSERT INTO students (id, name, class_id, total_score, cefr_level, created_at, reading_band, listening_band, speaking_band, writing_band, overall_band) VALUES
           (4, 'Nova Escala', 1, 88, 'B2', '2026-01-22 09:00:00.000000', 4.5, 5.0, 4.0, 4.5, 4.5);
         INSERT INTO students (id, name, reading, listening, speaking, writing, total_score, cefr_level, created_at, reading_band, listening_band, speaking_band, writing_band, overall_band) VALUES
           (5, 'Duas Escalas', 25, 26, 24, 27, 102, 'C1', '2026-02-01 09:00:00.000000', 5.0, 5.5, 5.0, 5.0, 5.0);
         INSERT INTO grades (id, student_id, taken_on, kind, reading, listening, speaking, writing, total_score, cefr_level, percentile, comments, created_at, reading_band, listening_band, speaking_band, writing_band, overall_band) VALUES
           (3, 4, '2026-01-21', 'official', NULL, NULL, NULL, NULL, 88, 'B2', 73.3, 'bandas e total', '2026-01-21 10:00:00.000000', 4.5, 5.0, 4.0, 4.5, 4.5),
           (4, 4, '2028-02-01', 'mock', NULL, NULL, NULL, NULL, NULL, 'B2', NULL, 'só bandas', '2028-02-01 10:00:00.000000', 4.0, 4.0, 4.5, 4.5, 4.5),
           (5, 5, '2026-02-01', 'official', 25, 26, 24, 27, 102, 'C1', 85.0, NULL, '2026-02-01 10:00:00.000000', 5.0, 5.5, 5.0, 5.0, 5.0);"
    )
}

/// A database of `db`'s backend with the schema and [`fixture_sql`]'s rows.
pub fn fill_with_fixture(db: &TestDb, big_text: bool) {
    xtask_ok(db, &["migrate"]);
    let utc = match db.url.backend() {
        app::Backend::Sqlite => "",
        app::Backend::Postgres => "SET TIME ZONE 'UTC';",
    };
    db.execute(&format!("{utc}{}", fixture_sql(big_text)));
}

/// Exports `db` to `name` in its scratch directory; returns the path and the file's text.
fn export(db: &TestDb, name: &str) -> (PathBuf, String) {
    let path = db.dir.path().join(name);
    xtask_ok(db, &["export", "--file", path.to_str().unwrap()]);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

/// Imports `file` into `db`, confirmed, without a safety export.
fn import(db: &TestDb, file: &Path) -> Outcome {
    let file = file.to_str().unwrap();
    xtask_on(
        db,
        &["import", "--file", file, "--yes", "--no-safety-backup"],
    )
}

/// The file from its `tables` on.
fn tables(export: &str) -> &str {
    &export[export.find("\n \"tables\"").expect("a tables field")..]
}

per_backend!(export_of_a_small_database_matches_the_snapshot);
fn export_of_a_small_database_matches_the_snapshot(backend: Backend) {
    let db = TestDb::of(backend);
    fill_with_fixture(&db, false);
    let (path, text) = export(&db, "small.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    let source = format!("\"source\": {{\"backend\": \"{backend}\"}}");
    assert!(text.contains(&source), "{text}");
    // One snapshot for both backends: the same data gives the same file from either, but for when
    // and where from.
    insta::with_settings!({filters => vec![
        (r#""exported_at": "[^"]+""#, r#""exported_at": "[exported_at]""#),
        (r#""source": \{"backend": "[a-z]+"\}"#, r#""source": {"backend": "[backend]"}"#),
    ]}, {
        insta::assert_snapshot!("small_export", text);
    });
}

#[test]
fn round_trips_between_the_backends_keep_every_value() {
    let from_sqlite = TestDb::sqlite();
    let from_postgres = TestDb::postgres();
    fill_with_fixture(&from_sqlite, true);
    fill_with_fixture(&from_postgres, true);

    // SQLite -> JSON -> PostgreSQL -> JSON -> SQLite -> JSON
    let (a_path, a) = export(&from_sqlite, "a.json");
    let postgres = TestDb::postgres();
    assert!(import(&postgres, &a_path).success);
    let (b_path, b) = export(&postgres, "b.json");
    let sqlite = TestDb::sqlite();
    assert!(import(&sqlite, &b_path).success);
    let (_, c) = export(&sqlite, "c.json");
    // PostgreSQL -> JSON -> SQLite -> JSON
    let (d_path, d) = export(&from_postgres, "d.json");
    let sqlite_again = TestDb::sqlite();
    assert!(import(&sqlite_again, &d_path).success);
    let (_, e) = export(&sqlite_again, "e.json");

    for (name, other) in [("b", &b), ("c", &c), ("d", &d), ("e", &e)] {
        // Not assert_eq: the files hold a 1 MB text.
        assert!(
            without_time_and_source(other) == without_time_and_source(&a),
            "export {name} differs from the first"
        );
    }
    for expected in [
        "\"id\":9007199254740993,",
        "\"percentile\":0.1,",
        "\"percentile\":33.333333333333336,",
        "\"percentile\":1e-300,",
        "\"percentile\":100.0,",
        "\"taken_on\":\"2024-02-29\"",
        "\"created_at\":\"2024-02-29T23:59:59.000001Z\"",
        "\"email\":\"\",",
        "\"email\":null,",
        "\"is_active\":false,",
        "back\\\\slash \\\\n, a tab\\tand\\na newline",
        "emoji 👩‍🏫 and control \\u0007",
        "\"name\":\"שלום עליכם\"",
    ] {
        assert!(a.contains(expected), "{expected} not in the export");
    }
    assert!(tables(&a).len() > 1_000_000);
    assert_eq!(
        postgres.query_i64("SELECT max(id) FROM grades"),
        9007199254740995
    );
}

per_backend!(import_replaces_all_existing_data_exactly);
fn import_replaces_all_existing_data_exactly(backend: Backend) {
    let source = TestDb::sqlite();
    fill_with_fixture(&source, false);
    let (file, expected) = export(&source, "fixture.json");
    let db = TestDb::of(backend);
    xtask_ok(&db, &["seed", "--students", "30", "--seed", "3"]);
    let outcome = import(&db, &file);
    assert!(outcome.success, "{outcome:#?}");
    assert!(outcome.stderr.contains("imported"), "{}", outcome.stderr);
    let (_, now) = export(&db, "after.json");
    assert_eq!(tables(&now), tables(&expected), "{}", db.url);
    assert_eq!(db.query_i64("SELECT count(*) FROM grades"), 7);
}

#[test]
fn import_saves_the_current_data_first_unless_told_not_to() {
    let source = TestDb::sqlite();
    fill_with_fixture(&source, false);
    let (file, _) = export(&source, "fixture.json");
    let db = TestDb::sqlite();
    xtask_ok(&db, &["seed", "--students", "5"]);
    let (_, before) = export(&db, "before.json");
    let outcome = xtask_ok(&db, &["import", "--file", file.to_str().unwrap(), "--yes"]);
    let saved = outcome
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("safety copy of ")?.split_once(": "))
        .and_then(|(_, rest)| rest.split(" (").next())
        .unwrap_or_else(|| panic!("no safety export reported: {}", outcome.stderr));
    let saved = PathBuf::from(saved);
    let text = std::fs::read_to_string(&saved).unwrap();
    std::fs::remove_file(&saved).unwrap();
    assert!(saved
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("toefl_pre_import_"));
    assert_eq!(tables(&text), tables(&before));
}

#[test]
fn import_without_a_terminal_or_yes_refuses_and_touches_nothing() {
    let source = TestDb::sqlite();
    fill_with_fixture(&source, false);
    let (file, _) = export(&source, "fixture.json");
    let db = TestDb::sqlite();
    xtask_ok(&db, &["seed", "--students", "5"]);
    let before = db.content_hash();
    let outcome = xtask_on(&db, &["import", "--file", file.to_str().unwrap()]);
    assert_eq!(outcome.code, Some(3), "{outcome:#?}");
    assert!(outcome.stderr.contains("--yes"), "{}", outcome.stderr);
    assert_eq!(db.content_hash(), before);
}

#[test]
fn import_into_an_empty_postgres_database_creates_the_schema_and_ids_continue() {
    let source = TestDb::sqlite();
    fill_with_fixture(&source, false);
    let (file, _) = export(&source, "fixture.json");
    let db = TestDb::postgres();
    let outcome = import(&db, &file);
    assert!(outcome.success, "{outcome:#?}");
    db.execute("INSERT INTO teachers (name, created_at) VALUES ('Nova', now())");
    assert_eq!(
        db.query_i64("SELECT id FROM teachers WHERE name = 'Nova'"),
        8,
        "the identity continues past the highest imported id (7)"
    );
    db.execute(
        "INSERT INTO grades (student_id, taken_on, kind, created_at) VALUES (1, '2025-01-01', 'mock', now())",
    );
}

#[test]
fn export_never_overwrites_a_file_unless_forced() {
    let db = TestDb::sqlite();
    xtask_ok(&db, &["seed", "--students", "2"]);
    let path = db.dir.path().join("out.json");
    std::fs::write(&path, "precious").unwrap();
    let outcome = xtask_on(&db, &["export", "--file", path.to_str().unwrap()]);
    assert!(!outcome.success);
    assert!(outcome.stderr.contains("--force"), "{}", outcome.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    let outcome = xtask_ok(
        &db,
        &["export", "--file", path.to_str().unwrap(), "--force"],
    );
    assert!(outcome.stderr.contains("students 2"), "{}", outcome.stderr);
    assert!(std::fs::read_to_string(&path).unwrap().starts_with('{'));
    let names: Vec<String> = std::fs::read_dir(db.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");
}

/// `text` with the first `from` replaced by `to`; `from` must be there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from} not in the export");
    text.replacen(from, to, 1)
}

/// The value of the string field `key` in the row line that starts with `row_start`.
fn string_field<'a>(text: &'a str, row_start: &str, key: &str) -> &'a str {
    let line = text.lines().find(|l| l.starts_with(row_start)).unwrap();
    let start = line.find(&format!("\"{key}\":\"")).unwrap() + key.len() + 4;
    &line[start..start + line[start..].find('"').unwrap()]
}

/// Bad versions of `good`, each with a part of the error it must give.
fn bad_files(good: &str, postgres: bool) -> Vec<(&'static str, String, String)> {
    let grades = string_field(good, "   {\"id\":1,\"username\"", "username");
    let count_line = good.lines().nth(2).unwrap();
    let header_last = format!("{count_line}\n");
    let mut cases = vec![
        ("truncated", good[..good.len() / 2].to_string(), "EOF while parsing".to_string()),
        ("invalid JSON", edit(good, "},\n   {", "};\n   {"), "line ".to_string()),
        ("not JSON", "SQLite format 3\0".to_string(), "is not a TOEFL Dashboard export".to_string()),
        ("other format", edit(good, "toefl-dashboard-export", "other"), "is not a TOEFL Dashboard export".to_string()),
        ("format version", edit(good, "\"format_version\": 1", "\"format_version\": 2"), "format version 2".to_string()),
        ("schema version", edit(good, &format!("\"schema_version\": {SCHEMA_VERSION}"), &format!("\"schema_version\": {NEWER_VERSION}")), newer_version_refusal()),
        ("header after tables", edit(&edit(good, &header_last, ""), "\n }}\n", &format!("\n }},{count_line}}}\n")), "no \"row_counts\" field before \"tables\"".to_string()),
        ("unknown table", edit(good, "\"classes\": [", "\"klasses\": ["), "table klasses: no such table in the schema".to_string()),
        ("unknown column", edit(good, "\"phone\":", "\"fone\":"), "table teachers, row 1 (id 1): unknown column \"fone\"".to_string()),
        ("missing column", edit(good, "\"is_active\":true,", ""), "table users, row 1 (id 1), column is_active: the column is missing".to_string()),
        ("wrong type", edit(good, "\"is_active\":true", "\"is_active\":\"yes\""), "table users, row 1 (id 1), column is_active: holds the string \"yes\", which is not true or false".to_string()),
        ("check", edit(good, "\"kind\":\"", "\"kind\":\"x"), "table grades, row 1 (id 1), column kind:".to_string()),
        ("not null", edit(good, "\"role\":\"admin\"", "\"role\":null"), "column role: is null but the column is NOT NULL".to_string()),
        ("bad timestamp", edit(good, "\"created_at\":\"2024-", "\"created_at\":\"2024/"), "which is not a timestamp".to_string()),
        ("ids not ascending", edit(good, "{\"id\":2,\"username\"", "{\"id\":1,\"username\""), "table users, row 2 (id 1): ids must be strictly ascending".to_string()),
        ("duplicate username", edit(good, &format!("{{\"id\":2,\"username\":\"{}\"", string_field(good, "   {\"id\":2,", "username")), &format!("{{\"id\":2,\"username\":\"{grades}\"")), "table users".to_string()),
        ("missing parent", edit(good, "\"student_id\":1,", "\"student_id\":999999,"), "table grades, row 1 (id 1), column student_id: refers to students id 999999".to_string()),
        ("counts", edit(good, count_line, &count_line.replace("\"users\": ", "\"users\": 1")), "table users: the file holds".to_string()),
    ];
    if postgres {
        cases.push((
            "NUL",
            edit(good, "\"password_hash\":\"", "\"password_hash\":\"\\u0000"),
            "column password_hash: holds a NUL character".to_string(),
        ));
    }
    cases
}

per_backend!(bad_files_leave_the_target_exactly_as_it_was);
fn bad_files_leave_the_target_exactly_as_it_was(backend: Backend) {
    let source = TestDb::sqlite();
    xtask_ok(&source, &["seed", "--students", "4", "--seed", "9"]);
    let (_, good) = export(&source, "good.json");
    let postgres = backend == app::Backend::Postgres;
    import_each_bad_file(backend, bad_files(&good, postgres));
}

/// Versions of [`fixture_sql`]'s export whose figures break a check, each with a part of the error
/// it must give.
fn files_with_bad_figures(good: &str) -> Vec<(&'static str, String, String)> {
    vec![
        (
            "a band of 4.25",
            edit(good, "\"reading_band\":4.5,", "\"reading_band\":4.25,"),
            "table students, row 4 (id 4), column reading_band: holds Real(4.25), which the check"
                .to_string(),
        ),
        (
            "not the rounded average",
            edit(good, "\"overall_band\":4.5}", "\"overall_band\":5.0}"),
            "table students, row 4 (id 4): the row breaks the check students_overall_band_average"
                .to_string(),
        ),
        (
            "no complete scale",
            edit(good, "\"reading\":25,", "\"reading\":null,"),
            "table students, row 5 (id 5): the row breaks the check students_complete_scales"
                .to_string(),
        ),
        (
            "scales of two levels",
            edit(good, "\"total_score\":88,", "\"total_score\":95,"),
            "table students, row 4 (id 4): the row breaks the check students_scales_agree"
                .to_string(),
        ),
    ]
}

per_backend!(rows_that_break_a_check_leave_the_target_exactly_as_it_was);
fn rows_that_break_a_check_leave_the_target_exactly_as_it_was(backend: Backend) {
    let source = TestDb::sqlite();
    fill_with_fixture(&source, false);
    let (_, good) = export(&source, "good.json");
    import_each_bad_file(backend, files_with_bad_figures(&good));
}

/// Imports each bad file into a seeded database of `backend`: each must fail with its error and
/// leave the database exactly as it was.
fn import_each_bad_file(backend: Backend, files: Vec<(&'static str, String, String)>) {
    let db = TestDb::of(backend);
    xtask_ok(&db, &["seed", "--students", "3", "--seed", "5"]);
    let before = db.content_hash();
    for (name, text, expected) in files {
        let path = db.dir.path().join("bad.json");
        std::fs::write(&path, text).unwrap();
        let outcome = import(&db, &path);
        assert_eq!(outcome.code, Some(1), "{name} on {}: {outcome:#?}", db.url);
        assert!(
            outcome.stderr.contains(&expected),
            "{name} on {}: expected {expected:?} in {}",
            db.url,
            outcome.stderr
        );
        assert_eq!(db.content_hash(), before, "{name} changed {}", db.url);
    }
}

#[test]
fn a_failed_import_into_an_empty_target_leaves_it_empty() {
    let source = TestDb::sqlite();
    xtask_ok(&source, &["seed", "--students", "5"]);
    let file = source.dir.path().join("bad.json");
    xtask_ok(&source, &["export", "--file", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replacen("\"students\": 5", "\"students\": 6", 1),
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let missing = TestDb::sqlite();
    let outcome = xtask_on(&missing, &["import", "--file", file, "--yes"]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(
        !missing.url.sqlite_path().unwrap().exists(),
        "the file it created is gone"
    );

    let empty = TestDb::postgres();
    let outcome = xtask_on(&empty, &["import", "--file", file, "--yes"]);
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    let tables = empty.query_i64("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
    assert_eq!(tables, 0, "no schema left behind");
}
