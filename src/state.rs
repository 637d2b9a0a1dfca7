//! The state file (`docs/contract.md`, section 6): what we switched, per STARFACE user, so that a
//! restart in the middle of an appointment still switches back exactly what we switched on; and,
//! for `status`, since when each of our values is on, the appointment behind it, and the last
//! poll.
//!
//! `{state_dir}/state.json`, written atomically (temporary file in the same directory, fsync,
//! rename, fsync of the directory). It never holds a secret. The fields for `status` are
//! optional: a file written before they existed reads as before, and an older program reading a
//! newer file ignores them.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::json::{self, write_string, Value};
use crate::model::{Presence, ShowAs, Timestamp};
use crate::reconcile::{ChatRecord, SwitchRecord};
use crate::rules::Cause;
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
    /// Since when our DND is on and why; `None` also for a state file from before this was kept.
    pub dnd_held: Option<Held>,
    /// Per redirect id, for the redirects that are ours.
    pub forward_held: BTreeMap<String, HeldRedirect>,
    /// Since when our chat presence or text is set and why.
    pub chat_held: Option<Held>,
}

/// Since when a value of ours is on the PBX, and the appointment that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub since: Timestamp,
    pub cause: Option<Cause>,
}

/// A redirect that is ours: its number (for people) and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRedirect {
    pub number: String,
    pub held: Held,
}

/// The outcome of the last poll (a daemon poll or a `once` that saved the state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollRecord {
    pub at: Timestamp,
    /// `None`: ok; else what went wrong, in one line.
    pub error: Option<String>,
    /// Users whose calendars were read.
    pub users_read: usize,
    /// Users that could not be handled.
    pub users_failed: usize,
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
    pub poll: Option<PollRecord>,
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

/// The JSON text is written straight into one string, without a `Value` tree: with thousands
/// of users the tree would cost several times the text, on every save.
fn push_time(out: &mut String, t: Timestamp) {
    out.push('"');
    time::push_rfc3339(out, t);
    out.push('"');
}

fn push_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => write_string(s, out),
        None => out.push_str("null"),
    }
}

fn push_bool(out: &mut String, b: bool) {
    out.push_str(if b { "true" } else { "false" });
}

/// `,"since":…,"cause":…` of a value that is ours; nothing when not known.
fn push_held(out: &mut String, held: Option<&Held>) {
    let Some(h) = held else { return };
    out.push_str(",\"since\":");
    push_time(out, h.since);
    out.push_str(",\"cause\":");
    match &h.cause {
        None => out.push_str("null"),
        Some(c) => {
            out.push_str("{\"show_as\":");
            write_string(c.show_as.name(), out);
            out.push_str(",\"subject\":");
            write_string(&c.text, out);
            out.push_str(",\"end\":");
            push_time(out, c.end);
            out.push('}');
        }
    }
}

fn push_switch(out: &mut String, r: &SwitchRecord, held: Option<&Held>, number: Option<&str>) {
    out.push_str("{\"ours\":");
    push_bool(out, r.ours);
    out.push_str(",\"value\":");
    push_bool(out, r.ours);
    out.push_str(",\"override_until\":");
    match r.override_until {
        Some(t) => push_time(out, t),
        None => out.push_str("null"),
    }
    if r.ours {
        push_held(out, held);
        if let Some(n) = number {
            out.push_str(",\"number\":");
            write_string(n, out);
        }
    }
    out.push('}');
}

