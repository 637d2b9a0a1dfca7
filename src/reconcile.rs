//! Ownership (`docs/contract.md`, sections 5.7 to 5.10): the desired state × what we applied (the
//! state file) × what the PBX has → the writes to make and the new records. Pure: the caller reads
//! the PBX only when a function here says it needs to, and stores a new record only once its write
//! worked.

use std::collections::BTreeMap;

use crate::config::ChatConfig;
use crate::model::{Presence, Redirect, Timestamp};
use crate::rules::{Desired, Switch};

/// What we know about one on/off feature of one user (DND, or one redirect).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwitchRecord {
    /// The PBX value (on) is ours: we switched it on and will switch it off.
    pub ours: bool,
    /// Hands off until the desired value changes: the user owns the value during this wanted
    /// stretch (it was on already, or they changed what we set, or there is no destination to
    /// forward to). Holds the end of the wanted stretch as last computed.
    pub override_until: Option<Timestamp>,
}

impl SwitchRecord {
    /// Nothing to remember: the entry can be dropped from the state file.
    pub fn is_empty(&self) -> bool {
        !self.ours && self.override_until.is_none()
    }

    fn hands_off(until: Option<Timestamp>) -> SwitchRecord {
        SwitchRecord {
            ours: false,
            override_until: until,
        }
    }

    fn mine() -> SwitchRecord {
        SwitchRecord {
            ours: true,
            override_until: None,
        }
    }
}

/// The PBX value must be read before deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeedRead;

/// The decision for one switch: the write to make (if any) and the record once it is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchPlan {
    pub write: Option<bool>,
    pub record: SwitchRecord,
}

/// Decides one switch. `actual` is the PBX value if it was read; `Err(NeedRead)` asks for it.
pub fn reconcile_switch(
    want: &Switch,
    rec: &SwitchRecord,
    actual: Option<bool>,
) -> Result<SwitchPlan, NeedRead> {
    let keep = |record: SwitchRecord| {
        Ok(SwitchPlan {
            write: None,
            record,
        })
    };
    if !want.on {
        if !rec.ours {
            // Never touch what is not ours; the desired value changed, so any override ends.
            return keep(SwitchRecord::default());
        }
        return match actual {
            None => Err(NeedRead),
            Some(true) => Ok(SwitchPlan {
                write: Some(false),
                record: SwitchRecord::default(),
            }),
            // The user switched it off already: nothing left of ours.
            Some(false) => keep(SwitchRecord::default()),
        };
    }
    if !rec.ours {
        if let Some(until) = rec.override_until {
            let new_stretch = want.latest_start.is_some_and(|s| s >= until);
            if !new_stretch {
                return keep(SwitchRecord::hands_off(want.stretch_end.or(Some(until))));
            }
        }
        return match actual {
            None => Err(NeedRead),
            Some(false) => Ok(SwitchPlan {
                write: Some(true),
                record: SwitchRecord::mine(),
            }),
            // Already on and not by us: the user's. Leave it, now and for this stretch.
            Some(true) => keep(SwitchRecord::hands_off(want.stretch_end)),
        };
    }
    match actual {
        None => Err(NeedRead),
        Some(true) => keep(SwitchRecord::mine()),
        // We had it on and the user switched it off: an override for this stretch.
        Some(false) => keep(SwitchRecord::hands_off(want.stretch_end)),
    }
}

/// The decision for one redirect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectPlan {
    pub id: String,
    pub number: String,
    pub enabled: bool,
    pub write: Option<bool>,
    pub record: SwitchRecord,
}

/// The decision for a user's forwarding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardPlan {
    pub redirects: Vec<RedirectPlan>,
    /// Numbers whose redirect should be switched on but has no destination.
    pub missing_destination: Vec<String>,
}

/// Whether the user's redirects must be read: something of ours is on, or a write may be due.
/// When not, `records_without_read` gives the updated records.
pub fn forward_needs_read(want: &Switch, records: &BTreeMap<String, SwitchRecord>) -> bool {
    if want.on && records.is_empty() {
        return true;
    }
    records
        .values()
        .any(|r| reconcile_switch(want, r, None).is_err())
}

