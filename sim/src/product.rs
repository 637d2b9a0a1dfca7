//! The product binary as `demo` and `bench` run it: as a subprocess, never linked, so that what
//! they show is what an admin's installation does.
//!
//! This module finds the binary, writes a configuration that points it at the fakes, and holds
//! the temporary directory for that configuration and the state file.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The product's binary name, as Cargo places it in `target/<profile>/`.
pub const BIN_NAME: &str = "exchange-status-sync";

/// The EWS service account the fake accepts; the configuration carries the same.
pub const EWS_USER: &str = "svc-starface@example.com";
pub const EWS_PASSWORD: &str = "exchange-secret";

/// Finds the product binary: `--bin PATH` first, then `$ESS_BIN`, then next to this executable
/// (Cargo puts both binaries of the workspace into the same `target/<profile>/`). When none is
/// there, builds the release binary into the same target directory and uses that.
pub fn locate(explicit: Option<&str>) -> Result<PathBuf, String> {
    let given = explicit
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("ESS_BIN").map(PathBuf::from));
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "the product binary {} does not exist (from --bin or ESS_BIN)",
                path.display()
            ))
        };
    }
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot tell where ess-sim runs from: {e}"))?;
    let profile_dir = exe.parent().ok_or("ess-sim's own path has no directory")?;
    let beside = profile_dir.join(BIN_NAME);
    if beside.is_file() {
        return Ok(beside);
    }
    // `target/<profile>/ess-sim`: the target directory is one level up.
    let target_dir = profile_dir
        .parent()
        .ok_or("ess-sim does not run from a Cargo target directory; use --bin PATH")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    println!(
        "{} not found; building it: cargo build --release -p exchange-status-sync --bin exchange-status-sync",
        beside.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "exchange-status-sync",
            "--bin",
            BIN_NAME,
        ])
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}; build the product or use --bin PATH"))?;
    let built = target_dir.join("release").join(BIN_NAME);
    if !status.success() || !built.is_file() {
        return Err(format!(
            "building the product failed ({status}); build it yourself or use --bin PATH"
        ));
    }
    Ok(built)
}

/// The target triple of the binary that ships (a static musl build).
pub const SHIPPED_TARGET: &str = "x86_64-unknown-linux-musl";

/// The target directory ess-sim runs from (`target/<profile>/ess-sim`).
fn target_dir() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot tell where ess-sim runs from: {e}"))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| "ess-sim does not run from a Cargo target directory; use --bin PATH".into())
}

/// Finds an artifact of the static musl release build (`what` is `--bin NAME` or `--example
/// NAME`, `rel` its path under `target/x86_64-unknown-linux-musl/release/`), building it with
/// `cargo build --release --target x86_64-unknown-linux-musl` when it is not there yet.
pub fn locate_shipped(what: [&str; 2], rel: &str) -> Result<PathBuf, String> {
    let target_dir = target_dir()?;
    let path = target_dir.join(SHIPPED_TARGET).join("release").join(rel);
    if path.is_file() {
        return Ok(path);
    }
    let how = format!(
        "cargo build --release --target {SHIPPED_TARGET} -p exchange-status-sync {} {}",
        what[0], what[1]
    );
    println!("{} not found; building it: {how}", path.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", SHIPPED_TARGET])
        .args(["-p", "exchange-status-sync", what[0], what[1]])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}; run `{how}` yourself or use --bin PATH"))?;
    if !status.success() || !path.is_file() {
        return Err(format!(
            "building {} failed ({status}); run `{how}` yourself (the musl target: `rustup target add {SHIPPED_TARGET}`) or use --bin PATH",
            path.display()
        ));
    }
    Ok(path)
}

/// What a configuration for the fakes varies in.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The EWS fake's base URL (`http://127.0.0.1:port`).
    pub ews_url: String,
    /// The STARFACE fake's base URL.
    pub starface_url: String,
    /// `availability` or `calendar`.
    pub lookup: &'static str,
    /// `exchange.auth`: `basic` or `ntlm` (the EWS fake must be set up to match).
    pub auth: &'static str,
    pub poll_interval_secs: u64,
    /// How often the daemon reads the group and the user list again (the product's default is
    /// 600; the benchmark shortens it so that its memory figures include directory refreshes).
    pub directory_refresh_secs: u64,
    /// `lookahead_hours`; `None` leaves it out, so that the product's default applies.
    pub lookahead_hours: Option<u64>,
    pub chat: bool,
    pub log_level: &'static str,
    pub state_dir: PathBuf,
}

