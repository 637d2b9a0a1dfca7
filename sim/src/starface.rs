//! A fake STARFACE PBX: the REST endpoints exchange-status-sync uses, as the Swagger file
//! `starface-rest-6.7.0.22.yaml` describes them, and the XML-RPC chat entry point.
//!
//! It is strict where the product must be correct: the nonce flow and both secret formulas,
//! `authToken` on every call (401 otherwise), `X-Version: 2` and `Content-Type:
//! application/json`, required fields of written objects, and — when extra fields are switched
//! on — every unknown field it served must come back unchanged in a PUT (400 otherwise). It
//! records every write and counts requests per endpoint so that tests can assert "no writes" and
//! "no reads". It has its own JSON and hashing code: it must not share code with the product.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha512};

use crate::server::{HttpReply, HttpRequest, Server};

/// How the API user logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimLoginType {
    Internal,
    ActiveDirectory,
}

impl SimLoginType {
    fn name(self) -> &'static str {
        match self {
            SimLoginType::Internal => "Internal",
            SimLoginType::ActiveDirectory => "ActiveDirectory",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimNumberType {
    Internal,
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimTrigger {
    Always,
    Busy,
    Timeout,
}

impl SimTrigger {
    fn name(self) -> &'static str {
        match self {
            SimTrigger::Always => "ALWAYS",
            SimTrigger::Busy => "BUSY",
            SimTrigger::Timeout => "TIMEOUT",
        }
    }
}

/// Where a redirect sends calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimDestination {
    /// A phone number; empty means "not set".
    Phone(String),
    /// A voicemail box id; empty means "not set".
    Mailbox(String),
}

/// One recorded PBX write (PUT, POST other than login, DELETE other than logout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimWrite {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    /// When the fake received it (wall clock), so that tests can measure how soon after an
    /// appointment boundary the daemon wrote.
    pub at: std::time::SystemTime,
}

/// One call of the chat entry point, as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimChatCall {
    pub method: String,
    pub account_id: i64,
    pub presence: String,
    pub change_text: bool,
    pub text: String,
}

#[derive(Clone, Debug)]
struct User {
    id: i64,
    login: String,
    email: String,
    first: String,
    last: String,
    dnd: bool,
    call_waiting: bool,
}

#[derive(Clone, Debug)]
struct Group {
    id: i64,
    name: String,
    members: Vec<i64>,
}

#[derive(Clone, Debug)]
struct Number {
    id: i64,
    user: Option<i64>,
    group: Option<i64>,
    number: String,
    kind: &'static str,
}

#[derive(Clone, Debug)]
struct Redirect {
    id: String,
    user: i64,
    number: String,
    group_number: bool,
    trigger: SimTrigger,
    destination: SimDestination,
    enabled: bool,
}

#[derive(Default)]
struct State {
    admin_login: String,
    admin_password: String,
    login_type: Option<SimLoginType>,
    rpc_method: String,
    users: Vec<User>,
    groups: Vec<Group>,
    numbers: Vec<Number>,
    redirects: Vec<Redirect>,
    next_id: u64,
    nonces: Vec<String>,
    tokens: Vec<String>,
    fail_next: u32,
    fail_paths: Vec<String>,
    down: bool,
    delay: Duration,
    extra_fields: bool,
    writes: Vec<SimWrite>,
    requests: BTreeMap<String, usize>,
    chat_calls: Vec<SimChatCall>,
    chat: HashMap<i64, (String, String)>,
    logins: usize,
    logouts: usize,
}

/// The fake's data and knobs. Cheap to clone (shared); a server started from it serves its
/// current state, and a new server started after dropping the old one keeps that state.
#[derive(Clone)]
pub struct StarfaceSim {
    state: Arc<Mutex<State>>,
}

impl Default for StarfaceSim {
    fn default() -> Self {
        Self::new()
    }
}

/// The login the fake accepts unless `admin` says otherwise.
pub const DEFAULT_ADMIN_LOGIN: &str = "0001";
pub const DEFAULT_ADMIN_PASSWORD: &str = "admin-secret";
pub const DEFAULT_RPC_METHOD: &str = "ExchangeStatusSync.setChatPresence";

