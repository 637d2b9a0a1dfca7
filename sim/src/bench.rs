//! `ess-sim bench`: the performance budgets (README.md, "Performance and size"), measured with
//! the real product binary against the fakes on loopback.
//!
//! The fakes hold N users (default 2,000) with M appointments each (default 10, spread over
//! sixteen hours around now, mixed show-as, some private, some with keywords in both languages).
//! The phases:
//! 1. `once --at T` with the availability lookup and an empty state: the first poll.
//! 2. `once --at T` again, several times, with the state of the first: an idle poll. PBX writes
//!    must be 0 and PBX reads only those of users with something of ours on; its CPU time is the
//!    "CPU per poll" figure (including process start, login and directory).
//! 3. `once --at T` with the calendar lookup, same state: the per-user lookup for comparison.
//! 4. The daemon (`run`) polling every second for `--polls` polls: VmRSS and VmHWM from
//!    `/proc/<pid>/status` after the first, the middle and the last poll, and its CPU per poll
//!    from `/proc/<pid>/stat`; the directory is read every 10 s so that the peak includes it.
//! 5. The daemon at its defaults but for a poll a second, at the 2 h and at the 24 h
//!    look-ahead: its CPU per idle poll, the budget's figure for the daemon.
//! 6. The daemon again, with an appointment boundary a few seconds ahead for some users: the
//!    time from the boundary second to the write arriving at the STARFACE fake.
//! 7. The size of the static musl release binary, when it was built.
//!
//! CPU time and peak RSS of a finished `once` come from `wait4`'s rusage (through the `libc`
//! crate): std does not expose it, and `/proc/<pid>` is gone once the child is reaped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ess_sim::calendar::{format_utc, Calendars, SimAppointment, SimShowAs};
use ess_sim::ews::{EwsAuth, EwsFake};
use ess_sim::server::Server;
use ess_sim::starface::{SimDestination, SimNumberType, SimTrigger, StarfaceSim};

use crate::product::{self, Setup, TempDir, EWS_PASSWORD, EWS_USER};

const USAGE: &str = "\
usage: ess-sim bench [--users N] [--appointments N] [--polls N] [--repeat N] [--ntlm] [--bin PATH]

Measures the performance budgets (README.md, section \"Performance and size\") with the real
product binary against the simulated Exchange (EWS) and STARFACE on loopback, and prints each
figure against its budget.

options:
  --users N          users in the STARFACE group, each with a mailbox (default 2000)
  --appointments N   appointments per mailbox, spread over 16 hours around now (default 10)
  --polls N          daemon polls (one a second) for the memory figures (default 60; the budget
                     'memory flat over 1,000 cycles' needs --polls 1000, about 17 minutes)
  --repeat N         idle `once` runs for the CPU figure; the median is reported (default 5)
  --ntlm             EWS authenticates with NTLM (auth = \"ntlm\") instead of Basic
  --bin PATH         the product binary (default: $ESS_BIN, else the static musl release build
                     target/x86_64-unknown-linux-musl/release/exchange-status-sync, built with
                     cargo build --release --target x86_64-unknown-linux-musl when missing)

The EWS parse throughput comes from the musl build of the example ews-parse (built the same
way when missing), run on the largest response the fake sent.

CPU time and peak RSS of `once` come from wait4's rusage; the daemon's from /proc/<pid>.";

/// The performance budgets of the contract.
const BUDGET_RSS_KIB: u64 = 8 * 1024;
const BUDGET_CPU_MS: f64 = 50.0;
/// The CPU and memory budgets are for this many users; other counts are reported, not judged.
const BUDGET_USERS: u32 = 2000;

/// A CPU or memory figure's verdict: judged for up to `BUDGET_USERS` users only.
fn judged(users: u32, ok: bool) -> Option<bool> {
    (users <= BUDGET_USERS).then_some(ok)
}

/// The budget text of a CPU or memory figure.
fn budget_for(users: u32, budget: String) -> String {
    if users <= BUDGET_USERS {
        budget
    } else {
        format!("{budget} at {BUDGET_USERS} users")
    }
}
const BUDGET_LATENCY_SECS: f64 = 1.0;
const BUDGET_BINARY_BYTES: u64 = 1_500_000;

/// The daemon's directory refresh in the memory phase (the product's default is 600 s).
const DIRECTORY_REFRESH_SECS: u64 = 10;

/// Polls over which the idle daemon's CPU is measured (one a second; the CPU clock of
/// /proc/<pid>/stat ticks in 10 ms, so this many polls give about ±0.5 ms per poll).
const IDLE_DAEMON_POLLS: usize = 20;

/// How far before and after now the appointments are spread.
const SPREAD_BEFORE: i64 = 2 * 3600;
const SPREAD: i64 = 16 * 3600;

#[derive(Debug)]
struct Options {
    users: u32,
    appointments: u32,
    polls: u32,
    repeat: u32,
    /// The EWS fake and the product authenticate with NTLM instead of Basic.
    ntlm: bool,
    bin: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        users: 2000,
        appointments: 10,
        polls: 60,
        repeat: 5,
        ntlm: false,
        bin: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str, min: u32| -> Result<u32, String> {
            it.next()
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|n| *n >= min)
                .ok_or_else(|| format!("{name} takes a whole number of at least {min}"))
        };
        match a.as_str() {
            "--users" => o.users = number("--users", 1)?,
            "--appointments" => o.appointments = number("--appointments", 1)?,
            "--polls" => o.polls = number("--polls", 2)?,
            "--repeat" => o.repeat = number("--repeat", 1)?,
            "--bin" => o.bin = Some(it.next().ok_or("--bin needs a path")?.clone()),
            "--ntlm" => o.ntlm = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(Some(o))
}

pub fn run_cli(args: &[String]) -> i32 {
    let opts = match parse_args(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("ess-sim bench: {e}\n{USAGE}");
            return 2;
        }
    };
    match run(&opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ess-sim bench: {e}");
            1
        }
    }
}

/// splitmix64: a fixed, well-spread sequence, so that every run benchmarks the same calendars.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const SUBJECTS: [&str; 8] = [
    "Weekly sync",
    "Project review",
    "1:1 with team lead",
    "Customer call",
    "Lunch",
    "Budget planning Q3",
    "Kundentermin Müller & Söhne",
    "Onboarding <new colleagues>",
];

const KEYWORDS: [&str; 6] = [
    " (DND)",
    " (Keine Ruhe)",
    " (Anrufe weiterleiten)",
    " (No action)",
    " (Call forwarding) (No DND)",
    " (Ruhe)",
];

