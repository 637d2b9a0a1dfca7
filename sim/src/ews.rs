//! A fake Exchange Web Services endpoint: GetUserAvailability and FindItem over a `Calendars`
//! scenario, answered in Exchange's own style (SOAP envelope with `s:` prefix, a
//! `ServerVersionInfo` header, default-namespace declarations in GetUserAvailability responses
//! and `m:`/`t:` prefixes in FindItem responses, as Exchange 2013–2019 and Exchange Online write
//! them).
//!
//! The fake checks the credentials (Basic or Bearer), records every request, and injects the
//! faults the product must survive: ErrorServerBusy (as an HTTP 500 SOAP fault or inside a 200),
//! other SOAP faults, per-mailbox errors, 503/429 with Retry-After, 401s, malformed, truncated,
//! huge and slowly dripped bodies, hidden details, and subjects written with character
//! references or CDATA.
//!
//! Requests are read with a small tag scanner rather than an XML library: the fake must not share
//! a parser with the product, and it only needs a handful of element texts.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::calendar::{format_utc, parse_utc, Calendars, SimAppointment};
use crate::server::{HttpReply, HttpRequest, Server};

const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const MESSAGES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const TYPES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
const ERRORS_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// The path Exchange serves EWS on.
pub const EWS_PATH: &str = "/EWS/Exchange.asmx";

/// Decides whether a Bearer token is valid (e.g. one the token fake issued and did not revoke).
pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The credentials the fake accepts.
#[derive(Clone)]
pub enum EwsAuth {
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: String },
    /// `Authorization: Bearer <token>` with exactly this token; like Exchange Online, every
    /// request must then carry an `ExchangeImpersonation` header.
    Bearer(String),
    /// `Authorization: Bearer <token>` with any token the check accepts; impersonation as above.
    BearerChecked(TokenCheck),
    /// NTLMv2 on the connection (see `crate::ntlm`) for `username` (`DOMAIN\user` or a UPN);
    /// the 401 offers `Negotiate` and `NTLM`, or with `negotiate_only` just `Negotiate`.
    Ntlm {
        username: String,
        password: String,
        negotiate_only: bool,
    },
}

impl EwsAuth {
    pub fn basic(username: &str, password: &str) -> EwsAuth {
        EwsAuth::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    pub fn ntlm(username: &str, password: &str) -> EwsAuth {
        EwsAuth::Ntlm {
            username: username.to_string(),
            password: password.to_string(),
            negotiate_only: false,
        }
    }

    pub fn ntlm_negotiate_only(username: &str, password: &str) -> EwsAuth {
        EwsAuth::Ntlm {
            username: username.to_string(),
            password: password.to_string(),
            negotiate_only: true,
        }
    }

    pub fn bearer_checked(check: impl Fn(&str) -> bool + Send + Sync + 'static) -> EwsAuth {
        EwsAuth::BearerChecked(Arc::new(check))
    }

    fn is_bearer(&self) -> bool {
        matches!(self, EwsAuth::Bearer(_) | EwsAuth::BearerChecked(_))
    }
}

impl std::fmt::Debug for EwsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EwsAuth::Basic { username, .. } => write!(f, "Basic({username})"),
            EwsAuth::Bearer(_) => f.write_str("Bearer"),
            EwsAuth::BearerChecked(_) => f.write_str("BearerChecked"),
            EwsAuth::Ntlm { username, .. } => write!(f, "Ntlm({username})"),
        }
    }
}

/// How subjects are written, to exercise the product's unescaping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubjectStyle {
    /// Only `&`, `<` and `>` escaped, as Exchange does.
    #[default]
    Plain,
    /// Additionally every non-ASCII character as a decimal character reference (`&#228;`).
    CharRefs,
    /// The subject in a CDATA section.
    Cdata,
}

/// One request as the fake saw it.
#[derive(Clone, Debug, Default)]
pub struct EwsRecord {
    /// `GetUserAvailability`, `FindItem`, or `` when neither was found.
    pub operation: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The SMTP address of the `ExchangeImpersonation` header.
    pub impersonated: Option<String>,
    /// The `X-AnchorMailbox` HTTP header.
    pub anchor: Option<String>,
    /// The mailboxes asked for, in request order.
    pub mailboxes: Vec<String>,
}

