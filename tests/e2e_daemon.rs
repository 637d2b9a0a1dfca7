//! End to end through `run`: the real daemon against the fakes, on the real clock. These are the
//! tests that must sleep; each keeps to a few seconds. Appointments are placed a few seconds
//! ahead, and the poll interval is long (600 s), so a switch at a boundary can only come from
//! the boundary timer.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use ess_sim::calendar::SimAppointment;

/// The wall clock as (whole seconds, the precise time).
fn now() -> (i64, Duration) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    (d.as_secs() as i64, d)
}

/// The first whole second at least `ahead` seconds from now.
fn second_ahead(ahead: i64) -> i64 {
    now().0 + 1 + ahead
}

/// How long after second `boundary` the fake received the write at `at`.
fn latency(boundary: i64, at: SystemTime) -> Duration {
    let at = at.duration_since(UNIX_EPOCH).expect("clock after 1970");
    at.saturating_sub(Duration::from_secs(boundary as u64))
}

fn busy(start: i64, end: i64, subject: &str) -> SimAppointment {
    SimAppointment::new(start, end, Busy, subject)
}

/// Waits for the daemon's first poll to be done (it read the calendars and went to sleep).
fn wait_first_poll(w: &World, d: &Running) {
    assert!(
        d.wait_for(Duration::from_secs(5), || w.exchange_requests() > 0
            && d.stderr().contains("started")),
        "no poll:\n{}",
        d.stderr()
    );
    // The first pass after the poll may still be writing; let it finish.
    std::thread::sleep(Duration::from_millis(200));
}

/// Stops the daemon with SIGTERM and checks the contract: exit 0 within 5 s, logged out.
fn terminate(w: &World, d: Running) -> Output {
    stop_with(w, d, "TERM")
}

fn stop_with(w: &World, mut d: Running, signal: &str) -> Output {
    d.signal(signal);
    let out = d
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIG{signal}:\n{}", d.stderr()));
    w.assert_no_secrets(&out);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(w.pbx.active_tokens(), 0, "logged out:\n{out}");
    assert!(w.pbx.logouts() >= 1, "{out}");
    out
}

/// DND goes on at the appointment's start and off at its end, each within a second, from the
/// boundary timer alone.
fn boundary(backend: Backend) {
    let mut w = World::new(backend);
    w.set("chat.set_presence", "true");
    let start = second_ahead(3);
    let end = start + 2;
    w.calendars.add(ALICE, busy(start, end, "Stand-up"));
    w.calendars
        .add(CAROL, SimAppointment::new(start, end, Oof, "Dentist"));
    let d = w.start_daemon();
    wait_first_poll(&w, &d);
    assert_eq!(w.pbx.dnd(ALICE_ID), Some(false), "not before the start");
    assert_eq!(w.pbx.redirect_enabled("ext-3"), Some(false));
    let polls = w.exchange_requests();

    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "DND not on:\n{}",
        d.stderr()
    );
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID)
            == Some(false)
            && w.pbx.redirect_enabled("ext-3") == Some(false)),
        "DND or forwarding not off:\n{}",
        d.stderr()
    );
    // The chat calls come last in each user's pass.
    assert!(
        d.wait_for(Duration::from_secs(2), || w.pbx.chat_calls().len() >= 4),
        "{:?}",
        w.pbx.chat_calls()
    );
    let writes = w.pbx.writes();
    let dnd: Vec<_> = writes
        .iter()
        .filter(|w| w.path == format!("/rest/users/{ALICE_ID}/phoneconfig"))
        .collect();
    assert_eq!(dnd.len(), 2, "{writes:?}");
    let on = latency(start, dnd[0].at);
    let off = latency(end, dnd[1].at);
    eprintln!("{backend:?}: boundary latency: on {on:?}, off {off:?}");
    // Carol's forwarding switched at the same seconds.
    let fwd: Vec<_> = writes
        .iter()
        .filter(|w| w.path == "/rest/redirects/ext-3")
        .collect();
    assert_eq!(fwd.len(), 2, "{writes:?}");
    assert!(latency(start, fwd[0].at) < Duration::from_secs(1));
    assert!(latency(end, fwd[1].at) < Duration::from_secs(1));
    assert_eq!(w.pbx.redirect_enabled("ext-3"), Some(false));
    assert!(
        dnd[0].body.contains("\"doNotDisturb\":true"),
        "{:?}",
        dnd[0]
    );
    assert!(on < Duration::from_secs(1), "on {on:?} after the start");
    assert!(off < Duration::from_secs(1), "off {off:?} after the end");
    // The chat presence followed at the same boundaries.
    let presences: Vec<String> = w
        .pbx
        .chat_calls()
        .iter()
        .map(|c| c.presence.clone())
        .collect();
    let alice_presences: Vec<String> = w
        .pbx
        .chat_calls()
        .iter()
        .filter(|c| c.account_id == ALICE_ID)
        .map(|c| c.presence.clone())
        .collect();
    assert_eq!(alice_presences, ["DO_NOT_DISTURB", "AVAILABLE"]);
    assert_eq!(presences.len(), 4, "{presences:?}");
    assert_eq!(w.exchange_requests(), polls, "no poll in between");
    let out = terminate(&w, d);
    assert!(
        out.stderr
            .contains("alice@example.com: DND on (Busy \"Stand-up\""),
        "{out}"
    );
}

