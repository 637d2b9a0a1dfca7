//! The state file (DESIGN.md section 6): what we switched, per STARFACE user, so that a restart
//! in the middle of an appointment still switches back exactly what we switched on.
//!
//! `{state_dir}/state.json`, written atomically (temporary file in the same directory, fsync,
//! rename, fsync of the directory). It never holds a secret.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::json::Value;
use crate::model::{Presence, Timestamp};
use crate::reconcile::{ChatRecord, SwitchRecord};
use crate::time;

pub use crate::model::UserId;

const VERSION: i64 = 1;

/// What we remember about one user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserRecord {
    pub email: String,
    pub dnd: SwitchRecord,
    /// Per redirect id.
    pub forward: BTreeMap<String, SwitchRecord>,
    pub chat: ChatRecord,
}

impl UserRecord {
    pub fn is_empty(&self) -> bool {
        self.dnd.is_empty()
            && self.forward.values().all(SwitchRecord::is_empty)
            && self.chat.is_empty()
    }
}

/// The whole state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub users: BTreeMap<UserId, UserRecord>,
}

/// Why the state file could not be read or written.
#[derive(Debug)]
pub enum StateError {
    Read { path: PathBuf, err: std::io::Error },
    Corrupt { path: PathBuf, detail: String },
    Write { path: PathBuf, err: std::io::Error },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Read { path, err } => write!(f, "cannot read the state file {}: {err}", path.display()),
            StateError::Corrupt { path, detail } => write!(f, "the state file {} is corrupt: {detail}", path.display()),
            StateError::Write { path, err } => write!(
                f,
                "cannot write the state file {}: {err} (check that sync.state_dir exists and is writable)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateError {}

fn switch_json(r: &SwitchRecord) -> Value {
    Value::Object(vec![
        ("ours".into(), Value::Bool(r.ours)),
        ("value".into(), Value::Bool(r.ours)),
        (
            "override_until".into(),
            r.override_until
                .map_or(Value::Null, |t| Value::String(time::format_rfc3339(t))),
        ),
    ])
}

impl State {
    /// The file's text: users with nothing to remember are left out.
    pub fn to_json(&self) -> String {
        let users = self
            .users
            .iter()
            .filter(|(_, u)| !u.is_empty())
            .map(|(id, u)| {
                let forward = u
                    .forward
                    .iter()
                    .filter(|(_, r)| !r.is_empty())
                    .map(|(k, r)| (k.clone(), switch_json(r)))
                    .collect();
                let opt = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.to_string()));
                let chat = Value::Object(vec![
                    ("ours".into(), Value::Bool(!u.chat.is_empty())),
                    (
                        "presence".into(),
                        opt(u.chat.presence.map(Presence::as_str)),
                    ),
                    ("text".into(), opt(u.chat.text.as_deref())),
                ]);
                let user = Value::Object(vec![
                    ("email".into(), Value::String(u.email.clone())),
                    ("dnd".into(), switch_json(&u.dnd)),
                    ("forward".into(), Value::Object(forward)),
                    ("chat".into(), chat),
                ]);
                (id.to_string(), user)
            })
            .collect();
        let root = Value::Object(vec![
            ("version".into(), Value::from_i64(VERSION)),
            ("users".into(), Value::Object(users)),
        ]);
        let mut text = root.to_json();
        text.push('\n');
        text
    }

