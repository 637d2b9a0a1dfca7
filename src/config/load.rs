//! Validation: the parsed TOML document becomes a typed [`Config`], or a [`ConfigError`] that
//! names the file, the line, the key and what is allowed (`docs/contract.md`, section 4.1).
//!
//! Rules beyond the contract, chosen so that a mistake is caught at start-up rather than at the
//! first poll:
//! - Every key present is type-checked and value-checked, even one the chosen backend does not
//!   use (that one also gets a warning). Secrets are the exception: an unused secret's file or
//!   variable is not read, so a stale path cannot stop the daemon.
//! - For the optional-by-backend keys (`url`, `username`, `tenant_id`, `client_id`, and every
//!   secret form) an empty string counts as not set, so the example file can keep them blank.
//! - Relative paths are taken relative to the directory of the configuration file, which is
//!   what an admin editing that file expects whatever the daemon's working directory is.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::toml::{self, Entry, Value};
use super::{
    Action, Actions, Backend, ChatConfig, Config, EwsAuth, ExchangeConfig, LogConfig, LoginType,
    Lookup, Secret, StarfaceConfig, SyncConfig,
};
use crate::http::url::{parse as parse_url, Url};

/// A valid configuration and the warnings to log about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Why a configuration file was refused. Every variant's message names the file; those about a
/// key name it as `table.key` and give the line when the key is in the file.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Io { path: PathBuf, err: io::Error },
    /// Not TOML, or TOML this file does not use.
    Syntax {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// A `[table]` that the configuration does not have.
    UnknownTable {
        path: PathBuf,
        line: usize,
        table: String,
    },
    /// A key that its table does not have; `table` is empty for a key before any table.
    UnknownKey {
        path: PathBuf,
        line: usize,
        table: String,
        key: String,
    },
    /// A value of the wrong TOML type.
    WrongType {
        path: PathBuf,
        line: usize,
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A value of the right type that is not allowed; `allowed` says what is.
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        value: String,
        allowed: String,
    },
    /// A key that the configuration needs and that is not set (or set to "").
    Missing {
        path: PathBuf,
        key: String,
        why: String,
    },
    /// A secret that is needed and given in none of its three forms.
    MissingSecret {
        path: PathBuf,
        key: String,
        why: String,
    },
    /// A secret given in more than one form; `line` is that of the second form.
    SecretTwice {
        path: PathBuf,
        line: usize,
        keys: Vec<String>,
    },
    /// A `KEY_file` that cannot be read or is not UTF-8 text.
    SecretFile {
        path: PathBuf,
        line: usize,
        key: String,
        file: PathBuf,
        problem: String,
    },
    /// A `KEY_env` naming a variable that is not set (or not valid Unicode).
    SecretEnv {
        path: PathBuf,
        line: usize,
        key: String,
        var: String,
    },
    /// A secret file or variable that holds an empty value.
    SecretEmpty {
        path: PathBuf,
        line: usize,
        key: String,
        source: String,
    },
    /// A file named by a key (not a secret) that cannot be used, e.g. `exchange.ca_file`.
    File {
        path: PathBuf,
        line: usize,
        key: String,
        file: PathBuf,
        problem: String,
    },
}

impl std::error::Error for ConfigError {}

