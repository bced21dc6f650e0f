//! TLS as libpq does it, against a server that accepts only TLS, with a certificate for
//! `localhost` signed by a CA made for the test: our connection (`migrate`) and pg_dump (`backup`)
//! make the same decision for the same URL.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use app::DatabaseUrl;
use testkit::{certificate_authority, run_xtask_with_env, Cluster, Outcome, Tls};

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(Tls::Required).unwrap_or_else(|e| panic!("{e}")))
}

/// A URL to the TLS cluster's database `dbname` through `host`, with `parameters`.
fn url_to(dbname: &str, host: &str, parameters: &str) -> String {
    format!(
        "postgresql://postgres@{host}:{}/{dbname}?{parameters}",
        cluster().port
    )
}

/// A new database on the TLS cluster for one test (tests run in parallel, and each migrates its
/// own); returns what makes a URL to it through a host, with parameters.
fn database(name: &str) -> impl Fn(&str, &str) -> String {
    let maintenance =
        DatabaseUrl::parse(&url_to("postgres", "127.0.0.1", "sslmode=require")).unwrap();
    let mut admin = app::Database::open(&maintenance, app::Create::No).unwrap();
    admin
        .execute_batch(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    let name = name.to_string();
    move |host, parameters| url_to(&name, host, parameters)
}

fn ca_parameter() -> String {
    format!("sslrootcert={}", cluster().ca_certificate().display())
}

/// Runs xtask with an empty `HOME` (no ~/.postgresql/root.crt of the machine counts) and `env`.
fn xtask(args: &[&str], env: &[(&str, &OsStr)]) -> Outcome {
    let home = tempfile::tempdir().unwrap();
    let mut all: Vec<(&str, &OsStr)> = vec![("HOME", home.path().as_os_str())];
    all.extend(env);
    run_xtask_with_env(env!("CARGO_BIN_EXE_xtask"), args, &all)
}

/// `migrate` (our connection only), then `backup` (our connection, then pg_dump's).
fn migrate_and_backup(url: &str, env: &[(&str, &OsStr)]) -> [Outcome; 2] {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tls.dump");
    let file = file.to_str().unwrap();
    [
        xtask(&["migrate", "--database-url", url], env),
        xtask(&["backup", "--file", file, "--database-url", url], env),
    ]
}

/// Runs pg_dump itself with the libpq environment xtask gives it for `url`, to show that it
/// refuses what our connection refuses (xtask never runs it when its own connection failed).
fn pg_dump_alone(url: &str) -> Outcome {
    let environment = DatabaseUrl::parse(url)
        .unwrap()
        .libpq_environment()
        .unwrap()
        .unwrap();
    Command::new("pg_dump")
        .args(["--schema-only", "--no-password"])
        .envs(environment)
        .output()
        .expect("run pg_dump")
        .into()
}

/// What xtask says when pg_dump failed with `stderr`, for `url`.
fn explanation(url: &str, stderr: &str) -> Option<String> {
    let connection = DatabaseUrl::parse(url)
        .unwrap()
        .postgres_connection(&app::url::process_environment)
        .unwrap()
        .unwrap();
    connection.tls.explain_failure(stderr)
}

fn assert_one_line_containing(outcome: &Outcome, expected: &[&str]) {
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert_eq!(
        outcome.stderr.trim().lines().count(),
        1,
        "{}",
        outcome.stderr
    );
    for text in expected {
        assert!(outcome.stderr.contains(text), "{text}: {}", outcome.stderr);
    }
}

#[test]
fn verify_full_with_the_right_ca_connects_our_client_and_pg_dump_on_postgres() {
    let at = database("tls_verify_full_with_the_right_ca_connects_o");
    let url = at(
        "localhost",
        &format!("sslmode=verify-full&{}", ca_parameter()),
    );
    for outcome in migrate_and_backup(&url, &[]) {
        assert!(outcome.success, "{outcome:#?}");
    }
}

#[test]
fn pgsslmode_and_pgsslrootcert_verify_when_the_url_says_nothing_on_postgres() {
    let at = database("tls_pgsslmode_and_pgsslrootcert_verify_when_");
    let url = at("localhost", "connect_timeout=5");
    let ca = cluster().ca_certificate();
    let env = [
        ("PGSSLMODE", OsStr::new("verify-full")),
        ("PGSSLROOTCERT", ca.as_os_str()),
    ];
    for outcome in migrate_and_backup(&url, &env) {
        assert!(outcome.success, "{outcome:#?}");
    }
    let wrong_host = at("127.0.0.1", "connect_timeout=5");
    let refused = xtask(&["migrate", "--database-url", &wrong_host], &env);
    assert_one_line_containing(&refused, &["does not name the host"]);
}

#[test]
fn sslrootcert_system_uses_the_system_bundle_for_our_client_and_pg_dump_on_postgres() {
    let at = database("tls_sslrootcert_system_uses_the_system_bundl");
    // The system bundle is where OpenSSL looks for it: SSL_CERT_FILE points it at the test's CA.
    let url = at("localhost", "sslrootcert=system");
    let ca = cluster().ca_certificate();
    let env = [("SSL_CERT_FILE", ca.as_os_str())];
    for outcome in migrate_and_backup(&url, &env) {
        assert!(outcome.success, "{outcome:#?}");
    }
    let weaker = url.replace("sslrootcert=system", "sslrootcert=system&sslmode=require");
    let refused = xtask(&["migrate", "--database-url", &weaker], &env);
    assert_one_line_containing(&refused, &["sslrootcert=system needs sslmode=verify-full"]);
}

#[test]
fn a_wrong_ca_is_refused_by_our_client_and_pg_dump_on_postgres() {
    let at = database("tls_a_wrong_ca_is_refused_by_our_client_and_");
    let dir = tempfile::tempdir().unwrap();
    let other = certificate_authority(dir.path(), "another-ca").unwrap();
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = at(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={}", other.certificate.display()),
        );
        let [migrate, backup] = migrate_and_backup(&url, &[]);
        for outcome in [&migrate, &backup] {
            assert_one_line_containing(
                outcome,
                &["certificate is not signed by a CA in", "set sslrootcert"],
            );
        }
        let pg_dump = pg_dump_alone(&url);
        assert!(!pg_dump.success, "{mode}: {pg_dump:#?}");
        assert!(
            pg_dump.stderr.contains("certificate verify failed"),
            "{pg_dump:#?}"
        );
        let said = explanation(&url, &pg_dump.stderr).expect("a TLS failure");
        assert!(said.contains("not signed by a CA in"), "{said}");
    }
}

