//! The workspace this tool belongs to, whatever the current directory.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use app::DatabaseUrl;

/// The workspace root.
pub fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// The database the user chose (`--database-url` or `DATABASE_URL`), or the development SQLite file
/// `instance/toefl_dev.db`.
pub fn database_url(given: Option<&str>) -> anyhow::Result<DatabaseUrl> {
    match given {
        Some(url) => Ok(DatabaseUrl::parse(url)?),
        None => {
            let dir = root().join("instance");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
            Ok(DatabaseUrl::sqlite(dir.join("toefl_dev.db")))
        }
    }
}
