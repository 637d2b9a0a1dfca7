//! `once`: one pass at TIME (default now), then exit.

use std::collections::HashSet;

use super::calendars::{self, calendars_around};
use super::report::{log_report, poll_record};
use super::setup::{logout, Services};
use super::Failure;
use crate::config::Config;
use crate::http::Cutoff;
use crate::model::Timestamp;
use crate::pbx::StarfacePbx;
use crate::state::{self, PollRecord, UserId};
use crate::sync::{self, Pass, Reported};
use crate::time::wall_clock;

/// `users`: `--user`, lower case; empty: every member.
pub fn run(
    config: &Config,
    dry_run: bool,
    at: Option<Timestamp>,
    users: &[String],
) -> Result<(), Failure> {
    let mut services = Services::new(config, &Cutoff::default()).map_err(Failure::Config)?;
    let t = at.unwrap_or_else(wall_clock);
    let mut poll_saved = false;
    let result = pass(config, &mut services, t, dry_run, users, &mut poll_saved);
    logout(&mut services.starface);
    let failed_before_pass = match &result {
        Err(f) => f.exit_code() == 1 && !poll_saved && !dry_run,
        Ok(()) => false,
    };
    if let (true, Err(f)) = (failed_before_pass, &result) {
        // Failed before its pass (a usage error is no poll): `status` still learns why.
        let poll = PollRecord {
            at: t,
            error: Some(f.to_string()),
            users_read: 0,
            users_failed: 0,
        };
        match state::save_poll(&config.sync.state_dir, poll, wall_clock()) {
            Ok(Some(corrupt)) => log::error!("{corrupt}"),
            Ok(None) => {}
            Err(e) => log::error!("{e}"),
        }
    }
    result
}

fn pass(
    config: &Config,
    services: &mut Services,
    t: Timestamp,
    dry_run: bool,
    users: &[String],
    poll_saved: &mut bool,
) -> Result<(), Failure> {
    let starface = &mut services.starface;
    starface.login()?;
    let directory = starface.directory(&config.starface.group)?;
    for w in &directory.warnings {
        log::warn!("{w}");
    }
    let members = calendars::members(&directory);
    let chosen = calendars::selected(&members, users, &config.starface.group)?;
    // With --user the others are not looked at at all: their calendars are not read, and the
    // pass leaves them (and their records) exactly as they are, not as users who left.
    let only: Option<HashSet<UserId>> =
        (!users.is_empty()).then(|| chosen.iter().map(|m| m.id).collect());
    let why = if users.is_empty() {
        format!("every member of the group '{}'", config.starface.group)
    } else {
        format!(
            "the members named with --user; {} other(s) left alone",
            members.len() - chosen.len()
        )
    };
    // The state is read before the calendars, so that the parsed file is gone before the
    // calendars take their memory. A dry run writes nothing anywhere, not even to move a
    // corrupt state file aside.
    let (mut state, corrupt) = if dry_run {
        state::load_readonly(&config.sync.state_dir)?
    } else {
        state::load(&config.sync.state_dir, wall_clock())?
    };
    if let Some(e) = corrupt {
        log::error!("{e}");
    }
    let calendars = calendars_around(config, services.source.as_mut(), &chosen, t, &why)?;
    let mut reported = Reported::default();
    let report = {
        let mut pbx = StarfacePbx::new(starface, None);
        let pass = Pass {
            t,
            members: &members,
            calendars: &calendars,
            stale: false,
            dry_run,
            only: only.as_ref(),
            stop: None,
        };
        sync::run_pass(&mut pbx, &mut state, config, &pass, &mut reported)
    };
    let failed = log_report(&report, t, dry_run, &mut reported);
    if !dry_run {
        state.poll = Some(poll_record(t, &calendars, &report.failures));
        // The calendars are done with: freed before the state's text is built, so that the two
        // are never in memory at once.
        drop(calendars);
        state::save(&config.sync.state_dir, &state)?;
        *poll_saved = true;
    }
    if failed > 0 {
        return Err(Failure::Users { failed });
    }
    Ok(())
}
