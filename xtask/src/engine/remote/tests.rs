//! The remote engine against a real moto server and real directories: what is uploaded is what is
//! stored and what comes back; nothing is replaced; changed bytes are refused; a failed upload
//! leaves nothing; leftovers of killed uploads are found and aborted.

use sha2::{Digest, Sha256};
use testkit::s3::{s3_server, ACCESS_KEY, REGION, SECRET_KEY};

use super::dir::DirStore;
use super::s3::{S3Settings, S3Store, PART_SIZE};
use super::*;

#[test]
fn remote_urls_parse() {
    let s3 = |bucket: &str, prefix: &str| RemoteUrl::S3 {
        bucket: bucket.into(),
        prefix: prefix.into(),
    };
    let cases = [
        ("s3://backups", s3("backups", "")),
        ("s3://backups/", s3("backups", "")),
        ("s3://backups/toefl/prod/", s3("backups", "toefl/prod")),
        ("file:///mnt/nas", RemoteUrl::Dir("/mnt/nas".into())),
        ("file:///mnt/nas/", RemoteUrl::Dir("/mnt/nas".into())),
        ("file:///", RemoteUrl::Dir("/".into())),
    ];
    for (text, url) in cases {
        assert_eq!(RemoteUrl::parse(text), Ok(url), "{text}");
    }
    for text in [
        "s3://",
        "s3:///prefix",
        "s3://bad bucket/x",
        "s3://b/a//c",
        "file://relative/dir",
        "/mnt/nas",
        "https://bucket.s3.amazonaws.com",
    ] {
        let error = RemoteUrl::parse(text).unwrap_err();
        assert!(error.contains(FORMS), "{text}: {error}");
    }
}

#[test]
fn object_urls_name_a_remote_and_a_file() {
    let cases = [
        ("s3://b/toefl.db", "s3://b/", "toefl.db"),
        ("s3://b/p/q/toefl.db", "s3://b/p/q", "toefl.db"),
        ("file:///mnt/nas/toefl.db", "file:///mnt/nas", "toefl.db"),
    ];
    for (text, remote, name) in cases {
        let object = ObjectUrl::parse(text).unwrap().unwrap();
        assert_eq!(
            (object.remote.to_string().as_str(), object.name.as_str()),
            (remote, name)
        );
        assert_eq!(object.to_string(), text);
    }
    assert_eq!(ObjectUrl::parse("backups/toefl.db"), None);
    for text in ["s3://b/", "s3://b", "file:///mnt/nas/", "file:///mnt/.."] {
        assert!(ObjectUrl::parse(text).unwrap().is_err(), "{text}");
    }
}

#[test]
fn metadata_must_survive_s3() {
    let ok: Metadata = [("kind".to_string(), "native".to_string())].into();
    assert!(check_metadata(&ok).is_ok());
    for (key, value) in [("Kind", "x"), ("kind", "é"), ("sha256", "x"), ("", "x")] {
        let bad: Metadata = [(key.to_string(), value.to_string())].into();
        assert!(check_metadata(&bad).is_err(), "{key}={value}");
    }
}

/// A remote of one kind, and a way to look at what it stores without the code under test.
struct Fixture {
    remote: Remote,
    backing: Backing,
    /// Scratch space for the local files to upload.
    local: tempfile::TempDir,
}

enum Backing {
    S3 { bucket: String, prefix: String },
    Dir(tempfile::TempDir),
}

fn s3_settings(endpoint: String) -> S3Settings {
    S3Settings {
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        session_token: None,
        region: REGION.into(),
        endpoint: Some(endpoint),
    }
}

impl Fixture {
    /// A new bucket on the test server, used under a prefix.
    fn s3() -> Fixture {
        let bucket = s3_server().create_bucket();
        let prefix = "toefl/prod".to_string();
        let settings = s3_settings(s3_server().endpoint());
        let store = S3Store::open(&bucket, &prefix, &settings).expect("open the bucket");
        Fixture {
            remote: Remote {
                url: RemoteUrl::S3 {
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                },
                store: Box::new(store),
            },
            backing: Backing::S3 { bucket, prefix },
            local: tempfile::tempdir().unwrap(),
        }
    }

