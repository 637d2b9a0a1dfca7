//! One synchronisation pass at time `t`: for every handled user, appointments → desired state
//! (rules) → operations (reconcile) → PBX writes → new records in the state.
//!
//! The PBX is behind the `Pbx` trait so that this glue is tested without HTTP; the STARFACE
//! adapter is in `pbx.rs`. Reads happen only where `reconcile` asks for them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Config;
use crate::explain;
use crate::model::{on_off, Appointment, Presence, Redirect, Timestamp, UserId};
use crate::reconcile::{self, ChatRecord, SwitchRecord};
use crate::rules::{self, Cause, Switch};
use crate::state::{Held, HeldRedirect, State, UserRecord};
use crate::time;

/// A PBX failure as the pass sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbxError {
    pub message: String,
    /// The PBX cannot be reached at all: stop trying for the other users in this pass.
    pub unreachable: bool,
}

impl fmt::Display for PbxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a pass needs from the PBX.
pub trait Pbx {
    fn dnd(&mut self, user: UserId) -> Result<bool, PbxError>;
    fn set_dnd(&mut self, user: UserId, on: bool) -> Result<(), PbxError>;
    fn redirects(&mut self, user: UserId) -> Result<Vec<Redirect>, PbxError>;
    fn set_redirect(&mut self, user: UserId, id: &str, on: bool) -> Result<(), PbxError>;
    fn set_chat(
        &mut self,
        user: UserId,
        presence: Option<Presence>,
        text: Option<&str>,
    ) -> Result<(), PbxError>;
}

/// A handled user: a member of the group with an e-mail address (lower case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: UserId,
    pub email: String,
}

/// What is known of a mailbox: its appointments, or why they could not be read.
pub type Calendar = Result<Vec<Appointment>, String>;

/// What a logged problem is about: the key under which `Reported` remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A user that could not be handled (by lower-case e-mail).
    User(String),
    /// A user whose "always" redirect has no destination.
    NoDestination(String),
    /// STARFACE as a whole (login, the directory).
    Starface,
    /// One warning about the directory (a member without e-mail, …), by its text.
    Directory(String),
    /// Exchange as a whole (the calendar read).
    Exchange,
    /// The state file.
    State,
}

/// Problems already reported, so that each is logged once and not every poll.
#[derive(Debug, Default)]
pub struct Reported {
    seen: HashMap<Topic, String>,
}

impl Reported {
    /// True when `message` is new for `topic` (and remembers it).
    pub fn first(&mut self, topic: Topic, message: &str) -> bool {
        if self.seen.get(&topic).map(String::as_str) == Some(message) {
            return false;
        }
        self.seen.insert(topic, message.to_string());
        true
    }

    /// Forgets `topic`, so that the problem is reported again if it comes back.
    pub fn clear(&mut self, topic: &Topic) {
        self.seen.remove(topic);
    }
}

/// Why a user could not be handled in a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// An earlier user found the PBX unreachable; this one was not tried.
    PbxUnreachable,
    /// The user's calendar could not be read.
    MailboxUnreadable(String),
    /// A PBX operation failed: what was being done, and the error.
    Pbx { doing: String, error: String },
}

/// A user that could not be handled in a pass, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFailure {
    pub email: String,
    pub reason: FailureReason,
}

impl fmt::Display for UserFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let email = &self.email;
        match &self.reason {
            FailureReason::PbxUnreachable => {
                write!(f, "{email}: skipped, the PBX is unreachable")
            }
            FailureReason::MailboxUnreadable(e) => write!(f, "{email}: mailbox not readable: {e}"),
            FailureReason::Pbx { doing, error } => write!(f, "{email}: {doing} failed: {error}"),
        }
    }
}

/// The feature an operation is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feature {
    Dnd,
    Forward(String),
    Presence,
    Text,
}

/// One planned or made change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub email: String,
    pub feature: Feature,
    pub from: String,
    pub to: String,
    /// The appointment behind it; `None`: no appointment (switching back).
    pub cause: Option<Cause>,
}

