//! `DATABASE_URL`: which database, on which backend; shown only with its password redacted.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::backend::Backend;
use crate::libpq::PgConnection;
use crate::tls::{SslMode, TlsError, SSL_MODES};

/// The forms a database URL may take, for error messages. Written so that redaction, which every
/// error line goes through, leaves them readable: the password part comes out as `USER:***@`.
pub const ACCEPTED_FORMS: &str = "sqlite:PATH, sqlite://PATH (relative to the current directory), \
     sqlite:///ABSOLUTE/PATH, sqlite:C:/PATH or sqlite:///C:/PATH (Windows), \
     postgres://USER@HOST[:PORT]/DBNAME[?sslmode=verify-full] (the password from PGPASSWORD or \
     the passfile) or postgres://USER:PASSWORD@HOST/..., or postgresql://...";

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
            redacted: redact_rejected(url),
            reason: reason.to_string(),
        };
        if let Some(rest) = url.strip_prefix("sqlite:") {
            // `sqlite://rel.db` and `sqlite:rel.db` are relative, `sqlite:///abs.db` absolute.
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = without_slash_before_drive(path);
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
        let Some(parts) = PostgresParts::split(url) else {
            return Err(error("unknown scheme"));
        };
        // The driver ends the password at the first `@`: a second one before the query means a
        // password with an unencoded `@`, which would be cut in two and half of it shown as host.
        if parts.host.contains('@') || parts.path.is_some_and(|p| p.contains('@')) {
            return Err(error(
                "more than one `@` before the query: percent-encode `@` in the password (and \
                 elsewhere) as %40",
            ));
        }
        if let Err(e) = parts.driver_url().parse::<postgres::Config>() {
            // The driver's message can quote the URL, so it is summarised, not repeated.
            return Err(error(&format!(
                "not a valid PostgreSQL URL ({})",
                redact(&e.to_string())
            )));
        }
        let tls = parts.tls_parameters();
        if let Some(mode) = tls.sslmode {
            if SslMode::parse(&mode).is_none() {
                return Err(error(&format!("sslmode must be one of {SSL_MODES}")));
            }
        }
        Ok(DatabaseUrl::Postgres(url.to_string()))
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

    /// The driver's configuration of what the URL itself says, for a PostgreSQL URL (`sslmode`
    /// and `sslrootcert` are left to [`DatabaseUrl::postgres_connection`]); it holds the password,
    /// so never print it.
    pub fn postgres_config(&self) -> Option<postgres::Config> {
        let parts = self.postgres_parts()?;
        // Validated in `parse`.
        parts.driver_url().parse().ok()
    }

    /// The connection libpq would make for this PostgreSQL URL in the environment `env` reads:
    /// the password from the URL, else `PGPASSWORD`, else the passfile; TLS from the URL, else
    /// `PGSSLMODE` / `PGSSLROOTCERT`. `None` for SQLite.
    pub fn postgres_connection(
        &self,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Option<Result<PgConnection, TlsError>> {
        let config = self.postgres_config()?;
        let tls = self.postgres_parts()?.tls_parameters();
        Some(PgConnection::resolve(
            config,
            tls.sslmode.as_deref(),
            tls.sslrootcert.as_deref(),
            env,
        ))
    }

    /// The connection as libpq environment variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
    /// `PGDATABASE`, `PGSSLMODE`, ...), for PostgreSQL's own tools, read from this process's
    /// environment as [`DatabaseUrl::postgres_connection`] does; `None` for SQLite. Tools given
    /// these need no URL argument, so the password never shows in a process list.
    pub fn libpq_environment(&self) -> Result<Option<Vec<(&'static str, OsString)>>, TlsError> {
        self.postgres_connection(&process_environment)
            .transpose()
            .map(|connection| connection.map(|c| c.libpq_environment()))
    }

    /// The same server with another database name, for PostgreSQL; `None` for SQLite. The rest of
    /// the URL, credentials and parameters included, is kept as it is.
    pub fn with_postgres_database(&self, dbname: &str) -> Option<DatabaseUrl> {
        let parts = self.postgres_parts()?;
        let mut out = parts.authority();
        out.push('/');
        out.push_str(&percent_encode(dbname));
        let parameters: Vec<&str> = parts
            .parameters()
            .filter(|p| p.key != "dbname")
            .map(|p| p.raw)
            .collect();
        if !parameters.is_empty() {
            out.push('?');
            out.push_str(&parameters.join("&"));
        }
        Some(DatabaseUrl::Postgres(out))
    }

    fn postgres_parts(&self) -> Option<PostgresParts<'_>> {
        match self {
            DatabaseUrl::Sqlite(_) => None,
            DatabaseUrl::Postgres(url) => PostgresParts::split(url),
        }
    }
}

