//! The end-to-end harness: the fakes (STARFACE, EWS, Graph with its token endpoint) on loopback
//! ports, a temp dir with a config.toml written for them, and the real binary run against it.
//!
//! A `World` owns all of it. Tests change the configuration with `set("actions.busy",
//! "\"forward\"")`, put appointments into `calendars`, run the binary with `once`, `check` or
//! `start_daemon`, and look at the PBX through `pbx` (its current values, write record and request
//! counts) and at the state file through `state`.

// Each test file uses a different part of the harness.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha512};

use ess_sim::calendar::{parse_utc, Calendars, SimAppointment, SimShowAs};
use ess_sim::ews::{EwsAuth, EwsFake, EWS_PATH};
use ess_sim::graph::{GraphAuth, GraphFake};
use ess_sim::server::Server;
use ess_sim::starface::{SimDestination, SimLoginType, SimNumberType, SimTrigger, StarfaceSim};
use ess_sim::token::TokenFake;

pub const BIN: &str = env!("CARGO_BIN_EXE_exchange-status-sync");

pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const CAROL: &str = "carol@example.com";
pub const ALICE_ID: i64 = 1;
pub const BOB_ID: i64 = 2;
pub const CAROL_ID: i64 = 3;
pub const GROUP: &str = "Exchange-Sync";

/// The secrets of the scenario; none of them (nor anything derived from them) may ever appear
/// in the binary's output.
pub const SF_LOGIN: &str = "0001";
pub const SF_PASSWORD: &str = "Sf-pa55word-7f3e";
pub const EWS_USER: &str = "svc-sync@example.com";
pub const EWS_PASSWORD: &str = "Ews-pa55word-91c2";
pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_SECRET: &str = "Xy8Q~client-secret-b0d4";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// EWS with the availability lookup (GetUserAvailability).
    Ews,
    /// EWS with the calendar lookup (FindItem per mailbox).
    EwsCalendar,
    Graph,
}

/// UTC seconds of an RFC 3339 scenario time such as `2026-12-01T09:30:00Z`.
pub fn t(text: &str) -> i64 {
    parse_utc(text).unwrap_or_else(|| panic!("bad scenario time {text}"))
}

/// An appointment between two scenario times.
pub fn appt(start: &str, end: &str, show_as: SimShowAs, subject: &str) -> SimAppointment {
    SimAppointment::new(t(start), t(end), show_as, subject)
}

/// A group member as the PBX knows it: user `id` with login `100<id>`, e-mail
/// `<name>@example.com`, internal number `2<id>` and external number `49721123456<id:02>`, and
/// an "always" redirect on each (both off): `ext-<id>` to the phone number `ext_destination`
/// (empty: no destination) and `int-<id>` to the voicemail box `vm<id>`.
pub fn person(pbx: &StarfaceSim, id: i64, name: &str, ext_destination: &str) {
    let internal = format!("2{id}");
    let external = format!("49721123456{id:02}");
    let first = name[..1].to_ascii_uppercase() + &name[1..];
    pbx.user(
        id,
        &format!("100{id}"),
        &format!("{name}@example.com"),
        &first,
        "Test",
    )
    .number(id, &internal, SimNumberType::Internal)
    .number(id, &external, SimNumberType::External)
    .redirect(
        &format!("ext-{id}"),
        id,
        &format!("+{external}"),
        SimTrigger::Always,
        SimDestination::Phone(ext_destination.to_string()),
        false,
    )
    .redirect(
        &format!("int-{id}"),
        id,
        &internal,
        SimTrigger::Always,
        SimDestination::Mailbox(format!("vm{id}")),
        false,
    );
}

/// A PBX with the API user only.
pub fn empty_pbx() -> StarfaceSim {
    let pbx = StarfaceSim::new();
    pbx.admin(SF_LOGIN, SF_PASSWORD, SimLoginType::Internal);
    pbx
}