impl EwsRecord {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fault that applies to the next `remaining` requests.
#[derive(Clone, Debug)]
struct Countdown<T> {
    /// Requests that pass untouched before the knob applies.
    skip: u32,
    remaining: u32,
    value: T,
}

fn take<T: Clone>(slot: &mut Option<Countdown<T>>) -> Option<T> {
    let c = slot.as_mut()?;
    if c.skip > 0 {
        c.skip -= 1;
        return None;
    }
    if c.remaining == 0 {
        *slot = None;
        return None;
    }
    c.remaining -= 1;
    let value = c.value.clone();
    if c.remaining == 0 {
        *slot = None;
    }
    Some(value)
}

#[derive(Clone, Debug)]
enum BodyFault {
    /// Not well-formed XML, complete HTTP message.
    Malformed,
    /// The XML cut in the middle, complete HTTP message.
    Truncated,
    /// The connection closed in the middle of the announced body.
    CutConnection,
    /// A well-formed response padded to at least this many bytes.
    Huge(usize),
    /// The body sent in small pieces with this pause between them.
    Drip(Duration),
}

#[derive(Debug, Default)]
struct Knobs {
    /// ErrorServerBusy: back-off in ms (`None`: no BackOffMilliseconds), and whether as an HTTP
    /// 500 fault (else inside a 200 response, on every mailbox).
    server_busy: Option<Countdown<(Option<u64>, bool)>>,
    /// A SOAP fault with this code (HTTP 500).
    fault: Option<Countdown<String>>,
    /// This HTTP status (503, 429) with an optional Retry-After in seconds.
    unavailable: Option<Countdown<(u16, Option<u64>)>>,
    /// 401 whatever the credentials.
    reject_auth: Option<Countdown<()>>,
    body_fault: Option<Countdown<BodyFault>>,
    mailbox_errors: HashMap<String, String>,
    hide_details: bool,
    subject_style: SubjectStyle,
    deny_impersonation: bool,
}

#[derive(Debug)]
struct Inner {
    calendars: Calendars,
    auth: Mutex<EwsAuth>,
    ntlm: crate::ntlm::Connections,
    knobs: Mutex<Knobs>,
    log: Mutex<Vec<EwsRecord>>,
}

/// The fake. Cloning shares its state, so a test keeps one clone to turn knobs and read the
/// record while the server runs another.
#[derive(Clone, Debug)]
pub struct EwsFake {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not take every later request down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EwsFake {
    pub fn new(calendars: Calendars, auth: EwsAuth) -> EwsFake {
        EwsFake {
            inner: Arc::new(Inner {
                calendars,
                auth: Mutex::new(auth),
                ntlm: crate::ntlm::Connections::default(),
                knobs: Mutex::new(Knobs::default()),
                log: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Serves the fake on a loopback port; the EWS URL is `server.url() + EWS_PATH`.
    pub fn serve(&self) -> io::Result<Server> {
        let fake = self.clone();
        Server::start(move |req| fake.handle(req))
    }

    pub fn calendars(&self) -> &Calendars {
        &self.inner.calendars
    }

    pub fn set_auth(&self, auth: EwsAuth) {
        *lock(&self.inner.auth) = auth;
    }

    /// Every request so far, in arrival order.
    /// NTLM handshakes that authenticated a connection.
    pub fn ntlm_logins(&self) -> usize {
        self.inner.ntlm.logins()
    }

    /// Why NTLM AUTHENTICATE messages were refused, in order.
    pub fn ntlm_failures(&self) -> Vec<String> {
        self.inner.ntlm.failures()
    }

    pub fn requests(&self) -> Vec<EwsRecord> {
        lock(&self.inner.log).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.inner.log).len()
    }

    pub fn clear_requests(&self) {
        lock(&self.inner.log).clear();
    }

    /// The next `next` requests get ErrorServerBusy: as an HTTP 500 SOAP fault when `as_fault`,
    /// else inside an HTTP 200 response (every mailbox's response message). `back_off_ms`
    /// `None` leaves BackOffMilliseconds out.
    pub fn server_busy(&self, next: u32, back_off_ms: Option<u64>, as_fault: bool) {
        lock(&self.inner.knobs).server_busy = Some(Countdown {
            skip: 0,
            remaining: next,
            value: (back_off_ms, as_fault),
        });
    }

    /// Like `server_busy`, after `skip` requests that are answered normally.
    pub fn server_busy_after(
        &self,
        skip: u32,
        next: u32,
        back_off_ms: Option<u64>,
        as_fault: bool,
    ) {
        lock(&self.inner.knobs).server_busy = Some(Countdown {
            skip,
            remaining: next,
            value: (back_off_ms, as_fault),
        });
    }

    /// The next `next` requests get an HTTP 500 SOAP fault with `code` (ErrorSchemaValidation,
    /// ErrorInvalidServerVersion, …).
    pub fn fault(&self, next: u32, code: &str) {
        lock(&self.inner.knobs).fault = Some(Countdown {
            skip: 0,
            remaining: next,
            value: code.to_string(),
        });
    }

    /// The next `next` requests get `status` (503, 429) with an optional Retry-After.
    pub fn unavailable(&self, next: u32, status: u16, retry_after_secs: Option<u64>) {
        lock(&self.inner.knobs).unavailable = Some(Countdown {
            skip: 0,
            remaining: next,
            value: (status, retry_after_secs),
        });
    }

    /// The next `next` requests get 401 whatever their credentials (an expired token).
    pub fn reject_auth(&self, next: u32) {
        lock(&self.inner.knobs).reject_auth = Some(Countdown {
            skip: 0,
            remaining: next,
            value: (),
        });
    }

    /// The next `next` responses are not well-formed XML.
    pub fn malformed(&self, next: u32) {
        self.body_fault(next, BodyFault::Malformed);
    }

    /// The next `next` responses end in the middle of the XML (HTTP-wise complete).
    pub fn truncated(&self, next: u32) {
        self.body_fault(next, BodyFault::Truncated);
    }

    /// The next `next` responses close the connection in the middle of the announced body.
    pub fn cut_connection(&self, next: u32) {
        self.body_fault(next, BodyFault::CutConnection);
    }

    /// The next `next` responses are padded to at least `bytes` bytes.
    pub fn huge(&self, next: u32, bytes: usize) {
        self.body_fault(next, BodyFault::Huge(bytes));
    }

    /// The next `next` responses are sent 16 bytes at a time with `pause` between pieces.
    pub fn drip(&self, next: u32, pause: Duration) {
        self.body_fault(next, BodyFault::Drip(pause));
    }

    fn body_fault(&self, next: u32, fault: BodyFault) {
        lock(&self.inner.knobs).body_fault = Some(Countdown {
            skip: 0,
            remaining: next,
            value: fault,
        });
    }

    /// Requests for `email` get a per-mailbox error with `code` (ErrorNoFreeBusyAccess, …).
    pub fn mailbox_error(&self, email: &str, code: &str) {
        lock(&self.inner.knobs)
            .mailbox_errors
            .insert(email.to_ascii_lowercase(), code.to_string());
    }

    /// Free/busy only: availability responses carry no `CalendarEventDetails`.
    pub fn hide_details(&self, on: bool) {
        lock(&self.inner.knobs).hide_details = on;
    }

    pub fn subject_style(&self, style: SubjectStyle) {
        lock(&self.inner.knobs).subject_style = style;
    }

    /// Every impersonated request gets ErrorImpersonateUserDenied.
    pub fn deny_impersonation(&self, on: bool) {
        lock(&self.inner.knobs).deny_impersonation = on;
    }

    /// Answers one request.
    pub fn handle(&self, req: &HttpRequest) -> HttpReply {
        let body = req.body_text();
        let operation = if find_start(&body, "GetUserAvailabilityRequest", 0).is_some() {
            "GetUserAvailability"
        } else if find_start(&body, "FindItem", 0).is_some() {
            "FindItem"
        } else {
            ""
        };
        let impersonated = element_text(&body, "ExchangeImpersonation")
            .and_then(|_| element_text(&body, "SmtpAddress"));
        let mailboxes = match operation {
            "GetUserAvailability" => element_texts(&body, "Address"),
            "FindItem" => element_texts(&body, "EmailAddress"),
            _ => Vec::new(),
        };
        lock(&self.inner.log).push(EwsRecord {
            operation: operation.to_string(),
            headers: req.headers.clone(),
            body: body.clone(),
            impersonated: impersonated.clone(),
            anchor: req.header("X-AnchorMailbox").map(str::to_string),
            mailboxes: mailboxes.clone(),
        });

        let mut knobs = lock(&self.inner.knobs);
        if req.method != "POST" || req.path != EWS_PATH {
            return HttpReply::empty(404);
        }
        let auth = lock(&self.inner.auth).clone();
        if let EwsAuth::Ntlm {
            username,
            password,
            negotiate_only,
        } = &auth
        {
            let schemes: &[&str] = if *negotiate_only {
                &["Negotiate"]
            } else {
                &["Negotiate", "NTLM"]
            };
            if take(&mut knobs.reject_auth).is_some() {
                return HttpReply::empty(401).with_header("WWW-Authenticate", schemes[0]);
            }
            if let crate::ntlm::Outcome::Reply(reply) =
                self.inner.ntlm.check(req, username, password, schemes)
            {
                return reply;
            }
        } else if take(&mut knobs.reject_auth).is_some() || !authorized(&auth, req) {
            let scheme = if auth.is_bearer() {
                "Bearer"
            } else {
                "Basic realm=\"mail.example.com\""
            };
            return HttpReply::empty(401).with_header("WWW-Authenticate", scheme);
        }
        if !req
            .header("Content-Type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("text/xml"))
        {
            return HttpReply::empty(415);
        }
        if let Some((status, retry)) = take(&mut knobs.unavailable) {
            let reply = HttpReply::new(
                status,
                "text/html",
                "<html><body>Service Unavailable</body></html>",
            );
            return match retry {
                Some(secs) => reply.with_header("Retry-After", &secs.to_string()),
                None => reply,
            };
        }
        let version =
            start_tag(&body, "RequestServerVersion").and_then(|t| attribute(t, "Version"));
        if version.as_deref() != Some("Exchange2013_SP1") {
            return fault_reply(
                "ErrorInvalidServerVersion",
                "The specified server version is invalid.",
                None,
            );
        }
        if let Some(code) = take(&mut knobs.fault) {
            return fault_reply(&code, &format!("Simulated {code}."), None);
        }
        if operation.is_empty() {
            return fault_reply(
                "ErrorSchemaValidation",
                "The request failed schema validation: neither GetUserAvailabilityRequest nor FindItem.",
                None,
            );
        }
        let busy = take(&mut knobs.server_busy);
        if let Some((back_off, true)) = busy {
            return fault_reply(
                "ErrorServerBusy",
                "The server cannot service this request right now. Try again later.",
                back_off,
            );
        }
        if auth.is_bearer() && impersonated.is_none() {
            return fault_reply(
                "ErrorInvalidExchangeImpersonationHeaderData",
                "ExchangeImpersonation SOAP header must be present for this type of OAuth token.",
                None,
            );
        }
        if let Some(who) = &impersonated {
            if knobs.deny_impersonation {
                return fault_reply(
                    "ErrorImpersonateUserDenied",
                    "The account does not have permission to impersonate the requested user.",
                    None,
                );
            }
            if self.inner.calendars.view(who, 0, 0).is_none() {
                return fault_reply(
                    "ErrorNonExistentMailbox",
                    &format!("The SMTP address has no mailbox associated with it: {who}"),
                    None,
                );
            }
        }
        let opts = RenderOptions {
            hide_details: knobs.hide_details,
            subject_style: knobs.subject_style,
            mailbox_errors: knobs.mailbox_errors.clone(),
            server_busy: busy.map(|(ms, _)| ms),
        };
        let text = match operation {
            "GetUserAvailability" => {
                if mailboxes.len() > 100 {
                    return fault_reply(
                        "ErrorSchemaValidation",
                        "The request failed schema validation: more than 100 mailboxes.",
                        None,
                    );
                }
                let start = element_text(&body, "StartTime").and_then(|s| parse_utc(&s));
                let end = element_text(&body, "EndTime").and_then(|s| parse_utc(&s));
                let (Some(start), Some(end)) = (start, end) else {
                    return fault_reply(
                        "ErrorSchemaValidation",
                        "The request failed schema validation: TimeWindow.",
                        None,
                    );
                };
                availability_response(&self.inner.calendars, &mailboxes, start, end, &opts)
            }
            _ => {
                let view = start_tag(&body, "CalendarView");
                let start = view
                    .and_then(|t| attribute(t, "StartDate"))
                    .and_then(|s| parse_utc(&s));
                let end = view
                    .and_then(|t| attribute(t, "EndDate"))
                    .and_then(|s| parse_utc(&s));
                let (Some(start), Some(end)) = (start, end) else {
                    return fault_reply(
                        "ErrorSchemaValidation",
                        "The request failed schema validation: CalendarView.",
                        None,
                    );
                };
                let mailbox = mailboxes
                    .first()
                    .cloned()
                    .or(impersonated)
                    .unwrap_or_default();
                find_item_response(&self.inner.calendars, &mailbox, start, end, &opts)
            }
        };
        let mut reply = HttpReply::xml(200, text.clone());
        match take(&mut knobs.body_fault) {
            None => {}
            Some(BodyFault::Malformed) => {
                reply.body = text.replacen("</s:Body>", "</s:Bodyy>", 1).into_bytes();
            }
            Some(BodyFault::Truncated) => {
                reply.body.truncate(text.len() / 2);
            }
            Some(BodyFault::CutConnection) => reply.truncate_at = Some(text.len() / 2),
            Some(BodyFault::Huge(bytes)) => {
                // Whitespace between the header and the body keeps the response well-formed, so
                // only a size cap can stop it.
                let pad = " ".repeat(bytes.saturating_sub(text.len()));
                reply.body = text
                    .replacen("</s:Header>", &format!("</s:Header>{pad}"), 1)
                    .into_bytes();
            }
            Some(BodyFault::Drip(pause)) => reply.drip = Some(pause),
        }
        reply
    }
}

fn authorized(auth: &EwsAuth, req: &HttpRequest) -> bool {
    let Some(given) = req.header("Authorization") else {
        return false;
    };
    match auth {
        EwsAuth::Basic { username, password } => {
            use base64::Engine as _;
            let want =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            given.strip_prefix("Basic ") == Some(want.as_str())
        }
        EwsAuth::Bearer(token) => given.strip_prefix("Bearer ") == Some(token.as_str()),
        EwsAuth::BearerChecked(check) => given.strip_prefix("Bearer ").is_some_and(|t| check(t)),
        EwsAuth::Ntlm { .. } => false,
    }
}

/// What shapes a rendered response besides the calendars.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    pub hide_details: bool,
    pub subject_style: SubjectStyle,
    /// Lower-case e-mail → error code.
    pub mailbox_errors: HashMap<String, String>,
    /// `Some(back_off)`: every response message is ErrorServerBusy.
    pub server_busy: Option<Option<u64>>,
}

const SERVER_VERSION_INFO: &str = "<h:ServerVersionInfo MajorVersion=\"15\" MinorVersion=\"1\" MajorBuildNumber=\"2507\" MinorBuildNumber=\"6\" Version=\"V2017_07_11\" xmlns:h=\"http://schemas.microsoft.com/exchange/services/2006/types\" xmlns=\"http://schemas.microsoft.com/exchange/services/2006/types\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"/>";

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"{SOAP_NS}\"><s:Header>{SERVER_VERSION_INFO}</s:Header><s:Body xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">{body}</s:Body></s:Envelope>"
    )
}

/// An HTTP 500 SOAP fault as Exchange sends it, with `BackOffMilliseconds` when given.
pub fn fault_reply(code: &str, message: &str, back_off_ms: Option<u64>) -> HttpReply {
    HttpReply::xml(500, fault_body(code, message, back_off_ms))
}

/// The text of a SOAP fault as Exchange writes it.
pub fn fault_body(code: &str, message: &str, back_off_ms: Option<u64>) -> String {
    let xml = match back_off_ms {
        Some(ms) => format!(
            "<t:MessageXml xmlns:t=\"{TYPES_NS}\"><t:Value Name=\"BackOffMilliseconds\">{ms}</t:Value></t:MessageXml>"
        ),
        None => String::new(),
    };
    let message = esc(message);
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"{SOAP_NS}\"><s:Body><s:Fault><faultcode xmlns:a=\"{TYPES_NS}\">a:{code}</faultcode><faultstring xml:lang=\"en-US\">{message}</faultstring><detail><e:ResponseCode xmlns:e=\"{ERRORS_NS}\">{code}</e:ResponseCode><e:Message xmlns:e=\"{ERRORS_NS}\">{message}</e:Message>{xml}</detail></s:Fault></s:Body></s:Envelope>"
    )
}

/// A response message that is not a success: the code, Exchange's message, and for
/// ErrorServerBusy the back-off.
fn error_message(
    tag: &str,
    prefix: &str,
    types: &str,
    code: &str,
    back_off: Option<u64>,
) -> String {
    let text = match code {
        "ErrorMailRecipientNotFound" => "The e-mail address cannot be found.",
        "ErrorNonExistentMailbox" => "The SMTP address has no mailbox associated with it.",
        "ErrorNoFreeBusyAccess" => {
            "You don't have permission to view free/busy information for this user."
        }
        "ErrorServerBusy" => "The server cannot service this request right now. Try again later.",
        _ => "Simulated error.",
    };
    let xml = match back_off {
        Some(ms) => format!(
            "<{prefix}MessageXml><{types}Value Name=\"BackOffMilliseconds\">{ms}</{types}Value></{prefix}MessageXml>"
        ),
        None => String::new(),
    };
    format!(
        "<{prefix}{tag} ResponseClass=\"Error\"><{prefix}MessageText>{text}</{prefix}MessageText><{prefix}ResponseCode>{code}</{prefix}ResponseCode><{prefix}DescriptiveLinkKey>0</{prefix}DescriptiveLinkKey>{xml}</{prefix}{tag}>"
    )
}

/// A whole GetUserAvailability response for `mailboxes` (in order) over `[start, end)`.
pub fn availability_response(
    calendars: &Calendars,
    mailboxes: &[String],
    start: i64,
    end: i64,
    opts: &RenderOptions,
) -> String {
    let mut out = String::with_capacity(400 + mailboxes.len() * 600);
    out.push_str(&format!(
        "<GetUserAvailabilityResponse xmlns=\"{MESSAGES_NS}\"><FreeBusyResponseArray>"
    ));
    for mailbox in mailboxes {
        out.push_str("<FreeBusyResponse>");
        let code = opts.mailbox_errors.get(&mailbox.to_ascii_lowercase());
        let view = calendars.view(mailbox, start, end);
        match (opts.server_busy, code, view) {
            (Some(back_off), _, _) => {
                out.push_str(&error_message(
                    "ResponseMessage",
                    "",
                    "",
                    "ErrorServerBusy",
                    back_off,
                ));
            }
            (None, Some(code), _) => {
                out.push_str(&error_message("ResponseMessage", "", "", code, None))
            }
            (None, None, None) => {
                out.push_str(&error_message(
                    "ResponseMessage",
                    "",
                    "",
                    "ErrorMailRecipientNotFound",
                    None,
                ));
            }
            (None, None, Some(appointments)) => {
                out.push_str("<ResponseMessage ResponseClass=\"Success\"><ResponseCode>NoError</ResponseCode></ResponseMessage><FreeBusyView>");
                let view_type = if opts.hide_details {
                    "FreeBusy"
                } else {
                    "Detailed"
                };
                out.push_str(&format!(
                    "<FreeBusyViewType xmlns=\"{TYPES_NS}\">{view_type}</FreeBusyViewType><CalendarEventArray xmlns=\"{TYPES_NS}\">"
                ));
                for (i, a) in appointments.iter().enumerate() {
                    out.push_str(&calendar_event(a, i, opts));
                }
                out.push_str(&format!("</CalendarEventArray><WorkingHours xmlns=\"{TYPES_NS}\"><TimeZone><Bias>0</Bias><StandardTime><Bias>0</Bias><Time>00:00:00</Time><DayOrder>0</DayOrder><Month>0</Month><DayOfWeek>Sunday</DayOfWeek></StandardTime><DaylightTime><Bias>0</Bias><Time>00:00:00</Time><DayOrder>0</DayOrder><Month>0</Month><DayOfWeek>Sunday</DayOfWeek></DaylightTime></TimeZone><WorkingPeriodArray><WorkingPeriod><DayOfWeek>Monday Tuesday Wednesday Thursday Friday</DayOfWeek><StartTimeInMinutes>480</StartTimeInMinutes><EndTimeInMinutes>1020</EndTimeInMinutes></WorkingPeriod></WorkingPeriodArray></WorkingHours></FreeBusyView>"));
            }
        }
        out.push_str("</FreeBusyResponse>");
    }
    out.push_str("</FreeBusyResponseArray></GetUserAvailabilityResponse>");
    envelope(&out)
}

fn calendar_event(a: &SimAppointment, index: usize, opts: &RenderOptions) -> String {
    let mut out = format!(
        "<CalendarEvent><StartTime>{}</StartTime><EndTime>{}</EndTime><BusyType>{}</BusyType>",
        format_utc(a.start),
        format_utc(a.end),
        a.show_as.ews()
    );
    if !opts.hide_details {
        // Exchange leaves the subject of a private appointment out of the details.
        let subject = if a.private {
            String::new()
        } else {
            format!(
                "<Subject>{}</Subject>",
                subject_text(&a.subject, opts.subject_style)
            )
        };
        out.push_str(&format!(
            "<CalendarEventDetails><ID>00000000{index:08X}</ID>{subject}<Location/><IsMeeting>false</IsMeeting><IsRecurring>false</IsRecurring><IsException>false</IsException><IsReminderSet>false</IsReminderSet><IsPrivate>{}</IsPrivate></CalendarEventDetails>",
            a.private
        ));
    }
    out.push_str("</CalendarEvent>");
    out
}

/// A whole FindItem response for one mailbox's calendar view over `[start, end)`.
pub fn find_item_response(
    calendars: &Calendars,
    mailbox: &str,
    start: i64,
    end: i64,
    opts: &RenderOptions,
) -> String {
    let mut out = format!(
        "<m:FindItemResponse xmlns:m=\"{MESSAGES_NS}\" xmlns:t=\"{TYPES_NS}\"><m:ResponseMessages>"
    );
    let code = opts.mailbox_errors.get(&mailbox.to_ascii_lowercase());
    let tag = "FindItemResponseMessage";
    match (opts.server_busy, code, calendars.view(mailbox, start, end)) {
        (Some(back_off), _, _) => {
            out.push_str(&error_message(tag, "m:", "t:", "ErrorServerBusy", back_off))
        }
        (None, Some(code), _) => out.push_str(&error_message(tag, "m:", "t:", code, None)),
        (None, None, None) => out.push_str(&error_message(
            tag,
            "m:",
            "t:",
            "ErrorNonExistentMailbox",
            None,
        )),
        (None, None, Some(appointments)) => {
            out.push_str(&format!(
                "<m:{tag} ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView=\"{}\" IncludesLastItemInRange=\"true\"><t:Items>",
                appointments.len()
            ));
            for (i, a) in appointments.iter().enumerate() {
                let sensitivity = if a.private { "Private" } else { "Normal" };
                out.push_str(&format!(
                    "<t:CalendarItem><t:ItemId Id=\"AAMkAD{i:08X}\" ChangeKey=\"DwAAAB{i:04X}\"/><t:Subject>{}</t:Subject><t:Sensitivity>{sensitivity}</t:Sensitivity><t:Start>{}Z</t:Start><t:End>{}Z</t:End><t:IsAllDayEvent>{}</t:IsAllDayEvent><t:LegacyFreeBusyStatus>{}</t:LegacyFreeBusyStatus></t:CalendarItem>",
                    subject_text(&a.subject, opts.subject_style),
                    format_utc(a.start),
                    format_utc(a.end),
                    a.all_day,
                    a.show_as.ews()
                ));
            }
            out.push_str(&format!("</t:Items></m:RootFolder></m:{tag}>"));
        }
    }
    out.push_str("</m:ResponseMessages></m:FindItemResponse>");
    envelope(&out)
}

/// Escapes text content the way Exchange does (`&`, `<`, `>`).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn subject_text(subject: &str, style: SubjectStyle) -> String {
    match style {
        SubjectStyle::Plain => esc(subject),
        SubjectStyle::CharRefs => esc(subject)
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    format!("&#{};", c as u32)
                }
            })
            .collect(),
        SubjectStyle::Cdata => format!("<![CDATA[{}]]>", subject.replace("]]>", "]]]]><![CDATA[>")),
    }
}