impl StarfaceSim {
    pub fn new() -> StarfaceSim {
        let state = State {
            admin_login: DEFAULT_ADMIN_LOGIN.to_string(),
            admin_password: DEFAULT_ADMIN_PASSWORD.to_string(),
            login_type: Some(SimLoginType::Internal),
            rpc_method: DEFAULT_RPC_METHOD.to_string(),
            ..State::default()
        };
        StarfaceSim {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the fake down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The API user: login id, password and how it logs in.
    pub fn admin(&self, login: &str, password: &str, login_type: SimLoginType) -> &Self {
        let mut s = self.lock();
        s.admin_login = login.to_string();
        s.admin_password = password.to_string();
        s.login_type = Some(login_type);
        self
    }

    /// The XML-RPC method name the chat entry point is published as.
    pub fn rpc_method(&self, name: &str) -> &Self {
        self.lock().rpc_method = name.to_string();
        self
    }

    /// A user; an empty `email` means none is set.
    pub fn user(&self, id: i64, login: &str, email: &str, first: &str, last: &str) -> &Self {
        self.lock().users.push(User {
            id,
            login: login.to_string(),
            email: email.to_string(),
            first: first.to_string(),
            last: last.to_string(),
            dnd: false,
            call_waiting: true,
        });
        self
    }

    pub fn group(&self, id: i64, name: &str, members: &[i64]) -> &Self {
        self.lock().groups.push(Group {
            id,
            name: name.to_string(),
            members: members.to_vec(),
        });
        self
    }

    /// A number assigned to a user.
    pub fn number(&self, user: i64, number: &str, kind: SimNumberType) -> &Self {
        let mut s = self.lock();
        s.next_id += 1;
        let id = 1000 + s.next_id as i64;
        s.numbers.push(Number {
            id,
            user: Some(user),
            group: None,
            number: number.to_string(),
            kind: match kind {
                SimNumberType::Internal => "INTERNAL",
                SimNumberType::External => "EXTERNAL",
            },
        });
        self
    }

    /// A number assigned to a group.
    pub fn group_number(&self, group: i64, number: &str) -> &Self {
        let mut s = self.lock();
        s.next_id += 1;
        let id = 1000 + s.next_id as i64;
        s.numbers.push(Number {
            id,
            user: None,
            group: Some(group),
            number: number.to_string(),
            kind: "INTERNAL",
        });
        self
    }

    /// A redirect of `user` on `number`.
    pub fn redirect(
        &self,
        id: &str,
        user: i64,
        number: &str,
        trigger: SimTrigger,
        destination: SimDestination,
        enabled: bool,
    ) -> &Self {
        self.push_redirect(id, user, number, false, trigger, destination, enabled)
    }

    /// A redirect on a group number that `user` sees (`groupNumber: true`).
    pub fn group_redirect(
        &self,
        id: &str,
        user: i64,
        number: &str,
        destination: SimDestination,
        enabled: bool,
    ) -> &Self {
        self.push_redirect(
            id,
            user,
            number,
            true,
            SimTrigger::Always,
            destination,
            enabled,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn push_redirect(
        &self,
        id: &str,
        user: i64,
        number: &str,
        group_number: bool,
        trigger: SimTrigger,
        destination: SimDestination,
        enabled: bool,
    ) -> &Self {
        self.lock().redirects.push(Redirect {
            id: id.to_string(),
            user,
            number: number.to_string(),
            group_number,
            trigger,
            destination,
            enabled,
        });
        self
    }

    pub fn dnd(&self, user: i64) -> Option<bool> {
        self.lock()
            .users
            .iter()
            .find(|u| u.id == user)
            .map(|u| u.dnd)
    }

    /// Changes DND as a user at the phone would (not recorded as a write).
    pub fn set_dnd(&self, user: i64, on: bool) -> &Self {
        if let Some(u) = self.lock().users.iter_mut().find(|u| u.id == user) {
            u.dnd = on;
        }
        self
    }

    pub fn redirect_enabled(&self, id: &str) -> Option<bool> {
        self.lock()
            .redirects
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.enabled)
    }

    /// Changes a redirect as a user would (not recorded as a write).
    pub fn set_redirect_enabled(&self, id: &str, on: bool) -> &Self {
        if let Some(r) = self.lock().redirects.iter_mut().find(|r| r.id == id) {
            r.enabled = on;
        }
        self
    }

    /// The chat presence and text last set for a user through the entry point.
    pub fn chat(&self, user: i64) -> Option<(String, String)> {
        self.lock().chat.get(&user).cloned()
    }

    pub fn chat_calls(&self) -> Vec<SimChatCall> {
        self.lock().chat_calls.clone()
    }

    /// Invalidates every token now, as a PBX restart or the 4-hour expiry would.
    pub fn expire_tokens(&self) -> &Self {
        self.lock().tokens.clear();
        self
    }

    /// The next `n` requests get HTTP 500.
    pub fn fail_next(&self, n: u32) -> &Self {
        self.lock().fail_next = n;
        self
    }

    /// Every request to this path (without query) gets HTTP 500 until `clear_faults`.
    pub fn fail_path(&self, path: &str) -> &Self {
        self.lock().fail_paths.push(path.to_string());
        self
    }

    /// While down, every request gets HTTP 503.
    pub fn set_down(&self, down: bool) -> &Self {
        self.lock().down = down;
        self
    }

    /// Every answer waits this long.
    pub fn set_delay(&self, delay: Duration) -> &Self {
        self.lock().delay = delay;
        self
    }

    pub fn clear_faults(&self) -> &Self {
        let mut s = self.lock();
        s.fail_next = 0;
        s.fail_paths.clear();
        s.down = false;
        s.delay = Duration::ZERO;
        self
    }

    /// Adds fields the product does not know to every object served, and then requires them
    /// back unchanged in every PUT.
    pub fn set_extra_fields(&self, on: bool) -> &Self {
        self.lock().extra_fields = on;
        self
    }

    pub fn writes(&self) -> Vec<SimWrite> {
        self.lock().writes.clone()
    }

    /// Requests per endpoint, keyed like `GET /rest/users/{id}/phoneconfig` or `POST /xml-rpc`.
    pub fn requests(&self) -> BTreeMap<String, usize> {
        self.lock().requests.clone()
    }

    /// Requests to one endpoint (see `requests` for the keys).
    pub fn request_count(&self, endpoint: &str) -> usize {
        self.lock().requests.get(endpoint).copied().unwrap_or(0)
    }

    /// Reads of PBX data: GETs other than the login template.
    pub fn read_count(&self) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|(k, _)| k.starts_with("GET ") && k.as_str() != "GET /rest/login")
            .map(|(_, n)| n)
            .sum()
    }

    pub fn logins(&self) -> usize {
        self.lock().logins
    }

    pub fn logouts(&self) -> usize {
        self.lock().logouts
    }

    /// Tokens currently valid.
    pub fn active_tokens(&self) -> usize {
        self.lock().tokens.len()
    }

    /// Forgets recorded writes, chat calls and request counts (not the data).
    pub fn reset_records(&self) -> &Self {
        let mut s = self.lock();
        s.writes.clear();
        s.requests.clear();
        s.chat_calls.clear();
        s.logins = 0;
        s.logouts = 0;
        self
    }

    /// Starts serving on an ephemeral loopback port.
    pub fn start(&self) -> io::Result<Server> {
        self.start_on(0)
    }

    /// Starts serving on a given loopback port, e.g. the port of a server just dropped to
    /// simulate a PBX restart.
    pub fn start_on(&self, port: u16) -> io::Result<Server> {
        let sim = self.clone();
        Server::start_on(&format!("127.0.0.1:{port}"), move |req| sim.handle(req))
    }

    /// Starts serving HTTPS (a self-signed certificate: the product needs
    /// `starface.insecure_tls`, as with the PBX's own) on an ephemeral loopback port.
    pub fn start_tls(&self) -> io::Result<Server> {
        let sim = self.clone();
        Server::start_tls_on("127.0.0.1:0", move |req| sim.handle(req))
    }

    fn handle(&self, req: &HttpRequest) -> HttpReply {
        let mut s = self.lock();
        let key = endpoint_key(&req.method, &req.path);
        *s.requests.entry(key).or_insert(0) += 1;
        let delay = s.delay;
        let mut reply = s.route(req);
        reply.delay = delay;
        reply
    }
}

/// The demo's group members: id, login, e-mail, first and last name. Each has an internal number
/// `2<id>`, an external number `49721123456<id:02>` and two ALWAYS redirects (`ext-<id>` to a
/// mobile number, `int-<id>` to voicemail), both off.
pub const DEMO_PEOPLE: [(i64, &str, &str, &str, &str); 3] = [
    (1, "1001", "alice@example.com", "Alice", "Ander"),
    (2, "1002", "bob@example.com", "Bob", "Berg"),
    (3, "1003", "carol@example.com", "Carol", "Cole"),
];

/// The demo's user outside the group (in "Sales"), without numbers.
pub const DEMO_OUTSIDER: (i64, &str, &str, &str, &str) =
    (4, "1004", "dora@example.com", "Dora", "Dahl");

/// A small PBX for the demo: the default API user, the group `Exchange-Sync` with three users
/// (one external and one internal number each, an "always" redirect on both), and `Sales`.
pub fn demo() -> StarfaceSim {
    let sim = StarfaceSim::new();
    for (id, login, email, first, last) in DEMO_PEOPLE {
        let internal = format!("2{id}");
        let external = format!("49721123456{id:02}");
        sim.user(id, login, email, first, last)
            .number(id, &internal, SimNumberType::Internal)
            .number(id, &external, SimNumberType::External)
            .redirect(
                &format!("ext-{id}"),
                id,
                &format!("+{external}"),
                SimTrigger::Always,
                SimDestination::Phone(format!("0171555010{id}")),
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
    let (id, login, email, first, last) = DEMO_OUTSIDER;
    sim.user(id, login, email, first, last)
        .group(10, "Exchange-Sync", &[1, 2, 3])
        .group(11, "Sales", &[4]);
    sim
}

fn endpoint_key(method: &str, path: &str) -> String {
    let pattern: Vec<&str> = path
        .split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                seg
            }
        })
        .collect();
    let mut pattern = pattern.join("/");
    if let Some(rest) = pattern.strip_prefix("/rest/redirects/") {
        if !rest.is_empty() {
            pattern = "/rest/redirects/{id}".to_string();
        }
    }
    format!("{method} {pattern}")
}

