//! Off-site copies (`--remote`) on a real S3-compatible server (moto, on 127.0.0.1) and in `file://`
//! directories: each behaviour on both kinds of remote (`name::s3`, `name::dir`). The tests look at
//! what the remote stores without the code under test, and every run checks that the S3 secret key
//! never appears in its output.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use testkit::proxy::Proxy;
use testkit::s3::{s3_server, SECRET_KEY};
use testkit::{sha256_hex, Outcome, TestDb};

use crate::scripting::json_line;

/// Defines, for each function `name(kind: Kind)` named, the tests `name::s3` and `name::dir`.
macro_rules! per_remote {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn s3() {
                super::$name(super::Kind::S3)
            }

            #[test]
            fn dir() {
                super::$name(super::Kind::Dir)
            }
        }
    )*};
}

per_remote!(
    backup_lands_remotely_with_its_name_size_and_checksum,
    export_lands_remotely_with_its_name_size_and_checksum,
    restore_from_the_remote_gives_the_exact_content_and_uploads_the_safety_copy,
    import_from_the_remote_gives_the_exact_content_and_uploads_the_safety_copy,
    verify_from_the_remote_restores_it_and_removes_the_download,
    a_second_upload_of_the_same_name_is_refused,
    changed_bytes_are_refused_by_verify,
    changed_bytes_are_refused_by_restore_and_the_database_is_unchanged,
    list_remote_shows_its_backups_newest_first_from_their_metadata,
    prune_remote_keeps_what_the_rules_say_and_dry_run_deletes_nothing,
    prune_remote_aborts_uploads_left_by_killed_processes,
);

/// The kind of remote a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A bucket on the test's moto server.
    S3,
    /// A directory.
    Dir,
}

/// The prefix of the objects in a test bucket.
const PREFIX: &str = "toefl/prod";

/// A remote for one test, and a `backups/` directory for the commands' own files.
struct Remote {
    place: Place,
    backups: tempfile::TempDir,
}

enum Place {
    S3 { bucket: String },
    Dir(tempfile::TempDir),
}

impl Remote {
    fn new(kind: Kind) -> Remote {
        let place = match kind {
            Kind::S3 => Place::S3 {
                bucket: s3_server().create_bucket(),
            },
            Kind::Dir => Place::Dir(tempfile::tempdir().unwrap()),
        };
        Remote {
            place,
            backups: tempfile::tempdir().unwrap(),
        }
    }

    /// `--remote`'s value.
    fn url(&self) -> String {
        match &self.place {
            Place::S3 { bucket } => format!("s3://{bucket}/{PREFIX}"),
            Place::Dir(dir) => format!("file://{}", dir.path().display()),
        }
    }

    /// The URL of the object `name`.
    fn object(&self, name: &str) -> String {
        format!("{}/{name}", self.url())
    }

    fn key(name: &str) -> String {
        format!("{PREFIX}/{name}")
    }

    /// The size of `name` and the SHA-256 stored with it; `None` when there is no such object.
    fn stored(&self, name: &str) -> Option<(u64, Option<String>)> {
        match &self.place {
            Place::S3 { bucket } => {
                let (size, metadata) = s3_server().head(bucket, &Remote::key(name))?;
                Some((size, metadata.get("sha256").cloned()))
            }
            Place::Dir(dir) => {
                let size = std::fs::metadata(dir.path().join(name)).ok()?.len();
                let sidecar = std::fs::read(dir.path().join(format!("{name}.meta.json"))).ok();
                let metadata: Option<serde_json::Value> =
                    sidecar.map(|s| serde_json::from_slice(&s).unwrap());
                let sha256 = metadata.and_then(|m| m["sha256"].as_str().map(String::from));
                Some((size, sha256))
            }
        }
    }

    /// The bytes stored as `name`.
    fn bytes(&self, name: &str) -> Vec<u8> {
        match &self.place {
            Place::S3 { bucket } => s3_server().get(bucket, &Remote::key(name)),
            Place::Dir(dir) => std::fs::read(dir.path().join(name)).unwrap(),
        }
    }