/// Reads a variable of this process's environment.
pub fn process_environment(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => match PostgresParts::split(url) {
                Some(parts) => f.write_str(&parts.redacted()),
                None => f.write_str(&redact_rejected(url)),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `/C:/dir/dev.db` as `C:/dir/dev.db`: in `sqlite:///C:/dir/dev.db` the slash before a Windows
/// drive letter only separates it from the URL's empty host, as in SQLAlchemy's URLs. Done on every
/// platform, so that one URL means one file everywhere (and the rule is tested on Linux too).
fn without_slash_before_drive(path: &str) -> &str {
    match path.as_bytes() {
        [b'/', drive, b':', ..] if drive.is_ascii_alphabetic() => &path[1..],
        _ => path,
    }
}

/// A PostgreSQL URL cut exactly where the driver (`tokio_postgres::Config`'s URL parser) cuts it:
/// the credentials end at the first `@`, the host at the next `/` or `?`, the database name at
/// the next `?`.
struct PostgresParts<'a> {
    /// `postgres://` or `postgresql://`.
    scheme: &'a str,
    /// `USER[:PASSWORD]`, before the first `@`.
    userinfo: Option<&'a str>,
    /// One or more `HOST[:PORT]`, comma-separated.
    host: &'a str,
    /// The database name, after `/`.
    path: Option<&'a str>,
    /// The parameters, after `?`.
    query: Option<&'a str>,
}

/// One `key=value` of a URL's query, as the driver reads it.
struct Parameter<'a> {
    /// `key=value` as written.
    raw: &'a str,
    raw_key: &'a str,
    raw_value: &'a str,
    /// The key, percent-decoded.
    key: String,
}

/// The URL parameters only libpq knows, which this crate interprets itself.
#[derive(Default)]
struct TlsParameters {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl<'a> PostgresParts<'a> {
    fn split(url: &'a str) -> Option<PostgresParts<'a>> {
        let scheme_len = ["postgres://", "postgresql://"]
            .iter()
            .find(|scheme| url.starts_with(*scheme))?
            .len();
        let (scheme, rest) = url.split_at(scheme_len);
        let (userinfo, rest) = match rest.split_once('@') {
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, rest),
        };
        let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (host, rest) = rest.split_at(host_end);
        let (path, query) = match rest.strip_prefix('/') {
            Some(path) => match path.split_once('?') {
                Some((path, query)) => (Some(path), Some(query)),
                None => (Some(path), None),
            },
            None => (None, rest.strip_prefix('?')),
        };
        Some(PostgresParts {
            scheme,
            userinfo,
            host,
            path,
            query,
        })
    }

