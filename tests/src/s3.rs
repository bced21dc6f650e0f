//! A real S3-compatible server for the tests: moto (`moto_server`, from PyPI), one per test process on
//! a free port of 127.0.0.1, stopped when the process exits. The tests look at it through a plain
//! HTTP client of their own, not through the code under test (moto does not check signatures, only
//! that a request names its access key).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::free_port;

/// The moto release the tests are written against (`.ci/run` installs it).
pub const MOTO_VERSION: &str = "5.2.5";
/// The region the test buckets are in: not `us-east-1`, whose buckets need no location and hide
/// region mistakes.
pub const REGION: &str = "eu-central-1";
/// The access key id the commands under test get.
pub const ACCESS_KEY: &str = "toefl-test-access-key";
/// The secret key the commands under test get: tests check that it never appears in their output.
pub const SECRET_KEY: &str = "toefl-Test/Secret+Key-never-shown";

/// A moto server on 127.0.0.1.
pub struct S3Server {
    /// Its port.
    pub port: u16,
}

/// The server of this test process, started on first use. Panics with instructions when moto is not
/// installed: an S3 test never passes by skipping.
pub fn s3_server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| S3Server::start().unwrap_or_else(|e| panic!("{e}")))
}

/// Where `moto_server` is: `MOTO_SERVER`, else `PATH`, else the virtualenv `.ci/run` creates in the
/// user's cache directory.
fn moto_server_program() -> Result<PathBuf, String> {
    if let Some(program) = std::env::var_os("MOTO_SERVER") {
        return Ok(PathBuf::from(program));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("moto_server"))
            .find(|program| program.is_file())
    });
    let venv = moto_venv().join("bin/moto_server");
    on_path
        .or_else(|| venv.is_file().then_some(venv.clone()))
        .ok_or_else(|| {
            format!(
                "moto_server not found (MOTO_SERVER, PATH, {}): run .ci/run, or install it with \
                 `python3 -m venv {venv} && {venv}/bin/pip install 'moto[s3]=={MOTO_VERSION}' \
                 flask flask-cors`",
                venv.display(),
                venv = moto_venv().display()
            )
        })
}

/// The virtualenv `.ci/run` installs moto in: `${XDG_CACHE_HOME:-~/.cache}/toefl-dashboard/moto-VERSION`.
pub fn moto_venv() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    cache.join(format!("toefl-dashboard/moto-{MOTO_VERSION}"))
}

impl S3Server {
    fn start() -> Result<S3Server, String> {
        let program = moto_server_program()?;
        let port = free_port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        // Stops the server once this process has exited, however it exits.
        let watchdog = format!(
            "while kill -0 {} 2>/dev/null; do sleep 0.5; done; kill {} 2>/dev/null",
            std::process::id(),
            child.id()
        );
        Command::new("sh")
            .args(["-c", &watchdog])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start moto's watchdog: {e}"))?;
        let server = S3Server { port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.try_request("GET", "/", &[], b"").is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not answer on port {port}",
                    program.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The variables that point the commands under test at this server.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        self.env_for(&self.endpoint())
    }

    /// The variables for reaching this server's buckets at `endpoint` (e.g. through a proxy).
    pub fn env_for(&self, endpoint: &str) -> Vec<(&'static str, OsString)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_REGION", REGION),
            ("AWS_ENDPOINT_URL", endpoint),
        ]
        .into_iter()
        .map(|(name, value)| (name, OsString::from(value)))
        .collect()
    }

