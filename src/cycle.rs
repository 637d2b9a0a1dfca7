//! Steps that `once`, `check` and the daemon share: the directory as sync members, calendars
//! read into a map, and a pass's report turned into log lines.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::exchange::{CalendarSource, SourceError, Throttle};
use crate::model::{Timestamp, Window};
use crate::starface::Directory;
use crate::sync::{Calendar, Member, Report, Reported};

/// The wall clock in UTC seconds.
pub fn wall_clock() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The calendar window of DESIGN.md section 5: [t − 1 h, t + lookahead].
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

/// Logs what a pass did (or, with `dry_run`, prints the planned changes on stdout), each
/// problem once. Returns the number of users that could not be handled.
pub fn log_report(
    report: &Report,
    now: Timestamp,
    dry_run: bool,
    reported: &mut Reported,
) -> usize {
    for c in &report.changes {
        if dry_run {
            println!("{}", c.dry_run_line());
        } else {
            log::info!("{}", c.log_line(now));
        }
    }
    for n in &report.notices {
        log::info!("{n}");
    }
    for w in &report.warnings {
        log::warn!("{w}");
    }
    for f in &report.failures {
        let key = f.split(':').next().unwrap_or("");
        if reported.first(&format!("failure:{key}"), f) {
            log::error!("{f}");
        }
    }
    report.failures.len()
}
