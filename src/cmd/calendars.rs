//! Reading calendars, as `once`, `check` and the daemon share it: the directory as sync
//! members, the window, and the calendars read into a map.

use std::collections::HashMap;

use super::Failure;
use crate::config::Config;
use crate::exchange::{BoundedWait, CalendarSource, SourceError, Throttle};
use crate::model::{Timestamp, Window};
use crate::starface::Directory;
use crate::sync::{Calendar, Member};

/// The calendar window of `docs/contract.md`, section 5.12: [t − 1 h, t + lookahead].
pub fn window(t: Timestamp, lookahead_secs: u64) -> Window {
    Window {
        start: t - 3600,
        end: t + lookahead_secs as i64,
    }
}

/// The directory's users as members of a pass.
pub fn members(directory: &Directory) -> Vec<Member> {
    directory
        .users
        .iter()
        .map(|u| Member {
            id: u.id,
            email: u.email.clone(),
        })
        .collect()
}

/// Reads every member's calendar; per-mailbox problems become that member's entry.
pub fn read_calendars(
    source: &mut dyn CalendarSource,
    members: &[Member],
    window: Window,
    throttle: &mut dyn Throttle,
) -> Result<HashMap<String, Calendar>, SourceError> {
    let emails: Vec<String> = members.iter().map(|m| m.email.clone()).collect();
    let results = source.fetch(&emails, window, throttle)?;
    Ok(emails
        .into_iter()
        .zip(results)
        .map(|(email, r)| (email, r.map_err(|e| e.to_string())))
        .collect())
}

/// The members' calendars around `t`, under the throttling rule of the one-shot commands.
pub fn calendars_around(
    config: &Config,
    source: &mut dyn CalendarSource,
    members: &[Member],
    t: Timestamp,
) -> Result<HashMap<String, Calendar>, Failure> {
    let window = window(t, config.sync.lookahead.as_secs());
    read_calendars(source, members, window, &mut BoundedWait::for_once()).map_err(Failure::Exchange)
}
