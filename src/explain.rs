//! The debug level's reasoning, as text: why the PBX is read for a user, and the decision per
//! user and feature. Pure functions; `sync` collects the lines in its report and the commands
//! log them, so the core stays free of I/O.

use crate::model::Timestamp;
use crate::reconcile::SwitchRecord;
use crate::rules::{Cause, Switch};
use crate::time::format_short;

/// Why a feature's PBX value is read (only asked when a read is due).
pub fn read_reason(wanted: bool, ours: bool) -> &'static str {
    match (wanted, ours) {
        (true, false) => "wanted on and not switched by us yet, so a write may be due",
        (true, true) => "it is ours, to see whether the user changed it by hand",
        (false, true) => "it is ours and no longer wanted, so it may have to go off",
        (false, false) => "to see whether anything is left of ours",
    }
}

/// The appointment in a few words: `Busy "Weekly sync" until 10:30Z`.
pub fn cause(c: &Cause, now: Timestamp) -> String {
    format!(
        "{} \"{}\" until {}",
        c.show_as.name(),
        c.text.replace('\\', "\\\\").replace('"', "\\\""),
        format_short(c.end, now)
    )
}

/// One on/off feature's decision: what is wanted and why, and what came of it.
/// `records` are the feature's records after the pass (one for DND, one per redirect);
/// `switched` the value written (or planned), if any.
pub fn switch(
    name: &str,
    want: &Switch,
    records: &[&SwitchRecord],
    switched: Option<&str>,
    now: Timestamp,
) -> String {
    let wanted = match (&want.on, &want.cause) {
        (true, Some(c)) => format!("{name} wanted ({})", cause(c, now)),
        (true, None) => format!("{name} wanted"),
        (false, _) => format!("{name} not wanted"),
    };
    let override_until = records.iter().filter_map(|r| r.override_until).max();
    let ours = records.iter().any(|r| r.ours);
    let outcome = match (switched, override_until) {
        (Some(to), _) => format!("switch {to}"),
        (None, Some(until)) => format!(
            "left to the user until {} (it was on already or changed by hand)",
            format_short(until, now)
        ),
        (None, None) if want.on && ours => "on and ours, nothing to do".to_string(),
        (None, None) if want.on => "not switched on".to_string(),
        (None, None) if ours => "still ours, not switched off".to_string(),
        (None, None) => "nothing of ours, nothing to do".to_string(),
    };
    format!("{wanted} -> {outcome}")
}

/// `names` for a log line: all of them up to `max`, then how many more.
pub fn names(names: &[&str], max: usize) -> String {
    let mut text = names
        .iter()
        .take(max)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        text.push_str(&format!(" and {} more", names.len() - max));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ShowAs;

    fn check(want_on: bool, records: &[&SwitchRecord], switched: Option<&str>, expect: &str) {
        let want = Switch {
            on: want_on,
            cause: want_on.then(|| Cause {
                show_as: ShowAs::Busy,
                text: "Sync \"A\"".into(),
                end: 37_800,
            }),
            stretch_end: None,
            latest_start: None,
        };
        assert_eq!(switch("DND", &want, records, switched, 36_000), expect);
    }

    #[test]
    fn decisions() {
        let ours = SwitchRecord {
            ours: true,
            override_until: None,
        };
        let hands_off = SwitchRecord {
            ours: false,
            override_until: Some(37_800),
        };
        let none = SwitchRecord::default();
        let busy = "DND wanted (Busy \"Sync \\\"A\\\"\" until 10:30Z)";
        check(true, &[&ours], Some("on"), &format!("{busy} -> switch on"));
        check(
            true,
            &[&ours],
            None,
            &format!("{busy} -> on and ours, nothing to do"),
        );
        check(
            true,
            &[&hands_off],
            None,
            &format!(
                "{busy} -> left to the user until 10:30Z (it was on already or changed by hand)"
            ),
        );
        check(true, &[&none], None, &format!("{busy} -> not switched on"));
        check(false, &[&none], Some("off"), "DND not wanted -> switch off");
        check(
            false,
            &[],
            None,
            "DND not wanted -> nothing of ours, nothing to do",
        );
        check(
            false,
            &[&ours],
            None,
            "DND not wanted -> still ours, not switched off",
        );
    }

    #[test]
    fn reasons_and_names() {
        assert!(read_reason(true, true).contains("by hand"));
        assert!(read_reason(true, false).contains("write may be due"));
        assert_eq!(names(&["a", "b", "c"], 2), "a, b and 1 more");
        assert_eq!(names(&["a"], 2), "a");
        assert_eq!(names(&[], 2), "");
    }
}