    /// The query's parameters in order. Like the driver, a key runs to the next `=` and its value
    /// to the next `&`.
    fn parameters(&self) -> impl Iterator<Item = Parameter<'a>> {
        let mut rest = self.query.unwrap_or("");
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let start = rest;
            // Unterminated (the driver rejects it): all of it is the key.
            let (raw_key, after) = rest.split_once('=').unwrap_or((rest, ""));
            let (raw_value, after) = after.split_once('&').unwrap_or((after, ""));
            let consumed = start.len() - after.len();
            let raw = start[..consumed]
                .strip_suffix('&')
                .unwrap_or(&start[..consumed]);
            rest = after;
            Some(Parameter {
                raw,
                raw_key,
                raw_value,
                key: percent_decode(raw_key),
            })
        })
    }

    fn tls_parameters(&self) -> TlsParameters {
        let mut tls = TlsParameters::default();
        for parameter in self.parameters() {
            let value = || Some(percent_decode(parameter.raw_value));
            match parameter.key.as_str() {
                "sslmode" => tls.sslmode = value(),
                "sslrootcert" => tls.sslrootcert = value(),
                _ => {}
            }
        }
        tls
    }

    /// `SCHEME[USERINFO@]HOST`, password included.
    fn authority(&self) -> String {
        match self.userinfo {
            Some(userinfo) => format!("{}{userinfo}@{}", self.scheme, self.host),
            None => format!("{}{}", self.scheme, self.host),
        }
    }

    /// The URL without the parameters the driver does not know (`sslmode` values it lacks,
    /// `sslrootcert`): what the driver parses.
    fn driver_url(&self) -> String {
        let mut out = self.authority();
        if let Some(path) = self.path {
            out.push('/');
            out.push_str(path);
        }
        let parameters: Vec<&str> = self
            .parameters()
            .filter(|p| p.key != "sslmode" && p.key != "sslrootcert")
            .map(|p| p.raw)
            .collect();
        if !parameters.is_empty() {
            out.push('?');
            out.push_str(&parameters.join("&"));
        }
        out
    }

    /// The URL with the password, in the credentials or as a parameter, replaced by `***`.
    fn redacted(&self) -> String {
        let mut out = self.scheme.to_string();
        if let Some(userinfo) = self.userinfo {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(&redact_password_parameters(user));
                    out.push_str(":***");
                }
                None => out.push_str(&redact_password_parameters(userinfo)),
            }
            out.push('@');
        }
        out.push_str(self.host);
        if let Some(path) = self.path {
            out.push('/');
            out.push_str(path);
        }
        if self.query.is_some() {
            let parameters: Vec<String> = self
                .parameters()
                .map(|p| match p.key.as_str() {
                    "password" => format!("{}=***", p.raw_key),
                    _ => p.raw.to_string(),
                })
                .collect();
            out.push('?');
            out.push_str(&parameters.join("&"));
        }
        out
    }
}

