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

use std::fs;
use std::path::Path;

use super::error::{ConfigError, ErrorKind};
use super::keys::{known_keys, TABLES};
use super::reader::Reader;
use super::toml;
use super::Config;

/// A valid configuration and the warnings to log about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

fn error(path: &Path, line: Option<usize>, key: Option<String>, kind: ErrorKind) -> ConfigError {
    ConfigError {
        path: path.to_path_buf(),
        line,
        key,
        kind,
    }
}

/// Reads and validates the configuration file at `path`, with secrets from the process
/// environment.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = fs::read(path).map_err(|err| error(path, None, None, ErrorKind::Io(err)))?;
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
        let msg = "the file is not UTF-8 text; save it as UTF-8".to_string();
        error(path, Some(line), None, ErrorKind::Syntax(msg))
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
    let doc =
        toml::parse(text).map_err(|e| error(path, Some(e.line), None, ErrorKind::Syntax(e.msg)))?;
    if let Some(entry) = doc.root.first() {
        let table = String::new();
        let kind = ErrorKind::UnknownKey { table };
        return Err(error(path, Some(entry.line), Some(entry.key.clone()), kind));
    }
    for table in &doc.tables {
        if !TABLES.iter().any(|(t, _)| *t == table.name) {
            let (line, name) = (Some(table.line), Some(table.name.clone()));
            return Err(error(path, line, name, ErrorKind::UnknownTable));
        }
        let keys = known_keys(&table.name);
        if let Some(entry) = table.entries.iter().find(|e| !keys.contains(&e.key)) {
            let kind = ErrorKind::UnknownKey {
                table: table.name.clone(),
            };
            return Err(error(path, Some(entry.line), Some(entry.key.clone()), kind));
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