    /// A new directory.
    fn dir() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path()).expect("open the directory");
        Fixture {
            remote: Remote {
                url: RemoteUrl::Dir(dir.path().to_path_buf()),
                store: Box::new(store),
            },
            backing: Backing::Dir(dir),
            local: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes a local file `name` of `size` bytes (distinct for each `seed`).
    fn local_file(&self, name: &str, size: usize, seed: u8) -> std::path::PathBuf {
        let path = self.local.path().join(format!("{seed}")).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..size)
            .map(|i| (i as u64 * 2654435761 % 251) as u8 ^ seed)
            .collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The bytes stored as `name`, and the SHA-256 in its metadata; `None` when absent.
    fn stored(&self, name: &str) -> Option<(Vec<u8>, Option<String>)> {
        match &self.backing {
            Backing::S3 { bucket, prefix } => {
                let key = format!("{prefix}/{name}");
                let (_, metadata) = s3_server().head(bucket, &key)?;
                let bytes = s3_server().get(bucket, &key);
                Some((bytes, metadata.get("sha256").cloned()))
            }
            Backing::Dir(dir) => {
                let bytes = std::fs::read(dir.path().join(name)).ok()?;
                let sidecar = std::fs::read(dir.path().join(format!("{name}.meta.json"))).ok();
                let metadata: Option<Metadata> =
                    sidecar.map(|s| serde_json::from_slice(&s).unwrap());
                Some((bytes, metadata.and_then(|m| m.get("sha256").cloned())))
            }
        }
    }

    /// Replaces the bytes stored as `name`, keeping its metadata: storage that changed them.
    fn tamper(&self, name: &str, bytes: &[u8]) {
        match &self.backing {
            Backing::S3 { bucket, prefix } => {
                let key = format!("{prefix}/{name}");
                let (_, metadata) = s3_server().head(bucket, &key).unwrap();
                let metadata: Vec<(&str, &str)> = metadata
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                s3_server().put(bucket, &key, bytes, &metadata);
            }
            Backing::Dir(dir) => std::fs::write(dir.path().join(name), bytes).unwrap(),
        }
    }

    /// Leaves an unfinished upload of `name`, as a process killed mid-upload does.
    fn leave_unfinished_upload(&self, name: &str) {
        match &self.backing {
            // moto says every upload started in 2010: it is stale.
            Backing::S3 { bucket, prefix } => {
                s3_server().start_multipart_upload(bucket, &format!("{prefix}/{name}"))
            }
            Backing::Dir(dir) => {
                let partial = dir.path().join(format!(".{name}.4242.partial"));
                let file = std::fs::File::create(&partial).unwrap();
                let two_hours_ago =
                    std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
                file.set_modified(two_hours_ago).unwrap();
            }
        }
    }

    fn unfinished_uploads(&self) -> usize {
        match &self.backing {
            Backing::S3 { bucket, .. } => s3_server().unfinished_uploads(bucket).len(),
            Backing::Dir(dir) => std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().ends_with(".partial")
                })
                .count(),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

const NAME: &str = "toefl_backup_20260101_020000.db";

fn described(kind: &str) -> Metadata {
    [("kind".to_string(), kind.to_string())].into()
}

fn upload_then_download_gives_the_same_bytes(fixture: Fixture, size: usize) {
    let path = fixture.local_file(NAME, size, 1);
    let bytes = std::fs::read(&path).unwrap();
    let info = fixture.remote.upload(&path, &described("native")).unwrap();
    let sha256 = sha256_hex(&bytes);
    assert_eq!(
        (
            info.size,
            info.sha256(),
            info.metadata.get("kind").map(String::as_str)
        ),
        (size as u64, Some(sha256.as_str()), Some("native"))
    );
    assert_eq!(fixture.stored(NAME), Some((bytes.clone(), Some(sha256))));
    assert_eq!(
        fixture.remote.list().unwrap(),
        [(NAME.to_string(), size as u64)]
    );
    let downloaded = fixture.remote.download(NAME).unwrap();
    assert_eq!(std::fs::read(downloaded.path()).unwrap(), bytes);
    let temporary = downloaded.path().parent().unwrap().to_path_buf();
    drop(downloaded);
    assert!(!temporary.exists(), "the download's directory is removed");
}

#[test]
fn upload_then_download_gives_the_same_bytes_dir() {
    upload_then_download_gives_the_same_bytes(Fixture::dir(), 100_000);
}

#[test]
fn upload_then_download_gives_the_same_bytes_s3() {
    upload_then_download_gives_the_same_bytes(Fixture::s3(), 100_000);
}

#[test]
fn large_files_go_up_in_parts_s3() {
    let fixture = Fixture::s3();
    upload_then_download_gives_the_same_bytes(Fixture::s3(), 2 * PART_SIZE + 12345);
    let path = fixture.local_file(NAME, 2 * PART_SIZE + 1, 2);
    fixture.remote.upload(&path, &Metadata::new()).unwrap();
    let Backing::S3 { bucket, prefix } = &fixture.backing else {
        unreachable!()
    };
    let response = s3_server().request("HEAD", &format!("/{bucket}/{prefix}/{NAME}"), &[], b"");
    // The ETag of a multipart object ends with its number of parts.
    assert!(
        response.header("etag").unwrap().ends_with("-3\""),
        "{response:?}"
    );
}

fn an_object_is_never_replaced(fixture: Fixture, size: usize) {
    let first = fixture.local_file(NAME, 1000, 1);
    fixture.remote.upload(&first, &Metadata::new()).unwrap();
    let second = fixture.local_file(NAME, size, 2);
    let error = fixture
        .remote
        .upload(&second, &Metadata::new())
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("exists already"), "{message}");
    // The store itself refuses too, when an object appears between the check and the upload
    // (`If-None-Match: *` on S3, a hard link in a directory).
    let size = std::fs::metadata(&second).unwrap().len();
    let (_, sha256) = hash_file(&second).unwrap();
    let mut source = CheckedReader::open(&second, size, &sha256).unwrap();
    let metadata = [(SHA256.to_string(), sha256)].into();
    let error = fixture
        .remote
        .store
        .create(NAME, &mut source, size, &metadata)
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("appeared meanwhile"),
        "{error:#}"
    );
    let (bytes, _) = fixture.stored(NAME).unwrap();
    assert_eq!(bytes, std::fs::read(first).unwrap());
    assert_eq!(fixture.unfinished_uploads(), 0);
}

