//! Every printable ASCII character and some non-ASCII ones, in a password, in every URL form the
//! tools accept: what the driver would send as the password never shows, raw, percent-encoded or
//! decoded, in `Display`, `Debug`, any error, or any libpq variable but `PGPASSWORD`; and the
//! libpq environment and [`DatabaseUrl::with_postgres_database`] agree with the driver.

use super::*;
use crate::db::{Create, Database};

/// Where the password goes: `{pw}` is replaced by it (raw or percent-encoded).
const FORMS: [(&str, &[&str]); 8] = [
    ("postgres://app:{pw}@127.0.0.1/toefl", &[]),
    ("postgres://app:{pw}@127.0.0.1:1/toefl", &[]),
    (
        "postgresql://app:{pw}@127.0.0.1:1/toefl",
        &["sslmode=require", "application_name=t"],
    ),
    (
        "postgres://app:{pw}@127.0.0.1:1,localhost:2/toefl",
        &["connect_timeout=1"],
    ),
    ("postgres://app:{pw}@127.0.0.1:1", &[]),
    ("postgres://app:{pw}@127.0.0.1:1", &["sslmode=disable"]),
    ("postgres://app@127.0.0.1:1/toefl", &["password={pw}"]),
    (
        "postgresql://app@127.0.0.1:1/toefl",
        &["password={pw}", "sslmode=prefer"],
    ),
];

/// Passwords holding `c` twice, after letters that appear nowhere else in the URLs.
fn secrets() -> Vec<String> {
    let printable = (0x20u8..0x7f).map(char::from);
    let non_ascii = ['é', 'ü', '密', '🔑', '\u{a0}'];
    printable
        .chain(non_ascii)
        .map(|c| format!("Zq{c}Wx{c}"))
        .collect()
}

fn url_text(form: &(&str, &[&str]), password: &str, extra: Option<&str>) -> String {
    let (base, parameters) = form;
    let mut parameters: Vec<&str> = parameters.to_vec();
    parameters.extend(extra);
    let mut text = base.to_string();
    if !parameters.is_empty() {
        text.push('?');
        text.push_str(&parameters.join("&"));
    }
    text.replace("{pw}", password)
}

/// Panics if `shown` holds any of `secrets`.
fn assert_hidden(shown: &str, secrets: &[&[u8]], what: &str) {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let secret_text = String::from_utf8_lossy(secret);
        assert!(
            !shown.as_bytes().windows(secret.len()).any(|w| w == *secret),
            "{what} shows the password {secret_text:?}: {shown}"
        );
    }
}

fn no_environment(_: &str) -> Option<OsString> {
    None
}

#[test]
fn no_password_shows_in_any_url_form_and_the_tools_get_the_drivers() {
    let mut accepted = 0;
    for secret in secrets() {
        let encoded = percent_encode(&secret);
        for form in &FORMS {
            for password in [secret.as_str(), encoded.as_str()] {
                let text = url_text(form, password, None);
                let driver = text.parse::<postgres::Config>();
                let driver_password = driver
                    .as_ref()
                    .ok()
                    .and_then(|c| c.get_password())
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                let forbidden: [&[u8]; 3] =
                    [secret.as_bytes(), encoded.as_bytes(), &driver_password];
                let url = match DatabaseUrl::parse(&text) {
                    Ok(url) => url,
                    Err(error) => {
                        // Refused only when the driver refuses it, or the password's `@` would
                        // be cut in two.
                        assert!(
                            driver.is_err() || password.contains('@'),
                            "{text:?} refused: {error}"
                        );
                        assert_hidden(&error.to_string(), &forbidden, "the URL error");
                        assert_hidden(&redact(&text), &forbidden, "redact");
                        continue;
                    }
                };
                accepted += 1;
                let driver = driver.unwrap_or_else(|e| panic!("{text:?}: driver: {e}"));
                check_accepted(&url, &driver, &forbidden);
                check_errors(&text, form, password, &forbidden);
            }
        }
    }
    // Every raw password but those with `@` (and `&` as a parameter) is accepted.
    assert!(
        accepted > secrets().len() * FORMS.len() * 3 / 2,
        "{accepted}"
    );
}

