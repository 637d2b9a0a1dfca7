//! Why a command did not succeed, and the one place that maps it to an exit code.

use std::fmt;

/// Why a command did not succeed; each maps to one exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Bad arguments: exit 2.
    Usage(String),
    /// The configuration is wrong: exit 2.
    Config(String),
    /// Exchange or STARFACE failed, or some user could not be handled: exit 1. The details
    /// were logged already; this is the summary.
    Runtime(String),
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) | Failure::Config(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "{m} (see --help)"),
            Failure::Config(m) | Failure::Runtime(m) => f.write_str(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Failure::Usage("x".into()).exit_code(), 2);
        assert_eq!(Failure::Config("x".into()).exit_code(), 2);
        assert_eq!(Failure::Runtime("x".into()).exit_code(), 1);
        assert_eq!(Failure::Usage("bad".into()).to_string(), "bad (see --help)");
    }
}
