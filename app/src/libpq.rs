//! What libpq takes from the environment when the URL does not say it: the password
//! (`PGPASSWORD`, then the passfile) and TLS (`PGSSLMODE`, `PGSSLROOTCERT`). [`PgConnection`]
//! holds the result, for our own connection and, as libpq environment variables, for the
//! PostgreSQL tools we run, so that both connect the same way.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::config::Host;

use crate::passfile;
use crate::tls::{TlsError, TlsPolicy};

/// How long a connection attempt may take before it fails, unless the URL says otherwise: a CI job
/// must never hang on an unreachable server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL connection as libpq would make it: the driver's configuration with the password
/// found, and the TLS decision.
#[derive(Debug, Clone)]
pub struct PgConnection {
    /// The driver's configuration; it holds the password, so never print it.
    pub config: postgres::Config,
    /// What TLS is used and what it verifies.
    pub tls: TlsPolicy,
}

impl PgConnection {
    /// Completes `config` (what the URL says) with libpq's fallbacks from the environment `env`
    /// reads.
    pub fn resolve(
        mut config: postgres::Config,
        sslmode: Option<&str>,
        sslrootcert: Option<&str>,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<PgConnection, TlsError> {
        let tls = TlsPolicy::resolve(sslmode, sslrootcert, env)?;
        config.ssl_mode(tls.driver_mode());
        if config.get_user().is_none() {
            // libpq's default, made explicit so that the tools cannot pick up another `PGUSER`.
            if let Ok(user) = whoami::username() {
                config.user(&user);
            }
        }
        if config.get_password().is_none() {
            if let Some(password) = env("PGPASSWORD").filter(|p| !p.is_empty()) {
                // The raw bytes on Unix; on Windows UTF-8, as for any valid Unicode password.
                config.password(password.as_encoded_bytes());
            } else if let Some(password) = passfile_password(&config, env) {
                config.password(password);
            }
        }
        Ok(PgConnection { config, tls })
    }

    /// The database name libpq uses: the URL's, else the user's name.
    pub fn dbname(&self) -> &str {
        self.config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or_default()
    }

    /// The connection as libpq environment variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
    /// `PGDATABASE`, `PGSSLMODE`, ...), for PostgreSQL's own tools. Everything the connection
    /// depends on is set, so that nothing inherited by the tool can make it connect otherwise.
    /// When the URL sets no connect timeout, the app's own ([`CONNECT_TIMEOUT`]) applies.
    pub fn libpq_environment(&self) -> Vec<(&'static str, OsString)> {
        let config = &self.config;
        let join = |parts: Vec<String>| OsString::from(parts.join(","));
        let mut env = Vec::new();
        let hosts: Vec<String> = config.get_hosts().iter().map(host_name).collect();
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
        let ports: Vec<String> = match config.get_ports() {
            [] => vec!["5432".into()],
            ports => ports.iter().map(u16::to_string).collect(),
        };
        env.push(("PGPORT", join(ports)));
        if let Some(user) = config.get_user() {
            env.push(("PGUSER", user.into()));
        }
        if let Some(password) = config.get_password() {
            env.push(("PGPASSWORD", password_for_environment(password)));
        }
        env.push(("PGDATABASE", self.dbname().into()));
        if let Some(options) = config.get_options() {
            env.push(("PGOPTIONS", options.into()));
        }
        env.extend(self.tls.libpq_environment());
        let timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT);
        env.push((
            "PGCONNECT_TIMEOUT",
            timeout.as_secs().max(1).to_string().into(),
        ));
        env
    }
}

fn host_name(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        #[cfg(unix)]
        Host::Unix(dir) => dir.display().to_string(),
    }
}

/// The password as an environment value. A URL's password is bytes (percent-decoded); Unix takes
/// them as they are.
#[cfg(unix)]
fn password_for_environment(password: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(password).to_os_string()
}

/// The password as an environment value. Windows' environment is UTF-16 text: a password that is
/// not UTF-8 cannot be passed, and its invalid bytes become U+FFFD, which the server rejects as a
/// wrong password rather than accepting another one.
#[cfg(not(unix))]
fn password_for_environment(password: &[u8]) -> OsString {
    String::from_utf8_lossy(password).into_owned().into()
}

/// A file of the user's own that libpq reads when no variable names it: in the home directory on
/// Unix, in `%APPDATA%\postgresql` on Windows.
pub struct UserFile {
    /// The path under `HOME`.
    pub unix: &'static str,
    /// The name in `%APPDATA%\postgresql`.
    pub windows: &'static str,
}

/// The passfile: `~/.pgpass`, `%APPDATA%\postgresql\pgpass.conf`.
pub const PASSFILE: UserFile = UserFile {
    unix: ".pgpass",
    windows: "pgpass.conf",
};

/// The CA certificates for verify-ca and verify-full: `~/.postgresql/root.crt`,
/// `%APPDATA%\postgresql\root.crt`.
pub const ROOT_CERT: UserFile = UserFile {
    unix: ".postgresql/root.crt",
    windows: "root.crt",
};

impl UserFile {
    /// Where the file is on this platform; `env` reads a variable of the environment.
    pub fn path(&self, env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
        self.path_on(env, cfg!(windows))
    }

