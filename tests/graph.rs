//! The Graph backend over real HTTP against the simulated token endpoint and Graph.

use std::time::Duration;

use ess::config::{Backend, EwsAuth, ExchangeConfig, Lookup, Secret};
use ess::exchange::graph::GraphSource;
use ess::exchange::{BoundedWait, CalendarSource, MailboxResult, NoWait, SourceError, Throttle};
use ess::http::{HttpClient, HttpOptions};
use ess::model::Window;
use ess_sim::calendar::{parse_utc, Calendars, SimAppointment, SimShowAs};
use ess_sim::graph::{GraphAuth, GraphFake};
use ess_sim::server::Server;
use ess_sim::token::TokenFake;

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "Xy8Q~the-client-secret";

struct Env {
    calendars: Calendars,
    token: TokenFake,
    graph: GraphFake,
    server: Server,
}

fn t(s: &str) -> i64 {
    parse_utc(s).expect("test time")
}

fn env() -> Env {
    let calendars = Calendars::new();
    let token = TokenFake::new(TENANT, CLIENT, SECRET);
    let graph = GraphFake::new(calendars.clone(), GraphAuth::Tokens(token.clone()));
    let server = graph.start().expect("start the Graph fake");
    Env {
        calendars,
        token,
        graph,
        server,
    }
}

impl Env {
    fn config(&self, tenant: &str) -> ExchangeConfig {
        ExchangeConfig {
            backend: Backend::Graph,
            url: String::new(),
            auth: EwsAuth::Basic,
            username: String::new(),
            password: None,
            lookup: Lookup::Availability,
            impersonation: false,
            tenant_id: tenant.to_string(),
            client_id: CLIENT.to_string(),
            client_secret: Some(Secret::new(SECRET)),
            token_url: format!("{}/{tenant}/oauth2/v2.0/token", self.server.url()),
            graph_url: format!("{}/v1.0", self.server.url()),
            ca_file: None,
            timeout: Duration::from_secs(10),
        }
    }

    fn source(&self) -> GraphSource {
        self.source_for(self.config(TENANT))
    }

    fn source_for(&self, cfg: ExchangeConfig) -> GraphSource {
        let http = HttpClient::new(&HttpOptions {
            timeout: Duration::from_secs(10),
            max_body: 4 << 20,
            ca_file: None,
            insecure_tls: false,
        })
        .expect("HTTP client");
        GraphSource::new(&cfg, http)
    }

    /// Gives `email` `n` one-hour Busy appointments on 2026-12-01 from 08:00.
    fn fill(&self, email: &str, n: i64) {
        self.calendars.add_mailbox(email);
        for i in 0..n {
            let start = t("2026-12-01T08:00:00") + i * 3600;
            self.calendars.add(
                email,
                SimAppointment::new(start, start + 3600, SimShowAs::Busy, &format!("M{i}")),
            );
        }
    }
}

fn window() -> Window {
    Window {
        start: t("2026-12-01T00:00:00"),
        end: t("2026-12-02T00:00:00"),
    }
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i}@contoso.com")).collect()
}

/// Counts of appointments per mailbox, or the error code.
fn summary(results: &[MailboxResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Ok(v) => v.len().to_string(),
            Err(e) => e.code.clone(),
        })
        .collect()
}

fn fetch(
    src: &mut GraphSource,
    mailboxes: &[String],
    throttle: &mut dyn Throttle,
) -> Result<Vec<MailboxResult>, SourceError> {
    src.fetch(mailboxes, window(), throttle)
}

/// Accepts or refuses every wait without sleeping, and remembers what was asked.
struct Recorder {
    allow: bool,
    waits: Vec<Duration>,
}

impl Throttle for Recorder {
    fn pause(&mut self, wait: Duration) -> bool {
        self.waits.push(wait);
        self.allow
    }
}

