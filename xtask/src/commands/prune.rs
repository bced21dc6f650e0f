//! `cargo xtask prune`: retention in the style of restic's `forget`.
//!
//! Only files whose names this tool gives (`toefl_backup_*`, `toefl_export_*`, `toefl_pre_import_*`,
//! `toefl_pre_restore_*`, `toefl_pre_migrate_*`, `toefl_pre_copy_*`, each with its UTC timestamp) are considered; each of these series is pruned
//! on its own, so native backups never push out exports. A file is kept when any rule keeps it, and
//! the newest file of each series is always kept.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::engine::archive::retention::{plan, Policy};
use crate::engine::archive::series::{files_named_by_us, BackupName};
use crate::engine::remote::Remote;
use crate::flags::RemoteOptions;
use crate::offsite::Archive;
use crate::report::Report;

/// Options of `cargo xtask prune`.
#[derive(clap::Args)]
#[command(
    after_help = "Rules work as restic's `forget` does: --keep-daily 7 keeps the newest file \
of each of the last 7 days that have files, and so on. A file is kept when any rule keeps it; the \
newest file of each series (backups, exports, pre-import, pre-restore and pre-migrate safety \
copies) is always \
kept. At least one rule is needed; any one will do. Files whose names this tool did not give are \
never touched. With --remote, the remote's objects are pruned by the same rules, and unfinished \
uploads of ours older than an hour (left by killed processes) are aborted."
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
    /// The directory to prune, even with a remote configured [default: the remote with --remote,
    /// else the workspace's backups/]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    remote: RemoteOptions,
}

/// Deletes (or with `--dry-run`, lists) what the rules do not keep, in `--dir` or `backups/`, or in
/// the remote.
pub fn run(args: &PruneArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("prune");
    let rules = Rules {
        policy: Policy {
            last: args.keep_last.unwrap_or(0),
            daily: args.keep_daily.unwrap_or(0),
            weekly: args.keep_weekly.unwrap_or(0),
            monthly: args.keep_monthly.unwrap_or(0),
        },
        dry_run: args.dry_run,
    };
    report.field("dry_run", args.dry_run);
    match args.remote.archive(args.dir.as_deref())? {
        Archive::Remote(remote) => {
            let place = remote.url().to_string();
            let objects = remote.list()?.into_iter().map(|(name, _)| name);
            let files = objects
                .filter_map(|name| Some((BackupName::parse(&name)?, name)))
                .collect();
            let show = |name: &String| remote.url().object(name);
            let delete = |name: &String| remote.delete(name);
            prune(&place, files, &rules, show, delete, &mut report)?;
            abort_stale_uploads(&remote, args.dry_run, &mut report)?;
        }
        Archive::Dir(dir) => {
            let place = dir.display().to_string();
            let show = |path: &PathBuf| path.display().to_string();
            let delete = |path: &PathBuf| {
                std::fs::remove_file(path)
                    .with_context(|| format!("cannot delete {}", path.display()))
            };
            let files = files_named_by_us(&dir)?;
            prune(&place, files, &rules, show, delete, &mut report)?;
        }
    }
    Ok(report)
}

/// What to keep, and whether to delete the rest or only say which.
struct Rules {
    policy: Policy,
    dry_run: bool,
}

/// Deletes (`delete`) the `files` in `place` that the rules do not keep, or with `--dry-run` only
/// says which. A file that cannot be deleted does not stop the others; the error at the end names
/// each.
fn prune<F>(
    place: &str,
    files: Vec<(BackupName, F)>,
    rules: &Rules,
    show: impl Fn(&F) -> String,
    delete: impl Fn(&F) -> anyhow::Result<()>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let names: Vec<BackupName> = files.iter().map(|(name, _)| name.clone()).collect();
    let keep = plan(&names, rules.policy);
    let verb = if rules.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let (mut kept, mut deleted, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for ((_, file), keep) in files.iter().zip(keep) {
        let shown = show(file);
        if keep {
            kept.push(shown);
            continue;
        }
        if let Err(error) = (!rules.dry_run).then(|| delete(file)).transpose() {
            failed.push(format!("{error:#}"));
            continue;
        }
        // Told at once: what is gone must be known even if a later deletion fails.
        report.tell(format!("{verb} {shown}"));
        deleted.push(shown);
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} deletions failed (the others were done): {}",
            failed.len(),
            failed.len() + deleted.len(),
            failed.join("; ")
        );
    }
    report.say(format!(
        "{place}: kept {}, {verb} {} of {} backup files",
        kept.len(),
        deleted.len(),
        files.len()
    ));
    report
        .field("path", place)
        .field("kept", kept)
        .field("deleted", deleted);
    Ok(())
}

/// Aborts (or with `dry_run` lists) the unfinished uploads of our files that killed processes left
/// in `remote`.
fn abort_stale_uploads(remote: &Remote, dry_run: bool, report: &mut Report) -> anyhow::Result<()> {
    let stale = remote.stale_uploads(|name| BackupName::parse(name).is_some())?;
    let verb = if dry_run { "would abort" } else { "aborted" };
    let mut aborted = Vec::new();
    for upload in &stale {
        if !dry_run {
            remote.abort(upload)?;
        }
        let object = remote.url().object(&upload.name);
        report.tell(format!("{verb} the unfinished upload of {object}"));
        aborted.push(object);
    }
    report.field("aborted", aborted);
    Ok(())
}
