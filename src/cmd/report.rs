//! A pass's report turned into log lines (or, in a dry run, into planned changes on stdout).

use crate::model::Timestamp;
use crate::sync::{Report, Reported, Topic};

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
        let line = f.to_string();
        if reported.first(Topic::User(f.email.clone()), &line) {
            log::error!("{line}");
        }
    }
    report.failures.len()
}
