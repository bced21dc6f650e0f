//! A progress line for long work: rows done and rows per second, redrawn in place on a terminal;
//! nothing at all (no control characters) when stderr is not a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the line is redrawn.
const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// A progress line for one piece of work.
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    drawn: Option<Instant>,
    visible: bool,
}

impl Progress {
    /// Starts a line labelled `label`, out of `total` rows when known.
    pub fn new(label: impl Into<String>, total: Option<u64>) -> Progress {
        Progress {
            label: label.into(),
            total,
            done: 0,
            started: Instant::now(),
            drawn: None,
            visible: std::io::stderr().is_terminal(),
        }
    }

    /// Counts `rows` more rows done.
    pub fn add(&mut self, rows: u64) {
        self.done += rows;
        if self.visible && self.drawn.is_none_or(|t| t.elapsed() >= REDRAW_EVERY) {
            self.draw();
        }
    }

    fn draw(&mut self) {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / seconds;
        let bar = match self.total {
            Some(total) if total > 0 => {
                let filled = (self.done.min(total) * 30 / total) as usize;
                format!(
                    "[{}{}] {}/{total}",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    self.done
                )
            }
            _ => format!("{} rows", self.done),
        };
        eprint!("\r\x1b[2K{}: {bar} ({rate:.0} rows/s)", self.label);
        let _ = std::io::stderr().flush();
        self.drawn = Some(Instant::now());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.drawn.is_some() {
            // Clear the line so that the report that follows starts clean.
            eprint!("\r\x1b[2K");
        }
    }
}
