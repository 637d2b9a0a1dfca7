//! `ess-sim demo`: the real daemon against the fakes for about two minutes, with the simulated
//! PBX's view printed each time it changes.
//!
//! Four users have appointments that begin and end within the next two minutes; the daemon runs
//! as an admin would run it (`run -c <config>`), its log streamed through. Each PBX write is
//! printed as it arrives, and the table of DND, forwarding and chat status per user after each
//! change. When the last appointment has ended, the demo stops the daemon with SIGTERM and checks
//! that everything it switched on was switched back.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ess_sim::calendar::{format_utc, Calendars, SimAppointment, SimShowAs};
use ess_sim::ews::{EwsAuth, EwsFake};
use ess_sim::starface::{SimDestination, SimNumberType, SimTrigger, SimWrite, StarfaceSim};

use crate::product::{self, Setup, TempDir, EWS_PASSWORD, EWS_USER};

const USAGE: &str = "\
usage: ess-sim demo [--fast] [--keep] [--ntlm] [--bin PATH]

Runs the real exchange-status-sync daemon against a simulated Exchange (EWS) and STARFACE on
loopback. Four users get appointments within the next two minutes; every PBX write and each new
view of the PBX (DND, forwarding, chat presence and text per user) is printed as it happens.
After the last appointment the daemon is stopped with SIGTERM and the demo checks that everything
was switched back.

options:
  --fast       compress the schedule so the demo takes about 30 seconds
  --keep       keep running after the last appointment (stop with Ctrl-C)
  --ntlm       EWS authenticates with NTLM (auth = \"ntlm\") instead of Basic
  --bin PATH   the product binary (default: $ESS_BIN, else next to ess-sim, else built with
               cargo build --release)";

/// A demo user: STARFACE id, name (the e-mail's local part) and the redirect id of their
/// external number.
struct DemoUser {
    id: i64,
    name: &'static str,
}

const USERS: [DemoUser; 4] = [
    DemoUser {
        id: 1,
        name: "alice",
    },
    DemoUser { id: 2, name: "bob" },
    DemoUser {
        id: 3,
        name: "carol",
    },
    DemoUser {
        id: 4,
        name: "dave",
    },
];

/// One scheduled appointment: user, seconds from the demo's start to its start and end, show-as,
/// subject, private, and what the daemon should do with it (printed for the audience).
struct Planned {
    user: &'static str,
    start: i64,
    end: i64,
    show_as: SimShowAs,
    subject: &'static str,
    private: bool,
    expect: &'static str,
}

/// The schedule at normal speed; keywords in both languages.
const SCHEDULE: [Planned; 6] = [
    Planned {
        user: "alice",
        start: 10,
        end: 40,
        show_as: SimShowAs::Busy,
        subject: "Weekly sync",
        private: false,
        expect: "busy → DND on; chat DO_NOT_DISTURB \"Weekly sync\"",
    },
    Planned {
        user: "bob",
        start: 20,
        end: 70,
        show_as: SimShowAs::Oof,
        subject: "Offsite (Anrufe weiterleiten)",
        private: false,
        expect: "OOF and German keyword → forwarding on; chat EXTENDED_AWAY \"Offsite\"",
    },
    Planned {
        user: "carol",
        start: 30,
        end: 60,
        show_as: SimShowAs::Free,
        subject: "Lunch (DND)",
        private: false,
        expect: "free, but the keyword (DND) → DND on; chat AVAILABLE \"Lunch\"",
    },
    Planned {
        user: "dave",
        start: 45,
        end: 100,
        show_as: SimShowAs::Busy,
        subject: "Doctor's appointment",
        private: true,
        expect: "private busy → DND on; the subject stays hidden",
    },
    Planned {
        user: "alice",
        start: 75,
        end: 95,
        show_as: SimShowAs::Tentative,
        subject: "Code review (Ruhe)",
        private: false,
        expect: "tentative, German keyword (Ruhe) → DND on; chat AVAILABLE \"Code review\"",
    },
    Planned {
        user: "carol",
        start: 80,
        end: 110,
        show_as: SimShowAs::Busy,
        subject: "Customer call (Keine Ruhe)",
        private: false,
        expect: "busy, but (Keine Ruhe) → no DND; chat DO_NOT_DISTURB \"Customer call\"",
    },
];

/// Seconds from the demo's start: as planned, or compressed about four times with `--fast`
/// (keeping a few seconds before the first start so that the daemon is up).
fn offset(planned: i64, fast: bool) -> i64 {
    if fast {
        planned / 4 + 2
    } else {
        planned
    }
}

struct Options {
    fast: bool,
    keep: bool,
    /// The EWS fake and the product authenticate with NTLM instead of Basic.
    ntlm: bool,
    bin: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        fast: false,
        keep: false,
        ntlm: false,
        bin: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--fast" => o.fast = true,
            "--keep" => o.keep = true,
            "--ntlm" => o.ntlm = true,
            "--bin" => o.bin = Some(it.next().ok_or("--bin needs a path")?.clone()),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(Some(o))
}

/// What the PBX shows for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UserView {
    name: &'static str,
    dnd: bool,
    forwarding: bool,
    /// `None` until the chat entry point was called for the user.
    chat: Option<(String, String)>,
}

