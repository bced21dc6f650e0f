//! The safety copy: what a database holds, saved to `backups/` before a command replaces or migrates
//! it, so that replacing the wrong data never loses anything. Restoring (or importing) the copy undoes
//! the change; a JSON copy holds the data at the database's own schema version.

use std::path::PathBuf;

use anyhow::Context as _;
use app::{Database, DatabaseUrl, RowCounts};

use super::archive::compression::Compression;
use super::archive::kind::BackupKind;
use super::archive::series::Series;
use super::crypto::Recipients;
use super::json::writer::export_to_file;
use super::native;

/// A safety copy that was taken.
pub struct SafetyCopy {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// A native backup or a JSON export (uncompressed).
    pub kind: BackupKind,
    /// What it holds.
    pub counts: RowCounts,
}

/// Saves what `db` (the database at `url`) holds now as a new file of `series`: a native backup
/// before a restore, a JSON export (at the database's schema version) otherwise, encrypted to
/// `recipients` if there are any (when recipients are configured, no copy of the data is ever
/// written in plaintext). Returns `None` when the database holds no data.
pub fn save_current_data(
    url: &DatabaseUrl,
    db: &mut Database,
    series: Series,
    recipients: Option<&Recipients>,
) -> anyhow::Result<Option<SafetyCopy>> {
    if !db.holds_data()? {
        return Ok(None);
    }
    let kind = match series {
        Series::PreRestore => BackupKind::Native,
        _ => BackupKind::Json,
    };
    let saved = match kind {
        BackupKind::Native => {
            let path = series.path_for(None, native::extension(url.backend()), recipients)?;
            native::write_backup(url, db, &path, false, recipients)
                .map(|written| (path, written.size, written.counts))
        }
        BackupKind::Json => {
            let path = series.path_for(None, Compression::None.export_extension(), recipients)?;
            export_to_file(db, &path, false, Compression::None, recipients)
                .map(|(counts, size)| (path, size, counts))
        }
    };
    let (path, size, counts) = saved.with_context(|| {
        format!(
            "cannot save the current data of {url} first, so nothing was changed (pass \
             --no-safety-backup to go on without this safety copy)"
        )
    })?;
    Ok(Some(SafetyCopy {
        path,
        size,
        kind,
        counts,
    }))
}
