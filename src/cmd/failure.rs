//! Why a command did not succeed, and the one place that maps it to an exit code.

use std::fmt;
use std::io;

use crate::exchange::SourceError;
use crate::starface::StarfaceError;
use crate::state::StateError;

/// Why a command did not succeed. The errors keep their type up to here; `exit_code` and
/// `Display` are the one place that turns them into an exit code and a line.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments: exit 2.
    Usage(String),
    /// The configuration is wrong: exit 2.
    Config(String),
    /// STARFACE failed (login, the directory, the numbers): exit 1.
    Starface(StarfaceError),
    /// The calendar read failed as a whole: exit 1.
    Exchange(SourceError),
    /// The state file could not be read or written: exit 1.
    State(StateError),
    /// Some users could not be handled; each was logged already: exit 1.
    Users { failed: usize },
    /// `check` found problems (each printed already): exit 1.
    Check(Vec<String>),
    /// `status`: the last poll is too old or failed (or there is none): exit 1, for monitoring.
    Unhealthy(String),
    /// The daemon could not install its signal handlers: exit 1.
    Signals(io::Error),
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) | Failure::Config(_) => 2,
            Failure::Starface(_)
            | Failure::Exchange(_)
            | Failure::State(_)
            | Failure::Users { .. }
            | Failure::Check(_)
            | Failure::Unhealthy(_)
            | Failure::Signals(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "{m} (see --help)"),
            Failure::Config(m) => f.write_str(m),
            Failure::Starface(e) => write!(f, "{e}"),
            Failure::Exchange(e) => write!(f, "Exchange: {e}"),
            Failure::State(e) => write!(f, "{e}"),
            Failure::Users { failed } => write!(
                f,
                "{failed} user(s) could not be handled; see the errors above"
            ),
            Failure::Check(problems) => write!(f, "check failed: {}", problems.join("; ")),
            Failure::Unhealthy(why) => write!(f, "status: {why}"),
            Failure::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
        }
    }
}

impl From<StarfaceError> for Failure {
    fn from(e: StarfaceError) -> Failure {
        Failure::Starface(e)
    }
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Failure {
        Failure::State(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Failure::Usage("x".into()).exit_code(), 2);
        assert_eq!(Failure::Config("x".into()).exit_code(), 2);
        assert_eq!(Failure::Users { failed: 2 }.exit_code(), 1);
        assert_eq!(Failure::Check(vec!["a".into(), "b".into()]).exit_code(), 1);
        let unhealthy = Failure::Unhealthy("no poll has been recorded yet".into());
        assert_eq!(unhealthy.exit_code(), 1);
        assert_eq!(
            unhealthy.to_string(),
            "status: no poll has been recorded yet"
        );
        assert_eq!(
            Failure::Users { failed: 2 }.to_string(),
            "2 user(s) could not be handled; see the errors above"
        );
        assert_eq!(
            Failure::Check(vec!["a".into(), "b".into()]).to_string(),
            "check failed: a; b"
        );
        assert_eq!(Failure::Usage("bad".into()).to_string(), "bad (see --help)");
    }
}
