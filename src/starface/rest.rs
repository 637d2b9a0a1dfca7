//! The STARFACE session: login, the REST calls the daemon needs, the chat call, logout.
//!
//! This is the thin transport around the pure parts (`objects`, `numbers`, `xmlrpc`, `auth`):
//! it sends, checks the status the Swagger file documents, and hands the body to a parser.
//! The token is renewed before its 4-hour lifetime ends and once when the PBX answers 401.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::{ChatConfig, LoginType, Secret, StarfaceConfig};
use crate::http::{redact_url, HttpClient, Request, Response};
use crate::model::{on_off, Presence};
use crate::{percent, secrets};

use super::auth;
use super::error::StarfaceError;
use super::numbers::{NumberIndex, UserId};
use super::objects::{self, Directory, Forwarding, GroupLookup, PhoneConfig};
use super::xmlrpc::{self, ChatCall};
use crate::json::{self, Value};

/// STARFACE tokens live 4 hours; renewing 10 minutes early avoids a 401 in the middle of a poll.
pub const TOKEN_MAX_AGE: Duration = Duration::from_secs(3 * 3600 + 50 * 60);

/// How much of an unexpected error body goes into a message.
const DETAIL_CHARS: usize = 200;

struct Token {
    value: String,
    obtained: Instant,
}

/// A session with one PBX. Not `Debug` on purpose beyond a redacted form: it holds the password
/// and the token.
pub struct Starface {
    base: String,
    login: String,
    password: Secret,
    login_type: LoginType,
    rpc_method: String,
    http: HttpClient,
    token: Option<Token>,
    token_max_age: Duration,
}

impl fmt::Debug for Starface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Starface")
            .field("url", &self.base)
            .field("login", &self.login)
            .field("logged_in", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

/// What a REST call is, for messages.
struct Call<'a> {
    action: String,
    method: &'static str,
    path: &'a str,
    body: Option<String>,
}

impl Starface {
    /// Prepares a session; does no I/O.
    pub fn new(cfg: &StarfaceConfig, http: HttpClient) -> Starface {
        secrets::register(cfg.password.expose());
        Starface {
            base: cfg.url.trim_end_matches('/').to_string(),
            login: cfg.login.clone(),
            password: cfg.password.clone(),
            login_type: cfg.login_type,
            rpc_method: ChatConfig::default().rpc_method,
            http,
            token: None,
            token_max_age: TOKEN_MAX_AGE,
        }
    }

    /// The XML-RPC method `set_chat` calls (`[chat] rpc_method`).
    pub fn with_rpc_method(mut self, method: &str) -> Starface {
        self.rpc_method = method.to_string();
        self
    }

    /// Renew the token after this age instead of `TOKEN_MAX_AGE` (tests).
    pub fn with_token_max_age(mut self, age: Duration) -> Starface {
        self.token_max_age = age;
        self
    }

    pub fn is_logged_in(&self) -> bool {
        self.token.is_some()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/rest{path}", self.base)
    }

