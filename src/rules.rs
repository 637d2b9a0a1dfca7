//! The behaviour rules of `docs/contract.md`, section 5: appointments at time `t` → the desired
//! state of one user. Pure: no I/O, no clock; time is a parameter.

use crate::config::{Action, Actions, ChatConfig};
use crate::model::{Appointment, Presence, ShowAs, Timestamp};

/// A keyword's effect on one feature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keywords {
    /// `(DND)` / `(Ruhe)` → `Some(true)`, `(No DND)` / `(Keine Ruhe)` → `Some(false)`.
    pub dnd: Option<bool>,
    /// `(Call forwarding)` / `(Anrufe weiterleiten)` and their negations.
    pub forward: Option<bool>,
    /// `(No action)` / `(Keine Aktion)`: drop the default action.
    pub no_action: bool,
}

enum Keyword {
    Dnd(bool),
    Forward(bool),
    NoAction,
}

/// The keyword table of MISSION.md, both languages; exact and case-sensitive.
fn keyword(text: &str) -> Option<Keyword> {
    Some(match text {
        "DND" | "Ruhe" => Keyword::Dnd(true),
        "No DND" | "Keine Ruhe" => Keyword::Dnd(false),
        "Call forwarding" | "Anrufe weiterleiten" => Keyword::Forward(true),
        "No call forwarding" | "Keine Anrufe weiterleiten" => Keyword::Forward(false),
        "No action" | "Keine Aktion" => Keyword::NoAction,
        _ => return None,
    })
}

/// Splits a subject into its text (trailing keywords removed, trimmed) and the keywords.
///
/// Scanning from the end, each parenthesised group that is a keyword is taken off; the first
/// group that is not a keyword (or anything that is not a group) stops the scan. The keyword
/// nearest the end wins when two contradict each other, so a feature is only set the first time
/// the backwards scan meets it.
pub fn parse_subject(subject: &str) -> (&str, Keywords) {
    let mut kw = Keywords::default();
    let mut rest = subject.trim_end();
    while let Some(inner_end) = rest.strip_suffix(')') {
        // Keywords hold no parentheses, so the group starts at the last '('.
        let Some(open) = inner_end.rfind('(') else {
            break;
        };
        let Some(k) = keyword(&inner_end[open + 1..]) else {
            break;
        };
        match k {
            Keyword::Dnd(on) => {
                kw.dnd.get_or_insert(on);
            }
            Keyword::Forward(on) => {
                kw.forward.get_or_insert(on);
            }
            Keyword::NoAction => kw.no_action = true,
        }
        rest = inner_end[..open].trim_end();
    }
    (rest.trim(), kw)
}

/// What one appointment wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wants {
    pub dnd: bool,
    pub forward: bool,
}

/// Rules 1 to 3 for one appointment.
pub fn wants(appointment: &Appointment, actions: &Actions) -> Wants {
    let kw = appointment
        .subject
        .as_deref()
        .map(parse_subject)
        .map(|(_, kw)| kw)
        .unwrap_or_default();
    let default = if kw.no_action {
        Action::None
    } else {
        actions.for_show_as(appointment.show_as)
    };
    Wants {
        dnd: kw.dnd.unwrap_or(default == Action::Dnd),
        forward: kw.forward.unwrap_or(default == Action::Forward),
    }
}

/// An appointment is active at `t` when start ≤ t < end (so never when zero-length or inverted).
pub fn is_active(a: &Appointment, t: Timestamp) -> bool {
    a.start <= t && t < a.end
}

/// The text an appointment shows: private → `private_text`; else the subject without its
/// keywords; unknown subject → empty.
pub fn display_text(a: &Appointment, chat: &ChatConfig) -> String {
    if a.private {
        return chat.private_text.clone();
    }
    match &a.subject {
        Some(s) => parse_subject(s).0.to_string(),
        None => String::new(),
    }
}

/// The appointment behind a decision, for log lines and `--dry-run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub show_as: ShowAs,
    /// As `display_text`: never a private subject.
    pub text: String,
    pub end: Timestamp,
}

