//! Encrypted backups and exports in the [age](https://age-encryption.org) format, with X25519 keys:
//! whoever writes backups needs only public keys (recipients), and only the holder of a private key
//! (an identity) can read them, with this tool or with the standard `age` command-line tool.
//!
//! Encryption and decryption are streamed, 64 KiB at a time, so memory stays flat. A file is known
//! to be encrypted by its content (the `age-encryption.org/v1` header), whatever its name. Plaintext
//! that must exist as a file (a SQLite copy, a dump, a decrypted native backup) lives only in a
//! [`PrivateDir`], which is removed on every way out, Ctrl-C included.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use age::x25519;
use anyhow::Context as _;

use super::archive::owner_only;

/// The first line of every age file (format version 1).
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The extension an encrypted file's name gains.
pub const AGE_EXTENSION: &str = "age";

/// The environment variable that holds the recipients when no option names them.
pub const RECIPIENTS_ENV: &str = "TOEFL_BACKUP_RECIPIENTS";

/// The extension of a new file: `extension`, with `.age` after it when it is encrypted.
pub fn extension(extension: &str, recipients: Option<&Recipients>) -> String {
    match recipients {
        Some(_) => format!("{extension}.{AGE_EXTENSION}"),
        None => extension.to_string(),
    }
}

/// Refuses (as a usage error) a file name given for a new file that says the opposite of what it
/// will hold: an encrypted file's name ends in `.age`, and only an encrypted file's does.
pub fn check_name(path: &Path, recipients: Option<&Recipients>) -> anyhow::Result<()> {
    let shown = path.display();
    let named_encrypted = path.extension() == Some(OsStr::new(AGE_EXTENSION));
    let message = match (recipients, named_encrypted) {
        (Some(_), false) => format!(
            "{shown} would be encrypted, and an encrypted file's name ends in .{AGE_EXTENSION}: \
             name it {shown}.{AGE_EXTENSION}"
        ),
        (None, true) => format!(
            "{shown} ends in .{AGE_EXTENSION}, but there is no recipient to encrypt it to: pass \
             --recipient or --recipients-file, or set {RECIPIENTS_ENV}"
        ),
        _ => return Ok(()),
    };
    Err(crate::exit::Exit::Usage(message).into())
}

/// Whether a file starting with `head` is an age file.
pub fn is_encrypted(head: &[u8]) -> bool {
    head.starts_with(AGE_MAGIC)
}

/// Parses one public key; the error says what the text is instead.
fn parse_recipient(text: &str) -> Result<x25519::Recipient, &'static str> {
    if is_private_key(text) {
        return Err(
            "is a private key (AGE-SECRET-KEY-...), not a public key: give only the public key \
             (`age-keygen -y KEYFILE` prints it), and keep the private key off this machine",
        );
    }
    text.parse().map_err(|_| {
        "is not an age public key (age1..., as `age-keygen` prints it; only X25519 keys are \
         supported)"
    })
}

fn is_private_key(text: &str) -> bool {
    text.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-")
}

/// A key for messages: never a private key, which must not end up in logs.
fn shown_key(text: &str) -> String {
    match is_private_key(text) {
        true => "AGE-SECRET-KEY-...".to_string(),
        false => format!("'{text}'"),
    }
}

/// The keys of a recipients file, as `age -R` reads it: one a line, blank lines and `#` comments
/// skipped. A bad line is named by its number only, in case it holds a secret.
fn read_recipients_file(path: &Path) -> Result<Vec<x25519::Recipient>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the recipients file {shown}: {e}"))?;
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_recipient(line)
            .map_err(|why| format!("recipients file {shown}, line {}: {why}", number + 1))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(format!(
            "the recipients file {shown} holds no key: put one age public key (age1...) a line"
        ));
    }
    Ok(keys)
}

/// The public keys a file is encrypted to; never empty.
#[derive(Debug, Clone)]
pub struct Recipients(Vec<x25519::Recipient>);

