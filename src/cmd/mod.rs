//! The commands: `run` (the daemon), `once`, `check` and `status`, and what they share. `cli` parses the
//! arguments; this module runs the command and maps its outcome to an exit code, in one place.
//!
//! The arrows run one way: commands → core (`sync`, `rules`, `reconcile`, `state`) → edges
//! (`exchange`, `starface`, `http`) → model and time. Nothing below imports a command.

mod calendars;
mod check;
mod failure;
mod once;
mod report;
mod run;
mod setup;
mod status;

pub use failure::Failure;

use crate::cli::{self, Command, USAGE};

fn version() -> String {
    format!(
        "exchange-status-sync {} (revision {})",
        env!("CARGO_PKG_VERSION"),
        env!("ESS_GIT_REVISION")
    )
}

fn run(args: &[String]) -> Result<(), Failure> {
    let args = cli::parse_args(args).map_err(Failure::Usage)?;
    match args.command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Version => {
            println!("{}", version());
            Ok(())
        }
        Command::Once { dry_run, at, users } => {
            once::run(&setup::load_config(&args.config)?, dry_run, at, &users)
        }
        Command::Check { users } => check::run(&setup::load_config(&args.config)?, &users),
        Command::Status => status::run(&setup::load_config_for_status(&args.config)?),
        Command::Run => run::run(&args.config, setup::load_config(&args.config)?),
    }
}

/// The program: runs the command and returns the exit code.
pub fn main(args: &[String]) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(failure) => {
            match &failure {
                // Before logging is set up (or about it): straight to stderr.
                Failure::Usage(_) | Failure::Config(_) => {
                    eprintln!("exchange-status-sync: {failure}")
                }
                _ => log::error!("{failure}"),
            }
            failure.exit_code()
        }
    }
}