fn push_user(out: &mut String, u: &UserRecord) {
    out.push_str("{\"email\":");
    write_string(&u.email, out);
    out.push_str(",\"dnd\":");
    push_switch(out, &u.dnd, u.dnd_held.as_ref(), None);
    out.push_str(",\"forward\":{");
    let redirects = u.forward.iter().filter(|(_, r)| !r.is_empty());
    for (i, (id, r)) in redirects.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(id, out);
        out.push(':');
        let held = u.forward_held.get(id);
        push_switch(
            out,
            r,
            held.map(|h| &h.held),
            held.map(|h| h.number.as_str()),
        );
    }
    out.push_str("},\"chat\":{\"ours\":");
    push_bool(out, !u.chat.is_empty());
    out.push_str(",\"presence\":");
    push_opt_str(out, u.chat.presence.map(Presence::as_str));
    out.push_str(",\"text\":");
    push_opt_str(out, u.chat.text.as_deref());
    if !u.chat.is_empty() {
        push_held(out, u.chat_held.as_ref());
    }
    out.push_str("}}");
}

fn push_poll(out: &mut String, p: &PollRecord) {
    out.push_str("{\"time\":");
    push_time(out, p.at);
    out.push_str(",\"ok\":");
    push_bool(out, p.error.is_none());
    out.push_str(",\"error\":");
    push_opt_str(out, p.error.as_deref());
    let _ = write!(
        out,
        ",\"users_read\":{},\"users_failed\":{}}}",
        p.users_read, p.users_failed
    );
}

impl State {
    /// The file's text: users with nothing to remember are left out.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + 320 * self.users.len());
        let _ = write!(out, "{{\"version\":{VERSION},\"users\":{{");
        let users = self.users.iter().filter(|(_, u)| !u.is_empty());
        for (i, (id, u)) in users.enumerate() {
            if i > 0 {
                out.push(',');
            }
            // `write!` into a String cannot fail and allocates nothing of its own.
            let _ = write!(out, "\"{id}\"");
            out.push(':');
            push_user(&mut out, u);
        }
        out.push('}');
        if let Some(p) = &self.poll {
            out.push_str(",\"poll\":");
            push_poll(&mut out, p);
        }
        out.push_str("}\n");
        out
    }

    /// Reads the file's text; anything unexpected is an error (the caller moves the file aside).
    pub fn from_json(text: &str) -> Result<State, String> {
        let mut state = State::default();
        let (found, root) = json::for_each_member_of(text, "users", |id, u| {
            let (id, user) = read_user(id, &u)?;
            state.users.insert(id, user);
            Ok(())
        })?;
        let get = |name: &str| root.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        match get("version").and_then(Value::as_i64) {
            Some(VERSION) => {}
            Some(v) => return Err(format!("version {v} is not supported")),
            None => return Err("no version".into()),
        }
        if !found {
            return Err("no users object".into());
        }
        state.poll = match get("poll") {
            None | Some(Value::Null) => None,
            Some(p) => Some(read_poll(p).map_err(|e| format!("poll: {e}"))?),
        };
        Ok(state)
    }
}

