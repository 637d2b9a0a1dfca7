//! Reading calendars, as `once`, `check` and the daemon share it: the directory as sync
//! members, the window, and the calendars read into a map.

use std::collections::HashMap;

use super::Failure;
use crate::config::Config;
use crate::exchange::{BoundedWait, CalendarSource, SourceError, Throttle};
use crate::explain;
use crate::model::{Timestamp, Window};
use crate::starface::Directory;
use crate::sync::{Calendar, Member};
use crate::time::format_rfc3339;

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

/// The members `--user` names (all when it names none). An address that is not a member is a
/// usage error naming it.
pub fn selected(members: &[Member], users: &[String], group: &str) -> Result<Vec<Member>, Failure> {
    if users.is_empty() {
        return Ok(members.to_vec());
    }
    let missing: Vec<&str> = users
        .iter()
        .filter(|u| !members.iter().any(|m| &m.email == *u))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(Failure::Usage(format!(
            "--user {}: not a member of the STARFACE group '{group}' (or without an e-mail address there)",
            missing.join(", ")
        )));
    }
    Ok(members
        .iter()
        .filter(|m| users.contains(&m.email))
        .cloned()
        .collect())
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
    why: &str,
) -> Result<HashMap<String, Calendar>, Failure> {
    let window = window(t, config.sync.lookahead.as_secs());
    log_read(members, window, why);
    read_calendars(source, members, window, &mut BoundedWait::for_once()).map_err(Failure::Exchange)
}

/// The debug line before a calendar read: whose calendars, for which window, and why.
pub fn log_read(members: &[Member], window: Window, why: &str) {
    if log::log_enabled!(log::Level::Debug) {
        let emails: Vec<&str> = members.iter().map(|m| m.email.as_str()).collect();
        log::debug!(
            "reading the calendars of {} user(s) from {} to {} ({why}): {}",
            members.len(),
            format_rfc3339(window.start),
            format_rfc3339(window.end),
            explain::names(&emails, 50)
        );
    }
}