/// `[exchange], [starface], …`: the tables a key may belong to, for messages.
fn table_list() -> String {
    TABLES
        .iter()
        .map(|(t, _)| format!("[{t}]"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, err } => {
                write!(
                    f,
                    "{}: cannot read the configuration file: {err}",
                    path.display()
                )
            }
            ConfigError::Syntax { path, line, msg } => {
                write!(f, "{}:{line}: {msg}", path.display())
            }
            ConfigError::UnknownTable { path, line, table } => write!(
                f,
                "{}:{line}: [{}] is not a table of this configuration; the tables are {}",
                path.display(),
                key_name(table),
                table_list()
            ),
            ConfigError::UnknownKey {
                path,
                line,
                table,
                key,
            } if table.is_empty() => write!(
                f,
                "{}:{line}: `{}` is set before any table; every key belongs under one of {}",
                path.display(),
                key_name(key),
                table_list()
            ),
            ConfigError::UnknownKey {
                path,
                line,
                table,
                key,
            } => write!(
                f,
                "{}:{line}: {table}.{} is not a known key; [{table}] takes {}",
                path.display(),
                key_name(key),
                known_keys(table).join(", ")
            ),
            ConfigError::WrongType {
                path,
                line,
                key,
                expected,
                found,
            } => write!(
                f,
                "{}:{line}: {key} must be {expected}, not {found}",
                path.display()
            ),
            ConfigError::Invalid {
                path,
                line,
                key,
                value,
                allowed,
            } => write!(
                f,
                "{}:{line}: {key} = {value} is not allowed; {allowed}",
                path.display()
            ),
            ConfigError::Missing { path, key, why } => {
                write!(f, "{}: {key} is missing; {why}", path.display())
            }
            ConfigError::MissingSecret { path, key, why } => write!(
                f,
                "{}: {key} is missing; {why}: set exactly one of {key}_file, {key}_env or {key}",
                path.display()
            ),
            ConfigError::SecretTwice { path, line, keys } => write!(
                f,
                "{}:{line}: {} are {} set; give the secret in exactly one of them",
                path.display(),
                join_list(keys, "and"),
                if keys.len() == 2 { "both" } else { "all" }
            ),
            ConfigError::SecretFile {
                path,
                line,
                key,
                file,
                problem,
            } => write!(
                f,
                "{}:{line}: {key}: cannot read the secret file {}: {problem}",
                path.display(),
                file.display()
            ),
            ConfigError::SecretEnv {
                path,
                line,
                key,
                var,
            } => write!(
                f,
                "{}:{line}: {key}: the environment variable {var} is not set \
                 (or not valid Unicode) in the daemon's environment",
                path.display()
            ),
            ConfigError::SecretEmpty {
                path,
                line,
                key,
                source,
            } => {
                write!(f, "{}:{line}: {key}: {source} is empty", path.display())
            }
            ConfigError::File {
                path,
                line,
                key,
                file,
                problem,
            } => write!(
                f,
                "{}:{line}: {key}: cannot use {}: {problem}",
                path.display(),
                file.display()
            ),
        }
    }
}

/// The tables and their keys, in the order of the example file.
const TABLES: &[(&str, &[&str])] = &[
    (
        "exchange",
        &[
            "backend",
            "url",
            "auth",
            "username",
            "password",
            "password_file",
            "password_env",
            "lookup",
            "impersonation",
            "tenant_id",
            "client_id",
            "client_secret",
            "client_secret_file",
            "client_secret_env",
            "token_url",
            "graph_url",
            "ca_file",
            "timeout_secs",
        ],
    ),
    (
        "starface",
        &[
            "url",
            "login",
            "password",
            "password_file",
            "password_env",
            "login_type",
            "group",
            "insecure_tls",
        ],
    ),
    (
        "actions",
        &[
            "free",
            "tentative",
            "busy",
            "oof",
            "working_elsewhere",
            "forward_internal_calls",
        ],
    ),
    (
        "chat",
        &[
            "set_presence",
            "subject_as_text",
            "join_parallel_subjects",
            "private_text",
            "rpc_method",
        ],
    ),
    (
        "sync",
        &[
            "poll_interval_secs",
            "lookahead_hours",
            "directory_refresh_secs",
            "state_dir",
        ],
    ),
    ("log", &["level", "file"]),
];

/// A key as TOML would need it written: bare when it can be, else quoted, so that odd
/// characters in a quoted key cannot garble the message.
fn key_name(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        toml::quote(key)
    }
}

fn known_keys(table: &str) -> &'static [&'static str] {
    TABLES
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, keys)| *keys)
        .unwrap_or(&[])
}

pub const DEFAULT_TOKEN_URL: &str =
    "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
pub const DEFAULT_STARFACE_URL: &str = "http://127.0.0.1";
pub const DEFAULT_GROUP: &str = "Exchange-Sync";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/exchange-status-sync";

/// Reads and validates the configuration file at `path`, with secrets from the process
/// environment.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = fs::read(path).map_err(|err| ConfigError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e
            .as_bytes()
            .get(..valid)
            .unwrap_or(&[])
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            msg: "the file is not UTF-8 text; save it as UTF-8".to_string(),
        }
    })?;
    from_str(&text, path, &|name| std::env::var(name).ok())
}