/// The appointments of user `user`: `count` of them, one in each equal slot of the sixteen
/// hours from `t − 3 h`, starting in the slot's first half and lasting 10 minutes to half a slot
/// (so some run into the next slot and overlap). Show-as: 40 % Busy, 15 % Free, 15 % Tentative,
/// 10 % OOF, 10 % WorkingElsewhere, 10 % private Busy; a fifth have keywords.
fn appointments(user: u32, count: u32, t: i64) -> Vec<SimAppointment> {
    let slot_min = (SPREAD / 60 / i64::from(count.max(1))).max(4) as u64;
    (0..count)
        .map(|k| {
            let r = mix((u64::from(user) << 32) | u64::from(k));
            let start = t - SPREAD_BEFORE
                + i64::from(k) * slot_min as i64 * 60
                + (r % (slot_min / 2)) as i64 * 60;
            let minutes = 10 + (r >> 8) % (slot_min / 2).max(1);
            let (show_as, private) = match (r >> 24) % 20 {
                0..=7 => (SimShowAs::Busy, false),
                8..=10 => (SimShowAs::Free, false),
                11..=13 => (SimShowAs::Tentative, false),
                14..=15 => (SimShowAs::Oof, false),
                16..=17 => (SimShowAs::WorkingElsewhere, false),
                _ => (SimShowAs::Busy, true),
            };
            let keyword = match (r >> 32) % 30 {
                n @ 0..=5 => KEYWORDS[n as usize],
                _ => "",
            };
            let subject = format!(
                "{} {}{keyword}",
                SUBJECTS[((r >> 40) % SUBJECTS.len() as u64) as usize],
                k + 1
            );
            let a = SimAppointment::new(start, start + minutes as i64 * 60, show_as, &subject);
            if private {
                a.private()
            } else {
                a
            }
        })
        .collect()
}

fn email(user: u32) -> String {
    format!("user{user}@bench.example.com")
}

/// The PBX: users 1..=N in `Exchange-Sync`, each with an internal and an external number and an
/// "always" redirect with a destination on both (off).
fn bench_pbx(users: u32) -> StarfaceSim {
    let pbx = StarfaceSim::new();
    let mut members = Vec::new();
    for i in 1..=users {
        let id = i64::from(i);
        let internal = format!("{}", 100_000 + i);
        let external = format!("4972155{:06}", i);
        pbx.user(
            id,
            &format!("{}", 500_000 + i),
            &email(i),
            "Bench",
            &format!("User{i}"),
        )
        .number(id, &internal, SimNumberType::Internal)
        .number(id, &external, SimNumberType::External)
        .redirect(
            &format!("ext-{i}"),
            id,
            &format!("+{external}"),
            SimTrigger::Always,
            SimDestination::Phone(format!("0171{:07}", i)),
            false,
        )
        .redirect(
            &format!("int-{i}"),
            id,
            &internal,
            SimTrigger::Always,
            SimDestination::Mailbox(format!("vm{i}")),
            false,
        );
        members.push(id);
    }
    pbx.group(10, "Exchange-Sync", &members);
    pbx
}

/// The fakes, with a request counter in front of EWS (the fake's own log keeps whole bodies;
/// the benchmark clears it between phases so that long daemon runs do not grow the sim).
struct Fakes {
    ews: EwsFake,
    ews_requests: Arc<AtomicUsize>,
    /// Response body bytes sent by the EWS fake: what the product parses.
    ews_bytes: Arc<AtomicUsize>,
    /// The largest response body the EWS fake sent, for the parse throughput.
    largest: Arc<Mutex<Vec<u8>>>,
    ews_server: Server,
    pbx: StarfaceSim,
    pbx_server: Server,
    /// `exchange.auth` of the product's configuration.
    auth: &'static str,
}

impl Fakes {
    fn start(users: u32, appts: u32, t: i64, ntlm: bool) -> Result<Fakes, String> {
        let calendars = Calendars::new();
        for i in 1..=users {
            calendars.add_mailbox(&email(i));
            for a in appointments(i, appts, t) {
                calendars.add(&email(i), a);
            }
        }
        let auth = match ntlm {
            true => EwsAuth::ntlm(EWS_USER, EWS_PASSWORD),
            false => EwsAuth::basic(EWS_USER, EWS_PASSWORD),
        };
        let ews = EwsFake::new(calendars, auth);
        let ews_requests = Arc::new(AtomicUsize::new(0));
        let ews_bytes = Arc::new(AtomicUsize::new(0));
        let largest = Arc::new(Mutex::new(Vec::new()));
        let (fake, counter, bytes) = (ews.clone(), ews_requests.clone(), ews_bytes.clone());
        let keep = largest.clone();
        let ews_server = Server::start(move |req| {
            counter.fetch_add(1, Ordering::SeqCst);
            let reply = fake.handle(req);
            bytes.fetch_add(reply.body.len(), Ordering::SeqCst);
            if let Ok(mut kept) = keep.lock() {
                if reply.body.len() > kept.len() {
                    kept.clone_from(&reply.body);
                }
            }
            reply
        })
        .map_err(|e| format!("cannot start the EWS fake: {e}"))?;
        let pbx = bench_pbx(users);
        let pbx_server = pbx
            .start()
            .map_err(|e| format!("cannot start the STARFACE fake: {e}"))?;
        Ok(Fakes {
            ews,
            ews_requests,
            ews_bytes,
            largest,
            ews_server,
            pbx,
            pbx_server,
            auth: if ntlm { "ntlm" } else { "basic" },
        })
    }

    fn ews_count(&self) -> usize {
        self.ews_requests.load(Ordering::SeqCst)
    }

    /// Forgets what the fakes recorded (not their data).
    fn reset_records(&self) {
        self.ews.clear_requests();
        self.ews_requests.store(0, Ordering::SeqCst);
        self.ews_bytes.store(0, Ordering::SeqCst);
        self.pbx.reset_records();
        self.ews_server.reset_counts();
        self.pbx_server.reset_counts();
    }

    /// TCP connections the product opened to EWS and to the PBX since the last reset.
    fn connects(&self) -> (usize, usize) {
        (self.ews_server.connects(), self.pbx_server.connects())
    }

    fn setup(&self, lookup: &'static str, poll: u64, state_dir: &Path) -> Setup {
        self.setup_window(lookup, poll, None, state_dir)
    }