impl Recipients {
    /// The recipients given as `keys` (`--recipient`) and in recipients `files`, or when there are
    /// none, in `env` (the value of `TOEFL_BACKUP_RECIPIENTS`, keys separated by commas or
    /// whitespace); `None` when nothing names any, and files are written in plaintext. The error,
    /// a usage error, names the bad key by where it came from, never showing a private key.
    pub fn resolve(
        keys: &[String],
        files: &[PathBuf],
        env: Option<&OsStr>,
    ) -> Result<Option<Recipients>, String> {
        let mut recipients = Vec::new();
        for key in keys {
            recipients.push(
                parse_recipient(key)
                    .map_err(|why| format!("--recipient {} {why}", shown_key(key)))?,
            );
        }
        for path in files {
            recipients.extend(read_recipients_file(path)?);
        }
        if !recipients.is_empty() {
            return Ok(Some(Recipients(recipients)));
        }
        let Some(env) = env else {
            return Ok(None);
        };
        let text = env
            .to_str()
            .ok_or_else(|| format!("{RECIPIENTS_ENV} is not valid UTF-8"))?;
        let keys: Vec<&str> = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|key| !key.is_empty())
            .collect();
        if keys.is_empty() {
            // An empty secret in CI must not silently turn encryption off.
            return Err(format!(
                "{RECIPIENTS_ENV} is set but holds no key: set it to age public keys (age1...), or \
                 unset it to write unencrypted files"
            ));
        }
        let recipients = keys
            .iter()
            .map(|key| {
                parse_recipient(key)
                    .map_err(|why| format!("{RECIPIENTS_ENV}: {} {why}", shown_key(key)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Recipients(recipients)))
    }

    /// Writes an age header for these recipients to `out`, and returns the writer that encrypts
    /// what follows. Its `finish` writes the last chunk: without it the file is truncated.
    pub fn encrypt<W: Write>(&self, out: W) -> io::Result<age::stream::StreamWriter<W>> {
        let keys = self.0.iter().map(|key| key as &dyn age::Recipient);
        age::Encryptor::with_recipients(keys)
            .map_err(io::Error::other)?
            .wrap_output(out)
    }
}

/// A writer that encrypts to the recipients, when there are any, and passes bytes through
/// otherwise; [`MaybeEncrypted::finish`] ends the age file.
pub enum MaybeEncrypted<W: Write> {
    /// No recipients: plaintext.
    Plain(W),
    /// An age file being written.
    Encrypted(age::stream::StreamWriter<W>),
}

impl<W: Write> MaybeEncrypted<W> {
    /// Starts writing to `out`, encrypted to `recipients` if any.
    pub fn new(out: W, recipients: Option<&Recipients>) -> io::Result<MaybeEncrypted<W>> {
        Ok(match recipients {
            Some(recipients) => MaybeEncrypted::Encrypted(recipients.encrypt(out)?),
            None => MaybeEncrypted::Plain(out),
        })
    }

    /// Ends the age file (the last chunk is marked so, which is how truncation is detected) and
    /// returns the inner writer, flushed.
    pub fn finish(self) -> io::Result<W> {
        let mut out = match self {
            MaybeEncrypted::Plain(out) => out,
            MaybeEncrypted::Encrypted(encrypting) => encrypting.finish()?,
        };
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for MaybeEncrypted<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            MaybeEncrypted::Plain(out) => out.write(bytes),
            MaybeEncrypted::Encrypted(out) => out.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeEncrypted::Plain(out) => out.flush(),
            MaybeEncrypted::Encrypted(out) => out.flush(),
        }
    }
}

/// Encrypts the file at `plain` to `recipients`, streamed into `out`; returns `out`.
pub fn encrypt_file<W: Write>(plain: &Path, recipients: &Recipients, out: W) -> anyhow::Result<W> {
    let mut input =
        File::open(plain).with_context(|| format!("cannot read {}", plain.display()))?;
    let mut encrypting = recipients.encrypt(out).context("cannot encrypt")?;
    io::copy(&mut input, &mut encrypting).context("cannot encrypt")?;
    encrypting.finish().context("cannot encrypt")
}

/// Identity files, read when an encrypted file must be decrypted.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    files: Vec<PathBuf>,
}

impl Identities {
    /// The identities in `files`.
    pub fn new(files: Vec<PathBuf>) -> Identities {
        Identities { files }
    }