    /// Stores `bytes` as `name`, replacing what is there but keeping the metadata: storage that
    /// changed an object, or an object put there by something else than this tool.
    fn put(&self, name: &str, bytes: &[u8]) {
        match &self.place {
            Place::S3 { bucket } => {
                let key = Remote::key(name);
                let metadata = s3_server().head(bucket, &key).unwrap_or_default().1;
                let metadata: Vec<(&str, &str)> = metadata
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                s3_server().put(bucket, &key, bytes, &metadata);
            }
            Place::Dir(dir) => std::fs::write(dir.path().join(name), bytes).unwrap(),
        }
    }

    /// The names of the objects directly in the remote (for a directory, without the sidecars).
    fn names(&self) -> BTreeSet<String> {
        match &self.place {
            Place::S3 { bucket } => s3_server()
                .keys(bucket)
                .iter()
                .filter_map(|key| key.strip_prefix(&format!("{PREFIX}/")))
                .filter(|name| !name.contains('/'))
                .map(String::from)
                .collect(),
            Place::Dir(dir) => std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|name| !name.ends_with(".meta.json"))
                .collect(),
        }
    }

    /// The unfinished uploads in the remote.
    fn unfinished_uploads(&self) -> Vec<String> {
        match &self.place {
            Place::S3 { bucket } => s3_server().unfinished_uploads(bucket),
            Place::Dir(dir) => std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.ends_with(".partial"))
                .collect(),
        }
    }

    /// Leaves an unfinished upload of `name` two hours old, as a killed process does.
    fn leave_unfinished_upload(&self, name: &str) {
        match &self.place {
            // moto says that every upload started in 2010.
            Place::S3 { bucket } => s3_server().start_multipart_upload(bucket, &Remote::key(name)),
            Place::Dir(dir) => {
                let partial =
                    std::fs::File::create(dir.path().join(format!(".{name}.4242.partial")));
                let hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
                partial.unwrap().set_modified(hours_ago).unwrap();
            }
        }
    }

    /// Runs `cargo xtask ARGS` (on `db`, if given) with the S3 settings of the test server and this
    /// test's `backups/`, and checks that the secret key appears nowhere in what it printed.
    fn xtask(&self, db: Option<&TestDb>, args: &[&str]) -> Outcome {
        self.xtask_at(&s3_server().endpoint(), db, args)
    }

    /// Like [`Remote::xtask`], with the S3 endpoint at `endpoint`.
    fn xtask_at(&self, endpoint: &str, db: Option<&TestDb>, args: &[&str]) -> Outcome {
        let url = db.map(TestDb::url_arg);
        let mut all = args.to_vec();
        if let Some(url) = &url {
            all.extend(["--database-url", url.as_str()]);
        }
        let mut env: Vec<(&str, OsString)> = s3_server().env_for(endpoint);
        env.push(("TOEFL_BACKUPS_DIR", self.backups.path().into()));
        let env: Vec<(&str, &std::ffi::OsStr)> =
            env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        let outcome = testkit::run_xtask_with_env(env!("CARGO_BIN_EXE_xtask"), &all, &env);
        assert!(
            !outcome.stdout.contains(SECRET_KEY) && !outcome.stderr.contains(SECRET_KEY),
            "the secret key was shown: {outcome:#?}"
        );
        outcome
    }

    /// Like [`Remote::xtask`], but fails the test unless the command succeeds.
    fn ok(&self, db: Option<&TestDb>, args: &[&str]) -> Outcome {
        let outcome = self.xtask(db, args);
        assert!(outcome.success, "xtask {args:?} failed: {outcome:#?}");
        outcome
    }

    /// Backs `db` up with `--remote`, and returns the local file and the object's name.
    fn backup(&self, db: &TestDb) -> (PathBuf, String) {
        let out = self.ok(Some(db), &["backup", "--json", "--remote", &self.url()]);
        uploaded(&json_line(&out))
    }
}

/// The local file and the object's name of a `--json` line with `path` and `remote`.
fn uploaded(line: &serde_json::Value) -> (PathBuf, String) {
    let path = PathBuf::from(line["path"].as_str().unwrap());
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    (path, name)
}

fn seeded() -> TestDb {
    let db = TestDb::sqlite();
    crate::xtask_ok(&db, &["seed", "--students", "40"]);
    db
}

