//! End to end with the real binary: `status` (the table and the exit code for monitoring) and
//! `--user` on `once` and `check` (only the named members; everyone else exactly as they were).

mod common;

use std::time::Duration;

use common::*;
use ess_sim::calendar::{format_utc, SimAppointment, SimShowAs};

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn rfc3339(t: i64) -> String {
    format!("{}Z", format_utc(t))
}

fn status(w: &mut World) -> Output {
    w.run_with(&["status"], Duration::from_secs(20))
}

#[test]
fn status_reports_the_last_poll_and_what_is_ours() {
    let mut w = World::new(Backend::Ews);
    // Before any poll: nothing to judge by, so a monitoring check must alarm.
    let out = status(&mut w);
    out.expect_code(1);
    assert!(out.stdout.contains("last poll: none recorded yet"), "{out}");
    assert!(
        out.stderr.contains("no poll has been recorded yet"),
        "{out}"
    );

    let now = unix_now();
    w.calendars.add(
        ALICE,
        SimAppointment::new(now - 600, now + 3600, SimShowAs::Busy, "Weekly sync"),
    );
    w.calendars.add(
        BOB,
        SimAppointment::new(now - 600, now + 7200, SimShowAs::Oof, "Doctor").private(),
    );
    w.once(&rfc3339(now), &[]).expect_code(0);
    let out = status(&mut w);
    out.expect_code(0);
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert!(
        rows[0].starts_with(&format!("last poll: {}", rfc3339(now)))
            && rows[0].ends_with("ok, 3 user(s) read, 0 failed"),
        "{out}"
    );
    let row = |email: &str, what: &str| {
        rows.iter()
            .find(|r| r.starts_with(email) && r.contains(what))
            .unwrap_or_else(|| panic!("no row {email} {what}:\n{out}"))
            .to_string()
    };
    assert!(
        row(ALICE, "DND on").contains("Busy \"Weekly sync\" until"),
        "{out}"
    );
    // Bob's appointment is private: the logged text, never the subject.
    let bob = row(BOB, "forwarding of +4972112345602 on");
    assert!(
        bob.contains("OOF \"Private appointment\" until") && !bob.contains("Doctor"),
        "{out}"
    );
    // Nothing was written: the file is as `once` left it.
    let before = w.state();
    status(&mut w).expect_code(0);
    assert_eq!(w.state(), before);

    // A poll that failed (the PBX is down): exit 1, and the table says why.
    w.stop_pbx();
    w.once(&rfc3339(now), &[]).expect_code(1);
    let out = status(&mut w);
    out.expect_code(1);
    assert!(
        out.stdout
            .lines()
            .next()
            .is_some_and(|l| l.contains("FAILED: STARFACE")),
        "{out}"
    );
    assert!(
        out.stderr.contains("the last poll failed: STARFACE"),
        "{out}"
    );
    // What is ours stays listed: it is still on the PBX.
    assert!(out.stdout.contains("DND on"), "{out}");
    w.start_pbx();
    // A poll that is too old (more than 2 × 600 s + 10 min): exit 1 with why.
    w.once(&rfc3339(now - 1900), &[]).expect_code(0);
    let out = status(&mut w);
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("the last poll is 31 min old (more than 30 min)"),
        "{out}"
    );
}

#[test]
fn user_handles_only_the_named_members() {
    let mut w = World::new(Backend::Ews);
    let (start, end) = ("2026-12-01T09:00:00Z", "2026-12-01T10:30:00Z");
    w.calendars
        .add(ALICE, appt(start, end, SimShowAs::Busy, "Weekly sync"));
    w.calendars
        .add(BOB, appt(start, end, SimShowAs::Busy, "Review"));
    // Only alice, named in another case: bob is not touched and not read.
    let out = w.once("2026-12-01T09:30:00Z", &["--user", "Alice@Example.COM"]);
    out.expect_code(0);
    assert_eq!(
        (w.pbx.dnd(ALICE_ID), w.pbx.dnd(BOB_ID)),
        (Some(true), Some(false)),
        "{out}"
    );
    // Everyone: bob is switched on too.
    w.once("2026-12-01T09:30:00Z", &[]).expect_code(0);
    assert_eq!(w.pbx.dnd(BOB_ID), Some(true));
    // After the appointments, only alice: bob stays on and stays ours (not taken for a
    // leaver), and is switched back by the next run over everyone.
    let out = w.once("2026-12-01T11:00:00Z", &["--user", ALICE]);
    out.expect_code(0);
    assert_eq!(
        (w.pbx.dnd(ALICE_ID), w.pbx.dnd(BOB_ID)),
        (Some(false), Some(true)),
        "{out}"
    );
    assert!(w.state().is_some_and(|s| s.contains(BOB)), "{out}");
    w.once("2026-12-01T11:00:00Z", &[]).expect_code(0);
    assert_eq!(w.pbx.dnd(BOB_ID), Some(false));
    // A dry run for one user prints that user's lines only.
    let out = w.once("2026-12-01T09:30:00Z", &["--dry-run", "--user", BOB]);
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    assert!(
        out.stdout.starts_with("bob@example.com dnd off -> on"),
        "{out}"
    );
}

#[test]
fn user_must_be_a_member() {
    let mut w = World::new(Backend::Ews);
    // dora is on the PBX, but in another group.
    let out = w.once(
        "2026-12-01T09:30:00Z",
        &["--user", ALICE, "--user", "dora@example.com"],
    );
    out.expect_code(2);
    assert!(
        out.stderr.contains(
            "--user dora@example.com: not a member of the STARFACE group 'Exchange-Sync'"
        ),
        "{out}"
    );
    assert_eq!(w.pbx.dnd(ALICE_ID), Some(false));
    // The session was closed all the same.
    assert_eq!(w.pbx.logins(), w.pbx.logouts());
    let out = w.run_with(
        &["check", "--user", "nobody@example.com"],
        Duration::from_secs(20),
    );
    out.expect_code(2);
}

