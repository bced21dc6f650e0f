//! Asking before a destructive step: a question on a terminal, `--yes` to skip it, and a refusal
//! when there is nobody to ask.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::exit::Exit;

/// Returns `Ok` when the user agrees to `question` (or passed `--yes`), and an [`Exit::Refused`]
/// error otherwise; without a terminal, only `--yes` agrees.
fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Exit::Refused(format!(
            "refusing to go on without confirmation: no terminal to ask on; pass --yes to confirm ({question})"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Exit::Refused("cancelled: nothing was changed".into()).into())
    }
}

/// Opens the target of a destructive `action` once the user agrees to it: the question shows the
/// target (its password redacted) and what it holds now. A SQLite file that does not exist yet is
/// created only after the answer, so a refusal leaves nothing behind.
pub fn open_confirmed_target(
    url: &app::DatabaseUrl,
    action: &str,
    yes: bool,
) -> anyhow::Result<app::Database> {
    if url.sqlite_path().is_some_and(|path| !path.exists()) {
        confirm(
            &format!("{action} creates {url}, which does not exist yet. Go on?"),
            yes,
        )?;
        return Ok(app::Database::open(url, app::Create::IfMissing)?);
    }
    let mut db = app::Database::open(url, app::Create::No)?;
    let holds = match db.schema_version()? {
        None => "no schema yet".to_string(),
        Some(_) => db.row_counts()?.to_string(),
    };
    confirm(
        &format!("{action} replaces all data in {url}, which now holds: {holds}. Go on?"),
        yes,
    )?;
    Ok(db)
}

/// The SQLite file at `url` if it does not exist yet: [`open_confirmed_target`] will create it, and a
/// command that then fails removes it with [`remove_created_file`].
pub fn sqlite_file_to_create(url: &app::DatabaseUrl) -> Option<PathBuf> {
    url.sqlite_path()
        .filter(|path| !path.exists())
        .map(Path::to_path_buf)
}

/// Closes `db` after a failure and removes `created`, the SQLite file the command created, so that
/// the target is exactly as before: absent.
pub fn remove_created_file(db: app::Database, created: Option<PathBuf>) {
    drop(db);
    if let Some(file) = created {
        // Best effort: the error that made the command fail is the one to report.
        let _ = std::fs::remove_file(file);
    }
}