/// Undoes the five predefined entities and numeric character references.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(semi) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let name = &tail[1..semi];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => name
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=semi]),
        }
        rest = &tail[semi + 1..];
    }
    out.push_str(rest);
    out
}

/// The byte offset of the next start tag `<local` or `<prefix:local` (followed by `>`, `/` or
/// whitespace) at or after `from`.
fn find_start(body: &str, local: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = body.get(at..)?.find('<') {
        let pos = at + i;
        let tag = &body[pos + 1..];
        let name_end = tag
            .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        let name_local = name.rsplit(':').next().unwrap_or(name);
        if name_local == local && !name.starts_with('/') {
            return Some(pos);
        }
        at = pos + 1;
    }
    None
}

/// The start tag text (`<x:Name a="b">`) of the first element `local`.
fn start_tag<'b>(body: &'b str, local: &str) -> Option<&'b str> {
    let pos = find_start(body, local, 0)?;
    let end = body[pos..].find('>')?;
    Some(&body[pos..=pos + end])
}

/// The value of attribute `name` in a start tag, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let i = tag.find(&format!(" {name}=\""))?;
    let rest = &tag[i + name.len() + 3..];
    let end = rest.find('"')?;
    Some(unescape(&rest[..end]))
}

/// The texts of every element `local` (up to the next `<`), unescaped, in document order.
fn element_texts(body: &str, local: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(pos) = find_start(body, local, at) {
        let Some(gt) = body[pos..].find('>') else {
            break;
        };
        let content = &body[pos + gt + 1..];
        let end = content.find('<').unwrap_or(content.len());
        out.push(unescape(content[..end].trim()));
        at = pos + gt + 1;
    }
    out
}