#[test]
fn reads_appointments_with_their_details() {
    let e = env();
    e.calendars.add(
        "alice@contoso.com",
        SimAppointment::new(
            t("2026-12-01T09:00:00"),
            t("2026-12-01T10:00:00"),
            SimShowAs::Busy,
            "Weekly sync (DND)",
        ),
    );
    e.calendars.add(
        "alice@contoso.com",
        SimAppointment::new(
            t("2026-12-01T00:00:00"),
            t("2026-12-02T00:00:00"),
            SimShowAs::Oof,
            "Vacation",
        )
        .all_day(),
    );
    e.calendars.add(
        "alice@contoso.com",
        SimAppointment::new(
            t("2026-12-01T12:00:00"),
            t("2026-12-01T13:00:00"),
            SimShowAs::WorkingElsewhere,
            "Doctor",
        )
        .private(),
    );
    e.calendars.add(
        "alice@contoso.com",
        SimAppointment::new(
            t("2026-12-01T14:00:00"),
            t("2026-12-01T15:00:00"),
            SimShowAs::NoData,
            "dropped",
        ),
    );
    // Outside the window.
    e.calendars.add(
        "alice@contoso.com",
        SimAppointment::new(
            t("2026-12-03T09:00:00"),
            t("2026-12-03T10:00:00"),
            SimShowAs::Busy,
            "later",
        ),
    );
    let mut src = e.source();
    let got = fetch(&mut src, &["Alice@Contoso.com".to_string()], &mut NoWait).unwrap();
    let lines: Vec<String> = got[0]
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {:?} private={} all_day={}",
                ess::time::format_rfc3339(a.start),
                ess::time::format_rfc3339(a.end),
                a.show_as.name(),
                a.subject.as_deref().unwrap_or(""),
                a.private,
                a.all_day
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "2026-12-01T00:00:00Z 2026-12-02T00:00:00Z OOF \"Vacation\" private=false all_day=true",
            "2026-12-01T09:00:00Z 2026-12-01T10:00:00Z Busy \"Weekly sync (DND)\" private=false all_day=false",
            "2026-12-01T12:00:00Z 2026-12-01T13:00:00Z WorkingElsewhere \"Doctor\" private=true all_day=false",
        ]
    );
    // What went over the wire: one batch, the documented inner request.
    let inner = e.graph.inner_requests();
    assert_eq!(inner.len(), 1);
    assert!(!inner[0].direct);
    assert_eq!(
        inner[0].url,
        "/users/Alice%40Contoso.com/calendarView?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z&$select=subject,start,end,showAs,isAllDay,sensitivity&$top=100"
    );
    assert_eq!(
        inner[0].headers,
        [("Prefer".to_string(), "outlook.timezone=\"UTC\"".to_string())]
    );
    let tokens = e.token.requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].scope, "https://graph.microsoft.com/.default");
    assert_eq!(tokens[0].grant_type, "client_credentials");
    assert_eq!(tokens[0].client_id, CLIENT);
    assert_eq!(tokens[0].tenant, TENANT);
}

#[test]
fn token_is_cached_across_fetches_and_refreshed_once_on_401() {
    let e = env();
    let mailboxes = users(3);
    for m in &mailboxes {
        e.fill(m, 1);
    }
    let mut src = e.source();
    for _ in 0..3 {
        let got = fetch(&mut src, &mailboxes, &mut NoWait).unwrap();
        assert_eq!(summary(&got), ["1", "1", "1"]);
    }
    assert_eq!(e.token.request_count(), 1);
    assert_eq!(e.graph.batch_count(), 3);

    // Revoked before its time: Graph says 401, the source fetches a new token and retries.
    e.token.revoke_all();
    let got = fetch(&mut src, &mailboxes, &mut NoWait).unwrap();
    assert_eq!(summary(&got), ["1", "1", "1"]);
    assert_eq!(e.token.request_count(), 2);
    assert_eq!(e.graph.unauthorized_count(), 1);
    assert_eq!(e.graph.batch_count(), 5);
}