/// The file's name, size and SHA-256 are the object's.
fn assert_landed(remote: &Remote, line: &serde_json::Value) {
    let (path, name) = uploaded(line);
    assert_eq!(line["remote"], remote.object(&name).as_str(), "{line}");
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(remote.stored(&name), Some((size, Some(sha256_hex(&path)))));
    assert_eq!(remote.bytes(&name), std::fs::read(&path).unwrap());
}

fn backup_lands_remotely_with_its_name_size_and_checksum(kind: Kind) {
    let remote = Remote::new(kind);
    let db = seeded();
    let out = remote.ok(Some(&db), &["backup", "--json", "--remote", &remote.url()]);
    assert_landed(&remote, &json_line(&out));
}

fn export_lands_remotely_with_its_name_size_and_checksum(kind: Kind) {
    let remote = Remote::new(kind);
    let db = seeded();
    let args = ["export", "--compress", "--json", "--remote", &remote.url()];
    let out = remote.ok(Some(&db), &args);
    let line = json_line(&out);
    assert!(line["path"].as_str().unwrap().ends_with(".json.zst"));
    assert_landed(&remote, &line);
}

fn restore_from_the_remote_gives_the_exact_content_and_uploads_the_safety_copy(kind: Kind) {
    let remote = Remote::new(kind);
    let db = seeded();
    let before = db.content_hash();
    let (local, name) = remote.backup(&db);
    std::fs::remove_file(local).unwrap();
    db.execute("DELETE FROM grades");
    let line = replace_from(&remote, &db, "restore", &name);
    assert_eq!(db.content_hash(), before);
    assert_safety_copy_uploaded(&remote, &line, "toefl_pre_restore_");
}

/// Runs `command` (`import` or `restore`) on `db` with the object `name` as its file, and the remote
/// for its safety copy; returns its JSON line.
fn replace_from(remote: &Remote, db: &TestDb, command: &str, name: &str) -> serde_json::Value {
    let (object, url) = (remote.object(name), remote.url());
    let args = [
        command, "--file", &object, "--yes", "--json", "--remote", &url,
    ];
    let line = json_line(&remote.ok(Some(db), &args));
    assert_eq!(line["remote"], object.as_str());
    line
}

/// The safety copy, holding the data the command replaced, went off-site too: the same bytes.
fn assert_safety_copy_uploaded(remote: &Remote, line: &serde_json::Value, series: &str) {
    let safety = line["safety_backup_remote"].as_str().unwrap();
    let name = safety.rsplit('/').next().unwrap();
    assert!(name.starts_with(series), "{safety}");
    assert_eq!(safety, remote.object(name));
    let local_copy = line["safety_backup"].as_str().unwrap();
    assert_eq!(remote.bytes(name), std::fs::read(local_copy).unwrap());
}

#[test]
fn restore_from_the_remote_gives_the_exact_content_postgres_s3() {
    let remote = Remote::new(Kind::S3);
    let db = TestDb::postgres();
    crate::xtask_ok(&db, &["seed", "--students", "40"]);
    let before = db.content_hash();
    let (_, name) = remote.backup(&db);
    db.execute("DELETE FROM grades");
    let object = remote.object(&name);
    remote.ok(
        Some(&db),
        &["restore", "--file", &object, "--yes", "--no-safety-backup"],
    );
    assert_eq!(db.content_hash(), before);
}

fn import_from_the_remote_gives_the_exact_content_and_uploads_the_safety_copy(kind: Kind) {
    let remote = Remote::new(kind);
    let source = seeded();
    let args = ["export", "--compress", "--json", "--remote", &remote.url()];
    let (_, name) = uploaded(&json_line(&remote.ok(Some(&source), &args)));
    let target = TestDb::sqlite();
    crate::xtask_ok(&target, &["seed", "--students", "5", "--seed", "7"]);
    let line = replace_from(&remote, &target, "import", &name);
    assert_eq!(target.content_hash(), source.content_hash());
    assert_safety_copy_uploaded(&remote, &line, "toefl_pre_import_");
}