/// One user of the file: its id and record.
fn read_user(id: &str, u: &Value) -> Result<(UserId, UserRecord), String> {
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
    let dnd_held = read_held(u.get("dnd")).map_err(|e| ctx(&format!("dnd: {e}")))?;
    let mut forward = BTreeMap::new();
    let mut forward_held = BTreeMap::new();
    let fwd = u
        .get("forward")
        .and_then(Value::as_object)
        .ok_or_else(|| ctx("no forward object"))?;
    for (rid, r) in fwd {
        let fctx = |e: String| ctx(&format!("forward {rid}: {e}"));
        if let Some(held) = read_held(Some(r)).map_err(fctx)? {
            let number = match r.get("number") {
                Some(Value::String(n)) => n.clone(),
                _ => return Err(fctx("no 'number' next to 'since'".into())),
            };
            forward_held.insert(rid.clone(), HeldRedirect { number, held });
        }
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
    let chat_held = read_held(Some(chat)).map_err(|e| ctx(&format!("chat: {e}")))?;
    let user = UserRecord {
        email,
        dnd,
        forward,
        chat: ChatRecord { presence, text },
        dnd_held,
        forward_held,
        chat_held,
    };
    Ok((id, user))
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

fn read_time(v: Option<&Value>, name: &str) -> Result<Timestamp, String> {
    match v {
        Some(Value::String(s)) => time::parse_rfc3339(s).map_err(|e| format!("'{name}': {e}")),
        _ => Err(format!("no '{name}'")),
    }
}

/// `since` and `cause` next to a value; `None` when there is no `since` (an older file).
fn read_held(v: Option<&Value>) -> Result<Option<Held>, String> {
    let Some(v) = v else { return Ok(None) };
    if matches!(v.get("since"), None | Some(Value::Null)) {
        return Ok(None);
    }
    let since = read_time(v.get("since"), "since")?;
    let cause = match v.get("cause") {
        None | Some(Value::Null) => None,
        Some(c) => {
            let name = c.get("show_as").and_then(Value::as_str);
            let show_as = [
                ShowAs::Free,
                ShowAs::WorkingElsewhere,
                ShowAs::Tentative,
                ShowAs::Busy,
                ShowAs::Oof,
            ]
            .into_iter()
            .find(|s| Some(s.name()) == name)
            .ok_or("bad 'cause.show_as'")?;
            let text = c
                .get("subject")
                .and_then(Value::as_str)
                .ok_or("no 'cause.subject'")?
                .to_string();
            let end = read_time(c.get("end"), "cause.end")?;
            Some(Cause { show_as, text, end })
        }
    };
    Ok(Some(Held { since, cause }))
}

fn read_poll(v: &Value) -> Result<PollRecord, String> {
    let at = read_time(v.get("time"), "time")?;
    let ok = v.get("ok").and_then(Value::as_bool).ok_or("no 'ok'")?;
    let error = match (ok, v.get("error")) {
        (true, None | Some(Value::Null)) => None,
        (false, Some(Value::String(e))) => Some(e.clone()),
        _ => return Err("'ok' and 'error' disagree".into()),
    };
    let count = |name: &str| {
        v.get(name)
            .and_then(Value::as_i64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("no '{name}'"))
    };
    Ok(PollRecord {
        at,
        error,
        users_read: count("users_read")?,
        users_failed: count("users_failed")?,
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

/// Records `poll` in the state file and leaves the rest as it is: a run that failed before its
/// pass still tells `status` why. Returns a corrupt file's error (the file was moved aside).
pub fn save_poll(
    dir: &Path,
    poll: PollRecord,
    wall_now: Timestamp,
) -> Result<Option<StateError>, StateError> {
    let (mut state, corrupt) = load(dir, wall_now)?;
    state.poll = Some(poll);
    save(dir, &state)?;
    Ok(corrupt)
}

/// Writes the state atomically.
pub fn save(dir: &Path, state: &State) -> Result<(), StateError> {
    save_text(dir, &state.to_json())
}

/// Writes `State::to_json`'s text atomically (for a caller that has it already).
pub fn save_text(dir: &Path, text: &str) -> Result<(), StateError> {
    let path = path_in(dir);
    let tmp = dir.join(format!(".state.json.tmp-{}", std::process::id()));
    let werr = |err| StateError::Write {
        path: path.clone(),
        err,
    };
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
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
                dnd_held: Some(Held {
                    since: 1_796_115_600,
                    cause: Some(Cause {
                        show_as: ShowAs::Busy,
                        text: "Sync \"A\" | ä".into(),
                        end: 1_796_119_200,
                    }),
                }),
                forward_held: BTreeMap::new(),
                chat_held: Some(Held {
                    since: 1_796_115_600,
                    cause: None,
                }),
            },
        );
        s.users.insert(
            19,
            UserRecord {
                email: "bob@example.com".into(),
                forward: [(
                    "ext-2".to_string(),
                    SwitchRecord {
                        ours: true,
                        override_until: None,
                    },
                )]
                .into(),
                forward_held: [(
                    "ext-2".to_string(),
                    HeldRedirect {
                        number: "+4972112345602".into(),
                        held: Held {
                            since: 1_796_000_000,
                            cause: Some(Cause {
                                show_as: ShowAs::Oof,
                                text: "Vacation".into(),
                                end: 1_796_300_000,
                            }),
                        },
                    },
                )]
                .into(),
                ..UserRecord::default()
            },
        );
        s.poll = Some(PollRecord {
            at: 1_796_117_400,
            error: Some("Exchange: HTTP 503".into()),
            users_read: 2,
            users_failed: 1,
        });
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
    fn a_file_from_before_the_status_fields_reads_as_before() {
        let old = include_str!("../tests/fixtures/state/before-status.json");
        let s = State::from_json(old).unwrap();
        assert_eq!(s.poll, None);
        let alice = &s.users[&17];
        assert!(alice.dnd.ours && alice.forward["r1"].override_until.is_some());
        assert_eq!(alice.chat.presence, Some(Presence::DoNotDisturb));
        assert_eq!(
            (&alice.dnd_held, alice.forward_held.len(), &alice.chat_held),
            (&None, 0, &None)
        );
        // Written again, it gains nothing it does not know and loses nothing it had.
        assert_eq!(State::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn held_values_only_for_what_is_ours() {
        let mut s = sample();
        let alice = s.users.get_mut(&17).unwrap();
        alice.dnd.ours = false;
        alice.dnd.override_until = Some(1);
        let text = s.to_json();
        let back = State::from_json(&text).unwrap();
        assert_eq!(back.users[&17].dnd_held, None, "{text}");
        assert!(back.users[&17].chat_held.is_some());
        assert_eq!(
            back.users[&19].forward_held["ext-2"].number,
            "+4972112345602"
        );
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
        assert!(
            text.contains(r#""poll":{"time":"2026-12-01T09:30:00Z","ok":false,"error":"Exchange: HTTP 503","users_read":2,"users_failed":1}"#),
            "{text}"
        );
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
        let user = |dnd: &str| {
            format!(
                r#"{{"version":1,"users":{{"1":{{"email":"a","dnd":{dnd},"forward":{{}},"chat":{{}}}}}}}}"#
            )
        };
        check_corrupt(&user(r#"{"ours":true,"since":"soon"}"#));
        check_corrupt(&user(
            r#"{"ours":true,"since":"2026-12-01T09:30:00Z","cause":{"show_as":"Away","subject":"","end":"2026-12-01T09:30:00Z"}}"#,
        ));
        check_corrupt(&user(
            r#"{"ours":true,"since":"2026-12-01T09:30:00Z","cause":{"show_as":"Busy","end":"2026-12-01T09:30:00Z"}}"#,
        ));
        check_corrupt(
            r#"{"version":1,"users":{"1":{"email":"a","dnd":{"ours":false},"forward":{"r":{"ours":true,"since":"2026-12-01T09:30:00Z"}},"chat":{}}}}"#,
        );
        let poll = |p: &str| format!(r#"{{"version":1,"users":{{}},"poll":{p}}}"#);
        check_corrupt(&poll(
            r#"{"time":"2026-12-01T09:30:00Z","ok":true,"error":"x","users_read":1,"users_failed":0}"#,
        ));
        check_corrupt(&poll(
            r#"{"time":"2026-12-01T09:30:00Z","ok":false,"users_read":1,"users_failed":0}"#,
        ));
        check_corrupt(&poll(
            r#"{"time":"2026-12-01T09:30:00Z","ok":true,"users_read":-1,"users_failed":0}"#,
        ));
        check_corrupt(&poll(r#"{"ok":true,"users_read":1,"users_failed":0}"#));
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
        assert_eq!(s.users.len(), 2);
        assert!(err.is_none());
        // A poll recorded on its own keeps the users.
        let poll = PollRecord {
            at: 5,
            error: None,
            users_read: 0,
            users_failed: 0,
        };
        assert!(save_poll(&dir, poll.clone(), 1).unwrap().is_none());
        let (s, _) = load(&dir, 1).unwrap();
        assert_eq!((s.users.len(), s.poll), (2, Some(poll)));
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
