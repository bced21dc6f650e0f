//! PostgreSQL's own tools (`pg_dump`, `pg_restore`): found on `PATH` with an install hint when they
//! are missing, their versions compared with the server's, and run with the connection in their
//! environment, never on their command line, where any user could read the password.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::Context as _;
use app::url::process_environment;
use app::DatabaseUrl;
use xshell::{cmd, Shell};

/// A PostgreSQL client program found on `PATH`.
pub struct PgTool {
    name: &'static str,
    program: PathBuf,
}

/// A PostgreSQL release, e.g. `15.18`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgVersion {
    /// The major version: tools and servers of one major version understand each other.
    pub major: u32,
    /// The minor version.
    pub minor: u32,
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl PgTool {
    /// Finds `name` on `PATH` (`name.exe` on Windows), or says how to install it.
    pub fn find(name: &'static str) -> anyhow::Result<PgTool> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let file_name = format!("{name}{}", std::env::consts::EXE_SUFFIX);
        std::env::split_paths(&path)
            .map(|dir| dir.join(&file_name))
            .find(|candidate| is_executable(candidate))
            .map(|program| PgTool { name, program })
            .with_context(|| {
                format!(
                    "{file_name} not found on PATH: install the PostgreSQL client (Debian: apt-get \
                     install postgresql-client; Windows: winget install PostgreSQL.PostgreSQL.17, \
                     then add C:\\Program Files\\PostgreSQL\\17\\bin to PATH)"
                )
            })
    }

    /// The release of this program, from `--version` (`pg_dump (PostgreSQL) 15.18 (Debian ...)`).
    pub fn version(&self) -> anyhow::Result<PgVersion> {
        let output = self.output(None, &[OsStr::new("--version")])?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.split_whitespace()
            .find_map(parse_release)
            .with_context(|| format!("cannot read {}'s version from {:?}", self.name, text.trim()))
    }

    /// Runs the program with `args`, connected to `url` (if any) through libpq's environment
    /// variables, and returns its output whatever its exit status.
    pub fn output(&self, url: Option<&DatabaseUrl>, args: &[&OsStr]) -> anyhow::Result<Output> {
        let sh = Shell::new()?;
        let program = &self.program;
        let environment = match url {
            Some(url) => url.libpq_environment().with_context(|| format!("{url}"))?,
            None => None,
        };
        let mut command = cmd!(sh, "{program} {args...}").quiet().ignore_status();
        if let Some(environment) = environment {
            // Never ask for a password on the terminal: a wrong one must fail, not hang CI.
            command = command.arg("--no-password").envs(environment);
        }
        command
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))
    }

    /// Like [`PgTool::output`], but fails with the program's own message unless it succeeds;
    /// returns its standard output.
    pub fn run(&self, url: Option<&DatabaseUrl>, args: &[&OsStr]) -> anyhow::Result<String> {
        let output = self.output(url, args)?;
        if !output.status.success() {
            return Err(self.connection_failure(url, &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The error for a failed run that may not have connected: a TLS refusal is told as the
    /// problem and its fix, as our own connection tells it; anything else as [`PgTool::failure`].
    fn connection_failure(&self, url: Option<&DatabaseUrl>, output: &Output) -> anyhow::Error {
        let said = String::from_utf8_lossy(&output.stderr);
        let explained = url.and_then(|url| {
            let connection = url.postgres_connection(&process_environment)?.ok()?;
            let explanation = connection.tls.explain_failure(&said)?;
            Some(anyhow::anyhow!(
                "{} cannot connect to {url}: {explanation}",
                self.name
            ))
        });
        explained.unwrap_or_else(|| self.failure(output))
    }

    /// The error for a failed run: the exit status and what the program said, on one line.
    pub fn failure(&self, output: &Output) -> anyhow::Error {
        let said = String::from_utf8_lossy(&output.stderr);
        let said: Vec<&str> = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        anyhow::anyhow!(
            "{} failed ({}): {}",
            self.name,
            output.status,
            app::url::redact(&said.join("; "))
        )
    }
}

/// `15.18`, `16.2` or `17beta1` (read as 17.0); `None` for a word that is not a release.
fn parse_release(word: &str) -> Option<PgVersion> {
    let leading_number = |part: &str| -> Option<u32> {
        let end = part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len());
        part[..end].parse().ok()
    };
    let mut parts = word.split('.');
    let major = leading_number(parts.next()?)?;
    let minor = parts.next().and_then(leading_number).unwrap_or(0);
    Some(PgVersion { major, minor })
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// On Windows a program is a file whose name ends in `.exe`, which [`PgTool::find`] looks for.
#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_the_tools_print_them() {
        let version = |text: &str| text.split_whitespace().find_map(parse_release);
        assert_eq!(
            version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(PgVersion {
                major: 15,
                minor: 18
            })
        );
        assert_eq!(
            version("pg_restore (PostgreSQL) 17beta1"),
            Some(PgVersion {
                major: 17,
                minor: 0
            })
        );
        assert_eq!(
            version("pg_dump (PostgreSQL) 16.2"),
            Some(PgVersion {
                major: 16,
                minor: 2
            })
        );
    }
}