impl UserView {
    /// Nothing on: DND and forwarding off, chat available without text (or never set).
    fn is_neutral(&self) -> bool {
        !self.dnd
            && !self.forwarding
            && self
                .chat
                .as_ref()
                .is_none_or(|(p, t)| p == "AVAILABLE" && t.is_empty())
    }
}

fn view(pbx: &StarfaceSim) -> Vec<UserView> {
    USERS
        .iter()
        .map(|u| UserView {
            name: u.name,
            dnd: pbx.dnd(u.id).unwrap_or(false),
            forwarding: pbx.redirect_enabled(&format!("ext-{}", u.id)) == Some(true)
                || pbx.redirect_enabled(&format!("int-{}", u.id)) == Some(true),
            chat: pbx.chat(u.id),
        })
        .collect()
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The table printed after each change.
fn render_view(at: i64, rows: &[UserView]) -> String {
    let mut out = format!(
        "{}Z  PBX view\n  {:<6} {:<4} {:<10} {:<15} {}\n",
        format_utc(at),
        "user",
        "DND",
        "forwarding",
        "chat presence",
        "chat text"
    );
    for r in rows {
        let (presence, text) = match &r.chat {
            Some((p, t)) => (p.as_str(), format!("{t:?}")),
            None => ("(not set)", String::new()),
        };
        out.push_str(&format!(
            "  {:<6} {:<4} {:<10} {:<15} {}\n",
            r.name,
            on_off(r.dnd),
            on_off(r.forwarding),
            presence,
            text
        ));
    }
    out
}

/// The value of a top-level boolean member in a written JSON object, found by a plain scan (the
/// sim's JSON reader is private to the STARFACE fake, and the demo only names the switch).
fn json_bool(body: &str, key: &str) -> Option<bool> {
    let quoted = format!("\"{key}\"");
    let after = &body[body.find(&quoted)? + quoted.len()..];
    let value = after.trim_start().strip_prefix(':')?.trim_start();
    if value.starts_with("true") {
        Some(true)
    } else if value.starts_with("false") {
        Some(false)
    } else {
        None
    }
}

/// One line per write: `PUT /rest/users/2/phoneconfig doNotDisturb=true`.
fn describe_write(w: &SimWrite) -> String {
    let path = if w.query.is_empty() {
        w.path.clone()
    } else {
        format!("{}?{}", w.path, w.query)
    };
    let switch = ["doNotDisturb", "enabled"]
        .iter()
        .find_map(|k| json_bool(&w.body, k).map(|v| format!(" {k}={v}")))
        .unwrap_or_default();
    format!("{} {path}{switch}", w.method)
}

fn wall_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The PBX of the demo: the default API user, four users in `Exchange-Sync`, each with an
/// internal and an external number, an "always" redirect with a destination on both (off), and
/// a `Sales` group with a number of its own that must never be switched.
fn demo_pbx() -> StarfaceSim {
    let pbx = StarfaceSim::new();
    for u in &USERS {
        let internal = format!("2{}", u.id);
        let external = format!("4972112345{:02}", u.id);
        let mut name = u.name.chars();
        let first: String = name
            .next()
            .map(|c| c.to_ascii_uppercase())
            .into_iter()
            .chain(name)
            .collect();
        pbx.user(
            u.id,
            &format!("100{}", u.id),
            &format!("{}@example.com", u.name),
            &first,
            "Example",
        )
        .number(u.id, &internal, SimNumberType::Internal)
        .number(u.id, &external, SimNumberType::External)
        .redirect(
            &format!("ext-{}", u.id),
            u.id,
            &format!("+{external}"),
            SimTrigger::Always,
            SimDestination::Phone(format!("017155501{:02}", u.id)),
            false,
        )
        .redirect(
            &format!("int-{}", u.id),
            u.id,
            &internal,
            SimTrigger::Always,
            SimDestination::Mailbox(format!("vm{}", u.id)),
            false,
        );
    }
    pbx.group(10, "Exchange-Sync", &[1, 2, 3, 4])
        .group(11, "Sales", &[2, 3])
        .group_number(11, "300");
    pbx
}

pub fn run_cli(args: &[String]) -> i32 {
    let opts = match parse_args(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("ess-sim demo: {e}\n{USAGE}");
            return 2;
        }
    };
    match run(&opts) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("ess-sim demo: {e}");
            1
        }
    }
}

