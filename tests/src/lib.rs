//! Support for the end-to-end tests in `tests/e2e`: real SQLite files in temporary directories, a real
//! PostgreSQL server (the one `TEST_DATABASE_URL` names, or an ephemeral cluster started for the test
//! run), a database per test, and a content hash that reads the data without the code under test;
//! an S3-compatible server ([`s3`]) and a proxy that dies mid-transfer ([`proxy`]) for off-site copies.

pub mod proxy;
pub mod s3;

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, DefaultHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use app::{Backend, DatabaseUrl};

/// The password of [`password_role`], which logs in with SCRAM: new for each test run, with the
/// characters that end a URL's parts where the driver does not (`/`, `?`, `#`, `:`), so that the
/// tests prove it never leaks.
pub fn password() -> &'static str {
    static PASSWORD: OnceLock<String> = OnceLock::new();
    PASSWORD.get_or_init(|| {
        // RandomState is seeded from the operating system's randomness.
        let random = || RandomState::new().build_hasher().finish();
        format!("{:016x}{:016x}/p?a#s:s", random(), random())
    })
}

/// A role that must log in with [`password`]; one per test process, dropped when it ends.
pub fn password_role() -> &'static str {
    static ROLE: OnceLock<String> = OnceLock::new();
    ROLE.get_or_init(|| format!("toefl_pw_{}", std::process::id()))
}

/// A PostgreSQL server the tests may create databases on.
pub struct PgServer {
    /// A superuser URL to the `postgres` maintenance database.
    pub admin_url: DatabaseUrl,
}

/// The server for this test run, started on first use. Panics with instructions when PostgreSQL's
/// server binaries are missing: a PostgreSQL test never passes by skipping.
pub fn pg_server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let given = std::env::var("TEST_DATABASE_URL").ok();
        let server = match &given {
            Some(url) => PgServer {
                admin_url: DatabaseUrl::parse(url).expect("TEST_DATABASE_URL is a PostgreSQL URL"),
            },
            None => {
                let cluster = Cluster::start(Tls::Off).unwrap_or_else(|e| panic!("{e}"));
                PgServer {
                    admin_url: cluster.url("postgres", "postgres"),
                }
            }
        };
        let role = password_role();
        server
            .admin()
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{}'",
                password()
            ))
            .expect("create the password role");
        // An ephemeral cluster goes with its role; a server of TEST_DATABASE_URL must not keep it.
        if given.is_some() {
            drop_role_at_exit(&server.admin_url, role);
        }
        server
    })
}

/// Drops `role` on `admin_url`'s server once this process has exited (the test databases, which
/// hold its objects, are dropped by then), by a watchdog that outlives it and connects with psql.
fn drop_role_at_exit(admin_url: &DatabaseUrl, role: &str) {
    let environment = admin_url
        .libpq_environment()
        .expect("TEST_DATABASE_URL's TLS settings")
        .expect("a PostgreSQL URL");
    let sql =
        format!("REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}; DROP ROLE {role}");
    after_exit(&format!("psql --no-password -qc '{sql}'"), environment)
        .expect("start the watchdog that drops the password role");
}

/// Runs the shell command `then` (quietly, with `environment`) once this process has exited,
/// however it exits, from a watchdog that outlives it.
fn after_exit(then: &str, environment: Vec<(&str, OsString)>) -> Result<(), String> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {then} >/dev/null 2>&1",
        pid = std::process::id(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .envs(environment)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot start a watchdog: {e}"))
}

impl PgServer {
    /// A superuser connection to the maintenance database.
    pub fn admin(&self) -> postgres::Client {
        connect(&self.admin_url)
    }
}

/// Connects with the `postgres` driver directly, not through the code under test.
pub fn connect(url: &DatabaseUrl) -> postgres::Client {
    url.postgres_config()
        .expect("a PostgreSQL URL")
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// Whether an ephemeral cluster speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Unix socket only, no TLS.
    Off,
    /// TCP on 127.0.0.1 with a certificate for `localhost` signed by a CA made for the cluster
    /// ([`Cluster::ca_certificate`]), and TLS required for every login.
    Required,
}