    /// Reads the file's text; anything unexpected is an error (the caller moves the file aside).
    pub fn from_json(text: &str) -> Result<State, String> {
        let root = Value::parse(text).map_err(|e| e.to_string())?;
        match root.get("version").and_then(Value::as_i64) {
            Some(VERSION) => {}
            Some(v) => return Err(format!("version {v} is not supported")),
            None => return Err("no version".into()),
        }
        let users = root
            .get("users")
            .and_then(Value::as_object)
            .ok_or("no users object")?;
        let mut state = State::default();
        for (id, u) in users {
            let id: UserId = id
                .parse()
                .map_err(|_| format!("user id '{id}' is not a number"))?;
            let ctx = |what: &str| format!("user {id}: {what}");
            let email = u
                .get("email")
                .and_then(Value::as_str)
                .ok_or_else(|| ctx("no email"))?
                .to_string();
            let dnd = read_switch(u.get("dnd")).map_err(|e| ctx(&format!("dnd: {e}")))?;
            let mut forward = BTreeMap::new();
            let fwd = u
                .get("forward")
                .and_then(Value::as_object)
                .ok_or_else(|| ctx("no forward object"))?;
            for (rid, r) in fwd {
                forward.insert(
                    rid.clone(),
                    read_switch(Some(r)).map_err(|e| ctx(&format!("forward {rid}: {e}")))?,
                );
            }
            let chat = u.get("chat").ok_or_else(|| ctx("no chat object"))?;
            let presence = match chat.get("presence") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_str()
                        .and_then(Presence::parse)
                        .ok_or_else(|| ctx("bad chat presence"))?,
                ),
            };
            let text = match chat.get("text") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_str().ok_or_else(|| ctx("bad chat text"))?.to_string()),
            };
            state.users.insert(
                id,
                UserRecord {
                    email,
                    dnd,
                    forward,
                    chat: ChatRecord { presence, text },
                },
            );
        }
        Ok(state)
    }
}

fn read_switch(v: Option<&Value>) -> Result<SwitchRecord, String> {
    let v = v.ok_or("missing")?;
    let ours = v.get("ours").and_then(Value::as_bool).ok_or("no 'ours'")?;
    let override_until = match v.get("override_until") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(time::parse_rfc3339(s).map_err(|e| e.to_string())?),
        Some(_) => return Err("bad 'override_until'".into()),
    };
    Ok(SwitchRecord {
        ours,
        override_until,
    })
}

/// The state file's path in a state directory.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Reads and parses the file: `None` when missing, `Some(Err(detail))` when corrupt.
fn read(path: &Path) -> Result<Option<Result<State, String>>, StateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                err,
            })
        }
    };
    Ok(Some(
        std::str::from_utf8(&bytes)
            .map_err(|_| "not UTF-8 text".to_string())
            .and_then(State::from_json),
    ))
}

/// Loads the state. A missing file is an empty state. A corrupt one is moved aside to
/// `state.json.corrupt-<wall_now>` and gives an empty state plus the error to log.
pub fn load(dir: &Path, wall_now: Timestamp) -> Result<(State, Option<StateError>), StateError> {
    let path = path_in(dir);
    match read(&path)? {
        None => Ok((State::default(), None)),
        Some(Ok(state)) => Ok((state, None)),
        Some(Err(detail)) => {
            let aside = dir.join(format!("state.json.corrupt-{wall_now}"));
            fs::rename(&path, &aside).map_err(|err| StateError::Write {
                path: aside.clone(),
                err,
            })?;
            let detail = format!(
                "{detail}; moved aside to {} and starting with an empty state",
                aside.display()
            );
            Ok((State::default(), Some(StateError::Corrupt { path, detail })))
        }
    }
}

/// Loads the state without changing anything on disk (`--dry-run`): a corrupt file gives an
/// empty state and the error, and stays where it is.
pub fn load_readonly(dir: &Path) -> Result<(State, Option<StateError>), StateError> {
    let path = path_in(dir);
    match read(&path)? {
        None => Ok((State::default(), None)),
        Some(Ok(state)) => Ok((state, None)),
        Some(Err(detail)) => Ok((State::default(), Some(StateError::Corrupt { path, detail }))),
    }
}

