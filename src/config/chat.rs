//! `[chat]`: the chat presence and status text.

use super::error::ConfigError;
use super::keys::Key;
use super::reader::Reader;
use super::ChatConfig;

pub const TABLE: &str = "chat";

const SET_PRESENCE: Key = Key::plain(TABLE, "set_presence");
const SUBJECT_AS_TEXT: Key = Key::plain(TABLE, "subject_as_text");
const JOIN_PARALLEL_SUBJECTS: Key = Key::plain(TABLE, "join_parallel_subjects");
const PRIVATE_TEXT: Key = Key::plain(TABLE, "private_text");
const RPC_METHOD: Key = Key::plain(TABLE, "rpc_method");

/// The keys of `[chat]`, in the order of the example file.
pub const KEYS: &[Key] = &[
    SET_PRESENCE,
    SUBJECT_AS_TEXT,
    JOIN_PARALLEL_SUBJECTS,
    PRIVATE_TEXT,
    RPC_METHOD,
];

impl Reader<'_> {
    pub(super) fn chat(&mut self) -> Result<ChatConfig, ConfigError> {
        let d = ChatConfig::default();
        let private_text = match self.string(PRIVATE_TEXT)? {
            Some(g) => g.value.to_string(),
            None => d.private_text,
        };
        let rpc_method = match self.string(RPC_METHOD)? {
            None => d.rpc_method,
            Some(g) => {
                // The XML-RPC specification's alphabet for method names.
                let ok = !g.value.is_empty()
                    && g.value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/'));
                if !ok {
                    return Err(self.invalid_text(
                        RPC_METHOD,
                        &g,
                        "use the XML-RPC method name of the module's entry point (letters, digits, _ . : /), e.g. \"ExchangeStatusSync.setChatPresence\"",
                    ));
                }
                g.value.to_string()
            }
        };
        Ok(ChatConfig {
            set_presence: self.bool(SET_PRESENCE, d.set_presence)?,
            subject_as_text: self.bool(SUBJECT_AS_TEXT, d.subject_as_text)?,
            join_parallel_subjects: self.bool(JOIN_PARALLEL_SUBJECTS, d.join_parallel_subjects)?,
            private_text,
            rpc_method,
        })
    }
}
