//! The configuration file (`docs/contract.md`, section 4): parsed, then validated into the typed
//! values below. Nothing outside this module sees TOML or raw strings where a type fits.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::ShowAs;

mod actions;
mod chat;
mod error;
mod exchange;
mod keys;
mod load;
mod logs;
mod reader;
mod starface;
mod sync;
pub mod toml;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, ErrorKind};
pub use load::{from_str, load, Loaded};

/// A secret (password, client secret). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (building the credential).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Ews,
    Graph,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EwsAuth {
    Basic,
    /// NTLMv2 on the connection: what Exchange on premises accepts as installed.
    Ntlm,
    OAuth2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// GetUserAvailability, up to 100 mailboxes a request.
    Availability,
    /// FindItem with a CalendarView, one request per mailbox.
    Calendar,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeConfig {
    pub backend: Backend,
    /// EWS endpoint (`backend = "ews"`).
    pub url: String,
    pub auth: EwsAuth,
    /// EWS Basic-auth user (`auth = "basic"`).
    pub username: String,
    /// EWS Basic-auth password; `Some` whenever `backend = "ews"` and `auth = "basic"`.
    pub password: Option<Secret>,
    pub lookup: Lookup,
    /// Impersonation for the calendar lookup; always true with `auth = "oauth2"`.
    pub impersonation: bool,
    pub tenant_id: String,
    pub client_id: String,
    /// `Some` whenever OAuth2 is used (Graph, or EWS with `auth = "oauth2"`).
    pub client_secret: Option<Secret>,
    /// With `{tenant_id}` already replaced.
    pub token_url: String,
    /// Without a trailing slash.
    pub graph_url: String,
    /// Extra PEM roots; `None`: the system roots.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginType {
    Internal,
    ActiveDirectory,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StarfaceConfig {
    /// Without a trailing slash; REST at `{url}/rest`, XML-RPC at `{url}/xml-rpc`.
    pub url: String,
    pub login: String,
    pub password: Secret,
    pub login_type: LoginType,
    pub group: String,
    pub insecure_tls: bool,
}

/// What an appointment type switches by default (seed: 0 | 1 | 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Dnd,
    Forward,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actions {
    pub free: Action,
    pub tentative: Action,
    pub busy: Action,
    pub oof: Action,
    pub working_elsewhere: Action,
    pub forward_internal_calls: bool,
}

impl Actions {
    pub fn for_show_as(&self, show_as: ShowAs) -> Action {
        match show_as {
            ShowAs::Free => self.free,
            ShowAs::Tentative => self.tentative,
            ShowAs::Busy => self.busy,
            ShowAs::Oof => self.oof,
            ShowAs::WorkingElsewhere => self.working_elsewhere,
        }
    }
}

impl Default for Actions {
    /// The defaults of `docs/contract.md`, section 4.4.
    fn default() -> Self {
        Actions {
            free: Action::None,
            tentative: Action::None,
            busy: Action::Dnd,
            oof: Action::Forward,
            working_elsewhere: Action::None,
            forward_internal_calls: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatConfig {
    pub set_presence: bool,
    pub subject_as_text: bool,
    pub join_parallel_subjects: bool,
    pub private_text: String,
    pub rpc_method: String,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            set_presence: false,
            subject_as_text: false,
            join_parallel_subjects: false,
            private_text: "Private appointment".to_string(),
            rpc_method: "ExchangeStatusSync.setChatPresence".to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncConfig {
    pub poll_interval: Duration,
    pub lookahead: Duration,
    pub directory_refresh: Duration,
    pub state_dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub level: log::LevelFilter,
    /// `None`: stderr.
    pub file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file this was read from, for messages.
    pub path: PathBuf,
    pub exchange: ExchangeConfig,
    pub starface: StarfaceConfig,
    pub actions: Actions,
    pub chat: ChatConfig,
    pub sync: SyncConfig,
    pub log: LogConfig,
}
