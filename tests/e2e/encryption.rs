//! Encrypted backups and exports (age): exact round trips on both backends, the reference `age` tool
//! both ways, ciphertext that shows nothing, no plaintext left anywhere (after success, failure,
//! Ctrl-C or kill), and every bad input refused with the target unchanged.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::Backend;
use testkit::{Outcome, TestDb};

use crate::scripting::json_line;

const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";

/// Keys made by `age-keygen`, and the directories the commands under test write to.
struct Setup {
    /// Keys, and the files tests name with `--file`.
    dir: tempfile::TempDir,
    /// `TOEFL_BACKUPS_DIR`.
    backups: PathBuf,
    /// `TMPDIR`: where plaintext that must be a file may live, for a while.
    tmp: PathBuf,
    /// The private key (identity) file.
    key: PathBuf,
    /// Its public key (recipient).
    public: String,
    /// Someone else's private key.
    stranger: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (backups, tmp) = (dir.path().join("backups"), dir.path().join("tmp"));
        std::fs::create_dir(&backups).unwrap();
        std::fs::create_dir(&tmp).unwrap();
        let (key, stranger) = (dir.path().join("key.txt"), dir.path().join("stranger.txt"));
        for file in [&key, &stranger] {
            age(&[OsStr::new("-o"), file.as_os_str()], "age-keygen");
        }
        let public = age(&[key.as_os_str()], "age-keygen -y");
        let public = String::from_utf8(public).unwrap().trim().to_string();
        Setup {
            dir,
            backups,
            tmp,
            key,
            public,
            stranger,
        }
    }

    /// A path in the setup's directory, as an argument.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn key_arg(&self) -> &str {
        self.key.to_str().unwrap()
    }

    /// The environment that configures encryption to the setup's key.
    fn recipients_env(&self) -> Vec<(&str, &str)> {
        vec![("TOEFL_BACKUP_RECIPIENTS", self.public.as_str())]
    }

    /// Runs `xtask ARGS --database-url URL` with the setup's backups and temporary directories and
    /// the variables `env`.
    fn run_on(&self, db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let url = db.url_arg();
        let mut all = args.to_vec();
        all.extend(["--database-url", url.as_str()]);
        let mut vars = vec![
            ("TOEFL_BACKUPS_DIR", self.backups.as_os_str()),
            ("TMPDIR", self.tmp.as_os_str()),
        ];
        vars.extend(env.iter().map(|(name, value)| (*name, OsStr::new(value))));
        testkit::run_xtask_with_env(env!("CARGO_BIN_EXE_xtask"), &all, &vars)
    }

    /// Like [`Setup::run_on`], but fails unless the command succeeds; gives its JSON line.
    fn ok_on(&self, db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let outcome = self.run_on(db, &all, env);
        assert!(outcome.success, "xtask {args:?} failed: {outcome:#?}");
        json_line(&outcome)
    }

    /// A native backup and an export of `db`, in the setup's directory: encrypted to the setup's
    /// key, or plain.
    fn files_of(&self, db: &TestDb, encrypted: bool) -> [String; 2] {
        let (env, age) = match encrypted {
            true => (self.recipients_env(), ".age"),
            false => (Vec::new(), ""),
        };
        let native = self.path(&format!("backup.{}{age}", native_extension(db)));
        let json = self.path(&format!("export.json{age}"));
        self.ok_on(db, &["backup", "--file", &native], &env);
        self.ok_on(db, &["export", "--file", &json], &env);
        [native, json]
    }

    /// Restores (a native backup) or imports (an export) `file` onto `db`, with `extra` arguments
    /// and the variables `env`.
    fn replace(&self, db: &TestDb, file: &str, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
        let command = if file.contains(".json") {
            "import"
        } else {
            "restore"
        };
        let mut args = vec![command, "--file", file, "--yes"];
        args.extend(extra);
        self.run_on(db, &args, env)
    }

    /// Fails if plaintext is left: the temporary directory must be empty, and `backups/` hold
    /// only age files named `.age`.
    fn assert_no_plaintext_left(&self) {
        assert_eq!(entries(&self.tmp), Vec::<String>::new(), "left in TMPDIR");
        for name in entries(&self.backups) {
            let bytes = std::fs::read(self.backups.join(&name)).unwrap();
            assert!(
                name.ends_with(".age") && bytes.starts_with(AGE_HEADER),
                "{name} in backups/ is not encrypted"
            );
        }
    }
}