fn check_accepted(url: &DatabaseUrl, driver: &postgres::Config, forbidden: &[&[u8]]) {
    let shown = url.to_string();
    assert_hidden(&shown, forbidden, "Display");
    assert_hidden(&format!("{url:?}"), forbidden, "Debug");
    assert_hidden(&redact(&shown), forbidden, "redact(Display)");

    let connection = url
        .postgres_connection(&no_environment)
        .expect("a PostgreSQL URL")
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert_eq!(
        connection.config.get_password(),
        driver.get_password(),
        "{shown}"
    );
    assert_eq!(connection.config.get_hosts(), driver.get_hosts(), "{shown}");
    assert_eq!(connection.config.get_ports(), driver.get_ports(), "{shown}");
    assert_eq!(connection.config.get_user(), driver.get_user(), "{shown}");
    assert_eq!(
        connection.config.get_dbname(),
        driver.get_dbname(),
        "{shown}"
    );
    for (name, value) in connection.libpq_environment() {
        let value = value.to_string_lossy();
        match name {
            "PGPASSWORD" => assert_eq!(
                Some(value.as_bytes()),
                driver.get_password(),
                "{shown}: PGPASSWORD"
            ),
            _ => assert_hidden(&value, forbidden, name),
        }
    }

    let scratch = url.with_postgres_database("scratch").expect("PostgreSQL");
    let moved = scratch.postgres_config().expect("still a valid URL");
    assert_eq!(moved.get_password(), driver.get_password(), "{shown}");
    assert_eq!(moved.get_hosts(), driver.get_hosts(), "{shown}");
    assert_eq!(moved.get_ports(), driver.get_ports(), "{shown}");
    assert_eq!(moved.get_user(), driver.get_user(), "{shown}");
    assert_eq!(moved.get_dbname(), Some("scratch"), "{shown}");
    assert_hidden(
        &scratch.to_string(),
        forbidden,
        "Display of another database",
    );
}

/// Every error that names the URL: a connection refused (port 1 is closed), TLS settings that
/// cannot work, and a parameter the parser refuses.
fn check_errors(text: &str, form: &(&str, &[&str]), password: &str, forbidden: &[&[u8]]) {
    let url = DatabaseUrl::parse(text).expect("accepted");
    // Port 1 is closed: refused at once. One form only: each attempt loads the system's CA
    // bundle into a new TLS context (40 ms), and the message is built the same way for all.
    if text.contains(",localhost:2") && !password.contains('%') {
        let error = Database::open(&url, Create::No)
            .err()
            .expect("nothing listens");
        assert_hidden(&error.to_string(), forbidden, "the connection error");
        assert_hidden(
            &format!("{error:?}"),
            forbidden,
            "the connection error's Debug",
        );
    }
    let no_ca = url_text(
        form,
        password,
        Some("sslrootcert=/nonexistent/ca.pem&sslmode=verify-full"),
    );
    if let Ok(url) = DatabaseUrl::parse(&no_ca) {
        let error = Database::open(&url, Create::No).err().expect("no CA file");
        assert!(
            matches!(error, crate::Error::PostgresSetup { .. }),
            "{error}"
        );
        assert_hidden(&error.to_string(), forbidden, "the TLS error");
    }
    let bad = url_text(form, password, Some("sslmode=sometimes"));
    if let Err(error) = DatabaseUrl::parse(&bad) {
        assert_hidden(&error.to_string(), forbidden, "the sslmode error");
    }
    let unknown = url_text(form, password, Some("no_such_option=1"));
    let error = DatabaseUrl::parse(&unknown).expect_err("an unknown option");
    assert_hidden(&error.to_string(), forbidden, "the unknown option error");
}