/// SIGTERM in the middle of an appointment: exit 0 within 5 s, the state saved (the DND is
/// ours), logged out; a `once` after the appointment switches it back from that state.
fn sigterm(backend: Backend, signal: &str) {
    let mut w = World::new(backend);
    let (t, _) = now();
    w.calendars.add(ALICE, busy(t - 60, t + 3600, "Workshop"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "DND not on:\n{}",
        d.stderr()
    );
    stop_with(&w, d, signal);
    let state = w.state().expect("the state was saved");
    assert!(
        state.contains(ALICE) && state.contains("\"ours\":true"),
        "{state}"
    );
    let after = ess_sim::calendar::format_utc(t + 3600) + "Z";
    w.once(&after, &[]).expect_code(0);
    assert_eq!(w.pbx.dnd(ALICE_ID), Some(false));
}

/// SIGHUP with an invalid configuration: an error is logged and the daemon keeps running with
/// the old configuration (it still switches at the next boundary). A valid one is then taken.
fn sighup_invalid(backend: Backend) {
    let mut w = World::new(backend);
    let start = second_ahead(3);
    w.calendars.add(ALICE, busy(start, start + 60, "Review"));
    let d = w.start_daemon();
    wait_first_poll(&w, &d);
    w.set("sync.no_such_key", "1");
    w.write_config();
    d.signal("HUP");
    assert!(
        d.wait_for(Duration::from_secs(2), || d
            .stderr()
            .contains("no_such_key")),
        "the reload error names the key:\n{}",
        d.stderr()
    );
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "DND not on after a failed reload:\n{}",
        d.stderr()
    );
    let writes = w.pbx.writes();
    let on = latency(start, writes[0].at);
    eprintln!("{backend:?}: boundary latency after a failed reload: {on:?}");
    assert!(on < Duration::from_secs(1), "{on:?}");
    terminate(&w, d);
}

