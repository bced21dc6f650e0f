//! `DATABASE_URL`: which database, on which backend; shown only with its password redacted.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::config::{Host, SslMode};

pub use crate::backend::Backend;

/// How long a connection attempt may take before it fails, unless the URL says otherwise: a CI job
/// must never hang on an unreachable server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The forms a database URL may take, for error messages.
pub const ACCEPTED_FORMS: &str = "sqlite:PATH, sqlite://PATH (relative to the current directory), \
     sqlite:///ABSOLUTE/PATH, postgres://USER:PASSWORD@HOST:PORT/DBNAME or postgresql://...";

/// A parsed database URL. `Display` redacts the password; [`DatabaseUrl::postgres_config`] is the
/// only way to the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file, at a path relative to the current directory or absolute.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, as given (it holds the password, if any).
    Postgres(String),
}

/// Why a string is not a database URL. The message never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid database URL `{redacted}`: {reason}; accepted forms: {ACCEPTED_FORMS}")]
pub struct UrlError {
    redacted: String,
    reason: String,
}

impl DatabaseUrl {
    /// Parses `url`, checking PostgreSQL URLs with the driver's own parser.
    pub fn parse(url: &str) -> Result<DatabaseUrl, UrlError> {
        let error = |reason: &str| UrlError {
            redacted: redact(url),
            reason: reason.to_string(),
        };
        if let Some(rest) = url.strip_prefix("sqlite:") {
            // `sqlite://rel.db` and `sqlite:rel.db` are relative, `sqlite:///abs.db` absolute.
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(error("the SQLite URL names no file"));
            }
            if path.contains('?') || path.starts_with(":memory:") {
                return Err(error(
                    "SQLite URLs name a file and take no parameters or :memory:",
                ));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return match url.parse::<postgres::Config>() {
                // The driver's message can quote the URL, so it is summarised, not repeated.
                Err(e) => Err(error(&format!(
                    "not a valid PostgreSQL URL ({})",
                    redact(&e.to_string())
                ))),
                Ok(_) => Ok(DatabaseUrl::Postgres(url.to_string())),
            };
        }
        Err(error("unknown scheme"))
    }

    /// A SQLite URL for `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> DatabaseUrl {
        DatabaseUrl::Sqlite(path.into())
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite file, for a SQLite URL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DatabaseUrl::Sqlite(path) => Some(path),
            DatabaseUrl::Postgres(_) => None,
        }
    }

    /// The driver configuration, for a PostgreSQL URL; it holds the password, so never print it.
    pub fn postgres_config(&self) -> Option<postgres::Config> {
        match self {
            DatabaseUrl::Sqlite(_) => None,
            // Validated in `parse`.
            DatabaseUrl::Postgres(url) => url.parse().ok(),
        }
    }

    /// The connection as libpq environment variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
    /// `PGDATABASE`, ...), for PostgreSQL's own tools; `None` for SQLite. Tools given these need no
    /// URL argument, so the password never shows in a process list. When the URL sets no connect
    /// timeout, the app's own ([`CONNECT_TIMEOUT`]) applies.
    pub fn libpq_environment(&self) -> Option<Vec<(&'static str, OsString)>> {
        let config = self.postgres_config()?;
        let join = |parts: Vec<String>| OsString::from(parts.join(","));
        let mut env = Vec::new();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(dir) => dir.display().to_string(),
            })
            .collect();
        if !hosts.is_empty() {
            env.push(("PGHOST", join(hosts)));
        }
        let addresses: Vec<String> = config
            .get_hostaddrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
        if !addresses.is_empty() {
            env.push(("PGHOSTADDR", join(addresses)));
        }
        // Always set, so that a PGPORT inherited from the shell cannot point elsewhere than the URL.
        let ports: Vec<String> = match config.get_ports() {
            [] => vec!["5432".into()],
            ports => ports.iter().map(u16::to_string).collect(),
        };
        env.push(("PGPORT", join(ports)));
        if let Some(user) = config.get_user() {
            env.push(("PGUSER", user.into()));
        }
        if let Some(password) = config.get_password() {
            env.push(("PGPASSWORD", OsStr::from_bytes(password).to_os_string()));
        }
        if let Some(dbname) = config.get_dbname() {
            env.push(("PGDATABASE", dbname.into()));
        }
        if let Some(options) = config.get_options() {
            env.push(("PGOPTIONS", options.into()));
        }
        let ssl_mode = match config.get_ssl_mode() {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            _ => "prefer",
        };
        env.push(("PGSSLMODE", ssl_mode.into()));
        let timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT);
        env.push((
            "PGCONNECT_TIMEOUT",
            timeout.as_secs().max(1).to_string().into(),
        ));
        Some(env)
    }

    /// The same server with another database name, for PostgreSQL; `None` for SQLite.
    pub fn with_postgres_database(&self, dbname: &str) -> Option<DatabaseUrl> {
        let DatabaseUrl::Postgres(url) = self else {
            return None;
        };
        let (before_query, query) = match url.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (url.as_str(), None),
        };
        let scheme_end = before_query.find("://")? + 3;
        let path_start = before_query[scheme_end..]
            .find('/')
            .map_or(before_query.len(), |i| scheme_end + i);
        let mut out = format!("{}/{dbname}", &before_query[..path_start]);
        if let Some(query) = query {
            out.push('?');
            out.push_str(query);
        }
        Some(DatabaseUrl::Postgres(out))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `text` with the password of any URL in it, and any `password=` parameter, replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme) = rest.find("://") {
        let authority_start = scheme + 3;
        out.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        let authority_end = rest
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _password)) => out.push_str(&format!("{user}:***")),
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &rest[authority_end..];
    }
    out.push_str(rest);
    redact_password_parameters(&out)
}

