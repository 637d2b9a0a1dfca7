//! End to end through `once --at`: the real binary against the fakes over real HTTP, for every
//! behaviour rule of `docs/contract.md`, section 5, ownership across processes, the state file, and
//! the failures of section 9. Each scenario runs with EWS (both lookups) and with Graph
//! (`every_backend!` at the end).

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use ess_sim::calendar::SimAppointment;
use ess_sim::starface::{SimDestination, SimLoginType, SimTrigger};

/// The scenario's day: appointments mostly run 09:00–10:30, and most runs look at 09:30.
const AT: &str = "2026-12-01T09:30:00Z";
const START: &str = "2026-12-01T09:00:00Z";
const END: &str = "2026-12-01T10:30:00Z";

/// What the PBX shows for one user: the features that are on (`dnd`, `ext`, `int`), and the chat
/// presence and text last set through the entry point (`None`: never called).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    on: String,
    chat: Option<(String, String)>,
}

fn seen(w: &World, id: i64) -> Seen {
    let mut on = Vec::new();
    if w.pbx.dnd(id) == Some(true) {
        on.push("dnd");
    }
    if w.pbx.redirect_enabled(&format!("ext-{id}")) == Some(true) {
        on.push("ext");
    }
    if w.pbx.redirect_enabled(&format!("int-{id}")) == Some(true) {
        on.push("int");
    }
    Seen {
        on: on.join(" "),
        chat: w.pbx.chat(id),
    }
}

fn expect(on: &str, chat: Option<(&str, &str)>) -> Seen {
    Seen {
        on: on.to_string(),
        chat: chat.map(|(p, t)| (p.to_string(), t.to_string())),
    }
}

/// Configuration keys and their TOML values.
type Settings<'a> = &'a [(&'a str, &'a str)];

/// One rule: configuration, alice's appointments, and what the PBX shows after `once --at AT`.
fn check_rule(
    backend: Backend,
    name: &str,
    config: Settings,
    appointments: &[SimAppointment],
    want: Seen,
) {
    let mut w = World::new(backend);
    for (k, v) in config {
        w.set(k, v);
    }
    for a in appointments {
        w.calendars.add(ALICE, a.clone());
    }
    let out = w.once(AT, &[]);
    assert_eq!(out.code, 0, "{name}:\n{out}");
    assert_eq!(seen(&w, ALICE_ID), want, "{name}:\n{out}");
}

/// Default actions and keywords (section 5, rules 1–3), one appointment 09:00–10:30 each.
fn rules(backend: Backend) {
    let a = |show_as, subject: &str| appt(START, END, show_as, subject);
    let cases: &[(&str, Settings, SimAppointment, &str)] = &[
        ("busy → DND", &[], a(Busy, "Weekly sync"), "dnd"),
        ("oof → forwarding", &[], a(Oof, "Vacation"), "ext"),
        ("free → nothing", &[], a(Free, "Lunch"), ""),
        ("tentative → nothing", &[], a(Tentative, "Maybe"), ""),
        ("elsewhere → nothing", &[], a(WorkingElsewhere, "Home"), ""),
        ("NoData ignored", &[], a(NoData, "Sync (DND)"), ""),
        ("(DND)", &[], a(Free, "Focus (DND)"), "dnd"),
        ("(Ruhe)", &[], a(Free, "Fokus (Ruhe)"), "dnd"),
        ("(No DND)", &[], a(Busy, "Weekly (No DND)"), ""),
        ("(Keine Ruhe)", &[], a(Busy, "Jour fixe (Keine Ruhe)"), ""),
        (
            "(Call forwarding)",
            &[],
            a(Free, "Trip (Call forwarding)"),
            "ext",
        ),
        (
            "(Anrufe weiterleiten)",
            &[],
            a(Free, "Reise (Anrufe weiterleiten)"),
            "ext",
        ),
        (
            "(No call forwarding)",
            &[],
            a(Oof, "Away (No call forwarding)"),
            "",
        ),
        (
            "(Keine Anrufe weiterleiten)",
            &[],
            a(Oof, "Urlaub (Keine Anrufe weiterleiten)"),
            "",
        ),
        ("(No action)", &[], a(Busy, "Sync (No action)"), ""),
        ("(Keine Aktion)", &[], a(Oof, "Urlaub (Keine Aktion)"), ""),
        (
            "(No action) then (DND)",
            &[],
            a(Oof, "Off (No action) (DND)"),
            "dnd",
        ),
        (
            "two keywords",
            &[],
            a(Busy, "Offsite (No DND) (Call forwarding)"),
            "ext",
        ),
        ("no space", &[], a(Free, "Meeting(DND)"), "dnd"),
        ("no space between", &[], a(Busy, "Meeting(DND)(No DND)"), ""),
        (
            "keywords only",
            &[],
            a(Free, "(Call forwarding)(Ruhe)"),
            "dnd ext",
        ),
        ("spaces around", &[], a(Free, "Meeting  ( DND)"), ""),
        ("trailing spaces", &[], a(Free, "Meeting (DND)  "), "dnd"),
        (
            "contradiction: last wins",
            &[],
            a(Free, "X (DND) (No DND)"),
            "",
        ),
        (
            "contradiction: last wins on",
            &[],
            a(Busy, "X (No DND) (DND)"),
            "dnd",
        ),
        ("keyword not at the end", &[], a(Free, "(DND) Planning"), ""),
        (
            "non-keyword group stops the scan",
            &[],
            a(Free, "Call (DND) (Team)"),
            "",
        ),
        (
            "non-keyword group stays",
            &[],
            a(Busy, "Lunch (Team)"),
            "dnd",
        ),
        ("case-sensitive", &[], a(Free, "Focus (dnd)"), ""),
        ("all-day oof", &[], a(Oof, "Holiday").all_day(), "ext"),
        (
            "busy = forward",
            &[("actions.busy", "\"forward\"")],
            a(Busy, "Sync"),
            "ext",
        ),
        (
            "seed numbers",
            &[("actions.busy", "2"), ("actions.oof", "1")],
            a(Busy, "Sync"),
            "ext",
        ),
        (
            "free = dnd",
            &[("actions.free", "\"dnd\"")],
            a(Free, "Lunch"),
            "dnd",
        ),
        (
            "internal calls too",
            &[("actions.forward_internal_calls", "true")],
            a(Oof, "Vacation"),
            "ext int",
        ),
        (
            "oof = none",
            &[("actions.oof", "\"none\"")],
            a(Oof, "Vacation"),
            "",
        ),
        (
            "ended at AT (end is exclusive)",
            &[],
            appt("2026-12-01T08:00:00Z", AT, Busy, "Early"),
            "",
        ),
        ("starts at AT", &[], appt(AT, END, Busy, "Now"), "dnd"),
        (
            "later",
            &[],
            appt("2026-12-01T10:00:00Z", END, Busy, "Later"),
            "",
        ),
    ];
    for (name, config, appointment, on) in cases {
        check_rule(
            backend,
            name,
            config,
            std::slice::from_ref(appointment),
            expect(on, None),
        );
    }
}