    /// As `setup`, with `lookahead_hours` set (`None`: the product's default).
    fn setup_window(
        &self,
        lookup: &'static str,
        poll: u64,
        lookahead_hours: Option<u64>,
        state_dir: &Path,
    ) -> Setup {
        Setup {
            ews_url: self.ews_server.url().to_string(),
            starface_url: self.pbx_server.url().to_string(),
            lookup,
            auth: self.auth,
            poll_interval_secs: poll,
            directory_refresh_secs: 600,
            lookahead_hours,
            chat: true,
            log_level: "warn",
            state_dir: state_dir.to_path_buf(),
        }
    }

    /// PBX requests since the last reset, split into per-user reads (phoneconfig, redirects),
    /// other reads (login template, directory, numbers) and writes (REST and chat calls).
    fn pbx_counts(&self) -> PbxCounts {
        let mut c = PbxCounts::default();
        for (endpoint, n) in self.pbx.requests() {
            match endpoint.as_str() {
                "GET /rest/users/{id}/phoneconfig" => c.phoneconfig_reads += n,
                "GET /rest/redirects" => c.redirect_reads += n,
                e if e.starts_with("GET ") => c.other_reads += n,
                _ => {}
            }
        }
        c.rest_writes = self.pbx.writes().len();
        c.chat_calls = self.pbx.chat_calls().len();
        c
    }