/// Runs the demo; `Ok(false)` when the daemon did not switch everything back or did not stop
/// cleanly.
fn run(opts: &Options) -> Result<bool, String> {
    let bin = product::locate(opts.bin.as_deref())?;
    let calendars = Calendars::new();
    let auth = match opts.ntlm {
        true => EwsAuth::ntlm(EWS_USER, EWS_PASSWORD),
        false => EwsAuth::basic(EWS_USER, EWS_PASSWORD),
    };
    let ews = EwsFake::new(calendars.clone(), auth);
    let ews_server = ews
        .serve()
        .map_err(|e| format!("cannot start the EWS fake: {e}"))?;
    let pbx = demo_pbx();
    let pbx_server = pbx
        .start()
        .map_err(|e| format!("cannot start the STARFACE fake: {e}"))?;

    let t0 = wall_secs();
    for u in &USERS {
        calendars.add_mailbox(&format!("{}@example.com", u.name));
    }
    println!("schedule (UTC):");
    let mut last_end = t0;
    for p in &SCHEDULE {
        let (start, end) = (
            t0 + offset(p.start, opts.fast),
            t0 + offset(p.end, opts.fast),
        );
        last_end = last_end.max(end);
        let mut a = SimAppointment::new(start, end, p.show_as, p.subject);
        if p.private {
            a = a.private();
        }
        calendars.add(&format!("{}@example.com", p.user), a);
        println!(
            "  {:<6} {}..{}  {:<9} {:<32} {}",
            p.user,
            &format_utc(start)[11..],
            &format_utc(end)[11..],
            p.show_as.ews(),
            format!(
                "{:?}{}",
                p.subject,
                if p.private { " (private)" } else { "" }
            ),
            p.expect
        );
    }

    let dir =
        TempDir::new("demo").map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let setup = Setup {
        ews_url: ews_server.url().to_string(),
        starface_url: pbx_server.url().to_string(),
        lookup: "availability",
        auth: if opts.ntlm { "ntlm" } else { "basic" },
        poll_interval_secs: 30,
        directory_refresh_secs: 600,
        lookahead_hours: None,
        chat: true,
        log_level: "info",
        state_dir: dir.path().join("state"),
    };
    // install.sh creates the state directory; the product expects it to exist.
    std::fs::create_dir_all(&setup.state_dir)
        .map_err(|e| format!("cannot create the state directory: {e}"))?;
    let config = dir
        .write_config("config.toml", &setup)
        .map_err(|e| format!("cannot write the configuration: {e}"))?;
    println!(
        "EWS fake at {}, STARFACE fake at {}\nrunning: {} run -c {}",
        ews_server.url(),
        pbx_server.url(),
        bin.display(),
        config.display()
    );

    let mut daemon = product::spawn_daemon(&bin, &config, Stdio::piped())
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stderr = daemon.stderr.take();
    let log_thread = std::thread::spawn(move || {
        if let Some(err) = stderr {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                println!("daemon | {line}");
            }
        }
    });

    let (mut writes_seen, mut chats_seen) = (0, 0);
    let mut shown: Option<Vec<UserView>> = None;
    let mut exited = None;
    // Give up waiting for the switch-back this long after the last appointment ended.
    let deadline = last_end + 15;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        for w in pbx.writes().iter().skip(writes_seen) {
            println!("pbx | {}", describe_write(w));
            writes_seen += 1;
        }
        for c in pbx.chat_calls().iter().skip(chats_seen) {
            println!(
                "pbx | POST /xml-rpc {} AccountID={} Chatpresence={} ChatPresenceText={:?}",
                c.method, c.account_id, c.presence, c.text
            );
            chats_seen += 1;
        }
        let now_view = view(&pbx);
        if shown.as_ref() != Some(&now_view) {
            print!("{}", render_view(wall_secs(), &now_view));
            shown = Some(now_view.clone());
        }
        if let Some(status) = daemon.try_wait().map_err(|e| e.to_string())? {
            exited = Some(status);
            break;
        }
        let now = wall_secs();
        let settled = now >= last_end + 2 && now_view.iter().all(UserView::is_neutral);
        if !opts.keep && (settled || now >= deadline) {
            break;
        }
    }

    let status = match exited {
        Some(status) => {
            println!("the daemon exited by itself ({status})");
            Some(status)
        }
        None => {
            println!("last appointment over: sending SIGTERM to the daemon");
            product::terminate(&daemon).map_err(|e| format!("cannot stop the daemon: {e}"))?;
            match product::wait_for(&mut daemon, Duration::from_secs(10))
                .map_err(|e| e.to_string())?
            {
                Some((status, took)) => {
                    println!("the daemon stopped in {} ms ({status})", took.as_millis());
                    Some(status)
                }
                None => {
                    println!("the daemon did not stop within 10 s; killing it");
                    let _ = daemon.kill();
                    let _ = daemon.wait();
                    None
                }
            }
        }
    };
    let _ = log_thread.join();

    let final_view = view(&pbx);
    let rest_writes = pbx.writes().len();
    let chat_calls = pbx.chat_calls().len();
    let all_back = final_view.iter().all(UserView::is_neutral);
    let clean_exit = status.is_some_and(|s| s.success());
    print!("{}", render_view(wall_secs(), &final_view));
    println!(
        "summary: {} PBX writes ({rest_writes} REST, {chat_calls} chat calls); logins {}, logouts {}",
        rest_writes + chat_calls,
        pbx.logins(),
        pbx.logouts()
    );
    if all_back {
        println!("summary: everything was switched back");
    } else {
        let left: Vec<&str> = final_view
            .iter()
            .filter(|v| !v.is_neutral())
            .map(|v| v.name)
            .collect();
        println!("summary: NOT switched back for {}", left.join(", "));
    }
    if !clean_exit {
        println!("summary: the daemon did not exit cleanly");
    }
    Ok(all_back && clean_exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_schedule_keeps_order_and_fits_half_a_minute() {
        for p in &SCHEDULE {
            assert!(offset(p.start, true) < offset(p.end, true), "{}", p.subject);
            assert!(offset(p.start, true) >= 2);
            assert!(p.end <= 120, "{} ends after two minutes", p.subject);
        }
        let last = SCHEDULE.iter().map(|p| offset(p.end, true)).max().unwrap();
        assert!((20..=30).contains(&last), "{last}");
    }

    #[test]
    fn schedule_users_exist() {
        for p in &SCHEDULE {
            assert!(USERS.iter().any(|u| u.name == p.user), "{}", p.user);
        }
    }

    #[test]
    fn write_descriptions() {
        let check = |path: &str, query: &str, body: &str, expect: &str| {
            let w = SimWrite {
                method: "PUT".into(),
                path: path.into(),
                query: query.into(),
                body: body.into(),
                at: SystemTime::now(),
            };
            assert_eq!(describe_write(&w), expect);
        };
        check(
            "/rest/users/2/phoneconfig",
            "",
            r#"{"callWaiting":true,"doNotDisturb" : true}"#,
            "PUT /rest/users/2/phoneconfig doNotDisturb=true",
        );
        check(
            "/rest/redirects/ext-2",
            "actOnBehalfOf=2",
            r#"{"id":"ext-2","enabled":false}"#,
            "PUT /rest/redirects/ext-2?actOnBehalfOf=2 enabled=false",
        );
        check("/rest/other", "", "{}", "PUT /rest/other");
        check("/rest/other", "", r#"{"enabled":null}"#, "PUT /rest/other");
    }

    #[test]
    fn neutral_views() {
        let v = |dnd, forwarding, chat: Option<(&str, &str)>| UserView {
            name: "x",
            dnd,
            forwarding,
            chat: chat.map(|(p, t)| (p.to_string(), t.to_string())),
        };
        assert!(v(false, false, None).is_neutral());
        assert!(v(false, false, Some(("AVAILABLE", ""))).is_neutral());
        assert!(!v(true, false, None).is_neutral());
        assert!(!v(false, true, None).is_neutral());
        assert!(!v(false, false, Some(("AVAILABLE", "Lunch"))).is_neutral());
        assert!(!v(false, false, Some(("DO_NOT_DISTURB", ""))).is_neutral());
    }

    #[test]
    fn view_table() {
        let rows = [UserView {
            name: "alice",
            dnd: true,
            forwarding: false,
            chat: Some(("DO_NOT_DISTURB".into(), "Weekly sync".into())),
        }];
        let text = render_view(0, &rows);
        assert!(
            text.starts_with("1970-01-01T00:00:00Z  PBX view\n"),
            "{text}"
        );
        assert!(
            text.contains("  alice  on   off        DO_NOT_DISTURB  \"Weekly sync\""),
            "{text}"
        );
    }

    #[test]
    fn demo_pbx_has_the_users_in_the_group() {
        let pbx = demo_pbx();
        for u in &USERS {
            assert_eq!(pbx.dnd(u.id), Some(false));
            assert_eq!(pbx.redirect_enabled(&format!("ext-{}", u.id)), Some(false));
        }
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let o = args(&["--fast", "--bin", "/x"]).unwrap().unwrap();
        assert!(o.fast && !o.keep && !o.ntlm);
        assert!(args(&["--ntlm"]).unwrap().unwrap().ntlm);
        assert_eq!(o.bin.as_deref(), Some("/x"));
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--bin"]).is_err());
        assert!(args(&["--slow"]).is_err());
    }
}