/// The usual PBX: alice, bob and carol in the group, dora in another one.
pub fn standard_pbx() -> StarfaceSim {
    let pbx = empty_pbx();
    person(&pbx, ALICE_ID, "alice", "01715550101");
    person(&pbx, BOB_ID, "bob", "01715550102");
    person(&pbx, CAROL_ID, "carol", "01715550103");
    person(&pbx, 4, "dora", "01715550104");
    pbx.group(10, GROUP, &[ALICE_ID, BOB_ID, CAROL_ID])
        .group(11, "Sales", &[4]);
    pbx
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// Fails with the whole output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code; output:\n{self}");
        self
    }

    /// The stderr lines at a level (`ERROR`, `WARN`, `INFO`, `DEBUG`).
    pub fn log_lines(&self, level: &str) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(&format!("[{level}]")))
            .collect()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// A temp dir of its own per world, removed afterwards (kept when the test failed, to look at).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("ess-e2e-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create the temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for a look", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// The fakes, the temp dir and the configuration of one scenario.
pub struct World {
    pub backend: Backend,
    pub pbx: StarfaceSim,
    pbx_server: Option<Server>,
    pbx_port: u16,
    pub calendars: Calendars,
    pub ews: EwsFake,
    ews_server: Server,
    pub token: TokenFake,
    pub graph: GraphFake,
    graph_server: Server,
    /// `section.key` → TOML value text, in the order written.
    settings: Vec<(String, String)>,
    /// Environment variables for the binary.
    env: Vec<(String, String)>,
    /// The mode config.toml is written with.
    pub config_mode: u32,
    dir: TempDir,
    runs: usize,
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

impl World {
    pub fn new(backend: Backend) -> World {
        World::with_pbx(backend, standard_pbx())
    }

    /// A world around a PBX the test built (see `person`, `empty_pbx`).
    pub fn with_pbx(backend: Backend, pbx: StarfaceSim) -> World {
        let calendars = Calendars::new();
        for email in [ALICE, BOB, CAROL] {
            calendars.add_mailbox(email);
        }
        let pbx_server = pbx.start().expect("start the STARFACE fake");
        let ews = EwsFake::new(calendars.clone(), EwsAuth::basic(EWS_USER, EWS_PASSWORD));
        let ews_server = ews.serve().expect("start the EWS fake");
        let token = TokenFake::new(TENANT, CLIENT_ID, CLIENT_SECRET);
        let graph = GraphFake::new(calendars.clone(), GraphAuth::Tokens(token.clone()));
        let graph_server = graph.start().expect("start the Graph fake");
        let dir = TempDir::new();
        let secret = |name: &str, text: &str| {
            let path = dir.0.join(name);
            fs::write(&path, format!("{text}\n")).expect("write a secret file");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
            path
        };
        let sf_secret = secret("starface.secret", SF_PASSWORD);
        let ews_secret = secret("exchange.secret", EWS_PASSWORD);
        let client_secret = secret("client.secret", CLIENT_SECRET);
        let path = |p: &Path| quote(&p.display().to_string());
        let mut settings: Vec<(&str, String)> = match backend {
            Backend::Ews | Backend::EwsCalendar => vec![
                ("exchange.backend", quote("ews")),
                (
                    "exchange.url",
                    quote(&format!("{}{EWS_PATH}", ews_server.url())),
                ),
                ("exchange.auth", quote("basic")),
                ("exchange.username", quote(EWS_USER)),
                ("exchange.password_file", path(&ews_secret)),
                (
                    "exchange.lookup",
                    quote(if backend == Backend::Ews {
                        "availability"
                    } else {
                        "calendar"
                    }),
                ),
            ],
            Backend::Graph => vec![
                ("exchange.backend", quote("graph")),
                ("exchange.tenant_id", quote(TENANT)),
                ("exchange.client_id", quote(CLIENT_ID)),
                ("exchange.client_secret_file", path(&client_secret)),
                ("exchange.token_url", quote(&token.url(graph_server.url()))),
                (
                    "exchange.graph_url",
                    quote(&format!("{}/v1.0", graph_server.url())),
                ),
            ],
        };
        settings.extend([
            ("exchange.timeout_secs", "10".to_string()),
            ("starface.url", quote(pbx_server.url())),
            ("starface.login", quote(SF_LOGIN)),
            ("starface.password_file", path(&sf_secret)),
            ("starface.login_type", quote("internal")),
            ("starface.group", quote(GROUP)),
            ("actions.busy", quote("dnd")),
            ("actions.oof", quote("forward")),
            ("sync.poll_interval_secs", "600".to_string()),
            ("sync.state_dir", path(&dir.0.join("state"))),
            ("log.level", quote("debug")),
        ]);
        fs::create_dir_all(dir.0.join("state")).expect("create the state dir");
        World {
            backend,
            pbx_port: pbx_server.port(),
            pbx,
            pbx_server: Some(pbx_server),
            calendars,
            ews,
            ews_server,
            token,
            graph,
            graph_server,
            settings: settings
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            env: Vec::new(),
            config_mode: 0o600,
            dir,
            runs: 0,
        }
    }