/// Validates `text` as if read from `path`. Secret files (and `ca_file`) are still read from
/// disk and `path`'s permissions are looked at, but environment variables come from `env`.
pub fn from_str(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let doc = toml::parse(text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        msg: e.msg,
    })?;
    if let Some(entry) = doc.root.first() {
        return Err(ConfigError::UnknownKey {
            path: path.to_path_buf(),
            line: entry.line,
            table: String::new(),
            key: entry.key.clone(),
        });
    }
    for table in &doc.tables {
        let keys = match TABLES.iter().find(|(t, _)| *t == table.name) {
            Some((_, keys)) => keys,
            None => {
                return Err(ConfigError::UnknownTable {
                    path: path.to_path_buf(),
                    line: table.line,
                    table: table.name.clone(),
                })
            }
        };
        if let Some(entry) = table
            .entries
            .iter()
            .find(|e| !keys.contains(&e.key.as_str()))
        {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                line: entry.line,
                table: table.name.clone(),
                key: entry.key.clone(),
            });
        }
    }
    let mut r = Reader {
        path,
        doc: &doc,
        env,
        warnings: Vec::new(),
    };
    let exchange = r.exchange()?;
    let starface = r.starface()?;
    let actions = r.actions()?;
    let chat = r.chat()?;
    let sync = r.sync()?;
    let log = r.log()?;
    r.inline_secret_warning();
    Ok(Loaded {
        config: Config {
            path: path.to_path_buf(),
            exchange,
            starface,
            actions,
            chat,
            sync,
            log,
        },
        warnings: r.warnings,
    })
}

/// A value read from the file with its line.
struct Got<T> {
    value: T,
    line: usize,
}