    /// Where the file is on Windows or Unix, so that both are tested everywhere.
    fn path_on(&self, env: &dyn Fn(&str) -> Option<OsString>, windows: bool) -> Option<PathBuf> {
        let (variable, relative) = match windows {
            true => ("APPDATA", Path::new("postgresql").join(self.windows)),
            false => ("HOME", PathBuf::from(self.unix)),
        };
        let dir = env(variable).filter(|dir| !dir.is_empty())?;
        Some(Path::new(&dir).join(relative))
    }
}

/// The passfile's password for the first of the URL's hosts it has one for. libpq looks it up
/// per host; the driver takes one password for all, so the first host that has one decides.
fn passfile_password(
    config: &postgres::Config,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Option<String> {
    let file = passfile::path(env)?;
    let user = config.get_user()?;
    let dbname = config.get_dbname().unwrap_or(user);
    let hosts: Vec<String> = match config.get_hosts() {
        [] => config
            .get_hostaddrs()
            .iter()
            .map(|a| a.to_string())
            .collect(),
        hosts => hosts.iter().map(host_name).collect(),
    };
    let ports = config.get_ports();
    hosts.iter().enumerate().find_map(|(i, host)| {
        let port = match ports {
            [] => 5432,
            [one] => *one,
            ports => ports.get(i).copied().unwrap_or(5432),
        };
        let lookup = passfile::Lookup {
            host,
            port,
            dbname,
            user,
        };
        passfile::password(&file, &lookup)
    })
}

// The tests write passfiles with Unix modes.
#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;
    use crate::DatabaseUrl;

    /// An environment holding only `vars`.
    fn environment(vars: Vec<(&'static str, OsString)>) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn connection(url: &str, vars: Vec<(&'static str, OsString)>) -> PgConnection {
        DatabaseUrl::parse(url)
            .unwrap()
            .postgres_connection(&environment(vars))
            .unwrap()
            .unwrap()
    }

    fn password(connection: &PgConnection) -> Option<&str> {
        let bytes = connection.config.get_password()?;
        Some(std::str::from_utf8(bytes).unwrap())
    }

    fn passfile(dir: &Path, text: &str) -> OsString {
        let file = dir.join("pgpass");
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        file.into_os_string()
    }

    #[test]
    fn user_files_are_in_home_on_unix_and_in_appdata_on_windows() {
        let appdata = r"C:\Users\u\AppData\Roaming";
        let env = environment(vec![
            ("HOME", "/home/u".into()),
            ("APPDATA", appdata.into()),
        ]);
        let home = |path: &str| Some(PathBuf::from(path));
        assert_eq!(PASSFILE.path_on(&env, false), home("/home/u/.pgpass"));
        assert_eq!(
            ROOT_CERT.path_on(&env, false),
            home("/home/u/.postgresql/root.crt")
        );
        let postgresql = Path::new(appdata).join("postgresql");
        assert_eq!(
            PASSFILE.path_on(&env, true),
            Some(postgresql.join("pgpass.conf"))
        );
        assert_eq!(
            ROOT_CERT.path_on(&env, true),
            Some(postgresql.join("root.crt"))
        );
        assert_eq!(PASSFILE.path_on(&environment(vec![]), true), None);
    }

    #[test]
    fn the_environment_carries_the_connection_and_the_password() {
        let connection = connection(
            "postgresql://u:p%40ss@localhost/toefl?host=/run/pg&port=6543&sslmode=require",
            vec![],
        );
        let env: Vec<(&str, String)> = connection
            .libpq_environment()
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
        assert!(DatabaseUrl::sqlite("dev.db")
            .libpq_environment()
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_password_comes_from_the_url_then_pgpassword_then_the_passfile() {
        let dir = tempfile::tempdir().unwrap();
        let file = passfile(
            dir.path(),
            "db.example.com:5432:toefl:app:from-passfile\n*:*:*:*:fallback\n",
        );
        let all = || {
            vec![
                ("PGPASSWORD", OsString::from("from-env")),
                ("PGPASSFILE", file.clone()),
            ]
        };
        let url = "postgres://app:from-url@db.example.com/toefl";
        assert_eq!(password(&connection(url, all())), Some("from-url"));
        let url = "postgres://app@db.example.com/toefl";
        assert_eq!(password(&connection(url, all())), Some("from-env"));
        let passfile_only = vec![("PGPASSFILE", file.clone())];
        assert_eq!(
            password(&connection(url, passfile_only.clone())),
            Some("from-passfile")
        );
        let other_db = "postgres://app@db.example.com/other";
        assert_eq!(
            password(&connection(other_db, passfile_only)),
            Some("fallback")
        );
        assert_eq!(password(&connection(url, vec![])), None);
        // What our connection found is what the tools get.
        let env = connection(url, vec![("PGPASSFILE", file)]).libpq_environment();
        assert!(env.contains(&("PGPASSWORD", OsString::from("from-passfile"))));
    }

    #[test]
    fn the_passfile_defaults_to_pgpass_in_home_and_matches_the_hosts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        passfile(dir.path(), "second:6000:toefl:app:two\n");
        std::fs::rename(dir.path().join("pgpass"), dir.path().join(".pgpass")).unwrap();
        let home = vec![("HOME", dir.path().as_os_str().to_os_string())];
        let url = "postgres://app@first:5000,second:6000/toefl";
        assert_eq!(password(&connection(url, home)), Some("two"));
    }
}