/// The desired value of an on/off feature (DND, forwarding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switch {
    pub on: bool,
    /// The dominant active appointment wanting it (when on).
    pub cause: Option<Cause>,
    /// When on: the end of the wanted stretch — the active wanting appointments, extended by
    /// every wanting appointment that starts at or before the stretch's end (overlapping or
    /// back-to-back).
    pub stretch_end: Option<Timestamp>,
    /// When on: the latest start among the active wanting appointments. An override recorded
    /// with a stretch end at or before this belongs to an earlier stretch (there was a gap).
    pub latest_start: Option<Timestamp>,
}

/// Everything one user should have at `t`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub dnd: Switch,
    pub forward: Switch,
    pub presence: Presence,
    pub text: String,
    /// The dominant active appointment, if any.
    pub dominant: Option<Cause>,
}

/// Dominance (section 5): OOF > Busy > Tentative > WorkingElsewhere > Free; ties: earlier
/// start, then later end, then the one read first. Returns the index into `active`.
fn dominant<'a>(active: &[&'a Appointment]) -> Option<&'a Appointment> {
    let mut best: Option<&Appointment> = None;
    for &a in active {
        let better = match best {
            None => true,
            Some(b) => {
                (a.show_as, std::cmp::Reverse(a.start), a.end)
                    > (b.show_as, std::cmp::Reverse(b.start), b.end)
            }
        };
        if better {
            best = Some(a);
        }
    }
    best
}

fn presence_of(show_as: ShowAs) -> Presence {
    match show_as {
        ShowAs::Free | ShowAs::WorkingElsewhere | ShowAs::Tentative => Presence::Available,
        ShowAs::Busy => Presence::DoNotDisturb,
        ShowAs::Oof => Presence::ExtendedAway,
    }
}

fn cause(a: &Appointment, chat: &ChatConfig) -> Cause {
    Cause {
        show_as: a.show_as,
        text: display_text(a, chat),
        end: a.end,
    }
}

/// The desired value of one switch, given which appointments want it.
fn switch(
    appointments: &[Appointment],
    t: Timestamp,
    wanting: impl Fn(&Appointment) -> bool,
    chat: &ChatConfig,
) -> Switch {
    let active: Vec<&Appointment> = appointments
        .iter()
        .filter(|a| is_active(a, t) && wanting(a))
        .collect();
    let Some(top) = dominant(&active) else {
        return Switch {
            on: false,
            cause: None,
            stretch_end: None,
            latest_start: None,
        };
    };
    let mut end = active.iter().map(|a| a.end).max().unwrap_or(top.end);
    // Chain the wanting appointments that start before (or exactly when) the stretch ends.
    let mut later: Vec<&Appointment> = appointments
        .iter()
        .filter(|a| a.start < a.end && a.end > end && wanting(a))
        .collect();
    later.sort_by_key(|a| a.start);
    for a in later {
        if a.start > end {
            break;
        }
        end = end.max(a.end);
    }
    Switch {
        on: true,
        cause: Some(cause(top, chat)),
        stretch_end: Some(end),
        latest_start: active.iter().map(|a| a.start).max(),
    }
}

/// The desired state of one user at `t`.
pub fn desired(
    appointments: &[Appointment],
    t: Timestamp,
    actions: &Actions,
    chat: &ChatConfig,
) -> Desired {
    let active: Vec<&Appointment> = appointments.iter().filter(|a| is_active(a, t)).collect();
    let top = dominant(&active);
    let text = if chat.join_parallel_subjects {
        let mut ordered: Vec<(usize, &Appointment)> = active.iter().copied().enumerate().collect();
        ordered.sort_by_key(|(i, a)| (a.start, a.end, *i));
        let texts: Vec<String> = ordered
            .iter()
            .map(|(_, a)| display_text(a, chat))
            .filter(|s| !s.is_empty())
            .collect();
        texts.join(" | ")
    } else {
        top.map(|a| display_text(a, chat)).unwrap_or_default()
    };
    Desired {
        dnd: switch(appointments, t, |a| wants(a, actions).dnd, chat),
        forward: switch(appointments, t, |a| wants(a, actions).forward, chat),
        presence: top.map_or(Presence::Available, |a| presence_of(a.show_as)),
        text,
        dominant: top.map(|a| cause(a, chat)),
    }
}

