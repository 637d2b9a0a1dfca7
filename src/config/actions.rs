//! `[actions]`: what each free/busy status does on the phone.

use super::error::ConfigError;
use super::keys::Key;
use super::reader::Reader;
use super::toml::Value;
use super::{Action, Actions};

pub const TABLE: &str = "actions";

const FREE: Key = Key::plain(TABLE, "free");
const TENTATIVE: Key = Key::plain(TABLE, "tentative");
const BUSY: Key = Key::plain(TABLE, "busy");
const OOF: Key = Key::plain(TABLE, "oof");
const WORKING_ELSEWHERE: Key = Key::plain(TABLE, "working_elsewhere");
const FORWARD_INTERNAL_CALLS: Key = Key::plain(TABLE, "forward_internal_calls");

/// The keys of `[actions]`, in the order of the example file.
pub const KEYS: &[Key] = &[
    FREE,
    TENTATIVE,
    BUSY,
    OOF,
    WORKING_ELSEWHERE,
    FORWARD_INTERNAL_CALLS,
];

impl Reader<'_> {
    pub(super) fn actions(&mut self) -> Result<Actions, ConfigError> {
        let d = Actions::default();
        Ok(Actions {
            free: self.action(FREE, d.free)?,
            tentative: self.action(TENTATIVE, d.tentative)?,
            busy: self.action(BUSY, d.busy)?,
            oof: self.action(OOF, d.oof)?,
            working_elsewhere: self.action(WORKING_ELSEWHERE, d.working_elsewhere)?,
            forward_internal_calls: self.bool(FORWARD_INTERNAL_CALLS, d.forward_internal_calls)?,
        })
    }

    /// An action by name, or by the original module's number (0 | 1 | 2) for admins moving over.
    fn action(&self, key: Key, default: Action) -> Result<Action, ConfigError> {
        let allowed = "use \"none\", \"dnd\" or \"forward\" (or the numbers 0, 1 or 2)";
        match self.entry(key) {
            None => Ok(default),
            Some(e) => match &e.value {
                Value::String(s) => match s.as_str() {
                    "none" => Ok(Action::None),
                    "dnd" => Ok(Action::Dnd),
                    "forward" => Ok(Action::Forward),
                    _ => Err(self.invalid(key, e.line, &e.value, allowed)),
                },
                Value::Integer(0) => Ok(Action::None),
                Value::Integer(1) => Ok(Action::Dnd),
                Value::Integer(2) => Ok(Action::Forward),
                Value::Integer(_) => Err(self.invalid(key, e.line, &e.value, allowed)),
                Value::Boolean(_) => {
                    Err(self.wrong_type(key, e, "\"none\", \"dnd\" or \"forward\""))
                }
            },
        }
    }
}
