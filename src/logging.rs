//! Log lines as DESIGN.md section 3 shows them: `2026-12-01T09:30:00Z INFO  alice@example.com:
//! DND on (…)`, one line per event, UTC, to stderr or to `log.file`.
//!
//! A small `log::Log` of our own rather than simplelog: simplelog always brackets the level
//! (`[INFO]`), which is not the contract's line format, and it needs the `time` crate for a
//! format we get from `time::format_rfc3339` already.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

use crate::time::format_rfc3339;

enum Sink {
    Stderr,
    File(PathBuf, File),
}

struct Logger {
    sink: Mutex<Sink>,
}

static LOGGER: Logger = Logger {
    sink: Mutex::new(Sink::Stderr),
};

/// The text of one line (without the newline).
pub fn format_line(unix_secs: i64, level: log::Level, message: &str) -> String {
    // A message must stay one line: an admin greps the log, and a newline from a server's text
    // must not forge a second entry.
    let message = message.replace(['\n', '\r'], " ");
    format!(
        "{} {:<5} {message}",
        format_rfc3339(unix_secs),
        level.as_str()
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Only our own crate's lines: rustls and others log at debug with their own vocabulary.
        if !record.target().starts_with("ess")
            && !record.target().starts_with("exchange_status_sync")
        {
            return;
        }
        let line = format_line(now(), record.level(), &record.args().to_string());
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let written = match &mut *sink {
            Sink::Stderr => writeln!(std::io::stderr(), "{line}"),
            Sink::File(_, f) => writeln!(f, "{line}"),
        };
        if written.is_err() {
            // The log file went away (full disk, removed): fall back to stderr, which the init
            // system keeps.
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    fn flush(&self) {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Sink::File(_, f) = &mut *sink {
            let _ = f.flush();
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Sets the level and the destination; may be called again (SIGHUP: reload, reopen after
/// log rotation).
pub fn init(level: LevelFilter, file: Option<&Path>) -> Result<(), String> {
    let sink = match file {
        None => Sink::Stderr,
        Some(p) => Sink::File(
            p.to_path_buf(),
            open(p).map_err(|e| format!("cannot open the log file {}: {e}", p.display()))?,
        ),
    };
    *LOGGER.sink.lock().unwrap_or_else(|e| e.into_inner()) = sink;
    // Only the first call installs the logger; later calls just changed the sink above.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    Ok(())
}

/// Reopens the log file (after logrotate moved it).
pub fn reopen() {
    let mut sink = LOGGER.sink.lock().unwrap_or_else(|e| e.into_inner());
    if let Sink::File(path, f) = &mut *sink {
        if let Ok(new) = open(path) {
            *f = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        assert_eq!(
            format_line(1_796_117_400, log::Level::Info, "alice@example.com: DND on (Busy \"Weekly sync\" until 10:30Z)"),
            "2026-12-01T09:30:00Z INFO  alice@example.com: DND on (Busy \"Weekly sync\" until 10:30Z)"
        );
        assert_eq!(
            format_line(0, log::Level::Error, "a\nb\r\nc"),
            "1970-01-01T00:00:00Z ERROR a b  c"
        );
        assert_eq!(
            format_line(0, log::Level::Warn, "w"),
            "1970-01-01T00:00:00Z WARN  w"
        );
    }
}
