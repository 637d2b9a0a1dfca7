//! The typed getters over the parsed TOML document: each takes a [`Key`] and returns the typed
//! value or a [`ConfigError`] naming the file, line and key. Secrets are read here, from the
//! one form (`key`, `key_file`, `key_env`) the file gives.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::{join_list, ConfigError, ErrorKind};
use super::keys::{self, Key, Shown};
use super::toml::{self, Entry, Value};
use super::Secret;
use crate::http::url::{parse as parse_url, Url};

/// A value read from the file with its line.
pub(super) struct Got<T> {
    pub value: T,
    pub line: usize,
}

pub(super) struct Reader<'a> {
    pub path: &'a Path,
    pub doc: &'a toml::Document,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    fn error(&self, line: Option<usize>, key: Option<String>, kind: ErrorKind) -> ConfigError {
        ConfigError {
            path: self.path.to_path_buf(),
            line,
            key,
            kind,
        }
    }

    fn entry_named(&self, table: &str, name: &str) -> Option<&'a Entry> {
        self.doc.table(table).and_then(|t| t.get(name))
    }

    pub fn entry(&self, k: Key) -> Option<&'a Entry> {
        self.entry_named(k.table, k.name)
    }

    pub fn wrong_type(&self, k: Key, e: &Entry, expected: &'static str) -> ConfigError {
        self.error(
            Some(e.line),
            Some(format!("{}.{}", k.table, e.key)),
            ErrorKind::WrongType {
                expected,
                found: e.value.kind(),
            },
        )
    }

    pub fn invalid(
        &self,
        k: Key,
        line: usize,
        value: &Value,
        allowed: impl Into<String>,
    ) -> ConfigError {
        self.error(
            Some(line),
            Some(k.path()),
            ErrorKind::Invalid {
                value: value.to_string(),
                allowed: allowed.into(),
            },
        )
    }

    /// `invalid` for a string value.
    pub fn invalid_text(&self, k: Key, got: &Got<&str>, allowed: &str) -> ConfigError {
        self.invalid(k, got.line, &Value::String(got.value.to_string()), allowed)
    }

    /// A file named by `k` (not a secret) that cannot be used.
    pub fn bad_file(&self, k: Key, line: usize, file: PathBuf, problem: String) -> ConfigError {
        self.error(
            Some(line),
            Some(k.path()),
            ErrorKind::File { file, problem },
        )
    }

    pub fn warn(&mut self, line: usize, msg: impl fmt::Display) {
        self.warnings
            .push(format!("{}:{line}: {msg}", self.path.display()));
    }

    fn string_named(&self, k: Key, name: &str) -> Result<Option<Got<&'a str>>, ConfigError> {
        match self.entry_named(k.table, name) {
            None => Ok(None),
            Some(e) => match &e.value {
                Value::String(s) => Ok(Some(Got {
                    value: s.as_str(),
                    line: e.line,
                })),
                _ => Err(self.wrong_type(k, e, "a string in quotes")),
            },
        }
    }

    pub fn string(&self, k: Key) -> Result<Option<Got<&'a str>>, ConfigError> {
        self.string_named(k, k.name)
    }

    /// A string for which "" means not set.
    pub fn optional_string(&self, k: Key) -> Result<Option<Got<&'a str>>, ConfigError> {
        Ok(self.string(k)?.filter(|g| !g.value.is_empty()))
    }

    pub fn bool(&self, k: Key, default: bool) -> Result<bool, ConfigError> {
        match self.entry(k) {
            None => Ok(default),
            Some(e) => match e.value {
                Value::Boolean(b) => Ok(b),
                _ => Err(self.wrong_type(k, e, "true or false (without quotes)")),
            },
        }
    }

    /// A whole number in `min..=max`, `unit` naming what it counts ("seconds").
    pub fn number(
        &self,
        k: Key,
        default: u64,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        match self.entry(k) {
            None => Ok(default),
            Some(e) => match e.value {
                Value::Integer(i) => u64::try_from(i)
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| {
                        self.invalid(
                            k,
                            e.line,
                            &e.value,
                            format!("use a whole number of {unit} from {min} to {max}"),
                        )
                    }),
                _ => Err(self.wrong_type(k, e, "a whole number (without quotes)")),
            },
        }
    }

    /// One of the names in `options`.
    pub fn choice<T: Copy>(
        &self,
        k: Key,
        default: T,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        match self.string(k)? {
            None => Ok(default),
            Some(g) => options
                .iter()
                .find(|(name, _)| *name == g.value)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let names: Vec<String> = options.iter().map(|(n, _)| toml::quote(n)).collect();
                    self.invalid_text(k, &g, &format!("use {}", join_list(&names, "or")))
                }),
        }
    }

    /// A string that must not be empty; `hint` says what to put there.
    pub fn non_empty(&self, k: Key, default: &str, hint: &str) -> Result<String, ConfigError> {
        match self.string(k)? {
            None => Ok(default.to_string()),
            Some(g) if g.value.trim().is_empty() => Err(self.invalid_text(k, &g, hint)),
            Some(g) => Ok(g.value.to_string()),
        }
    }

    /// An http(s) URL; returns it with trailing slashes removed when `strip_slash`. `shown` is
    /// the text as written (before placeholders were filled in); `example` a URL that works.
    pub fn url(
        &self,
        k: Key,
        got: &Got<&str>,
        shown: &str,
        strip_slash: bool,
        example: &str,
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
                k,
                got.line,
                // A URL with a password in it (the very mistake being reported) must not echo
                // the password: show it without user-info and query.
                &Value::String(crate::http::redact_url(shown)),
                format!("{problem} (e.g. {})", toml::quote(example)),
            )),
        }
    }

    pub fn missing(&self, k: Key, why: impl Into<String>) -> ConfigError {
        self.error(None, Some(k.path()), ErrorKind::Missing { why: why.into() })
    }

    /// A path relative to the configuration file's directory.
    pub fn resolve(&self, file: &str) -> PathBuf {
        let file = Path::new(file);
        if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new("")).join(file)
        }
    }

    /// Warns about `k` when it is set though `why` it is not used. "" and the value the example
    /// file shows count as not set.
    pub fn warn_unused(&mut self, k: Key, why: &str) {
        let names: Vec<String> = match k.form {
            keys::Form::Plain => vec![k.name.to_string()],
            keys::Form::Secret => vec![
                k.name.to_string(),
                format!("{}_file", k.name),
                format!("{}_env", k.name),
            ],
        };
        let shown = match k.shown {
            Shown::Nothing => Value::String(String::new()),
            Shown::Text(t) => Value::String(t.to_string()),
            Shown::Flag(b) => Value::Boolean(b),
        };
        for name in names {
            let set = self
                .entry_named(k.table, &name)
                .filter(|e| e.value != shown && e.value != Value::String(String::new()));
            if let Some(e) = set {
                let line = e.line;
                self.warn(
                    line,
                    format_args!("{}.{name} is not used {why}; it is ignored", k.table),
                );
            }
        }
    }

    /// Which form of the secret `k` is given (0: `key`, 1: `key_file`, 2: `key_env`), after
    /// checking that at most one is. Reads nothing, so it also serves unused secrets.
    pub fn secret_form(&self, k: Key) -> Result<Option<(usize, Got<&'a str>)>, ConfigError> {
        let forms = [
            k.name.to_string(),
            format!("{}_file", k.name),
            format!("{}_env", k.name),
        ];
        let mut given: Vec<(usize, Got<&'a str>)> = Vec::new();
        for (i, form) in forms.iter().enumerate() {
            if let Some(g) = self.string_named(k, form)?.filter(|g| !g.value.is_empty()) {
                given.push((i, g));
            }
        }
        if given.len() > 1 {
            let line = given.iter().map(|(_, g)| g.line).max().unwrap_or(0);
            let keys = given
                .iter()
                .filter_map(|(i, _)| forms.get(*i))
                .map(|f| format!("{}.{f}", k.table))
                .collect();
            return Err(self.error(Some(line), None, ErrorKind::SecretTwice { keys }));
        }
        Ok(given.pop())
    }

    /// The secret `k`, which the configuration needs (`why` says for what), from exactly one
    /// of `key`, `key_file`, `key_env`.
    pub fn secret(&mut self, k: Key, why: &str) -> Result<Secret, ConfigError> {
        let Some((form, got)) = self.secret_form(k)? else {
            return Err(self.error(
                None,
                Some(k.path()),
                ErrorKind::MissingSecret {
                    why: why.to_string(),
                },
            ));
        };
        let suffix = ["", "_file", "_env"].get(form).copied().unwrap_or("");
        let form_key = Some(format!("{}{suffix}", k.path()));
        let line = Some(got.line);
        let value = match form {
            0 => got.value.to_string(),
            1 => {
                let file = self.resolve(got.value);
                let read_err = |problem: String| {
                    self.error(
                        line,
                        form_key.clone(),
                        ErrorKind::SecretFile {
                            file: file.clone(),
                            problem,
                        },
                    )
                };
                let bytes = fs::read(&file).map_err(|e| read_err(e.to_string()))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| read_err("it is not UTF-8 text".to_string()))?;
                if let Some(mode) = group_or_other_bits(&file) {
                    self.warn(
                        got.line,
                        format_args!(
                            "{}: the secret file {} can be read by group or others \
                             (mode {mode:03o}); run chmod 600 on it",
                            form_key.as_deref().unwrap_or(""),
                            file.display()
                        ),
                    );
                }
                let stripped = text
                    .strip_suffix("\r\n")
                    .or_else(|| text.strip_suffix('\n'))
                    .unwrap_or(&text);
                if stripped.is_empty() {
                    let source = format!("the secret file {}", file.display());
                    return Err(self.error(line, form_key, ErrorKind::SecretEmpty { source }));
                }
                stripped.to_string()
            }
            _ => match (self.env)(got.value) {
                None => {
                    let var = got.value.to_string();
                    return Err(self.error(line, form_key, ErrorKind::SecretEnv { var }));
                }
                Some(v) if v.is_empty() => {
                    let source = format!("the environment variable {}", got.value);
                    return Err(self.error(line, form_key, ErrorKind::SecretEmpty { source }));
                }
                Some(v) => v,
            },
        };
        Ok(Secret::new(value))
    }

    /// One warning when the file holds a secret inline and others than its owner may read it.
    pub fn inline_secret_warning(&mut self) {
        let inline: Vec<String> = keys::secrets()
            .filter(
                |k| matches!(self.entry(**k), Some(e) if e.value != Value::String(String::new())),
            )
            .map(|k| k.path())
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
