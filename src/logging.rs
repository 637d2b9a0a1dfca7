//! Log lines as simplelog writes them (`docs/contract.md`, section 10): an RFC 3339 UTC
//! timestamp, the level in brackets, the message; one line per event, to stderr or to
//! `log.file`.
//!
//! Two things are ours on top of simplelog's `WriteLogger`. Every message is scrubbed of known
//! secrets and has its control characters escaped before simplelog sees it, since messages
//! carry text from outside (subjects, e-mail addresses, server messages) and an ESC sequence or
//! a line break must neither reach a terminal nor forge a log entry. And the writer behind the
//! logger can be swapped, because simplelog's logger is installed once per process while the
//! daemon reopens `log.file` on SIGHUP (after logrotate moved it) and may switch between the
//! file and stderr on a reload.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record};
use simplelog::{ConfigBuilder, WriteLogger};

use crate::secrets;

/// Where lines go now.
enum Sink {
    Stderr,
    File(PathBuf, File),
}

static SINK: Mutex<Sink> = Mutex::new(Sink::Stderr);

/// The writer simplelog holds: it writes to whatever `SINK` is at the moment.
struct SwappableWriter;

impl Write for SwappableWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::Stderr => io::stderr().write(buf),
            Sink::File(_, f) => match f.write_all(buf) {
                Ok(()) => Ok(buf.len()),
                // The log file went away (full disk, removed): the line goes to stderr, which
                // the init system keeps.
                Err(_) => io::stderr().write(buf),
            },
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::Stderr => io::stderr().flush(),
            Sink::File(_, f) => f.flush(),
        }
    }
}

/// The installed logger: our crate's records only, scrubbed and escaped, then simplelog.
struct Logger {
    inner: Box<WriteLogger<SwappableWriter>>,
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
        let message = clean(&record.args().to_string());
        self.inner.log(
            &Record::builder()
                .args(format_args!("{message}"))
                .metadata(record.metadata().clone())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// A message as it is written: secrets removed, control characters escaped.
pub fn clean(message: &str) -> String {
    escape_controls(&secrets::scrub(message)).into_owned()
}

/// Whether `c` must not reach a log line raw: C0, DEL, C1 (with NEL, U+0085) and the Unicode
/// line and paragraph separators.
fn is_escaped(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `text` with every control character written as an escape: `\n`, `\r`, `\t`, else
/// `\u{hh}`; other text unchanged.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_escaped(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn open(path: &Path) -> io::Result<File> {
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
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = sink;
    let config = ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_thread_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        .build();
    // Only the first call installs the logger; later calls just changed the sink above. The
    // level is the global maximum, which `Logger::enabled` checks.
    let _ = log::set_boxed_logger(Box::new(Logger {
        inner: WriteLogger::new(LevelFilter::Trace, config, SwappableWriter),
    }));
    log::set_max_level(level);
    Ok(())
}

/// Reopens the log file (after logrotate moved it).
pub fn reopen() {
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if let Sink::File(path, f) = &mut *sink {
        if let Ok(new) = open(path) {
            *f = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(message: &str, expect: &str) {
        assert_eq!(clean(message), expect, "message {message:?}");
    }

    #[test]
    fn control_characters_are_escaped() {
        check(
            "alice@example.com: DND on (Busy \"Weekly sync\" until 10:30Z)",
            "alice@example.com: DND on (Busy \"Weekly sync\" until 10:30Z)",
        );
        check("a\nb\r\nc\td", "a\\nb\\r\\nc\\td");
        check("\u{1b}[31mred\u{1b}[0m", "\\u{1b}[31mred\\u{1b}[0m");
        check("nul\0 del\u{7f}", "nul\\u{0} del\\u{7f}");
        check("nel\u{85} c1\u{9b}", "nel\\u{85} c1\\u{9b}");
        check("ls\u{2028}ps\u{2029}", "ls\\u{2028}ps\\u{2029}");
        check("Grüße 😀 \u{a0}", "Grüße 😀 \u{a0}");
        check("", "");
    }

    /// The only test that installs the logger (once per test binary). Lines of other tests
    /// may land in the same file; only this test's own lines are looked at.
    #[test]
    fn lines_as_simplelog_writes_them_and_reopen_after_rotation() {
        let dir = std::env::temp_dir().join(format!("ess-log-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("sync.log");
        let rotated = dir.join("sync.log.1");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&rotated);
        init(LevelFilter::Info, Some(&path)).expect("log file");
        log::info!("logging-test first: subject \u{1b}[2J\nforged");
        log::debug!("logging-test hidden at info");
        std::fs::rename(&path, &rotated).expect("rotate");
        reopen();
        log::warn!("logging-test second");
        let ours = |p: &Path| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("logging-test"))
                .map(str::to_string)
                .collect()
        };
        let first = ours(&rotated);
        let second = ours(&path);
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(second.len(), 1, "{second:?}");
        let (stamp, rest) = first[0].split_once(' ').expect("a timestamp");
        assert_eq!(
            rest,
            "[INFO] logging-test first: subject \\u{1b}[2J\\nforged"
        );
        assert!(
            stamp.len() >= 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{stamp}"
        );
        assert!(crate::time::parse_rfc3339(stamp).is_ok(), "{stamp}");
        assert!(
            second[0].ends_with(" [WARN] logging-test second"),
            "{}",
            second[0]
        );
        *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Sink::Stderr;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn secrets_are_removed_before_escaping() {
        secrets::register("hunter2\nx");
        check("said hunter2\nx", "said [redacted]");
    }
}