#[test]
fn a_token_graph_never_accepts_is_an_error_after_one_retry() {
    let e = env();
    e.fill("a@contoso.com", 1);
    let graph = GraphFake::new(e.calendars.clone(), GraphAuth::Fixed("other".into()));
    let server = graph.start().unwrap();
    let mut cfg = e.config(TENANT);
    cfg.graph_url = format!("{}/v1.0", server.url());
    let mut src = e.source_for(cfg);
    let err = fetch(&mut src, &["a@contoso.com".to_string()], &mut NoWait).unwrap_err();
    assert!(
        err.message
            .contains("refused a freshly fetched access token (HTTP 401)"),
        "{err}"
    );
    assert_eq!(graph.unauthorized_count(), 2);
    assert_eq!(e.token.request_count(), 2);
    assert!(!err.message.contains("sim-token"), "{err}");
}

#[test]
fn forty_five_users_take_three_batches() {
    let e = env();
    let mailboxes = users(45);
    for (i, m) in mailboxes.iter().enumerate() {
        e.fill(m, (i % 4) as i64);
    }
    let mut src = e.source();
    let got = fetch(&mut src, &mailboxes, &mut NoWait).unwrap();
    let want: Vec<String> = (0..45).map(|i| (i % 4).to_string()).collect();
    assert_eq!(summary(&got), want);
    assert_eq!(e.graph.batch_sizes(), [20, 20, 5]);
    assert_eq!(e.graph.batch_count(), 3);
    assert_eq!(e.token.request_count(), 1);
}

#[test]
fn answers_in_request_order_are_matched_too() {
    let e = env();
    e.graph.set_in_order(true);
    let mailboxes = users(5);
    for (i, m) in mailboxes.iter().enumerate() {
        e.fill(m, i as i64);
    }
    let got = fetch(&mut e.source(), &mailboxes, &mut NoWait).unwrap();
    assert_eq!(summary(&got), ["0", "1", "2", "3", "4"]);
}

#[test]
fn pages_are_followed_inside_later_batches() {
    let e = env();
    e.graph.set_page_size(2);
    let mailboxes = users(3);
    e.fill(&mailboxes[0], 5);
    e.fill(&mailboxes[1], 2);
    e.fill(&mailboxes[2], 7);
    let got = fetch(&mut e.source(), &mailboxes, &mut NoWait).unwrap();
    assert_eq!(summary(&got), ["5", "2", "7"]);
    // Every appointment once, in order.
    let subjects: Vec<String> = got[2]
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.subject.clone().unwrap_or_default())
        .collect();
    assert_eq!(subjects, ["M0", "M1", "M2", "M3", "M4", "M5", "M6"]);
    // Pages: 3 + 1 + 4 requests, batched as the queue allows.
    assert_eq!(e.graph.batch_sizes(), [3, 2, 2, 1]);
    let inner = e.graph.inner_requests();
    assert!(inner.iter().all(|r| !r.direct));
    assert!(inner[3].url.contains("%24skip=2"), "{:?}", inner[3]);
    assert!(inner.iter().all(|r| r
        .headers
        .iter()
        .any(|(k, v)| k == "Prefer" && v == "outlook.timezone=\"UTC\"")));
}

#[test]
fn throttled_inner_request_is_retried_within_the_budget() {
    let e = env();
    let mailboxes = users(3);
    for m in &mailboxes {
        e.fill(m, 2);
    }
    e.graph.throttle_next(1, Some(1));
    let mut wait = BoundedWait::for_once();
    let started = std::time::Instant::now();
    let got = fetch(&mut e.source(), &mailboxes, &mut wait).unwrap();
    assert_eq!(summary(&got), ["2", "2", "2"]);
    assert!(started.elapsed() >= Duration::from_secs(1));
    // Only the throttled request went again.
    assert_eq!(e.graph.batch_sizes(), [3, 1]);
}

#[test]
fn throttling_without_waiting_gives_the_servers_wait() {
    let e = env();
    let mailboxes = users(2);
    for m in &mailboxes {
        e.fill(m, 1);
    }
    e.graph.throttle_next(1, Some(7));
    // Only the throttled mailbox fails; the one that answered is handled.
    let got = fetch(&mut e.source(), &mailboxes, &mut NoWait).unwrap();
    assert_eq!(summary(&got), ["Throttled", "1"]);
    let err = got[0].as_ref().unwrap_err();
    assert!(err.message.contains("HTTP 429, Retry-After 7 s"), "{err}");

    // A whole $batch throttled is a failure of the read, with the server's wait.
    e.graph.unavailable_next(1, Some(7));
    let err = fetch(&mut e.source(), &mailboxes, &mut NoWait).unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
}

