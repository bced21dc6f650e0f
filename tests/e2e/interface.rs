//! The command-line interface as users see it: `--help` of every command (snapshots, so that a change
//! of the interface shows in review) and output to a reader that went away.

use std::process::{Command, Stdio};

use crate::xtask;

/// Every command, and the top level ("").
const COMMANDS: [&str; 11] = [
    "", "migrate", "seed", "export", "import", "copy", "backup", "restore", "verify", "list",
    "prune",
];

#[test]
fn the_help_of_every_command_matches_its_snapshot() {
    for command in COMMANDS {
        let args: Vec<&str> = [command, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let help = xtask(&args);
        assert!(help.success, "{help:#?}");
        let name = if command.is_empty() { "xtask" } else { command };
        insta::assert_snapshot!(format!("help_{name}"), help.stdout);
    }
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    // The reading end is closed before the command starts, as `| head -0` would.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["list", "--json", "--dir", dir.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