#[test]
fn check_with_user_lists_only_them() {
    let mut w = World::new(Backend::Ews);
    w.calendars.add(
        ALICE,
        appt(
            "2026-12-01T09:00:00Z",
            "2026-12-01T10:30:00Z",
            SimShowAs::Busy,
            "x",
        ),
    );
    let out = w.run_with(&["check", "--user", CAROL], Duration::from_secs(30));
    out.expect_code(0);
    assert!(out.stdout.contains(CAROL), "{out}");
    assert!(
        !out.stdout.contains(ALICE) && !out.stdout.contains(BOB),
        "{out}"
    );
}

#[test]
fn debug_explains_reads_and_decisions() {
    let mut w = World::new(Backend::Ews);
    let (start, end) = ("2026-12-01T09:00:00Z", "2026-12-01T10:30:00Z");
    w.calendars
        .add(ALICE, appt(start, end, SimShowAs::Busy, "Weekly sync"));
    let out = w.once("2026-12-01T09:30:00Z", &[]);
    out.expect_code(0);
    let debug = out.log_lines("DEBUG");
    let has = |lines: &[&str], part: &str| lines.iter().any(|l| l.contains(part));
    for part in [
        "reading the calendars of 3 user(s) from 2026-12-01T08:30:00Z to ",
        " (every member of the group 'Exchange-Sync'): alice@example.com, bob@example.com, carol@example.com",
        "alice@example.com: reading DND: wanted on and not switched by us yet, so a write may be due",
        "alice@example.com: decision at 09:30Z: DND wanted (Busy \"Weekly sync\" until 10:30Z) -> switch on; forwarding not wanted -> nothing of ours, nothing to do",
        "bob@example.com: decision at 09:30Z: DND not wanted -> nothing of ours, nothing to do",
    ] {
        assert!(has(&debug, part), "missing {part:?}:\n{out}");
    }
    // Users with nothing to do cost no PBX read, and the log says none was made.
    assert!(!has(&debug, "bob@example.com: reading"), "{out}");
    // The next run reads what is ours to see a manual change, and decides to leave it.
    let out = w.once("2026-12-01T09:40:00Z", &["--user", ALICE]);
    let debug = out.log_lines("DEBUG");
    for part in [
        "(the members named with --user; 2 other(s) left alone): alice@example.com",
        "alice@example.com: reading DND: it is ours, to see whether the user changed it by hand",
        "DND wanted (Busy \"Weekly sync\" until 10:30Z) -> on and ours, nothing to do",
    ] {
        assert!(has(&debug, part), "missing {part:?}:\n{out}");
    }
    assert!(out.log_lines("TRACE").is_empty(), "{out}");
    // At info, none of it.
    w.set("log.level", "\"info\"");
    let out = w.once("2026-12-01T09:45:00Z", &[]);
    assert!(out.log_lines("DEBUG").is_empty(), "{out}");
}

#[test]
fn trace_adds_request_lines_without_queries_or_values() {
    let mut w = World::new(Backend::Ews);
    w.set("log.level", "\"trace\"")
        .set("chat.set_presence", "true");
    w.calendars.add(
        ALICE,
        appt(
            "2026-12-01T09:00:00Z",
            "2026-12-01T10:30:00Z",
            SimShowAs::Busy,
            "Weekly sync",
        ),
    );
    let out = w.once("2026-12-01T09:30:00Z", &[]);
    out.expect_code(0);
    let trace = out.log_lines("TRACE");
    let has = |part: &str| trace.iter().any(|l| l.contains(part));
    for part in [
        "/rest/login -> HTTP 200",
        "POST http://127.0.0.1:",
        "/EWS/Exchange.asmx -> HTTP 200",
        "/rest/users/1/phoneconfig -> HTTP 200",
        "/xml-rpc -> HTTP 200",
        "DELETE http://127.0.0.1:",
    ] {
        assert!(has(part), "missing {part:?}:\n{out}");
    }
    // The XML-RPC URL carries the auth hash in its query: never shown.
    assert!(trace.iter().all(|l| !l.contains('?')), "{out}");
    // Debug lines are still there.
    assert!(!out.log_lines("DEBUG").is_empty(), "{out}");
}

#[test]
fn status_answers_on_stderr_even_with_a_log_file() {
    let mut w = World::new(Backend::Ews);
    // A log file the checking user could not open must not turn the answer into exit 2.
    w.set("log.file", "\"/nonexistent-dir/ess.log\"");
    let out = status(&mut w);
    out.expect_code(1);
    assert!(
        out.stderr.contains("no poll has been recorded yet"),
        "{out}"
    );
}

#[test]
fn the_daemon_records_its_polls_for_status() {
    let mut w = World::new(Backend::Ews);
    let now = unix_now();
    w.calendars.add(
        ALICE,
        SimAppointment::new(now - 600, now + 3600, SimShowAs::Busy, "Weekly sync"),
    );
    let mut daemon = w.start_daemon();
    let polled = daemon.wait_for(Duration::from_secs(20), || {
        w.state()
            .is_some_and(|s| s.contains("\"poll\":") && s.contains("\"since\":"))
    });
    assert!(polled, "no poll recorded:\n{}", daemon.stderr());
    daemon.signal("TERM");
    daemon
        .wait_exit(Duration::from_secs(10))
        .expect("the daemon stops");
    let out = status(&mut w);
    out.expect_code(0);
    assert!(out.stdout.contains("ok, 3 user(s) read, 0 failed"), "{out}");
    assert!(out.stdout.contains("Busy \"Weekly sync\" until"), "{out}");
}