fn quote_text(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Change {
    fn why(&self, end: impl Fn(Timestamp) -> String) -> String {
        match &self.cause {
            Some(c) => format!(
                "{} {} until {}",
                c.show_as.name(),
                quote_text(&c.text),
                end(c.end)
            ),
            None => "no appointment".to_string(),
        }
    }

    /// The `--dry-run` line: `alice@example.com dnd off -> on (Busy "Weekly sync" until …)`.
    pub fn dry_run_line(&self) -> String {
        let feature = match &self.feature {
            Feature::Dnd => "dnd".to_string(),
            Feature::Forward(n) => format!("forward {n}"),
            Feature::Presence => "presence".to_string(),
            Feature::Text => "text".to_string(),
        };
        format!(
            "{} {feature} {} -> {} ({})",
            self.email,
            self.from,
            self.to,
            self.why(time::format_rfc3339)
        )
    }

    /// The log line: `alice@example.com: DND on (Busy "Weekly sync" until 10:30Z)`.
    pub fn log_line(&self, now: Timestamp) -> String {
        let feature = match &self.feature {
            Feature::Dnd => "DND".to_string(),
            Feature::Forward(n) => format!("forwarding of {n}"),
            Feature::Presence => "chat presence".to_string(),
            Feature::Text => "chat text".to_string(),
        };
        format!(
            "{}: {feature} {} ({})",
            self.email,
            self.to,
            self.why(|t| time::format_short(t, now))
        )
    }
}

/// The outcome of a pass.
#[derive(Debug, Default)]
pub struct Report {
    /// Made (or, with `dry_run`, planned) changes.
    pub changes: Vec<Change>,
    /// Users that could not be handled, with why.
    pub failures: Vec<UserFailure>,
    /// Things the admin should know (logged at warn).
    pub warnings: Vec<String>,
    /// Things worth a line at info that are not changes (overrides noticed).
    pub notices: Vec<String>,
    /// The reasoning, logged at debug: each PBX read and why, and the decision per user.
    pub debug: Vec<String>,
    pub pbx_reads: usize,
    pub pbx_writes: usize,
    /// The PBX could not be reached during the pass.
    pub pbx_unreachable: bool,
}

/// The parameters of one pass.
pub struct Pass<'a> {
    pub t: Timestamp,
    pub members: &'a [Member],
    /// Keyed by lower-case e-mail.
    pub calendars: &'a HashMap<String, Calendar>,
    /// The calendars are older than the stale limit: switch nothing on from them.
    pub stale: bool,
    pub dry_run: bool,
    /// Only these users (a boundary pass handles the users whose appointments start or end
    /// now); `None`: everyone.
    pub only: Option<&'a HashSet<UserId>>,
    /// Set by a signal: finish the operation in flight and skip the remaining users.
    pub stop: Option<&'a AtomicBool>,
}

/// Runs one pass over all members (and over users we still own something of who left the
/// group: their features go back as after their last appointment).
pub fn run_pass(
    pbx: &mut dyn Pbx,
    state: &mut State,
    config: &Config,
    pass: &Pass<'_>,
    reported: &mut Reported,
) -> Report {
    let mut report = Report::default();
    let no_appointments: Calendar = Ok(Vec::new());
    let mut users: Vec<(UserId, String, &Calendar)> = Vec::new();
    let mut seen = HashSet::new();
    for m in pass.members {
        seen.insert(m.id);
        // No entry at all: the calendars have not been read yet (the daemon before its first
        // successful poll). Nothing is known, so nothing is touched, not even switched off.
        if let Some(cal) = pass.calendars.get(&m.email) {
            users.push((m.id, m.email.clone(), cal));
        }
    }
    for (id, rec) in &state.users {
        if !seen.contains(id) && !rec.is_empty() {
            users.push((*id, rec.email.clone(), &no_appointments));
        }
    }
    for (id, email, calendar) in users {
        if pass.only.is_some_and(|only| !only.contains(&id)) {
            continue;
        }
        if pass.stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            break;
        }
        if report.pbx_unreachable {
            report.failures.push(UserFailure {
                email: email.clone(),
                reason: FailureReason::PbxUnreachable,
            });
            continue;
        }
        let appointments = match calendar {
            Ok(a) => a,
            Err(e) => {
                report.failures.push(UserFailure {
                    email: email.clone(),
                    reason: FailureReason::MailboxUnreadable(e.clone()),
                });
                continue;
            }
        };
        let mut rec = state.users.get(&id).cloned().unwrap_or_default();
        rec.email = email.clone();
        let mut user = UserPass {
            pbx: &mut *pbx,
            report: &mut report,
            email: &email,
            id,
            pass,
            config,
            reported: &mut *reported,
        };
        let failures_before = user.report.failures.len();
        user.run(appointments, &mut rec);
        if user.report.failures.len() == failures_before {
            // Handled without a problem: a failure that comes back later is reported again.
            user.reported.clear(&Topic::User(email.clone()));
        }
        if rec.is_empty() {
            state.users.remove(&id);
        } else {
            state.users.insert(id, rec);
        }
    }
    report
}

/// The `status` record of a value after a pass: gone when it is not ours, new from `t` when we
/// switched it now, else kept with the cause brought up to date (chained appointments).
fn held(
    prev: Option<Held>,
    ours: bool,
    switched: bool,
    t: Timestamp,
    cause: &Option<Cause>,
) -> Option<Held> {
    if !ours {
        return None;
    }
    if switched {
        return Some(Held {
            since: t,
            cause: cause.clone(),
        });
    }
    prev.map(|h| Held {
        since: h.since,
        cause: cause.clone().or(h.cause),
    })
}

struct UserPass<'p, 'r> {
    pbx: &'p mut dyn Pbx,
    report: &'r mut Report,
    email: &'r str,
    id: UserId,
    pass: &'r Pass<'r>,
    config: &'r Config,
    reported: &'r mut Reported,
}