/// Keywords apply to private appointments too, where the subject can be read: through Graph,
/// and through EWS with the calendar lookup. Exchange leaves a private subject out of free/busy
/// answers, so the availability lookup never sees such a keyword: the default action applies.
fn private_keywords(backend: Backend) {
    let mut w = World::new(backend);
    w.set("chat.subject_as_text", "true");
    w.calendars
        .add(ALICE, appt(START, END, Free, "Doctor (DND)").private());
    w.calendars
        .add(BOB, appt(START, END, Busy, "Doctor (No DND)").private());
    let out = w.once(AT, &[]);
    out.expect_code(0);
    let visible = backend != Backend::Ews;
    let alice = if visible { "dnd" } else { "" };
    let bob = if visible { "" } else { "dnd" };
    let text = Some(("AVAILABLE", "Private appointment"));
    assert_eq!(seen(&w, ALICE_ID), expect(alice, text), "{out}");
    assert_eq!(seen(&w, BOB_ID), expect(bob, text), "{out}");
    assert!(!out.stderr.contains("Doctor"), "{out}");
}

/// Overlapping appointments: the union of what each wants.
fn overlapping(backend: Backend) {
    let cases: &[(&str, &[SimAppointment], &str)] = &[
        (
            "dnd and forwarding from two appointments",
            &[
                appt(START, END, Free, "Focus (DND)"),
                appt("2026-12-01T09:15:00Z", END, Oof, "Trip"),
            ],
            "dnd ext",
        ),
        (
            "one (No DND) does not cancel another's DND",
            &[
                appt(START, END, Busy, "Sync (No DND)"),
                appt(START, END, Busy, "Review"),
            ],
            "dnd",
        ),
        (
            "an ignored NoData beside a busy one",
            &[appt(START, END, NoData, "x"), appt(START, END, Busy, "y")],
            "dnd",
        ),
    ];
    for (name, appointments, on) in cases {
        check_rule(backend, name, &[], appointments, expect(on, None));
    }
}

/// Chat presence and text through the XML-RPC entry point.
fn chat(backend: Backend) {
    const BOTH: &[(&str, &str)] = &[
        ("chat.set_presence", "true"),
        ("chat.subject_as_text", "true"),
    ];
    const JOIN: &[(&str, &str)] = &[
        ("chat.set_presence", "true"),
        ("chat.subject_as_text", "true"),
        ("chat.join_parallel_subjects", "true"),
    ];
    let a = |show_as, subject: &str| appt(START, END, show_as, subject);
    let later = |show_as, subject: &str| appt("2026-12-01T09:15:00Z", END, show_as, subject);
    type Case<'a> = (
        &'a str,
        Settings<'a>,
        Vec<SimAppointment>,
        &'a str,
        Option<(&'a str, &'a str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "busy",
            BOTH,
            vec![a(Busy, "Weekly sync (No DND)")],
            "",
            Some(("DO_NOT_DISTURB", "Weekly sync")),
        ),
        (
            "oof",
            BOTH,
            vec![a(Oof, "Vacation (No call forwarding)")],
            "",
            Some(("EXTENDED_AWAY", "Vacation")),
        ),
        (
            "tentative",
            BOTH,
            vec![a(Tentative, "Maybe")],
            "",
            Some(("AVAILABLE", "Maybe")),
        ),
        (
            "free",
            BOTH,
            vec![a(Free, "Lunch (Team)")],
            "",
            Some(("AVAILABLE", "Lunch (Team)")),
        ),
        (
            "working elsewhere",
            BOTH,
            vec![a(WorkingElsewhere, "Home office")],
            "",
            Some(("AVAILABLE", "Home office")),
        ),
        (
            "dominant: oof over busy",
            BOTH,
            vec![a(Busy, "Sync"), later(Oof, "Trip")],
            "dnd ext",
            Some(("EXTENDED_AWAY", "Trip")),
        ),
        (
            "dominant tie: earlier start",
            BOTH,
            vec![later(Busy, "Second"), a(Busy, "First")],
            "dnd",
            Some(("DO_NOT_DISTURB", "First")),
        ),
        (
            "dominant tie: then later end",
            BOTH,
            vec![
                appt(START, "2026-12-01T10:00:00Z", Busy, "Short"),
                a(Busy, "Long"),
            ],
            "dnd",
            Some(("DO_NOT_DISTURB", "Long")),
        ),
        (
            "dominant: busy over tentative, whatever the order",
            BOTH,
            vec![a(Tentative, "Maybe"), later(Busy, "Sure")],
            "dnd",
            Some(("DO_NOT_DISTURB", "Sure")),
        ),
        (
            "joined by start, then end",
            JOIN,
            vec![
                a(Busy, "Long"),
                appt(START, "2026-12-01T10:00:00Z", Free, "Short"),
                later(Tentative, "Later"),
            ],
            "dnd",
            Some(("DO_NOT_DISTURB", "Short | Long | Later")),
        ),
        (
            "private text",
            BOTH,
            vec![a(Busy, "Doctor").private()],
            "dnd",
            Some(("DO_NOT_DISTURB", "Private appointment")),
        ),
        (
            "own private text",
            &[
                ("chat.set_presence", "true"),
                ("chat.subject_as_text", "true"),
                ("chat.private_text", "\"Nicht da\""),
            ],
            vec![a(Busy, "Doctor").private()],
            "dnd",
            Some(("DO_NOT_DISTURB", "Nicht da")),
        ),
        (
            "joined subjects",
            JOIN,
            vec![later(Busy, "Review (DND)"), a(Free, "Focus")],
            "dnd",
            Some(("DO_NOT_DISTURB", "Focus | Review")),
        ),
        (
            "joined, private and empty",
            JOIN,
            vec![a(Busy, "Doctor").private(), later(Free, "")],
            "dnd",
            Some(("DO_NOT_DISTURB", "Private appointment")),
        ),
        (
            "presence only",
            &[("chat.set_presence", "true")],
            vec![a(Oof, "Vacation")],
            "ext",
            Some(("EXTENDED_AWAY", "")),
        ),
        (
            "text only",
            &[("chat.subject_as_text", "true")],
            vec![a(Busy, "Weekly sync")],
            "dnd",
            Some(("AVAILABLE", "Weekly sync")),
        ),
        ("chat off", &[], vec![a(Busy, "Weekly sync")], "dnd", None),
        ("no appointment, no call", BOTH, vec![], "", None),
        (
            "keywords only: neutral, no call",
            BOTH,
            vec![a(Free, "(DND)")],
            "dnd",
            None,
        ),
        ("NoData: no call", BOTH, vec![a(NoData, "Hidden")], "", None),
    ];
    for (name, config, appointments, on, chat) in cases {
        check_rule(backend, name, config, &appointments, expect(on, chat));
    }
}