/// A valid new configuration is taken on SIGHUP: here chat presence is switched on, and the
/// next pass sets it.
fn sighup_valid(backend: Backend) {
    let mut w = World::new(backend);
    let (t, _) = now();
    w.calendars.add(ALICE, busy(t - 60, t + 3600, "Workshop"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    assert_eq!(w.pbx.chat_calls(), vec![]);
    w.set("chat.set_presence", "true");
    w.write_config();
    d.signal("HUP");
    assert!(
        d.wait_for(Duration::from_secs(5), || !w.pbx.chat_calls().is_empty()),
        "no chat call after the reload:\n{}",
        d.stderr()
    );
    assert_eq!(
        w.pbx.chat(ALICE_ID).map(|c| c.0),
        Some("DO_NOT_DISTURB".to_string())
    );
    terminate(&w, d);
}

/// The PBX restarts between two boundaries (the server goes away, its tokens become invalid,
/// it comes back on the same port): the daemon logs in again and switches at the next boundary.
fn starface_restart(backend: Backend) {
    let mut w = World::new(backend);
    let first = second_ahead(1);
    let second = first + 3;
    w.calendars.add(ALICE, busy(first, first + 60, "One"));
    w.calendars.add(BOB, busy(second, second + 60, "Two"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    w.stop_pbx();
    w.pbx.expire_tokens();
    std::thread::sleep(Duration::from_millis(500));
    w.start_pbx();
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(BOB_ID) == Some(true)),
        "no DND for bob after the restart:\n{}",
        d.stderr()
    );
    let bob = w
        .pbx
        .writes()
        .into_iter()
        .find(|x| x.path == format!("/rest/users/{BOB_ID}/phoneconfig"))
        .expect("bob's write");
    let l = latency(second, bob.at);
    eprintln!("{backend:?}: boundary latency after a PBX restart: {l:?}");
    assert!(l < Duration::from_secs(1), "{l:?}");
    assert!(w.pbx.logins() >= 2, "logged in again");
    terminate(&w, d);
}

/// Back-to-back appointments keep DND on: one write at the first start, one at the last end,
/// nothing in between.
fn back_to_back(backend: Backend) {
    let mut w = World::new(backend);
    let start = second_ahead(2);
    w.calendars.add(ALICE, busy(start, start + 2, "One"));
    w.calendars.add(ALICE, busy(start + 2, start + 4, "Two"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(8), || w.pbx.writes().len() >= 2),
        "{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    let writes = w.pbx.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    let (on, off) = (
        latency(start, writes[0].at),
        latency(start + 4, writes[1].at),
    );
    assert!(writes[0].body.contains("\"doNotDisturb\":true"));
    assert!(writes[1].body.contains("\"doNotDisturb\":false"));
    assert!(
        on < Duration::from_secs(1) && off < Duration::from_secs(1),
        "{on:?} {off:?}"
    );
    terminate(&w, d);
}

/// Polls that find nothing new write nothing, and read the PBX only for what is ours (here
/// alice's DND, once per poll); a new appointment found by a poll is applied by it.
fn idle_polls(backend: Backend) {
    let mut w = World::new(backend);
    w.set("sync.poll_interval_secs", "1");
    let (t, _) = now();
    w.calendars.add(ALICE, busy(t - 60, t + 3600, "Workshop"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    w.pbx.reset_records();
    let polls_before = w.exchange_requests();
    std::thread::sleep(Duration::from_millis(3200));
    let polls = w.exchange_requests() - polls_before;
    let requests = w.pbx.requests();
    eprintln!(
        "{backend:?}: {polls} idle poll(s): {} PBX write(s), PBX requests {requests:?}",
        w.pbx_writes()
    );
    assert!(polls >= 2, "polled {polls} times");
    assert_eq!(w.pbx_writes(), 0, "{:?}", w.pbx.writes());
    let phoneconfig = w.pbx.request_count("GET /rest/users/{id}/phoneconfig");
    assert!(
        (polls - 1..=polls + 1).contains(&phoneconfig),
        "{phoneconfig} DND reads in {polls} polls: {requests:?}"
    );
    assert_eq!(
        w.pbx.request_count("GET /rest/redirects"),
        0,
        "{requests:?}"
    );

    // Bob gets an appointment that is running already: the next poll switches.
    w.calendars.add(BOB, busy(t - 60, t + 3600, "Late entry"));
    assert!(
        d.wait_for(Duration::from_secs(3), || w.pbx.dnd(BOB_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    terminate(&w, d);
}

/// The phone number list is read by the first pass that needs it and then kept until the next
/// directory refresh: polls that read a redirect of ours do not read the list again.
fn numbers_kept_until_refresh(backend: Backend) {
    let mut w = World::new(backend);
    w.set("sync.poll_interval_secs", "1");
    w.set("sync.directory_refresh_secs", "3");
    let (t, _) = now();
    w.calendars
        .add(CAROL, SimAppointment::new(t - 60, t + 3600, Oof, "Holiday"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.redirect_enabled("ext-3")
            == Some(true)),
        "{}",
        d.stderr()
    );
    w.pbx.reset_records();
    std::thread::sleep(Duration::from_millis(4500));
    let requests = w.pbx.requests();
    let redirects = w.pbx.request_count("GET /rest/redirects");
    let numbers = w.pbx.request_count("GET /rest/phonenumbers");
    let directories = w.pbx.request_count("GET /rest/users");
    eprintln!("{backend:?}: {redirects} redirect reads, {numbers} number list reads, {directories} directory reads");
    assert!(redirects >= 3, "{requests:?}");
    assert!((1..=2).contains(&directories), "{requests:?}");
    assert!(
        (1..=directories).contains(&numbers),
        "the list is read once per directory refresh at most: {requests:?}"
    );
    assert_eq!(w.pbx_writes(), 0, "{:?}", w.pbx.writes());
    terminate(&w, d);
}

/// STARFACE down when the daemon starts: one error (not one per second), the daemon keeps
/// running and still stops cleanly on SIGTERM.
fn starface_down_at_start(backend: Backend) {
    let mut w = World::new(backend);
    w.stop_pbx();
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(5), || d.stderr().contains("ERROR")),
        "{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut d = d;
    d.signal("TERM");
    let out = d
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM:\n{}", d.stderr()));
    w.assert_no_secrets(&out);
    assert_eq!(out.code, 0, "{out}");
    let errors = out.log_lines("ERROR");
    assert_eq!(errors.len(), 1, "{out}");
    assert!(errors[0].contains("retrying in"), "{out}");
    assert!(!errors[0].contains("STARFACE: STARFACE"), "{out}");
}

/// SIGTERM while Exchange is slow to answer a poll: the read is left behind, the daemon saves,
/// logs out and exits within 5 s (not after the 10 s Exchange timeout).
fn sigterm_slow_exchange(backend: Backend) {
    let mut w = World::new(backend);
    w.set("sync.poll_interval_secs", "1");
    let (t, _) = now();
    w.calendars.add(ALICE, busy(t - 60, t + 3600, "Workshop"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    // From now on every answer comes 16 bytes per 100 ms: far beyond the timeout.
    w.ews.drip(100, Duration::from_millis(100));
    let polls = w.exchange_requests();
    assert!(
        d.wait_for(Duration::from_secs(3), || w.exchange_requests() > polls),
        "{}",
        d.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    let signalled = std::time::Instant::now();
    let out = terminate(&w, d);
    eprintln!(
        "exit {:?} after SIGTERM during a slow read",
        signalled.elapsed()
    );
    assert!(signalled.elapsed() < Duration::from_secs(5), "{out}");
    let state = w.state().expect("state file");
    assert!(
        state.contains(ALICE) && state.contains("\"ours\":true"),
        "{state}"
    );
}

/// Exchange answers the first poll with 503 and a short Retry-After: the daemon waits that long
/// and polls again (not its 30 s default back-off).
fn exchange_retry_after(backend: Backend) {
    let mut w = World::new(backend);
    let (t, _) = now();
    w.calendars.add(ALICE, busy(t - 60, t + 3600, "Workshop"));
    match backend {
        Backend::Graph => w.graph.unavailable_next(1, Some(2)),
        _ => w.ews.unavailable(1, 503, Some(2)),
    }
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(6), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    let out = terminate(&w, d);
    assert!(out.stderr.contains("retrying in 2 s"), "{out}");
}

/// The Graph token is revoked while the daemon runs: it fetches a new one and goes on.
fn graph_token_revoked(backend: Backend) {
    let mut w = World::new(backend);
    w.set("sync.poll_interval_secs", "1");
    let (t, _) = now();
    w.calendars.add(ALICE, busy(t - 60, t + 3600, "Workshop"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    let tokens = w.token.request_count();
    w.token.revoke_all();
    w.calendars.add(BOB, busy(t - 60, t + 3600, "Workshop"));
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(BOB_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    assert!(w.token.request_count() > tokens, "a new token was fetched");
    terminate(&w, d);
}

/// Each poll replaces the calendars: an appointment deleted before its start switches nothing,
/// one that is cut short switches back at the next poll.
fn appointments_change_between_polls(backend: Backend) {
    let mut w = World::new(backend);
    w.set("sync.poll_interval_secs", "1");
    let (t, _) = now();
    w.calendars.add(ALICE, busy(t - 60, t + 3600, "Workshop"));
    w.calendars.add(BOB, busy(t + 4, t + 3600, "Cancelled"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(3), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    w.calendars.clear(ALICE);
    w.calendars.clear(BOB);
    assert!(
        d.wait_for(Duration::from_secs(3), || w.pbx.dnd(ALICE_ID)
            == Some(false)),
        "{}",
        d.stderr()
    );
    let rest = Duration::from_secs((t + 5 - now().0).max(0) as u64);
    std::thread::sleep(rest);
    assert_eq!(w.pbx.dnd(BOB_ID), Some(false), "a deleted appointment");
    terminate(&w, d);
}

/// The daemon is the default command, and a corrupt state file is moved aside at its start.
fn default_command_and_corrupt_state(backend: Backend) {
    let mut w = World::new(backend);
    let (t, _) = now();
    w.calendars.add(ALICE, busy(t - 60, t + 3600, "Workshop"));
    std::fs::write(w.state_path(), "not json").expect("write garbage");
    let d = w.start_with(&[]);
    assert!(
        d.wait_for(Duration::from_secs(5), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    let out = terminate(&w, d);
    assert!(out.stderr.contains("corrupt"), "{out}");
    let aside = std::fs::read_dir(w.state_dir())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.corrupt-")
        })
        .count();
    assert_eq!(aside, 1);
    assert!(w.state().expect("state").contains(ALICE));
}

/// Exchange goes down after the first poll: the last calendars are kept, so an appointment's
/// end still switches back at its boundary.
fn exchange_down_keeps_last_calendars(backend: Backend) {
    let mut w = World::new(backend);
    w.set("sync.poll_interval_secs", "1");
    let (t, _) = now();
    let end = t + 4;
    w.calendars.add(ALICE, busy(t - 60, end, "Workshop"));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(3), || w.pbx.dnd(ALICE_ID) == Some(true)),
        "{}",
        d.stderr()
    );
    match backend {
        Backend::Graph => w.graph.unavailable_next(1000, Some(1)),
        _ => w.ews.unavailable(1000, 503, Some(1)),
    }
    assert!(
        d.wait_for(Duration::from_secs(6), || w.pbx.dnd(ALICE_ID)
            == Some(false)),
        "{}",
        d.stderr()
    );
    let off = w.pbx.writes().last().map(|x| latency(end, x.at));
    eprintln!("{backend:?}: switched off {off:?} after the end, Exchange down");
    assert!(off.is_some_and(|l| l < Duration::from_secs(1)), "{off:?}");
    let out = terminate(&w, d);
    assert_eq!(
        out.log_lines("ERROR").len(),
        1,
        "Exchange's failure is logged once:\n{out}"
    );
}

/// A daemon started while Exchange is down, in the middle of a meeting whose DND a `once`
/// switched on: without calendars it does not act, so the DND stays on.
fn started_while_exchange_down(backend: Backend) {
    let mut w = World::new(backend);
    let (t, _) = now();
    w.calendars.add(ALICE, busy(t - 60, t + 3600, "Workshop"));
    let at = ess_sim::calendar::format_utc(t) + "Z";
    w.once(&at, &[]).expect_code(0);
    assert_eq!(w.pbx.dnd(ALICE_ID), Some(true));
    match backend {
        Backend::Graph => w.graph.unavailable_next(1000, Some(1)),
        _ => w.ews.unavailable(1000, 503, Some(1)),
    }
    w.pbx.reset_records();
    let d = w.start_daemon();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(w.pbx.dnd(ALICE_ID), Some(true), "{}", d.stderr());
    assert_eq!(w.pbx.writes(), vec![]);
    terminate(&w, d);
    assert!(w.state().expect("state").contains(ALICE));
}

/// SIGTERM while a slow PBX is being written to: the write in flight finishes, the rest of the
/// pass is skipped, and the state file matches the PBX exactly (every DND that is on is
/// recorded as ours, no other); all within 5 s.
fn sigterm_during_slow_pbx(backend: Backend) {
    let mut w = World::new(backend);
    let (t, _) = now();
    for email in [ALICE, BOB, CAROL] {
        w.calendars.add(email, busy(t - 60, t + 3600, "Workshop"));
    }
    w.pbx.set_delay(Duration::from_millis(400));
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(10), || !w.pbx.writes().is_empty()),
        "{}",
        d.stderr()
    );
    let signalled = std::time::Instant::now();
    let out = terminate(&w, d);
    eprintln!(
        "exit {:?} after SIGTERM during a slow pass",
        signalled.elapsed()
    );
    let state = w.state().unwrap_or_default();
    let on: Vec<i64> = [ALICE_ID, BOB_ID, CAROL_ID]
        .into_iter()
        .filter(|id| w.pbx.dnd(*id) == Some(true))
        .collect();
    assert!(on.len() < 3, "the pass was cut short:\n{out}");
    for id in [ALICE_ID, BOB_ID, CAROL_ID] {
        assert_eq!(
            state.contains(&format!("\"{id}\":")),
            on.contains(&id),
            "user {id}: state {state}\n{out}"
        );
    }
}

/// 100 users whose appointments start at the same second: how long until the last write.
fn many_at_one_boundary(backend: Backend) {
    const N: i64 = 100;
    let pbx = empty_pbx();
    for id in 1..=N {
        person(&pbx, id, &format!("user{id}"), &format!("0171555{id:04}"));
    }
    pbx.group(10, GROUP, &(1..=N).collect::<Vec<_>>());
    let mut w = World::with_pbx(backend, pbx);
    let start = second_ahead(3);
    for id in 1..=N {
        w.calendars.add(
            &format!("user{id}@example.com"),
            busy(start, start + 60, "All hands"),
        );
    }
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(10), || w.pbx.writes().len()
            >= N as usize),
        "{}",
        d.stderr()
    );
    let writes = w.pbx.writes();
    let first = latency(start, writes[0].at);
    let last = latency(start, writes[writes.len() - 1].at);
    eprintln!(
        "{backend:?}: {N} users at one boundary: first write after {first:?}, last after {last:?}"
    );
    assert!(writes
        .iter()
        .all(|x| x.at >= UNIX_EPOCH + Duration::from_secs(start as u64)));
    assert!(first < Duration::from_secs(1), "{first:?}");
    terminate(&w, d);
}

#[test]
fn boundary_ews() {
    boundary(Backend::Ews);
}

#[test]
fn boundary_graph() {
    boundary(Backend::Graph);
}

#[test]
fn sigterm_saves_state_and_logs_out() {
    sigterm(Backend::Ews, "TERM");
}

#[test]
fn sigint_likewise() {
    sigterm(Backend::Graph, "INT");
}

#[test]
fn sighup_with_an_invalid_config_keeps_the_old_one() {
    sighup_invalid(Backend::Ews);
}

#[test]
fn sighup_with_a_valid_config_takes_it() {
    sighup_valid(Backend::Graph);
}

#[test]
fn starface_restart_mid_run() {
    starface_restart(Backend::Ews);
}

#[test]
fn back_to_back_appointments_do_not_flicker() {
    back_to_back(Backend::EwsCalendar);
}

#[test]
fn idle_polls_write_nothing() {
    idle_polls(Backend::Ews);
}

#[test]
fn starface_down_at_start_then_sigterm() {
    starface_down_at_start(Backend::Graph);
}

#[test]
fn sigterm_during_a_slow_exchange_read() {
    sigterm_slow_exchange(Backend::Ews);
}

#[test]
fn exchange_retry_after_is_honoured() {
    exchange_retry_after(Backend::Ews);
}

#[test]
fn graph_retry_after_is_honoured() {
    exchange_retry_after(Backend::Graph);
}

#[test]
fn graph_token_revoked_mid_run() {
    graph_token_revoked(Backend::Graph);
}

#[test]
fn polls_replace_the_calendars() {
    appointments_change_between_polls(Backend::EwsCalendar);
}

#[test]
fn default_command_with_a_corrupt_state_file() {
    default_command_and_corrupt_state(Backend::Ews);
}

#[test]
fn exchange_down_after_the_first_poll() {
    exchange_down_keeps_last_calendars(Backend::Ews);
}

#[test]
fn started_while_exchange_is_down() {
    started_while_exchange_down(Backend::Graph);
}

#[test]
fn sigterm_during_a_slow_pass_keeps_state_and_pbx_in_step() {
    sigterm_during_slow_pbx(Backend::Ews);
}

#[test]
fn the_number_list_is_kept_until_the_directory_refresh() {
    numbers_kept_until_refresh(Backend::Ews);
}

#[test]
fn a_hundred_users_at_one_boundary() {
    many_at_one_boundary(Backend::Ews);
}

/// A PBX that accepts connections and never answers: SIGTERM still ends the daemon within 5 s
/// (requests in flight are cut off after a grace period), with exit code 0.
#[test]
fn sigterm_with_a_hung_pbx_exits_within_five_seconds() {
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hung.local_addr().unwrap().port();
    // Keep accepted connections open without ever reading or answering.
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in hung.incoming().take(8) {
            open.push(conn);
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    let mut w = World::new(Backend::Ews);
    w.set("starface.url", &format!("\"http://127.0.0.1:{port}\""));
    let mut d = w.start_daemon();
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = std::time::Instant::now();
    d.signal("TERM");
    let out = d
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM:\n{}", d.stderr()));
    eprintln!(
        "exit {:?} after SIGTERM with a hung PBX",
        signalled.elapsed()
    );
    assert_eq!(out.code, 0, "{out}");
    drop(held);
}