/// The records after a poll in which the redirects were not read (see `forward_needs_read`).
pub fn records_without_read(
    want: &Switch,
    records: &BTreeMap<String, SwitchRecord>,
) -> BTreeMap<String, SwitchRecord> {
    records
        .iter()
        .filter_map(|(id, r)| match reconcile_switch(want, r, None) {
            Ok(plan) if !plan.record.is_empty() => Some((id.clone(), plan.record)),
            _ => None,
        })
        .collect()
}

/// Decides every redirect of a user, given the redirects just read. The targets are the
/// redirects of external numbers, and of internal ones with `forward_internal` (the
/// configuration's `forward_internal_calls`). Redirects that are not targets are only ever
/// switched off, and only when ours. Records of redirects that no longer
/// exist are dropped (the caller rebuilds the map from the plans).
pub fn reconcile_forward(
    want: &Switch,
    records: &BTreeMap<String, SwitchRecord>,
    redirects: &[Redirect],
    forward_internal: bool,
) -> ForwardPlan {
    let off = Switch {
        on: false,
        cause: None,
        stretch_end: None,
        latest_start: None,
    };
    let mut plan = ForwardPlan::default();
    for r in redirects {
        let rec = records.get(&r.id).cloned().unwrap_or_default();
        let target = !r.internal || forward_internal;
        if !target && !rec.ours {
            continue;
        }
        let w = if target { want } else { &off };
        let Ok(mut p) = reconcile_switch(w, &rec, Some(r.enabled)) else {
            continue;
        };
        if p.write == Some(true) && !r.has_destination {
            // Never switch on a redirect that would forward nowhere; hands off for this stretch
            // so that it costs no reads until the wanted value changes.
            plan.missing_destination.push(r.number.clone());
            p = SwitchPlan {
                write: None,
                record: SwitchRecord::hands_off(w.stretch_end),
            };
        }
        plan.redirects.push(RedirectPlan {
            id: r.id.clone(),
            number: r.number.clone(),
            enabled: r.enabled,
            write: p.write,
            record: p.record,
        });
    }
    if want.on && plan.redirects.iter().all(|p| p.record.is_empty()) {
        // Forwarding is wanted but nothing can be switched (no "always" redirect on a number
        // we forward): remember that for this stretch, so that later polls cost no read.
        plan.redirects.push(RedirectPlan {
            id: NOTHING_TO_SWITCH.to_string(),
            number: String::new(),
            enabled: false,
            write: None,
            record: SwitchRecord::hands_off(want.stretch_end),
        });
    }
    plan
}

/// The key of the record that says "read, and nothing to switch, during this stretch". No
/// STARFACE redirect id is empty.
pub const NOTHING_TO_SWITCH: &str = "";

/// What we set on the chat side. The chat cannot be read back, so this is all we know.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatRecord {
    /// The presence we set and that is still ours (never `Available`: back at neutral, nothing
    /// is ours).
    pub presence: Option<Presence>,
    /// The text we set and that is still ours (never empty).
    pub text: Option<String>,
}

impl ChatRecord {
    pub fn is_empty(&self) -> bool {
        self.presence.is_none() && self.text.is_none()
    }
}

/// One XML-RPC call: `None` fields are left as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatWrite {
    pub presence: Option<Presence>,
    pub text: Option<String>,
}

/// The chat decision: the call to make (if any) and the record once it is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatPlan {
    pub write: Option<ChatWrite>,
    pub record: ChatRecord,
}