fn redact_password_parameters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("password=") {
        let preceded_by_separator = i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&' | b' ');
        let value_start = i + "password=".len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        if preceded_by_separator {
            let value_end = rest
                .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
                .unwrap_or(rest.len());
            out.push_str("***");
            rest = &rest[value_end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let sqlite = |p: &str| Some(Backend::Sqlite).zip(Some(PathBuf::from(p)));
        let cases: [(&str, Option<(Backend, PathBuf)>); 7] = [
            ("sqlite:dev.db", sqlite("dev.db")),
            ("sqlite://dev.db", sqlite("dev.db")),
            ("sqlite://data/dev.db", sqlite("data/dev.db")),
            ("sqlite:///abs/dev.db", sqlite("/abs/dev.db")),
            ("sqlite:/abs/dev.db", sqlite("/abs/dev.db")),
            ("postgres://u:p@host:5432/toefl", None),
            ("postgresql://u@host/toefl?sslmode=require", None),
        ];
        for (text, expected) in cases {
            let url = DatabaseUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            match expected {
                Some((backend, path)) => {
                    assert_eq!(url.backend(), backend, "{text}");
                    assert_eq!(url.sqlite_path(), Some(path.as_path()), "{text}");
                }
                None => assert_eq!(url.backend(), Backend::Postgres, "{text}"),
            }
        }
    }

    #[test]
    fn rejected_forms_name_the_accepted_ones_without_the_password() {
        let cases = [
            "mysql://u:hunter2@host/db",
            "sqlite:",
            "sqlite://",
            "sqlite::memory:",
            "sqlite:dev.db?mode=ro",
            "postgres://u:hunter2@host:notaport/db",
            "postgres://u:hunter2@host/db?sslmode=bogus",
            "dev.db",
            "",
        ];
        for text in cases {
            let error = DatabaseUrl::parse(text).expect_err(text).to_string();
            assert!(error.contains(ACCEPTED_FORMS), "{text}: {error}");
            assert!(!error.contains("hunter2"), "{text}: {error}");
        }
    }

    #[test]
    fn redaction() {
        let cases = [
            (
                "postgres://u:hunter2@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
            (
                "postgres://u:p%40ss@h/db?sslmode=require",
                "postgres://u:***@h/db?sslmode=require",
            ),
            (
                "postgres://h/db?user=u&password=hunter2&x=1",
                "postgres://h/db?user=u&password=***&x=1",
            ),
            (
                "error at postgres://a:b@h/d: refused",
                "error at postgres://a:***@h/d: refused",
            ),
            (
                "host=h password=hunter2 dbname=d",
                "host=h password=*** dbname=d",
            ),
            ("sqlite:///tmp/dev.db", "sqlite:///tmp/dev.db"),
        ];
        for (text, expected) in cases {
            assert_eq!(redact(text), expected);
        }
        let url = DatabaseUrl::parse("postgres://u:hunter2@h/db").unwrap();
        assert_eq!(url.to_string(), "postgres://u:***@h/db");
        assert_eq!(format!("{url:?}"), "DatabaseUrl(postgres://u:***@h/db)");
    }

    #[test]
    fn libpq_environment_carries_the_connection_and_the_password() {
        let url = DatabaseUrl::parse(
            "postgresql://u:p%40ss@localhost/toefl?host=/run/pg&port=6543&sslmode=require",
        )
        .unwrap();
        let env: Vec<(&str, String)> = url
            .libpq_environment()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.into_string().unwrap()))
            .collect();
        let get = |key: &str| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("localhost,/run/pg"));
        // One port per host, as libpq pairs them: the first host has none, so the default.
        assert_eq!(get("PGPORT"), Some("5432,6543"));
        assert_eq!(get("PGUSER"), Some("u"));
        assert_eq!(get("PGPASSWORD"), Some("p@ss"));
        assert_eq!(get("PGDATABASE"), Some("toefl"));
        assert_eq!(get("PGSSLMODE"), Some("require"));
        assert_eq!(get("PGCONNECT_TIMEOUT"), Some("10"));
        assert!(DatabaseUrl::sqlite("dev.db").libpq_environment().is_none());
    }

    #[test]
    fn another_database_on_the_same_server() {
        let url = DatabaseUrl::parse("postgres://u:p@h:1/db?sslmode=require").unwrap();
        let other = url.with_postgres_database("scratch").unwrap();
        assert_eq!(
            other,
            DatabaseUrl::Postgres("postgres://u:p@h:1/scratch?sslmode=require".into())
        );
    }
}
