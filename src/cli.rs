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
  exchange-status-sync once   [-c PATH] [--dry-run] [--at TIME] [--user EMAIL]...
                                                      one pass now (or at TIME, RFC 3339), then exit
  exchange-status-sync check  [-c PATH] [--user EMAIL]...
                                                      test both connections and every user
  exchange-status-sync status [-c PATH]               the last poll and what is ours on the PBX
                                                      (from the state file; exit 1 when the last
                                                      poll is too old or failed)
  exchange-status-sync --version | --help

--user EMAIL (repeatable) handles only these members of the group and leaves everyone else
exactly as they are.
The default configuration file is /etc/exchange-status-sync/config.toml.
Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run,
    Once {
        dry_run: bool,
        at: Option<Timestamp>,
        /// `--user`, lower case; empty: every member.
        users: Vec<String>,
    },
    Check {
        users: Vec<String>,
    },
    Status,
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
    let mut users: Vec<String> = Vec::new();
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
            "--user" => {
                let v = value("--user")?.trim().to_lowercase();
                if !v.contains('@') {
                    return Err(format!("--user takes an e-mail address, not '{v}'"));
                }
                if !users.contains(&v) {
                    users.push(v);
                }
            }
            "run" | "once" | "check" | "status" if command.is_none() && inline.is_none() => {
                command = Some(flag)
            }
            other if other.starts_with('-') => return Err(format!("unknown option '{other}'")),
            other => return Err(format!("unknown command '{other}'")),
        }
    }
    let name = command.unwrap_or("run");
    if name != "once" && (dry_run || at.is_some()) {
        return Err(format!("--dry-run and --at belong to 'once', not '{name}'"));
    }
    if !matches!(name, "once" | "check") && !users.is_empty() {
        return Err(format!(
            "--user belongs to 'once' and 'check', not '{name}'"
        ));
    }
    let command = match name {
        "once" => Command::Once { dry_run, at, users },
        "check" => Command::Check { users },
        "status" => Command::Status,
        _ => Command::Run,
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
        let once = |dry_run, at| Command::Once {
            dry_run,
            at,
            users: Vec::new(),
        };
        let users = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        check("", Ok((Command::Run, d)));
        check("status -c /s.toml", Ok((Command::Status, "/s.toml")));
        check(
            "once --user Alice@Example.com --dry-run --user=bob@x --user alice@example.com",
            Ok((
                Command::Once {
                    dry_run: true,
                    at: None,
                    users: users(&["alice@example.com", "bob@x"]),
                },
                d,
            )),
        );
        check(
            "check --user a@x",
            Ok((
                Command::Check {
                    users: users(&["a@x"]),
                },
                d,
            )),
        );
        check("check --user", Err("--user needs a value"));
        check(
            "once --user alice",
            Err("--user takes an e-mail address, not 'alice'"),
        );
        check(
            "--user a@x",
            Err("--user belongs to 'once' and 'check', not 'run'"),
        );
        check("status --user a@x", Err("not 'status'"));
        check("status --dry-run", Err("belong to 'once', not 'status'"));
        check("run", Ok((Command::Run, d)));
        check("run -c /x.toml", Ok((Command::Run, "/x.toml")));
        check("-c /x.toml", Ok((Command::Run, "/x.toml")));
        check(
            "--config=/x.toml check",
            Ok((Command::Check { users: Vec::new() }, "/x.toml")),
        );
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