/// Runs the reference `age` tool (`program` may carry arguments before `args`); gives its stdout.
fn age(args: &[&OsStr], program: &str) -> Vec<u8> {
    let mut words = program.split(' ');
    let out = Command::new(words.next().unwrap())
        .args(words)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (install the Debian package age): {e}"));
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    out.stdout
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The one error line of a failed command (other lines may tell what it did before failing).
fn error_line(outcome: &Outcome) -> &str {
    let errors: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {outcome:#?}");
    errors[0]
}

fn native_extension(db: &TestDb) -> &'static str {
    match db.url.backend() {
        Backend::Sqlite => "db",
        Backend::Postgres => "dump",
    }
}

fn seeded(backend: Backend) -> TestDb {
    let db = TestDb::of(backend);
    crate::xtask_ok(&db, &["seed", "--students", "30", "--seed", "7"]);
    db
}

/// An export's bytes with the value of `exported_at` blanked: the only part of an export that
/// differs between two exports of the same data (see docs/export-format.md).
fn without_export_time(export: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(export.to_vec()).unwrap();
    let start = text.find("\"exported_at\": \"").unwrap() + "\"exported_at\": \"".len();
    let end = start + text[start..].find('"').unwrap();
    format!("{}{}", &text[..start], &text[end..]).into_bytes()
}

per_backend!(an_encrypted_export_imports_to_the_same_content);
fn an_encrypted_export_imports_to_the_same_content(backend: Backend) {
    let setup = Setup::new();
    let source = seeded(backend);
    let export = setup.ok_on(&source, &["export", "--compress"], &setup.recipients_env());
    assert_eq!(export["encrypted"], true);
    let path = export["path"].as_str().unwrap();
    assert!(path.ends_with(".json.zst.age"), "{path}");
    assert!(std::fs::read(path).unwrap().starts_with(AGE_HEADER));

    let target = TestDb::of(backend);
    let import = setup.ok_on(
        &target,
        &[
            "import",
            "--file",
            path,
            "--yes",
            "--identity",
            setup.key_arg(),
        ],
        &[],
    );
    assert_eq!(import["encrypted"], true);
    assert_eq!(target.content_hash(), source.content_hash());
}

per_backend!(an_encrypted_backup_restores_to_the_same_content);
fn an_encrypted_backup_restores_to_the_same_content(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let original = db.content_hash();
    let backup = setup.ok_on(&db, &["backup"], &setup.recipients_env());
    assert_eq!(backup["encrypted"], true);
    let path = backup["path"].as_str().unwrap();
    assert!(
        path.ends_with(&format!(".{}.age", native_extension(&db))),
        "{path}"
    );
    db.execute("DELETE FROM grades WHERE id % 2 = 0");
    assert_ne!(db.content_hash(), original);

    let args = ["restore", "--file", path, "--yes", "--no-safety-backup"];
    let restore = setup.ok_on(
        &db,
        &[&args[..], &["--identity", setup.key_arg()]].concat(),
        &[],
    );
    assert_eq!(restore["encrypted"], true);
    assert_eq!(db.content_hash(), original);
}

per_backend!(verify_proves_that_encrypted_files_restore);
fn verify_proves_that_encrypted_files_restore(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let plain = setup.ok_on(&db, &["export", "--file", &setup.path("plain.json")], &[]);
    assert_eq!(plain["encrypted"], false);
    for file in setup.files_of(&db, true) {
        let line = setup.ok_on(&db, &["verify", &file, "--identity", setup.key_arg()], &[]);
        assert_eq!(line["verified"], true, "{line}");
        assert_eq!(line["encrypted"], true, "{line}");
        assert_eq!(line["rows"]["students"], 30, "{line}");
    }
}

per_backend!(the_age_tool_decrypts_our_export_to_a_plain_export);
fn the_age_tool_decrypts_our_export_to_a_plain_export(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let recipients = setup.path("recipients.txt");
    std::fs::write(&recipients, format!("# the backup key\n{}\n", setup.public)).unwrap();
    let (plain, encrypted) = (setup.path("plain.json"), setup.path("encrypted.json.age"));
    setup.ok_on(&db, &["export", "--file", &plain], &[]);
    let args = [
        "export",
        "--file",
        &encrypted,
        "--recipients-file",
        &recipients,
    ];
    setup.ok_on(&db, &args, &[]);

    let decrypted = setup.path("decrypted.json");
    let args = ["-d", "-i", setup.key_arg(), "-o", &decrypted, &encrypted];
    age(&args.map(OsStr::new), "age");
    assert_eq!(
        without_export_time(&std::fs::read(&decrypted).unwrap()),
        without_export_time(&std::fs::read(&plain).unwrap())
    );
}

per_backend!(an_export_the_age_tool_encrypted_imports);
fn an_export_the_age_tool_encrypted_imports(backend: Backend) {
    let setup = Setup::new();
    let source = seeded(backend);
    // Named as if it were plain: an encrypted file is known by its content.
    let (plain, encrypted) = (setup.path("plain.json"), setup.path("theirs.json"));
    setup.ok_on(&source, &["export", "--file", &plain], &[]);
    age(
        &["-r", &setup.public, "-o", &encrypted, &plain].map(OsStr::new),
        "age",
    );

    let target = TestDb::of(backend);
    let args = ["import", "--file", &encrypted, "--yes"];
    setup.ok_on(
        &target,
        &[&args[..], &["--identity", setup.key_arg()]].concat(),
        &[],
    );
    assert_eq!(target.content_hash(), source.content_hash());
}

per_backend!(ciphertext_shows_no_table_student_name_or_email);
fn ciphertext_shows_no_table_student_name_or_email(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let mut secrets: Vec<String> = app::TABLES.iter().map(|t| t.name.to_string()).collect();
    secrets.extend(db.query_texts("SELECT name FROM students ORDER BY id LIMIT 10"));
    secrets.extend(
        db.query_texts("SELECT email FROM students WHERE email IS NOT NULL ORDER BY id LIMIT 10"),
    );
    secrets.extend(db.query_texts("SELECT email FROM users ORDER BY id"));
    let contains =
        |bytes: &[u8], text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
    // The same data in plaintext shows them all: the search below can find what is there.
    let plain = setup.path("plain.json");
    setup.ok_on(&db, &["export", "--file", &plain], &[]);
    let plain = std::fs::read(plain).unwrap();
    assert!(secrets.iter().all(|secret| contains(&plain, secret)));

    for file in setup.files_of(&db, true) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in &secrets {
            assert!(!contains(&bytes, secret), "{file} shows {secret:?}");
        }
    }
}

