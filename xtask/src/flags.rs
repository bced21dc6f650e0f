//! Groups of options that several commands share, defined once.

use app::{Database, DatabaseUrl};

use crate::engine::archive::series::Series;
use crate::engine::safety;
use crate::report::{human_size, Report};

/// The options of the commands that replace all of a database's data (import, restore).
#[derive(clap::Args)]
pub struct ReplaceOptions {
    /// Replace the data without asking (required without a terminal)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub safety: SafetyOptions,
}

/// The option of the commands that save a database's data before they change it (import, restore,
/// migrate).
#[derive(clap::Args)]
pub struct SafetyOptions {
    /// Do not first save the current data to a safety copy in backups/ (toefl_pre_<command>_*)
    #[arg(long)]
    pub no_safety_backup: bool,
}

impl SafetyOptions {
    /// Saves what `db` (the database at `url`) holds as a new file of `series` before it is replaced,
    /// unless `--no-safety-backup`, and tells where it went at once: the user must know even if the
    /// replacement then fails. Returns the copy's path, for the JSON line.
    pub fn save_current_data(
        &self,
        url: &DatabaseUrl,
        db: &mut Database,
        series: Series,
        report: &mut Report,
    ) -> anyhow::Result<Option<String>> {
        if self.no_safety_backup {
            report.tell(format!("no safety copy of {url} (--no-safety-backup)"));
            return Ok(None);
        }
        let Some(copy) = safety::save_current_data(url, db, series)? else {
            report.tell(format!("no safety copy: {url} holds no data"));
            return Ok(None);
        };
        let path = copy.path.display().to_string();
        report.tell(format!(
            "safety copy of {url}: {path} ({}; rows: {})",
            human_size(copy.size),
            copy.counts
        ));
        Ok(Some(path))
    }
}
