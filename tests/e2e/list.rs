//! `cargo xtask list`: what is in a backups directory, newest first, described from the content.

use testkit::TestDb;

use crate::scripting::{assert_plain, json_line};
use crate::{xtask, xtask_ok};

#[test]
fn list_shows_our_backups_newest_first_from_their_content() {
    let sqlite = TestDb::sqlite();
    xtask_ok(&sqlite, &["seed", "--students", "20"]);
    let postgres = TestDb::postgres();
    xtask_ok(&postgres, &["seed", "--students", "10"]);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    xtask_ok(
        &sqlite,
        &[
            "export",
            "--file",
            &path("toefl_export_20260105_080000.json.gz"),
        ],
    );
    xtask_ok(
        &sqlite,
        &["backup", "--file", &path("toefl_backup_20260103_080000.db")],
    );
    xtask_ok(
        &postgres,
        &[
            "backup",
            "--file",
            &path("toefl_pre_restore_20260104_080000.dump"),
        ],
    );
    xtask_ok(
        &postgres,
        &[
            "export",
            "--file",
            &path("toefl_pre_import_20260101_080000.json"),
        ],
    );
    // Not ours: a name we did not give, and a name we gave to something that is not a backup.
    xtask_ok(&sqlite, &["backup", "--file", &path("nightly.db")]);
    std::fs::write(path("toefl_backup_20260106_080000.db"), "not a backup").unwrap();

    let outcome = xtask(&["list", "--dir", dir.path().to_str().unwrap(), "--json"]);
    assert!(outcome.success, "{outcome:#?}");
    assert_plain(&outcome.stderr);
    let line = json_line(&outcome);
    let backups = line["backups"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = backups
        .iter()
        .map(|b| {
            (
                b["file"].as_str().unwrap(),
                b["kind"].as_str().unwrap(),
                b["backend"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("toefl_export_20260105_080000.json.gz", "json", "sqlite"),
            (
                "toefl_pre_restore_20260104_080000.dump",
                "native",
                "postgres"
            ),
            ("toefl_backup_20260103_080000.db", "native", "sqlite"),
            ("toefl_pre_import_20260101_080000.json", "json", "postgres"),
        ]
    );
    assert_eq!(backups[0]["created"], "2026-01-05T08:00:00Z");
    assert_eq!(backups[0]["compression"], "gzip");
    assert_eq!(backups[0]["rows"]["students"], 20);
    assert_eq!(backups[1]["schema_version"], app::SCHEMA_VERSION);
    assert!(
        backups[1]["rows"].is_null(),
        "a dump's rows are not known without restoring it"
    );
    assert_eq!(backups[2]["rows"]["students"], 20);
    assert_eq!(backups[3]["rows"]["students"], 10);
    assert!(backups.iter().all(|b| b["bytes"].as_u64().unwrap() > 0));
    assert!(
        outcome.stderr.contains("4 backups in"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn default_names_never_collide_and_go_to_the_backups_directory() {
    let db = TestDb::sqlite();
    xtask_ok(&db, &["seed", "--students", "5"]);
    let backups = tempfile::tempdir().unwrap();
    let env = [("TOEFL_BACKUPS_DIR", backups.path().as_os_str())];
    let url = db.url_arg();
    let mut paths = Vec::new();
    for command in ["export", "export", "backup", "backup"] {
        let args = [command, "--json", "--database-url", &url];
        let outcome = testkit::run_xtask_with_env(env!("CARGO_BIN_EXE_xtask"), &args, &env);
        assert!(outcome.success, "{outcome:#?}");
        paths.push(json_line(&outcome)["path"].as_str().unwrap().to_string());
    }
    let listed = xtask(&["list", "--json", "--dir", backups.path().to_str().unwrap()]);
    assert_eq!(
        json_line(&listed)["backups"].as_array().unwrap().len(),
        4,
        "{paths:?}"
    );
    for path in &paths {
        assert!(path.starts_with(backups.path().to_str().unwrap()), "{path}");
    }
}