/// Writes the state atomically.
pub fn save(dir: &Path, state: &State) -> Result<(), StateError> {
    let path = path_in(dir);
    let tmp = dir.join(format!(".state.json.tmp-{}", std::process::id()));
    let werr = |err| StateError::Write {
        path: path.clone(),
        err,
    };
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(state.to_json().as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)?;
        // Make the rename itself durable.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let mut s = State::default();
        s.users.insert(
            17,
            UserRecord {
                email: "alice@example.com".into(),
                dnd: SwitchRecord {
                    ours: true,
                    override_until: None,
                },
                forward: [
                    (
                        "r1".to_string(),
                        SwitchRecord {
                            ours: false,
                            override_until: Some(1_796_117_400),
                        },
                    ),
                    ("r2".to_string(), SwitchRecord::default()),
                ]
                .into(),
                chat: ChatRecord {
                    presence: Some(Presence::DoNotDisturb),
                    text: Some("Sync \"A\" | ä".into()),
                },
            },
        );
        s.users.insert(
            18,
            UserRecord {
                email: "idle@example.com".into(),
                ..UserRecord::default()
            },
        );
        s
    }

    #[test]
    fn round_trip_drops_empty_records() {
        let s = sample();
        let text = s.to_json();
        assert!(
            text.contains("\"override_until\":\"2026-12-01T09:30:00Z\""),
            "{text}"
        );
        let back = State::from_json(&text).unwrap();
        let mut expect = s.clone();
        expect.users.remove(&18);
        expect.users.get_mut(&17).unwrap().forward.remove("r2");
        assert_eq!(back, expect);
    }

    fn check_corrupt(text: &str) {
        assert!(State::from_json(text).is_err(), "{text}");
    }

    #[test]
    fn corrupt_texts() {
        check_corrupt("");
        check_corrupt("{");
        check_corrupt("[]");
        check_corrupt(r#"{"version":2,"users":{}}"#);
        check_corrupt(r#"{"users":{}}"#);
        check_corrupt(r#"{"version":1,"users":{"x":{}}}"#);
        check_corrupt(
            r#"{"version":1,"users":{"1":{"email":"a","dnd":{"ours":1},"forward":{},"chat":{}}}}"#,
        );
        check_corrupt(
            r#"{"version":1,"users":{"1":{"email":"a","dnd":{"ours":true,"override_until":"soon"},"forward":{},"chat":{}}}}"#,
        );
        check_corrupt(
            r#"{"version":1,"users":{"1":{"email":"a","dnd":{"ours":true},"forward":{},"chat":{"presence":"BUSY"}}}}"#,
        );
        // Truncated at every byte: an error, never a panic.
        let text = sample().to_json();
        for cut in 0..text.len() - 1 {
            if text.is_char_boundary(cut) {
                check_corrupt(&text[..cut]);
            }
        }
    }

    #[test]
    fn files() {
        let dir = std::env::temp_dir().join(format!("ess-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Missing: empty.
        let (s, err) = load(&dir, 1).unwrap();
        assert!(s.users.is_empty() && err.is_none());
        // Saved and read back.
        save(&dir, &sample()).unwrap();
        let (s, err) = load(&dir, 1).unwrap();
        assert_eq!(s.users.len(), 1);
        assert!(err.is_none());
        // Corrupt: moved aside, empty state, error reported.
        fs::write(path_in(&dir), "{\"version\":1,").unwrap();
        let (s, err) = load(&dir, 1234).unwrap();
        assert!(s.users.is_empty());
        assert!(matches!(err, Some(StateError::Corrupt { .. })));
        assert!(dir.join("state.json.corrupt-1234").exists());
        assert!(!path_in(&dir).exists());
        // No temporary files left behind.
        save(&dir, &State::default()).unwrap();
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".state")), "{names:?}");
        // A directory that does not exist: a write error naming the key to check.
        let err = save(&dir.join("missing"), &State::default()).unwrap_err();
        assert!(err.to_string().contains("sync.state_dir"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn error_display() {
        let p = PathBuf::from("/s/state.json");
        let io = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        assert_eq!(
            StateError::Read {
                path: p.clone(),
                err: io()
            }
            .to_string(),
            "cannot read the state file /s/state.json: denied"
        );
        assert_eq!(
            StateError::Corrupt {
                path: p.clone(),
                detail: "x".into()
            }
            .to_string(),
            "the state file /s/state.json is corrupt: x"
        );
        assert!(StateError::Write { path: p, err: io() }
            .to_string()
            .starts_with("cannot write the state file /s/state.json: denied"));
    }
}
