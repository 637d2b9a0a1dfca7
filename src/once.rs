//! `once`: one pass at TIME (default now), then exit.

use std::collections::HashMap;

use crate::app::Services;
use crate::cli::Failure;
use crate::config::Config;
use crate::cycle;
use crate::exchange::{BoundedWait, CalendarSource};
use crate::http::Cutoff;
use crate::model::Timestamp;
use crate::pbx::StarfacePbx;
use crate::starface::Starface;
use crate::state;

use crate::sync::{self, Calendar, Member, Pass, Reported};

pub fn run(config: &Config, dry_run: bool, at: Option<Timestamp>) -> Result<(), Failure> {
    let mut services = Services::new(config, &Cutoff::default()).map_err(Failure::Config)?;
    let result = pass(
        config,
        &mut services,
        at.unwrap_or_else(cycle::wall_clock),
        dry_run,
    );
    logout(&mut services.starface);
    result
}

/// Logs out, if logged in; a failure only warns (the token expires by itself).
pub fn logout(starface: &mut Starface) {
    if let Err(e) = starface.logout() {
        log::warn!("logging out of STARFACE: {e}");
    }
}

/// The members' calendars around `t`, under the throttling rule of the one-shot commands.
pub fn calendars_around(
    config: &Config,
    source: &mut dyn CalendarSource,
    members: &[Member],
    t: Timestamp,
) -> Result<HashMap<String, Calendar>, Failure> {
    let window = cycle::window(t, config.sync.lookahead.as_secs());
    cycle::read_calendars(source, members, window, &mut BoundedWait::for_once())
        .map_err(|e| Failure::Runtime(format!("Exchange: {e}")))
}

fn pass(
    config: &Config,
    services: &mut Services,
    t: Timestamp,
    dry_run: bool,
) -> Result<(), Failure> {
    let starface = &mut services.starface;
    starface
        .login()
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let directory = starface
        .directory(&config.starface.group)
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    for w in &directory.warnings {
        log::warn!("{w}");
    }
    let members = cycle::members(&directory);
    let calendars = calendars_around(config, services.source.as_mut(), &members, t)?;
    // A dry run writes nothing anywhere, not even to move a corrupt state file aside.
    let (mut state, corrupt) = if dry_run {
        match state::load_readonly(&config.sync.state_dir) {
            Ok(r) => r,
            Err(e) => return Err(Failure::Runtime(e.to_string())),
        }
    } else {
        state::load(&config.sync.state_dir, cycle::wall_clock())
            .map_err(|e| Failure::Runtime(e.to_string()))?
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
    let failed = cycle::log_report(&report, t, dry_run, &mut reported);
    if !dry_run {
        state::save(&config.sync.state_dir, &state).map_err(|e| Failure::Runtime(e.to_string()))?;
    }
    if failed > 0 {
        return Err(Failure::Runtime(format!(
            "{failed} user(s) could not be handled; see the errors above"
        )));
    }
    Ok(())
}