/// The configuration file's text: busy → DND, OOF → forwarding, chat presence and text as
/// `chat` says, the fakes' credentials inline (the file is written readable by us only).
pub fn config_text(s: &Setup) -> String {
    format!(
        r#"# Written by ess-sim for a run against its fakes.
[exchange]
backend = "ews"
url = "{ews}/EWS/Exchange.asmx"
auth = "{auth}"
username = "{user}"
password = "{password}"
lookup = "{lookup}"
timeout_secs = 60

[starface]
url = "{pbx}"
login = "{login}"
password = "{pbx_password}"
group = "Exchange-Sync"
{pbx_tls}
[actions]
free = "none"
tentative = "none"
busy = "dnd"
oof = "forward"
working_elsewhere = "none"

[chat]
set_presence = {chat}
subject_as_text = {chat}
rpc_method = "{rpc}"

[sync]
poll_interval_secs = {poll}
directory_refresh_secs = {refresh}
{lookahead}state_dir = "{state}"

[log]
level = "{level}"
"#,
        ews = s.ews_url,
        user = EWS_USER,
        auth = s.auth,
        password = EWS_PASSWORD,
        lookup = s.lookup,
        pbx = s.starface_url,
        // The sim's HTTPS fake has a self-signed certificate, as the PBX has its own.
        pbx_tls = if s.starface_url.starts_with("https://") {
            "insecure_tls = true\n"
        } else {
            ""
        },
        login = ess_sim::starface::DEFAULT_ADMIN_LOGIN,
        pbx_password = ess_sim::starface::DEFAULT_ADMIN_PASSWORD,
        chat = s.chat,
        rpc = ess_sim::starface::DEFAULT_RPC_METHOD,
        poll = s.poll_interval_secs,
        refresh = s.directory_refresh_secs,
        lookahead = s
            .lookahead_hours
            .map_or(String::new(), |h| format!("lookahead_hours = {h}\n")),
        state = s.state_dir.display(),
        level = s.log_level,
    )
}

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(what: &str) -> io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("ess-sim-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the configuration for `setup` as `name`, readable by the owner only (it holds
    /// the fakes' passwords, and the product warns about secrets others can read).
    pub fn write_config(&self, name: &str, setup: &Setup) -> io::Result<PathBuf> {
        use std::io::Write;
        let path = self.path.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(config_text(setup).as_bytes())?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Starts `bin run -c config` with stderr piped (the caller reads it) and stdout inherited.
pub fn spawn_daemon(bin: &Path, config: &Path, stderr: Stdio) -> io::Result<Child> {
    Command::new(bin)
        .arg("run")
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stderr(stderr)
        .spawn()
}

/// Sends SIGTERM, as systemd does to stop the service.
pub fn terminate(child: &Child) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    // SAFETY: kill(2) with a pid we spawned and have not reaped yet; no memory is shared.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits for the child at most `limit`; `None` if it is still running then.
pub fn wait_for(child: &mut Child, limit: Duration) -> io::Result<Option<(ExitStatus, Duration)>> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some((status, started.elapsed())));
        }
        if started.elapsed() >= limit {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            ews_url: "http://127.0.0.1:1".into(),
            starface_url: "http://127.0.0.1:2".into(),
            lookup: "calendar",
            auth: "basic",
            poll_interval_secs: 7,
            directory_refresh_secs: 9,
            lookahead_hours: Some(24),
            chat: true,
            log_level: "warn",
            state_dir: PathBuf::from("/tmp/x/state"),
        }
    }

    #[test]
    fn config_carries_the_setup() {
        let text = config_text(&setup());
        for line in [
            "url = \"http://127.0.0.1:1/EWS/Exchange.asmx\"",
            "url = \"http://127.0.0.1:2\"",
            "lookup = \"calendar\"",
            "poll_interval_secs = 7",
            "directory_refresh_secs = 9",
            "lookahead_hours = 24",
            "set_presence = true",
            "subject_as_text = true",
            "state_dir = \"/tmp/x/state\"",
            "level = \"warn\"",
            "busy = \"dnd\"",
            "oof = \"forward\"",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        let default = config_text(&Setup {
            lookahead_hours: None,
            ..setup()
        });
        assert!(!default.contains("lookahead_hours"), "{default}");
    }

    #[test]
    fn temp_dir_config_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("test").unwrap();
        let path = dir.write_config("c.toml", &setup()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let root = dir.path().to_path_buf();
        drop(dir);
        assert!(!root.exists());
    }

    #[test]
    fn explicit_binary_must_exist() {
        let err = locate(Some("/nonexistent/ess-bin")).unwrap_err();
        assert!(err.contains("/nonexistent/ess-bin"), "{err}");
    }
}