    /// Creates a new, empty bucket in [`REGION`] and returns its name.
    pub fn create_bucket(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("toefl-test-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.create_bucket_named(&name);
        name
    }

    /// Creates the bucket `name` in [`REGION`], once per server (the README's, for one).
    pub fn create_bucket_named(&self, name: &str) {
        let config = format!(
            "<CreateBucketConfiguration><LocationConstraint>{REGION}</LocationConstraint>\
             </CreateBucketConfiguration>"
        );
        self.request("PUT", &format!("/{name}"), &[], config.as_bytes())
            .expect_status(200);
    }

    /// Runs `script` with the Python of moto's virtualenv (which has boto3) and `args`, with
    /// `ENDPOINT` set to this server; returns its standard output. For checks that need the real
    /// AWS SDK's validation, such as the README's lifecycle rule and permissions.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        let program = moto_server_program().unwrap_or_else(|e| panic!("{e}"));
        let python = program.with_file_name("python3");
        let out = Command::new(&python)
            .arg("-c")
            .arg(script)
            .args(args)
            .env("ENDPOINT", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", REGION)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        assert!(
            out.status.success(),
            "{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The size and metadata (`x-amz-meta-*`, without the prefix) of an object; `None` if absent.
    pub fn head(&self, bucket: &str, key: &str) -> Option<(u64, BTreeMap<String, String>)> {
        let response = self.request("HEAD", &format!("/{bucket}/{key}"), &[], b"");
        if response.status == 404 {
            return None;
        }
        response.expect_status(200);
        let size = response.header("content-length").expect("a size").parse();
        let metadata = response
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.strip_prefix("x-amz-meta-")?, value)))
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        Some((size.expect("a number"), metadata))
    }

    /// The bytes of an object.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let response = self.request("GET", &format!("/{bucket}/{key}"), &[], b"");
        response.expect_status(200);
        response.body
    }

    /// Writes an object (replacing any), with `metadata` as `x-amz-meta-*`.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8], metadata: &[(&str, &str)]) {
        let headers: Vec<(String, &str)> = metadata
            .iter()
            .map(|(name, value)| (format!("x-amz-meta-{name}"), *value))
            .collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        self.request("PUT", &format!("/{bucket}/{key}"), &headers, body)
            .expect_status(200);
    }

    /// Every key in the bucket, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let response = self.request("GET", &format!("/{bucket}?list-type=2"), &[], b"");
        response.expect_status(200);
        elements(&response.text(), "Key")
    }

    /// The keys of the bucket's unfinished multipart uploads.
    pub fn unfinished_uploads(&self, bucket: &str) -> Vec<String> {
        let response = self.request("GET", &format!("/{bucket}?uploads"), &[], b"");
        response.expect_status(200);
        elements(&response.text(), "Key")
    }

    /// Starts a multipart upload of `key` and leaves it unfinished, as a killed process would.
    pub fn start_multipart_upload(&self, bucket: &str, key: &str) {
        let response = self.request("POST", &format!("/{bucket}/{key}?uploads"), &[], b"");
        response.expect_status(200);
    }

    /// Sends one request, on its own connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} on moto: {e}"))
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<HttpResponse> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/s3/\
             aws4_request, SignedHeaders=host, Signature=0\r\n",
            self.port,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        stream.write_all(body)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        HttpResponse::parse(&response, method == "HEAD")
    }
}

/// What the server answered.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn parse(raw: &[u8], head: bool) -> std::io::Result<HttpResponse> {
        let invalid = |what: &str| std::io::Error::other(format!("not an HTTP response: {what}"));
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| invalid("no end of headers"))?;
        let head_text = String::from_utf8_lossy(&raw[..end]);
        let mut lines = head_text.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid("no status"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_string()))
            .collect();
        let body = if head {
            Vec::new()
        } else {
            raw[end + 4..].to_vec()
        };
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, value)| value.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Panics unless the status is `status`.
    pub fn expect_status(&self, status: u16) {
        assert_eq!(
            self.status,
            status,
            "moto answered {self:?}: {}",
            self.text()
        );
    }
}

/// The text of every `<tag>` element of an XML document, sorted.
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut found: Vec<String> = xml
        .split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once(close.as_str()))
        .map(|(value, _)| value.to_string())
        .collect();
    found.sort();
    found
}