/// A URL the driver or [`DatabaseUrl::parse`] rejects, for its error message: everything up to
/// the last `@` may be credentials, so all of it after the user name is hidden.
fn redact_rejected(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_password_parameters(url);
    };
    let mut out = match rest.rsplit_once('@') {
        Some((userinfo, rest)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let user = user.split(['/', '?', '#']).next().unwrap_or_default();
            let hidden = if user.len() < userinfo.len() {
                ":***"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{rest}")
        }
        None => url.to_string(),
    };
    // Where a rejected URL's password parameter ends is anyone's guess: all the rest goes.
    if let Some(i) = out.find("password=") {
        out.truncate(i + "password=".len());
        out.push_str("***");
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) if hex(high).is_some() && hex(low).is_some() => {
                out.push((hex(high).unwrap_or(0) * 16 + hex(low).unwrap_or(0)) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with every byte but letters, digits and `-._~` percent-encoded.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `text` (an error message, a tool's output) with the password of any URL in it, and any
/// `password=` parameter, replaced by `***`. URLs this crate prints are already redacted (see
/// [`DatabaseUrl`]'s `Display`); this is the safety net for text from elsewhere, so it hides
/// generously: in a URL everything up to the last `@` before a space may be credentials.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme) = rest.find("://") {
        let authority_start = scheme + 3;
        out.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        let token_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if let Some(at) = rest[..token_end].rfind('@') {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    redact_password_parameters(&out)
}

fn redact_password_parameters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("password=") {
        let preceded_by_separator =
            i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&' | b' ' | b'/');
        let value_start = i + "password=".len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        if preceded_by_separator {
            let value_end = rest
                .find(|c: char| c == '&' || c.is_whitespace())
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
        let cases: [(&str, Option<(Backend, PathBuf)>); 11] = [
            ("sqlite:dev.db", sqlite("dev.db")),
            ("sqlite://dev.db", sqlite("dev.db")),
            ("sqlite://data/dev.db", sqlite("data/dev.db")),
            ("sqlite:///abs/dev.db", sqlite("/abs/dev.db")),
            ("sqlite:/abs/dev.db", sqlite("/abs/dev.db")),
            (
                "sqlite:C:/Users/ana/toefl.db",
                sqlite("C:/Users/ana/toefl.db"),
            ),
            (
                "sqlite:///C:/Users/ana/toefl.db",
                sqlite("C:/Users/ana/toefl.db"),
            ),
            ("sqlite:///d:/toefl.db", sqlite("d:/toefl.db")),
            (
                r"sqlite:C:\Users\ana\toefl.db",
                sqlite(r"C:\Users\ana\toefl.db"),
            ),
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
            "postgres://u:hun@ter2@host/db",
            "postgres://u:hunter2@host/d@b",
            "postgres://u:hun/ter2@host:notaport/db",
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
    fn the_accepted_forms_stay_readable_once_redacted() {
        let expected = ACCEPTED_FORMS.replace("USER:PASSWORD@", "USER:***@");
        assert_eq!(redact(ACCEPTED_FORMS), expected);
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
            (
                "cannot connect to postgres://u:pa/ss@h/db: refused",
                "cannot connect to postgres://u:***@h/db: refused",
            ),
            (
                "at postgres://u:p#w@h:5432/db?password=x#y&a=1 and postgres://v:q?r@h",
                "at postgres://u:***@h:5432/db?password=***&a=1 and postgres://v:***@h",
            ),
            ("sqlite:///tmp/dev.db", "sqlite:///tmp/dev.db"),
        ];
        for (text, expected) in cases {
            assert_eq!(redact(text), expected);
        }
        let url = DatabaseUrl::parse("postgres://u:hunter2@h/db").unwrap();
        assert_eq!(url.to_string(), "postgres://u:***@h/db");
        assert_eq!(format!("{url:?}"), "DatabaseUrl(postgres://u:***@h/db)");
        let displayed = [
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p?a@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p#w@h:5432/db", "postgres://u:***@h:5432/db"),
            (
                "postgresql://u@h/db?application_name=a@b&pass%77ord=x#y",
                "postgresql://u@h/db?application_name=a@b&pass%77ord=***",
            ),
        ];
        for (text, expected) in displayed {
            let url = DatabaseUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(url.to_string(), expected);
        }
    }

    #[test]
    fn another_database_on_the_same_server() {
        let url = DatabaseUrl::parse("postgres://u:p@h:1/db?sslmode=require").unwrap();
        let other = url.with_postgres_database("scratch").unwrap();
        assert_eq!(
            other,
            DatabaseUrl::Postgres("postgres://u:p@h:1/scratch?sslmode=require".into())
        );
        // The credentials end at the first `@`, not at a `?` or `/` in the password; a `dbname`
        // parameter would override the path, so it goes.
        let url =
            DatabaseUrl::parse("postgres://u:p?a/s#s@h/db?dbname=x&sslmode=verify-full").unwrap();
        let other = url.with_postgres_database("scratch db").unwrap();
        assert_eq!(
            other,
            DatabaseUrl::Postgres("postgres://u:p?a/s#s@h/scratch%20db?sslmode=verify-full".into())
        );
        let config = other.postgres_config().unwrap();
        assert_eq!(config.get_password(), Some(&b"p?a/s#s"[..]));
        assert_eq!(config.get_dbname(), Some("scratch db"));
    }

    #[test]
    fn tls_parameters_only_libpq_knows_are_accepted_and_checked() {
        for text in [
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=system",
            "postgres://u@h/db?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
            "postgres://u@h/db?sslmode=allow",
        ] {
            let url = DatabaseUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(url.postgres_config().is_some(), "{text}");
        }
        let error = DatabaseUrl::parse("postgres://u:hunter2@h/db?sslmode=verify-everything")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("verify-full") && !error.contains("hunter2"),
            "{error}"
        );
    }
}

#[cfg(test)]
mod leak_tests;