#[test]
fn a_wrong_host_name_is_refused_by_our_client_and_pg_dump_on_postgres() {
    let at = database("tls_a_wrong_host_name_is_refused_by_our_clie");
    // The certificate names localhost only.
    let url = at(
        "127.0.0.1",
        &format!("sslmode=verify-full&{}", ca_parameter()),
    );
    for outcome in migrate_and_backup(&url, &[]) {
        assert_one_line_containing(&outcome, &["does not name the host", "sslmode=verify-ca"]);
    }
    let pg_dump = pg_dump_alone(&url);
    assert!(!pg_dump.success, "{pg_dump:#?}");
    assert!(
        pg_dump.stderr.contains("does not match host name"),
        "{pg_dump:#?}"
    );
    let said = explanation(&url, &pg_dump.stderr).expect("a TLS failure");
    assert!(said.contains("does not name the host"), "{said}");
    // verify-ca checks the CA only, as libpq's does.
    let ca_only = url.replace("verify-full", "verify-ca");
    for outcome in migrate_and_backup(&ca_only, &[]) {
        assert!(outcome.success, "{outcome:#?}");
    }
}

#[test]
fn require_connects_without_a_ca_on_postgres() {
    let at = database("tls_require_connects_without_a_ca");
    for mode in ["require", "prefer", "allow"] {
        let url = at("127.0.0.1", &format!("sslmode={mode}"));
        for outcome in migrate_and_backup(&url, &[]) {
            assert!(outcome.success, "{mode}: {outcome:#?}");
        }
    }
}

#[test]
fn disable_against_a_server_that_demands_tls_fails_clearly_on_postgres() {
    let at = database("tls_disable_against_a_server_that_demands_tl");
    let url = at("127.0.0.1", "sslmode=disable");
    let [migrate, backup] = migrate_and_backup(&url, &[]);
    for outcome in [&migrate, &backup] {
        assert_one_line_containing(outcome, &["accepts only TLS", "sslmode=verify-full"]);
    }
    assert!(!pg_dump_alone(&url).success);
}

#[test]
fn verify_full_without_a_ca_file_says_which_file_is_missing_on_postgres() {
    let at = database("tls_verify_full_without_a_ca_file_says_which");
    let missing = Path::new("/nonexistent/ca.pem");
    let url = at(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", missing.display()),
    );
    let outcome = xtask(&["migrate", "--database-url", &url], &[]);
    assert_one_line_containing(
        &outcome,
        &["/nonexistent/ca.pem does not exist", "sslrootcert="],
    );
}