/// With only the presence set, the entry point is told to leave the text alone, and the other
/// way round.
fn chat_fields(backend: Backend) {
    for (presence, text, want) in [
        (true, false, ("DO_NOT_DISTURB", false, "")),
        (false, true, ("", true, "Weekly sync")),
    ] {
        let mut w = World::new(backend);
        w.set("chat.set_presence", &presence.to_string())
            .set("chat.subject_as_text", &text.to_string());
        w.calendars
            .add(ALICE, appt(START, END, Busy, "Weekly sync"));
        w.once(AT, &[]).expect_code(0);
        let calls = w.pbx.chat_calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        let c = &calls[0];
        assert_eq!((c.presence.as_str(), c.change_text, c.text.as_str()), want);
        assert_eq!(c.method, "ExchangeStatusSync.setChatPresence");
        assert_eq!(c.account_id, ALICE_ID);
    }
}

/// A second process after the appointment switches back what the first switched on: DND,
/// forwarding and chat; the log says so in the contract's words.
fn switch_back(backend: Backend) {
    let mut w = World::new(backend);
    w.set("chat.set_presence", "true")
        .set("chat.subject_as_text", "true")
        .set("actions.forward_internal_calls", "true");
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    w.calendars.add(BOB, appt(START, END, Oof, "Vacation"));
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert!(
        out.log_lines("INFO")
            .iter()
            .any(|l| l
                .ends_with("INFO  alice@example.com: DND on (Busy \"Weekly sync\" until 10:30Z)")),
        "{out}"
    );
    assert_eq!(
        seen(&w, ALICE_ID),
        expect("dnd", Some(("DO_NOT_DISTURB", "Weekly sync")))
    );
    assert_eq!(
        seen(&w, BOB_ID),
        expect("ext int", Some(("EXTENDED_AWAY", "Vacation")))
    );
    assert_eq!(seen(&w, CAROL_ID), expect("", None));

    let out = w.once(END, &[]);
    out.expect_code(0);
    assert_eq!(seen(&w, ALICE_ID), expect("", Some(("AVAILABLE", ""))));
    assert_eq!(seen(&w, BOB_ID), expect("", Some(("AVAILABLE", ""))));
    assert!(
        out.stderr
            .contains("alice@example.com: DND off (no appointment)"),
        "{out}"
    );
    // Nothing of ours is left: the state file remembers nobody.
    let state = w.state().expect("state file");
    assert!(!state.contains("alice@example.com"), "{state}");
}

/// A DND the user switched on before the appointment is theirs: it stays on afterwards.
fn own_dnd_survives(backend: Backend) {
    let mut w = World::new(backend);
    w.pbx.set_dnd(ALICE_ID, true);
    w.pbx.set_redirect_enabled("ext-2", true);
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    w.calendars.add(BOB, appt(START, END, Oof, "Vacation"));
    w.once(AT, &[]).expect_code(0);
    w.once(END, &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
    assert_eq!(seen(&w, BOB_ID).on, "ext");
    assert_eq!(w.pbx_writes(), 0, "{:?}", w.pbx.writes());
}

/// A user who switches off during the appointment is left alone, also through a back-to-back
/// appointment; a new appointment after a gap switches again (without a run inside the gap).
fn manual_change(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars.add(ALICE, appt(START, END, Busy, "A"));
    w.calendars.add(
        ALICE,
        appt(END, "2026-12-01T11:00:00Z", Busy, "B, back to back"),
    );
    w.calendars.add(
        ALICE,
        appt(
            "2026-12-01T11:30:00Z",
            "2026-12-01T12:00:00Z",
            Busy,
            "C, after a gap",
        ),
    );
    w.calendars.add(BOB, appt(START, END, Oof, "Vacation"));
    w.calendars.add(
        BOB,
        appt("2026-12-01T11:30:00Z", "2026-12-01T12:00:00Z", Oof, "Again"),
    );
    w.once(AT, &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
    assert_eq!(seen(&w, BOB_ID).on, "ext");

    w.pbx.set_dnd(ALICE_ID, false);
    w.pbx.set_redirect_enabled("ext-2", false);
    w.pbx.reset_records();
    let out = w.once("2026-12-01T10:00:00Z", &[]);
    out.expect_code(0);
    assert!(out.stderr.contains("switched off by hand"), "{out}");
    let out = w.once("2026-12-01T10:45:00Z", &[]);
    out.expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "", "back to back keeps the override");
    assert_eq!(seen(&w, BOB_ID).on, "");
    assert_eq!(w.pbx_writes(), 0, "{:?}", w.pbx.writes());

    w.once("2026-12-01T11:45:00Z", &[]).expect_code(0);
    assert_eq!(
        seen(&w, ALICE_ID).on,
        "dnd",
        "a new appointment after a gap"
    );
    assert_eq!(seen(&w, BOB_ID).on, "ext");
}

/// Forwarding overrides are per redirect: the user switches off the internal one by hand; the
/// external one stays ours and goes off at the end, the internal one is not touched again.
fn manual_change_one_redirect(backend: Backend) {
    let mut w = World::new(backend);
    w.set("actions.forward_internal_calls", "true");
    w.calendars.add(BOB, appt(START, END, Oof, "Vacation"));
    w.once(AT, &[]).expect_code(0);
    assert_eq!(seen(&w, BOB_ID).on, "ext int");
    w.pbx.set_redirect_enabled("int-2", false);
    w.once("2026-12-01T10:00:00Z", &[]).expect_code(0);
    assert_eq!(seen(&w, BOB_ID).on, "ext");
    w.pbx.set_redirect_enabled("int-2", true);
    w.pbx.reset_records();
    w.once(END, &[]).expect_code(0);
    assert_eq!(seen(&w, BOB_ID).on, "int", "the user's own is theirs now");
    let writes: Vec<String> = w.pbx.writes().into_iter().map(|x| x.path).collect();
    assert_eq!(writes, ["/rest/redirects/ext-2"]);
}

/// A DND that was on before the appointment is the user's: when they switch it off during the
/// appointment, we do not switch it on (not ours within the same wanted stretch).
fn not_ours_then_off(backend: Backend) {
    let mut w = World::new(backend);
    w.pbx.set_dnd(ALICE_ID, true);
    w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
    w.once(AT, &[]).expect_code(0);
    w.pbx.set_dnd(ALICE_ID, false);
    w.once("2026-12-01T10:00:00Z", &[]).expect_code(0);
    w.once("2026-12-01T10:15:00Z", &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "");
    assert_eq!(w.pbx_writes(), 0, "{:?}", w.pbx.writes());
}

/// A user who switches on what we switched off keeps it: the next appointment's end does not
/// touch it, since it was not ours.
fn manual_on_after_our_off(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars.add(ALICE, appt(START, END, Busy, "A"));
    w.once(AT, &[]).expect_code(0);
    w.once(END, &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "");
    w.pbx.set_dnd(ALICE_ID, true);
    w.once("2026-12-01T11:00:00Z", &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
}

/// A second identical run writes nothing, and reads only where something of ours is on.
fn idle_second_run(backend: Backend) {
    let mut w = World::new(backend);
    w.set("chat.set_presence", "true")
        .set("chat.subject_as_text", "true");
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    w.calendars.add(BOB, appt(START, END, Oof, "Vacation"));
    w.once(AT, &[]).expect_code(0);
    assert!(w.pbx_writes() > 0);
    w.pbx.reset_records();

    w.once("2026-12-01T09:31:00Z", &[]).expect_code(0);
    assert_eq!(w.pbx.writes(), vec![], "writes of an idle run");
    assert_eq!(w.pbx.chat_calls(), vec![], "chat calls of an idle run");
    // Alice's DND and Bob's forwarding are ours: each is read once to see a manual change;
    // Carol has nothing of ours and costs nothing.
    let reads = w.pbx.requests();
    assert_eq!(
        w.pbx.request_count("GET /rest/users/{id}/phoneconfig"),
        1,
        "{reads:?}"
    );
    assert_eq!(w.pbx.request_count("GET /rest/redirects"), 1, "{reads:?}");
}

/// With nothing of ours on and nothing to change, a run reads the directory and nothing else.
fn idle_run_reads_nothing(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars.add(ALICE, appt(START, END, Free, "Lunch"));
    w.calendars.add(
        BOB,
        appt(
            "2026-12-01T11:00:00Z",
            "2026-12-01T12:00:00Z",
            Busy,
            "Later",
        ),
    );
    w.once(AT, &[]).expect_code(0);
    let allowed = [
        "GET /rest/login",
        "POST /rest/login",
        "DELETE /rest/login",
        "GET /rest/users",
        "GET /rest/groups",
        "GET /rest/groups/{id}",
    ];
    let reads = w.pbx.requests();
    assert!(
        reads.keys().all(|k| allowed.contains(&k.as_str())),
        "only the directory is read: {reads:?}"
    );
    assert_eq!(w.pbx_writes(), 0);
}

/// `--dry-run` prints the contract's lines and writes nothing, neither to the PBX nor to the
/// state file.
fn dry_run(backend: Backend) {
    let mut w = World::new(backend);
    w.set("chat.set_presence", "true")
        .set("chat.subject_as_text", "true");
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    w.calendars
        .add(BOB, appt(START, END, Oof, "Vacation \"Rome\""));
    let out = w.once(AT, &["--dry-run"]);
    out.expect_code(0);
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "alice@example.com dnd off -> on (Busy \"Weekly sync\" until 2026-12-01T10:30:00Z)",
            "alice@example.com presence AVAILABLE -> DO_NOT_DISTURB (Busy \"Weekly sync\" until 2026-12-01T10:30:00Z)",
            "alice@example.com text \"\" -> \"Weekly sync\" (Busy \"Weekly sync\" until 2026-12-01T10:30:00Z)",
            "bob@example.com forward +4972112345602 off -> on (OOF \"Vacation \\\"Rome\\\"\" until 2026-12-01T10:30:00Z)",
            "bob@example.com presence AVAILABLE -> EXTENDED_AWAY (OOF \"Vacation \\\"Rome\\\"\" until 2026-12-01T10:30:00Z)",
            "bob@example.com text \"\" -> \"Vacation \\\"Rome\\\"\" (OOF \"Vacation \\\"Rome\\\"\" until 2026-12-01T10:30:00Z)",
        ],
        "{out}"
    );
    assert_eq!(w.pbx_writes(), 0, "{:?}", w.pbx.writes());
    assert_eq!(w.state(), None, "a dry run writes no state file");
    assert_eq!(w.pbx.logouts(), 1);

    // After a real run, a dry run at the end shows the switch back, and changes nothing.
    w.once(AT, &[]).expect_code(0);
    let state = w.state().expect("state file");
    w.pbx.reset_records();
    let out = w.once(END, &["--dry-run"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "alice@example.com dnd on -> off (no appointment)"),
        "{out}"
    );
    assert_eq!(w.pbx.writes(), vec![]);
    assert_eq!(w.pbx.chat_calls(), vec![]);
    assert_eq!(w.state().as_deref(), Some(state.as_str()));
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
}

