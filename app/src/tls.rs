//! TLS as libpq does it: its six `sslmode`s and `sslrootcert` (a file, or `system` for the system's
//! CA store), from the URL or from `PGSSLMODE` / `PGSSLROOTCERT`. One [`TlsPolicy`] makes the
//! decision for our own connection (native-tls) and for the libpq tools we run (pg_dump,
//! pg_restore), so that the two never disagree about what is verified.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::libpq::ROOT_CERT;

/// libpq's `sslmode`: whether TLS is used, and what is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// Plain first, TLS if the server demands it; nothing verified.
    Allow,
    /// TLS if the server offers it (libpq's default); nothing verified without a root certificate.
    Prefer,
    /// TLS always; the certificate is verified only when a root certificate file exists.
    Require,
    /// TLS, with a certificate signed by the root certificate's CA.
    VerifyCa,
    /// TLS, with a certificate signed by the root certificate's CA for the host connected to.
    VerifyFull,
}

/// The `sslmode` values, for messages.
pub const SSL_MODES: &str = "disable, allow, prefer, require, verify-ca, verify-full";

impl SslMode {
    /// Reads libpq's name of a mode.
    pub fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// What is checked about the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing: the connection is encrypted, but anyone in the middle can present a certificate.
    Nothing,
    /// That the certificate is signed by the root certificate's CA.
    Ca,
    /// That, and that it names the host connected to.
    CaAndHost,
}

/// Why the TLS settings cannot be used. The message names the setting and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The TLS decision for one connection, shared by our client and libpq's tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    mode: SslMode,
    /// The root certificate file libpq would look at (the explicit one, `~/.postgresql/root.crt`,
    /// or the system bundle for `sslrootcert=system`), whether or not it exists.
    root_cert: Option<PathBuf>,
    verification: Verification,
}

impl TlsPolicy {
    /// The policy for a URL's `sslmode` and `sslrootcert` (each `None` when the URL has none),
    /// with libpq's fallbacks: `PGSSLMODE`, `PGSSLROOTCERT`, `~/.postgresql/root.crt`. `env`
    /// reads a variable of the environment.
    pub fn resolve(
        sslmode: Option<&str>,
        sslrootcert: Option<&str>,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<TlsPolicy, TlsError> {
        let from_env = |name: &str| {
            env(name)
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string_lossy().into_owned())
        };
        let mode_text = sslmode
            .map(str::to_string)
            .or_else(|| from_env("PGSSLMODE"));
        let mode = match &mode_text {
            None => None,
            Some(text) => Some(SslMode::parse(text).ok_or_else(|| {
                TlsError(format!(
                    "sslmode `{text}` is not one of {SSL_MODES}: use verify-full with the server's \
                     CA (sslrootcert=FILE or sslrootcert=system)"
                ))
            })?),
        };
        let root_text = sslrootcert
            .map(str::to_string)
            .or_else(|| from_env("PGSSLROOTCERT"));
        let (mode, root_cert) = match root_text.as_deref() {
            Some("system") => {
                // libpq 16: the system's CAs vouch for anyone's name, so only the host check
                // makes them mean something; a weaker mode is refused.
                if mode.is_some_and(|m| m != SslMode::VerifyFull) {
                    return Err(TlsError(format!(
                        "sslrootcert=system needs sslmode=verify-full, not {}: remove the sslmode \
                         setting or make it verify-full",
                        mode_text.unwrap_or_default()
                    )));
                }
                (SslMode::VerifyFull, Some(system_bundle()?))
            }
            Some(file) => (mode.unwrap_or(SslMode::Prefer), Some(PathBuf::from(file))),
            None => (mode.unwrap_or(SslMode::Prefer), ROOT_CERT.path(env)),
        };
        let have_root_cert = root_cert.as_deref().is_some_and(Path::is_file);
        let verification = match mode {
            SslMode::Disable => Verification::Nothing,
            SslMode::VerifyCa | SslMode::VerifyFull if !have_root_cert => {
                let file = root_cert.as_deref().map_or_else(
                    || "~/.postgresql/root.crt".to_string(),
                    |f| f.display().to_string(),
                );
                return Err(TlsError(format!(
                    "sslmode={} needs the CA certificate that signed the server's, but root \
                     certificate file {file} does not exist: set sslrootcert=FILE (your \
                     provider's CA certificate) or sslrootcert=system (the system's CAs)",
                    mode.as_str()
                )));
            }
            SslMode::VerifyCa => Verification::Ca,
            SslMode::VerifyFull => Verification::CaAndHost,
            // As libpq: with a root certificate file, the chain is checked in every mode.
            SslMode::Allow | SslMode::Prefer | SslMode::Require if have_root_cert => {
                Verification::Ca
            }
            SslMode::Allow | SslMode::Prefer | SslMode::Require => Verification::Nothing,
        };
        Ok(TlsPolicy {
            mode,
            root_cert,
            verification,
        })
    }

