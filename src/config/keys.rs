//! The table of keys: every key of the configuration is named once, here or in its section's
//! file, as a [`Key`]; the readers take a `Key`, and the unknown-key check and the messages
//! that list a table's keys are built from the same table.

use super::toml;
use super::{actions, chat, exchange, logs, starface, sync};

/// How a key is written in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// One key.
    Plain,
    /// A secret: `name`, `name_file` or `name_env`, exactly one of them.
    Secret,
}

/// The value that counts as "not set" for the unused-key warning besides "": the default the
/// example file spells out, so that switching the backend there does not bring a warning for
/// every line left as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    Nothing,
    Text(&'static str),
    Flag(bool),
}

/// One key of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub table: &'static str,
    pub name: &'static str,
    pub form: Form,
    pub shown: Shown,
}

impl Key {
    pub const fn plain(table: &'static str, name: &'static str) -> Key {
        Key {
            table,
            name,
            form: Form::Plain,
            shown: Shown::Nothing,
        }
    }

    pub const fn secret(table: &'static str, name: &'static str) -> Key {
        Key {
            table,
            name,
            form: Form::Secret,
            shown: Shown::Nothing,
        }
    }

    /// The same key with the value the example file shows for it.
    pub const fn shown(self, shown: Shown) -> Key {
        Key { shown, ..self }
    }

    /// `table.name`, as messages write it.
    pub fn path(&self) -> String {
        format!("{}.{}", self.table, self.name)
    }
}

/// The tables and their keys, in the order of the example file.
pub const TABLES: &[(&str, &[Key])] = &[
    (exchange::TABLE, exchange::KEYS),
    (starface::TABLE, starface::KEYS),
    (actions::TABLE, actions::KEYS),
    (chat::TABLE, chat::KEYS),
    (sync::TABLE, sync::KEYS),
    (logs::TABLE, logs::KEYS),
];

/// The names a table takes as they may appear in the file (a secret's three forms included).
pub fn known_keys(table: &str) -> Vec<String> {
    let keys = TABLES
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, keys)| *keys)
        .unwrap_or(&[]);
    let mut names = Vec::new();
    for k in keys {
        names.push(k.name.to_string());
        if k.form == Form::Secret {
            names.push(format!("{}_file", k.name));
            names.push(format!("{}_env", k.name));
        }
    }
    names
}

/// Every secret key, for the warning about secrets held inline.
pub fn secrets() -> impl Iterator<Item = &'static Key> {
    TABLES
        .iter()
        .flat_map(|(_, keys)| keys.iter())
        .filter(|k| k.form == Form::Secret)
}

/// `[exchange], [starface], …`: the tables a key may belong to, for messages.
pub fn table_list() -> String {
    TABLES
        .iter()
        .map(|(t, _)| format!("[{t}]"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A key as TOML would need it written: bare when it can be, else quoted, so that odd
/// characters in a quoted key cannot garble the message.
pub fn key_name(key: &str) -> String {
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
