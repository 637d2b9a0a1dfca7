//! `run`: the daemon (`docs/contract.md`, sections 3.2 and 9).
//!
//! The loop is async (smol) so that it can wait for the next deadline — the next poll, the next
//! appointment boundary of any user, the end of a back-off — and for signals at the same time.
//! The blocking work of a tick (HTTP to Exchange and STARFACE) runs on smol's blocking pool in
//! three steps: the directory, the calendar read, the pass. A SIGTERM during the calendar read
//! leaves the read behind (it changes nothing, and a silent Exchange would otherwise hold the
//! exit for its whole timeout); during the other steps it sets a flag that the pass checks
//! between users, so the operation in flight finishes. Then the state is saved and we log out.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_signal::{Signal, Signals};
use smol::stream::StreamExt;

use super::calendars::{self, read_calendars};
use super::report::{log_report, poll_record};
use super::setup::{load_config, logout, Services};
use super::Failure;
use crate::config::Config;
use crate::exchange::{CalendarSource, NoWait, SourceError};
use crate::explain;
use crate::http::Cutoff;
use crate::logging;
use crate::model::{Timestamp, Window};
use crate::pbx::StarfacePbx;
use crate::rules;
use crate::starface::{NumberIndex, Starface};
use crate::state::{self, PollRecord, State, UserId};
use crate::sync::{self, Calendar, Member, Pass, Reported, Topic};
use crate::time::{duration_text, second_after_wait, wall_clock, wall_clock_precise};

/// The longest back-off after failures (section 7: capped at 15 minutes).
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// The first back-off when the server gave no hint.
const FIRST_BACKOFF: Duration = Duration::from_secs(30);

