//! Passwords: never shown, whatever characters they hold; taken from `PGPASSWORD` or the passfile
//! when the URL has none, by our connection and by pg_dump alike.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use app::url::percent_encode;
use testkit::{password, run_xtask_with_env, Outcome, TestDb};

fn xtask_with_env(args: &[&str], env: &[(&str, &OsStr)]) -> Outcome {
    run_xtask_with_env(env!("CARGO_BIN_EXE_xtask"), args, env)
}

/// Passwords a provider may generate, pasted unencoded: each holds a character that ends a URL's
/// part somewhere (`/`, `?`, `#`, `@`, `:`, `&`, a space) or is not ASCII.
const NASTY_PASSWORDS: [&str; 8] = [
    "Zq/Wx/9",
    "Zq?Wx?9",
    "Zq#Wx#9",
    "Zq@Wx@9",
    "Zq:Wx:9",
    "Zq&Wx&9",
    "Zq Wx 9",
    "Zqé密Wx9",
];

#[test]
fn a_password_with_url_delimiters_never_shows_when_the_server_is_unreachable_on_postgres() {
    let mut runs = 0;
    for secret in NASTY_PASSWORDS {
        let encoded = percent_encode(secret);
        for written in [secret, encoded.as_str()] {
            // Port 1 on 127.0.0.1: nothing listens, so each command fails at its connection.
            let urls = [
                format!("postgres://app:{written}@127.0.0.1:1/toefl"),
                format!("postgresql://app:{written}@127.0.0.1:1,127.0.0.1:2/toefl?sslmode=prefer"),
                format!("postgres://app@127.0.0.1:1/toefl?password={written}&sslmode=disable"),
            ];
            for url in &urls {
                // Each way of giving the URL, the JSON line on one of them.
                let outcomes = [
                    xtask_with_env(&["backup", "--database-url", url], &[]),
                    xtask_with_env(&["backup", "--json"], &[("DATABASE_URL", OsStr::new(url))]),
                ];
                for (outcome, json) in outcomes.iter().zip([false, true]) {
                    runs += 1;
                    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
                    let shown = format!("{}{}", outcome.stdout, outcome.stderr);
                    for hidden in [secret, encoded.as_str()] {
                        assert!(!shown.contains(hidden), "{hidden:?} shown: {shown}");
                    }
                    assert_eq!(outcome.stderr.trim().lines().count(), 1, "{shown}");
                    assert!(!shown.contains("panicked"), "{shown}");
                    if json {
                        let line: serde_json::Value =
                            serde_json::from_str(outcome.stdout.trim()).unwrap();
                        assert_eq!(line["ok"], false, "{shown}");
                    }
                }
            }
        }
    }
    assert_eq!(runs, NASTY_PASSWORDS.len() * 2 * 3 * 2);
}

/// A passfile line for the password role, any host, port and database: `\` and `:` escaped.
fn passfile_line(password: &str) -> String {
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    format!("*:*:*:{}:{escaped}\n", testkit::password_role())
}

fn write_passfile(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

/// Runs `backup` (our connection, then pg_dump's) on `db` as the password role, with `password`
/// in the URL (or none) and `env` in the environment; `HOME` is an empty directory unless `env`
/// says otherwise, so that no ~/.pgpass of the machine counts.
fn backup_as_password_role(db: &TestDb, password: Option<&str>, env: &[(&str, &OsStr)]) -> Outcome {
    let url = db.url_as_password_role(password);
    let file = db.dir.path().join(format!("{}.dump", next_backup_name()));
    let home = tempfile::tempdir().unwrap();
    let mut all: Vec<(&str, &OsStr)> = vec![("HOME", home.path().as_os_str())];
    all.extend(env);
    let args = [
        "backup",
        "--file",
        file.to_str().unwrap(),
        "--database-url",
        &url,
    ];
    let outcome = xtask_with_env(&args, &all);
    if outcome.success {
        assert!(file.metadata().unwrap().len() > 0, "pg_dump wrote the dump");
    }
    outcome
}

/// A PostgreSQL test database with the schema (backup refuses one without).
fn migrated() -> TestDb {
    let db = TestDb::postgres();
    crate::xtask_ok(&db, &["migrate"]);
    db
}

fn next_backup_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("backup_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn assert_refused_without_showing(outcome: &Outcome) {
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(
        outcome.stderr.contains("password authentication failed")
            || outcome
                .stderr
                .contains("asks for a password and none was found"),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stderr.contains(password()), "{}", outcome.stderr);
}

#[test]
fn pgpassword_gives_our_connection_and_pg_dump_the_password_on_postgres() {
    let db = migrated();
    let outcome = backup_as_password_role(&db, None, &[("PGPASSWORD", OsStr::new(password()))]);
    assert!(outcome.success, "{outcome:#?}");
    assert_refused_without_showing(&backup_as_password_role(&db, None, &[]));
}

#[test]
fn a_passfile_gives_our_connection_and_pg_dump_the_password_on_postgres() {
    let db = migrated();
    let file = write_passfile(db.dir.path(), "pgpass", &passfile_line(password()), 0o600);
    let outcome = backup_as_password_role(&db, None, &[("PGPASSFILE", file.as_os_str())]);
    assert!(outcome.success, "{outcome:#?}");
}

#[test]
fn the_passfile_defaults_to_pgpass_in_home_on_postgres() {
    let db = migrated();
    let home = tempfile::tempdir().unwrap();
    write_passfile(home.path(), ".pgpass", &passfile_line(password()), 0o600);
    let outcome = backup_as_password_role(&db, None, &[("HOME", home.path().as_os_str())]);
    assert!(outcome.success, "{outcome:#?}");
}

#[test]
fn a_passfile_others_may_read_is_ignored_on_postgres() {
    let db = migrated();
    let file = write_passfile(db.dir.path(), "pgpass", &passfile_line(password()), 0o644);
    let outcome = backup_as_password_role(&db, None, &[("PGPASSFILE", file.as_os_str())]);
    assert_refused_without_showing(&outcome);
}

/// Environment variables for one run.
type Variables = Vec<(&'static str, OsString)>;

#[test]
fn the_url_password_comes_first_then_pgpassword_then_the_passfile_on_postgres() {
    let db = migrated();
    let right = write_passfile(db.dir.path(), "right", &passfile_line(password()), 0o600);
    let wrong = write_passfile(db.dir.path(), "wrong", &passfile_line("not-it"), 0o600);
    let pgpassword = |p: &'static str| ("PGPASSWORD", OsString::from(p));
    let cases: [(Option<&str>, Variables, bool); 4] = [
        // A wrong URL password is not rescued by the environment.
        (
            Some("not-it"),
            vec![pgpassword(password()), ("PGPASSFILE", right.clone().into())],
            false,
        ),
        (Some(password()), vec![pgpassword("not-it")], true),
        // PGPASSWORD comes before the passfile, wrong or right.
        (
            None,
            vec![pgpassword("not-it"), ("PGPASSFILE", right.into())],
            false,
        ),
        (
            None,
            vec![pgpassword(password()), ("PGPASSFILE", wrong.into())],
            true,
        ),
    ];
    for (in_url, env, succeeds) in cases {
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        let outcome = backup_as_password_role(&db, in_url, &env);
        if succeeds {
            assert!(outcome.success, "{in_url:?} {env:?}: {outcome:#?}");
        } else {
            assert_refused_without_showing(&outcome);
        }
    }
}
