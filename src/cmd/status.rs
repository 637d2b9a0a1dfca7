//! `status`: what the state file says, for an admin and for monitoring. It reads the
//! configuration and the state file only: no network, no write.
//!
//! Exit 0 when the last poll is younger than `2 × poll_interval_secs + 10 min` and was ok, else
//! 1 (also without a poll record), so that a timer or a Nagios/Icinga check can call it.

use super::Failure;
use crate::config::Config;
use crate::model::Timestamp;
use crate::rules::Cause;
use crate::state::{self, Held, State};
use crate::time::{format_rfc3339, format_short, wall_clock};

pub fn run(config: &Config) -> Result<(), Failure> {
    let (state, corrupt) = state::load_readonly(&config.sync.state_dir)?;
    if let Some(e) = corrupt {
        return Err(Failure::State(e));
    }
    let limit = limit_secs(config.sync.poll_interval.as_secs());
    let now = wall_clock();
    print!("{}", render(&state, now));
    match health(&state, now, limit) {
        Ok(()) => Ok(()),
        Err(why) => Err(Failure::Unhealthy(why)),
    }
}

/// How old the last poll may be: two intervals and ten minutes.
pub fn limit_secs(poll_interval_secs: u64) -> i64 {
    i64::try_from(poll_interval_secs)
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(2)
        .saturating_add(600)
}

/// Ok, or why a monitoring check should raise an alarm.
pub fn health(state: &State, now: Timestamp, limit: i64) -> Result<(), String> {
    let Some(poll) = &state.poll else {
        return Err("no poll has been recorded yet".into());
    };
    let age = now - poll.at;
    if age >= limit {
        return Err(format!(
            "the last poll is {} old (more than {})",
            duration(age),
            duration(limit)
        ));
    }
    match &poll.error {
        Some(e) => Err(format!("the last poll failed: {}", printable(e))),
        None => Ok(()),
    }
}