fn verify_from_the_remote_restores_it_and_removes_the_download(kind: Kind) {
    let remote = Remote::new(kind);
    let db = seeded();
    let out = remote.ok(Some(&db), &["backup", "--json", "--remote", &remote.url()]);
    let backed_up = json_line(&out);
    let (_, name) = uploaded(&backed_up);
    let out = remote.ok(None, &["verify", &remote.object(&name), "--json"]);
    let verified = json_line(&out);
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["rows"], backed_up["rows"]);
    // "downloaded URL to PATH (SHA-256 checked)": PATH is gone once the command has ended.
    let download = out
        .stderr
        .lines()
        .find_map(|l| l.split(" to ").nth(1)?.strip_suffix(" (SHA-256 checked)"))
        .unwrap_or_else(|| panic!("no download line: {out:#?}"));
    assert!(download.ends_with(&name), "{download}");
    assert!(!Path::new(download).exists(), "{download} was left behind");
    assert!(!Path::new(download).parent().unwrap().exists());
}

fn a_second_upload_of_the_same_name_is_refused(kind: Kind) {
    let remote = Remote::new(kind);
    let db = seeded();
    let local = db.dir.path().join("toefl_backup_20260101_020000.db");
    let file = local.to_str().unwrap();
    remote.ok(
        Some(&db),
        &["backup", "--file", file, "--remote", &remote.url()],
    );
    let first = std::fs::read(&local).unwrap();
    db.execute("DELETE FROM grades");
    let again = [
        "backup",
        "--file",
        file,
        "--force",
        "--remote",
        &remote.url(),
    ];
    let out = remote.xtask(Some(&db), &again);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("exists already"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("the local file {file} is kept")),
        "{}",
        out.stderr
    );
    assert_eq!(remote.bytes("toefl_backup_20260101_020000.db"), first);
    assert_ne!(
        std::fs::read(&local).unwrap(),
        first,
        "the new local file stays"
    );
}

#[test]
fn the_server_dying_mid_upload_leaves_no_object_and_keeps_the_local_file_s3() {
    let remote = Remote::new(Kind::S3);
    let db = seeded();
    // About 24 MiB: three parts of 8 MiB. The server dies in the second.
    db.execute("UPDATE students SET notes = hex(randomblob(300000))");
    let proxy = Proxy::start(s3_server().port, 12 * 1024 * 1024);
    let local = db.dir.path().join("toefl_backup_20260101_020000.db");
    let file = local.to_str().unwrap();
    let args = ["backup", "--file", file, "--remote", &remote.url()];
    let out = remote.xtask_at(&proxy.endpoint(), Some(&db), &args);
    assert!(proxy.is_cut(), "the upload reached the cut: {out:#?}");
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("the local file {file} is kept")),
        "{}",
        out.stderr
    );
    assert!(std::fs::metadata(&local).unwrap().len() > 16 * 1024 * 1024);
    assert_eq!(remote.stored("toefl_backup_20260101_020000.db"), None);
    // The abort could not reach the dead server either: the next prune aborts the parts.
    let key = format!("{PREFIX}/toefl_backup_20260101_020000.db");
    assert_eq!(remote.unfinished_uploads(), [key]);
    let prune = [
        "prune",
        "--keep-last",
        "5",
        "--json",
        "--remote",
        &remote.url(),
    ];
    let line = json_line(&remote.ok(None, &prune));
    let object = remote.object("toefl_backup_20260101_020000.db");
    assert_eq!(line["aborted"], serde_json::json!([object]));
    assert_eq!(remote.unfinished_uploads(), Vec::<String>::new());
}

/// Backs `db` up to the remote, then changes the object's bytes in storage.
fn tampered_backup(remote: &Remote, db: &TestDb) -> String {
    let (local, name) = remote.backup(db);
    let mut bytes = std::fs::read(local).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    remote.put(&name, &bytes);
    name
}

/// The command ended with `code` and one line saying that the object changed in storage.
fn assert_refused_as_changed(out: &Outcome, code: i32) {
    assert_eq!(out.code, Some(code), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("was changed or damaged in storage"),
        "{}",
        out.stderr
    );
}