/// The first start or end of any appointment strictly after `t`.
pub fn next_boundary(appointments: &[Appointment], t: Timestamp) -> Option<Timestamp> {
    appointments
        .iter()
        .filter(|a| a.start < a.end)
        .flat_map(|a| [a.start, a.end])
        .filter(|&b| b > t)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn appt(start: i64, end: i64, show_as: ShowAs, subject: &str) -> Appointment {
        Appointment {
            start,
            end,
            show_as,
            subject: Some(subject.to_string()),
            private: false,
            all_day: false,
        }
    }

    fn check_subject(
        subject: &str,
        text: &str,
        dnd: Option<bool>,
        forward: Option<bool>,
        no_action: bool,
    ) {
        let (t, kw) = parse_subject(subject);
        assert_eq!(
            (t, kw),
            (
                text,
                Keywords {
                    dnd,
                    forward,
                    no_action
                }
            ),
            "{subject:?}"
        );
    }

    #[test]
    fn keywords_both_languages() {
        let n = None;
        check_subject("Meeting (DND)", "Meeting", Some(true), n, false);
        check_subject("Meeting (Ruhe)", "Meeting", Some(true), n, false);
        check_subject("Meeting (No DND)", "Meeting", Some(false), n, false);
        check_subject("Meeting (Keine Ruhe)", "Meeting", Some(false), n, false);
        check_subject("Trip (Call forwarding)", "Trip", n, Some(true), false);
        check_subject("Trip (Anrufe weiterleiten)", "Trip", n, Some(true), false);
        check_subject("Trip (No call forwarding)", "Trip", n, Some(false), false);
        check_subject(
            "Trip (Keine Anrufe weiterleiten)",
            "Trip",
            n,
            Some(false),
            false,
        );
        check_subject("Lunch (No action)", "Lunch", n, n, true);
        check_subject("Lunch (Keine Aktion)", "Lunch", n, n, true);
    }

    #[test]
    fn keyword_placement_and_case() {
        let n = None;
        // Wrong case is no keyword.
        check_subject("Meeting (dnd)", "Meeting (dnd)", n, n, false);
        check_subject("Meeting (ruhe)", "Meeting (ruhe)", n, n, false);
        check_subject("Meeting (No Dnd)", "Meeting (No Dnd)", n, n, false);
        check_subject("Meeting (no action)", "Meeting (no action)", n, n, false);
        // Inner whitespace must be exact.
        check_subject("Meeting ( DND )", "Meeting ( DND )", n, n, false);
        // In the middle: not a keyword.
        check_subject("(DND) Meeting", "(DND) Meeting", n, n, false);
        check_subject(
            "Meeting (DND) with Bob",
            "Meeting (DND) with Bob",
            n,
            n,
            false,
        );
        // Whitespace before, between and after is optional.
        check_subject("Meeting(DND)", "Meeting", Some(true), n, false);
        check_subject(
            "Offsite (No DND) (Call forwarding)",
            "Offsite",
            Some(false),
            Some(true),
            false,
        );
        check_subject(
            "Offsite(No DND)(Call forwarding)  ",
            "Offsite",
            Some(false),
            Some(true),
            false,
        );
        check_subject("  Offsite \t(Ruhe)\t", "Offsite", Some(true), n, false);
        // A non-keyword group stops the scan and stays in the text.
        check_subject("Lunch (Team)", "Lunch (Team)", n, n, false);
        check_subject("Lunch (Team) (DND)", "Lunch (Team)", Some(true), n, false);
        check_subject("Lunch (DND) (Team)", "Lunch (DND) (Team)", n, n, false);
        check_subject("Lunch (DND) x", "Lunch (DND) x", n, n, false);
        // Contradictions: nearer the end wins.
        check_subject("A (DND) (No DND)", "A", Some(false), n, false);
        check_subject("A (No DND) (DND)", "A", Some(true), n, false);
        check_subject("A (Ruhe) (Keine Ruhe)", "A", Some(false), n, false);
        check_subject(
            "A (Call forwarding) (Keine Anrufe weiterleiten)",
            "A",
            n,
            Some(false),
            false,
        );
        // Only keywords: empty text.
        check_subject("(DND)", "", Some(true), n, false);
        check_subject("", "", n, n, false);
        check_subject(")", ")", n, n, false);
        check_subject("(", "(", n, n, false);
        check_subject("x ((DND))", "x ((DND))", n, n, false);
        check_subject("x (a(DND)", "x (a", Some(true), n, false);
        check_subject("Mixed (No action) (DND)", "Mixed", Some(true), n, true);
        check_subject("Ümläut (Ruhe) ", "Ümläut", Some(true), n, false);
    }

    fn actions() -> Actions {
        Actions::default() // busy = dnd, oof = forward, others none
    }

    fn check_wants(show_as: ShowAs, subject: &str, dnd: bool, forward: bool) {
        let a = appt(0, H, show_as, subject);
        assert_eq!(
            wants(&a, &actions()),
            Wants { dnd, forward },
            "{show_as:?} {subject:?}"
        );
    }

    #[test]
    fn per_appointment_resolution() {
        use ShowAs::*;
        // Defaults (busy = dnd, oof = forward).
        check_wants(Free, "x", false, false);
        check_wants(Tentative, "x", false, false);
        check_wants(Busy, "x", true, false);
        check_wants(Oof, "x", false, true);
        check_wants(WorkingElsewhere, "x", false, false);
        // (No action) drops the default.
        check_wants(Busy, "x (No action)", false, false);
        check_wants(Oof, "x (Keine Aktion)", false, false);
        // Explicit keywords win over defaults, with or without (No action).
        check_wants(Busy, "x (No DND)", false, false);
        check_wants(Free, "x (DND)", true, false);
        check_wants(Free, "x (Call forwarding)", false, true);
        check_wants(Oof, "x (No call forwarding)", false, false);
        check_wants(Busy, "x (Call forwarding)", true, true);
        check_wants(Busy, "x (No action) (Call forwarding)", false, true);
        check_wants(Busy, "x (DND) (No action)", true, false);
        check_wants(Oof, "x (No action) (DND)", true, false);
        // Unknown subject: defaults only.
        let a = Appointment {
            subject: None,
            ..appt(0, H, Busy, "")
        };
        assert_eq!(
            wants(&a, &actions()),
            Wants {
                dnd: true,
                forward: false
            }
        );
        // Keywords apply to private appointments too.
        let a = Appointment {
            private: true,
            ..appt(0, H, Free, "secret (DND)")
        };
        assert_eq!(
            wants(&a, &actions()),
            Wants {
                dnd: true,
                forward: false
            }
        );
    }

    #[test]
    fn every_action_for_every_show_as() {
        use ShowAs::*;
        for show_as in [Free, Tentative, Busy, Oof, WorkingElsewhere] {
            for (action, dnd, forward) in [
                (Action::None, false, false),
                (Action::Dnd, true, false),
                (Action::Forward, false, true),
            ] {
                let mut acts = Actions::default();
                match show_as {
                    Free => acts.free = action,
                    Tentative => acts.tentative = action,
                    Busy => acts.busy = action,
                    Oof => acts.oof = action,
                    WorkingElsewhere => acts.working_elsewhere = action,
                }
                assert_eq!(
                    wants(&appt(0, H, show_as, "x"), &acts),
                    Wants { dnd, forward },
                    "{show_as:?} {action:?}"
                );
            }
        }
    }

    fn chat(join: bool) -> ChatConfig {
        ChatConfig {
            join_parallel_subjects: join,
            ..ChatConfig::default()
        }
    }

    /// Checks presence, text, dnd and forward at `t`.
    fn check(
        appts: &[Appointment],
        t: i64,
        join: bool,
        presence: Presence,
        text: &str,
        dnd: bool,
        forward: bool,
    ) {
        let d = desired(appts, t, &actions(), &chat(join));
        assert_eq!(
            (d.presence, d.text.as_str(), d.dnd.on, d.forward.on),
            (presence, text, dnd, forward),
            "at {t}: {appts:?}"
        );
    }

    #[test]
    fn chat_status_table() {
        use Presence::*;
        use ShowAs::*;
        check(
            &[appt(0, H, Free, "a")],
            0,
            false,
            Available,
            "a",
            false,
            false,
        );
        check(
            &[appt(0, H, WorkingElsewhere, "a")],
            0,
            false,
            Available,
            "a",
            false,
            false,
        );
        check(
            &[appt(0, H, Tentative, "a")],
            0,
            false,
            Available,
            "a",
            false,
            false,
        );
        check(
            &[appt(0, H, Busy, "a")],
            0,
            false,
            DoNotDisturb,
            "a",
            true,
            false,
        );
        check(
            &[appt(0, H, Oof, "a")],
            0,
            false,
            ExtendedAway,
            "a",
            false,
            true,
        );
        check(&[], 0, false, Available, "", false, false);
    }

    #[test]
    fn activity_edges() {
        use Presence::*;
        use ShowAs::*;
        let a = [appt(10, 20, Busy, "m")];
        check(&a, 9, false, Available, "", false, false);
        check(&a, 10, false, DoNotDisturb, "m", true, false);
        check(&a, 19, false, DoNotDisturb, "m", true, false);
        check(&a, 20, false, Available, "", false, false);
        // Zero-length and inverted appointments are never active.
        check(
            &[appt(10, 10, Busy, "z")],
            10,
            false,
            Available,
            "",
            false,
            false,
        );
        check(
            &[appt(20, 10, Busy, "inv")],
            15,
            false,
            Available,
            "",
            false,
            false,
        );
        // All-day appointments are like any other.
        let all_day = Appointment {
            all_day: true,
            ..appt(0, 86_400, Oof, "Holiday")
        };
        check(&[all_day], 100, false, ExtendedAway, "Holiday", false, true);
    }

    #[test]
    fn overlapping_pairs_of_every_type() {
        use ShowAs::*;
        let types = [Free, WorkingElsewhere, Tentative, Busy, Oof];
        for (i, &x) in types.iter().enumerate() {
            for &y in &types[i..] {
                // y ranks at least as high as x; both orders of reading, both start orders.
                for (first, second) in [(x, y), (y, x)] {
                    let appts = [
                        appt(0, 2 * H, first, "first"),
                        appt(H / 2, H, second, "second"),
                    ];
                    let d = desired(&appts, H / 2 + 1, &actions(), &chat(false));
                    let top = first.max(second);
                    let expect_text = if first == second || first == top {
                        "first"
                    } else {
                        "second"
                    };
                    assert_eq!(d.presence, presence_of(top), "{first:?}+{second:?}");
                    assert_eq!(d.text, expect_text, "{first:?}+{second:?}");
                    assert_eq!(
                        d.dnd.on,
                        first == Busy || second == Busy,
                        "{first:?}+{second:?}"
                    );
                    assert_eq!(
                        d.forward.on,
                        first == Oof || second == Oof,
                        "{first:?}+{second:?}"
                    );
                    let joined = desired(&appts, H / 2 + 1, &actions(), &chat(true));
                    assert_eq!(joined.text, "first | second");
                }
            }
        }
    }

    #[test]
    fn dominance_ties() {
        use ShowAs::*;
        // Same type: earlier start wins.
        let a = [appt(10, 50, Busy, "late"), appt(5, 50, Busy, "early")];
        assert_eq!(desired(&a, 20, &actions(), &chat(false)).text, "early");
        // Same start: later end wins.
        let a = [appt(5, 30, Busy, "short"), appt(5, 50, Busy, "long")];
        assert_eq!(desired(&a, 20, &actions(), &chat(false)).text, "long");
        // All equal: the one read first.
        let a = [appt(5, 50, Busy, "one"), appt(5, 50, Busy, "two")];
        assert_eq!(desired(&a, 20, &actions(), &chat(false)).text, "one");
    }

    #[test]
    fn status_text() {
        use ShowAs::*;
        let private = Appointment {
            private: true,
            ..appt(0, H, Busy, "Doctor (DND)")
        };
        let d = desired(std::slice::from_ref(&private), 1, &actions(), &chat(false));
        assert_eq!(d.text, "Private appointment");
        assert_eq!(d.dnd.cause.unwrap().text, "Private appointment");
        let unknown = Appointment {
            subject: None,
            ..appt(0, H, Busy, "")
        };
        assert_eq!(
            desired(std::slice::from_ref(&unknown), 1, &actions(), &chat(false)).text,
            ""
        );
        // Joining: ordered by start, then end, then as read; empty texts left out.
        let appts = [
            appt(20, H, Free, "c"),
            appt(10, H, Free, "b (No action)"),
            appt(10, 50, Free, "a"),
            unknown,
            appt(20, H, Free, "d"),
            private,
        ];
        assert_eq!(
            desired(&appts, 30, &actions(), &chat(true)).text,
            "Private appointment | a | b | c | d"
        );
        let custom = ChatConfig {
            private_text: "Privat".into(),
            ..chat(false)
        };
        let p = Appointment {
            private: true,
            ..appt(0, H, Busy, "x")
        };
        assert_eq!(desired(&[p], 1, &actions(), &custom).text, "Privat");
    }

    #[test]
    fn union_over_active_appointments() {
        use ShowAs::*;
        // One active appointment says (No DND), another wants DND: DND is wanted.
        let a = [appt(0, H, Busy, "x (No DND)"), appt(0, H, Free, "y (DND)")];
        let d = desired(&a, 1, &actions(), &chat(false));
        assert!(d.dnd.on);
        assert_eq!(d.dnd.cause.unwrap().text, "y");
        // Busy + (No action) alongside OOF: forwarding from the OOF, no DND.
        let a = [appt(0, H, Busy, "x (No action)"), appt(0, H, Oof, "away")];
        let d = desired(&a, 1, &actions(), &chat(false));
        assert!(!d.dnd.on && d.forward.on);
    }

    #[test]
    fn wanted_stretches() {
        use ShowAs::*;
        let s = |appts: &[Appointment], t| {
            let d = desired(appts, t, &actions(), &chat(false)).dnd;
            (d.on, d.stretch_end, d.latest_start)
        };
        // Back-to-back and overlapping appointments chain; a gap ends the stretch.
        let a = [
            appt(0, 10, Busy, "a"),
            appt(10, 20, Busy, "b"),
            appt(15, 30, Busy, "c"),
            appt(31, 40, Busy, "d"),
        ];
        assert_eq!(s(&a, 5), (true, Some(30), Some(0)));
        assert_eq!(s(&a, 12), (true, Some(30), Some(10)));
        assert_eq!(s(&a, 30), (false, None, None));
        assert_eq!(s(&a, 35), (true, Some(40), Some(31)));
        // An appointment that does not want DND does not chain.
        let a = [appt(0, 10, Busy, "a"), appt(10, 20, Free, "b")];
        assert_eq!(s(&a, 5), (true, Some(10), Some(0)));
        // Zero-length appointments do not chain.
        let a = [
            appt(0, 10, Busy, "a"),
            appt(10, 10, Busy, "z"),
            appt(10, 20, Busy, "b"),
        ];
        assert_eq!(s(&a, 5), (true, Some(20), Some(0)));
    }

    #[test]
    fn boundaries() {
        use ShowAs::*;
        let a = [
            appt(10, 20, Busy, "a"),
            appt(15, 30, Free, "b"),
            appt(40, 40, Busy, "z"),
            appt(60, 50, Busy, "inv"),
        ];
        assert_eq!(next_boundary(&a, 0), Some(10));
        assert_eq!(next_boundary(&a, 10), Some(15));
        assert_eq!(next_boundary(&a, 15), Some(20));
        assert_eq!(next_boundary(&a, 20), Some(30));
        assert_eq!(next_boundary(&a, 30), None);
        assert_eq!(next_boundary(&[], 0), None);
    }
}