    /// Whether no identity file was given.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The private keys, read from the files, to decrypt `encrypted` with.
    fn load(&self, encrypted: &Path) -> Result<Vec<x25519::Identity>, Unreadable> {
        if self.files.is_empty() {
            return Err(Unreadable::NoIdentity {
                file: encrypted.to_path_buf(),
            });
        }
        let mut keys = Vec::new();
        for path in &self.files {
            keys.extend(read_identity_file(path)?);
        }
        Ok(keys)
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self
            .files
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        names.join(", ")
    }
}

/// The private keys of an identity file, as `age -i` reads it (X25519 keys only). Errors name a bad
/// line by its number, never its content.
fn read_identity_file(path: &Path) -> Result<Vec<x25519::Identity>, Unreadable> {
    let bad = |reason: String| Unreadable::BadIdentityFile {
        file: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.parse::<x25519::Identity>().map_err(|_| {
            let what = match line.parse::<x25519::Recipient>() {
                Ok(_) => "is a public key (age1...); an identity is the private key",
                Err(_) => "is not an age private key (AGE-SECRET-KEY-1...)",
            };
            bad(format!("line {} {what}", number + 1))
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(bad("it holds no private key (AGE-SECRET-KEY-1...)".into()));
    }
    Ok(keys)
}

/// Why an encrypted file cannot be read. `verify` reports [`Unreadable::Damaged`] as a failed
/// verification; the others are the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    /// No identity was given.
    #[error(
        "{} is encrypted (age): pass --identity KEYFILE, or set TOEFL_BACKUP_IDENTITY_FILE, to the \
         private key that decrypts it", file.display()
    )]
    NoIdentity {
        /// The encrypted file.
        file: PathBuf,
    },
    /// An identity file cannot be read or holds no usable key.
    #[error(
        "cannot use the identity file {}: {reason}; it must be a private key file made by \
         `age-keygen`", file.display()
    )]
    BadIdentityFile {
        /// The identity file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// None of the identities is a recipient of the file.
    #[error(
        "{} cannot be decrypted with {identities}: it was encrypted to other keys (or its header is \
         damaged); pass the private key of one of its recipients", file.display()
    )]
    WrongIdentity {
        /// The encrypted file.
        file: PathBuf,
        /// The identity files tried.
        identities: String,
    },
    /// The file was encrypted with a passphrase, which this tool does not take.
    #[error(
        "{} is encrypted with a passphrase, not to a key: decrypt it with `age -d` first",
        file.display()
    )]
    Passphrase {
        /// The encrypted file.
        file: PathBuf,
    },
    /// The file is corrupted or truncated: its header or a chunk does not authenticate.
    #[error("{} is damaged or truncated: {reason}", file.display())]
    Damaged {
        /// The encrypted file.
        file: PathBuf,
        /// What age found.
        reason: String,
    },
}

impl Unreadable {
    /// Whether the file itself is bad (rather than the keys given to read it).
    pub fn is_damage(&self) -> bool {
        matches!(self, Unreadable::Damaged { .. })
    }

    /// The [`Unreadable`] that caused `error`, if one did, also when a reader's I/O error carries it.
    pub fn cause_of(error: &anyhow::Error) -> Option<&Unreadable> {
        error.chain().find_map(|cause| {
            cause.downcast_ref::<Unreadable>().or_else(|| {
                let io = cause.downcast_ref::<io::Error>()?;
                io.get_ref()?.downcast_ref::<Unreadable>()
            })
        })
    }
}

/// Opens `path` for reading: a plaintext file as it is, an age file decrypted as it is read (with
/// `identities`). A chunk that does not authenticate (a flipped byte, a truncated end) fails the
/// read that reaches it with [`Unreadable::Damaged`], so a reader must not trust what it read until
/// it has read to the end.
pub fn open(path: &Path, identities: &Identities) -> anyhow::Result<Box<dyn Read>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut file = BufReader::with_capacity(1 << 16, file);
    let head = file
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !is_encrypted(head) {
        return Ok(Box::new(file));
    }
    Ok(Box::new(decrypt(file, path, identities)?))
}

