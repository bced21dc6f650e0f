//! `cargo xtask verify FILE`: proves that a backup can be restored, by restoring it into a scratch
//! database (a temporary SQLite file, or a temporary PostgreSQL database created and dropped on the
//! target's server) and checking integrity, schema version, keys, references, row checks and row
//! counts there. A file of an earlier schema version is brought forward, as restore and import do,
//! and checked at the current version.

use std::path::Path;

use app::{Backend, DatabaseUrl, RowCounts, SCHEMA_VERSION};

use crate::engine::archive::file_size;
use crate::engine::archive::kind::{identify, BackupKind, FileKind};
use crate::engine::archive::source::Source;
use crate::engine::checks::check_restored;
use crate::engine::crypto::Unreadable;
use crate::engine::json::loader::load_into_empty;
use crate::engine::native;
use crate::engine::remote::Damaged;
use crate::engine::scratch::Scratch;
use crate::exit::Exit;
use crate::flags::IdentityOptions;
use crate::offsite::Location;
use crate::report::Report;

/// Options of `cargo xtask verify`.
#[derive(clap::Args)]
#[command(
    after_help = "A SQLite backup is restored into a temporary SQLite file. A PostgreSQL \
dump is restored into a temporary database created (and dropped) on the server that \
--database-url or DATABASE_URL names, so verifying a dump needs a PostgreSQL URL whose user may \
create databases. An encrypted file is decrypted with --identity. An off-site copy (s3://BUCKET/KEY, \
file:///DIR/NAME) is downloaded into a private temporary directory and its SHA-256 checked first. \
Exit code 4 means the file failed verification (a damaged or truncated encrypted file, or an \
off-site copy whose bytes changed, too); a missing or wrong identity exits 1."
)]
pub struct VerifyArgs {
    /// The backup to verify (recognised by its content, whatever its name), or an off-site copy of
    /// one: s3://BUCKET/KEY or file:///DIR/NAME
    #[arg(value_name = "FILE", value_parser = Location::parse)]
    file: Location,
    #[command(flatten)]
    decryption: IdentityOptions,
}

/// Restores `FILE` into a scratch database and checks it; `url` names the server for dumps.
pub fn run(
    url: impl FnOnce() -> anyhow::Result<DatabaseUrl>,
    args: &VerifyArgs,
) -> anyhow::Result<Report> {
    let mut report = Report::start("verify");
    // An off-site copy whose bytes changed in storage fails verification like a damaged file.
    let fetched =
        args.file
            .fetch(&mut report)
            .map_err(|error| match error.downcast_ref::<Damaged>() {
                Some(_) => Exit::VerificationFailed(format!("{error:#}")).into(),
                None => error,
            })?;
    let path = fetched.path();
    let source = Source::new(path, &args.decryption.identities())?;
    // A file that does not decrypt for want of the right key is the user's to fix; damage fails it.
    let kind = identify(&source).map_err(|error| match Unreadable::cause_of(&error) {
        Some(unreadable) if unreadable.is_damage() => failed(path, error),
        _ => error,
    })?;
    let scratch = match (&kind, kind.backend()) {
        (_, Some(Backend::Sqlite)) => Scratch::sqlite()?,
        (_, Some(Backend::Postgres)) => Scratch::postgres(&url()?)?,
        // An export goes into a scratch database of the target's backend, the one it is meant for.
        (FileKind::JsonExport, None) => match url()? {
            url @ DatabaseUrl::Postgres(_) => Scratch::postgres(&url)?,
            DatabaseUrl::Sqlite(_) => Scratch::sqlite()?,
        },
        (_, None) => {
            // The same refusal as restore's, which says what the file is and which command takes it.
            let refusal = kind.require_native_for(path, Backend::Sqlite).err();
            return Err(failed(
                path,
                refusal.unwrap_or_else(|| anyhow::anyhow!("unknown file")),
            ));
        }
    };
    let restored = restore_and_check(&source, &kind, &scratch).map_err(|e| failed(path, e))?;
    let restored_as = match restored.schema_version {
        SCHEMA_VERSION => "restored".to_string(),
        _ => format!("restored and brought forward to schema version {SCHEMA_VERSION}"),
    };
    let line = format!(
        "{} is a good {} backup of a {} database at schema version {}: {restored_as} in a scratch \
         {} database, its row counts, keys, references and row checks hold; rows: {}",
        path.display(),
        restored.kind.as_str(),
        restored.backend,
        restored.schema_version,
        scratch.url.backend(),
        restored.counts
    );
    report
        .say(line)
        .backup_file(
            path,
            restored.kind,
            &restored.backend,
            file_size(path)?,
            source.is_encrypted(),
        )
        .field("verified", true)
        .field("schema_version", restored.schema_version)
        .field("scratch", scratch.url.to_string())
        .rows(&restored.counts);
    Ok(report)
}

/// What a verified file turned out to hold.
struct Restored {
    kind: BackupKind,
    /// The backend the data came from.
    backend: String,
    /// The schema version of the file's data.
    schema_version: i64,
    counts: RowCounts,
}

fn failed(path: &Path, error: anyhow::Error) -> anyhow::Error {
    Exit::VerificationFailed(format!("{} failed verification: {error:#}", path.display())).into()
}

/// Restores the file into the scratch database and checks it there.
fn restore_and_check(
    source: &Source,
    kind: &FileKind,
    scratch: &Scratch,
) -> anyhow::Result<Restored> {
    let mut db = scratch.open()?;
    let (kind, backend, schema_version) = match kind.backend() {
        // The load checks every value and row, the row counts against the header, keys and
        // references.
        None => {
            let (header, _) = load_into_empty(&mut db, &scratch.url, source)?;
            let origin = header.source_backend().unwrap_or("unknown");
            let version = header.schema_version.unwrap_or(SCHEMA_VERSION);
            (BackupKind::Json, origin.to_string(), version)
        }
        Some(backend) => {
            let plain = source.plain_file()?;
            let backup = native::check_backup(plain.path(), kind)?;
            let version = backup.schema_version;
            native::restore(backup, plain.path(), &scratch.url, &mut db)?;
            (BackupKind::Native, backend.to_string(), version)
        }
    };
    Ok(Restored {
        kind,
        backend,
        schema_version,
        counts: check_restored(&mut db, &scratch.url)?,
    })
}
