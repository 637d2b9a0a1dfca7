//! The command line (`docs/contract.md`, section 3): arguments → a command. Running the command and
//! mapping its failure to an exit code is `cmd`'s job.

use std::path::PathBuf;

use crate::model::Timestamp;
use crate::time;

pub const DEFAULT_CONFIG: &str = "/etc/exchange-status-sync/config.toml";

pub const USAGE: &str = "\
exchange-status-sync: makes a STARFACE PBX follow its users' Exchange calendars

usage:
  exchange-status-sync [run] [-c|--config PATH]       run as a daemon (default command)
  exchange-status-sync once  [-c PATH] [--dry-run] [--at TIME]
                                                      one pass now (or at TIME, RFC 3339), then exit
  exchange-status-sync check [-c PATH]                test both connections and every user
  exchange-status-sync --version | --help

The default configuration file is /etc/exchange-status-sync/config.toml.
Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run,
    Once {
        dry_run: bool,
        at: Option<Timestamp>,
    },
    Check,
    Version,
    Help,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    pub config: PathBuf,
}

/// Parses the arguments (without the program name).
pub fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut command: Option<&str> = None;
    let mut config: Option<PathBuf> = None;
    let mut dry_run = false;
    let mut at: Option<Timestamp> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag {
            "-h" | "--help" => {
                return Ok(Args {
                    command: Command::Help,
                    config: PathBuf::from(DEFAULT_CONFIG),
                })
            }
            "-V" | "--version" => {
                return Ok(Args {
                    command: Command::Version,
                    config: PathBuf::from(DEFAULT_CONFIG),
                })
            }
            "-c" | "--config" => {
                if config.is_some() {
                    return Err("--config given twice".into());
                }
                let v = value("--config")?;
                if v.is_empty() {
                    return Err("--config needs a path".into());
                }
                config = Some(PathBuf::from(v));
            }
            "--dry-run" if inline.is_none() => dry_run = true,
            "--at" => {
                let v = value("--at")?;
                at = Some(time::parse_rfc3339(&v).map_err(|e| format!("--at: {e}"))?);
            }
            "run" | "once" | "check" if command.is_none() && inline.is_none() => {
                command = Some(flag)
            }
            other if other.starts_with('-') => return Err(format!("unknown option '{other}'")),
            other => return Err(format!("unknown command '{other}'")),
        }
    }
    let command = match command.unwrap_or("run") {
        "once" => Command::Once { dry_run, at },
        name => {
            if dry_run || at.is_some() {
                return Err(format!("--dry-run and --at belong to 'once', not '{name}'"));
            }
            if name == "check" {
                Command::Check
            } else {
                Command::Run
            }
        }
    };
    Ok(Args {
        command,
        config: config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &str, expect: Result<(Command, &str), &str>) {
        let argv: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        let got = parse_args(&argv);
        match (got, expect) {
            (Ok(a), Ok((cmd, path))) => {
                assert_eq!((a.command, a.config), (cmd, PathBuf::from(path)), "{args}")
            }
            (Err(e), Err(part)) => assert!(e.contains(part), "{args}: {e}"),
            (got, want) => panic!("{args}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn arguments() {
        let d = DEFAULT_CONFIG;
        let once = |dry_run, at| Command::Once { dry_run, at };
        check("", Ok((Command::Run, d)));
        check("run", Ok((Command::Run, d)));
        check("run -c /x.toml", Ok((Command::Run, "/x.toml")));
        check("-c /x.toml", Ok((Command::Run, "/x.toml")));
        check("--config=/x.toml check", Ok((Command::Check, "/x.toml")));
        check("once", Ok((once(false, None), d)));
        check("once --dry-run --config /y", Ok((once(true, None), "/y")));
        check(
            "once --at 2026-12-01T09:30:00Z",
            Ok((once(false, Some(1_796_117_400)), d)),
        );
        check(
            "once --at=2026-12-01T10:30:00+01:00 --dry-run",
            Ok((once(true, Some(1_796_117_400)), d)),
        );
        check("--version", Ok((Command::Version, d)));
        check("-V", Ok((Command::Version, d)));
        check("once --help", Ok((Command::Help, d)));
        check("once --at", Err("--at needs a value"));
        check(
            "once --at tomorrow",
            Err("--at: 'tomorrow' is not a date-time"),
        );
        check("once --at 2026-12-01T09:30:00", Err("needs a zone"));
        check("check --dry-run", Err("belong to 'once'"));
        check("run --at 2026-12-01T09:30:00Z", Err("belong to 'once'"));
        check("-c", Err("--config needs a value"));
        check("-c a -c b", Err("given twice"));
        check("--config=", Err("needs a path"));
        check("start", Err("unknown command 'start'"));
        check("once once", Err("unknown command 'once'"));
        check("--verbose", Err("unknown option '--verbose'"));
        check("--dry-run=yes once", Err("unknown option '--dry-run'"));
    }
}