impl UserPass<'_, '_> {
    fn fail(&mut self, what: &str, e: PbxError) {
        if e.unreachable {
            self.report.pbx_unreachable = true;
        }
        self.report.failures.push(UserFailure {
            email: self.email.to_string(),
            reason: FailureReason::Pbx {
                doing: what.to_string(),
                error: e.to_string(),
            },
        });
    }

    /// Stale data never switches anything on that is not already ours.
    fn gate(&self, want: &Switch, rec: &SwitchRecord) -> bool {
        !(self.pass.stale && want.on && !rec.ours)
    }

    fn run(&mut self, appointments: &[Appointment], rec: &mut UserRecord) {
        let d = rules::desired(
            appointments,
            self.pass.t,
            &self.config.actions,
            &self.config.chat,
        );
        let t = self.pass.t;
        let changes_before = self.report.changes.len();
        let was_ours = rec.dnd.ours;
        self.dnd(&d.dnd, &d.dominant, &mut rec.dnd);
        rec.dnd_held = held(
            rec.dnd_held.take(),
            rec.dnd.ours,
            rec.dnd.ours && !was_ours,
            t,
            &d.dnd.cause,
        );
        let numbers = self.forward(&d.forward, &d.dominant, &mut rec.forward);
        let mut forward_held = BTreeMap::new();
        for (id, r) in rec.forward.iter().filter(|(_, r)| r.ours) {
            let prev = rec.forward_held.remove(id);
            let switched = numbers.contains_key(id);
            let number = numbers
                .get(id)
                .cloned()
                .or_else(|| prev.as_ref().map(|p| p.number.clone()));
            let h = held(prev.map(|p| p.held), r.ours, switched, t, &d.forward.cause);
            if let (Some(number), Some(held)) = (number, h) {
                forward_held.insert(id.clone(), HeldRedirect { number, held });
            }
        }
        rec.forward_held = forward_held;
        let chat_before = rec.chat.clone();
        self.chat(&d, &mut rec.chat);
        let chat_ours = !rec.chat.is_empty();
        rec.chat_held = held(
            rec.chat_held.take(),
            chat_ours,
            chat_ours && rec.chat != chat_before,
            t,
            &d.dominant,
        );
        // Built only when it will be logged: a poll of thousands of users should not format a
        // line per user for nothing.
        if log::log_enabled!(log::Level::Debug) {
            let decision = self.decision(&d, rec, changes_before);
            self.report.debug.push(decision);
        }
    }

    /// The debug line with the decision for this user: per feature what is wanted, why, and
    /// what came of it.
    fn decision(&self, d: &rules::Desired, rec: &UserRecord, changes_before: usize) -> String {
        let t = self.pass.t;
        let changes = self.report.changes.get(changes_before..).unwrap_or(&[]);
        let switched = |is: fn(&Feature) -> bool| {
            changes
                .iter()
                .find(|c| is(&c.feature))
                .map(|c| c.to.as_str())
        };
        let mut parts = vec![
            explain::switch(
                "DND",
                &d.dnd,
                &[&rec.dnd],
                switched(|f| matches!(f, Feature::Dnd)),
                t,
            ),
            explain::switch(
                "forwarding",
                &d.forward,
                &rec.forward.values().collect::<Vec<_>>(),
                switched(|f| matches!(f, Feature::Forward(_))),
                t,
            ),
        ];
        let chat = &self.config.chat;
        if chat.set_presence || chat.subject_as_text {
            let changed = changes
                .iter()
                .any(|c| matches!(c.feature, Feature::Presence | Feature::Text));
            parts.push(format!(
                "chat {} {} -> {}",
                d.presence.as_str(),
                quote_text(&d.text),
                if changed { "set" } else { "unchanged" }
            ));
        }
        let stale = if self.pass.stale {
            " (calendars older than the stale limit: nothing is switched on)"
        } else {
            ""
        };
        format!(
            "{}: decision at {}{stale}: {}",
            self.email,
            time::format_short(t, t),
            parts.join("; ")
        )
    }

