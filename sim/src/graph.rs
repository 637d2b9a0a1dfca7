//! A fake Microsoft Graph (`/v1.0`): `calendarView` of the shared `Calendars`, directly and
//! through JSON batching (`POST /v1.0/$batch`), with bearer-token checks and the faults the
//! product must survive: throttled inner requests (429 with `Retry-After`), a 503 on the whole
//! batch, paging with `@odata.nextLink`, missing or blocked mailboxes, malformed JSON.
//!
//! Response shapes follow Microsoft's documentation of `calendarView`, JSON batching and the
//! Graph error format. Batch responses come back in reverse order by default, as Graph is free
//! to reorder them, so that the product has to match them by id.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use nanoserde::{DeJson, SerJson};

use crate::calendar::{format_utc, parse_utc, Calendars};
use crate::server::{percent_decode, HttpReply, HttpRequest, Server};
use crate::token::TokenFake;

/// The base path of the API, as in `https://graph.microsoft.com/v1.0`.
pub const BASE: &str = "/v1.0";

/// Graph's limit on requests in one batch.
pub const MAX_BATCH: usize = 20;

/// How bearer tokens are checked.
#[derive(Clone, Debug)]
pub enum GraphAuth {
    /// Tokens issued (and not revoked or expired) by this token fake.
    Tokens(TokenFake),
    /// Exactly this token.
    Fixed(String),
}

/// One calendarView request as the fake received it, inside a batch or directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InnerRecord {
    /// The URL relative to `/v1.0` with its query, as sent.
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// `true` for a direct GET, `false` inside a batch.
    pub direct: bool,
}

#[derive(Debug, Default)]
struct State {
    page_size: Option<usize>,
    throttle_inner: u32,
    retry_after: Option<u64>,
    batch_503: u32,
    malformed: u32,
    denied: BTreeSet<String>,
    not_enabled: BTreeSet<String>,
    in_order: bool,
    batches: usize,
    batch_sizes: Vec<usize>,
    unauthorized: usize,
    inner: Vec<InnerRecord>,
}

/// The Graph fake. Cloning shares it.
#[derive(Clone, Debug)]
pub struct GraphFake {
    calendars: Calendars,
    auth: GraphAuth,
    state: Arc<Mutex<State>>,
}

/// The batch request body; nanoserde's derive skips fields the fake does not need.
mod wire {
    // The derive's generated code trips this lint; the allowance is scoped to it.
    #![allow(clippy::question_mark)]
    use nanoserde::DeJson;
    use std::collections::HashMap;

    #[derive(DeJson)]
    pub struct BatchIn {
        pub requests: Vec<InnerIn>,
    }

    #[derive(DeJson)]
    pub struct InnerIn {
        pub id: String,
        pub method: String,
        pub url: String,
        pub headers: Option<HashMap<String, String>>,
    }
}
use wire::BatchIn;

/// An inner (or direct) response before it is written out.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn quote(s: &str) -> String {
    s.to_string().serialize_json()
}

/// Graph's error body: `{"error":{"code","message","innerError"}}`.
fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: format!(
            r#"{{"error":{{"code":{},"message":{},"innerError":{{"date":"2026-11-29T08:00:00","request-id":"00000000-0000-0000-0000-000000000001","client-request-id":"00000000-0000-0000-0000-000000000002"}}}}}}"#,
            quote(code),
            quote(message)
        ),
    }
}