#[test]
fn an_object_is_never_replaced_dir() {
    an_object_is_never_replaced(Fixture::dir(), 2000);
}

#[test]
fn an_object_is_never_replaced_s3() {
    an_object_is_never_replaced(Fixture::s3(), 2000);
}

#[test]
fn an_object_is_never_replaced_by_parts_s3() {
    an_object_is_never_replaced(Fixture::s3(), PART_SIZE + 1);
}

fn changed_bytes_are_refused(fixture: Fixture) {
    let path = fixture.local_file(NAME, 5000, 1);
    fixture.remote.upload(&path, &Metadata::new()).unwrap();
    let mut changed = std::fs::read(&path).unwrap();
    changed[100] ^= 1;
    fixture.tamper(NAME, &changed);
    let error = fixture.remote.download(NAME).err().expect("refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("was changed or damaged in storage"),
        "{message}"
    );
}

#[test]
fn changed_bytes_are_refused_dir() {
    changed_bytes_are_refused(Fixture::dir());
}

#[test]
fn changed_bytes_are_refused_s3() {
    changed_bytes_are_refused(Fixture::s3());
}

/// A file that does not match the hash taken before the upload (it changed meanwhile) creates no
/// object and leaves no unfinished upload.
fn a_changed_source_creates_nothing(fixture: Fixture, size: usize) {
    let path = fixture.local_file(NAME, size, 1);
    let mut source = CheckedReader::open(&path, size as u64, &sha256_hex(b"other bytes")).unwrap();
    let metadata = [(SHA256.to_string(), sha256_hex(b"other bytes"))].into();
    let error = fixture
        .remote
        .store
        .create(NAME, &mut source, size as u64, &metadata)
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("changed while it was being uploaded"),
        "{error:#}"
    );
    assert_eq!(fixture.stored(NAME), None);
    assert_eq!(fixture.unfinished_uploads(), 0);
}

#[test]
fn a_changed_source_creates_nothing_dir() {
    a_changed_source_creates_nothing(Fixture::dir(), 1000);
}