fn element_text(body: &str, local: &str) -> Option<String> {
    element_texts(body, local).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::SimShowAs;

    const REQUEST: &str = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/></soap:Header><soap:Body><m:GetUserAvailabilityRequest><m:MailboxDataArray><t:MailboxData><t:Email><t:Address>a&amp;b@x</t:Address></t:Email></t:MailboxData><t:MailboxData><t:Email><t:Address>c@x</t:Address></t:Email></t:MailboxData></m:MailboxDataArray><t:FreeBusyViewOptions><t:TimeWindow><t:StartTime>2026-12-01T00:00:00</t:StartTime><t:EndTime>2026-12-02T00:00:00</t:EndTime></t:TimeWindow></t:FreeBusyViewOptions></m:GetUserAvailabilityRequest></soap:Body></soap:Envelope>"#;

    #[test]
    fn scanner() {
        assert_eq!(element_texts(REQUEST, "Address"), ["a&b@x", "c@x"]);
        assert_eq!(
            element_text(REQUEST, "StartTime").as_deref(),
            Some("2026-12-01T00:00:00")
        );
        let tag = start_tag(REQUEST, "RequestServerVersion").unwrap();
        assert_eq!(
            attribute(tag, "Version").as_deref(),
            Some("Exchange2013_SP1")
        );
        assert!(find_start(REQUEST, "Body", 0).is_some());
        assert!(find_start(REQUEST, "Bod", 0).is_none());
        assert_eq!(unescape("&#228;&#xE4;&lt;&bogus;&"), "ää<&bogus;&");
    }

    #[test]
    fn subject_styles() {
        assert_eq!(
            subject_text("a&b <ä>", SubjectStyle::Plain),
            "a&amp;b &lt;ä&gt;"
        );
        assert_eq!(subject_text("a&ä", SubjectStyle::CharRefs), "a&amp;&#228;");
        assert_eq!(
            subject_text("x]]>y", SubjectStyle::Cdata),
            "<![CDATA[x]]]]><![CDATA[>y]]>"
        );
    }

    fn request(fake: &EwsFake, body: &str, auth: &str) -> HttpReply {
        let req = HttpRequest {
            method: "POST".into(),
            path: EWS_PATH.into(),
            headers: vec![
                ("Content-Type".into(), "text/xml; charset=utf-8".into()),
                ("Authorization".into(), auth.into()),
            ],
            body: body.as_bytes().to_vec(),
            ..HttpRequest::default()
        };
        fake.handle(&req)
    }

    #[test]
    fn answers_and_records() {
        let cal = Calendars::new();
        let t = parse_utc("2026-12-01T09:00:00").unwrap();
        cal.add(
            "c@x",
            SimAppointment::new(t, t + 3600, SimShowAs::Busy, "Weekly <sync>"),
        );
        let fake = EwsFake::new(cal, EwsAuth::Bearer("tok".into()));
        let reply = request(&fake, REQUEST, "Bearer tok");
        // A Bearer token without impersonation is refused, as Exchange Online does.
        assert_eq!(reply.status, 500);
        let body = REQUEST.replace(
            "</soap:Header>",
            "<t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>c@x</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header>",
        );
        let reply = request(&fake, &body, "Bearer tok");
        let text = String::from_utf8(reply.body).unwrap();
        assert_eq!(reply.status, 200, "{text}");
        assert!(text.contains("<ResponseCode>ErrorMailRecipientNotFound</ResponseCode>"));
        assert!(text.contains("<StartTime>2026-12-01T09:00:00</StartTime>"));
        assert!(text.contains("<Subject>Weekly &lt;sync&gt;</Subject>"));
        assert_eq!(request(&fake, &body, "Bearer nope").status, 401);
        let log = fake.requests();
        assert_eq!(log.len(), 3);
        assert_eq!(log[1].impersonated.as_deref(), Some("c@x"));
        assert_eq!(log[1].mailboxes, ["a&b@x", "c@x"]);
        assert_eq!(log[1].operation, "GetUserAvailability");
    }
}
