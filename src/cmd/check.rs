//! `check`: configuration, STARFACE login, the group, every member's mailbox read once, and
//! whether the redirects we would switch have a destination. A table on stdout.

use super::calendars::{self, calendars_around};
use super::setup::{logout, Services};
use super::Failure;
use crate::config::{Action, Config};
use crate::http::Cutoff;
use crate::starface::NumberKind;
use crate::time::wall_clock;

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub login: String,
    pub email: String,
    /// The number of appointments read, or why the mailbox could not be read.
    pub mailbox: Result<usize, String>,
    /// The numbers of the redirects we would switch that lack a destination, or why the
    /// redirects could not be read.
    pub missing_destination: Result<Vec<String>, String>,
}

/// Renders the table with aligned columns.
pub fn render(rows: &[Row], forwarding_used: bool) -> String {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let mailbox = match &r.mailbox {
                Ok(1) => "ok (1 appointment)".to_string(),
                Ok(n) => format!("ok ({n} appointments)"),
                Err(e) => format!("ERROR: {e}"),
            };
            let fwd = match &r.missing_destination {
                Ok(m) if m.is_empty() => "set".to_string(),
                Ok(m) if forwarding_used => format!("MISSING for {}", m.join(", ")),
                Ok(m) => format!("missing for {} (not used)", m.join(", ")),
                Err(e) => format!("ERROR: {e}"),
            };
            [r.login.clone(), r.email.clone(), mailbox, fwd]
        })
        .collect();
    let header = [
        "LOGIN",
        "E-MAIL",
        "MAILBOX",
        "ALWAYS-FORWARDING DESTINATION",
    ]
    .map(str::to_string);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(cells.iter()) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(cells.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `users`: `--user`, lower case; empty: every member.
pub fn run(config: &Config, users: &[String]) -> Result<(), Failure> {
    let mut services = Services::new(config, &Cutoff::default()).map_err(Failure::Config)?;
    let result = check(config, &mut services, users);
    logout(&mut services.starface);
    result
}

fn check(config: &Config, services: &mut Services, users: &[String]) -> Result<(), Failure> {
    let starface = &mut services.starface;
    starface.login()?;
    println!(
        "STARFACE: logged in to {} as {}",
        config.starface.url, config.starface.login
    );
    let directory = starface.directory(&config.starface.group)?;
    println!(
        "STARFACE: group '{}' has {} member(s) with an e-mail address",
        config.starface.group,
        directory.users.len()
    );
    for w in &directory.warnings {
        println!("warning: {w}");
    }
    let members = calendars::selected(
        &calendars::members(&directory),
        users,
        &config.starface.group,
    )?;
    let calendars = calendars_around(
        config,
        services.source.as_mut(),
        &members,
        wall_clock(),
        "check reads every mailbox once",
    )?;
    if let Some(auth) = services.source.authentication() {
        println!("{auth}");
    }
    let numbers = starface.numbers()?;
    let internal = config.actions.forward_internal_calls;
    let mut rows = Vec::new();
    for user in directory
        .users
        .iter()
        .filter(|u| members.iter().any(|m| m.id == u.id))
    {
        let mailbox = match calendars.get(&user.email) {
            Some(Ok(a)) => Ok(a.len()),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not read".to_string()),
        };
        let missing = starface
            .forwardings(user.id, &numbers)
            .map(|list| {
                list.iter()
                    .filter(|f| f.kind == NumberKind::External || internal)
                    .filter(|f| f.destination.is_none())
                    .map(|f| f.number.clone())
                    .collect::<Vec<_>>()
            })
            .map_err(|e| e.to_string());
        rows.push(Row {
            login: user.login.clone(),
            email: user.email.clone(),
            mailbox,
            missing_destination: missing,
        });
    }
    let a = &config.actions;
    let forwarding_used =
        [a.free, a.tentative, a.busy, a.oof, a.working_elsewhere].contains(&Action::Forward);
    print!("{}", render(&rows, forwarding_used));
    let unreadable = rows.iter().filter(|r| r.mailbox.is_err()).count();
    let no_destination = rows
        .iter()
        .filter(|r| matches!(&r.missing_destination, Ok(m) if !m.is_empty()))
        .count();
    let pbx_errors = rows
        .iter()
        .filter(|r| r.missing_destination.is_err())
        .count();
    let mut problems = Vec::new();
    if unreadable > 0 {
        problems.push(format!("{unreadable} mailbox(es) unreadable"));
    }
    if forwarding_used && no_destination > 0 {
        problems.push(format!(
            "{no_destination} user(s) without an \"always\" forwarding destination"
        ));
    }
    if pbx_errors > 0 {
        problems.push(format!(
            "the redirects of {pbx_errors} user(s) could not be read"
        ));
    }
    if problems.is_empty() {
        println!("OK: everything is usable");
        Ok(())
    } else {
        Err(Failure::Check(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let rows = vec![
            Row {
                login: "0001".into(),
                email: "alice@example.com".into(),
                mailbox: Ok(3),
                missing_destination: Ok(vec![]),
            },
            Row {
                login: "0002".into(),
                email: "bob@example.com".into(),
                mailbox: Err("ErrorNoFreeBusyAccess: no".into()),
                missing_destination: Ok(vec!["+4930123".into()]),
            },
        ];
        let text = render(&rows, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "LOGIN  E-MAIL             MAILBOX                           ALWAYS-FORWARDING DESTINATION");
        assert_eq!(
            lines[1],
            "0001   alice@example.com  ok (3 appointments)               set"
        );
        assert_eq!(
            lines[2],
            "0002   bob@example.com    ERROR: ErrorNoFreeBusyAccess: no  MISSING for +4930123"
        );
        assert!(render(&rows, false).contains("missing for +4930123 (not used)"));
        for (n, want) in [
            (0, "ok (0 appointments)"),
            (1, "ok (1 appointment)"),
            (2, "ok (2 appointments)"),
        ] {
            let row = Row {
                mailbox: Ok(n),
                ..rows[0].clone()
            };
            assert!(render(&[row], true).contains(&format!("{want}  ")), "{n}");
        }
    }
}