#[test]
fn a_changed_source_creates_nothing_s3() {
    a_changed_source_creates_nothing(Fixture::s3(), 1000);
    a_changed_source_creates_nothing(Fixture::s3(), PART_SIZE + 1);
}

fn stale_uploads_are_found_and_aborted(fixture: Fixture) {
    fixture.leave_unfinished_upload(NAME);
    fixture.leave_unfinished_upload("someone_elses.bin");
    let stale = fixture.remote.stale_uploads(|name| name == NAME).unwrap();
    assert_eq!(
        stale.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        [NAME]
    );
    fixture.remote.abort(&stale[0]).unwrap();
    assert_eq!(fixture.unfinished_uploads(), 1, "only ours is aborted");
    assert_eq!(
        fixture.remote.stale_uploads(|name| name == NAME).unwrap(),
        []
    );
}

#[test]
fn stale_uploads_are_found_and_aborted_dir() {
    stale_uploads_are_found_and_aborted(Fixture::dir());
}

#[test]
fn stale_uploads_are_found_and_aborted_s3() {
    stale_uploads_are_found_and_aborted(Fixture::s3());
}

#[test]
fn a_running_upload_is_not_stale_dir() {
    let fixture = Fixture::dir();
    let Backing::Dir(dir) = &fixture.backing else {
        unreachable!()
    };
    std::fs::File::create(dir.path().join(format!(".{NAME}.4242.partial"))).unwrap();
    assert_eq!(fixture.remote.stale_uploads(|_| true).unwrap(), []);
}

fn list_and_delete(fixture: Fixture) {
    for (name, seed) in [(NAME, 1), ("toefl_export_20260101_020000.json", 2)] {
        let path = fixture.local_file(name, 10 * seed as usize, seed);
        fixture.remote.upload(&path, &Metadata::new()).unwrap();
    }
    let mut listed = fixture.remote.list().unwrap();
    listed.sort();
    assert_eq!(
        listed,
        [
            (NAME.to_string(), 10),
            ("toefl_export_20260101_020000.json".to_string(), 20)
        ]
    );
    fixture.remote.delete(NAME).unwrap();
    assert_eq!(fixture.stored(NAME), None);
    assert_eq!(fixture.remote.list().unwrap().len(), 1);
    let error = fixture.remote.describe(NAME).unwrap_err();
    assert!(format!("{error:#}").contains("does not exist"), "{error:#}");
}

#[test]
fn list_and_delete_dir() {
    let fixture = Fixture::dir();
    let Backing::Dir(dir) = &fixture.backing else {
        unreachable!()
    };
    // Deeper directories are not the remote's objects.
    std::fs::create_dir(dir.path().join("older")).unwrap();
    list_and_delete(fixture);
}

#[test]
fn list_and_delete_s3() {
    let fixture = Fixture::s3();
    let Backing::S3 { bucket, prefix } = &fixture.backing else {
        unreachable!()
    };
    // Keys outside the prefix, or deeper in it, are not the remote's objects.
    s3_server().put(bucket, "toefl_backup_20250101_000000.db", b"x", &[]);
    s3_server().put(bucket, &format!("{prefix}/older/{NAME}"), b"x", &[]);
    list_and_delete(fixture);
}

#[test]
fn a_missing_bucket_says_so_s3() {
    let settings = s3_settings(s3_server().endpoint());
    let error = S3Store::open("no-such-bucket", "", &settings)
        .err()
        .unwrap();
    assert!(
        format!("{error:#}").starts_with("the bucket no-such-bucket does not exist at http://"),
        "{error:#}"
    );
}

#[test]
fn an_unreachable_endpoint_says_so_s3() {
    let nowhere = s3_settings(format!("http://127.0.0.1:{}", testkit::free_port()));
    let error = S3Store::open("bucket", "", &nowhere).err().unwrap();
    assert!(
        format!("{error:#}").starts_with("cannot reach http://127.0.0.1:"),
        "{error:#}"
    );
}

#[test]
fn a_missing_directory_says_so_dir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-mounted");
    let error = DirStore::open(&missing).err().unwrap();
    assert!(
        format!("{error:#}").contains("does not exist: create it (or mount the disk"),
        "{error:#}"
    );
}
