//! What a command did: told to people on stderr, and with `--json`, as one machine-readable line on
//! stdout for CI and scripts.

use std::time::Instant;

use serde_json::{json, Map, Value};

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
    /// `backend` and `bytes`.
    pub fn backup_file(
        &mut self,
        path: &std::path::Path,
        kind: &str,
        backend: &str,
        bytes: u64,
    ) -> &mut Report {
        self.field("path", path.display().to_string())
            .field("kind", kind)
            .field("backend", backend)
            .field("bytes", bytes)
    }

    /// Sets `rows`: the rows per table.
    pub fn rows<'a>(&mut self, counts: impl IntoIterator<Item = (&'a str, u64)>) -> &mut Report {
        let rows: Map<String, Value> = counts
            .into_iter()
            .map(|(table, count)| (table.to_string(), json!(count)))
            .collect();
        self.field("rows", rows)
    }

    /// Adds a line for people.
    pub fn say(&mut self, line: impl Into<String>) -> &mut Report {
        self.lines.push(line.into());
        self
    }

    /// The seconds since [`Report::start`].
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Prints the lines for people on stderr and, when `json`, the JSON line on stdout.
    pub fn print(mut self, json: bool) {
        for line in &self.lines {
            eprintln!("{line}");
        }
        if json {
            let seconds = (self.seconds() * 1000.0).round() / 1000.0;
            self.fields.insert("command".into(), json!(self.command));
            self.fields.insert("ok".into(), json!(true));
            self.fields.insert("seconds".into(), json!(seconds));
            println!("{}", Value::Object(self.fields));
        }
    }
}