/// Starts decrypting the age file `input` (read from `path`).
fn decrypt(
    input: BufReader<File>,
    path: &Path,
    identities: &Identities,
) -> Result<Decrypting, Unreadable> {
    let damaged = |error: &dyn std::fmt::Display| Unreadable::Damaged {
        file: path.to_path_buf(),
        reason: format!("its age header does not read ({error})"),
    };
    let keys = identities.load(path)?;
    let decryptor = age::Decryptor::new_buffered(input).map_err(|e| damaged(&e))?;
    if decryptor.is_scrypt() {
        return Err(Unreadable::Passphrase {
            file: path.to_path_buf(),
        });
    }
    let stream = decryptor
        .decrypt(keys.iter().map(|key| key as &dyn age::Identity))
        .map_err(|error| match error {
            age::DecryptError::NoMatchingKeys => Unreadable::WrongIdentity {
                file: path.to_path_buf(),
                identities: identities.describe(),
            },
            other => damaged(&other),
        })?;
    Ok(Decrypting {
        stream,
        path: path.to_path_buf(),
    })
}

/// The plaintext of an age file, as it is read; its errors say which file is damaged.
struct Decrypting {
    stream: age::stream::StreamReader<BufReader<File>>,
    path: PathBuf,
}

impl Read for Decrypting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf).map_err(|error| match error.kind() {
            io::ErrorKind::Interrupted => error,
            _ => io::Error::new(
                io::ErrorKind::InvalidData,
                Unreadable::Damaged {
                    file: self.path.clone(),
                    reason: format!("its encrypted data does not authenticate ({error})"),
                },
            ),
        })
    }
}

/// A decrypted copy of an age file, in a [`PrivateDir`] of its own; removed when dropped.
pub struct Decrypted {
    /// The plaintext file.
    pub path: PathBuf,
    _dir: PrivateDir,
}

/// Decrypts the age file at `path` whole into a new [`PrivateDir`], as `name`, for tools that need
/// a file (SQLite, pg_restore). Nothing is left behind when it fails.
pub fn decrypt_to_private_file(
    path: &Path,
    identities: &Identities,
    name: &str,
) -> anyhow::Result<Decrypted> {
    decrypt_into(PrivateDir::new()?, path, identities, name)
}

fn decrypt_into(
    dir: PrivateDir,
    path: &Path,
    identities: &Identities,
    name: &str,
) -> anyhow::Result<Decrypted> {
    let plain = dir.path().join(name);
    let mut output = owner_only::create_new(&plain)
        .with_context(|| format!("cannot create {}", plain.display()))?;
    let mut input = open(path, identities)?;
    io::copy(&mut input, &mut output).map_err(|error| {
        if !error.get_ref().is_some_and(|e| e.is::<Unreadable>()) {
            // Anything but damage (a full disk, say) keeps its own cause.
            let into = plain.display();
            return anyhow::Error::new(error)
                .context(format!("cannot decrypt {} into {into}", path.display()));
        }
        // The damage, said once, rather than as a failed copy.
        match error.into_inner().map(|e| e.downcast::<Unreadable>()) {
            Some(Ok(unreadable)) => anyhow::Error::new(*unreadable),
            _ => anyhow::anyhow!("cannot decrypt {}", path.display()),
        }
    })?;
    output
        .sync_all()
        .with_context(|| format!("cannot write {}", plain.display()))?;
    Ok(Decrypted {
        path: plain,
        _dir: dir,
    })
}

/// The start of a private directory's name; the process id follows, so that a later run can tell
/// the leftovers of a process that was killed (`kill -9` cannot be caught) and remove them.
const PRIVATE_PREFIX: &str = "toefl-private-";

/// A new directory in the system's temporary directory (`TMPDIR`), readable by its owner only
/// (0700; on Windows, the user's own temporary directory already is), for plaintext that must exist
/// as a file. It is removed when dropped, on an error as on success, and by a handler on Ctrl-C
/// (and on Unix SIGTERM and SIGHUP; on Windows the console closing).
pub struct PrivateDir {
    dir: tempfile::TempDir,
}

