//! The foundation: migrate, seed and database URLs (TLS is in tls.rs).

use app::schema::{OnDelete, PRIMARY_KEY};
use app::{Backend, DatabaseUrl, TABLES};
use testkit::TestDb;

use crate::{xtask, xtask_ok, xtask_on};

/// One column as a database describes it: name, type, not null.
type IntrospectedColumn = (String, String, bool);
/// One foreign key as a database describes it: column, referenced table, delete action.
type IntrospectedKey = (String, String, OnDelete);

fn introspect(
    db: &TestDb,
    table: &str,
) -> (Vec<IntrospectedColumn>, Vec<IntrospectedKey>, Vec<String>) {
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let columns = conn
                .prepare(&format!("PRAGMA table_info({table})"))
                .unwrap()
                .query_map([], |r| {
                    Ok((
                        r.get(1)?,
                        r.get(2)?,
                        r.get::<_, i64>(3)? == 1 || r.get::<_, i64>(5)? == 1,
                    ))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let keys = conn
                .prepare(&format!("PRAGMA foreign_key_list({table})"))
                .unwrap()
                .query_map([], |r| {
                    let action: String = r.get(6)?;
                    Ok((r.get(3)?, r.get(2)?, on_delete(&action)))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let unique = conn
                .prepare(&format!(
                    "SELECT ii.name FROM pragma_index_list('{table}') il \
                     JOIN pragma_index_info(il.name) ii WHERE il.\"unique\" AND il.origin = 'u' ORDER BY ii.name"
                ))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (columns, keys, unique)
        }
        DatabaseUrl::Postgres(_) => {
            let mut client = testkit::connect(&db.url);
            let columns = client
                .query(
                    "SELECT column_name::text, data_type::text, is_nullable = 'NO' FROM information_schema.columns \
                     WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
                    &[&table],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let keys = client
                .query(
                    "SELECT a.attname::text, c.confrelid::regclass::text, c.confdeltype::text FROM pg_constraint c \
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
                     WHERE c.contype = 'f' AND c.conrelid = $1::text::regclass ORDER BY a.attnum",
                    &[&table],
                )
                .unwrap()
                .iter()
                .map(|r| {
                    let action: String = r.get(2);
                    (r.get(0), r.get(1), if action == "c" { OnDelete::Cascade } else { on_delete(&action) })
                })
                .collect();
            let unique = client
                .query(
                    "SELECT a.attname::text FROM pg_constraint c \
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
                     WHERE c.contype = 'u' AND c.conrelid = $1::text::regclass ORDER BY a.attname",
                    &[&table],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            (columns, keys, unique)
        }
    }
}

fn on_delete(action: &str) -> OnDelete {
    match action {
        "CASCADE" => OnDelete::Cascade,
        "SET NULL" | "n" => OnDelete::SetNull,
        other => panic!("unexpected delete action {other}"),
    }
}

per_backend!(migrate_creates_the_described_schema);
fn migrate_creates_the_described_schema(backend: Backend) {
    let db = TestDb::of(backend);
    let first = xtask_ok(&db, &["migrate"]);
    assert!(
        first.stderr.contains("applied schema version 1, 2"),
        "{}",
        first.stderr
    );
    let again = xtask_ok(&db, &["migrate"]);
    assert!(
        again.stderr.contains("up to date"),
        "migrate is idempotent: {}",
        again.stderr
    );
    let dialect = backend;
    for table in TABLES {
        let (columns, keys, unique) = introspect(&db, table.name);
        let expected: Vec<IntrospectedColumn> = table
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.ty.sql_type(dialect).to_string(),
                    !c.nullable,
                )
            })
            .collect();
        assert_eq!(columns, expected, "{} columns on {dialect:?}", table.name);
        let expected_keys: Vec<IntrospectedKey> = table
            .foreign_keys()
            .map(|(c, fk)| (c.name.to_string(), fk.table.to_string(), fk.on_delete))
            .collect();
        assert_eq!(
            keys, expected_keys,
            "{} foreign keys on {dialect:?}",
            table.name
        );
        let mut expected_unique: Vec<String> = table
            .columns
            .iter()
            .filter(|c| c.unique)
            .map(|c| c.name.to_string())
            .collect();
        expected_unique.sort();
        assert_eq!(
            unique, expected_unique,
            "{} unique columns on {dialect:?}",
            table.name
        );
        assert_eq!(table.columns[0].name, PRIMARY_KEY);
    }
    assert_eq!(
        db.query_i64("SELECT max(version) FROM schema_migrations"),
        app::SCHEMA_VERSION
    );
}

per_backend!(checks_reject_values_outside_the_schema);
fn checks_reject_values_outside_the_schema(backend: Backend) {
    let db = TestDb::of(backend);
    xtask_ok(&db, &["migrate"]);
    let base = "INSERT INTO students (name, created_at, listening, speaking, writing, total_score, reading) \
                VALUES ('x', '2024-01-01 00:00:00.000000', 20, 20, 20, 90, ";
    db.execute(&format!("{base}30)"));
    for bad in ["31)", "-1)"] {
        let sql = format!("{base}{bad}");
        let rejected = std::panic::catch_unwind(|| db.execute(&sql));
        assert!(
            rejected.is_err(),
            "{sql} must be rejected on {}",
            db.url.backend()
        );
    }
    let level = "INSERT INTO students (name, created_at, cefr_level) VALUES ('y', '2024-01-01 00:00:00.000000', 'C3')";
    assert!(db.try_execute(level).is_err(), "{level} must be rejected");
}

/// Figures of a row: column names and SQL values.
type Figures = Vec<(&'static str, &'static str)>;

/// Inserts a row with `figures` into students and into grades (of a student with none) on a migrated
/// `db`; each gives `Ok` or the database's refusal.
fn insert_figures(db: &TestDb, figures: &Figures) -> [Result<(), String>; 2] {
    let names: Vec<&str> = figures.iter().map(|(name, _)| *name).collect();
    let values: Vec<&str> = figures.iter().map(|(_, value)| *value).collect();
    let (names, values) = (names.join(", "), values.join(", "));
    [
        format!(
            "INSERT INTO students (name, created_at, {names}) \
             VALUES ('Ana', '2026-02-02 00:00:00.000000', {values})"
        ),
        format!(
            "INSERT INTO grades (student_id, taken_on, kind, created_at, {names}) \
             VALUES (1000, '2026-02-02', 'official', '2026-02-02 00:00:00.000000', {values})"
        ),
    ]
    .map(|sql| db.try_execute(&sql))
}

/// Migrates a new database of `backend` and checks that each row of figures is refused with an
/// error naming the check, or stored when that is `None`, in students and in grades.
fn check_figures(backend: Backend, cases: &[(Figures, Option<&str>)]) {
    let db = TestDb::of(backend);
    xtask_ok(&db, &["migrate"]);
    db.execute(
        "INSERT INTO students (id, name, created_at) VALUES (1000, 'sem nota', '2026-02-02 00:00:00.000000')",
    );
    for (figures, refused_by) in cases {
        for outcome in insert_figures(&db, figures) {
            match (refused_by, outcome) {
                (None, Ok(())) => {}
                (Some(check), Err(message)) => assert!(
                    message.contains(check),
                    "{figures:?} refused by {check} on {backend}: {message}"
                ),
                (expected, outcome) => {
                    panic!("{figures:?} on {backend}: expected {expected:?}, got {outcome:?}")
                }
            }
        }
    }
}

/// Four section bands and an overall band, then any other figures.
fn bands(values: [&'static str; 5], others: &[(&'static str, &'static str)]) -> Figures {
    let names = [
        "reading_band",
        "listening_band",
        "speaking_band",
        "writing_band",
        "overall_band",
    ];
    names
        .into_iter()
        .zip(values)
        .chain(others.to_vec())
        .collect()
}

per_backend!(checks_refuse_a_band_of_4_25);
fn checks_refuse_a_band_of_4_25(backend: Backend) {
    check_figures(
        backend,
        &[
            (bands(["4.5", "4.0", "4.0", "4.0", "4.0"], &[]), None),
            (
                bands(["4.25", "4.0", "4.0", "4.0", "4.0"], &[]),
                Some("reading_band"),
            ),
            (
                bands(["4.0", "4.0", "4.0", "4.0", "6.5"], &[]),
                Some("overall_band"),
            ),
        ],
    );
}

per_backend!(checks_refuse_an_overall_band_that_is_not_the_rounded_average);
fn checks_refuse_an_overall_band_that_is_not_the_rounded_average(backend: Backend) {
    let average = Some("overall_band_average");
    check_figures(
        backend,
        &[
            // Averages of 5.125 and 5.25: 5.0 and 5.5, nothing else.
            (bands(["5.0", "5.0", "5.0", "5.5", "5.0"], &[]), None),
            (bands(["5.0", "5.0", "5.0", "5.5", "5.5"], &[]), average),
            (bands(["5.0", "5.0", "5.5", "5.5", "5.5"], &[]), None),
            (bands(["5.0", "5.0", "5.5", "5.5", "5.0"], &[]), average),
            (bands(["1.0", "6.0", "1.0", "6.0", "3.5"], &[]), None),
            (bands(["1.0", "6.0", "1.0", "6.0", "4.0"], &[]), average),
        ],
    );
}

per_backend!(checks_refuse_a_row_without_a_complete_scale);
fn checks_refuse_a_row_without_a_complete_scale(backend: Backend) {
    let complete = Some("complete_scales");
    let sections = [
        ("reading", "20"),
        ("listening", "21"),
        ("speaking", "22"),
        ("writing", "23"),
    ];
    let total = ("total_score", "86");
    let report = ["4.0", "4.0", "4.5", "4.5", "4.5"];
    let mut partial_bands = bands(report, &[total]);
    partial_bands.remove(1);
    check_figures(
        backend,
        &[
            ([&sections[..], &[total]].concat(), None),
            (bands(report, &[]), None),
            (bands(report, &[total]), None),
            (bands(report, &[&sections[..], &[total]].concat()), None),
            (sections.to_vec(), complete),
            ([&sections[1..], &[total]].concat(), complete),
            (vec![total], complete),
            (bands(report, &[])[..4].to_vec(), complete),
            (partial_bands, complete),
        ],
    );
}

per_backend!(checks_refuse_a_total_and_bands_of_different_cefr_levels);
fn checks_refuse_a_total_and_bands_of_different_cefr_levels(backend: Backend) {
    let c1 = ["5.0", "5.0", "5.0", "5.5", "5.0"];
    let agree = Some("scales_agree");
    check_figures(
        backend,
        &[
            (bands(c1, &[("total_score", "95")]), None),
            (bands(c1, &[("total_score", "113")]), None),
            (bands(c1, &[("total_score", "94")]), agree),
            (bands(c1, &[("total_score", "114")]), agree),
        ],
    );
}

fn seed(db: &TestDb, seed: &str, extra: &[&str]) -> testkit::Outcome {
    let mut args = vec!["seed", "--students", "300", "--seed", seed];
    args.extend(extra);
    xtask_on(db, &args)
}

per_backend!(seed_is_deterministic_and_consistent);
fn seed_is_deterministic_and_consistent(backend: Backend) {
    let new_db = || match backend {
        Backend::Sqlite => TestDb::sqlite(),
        Backend::Postgres => TestDb::postgres(),
    };
    let (a, b, c) = (new_db(), new_db(), new_db());
    assert!(seed(&a, "7", &[]).success);
    assert!(seed(&b, "7", &[]).success);
    assert!(seed(&c, "8", &[]).success);
    assert_eq!(
        a.content_hash(),
        b.content_hash(),
        "same seed, same data on {backend}"
    );
    assert_ne!(
        a.content_hash(),
        c.content_hash(),
        "another seed, other data on {backend}"
    );

    assert_eq!(a.query_i64("SELECT count(*) FROM students"), 300);
    let grades = a.query_i64("SELECT count(*) FROM grades");
    assert!(
        (2_400..=3_600).contains(&grades),
        "about ten grades a student: {grades}"
    );
    let inconsistent = a.query_i64(
        "SELECT count(*) FROM students WHERE total_score <> reading + listening + speaking + writing \
         OR (total_score IS NULL) <> (cefr_level IS NULL) OR cefr_level <> CASE \
         WHEN total_score >= 114 THEN 'C2' WHEN total_score >= 95 THEN 'C1' WHEN total_score >= 72 THEN 'B2' \
         WHEN total_score >= 42 THEN 'B1' WHEN total_score >= 20 THEN 'A2' ELSE 'A1' END",
    );
    assert_eq!(
        inconsistent, 0,
        "scores, totals and levels agree on {backend}"
    );
    assert!(
        a.query_i64("SELECT count(*) FROM students WHERE total_score IS NULL") > 0,
        "some NULLs"
    );
    assert!(
        a.query_i64("SELECT count(*) FROM students WHERE name LIKE '%ã%' OR name LIKE '%ç%'") > 0
    );

    let before = a.content_hash();
    let refused = seed(&a, "9", &[]);
    assert!(
        !refused.success && refused.stderr.contains("--force"),
        "{refused:#?}"
    );
    assert_eq!(a.content_hash(), before, "a refused seed changes nothing");
    assert!(seed(&a, "8", &["--force"]).success);
    assert_eq!(
        a.content_hash(),
        c.content_hash(),
        "--force replaces the data on {backend}"
    );
}

#[test]
fn seeded_postgres_ids_continue_after_the_seed() {
    let db = TestDb::postgres();
    assert!(seed(&db, "1", &[]).success);
    db.execute(
        "INSERT INTO users (username, email, password_hash, role, is_active, created_at) \
                VALUES ('new', 'new@example.com', 'x', 'staff', true, now())",
    );
}

#[test]
fn bad_and_unreachable_urls_get_one_clear_line_without_the_password() {
    let cases = [
        ("mysql://me:hunter2@db/toefl", "accepted forms"),
        ("sqlite:", "names no file"),
        ("postgres://me:hunter2@127.0.0.1:1/toefl", "cannot connect"),
        (
            "sqlite:///nonexistent-dir/x/toefl.db",
            "cannot open SQLite database",
        ),
    ];
    for (url, expected) in cases {
        for args in [
            vec!["migrate", "--database-url", url],
            vec!["--database-url", url, "migrate"],
        ] {
            let outcome = xtask(&args);
            assert_eq!(outcome.code, Some(1), "{url}: {outcome:#?}");
            assert!(
                outcome.stderr.contains(expected),
                "{url}: {}",
                outcome.stderr
            );
            assert_eq!(
                outcome.stderr.trim().lines().count(),
                1,
                "one line: {}",
                outcome.stderr
            );
            assert!(!outcome.stderr.contains("hunter2"), "{}", outcome.stderr);
            assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        }
    }
}

#[test]
fn help_lists_every_command() {
    let help = xtask(&["--help"]);
    assert!(help.success);
    for command in ["migrate", "seed"] {
        assert!(
            help.stdout.contains(command),
            "{command} in {}",
            help.stdout
        );
    }
}