fn changed_bytes_are_refused_by_verify(kind: Kind) {
    let remote = Remote::new(kind);
    let db = seeded();
    let name = tampered_backup(&remote, &db);
    let out = remote.xtask(None, &["verify", &remote.object(&name)]);
    assert_refused_as_changed(&out, 4);
}

fn changed_bytes_are_refused_by_restore_and_the_database_is_unchanged(kind: Kind) {
    let remote = Remote::new(kind);
    let db = seeded();
    let name = tampered_backup(&remote, &db);
    db.execute("DELETE FROM grades");
    let before = db.content_hash();
    let object = remote.object(&name);
    let out = remote.xtask(Some(&db), &["restore", "--file", &object, "--yes"]);
    assert_refused_as_changed(&out, 1);
    assert_eq!(db.content_hash(), before);
    assert_eq!(
        std::fs::read_dir(remote.backups.path()).unwrap().count(),
        1,
        "no safety copy taken: only the backup's own file"
    );
}

/// A failure to reach the remote is one line; the database and `backups/` are as before.
fn assert_one_clear_line(remote: &Remote, db: &TestDb, out: &Outcome, says: &str) {
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!("error: {says}")),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_dir(remote.backups.path()).unwrap().count(), 0);
    assert_eq!(db.query_i64("SELECT count(*) FROM students"), 40);
}

#[test]
fn a_missing_bucket_is_one_clear_line_s3() {
    let remote = Remote::new(Kind::S3);
    let db = seeded();
    let out = remote.xtask(Some(&db), &["backup", "--remote", "s3://no-such-bucket/x"]);
    let says = "the bucket no-such-bucket does not exist at http://127.0.0.1:";
    assert_one_clear_line(&remote, &db, &out, says);
}

#[test]
fn an_unreachable_endpoint_is_one_clear_line_s3() {
    let remote = Remote::new(Kind::S3);
    let db = seeded();
    let nowhere = format!("http://127.0.0.1:{}", testkit::free_port());
    let out = remote.xtask_at(&nowhere, Some(&db), &["export", "--remote", &remote.url()]);
    assert_one_clear_line(&remote, &db, &out, &format!("cannot reach {nowhere}"));
}

#[test]
fn a_missing_directory_is_one_clear_line_dir() {
    let remote = Remote::new(Kind::Dir);
    let db = seeded();
    let Place::Dir(dir) = &remote.place else {
        unreachable!("a directory remote")
    };
    let missing = dir.path().join("not-mounted");
    let url = format!("file://{}", missing.display());
    let out = remote.xtask(Some(&db), &["backup", "--remote", &url]);
    let says = format!("the directory {} does not exist", missing.display());
    assert_one_clear_line(&remote, &db, &out, &says);
}

fn list_remote_shows_its_backups_newest_first_from_their_metadata(kind: Kind) {
    let remote = Remote::new(kind);
    let db = seeded();
    let local = |name: &str| db.dir.path().join(name).to_str().unwrap().to_string();
    let backup = local("toefl_backup_20260103_080000.db");
    let export = local("toefl_export_20260105_080000.json.gz");
    remote.ok(
        Some(&db),
        &["backup", "--file", &backup, "--remote", &remote.url()],
    );
    remote.ok(
        Some(&db),
        &["export", "--file", &export, "--remote", &remote.url()],
    );
    // One of our names without our metadata, and names we did not give.
    remote.put("toefl_pre_import_20260101_080000.json", b"{}");
    remote.put("notes.txt", b"x");
    remote.put("toefl_backup_latest.db", b"x");

    let out = remote.ok(None, &["list", "--json", "--remote", &remote.url()]);
    let line = json_line(&out);
    assert_eq!(line["path"], remote.url().as_str());
    let listed: Vec<(&str, &str, &str, &str)> = line["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let field = |name: &str| b[name].as_str().unwrap_or("?");
            (
                field("file"),
                field("kind"),
                field("backend"),
                field("compression"),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "toefl_export_20260105_080000.json.gz",
                "json",
                "sqlite",
                "gzip"
            ),
            (
                "toefl_backup_20260103_080000.db",
                "native",
                "sqlite",
                "none"
            ),
            ("toefl_pre_import_20260101_080000.json", "?", "?", "?"),
        ]
    );
    let backup_entry = &line["backups"][1];
    assert_eq!(
        backup_entry["path"],
        remote.object("toefl_backup_20260103_080000.db").as_str()
    );
    assert_eq!(
        backup_entry["bytes"],
        std::fs::metadata(&backup).unwrap().len()
    );
    assert_eq!(backup_entry["schema_version"], app::SCHEMA_VERSION);
    assert_eq!(backup_entry["rows"]["students"], 40);
    assert_eq!(backup_entry["created"], "2026-01-03T08:00:00Z");
    // The same, for people, newest first.
    let files: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| l.rsplit("  ").next())
        .filter(|f| f.starts_with(&remote.url()))
        .collect();
    assert_eq!(files.len(), 3, "{}", out.stderr);
    assert!(files[0].ends_with("toefl_export_20260105_080000.json.gz"));
}