per_backend!(no_plaintext_is_left_after_success_or_failure);
fn no_plaintext_is_left_after_success_or_failure(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let env = setup.recipients_env();
    let backup = setup.ok_on(&db, &["backup"], &env);
    let export = setup.ok_on(&db, &["export"], &env);
    let identity = ["--identity", setup.key_arg()];
    for line in [&backup, &export] {
        let file = line["path"].as_str().unwrap();
        setup.ok_on(&db, &[&["verify", file][..], &identity].concat(), &env);
        let replaced = setup.replace(&db, file, &identity, &env);
        assert!(replaced.success, "{replaced:#?}");
        // Damaged at its end, it fails once decrypting (and, for an export, loading) has begun.
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        let damaged = setup.path(&format!("damaged-{name}"));
        let bytes = std::fs::read(file).unwrap();
        std::fs::write(&damaged, &bytes[..bytes.len() - 10]).unwrap();
        let failed = setup.replace(&db, &damaged, &identity, &env);
        assert_eq!(failed.code, Some(1), "{failed:#?}");
    }
    setup.assert_no_plaintext_left();
}

/// A command running on a pseudo-terminal through script(1), its screen read as it comes.
struct TerminalSession {
    child: Child,
    keyboard: ChildStdin,
    screen: Arc<Mutex<String>>,
}

