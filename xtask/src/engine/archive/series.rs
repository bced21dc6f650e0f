//! The names this tool gives its files: `toefl_{series}_YYYYMMDD_HHMMSS.{extension}`, in UTC (with
//! `-2`, `-3`... after the time for further files in the same second, and `.age` at the end of an
//! encrypted file). A file
//! with any other name is not one of ours, and `prune` never touches it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::NaiveDateTime;

use crate::engine::crypto::{self, Recipients, AGE_EXTENSION};

/// What made a backup file, as its name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Series {
    /// `cargo xtask backup`: a native backup.
    Backup,
    /// `cargo xtask export`: a JSON export.
    Export,
    /// The safety export `cargo xtask import` takes of the target first.
    PreImport,
    /// The safety backup `cargo xtask restore` takes of the target first.
    PreRestore,
    /// The safety export `cargo xtask migrate` takes of a database with data first.
    PreMigrate,
    /// The safety export `cargo xtask copy` takes of the target first.
    PreCopy,
}

impl Series {
    const ALL: [Series; 6] = [
        Series::Backup,
        Series::Export,
        Series::PreImport,
        Series::PreRestore,
        Series::PreMigrate,
        Series::PreCopy,
    ];

    /// A new file of this series in `backups/`: `{prefix}_YYYYMMDD_HHMMSS.{extension}`, the time in
    /// UTC; when that name is taken (two files in one second), `..._HHMMSS-2.{extension}` and so on.
    pub fn new_path(self, extension: &str) -> anyhow::Result<PathBuf> {
        let stamp = chrono::Utc::now().format("%Y%m%d_%H%M%S");
        let dir = super::backups_dir()?;
        let prefix = self.prefix();
        let candidates = (1..).map(|n| match n {
            1 => dir.join(format!("{prefix}_{stamp}.{extension}")),
            n => dir.join(format!("{prefix}_{stamp}-{n}.{extension}")),
        });
        candidates
            .take(1000)
            .find(|path| !path.exists())
            .context("a thousand backups in one second: try again")
    }

    /// The path of a new file of this series: `given` (by `--file`), whose name must say whether it
    /// is encrypted, or else a new name in `backups/` with `extension`, and `.age` after it when
    /// there are `recipients`.
    pub fn path_for(
        self,
        given: Option<&Path>,
        extension: &str,
        recipients: Option<&Recipients>,
    ) -> anyhow::Result<PathBuf> {
        match given {
            Some(path) => {
                crypto::check_name(path, recipients)?;
                Ok(path.to_path_buf())
            }
            None => self.new_path(&crypto::extension(extension, recipients)),
        }
    }

    /// The start of the file name, before the timestamp.
    pub fn prefix(self) -> &'static str {
        match self {
            Series::Backup => "toefl_backup",
            Series::Export => "toefl_export",
            Series::PreImport => "toefl_pre_import",
            Series::PreRestore => "toefl_pre_restore",
            Series::PreMigrate => "toefl_pre_migrate",
            Series::PreCopy => "toefl_pre_copy",
        }
    }
}

/// The file extensions this tool writes.
const EXTENSIONS: [&str; 5] = ["db", "dump", "json", "json.gz", "json.zst"];

/// A file name this tool gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupName {
    /// What made the file.
    pub series: Series,
    /// When, in UTC, to the second.
    pub taken_at: NaiveDateTime,
    /// Which file of that second: 1, or N for a name ending in `-N`.
    pub sequence: u32,
}

impl BackupName {
    /// Parses a file name (not a path); `None` when this tool did not name it.
    pub fn parse(file_name: &str) -> Option<BackupName> {
        let (series, rest) = Series::ALL.iter().find_map(|s| {
            let rest = file_name.strip_prefix(s.prefix())?.strip_prefix('_')?;
            Some((*s, rest))
        })?;
        let (stamp, extension) = rest.split_once('.')?;
        // An encrypted file is a member of its series like the plaintext one.
        let extension = extension
            .strip_suffix(AGE_EXTENSION)
            .and_then(|plain| plain.strip_suffix('.'))
            .unwrap_or(extension);
        // A second backup in the same second is `..._HHMMSS-2`.
        let (stamp, sequence) = match stamp.split_once('-') {
            Some((stamp, n)) => match n.parse::<u32>() {
                Ok(n) if n > 1 => (stamp, n),
                _ => return None,
            },
            None => (stamp, 1),
        };
        if !EXTENSIONS.contains(&extension) || stamp.len() != 15 {
            return None;
        }
        let taken_at = NaiveDateTime::parse_from_str(stamp, "%Y%m%d_%H%M%S").ok()?;
        Some(BackupName {
            series,
            taken_at,
            sequence,
        })
    }

    /// What orders files of a series from oldest to newest: the time, then the `-N` of files
    /// taken in the same second.
    pub fn order(&self) -> (NaiveDateTime, u32) {
        (self.taken_at, self.sequence)
    }
}

/// The regular files in `dir` whose names this tool gave, in directory order.
pub fn files_named_by_us(dir: &Path) -> anyhow::Result<Vec<(BackupName, PathBuf)>> {
    let cannot_read = || format!("cannot read directory {}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(cannot_read)? {
        let entry = entry.with_context(cannot_read)?;
        let Some(name) = entry.file_name().to_str().and_then(BackupName::parse) else {
            continue;
        };
        if entry.file_type().with_context(cannot_read)?.is_file() {
            files.push((name, entry.path()));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_names_parse() {
        let ours = [
            ("toefl_backup_20260131_235959.db", Series::Backup),
            ("toefl_backup_20260131_235959.dump", Series::Backup),
            ("toefl_export_20260131_235959.json.zst", Series::Export),
            ("toefl_pre_import_20260101_000000.json", Series::PreImport),
            ("toefl_pre_restore_20260101_000000.dump", Series::PreRestore),
            ("toefl_pre_migrate_20260101_000000.json", Series::PreMigrate),
            ("toefl_pre_copy_20260101_000000.json", Series::PreCopy),
            ("toefl_export_20260101_000000-2.json", Series::Export),
            ("toefl_export_20260131_235959.json.zst.age", Series::Export),
            ("toefl_backup_20260131_235959.dump.age", Series::Backup),
            (
                "toefl_pre_import_20260101_000000.json.age",
                Series::PreImport,
            ),
        ];
        for (name, series) in ours {
            assert_eq!(
                BackupName::parse(name).map(|n| n.series),
                Some(series),
                "{name}"
            );
        }
        let theirs = [
            "toefl_backup_20260131_235959.db.bak",
            "toefl_backup_20260131.db",
            "toefl_backup_20261331_000000.db",
            "my_backup_20260131_235959.db",
            "toefl_export_20260131_235959.txt",
            ".toefl_export_20260131_235959.json.123.partial",
            "toefl_backup_20260131_2359590.db",
            "toefl_export_20260101_000000-1.json",
            "toefl_export_20260101_000000-x.json",
            "toefl_backup_20260131_235959.age",
            "toefl_backup_20260131_235959.db.age.age",
            "toefl_export_20260131_235959.txt.age",
        ];
        for name in theirs {
            assert_eq!(BackupName::parse(name), None, "{name}");
        }
    }
}
