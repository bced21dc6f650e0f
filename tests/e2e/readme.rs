//! The README tells the truth: every `cargo xtask` command in it, and in the CI workflow example,
//! runs as written and succeeds.

use std::path::Path;
use std::process::{Command, Stdio};

use testkit::TestDb;

/// The fenced blocks of `markdown` tagged `tag`.
fn blocks<'a>(markdown: &'a str, tag: &str) -> Vec<&'a str> {
    let fence = format!("```{tag}\n");
    markdown
        .split(fence.as_str())
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect()
}

/// The `run:` scripts of a GitHub workflow's steps (one-line or `|` blocks).
fn workflow_scripts(yaml: &str) -> Vec<String> {
    let mut scripts = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((indent, rest)) = line.split_once("run: ") else {
            continue;
        };
        if rest != "|" {
            scripts.push(rest.to_string());
            continue;
        }
        let mut script = String::new();
        while let Some(next) =
            lines.next_if(|l| l.len() > indent.len() + 2 && l.starts_with(indent))
        {
            script.push_str(next.trim_start());
            script.push('\n');
        }
        scripts.push(script);
    }
    scripts
}

/// Runs `script` with bash in `dir`, where `cargo xtask` is the binary under test.
fn run(script: &str, dir: &Path, env: &[(&str, String)]) {
    let prelude = "cargo() { [ \"$1\" = xtask ] && shift; \"$XTASK\" \"$@\"; }\n";
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c"])
        .arg(format!("{prelude}{script}"))
        .current_dir(dir)
        .env("XTASK", env!("CARGO_BIN_EXE_xtask"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_command_in_the_readme_and_the_workflow_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let workflow =
        std::fs::read_to_string(root.join(".github/workflows/backup-before-deploy.yml")).unwrap();
    let dev = TestDb::sqlite();
    let production = TestDb::postgres();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("backups")).unwrap();
    let env = [
        ("DATABASE_URL", dev.url_arg()),
        ("PRODUCTION_DATABASE_URL", production.url_arg()),
        (
            "TOEFL_BACKUPS_DIR",
            dir.path().join("backups").display().to_string(),
        ),
        (
            "GITHUB_ENV",
            dir.path().join("github_env").display().to_string(),
        ),
    ];

    let mut ran = 0;
    for block in blocks(&readme, "sh") {
        run(block, dir.path(), &env);
        ran += block.matches("cargo xtask").count();
    }
    for line in blocks(&readme, "crontab").iter().flat_map(|b| b.lines()) {
        // Five schedule fields, then the command; the `cd` is to the checkout, here the test's.
        let command = line.splitn(6, ' ').nth(5).unwrap();
        let command = command.split_once(" && ").map_or(command, |(_, c)| c);
        run(command, dir.path(), &env);
        ran += 1;
    }
    for block in blocks(&readme, "yaml") {
        for line in block
            .lines()
            .filter_map(|l| l.trim().strip_prefix("preDeployCommand: "))
        {
            run(line, dir.path(), &env);
            ran += line.matches("cargo xtask").count();
        }
    }
    for script in workflow_scripts(&workflow)
        .iter()
        .filter(|s| s.contains("cargo xtask"))
    {
        run(script, dir.path(), &env);
        ran += script.matches("cargo xtask").count();
    }
    assert!(ran >= 20, "the README's examples ran ({ran} commands)");
    assert_eq!(
        production.query_i64("SELECT count(*) FROM students"),
        1000,
        "dev data moved"
    );
    let log = std::fs::read_to_string(dir.path().join("backups/exports.log")).unwrap();
    assert!(log.contains("\"ok\":true"), "the cron line's JSON: {log}");
}
