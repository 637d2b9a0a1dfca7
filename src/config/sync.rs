//! `[sync]`: how often to poll, how far ahead to read, and where the state lives.

use std::time::Duration;

use super::error::ConfigError;
use super::keys::Key;
use super::reader::Reader;
use super::SyncConfig;

pub const TABLE: &str = "sync";

pub const DEFAULT_STATE_DIR: &str = "/var/lib/exchange-status-sync";

const POLL_INTERVAL_SECS: Key = Key::plain(TABLE, "poll_interval_secs");
const LOOKAHEAD_HOURS: Key = Key::plain(TABLE, "lookahead_hours");
const DIRECTORY_REFRESH_SECS: Key = Key::plain(TABLE, "directory_refresh_secs");
const STATE_DIR: Key = Key::plain(TABLE, "state_dir");

/// The keys of `[sync]`, in the order of the example file.
pub const KEYS: &[Key] = &[
    POLL_INTERVAL_SECS,
    LOOKAHEAD_HOURS,
    DIRECTORY_REFRESH_SECS,
    STATE_DIR,
];

impl Reader<'_> {
    pub(super) fn sync(&mut self) -> Result<SyncConfig, ConfigError> {
        let poll = self.number(POLL_INTERVAL_SECS, 120, 1, 86_400, "seconds")?;
        let lookahead = self.number(LOOKAHEAD_HOURS, 2, 1, 8_784, "hours")?;
        let refresh = self.number(DIRECTORY_REFRESH_SECS, 600, 1, 604_800, "seconds")?;
        let state_dir = self.non_empty(
            STATE_DIR,
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
}