    /// The mode in effect.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// What is verified about the server's certificate.
    pub fn verification(&self) -> Verification {
        self.verification
    }

    /// The driver's mode: it knows only disable, prefer and require; `allow` is done by
    /// [`crate::Database::open`] as a plain attempt, then one with TLS.
    pub fn driver_mode(&self) -> postgres::config::SslMode {
        use postgres::config::SslMode as Driver;
        match self.mode {
            SslMode::Disable | SslMode::Allow => Driver::Disable,
            SslMode::Prefer => Driver::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
        }
    }

    /// The TLS connector that checks what this policy says.
    pub fn connector(&self) -> Result<postgres_native_tls::MakeTlsConnector, TlsError> {
        let mut builder = native_tls::TlsConnector::builder();
        match self.verification {
            Verification::Nothing => {
                builder
                    .danger_accept_invalid_certs(true)
                    .danger_accept_invalid_hostnames(true);
            }
            Verification::Ca | Verification::CaAndHost => {
                let file = self.root_cert.as_deref().expect("checked in resolve");
                let unreadable = |reason: String| {
                    TlsError(format!(
                        "cannot read root certificate file {}: {reason}: set sslrootcert to a PEM \
                         file of CA certificates",
                        file.display()
                    ))
                };
                let pem = std::fs::read(file).map_err(|e| unreadable(e.to_string()))?;
                let certificates = native_tls::Certificate::stack_from_pem(&pem)
                    .map_err(|e| unreadable(e.to_string()))?;
                if certificates.is_empty() {
                    return Err(unreadable("it holds no certificate".into()));
                }
                // Only the given CAs: the system's would vouch for certificates libpq refuses.
                builder.disable_built_in_roots(true);
                for certificate in certificates {
                    builder.add_root_certificate(certificate);
                }
                builder
                    .danger_accept_invalid_hostnames(self.verification != Verification::CaAndHost);
            }
        }
        let connector = builder
            .build()
            .map_err(|e| TlsError(format!("TLS setup failed: {e}")))?;
        Ok(postgres_native_tls::MakeTlsConnector::new(connector))
    }

    /// The same decision for libpq's tools: `PGSSLMODE` and, when libpq would look at one,
    /// `PGSSLROOTCERT` (`sslrootcert=system` becomes the system bundle's path, which libpq 15 also
    /// reads).
    pub fn libpq_environment(&self) -> Vec<(&'static str, OsString)> {
        let mut env = vec![("PGSSLMODE", OsString::from(self.mode.as_str()))];
        if let Some(file) = &self.root_cert {
            env.push(("PGSSLROOTCERT", file.clone().into_os_string()));
        }
        env
    }

    /// One line on why a connection failed, with the fix, when `message` (the driver's or a
    /// tool's) says the failure is about TLS; `None` otherwise.
    pub fn explain_failure(&self, message: &str) -> Option<String> {
        let root = || {
            self.root_cert
                .as_deref()
                .map_or_else(String::new, |f| f.display().to_string())
        };
        if message.contains("does not match host name")
            || message.contains("Hostname mismatch")
            || message.contains("IP address mismatch")
        {
            return Some(
                "the server's certificate does not name the host in the URL (sslmode=verify-full \
                 checks it): connect by a host name the certificate holds, or use sslmode=verify-ca \
                 to check only the CA"
                    .into(),
            );
        }
        if message.contains("certificate verify failed") {
            return Some(format!(
                "the server's certificate is not signed by a CA in {} (sslmode={}): set \
                 sslrootcert to the CA certificate of your provider that signed it",
                root(),
                self.mode.as_str()
            ));
        }
        if message.contains("no encryption") && self.mode == SslMode::Disable {
            return Some(
                "the server accepts only TLS connections: use sslmode=verify-full with its CA \
                 (or sslmode=require)"
                    .into(),
            );
        }
        if message.contains("server does not support TLS")
            || message.contains("server does not support SSL")
        {
            return Some(format!(
                "the server does not offer TLS, and sslmode={} demands it: enable ssl on the \
                 server, or use sslmode=prefer only on a trusted network",
                self.mode.as_str()
            ));
        }
        None
    }
}