    fn dnd(&mut self, want: &Switch, dominant: &Option<Cause>, rec: &mut SwitchRecord) {
        if !self.gate(want, rec) {
            return;
        }
        let plan = match reconcile::reconcile_switch(want, rec, None) {
            Ok(p) => p,
            Err(reconcile::NeedRead) => {
                self.report.pbx_reads += 1;
                if log::log_enabled!(log::Level::Debug) {
                    self.report.debug.push(format!(
                        "{}: reading DND: {}",
                        self.email,
                        explain::read_reason(want.on, rec.ours)
                    ));
                }
                match self.pbx.dnd(self.id) {
                    Ok(actual) => match reconcile::reconcile_switch(want, rec, Some(actual)) {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    Err(e) => return self.fail("reading DND", e),
                }
            }
        };
        if rec.ours && !plan.record.ours && plan.record.override_until.is_some() {
            self.report.notices.push(format!(
                "{}: DND was switched off by hand during the appointment; left alone until it ends",
                self.email
            ));
        }
        if let Some(on) = plan.write {
            let cause = if on {
                want.cause.clone()
            } else {
                dominant.clone()
            };
            if !self.pass.dry_run {
                self.report.pbx_writes += 1;
                if let Err(e) = self.pbx.set_dnd(self.id, on) {
                    return self.fail("switching DND", e);
                }
            }
            self.report.changes.push(Change {
                email: self.email.to_string(),
                feature: Feature::Dnd,
                from: on_off(!on).to_string(),
                to: on_off(on).to_string(),
                cause,
            });
        }
        *rec = plan.record;
    }

    /// Returns the numbers of the redirects it switched on now, by redirect id.
    fn forward(
        &mut self,
        want: &Switch,
        dominant: &Option<Cause>,
        recs: &mut BTreeMap<String, SwitchRecord>,
    ) -> BTreeMap<String, String> {
        let mut switched_on = BTreeMap::new();
        if self.pass.stale && want.on && !recs.values().any(|r| r.ours) {
            return switched_on;
        }
        if !reconcile::forward_needs_read(want, recs) {
            *recs = reconcile::records_without_read(want, recs);
            return switched_on;
        }
        self.report.pbx_reads += 1;
        if log::log_enabled!(log::Level::Debug) {
            self.report.debug.push(format!(
                "{}: reading the redirects: {}",
                self.email,
                explain::read_reason(want.on, recs.values().any(|r| r.ours))
            ));
        }
        let redirects = match self.pbx.redirects(self.id) {
            Ok(r) => r,
            Err(e) => {
                self.fail("reading the redirects", e);
                return switched_on;
            }
        };
        let internal = self.config.actions.forward_internal_calls;
        let plan = reconcile::reconcile_forward(want, recs, &redirects, internal);
        if !plan.missing_destination.is_empty() {
            let msg = format!(
                "{}: call forwarding wanted, but the \"always\" redirect of {} has no destination; set one in STARFACE",
                self.email,
                plan.missing_destination.join(", ")
            );
            if self
                .reported
                .first(Topic::NoDestination(self.email.to_string()), &msg)
            {
                self.report.warnings.push(msg);
            }
        }
        let mut next = BTreeMap::new();
        for p in plan.redirects {
            let old = recs.get(&p.id).cloned().unwrap_or_default();
            if old.ours && !p.record.ours && p.record.override_until.is_some() {
                self.report.notices.push(format!(
                    "{}: forwarding of {} was switched off by hand during the appointment; left alone until it ends",
                    self.email, p.number
                ));
            }
            let mut record = p.record;
            let mut write = p.write;
            if self.pass.stale && write == Some(true) {
                // Nothing is switched on from stale calendars, not even next to a redirect
                // that is ours.
                write = None;
                record = old.clone();
            }
            if let Some(on) = write {
                let cause = if on {
                    want.cause.clone()
                } else {
                    dominant.clone()
                };
                let mut ok = true;
                if !self.pass.dry_run {
                    self.report.pbx_writes += 1;
                    if let Err(e) = self.pbx.set_redirect(self.id, &p.id, on) {
                        self.fail(&format!("switching the forwarding of {}", p.number), e);
                        ok = false;
                        record = old;
                    }
                }
                if ok {
                    if on {
                        switched_on.insert(p.id.clone(), p.number.clone());
                    }
                    self.report.changes.push(Change {
                        email: self.email.to_string(),
                        feature: Feature::Forward(p.number.clone()),
                        from: on_off(!on).to_string(),
                        to: on_off(on).to_string(),
                        cause,
                    });
                }
            }
            if !record.is_empty() {
                next.insert(p.id, record);
            }
        }
        *recs = next;
        switched_on
    }

    fn chat(&mut self, d: &rules::Desired, rec: &mut ChatRecord) {
        let plan = reconcile::reconcile_chat(d, rec, &self.config.chat);
        // Stale calendars may only take back what is ours: a write is allowed when it returns
        // everything to neutral (the record empties), never one that sets something new.
        if self.pass.stale && plan.write.is_some() && !plan.record.is_empty() {
            return;
        }
        if let Some(w) = &plan.write {
            if !self.pass.dry_run {
                self.report.pbx_writes += 1;
                // The call carries the configured fields, not only the changed ones: the
                // presence whenever set_presence is on, ChangeText = subject_as_text.
                let chat = &self.config.chat;
                let presence = chat.set_presence.then_some(d.presence);
                let text = chat.subject_as_text.then_some(d.text.as_str());
                if let Err(e) = self.pbx.set_chat(self.id, presence, text) {
                    return self.fail("setting the chat status", e);
                }
            }
            let cause = d.dominant.clone();
            if let Some(p) = w.presence {
                let from = rec
                    .presence
                    .unwrap_or(Presence::Available)
                    .as_str()
                    .to_string();
                self.report.changes.push(Change {
                    email: self.email.to_string(),
                    feature: Feature::Presence,
                    from,
                    to: p.as_str().to_string(),
                    cause: cause.clone(),
                });
            }
            if let Some(t) = &w.text {
                let from = quote_text(rec.text.as_deref().unwrap_or(""));
                self.report.changes.push(Change {
                    email: self.email.to_string(),
                    feature: Feature::Text,
                    from,
                    to: quote_text(t),
                    cause,
                });
            }
        }
        *rec = plan.record;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::*;
    use crate::model::ShowAs;
    use std::path::PathBuf;
    use std::time::Duration;

    pub(crate) fn config(set_presence: bool, subject_as_text: bool) -> Config {
        Config {
            path: PathBuf::from("/test/config.toml"),
            exchange: ExchangeConfig {
                backend: Backend::Ews,
                url: "http://127.0.0.1/EWS/Exchange.asmx".into(),
                auth: EwsAuth::Basic,
                username: "svc".into(),
                password: Some(Secret::new("pw")),
                lookup: Lookup::Availability,
                impersonation: false,
                tenant_id: String::new(),
                client_id: String::new(),
                client_secret: None,
                token_url: String::new(),
                graph_url: String::new(),
                ca_file: None,
                timeout: Duration::from_secs(5),
            },
            starface: StarfaceConfig {
                url: "http://127.0.0.1".into(),
                login: "0001".into(),
                password: Secret::new("pw"),
                login_type: LoginType::Internal,
                group: "g".into(),
                insecure_tls: false,
            },
            actions: Actions::default(),
            chat: ChatConfig {
                set_presence,
                subject_as_text,
                ..ChatConfig::default()
            },
            sync: SyncConfig {
                poll_interval: Duration::from_secs(120),
                lookahead: Duration::from_secs(24 * 3600),
                directory_refresh: Duration::from_secs(600),
                state_dir: PathBuf::from("/nonexistent"),
            },
            log: LogConfig {
                level: log::LevelFilter::Info,
                file: None,
            },
        }
    }

    /// An in-memory PBX that counts what it is asked.
    #[derive(Default)]
    struct FakePbx {
        dnd: HashMap<UserId, bool>,
        redirects: HashMap<UserId, Vec<Redirect>>,
        chat: HashMap<UserId, (Option<Presence>, Option<String>)>,
        chat_calls: Vec<(UserId, Option<Presence>, Option<String>)>,
        reads: usize,
        writes: usize,
        down: bool,
    }

    impl FakePbx {
        fn check_up(&self) -> Result<(), PbxError> {
            if self.down {
                return Err(PbxError {
                    message: "connection refused".into(),
                    unreachable: true,
                });
            }
            Ok(())
        }
    }

    impl Pbx for FakePbx {
        fn dnd(&mut self, user: UserId) -> Result<bool, PbxError> {
            self.reads += 1;
            self.check_up()?;
            Ok(*self.dnd.get(&user).unwrap_or(&false))
        }
        fn set_dnd(&mut self, user: UserId, on: bool) -> Result<(), PbxError> {
            self.writes += 1;
            self.check_up()?;
            self.dnd.insert(user, on);
            Ok(())
        }
        fn redirects(&mut self, user: UserId) -> Result<Vec<Redirect>, PbxError> {
            self.reads += 1;
            self.check_up()?;
            Ok(self.redirects.get(&user).cloned().unwrap_or_default())
        }
        fn set_redirect(&mut self, user: UserId, id: &str, on: bool) -> Result<(), PbxError> {
            self.writes += 1;
            self.check_up()?;
            for r in self.redirects.get_mut(&user).into_iter().flatten() {
                if r.id == id {
                    r.enabled = on;
                }
            }
            Ok(())
        }
        fn set_chat(
            &mut self,
            user: UserId,
            presence: Option<Presence>,
            text: Option<&str>,
        ) -> Result<(), PbxError> {
            self.writes += 1;
            self.check_up()?;
            self.chat_calls
                .push((user, presence, text.map(str::to_string)));
            let e = self.chat.entry(user).or_default();
            if presence.is_some() {
                e.0 = presence;
            }
            if let Some(t) = text {
                e.1 = Some(t.to_string());
            }
            Ok(())
        }
    }

    struct World {
        pbx: FakePbx,
        state: State,
        config: Config,
        members: Vec<Member>,
        calendars: HashMap<String, Calendar>,
        reported: Reported,
    }

    impl World {
        fn new(users: usize) -> World {
            let members: Vec<Member> = (1..=users as i64)
                .map(|i| Member {
                    id: i,
                    email: format!("u{i}@x"),
                })
                .collect();
            let calendars = members
                .iter()
                .map(|m| (m.email.clone(), Ok(Vec::new())))
                .collect();
            World {
                pbx: FakePbx::default(),
                state: State::default(),
                config: config(false, false),
                members,
                calendars,
                reported: Reported::default(),
            }
        }

        fn appts(&mut self, user: i64, appts: Vec<Appointment>) {
            self.calendars.insert(format!("u{user}@x"), Ok(appts));
        }

        fn pass_with(&mut self, t: i64, stale: bool, dry_run: bool) -> Report {
            let pass = Pass {
                t,
                members: &self.members,
                calendars: &self.calendars,
                stale,
                dry_run,
                only: None,
                stop: None,
            };
            let before = (self.pbx.reads, self.pbx.writes);
            let r = run_pass(
                &mut self.pbx,
                &mut self.state,
                &self.config,
                &pass,
                &mut self.reported,
            );
            assert_eq!(
                (r.pbx_reads, r.pbx_writes),
                (self.pbx.reads - before.0, self.pbx.writes - before.1),
                "counts"
            );
            r
        }

        fn pass(&mut self, t: i64) -> Report {
            self.pass_with(t, false, false)
        }
    }

    fn busy(start: i64, end: i64, subject: &str) -> Appointment {
        Appointment {
            start,
            end,
            show_as: ShowAs::Busy,
            subject: Some(subject.into()),
            private: false,
            all_day: false,
        }
    }

    fn oof(start: i64, end: i64) -> Appointment {
        Appointment {
            show_as: ShowAs::Oof,
            ..busy(start, end, "Away")
        }
    }

    fn lines(r: &Report) -> Vec<String> {
        r.changes.iter().map(Change::dry_run_line).collect()
    }

    #[test]
    fn switches_on_and_back_and_is_idle_otherwise() {
        let mut w = World::new(3);
        w.appts(1, vec![busy(100, 200, "Weekly sync")]);
        // Before: nothing to do, no PBX request at all.
        let r = w.pass(50);
        assert_eq!((r.pbx_reads, r.pbx_writes, r.changes.len()), (0, 0, 0));
        // During: one read, one write.
        let r = w.pass(100);
        assert_eq!(
            lines(&r),
            ["u1@x dnd off -> on (Busy \"Weekly sync\" until 1970-01-01T00:03:20Z)"]
        );
        assert_eq!((r.pbx_reads, r.pbx_writes), (1, 1));
        assert!(w.state.users[&1].dnd.ours);
        // Again: a read to see manual changes of what is ours, no write.
        let r = w.pass(150);
        assert_eq!((r.pbx_reads, r.pbx_writes, r.changes.len()), (1, 0, 0));
        // After: switched back, record cleared.
        let r = w.pass(200);
        assert_eq!(lines(&r), ["u1@x dnd on -> off (no appointment)"]);
        assert!(!w.pbx.dnd[&1]);
        assert!(w.state.users.is_empty());
        let r = w.pass(250);
        assert_eq!((r.pbx_reads, r.pbx_writes), (0, 0));
    }

    #[test]
    fn the_users_own_dnd_survives() {
        let mut w = World::new(1);
        w.pbx.dnd.insert(1, true);
        w.appts(1, vec![busy(100, 200, "m")]);
        let r = w.pass(100);
        assert_eq!((r.pbx_reads, r.pbx_writes), (1, 0));
        // Not ours, and hands off: no more reads during the stretch.
        let r = w.pass(150);
        assert_eq!((r.pbx_reads, r.pbx_writes), (0, 0));
        let r = w.pass(200);
        assert_eq!((r.pbx_reads, r.pbx_writes), (0, 0));
        assert!(w.pbx.dnd[&1]);
    }

    #[test]
    fn manual_change_is_respected_until_a_new_appointment() {
        let mut w = World::new(1);
        w.appts(
            1,
            vec![
                busy(100, 200, "a"),
                busy(200, 300, "b"),
                busy(400, 500, "c"),
            ],
        );
        w.pass(100);
        w.pbx.dnd.insert(1, false); // the user switches DND off by hand
        let r = w.pass(150);
        assert_eq!(r.pbx_writes, 0);
        assert_eq!(r.notices.len(), 1);
        // Back-to-back appointment: the override holds.
        let r = w.pass(250);
        assert_eq!((r.pbx_reads, r.pbx_writes), (0, 0));
        // After a gap, a new appointment: switched on again (no pass in the gap needed).
        let r = w.pass(400);
        assert_eq!(r.pbx_writes, 1);
        assert!(w.pbx.dnd[&1]);
    }

    #[test]
    fn forwarding_with_and_without_destination() {
        let mut w = World::new(2);
        let redirect = |id: &str, internal, dest| Redirect {
            id: id.into(),
            number: format!("n{id}"),
            internal,
            enabled: false,
            has_destination: dest,
        };
        w.pbx.redirects.insert(
            1,
            vec![redirect("e", false, true), redirect("i", true, true)],
        );
        w.pbx.redirects.insert(2, vec![redirect("x", false, false)]);
        w.appts(1, vec![oof(100, 200)]);
        w.appts(2, vec![oof(100, 200)]);
        let r = w.pass(100);
        assert_eq!(
            lines(&r),
            ["u1@x forward ne off -> on (OOF \"Away\" until 1970-01-01T00:03:20Z)"]
        );
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        // The warning is given once; the user without destination costs no more reads.
        let r = w.pass(150);
        assert!(r.warnings.is_empty());
        assert_eq!((r.pbx_reads, r.pbx_writes), (1, 0));
        let r = w.pass(200);
        assert_eq!(lines(&r), ["u1@x forward ne on -> off (no appointment)"]);
        // With internal calls forwarded too.
        w.config.actions.forward_internal_calls = true;
        let r = w.pass(150);
        assert_eq!(r.changes.len(), 2);
    }

    #[test]
    fn since_when_and_why_for_status() {
        let mut w = World::new(1);
        w.config = config(true, false);
        w.pbx.redirects.insert(
            1,
            vec![Redirect {
                id: "e".into(),
                number: "+49721".into(),
                internal: false,
                enabled: false,
                has_destination: true,
            }],
        );
        w.appts(
            1,
            vec![busy(100, 200, "a"), busy(200, 300, "b"), oof(150, 250)],
        );
        let cause = |show_as, text: &str, end| {
            Some(Cause {
                show_as,
                text: text.into(),
                end,
            })
        };
        let held = |w: &World| {
            let u = &w.state.users[&1];
            (
                u.dnd_held.clone(),
                u.forward_held
                    .get("e")
                    .map(|h| (h.number.clone(), h.held.clone())),
                u.chat_held.clone(),
            )
        };
        w.pass(100);
        let since = |since, cause| Some(Held { since, cause });
        assert_eq!(
            held(&w),
            (
                since(100, cause(ShowAs::Busy, "a", 200)),
                None,
                since(100, cause(ShowAs::Busy, "a", 200))
            )
        );
        // DND stays on from 100 with the next appointment as its cause; forwarding and the new
        // chat presence start now.
        w.pass(150);
        let oof_cause = cause(ShowAs::Oof, "Away", 250);
        assert_eq!(
            held(&w),
            (
                since(100, cause(ShowAs::Busy, "a", 200)),
                Some((
                    "+49721".to_string(),
                    Held {
                        since: 150,
                        cause: oof_cause.clone()
                    }
                )),
                since(150, oof_cause.clone()),
            )
        );
        w.pass(260);
        assert_eq!(
            held(&w),
            (
                since(100, cause(ShowAs::Busy, "b", 300)),
                None,
                since(260, cause(ShowAs::Busy, "b", 300))
            )
        );
        w.pass(300);
        assert!(w.state.users.is_empty());
    }

    #[test]
    fn dry_run_writes_nothing() {
        let mut w = World::new(1);
        w.config = config(true, true);
        w.appts(1, vec![busy(100, 200, "Sync (DND)")]);
        let r = w.pass_with(100, false, true);
        assert_eq!(
            lines(&r),
            [
                "u1@x dnd off -> on (Busy \"Sync\" until 1970-01-01T00:03:20Z)",
                "u1@x presence AVAILABLE -> DO_NOT_DISTURB (Busy \"Sync\" until 1970-01-01T00:03:20Z)",
                "u1@x text \"\" -> \"Sync\" (Busy \"Sync\" until 1970-01-01T00:03:20Z)",
            ]
        );
        assert_eq!(r.pbx_writes, 0);
        assert!(w.pbx.chat.is_empty());
    }

    #[test]
    fn chat_written_on_change_only() {
        let mut w = World::new(1);
        w.config = config(true, true);
        w.appts(1, vec![busy(100, 200, "Sync")]);
        assert_eq!(w.pass(100).pbx_writes, 2); // DND + one chat call
        assert_eq!(
            w.pbx.chat[&1],
            (Some(Presence::DoNotDisturb), Some("Sync".into()))
        );
        assert_eq!(w.pass(150).pbx_writes, 0);
        w.pass(200);
        assert_eq!(
            w.pbx.chat[&1],
            (Some(Presence::Available), Some(String::new()))
        );
        assert_eq!(w.pass(250).pbx_writes, 0);
    }

    #[test]
    fn chat_calls_carry_the_configured_fields() {
        let mut w = World::new(1);
        w.config = config(true, true);
        w.appts(1, vec![busy(100, 200, "A"), busy(150, 200, "B")]);
        w.config.chat.join_parallel_subjects = true;
        w.pass(100);
        // Only the text changes at 150, but the call carries the presence too.
        w.pass(150);
        let calls: Vec<_> = w
            .pbx
            .chat_calls
            .iter()
            .map(|(_, p, t)| (*p, t.clone()))
            .collect();
        assert_eq!(
            calls,
            [
                (Some(Presence::DoNotDisturb), Some("A".to_string())),
                (Some(Presence::DoNotDisturb), Some("A | B".to_string())),
            ]
        );
        // With only the presence configured, the text is never sent.
        let mut w = World::new(1);
        w.config = config(true, false);
        w.appts(1, vec![busy(100, 200, "A")]);
        w.pass(100);
        assert_eq!(w.pbx.chat_calls[0].2, None);
    }

    #[test]
    fn stale_chat_goes_back_but_never_forward() {
        let mut w = World::new(2);
        w.config = config(true, true);
        w.appts(1, vec![busy(100, 200, "a")]);
        w.pass(100);
        w.appts(2, vec![busy(100, 300, "b")]);
        let r = w.pass_with(200, true, false);
        // User 1's ended meeting is taken back; user 2's new one is not acted on.
        assert_eq!(
            w.pbx.chat[&1],
            (Some(Presence::Available), Some(String::new()))
        );
        assert!(!w.pbx.chat.contains_key(&2));
        assert!(
            r.changes.iter().all(|c| c.email == "u1@x"),
            "{:?}",
            lines(&r)
        );
    }

    #[test]
    fn stale_forwarding_never_switches_another_redirect_on() {
        let mut w = World::new(1);
        let redirect = |id: &str| Redirect {
            id: id.into(),
            number: format!("n{id}"),
            internal: false,
            enabled: false,
            has_destination: true,
        };
        w.pbx.redirects.insert(1, vec![redirect("a")]);
        w.appts(1, vec![oof(100, 300)]);
        w.pass(100);
        // A second redirect appears; with stale data it is not switched on.
        w.pbx.redirects.get_mut(&1).unwrap().push(redirect("b"));
        let r = w.pass_with(150, true, false);
        assert_eq!(r.pbx_writes, 0, "{:?}", lines(&r));
        // Fresh data switches it.
        let r = w.pass(160);
        assert_eq!(
            lines(&r),
            ["u1@x forward nb off -> on (OOF \"Away\" until 1970-01-01T00:05:00Z)"]
        );
    }

    #[test]
    fn no_switchable_redirect_costs_one_read_per_stretch() {
        let mut w = World::new(1);
        w.appts(1, vec![oof(100, 300)]);
        assert_eq!(w.pass(100).pbx_reads, 1);
        assert_eq!(w.pass(150).pbx_reads, 0);
        assert_eq!(w.pass(300).pbx_reads, 0);
        assert!(w.state.users.is_empty());
    }

    #[test]
    fn stale_data_switches_off_but_never_on() {
        let mut w = World::new(2);
        w.appts(1, vec![busy(100, 200, "a")]);
        w.pass(100);
        w.appts(2, vec![busy(100, 300, "b")]);
        // Stale: user 2's appointment is not acted on; user 1's ended one is switched back.
        let r = w.pass_with(200, true, false);
        assert_eq!(lines(&r), ["u1@x dnd on -> off (no appointment)"]);
        assert!(!w.pbx.dnd.get(&2).copied().unwrap_or(false));
    }

    #[test]
    fn failures_are_per_user_and_unreachable_pbx_stops_the_pass() {
        let mut w = World::new(3);
        w.calendars
            .insert("u1@x".into(), Err("ErrorNoFreeBusyAccess".into()));
        w.appts(2, vec![busy(0, 100, "a")]);
        w.appts(3, vec![busy(0, 100, "b")]);
        let r = w.pass(10);
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.changes.len(), 2);
        let mut w2 = World::new(3);
        for u in 1..=3 {
            w2.appts(u, vec![busy(0, 100, "a")]);
        }
        w2.pbx.down = true;
        let r = w2.pass(10);
        assert!(r.pbx_unreachable);
        assert_eq!(r.failures.len(), 3);
        assert_eq!(
            r.failures[1].to_string(),
            "u2@x: skipped, the PBX is unreachable"
        );
    }

    #[test]
    fn members_without_calendar_data_are_not_touched() {
        let mut w = World::new(1);
        w.appts(1, vec![busy(0, 100, "a")]);
        w.pass(10);
        w.calendars.clear();
        let r = w.pass(200);
        assert_eq!((r.pbx_reads, r.pbx_writes, r.failures.len()), (0, 0, 0));
        assert!(w.pbx.dnd[&1]);
    }

    #[test]
    fn users_who_left_the_group_get_back_what_we_switched() {
        let mut w = World::new(2);
        w.appts(2, vec![busy(0, 100, "a")]);
        w.pass(10);
        assert!(w.pbx.dnd[&2]);
        w.members.truncate(1);
        let r = w.pass(20);
        assert_eq!(lines(&r), ["u2@x dnd on -> off (no appointment)"]);
        assert!(w.state.users.is_empty());
    }

    #[test]
    fn log_lines() {
        let c = Change {
            email: "alice@example.com".into(),
            feature: Feature::Dnd,
            from: "off".into(),
            to: "on".into(),
            cause: Some(Cause {
                show_as: ShowAs::Busy,
                text: "Weekly sync".into(),
                end: 1_796_121_000,
            }),
        };
        assert_eq!(
            c.log_line(1_796_117_400),
            "alice@example.com: DND on (Busy \"Weekly sync\" until 10:30Z)"
        );
        assert_eq!(
            c.dry_run_line(),
            "alice@example.com dnd off -> on (Busy \"Weekly sync\" until 2026-12-01T10:30:00Z)"
        );
    }
}