struct Reader<'a> {
    path: &'a Path,
    doc: &'a toml::Document,
    env: &'a dyn Fn(&str) -> Option<String>,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    fn entry(&self, table: &str, key: &str) -> Option<&'a Entry> {
        self.doc.table(table).and_then(|t| t.get(key))
    }

    fn wrong_type(&self, table: &str, e: &Entry, expected: &'static str) -> ConfigError {
        ConfigError::WrongType {
            path: self.path.to_path_buf(),
            line: e.line,
            key: format!("{table}.{}", e.key),
            expected,
            found: e.value.kind(),
        }
    }

    fn invalid(
        &self,
        table: &str,
        key: &str,
        line: usize,
        value: &Value,
        allowed: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            key: format!("{table}.{key}"),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    fn warn(&mut self, line: usize, msg: impl fmt::Display) {
        self.warnings
            .push(format!("{}:{line}: {msg}", self.path.display()));
    }

    fn string(&self, table: &str, key: &str) -> Result<Option<Got<&'a str>>, ConfigError> {
        match self.entry(table, key) {
            None => Ok(None),
            Some(e) => match &e.value {
                Value::String(s) => Ok(Some(Got {
                    value: s.as_str(),
                    line: e.line,
                })),
                _ => Err(self.wrong_type(table, e, "a string in quotes")),
            },
        }
    }

    /// A string for which "" means not set.
    fn optional_string(&self, table: &str, key: &str) -> Result<Option<Got<&'a str>>, ConfigError> {
        Ok(self.string(table, key)?.filter(|g| !g.value.is_empty()))
    }

    fn bool(&self, table: &str, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.entry(table, key) {
            None => Ok(default),
            Some(e) => match e.value {
                Value::Boolean(b) => Ok(b),
                _ => Err(self.wrong_type(table, e, "true or false (without quotes)")),
            },
        }
    }

    /// A whole number in `min..=max`, `unit` naming what it counts ("seconds").
    fn number(
        &self,
        table: &str,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        match self.entry(table, key) {
            None => Ok(default),
            Some(e) => match e.value {
                Value::Integer(i) => u64::try_from(i)
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| {
                        self.invalid(
                            table,
                            key,
                            e.line,
                            &e.value,
                            format!("use a whole number of {unit} from {min} to {max}"),
                        )
                    }),
                _ => Err(self.wrong_type(table, e, "a whole number (without quotes)")),
            },
        }
    }

    /// One of the names in `options`.
    fn choice<T: Copy>(
        &self,
        table: &str,
        key: &str,
        default: T,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        match self.string(table, key)? {
            None => Ok(default),
            Some(g) => options
                .iter()
                .find(|(name, _)| *name == g.value)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let names: Vec<String> = options.iter().map(|(n, _)| toml::quote(n)).collect();
                    self.invalid(
                        table,
                        key,
                        g.line,
                        &Value::String(g.value.to_string()),
                        format!("use {}", join_list(&names, "or")),
                    )
                }),
        }
    }

    /// A string that must not be empty; `hint` says what to put there.
    fn non_empty(
        &self,
        table: &str,
        key: &str,
        default: &str,
        hint: &str,
    ) -> Result<String, ConfigError> {
        match self.string(table, key)? {
            None => Ok(default.to_string()),
            Some(g) if g.value.trim().is_empty() => Err(self.invalid(
                table,
                key,
                g.line,
                &Value::String(g.value.to_string()),
                hint,
            )),
            Some(g) => Ok(g.value.to_string()),
        }
    }

    /// An http(s) URL; returns it with trailing slashes removed when `strip_slash`.
    fn url(
        &self,
        table: &str,
        key: &str,
        got: &Got<&str>,
        shown: &str,
        strip_slash: bool,
    ) -> Result<(String, Url), ConfigError> {
        match parse_url(got.value) {
            Ok(url) => {
                let text = if strip_slash {
                    got.value.trim_end_matches('/')
                } else {
                    got.value
                };
                Ok((text.to_string(), url))
            }
            Err(problem) => Err(self.invalid(
                table,
                key,
                got.line,
                // A URL with a password in it (the very mistake being reported) must not echo
                // the password: show it without user-info and query.
                &Value::String(crate::http::redact_url(shown)),
                format!("{problem} (e.g. {})", toml::quote(example_url(table, key))),
            )),
        }
    }

    fn missing(&self, key: &str, why: impl Into<String>) -> ConfigError {
        ConfigError::Missing {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            why: why.into(),
        }
    }

    fn resolve(&self, file: &str) -> PathBuf {
        let file = Path::new(file);
        if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new("")).join(file)
        }
    }

    /// Warns about `table.key` when it is set though `why` it is not used. "" and the default
    /// value (which the example file spells out) count as not set, so that switching the
    /// backend in the example file does not bring a warning for every line left as it was.
    fn warn_unused(&mut self, table: &str, key: &str, why: &str) {
        let default = match (table, key) {
            ("exchange", "token_url") => Value::String(DEFAULT_TOKEN_URL.to_string()),
            ("exchange", "graph_url") => Value::String(DEFAULT_GRAPH_URL.to_string()),
            ("exchange", "auth") => Value::String("basic".to_string()),
            ("exchange", "lookup") => Value::String("availability".to_string()),
            ("exchange", "impersonation") => Value::Boolean(false),
            _ => Value::String(String::new()),
        };
        let set = self
            .entry(table, key)
            .filter(|e| e.value != default && e.value != Value::String(String::new()));
        if let Some(e) = set {
            let line = e.line;
            self.warn(
                line,
                format_args!("{table}.{key} is not used {why}; it is ignored"),
            );
        }
    }

    /// Which form of the secret `table.key` is given (0: `key`, 1: `key_file`, 2: `key_env`),
    /// after checking that at most one is. Reads nothing, so it also serves unused secrets.
    fn secret_form(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<(usize, Got<&'a str>)>, ConfigError> {
        let forms = [key.to_string(), format!("{key}_file"), format!("{key}_env")];
        let mut given: Vec<(usize, Got<&'a str>)> = Vec::new();
        for (i, form) in forms.iter().enumerate() {
            if let Some(g) = self.optional_string(table, form)? {
                given.push((i, g));
            }
        }
        if given.len() > 1 {
            let line = given.iter().map(|(_, g)| g.line).max().unwrap_or(0);
            return Err(ConfigError::SecretTwice {
                path: self.path.to_path_buf(),
                line,
                keys: given
                    .iter()
                    .filter_map(|(i, _)| forms.get(*i))
                    .map(|f| format!("{table}.{f}"))
                    .collect(),
            });
        }
        Ok(given.pop())
    }

    /// The secret `table.key`, which the configuration needs (`why` says for what), from
    /// exactly one of `key`, `key_file`, `key_env`.
    fn secret(&mut self, table: &str, key: &str, why: &str) -> Result<Secret, ConfigError> {
        let Some((form, got)) = self.secret_form(table, key)? else {
            return Err(ConfigError::MissingSecret {
                path: self.path.to_path_buf(),
                key: format!("{table}.{key}"),
                why: why.to_string(),
            });
        };
        let suffix = ["", "_file", "_env"].get(form).copied().unwrap_or("");
        let form_key = format!("{table}.{key}{suffix}");
        let value = match form {
            0 => got.value.to_string(),
            1 => {
                let file = self.resolve(got.value);
                let read_err = |problem: String| ConfigError::SecretFile {
                    path: self.path.to_path_buf(),
                    line: got.line,
                    key: form_key.clone(),
                    file: file.clone(),
                    problem,
                };
                let bytes = fs::read(&file).map_err(|e| read_err(e.to_string()))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| read_err("it is not UTF-8 text".to_string()))?;
                if let Some(mode) = group_or_other_bits(&file) {
                    self.warn(
                        got.line,
                        format_args!(
                            "{form_key}: the secret file {} can be read by group or others \
                             (mode {mode:03o}); run chmod 600 on it",
                            file.display()
                        ),
                    );
                }
                let stripped = text
                    .strip_suffix("\r\n")
                    .or_else(|| text.strip_suffix('\n'))
                    .unwrap_or(&text);
                if stripped.is_empty() {
                    return Err(ConfigError::SecretEmpty {
                        path: self.path.to_path_buf(),
                        line: got.line,
                        key: form_key,
                        source: format!("the secret file {}", file.display()),
                    });
                }
                stripped.to_string()
            }
            _ => match (self.env)(got.value) {
                None => {
                    return Err(ConfigError::SecretEnv {
                        path: self.path.to_path_buf(),
                        line: got.line,
                        key: form_key,
                        var: got.value.to_string(),
                    })
                }
                Some(v) if v.is_empty() => {
                    return Err(ConfigError::SecretEmpty {
                        path: self.path.to_path_buf(),
                        line: got.line,
                        key: form_key,
                        source: format!("the environment variable {}", got.value),
                    })
                }
                Some(v) => v,
            },
        };
        Ok(Secret::new(value))
    }

    /// One warning when the file holds a secret inline and others than its owner may read it.
    fn inline_secret_warning(&mut self) {
        let inline: Vec<String> = [
            ("exchange", "password"),
            ("exchange", "client_secret"),
            ("starface", "password"),
        ]
        .iter()
        .filter(
            |(t, k)| matches!(self.entry(t, k), Some(e) if e.value != Value::String(String::new())),
        )
        .map(|(t, k)| format!("{t}.{k}"))
        .collect();
        if inline.is_empty() {
            return;
        }
        if let Some(mode) = group_or_other_bits(self.path) {
            self.warnings.push(format!(
                "{}: holds {} inline and can be read by group or others (mode {mode:03o}); \
                 run chmod 600 on it, or use the *_file keys",
                self.path.display(),
                inline.join(" and ")
            ));
        }
    }

    fn exchange(&mut self) -> Result<ExchangeConfig, ConfigError> {
        const T: &str = "exchange";
        let backend = self.choice(
            T,
            "backend",
            Backend::Ews,
            &[("ews", Backend::Ews), ("graph", Backend::Graph)],
        )?;
        let auth = self.choice(
            T,
            "auth",
            EwsAuth::Basic,
            &[
                ("basic", EwsAuth::Basic),
                ("ntlm", EwsAuth::Ntlm),
                ("oauth2", EwsAuth::OAuth2),
            ],
        )?;
        let lookup = self.choice(
            T,
            "lookup",
            Lookup::Availability,
            &[
                ("availability", Lookup::Availability),
                ("calendar", Lookup::Calendar),
            ],
        )?;
        let impersonation_set = self.bool(T, "impersonation", false)?;
        let ews = backend == Backend::Ews;
        let basic = ews && auth == EwsAuth::Basic;
        let ntlm = ews && auth == EwsAuth::Ntlm;
        // Basic and NTLM both authenticate with the account's username and password.
        let password_auth = basic || ntlm;
        let auth_name = if ntlm { "ntlm" } else { "basic" };
        let oauth = !ews || auth == EwsAuth::OAuth2;

        let url_got = self.optional_string(T, "url")?;
        let url = match &url_got {
            Some(g) => Some(self.url(T, "url", g, g.value, false)?),
            None => None,
        };
        let username = self.optional_string(T, "username")?;
        if let Some(g) = &username {
            if g.value.contains(':') || g.value.chars().any(char::is_control) {
                return Err(self.invalid(
                    T,
                    "username",
                    g.line,
                    &Value::String(g.value.to_string()),
                    "Basic authentication cannot carry a `:` or control characters in the user name",
                ));
            }
            let domain_user = g
                .value
                .split_once('\\')
                .is_some_and(|(d, u)| !d.is_empty() && !u.is_empty() && !u.contains('\\'));
            if ntlm && !domain_user && !g.value.contains('@') {
                return Err(self.invalid(
                    T,
                    "username",
                    g.line,
                    &Value::String(g.value.to_string()),
                    "with auth = \"ntlm\" give DOMAIN\\user or the UPN user@domain",
                ));
            }
        }
        let tenant_id = self.optional_string(T, "tenant_id")?;
        if let Some(g) = &tenant_id {
            if !g
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return Err(self.invalid(
                    T,
                    "tenant_id",
                    g.line,
                    &Value::String(g.value.to_string()),
                    "use the directory (tenant) ID or its domain, e.g. \"contoso.onmicrosoft.com\"",
                ));
            }
        }
        let client_id = self.optional_string(T, "client_id")?;
        if let Some(g) = &client_id {
            if g.value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(self.invalid(
                    T,
                    "client_id",
                    g.line,
                    &Value::String(g.value.to_string()),
                    "use the application (client) ID of the app registration, without spaces",
                ));
            }
        }
        let tenant = tenant_id.as_ref().map(|g| g.value).unwrap_or("");
        let token_got = self.string(T, "token_url")?;
        let token_template = token_got
            .as_ref()
            .map(|g| g.value)
            .unwrap_or(DEFAULT_TOKEN_URL);
        let token_url = token_template.replace("{tenant_id}", tenant);
        let token_url = match &token_got {
            Some(g) => {
                let replaced = Got {
                    value: token_url.as_str(),
                    line: g.line,
                };
                Some(self.url(T, "token_url", &replaced, g.value, false)?)
            }
            None => parse_url(&token_url).ok().map(|u| (token_url.clone(), u)),
        };
        let graph_got = self.string(T, "graph_url")?;
        let graph = match &graph_got {
            Some(g) => self.url(T, "graph_url", g, g.value, true)?,
            None => (
                DEFAULT_GRAPH_URL.to_string(),
                parse_url(DEFAULT_GRAPH_URL).unwrap_or_default(),
            ),
        };
        let ca_file = match self.optional_string(T, "ca_file")? {
            None => None,
            Some(g) => {
                let file = self.resolve(g.value);
                let problem = match fs::metadata(&file) {
                    Ok(m) if m.is_file() => None,
                    Ok(_) => Some("it is not a regular file".to_string()),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(problem) = problem {
                    return Err(ConfigError::File {
                        path: self.path.to_path_buf(),
                        line: g.line,
                        key: format!("{T}.ca_file"),
                        file,
                        problem: format!("{problem}; give a PEM file of extra roots, or \"\" for the system roots"),
                    });
                }
                Some(file)
            }
        };
        let timeout = self.number(T, "timeout_secs", 30, 1, 3600, "seconds")?;

        // What the chosen backend needs, then what it does not use.
        let ews_why = "it is required with backend = \"ews\"";
        let basic_why = format!("it is required with backend = \"ews\" and auth = \"{auth_name}\"");
        let basic_why = basic_why.as_str();
        let oauth_why = if ews {
            "it is required with auth = \"oauth2\""
        } else {
            "it is required with backend = \"graph\""
        };
        if ews && url.is_none() {
            return Err(self.missing("exchange.url", ews_why));
        }
        if password_auth && username.is_none() {
            return Err(self.missing("exchange.username", basic_why));
        }
        if oauth && tenant_id.is_none() {
            return Err(self.missing("exchange.tenant_id", oauth_why));
        }
        if oauth && client_id.is_none() {
            return Err(self.missing("exchange.client_id", oauth_why));
        }
        let password = match password_auth {
            true => Some(self.secret(T, "password", basic_why)?),
            false => self.secret_form(T, "password").map(|_| None)?,
        };
        let client_secret = match oauth {
            true => Some(self.secret(T, "client_secret", oauth_why)?),
            false => self.secret_form(T, "client_secret").map(|_| None)?,
        };

        if !ews {
            for key in ["url", "auth", "lookup", "impersonation"] {
                self.warn_unused(T, key, "with backend = \"graph\"");
            }
        }
        if !password_auth {
            let why = if ews {
                "with auth = \"oauth2\""
            } else {
                "with backend = \"graph\""
            };
            for key in ["username", "password", "password_file", "password_env"] {
                self.warn_unused(T, key, why);
            }
        }
        if !oauth {
            for key in [
                "tenant_id",
                "client_id",
                "client_secret",
                "client_secret_file",
                "client_secret_env",
                "token_url",
            ] {
                self.warn_unused(T, key, basic_why.replace("it is required", "").trim());
            }
        }
        if ews {
            self.warn_unused(T, "graph_url", "with backend = \"ews\"");
        }
        let impersonation_line = self.entry(T, "impersonation").map(|e| e.line);
        if let Some(line) = impersonation_line {
            if ews && auth == EwsAuth::OAuth2 && !impersonation_set {
                self.warn(line, "exchange.impersonation = false is ignored: impersonation is always on with auth = \"oauth2\"");
            } else if basic && lookup == Lookup::Availability && impersonation_set {
                self.warn(line, "exchange.impersonation = true has no effect with lookup = \"availability\" and auth = \"basic\"; it applies to lookup = \"calendar\"");
            }
        }

        // URLs that carry credentials in clear text to another host.
        if let (true, Some((text, u))) = (ews, &url) {
            if !u.https && !u.loopback {
                let line = url_got.as_ref().map(|g| g.line).unwrap_or(0);
                let what = if basic {
                    "the Exchange password"
                } else if ntlm {
                    "NTLM authentication, without the channel binding of HTTPS,"
                } else {
                    "an OAuth2 access token"
                };
                self.warn(line, format_args!("exchange.url {} is plain http:// to another host: {what} crosses the network unencrypted; use https://", toml::quote(text)));
            }
        }
        if let (true, Some((text, u)), Some(g)) = (oauth, &token_url, &token_got) {
            if !u.https && !u.loopback {
                self.warn(g.line, format_args!("exchange.token_url {} is plain http:// to another host: the client secret crosses the network unencrypted; use https://", toml::quote(text)));
            }
        }
        if let (false, Some(g)) = (ews, &graph_got) {
            if !graph.1.https && !graph.1.loopback {
                self.warn(g.line, format_args!("exchange.graph_url {} is plain http:// to another host: an OAuth2 access token crosses the network unencrypted; use https://", toml::quote(&graph.0)));
            }
        }

        Ok(ExchangeConfig {
            backend,
            url: url.map(|(text, _)| text).unwrap_or_default(),
            auth,
            username: username.map(|g| g.value.to_string()).unwrap_or_default(),
            password,
            lookup,
            impersonation: impersonation_set || (ews && auth == EwsAuth::OAuth2),
            tenant_id: tenant.to_string(),
            client_id: client_id.map(|g| g.value.to_string()).unwrap_or_default(),
            client_secret,
            token_url: token_url.map(|(text, _)| text).unwrap_or_default(),
            graph_url: graph.0,
            ca_file,
            timeout: Duration::from_secs(timeout),
        })
    }

    fn starface(&mut self) -> Result<StarfaceConfig, ConfigError> {
        const T: &str = "starface";
        let url_got = self.string(T, "url")?;
        let (url, parsed) = match &url_got {
            Some(g) => self.url(T, "url", g, g.value, true)?,
            None => (
                DEFAULT_STARFACE_URL.to_string(),
                parse_url(DEFAULT_STARFACE_URL).unwrap_or_default(),
            ),
        };
        let login = match self.string(T, "login")? {
            None => None,
            Some(g) if g.value.trim().is_empty() || g.value.chars().any(char::is_control) => {
                return Err(self.invalid(
                    T,
                    "login",
                    g.line,
                    &Value::String(g.value.to_string()),
                    "use the login ID of a STARFACE admin user, e.g. \"0001\"",
                ))
            }
            Some(g) => Some(g.value.to_string()),
        };
        let login_type = self.choice(
            T,
            "login_type",
            LoginType::Internal,
            &[
                ("internal", LoginType::Internal),
                ("active-directory", LoginType::ActiveDirectory),
            ],
        )?;
        let group = self.non_empty(
            T,
            "group",
            DEFAULT_GROUP,
            "use the name of the STARFACE group whose members are handled",
        )?;
        let insecure_tls = self.bool(T, "insecure_tls", false)?;
        let login = match login {
            Some(login) => login,
            None => {
                return Err(self.missing(
                    "starface.login",
                    "it is required: the login ID of a STARFACE admin user, e.g. \"0001\"",
                ))
            }
        };
        let password = self.secret(T, "password", "it is required to log in to STARFACE")?;
        if let Some(g) = &url_got {
            if !parsed.https && !parsed.loopback {
                self.warn(g.line, format_args!("starface.url {} is plain http:// to another host: the STARFACE login and tokens cross the network unencrypted; use https:// or run on the PBX", toml::quote(&url)));
            }
        }
        if insecure_tls && !parsed.loopback {
            let line = self.entry(T, "insecure_tls").map(|e| e.line).unwrap_or(0);
            self.warn(line, format_args!("starface.insecure_tls = true for the non-loopback host {}: the PBX's certificate is not checked, so anyone on the path can read the login; give the PBX a certificate from a CA in the system's trust store, or run exchange-status-sync on the PBX and use https://127.0.0.1", parsed.host));
        }
        Ok(StarfaceConfig {
            url,
            login,
            password,
            login_type,
            group,
            insecure_tls,
        })
    }

    fn actions(&mut self) -> Result<Actions, ConfigError> {
        const T: &str = "actions";
        let d = Actions::default();
        Ok(Actions {
            free: self.action("free", d.free)?,
            tentative: self.action("tentative", d.tentative)?,
            busy: self.action("busy", d.busy)?,
            oof: self.action("oof", d.oof)?,
            working_elsewhere: self.action("working_elsewhere", d.working_elsewhere)?,
            forward_internal_calls: self.bool(
                T,
                "forward_internal_calls",
                d.forward_internal_calls,
            )?,
        })
    }

    /// An action by name, or by the original module's number (0 | 1 | 2) for admins moving over.
    fn action(&self, key: &str, default: Action) -> Result<Action, ConfigError> {
        const T: &str = "actions";
        let allowed = "use \"none\", \"dnd\" or \"forward\" (or the numbers 0, 1 or 2)";
        match self.entry(T, key) {
            None => Ok(default),
            Some(e) => match &e.value {
                Value::String(s) => match s.as_str() {
                    "none" => Ok(Action::None),
                    "dnd" => Ok(Action::Dnd),
                    "forward" => Ok(Action::Forward),
                    _ => Err(self.invalid(T, key, e.line, &e.value, allowed)),
                },
                Value::Integer(0) => Ok(Action::None),
                Value::Integer(1) => Ok(Action::Dnd),
                Value::Integer(2) => Ok(Action::Forward),
                Value::Integer(_) => Err(self.invalid(T, key, e.line, &e.value, allowed)),
                Value::Boolean(_) => Err(self.wrong_type(T, e, "\"none\", \"dnd\" or \"forward\"")),
            },
        }
    }

    fn chat(&mut self) -> Result<ChatConfig, ConfigError> {
        const T: &str = "chat";
        let d = ChatConfig::default();
        let private_text = match self.string(T, "private_text")? {
            Some(g) => g.value.to_string(),
            None => d.private_text,
        };
        let rpc_method = match self.string(T, "rpc_method")? {
            None => d.rpc_method,
            Some(g) => {
                // The XML-RPC specification's alphabet for method names.
                let ok = !g.value.is_empty()
                    && g.value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/'));
                if !ok {
                    return Err(self.invalid(
                        T,
                        "rpc_method",
                        g.line,
                        &Value::String(g.value.to_string()),
                        "use the XML-RPC method name of the module's entry point (letters, digits, _ . : /), e.g. \"ExchangeStatusSync.setChatPresence\"",
                    ));
                }
                g.value.to_string()
            }
        };
        Ok(ChatConfig {
            set_presence: self.bool(T, "set_presence", d.set_presence)?,
            subject_as_text: self.bool(T, "subject_as_text", d.subject_as_text)?,
            join_parallel_subjects: self.bool(
                T,
                "join_parallel_subjects",
                d.join_parallel_subjects,
            )?,
            private_text,
            rpc_method,
        })
    }

    fn sync(&mut self) -> Result<SyncConfig, ConfigError> {
        const T: &str = "sync";
        let poll = self.number(T, "poll_interval_secs", 120, 1, 86_400, "seconds")?;
        let lookahead = self.number(T, "lookahead_hours", 2, 1, 8_784, "hours")?;
        let refresh = self.number(T, "directory_refresh_secs", 600, 1, 604_800, "seconds")?;
        let state_dir = self.non_empty(
            T,
            "state_dir",
            DEFAULT_STATE_DIR,
            "use the directory that holds state.json, e.g. \"/var/lib/exchange-status-sync\"",
        )?;
        Ok(SyncConfig {
            poll_interval: Duration::from_secs(poll),
            lookahead: Duration::from_secs(lookahead * 3600),
            directory_refresh: Duration::from_secs(refresh),
            state_dir: self.resolve(&state_dir),
        })
    }

    fn log(&mut self) -> Result<LogConfig, ConfigError> {
        const T: &str = "log";
        use log::LevelFilter;
        let level = self.choice(
            T,
            "level",
            LevelFilter::Info,
            &[
                ("error", LevelFilter::Error),
                ("warn", LevelFilter::Warn),
                ("info", LevelFilter::Info),
                ("debug", LevelFilter::Debug),
                ("trace", LevelFilter::Trace),
            ],
        )?;
        let file = self
            .optional_string(T, "file")?
            .map(|g| self.resolve(g.value));
        Ok(LogConfig { level, file })
    }
}

/// `a`, `a or b`, `a, b or c` (with `last` = "or").
fn join_list(items: &[String], last_word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {last_word} {last}", init.join(", ")),
    }
}

fn example_url(table: &str, key: &str) -> &'static str {
    match (table, key) {
        ("exchange", "url") => "https://mail.example.com/EWS/Exchange.asmx",
        ("exchange", "token_url") => DEFAULT_TOKEN_URL,
        ("exchange", "graph_url") => DEFAULT_GRAPH_URL,
        _ => DEFAULT_STARFACE_URL,
    }
}

/// The permission bits of `file` when group or others have any access to it (Unix only).
fn group_or_other_bits(file: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(file).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        None
    }
}
