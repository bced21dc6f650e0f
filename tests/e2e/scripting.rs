//! For CI and scripts: `--json` lines on stdout, exit codes, and no control characters off a terminal.

use serde_json::Value;
use testkit::TestDb;

use crate::{xtask, xtask_on};

/// The one JSON line a `--json` run prints on stdout.
pub fn json_line(outcome: &testkit::Outcome) -> Value {
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stdout: {outcome:#?}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {}", lines[0]))
}

/// Fails if `text` holds an ANSI escape or a carriage return.
pub fn assert_plain(text: &str) {
    assert!(
        !text.contains('\x1b') && !text.contains('\r'),
        "control characters in {text:?}"
    );
}

#[test]
fn json_lines_carry_the_outcome_before_or_after_the_command() {
    let db = TestDb::sqlite();
    let url = db.url_arg();
    let migrate = xtask(&["--json", "migrate", "--database-url", &url]);
    let line = json_line(&migrate);
    assert_eq!(line["command"], "migrate");
    assert_eq!(line["ok"], true);
    assert_eq!(line["backend"], "sqlite");
    assert_eq!(line["applied"], serde_json::json!([1, 2]));

    let seed = xtask_on(&db, &["seed", "--students", "50", "--json"]);
    let line = json_line(&seed);
    assert_eq!(line["rows"]["students"], 50);
    assert!(line["seconds"].as_f64().is_some(), "{line}");
    for outcome in [&migrate, &seed] {
        assert_plain(&outcome.stdout);
        assert_plain(&outcome.stderr);
    }
}

#[test]
fn failures_exit_non_zero_with_a_json_error_line() {
    let db = TestDb::sqlite();
    assert!(xtask_on(&db, &["seed", "--students", "5"]).success);
    let refused = xtask_on(&db, &["seed", "--json"]);
    assert_eq!(refused.code, Some(1));
    let line = json_line(&refused);
    assert_eq!(line["ok"], false);
    assert!(
        line["error"].as_str().unwrap().contains("--force"),
        "{line}"
    );
    assert_eq!(line["exit_code"], 1);

    let usage = xtask(&["seed", "--students", "many"]);
    assert_eq!(usage.code, Some(2), "usage errors exit 2: {usage:#?}");
}

/// Runs `xtask ARGS` on a pseudo-terminal, as a person at a terminal would, through script(1);
/// returns everything the terminal showed.
fn on_a_terminal(args: &[&str]) -> String {
    on_a_terminal_answering(args, "")
}

/// Like [`on_a_terminal`], typing `keys` at the terminal; fails unless the command succeeds.
fn on_a_terminal_answering(args: &[&str], keys: &str) -> String {
    let (success, screen) = terminal_session(args, keys);
    assert!(success, "{args:?}: {screen}");
    screen
}

/// Runs `xtask ARGS` on a pseudo-terminal, typing `keys`; gives whether it succeeded and the screen.
pub fn terminal_session(args: &[&str], keys: &str) -> (bool, String) {
    // script(1) hands the command to a shell: quote every word.
    let command = std::iter::once(env!("CARGO_BIN_EXE_xtask"))
        .chain(args.iter().copied())
        .map(|word| format!("'{}'", word.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run script(1) from util-linux");
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, keys.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_terminal_gets_a_progress_line_with_rows_per_second() {
    let source = TestDb::sqlite();
    let target = TestDb::sqlite();
    let file = source.dir.path().join("export.json");
    let file = file.to_str().unwrap();
    let (from, to) = (source.url_arg(), target.url_arg());
    let runs: [(&str, Vec<&str>); 3] = [
        (
            "seeded",
            vec!["seed", "--students", "300", "--database-url", &from],
        ),
        (
            "exported",
            vec!["export", "--file", file, "--database-url", &from],
        ),
        (
            "imported",
            vec!["import", "--file", file, "--yes", "--database-url", &to],
        ),
    ];
    for (done, args) in runs {
        let screen = on_a_terminal(&args);
        assert!(
            screen.contains("rows/s") && screen.contains('\r'),
            "{screen:?}"
        );
        assert!(screen.contains(done), "{screen:?}");
    }
}

#[test]
fn on_a_terminal_import_asks_first_showing_the_target_and_what_it_holds() {
    let source = TestDb::sqlite();
    crate::xtask_ok(&source, &["seed", "--students", "20"]);
    let file = source.dir.path().join("export.json");
    let file = file.to_str().unwrap();
    crate::xtask_ok(&source, &["export", "--file", file]);
    let target = TestDb::postgres();
    crate::xtask_ok(&target, &["seed", "--students", "7"]);
    let before = target.content_hash();
    let url = target.url_with_password();
    let args = [
        "import",
        "--file",
        file,
        "--no-safety-backup",
        "--database-url",
        &url,
    ];

    let (success, screen) = terminal_session(&args, "n\n");
    assert!(!success, "{screen}");
    assert!(
        screen.contains("which now holds: users") && screen.contains("students 7"),
        "{screen}"
    );
    assert!(
        screen.contains("Go on? [y/N]") && screen.contains("cancelled"),
        "{screen}"
    );
    assert!(!screen.contains(testkit::password()), "{screen}");
    assert_eq!(target.content_hash(), before);

    let screen = on_a_terminal_answering(&args, "y\n");
    assert!(screen.contains("imported"), "{screen}");
    assert_eq!(target.query_i64("SELECT count(*) FROM students"), 20);
}

per_backend!(json_lines_name_the_safety_copies_which_verify);
fn json_lines_name_the_safety_copies_which_verify(backend: app::Backend) {
    let backups = tempfile::tempdir().unwrap();
    let env = [("TOEFL_BACKUPS_DIR", backups.path().as_os_str())];
    let run = |args: &[&str]| {
        let outcome = testkit::run_xtask_with_env(env!("CARGO_BIN_EXE_xtask"), args, &env);
        assert!(outcome.success, "{args:?}: {outcome:#?}");
        json_line(&outcome)
    };
    let db = TestDb::of(backend);
    {
        let url = db.url_arg();
        crate::xtask_ok(&db, &["seed", "--students", "10"]);
        let export = run(&["export", "--json", "--database-url", &url]);
        let backup = run(&["backup", "--json", "--database-url", &url]);
        for (command, file) in [("import", &export["path"]), ("restore", &backup["path"])] {
            let file = file.as_str().unwrap();
            let line = run(&[
                command,
                "--file",
                file,
                "--yes",
                "--json",
                "--database-url",
                &url,
            ]);
            let safety = line["safety_backup"]
                .as_str()
                .unwrap_or_else(|| panic!("{line}"));
            assert!(
                safety.starts_with(backups.path().to_str().unwrap()),
                "{safety}"
            );
            run(&["verify", safety, "--json", "--database-url", &url]);
        }
    }
}
