//! `cargo xtask prune`: retention in the style of restic's `forget`.
//!
//! Only files whose names this tool gives (`toefl_backup_*`, `toefl_export_*`, `toefl_pre_import_*`,
//! `toefl_pre_restore_*`, `toefl_pre_migrate_*`, each with its UTC timestamp) are considered; each of these series is pruned
//! on its own, so native backups never push out exports. A file is kept when any rule keeps it, and
//! the newest file of each series is always kept.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::engine::archive::backups_dir;
use crate::engine::archive::retention::{plan, Policy};
use crate::engine::archive::series::{files_named_by_us, BackupName};
use crate::report::Report;

/// Options of `cargo xtask prune`.
#[derive(clap::Args)]
#[command(
    after_help = "Rules work as restic's `forget` does: --keep-daily 7 keeps the newest file \
of each of the last 7 days that have files, and so on. A file is kept when any rule keeps it; the \
newest file of each series (backups, exports, pre-import, pre-restore and pre-migrate safety \
copies) is always \
kept. At least one rule is needed; any one will do. Files whose names this tool did not give are \
never touched."
)]
#[command(group(
    clap::ArgGroup::new("rules")
        .args(["keep_last", "keep_daily", "keep_weekly", "keep_monthly"])
        .required(true)
        .multiple(true)
))]
pub struct PruneArgs {
    /// Keep the N newest files of each series
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,
    /// Keep the newest file of each of the last D days that have files
    #[arg(long, value_name = "D")]
    keep_daily: Option<usize>,
    /// Keep the newest file of each of the last W ISO weeks that have files
    #[arg(long, value_name = "W")]
    keep_weekly: Option<usize>,
    /// Keep the newest file of each of the last M months that have files
    #[arg(long, value_name = "M")]
    keep_monthly: Option<usize>,
    /// List what would be deleted, and delete nothing
    #[arg(long)]
    dry_run: bool,
    /// The directory to prune [default: the workspace's backups/]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Deletes (or with `--dry-run`, lists) what the rules do not keep.
pub fn run(args: &PruneArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("prune");
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => backups_dir()?,
    };
    let policy = Policy {
        last: args.keep_last.unwrap_or(0),
        daily: args.keep_daily.unwrap_or(0),
        weekly: args.keep_weekly.unwrap_or(0),
        monthly: args.keep_monthly.unwrap_or(0),
    };
    let files = files_named_by_us(&dir)?;
    let names: Vec<BackupName> = files.iter().map(|(name, _)| name.clone()).collect();
    let keep = plan(&names, policy);
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let (mut kept, mut deleted) = (Vec::new(), Vec::new());
    for ((_, path), keep) in files.iter().zip(keep) {
        let shown = path.display().to_string();
        if keep {
            kept.push(shown);
            continue;
        }
        if !args.dry_run {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot delete {}", path.display()))?;
        }
        report.say(format!("{verb} {shown}"));
        deleted.push(shown);
    }
    report.say(format!(
        "{}: kept {}, {verb} {} of {} backup files",
        dir.display(),
        kept.len(),
        deleted.len(),
        files.len()
    ));
    report
        .field("path", dir.display().to_string())
        .field("dry_run", args.dry_run)
        .field("kept", kept)
        .field("deleted", deleted);
    Ok(report)
}
