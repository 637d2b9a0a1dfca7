//! Why a configuration file was refused: one error type that names the file, the line (when the
//! problem is at a line), the key (when it is about one) and what is wrong.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::keys::{key_name, known_keys, table_list};

/// A refused configuration file. `Display` writes `FILE[:LINE]: message`, the message naming
/// the key as `table.key` and saying what to do.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    /// The line of the offending text; `None` for the file as a whole or a missing key.
    pub line: Option<usize>,
    /// The key concerned, as `table.key` (for `UnknownKey` the bare key, for `UnknownTable` the
    /// table); `None` when the problem is not about one key.
    pub key: Option<String>,
    pub kind: ErrorKind,
}

/// What is wrong.
#[derive(Debug)]
pub enum ErrorKind {
    /// The file could not be read.
    Io(io::Error),
    /// Not TOML, or TOML this file does not use.
    Syntax(String),
    /// A `[table]` that the configuration does not have.
    UnknownTable,
    /// A key that its table does not have; `table` is empty for a key before any table.
    UnknownKey { table: String },
    /// A value of the wrong TOML type.
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// A value of the right type that is not allowed; `allowed` says what is.
    Invalid { value: String, allowed: String },
    /// A key that the configuration needs and that is not set (or set to "").
    Missing { why: String },
    /// A secret that is needed and given in none of its three forms.
    MissingSecret { why: String },
    /// A secret given in more than one form (`keys`); the line is that of the second form.
    SecretTwice { keys: Vec<String> },
    /// A `KEY_file` that cannot be read or is not UTF-8 text.
    SecretFile { file: PathBuf, problem: String },
    /// A `KEY_env` naming a variable that is not set (or not valid Unicode).
    SecretEnv { var: String },
    /// A secret file or variable that holds an empty value; `source` says which.
    SecretEmpty { source: String },
    /// A file named by a key (not a secret) that cannot be used, e.g. `exchange.ca_file`.
    File { file: PathBuf, problem: String },
}

impl std::error::Error for ConfigError {}

/// `a`, `a or b`, `a, b or c` (with `last_word` = "or").
pub(super) fn join_list(items: &[String], last_word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {last_word} {last}", init.join(", ")),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let key = self.key.as_deref().unwrap_or("");
        match &self.kind {
            ErrorKind::Io(err) => write!(f, ": cannot read the configuration file: {err}"),
            ErrorKind::Syntax(msg) => write!(f, ": {msg}"),
            ErrorKind::UnknownTable => write!(
                f,
                ": [{}] is not a table of this configuration; the tables are {}",
                key_name(key),
                table_list()
            ),
            ErrorKind::UnknownKey { table } if table.is_empty() => write!(
                f,
                ": `{}` is set before any table; every key belongs under one of {}",
                key_name(key),
                table_list()
            ),
            ErrorKind::UnknownKey { table } => write!(
                f,
                ": {table}.{} is not a known key; [{table}] takes {}",
                key_name(key),
                known_keys(table).join(", ")
            ),
            ErrorKind::WrongType { expected, found } => {
                write!(f, ": {key} must be {expected}, not {found}")
            }
            ErrorKind::Invalid { value, allowed } => {
                write!(f, ": {key} = {value} is not allowed; {allowed}")
            }
            ErrorKind::Missing { why } => write!(f, ": {key} is missing; {why}"),
            ErrorKind::MissingSecret { why } => write!(
                f,
                ": {key} is missing; {why}: set exactly one of {key}_file, {key}_env or {key}"
            ),
            ErrorKind::SecretTwice { keys } => write!(
                f,
                ": {} are {} set; give the secret in exactly one of them",
                join_list(keys, "and"),
                if keys.len() == 2 { "both" } else { "all" }
            ),
            ErrorKind::SecretFile { file, problem } => write!(
                f,
                ": {key}: cannot read the secret file {}: {problem}",
                file.display()
            ),
            ErrorKind::SecretEnv { var } => write!(
                f,
                ": {key}: the environment variable {var} is not set \
                 (or not valid Unicode) in the daemon's environment"
            ),
            ErrorKind::SecretEmpty { source } => write!(f, ": {key}: {source} is empty"),
            ErrorKind::File { file, problem } => {
                write!(f, ": {key}: cannot use {}: {problem}", file.display())
            }
        }
    }
}