/// An ephemeral PostgreSQL cluster in a temporary directory. It is stopped and removed when the test
/// process exits, by a watchdog that outlives it.
pub struct Cluster {
    /// The directory holding the data directory and the unix socket.
    pub dir: PathBuf,
    /// The port (TCP for [`Tls::Required`], else only the socket's name).
    pub port: u16,
    /// Whether TLS is on.
    pub tls: Tls,
}

/// A certificate authority made with openssl for a test.
pub struct CertificateAuthority {
    /// Its certificate (PEM): what `sslrootcert` names.
    pub certificate: PathBuf,
    key: PathBuf,
}

/// Makes a new CA named `name` in `dir` (its files are `NAME.crt` and `NAME.key`).
pub fn certificate_authority(dir: &Path, name: &str) -> Result<CertificateAuthority, String> {
    let ca = CertificateAuthority {
        certificate: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    run(Command::new("openssl")
        .args(["req", "-new", "-x509", "-days", "2", "-nodes"])
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&ca.key)
        .arg("-out")
        .arg(&ca.certificate))?;
    Ok(ca)
}

/// Writes `server.key` and `server.crt` into `dir`: a certificate for `host` (its DNS name, the
/// only one it holds) signed by `ca`.
fn server_certificate(ca: &CertificateAuthority, host: &str, dir: &Path) -> Result<(), String> {
    let request = dir.join("server.csr");
    let extensions = dir.join("server.ext");
    run(Command::new("openssl")
        .args(["req", "-new", "-nodes", "-subj", &format!("/CN={host}")])
        .arg("-keyout")
        .arg(dir.join("server.key"))
        .arg("-out")
        .arg(&request))?;
    std::fs::write(&extensions, format!("subjectAltName=DNS:{host}\n"))
        .map_err(|e| format!("cannot write {}: {e}", extensions.display()))?;
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-in"])
        .arg(&request)
        .arg("-CA")
        .arg(&ca.certificate)
        .arg("-CAkey")
        .arg(&ca.key)
        .arg("-set_serial")
        .arg("1")
        .arg("-extfile")
        .arg(&extensions)
        .arg("-out")
        .arg(dir.join("server.crt")))?;
    Ok(())
}

impl Cluster {
    /// Runs `initdb` and starts the server; as root, the server runs as the `postgres` user.
    pub fn start(tls: Tls) -> Result<Cluster, String> {
        let bindir = postgres_bindir()?;
        let root = is_root();
        let base = if root {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("toefl-pg-")
            .tempdir_in(base)
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?
            .keep();
        let data = dir.join("data");
        let port = match tls {
            Tls::Off => 5432,
            Tls::Required => free_port(),
        };
        if root {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir))?;
        }
        run(server_command(&bindir, "initdb", root)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .args(["--locale", "C", "-D"])
            .arg(&data))?;
        let mut hba = format!(
            "local all {} scram-sha-256\nlocal all all trust\n",
            password_role()
        );
        let mut listen = String::new();
        if tls == Tls::Required {
            let ca = certificate_authority(&dir, "toefl-test-ca")?;
            server_certificate(&ca, "localhost", &data)?;
            if root {
                run(Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(data.join("server.key"))
                    .arg(data.join("server.crt")))?;
            }
            // Only `hostssl`: a connection without TLS is refused, so a passing test proves TLS.
            hba.push_str("hostssl all all 127.0.0.1/32 trust\n");
            listen = "127.0.0.1".into();
        }
        let config = format!(
            "listen_addresses = '{listen}'\nunix_socket_directories = '{}'\nport = {port}\n\
             ssl = {}\nfsync = off\nmax_connections = 200\n",
            dir.display(),
            if tls == Tls::Required { "on" } else { "off" },
        );
        append(&data.join("postgresql.auto.conf"), &config)?;
        std::fs::write(data.join("pg_hba.conf"), hba).map_err(|e| e.to_string())?;
        run(server_command(&bindir, "pg_ctl", root)
            .args(["-w", "-s", "-l"])
            .arg(dir.join("server.log"))
            .arg("-D")
            .arg(&data)
            .arg("start"))?;
        spawn_watchdog(&bindir, &dir, &data, root)?;
        Ok(Cluster { dir, port, tls })
    }

    /// The CA that signed the server's certificate, for [`Tls::Required`]: `DIR/toefl-test-ca.crt`.
    pub fn ca_certificate(&self) -> PathBuf {
        self.dir.join("toefl-test-ca.crt")
    }

    /// A URL for `user` to database `dbname` on this cluster.
    pub fn url(&self, user: &str, dbname: &str) -> DatabaseUrl {
        let url = match self.tls {
            Tls::Off => format!(
                "postgresql://{user}@localhost/{dbname}?host={}&port={}",
                self.dir.display(),
                self.port
            ),
            Tls::Required => format!("postgresql://{user}@127.0.0.1:{}/{dbname}", self.port),
        };
        DatabaseUrl::parse(&url).expect("a valid URL")
    }
}