/// The system's CA bundle, where OpenSSL (and so native-tls) finds it; `SSL_CERT_FILE` moves it.
fn system_bundle() -> Result<PathBuf, TlsError> {
    openssl_probe::probe()
        .cert_file
        .filter(|f| f.is_file())
        .ok_or_else(|| {
            TlsError(
                "sslrootcert=system: no system CA bundle found: install the ca-certificates \
                 package, set SSL_CERT_FILE to a bundle, or give sslrootcert=FILE"
                    .into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        sslmode: Option<&str>,
        sslrootcert: Option<&str>,
        vars: &[(&str, &str)],
    ) -> Result<TlsPolicy, TlsError> {
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        };
        TlsPolicy::resolve(sslmode, sslrootcert, &env)
    }

    #[test]
    fn each_sslmode_verifies_what_libpq_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not read until connecting").unwrap();
        let ca = ca.to_str().unwrap();
        let missing = "/nonexistent/ca.pem";
        use Verification::*;
        let cases = [
            (None, None, Some(Nothing), "prefer"),
            (Some("disable"), Some(ca), Some(Nothing), "disable"),
            (Some("allow"), None, Some(Nothing), "allow"),
            (Some("prefer"), None, Some(Nothing), "prefer"),
            (Some("require"), None, Some(Nothing), "require"),
            (Some("require"), Some(missing), Some(Nothing), "require"),
            // With a root certificate file, require checks the CA: libpq's verify-ca.
            (Some("require"), Some(ca), Some(Ca), "require"),
            (Some("prefer"), Some(ca), Some(Ca), "prefer"),
            (Some("verify-ca"), Some(ca), Some(Ca), "verify-ca"),
            (
                Some("verify-full"),
                Some(ca),
                Some(CaAndHost),
                "verify-full",
            ),
            (Some("verify-ca"), Some(missing), None, ""),
            (Some("verify-full"), None, None, ""),
            (Some("verify-everything"), None, None, ""),
        ];
        for (sslmode, sslrootcert, expected, mode) in cases {
            let policy = resolve(sslmode, sslrootcert, &[]);
            match expected {
                Some(verification) => {
                    let policy = policy.unwrap();
                    assert_eq!(policy.verification(), verification, "{sslmode:?}");
                    assert_eq!(policy.mode().as_str(), mode);
                    let env = policy.libpq_environment();
                    assert_eq!(env[0], ("PGSSLMODE", OsString::from(mode)));
                }
                None => {
                    let error = policy.expect_err(mode).to_string();
                    assert!(error.contains("sslrootcert=") || error.contains("verify-full"));
                }
            }
        }
    }

    #[test]
    fn the_environment_fills_in_what_the_url_leaves_out() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "").unwrap();
        let ca = ca.to_str().unwrap();
        let env = [("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca)];
        let policy = resolve(None, None, &env).unwrap();
        assert_eq!(policy.verification(), Verification::CaAndHost);
        assert!(policy
            .libpq_environment()
            .contains(&("PGSSLROOTCERT", OsString::from(ca))));
        // The URL wins over the environment.
        let policy = resolve(Some("require"), Some("/nonexistent"), &env).unwrap();
        assert_eq!(policy.verification(), Verification::Nothing);
        // ~/.postgresql/root.crt is the default root certificate, as for libpq.
        std::fs::create_dir(dir.path().join(".postgresql")).unwrap();
        std::fs::write(dir.path().join(".postgresql/root.crt"), "").unwrap();
        let home = [("HOME", dir.path().to_str().unwrap())];
        let policy = resolve(Some("require"), None, &home).unwrap();
        assert_eq!(policy.verification(), Verification::Ca);
    }

    #[test]
    fn sslrootcert_system_means_verify_full_with_the_system_bundle() {
        let policy = resolve(None, Some("system"), &[]).unwrap();
        assert_eq!(policy.mode(), SslMode::VerifyFull);
        let env = policy.libpq_environment();
        let (_, bundle) = env.iter().find(|(k, _)| *k == "PGSSLROOTCERT").unwrap();
        assert!(Path::new(bundle).is_file(), "{bundle:?}");
        assert!(resolve(Some("verify-full"), Some("system"), &[]).is_ok());
        let weaker = resolve(Some("require"), Some("system"), &[]).unwrap_err();
        assert!(weaker.to_string().contains("verify-full"), "{weaker}");
    }
}