/// The report: the last poll, then one row per value of ours and per override.
pub fn render(state: &State, now: Timestamp) -> String {
    let mut out = match &state.poll {
        None => "last poll: none recorded yet\n".to_string(),
        Some(p) => format!(
            "last poll: {} ({} ago), {}, {} user(s) read, {} failed\n",
            format_rfc3339(p.at),
            duration(now - p.at),
            p.error
                .as_deref()
                .map_or("ok".to_string(), |e| format!("FAILED: {}", printable(e))),
            p.users_read,
            p.users_failed
        ),
    };
    let mut rows: Vec<[String; 4]> = Vec::new();
    for u in state.users.values() {
        let email = printable(&u.email);
        let mut row = |what: String, held: Option<&Held>| {
            let (since, cause) = match held {
                Some(h) => (
                    format!(
                        "{} ({} ago)",
                        format_short(h.since, now),
                        duration(now - h.since)
                    ),
                    h.cause
                        .as_ref()
                        .map_or("no appointment".into(), |c| cause(c, now)),
                ),
                None => ("unknown".into(), "not recorded (an older version)".into()),
            };
            rows.push([email.clone(), what, since, cause]);
        };
        if u.dnd.ours {
            row("DND on".into(), u.dnd_held.as_ref());
        }
        for id in u.forward.iter().filter(|(_, r)| r.ours).map(|(id, _)| id) {
            let held = u.forward_held.get(id);
            let number = held.map_or(format!("redirect {id}"), |h| printable(&h.number));
            row(format!("forwarding of {number} on"), held.map(|h| &h.held));
        }
        let chat: Vec<String> = [
            u.chat.presence.map(|p| p.as_str().to_string()),
            u.chat
                .text
                .as_deref()
                .map(|t| format!("\"{}\"", printable(t))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !chat.is_empty() {
            row(format!("chat {}", chat.join(" ")), u.chat_held.as_ref());
        }
        let overrides = std::iter::once(("DND".to_string(), &u.dnd)).chain(
            u.forward
                .iter()
                .map(|(id, r)| (format!("forwarding (redirect {})", printable(id)), r)),
        );
        for (what, r) in overrides {
            if let Some(until) = r.override_until {
                rows.push([
                    email.clone(),
                    format!("{what}: override, left alone"),
                    "-".into(),
                    format!("until {}", format_short(until, now)),
                ]);
            }
        }
    }
    if rows.is_empty() {
        out.push_str("Nothing of ours is on the PBX, and no override is in effect.\n");
        return out;
    }
    out.push('\n');
    out.push_str(&table(["USER", "ON THE PBX", "SINCE", "CAUSE"], &rows));
    out
}

fn cause(c: &Cause, now: Timestamp) -> String {
    format!(
        "{} \"{}\" until {}",
        c.show_as.name(),
        printable(&c.text),
        format_short(c.end, now)
    )
}

fn table(header: [&str; 4], rows: &[[String; 4]]) -> String {
    let header = header.map(str::to_string);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(rows) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `45 s`, `12 min`, `3 h 5 min`, `2 d 3 h`: how long, for people.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 if s % 3600 / 60 == 0 => format!("{} h", s / 3600),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ if s % 86_400 / 3600 == 0 => format!("{} d", s / 86_400),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Text from outside (subjects, e-mails, server messages) with control characters escaped, so
/// that it cannot move the cursor or forge a line on the admin's terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Presence, ShowAs};
    use crate::reconcile::{ChatRecord, SwitchRecord};
    use crate::state::{HeldRedirect, PollRecord, UserRecord};
    use crate::time::parse_rfc3339;

    fn t(s: &str) -> Timestamp {
        parse_rfc3339(s).unwrap()
    }

    fn poll(at: &str, error: Option<&str>) -> Option<PollRecord> {
        Some(PollRecord {
            at: t(at),
            error: error.map(str::to_string),
            users_read: 3,
            users_failed: u32::from(error.is_some()) as usize,
        })
    }

    fn check(poll: Option<PollRecord>, now: &str, want: Result<(), &str>) {
        let state = State {
            poll,
            ..State::default()
        };
        // poll_interval_secs = 120: the limit is 14 min.
        let got = health(&state, t(now), limit_secs(120));
        assert_eq!(got, want.map_err(str::to_string), "{now}");
    }

    #[test]
    fn health_for_monitoring() {
        let at = "2026-12-01T09:00:00Z";
        check(None, at, Err("no poll has been recorded yet"));
        check(poll(at, None), at, Ok(()));
        check(poll(at, None), "2026-12-01T09:13:59Z", Ok(()));
        check(
            poll(at, None),
            "2026-12-01T09:14:00Z",
            Err("the last poll is 14 min old (more than 14 min)"),
        );
        check(
            poll(at, Some("Exchange: HTTP 503\u{1b}[2J")),
            "2026-12-01T09:01:00Z",
            Err("the last poll failed: Exchange: HTTP 503\\u{1b}[2J"),
        );
    }

    #[test]
    fn durations() {
        for (secs, want) in [
            (-5, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (3599, "59 min"),
            (3600, "1 h"),
            (3660, "1 h 1 min"),
            (86_400, "1 d"),
            (90_000, "1 d 1 h"),
        ] {
            assert_eq!(duration(secs), want);
        }
    }

    #[test]
    fn the_report() {
        let now = t("2026-12-01T09:30:00Z");
        let mut state = State {
            poll: poll("2026-12-01T09:28:00Z", None),
            ..State::default()
        };
        assert_eq!(
            render(&state, now),
            "last poll: 2026-12-01T09:28:00Z (2 min ago), ok, 3 user(s) read, 0 failed\n\
             Nothing of ours is on the PBX, and no override is in effect.\n"
        );
        let ours = SwitchRecord {
            ours: true,
            override_until: None,
        };
        let busy = Some(Cause {
            show_as: ShowAs::Busy,
            text: "Weekly sync".into(),
            end: t("2026-12-01T10:30:00Z"),
        });
        state.users.insert(
            1,
            UserRecord {
                email: "alice@example.com".into(),
                dnd: ours.clone(),
                dnd_held: Some(Held {
                    since: t("2026-12-01T09:00:00Z"),
                    cause: busy.clone(),
                }),
                chat: ChatRecord {
                    presence: Some(Presence::DoNotDisturb),
                    text: Some("Weekly sync".into()),
                },
                chat_held: Some(Held {
                    since: t("2026-12-01T09:00:00Z"),
                    cause: busy,
                }),
                ..UserRecord::default()
            },
        );
        state.users.insert(
            2,
            UserRecord {
                email: "bob@example.com".into(),
                forward: [
                    ("ext-2".to_string(), ours.clone()),
                    ("old".to_string(), ours),
                    (
                        "int-2".to_string(),
                        SwitchRecord {
                            ours: false,
                            override_until: Some(t("2026-12-03T18:00:00Z")),
                        },
                    ),
                ]
                .into(),
                forward_held: [(
                    "ext-2".to_string(),
                    HeldRedirect {
                        number: "+4972112345602".into(),
                        held: Held {
                            since: t("2026-11-30T08:00:00Z"),
                            cause: Some(Cause {
                                show_as: ShowAs::Oof,
                                text: "Private appointment".into(),
                                end: t("2026-12-03T18:00:00Z"),
                            }),
                        },
                    },
                )]
                .into(),
                ..UserRecord::default()
            },
        );
        let want = "\
last poll: 2026-12-01T09:28:00Z (2 min ago), ok, 3 user(s) read, 0 failed

USER               ON THE PBX                                SINCE                          CAUSE
alice@example.com  DND on                                    09:00Z (30 min ago)            Busy \"Weekly sync\" until 10:30Z
alice@example.com  chat DO_NOT_DISTURB \"Weekly sync\"         09:00Z (30 min ago)            Busy \"Weekly sync\" until 10:30Z
bob@example.com    forwarding of +4972112345602 on           2026-11-30T08:00:00Z (1 d 1 h ago)  OOF \"Private appointment\" until 2026-12-03T18:00:00Z
bob@example.com    forwarding of redirect old on             unknown                        not recorded (an older version)
bob@example.com    forwarding (redirect int-2): override, left alone  -                              until 2026-12-03T18:00:00Z
";
        let got = render(&state, now);
        let lines = |s: &str| -> Vec<Vec<String>> {
            s.lines()
                .map(|l| {
                    l.split("  ")
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .collect()
        };
        // Compared cell by cell: the column widths follow the longest cell.
        assert_eq!(lines(&got), lines(want), "{got}");
    }
}