    fn request(&self, method: &'static str, url: &str, body: Option<&str>) -> Request {
        let mut req = Request::new(method, url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("X-Version", "2");
        if let Some(token) = &self.token {
            req = req.header("authToken", token.value.clone());
        }
        if let Some(body) = body {
            req = req.body(body.as_bytes().to_vec());
        }
        req
    }

    fn send(&self, action: &str, req: &Request) -> Result<Response, StarfaceError> {
        let resp = self.http.send(req).map_err(|source| StarfaceError::Http {
            action: action.to_string(),
            source,
        })?;
        // The API never redirects; a redirect is the PBX sending http:// to https:// (or a
        // proxy elsewhere), and the message names the URL to configure.
        if let Some(hint) = resp.redirect_hint("starface.url", &self.base) {
            return Err(StarfaceError::Status {
                action: action.to_string(),
                url: resp.url.clone(),
                status: resp.status,
                detail: hint,
            });
        }
        Ok(resp)
    }

    /// Logs in: `GET /rest/login` for the nonce, `POST /rest/login` with the secret.
    pub fn login(&mut self) -> Result<(), StarfaceError> {
        self.token = None;
        let url = self.url("/login");
        let shown = redact_url(&url);
        let action = "reading the login template";
        let resp = self.send(action, &self.request("GET", &url, None))?;
        expect_status(&resp, &[200], action, &shown)?;
        let template = parse_json(&self.http, &resp, action, &shown)?;
        let type_name = auth::login_type_name(self.login_type);
        let bad = |detail: String| StarfaceError::BadResponse {
            action: action.to_string(),
            url: shown.clone(),
            detail,
        };
        let nonce = objects::login_nonce(&template).map_err(bad)?;
        let secret =
            auth::login_secret(self.login_type, &self.login, nonce, self.password.expose());
        secrets::register_rotating(&secret);
        let body = objects::login_request(&template, type_name, &secret).map_err(bad)?;
        let action = "logging in";
        let resp = self.send(action, &self.request("POST", &url, Some(&body.to_json())))?;
        match resp.status {
            200 => {}
            400 | 401 | 403 => {
                return Err(StarfaceError::LoginRejected {
                    url: shown,
                    login: self.login.clone(),
                    login_type: type_name,
                    status: resp.status,
                })
            }
            // The body of a failed login is not shown: it is the answer to a secret.
            status => {
                return Err(StarfaceError::Status {
                    action: action.to_string(),
                    url: shown,
                    status,
                    detail: String::new(),
                })
            }
        }
        let answer = parse_json(&self.http, &resp, action, &shown)?;
        let token = objects::auth_token(&answer).map_err(|detail| StarfaceError::BadResponse {
            action: action.to_string(),
            url: shown.clone(),
            detail,
        })?;
        secrets::register_rotating(&token);
        self.token = Some(Token {
            value: token,
            obtained: Instant::now(),
        });
        Ok(())
    }

    /// Logs out (`DELETE /rest/login`); nothing to do when not logged in. The token is dropped
    /// even when the PBX cannot be reached, since it expires on its own.
    pub fn logout(&mut self) -> Result<(), StarfaceError> {
        if self.token.is_none() {
            return Ok(());
        }
        let url = self.url("/login");
        let shown = redact_url(&url);
        let action = "logging out";
        let req = self.request("DELETE", &url, None);
        self.token = None;
        let resp = self.send(action, &req)?;
        // 401: the token had already expired, which is as good as logged out.
        expect_status(&resp, &[200, 204, 401], action, &shown)?;
        Ok(())
    }

    fn ensure_login(&mut self) -> Result<(), StarfaceError> {
        let fresh = self
            .token
            .as_ref()
            .is_some_and(|t| t.obtained.elapsed() < self.token_max_age);
        if !fresh {
            if self.token.is_some() {
                // Renewal by age: end the old session first (best effort), so that a daemon
                // running for weeks leaves no trail of open sessions on the PBX.
                if let Err(e) = self.logout() {
                    log::debug!("ending the old STARFACE session before renewal: {e}");
                }
            }
            self.login()?;
        }
        Ok(())
    }

    /// Sends a REST call with a valid token; on 401 logs in again and retries once.
    fn call(&mut self, call: &Call<'_>, ok: &[u16]) -> Result<Response, StarfaceError> {
        self.ensure_login()?;
        let url = self.url(call.path);
        let shown = redact_url(&url);
        let mut resp = self.send(
            &call.action,
            &self.request(call.method, &url, call.body.as_deref()),
        )?;
        if resp.status == 401 {
            log::debug!(
                "STARFACE answered 401 to {} {shown}; logging in again",
                call.method
            );
            self.login()?;
            resp = self.send(
                &call.action,
                &self.request(call.method, &url, call.body.as_deref()),
            )?;
            if resp.status == 401 {
                self.token = None;
                return Err(StarfaceError::Unauthorized {
                    action: call.action.clone(),
                    url: shown,
                });
            }
        }
        expect_status(&resp, ok, &call.action, &shown)?;
        Ok(resp)
    }

    /// A GET that must answer 200: the answer, the action and the URL as messages show it.
    fn get(
        &mut self,
        action: String,
        path: &str,
    ) -> Result<(Response, String, String), StarfaceError> {
        let call = Call {
            action,
            method: "GET",
            path,
            body: None,
        };
        let resp = self.call(&call, &[200])?;
        Ok((resp, call.action, redact_url(&self.url(path))))
    }

    /// A GET whose 200 answer is JSON, handed to `read` as a reader over the text (the
    /// answers are read value by value, without a tree). A stop of the daemon ends the read at
    /// once, as in `parse_json`.
    fn get_read<T>(
        &mut self,
        action: String,
        path: &str,
        read: impl FnOnce(json::Parser<'_>) -> Result<T, String>,
    ) -> Result<T, StarfaceError> {
        let (resp, action, url) = self.get(action, path)?;
        let http = &self.http;
        let stopping = || http.stopping();
        std::str::from_utf8(&resp.body)
            .map_err(|e| format!("the body is not UTF-8 (byte {})", e.valid_up_to()))
            .and_then(|text| read(json::Parser::until_stopped(text, &stopping)))
            .map_err(|detail| StarfaceError::BadResponse {
                action,
                url,
                detail,
            })
    }

    /// A PUT of a whole object. The API documents 204 as success; its generated "200:
    /// Unexpected error" entry is the generator's default response, and a 200 to a PUT means
    /// it was applied everywhere else in REST, so both count as success.
    fn put_json(&mut self, action: String, path: &str, body: &Value) -> Result<(), StarfaceError> {
        let call = Call {
            action,
            method: "PUT",
            path,
            body: Some(body.to_json()),
        };
        self.call(&call, &[200, 204])?;
        Ok(())
    }

    /// The members of `group` with their e-mail addresses. Every call returns all current
    /// warnings; the caller logs each once (`sync::Reported`), so that a problem that comes back
    /// after being fixed is reported again.
    pub fn directory(&mut self, group: &str) -> Result<Directory, StarfaceError> {
        let lookup = self.get_read("reading the groups".into(), "/groups", |p| {
            objects::find_group(p, group)
        })?;
        let id = match lookup {
            GroupLookup::Found(id) => id,
            GroupLookup::Missing(available) => {
                return Err(StarfaceError::GroupNotFound {
                    group: group.to_string(),
                    available,
                })
            }
        };
        let members = self.get_read(
            format!("reading the members of group '{group}'"),
            &format!("/groups/{id}"),
            objects::group_members,
        )?;
        // Element by element, like the phone numbers: the daemon reads the directory again while
        // it holds the calendars.
        self.get_read("reading the users".into(), "/users", |p| {
            objects::read_directory(group, &members, p)
        })
    }

    pub fn phone_config(&mut self, user: UserId) -> Result<PhoneConfig, StarfaceError> {
        self.get_read(
            format!("reading the phone settings of user {user}"),
            &format!("/users/{user}/phoneconfig"),
            PhoneConfig::read,
        )
    }

    /// Writes `current` back with `doNotDisturb` set to `on`; no request when it already is.
    pub fn set_dnd(
        &mut self,
        user: UserId,
        current: &PhoneConfig,
        on: bool,
    ) -> Result<(), StarfaceError> {
        if current.dnd == on {
            return Ok(());
        }
        self.put_json(
            format!("switching DND {} for user {user}", on_off(on)),
            &format!("/users/{user}/phoneconfig"),
            &current.with_dnd(on),
        )
    }

    pub fn numbers(&mut self) -> Result<NumberIndex, StarfaceError> {
        // Read element by element: for 2,000 users the list as one JSON tree took ~4.5 MB, the
        // largest allocation of a pass (measured with `ess-sim bench` and massif).
        self.get_read(
            "reading the phone numbers".into(),
            "/phonenumbers?assigned=true",
            NumberIndex::read,
        )
    }

    /// The ALWAYS redirects on the user's own (non-group) numbers, classified; all of them (the
    /// caller filters internal ones by config).
    pub fn forwardings(
        &mut self,
        user: UserId,
        numbers: &NumberIndex,
    ) -> Result<Vec<Forwarding>, StarfaceError> {
        let list = self.get_read(
            format!("reading the redirects of user {user}"),
            &format!("/redirects?actOnBehalfOf={user}"),
            |p| Forwarding::read_list(p, user, numbers),
        )?;
        for f in list.iter().filter(|f| !f.kind_matched) {
            log::debug!(
                "STARFACE user {user}: number {} of redirect {} is not among the user's numbers; treated as {}",
                f.number,
                f.id,
                f.kind.as_str()
            );
        }
        Ok(list)
    }

    /// Writes `current` back with `enabled` set to `on`; no request when it already is. A
    /// redirect without a destination is never switched on.
    pub fn set_forwarding(
        &mut self,
        user: UserId,
        current: &Forwarding,
        on: bool,
    ) -> Result<(), StarfaceError> {
        if current.enabled == on {
            return Ok(());
        }
        if on && current.destination.is_none() {
            return Err(StarfaceError::NoDestination {
                user,
                number: current.number.clone(),
            });
        }
        self.put_json(
            format!(
                "switching forwarding of number {} {} for user {user}",
                current.number,
                on_off(on)
            ),
            &format!(
                "/redirects/{}?actOnBehalfOf={user}",
                percent::segment(&current.id)
            ),
            &current.with_enabled(on),
        )
    }

    /// Sets the chat presence and text through the XML-RPC entry point. `presence` None sends an
    /// empty `Chatpresence`; `text` None sends `ChangeText = false` and an empty text.
    pub fn set_chat(
        &mut self,
        user: UserId,
        presence: Option<Presence>,
        text: Option<&str>,
    ) -> Result<(), StarfaceError> {
        let account_id =
            i32::try_from(user).map_err(|_| StarfaceError::AccountIdOutOfRange { user })?;
        let call = ChatCall {
            account_id,
            presence,
            text,
        };
        let body = xmlrpc::build_call(&self.rpc_method, &call);
        // The ':' stays as it is, as in STARFACE's own examples; the login is encoded in case it
        // holds characters a query cannot.
        let auth = auth::xmlrpc_auth(&self.login, self.password.expose());
        let hash = auth.rsplit_once(':').map_or("", |(_, hash)| hash);
        secrets::register(hash);
        let url = format!(
            "{}/xml-rpc?de.vertico.starface.auth={}:{hash}",
            self.base,
            percent::encode(&self.login)
        );
        let shown = redact_url(&url);
        let action = format!("setting the chat status of user {user}");
        let req = Request::new("POST", url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body.into_bytes());
        let resp = self.send(&action, &req)?;
        expect_status(&resp, &[200], &action, &shown)?;
        let text = resp.text().map_err(|e| StarfaceError::BadResponse {
            action: action.clone(),
            url: shown.clone(),
            detail: e.to_string(),
        })?;
        match xmlrpc::parse_response(text) {
            Ok(None) => Ok(()),
            Ok(Some(fault)) => Err(StarfaceError::RpcFault {
                method: self.rpc_method.clone(),
                user,
                code: fault.code,
                message: secrets::scrub(&fault.message),
            }),
            Err(detail) => Err(StarfaceError::BadResponse {
                action,
                url: shown,
                detail,
            }),
        }
    }
}

/// Checks the status; an unexpected one becomes an error quoting the start of the body, with
/// every known secret (the token, the auth hash) cut out in case the server echoes the request.
fn expect_status(
    resp: &Response,
    ok: &[u16],
    action: &str,
    shown: &str,
) -> Result<(), StarfaceError> {
    if ok.contains(&resp.status) {
        return Ok(());
    }
    Err(StarfaceError::Status {
        action: action.to_string(),
        url: shown.to_string(),
        status: resp.status,
        // Scrub the whole body first: a secret cut in half by the excerpt would no longer
        // match, and its first half would reach the message.
        detail: excerpt(secrets::scrub(&String::from_utf8_lossy(&resp.body)).as_bytes()),
    })
}

/// Parses a JSON answer; a stop of the daemon ends the parse at once (a PBX, or anything on the
/// path, answering with megabytes must not hold up the exit).
fn parse_json(
    http: &HttpClient,
    resp: &Response,
    action: &str,
    shown: &str,
) -> Result<Value, StarfaceError> {
    let bad = |detail: String| StarfaceError::BadResponse {
        action: action.to_string(),
        url: shown.to_string(),
        detail,
    };
    let text = std::str::from_utf8(&resp.body)
        .map_err(|e| bad(format!("the body is not UTF-8 (byte {})", e.valid_up_to())))?;
    json::parse_until_stopped(text, &|| http.stopping()).map_err(|e| bad(e.to_string()))
}

/// The start of an error body on one line, for a message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(DETAIL_CHARS)
        .collect();
    if text.chars().count() > DETAIL_CHARS {
        out.push('…');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A huge login answer (the daemon needed 34.6 s to obey SIGTERM while parsing one) is given
    /// up as soon as the daemon stops; without a stop it is read.
    #[test]
    fn a_stop_ends_the_parse_of_a_huge_answer() {
        let body = format!(
            "{{{}\"token\":\"t\"}}",
            (0..50_000)
                .map(|i| format!("\"k{i}\":0,"))
                .collect::<String>()
        );
        let resp = Response {
            status: 200,
            headers: vec![],
            body: body.into_bytes(),
            url: String::new(),
        };
        let cutoff = crate::http::Cutoff::default();
        let http = HttpClient::new(&crate::http::HttpOptions::default())
            .expect("client")
            .with_cutoff(&cutoff);
        assert!(parse_json(&http, &resp, "logging in", "http://pbx/rest/login").is_ok());
        cutoff.within(Duration::from_secs(3));
        let err = parse_json(&http, &resp, "logging in", "http://pbx/rest/login").unwrap_err();
        assert!(err.to_string().contains("the program is stopping"), "{err}");
    }

    #[test]
    fn secrets_cut_by_the_excerpt_are_still_removed() {
        let body = format!("{}authToken: TOKEN-0123456789abcdef", "x".repeat(180));
        let resp = Response {
            status: 500,
            headers: vec![],
            body: body.into_bytes(),
            url: String::new(),
        };
        secrets::register_rotating("TOKEN-0123456789abcdef");
        let err = expect_status(&resp, &[200], "reading", "http://pbx/rest/groups")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("TOKEN-"), "{err}");
    }

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt(b"  line1\nline2\r\n"), "line1 line2");
        let long = "x".repeat(300);
        assert_eq!(excerpt(long.as_bytes()), format!("{}…", "x".repeat(200)));
        assert_eq!(excerpt(b"\xff ok"), "\u{fffd} ok");
    }
}