fn postgres_bindir() -> Result<PathBuf, String> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_tools(d)) {
            return Ok(dir);
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&dir) {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has_tools(d))
        .collect();
    candidates.sort_by_key(|d| {
        let version = d.parent().and_then(|v| v.file_name());
        version.and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    candidates.pop().ok_or_else(|| {
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH, via pg_config, or under \
         /usr/lib/postgresql/*/bin: install them (e.g. `apt-get install postgresql`) or set \
         TEST_DATABASE_URL to a server the tests may create databases on"
            .to_string()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `initdb` and `pg_ctl` refuse to run as root: then they run as `postgres`.
fn server_command(bindir: &Path, tool: &str, root: bool) -> Command {
    let program = bindir.join(tool);
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A TCP port of 127.0.0.1 that nothing listens on now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("a local address").port()
}

/// Stops the server and removes its directory once this process has exited, however it exits.
fn spawn_watchdog(bindir: &Path, dir: &Path, data: &Path, root: bool) -> Result<(), String> {
    let pg_ctl = bindir.join("pg_ctl");
    let as_postgres = if root { "runuser -u postgres -- " } else { "" };
    let stop = format!(
        "{as_postgres}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
        pg_ctl = pg_ctl.display(),
        data = data.display(),
        dir = dir.display(),
    );
    after_exit(&stop, Vec::new())
}

/// A database for one test: a SQLite file in its own temporary directory, or a PostgreSQL database
/// created on [`pg_server`] and dropped at the end.
pub struct TestDb {
    /// The URL the commands under test get.
    pub url: DatabaseUrl,
    /// The temporary directory (for SQLite, it holds the file; for both, scratch space).
    pub dir: tempfile::TempDir,
    postgres_name: Option<String>,
}

impl TestDb {
    /// A new, empty database of `backend`.
    pub fn of(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres(),
        }
    }

    /// A SQLite URL to a file that does not exist yet.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        TestDb {
            url: DatabaseUrl::sqlite(dir.path().join("toefl.db")),
            dir,
            postgres_name: None,
        }
    }

    /// A new, empty PostgreSQL database.
    pub fn postgres() -> TestDb {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = pg_server();
        let name = format!(
            "toefl_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        server
            .admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        TestDb {
            url: server.admin_url.with_postgres_database(&name).unwrap(),
            dir: tempfile::tempdir().expect("a temporary directory"),
            postgres_name: Some(name),
        }
    }

    /// The URL as a string, password included, for `--database-url`.
    pub fn url_arg(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => url.clone(),
        }
    }

    /// The same PostgreSQL database, logged in as [`password_role`] with its password.
    pub fn url_with_password(&self) -> String {
        self.url_as_password_role(Some(password()))
    }

    /// The same PostgreSQL database, logged in as [`password_role`] with `password` in the URL, or
    /// none.
    pub fn url_as_password_role(&self, password: Option<&str>) -> String {
        let DatabaseUrl::Postgres(url) = &self.url else {
            panic!("a PostgreSQL test database")
        };
        // Replace whatever credentials the URL has (up to its first `@`, as the driver reads it)
        // with the password role's.
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let server = rest.split_once('@').map_or(rest, |(_, server)| server);
        let credentials = match password {
            Some(password) => format!("{}:{password}", password_role()),
            None => password_role().to_string(),
        };
        format!("{scheme}://{credentials}@{server}")
    }

    /// A hash of every row of every table of the app's schema, read with the drivers directly.
    pub fn content_hash(&self) -> String {
        let mut hasher = DefaultHasher::new();
        for table in app::TABLES {
            hasher.write(table.name.as_bytes());
            for row in self.rows_as_text(table) {
                hasher.write(row.as_bytes());
                hasher.write_u8(0xff);
            }
        }
        format!("{:016x}", hasher.finish())
    }

    /// Every row of `table`, by id, each as one line of text.
    pub fn rows_as_text(&self, table: &app::Table) -> Vec<String> {
        let sql = format!("SELECT * FROM {} ORDER BY id", table.name);
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                let mut statement = conn.prepare(&sql).expect("a table of the schema");
                let width = statement.column_count();
                let rows = statement
                    .query_map([], |row| {
                        let values: Vec<String> = (0..width)
                            .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                            .collect();
                        Ok(values.join("|"))
                    })
                    .unwrap();
                rows.map(Result::unwrap).collect()
            }
            DatabaseUrl::Postgres(_) => {
                let sql = format!("SELECT t::text FROM {} t ORDER BY id", table.name);
                let mut client = connect(&self.url);
                let rows = client.query(&sql, &[]).expect("a table of the schema");
                rows.iter().map(|row| row.get(0)).collect()
            }
        }
    }

    /// Runs SQL statements on the database directly.
    pub fn execute(&self, sql: &str) {
        self.try_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs SQL statements on the database directly; the database's error, if it refuses them.
    pub fn try_execute(&self, sql: &str) -> Result<(), String> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => rusqlite::Connection::open(path)
                .and_then(|c| c.execute_batch(sql))
                .map_err(|e| e.to_string()),
            // The driver's own text is only "db error": the server's message says what was refused.
            DatabaseUrl::Postgres(_) => connect(&self.url).batch_execute(sql).map_err(|e| {
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |db| db.message().to_string())
            }),
        }
    }

    /// Runs a query that returns one integer.
    pub fn query_i64(&self, sql: &str) -> i64 {
        match &self.url {
            DatabaseUrl::Sqlite(path) => rusqlite::Connection::open(path)
                .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            DatabaseUrl::Postgres(_) => connect(&self.url)
                .query_one(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0),
        }
    }

    /// Runs a query that returns one text column; gives its values.
    pub fn query_texts(&self, sql: &str) -> Vec<String> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let values = statement
                    .query_map([], |row| row.get(0))
                    .and_then(Iterator::collect);
                values.unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            DatabaseUrl::Postgres(_) => connect(&self.url)
                .query(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|row| row.get(0))
                .collect(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.postgres_name {
            let _ = pg_server()
                .admin()
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The SHA-256 of the file at `path`, in lowercase hex, by `sha256sum` (not the code under test).
pub fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().next().expect("a hash").to_string()
}

/// What one run of a command gave.
#[derive(Debug)]
pub struct Outcome {
    /// Whether it exited 0.
    pub success: bool,
    /// The exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the xtask binary `bin` with `args`, with `DATABASE_URL` unset and no terminal on stdin.
pub fn run_xtask(bin: &str, args: &[&str]) -> Outcome {
    run_xtask_with_env(bin, args, &[])
}

/// The variables that would send a command's copies off-site: never inherited by the commands under
/// test, which get them only from the test.
const REMOTE_VARIABLES: [&str; 7] = [
    "TOEFL_BACKUP_REMOTE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
];

/// Like [`run_xtask`], with the variables `env` set in its environment (e.g. another `PATH`).
pub fn run_xtask_with_env(bin: &str, args: &[&str], env: &[(&str, &OsStr)]) -> Outcome {
    let mut command = Command::new(bin);
    for name in REMOTE_VARIABLES {
        command.env_remove(name);
    }
    command
        .args(args)
        .env_remove("DATABASE_URL")
        // Encryption is what a test asks for, whatever the developer's environment says.
        .env_remove("TOEFL_BACKUP_RECIPIENTS")
        .env_remove("TOEFL_BACKUP_IDENTITY_FILE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run xtask")
        .into()
}

impl From<std::process::Output> for Outcome {
    fn from(out: std::process::Output) -> Outcome {
        Outcome {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
