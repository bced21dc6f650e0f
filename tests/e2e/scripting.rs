//! For CI and scripts: `--json` lines on stdout, exit codes, and no control characters off a terminal.

use serde_json::Value;
use tests::TestDb;

use crate::{xtask, xtask_on};

/// The one JSON line a `--json` run prints on stdout.
pub fn json_line(outcome: &tests::Outcome) -> Value {
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
    assert_eq!(line["applied"], serde_json::json!([1]));

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

#[test]
fn a_terminal_gets_a_progress_line_with_rows_per_second() {
    let db = TestDb::sqlite();
    let command = format!(
        "{} seed --students 300 --database-url {}",
        env!("CARGO_BIN_EXE_xtask"),
        db.url_arg()
    );
    // `script` runs the command on a pseudo-terminal, as a person at a terminal would.
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script(1) from util-linux");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("rows/s") && screen.contains('\r'),
        "{screen:?}"
    );
    assert!(screen.contains("seeded"), "{screen:?}");
}
