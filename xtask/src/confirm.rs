//! Asking before a destructive step: a question on a terminal, `--yes` to skip it, and a refusal
//! when there is nobody to ask.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

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
) -> anyhow::Result<Target> {
    if let Some(missing) = url.sqlite_path().filter(|path| !path.exists()) {
        confirm(
            &format!("{action} creates {url}, which does not exist yet. Go on?"),
            yes,
        )?;
        return Ok(Target {
            db: app::Database::open(url, app::Create::IfMissing)?,
            created: Some(missing.to_path_buf()),
        });
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
    Ok(Target { db, created: None })
}

/// The database a destructive command works on, opened once the user agreed.
pub struct Target {
    /// The open database.
    pub db: app::Database,
    /// The SQLite file this command created (it did not exist before), if any.
    created: Option<PathBuf>,
}

impl Target {
    /// Gives up after a failure: closes the database and removes the SQLite file this command
    /// created, so that the target is exactly as before: absent.
    pub fn discard(self) {
        drop(self.db);
        if let Some(file) = self.created {
            // Best effort: the error that made the command fail is the one to report.
            let _ = std::fs::remove_file(file);
        }
    }
}