impl TerminalSession {
    fn start(setup: &Setup, db: &TestDb, args: &[&str]) -> TerminalSession {
        let url = db.url_arg();
        let command = std::iter::once(env!("CARGO_BIN_EXE_xtask"))
            .chain(args.iter().copied())
            .chain(["--database-url", &url])
            .map(|word| format!("'{}'", word.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("TOEFL_BACKUPS_DIR", &setup.backups)
            .env("TMPDIR", &setup.tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run script(1) from util-linux");
        let keyboard = child.stdin.take().unwrap();
        let mut output = child.stdout.take().unwrap();
        let screen = Arc::new(Mutex::new(String::new()));
        let shown = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = output.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]);
                shown.lock().unwrap().push_str(&text);
            }
        });
        TerminalSession {
            child,
            keyboard,
            screen,
        }
    }

    /// Waits until the screen shows `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.screen.lock().unwrap().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in {:?}",
                self.screen
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the command to end.
    fn wait(mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "still running: {:?}",
                self.screen
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts restoring an encrypted backup of `db` on a terminal, up to the question that waits for
/// the user: by then the backup was decrypted whole, into a private directory of the process.
/// Returns the session and the process's id, read from that directory's name.
fn restore_waiting_at_the_question(setup: &Setup, db: &TestDb) -> (TerminalSession, String) {
    let [native, _] = setup.files_of(db, true);
    let args = ["restore", "--file", &native, "--identity", setup.key_arg()];
    let session = TerminalSession::start(setup, db, &args);
    session.wait_for("Go on?");
    let private = entries(&setup.tmp);
    assert_eq!(private.len(), 1, "one private directory: {private:?}");
    let pid = private[0]
        .strip_prefix("toefl-private-")
        .and_then(|rest| rest.split('-').next())
        .unwrap_or_else(|| panic!("{private:?}"))
        .to_string();
    let copy = setup.tmp.join(&private[0]);
    assert_eq!(entries(&copy).len(), 1, "the decrypted copy is there");
    (session, pid)
}

fn kill(signal: &str, pid: &str) {
    let status = Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

per_backend!(ctrl_c_leaves_no_plaintext);
fn ctrl_c_leaves_no_plaintext(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let before = db.content_hash();
    let (mut session, _) = restore_waiting_at_the_question(&setup, &db);
    session.keyboard.write_all(b"\x03").unwrap();
    session.wait();
    setup.assert_no_plaintext_left();
    assert_eq!(db.content_hash(), before);
}

per_backend!(sigterm_leaves_no_plaintext);
fn sigterm_leaves_no_plaintext(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let (session, pid) = restore_waiting_at_the_question(&setup, &db);
    kill("-TERM", &pid);
    session.wait();
    setup.assert_no_plaintext_left();
}

per_backend!(plaintext_left_by_kill_9_goes_at_the_next_run);
fn plaintext_left_by_kill_9_goes_at_the_next_run(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let (session, pid) = restore_waiting_at_the_question(&setup, &db);
    kill("-KILL", &pid);
    session.wait();
    assert_eq!(entries(&setup.tmp).len(), 1, "SIGKILL cannot be caught");

    setup.ok_on(&db, &["backup"], &setup.recipients_env());
    setup.assert_no_plaintext_left();
}

/// Changes `db` after its encrypted files were taken (so that replacing it with them would show),
/// and gives its content hash.
fn changed_since_the_files(db: &TestDb) -> String {
    db.execute("DELETE FROM grades WHERE id % 3 = 0");
    db.content_hash()
}

per_backend!(no_identity_is_refused_and_changes_nothing);
fn no_identity_is_refused_and_changes_nothing(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let files = setup.files_of(&db, true);
    let before = changed_since_the_files(&db);
    for file in &files {
        let outcome = setup.replace(&db, file, &[], &[]);
        assert_eq!(outcome.code, Some(1), "{outcome:#?}");
        assert!(error_line(&outcome).contains("pass --identity"));
        assert_eq!(db.content_hash(), before);
    }
}

per_backend!(a_wrong_identity_is_refused_and_changes_nothing);
fn a_wrong_identity_is_refused_and_changes_nothing(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let files = setup.files_of(&db, true);
    let before = changed_since_the_files(&db);
    let stranger = ["--identity", setup.stranger.to_str().unwrap()];
    for file in &files {
        let outcome = setup.replace(&db, file, &stranger, &[]);
        assert_eq!(outcome.code, Some(1), "{outcome:#?}");
        assert!(error_line(&outcome).contains("cannot be decrypted with"));
        let verify = setup.run_on(&db, &[&["verify", file][..], &stranger].concat(), &[]);
        assert_eq!(
            verify.code,
            Some(1),
            "a wrong key is not damage: {verify:#?}"
        );
        assert_eq!(db.content_hash(), before);
    }
}

/// Damages each encrypted file of `db` with `damage`, then checks that restore and import refuse
/// it (exit 1), verify fails it (exit 4), and the target stays as it was. The damage is in the last
/// 64 KiB chunk: an export's import has begun loading when it is found.
fn damaged_files_are_refused(backend: Backend, damage: fn(&mut Vec<u8>)) {
    let setup = Setup::new();
    let db = seeded(backend);
    let files = setup.files_of(&db, true);
    let before = changed_since_the_files(&db);
    let identity = ["--identity", setup.key_arg()];
    for file in &files {
        let mut bytes = std::fs::read(file).unwrap();
        damage(&mut bytes);
        std::fs::write(file, bytes).unwrap();
        let args = [&identity[..], &["--no-safety-backup"]].concat();
        let outcome = setup.replace(&db, file, &args, &[]);
        assert_eq!(outcome.code, Some(1), "{outcome:#?}");
        assert!(error_line(&outcome).contains("damaged or truncated"));
        let verify = setup.run_on(&db, &[&["verify", file][..], &identity].concat(), &[]);
        assert_eq!(verify.code, Some(4), "{verify:#?}");
        assert_eq!(db.content_hash(), before);
    }
}

per_backend!(a_truncated_file_is_refused_and_changes_nothing);
fn a_truncated_file_is_refused_and_changes_nothing(backend: Backend) {
    damaged_files_are_refused(backend, |bytes| bytes.truncate(bytes.len() - 100));
}

per_backend!(a_flipped_byte_is_refused_and_changes_nothing);
fn a_flipped_byte_is_refused_and_changes_nothing(backend: Backend) {
    damaged_files_are_refused(backend, |bytes| {
        let near_the_end = bytes.len() - 100;
        bytes[near_the_end] ^= 0x01;
    });
}

per_backend!(a_recipient_that_is_not_a_key_is_a_usage_error);
fn a_recipient_that_is_not_a_key_is_a_usage_error(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let [native, json] = setup.files_of(&db, false);
    let before = changed_since_the_files(&db);
    let bad = ["--recipient", "age1notakey"];
    let commands: [&[&str]; 6] = [
        &["export"],
        &["export", "--file", &setup.path("new.json.age")],
        &["backup"],
        &["backup", "--file", &setup.path("new.db.age")],
        &["import", "--file", &json, "--yes"],
        &["restore", "--file", &native, "--yes"],
    ];
    for command in commands {
        let args = [command, &bad[..], &["--json"]].concat();
        let outcome = setup.run_on(&db, &args, &[]);
        assert_eq!(outcome.code, Some(2), "{command:?}: {outcome:#?}");
        assert_eq!(json_line(&outcome)["exit_code"], 2);
        assert!(error_line(&outcome).contains("'age1notakey' is not an age public key"));
        // Nothing written: no backup, no safety copy, no new file, the target unchanged.
        assert_eq!(entries(&setup.backups), Vec::<String>::new());
        assert!(!Path::new(&setup.path("new.json.age")).exists());
        assert!(!Path::new(&setup.path("new.db.age")).exists());
        assert_eq!(db.content_hash(), before);
    }
    let empty = setup.run_on(&db, &["backup"], &[("TOEFL_BACKUP_RECIPIENTS", " ")]);
    assert_eq!(
        empty.code,
        Some(2),
        "an empty variable is not 'no encryption': {empty:#?}"
    );
}

per_backend!(safety_copies_are_encrypted_when_recipients_are_configured);
fn safety_copies_are_encrypted_when_recipients_are_configured(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    let [native, json] = setup.files_of(&db, false);
    for (command, file) in [("import", &json), ("restore", &native)] {
        let line = setup.ok_on(
            &db,
            &[command, "--file", file, "--yes"],
            &setup.recipients_env(),
        );
        assert_eq!(line["encrypted"], false, "the file read was plain");
        let copy = line["safety_backup"].as_str().unwrap();
        assert!(copy.ends_with(".age"), "{copy}");
        let identity = ["--identity", setup.key_arg()];
        setup.ok_on(&db, &[&["verify", copy][..], &identity].concat(), &[]);
    }
    setup.assert_no_plaintext_left();
}

per_backend!(migrate_encrypts_its_safety_copy);
fn migrate_encrypts_its_safety_copy(backend: Backend) {
    let setup = Setup::new();
    let db = crate::old_backups::v1_database(backend);
    let line = setup.ok_on(&db, &["migrate"], &setup.recipients_env());
    let copy = line["safety_backup"].as_str().unwrap();
    assert!(copy.ends_with(".json.age"), "{copy}");
    let identity = ["--identity", setup.key_arg()];
    let verified = setup.ok_on(&db, &[&["verify", copy][..], &identity].concat(), &[]);
    assert_eq!(
        verified["schema_version"], 1,
        "the data as it was: {verified}"
    );
    setup.assert_no_plaintext_left();
}

per_backend!(list_shows_encrypted_files_as_encrypted_and_whole_with_an_identity);
fn list_shows_encrypted_files_as_encrypted_and_whole_with_an_identity(backend: Backend) {
    let setup = Setup::new();
    let db = seeded(backend);
    setup.ok_on(&db, &["backup"], &setup.recipients_env());
    setup.ok_on(&db, &["export"], &setup.recipients_env());
    let list = |extra: &[&str]| {
        let outcome = setup.run_on(&db, &[&["list", "--json"][..], extra].concat(), &[]);
        assert!(outcome.success, "{outcome:#?}");
        (json_line(&outcome)["backups"].clone(), outcome.stderr)
    };

    let (sealed, said) = list(&[]);
    assert_eq!(sealed.as_array().unwrap().len(), 2, "{sealed}");
    for file in sealed.as_array().unwrap() {
        assert_eq!(file["encrypted"], true, "{file}");
        assert!(file["kind"].is_null() && file["rows"].is_null(), "{file}");
        assert!(file["bytes"].as_u64().unwrap() > 0, "{file}");
        assert!(file["created"].as_str().unwrap().ends_with('Z'), "{file}");
    }
    assert!(said.contains("pass --identity"), "{said}");

    let (whole, _) = list(&["--identity", setup.key_arg()]);
    let kinds: Vec<(&str, &str)> = whole
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            (
                file["kind"].as_str().unwrap(),
                file["backend"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(kinds.contains(&("native", backend.as_str())), "{whole}");
    assert!(kinds.contains(&("json", backend.as_str())), "{whole}");
    for file in whole.as_array().unwrap() {
        assert_eq!(file["encrypted"], true, "{file}");
        assert_eq!(file["schema_version"], app::SCHEMA_VERSION, "{file}");
    }
}

#[test]
fn prune_counts_encrypted_files_in_their_series() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "toefl_export_20260103_000000.json.zst.age",
        "toefl_export_20260102_000000.json",
        "toefl_export_20260101_000000.json.age",
        "toefl_backup_20260101_000000.db.age",
    ];
    for name in names {
        std::fs::write(dir.path().join(name), "content is not read").unwrap();
    }
    let args = ["prune", "--keep-last", "1", "--json", "--dir"];
    let outcome = crate::xtask(&[&args[..], &[dir.path().to_str().unwrap()]].concat());
    assert!(outcome.success, "{outcome:#?}");
    assert_eq!(entries(dir.path()), [names[3], names[0]]);
}
