//! What a command did: told to people on stderr, and with `--json`, as one machine-readable line on
//! stdout for CI and scripts.

use std::io;
use std::path::Path;
use std::time::Instant;

use app::{Backend, RowCounts, SCHEMA_VERSION};
use serde_json::{json, Map, Value};

use crate::engine::archive::kind::BackupKind;

/// The outcome of one command. Fields that do not apply to a command are left out of the JSON line.
pub struct Report {
    command: &'static str,
    started: Instant,
    fields: Map<String, Value>,
    lines: Vec<String>,
}

impl Report {
    /// Starts timing `command`.
    pub fn start(command: &'static str) -> Report {
        Report {
            command,
            started: Instant::now(),
            fields: Map::new(),
            lines: Vec::new(),
        }
    }

    /// Sets a field of the JSON line (`path`, `kind`, `backend`, `bytes`, ...).
    pub fn field(&mut self, name: &str, value: impl Into<Value>) -> &mut Report {
        self.fields.insert(name.to_string(), value.into());
        self
    }

    /// Sets the fields that describe a backup or export file: `path`, `kind` (`native` or `json`),
    /// `backend` (the one its data came from), `bytes`, and whether it is `encrypted` (with age).
    pub fn backup_file(
        &mut self,
        path: &Path,
        kind: BackupKind,
        backend: &str,
        bytes: u64,
        encrypted: bool,
    ) -> &mut Report {
        self.field("path", path.display().to_string())
            .field("kind", kind.as_str())
            .field("backend", backend)
            .field("bytes", bytes)
            .field("encrypted", encrypted)
    }

    /// Sets `backend`: the backend of the database the command worked on.
    pub fn backend(&mut self, backend: Backend) -> &mut Report {
        self.field("backend", backend.as_str())
    }

    /// Sets `rows`: the rows per table.
    pub fn rows(&mut self, counts: &RowCounts) -> &mut Report {
        self.field("rows", json!(counts))
    }

    /// Adds a line for people, printed when the command has finished.
    pub fn say(&mut self, line: impl Into<String>) -> &mut Report {
        self.lines.push(line.into());
        self
    }

    /// Tells people something now, while the command goes on: what they must know even if a later
    /// step fails (where a safety copy went, for one).
    pub fn tell(&mut self, line: impl AsRef<str>) -> &mut Report {
        print_line(&mut io::stderr(), line.as_ref());
        self
    }

    /// The seconds since [`Report::start`].
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Prints the lines for people on stderr and, when `json`, the JSON line on stdout.
    pub fn print(mut self, json: bool) {
        for line in &self.lines {
            print_line(&mut io::stderr(), line);
        }
        if json {
            let seconds = (self.seconds() * 1000.0).round() / 1000.0;
            self.fields.insert("command".into(), json!(self.command));
            self.fields.insert("ok".into(), json!(true));
            self.fields.insert("seconds".into(), json!(seconds));
            print_line(&mut io::stdout(), &Value::Object(self.fields).to_string());
        }
    }
}

/// Prints the JSON line of a failed command on stdout.
pub fn print_failure(message: &str, exit_code: u8) {
    let line = json!({"ok": false, "error": message, "exit_code": exit_code});
    print_line(&mut io::stdout(), &line.to_string());
}

/// Writes `line` and a newline. A reader that went away (`cargo xtask list --json | head -1`) is not
/// an error: the rest is dropped quietly, as ripgrep does, instead of a panic.
fn print_line(out: &mut impl io::Write, line: &str) {
    let written = writeln!(out, "{line}").and_then(|()| out.flush());
    if written.is_err_and(|e| e.kind() != io::ErrorKind::BrokenPipe) {
        // Nowhere left to say it: the exit code still does.
        std::process::exit(1);
    }
}

/// ` (schema version 1, brought forward to 2)` after a file of an earlier schema version; nothing
/// after one of the current version.
pub fn brought_forward(schema_version: i64) -> String {
    match schema_version {
        SCHEMA_VERSION => String::new(),
        old => format!(" (schema version {old}, brought forward to {SCHEMA_VERSION})"),
    }
}

/// `bytes` for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}