impl PrivateDir {
    /// Creates one in `TMPDIR` (or `/tmp`).
    pub fn new() -> anyhow::Result<PrivateDir> {
        PrivateDir::new_in(&std::env::temp_dir())
    }

    fn new_in(base: &Path) -> anyhow::Result<PrivateDir> {
        remove_on_signals()?;
        remove_leftovers(base);
        // Registered under the lock, so that a signal never misses it.
        let mut live = live_private_dirs();
        let prefix = format!("{PRIVATE_PREFIX}{}-", std::process::id());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let dir = builder.tempdir_in(base).with_context(|| {
            format!(
                "cannot create a private temporary directory in {}: set TMPDIR to a writable \
                     directory",
                base.display()
            )
        })?;
        live.push(dir.path().to_path_buf());
        Ok(PrivateDir { dir })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // Removed before it is forgotten, so that a signal in between still removes it.
        let _ = std::fs::remove_dir_all(self.dir.path());
        live_private_dirs().retain(|path| path != self.dir.path());
    }
}

/// The private directories that exist now, for the signal handler.
fn live_private_dirs() -> MutexGuard<'static, Vec<PathBuf>> {
    static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    // A panic elsewhere while holding the lock leaves the list as valid as before.
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes the private directories that exist now: the process is about to end without dropping
/// them.
fn remove_live_private_dirs() {
    for dir in live_private_dirs().iter() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Installs, once, a handler that removes the private directories on SIGINT, SIGTERM and SIGHUP,
/// then lets the signal end the process as it would have.
#[cfg(unix)]
fn remove_on_signals() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
                .map_err(|e| {
                    format!("cannot install the handler that removes plaintext on Ctrl-C: {e}")
                })?;
            std::thread::spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    remove_live_private_dirs();
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                }
            });
            Ok(())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Installs, once, a console handler that removes the private directories on Ctrl-C, Ctrl-Break
