//! A pass's report turned into log lines (or, in a dry run, into planned changes on stdout).

use std::collections::HashMap;

use crate::model::Timestamp;
use crate::state::PollRecord;
use crate::sync::{Calendar, Report, Reported, Topic, UserFailure};

/// Logs what a pass did (or, with `dry_run`, prints the planned changes on stdout), each
/// problem once. Returns the number of users that could not be handled.
pub fn log_report(
    report: &Report,
    now: Timestamp,
    dry_run: bool,
    reported: &mut Reported,
) -> usize {
    for line in &report.debug {
        log::debug!("{line}");
    }
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
        let line = f.to_string();
        if reported.first(Topic::User(f.email.clone()), &line) {
            log::error!("{line}");
        }
    }
    report.failures.len()
}

/// The poll record of a pass: ok, or the first failure and how many there were.
pub fn poll_record(
    t: Timestamp,
    calendars: &HashMap<String, Calendar>,
    failures: &[UserFailure],
) -> PollRecord {
    let error = failures.first().map(|first| match failures.len() {
        1 => format!("1 user could not be handled: {first}"),
        n => format!("{n} users could not be handled, the first: {first}"),
    });
    PollRecord {
        at: t,
        error,
        users_read: calendars.values().filter(|c| c.is_ok()).count(),
        users_failed: failures.len(),
    }
}