    /// Users whose DND, or any of whose redirects, is on now.
    fn users_on(&self, users: u32) -> (usize, usize) {
        let dnd = (1..=users)
            .filter(|i| self.pbx.dnd(i64::from(*i)) == Some(true))
            .count();
        let fwd = (1..=users)
            .filter(|i| {
                ["ext", "int"]
                    .iter()
                    .any(|k| self.pbx.redirect_enabled(&format!("{k}-{i}")) == Some(true))
            })
            .count();
        (dnd, fwd)
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PbxCounts {
    phoneconfig_reads: usize,
    redirect_reads: usize,
    other_reads: usize,
    rest_writes: usize,
    chat_calls: usize,
}

/// A finished `once`: wall time, CPU time (wait4's rusage) and peak RSS.
#[derive(Debug, Clone, Copy)]
struct Finished {
    wall: Duration,
    cpu: Duration,
    /// From `/usr/bin/time -f %M` when present, else wait4's `ru_maxrss` (see `once`).
    max_rss_kib: u64,
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

/// Waits for `child` with wait4(2), which also returns the resource usage of the child and of
/// the children it waited for: exit code, CPU time (user + system) and `ru_maxrss` in KiB.
fn wait_rusage(child: Child) -> Result<(Option<i32>, Duration, u64), String> {
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet reaped (std's `Child` is dropped without waiting);
        // `status` and `usage` are valid for writes for the duration of the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4: {e}"));
        }
    }
    drop(child);
    Ok((
        libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        timeval(usage.ru_utime) + timeval(usage.ru_stime),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
    ))
}

const GNU_TIME: &str = "/usr/bin/time";

/// Runs `bin once -c config --at T`; a non-zero exit is an error showing the log.
///
/// The CPU time comes from wait4. The peak RSS does not: Linux folds the memory high-water mark
/// of the image a process execs from into its `ru_maxrss`, and Rust spawns children with
/// `CLONE_VM`, so the child's figure would be ess-sim's own peak whenever that is larger. When
/// `/usr/bin/time` exists, it runs the product as its own fresh child and reports that child's
/// `%M` alone; wait4 on `time` then adds only `time`'s own CPU (well under a millisecond).
fn once(bin: &Path, config: &Path, t: i64, dir: &Path) -> Result<Finished, String> {
    let log = dir.join("once.log");
    let rss_file = dir.join("once.rss");
    let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let gnu_time = Path::new(GNU_TIME).is_file();
    let mut cmd = if gnu_time {
        let mut c = Command::new(GNU_TIME);
        c.arg("-o").arg(&rss_file).arg("-f").arg("%M").arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg("once")
        .arg("-c")
        .arg(config)
        .arg("--at")
        .arg(format!("{}Z", format_utc(t)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let (code, cpu, wait_rss) = wait_rusage(child)?;
    let wall = started.elapsed();
    if code != Some(0) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(format!(
            "`once` exited with {code:?}; its log:\n{}",
            tail(&text, 20)
        ));
    }
    let max_rss_kib = if gnu_time {
        let text = std::fs::read_to_string(&rss_file).unwrap_or_default();
        text.trim()
            .parse()
            .map_err(|_| format!("cannot read {GNU_TIME}'s output {text:?}"))?
    } else {
        wait_rss
    };
    Ok(Finished {
        wall,
        cpu,
        max_rss_kib,
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A value in kB from `/proc/<pid>/status` (`VmRSS:    1234 kB`).
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// utime + stime in clock ticks from `/proc/<pid>/stat` (fields 14 and 15; the command name in
/// field 2 may contain spaces, so count from its closing parenthesis).
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The memory and CPU of a running process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kib: u64,
    hwm_kib: u64,
    cpu: Duration,
    at: Instant,
}

fn sample(pid: u32) -> Result<Sample, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let ticks = stat_ticks(&stat).ok_or("cannot read CPU times from /proc/<pid>/stat")?;
    Ok(Sample {
        rss_kib: status_kib(&status, "VmRSS").ok_or("no VmRSS")?,
        hwm_kib: status_kib(&status, "VmHWM").ok_or("no VmHWM")?,
        cpu: Duration::from_millis(ticks * 1000 / hz),
        at: Instant::now(),
    })
}

fn wall_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One line of the result table.
struct Row {
    figure: String,
    measured: String,
    budget: String,
    /// `Some(true)` within budget, `Some(false)` over, `None` for information.
    ok: Option<bool>,
}

fn row(
    figure: impl Into<String>,
    measured: impl Into<String>,
    budget: impl Into<String>,
    ok: Option<bool>,
) -> Row {
    Row {
        figure: figure.into(),
        measured: measured.into(),
        budget: budget.into(),
        ok,
    }
}

fn render(rows: &[Row]) -> String {
    let w0 = rows
        .iter()
        .map(|r| r.figure.chars().count())
        .max()
        .unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.measured.chars().count())
        .max()
        .unwrap_or(0);
    let w2 = rows
        .iter()
        .map(|r| r.budget.chars().count())
        .max()
        .unwrap_or(0);
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let mut out = String::new();
    for r in rows {
        let verdict = match r.ok {
            Some(true) => "ok",
            Some(false) => "OVER BUDGET",
            None => "",
        };
        out.push_str(
            format!(
                "{}  {}  {}  {verdict}",
                pad(&r.figure, w0),
                pad(&r.measured, w1),
                pad(&r.budget, w2)
            )
            .trim_end(),
        );
        out.push('\n');
    }
    out
}

/// Waits until `cond` holds, checking every 20 ms; an error naming `what` after `limit`, or as
/// soon as the daemon exits.
fn wait_until(
    daemon: &mut Child,
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Result<(), String> {
    let started = Instant::now();
    while !cond() {
        if let Ok(Some(status)) = daemon.try_wait() {
            return Err(format!(
                "the daemon exited ({status}) while waiting for {what}"
            ));
        }
        if started.elapsed() > limit {
            return Err(format!(
                "timed out after {} s waiting for {what}",
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The daemon's CPU per idle poll at the product's defaults but for a poll a second: its CPU
/// time over `polls` polls after the first (which also reads the directory and the number
/// list), from /proc/<pid>/stat. Returns milliseconds per poll and the seconds between polls.
fn daemon_poll_cpu(
    fakes: &Fakes,
    bin: &Path,
    config: &Path,
    dir: &Path,
    (per_poll, polls): (usize, usize),
) -> Result<(f64, f64), String> {
    fakes.reset_records();
    let mut daemon = start_daemon(bin, config, dir)?;
    let pid = daemon.id();
    let mut samples = Vec::new();
    for after in [1, 1 + polls] {
        let limit = Duration::from_secs(30 + 3 * after as u64);
        let result = wait_until(&mut daemon, limit, &format!("poll {}", after + 1), || {
            fakes.ews.clear_requests();
            fakes.ews_count() > per_poll * after
        });
        if let Err(e) = result {
            let _ = stop_daemon(daemon);
            return Err(format!("{e}; daemon log:\n{}", daemon_log(dir)));
        }
        samples.push(sample(pid)?);
    }
    stop_daemon(daemon)?;
    let (first, last) = (samples[0], samples[1]);
    Ok((
        ms(last.cpu.saturating_sub(first.cpu)) / polls as f64,
        (last.at - first.at).as_secs_f64() / polls as f64,
    ))
}

/// Starts the daemon with its log in `dir/daemon.log`.
fn start_daemon(bin: &Path, config: &Path, dir: &Path) -> Result<Child, String> {
    let log = std::fs::File::create(dir.join("daemon.log")).map_err(|e| e.to_string())?;
    product::spawn_daemon(bin, config, Stdio::from(log))
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))
}

/// SIGTERM, then waits; returns how long the daemon took to exit and whether it exited 0.
fn stop_daemon(mut daemon: Child) -> Result<(Duration, bool), String> {
    product::terminate(&daemon).map_err(|e| format!("cannot stop the daemon: {e}"))?;
    match product::wait_for(&mut daemon, Duration::from_secs(10)).map_err(|e| e.to_string())? {
        Some((status, took)) => Ok((took, status.success())),
        None => {
            let _ = daemon.kill();
            let _ = daemon.wait();
            Err("the daemon did not stop within 10 s of SIGTERM".into())
        }
    }
}

fn daemon_log(dir: &Path) -> String {
    tail(
        &std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default(),
        10,
    )
}

fn run(opts: &Options) -> Result<(), String> {
    let given = opts
        .bin
        .clone()
        .or_else(|| std::env::var("ESS_BIN").ok())
        .filter(|b| !b.is_empty());
    let bin = match &given {
        Some(b) => product::locate(Some(b))?,
        None => product::locate_shipped(["--bin", product::BIN_NAME], product::BIN_NAME)?,
    };
    let users = opts.users;
    let t = wall_secs();
    println!(
        "bench: {users} users × {} appointments, T = {}Z\nproduct: {} ({})\nwindow: [T − 1 h, T + 2 h] (the default look-ahead); the 24 h look-ahead of revision 1 for comparison",
        opts.appointments,
        format_utc(t),
        bin.display(),
        if given.is_some() {
            "given with --bin or ESS_BIN"
        } else {
            "the static musl release build"
        }
    );
    let setup_started = Instant::now();
    let fakes = Fakes::start(users, opts.appointments, t, opts.ntlm)?;
    println!(
        "fakes ready in {:.1} s",
        setup_started.elapsed().as_secs_f64()
    );
    let dir =
        TempDir::new("bench").map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).map_err(|e| e.to_string())?;
    let write = |name: &str, setup: &Setup| {
        dir.write_config(name, setup)
            .map_err(|e| format!("cannot write {name}: {e}"))
    };
    let availability = write(
        "availability.toml",
        &fakes.setup("availability", 120, &state_dir),
    )?;
    let calendar = write("calendar.toml", &fakes.setup("calendar", 120, &state_dir))?;
    let day_window = write(
        "availability-24h.toml",
        &fakes.setup_window("availability", 120, Some(24), &state_dir),
    )?;
    let mut rows = Vec::new();
    let per_poll_budget = users.div_ceil(100) as usize;

    // 1. The first poll: everything active at T is switched on.
    let first = once(&bin, &availability, t, dir.path())?;
    let first_ews = fakes.ews_count();
    let ews_bytes = fakes.ews_bytes.load(Ordering::SeqCst);
    let first_pbx = fakes.pbx_counts();
    let (dnd_on, fwd_on) = fakes.users_on(users);
    println!(
        "first poll: {} ms wall, {} ms CPU, peak RSS {}, {first_ews} EWS requests, {} REST writes + {} chat calls; now {dnd_on} users with DND on, {fwd_on} with forwarding on",
        first.wall.as_millis(),
        first.cpu.as_millis(),
        mib(first.max_rss_kib),
        first_pbx.rest_writes,
        first_pbx.chat_calls
    );

    // 2. Idle polls at the same T: nothing to write; reads only for what is ours and on.
    let idle = idle_polls(&fakes, &bin, &availability, t, dir.path(), opts.repeat)?;
    let (idle_cpu_median, idle_cpu_min, idle_wall_median) =
        (idle.cpu_median, idle.cpu_min, idle.wall_median);
    let (idle_rss, idle_ews, idle_pbx) = (idle.max_rss_kib, idle.ews, idle.pbx);
    let idle_connects = idle.connects;
    println!(
        "idle poll (×{}): median {idle_wall_median:.0} ms wall, median {idle_cpu_median:.0} ms CPU, {idle_ews} EWS requests, {:?}",
        opts.repeat, idle_pbx
    );
    // The same idle poll reading the 24 h window of revision 1.
    let day = idle_polls(&fakes, &bin, &day_window, t, dir.path(), opts.repeat)?;
    println!(
        "idle poll, 24 h look-ahead (×{}): median {:.0} ms CPU, {:.1} MB of EWS responses",
        opts.repeat,
        day.cpu_median,
        day.ews_bytes as f64 / 1e6
    );
    let parse = parse_throughput(&fakes, dir.path(), idle.ews_bytes);
    // The same idle poll with the PBX behind TLS (a self-signed certificate, as the PBX's own).
    let pbx_tls = fakes
        .pbx
        .start_tls()
        .map_err(|e| format!("cannot start the HTTPS STARFACE fake: {e}"))?;
    let mut tls_setup = fakes.setup("availability", 120, &state_dir);
    tls_setup.starface_url = pbx_tls.url().to_string();
    let tls_config = write("availability-tls.toml", &tls_setup)?;
    fakes.reset_records();
    let tls_run = once(&bin, &tls_config, t, dir.path())?;
    let tls_counts = (pbx_tls.connects(), pbx_tls.tls_handshakes());
    drop(pbx_tls);
    println!(
        "idle poll, PBX over TLS: {} ms CPU, {} TCP connects and {} TLS handshakes to the PBX",
        tls_run.cpu.as_millis(),
        tls_counts.0,
        tls_counts.1
    );

    // 3. The calendar lookup (one FindItem per mailbox), same state: also idle.
    fakes.reset_records();
    let cal = once(&bin, &calendar, t, dir.path())?;
    let cal_ews = fakes.ews_count();
    let cal_pbx = fakes.pbx_counts();
    println!(
        "calendar lookup: {} ms wall, {} ms CPU, {cal_ews} EWS requests, {:?}",
        cal.wall.as_millis(),
        cal.cpu.as_millis(),
        cal_pbx
    );

    rows.push(row(
        "EWS requests per poll, availability lookup",
        first_ews.to_string(),
        format!("⌈{users}/100⌉ = {per_poll_budget}"),
        Some(first_ews == per_poll_budget && idle_ews == per_poll_budget),
    ));
    rows.push(row(
        "EWS response bytes per poll, availability lookup",
        format!("{:.1} MB", ews_bytes as f64 / 1e6),
        "(what a poll parses)",
        None,
    ));
    rows.push(row(
        "EWS requests per poll, calendar lookup (per user)",
        cal_ews.to_string(),
        format!("{users} (one per mailbox; for comparison)"),
        None,
    ));
    rows.push(row(
        "idle `once` wall time, availability / calendar",
        format!(
            "{idle_wall_median:.0} ms / {} ms ({:.1}×)",
            cal.wall.as_millis(),
            ms(cal.wall) / idle_wall_median.max(0.001)
        ),
        "",
        None,
    ));
    rows.push(row(
        "idle `once` CPU, availability / calendar",
        format!("{idle_cpu_median:.0} ms / {} ms", cal.cpu.as_millis()),
        "",
        None,
    ));
    rows.push(row(
        "first poll: PBX writes (REST + chat calls)",
        format!("{} + {}", first_pbx.rest_writes, first_pbx.chat_calls),
        "(everything active at T switched on)",
        None,
    ));
    let idle_writes = idle_pbx.rest_writes + idle_pbx.chat_calls;
    rows.push(row(
        "idle poll: PBX writes (REST + chat calls)",
        format!("{} + {}", idle_pbx.rest_writes, idle_pbx.chat_calls),
        "0",
        Some(idle_writes == 0),
    ));
    rows.push(row(
        "idle poll: per-user PBX reads (phoneconfig + redirects)",
        format!(
            "{} + {} (+ {} directory/login reads)",
            idle_pbx.phoneconfig_reads, idle_pbx.redirect_reads, idle_pbx.other_reads
        ),
        format!("only users with ours on: {dnd_on} DND + {fwd_on} forwarding"),
        Some(idle_pbx.phoneconfig_reads <= dnd_on && idle_pbx.redirect_reads <= fwd_on),
    ));
    rows.push(row(
        "idle `once`: TCP connects to EWS + PBX",
        format!("{} + {}", idle_connects.0, idle_connects.1),
        "one per server while it keeps the connection",
        Some(idle_connects.0 <= 1 && idle_connects.1 <= 1),
    ));
    rows.push(row(
        "idle `once`, PBX over TLS: TCP connects / TLS handshakes to the PBX",
        format!("{} / {}", tls_counts.0, tls_counts.1),
        "one per server while it keeps the connection",
        Some(tls_counts.0 <= 1 && tls_counts.1 <= 1),
    ));
    rows.push(row(
        "idle `once` CPU, PBX over plain HTTP / TLS",
        format!("{idle_cpu_median:.0} ms / {} ms", tls_run.cpu.as_millis()),
        "",
        None,
    ));
    rows.push(row(
        "calendar lookup run at T: PBX writes (REST + chat calls)",
        format!("{} + {}", cal_pbx.rest_writes, cal_pbx.chat_calls),
        "see note 1",
        None,
    ));
    rows.push(row(
        "CPU per poll: idle `once`, 2 h look-ahead (default)",
        format!(
            "{idle_cpu_median:.0} ms median, {idle_cpu_min:.0} ms min ({:.1} MB EWS)",
            idle.ews_bytes as f64 / 1e6
        ),
        budget_for(users, format!("< {BUDGET_CPU_MS:.0} ms")),
        judged(users, idle_cpu_median < BUDGET_CPU_MS),
    ));
    rows.push(row(
        "CPU per poll: idle `once`, 24 h look-ahead",
        format!(
            "{:.0} ms median, {:.0} ms min ({:.1} MB EWS)",
            day.cpu_median,
            day.cpu_min,
            day.ews_bytes as f64 / 1e6
        ),
        budget_for(users, format!("< {BUDGET_CPU_MS:.0} ms")),
        judged(users, day.cpu_median < BUDGET_CPU_MS),
    ));
    rows.extend(parse);
    rows.push(row(
        "peak RSS of `once`: first / idle poll",
        format!("{} / {}", mib(first.max_rss_kib), mib(idle_rss)),
        budget_for(users, format!("≤ {}", mib(BUDGET_RSS_KIB))),
        judged(users, first.max_rss_kib.max(idle_rss) <= BUDGET_RSS_KIB),
    ));

    // 4. The daemon polling every second.
    fakes.reset_records();
    // The directory is read again every 10 s instead of every 10 min, so that the peak below
    // includes polls that also refresh it, however few polls are run.
    let mut fast_setup = fakes.setup("availability", 1, &state_dir);
    fast_setup.directory_refresh_secs = DIRECTORY_REFRESH_SECS;
    let fast = write("daemon-fast.toml", &fast_setup)?;
    let mut daemon = start_daemon(&bin, &fast, dir.path())?;
    let pid = daemon.id();
    let per_poll = per_poll_budget.max(1);
    let polls = opts.polls as usize;
    let mut samples = Vec::new();
    println!("daemon: {polls} polls, one a second …");
    for after in [1, polls / 2, polls] {
        // Poll `after` has ended once poll `after + 1` has begun.
        let limit = Duration::from_secs(30 + 3 * after as u64);
        let counter = &fakes;
        let result = wait_until(&mut daemon, limit, &format!("poll {}", after + 1), || {
            // The EWS fake's log keeps whole request bodies; the counter is enough here, and a
            // run of 1,000 polls would otherwise grow the sim by hundreds of MB.
            counter.ews.clear_requests();
            counter.ews_count() > per_poll * after
        });
        if let Err(e) = result {
            let _ = stop_daemon(daemon);
            return Err(format!("{e}; daemon log:\n{}", daemon_log(dir.path())));
        }
        let s = sample(pid)?;
        println!(
            "  after poll {after}: VmRSS {}, VmHWM {}, CPU {} ms",
            mib(s.rss_kib),
            mib(s.hwm_kib),
            s.cpu.as_millis()
        );
        samples.push((after, s));
    }
    let daemon_pbx = fakes.pbx_counts();
    let daemon_connects = fakes.connects();
    let (stop_took, stop_ok) = stop_daemon(daemon)?;
    let (first_s, mid_s, last_s) = (samples[0].1, samples[1].1, samples[2].1);
    let cpu_per_poll = ms(last_s.cpu.saturating_sub(first_s.cpu)) / (polls - 1) as f64;
    let secs_per_poll = (last_s.at - first_s.at).as_secs_f64() / (polls - 1) as f64;
    rows.push(row(
        "CPU per poll: daemon, memory phase (directory every 10 s)",
        format!("{cpu_per_poll:.1} ms (polls 1…{polls}, {secs_per_poll:.2} s apart)"),
        "(see the idle daemon rows below)",
        None,
    ));
    let mibs = |f: fn(&Sample) -> u64| {
        samples
            .iter()
            .map(|(_, s)| mib(f(s)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    rows.push(row(
        format!(
            "daemon VmRSS (VmHWM) after poll 1 / {} / {polls}",
            polls / 2
        ),
        format!("{} ({})", mibs(|s| s.rss_kib), mibs(|s| s.hwm_kib)),
        "flat: last VmRSS ≤ VmHWM at half-time (note 2)",
        Some(last_s.rss_kib <= mid_s.hwm_kib),
    ));
    rows.push(row(
        format!("daemon peak RSS (VmHWM) over {polls} polls"),
        mib(last_s.hwm_kib),
        budget_for(users, format!("≤ {}", mib(BUDGET_RSS_KIB))),
        judged(users, last_s.hwm_kib <= BUDGET_RSS_KIB),
    ));
    rows.push(row(
        "daemon: PBX writes during the polls (REST + chat)",
        format!("{} + {}", daemon_pbx.rest_writes, daemon_pbx.chat_calls),
        "only at real boundaries",
        None,
    ));
    rows.push(row(
        format!("daemon: TCP connects to EWS + PBX over {polls} polls"),
        format!("{} + {}", daemon_connects.0, daemon_connects.1),
        "one per server while it keeps the connection",
        Some(daemon_connects.0 <= 1 && daemon_connects.1 <= 1),
    ));
    rows.push(row(
        "daemon stop after SIGTERM",
        format!(
            "{} ms{}",
            stop_took.as_millis(),
            if stop_ok { "" } else { " (non-zero exit)" }
        ),
        "exit 0 within 5 s",
        Some(stop_ok && stop_took < Duration::from_secs(5)),
    ));

    // 5. The daemon's idle polls at the defaults (directory every 600 s), at both windows.
    for (hours, name) in [
        (None, "2 h look-ahead (default)"),
        (Some(24), "24 h look-ahead"),
    ] {
        let setup = fakes.setup_window("availability", 1, hours, &state_dir);
        let config = write("daemon-idle.toml", &setup)?;
        let (cpu, apart) = daemon_poll_cpu(
            &fakes,
            &bin,
            &config,
            dir.path(),
            (per_poll, IDLE_DAEMON_POLLS),
        )?;
        println!("daemon, {name}: {cpu:.1} ms CPU per poll");
        rows.push(row(
            format!("CPU per idle poll: daemon, {name}"),
            format!(
                "{cpu:.1} ms (polls 2…{}, {apart:.2} s apart)",
                IDLE_DAEMON_POLLS + 1
            ),
            budget_for(users, format!("< {BUDGET_CPU_MS:.0} ms")),
            judged(users, cpu < BUDGET_CPU_MS),
        ));
    }

    // 6. Boundary latency.
    let latency = boundary_latency(&fakes, &bin, &dir, &state_dir, users)?;
    rows.extend(latency);

    // 7. The static binary.
    let (size_row, size_note) = binary_size(&bin);
    rows.push(size_row);

    println!(
        "\nresults ({users} users × {} appointments, servers on loopback):",
        opts.appointments
    );
    print!("{}", render(&rows));
    println!(
        "\nnote 1: the calendar lookup (FindItem) sees the subjects of private appointments, the
        availability lookup does not (Exchange's free/busy hides them, and so does the fake), so
        keywords in private subjects take effect only with the calendar lookup: its run at the
        same T may switch a few more things.
note 2: memory flat 'over 1,000 cycles' (the budget): run with --polls 1000 (about 17
        minutes at one poll a second). A sample falls anywhere within a poll, so VmRSS moves by a
        few hundred KiB between samples; memory counts as flat when the VmRSS after the last poll
        stays within the peak reached by half-time. The daemon reads the directory every 10 s in this phase (default 600 s), so the peak
        includes polls that refresh it.
note 3: CPU per poll of `once` includes process start, login, directory, phone number list
        and state file; the daemon's figures are its CPU time over the polls divided by their
        number (from /proc/<pid>/stat, 10 ms ticks): the idle daemon rows at the defaults (one
        poll a second, directory every 600 s), the memory phase with the refreshes of note 2.
        Peak RSS of `once` is /usr/bin/time's %M when present (see `once` in bench.rs)."
    );
    if let Some(note) = size_note {
        println!("note 4: {note}");
    }
    Ok(())
}

/// The figures of `repeat` idle `once` runs of one configuration.
struct Idle {
    cpu_median: f64,
    cpu_min: f64,
    wall_median: f64,
    max_rss_kib: u64,
    /// EWS requests and response bytes of the last run, and its PBX requests.
    ews: usize,
    ews_bytes: usize,
    pbx: PbxCounts,
    /// TCP connects to EWS and to the PBX of the last run.
    connects: (usize, usize),
}

fn idle_polls(
    fakes: &Fakes,
    bin: &Path,
    config: &Path,
    t: i64,
    dir: &Path,
    repeat: u32,
) -> Result<Idle, String> {
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    let mut idle = Idle {
        cpu_median: 0.0,
        cpu_min: 0.0,
        wall_median: 0.0,
        max_rss_kib: 0,
        ews: 0,
        ews_bytes: 0,
        pbx: PbxCounts::default(),
        connects: (0, 0),
    };
    for _ in 0..repeat {
        fakes.reset_records();
        let r = once(bin, config, t, dir)?;
        cpu.push(ms(r.cpu));
        wall.push(ms(r.wall));
        idle.max_rss_kib = idle.max_rss_kib.max(r.max_rss_kib);
        idle.ews = fakes.ews_count();
        idle.ews_bytes = fakes.ews_bytes.load(Ordering::SeqCst);
        idle.pbx = fakes.pbx_counts();
        idle.connects = fakes.connects();
    }
    idle.cpu_min = cpu.iter().copied().fold(f64::MAX, f64::min);
    idle.cpu_median = median(&mut cpu);
    idle.wall_median = median(&mut wall);
    Ok(idle)
}

/// `key value` lines as the example ews-parse prints them.
fn key_values(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// Runs the musl build of the example ews-parse on the largest EWS response the fake sent:
/// the product's parse and xmlparser's tokenising on the same bytes, and the parse's
/// allocations (scaled to `poll_bytes`, the EWS bytes of an idle poll at the default window). The example links the product; ess-sim does not, so it runs as a process.
fn parse_throughput(fakes: &Fakes, dir: &Path, poll_bytes: usize) -> Vec<Row> {
    let budget = "product within 2× of tokens-only";
    let failed = |why: String| vec![row("EWS parse throughput", why, budget, None)];
    let body = fakes.largest.lock().map(|b| b.clone()).unwrap_or_default();
    let file = dir.join("largest-response.xml");
    if let Err(e) = std::fs::write(&file, &body) {
        return failed(format!("cannot save the response: {e}"));
    }
    let example = match product::locate_shipped(["--example", "ews-parse"], "examples/ews-parse") {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let out = match Command::new(&example).arg(&file).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            return failed(format!(
                "ews-parse failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ))
        }
        Err(e) => return failed(format!("cannot run {}: {e}", example.display())),
    };
    let kv = key_values(&out);
    let get = |k: &str| -> f64 {
        kv.iter()
            .find(|(key, _)| *key == k)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0.0)
    };
    let (parse, tokens, ratio) = (
        get("parse_mb_s"),
        get("tokens_mb_s"),
        get("parse_vs_tokens"),
    );
    let per_response = get("allocations");
    vec![
        row(
            format!(
                "EWS parse: product / xmlparser tokens-only ({:.0} KB response)",
                get("bytes") / 1e3
            ),
            format!("{parse:.0} MB/s / {tokens:.0} MB/s ({ratio:.2}× the time)"),
            budget,
            Some(ratio > 0.0 && ratio <= 2.0),
        ),
        row(
            "allocations of one EWS parse (that response)",
            format!(
                "{per_response:.0} ({:.0} per poll at the default window, by bytes)",
                per_response * poll_bytes as f64 / get("bytes").max(1.0)
            ),
            "(fewer is better)",
            None,
        ),
    ]
}

/// The users whose calendars the latency phase replaces: 20 spread over the directory.
fn latency_users(users: u32) -> Vec<u32> {
    let step = (users / 20).max(1);
    (1..=users).filter(|i| i % step == 0).take(20).collect()
}

/// Gives some users a single Busy appointment whose start is a few seconds ahead and that lasts
/// four seconds, runs the daemon (polling every 60 s, so the boundary timer does the work), and
/// measures from each boundary second to the DND write arriving at the PBX.
fn boundary_latency(
    fakes: &Fakes,
    bin: &Path,
    dir: &TempDir,
    state_dir: &Path,
    users: u32,
) -> Result<Vec<Row>, String> {
    let chosen = latency_users(users);
    let lead = 10;
    let boundary = wall_secs() + lead;
    let end = boundary + 4;
    for i in &chosen {
        fakes.ews.calendars().clear(&email(*i));
        fakes.ews.calendars().add(
            &email(*i),
            SimAppointment::new(boundary, end, SimShowAs::Busy, "Boundary check"),
        );
    }
    fakes.reset_records();
    let config = dir
        .write_config(
            "daemon-latency.toml",
            &fakes.setup("availability", 60, state_dir),
        )
        .map_err(|e| format!("cannot write the configuration: {e}"))?;
    println!(
        "boundary latency: {} users get Busy \"Boundary check\" {}..{}Z",
        chosen.len(),
        &format_utc(boundary)[11..],
        &format_utc(end)[11..]
    );
    let mut daemon = start_daemon(bin, &config, dir.path())?;
    let per_poll = users.div_ceil(100) as usize;
    // The first poll's pass must be over before the boundary, or it would be measured too.
    let ready = wait_until(
        &mut daemon,
        Duration::from_secs(30),
        "the first poll",
        || fakes.ews_count() >= per_poll,
    );
    let first_poll_done_at = wall_secs();
    let settle = wait_until(
        &mut daemon,
        Duration::from_secs(lead as u64 + 10),
        "the switch-back",
        || wall_secs() > end + 1,
    );
    let (_, stop_ok) = stop_daemon(daemon)?;
    ready
        .and(settle)
        .map_err(|e| format!("{e}; daemon log:\n{}", daemon_log(dir.path())))?;
    if first_poll_done_at >= boundary {
        return Err("the daemon's first poll ended after the boundary; cannot measure".into());
    }
    let ids: HashSet<String> = chosen
        .iter()
        .map(|i| format!("/rest/users/{i}/phoneconfig"))
        .collect();
    let mut on = Vec::new();
    let mut off = Vec::new();
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    for w in fakes.pbx.writes() {
        if w.method != "PUT" || !ids.contains(&w.path) {
            continue;
        }
        let at = secs(w.at);
        if w.body.contains("\"doNotDisturb\":true") && at >= boundary as f64 - 1.0 {
            on.push(at - boundary as f64);
        } else if w.body.contains("\"doNotDisturb\":false") && at >= end as f64 - 1.0 {
            off.push(at - end as f64);
        }
    }
    let describe = |v: &mut Vec<f64>| -> (String, bool) {
        let max = v.iter().copied().fold(f64::MIN, f64::max);
        let n = v.len();
        let med = median(v);
        (
            format!(
                "{n}/{} writes, median {med:.3} s, max {max:.3} s",
                chosen.len()
            ),
            n == chosen.len() && max <= BUDGET_LATENCY_SECS,
        )
    };
    let (on_text, on_ok) = describe(&mut on);
    let (off_text, off_ok) = describe(&mut off);
    let budget = format!("≤ {BUDGET_LATENCY_SECS:.0} s after the boundary");
    Ok(vec![
        row(
            "boundary latency, start (DND on)",
            on_text,
            budget.clone(),
            Some(on_ok),
        ),
        row(
            "boundary latency, end (DND off)",
            off_text,
            budget,
            Some(off_ok && stop_ok),
        ),
    ])
}

/// The static musl release binary, built with `cross` or `cargo build --release --target
/// x86_64-unknown-linux-musl`, looked for in the target directory of ess-sim and of the product.
fn binary_size(bin: &Path) -> (Row, Option<String>) {
    let rel = Path::new("x86_64-unknown-linux-musl/release/exchange-status-sync");
    let mut candidates: Vec<PathBuf> = Vec::new();
    for base in [std::env::current_exe().ok(), Some(bin.to_path_buf())]
        .into_iter()
        .flatten()
    {
        if let Some(target) = base.parent().and_then(Path::parent) {
            candidates.push(target.join(rel));
        }
    }
    let found = candidates
        .iter()
        .find_map(|p| std::fs::metadata(p).ok().map(|m| (p.clone(), m.len())));
    let budget = format!("≤ {:.1} MB stripped", BUDGET_BINARY_BYTES as f64 / 1e6);
    match found {
        Some((path, len)) => (
            row(
                "static release binary (musl)",
                format!("{len} bytes ({:.2} MB)", len as f64 / 1e6),
                budget,
                Some(len <= BUDGET_BINARY_BYTES),
            ),
            Some(format!("the static binary measured: {}", path.display())),
        ),
        None => {
            let len = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
            (
                row("static release binary (musl)", "not built", budget, None),
                Some(format!(
                    "build it with `cargo build --release --target x86_64-unknown-linux-musl` (or cross); the binary used here ({}) has {len} bytes",
                    bin.display()
                )),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appointments_are_fixed_spread_and_mixed() {
        let t = 1_796_117_400;
        let all: Vec<SimAppointment> = (1..=200).flat_map(|u| appointments(u, 10, t)).collect();
        assert_eq!(all.len(), 2000);
        assert_eq!(appointments(7, 10, t), appointments(7, 10, t));
        assert_ne!(appointments(7, 10, t), appointments(8, 10, t));
        for a in &all {
            assert!(a.start < a.end, "{a:?}");
            assert!(a.start >= t - SPREAD_BEFORE && a.end <= t - SPREAD_BEFORE + SPREAD + 3600);
        }
        for kind in [
            SimShowAs::Busy,
            SimShowAs::Free,
            SimShowAs::Tentative,
            SimShowAs::Oof,
            SimShowAs::WorkingElsewhere,
        ] {
            let n = all.iter().filter(|a| a.show_as == kind).count();
            assert!(n >= 100, "{kind:?}: {n}");
        }
        let private = all.iter().filter(|a| a.private).count();
        let keywords = all.iter().filter(|a| a.subject.ends_with(')')).count();
        assert!((100..=300).contains(&private), "{private}");
        assert!((200..=600).contains(&keywords), "{keywords}");
        // Some users are in an appointment at T, so that the first poll switches something on.
        let active = all.iter().filter(|a| a.start <= t && t < a.end).count();
        assert!(active >= 40, "{active}");
    }

    #[test]
    fn one_appointment_a_day_still_works() {
        let a = appointments(1, 1, 0);
        assert_eq!(a.len(), 1);
        assert!(a[0].start < a[0].end);
    }

    #[test]
    fn proc_status_values() {
        let status = "Name:\texchange-status\nVmHWM:\t    6012 kB\nVmRSS:\t    5100 kB\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(5100));
        assert_eq!(status_kib(status, "VmHWM"), Some(6012));
        assert_eq!(status_kib(status, "VmSwap"), None);
        assert_eq!(status_kib("VmRSS:\tlots kB\n", "VmRSS"), None);
    }

    #[test]
    fn proc_stat_cpu_ticks() {
        // Fields 14 and 15 (utime, stime); the command name may hold spaces and parentheses.
        let stat = "4242 (odd (name) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 3 0";
        assert_eq!(stat_ticks(stat), Some(22));
        assert_eq!(stat_ticks("4242 (x) S 1"), None);
        assert_eq!(stat_ticks("no parenthesis"), None);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn table_aligns_and_judges() {
        let text = render(&[
            row("a", "1", "≤ 2", Some(true)),
            row("longer", "10", "", Some(false)),
            row("info", "x", "", None),
        ]);
        assert_eq!(
            text,
            "a       1   ≤ 2  ok\nlonger  10       OVER BUDGET\ninfo    x\n"
        );
    }

    #[test]
    fn cpu_and_memory_are_judged_at_the_budget_size_only() {
        assert_eq!(judged(2000, false), Some(false));
        assert_eq!(judged(50, true), Some(true));
        assert_eq!(judged(8000, false), None);
        assert_eq!(budget_for(2000, "< 50 ms".into()), "< 50 ms");
        assert_eq!(budget_for(8000, "< 50 ms".into()), "< 50 ms at 2000 users");
    }

    #[test]
    fn latency_users_are_spread_and_few() {
        assert_eq!(latency_users(2000).len(), 20);
        assert_eq!(latency_users(2000)[0], 100);
        assert_eq!(latency_users(5), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let o = args(&["--users", "50", "--polls", "4"]).unwrap().unwrap();
        assert_eq!((o.users, o.appointments, o.polls, o.repeat), (50, 10, 4, 5));
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--users", "0"]).is_err());
        assert!(args(&["--polls", "1"]).is_err());
        assert!(args(&["--users"]).is_err());
        assert!(args(&["--fast"]).is_err());
    }
}