/// and the console closing, then lets the default handler end the process. Windows runs it on a
/// thread of its own. Files still open then cannot be removed on Windows: best effort.
#[cfg(windows)]
fn remove_on_signals() -> anyhow::Result<()> {
    use windows_sys::core::BOOL;
    use windows_sys::Win32::Foundation::FALSE;
    use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;

    unsafe extern "system" fn on_console_event(_event: u32) -> BOOL {
        remove_live_private_dirs();
        // Not handled: the next handler, the default one, ends the process.
        FALSE
    }
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            // SAFETY: the handler is a function that lives as long as the process.
            match unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } {
                0 => Err(format!(
                    "cannot install the handler that removes plaintext on Ctrl-C: {}",
                    io::Error::last_os_error()
                )),
                _ => Ok(()),
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Removes the private directories in `base` of processes that no longer run (killed with
/// SIGKILL, which no handler sees). Without `/proc` (on Windows) nothing can be told, and nothing is
/// removed.
fn remove_leftovers(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.strip_prefix(PRIVATE_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pair() -> (x25519::Identity, String) {
        let identity = x25519::Identity::generate();
        let public = identity.to_public().to_string();
        (identity, public)
    }

    fn identity_file(dir: &Path, identity: &x25519::Identity) -> Identities {
        use age::secrecy::ExposeSecret as _;
        let path = dir.join(format!("key-{}.txt", identity.to_public()));
        let text = format!("# a comment\n\n{}\n", identity.to_string().expose_secret());
        std::fs::write(&path, text).unwrap();
        Identities::new(vec![path])
    }

    /// Recipients as the options give them: keys, and recipients files.
    struct Given {
        keys: Vec<String>,
        files: Vec<PathBuf>,
    }

    impl Given {
        fn resolve(&self, env: Option<&OsStr>) -> Result<Option<Recipients>, String> {
            Recipients::resolve(&self.keys, &self.files, env)
        }
    }

    fn options(keys: &[&str], files: &[&Path]) -> Given {
        Given {
            keys: keys.iter().map(|key| key.to_string()).collect(),
            files: files.iter().map(|path| path.to_path_buf()).collect(),
        }
    }

    fn recipients_of(keys: &[&str]) -> Recipients {
        options(keys, &[]).resolve(None).unwrap().unwrap()
    }

    /// Plaintext of several 64 KiB chunks, with a marker that must not show in the ciphertext.
    fn plaintext() -> Vec<u8> {
        (0..40_000)
            .map(|n| format!("{{\"students\": \"Maria Souza {n}\"}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn encrypt_to_file(dir: &Path, recipients: &Recipients, plain: &[u8]) -> PathBuf {
        let path = dir.join("data.json.age");
        let mut out = MaybeEncrypted::new(File::create(&path).unwrap(), Some(recipients)).unwrap();
        out.write_all(plain).unwrap();
        out.finish().unwrap();
        path
    }

    fn read_all(path: &Path, identities: &Identities) -> anyhow::Result<Vec<u8>> {
        let mut plain = Vec::new();
        open(path, identities)?.read_to_end(&mut plain)?;
        Ok(plain)
    }

    fn unreadable(error: &anyhow::Error) -> &Unreadable {
        Unreadable::cause_of(error).unwrap_or_else(|| panic!("not an Unreadable error: {error:#}"))
    }

    #[test]
    fn recipients_come_from_options_else_from_the_environment() {
        let (_, first) = key_pair();
        let (_, second) = key_pair();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recipients.txt");
        std::fs::write(&file, format!("# ops team\n\n  {second}  \n")).unwrap();
        let env = format!("{first}, {second}\n{first}");

        let count = |options: &Given, env: Option<&str>| {
            options
                .resolve(env.map(OsStr::new))
                .unwrap()
                .map(|r| r.0.len())
        };
        assert_eq!(count(&options(&[&first], &[&file]), Some(&env)), Some(2));
        assert_eq!(count(&options(&[], &[&file]), Some(&env)), Some(1));
        assert_eq!(count(&options(&[], &[]), Some(&env)), Some(3));
        assert_eq!(count(&options(&[], &[]), None), None);
    }

    #[test]
    fn bad_recipients_are_refused_without_showing_secrets() {
        let (identity, public) = key_pair();
        let secret = {
            use age::secrecy::ExposeSecret as _;
            identity.to_string().expose_secret().to_string()
        };
        let dir = tempfile::tempdir().unwrap();
        let with_secret = dir.path().join("secret.txt");
        std::fs::write(&with_secret, format!("{public}\n{secret}\n")).unwrap();
        let only_comments = dir.path().join("empty.txt");
        std::fs::write(&only_comments, "# nothing yet\n").unwrap();
        let missing = dir.path().join("missing.txt");

        let cases = [
            (
                options(&["age1nope"], &[]),
                None,
                "--recipient 'age1nope' is not an age public key",
            ),
            (
                options(&[&secret], &[]),
                None,
                "--recipient AGE-SECRET-KEY-... is a private key",
            ),
            (
                options(&[], &[&with_secret]),
                None,
                "secret.txt, line 2: is a private key",
            ),
            (
                options(&[], &[&only_comments]),
                None,
                "empty.txt holds no key",
            ),
            (
                options(&[], &[&missing]),
                None,
                "cannot read the recipients file",
            ),
            (
                options(&[], &[]),
                Some(" ,\n"),
                "TOEFL_BACKUP_RECIPIENTS is set but holds no key",
            ),
            (
                options(&[], &[]),
                Some(&format!("{public},ssh-ed25519")),
                "TOEFL_BACKUP_RECIPIENTS: 'ssh-ed25519' is not an age public key",
            ),
        ];
        for (options, env, expected) in cases {
            let message = options.resolve(env.map(OsStr::new)).unwrap_err();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            assert!(
                !message.contains(&secret[15..]),
                "{message:?} shows the secret"
            );
            assert!(!message.contains('\n'), "{message:?} is not one line");
        }
    }

    #[test]
    fn new_names_say_whether_they_are_encrypted() {
        let (_, public) = key_pair();
        let recipients = recipients_of(&[&public]);
        assert_eq!(extension("json.zst", Some(&recipients)), "json.zst.age");
        assert_eq!(extension("db", None), "db");
        let usage = |path: &str, recipients| {
            let error = check_name(Path::new(path), recipients).unwrap_err();
            matches!(error.downcast_ref(), Some(crate::exit::Exit::Usage(_)))
        };
        assert!(usage("backup.db", Some(&recipients)));
        assert!(usage("backup.db.age", None));
        assert!(check_name(Path::new("backup.db.age"), Some(&recipients)).is_ok());
        assert!(check_name(Path::new("backup.db"), None).is_ok());
    }

    #[test]
    fn what_is_encrypted_decrypts_to_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (identity, public) = key_pair();
        let (other, other_public) = key_pair();
        let recipients = recipients_of(&[&public, &other_public]);
        let plain = plaintext();
        let path = encrypt_to_file(dir.path(), &recipients, &plain);

        let ciphertext = std::fs::read(&path).unwrap();
        assert!(is_encrypted(&ciphertext));
        assert!(!ciphertext.windows(5).any(|w| w == b"Maria"));
        for identity in [&identity, &other] {
            let identities = identity_file(dir.path(), identity);
            assert_eq!(read_all(&path, &identities).unwrap(), plain);
        }
    }

    #[test]
    fn plaintext_reads_as_it_is_without_an_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.json");
        std::fs::write(&path, plaintext()).unwrap();
        let mut out = MaybeEncrypted::new(Vec::new(), None).unwrap();
        out.write_all(b"as it is").unwrap();
        assert_eq!(out.finish().unwrap(), b"as it is");
        assert_eq!(
            read_all(&path, &Identities::default()).unwrap(),
            plaintext()
        );
    }

    #[test]
    fn missing_and_wrong_identities_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (_, public) = key_pair();
        let (stranger, _) = key_pair();
        let recipients = recipients_of(&[&public]);
        let path = encrypt_to_file(dir.path(), &recipients, b"secret");

        let error = read_all(&path, &Identities::default()).unwrap_err();
        assert!(matches!(unreadable(&error), Unreadable::NoIdentity { .. }));
        assert!(format!("{error}").contains("--identity"));

        let error = read_all(&path, &identity_file(dir.path(), &stranger)).unwrap_err();
        assert!(matches!(
            unreadable(&error),
            Unreadable::WrongIdentity { .. }
        ));

        let public_key_file = dir.path().join("public.txt");
        std::fs::write(&public_key_file, format!("{public}\n")).unwrap();
        let error = read_all(&path, &Identities::new(vec![public_key_file])).unwrap_err();
        assert!(matches!(
            unreadable(&error),
            Unreadable::BadIdentityFile { .. }
        ));
        assert!(
            format!("{error}").contains("line 1 is a public key"),
            "{error}"
        );
        assert!(!unreadable(&error).is_damage());
    }

    #[test]
    fn truncated_and_flipped_files_are_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let (identity, public) = key_pair();
        let identities = identity_file(dir.path(), &identity);
        let recipients = recipients_of(&[&public]);
        let path = encrypt_to_file(dir.path(), &recipients, &plaintext());
        let good = std::fs::read(&path).unwrap();
        let header_end = good.windows(4).position(|w| w == b"\n---").unwrap();

        let mut flipped_payload = good.clone();
        flipped_payload[good.len() / 2] ^= 1;
        let mut flipped_mac = good.clone();
        flipped_mac[header_end + 10] ^= 1;
        let damaged = [
            ("at a chunk's end", good[..good.len() - 16].to_vec()),
            ("at 64 KiB", good[..header_end + 100 + 65_536].to_vec()),
            ("in the header", good[..header_end].to_vec()),
            ("a flipped payload byte", flipped_payload),
            ("a flipped header MAC", flipped_mac),
        ];
        for (what, bytes) in damaged {
            std::fs::write(&path, bytes).unwrap();
            let error = read_all(&path, &identities).unwrap_err();
            assert!(unreadable(&error).is_damage(), "{what}: {error:#}");
            assert!(
                format!("{error:#}").contains("is damaged or truncated"),
                "{what}"
            );
        }
    }

    #[test]
    fn a_decrypted_copy_is_private_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (identity, public) = key_pair();
        let recipients = recipients_of(&[&public]);
        let plain = plaintext();
        let path = encrypt_to_file(dir.path(), &recipients, &plain);

        let copy =
            decrypt_to_private_file(&path, &identity_file(dir.path(), &identity), "x.db").unwrap();
        assert_eq!(std::fs::read(&copy.path).unwrap(), plain);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(copy.path.parent().unwrap()), 0o700);
            assert_eq!(mode(&copy.path), 0o600);
        }
        let copy_dir = copy.path.parent().unwrap().to_path_buf();
        drop(copy);
        assert!(!copy_dir.exists());
    }

    #[test]
    fn a_failed_decryption_leaves_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let (identity, public) = key_pair();
        let recipients = recipients_of(&[&public]);
        let path = encrypt_to_file(dir.path(), &recipients, &plaintext());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let identities = identity_file(dir.path(), &identity);
        let base = tempfile::tempdir().unwrap();
        let private = PrivateDir::new_in(base.path()).unwrap();

        let error = decrypt_into(private, &path, &identities, "x.db")
            .err()
            .unwrap();
        assert!(unreadable(&error).is_damage(), "{error:#}");
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
    }

    #[test]
    fn leftovers_of_dead_processes_are_removed() {
        let base = tempfile::tempdir().unwrap();
        // Beyond the kernel's largest process id (4194304), so never a live process.
        let dead = base.path().join(format!("{PRIVATE_PREFIX}4194399-abc"));
        let alive = base
            .path()
            .join(format!("{PRIVATE_PREFIX}{}-abc", std::process::id()));
        let unrelated = base.path().join("toefl-other-1-abc");
        for dir in [&dead, &alive, &unrelated] {
            std::fs::create_dir(dir).unwrap();
        }
        let private = PrivateDir::new_in(base.path()).unwrap();
        assert!(!dead.exists());
        assert!(alive.exists() && unrelated.exists() && private.path().exists());
    }

    /// Interoperability with the reference `age` tool (Debian package `age`).
    mod with_the_age_tool {
        use super::*;
        use xshell::{cmd, Shell};

        /// A directory with a key pair made by `age-keygen`: the identity file as it writes it
        /// (with its comments), and a recipients file with its public key, as `age -R` takes it.
        struct AgeKeys {
            dir: tempfile::TempDir,
            sh: Shell,
            key: PathBuf,
            recipients: PathBuf,
        }

        fn age_keygen() -> AgeKeys {
            let dir = tempfile::tempdir().unwrap();
            let sh = Shell::new().unwrap();
            sh.change_dir(dir.path());
            let (key, recipients) = (
                dir.path().join("key.txt"),
                dir.path().join("recipients.txt"),
            );
            cmd!(sh, "age-keygen -o {key}")
                .quiet()
                .ignore_stderr()
                .run()
                .expect("age-keygen runs (install the Debian package age)");
            let public = cmd!(sh, "age-keygen -y {key}").read().unwrap();
            std::fs::write(&recipients, format!("# backups\n{public}\n")).unwrap();
            AgeKeys {
                dir,
                sh,
                key,
                recipients,
            }
        }

        #[test]
        fn the_age_tool_decrypts_what_we_encrypt() {
            let keys = age_keygen();
            let from_file = options(&[], &[&keys.recipients]).resolve(None);
            let path = encrypt_to_file(keys.dir.path(), &from_file.unwrap().unwrap(), &plaintext());

            let (key, decrypted) = (&keys.key, keys.dir.path().join("decrypted"));
            cmd!(keys.sh, "age -d -i {key} -o {decrypted} {path}")
                .quiet()
                .run()
                .expect("age decrypts our file");
            assert_eq!(std::fs::read(&decrypted).unwrap(), plaintext());
        }

        #[test]
        fn we_decrypt_what_the_age_tool_encrypts() {
            let keys = age_keygen();
            let plain = keys.dir.path().join("plain.json");
            std::fs::write(&plain, plaintext()).unwrap();
            let (recipients, path) = (&keys.recipients, keys.dir.path().join("theirs.age"));
            cmd!(keys.sh, "age -R {recipients} -o {path} {plain}")
                .quiet()
                .run()
                .expect("age encrypts");

            let identities = Identities::new(vec![keys.key.clone()]);
            assert_eq!(read_all(&path, &identities).unwrap(), plaintext());
        }
    }
}