/// An address with a control character fails alone; the others are read.
#[test]
fn an_address_with_a_control_character_fails_alone() {
    let e = env();
    let mailboxes = vec![
        "bad\r\n@contoso.com".to_string(),
        "user0@contoso.com".to_string(),
    ];
    e.fill("user0@contoso.com", 2);
    let got = fetch(&mut e.source(), &mailboxes, &mut NoWait).unwrap();
    assert_eq!(summary(&got), ["InvalidAddress", "2"]);
    assert_eq!(e.graph.batch_sizes(), [1]);
}

#[test]
fn throttling_without_retry_after_waits_ten_seconds() {
    let e = env();
    e.fill("a@contoso.com", 1);
    e.graph.throttle_next(1, None);
    let mut rec = Recorder {
        allow: true,
        waits: Vec::new(),
    };
    let got = fetch(&mut e.source(), &["a@contoso.com".to_string()], &mut rec).unwrap();
    assert_eq!(summary(&got), ["1"]);
    assert_eq!(rec.waits, [Duration::from_secs(10)]);
}

#[test]
fn at_most_three_retries_under_the_once_rule() {
    let e = env();
    e.fill("a@contoso.com", 1);
    e.graph.throttle_next(4, Some(0));
    let got = fetch(
        &mut e.source(),
        &["a@contoso.com".to_string()],
        &mut BoundedWait::for_once(),
    )
    .unwrap();
    assert_eq!(summary(&got), ["Throttled"]);
    assert_eq!(e.graph.inner_requests().len(), 4);

    // A wait beyond the 60 s budget is not even started.
    e.graph.throttle_next(1, Some(61));
    let started = std::time::Instant::now();
    let got = fetch(
        &mut e.source(),
        &["a@contoso.com".to_string()],
        &mut BoundedWait::for_once(),
    )
    .unwrap();
    assert_eq!(summary(&got), ["Throttled"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn unavailable_batch_is_retried_or_reported() {
    let e = env();
    let mailboxes = users(2);
    for m in &mailboxes {
        e.fill(m, 1);
    }
    e.graph.unavailable_next(1, Some(0));
    let got = fetch(&mut e.source(), &mailboxes, &mut BoundedWait::for_once()).unwrap();
    assert_eq!(summary(&got), ["1", "1"]);
    assert_eq!(e.graph.batch_count(), 2);

    e.graph.unavailable_next(1, Some(5));
    let err = fetch(&mut e.source(), &mailboxes, &mut NoWait).unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::from_secs(5)));
    assert!(err.message.contains("HTTP 503"), "{err}");
    assert!(err.message.contains("2 mailbox(es)"), "{err}");
}

#[test]
fn a_missing_or_blocked_mailbox_fails_alone() {
    let e = env();
    e.fill("a@contoso.com", 2);
    e.fill("blocked@contoso.com", 1);
    e.fill("onprem@contoso.com", 1);
    e.fill("b@contoso.com", 3);
    e.graph.deny("blocked@contoso.com");
    e.graph.not_enabled("onprem@contoso.com");
    let mailboxes: Vec<String> = ["a", "ghost", "blocked", "onprem", "b"]
        .iter()
        .map(|u| format!("{u}@contoso.com"))
        .collect();
    let got = fetch(&mut e.source(), &mailboxes, &mut NoWait).unwrap();
    assert_eq!(
        summary(&got),
        [
            "2",
            "ErrorInvalidUser",
            "ErrorAccessDenied",
            "MailboxNotEnabledForRESTAPI",
            "3"
        ]
    );
    let ghost = got[1].as_ref().unwrap_err().to_string();
    assert!(ghost.contains("'ghost@contoso.com' is invalid"), "{ghost}");
    assert!(
        ghost.contains("check the user's e-mail address in STARFACE"),
        "{ghost}"
    );
    let blocked = got[2].as_ref().unwrap_err().to_string();
    assert!(blocked.contains("application access policy"), "{blocked}");
}

#[test]
fn expired_secret_says_what_to_do() {
    let e = env();
    e.fill("a@contoso.com", 1);
    e.token.set_secret_expired(true);
    let err = fetch(&mut e.source(), &["a@contoso.com".to_string()], &mut NoWait).unwrap_err();
    assert!(
        err.message.contains(
            "the client secret of application '11111111-2222-3333-4444-555555555555' has expired"
        ),
        "{err}"
    );
    assert!(err.message.contains("create a new client secret"), "{err}");
    assert!(err.message.contains("exchange.client_secret"), "{err}");
    assert!(!err.message.contains(SECRET), "{err}");
    assert_eq!(err.retry_after, None);
    assert_eq!(e.graph.batch_count(), 0);
}

#[test]
fn wrong_tenant_and_wrong_secret_name_their_setting() {
    let e = env();
    e.fill("a@contoso.com", 1);
    let mut src = e.source_for(e.config("fabrikam.onmicrosoft.com"));
    let err = fetch(&mut src, &["a@contoso.com".to_string()], &mut NoWait).unwrap_err();
    assert!(err.message.contains("AADSTS90002"), "{err}");
    assert!(err.message.contains("check exchange.tenant_id"), "{err}");

    let mut cfg = e.config(TENANT);
    cfg.client_secret = Some(Secret::new("wrong-secret"));
    let err = fetch(
        &mut e.source_for(cfg),
        &["a@contoso.com".to_string()],
        &mut NoWait,
    )
    .unwrap_err();
    assert!(err.message.contains("AADSTS7000215"), "{err}");
    assert!(
        err.message.contains("it must be the secret's Value"),
        "{err}"
    );
    assert!(!err.message.contains("wrong-secret"), "{err}");

    let mut cfg = e.config(TENANT);
    cfg.client_id = "unknown-app".into();
    let err = fetch(
        &mut e.source_for(cfg),
        &["a@contoso.com".to_string()],
        &mut NoWait,
    )
    .unwrap_err();
    assert!(err.message.contains("check exchange.client_id"), "{err}");

    let mut cfg = e.config(TENANT);
    cfg.client_secret = None;
    let err = fetch(
        &mut e.source_for(cfg),
        &["a@contoso.com".to_string()],
        &mut NoWait,
    )
    .unwrap_err();
    assert!(err.message.contains("client_secret_file"), "{err}");
}

#[test]
fn malformed_batch_response_is_an_error_not_a_panic() {
    let e = env();
    e.fill("a@contoso.com", 3);
    e.graph.malformed_next(1);
    let mut src = e.source();
    let err = fetch(&mut src, &["a@contoso.com".to_string()], &mut NoWait).unwrap_err();
    assert!(
        err.message
            .contains("sent a batch response that cannot be read"),
        "{err}"
    );
    // The next poll works again.
    let got = fetch(&mut src, &["a@contoso.com".to_string()], &mut NoWait).unwrap();
    assert_eq!(summary(&got), ["3"]);
}

#[test]
fn unreachable_graph_is_a_source_error() {
    let e = env();
    let mut cfg = e.config(TENANT);
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cfg.graph_url = format!("http://127.0.0.1:{port}/v1.0");
    let err = fetch(
        &mut e.source_for(cfg),
        &["a@contoso.com".to_string()],
        &mut NoWait,
    )
    .unwrap_err();
    assert!(
        err.message
            .contains("cannot read calendars from Microsoft Graph at http://127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn no_mailboxes_no_requests() {
    let e = env();
    let got = fetch(&mut e.source(), &[], &mut NoWait).unwrap();
    assert!(got.is_empty());
    assert_eq!(e.graph.batch_count(), 0);
    assert_eq!(e.token.request_count(), 0);
}

#[test]
fn debug_output_holds_no_secret() {
    let e = env();
    e.fill("a@contoso.com", 1);
    let mut src = e.source();
    fetch(&mut src, &["a@contoso.com".to_string()], &mut NoWait).unwrap();
    let dbg = format!("{src:?}");
    assert!(!dbg.contains(SECRET), "{dbg}");
    assert!(!dbg.contains("sim-token"), "{dbg}");
}
