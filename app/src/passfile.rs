//! libpq's password file (`PGPASSFILE`, else `~/.pgpass`; `%APPDATA%\postgresql\pgpass.conf` on
//! Windows): lines of
//! `hostname:port:database:username:password`, read with libpq's own rules, so that our connection
//! and the tools we run find the same password.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::libpq::PASSFILE;

/// The host a passfile line names for a connection over libpq's default unix socket directory.
const DEFAULT_HOST: &str = "localhost";
/// libpq's default unix socket directory (Debian's build).
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// What a password is looked up for; empty fields take libpq's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// The host name, or a unix socket directory.
    pub host: &'a str,
    /// The port.
    pub port: u16,
    /// The database.
    pub dbname: &'a str,
    /// The user.
    pub user: &'a str,
}

/// The passfile libpq reads: `PGPASSFILE`, else [`PASSFILE`] (`.pgpass` in the home directory).
/// `env` reads a variable of the environment.
pub fn path(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    match env("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(file) => Some(PathBuf::from(file)),
        None => PASSFILE.path(env),
    }
}

/// The password the passfile at `file` holds for `lookup`, as libpq finds it: the first matching
/// line wins; `*` matches anything; `\` escapes `:` and `\`. A file that is not a plain file, or
/// that its group or others may read, write or execute, is ignored, as libpq ignores it.
pub fn password(file: &Path, lookup: &Lookup<'_>) -> Option<String> {
    let metadata = std::fs::metadata(file).ok()?;
    if !metadata.is_file() || !only_its_owner_may_read(&metadata) {
        return None;
    }
    let text = std::fs::read(file).ok()?;
    let host = if lookup.host.is_empty() || lookup.host == DEFAULT_SOCKET_DIR {
        DEFAULT_HOST
    } else {
        lookup.host
    };
    let port = lookup.port.to_string();
    let fields = [host, port.as_str(), lookup.dbname, lookup.user];
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let rest = fields
                .iter()
                .try_fold(line, |rest, field| field_matches(rest, field))?;
            Some(unescape_password(rest))
        })
}

#[cfg(unix)]
fn only_its_owner_may_read(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o077 == 0
}

/// libpq makes no such check on Windows: the file is in the user's own `%APPDATA%`.
#[cfg(not(unix))]
fn only_its_owner_may_read(_: &std::fs::Metadata) -> bool {
    true
}

/// Whether `line` starts with a field that matches `value` and its `:`; returns what follows.
fn field_matches<'l>(line: &'l str, value: &str) -> Option<&'l str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut wanted = value.chars();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        let (literal, escaped) = match c {
            '\\' => match chars.next() {
                Some((_, next)) => (next, true),
                None => return None,
            },
            c => (c, false),
        };
        if literal == ':' && !escaped {
            return wanted.next().is_none().then(|| &line[i + 1..]);
        }
        if wanted.next() != Some(literal) {
            return None;
        }
    }
    None
}

/// The password field: up to the first unescaped `:`, with `\` escapes removed.
fn unescape_password(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            ':' => break,
            '\\' => match chars.next() {
                Some(next) => out.push(next),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

// The tests write passfiles with Unix modes.
#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn passfile(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, file)
    }

    const LOOKUP: Lookup<'static> = Lookup {
        host: "db.example.com",
        port: 5432,
        dbname: "toefl",
        user: "app",
    };

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let (_dir, file) = passfile(
            "# a comment line\nother.example.com:5432:toefl:app:wrong-host\n\
             db.example.com:6543:toefl:app:wrong-port\n*:*:toefl:app:first\n*:*:*:*:second\n",
            0o600,
        );
        assert_eq!(password(&file, &LOOKUP).as_deref(), Some("first"));
        let other_db = Lookup {
            dbname: "postgres",
            ..LOOKUP
        };
        assert_eq!(password(&file, &other_db).as_deref(), Some("second"));
    }

    #[test]
    fn escapes_in_fields_and_in_the_password() {
        let (_dir, file) = passfile(
            "db.example.com:5432:to\\:efl:a\\\\pp:p\\:a\\\\ss:ignored\r\n",
            0o600,
        );
        let lookup = Lookup {
            dbname: "to:efl",
            user: "a\\pp",
            ..LOOKUP
        };
        assert_eq!(password(&file, &lookup).as_deref(), Some("p:a\\ss"));
        assert_eq!(password(&file, &LOOKUP), None);
    }

    #[test]
    fn the_default_socket_directory_and_an_empty_host_are_localhost() {
        let (_dir, file) = passfile("localhost:5432:toefl:app:local\n", 0o600);
        for host in ["", DEFAULT_SOCKET_DIR] {
            let lookup = Lookup { host, ..LOOKUP };
            assert_eq!(password(&file, &lookup).as_deref(), Some("local"), "{host}");
        }
        let other_socket = Lookup {
            host: "/tmp",
            ..LOOKUP
        };
        assert_eq!(password(&file, &other_socket), None);
    }

    #[test]
    fn a_file_others_may_access_is_ignored() {
        for mode in [0o640, 0o604, 0o610, 0o601] {
            let (_dir, file) = passfile("*:*:*:*:secret\n", mode);
            assert_eq!(password(&file, &LOOKUP), None, "{mode:o}");
        }
        let (_dir, file) = passfile("*:*:*:*:secret\n", 0o400);
        assert_eq!(password(&file, &LOOKUP).as_deref(), Some("secret"));
    }

    #[test]
    fn the_file_is_pgpassfile_else_in_home() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            path(&env(&[("PGPASSFILE", "/run/pass"), ("HOME", "/home/u")])),
            Some(PathBuf::from("/run/pass"))
        );
        assert_eq!(
            path(&env(&[("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.pgpass"))
        );
        assert_eq!(path(&env(&[])), None);
    }
}