    /// Sets (or replaces) a configuration key, e.g. `set("chat.set_presence", "true")`; the
    /// value is TOML text.
    /// The EWS fake's server closes each connection after `n` requests (`None`: never).
    pub fn ews_max_requests_per_connection(&self, n: Option<usize>) {
        self.ews_server.set_max_requests_per_connection(n);
    }

    /// The EWS fake's URL (what `exchange.url` is set to by default).
    pub fn ews_url(&self) -> String {
        format!("{}{EWS_PATH}", self.ews_server.url())
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        match self.settings.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.settings.push((key.to_string(), value.to_string())),
        }
        self
    }

    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.settings.retain(|(k, _)| k != key);
        self
    }

    /// Sets an environment variable for the binary's next runs.
    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// The configuration text: sections in order of their first key.
    pub fn config_text(&self) -> String {
        let mut sections: Vec<&str> = Vec::new();
        for (key, _) in &self.settings {
            let section = key.split_once('.').map_or("", |(s, _)| s);
            if !sections.contains(&section) {
                sections.push(section);
            }
        }
        let mut text = String::new();
        for section in sections {
            text.push_str(&format!("[{section}]\n"));
            for (key, value) in &self.settings {
                if let Some((s, k)) = key.split_once('.') {
                    if s == section {
                        text.push_str(&format!("{k} = {value}\n"));
                    }
                }
            }
            text.push('\n');
        }
        text
    }

    /// Writes config.toml (with `config_mode`) and returns its path.
    pub fn write_config(&self) -> PathBuf {
        let path = self.dir.0.join("config.toml");
        fs::write(&path, self.config_text()).expect("write config.toml");
        fs::set_permissions(&path, fs::Permissions::from_mode(self.config_mode))
            .expect("chmod config.toml");
        path
    }

    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.0.join("state")
    }

    pub fn state_path(&self) -> PathBuf {
        self.state_dir().join("state.json")
    }

    /// The state file's text, if there is one.
    pub fn state(&self) -> Option<String> {
        fs::read_to_string(self.state_path()).ok()
    }

    /// Runs the binary with the current config and `args` (the command and its options; `-c` is
    /// added), waits at most `limit`.
    pub fn run_with(&mut self, args: &[&str], limit: Duration) -> Output {
        let config = self.write_config();
        let mut child = self.spawn(&config, args);
        let started = Instant::now();
        let code = loop {
            match child.process.try_wait().expect("wait for the binary") {
                Some(status) => break status.code().unwrap_or(-1),
                None if started.elapsed() > limit => {
                    let _ = child.process.kill();
                    let _ = child.process.wait();
                    panic!(
                        "{args:?} still running after {limit:?}; stderr:\n{}",
                        child.stderr()
                    );
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let out = Output {
            code,
            stdout: child.stdout(),
            stderr: child.stderr(),
            elapsed: started.elapsed(),
        };
        // Every run, whatever it tests, must keep the secrets to itself.
        self.assert_no_secrets(&out);
        out
    }

    /// `once --at TIME` and any further options (`--dry-run`).
    pub fn once(&mut self, at: &str, extra: &[&str]) -> Output {
        let mut args = vec!["once", "--at", at];
        args.extend_from_slice(extra);
        self.run_with(&args, Duration::from_secs(60))
    }

    pub fn check(&mut self) -> Output {
        self.run_with(&["check"], Duration::from_secs(60))
    }

    /// Starts `run` in the background.
    pub fn start_daemon(&mut self) -> Running {
        self.start_with(&["run"])
    }

    /// Starts the binary with `args` (and `-c`) in the background.
    pub fn start_with(&mut self, args: &[&str]) -> Running {
        let config = self.write_config();
        self.spawn(&config, args)
    }

    fn spawn(&mut self, config: &Path, args: &[&str]) -> Running {
        self.runs += 1;
        let out = self.dir.0.join(format!("stdout-{}.txt", self.runs));
        let err = self.dir.0.join(format!("stderr-{}.txt", self.runs));
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.push("-c".into());
        all.push(config.display().to_string());
        let process = Command::new(BIN)
            .args(&all)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("stdout file"))
            .stderr(fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("start the binary");
        Running {
            process,
            out,
            err,
            started: Instant::now(),
        }
    }

    /// Stops the STARFACE fake (its data stays); `start_pbx` brings it back on the same port.
    pub fn stop_pbx(&mut self) {
        self.pbx_server = None;
    }

    pub fn start_pbx(&mut self) {
        // The port was just released; binding it again can take a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.pbx.start_on(self.pbx_port) {
                Ok(server) => {
                    self.pbx_server = Some(server);
                    return;
                }
                Err(e) if Instant::now() > deadline => panic!("restart the STARFACE fake: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// PBX writes and chat calls so far.
    pub fn pbx_writes(&self) -> usize {
        self.pbx.writes().len() + self.pbx.chat_calls().len()
    }

    /// TCP connections the product opened to the calendar server (EWS or Graph) and to the PBX.
    pub fn connects(&self) -> (usize, usize) {
        let calendar = match self.backend {
            Backend::Ews | Backend::EwsCalendar => self.ews_server.connects(),
            Backend::Graph => self.graph_server.connects(),
        };
        (
            calendar,
            self.pbx_server.as_ref().map_or(0, |s| s.connects()),
        )
    }

    /// Requests the calendar source received (EWS requests, or Graph calendarView requests).
    pub fn exchange_requests(&self) -> usize {
        match self.backend {
            Backend::Ews | Backend::EwsCalendar => self.ews.request_count(),
            Backend::Graph => self.graph.inner_requests().len(),
        }
    }

    /// Every string that must never show up in the binary's output: the passwords and the
    /// client secret, the Basic-auth header value, the XML-RPC auth hash and the prefix of the
    /// token fake's access tokens. STARFACE tokens are random; `assert_no_secrets` catches them
    /// (and every other SHA-512 hex value) as long runs of hex digits.
    pub fn secrets(&self) -> Vec<String> {
        let hex = |s: &str| -> String {
            Sha512::digest(s.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{EWS_USER}:{EWS_PASSWORD}"));
        vec![
            SF_PASSWORD.to_string(),
            EWS_PASSWORD.to_string(),
            CLIENT_SECRET.to_string(),
            basic,
            hex(SF_PASSWORD),
            hex(&format!("{SF_LOGIN}*{}", hex(SF_PASSWORD))),
            "sim-token-".to_string(),
        ]
    }

    /// Fails if the output holds a secret or a run of 64 or more hex digits (a token or hash).
    pub fn assert_no_secrets(&self, out: &Output) {
        for text in [&out.stdout, &out.stderr] {
            for secret in self.secrets() {
                assert!(!text.contains(&secret), "{secret:?} leaked:\n{out}");
            }
            let mut run = 0;
            for c in text.chars() {
                run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
                assert!(run < 64, "a long hex value (token or hash?) leaked:\n{out}");
            }
        }
    }
}

/// A running (or finished) process of the binary.
pub struct Running {
    process: Child,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends a signal (`TERM`, `HUP`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {}", self.pid());
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until `cond` holds, at most `limit`; returns whether it did.
    pub fn wait_for(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        cond()
    }

    /// Waits for the process to exit, at most `limit`; `None` if it did not.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<Output> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.process.try_wait().expect("wait for the binary") {
                return Some(Output {
                    code: status.code().unwrap_or(-1),
                    stdout: self.stdout(),
                    stderr: self.stderr(),
                    elapsed: self.started.elapsed(),
                });
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Never leave a daemon behind a failed test; this is our own child, by its pid.
        if let Ok(None) = self.process.try_wait() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// Show-as shorthands for the scenario tables (each test file uses some of them).
#[allow(unused_imports)]
pub use SimShowAs::{Busy, Free, NoData, Oof, Tentative, WorkingElsewhere};
