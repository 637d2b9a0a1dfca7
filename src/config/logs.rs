//! `[log]`: how much to log, and where.

use log::LevelFilter;

use super::error::ConfigError;
use super::keys::Key;
use super::reader::Reader;
use super::LogConfig;

pub const TABLE: &str = "log";

const LEVEL: Key = Key::plain(TABLE, "level");
const FILE: Key = Key::plain(TABLE, "file");

/// The keys of `[log]`, in the order of the example file.
pub const KEYS: &[Key] = &[LEVEL, FILE];

impl Reader<'_> {
    pub(super) fn log(&mut self) -> Result<LogConfig, ConfigError> {
        let level = self.choice(
            LEVEL,
            LevelFilter::Info,
            &[
                ("error", LevelFilter::Error),
                ("warn", LevelFilter::Warn),
                ("info", LevelFilter::Info),
                ("debug", LevelFilter::Debug),
                ("trace", LevelFilter::Trace),
            ],
        )?;
        let file = self.optional_string(FILE)?.map(|g| self.resolve(g.value));
        Ok(LogConfig { level, file })
    }
}