/// Exponential back-off with a server hint.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The wait after one more failure: the server's hint if any, else 30 s doubling; never
    /// more than 15 min.
    pub fn next(&mut self, hint: Option<Duration>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = FIRST_BACKOFF.saturating_mul(1u32 << (self.failures - 1).min(10));
        hint.unwrap_or(exp).min(MAX_BACKOFF)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Whether calendars read at `read_at` are too old to act on at `now` (section 9).
pub fn is_stale(read_at: Timestamp, now: Timestamp, poll_interval: Duration) -> bool {
    now - read_at > 2 * poll_interval.as_secs() as i64 + 600
}

/// Whether a tick looks at every user: after a poll or a directory refresh. The refresh is
/// taken in either case. It used to be taken only when there was no poll (`polled || take`),
/// so the first poll, which also reads the directory, left it set, and the next boundary tick
/// became a pass over all users: at 8,000 users that put the first appointment start a second
/// late.
fn full_pass(polled: bool, directory_refreshed: &mut bool) -> bool {
    let refreshed = std::mem::take(directory_refreshed);
    polled || refreshed
}

/// The users with an appointment boundary in `(after, upto]`.
pub fn users_at_boundary(
    members: &[Member],
    calendars: &HashMap<String, Calendar>,
    after: Timestamp,
    upto: Timestamp,
) -> HashSet<UserId> {
    members
        .iter()
        .filter(|m| match calendars.get(&m.email) {
            Some(Ok(appts)) => appts
                .iter()
                .filter(|a| a.start < a.end)
                .any(|a| (a.start > after && a.start <= upto) || (a.end > after && a.end <= upto)),
            _ => false,
        })
        .map(|m| m.id)
        .collect()
}

/// A calendar read, run on the blocking pool apart from the worker: a SIGTERM need not wait
/// for a slow or silent Exchange (it changes nothing, so it can be left behind).
struct Poll {
    source: Box<dyn CalendarSource + Send>,
    members: Vec<Member>,
    window: Window,
}

/// The source back, and what it read.
type Polled = (
    Box<dyn CalendarSource + Send>,
    Result<HashMap<String, Calendar>, SourceError>,
);

impl Poll {
    fn run(mut self) -> Polled {
        let result = read_calendars(
            self.source.as_mut(),
            &self.members,
            self.window,
            &mut NoWait,
        );
        (self.source, result)
    }
}

/// Everything the blocking side of the daemon owns. It moves to the blocking pool for each
/// step of a tick and comes back.
struct Worker {
    config: Config,
    starface: Starface,
    /// `None` while a poll has it.
    source: Option<Box<dyn CalendarSource + Send>>,
    state: State,
    /// The state as last saved, to write the file only when it changed.
    saved: String,
    members: Vec<Member>,
    directory_due: Timestamp,
    /// The phone number list, once a pass has read it; dropped with every directory refresh.
    /// Reading it costs more than a whole idle pass otherwise (2,000 users: one 0.5 MB answer).
    numbers: Option<NumberIndex>,
    calendars: HashMap<String, Calendar>,
    /// When the calendars were last read successfully.
    calendars_at: Option<Timestamp>,
    poll_due: Timestamp,
    /// The time of the last pass; boundaries after it are still to be applied.
    last_pass: Timestamp,
    exchange_backoff: Backoff,
    starface_backoff: Backoff,
    /// STARFACE may not be asked again before this (after a failure).
    starface_retry: Timestamp,
    reported: Reported,
    stop: Stop,
    /// The directory was read in this tick: the pass looks at everyone (also users who left
    /// the group, even when no poll can run because the group is empty).
    directory_refreshed: bool,
    /// The last calendar read failed: the next one is a retry.
    last_poll_failed: bool,
}

/// How long requests may still run after SIGTERM: the operation in flight finishes if it can,
/// a hung server cannot hold the exit past the 5 s of the contract.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The stop request: a flag the pass checks between users, and a cutoff for every HTTP request
/// of the worker's clients (also those in flight, and the logout).
#[derive(Clone, Debug, Default)]
struct Stop {
    flag: Arc<AtomicBool>,
    cutoff: Cutoff,
}

impl Stop {
    fn request(&self) {
        if !self.flag.swap(true, Ordering::SeqCst) {
            self.cutoff.within(STOP_GRACE);
        }
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

impl Worker {
    fn new(config: Config, stop: Stop) -> Result<Worker, Failure> {
        let Services { starface, source } =
            Services::new(&config, &stop.cutoff).map_err(Failure::Config)?;
        let (state, corrupt) = state::load(&config.sync.state_dir, wall_clock())?;
        if let Some(e) = corrupt {
            log::error!("{e}");
        }
        let saved = state.to_json();
        Ok(Worker {
            config,
            starface,
            source: Some(source),
            state,
            saved,
            members: Vec::new(),
            directory_due: 0,
            numbers: None,
            calendars: HashMap::new(),
            calendars_at: None,
            poll_due: 0,
            last_pass: 0,
            exchange_backoff: Backoff::default(),
            starface_backoff: Backoff::default(),
            starface_retry: 0,
            reported: Reported::default(),
            stop,
            directory_refreshed: false,
            last_poll_failed: false,
        })
    }

    /// The next second at which something is due.
    fn next_due(&self, now: Timestamp) -> Timestamp {
        let directory = self.directory_due.max(self.starface_retry);
        // Without members there is nothing to poll: the directory comes first.
        let poll = if self.members.is_empty() {
            directory
        } else {
            self.poll_due
        };
        let boundary = self
            .members
            .iter()
            .filter_map(|m| match self.calendars.get(&m.email) {
                Some(Ok(a)) => rules::next_boundary(a, self.last_pass),
                _ => None,
            })
            .min();
        let due = directory.min(poll).min(boundary.unwrap_or(Timestamp::MAX));
        due.max(now)
    }

    /// `problem` names STARFACE itself (the client's errors all do).
    fn starface_failed(&mut self, problem: String, now: Timestamp) {
        let wait = self.starface_backoff.next(None);
        self.starface_retry = now + wait.as_secs() as i64;
        if self.reported.first(Topic::Starface, &problem) {
            log::error!("{problem}; retrying in {} s", wait.as_secs());
        }
    }

    /// The first step of a tick at `now`: the directory if due; then the calendar read, if
    /// one is due, to run apart (`finish_tick` takes its outcome).
    fn start_tick(&mut self, now: Timestamp) -> Option<Poll> {
        let starface_ok = now >= self.starface_retry;
        if starface_ok && now >= self.directory_due {
            match self.starface.directory(&self.config.starface.group) {
                Ok(dir) => {
                    for w in &dir.warnings {
                        if self.reported.first(Topic::Directory(w.clone()), w) {
                            log::warn!("{w}");
                        }
                    }
                    self.members = calendars::members(&dir);
                    self.numbers = None;
                    log::debug!(
                        "directory: group '{}' has {} member(s) with an e-mail address; read again in {} s",
                        self.config.starface.group,
                        self.members.len(),
                        self.config.sync.directory_refresh.as_secs()
                    );
                    self.directory_refreshed = true;
                    self.directory_due = now + self.config.sync.directory_refresh.as_secs() as i64;
                    self.reported.clear(&Topic::Starface);
                    self.starface_backoff.reset();
                }
                Err(e) => {
                    if self.members.is_empty() {
                        // No poll can run without members: the failure is the poll's outcome.
                        self.record_poll(now, e.to_string());
                    }
                    self.starface_failed(e.to_string(), now);
                }
            }
        }
        if now < self.poll_due || self.members.is_empty() || self.stop.is_set() {
            return None;
        }
        let source = self.source.take()?;
        let window = calendars::window(now, self.config.sync.lookahead.as_secs());
        let why = match self.calendars_at {
            None => "the first poll".to_string(),
            Some(_) if self.last_poll_failed => "retrying after a failed read".to_string(),
            Some(_) => format!(
                "the poll interval of {} s is up",
                self.config.sync.poll_interval.as_secs()
            ),
        };
        calendars::log_read(&self.members, window, &why);
        Some(Poll {
            source,
            members: self.members.clone(),
            window,
        })
    }

    /// The rest of the tick at `now`: the calendars read (if there was a poll), then a pass.
    fn finish_tick(&mut self, now: Timestamp, polled: Option<Polled>) {
        let poll = polled.map(|(source, result)| {
            self.source = Some(source);
            self.take_calendars(now, result)
        });
        let polled = poll.as_ref().is_some_and(Result::is_ok);
        if now < self.starface_retry {
            self.last_pass = now;
            if poll.is_some() {
                let error = match poll {
                    Some(Err(e)) => e,
                    _ => "STARFACE: not reachable, nothing was switched".to_string(),
                };
                self.record_poll(now, error);
            }
            return;
        }
        let stale = self
            .calendars_at
            .is_none_or(|at| is_stale(at, now, self.config.sync.poll_interval));
        // After a poll everyone is looked at; at a boundary only those whose appointments
        // start or end now.
        let full = full_pass(polled, &mut self.directory_refreshed);
        let only =
            (!full).then(|| users_at_boundary(&self.members, &self.calendars, self.last_pass, now));
        if only.as_ref().is_some_and(HashSet::is_empty) && !stale {
            self.last_pass = now;
            return;
        }
        if let Some(ids) = only.as_ref().filter(|ids| !ids.is_empty()) {
            let emails: Vec<&str> = self
                .members
                .iter()
                .filter(|m| ids.contains(&m.id))
                .map(|m| m.email.as_str())
                .collect();
            log::debug!(
                "boundary at {}: looking at {} user(s) whose appointments start or end now: {}",
                crate::time::format_short(now, now),
                emails.len(),
                explain::names(&emails, 50)
            );
        }
        let report = {
            let mut pbx = StarfacePbx::new(&mut self.starface, self.numbers.take());
            let pass = Pass {
                t: now,
                members: &self.members,
                calendars: &self.calendars,
                stale,
                dry_run: false,
                only: only.as_ref(),
                stop: Some(&self.stop.flag),
            };
            let report = sync::run_pass(
                &mut pbx,
                &mut self.state,
                &self.config,
                &pass,
                &mut self.reported,
            );
            self.numbers = pbx.into_numbers();
            report
        };
        log_report(&report, now, false, &mut self.reported);
        if report.pbx_unreachable {
            self.starface_failed(
                "STARFACE: the PBX is unreachable (see the errors above)".to_string(),
                now,
            );
        }
        self.last_pass = now;
        match poll {
            Some(Ok(())) => {
                self.state.poll = Some(poll_record(now, &self.calendars, &report.failures));
            }
            Some(Err(e)) => self.record_poll(now, e),
            None => {}
        }
        self.save();
    }

    /// Records a poll that failed as a whole and saves the state.
    fn record_poll(&mut self, now: Timestamp, error: String) {
        self.state.poll = Some(PollRecord {
            at: now,
            error: Some(error),
            users_read: 0,
            users_failed: 0,
        });
        self.save();
    }

    /// Takes the outcome of a calendar read: ok, or the error in one line.
    fn take_calendars(
        &mut self,
        now: Timestamp,
        result: Result<HashMap<String, Calendar>, SourceError>,
    ) -> Result<(), String> {
        match result {
            Ok(calendars) => {
                // Unreadable mailboxes are reported by the pass that follows every poll (once,
                // through `Reported`), not here as well.
                self.calendars = calendars;
                self.calendars_at = Some(now);
                self.poll_due = now + self.config.sync.poll_interval.as_secs() as i64;
                self.exchange_backoff.reset();
                self.reported.clear(&Topic::Exchange);
                self.last_poll_failed = false;
                Ok(())
            }
            Err(e) => {
                let wait = self.exchange_backoff.next(e.retry_after);
                // The wait counts from now, when the answer that asked for it has arrived (not
                // from the tick's start, before the request), to the millisecond, rounded up.
                self.poll_due =
                    second_after_wait(wall_clock_precise(), wait.max(Duration::from_secs(1)))
                        .max(now + 1);
                if self.reported.first(Topic::Exchange, &e.message) {
                    log::error!(
                        "Exchange: {e}; keeping the last calendars, retrying in {}",
                        duration_text(wait)
                    );
                }
                self.last_poll_failed = true;
                Err(format!("Exchange: {e}"))
            }
        }
    }

    fn save(&mut self) {
        let text = self.state.to_json();
        if text == self.saved {
            return;
        }
        match state::save_text(&self.config.sync.state_dir, &text) {
            Ok(()) => self.saved = text,
            Err(e) => {
                if self.reported.first(Topic::State, &e.to_string()) {
                    log::error!("{e}");
                }
            }
        }
    }

    /// Applies a new configuration (SIGHUP).
    fn reload(&mut self, config: Config, now: Timestamp) {
        match Services::new(&config, &self.stop.cutoff) {
            Ok(Services { starface, source }) => {
                logout(&mut self.starface);
                self.starface = starface;
                self.source = Some(source);
                self.config = config;
                self.directory_due = now;
                self.numbers = None;
                self.poll_due = now;
                self.starface_retry = now;
                log::info!("configuration reloaded");
            }
            Err(e) => log::error!("reloading the configuration: {e}; keeping the old one"),
        }
    }

    fn shutdown(&mut self) {
        self.save();
        logout(&mut self.starface);
    }
}

/// The monotonic instant at which the wall clock shows second `t`.
fn instant_of(t: Timestamp) -> Instant {
    let now = wall_clock_precise();
    let target = Duration::from_secs(t.max(0) as u64);
    Instant::now() + target.saturating_sub(now)
}

enum Wake {
    Due,
    Signal(Signal),
    SignalsEnded,
}

/// What signals asked for while a step of a tick ran.
#[derive(Default)]
struct Asked {
    reload: bool,
    terminate: bool,
}

/// Notes a signal (`None`: the signal stream ended, taken as a stop); whether it asks to stop.
/// A stop also sets `stop`, which a pass checks between users.
fn note(signal: Option<Signal>, stop: &Stop, asked: &mut Asked) -> bool {
    match signal {
        Some(Signal::Hup) => {
            asked.reload = true;
            false
        }
        _ => {
            asked.terminate = true;
            stop.request();
            true
        }
    }
}

enum Event<T> {
    Done(T),
    Signal(Option<Signal>),
}

async fn next_event<T>(task: &mut smol::Task<T>, signals: &mut Signals) -> Event<T> {
    let done = async { Event::Done(task.await) };
    let signal = async {
        match signals.next().await {
            Some(Ok(s)) => Event::Signal(Some(s)),
            _ => Event::Signal(None),
        }
    };
    smol::future::or(done, signal).await
}

/// Waits for blocking work, noting signals meanwhile; after a stop it still waits for the
/// work (the operation in flight finishes).
async fn finish<T>(
    mut task: smol::Task<T>,
    signals: &mut Signals,
    stop: &Stop,
    asked: &mut Asked,
) -> T {
    loop {
        match next_event(&mut task, signals).await {
            Event::Done(v) => return v,
            Event::Signal(s) => {
                if note(s, stop, asked) {
                    return task.await;
                }
            }
        }
    }
}

/// Like `finish`, but a stop leaves the work behind at once (`None`).
async fn finish_or_abandon<T>(
    mut task: smol::Task<T>,
    signals: &mut Signals,
    stop: &Stop,
    asked: &mut Asked,
) -> Option<T> {
    loop {
        match next_event(&mut task, signals).await {
            Event::Done(v) => return Some(v),
            Event::Signal(s) => {
                if note(s, stop, asked) {
                    return None;
                }
            }
        }
    }
}

pub fn run(config_path: &Path, config: Config) -> Result<(), Failure> {
    let mut signals =
        Signals::new([Signal::Term, Signal::Int, Signal::Hup]).map_err(Failure::Signals)?;
    let stop = Stop::default();
    let mut worker = Worker::new(config, stop.clone())?;
    log::info!(
        "exchange-status-sync {} started: {} user group '{}', polling every {} s",
        env!("CARGO_PKG_VERSION"),
        worker.config.starface.url,
        worker.config.starface.group,
        worker.config.sync.poll_interval.as_secs()
    );
    let path: PathBuf = config_path.to_path_buf();
    smol::block_on(async move {
        let mut reload = false;
        loop {
            if reload {
                reload = false;
                // Reopen log.file first, whatever becomes of the new configuration: after a
                // rotation that moved the file, lines must go to the new one.
                logging::reopen();
                match load_config(&path) {
                    Ok(cfg) => worker.reload(cfg, wall_clock()),
                    Err(e) => {
                        log::error!("reloading the configuration failed, keeping the old one: {e}")
                    }
                }
            }
            let now = wall_clock();
            let due = worker.next_due(now);
            if due > now {
                let timer = async {
                    smol::Timer::at(instant_of(due)).await;
                    Wake::Due
                };
                let signal = async {
                    match signals.next().await {
                        Some(Ok(s)) => Wake::Signal(s),
                        _ => Wake::SignalsEnded,
                    }
                };
                match smol::future::or(timer, signal).await {
                    Wake::Due => {}
                    Wake::Signal(Signal::Hup) => {
                        reload = true;
                        continue;
                    }
                    Wake::Signal(_) | Wake::SignalsEnded => break,
                }
            }
            // The tick's steps run on the blocking pool; signals are still heard meanwhile.
            let now = wall_clock();
            let mut asked = Asked::default();
            let mut w = worker;
            let first = smol::unblock(move || {
                let poll = w.start_tick(now);
                (w, poll)
            });
            let (w, poll) = finish(first, &mut signals, &stop, &mut asked).await;
            worker = w;
            let polled = match poll {
                Some(poll) if !asked.terminate => {
                    let read = smol::unblock(move || poll.run());
                    match finish_or_abandon(read, &mut signals, &stop, &mut asked).await {
                        Some(polled) => Some(polled),
                        // Stopped while reading Exchange: nothing was written in this tick.
                        None => break,
                    }
                }
                _ => None,
            };
            if asked.terminate {
                break;
            }
            let mut w = worker;
            let rest = smol::unblock(move || {
                w.finish_tick(now, polled);
                w
            });
            worker = finish(rest, &mut signals, &stop, &mut asked).await;
            reload |= asked.reload;
            if asked.terminate {
                break;
            }
        }
        log::info!("stopping: saving the state and logging out");
        // Also when the stop came between ticks: the logout must not wait for a hung PBX.
        stop.request();
        smol::unblock(move || worker.shutdown()).await;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Appointment, ShowAs};

    #[test]
    fn backoff() {
        let mut b = Backoff::default();
        let secs: Vec<u64> = (0..8).map(|_| b.next(None).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(b.next(Some(Duration::from_secs(5))).as_secs(), 5);
        assert_eq!(b.next(Some(Duration::from_secs(5000))).as_secs(), 900);
        b.reset();
        assert_eq!(b.next(None).as_secs(), 30);
    }

    #[test]
    fn a_directory_refresh_makes_one_full_pass() {
        // (polled, refreshed before) → (full pass, refreshed after)
        for (polled, before, expect) in [
            (true, true, (true, false)),
            (true, false, (true, false)),
            (false, true, (true, false)),
            (false, false, (false, false)),
        ] {
            let mut flag = before;
            let full = full_pass(polled, &mut flag);
            assert_eq!((full, flag), expect, "polled {polled}, refreshed {before}");
        }
    }

    #[test]
    fn staleness() {
        let p = Duration::from_secs(120);
        assert!(!is_stale(0, 840, p));
        assert!(is_stale(0, 841, p));
    }

    #[test]
    fn boundary_users() {
        let a = |s, e| Appointment {
            start: s,
            end: e,
            show_as: ShowAs::Busy,
            subject: None,
            private: false,
            all_day: false,
        };
        let members = vec![
            Member {
                id: 1,
                email: "a".into(),
            },
            Member {
                id: 2,
                email: "b".into(),
            },
            Member {
                id: 3,
                email: "c".into(),
            },
        ];
        let calendars: HashMap<String, Calendar> = [
            ("a".to_string(), Ok(vec![a(100, 200)])),
            ("b".to_string(), Ok(vec![a(150, 300)])),
            ("c".to_string(), Err("x".to_string())),
        ]
        .into();
        assert_eq!(users_at_boundary(&members, &calendars, 99, 100), [1].into());
        assert_eq!(
            users_at_boundary(&members, &calendars, 100, 199),
            [2].into()
        );
        assert_eq!(
            users_at_boundary(&members, &calendars, 150, 200),
            [1].into()
        );
        assert!(users_at_boundary(&members, &calendars, 300, 400).is_empty());
    }
}
