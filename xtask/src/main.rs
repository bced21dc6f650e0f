//! `cargo xtask`: the TOEFL Dashboard's operations tooling, for developers at a terminal and for CI.
//!
//! This file only parses the command line and dispatches: each command lives in [`commands`], the
//! jobs they share in [`engine`]; errors become one line on stderr and an exit code ([`exit`]).

mod commands;
mod confirm;
mod engine;
mod exit;
mod flags;
mod offsite;
mod progress;
mod report;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{backup, copy, export, import, list, migrate, prune, restore, seed, verify};
use exit::Exit;

const AFTER_HELP: &str = "\
The database is chosen by --database-url, else by DATABASE_URL, else the development SQLite file
instance/toefl_dev.db in the workspace. Accepted URL forms: sqlite:PATH and sqlite://PATH (relative to
the current directory), sqlite:///ABSOLUTE/PATH (on Windows also sqlite:C:/PATH and sqlite:///C:/PATH),
postgres://USER:PASSWORD@HOST:PORT/DBNAME and postgresql://... (add
?sslmode=verify-full&sslrootcert=system for verified TLS). Without a password in the URL, PGPASSWORD
or the passfile (~/.pgpass) gives it, as for psql. Passwords are never shown.

Backups and exports go to the workspace's backups/ (TOEFL_BACKUPS_DIR moves it). --json prints one
JSON line on stdout; messages for people go to stderr.

Exit codes: 0 success; 1 error; 2 usage error; 3 confirmation refused; 4 verification failed.";

/// Operations tooling for the TOEFL Dashboard database (SQLite in development, PostgreSQL in production).
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", after_help = AFTER_HELP)]
struct Cli {
    /// The database to work on [default: the development SQLite file]
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Print one machine-readable JSON line on stdout (human messages stay on stderr)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or update the schema on the database (after saving its data, if it has any)
    Migrate(migrate::MigrateArgs),
    /// Fill the database with deterministic demo data (refuses a database that has students)
    Seed(seed::SeedArgs),
    /// Write every row of every table to a JSON file that either backend can import
    Export(export::ExportArgs),
    /// Replace all data in the database with an export file's (asks first)
    Import(import::ImportArgs),
    /// Replace all data in the database at --to with this database's, with no file between (asks first)
    Copy(copy::CopyArgs),
    /// Write a native backup (SQLite backup API or pg_dump), consistent while the app writes
    Backup(backup::BackupArgs),
    /// Replace the database's data with a native backup, after saving the current data
    Restore(restore::RestoreArgs),
    /// Prove that a backup restores: restore it into a scratch database and check it there
    Verify(verify::VerifyArgs),
    /// List the backups and exports in backups/, newest first, described from their content
    List(list::ListArgs),
    /// Delete old backups and exports by retention rules (files this tool did not name are never touched)
    Prune(prune::PruneArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: what failed, then why, each layer after a colon.
            // One line even when a tool or server said several.
            let message = app::url::redact(&format!("{error:#}")).replace('\n', "; ");
            eprintln!("error: {message}");
            let code = Exit::code_of(&error);
            if json {
                report::print_failure(&message, code);
            }
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let url = || workspace::database_url(cli.database_url.as_deref());
    let report = match cli.command {
        Command::Migrate(args) => migrate::run(&url()?, &args),
        Command::Seed(args) => seed::run(&url()?, &args),
        Command::Export(args) => export::run(&url()?, &args),
        Command::Import(args) => import::run(&url()?, &args),
        Command::Copy(args) => copy::run(&url()?, &args),
        Command::Backup(args) => backup::run(&url()?, &args),
        Command::Restore(args) => restore::run(&url()?, &args),
        Command::Verify(args) => verify::run(url, &args),
        Command::List(args) => list::run(&args),
        Command::Prune(args) => prune::run(&args),
    }?;
    report.print(cli.json);
    Ok(())
}