fn prune_remote_keeps_what_the_rules_say_and_dry_run_deletes_nothing(kind: Kind) {
    let remote = Remote::new(kind);
    let ours = [
        "toefl_export_20260110_230000.json",
        "toefl_export_20260110_080000.json",
        "toefl_export_20260109_120000.json.gz",
        "toefl_export_20251231_120000.json",
        "toefl_backup_20250101_120000.db",
        "toefl_backup_20240101_120000.dump",
    ];
    let foreign = ["notes.txt", "toefl_export_latest.json"];
    for name in ours.iter().chain(&foreign) {
        remote.put(name, b"x");
    }
    // In a directory, the metadata of an object goes with it.
    if let Place::Dir(dir) = &remote.place {
        std::fs::write(dir.path().join(format!("{}.meta.json", ours[1])), "{}").unwrap();
    }
    let everything = remote.names();
    let url = remote.url();
    let rules = [
        "prune",
        "--keep-last",
        "1",
        "--keep-daily",
        "2",
        "--json",
        "--remote",
        &url,
    ];
    // Exports: the newest, and the newest of the day before; backups: the newest of each day.
    let kept: BTreeSet<String> = [ours[0], ours[2], ours[4], ours[5]]
        .iter()
        .chain(&foreign)
        .map(|s| s.to_string())
        .collect();
    let mut gone: Vec<String> = [ours[1], ours[3]]
        .iter()
        .map(|name| remote.object(name))
        .collect();
    gone.sort();

    let mut dry = rules.to_vec();
    dry.push("--dry-run");
    let line = json_line(&remote.ok(None, &dry));
    assert_eq!(remote.names(), everything, "a dry run deletes nothing");
    let mut would: Vec<String> = serde_json::from_value(line["deleted"].clone()).unwrap();
    would.sort();
    assert_eq!(would, gone);

    let line = json_line(&remote.ok(None, &rules));
    let mut deleted: Vec<String> = serde_json::from_value(line["deleted"].clone()).unwrap();
    deleted.sort();
    assert_eq!(deleted, gone);
    assert_eq!(remote.names(), kept);
    if let Place::Dir(dir) = &remote.place {
        assert!(!dir.path().join(format!("{}.meta.json", ours[1])).exists());
    }
}

fn prune_remote_aborts_uploads_left_by_killed_processes(kind: Kind) {
    let remote = Remote::new(kind);
    remote.put("toefl_export_20260110_230000.json", b"x");
    remote.leave_unfinished_upload("toefl_backup_20260101_000000.db");
    remote.leave_unfinished_upload("someone_elses.bin");
    let args = [
        "prune",
        "--keep-last",
        "1",
        "--json",
        "--remote",
        &remote.url(),
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let line = json_line(&remote.ok(None, &dry));
    let ours = remote.object("toefl_backup_20260101_000000.db");
    assert_eq!(line["aborted"], serde_json::json!([ours]));
    assert_eq!(
        remote.unfinished_uploads().len(),
        2,
        "a dry run aborts nothing"
    );
    let line = json_line(&remote.ok(None, &args));
    assert_eq!(line["aborted"], serde_json::json!([ours]));
    let left = remote.unfinished_uploads();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("someone_elses.bin"), "{left:?}");
}
