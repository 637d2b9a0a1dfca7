//! `run`: the daemon (DESIGN.md sections 5 and 9).
//!
//! The loop is async (smol) so that it can wait for the next deadline — the next poll, the next
//! appointment boundary of any user, the end of a back-off — and for signals at the same time.
//! The blocking work of a tick (HTTP to Exchange and STARFACE) runs on smol's blocking pool;
//! while it runs, a SIGTERM sets a flag that the pass checks between users, so the operation in
//! flight finishes, the state is saved, and we log out.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_signal::{Signal, Signals};
use smol::stream::StreamExt;

use crate::app::Services;
use crate::cli::{self, Failure};
use crate::config::Config;
use crate::cycle;
use crate::exchange::NoWait;
use crate::model::Timestamp;
use crate::once::logout;
use crate::pbx::StarfacePbx;
use crate::rules;
use crate::state::{self, State, UserId};
use crate::sync::{self, Calendar, Member, Pass, Reported};

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

/// Everything the blocking side of the daemon owns. It moves to the blocking pool for a tick
/// and comes back.
struct Worker {
    config: Config,
    services: Services,
    state: State,
    /// The state as last saved, to write the file only when it changed.
    saved: String,
    members: Vec<Member>,
    directory_due: Timestamp,
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
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn new(config: Config, stop: Arc<AtomicBool>) -> Result<Worker, Failure> {
        let services = Services::new(&config).map_err(Failure::Config)?;
        let (state, corrupt) = state::load(&config.sync.state_dir, cycle::wall_clock())
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        if let Some(e) = corrupt {
            log::error!("{e}");
        }
        let saved = state.to_json();
        Ok(Worker {
            config,
            services,
            state,
            saved,
            members: Vec::new(),
            directory_due: 0,
            calendars: HashMap::new(),
            calendars_at: None,
            poll_due: 0,
            last_pass: 0,
            exchange_backoff: Backoff::default(),
            starface_backoff: Backoff::default(),
            starface_retry: 0,
            reported: Reported::default(),
            stop,
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
        if self.reported.first("starface", &problem) {
            log::error!("{problem}; retrying in {} s", wait.as_secs());
        }
    }

    /// One tick at `now`: refresh what is due, then a pass.
    fn tick(&mut self, now: Timestamp) {
        let starface_ok = now >= self.starface_retry;
        if starface_ok && now >= self.directory_due {
            match self
                .services
                .starface
                .directory(&self.config.starface.group)
            {
                Ok(dir) => {
                    for w in &dir.warnings {
                        if self.reported.first(&format!("dir:{w}"), w) {
                            log::warn!("{w}");
                        }
                    }
                    self.members = cycle::members(&dir);
                    self.directory_due = now + self.config.sync.directory_refresh.as_secs() as i64;
                    self.reported.clear("starface");
                    self.starface_backoff.reset();
                }
                Err(e) => {
                    self.starface_failed(e.to_string(), now);
                }
            }
        }
        let mut polled = false;
        if now >= self.poll_due && !self.members.is_empty() && !self.stop.load(Ordering::SeqCst) {
            let window = cycle::window(now, self.config.sync.lookahead.as_secs());
            match cycle::read_calendars(
                self.services.source.as_mut(),
                &self.members,
                window,
                &mut NoWait,
            ) {
                Ok(calendars) => {
                    for (email, c) in &calendars {
                        if let Err(e) = c {
                            if self.reported.first(&format!("mailbox:{email}"), e) {
                                log::error!("{email}: mailbox not readable: {e}");
                            }
                        }
                    }
                    self.calendars = calendars;
                    self.calendars_at = Some(now);
                    self.poll_due = now + self.config.sync.poll_interval.as_secs() as i64;
                    self.exchange_backoff.reset();
                    self.reported.clear("exchange");
                    polled = true;
                }
                Err(e) => {
                    let wait = self.exchange_backoff.next(e.retry_after);
                    self.poll_due = now + wait.as_secs().max(1) as i64;
                    if self.reported.first("exchange", &e.message) {
                        log::error!(
                            "Exchange: {e}; keeping the last calendars, retrying in {} s",
                            wait.as_secs()
                        );
                    }
                }
            }
        }
        if now < self.starface_retry {
            self.last_pass = now;
            return;
        }
        let stale = self
            .calendars_at
            .is_none_or(|at| is_stale(at, now, self.config.sync.poll_interval));
        // After a poll everyone is looked at; at a boundary only those whose appointments
        // start or end now.
        let only = (!polled)
            .then(|| users_at_boundary(&self.members, &self.calendars, self.last_pass, now));
        if only.as_ref().is_some_and(HashSet::is_empty) && !stale {
            self.last_pass = now;
            return;
        }
        let report = {
            let mut pbx = StarfacePbx::new(&mut self.services.starface);
            let pass = Pass {
                t: now,
                members: &self.members,
                calendars: &self.calendars,
                stale,
                dry_run: false,
                only: only.as_ref(),
                stop: Some(&self.stop),
            };
            sync::run_pass(
                &mut pbx,
                &mut self.state,
                &self.config,
                &pass,
                &mut self.reported,
            )
        };
        cycle::log_report(&report, now, false, &mut self.reported);
        if report.pbx_unreachable {
            self.starface_failed(
                "STARFACE: the PBX is unreachable (see the errors above)".to_string(),
                now,
            );
        }
        self.last_pass = now;
        self.save();
    }

    fn save(&mut self) {
        let text = self.state.to_json();
        if text == self.saved {
            return;
        }
        match state::save(&self.config.sync.state_dir, &self.state) {
            Ok(()) => self.saved = text,
            Err(e) => {
                if self.reported.first("state", &e.to_string()) {
                    log::error!("{e}");
                }
            }
        }
    }

    /// Applies a new configuration (SIGHUP).
    fn reload(&mut self, config: Config, now: Timestamp) {
        match Services::new(&config) {
            Ok(services) => {
                logout(&mut self.services.starface);
                self.services = services;
                self.config = config;
                self.directory_due = now;
                self.poll_due = now;
                self.starface_retry = now;
                log::info!("configuration reloaded");
            }
            Err(e) => log::error!("reloading the configuration: {e}; keeping the old one"),
        }
    }

    fn shutdown(&mut self) {
        self.save();
        logout(&mut self.services.starface);
    }
}

/// Wall-clock time with sub-second precision.
fn wall_precise() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The monotonic instant at which the wall clock shows second `t`.
fn instant_of(t: Timestamp) -> Instant {
    let now = wall_precise();
    let target = Duration::from_secs(t.max(0) as u64);
    Instant::now() + target.saturating_sub(now)
}

enum Wake {
    Due,
    Signal(Signal),
    SignalsEnded,
}

pub fn run(config_path: &Path, config: Config) -> Result<(), Failure> {
    let mut signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])
        .map_err(|e| Failure::Runtime(format!("cannot install signal handlers: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
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
                match cli::load_config(&path) {
                    Ok(cfg) => worker.reload(cfg, cycle::wall_clock()),
                    Err(e) => {
                        log::error!("reloading the configuration failed, keeping the old one: {e}")
                    }
                }
            }
            let now = cycle::wall_clock();
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
            // The tick runs on the blocking pool; signals are still heard meanwhile.
            let mut tick = smol::unblock(move || {
                worker.tick(cycle::wall_clock());
                worker
            });
            let mut terminate = false;
            worker = loop {
                let signal = async {
                    match signals.next().await {
                        Some(Ok(s)) => Some(s),
                        _ => None,
                    }
                };
                let done = async { Err::<Option<Signal>, Worker>((&mut tick).await) };
                match smol::future::or(done, async { Ok(signal.await) }).await {
                    Err(w) => break w,
                    Ok(Some(Signal::Hup)) => reload = true,
                    Ok(_) => {
                        terminate = true;
                        stop.store(true, Ordering::SeqCst);
                    }
                }
            };
            if terminate {
                break;
            }
        }
        log::info!("stopping: saving the state and logging out");
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