fn error_json(status: u16, message: &str) -> HttpReply {
    HttpReply::json(
        status,
        Json::Obj(vec![("message".into(), Json::Str(message.into()))]).to_text(),
    )
}

fn sha512_hex(text: &str) -> String {
    Sha512::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl State {
    fn route(&mut self, req: &HttpRequest) -> HttpReply {
        if self.down {
            return error_json(503, "STARFACE is starting");
        }
        if self.fail_next > 0 {
            self.fail_next -= 1;
            return error_json(500, "simulated failure");
        }
        if self.fail_paths.contains(&req.path) {
            return error_json(500, "simulated failure on this path");
        }
        if req.path == "/xml-rpc" {
            return self.xml_rpc(req);
        }
        let Some(rest) = req.path.strip_prefix("/rest") else {
            return error_json(404, "not found");
        };
        if req.header("X-Version") != Some("2") {
            return error_json(400, "missing header X-Version: 2");
        }
        let json_type = req
            .header("Content-Type")
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_type {
            return error_json(415, "Content-Type must be application/json");
        }
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        if segments == ["login"] {
            return match req.method.as_str() {
                "GET" => self.login_template(),
                "POST" => self.login(req),
                "DELETE" => self.logout(req),
                _ => error_json(405, "method not allowed"),
            };
        }
        let token_ok = req
            .header("authToken")
            .is_some_and(|t| self.tokens.iter().any(|k| k == t));
        if !token_ok {
            return error_json(401, "authToken missing or invalid");
        }
        let is_write = !matches!(req.method.as_str(), "GET" | "HEAD");
        if is_write {
            self.writes.push(SimWrite {
                method: req.method.clone(),
                path: req.path.clone(),
                query: req.raw_query.clone(),
                body: req.body_text(),
                at: std::time::SystemTime::now(),
            });
        }
        let id = |i: usize| segments.get(i).and_then(|s| s.parse::<i64>().ok());
        match (req.method.as_str(), segments.as_slice()) {
            ("GET", ["users"]) => self.users_json(),
            ("GET", ["groups"]) => self.groups_json(),
            ("GET", ["groups", _]) => match id(1) {
                Some(gid) => self.group_json(gid),
                None => error_json(400, "group id must be an integer"),
            },
            ("GET", ["users", _, "phoneconfig"]) => match id(1) {
                Some(uid) => match self.phone_config(uid) {
                    Some(pc) => HttpReply::json(200, pc.to_text()),
                    None => error_json(404, "no such user"),
                },
                None => error_json(400, "user id must be an integer"),
            },
            ("PUT", ["users", _, "phoneconfig"]) => match id(1) {
                Some(uid) => self.put_phone_config(uid, &req.body),
                None => error_json(400, "user id must be an integer"),
            },
            ("GET", ["phonenumbers"]) => self.numbers_json(req.query_param("assigned")),
            ("GET", ["redirects"]) => match self.on_behalf_of(req) {
                Ok(uid) => self.redirects_json(uid),
                Err(reply) => reply,
            },
            ("PUT", ["redirects", rid]) => match self.on_behalf_of(req) {
                Ok(uid) => self.put_redirect(uid, rid, &req.body),
                Err(reply) => reply,
            },
            _ => error_json(404, "no such endpoint in this fake"),
        }
    }

    /// `actOnBehalfOf` names a user id; without it the API user acts for itself.
    fn on_behalf_of(&self, req: &HttpRequest) -> Result<i64, HttpReply> {
        match req.query_param("actOnBehalfOf") {
            Some(v) => v
                .parse()
                .map_err(|_| error_json(400, "actOnBehalfOf must be a user id")),
            None => Ok(self
                .users
                .iter()
                .find(|u| u.login == self.admin_login)
                .map_or(-1, |u| u.id)),
        }
    }

    /// Adds the unknown fields to an object when that knob is on.
    fn extras(&self, mut members: Vec<(String, Json)>) -> Json {
        if self.extra_fields {
            members.extend(extra_members());
        }
        Json::Obj(members)
    }

    fn login_template(&mut self) -> HttpReply {
        self.next_id += 1;
        let nonce = sha512_hex(&format!("nonce-{}", self.next_id))[..32].to_string();
        self.nonces.push(nonce.clone());
        let login_type = self.login_type.unwrap_or(SimLoginType::Internal).name();
        let body = self.extras(vec![
            ("loginType".into(), Json::Str(login_type.into())),
            ("nonce".into(), Json::Str(nonce)),
            ("secret".into(), Json::Null),
        ]);
        HttpReply::json(200, body.to_text())
    }

    fn login(&mut self, req: &HttpRequest) -> HttpReply {
        let rejected = || HttpReply::json(400, r#"{"token":""}"#);
        let Ok(body) = Json::parse(&req.body_text()) else {
            return error_json(400, "the body is not JSON");
        };
        let (Some(login_type), Some(nonce)) = (
            body.get("loginType").and_then(Json::as_str),
            body.get("nonce").and_then(Json::as_str),
        ) else {
            return error_json(400, "loginType and nonce are required");
        };
        let Some(secret) = body.get("secret").and_then(Json::as_str) else {
            return rejected();
        };
        // Nonces are single-use.
        let Some(pos) = self.nonces.iter().position(|n| n == nonce) else {
            return rejected();
        };
        self.nonces.remove(pos);
        let configured = self.login_type.unwrap_or(SimLoginType::Internal);
        if login_type != configured.name() {
            return rejected();
        }
        let (login, password) = (&self.admin_login, &self.admin_password);
        let expected = match configured {
            SimLoginType::Internal => format!(
                "{login}:{}",
                sha512_hex(&format!("{login}{nonce}{}", sha512_hex(password)))
            ),
            SimLoginType::ActiveDirectory => base64::engine::general_purpose::STANDARD
                .encode(format!("{login}{nonce}{password}")),
        };
        if secret != expected {
            return rejected();
        }
        self.next_id += 1;
        let token = sha512_hex(&format!("token-{}-{nonce}", self.next_id));
        self.tokens.push(token.clone());
        self.logins += 1;
        HttpReply::json(
            200,
            Json::Obj(vec![("token".into(), Json::Str(token))]).to_text(),
        )
    }

    fn logout(&mut self, req: &HttpRequest) -> HttpReply {
        let token = req.header("authToken").unwrap_or("");
        match self.tokens.iter().position(|t| t == token) {
            Some(pos) => {
                self.tokens.remove(pos);
                self.logouts += 1;
                HttpReply::empty(204)
            }
            None => error_json(401, "authToken missing or invalid"),
        }
    }

    fn users_json(&self) -> HttpReply {
        let items = self
            .users
            .iter()
            .map(|u| {
                self.extras(vec![
                    ("id".into(), Json::int(u.id)),
                    ("login".into(), Json::Str(u.login.clone())),
                    ("email".into(), Json::Str(u.email.clone())),
                    ("firstName".into(), Json::Str(u.first.clone())),
                    ("familyName".into(), Json::Str(u.last.clone())),
                    ("language".into(), Json::Str("de".into())),
                    ("namespace".into(), Json::Str("local".into())),
                    ("personId".into(), Json::Str(format!("p{}", u.id))),
                    ("missedCallReport".into(), Json::Bool(false)),
                    ("faxHeader".into(), Json::Str(String::new())),
                ])
            })
            .collect();
        HttpReply::json(200, Json::Arr(items).to_text())
    }

    fn groups_json(&self) -> HttpReply {
        let items = self
            .groups
            .iter()
            .map(|g| {
                let number = |kind| {
                    self.numbers
                        .iter()
                        .find(|n| n.group == Some(g.id) && n.kind == kind)
                        .map_or(String::new(), |n| n.number.clone())
                };
                self.extras(vec![
                    ("id".into(), Json::int(g.id)),
                    ("groupname".into(), Json::Str(g.name.clone())),
                    ("groupinternalnumber".into(), Json::Str(number("INTERNAL"))),
                    ("groupexternalnumber".into(), Json::Str(number("EXTERNAL"))),
                ])
            })
            .collect();
        HttpReply::json(200, Json::Arr(items).to_text())
    }

    fn group_json(&self, gid: i64) -> HttpReply {
        let Some(g) = self.groups.iter().find(|g| g.id == gid) else {
            return error_json(404, "no such group");
        };
        let users = self
            .users
            .iter()
            .map(|u| {
                self.extras(vec![
                    ("assigned".into(), Json::Bool(g.members.contains(&u.id))),
                    ("firstname".into(), Json::Str(u.first.clone())),
                    ("id".into(), Json::int(u.id)),
                    ("lastname".into(), Json::Str(u.last.clone())),
                ])
            })
            .collect();
        let body = self.extras(vec![
            ("assignableNumbers".into(), Json::Arr(vec![])),
            ("assignableUsers".into(), Json::Arr(users)),
            ("chatGroup".into(), Json::Bool(false)),
            ("groupId".into(), Json::Str(format!("g{}", g.id))),
            ("id".into(), Json::int(g.id)),
            ("name".into(), Json::Str(g.name.clone())),
            ("voicemail".into(), Json::Bool(false)),
        ]);
        HttpReply::json(200, body.to_text())
    }

    fn phone_config(&self, uid: i64) -> Option<Json> {
        let u = self.users.iter().find(|u| u.id == uid)?;
        Some(self.extras(vec![
            ("callWaiting".into(), Json::Bool(u.call_waiting)),
            ("displayNumberId".into(), Json::int(uid * 10)),
            ("doNotDisturb".into(), Json::Bool(u.dnd)),
            ("primaryPhoneId".into(), Json::int(uid * 10 + 1)),
        ]))
    }

    fn put_phone_config(&mut self, uid: i64, body: &[u8]) -> HttpReply {
        let Some(served) = self.phone_config(uid) else {
            return error_json(404, "no such user");
        };
        let body = match parse_body(body) {
            Ok(b) => b,
            Err(reply) => return reply,
        };
        if let Err(msg) = same_shape(&served, &body, &["callWaiting", "doNotDisturb"]) {
            return error_json(400, &format!("phoneConfig: {msg}"));
        }
        let (Some(dnd), Some(cw)) = (
            body.get("doNotDisturb").and_then(Json::as_bool),
            body.get("callWaiting").and_then(Json::as_bool),
        ) else {
            return error_json(
                400,
                "phoneConfig: doNotDisturb and callWaiting must be booleans",
            );
        };
        if let Some(u) = self.users.iter_mut().find(|u| u.id == uid) {
            u.dnd = dnd;
            u.call_waiting = cw;
        }
        HttpReply::empty(204)
    }

    fn numbers_json(&self, assigned: Option<&str>) -> HttpReply {
        let items = self
            .numbers
            .iter()
            .filter(|n| match assigned {
                Some("true") => n.user.is_some() || n.group.is_some(),
                Some("false") => n.user.is_none() && n.group.is_none(),
                _ => true,
            })
            .map(|n| {
                let opt = |v: Option<i64>| v.map_or(Json::Null, Json::int);
                self.extras(vec![
                    ("assignedGroupAccountId".into(), opt(n.group)),
                    ("assignedModuleInstanceId".into(), Json::Null),
                    ("assignedServiceId".into(), Json::Null),
                    ("assignedUserAccountId".into(), opt(n.user)),
                    ("exitCode".into(), Json::Str("00".into())),
                    ("id".into(), Json::int(n.id)),
                    ("localPrefix".into(), Json::Str("721".into())),
                    ("nationalPrefix".into(), Json::Str("0".into())),
                    ("number".into(), Json::Str(n.number.clone())),
                    ("numberBlockId".into(), Json::int(1)),
                    ("type".into(), Json::Str(n.kind.into())),
                ])
            })
            .collect();
        HttpReply::json(200, Json::Arr(items).to_text())
    }

    fn redirect_json(&self, r: &Redirect) -> Json {
        let destination = match &r.destination {
            SimDestination::Phone(p) => self.extras(vec![
                (
                    "redirectDestinationType".into(),
                    Json::Str("PHONENUMBER".into()),
                ),
                ("phoneNumber".into(), Json::Str(p.clone())),
            ]),
            SimDestination::Mailbox(m) => self.extras(vec![
                (
                    "redirectDestinationType".into(),
                    Json::Str("MAILBOX".into()),
                ),
                ("mailboxId".into(), Json::Str(m.clone())),
            ]),
        };
        self.extras(vec![
            ("enabled".into(), Json::Bool(r.enabled)),
            ("groupNumber".into(), Json::Bool(r.group_number)),
            ("id".into(), Json::Str(r.id.clone())),
            (
                "lastMailboxDestination".into(),
                self.extras(vec![
                    ("mailboxId".into(), Json::Str("vm-last".into())),
                    (
                        "redirectDestinationType".into(),
                        Json::Str("MAILBOX".into()),
                    ),
                ]),
            ),
            (
                "lastPhoneNumberDestination".into(),
                self.extras(vec![
                    ("phoneNumber".into(), Json::Str("0800123".into())),
                    (
                        "redirectDestinationType".into(),
                        Json::Str("PHONENUMBER".into()),
                    ),
                ]),
            ),
            ("phoneNumber".into(), Json::Str(r.number.clone())),
            ("redirectDestination".into(), destination),
            (
                "redirectTrigger".into(),
                self.extras(vec![(
                    "redirectTriggerType".into(),
                    Json::Str(r.trigger.name().into()),
                )]),
            ),
        ])
    }

    fn redirects_json(&self, uid: i64) -> HttpReply {
        let items = self
            .redirects
            .iter()
            .filter(|r| r.user == uid)
            .map(|r| self.redirect_json(r))
            .collect();
        HttpReply::json(200, Json::Arr(items).to_text())
    }

    fn put_redirect(&mut self, uid: i64, rid: &str, body: &[u8]) -> HttpReply {
        let Some(current) = self.redirects.iter().find(|r| r.id == rid && r.user == uid) else {
            return error_json(
                404,
                "Not Found. A Redirection with the given id was not found",
            );
        };
        let served = self.redirect_json(current);
        let body = match parse_body(body) {
            Ok(b) => b,
            Err(reply) => return reply,
        };
        for required in ["enabled", "id", "redirectDestination", "redirectTrigger"] {
            if body.get(required).is_none() {
                return error_json(400, &format!("Redirection: {required} is required"));
            }
        }
        if body.get("id").and_then(Json::as_str) != Some(rid) {
            return error_json(400, "Redirection: id differs from the path");
        }
        if let Err(msg) = same_shape(&served, &body, &["enabled"]) {
            return error_json(400, &format!("Redirection: {msg}"));
        }
        let Some(enabled) = body.get("enabled").and_then(Json::as_bool) else {
            return error_json(400, "Redirection: enabled must be a boolean");
        };
        if let Some(r) = self
            .redirects
            .iter_mut()
            .find(|r| r.id == rid && r.user == uid)
        {
            r.enabled = enabled;
        }
        HttpReply::empty(204)
    }

    fn xml_rpc(&mut self, req: &HttpRequest) -> HttpReply {
        if req.method != "POST" {
            return error_json(405, "XML-RPC takes POST");
        }
        let expected = format!(
            "{}:{}",
            self.admin_login,
            sha512_hex(&format!(
                "{}*{}",
                self.admin_login,
                sha512_hex(&self.admin_password)
            ))
        );
        if req.query_param("de.vertico.starface.auth") != Some(expected.as_str()) {
            return xml_fault(401, "authentication failed");
        }
        let call = match parse_method_call(&req.body_text()) {
            Ok(call) => call,
            Err(msg) => return xml_fault(-32700, &msg),
        };
        if call.method != self.rpc_method {
            return xml_fault(
                -32601,
                &format!("method '{}' is not published", call.method),
            );
        }
        const PRESENCES: [&str; 7] = [
            "",
            "AVAILABLE",
            "AWAY",
            "DO_NOT_DISTURB",
            "EXTENDED_AWAY",
            "FREE_FOR_CHAT",
            "UNAVAILABLE",
        ];
        if !PRESENCES.contains(&call.presence.as_str()) {
            return xml_fault(2, &format!("unknown Chatpresence '{}'", call.presence));
        }
        if !self.users.iter().any(|u| u.id == call.account_id) {
            return xml_fault(3, &format!("no user with AccountID {}", call.account_id));
        }
        let entry = self
            .chat
            .entry(call.account_id)
            .or_insert_with(|| ("AVAILABLE".to_string(), String::new()));
        if !call.presence.is_empty() {
            entry.0 = call.presence.clone();
        }
        if call.change_text {
            entry.1 = call.text.clone();
        }
        self.chat_calls.push(call);
        HttpReply::xml(
            200,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>",
        )
    }
}

fn parse_body(body: &[u8]) -> Result<Json, HttpReply> {
    let text = std::str::from_utf8(body).map_err(|_| error_json(400, "the body is not UTF-8"))?;
    Json::parse(text).map_err(|e| error_json(400, &format!("the body is not JSON: {e}")))
}

/// The written object must carry every member that was served, with the same value except the
/// writable ones. (The real PBX would reset omitted members to defaults, which is the bug this
/// guards against.)
fn same_shape(served: &Json, written: &Json, writable: &[&str]) -> Result<(), String> {
    let (Json::Obj(served), Json::Obj(_)) = (served, written) else {
        return Err("expected an object".to_string());
    };
    for (key, value) in served {
        match written.get(key) {
            None => return Err(format!("member '{key}' is missing")),
            Some(w) if !writable.contains(&key.as_str()) && w != value => {
                return Err(format!("member '{key}' was changed"))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The unknown fields served with the extra-fields knob on.
fn extra_members() -> Vec<(String, Json)> {
    vec![
        ("simFutureFlag".into(), Json::Bool(true)),
        (
            "simFutureObject".into(),
            Json::Obj(vec![
                (
                    "nested".into(),
                    Json::Arr(vec![
                        Json::Num("1".into()),
                        Json::Str("zwei \"2\" ä".into()),
                        Json::Null,
                    ]),
                ),
                ("ratio".into(), Json::Num("1.50e2".into())),
            ]),
        ),
    ]
}

fn xml_fault(code: i64, message: &str) -> HttpReply {
    HttpReply::xml(
        200,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><methodResponse><fault><value><struct>\
             <member><name>faultCode</name><value><int>{code}</int></value></member>\
             <member><name>faultString</name><value><string>{}</string></value></member>\
             </struct></value></fault></methodResponse>",
            xml_escape(message)
        ),
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn xml_unescape(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find(';').ok_or("unterminated reference")?;
        let name = &after[..end];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => name
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32)
                .ok_or_else(|| format!("unknown reference &{name};"))?,
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads a `methodCall` with one struct parameter holding the chat entry point's four members,
/// checking each member's XML-RPC type.
fn parse_method_call(text: &str) -> Result<SimChatCall, String> {
    use xmlparser::{ElementEnd, Token, Tokenizer};
    let mut stack: Vec<String> = Vec::new();
    let mut pending = String::new();
    let mut method = String::new();
    let mut params = 0;
    let mut member_name = String::new();
    let mut member_type = String::new();
    let mut member_text = String::new();
    let mut members: HashMap<String, (String, String)> = HashMap::new();
    for token in Tokenizer::from(text) {
        let token = token.map_err(|e| format!("not well-formed: {e}"))?;
        match token {
            Token::ElementStart { local, .. } => pending = local.as_str().to_string(),
            Token::ElementEnd { end, .. } => match end {
                ElementEnd::Open => {
                    let name = std::mem::take(&mut pending);
                    match name.as_str() {
                        "param" => params += 1,
                        "member" => {
                            member_name.clear();
                            member_type.clear();
                            member_text.clear();
                        }
                        "int" | "i4" | "string" | "boolean" | "double" | "base64"
                            if stack.last().map(String::as_str) == Some("value") =>
                        {
                            member_type = name.clone();
                        }
                        _ => {}
                    }
                    stack.push(name);
                }
                ElementEnd::Empty => {
                    if pending == "string" {
                        member_type = "string".into();
                    }
                    pending.clear();
                }
                ElementEnd::Close(_, local) => {
                    if stack.pop().as_deref() != Some(local.as_str()) {
                        return Err("not well-formed: mismatched end tag".into());
                    }
                    if local.as_str() == "member" {
                        let kind = if member_type.is_empty() {
                            "string".to_string()
                        } else {
                            member_type.clone()
                        };
                        members.insert(member_name.clone(), (kind, member_text.clone()));
                    }
                }
            },
            Token::Text { text } => {
                let decoded = xml_unescape(text.as_str())?;
                match stack.last().map(String::as_str) {
                    Some("methodName") => method.push_str(&decoded),
                    Some("name") => member_name.push_str(&decoded),
                    Some("int" | "i4" | "string" | "boolean" | "value") => {
                        member_text.push_str(&decoded)
                    }
                    _ => {}
                }
            }
            Token::Cdata { text, .. } => member_text.push_str(text.as_str()),
            _ => {}
        }
    }
    if params != 1 {
        return Err(format!("expected one parameter, got {params}"));
    }
    let get = |name: &str, kind: &[&str]| -> Result<String, String> {
        match members.get(name) {
            Some((k, v)) if kind.contains(&k.as_str()) => Ok(v.clone()),
            Some((k, _)) => Err(format!("member {name} has type {k}")),
            None => Err(format!("member {name} is missing")),
        }
    };
    let account_id = get("AccountID", &["int", "i4"])?
        .trim()
        .parse()
        .map_err(|_| "AccountID is not an integer".to_string())?;
    let change_text = match get("ChangeText", &["boolean"])?.trim() {
        "1" => true,
        "0" => false,
        other => return Err(format!("ChangeText '{other}' is not 0 or 1")),
    };
    Ok(SimChatCall {
        method: method.trim().to_string(),
        account_id,
        presence: get("Chatpresence", &["string"])?,
        change_text,
        text: get("ChatPresenceText", &["string"])?,
    })
}

/// The sim's own small JSON: enough to serve objects and to check what comes back.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn int(n: i64) -> Json {
        Json::Num(n.to_string())
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn to_text(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => b.to_string(),
            Json::Num(n) => n.clone(),
            Json::Str(s) => {
                let mut out = String::from("\"");
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                        c => out.push(c),
                    }
                }
                out.push('"');
                out
            }
            Json::Arr(items) => {
                let inner: Vec<String> = items.iter().map(Json::to_text).collect();
                format!("[{}]", inner.join(","))
            }
            Json::Obj(members) => {
                let inner: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{}:{}", Json::Str(k.clone()).to_text(), v.to_text()))
                    .collect();
                format!("{{{}}}", inner.join(","))
            }
        }
    }

    fn parse(text: &str) -> Result<Json, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let value = parse_value(&chars, &mut pos, 0)?;
        skip_ws(&chars, &mut pos);
        if pos != chars.len() {
            return Err(format!("trailing text at {pos}"));
        }
        Ok(value)
    }
}

fn skip_ws(c: &[char], pos: &mut usize) {
    while c.get(*pos).is_some_and(|c| c.is_ascii_whitespace()) {
        *pos += 1;
    }
}

fn parse_value(c: &[char], pos: &mut usize, depth: usize) -> Result<Json, String> {
    if depth > 64 {
        return Err("too deep".into());
    }
    skip_ws(c, pos);
    let rest: String = c.iter().skip(*pos).take(5).collect();
    match c.get(*pos) {
        Some('n') if rest.starts_with("null") => {
            *pos += 4;
            Ok(Json::Null)
        }
        Some('t') if rest.starts_with("true") => {
            *pos += 4;
            Ok(Json::Bool(true))
        }
        Some('f') if rest.starts_with("false") => {
            *pos += 5;
            Ok(Json::Bool(false))
        }
        Some('"') => parse_string(c, pos).map(Json::Str),
        Some('[') => {
            *pos += 1;
            let mut items = Vec::new();
            skip_ws(c, pos);
            if c.get(*pos) == Some(&']') {
                *pos += 1;
                return Ok(Json::Arr(items));
            }
            loop {
                items.push(parse_value(c, pos, depth + 1)?);
                skip_ws(c, pos);
                match c.get(*pos) {
                    Some(',') => *pos += 1,
                    Some(']') => {
                        *pos += 1;
                        return Ok(Json::Arr(items));
                    }
                    _ => return Err(format!("expected , or ] at {pos}")),
                }
            }
        }
        Some('{') => {
            *pos += 1;
            let mut members = Vec::new();
            skip_ws(c, pos);
            if c.get(*pos) == Some(&'}') {
                *pos += 1;
                return Ok(Json::Obj(members));
            }
            loop {
                skip_ws(c, pos);
                if c.get(*pos) != Some(&'"') {
                    return Err(format!("expected a member name at {pos}"));
                }
                let key = parse_string(c, pos)?;
                skip_ws(c, pos);
                if c.get(*pos) != Some(&':') {
                    return Err(format!("expected : at {pos}"));
                }
                *pos += 1;
                let value = parse_value(c, pos, depth + 1)?;
                members.push((key, value));
                skip_ws(c, pos);
                match c.get(*pos) {
                    Some(',') => *pos += 1,
                    Some('}') => {
                        *pos += 1;
                        return Ok(Json::Obj(members));
                    }
                    _ => return Err(format!("expected , or }} at {pos}")),
                }
            }
        }
        Some(ch) if *ch == '-' || ch.is_ascii_digit() => {
            let start = *pos;
            while c
                .get(*pos)
                .is_some_and(|ch| ch.is_ascii_digit() || "+-.eE".contains(*ch))
            {
                *pos += 1;
            }
            let text: String = c[start..*pos].iter().collect();
            if text.parse::<f64>().is_err() {
                return Err(format!("bad number at {start}"));
            }
            Ok(Json::Num(text))
        }
        _ => Err(format!("unexpected character at {pos}")),
    }
}

fn parse_string(c: &[char], pos: &mut usize) -> Result<String, String> {
    *pos += 1;
    let mut out = String::new();
    loop {
        match c.get(*pos) {
            None => return Err("unterminated string".into()),
            Some('"') => {
                *pos += 1;
                return Ok(out);
            }
            Some('\\') => {
                *pos += 1;
                let esc = c.get(*pos).ok_or("unterminated escape")?;
                *pos += 1;
                match esc {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let hex: String = c.iter().skip(*pos).take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|_| "bad \\u escape")?;
                        *pos += 4;
                        let code = if (0xD800..0xDC00).contains(&code) {
                            let low: String = c.iter().skip(*pos + 2).take(4).collect();
                            let low = u32::from_str_radix(&low, 16).map_err(|_| "bad surrogate")?;
                            *pos += 6;
                            0x10000 + ((code - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3ff)
                        } else {
                            code
                        };
                        out.push(char::from_u32(code).ok_or("bad \\u escape")?);
                    }
                    _ => return Err("unknown escape".into()),
                }
            }
            Some(ch) if (*ch as u32) < 0x20 => return Err("control character in string".into()),
            Some(ch) => {
                out.push(*ch);
                *pos += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let text = r#"{"a":[1,-2.5e3,true,false,null],"b":"x\"y\\ä😀","c":{}}"#;
        assert_eq!(Json::parse(text).unwrap().to_text(), text);
        assert_eq!(
            Json::parse(r#""\u00e4\ud83d\ude00""#).unwrap(),
            Json::Str("ä😀".into())
        );
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"abc", "tru", "1x"] {
            assert!(Json::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn demo_data_is_consistent() {
        let sim = demo();
        let s = sim.lock();
        assert_eq!(s.users.len(), 4);
        assert_eq!(s.redirects.len(), 6);
        for r in &s.redirects {
            assert!(s.users.iter().any(|u| u.id == r.user), "{}", r.id);
        }
        for g in &s.groups {
            assert!(g.members.iter().all(|m| s.users.iter().any(|u| u.id == *m)));
        }
    }

    #[test]
    fn endpoint_keys() {
        let cases = [
            ("GET", "/rest/users", "GET /rest/users"),
            (
                "GET",
                "/rest/users/12/phoneconfig",
                "GET /rest/users/{id}/phoneconfig",
            ),
            ("PUT", "/rest/redirects/abc-1", "PUT /rest/redirects/{id}"),
            ("GET", "/rest/groups/3", "GET /rest/groups/{id}"),
            ("POST", "/xml-rpc", "POST /xml-rpc"),
        ];
        for (method, path, expect) in cases {
            assert_eq!(endpoint_key(method, path), expect);
        }
    }

    #[test]
    fn method_call_parsing() {
        let call = "<?xml version='1.0'?><methodCall><methodName>m.x</methodName><params><param><value><struct>\
            <member><name>AccountID</name><value><i4>7</i4></value></member>\
            <member><name>Chatpresence</name><value><string>AWAY</string></value></member>\
            <member><name>ChangeText</name><value><boolean>1</boolean></value></member>\
            <member><name>ChatPresenceText</name><value>a &lt;b&gt; &amp; &#228;</value></member>\
            </struct></value></param></params></methodCall>";
        assert_eq!(
            parse_method_call(call).unwrap(),
            SimChatCall {
                method: "m.x".into(),
                account_id: 7,
                presence: "AWAY".into(),
                change_text: true,
                text: "a <b> & ä".into(),
            }
        );
        let wrong_type = call.replace("<i4>7</i4>", "<string>7</string>");
        assert_eq!(
            parse_method_call(&wrong_type).unwrap_err(),
            "member AccountID has type string"
        );
        let empty_string = call.replace("<string>AWAY</string>", "<string/>");
        assert_eq!(parse_method_call(&empty_string).unwrap().presence, "");
    }
}
