//! `once`: one pass at TIME (default now), then exit.

use super::calendars::{self, calendars_around};
use super::report::log_report;
use super::setup::{logout, Services};
use super::Failure;
use crate::config::Config;
use crate::http::Cutoff;
use crate::model::Timestamp;
use crate::pbx::StarfacePbx;
use crate::state;
use crate::sync::{self, Pass, Reported};
use crate::time::wall_clock;

pub fn run(config: &Config, dry_run: bool, at: Option<Timestamp>) -> Result<(), Failure> {
    let mut services = Services::new(config, &Cutoff::default()).map_err(Failure::Config)?;
    let result = pass(
        config,
        &mut services,
        at.unwrap_or_else(wall_clock),
        dry_run,
    );
    logout(&mut services.starface);
    result
}

fn pass(
    config: &Config,
    services: &mut Services,
    t: Timestamp,
    dry_run: bool,
) -> Result<(), Failure> {
    let starface = &mut services.starface;
    starface.login()?;
    let directory = starface.directory(&config.starface.group)?;
    for w in &directory.warnings {
        log::warn!("{w}");
    }
    let members = calendars::members(&directory);
    let calendars = calendars_around(config, services.source.as_mut(), &members, t)?;
    // A dry run writes nothing anywhere, not even to move a corrupt state file aside.
    let (mut state, corrupt) = if dry_run {
        state::load_readonly(&config.sync.state_dir)?
    } else {
        state::load(&config.sync.state_dir, wall_clock())?
    };
    if let Some(e) = corrupt {
        log::error!("{e}");
    }
    let mut reported = Reported::default();
    let report = {
        let mut pbx = StarfacePbx::new(starface);
        let pass = Pass {
            t,
            members: &members,
            calendars: &calendars,
            stale: false,
            dry_run,
            only: None,
            stop: None,
        };
        sync::run_pass(&mut pbx, &mut state, config, &pass, &mut reported)
    };
    let failed = log_report(&report, t, dry_run, &mut reported);
    if !dry_run {
        state::save(&config.sync.state_dir, &state)?;
    }
    if failed > 0 {
        return Err(Failure::Users { failed });
    }
    Ok(())
}