/// Encodes a query value the way Graph writes its nextLinks.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b',' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl GraphFake {
    pub fn new(calendars: Calendars, auth: GraphAuth) -> GraphFake {
        GraphFake {
            calendars,
            auth,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pages hold at most this many events, whatever `$top` asks for (Graph also caps pages).
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = Some(n.max(1));
    }

    /// The next `n` calendarView requests (inner or direct) get 429 with `Retry-After:
    /// retry_after` (no header for `None`).
    pub fn throttle_next(&self, n: u32, retry_after: Option<u64>) {
        let mut s = self.lock();
        s.throttle_inner = n;
        s.retry_after = retry_after;
    }

    /// The next `n` batch requests get 503 with `Retry-After: retry_after`.
    pub fn unavailable_next(&self, n: u32, retry_after: Option<u64>) {
        let mut s = self.lock();
        s.batch_503 = n;
        s.retry_after = retry_after;
    }

    /// The next `n` batch responses are cut off in the middle of the JSON.
    pub fn malformed_next(&self, n: u32) {
        self.lock().malformed = n;
    }

    /// Requests for this mailbox get 403, as with an application access policy that leaves the
    /// mailbox out.
    pub fn deny(&self, email: &str) {
        self.lock().denied.insert(email.to_ascii_lowercase());
    }

    /// Requests for this mailbox get 404 `MailboxNotEnabledForRESTAPI` (an on-premises or
    /// inactive mailbox).
    pub fn not_enabled(&self, email: &str) {
        self.lock().not_enabled.insert(email.to_ascii_lowercase());
    }

    /// Answer batch requests in request order instead of reversed.
    pub fn set_in_order(&self, in_order: bool) {
        self.lock().in_order = in_order;
    }

    /// Batch requests received (including refused ones).
    pub fn batch_count(&self) -> usize {
        self.lock().batches
    }

    /// The number of inner requests of each batch that was answered (not refused as a whole).
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.lock().batch_sizes.clone()
    }

    /// Requests refused for a missing or invalid token.
    pub fn unauthorized_count(&self) -> usize {
        self.lock().unauthorized
    }

    /// Every calendarView request received, in order.
    pub fn inner_requests(&self) -> Vec<InnerRecord> {
        self.lock().inner.clone()
    }

    /// Starts a server with this fake under `/v1.0` and, with `GraphAuth::Tokens`, the token
    /// endpoint on the same port.
    pub fn start(&self) -> std::io::Result<Server> {
        self.start_on(0)
    }

    /// `start` on a given loopback port (0: any free one).
    pub fn start_on(&self, port: u16) -> std::io::Result<Server> {
        let me = self.clone();
        Server::start_on(&format!("127.0.0.1:{port}"), move |req| {
            if let GraphAuth::Tokens(t) = &me.auth {
                if let Some(reply) = t.handle(req) {
                    return reply;
                }
            }
            me.handle(req).unwrap_or_else(|| {
                to_http(error(
                    404,
                    "UnknownError",
                    "No route for this path in the Graph fake.",
                ))
            })
        })
    }

    fn authorized(&self, req: &HttpRequest) -> bool {
        let Some(token) = req
            .header("Authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
        else {
            return false;
        };
        match &self.auth {
            GraphAuth::Tokens(t) => t.is_valid(token),
            GraphAuth::Fixed(f) => f == token,
        }
    }

    /// Answers requests under `/v1.0`; `None` for other paths.
    pub fn handle(&self, req: &HttpRequest) -> Option<HttpReply> {
        let rest = req.path.strip_prefix(BASE)?;
        let is_batch = rest == "/$batch";
        if is_batch {
            self.lock().batches += 1;
        }
        if !self.authorized(req) {
            self.lock().unauthorized += 1;
            let mut r = error(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            );
            r.headers.push((
                "WWW-Authenticate".into(),
                "Bearer realm=\"\", error=\"invalid_token\"".into(),
            ));
            return Some(to_http(r));
        }
        if is_batch {
            if req.method != "POST" {
                return Some(to_http(error(405, "BadRequest", "Use POST for $batch.")));
            }
            return Some(self.batch(req));
        }
        if req.method != "GET" {
            return Some(to_http(error(405, "BadRequest", "Unsupported method.")));
        }
        let url = if req.raw_query.is_empty() {
            rest.to_string()
        } else {
            format!("{rest}?{}", req.raw_query)
        };
        let host = req.header("Host").unwrap_or("127.0.0.1").to_string();
        let headers = req.headers.clone();
        Some(to_http(self.calendar_view(&url, &headers, &host, true)))
    }

    fn batch(&self, req: &HttpRequest) -> HttpReply {
        {
            let mut s = self.lock();
            if s.batch_503 > 0 {
                s.batch_503 -= 1;
                let mut r = to_http(error(
                    503,
                    "serviceNotAvailable",
                    "The service is temporarily unavailable.",
                ));
                if let Some(secs) = s.retry_after {
                    r = r.with_header("Retry-After", &secs.to_string());
                }
                return r;
            }
        }
        if !req
            .header("Content-Type")
            .unwrap_or("")
            .starts_with("application/json")
        {
            return to_http(error(
                415,
                "BadRequest",
                "The $batch body must be application/json.",
            ));
        }
        let text = req.body_text();
        // nanoserde's DeJson panics on some malformed input (and loops forever on some
        // truncated input, which nothing can guard). The body comes from the product under test,
        // which sends complete JSON; a panic from a broken body still becomes a 400 here.
        let parsed = std::panic::catch_unwind(|| BatchIn::deserialize_json(&text));
        let batch = match parsed {
            Ok(Ok(b)) => b,
            _ => return to_http(error(400, "BadRequest", "Invalid batch payload format.")),
        };
        if batch.requests.is_empty() || batch.requests.len() > MAX_BATCH {
            return to_http(error(
                400,
                "BadRequest",
                "Invalid batch payload format: a batch holds 1 to 20 requests.",
            ));
        }
        let mut ids = BTreeSet::new();
        if !batch.requests.iter().all(|r| ids.insert(r.id.clone())) {
            return to_http(error(
                400,
                "BadRequest",
                "Batch request ids must be unique.",
            ));
        }
        let host = req.header("Host").unwrap_or("127.0.0.1").to_string();
        let mut parts: Vec<String> = batch
            .requests
            .iter()
            .map(|inner| {
                let reply = if inner.method != "GET" {
                    error(405, "BadRequest", "Only GET is simulated inside a batch.")
                } else {
                    let mut headers: Vec<(String, String)> = inner
                        .headers
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    headers.sort();
                    let url = if inner.url.starts_with('/') {
                        inner.url.clone()
                    } else {
                        format!("/{}", inner.url)
                    };
                    self.calendar_view(&url, &headers, &host, false)
                };
                let headers: Vec<String> = reply
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
                    .collect();
                format!(
                    r#"{{"id":{},"status":{},"headers":{{{}}},"body":{}}}"#,
                    quote(&inner.id),
                    reply.status,
                    headers.join(","),
                    reply.body
                )
            })
            .collect();
        let mut s = self.lock();
        s.batch_sizes.push(parts.len());
        if !s.in_order {
            parts.reverse();
        }
        let body = format!(r#"{{"responses":[{}]}}"#, parts.join(","));
        if s.malformed > 0 {
            s.malformed -= 1;
            let cut = body.len() / 2;
            return HttpReply::json(200, body.as_bytes()[..cut].to_vec());
        }
        HttpReply::json(200, body)
    }

    /// `url` is relative to `/v1.0`, with its query.
    fn calendar_view(
        &self,
        url: &str,
        headers: &[(String, String)],
        host: &str,
        direct: bool,
    ) -> Reply {
        let mut s = self.lock();
        s.inner.push(InnerRecord {
            url: url.to_string(),
            headers: headers.to_vec(),
            direct,
        });
        if s.throttle_inner > 0 {
            s.throttle_inner -= 1;
            let mut r = error(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            );
            if let Some(secs) = s.retry_after {
                r.headers.push(("Retry-After".into(), secs.to_string()));
            }
            return r;
        }
        let (path, raw_query) = url.split_once('?').unwrap_or((url, ""));
        let path = percent_decode(path, false);
        let Some(email) = path
            .strip_prefix("/users/")
            .and_then(|p| p.strip_suffix("/calendarView"))
            .or_else(|| {
                path.strip_prefix("/users/")
                    .and_then(|p| p.strip_suffix("/calendarview"))
            })
        else {
            return error(400, "BadRequest", "Resource not found for the segment.");
        };
        let email = email.to_ascii_lowercase();
        let query: Vec<(String, String)> = raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k, true), percent_decode(v, true))
            })
            .collect();
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let (Some(start), Some(end)) = (
            param("startDateTime").and_then(parse_utc),
            param("endDateTime").and_then(parse_utc),
        ) else {
            return error(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            );
        };
        if s.denied.contains(&email) {
            return error(
                403,
                "ErrorAccessDenied",
                "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
            );
        }
        if s.not_enabled.contains(&email) {
            return error(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            );
        }
        let page_cap = s.page_size;
        drop(s);
        let Some(events) = self.calendars.view(&email, start, end) else {
            return error(
                404,
                "ErrorInvalidUser",
                &format!("The requested user '{email}' is invalid."),
            );
        };
        // Graph's default page size for calendarView is 10.
        let top = param("$top")
            .and_then(|t| t.parse::<usize>().ok())
            .unwrap_or(10)
            .clamp(1, 1000);
        let page = page_cap.map_or(top, |cap| top.min(cap));
        let skip = param("$skip")
            .and_then(|t| t.parse::<usize>().ok())
            .unwrap_or(0);
        let select: Option<Vec<String>> =
            param("$select").map(|s| s.split(',').map(|f| f.trim().to_string()).collect());
        let wants = |field: &str| select.as_ref().is_none_or(|s| s.iter().any(|f| f == field));
        let values: Vec<String> = events
            .iter()
            .enumerate()
            .skip(skip)
            .take(page)
            .map(|(i, a)| {
                let mut fields = vec![
                    format!(r#""@odata.etag":"W/\"DwAAABYAAAB{i}\"""#),
                    format!(r#""id":"AAMkAGI2TG93AAA{i}""#),
                ];
                if wants("subject") {
                    fields.push(format!(r#""subject":{}"#, quote(&a.subject)));
                }
                if wants("isAllDay") {
                    fields.push(format!(r#""isAllDay":{}"#, a.all_day));
                }
                if wants("sensitivity") {
                    let sens = if a.private { "private" } else { "normal" };
                    fields.push(format!(r#""sensitivity":"{sens}""#));
                }
                if wants("showAs") {
                    fields.push(format!(r#""showAs":"{}""#, a.show_as.graph()));
                }
                for (name, t) in [("start", a.start), ("end", a.end)] {
                    if wants(name) {
                        fields.push(time_field(name, t));
                    }
                }
                format!("{{{}}}", fields.join(","))
            })
            .collect();
        let mut body = format!(
            r#"{{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users('{}')/calendarView","value":[{}]"#,
            encode(&email),
            values.join(",")
        );
        if skip + page < events.len() {
            let mut next: Vec<String> = query
                .iter()
                .filter(|(k, _)| k != "$skip")
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            next.push(format!("%24skip={}", skip + page));
            body.push_str(&format!(
                r#","@odata.nextLink":{}"#,
                quote(&format!(
                    "http://{host}{BASE}/users/{}/calendarView?{}",
                    encode(&email),
                    next.join("&")
                ))
            ));
        }
        body.push('}');
        Reply {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8".into(),
            )],
            body,
        }
    }
}

/// `"start":{"dateTime":"2026-12-01T09:00:00.0000000","timeZone":"UTC"}`: Graph writes UTC when
/// asked with `Prefer: outlook.timezone="UTC"`, and also without a preference. Whether the
/// product asks is checked on the recorded request headers instead.
fn time_field(name: &str, t: i64) -> String {
    format!(
        r#""{name}":{{"dateTime":"{}.0000000","timeZone":"UTC"}}"#,
        format_utc(t)
    )
}

fn to_http(r: Reply) -> HttpReply {
    let mut reply = HttpReply::empty(r.status);
    reply.headers = r.headers;
    reply.body = r.body.into_bytes();
    reply
}

/// The tenant, app registration and secret of `ess-sim graph`.
pub const DEMO_TENANT: &str = "contoso.onmicrosoft.com";
pub const DEMO_CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const DEMO_CLIENT_SECRET: &str = "demo-client-secret";

/// Demo mailboxes around `now`: the STARFACE fake's users plus `extra` generated ones
/// (`user{i}@example.com`, ten half-hour appointments each) for benchmarks.
pub fn demo_calendars(now: i64, extra: usize) -> Calendars {
    use crate::calendar::{SimAppointment, SimShowAs};
    let c = Calendars::new();
    let hour = 3600;
    let start = now - now.rem_euclid(hour);
    c.add(
        "alice@example.com",
        SimAppointment::new(start, start + hour, SimShowAs::Busy, "Weekly sync"),
    );
    c.add(
        "alice@example.com",
        SimAppointment::new(
            start + 2 * hour,
            start + 3 * hour,
            SimShowAs::Busy,
            "Focus time (No DND)",
        ),
    );
    c.add(
        "bob@example.com",
        SimAppointment::new(
            start - 24 * hour,
            start + 48 * hour,
            SimShowAs::Oof,
            "Vacation",
        )
        .all_day(),
    );
    c.add(
        "carol@example.com",
        SimAppointment::new(start, start + 2 * hour, SimShowAs::Tentative, "Doctor").private(),
    );
    c.add_mailbox("dora@example.com");
    for i in 0..extra {
        let email = format!("user{i}@example.com");
        c.add_mailbox(&email);
        for k in 0..10 {
            let s = start + k * 1800;
            c.add(
                &email,
                SimAppointment::new(s, s + 1500, SimShowAs::Busy, &format!("Meeting {k} (DND)")),
            );
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{SimAppointment, SimShowAs};

    fn fake() -> GraphFake {
        let c = Calendars::new();
        let t0 = parse_utc("2026-12-01T09:00:00").unwrap();
        for i in 0..3 {
            c.add(
                "a@x.test",
                SimAppointment::new(t0 + i * 3600, t0 + i * 3600 + 1800, SimShowAs::Busy, "M"),
            );
        }
        c.add_mailbox("b@x.test");
        GraphFake::new(c, GraphAuth::Fixed("tok".into()))
    }

    fn get(url: &str, token: &str) -> HttpRequest {
        let (path, q) = url.split_once('?').unwrap_or((url, ""));
        HttpRequest {
            method: "GET".into(),
            path: percent_decode(path, false),
            raw_query: q.into(),
            headers: vec![
                ("Authorization".into(), format!("Bearer {token}")),
                ("Host".into(), "h".into()),
                ("Prefer".into(), "outlook.timezone=\"UTC\"".into()),
            ],
            ..HttpRequest::default()
        }
    }

    fn body(r: &HttpReply) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    const VIEW: &str = "/v1.0/users/a%40x.test/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z&$top=2";

    #[test]
    fn demo_data() {
        let now = parse_utc("2026-12-01T09:10:00").unwrap();
        let c = demo_calendars(now, 3);
        assert_eq!(c.mailboxes().len(), 7);
        let alice = c.view("alice@example.com", now, now + 1).unwrap();
        assert_eq!(alice[0].subject, "Weekly sync");
        assert_eq!(c.view("user2@example.com", 0, i64::MAX).unwrap().len(), 10);
    }

    #[test]
    fn direct_view_pages_and_auth() {
        let f = fake();
        let r = f.handle(&get(VIEW, "tok")).unwrap();
        let b = body(&r);
        assert_eq!(r.status, 200, "{b}");
        assert!(
            b.contains(r#""dateTime":"2026-12-01T09:00:00.0000000","timeZone":"UTC""#),
            "{b}"
        );
        assert!(b.contains(r#""@odata.nextLink":"http://h/v1.0/users/a%40x.test/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z&%24top=2&%24skip=2""#), "{b}");
        let r = f.handle(&get(&format!("{VIEW}&%24skip=2"), "tok")).unwrap();
        let b = body(&r);
        assert!(
            !b.contains("nextLink") && !b.contains("T10:00:00") && b.contains("T11:00:00"),
            "{b}"
        );
        assert_eq!(f.handle(&get(VIEW, "bad")).unwrap().status, 401);
        assert_eq!(f.unauthorized_count(), 1);
        assert!(f.handle(&get("/other", "tok")).is_none());
    }

    #[test]
    fn batch_answers_by_id_with_faults() {
        let f = fake();
        f.throttle_next(1, Some(7));
        f.not_enabled("b@x.test");
        let batch = r#"{"requests":[
            {"id":"1","method":"GET","url":"/users/a%40x.test/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z","headers":{"Prefer":"outlook.timezone=\"UTC\""}},
            {"id":"2","method":"GET","url":"/users/b%40x.test/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z"},
            {"id":"3","method":"GET","url":"/users/c%40x.test/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z"},
            {"id":"4","method":"GET","url":"/users/a%40x.test/calendarView"}]}"#;
        let mut req = get("/v1.0/$batch", "tok");
        req.method = "POST".into();
        req.headers
            .push(("Content-Type".into(), "application/json".into()));
        req.body = batch.as_bytes().to_vec();
        let r = f.handle(&req).unwrap();
        let b = body(&r);
        assert_eq!(r.status, 200);
        let pos = |s: &str| b.find(s).unwrap_or_else(|| panic!("{s} missing in {b}"));
        // Reversed order; each id with its own outcome.
        assert!(pos(r#""id":"4","status":400"#) < pos(r#""id":"3","status":404"#));
        assert!(pos(r#""id":"2","status":404"#) < pos(r#""id":"1","status":429"#));
        assert!(
            b.contains(r#""Retry-After":"7""#)
                && b.contains("MailboxNotEnabledForRESTAPI")
                && b.contains("ErrorInvalidUser"),
            "{b}"
        );
        assert_eq!(f.batch_sizes(), [4]);
        assert_eq!(
            f.inner_requests()[0].headers,
            [("Prefer".to_string(), "outlook.timezone=\"UTC\"".to_string())]
        );

        f.unavailable_next(1, Some(3));
        let r = f.handle(&req).unwrap();
        assert_eq!(r.status, 503);
        assert!(r
            .headers
            .contains(&("Retry-After".to_string(), "3".to_string())));
        f.malformed_next(1);
        let r = f.handle(&req).unwrap();
        assert!(body(&r).len() < b.len());
        req.body = b"{\"requests\":[".to_vec();
        assert_eq!(f.handle(&req).unwrap().status, 400);
        assert_eq!(f.batch_count(), 4);
    }
}