/// A restart in the middle of the appointment: the state file tells the next process that the
/// DND is ours. Without the file, the DND is nobody's and stays.
fn restart_mid_appointment(backend: Backend) {
    for keep_state in [true, false] {
        let mut w = World::new(backend);
        w.calendars
            .add(ALICE, appt(START, END, Busy, "Weekly sync"));
        w.once(START, &[]).expect_code(0);
        w.once(AT, &[]).expect_code(0);
        assert_eq!(w.pbx.writes().len(), 1, "the second process writes nothing");
        if !keep_state {
            fs::remove_file(w.state_path()).expect("remove the state file");
        }
        w.once(END, &[]).expect_code(0);
        let want = if keep_state { "" } else { "dnd" };
        assert_eq!(seen(&w, ALICE_ID).on, want, "keep_state {keep_state}");
    }
}

/// The STARFACE token becomes invalid in the middle of a run: the binary logs in again and
/// carries on.
fn token_expires_mid_run(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    w.pbx.set_delay(Duration::from_millis(100));
    let pbx = w.pbx.clone();
    let expirer = std::thread::spawn(move || {
        // Right after the group list was asked for, as a PBX restart would.
        for _ in 0..2000 {
            if pbx.request_count("GET /rest/groups") > 0 {
                pbx.expire_tokens();
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    });
    let out = w.once(AT, &[]);
    assert!(
        expirer.join().expect("expirer"),
        "the run never read groups"
    );
    out.expect_code(0);
    assert_eq!(w.pbx.logins(), 2, "{out}");
    assert_eq!(w.pbx.logouts(), 1, "{out}");
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
}

/// Throttling within the budget: retried and done.
fn throttled_then_ok(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    match backend {
        Backend::Ews | Backend::EwsCalendar => w.ews.server_busy(1, Some(300), true),
        Backend::Graph => w.graph.throttle_next(1, Some(1)),
    }
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
    assert!(out.elapsed < Duration::from_secs(10), "{out}");
    match backend {
        Backend::Ews => assert_eq!(w.ews.request_count(), 2),
        // One request per mailbox, and the throttled one again.
        Backend::EwsCalendar => assert_eq!(w.ews.request_count(), 4),
        // Three mailboxes in the first batch, of which one was throttled and asked again.
        Backend::Graph => assert_eq!(w.graph.inner_requests().len(), 4),
    }
}

/// ErrorServerBusy inside a 200 answer is throttling too.
fn server_busy_inside_200() {
    let mut w = World::new(Backend::Ews);
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    w.ews.server_busy(1, Some(200), false);
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
    assert_eq!(w.ews.request_count(), 2);
}

/// `once` retries a throttled request at most 3 times.
fn three_retries() {
    for (busy, code) in [(3, 0), (4, 1)] {
        let mut w = World::new(Backend::Ews);
        w.calendars
            .add(ALICE, appt(START, END, Busy, "Weekly sync"));
        w.ews.server_busy(busy, Some(100), true);
        let out = w.once(AT, &[]);
        assert_eq!(out.code, code, "{busy} busy answers:\n{out}");
        assert_eq!(w.ews.request_count(), 4, "{out}");
    }
}

/// A wait past the 60 s budget is not started: exit 1 at once, nothing written, logged out.
fn throttled_past_budget(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    match backend {
        Backend::Ews | Backend::EwsCalendar => w.ews.unavailable(1, 503, Some(120)),
        Backend::Graph => w.graph.unavailable_next(1, Some(120)),
    }
    let out = w.once(AT, &[]);
    out.expect_code(1);
    assert!(out.elapsed < Duration::from_secs(5), "{out}");
    assert!(!out.log_lines("ERROR").is_empty(), "{out}");
    assert_eq!(w.pbx_writes(), 0);
    assert_eq!(w.pbx.logouts(), 1);
}

/// One unreadable mailbox fails that user only: the others are handled, the exit code is 1.
fn mailbox_error(backend: Backend) {
    let mut w = World::new(backend);
    for email in [ALICE, BOB, CAROL] {
        w.calendars
            .add(email, appt(START, END, Busy, "Weekly sync"));
    }
    match backend {
        Backend::Ews | Backend::EwsCalendar => {
            w.ews.mailbox_error(BOB, "ErrorMailRecipientNotFound")
        }
        Backend::Graph => w.graph.deny(BOB),
    }
    let out = w.once(AT, &[]);
    out.expect_code(1);
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
    assert_eq!(seen(&w, BOB_ID).on, "");
    assert_eq!(seen(&w, CAROL_ID).on, "dnd");
    let errors = out.log_lines("ERROR");
    assert!(
        errors.iter().any(|l| l.contains(BOB)),
        "an error names bob:\n{out}"
    );
    assert!(
        !errors
            .iter()
            .any(|l| l.contains(ALICE) || l.contains(CAROL)),
        "{out}"
    );
    assert_eq!(w.pbx.logouts(), 1);
}

/// A corrupt state file is moved aside with an error logged; the run goes on and succeeds.
fn corrupt_state(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    fs::write(w.state_path(), "{\"version\":1,\"users\":{\"1\":").expect("write garbage");
    // A dry run reports it and leaves it where it is.
    let out = w.once(AT, &["--dry-run"]);
    out.expect_code(0);
    assert!(out.stderr.contains("corrupt"), "{out}");
    assert_eq!(fs::read_dir(w.state_dir()).expect("list").count(), 1);
    let before = unix_now();
    let out = w.once(AT, &[]);
    let after = unix_now();
    out.expect_code(0);
    assert!(
        out.log_lines("ERROR").iter().any(|l| l.contains("corrupt")),
        "{out}"
    );
    let aside: Vec<String> = fs::read_dir(w.state_dir())
        .expect("list the state dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let stamp: i64 = aside[0]["state.json.corrupt-".len()..]
        .parse()
        .expect("unix time");
    assert!(
        (before..=after).contains(&stamp),
        "{stamp} in {before}..={after}"
    );
    assert_eq!(
        fs::read_to_string(w.state_dir().join(&aside[0])).expect("read aside"),
        "{\"version\":1,\"users\":{\"1\":"
    );
    assert!(w.state().expect("new state").contains(ALICE));
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
}

/// A redirect without a destination is never switched on; a warning, and still exit 0. `check`
/// reports it and exits 1.
fn empty_destination(backend: Backend) {
    let pbx = standard_pbx_with_erin("");
    let mut w = World::with_pbx(backend, pbx);
    w.calendars.add(ERIN, appt(START, END, Oof, "Vacation"));
    w.calendars.add(ALICE, appt(START, END, Oof, "Vacation"));
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert_eq!(seen(&w, ERIN_ID).on, "");
    assert_eq!(seen(&w, ALICE_ID).on, "ext");
    let warnings = out.log_lines("WARN");
    assert_eq!(
        warnings.iter().filter(|l| l.contains(ERIN)).count(),
        1,
        "one warning for erin:\n{out}"
    );
    assert!(
        warnings.iter().any(|l| l.contains("+4972112345605")),
        "{out}"
    );

    let out = w.check();
    out.expect_code(1);
    assert!(out.stdout.contains("MISSING for +4972112345605"), "{out}");
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

const ERIN: &str = "erin@example.com";
const ERIN_ID: i64 = 5;

/// The usual PBX with erin in the group too; erin's external redirect goes to `destination`.
fn standard_pbx_with_erin(destination: &str) -> ess_sim::starface::StarfaceSim {
    let pbx = empty_pbx();
    person(&pbx, ALICE_ID, "alice", "01715550101");
    person(&pbx, BOB_ID, "bob", "01715550102");
    person(&pbx, CAROL_ID, "carol", "01715550103");
    person(&pbx, ERIN_ID, "erin", destination);
    pbx.group(10, GROUP, &[ALICE_ID, BOB_ID, CAROL_ID, ERIN_ID]);
    pbx
}

/// `check`: the table and exit 0 when all is well; 1 with an unreadable mailbox; a missing
/// destination only counts when forwarding is configured.
fn check(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    let out = w.check();
    out.expect_code(0);
    let table: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("LOGIN"))
        .collect();
    assert_eq!(table.len(), 5, "{out}");
    assert!(
        table[0].contains("E-MAIL") && table[0].contains("MAILBOX"),
        "{out}"
    );
    for (line, email) in table[1..].iter().zip([ALICE, BOB, CAROL]) {
        assert!(line.contains(email), "{out}");
        assert!(line.contains("ok ("), "{out}");
        assert!(line.ends_with("set"), "{out}");
    }
    assert_eq!(w.pbx_writes(), 0, "check writes nothing");
    assert_eq!((w.pbx.logins(), w.pbx.logouts()), (1, 1));

    match backend {
        Backend::Ews | Backend::EwsCalendar => w.ews.mailbox_error(BOB, "ErrorNoFreeBusyAccess"),
        Backend::Graph => w.graph.not_enabled(BOB),
    }
    let out = w.check();
    out.expect_code(1);
    let bob = out
        .stdout
        .lines()
        .find(|l| l.contains(BOB))
        .expect("bob's row");
    assert!(bob.contains("ERROR"), "{out}");

    // Erin's missing destination fails the check only while some show-as forwards.
    let mut w = World::with_pbx(backend, standard_pbx_with_erin(""));
    w.calendars.add_mailbox(ERIN);
    w.set("actions.oof", "\"none\"");
    let out = w.check();
    out.expect_code(0);
    assert!(out.stdout.contains("(not used)"), "{out}");
    w.set("actions.tentative", "\"forward\"");
    w.check().expect_code(1);
}

/// Every command that logged in logs out, whatever happened.
fn logout_always(backend: Backend) {
    let runs: &[(&str, &[&str], i32)] = &[
        ("once", &["once", "--at", AT], 0),
        ("dry run", &["once", "--dry-run", "--at", AT], 0),
        ("check", &["check"], 0),
        ("once, Exchange down", &["once", "--at", AT], 1),
        ("check, Exchange down", &["check"], 1),
    ];
    for (name, args, code) in runs {
        let mut w = World::new(backend);
        w.calendars
            .add(ALICE, appt(START, END, Busy, "Weekly sync"));
        if *code == 1 {
            match backend {
                Backend::Ews | Backend::EwsCalendar => w.ews.fault(10, "ErrorInternalServerError"),
                Backend::Graph => w.graph.malformed_next(10),
            }
        }
        let out = w.run_with(args, Duration::from_secs(60));
        assert_eq!(out.code, *code, "{name}:\n{out}");
        assert_eq!(w.pbx.logins(), 1, "{name}:\n{out}");
        assert_eq!(w.pbx.logouts(), 1, "{name}:\n{out}");
        assert_eq!(w.pbx.active_tokens(), 0, "{name}");
    }
}

/// A configuration error (unknown key) is exit 2 naming the key, before any login.
fn unknown_key(backend: Backend) {
    let mut w = World::new(backend);
    w.set("sync.poll_intervall_secs", "60");
    let out = w.once(AT, &[]);
    out.expect_code(2);
    assert!(out.stderr.contains("poll_intervall_secs"), "{out}");
    assert!(out.stderr.contains("config.toml"), "{out}");
    assert_eq!(w.pbx.logins(), 0);
}

/// Secrets never show up, also not when logins fail. (Every run of the harness checks its
/// output for them; these runs are the ones most likely to quote a request.)
fn secrets_in_failures(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    // The PBX and Exchange now expect other credentials than the configuration holds.
    w.pbx
        .admin(SF_LOGIN, "another-password", SimLoginType::Internal);
    let out = w.once(AT, &[]);
    out.expect_code(1);
    assert!(out.stderr.to_lowercase().contains("login"), "{out}");
    w.pbx.admin(SF_LOGIN, SF_PASSWORD, SimLoginType::Internal);
    match backend {
        Backend::Ews | Backend::EwsCalendar => w.ews.reject_auth(10),
        Backend::Graph => w.token.set_secret_expired(true),
    }
    w.once(AT, &[]).expect_code(1);
    w.check().expect_code(1);
    // A run that succeeds at debug level shows nothing either (checked by the harness).
    match backend {
        Backend::Ews | Backend::EwsCalendar => w.ews.reject_auth(0),
        Backend::Graph => w.token.set_secret_expired(false),
    }
    w.set("chat.set_presence", "true");
    w.once(AT, &[]).expect_code(0);
}

/// Subjects with markup characters, quotes and umlauts arrive unchanged in the chat text, the
/// dry-run line and the log (EWS written with character references or CDATA).
fn escaping(backend: Backend) {
    let subject = "R&D <Sync> \"Ärger\" – über 10 % (Team)";
    let mut w = World::new(backend);
    match backend {
        Backend::Ews => w.ews.subject_style(ess_sim::ews::SubjectStyle::CharRefs),
        Backend::EwsCalendar => w.ews.subject_style(ess_sim::ews::SubjectStyle::Cdata),
        Backend::Graph => {}
    }
    w.set("chat.subject_as_text", "true");
    w.calendars
        .add(ALICE, appt(START, END, Busy, &format!("{subject} (DND)")));
    let out = w.once(AT, &["--dry-run"]);
    out.expect_code(0);
    let quoted = "\"R&D <Sync> \\\"Ärger\\\" – über 10 % (Team)\"";
    assert!(
        out.stdout.lines().any(|l| l
            == format!(
            "alice@example.com text \"\" -> {quoted} (Busy {quoted} until 2026-12-01T10:30:00Z)"
        )),
        "{out}"
    );
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert_eq!(
        seen(&w, ALICE_ID),
        expect("dnd", Some(("AVAILABLE", subject)))
    );
    assert!(
        out.stderr
            .contains(&format!("DND on (Busy {quoted} until 10:30Z)")),
        "{out}"
    );
}

/// A write the PBX refuses fails that user only (exit 1) and is not recorded as ours; the next
/// run, with the PBX well again, does it.
fn pbx_write_fails(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
    w.calendars.add(BOB, appt(START, END, Busy, "Sync"));
    w.calendars.add(CAROL, appt(START, END, Oof, "Trip"));
    w.pbx
        .fail_path(&format!("/rest/users/{ALICE_ID}/phoneconfig"));
    w.pbx.fail_path("/rest/redirects/ext-3");
    let out = w.once(AT, &[]);
    out.expect_code(1);
    let errors = out.log_lines("ERROR");
    assert!(errors.iter().any(|l| l.contains(ALICE)), "{out}");
    assert!(errors.iter().any(|l| l.contains(CAROL)), "{out}");
    assert_eq!(seen(&w, BOB_ID).on, "dnd");
    assert_eq!(seen(&w, CAROL_ID).on, "");
    let state = w.state().expect("state file");
    assert!(
        !state.contains(CAROL),
        "a failed write is not ours: {state}"
    );

    w.pbx.clear_faults();
    w.once(AT, &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
    assert_eq!(seen(&w, CAROL_ID).on, "ext");
    w.once(END, &[]).expect_code(0);
    for id in [ALICE_ID, BOB_ID, CAROL_ID] {
        assert_eq!(seen(&w, id).on, "", "user {id}");
    }
}

/// Exchange or STARFACE unreachable: exit 1 soon, with an error that names what failed.
fn unreachable(backend: Backend) {
    let closed = "\"http://127.0.0.1:9\"";
    let exchange_key = match backend {
        Backend::Graph => "exchange.graph_url",
        _ => "exchange.url",
    };
    let cases: &[(&str, &str, &str)] = &[
        ("Exchange", exchange_key, "Exchange"),
        ("STARFACE", "starface.url", "STARFACE"),
    ];
    for (name, key, says) in cases {
        let mut w = World::new(backend);
        w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
        w.set(key, closed);
        let out = w.once(AT, &[]);
        out.expect_code(1);
        assert!(out.elapsed < Duration::from_secs(10), "{name}:\n{out}");
        assert!(
            !out.stderr.contains("STARFACE: STARFACE"),
            "said once:\n{out}"
        );
        assert!(
            out.log_lines("ERROR").iter().any(|l| l.contains(says)),
            "{name}:\n{out}"
        );
        assert_eq!(w.pbx_writes(), 0, "{name}");
        assert_eq!(w.pbx.active_tokens(), 0, "{name}: logged out");
        let out = w.check();
        out.expect_code(1);
        assert!(
            !out.stderr.contains("STARFACE: STARFACE"),
            "said once:\n{out}"
        );
    }
}

/// STARFACE sends fields we do not know: every object written goes back with all of them.
fn unknown_fields_kept(backend: Backend) {
    let mut w = World::new(backend);
    w.pbx.set_extra_fields(true);
    w.set("actions.forward_internal_calls", "true");
    w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
    w.calendars.add(BOB, appt(START, END, Oof, "Trip"));
    w.once(AT, &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
    assert_eq!(seen(&w, BOB_ID).on, "ext int");
    w.once(END, &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "");
    assert_eq!(seen(&w, BOB_ID).on, "");
}

/// Only the user's own "always" redirects are switched: never one on a group number, never a
/// busy or timeout redirect.
fn other_redirects_untouched(backend: Backend) {
    let pbx = standard_pbx();
    pbx.group_number(10, "2900")
        .group_redirect(
            "grp-1",
            ALICE_ID,
            "2900",
            SimDestination::Phone("0800".into()),
            false,
        )
        .redirect(
            "busy-1",
            ALICE_ID,
            "+4972112345601",
            SimTrigger::Busy,
            SimDestination::Phone("0800".into()),
            false,
        )
        .redirect(
            "timeout-1",
            ALICE_ID,
            "21",
            SimTrigger::Timeout,
            SimDestination::Mailbox("vm1".into()),
            false,
        );
    let mut w = World::with_pbx(backend, pbx);
    w.set("actions.forward_internal_calls", "true");
    w.calendars.add(ALICE, appt(START, END, Oof, "Trip"));
    w.once(AT, &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "ext int");
    for id in ["grp-1", "busy-1", "timeout-1"] {
        assert_eq!(w.pbx.redirect_enabled(id), Some(false), "{id}");
    }
}

/// Redirects on numbers that are not in the user's number list: up to 6 digits and not starting
/// with `+` or `0` count as internal, others as external; an external number matches with any
/// prefix in front.
fn number_classification(backend: Backend) {
    let pbx = standard_pbx();
    let phone = || SimDestination::Phone("0800".into());
    let always = SimTrigger::Always;
    pbx.redirect("short", ALICE_ID, "2999", always, phone(), false)
        .redirect("zero", ALICE_ID, "0721999888", always, phone(), false)
        .redirect("plus", ALICE_ID, "+12", always, phone(), false)
        .redirect("long", ALICE_ID, "1234567", always, phone(), false)
        .redirect(
            "prefixed",
            ALICE_ID,
            "00 49 721 12345601",
            always,
            phone(),
            false,
        );
    let mut w = World::with_pbx(backend, pbx);
    w.calendars.add(ALICE, appt(START, END, Oof, "Trip"));
    w.once(AT, &[]).expect_code(0);
    let on = |id: &str| w.pbx.redirect_enabled(id) == Some(true);
    let got: Vec<(&str, bool)> = [
        "ext-1", "int-1", "short", "zero", "plus", "long", "prefixed",
    ]
    .into_iter()
    .map(|id| (id, on(id)))
    .collect();
    assert_eq!(
        got,
        [
            ("ext-1", true),
            ("int-1", false),
            ("short", false),
            ("zero", true),
            ("plus", true),
            ("long", true),
            ("prefixed", true),
        ]
    );
}

/// The PBX goes away in the middle of a run: what was done is kept in the state file, the rest
/// fails (exit 1); the next run finishes the job, and the end switches everything back.
fn pbx_dies_mid_run(backend: Backend) {
    let mut w = World::new(backend);
    for email in [ALICE, BOB, CAROL] {
        w.calendars.add(email, appt(START, END, Busy, "Sync"));
    }
    w.pbx.set_delay(Duration::from_millis(200));
    let pbx = w.pbx.clone();
    let killer = std::thread::spawn(move || {
        for _ in 0..5000 {
            if !pbx.writes().is_empty() {
                pbx.set_down(true);
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    });
    let out = w.once(AT, &[]);
    assert!(killer.join().expect("killer"), "no write seen");
    out.expect_code(1);
    let on: Vec<i64> = [ALICE_ID, BOB_ID, CAROL_ID]
        .into_iter()
        .filter(|id| w.pbx.dnd(*id) == Some(true))
        .collect();
    assert_eq!(on.len(), 1, "{out}");
    let state = w.state().expect("the state file was saved");
    assert!(state.contains(&format!("\"{}\":", on[0])), "{state}");

    w.pbx.clear_faults();
    w.pbx.reset_records();
    w.once(AT, &[]).expect_code(0);
    assert_eq!(w.pbx.writes().len(), 2, "only the two left");
    w.once(END, &[]).expect_code(0);
    for id in [ALICE_ID, BOB_ID, CAROL_ID] {
        assert_eq!(w.pbx.dnd(id), Some(false), "user {id}");
    }
}

/// A user who leaves the group while something of ours is on gets it switched back.
fn member_leaves_group(backend: Backend) {
    let mut w = World::new(backend);
    w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
    w.once(AT, &[]).expect_code(0);
    let state = w.state().expect("state file");

    let pbx = empty_pbx();
    person(&pbx, ALICE_ID, "alice", "01715550101");
    person(&pbx, BOB_ID, "bob", "01715550102");
    pbx.group(10, GROUP, &[BOB_ID]).set_dnd(ALICE_ID, true);
    let mut w = World::with_pbx(backend, pbx);
    w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
    fs::write(w.state_path(), state).expect("carry the state over");
    w.once("2026-12-01T09:45:00Z", &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "");
    assert!(!w.state().expect("state").contains(ALICE));
}

/// Many users: every one handled, in as few Exchange requests as the contract says (100
/// mailboxes per availability request, 20 per Graph batch), answers matched to the right user.
fn many_users(backend: Backend) {
    const N: i64 = 130;
    let pbx = empty_pbx();
    let mut members = Vec::new();
    for id in 1..=N {
        person(&pbx, id, &format!("user{id}"), &format!("0171555{id:04}"));
        members.push(id);
    }
    pbx.group(10, GROUP, &members);
    let mut w = World::with_pbx(backend, pbx);
    for id in 1..=N {
        // Every third user is free, so that a mix-up between users would show.
        let show_as = match id % 3 {
            0 => Free,
            1 => Busy,
            _ => Oof,
        };
        w.calendars.add(
            &format!("user{id}@example.com"),
            appt(START, END, show_as, &format!("Subject {id}")),
        );
    }
    w.once(AT, &[]).expect_code(0);
    for id in 1..=N {
        let want = match id % 3 {
            0 => "",
            1 => "dnd",
            _ => "ext",
        };
        assert_eq!(seen(&w, id).on, want, "user {id}");
    }
    match backend {
        Backend::Ews => assert_eq!(w.ews.request_count(), 2),
        Backend::EwsCalendar => assert_eq!(w.ews.request_count(), N as usize),
        Backend::Graph => assert_eq!(w.graph.batch_sizes().len(), 7),
    }
}

/// E-mail addresses in STARFACE are matched to mailboxes whatever their case; a member without
/// an e-mail address is skipped with a warning and does not fail the run.
fn directory_oddities(backend: Backend) {
    let pbx = empty_pbx();
    pbx.user(ALICE_ID, "1001", "Alice@Example.COM", "Alice", "Test")
        .user(BOB_ID, "1002", "", "Bob", "Test")
        .group(10, GROUP, &[ALICE_ID, BOB_ID]);
    let mut w = World::with_pbx(backend, pbx);
    w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert_eq!(w.pbx.dnd(ALICE_ID), Some(true), "{out}");
    assert!(
        out.log_lines("WARN").iter().any(|l| l.contains("1002")),
        "a warning names bob's login:\n{out}"
    );
}

/// `--at` with an offset is the same instant as in UTC.
fn at_with_offset() {
    let mut w = World::new(Backend::Ews);
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    let utc = w.once(AT, &["--dry-run"]);
    let offset = w.once("2026-12-01T10:30:00+01:00", &["--dry-run"]);
    utc.expect_code(0);
    offset.expect_code(0);
    assert_eq!(utc.stdout, offset.stdout);
    assert!(!utc.stdout.is_empty());
}

/// Configuration errors: exit 2, naming the key; nothing logged in.
fn config_errors() {
    let cases: &[(&str, &str, &str)] = &[
        ("sync.poll_intervall_secs", "60", "poll_intervall_secs"),
        ("sync.poll_interval_secs", "\"often\"", "poll_interval_secs"),
        ("actions.busy", "\"sleep\"", "actions.busy"),
        (
            "starface.password_file",
            "\"/nonexistent/sf.secret\"",
            "password_file",
        ),
        ("exchange.backend", "\"owa\"", "backend"),
        ("log.level", "\"loud\"", "level"),
    ];
    for (key, value, says) in cases {
        let mut w = World::new(Backend::Ews);
        w.set(key, value);
        let out = w.once(AT, &[]);
        assert_eq!(out.code, 2, "{key} = {value}:\n{out}");
        assert!(out.stderr.contains(says), "{key} = {value}:\n{out}");
        assert!(
            out.stderr.contains("config.toml"),
            "{key} = {value}:\n{out}"
        );
        assert_eq!(w.pbx.logins(), 0);
    }
    let mut w = World::new(Backend::Ews);
    let out = w.run_with(&["once", "--at", "tomorrow"], Duration::from_secs(10));
    assert_eq!(out.code, 2, "{out}");
}

/// Configurations that work but deserve a warning: a key the backend does not use, a secret
/// in a config file others can read.
fn config_warnings() {
    let mut w = World::new(Backend::Graph);
    w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
    w.set("exchange.username", "\"svc@example.com\"");
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert!(
        out.log_lines("WARN").iter().any(|l| l.contains("username")),
        "{out}"
    );

    let mut w = World::new(Backend::Ews);
    w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
    w.remove("starface.password_file");
    w.set("starface.password", &format!("{SF_PASSWORD:?}"));
    w.config_mode = 0o644;
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert!(
        out.log_lines("WARN")
            .iter()
            .any(|l| l.contains("config.toml")),
        "{out}"
    );
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
    w.config_mode = 0o600;
    let out = w.once(END, &[]);
    assert!(out.log_lines("WARN").is_empty(), "{out}");
}

/// A secret from an environment variable, and an Active Directory API user.
fn env_secret_and_active_directory() {
    let pbx = standard_pbx();
    pbx.admin(SF_LOGIN, SF_PASSWORD, SimLoginType::ActiveDirectory);
    let mut w = World::with_pbx(Backend::Ews, pbx);
    w.set("starface.login_type", "\"active-directory\"");
    w.remove("starface.password_file");
    w.set("starface.password_env", "\"ESS_E2E_SF_PASSWORD\"");
    w.env("ESS_E2E_SF_PASSWORD", SF_PASSWORD);
    w.calendars.add(ALICE, appt(START, END, Busy, "Sync"));
    w.once(AT, &[]).expect_code(0);
    assert_eq!(seen(&w, ALICE_ID).on, "dnd");
    w.env("ESS_E2E_SF_PASSWORD", "");
    let out = w.once(AT, &[]);
    assert_eq!(out.code, 2, "an empty variable is no secret:\n{out}");
}

/// `log.file`: the log goes to the file (appended), and nothing to stderr.
fn log_file() {
    let mut w = World::new(Backend::Ews);
    let log = w.dir().join("ess.log");
    w.set("log.file", &format!("{:?}", log.display().to_string()));
    w.calendars
        .add(ALICE, appt(START, END, Busy, "Weekly sync"));
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert_eq!(out.stderr, "");
    let text = fs::read_to_string(&log).expect("log file");
    assert!(text.contains("alice@example.com: DND on"), "{text}");
    w.once(END, &[]).expect_code(0);
    let text = fs::read_to_string(&log).expect("log file");
    assert!(
        text.contains("alice@example.com: DND on"),
        "appended: {text}"
    );
    assert!(text.contains("alice@example.com: DND off"), "{text}");
    w.assert_no_secrets(&Output {
        code: 0,
        stdout: String::new(),
        stderr: text,
        elapsed: Duration::ZERO,
    });
}

/// `--help`, `--version`, and usage errors.
fn command_line() {
    let mut w = World::new(Backend::Ews);
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--help"], 0, "usage"),
        (&["--version"], 0, "exchange-status-sync 0."),
        (&["once", "--at", "2026-12-01T09:30:00"], 2, "--at"),
        (&["check", "--dry-run"], 2, "--dry-run"),
        (&["start"], 2, "start"),
    ];
    for (args, code, says) in cases {
        let out = w.run_with(args, Duration::from_secs(10));
        assert_eq!(out.code, *code, "{args:?}:\n{out}");
        assert!(
            out.stdout.contains(says) || out.stderr.contains(says),
            "{args:?}:\n{out}"
        );
    }
    let missing = w.dir().join("nope.toml");
    let out = std::process::Command::new(BIN)
        .args(["once", "-c", &missing.display().to_string()])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope.toml"), "{stderr}");
    assert_eq!(w.pbx.logins(), 0);
}

macro_rules! every_backend {
    ($($name:ident),* $(,)?) => {
        mod ews {
            $(#[test] fn $name() { super::$name(super::Backend::Ews) })*
        }
        mod ews_calendar {
            $(#[test] fn $name() { super::$name(super::Backend::EwsCalendar) })*
        }
        mod graph {
            $(#[test] fn $name() { super::$name(super::Backend::Graph) })*
        }
    };
}

every_backend!(
    rules,
    private_keywords,
    overlapping,
    chat,
    chat_fields,
    switch_back,
    own_dnd_survives,
    manual_change,
    manual_on_after_our_off,
    manual_change_one_redirect,
    not_ours_then_off,
    idle_second_run,
    idle_run_reads_nothing,
    dry_run,
    restart_mid_appointment,
    token_expires_mid_run,
    throttled_then_ok,
    throttled_past_budget,
    mailbox_error,
    corrupt_state,
    empty_destination,
    check,
    logout_always,
    unknown_key,
    secrets_in_failures,
    escaping,
    pbx_write_fails,
    unreachable,
    unknown_fields_kept,
    other_redirects_untouched,
    number_classification,
    pbx_dies_mid_run,
    member_leaves_group,
    many_users,
    directory_oddities,
);

#[test]
fn ews_server_busy_inside_200() {
    server_busy_inside_200();
}

/// The harness's secret check itself: it must catch each kind of leak it claims to.
#[test]
fn the_secret_check_catches_leaks() {
    let w = World::new(Backend::Ews);
    let token = "0123456789abcdef".repeat(8);
    let mut leaks = w.secrets();
    leaks.push(token);
    for leak in leaks {
        let out = Output {
            code: 0,
            stdout: String::new(),
            stderr: format!("2026-12-01T09:30:00Z DEBUG sent {leak} somewhere\n"),
            elapsed: Duration::ZERO,
        };
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.assert_no_secrets(&out)));
        assert!(caught.is_err(), "{leak} not caught");
    }
}

#[test]
fn ews_at_most_three_retries() {
    three_retries();
}

#[test]
fn at_with_an_offset() {
    at_with_offset();
}

#[test]
fn log_to_a_file() {
    log_file();
}

#[test]
fn command_line_basics() {
    command_line();
}

#[test]
fn configuration_warnings() {
    config_warnings();
}

#[test]
fn configuration_errors() {
    config_errors();
}

#[test]
fn secret_from_the_environment_and_active_directory_login() {
    env_secret_and_active_directory();
}