/// Decides the chat presence and text: written when the desired value differs from what we
/// recorded; with no record, the neutral value (AVAILABLE, empty text) needs no write. Only the
/// fields the configuration lets us write count.
pub fn reconcile_chat(desired: &Desired, rec: &ChatRecord, chat: &ChatConfig) -> ChatPlan {
    let mut write = ChatWrite {
        presence: None,
        text: None,
    };
    let mut record = ChatRecord::default();
    if chat.set_presence {
        let want = desired.presence;
        let had = rec.presence.unwrap_or(Presence::Available);
        if want != had {
            write.presence = Some(want);
        }
        record.presence = (want != Presence::Available).then_some(want);
    }
    if chat.subject_as_text {
        let want = desired.text.as_str();
        let had = rec.text.as_deref().unwrap_or("");
        if want != had {
            write.text = Some(want.to_string());
        }
        record.text = (!want.is_empty()).then(|| want.to_string());
    }
    let write = (write.presence.is_some() || write.text.is_some()).then_some(write);
    ChatPlan { write, record }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ShowAs;
    use crate::rules::Cause;

    fn on(stretch_end: i64, latest_start: i64) -> Switch {
        Switch {
            on: true,
            cause: Some(Cause {
                show_as: ShowAs::Busy,
                text: "m".into(),
                end: stretch_end,
            }),
            stretch_end: Some(stretch_end),
            latest_start: Some(latest_start),
        }
    }

    fn off() -> Switch {
        Switch {
            on: false,
            cause: None,
            stretch_end: None,
            latest_start: None,
        }
    }

    const NONE: SwitchRecord = SwitchRecord {
        ours: false,
        override_until: None,
    };
    const OURS: SwitchRecord = SwitchRecord {
        ours: true,
        override_until: None,
    };
    fn hands_off(until: i64) -> SwitchRecord {
        SwitchRecord {
            ours: false,
            override_until: Some(until),
        }
    }

    /// `expect`: `None` for NeedRead, else (write, record).
    fn check(
        want: Switch,
        rec: SwitchRecord,
        actual: Option<bool>,
        expect: Option<(Option<bool>, SwitchRecord)>,
    ) {
        let got = reconcile_switch(&want, &rec, actual)
            .ok()
            .map(|p| (p.write, p.record));
        assert_eq!(got, expect, "want {want:?}, rec {rec:?}, actual {actual:?}");
    }

    #[test]
    fn desired_on_pbx_off_switches_on_and_records_ours() {
        check(on(100, 0), NONE, None, None);
        check(on(100, 0), NONE, Some(false), Some((Some(true), OURS)));
    }

    #[test]
    fn desired_on_pbx_on_not_ours_is_left_and_recorded() {
        check(on(100, 0), NONE, Some(true), Some((None, hands_off(100))));
        // The user then switches it off while still wanted: never switched on by us (no read
        // needed either).
        check(
            on(100, 10),
            hands_off(100),
            None,
            Some((None, hands_off(100))),
        );
    }

    #[test]
    fn desired_off_ours_pbx_on_switches_off_and_clears() {
        check(off(), OURS, None, None);
        check(off(), OURS, Some(true), Some((Some(false), NONE)));
        check(off(), OURS, Some(false), Some((None, NONE)));
    }

    #[test]
    fn desired_off_not_ours_is_never_touched() {
        check(off(), NONE, None, Some((None, NONE)));
        check(off(), NONE, Some(true), Some((None, NONE)));
        // The desired value changed: the override ends.
        check(off(), hands_off(100), None, Some((None, NONE)));
    }

    #[test]
    fn manual_change_during_the_appointment_is_an_override() {
        // Ours and on: a read is needed to see a manual change; still on → nothing to do.
        check(on(100, 0), OURS, None, None);
        check(on(100, 0), OURS, Some(true), Some((None, OURS)));
        // The user switched it off: override until the stretch ends, and no further reads.
        check(on(100, 0), OURS, Some(false), Some((None, hands_off(100))));
        check(
            on(100, 0),
            hands_off(100),
            None,
            Some((None, hands_off(100))),
        );
    }

    #[test]
    fn override_survives_back_to_back_and_ends_after_a_gap() {
        // Back-to-back: the next appointment started at 100, but the stretch was computed to
        // end at 200 (it chains), so the record says 200 and the override holds.
        check(
            on(200, 100),
            hands_off(200),
            None,
            Some((None, hands_off(200))),
        );
        // The stretch grew since the override was recorded: the record follows it.
        check(
            on(300, 100),
            hands_off(200),
            None,
            Some((None, hands_off(300))),
        );
        // A new appointment after a gap (started at or after the recorded end): the override
        // ends and the switch is decided afresh.
        check(on(400, 250), hands_off(200), None, None);
        check(
            on(400, 250),
            hands_off(200),
            Some(false),
            Some((Some(true), OURS)),
        );
        check(
            on(400, 200),
            hands_off(200),
            Some(true),
            Some((None, hands_off(400))),
        );
    }

    #[test]
    fn idempotent() {
        // Applying a plan and reconciling again with the new PBX value gives no further write.
        for (want, rec, actual) in [
            (on(100, 0), NONE, false),
            (on(100, 0), NONE, true),
            (off(), OURS, true),
            (on(100, 0), OURS, false),
        ] {
            let first = reconcile_switch(&want, &rec, Some(actual)).unwrap();
            let now = first.write.unwrap_or(actual);
            let second = reconcile_switch(&want, &first.record, Some(now)).unwrap();
            assert_eq!(second.write, None, "{want:?} {rec:?} {actual}");
            assert_eq!(second.record, first.record);
        }
    }

    /// A redirect that is a target (external) or not (internal, without
    /// `forward_internal_calls`).
    fn redirect(id: &str, enabled: bool, has_destination: bool, target: bool) -> Redirect {
        Redirect {
            id: id.into(),
            number: format!("n{id}"),
            internal: !target,
            enabled,
            has_destination,
        }
    }

    #[test]
    fn forwarding_per_redirect() {
        let mut recs = BTreeMap::new();
        assert!(forward_needs_read(&on(100, 0), &recs));
        assert!(!forward_needs_read(&off(), &recs));
        let rs = [
            redirect("1", false, true, true),
            redirect("2", true, true, true),
            redirect("3", false, false, true),
            redirect("4", false, true, false),
        ];
        let plan = reconcile_forward(&on(100, 0), &recs, &rs, false);
        let got: Vec<(&str, Option<bool>, SwitchRecord)> = plan
            .redirects
            .iter()
            .map(|p| (p.id.as_str(), p.write, p.record.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("1", Some(true), OURS),
                ("2", None, hands_off(100)),
                ("3", None, hands_off(100))
            ]
        );
        assert_eq!(plan.missing_destination, ["n3"]);
        for p in &plan.redirects {
            recs.insert(p.id.clone(), p.record.clone());
        }
        // Something of ours is on: read again to see manual changes.
        assert!(forward_needs_read(&on(100, 0), &recs));
        // Only hands-off records: no read while the stretch lasts.
        let hands: BTreeMap<_, _> = [("2".to_string(), hands_off(100))].into();
        assert!(!forward_needs_read(&on(100, 10), &hands));
        assert_eq!(
            records_without_read(&on(150, 10), &hands),
            [("2".to_string(), hands_off(150))].into()
        );
        assert!(records_without_read(&off(), &hands).is_empty());
        // After the appointment: ours is switched off, the user's is left alone.
        let rs = [
            redirect("1", true, true, true),
            redirect("2", true, true, true),
        ];
        let plan = reconcile_forward(&off(), &recs, &rs, false);
        let got: Vec<(&str, Option<bool>)> = plan
            .redirects
            .iter()
            .map(|p| (p.id.as_str(), p.write))
            .collect();
        assert_eq!(got, [("1", Some(false)), ("2", None)]);
        // Nothing switchable: remembered for the stretch, so the next poll reads nothing.
        let plan = reconcile_forward(
            &on(100, 0),
            &BTreeMap::new(),
            &[redirect("9", false, true, false)],
            false,
        );
        assert_eq!(plan.redirects.len(), 1);
        assert_eq!(
            (plan.redirects[0].id.as_str(), plan.redirects[0].write),
            (NOTHING_TO_SWITCH, None)
        );
        let only: BTreeMap<_, _> = [(
            NOTHING_TO_SWITCH.to_string(),
            plan.redirects[0].record.clone(),
        )]
        .into();
        assert!(!forward_needs_read(&on(100, 10), &only));
        // A new stretch after a gap reads again.
        assert!(forward_needs_read(&on(300, 200), &only));
        // A redirect of ours that is no longer a target (config changed) is switched off.
        let recs: BTreeMap<_, _> = [("4".to_string(), OURS)].into();
        let plan = reconcile_forward(
            &on(100, 0),
            &recs,
            &[redirect("4", true, true, false)],
            false,
        );
        assert_eq!(plan.redirects[0].write, Some(false));
        // With forward_internal_calls the internal redirect is a target: it stays on, ours.
        let plan = reconcile_forward(
            &on(100, 0),
            &recs,
            &[redirect("4", true, true, false)],
            true,
        );
        assert_eq!(plan.redirects[0].write, None);
        assert!(plan.redirects[0].record.ours);
    }

    fn desired(presence: Presence, text: &str) -> Desired {
        Desired {
            dnd: off(),
            forward: off(),
            presence,
            text: text.into(),
            dominant: None,
        }
    }

    fn chat(presence: bool, text: bool) -> ChatConfig {
        ChatConfig {
            set_presence: presence,
            subject_as_text: text,
            ..ChatConfig::default()
        }
    }

    fn check_chat(
        d: Desired,
        rec: ChatRecord,
        cfg: ChatConfig,
        write: Option<(Option<Presence>, Option<&str>)>,
        record: ChatRecord,
    ) {
        let plan = reconcile_chat(&d, &rec, &cfg);
        let got = plan.write.as_ref().map(|w| (w.presence, w.text.as_deref()));
        assert_eq!((got, plan.record), (write, record), "{d:?} {rec:?}");
    }

    #[test]
    fn chat_ownership() {
        use Presence::*;
        let rec = |p: Option<Presence>, t: Option<&str>| ChatRecord {
            presence: p,
            text: t.map(str::to_string),
        };
        let empty = ChatRecord::default();
        // No record, neutral desired: no write.
        check_chat(
            desired(Available, ""),
            empty.clone(),
            chat(true, true),
            None,
            empty.clone(),
        );
        // Appointment starts: both written.
        check_chat(
            desired(DoNotDisturb, "Sync"),
            empty.clone(),
            chat(true, true),
            Some((Some(DoNotDisturb), Some("Sync"))),
            rec(Some(DoNotDisturb), Some("Sync")),
        );
        // Unchanged: no write.
        check_chat(
            desired(DoNotDisturb, "Sync"),
            rec(Some(DoNotDisturb), Some("Sync")),
            chat(true, true),
            None,
            rec(Some(DoNotDisturb), Some("Sync")),
        );
        // Only the text changed: the presence is left as it is in the call.
        check_chat(
            desired(DoNotDisturb, "Other"),
            rec(Some(DoNotDisturb), Some("Sync")),
            chat(true, true),
            Some((None, Some("Other"))),
            rec(Some(DoNotDisturb), Some("Other")),
        );
        // After the last appointment: back to neutral, record cleared.
        check_chat(
            desired(Available, ""),
            rec(Some(DoNotDisturb), Some("Sync")),
            chat(true, true),
            Some((Some(Available), Some(""))),
            empty.clone(),
        );
        // Only the fields we write count.
        check_chat(
            desired(DoNotDisturb, "Sync"),
            empty.clone(),
            chat(true, false),
            Some((Some(DoNotDisturb), None)),
            rec(Some(DoNotDisturb), None),
        );
        check_chat(
            desired(DoNotDisturb, "Sync"),
            empty.clone(),
            chat(false, true),
            Some((None, Some("Sync"))),
            rec(None, Some("Sync")),
        );
        check_chat(
            desired(DoNotDisturb, "Sync"),
            empty.clone(),
            chat(false, false),
            None,
            empty.clone(),
        );
        // A Free appointment with a subject: presence stays neutral, text is written.
        check_chat(
            desired(Available, "Lunch"),
            empty.clone(),
            chat(true, true),
            Some((None, Some("Lunch"))),
            rec(None, Some("Lunch")),
        );
    }
}
