//! The EWS client against the EWS fake over real HTTP: both lookups, batching, impersonation,
//! every error kind, throttling and the OAuth2 token flow. Also keeps the request fixtures
//! (tests/fixtures/ews/requests/*.xml) in step with the builders; `tests/ews-validate-fixtures.sh`
//! checks those against Microsoft's schemas.

use std::path::PathBuf;
use std::time::Duration;

use ess::config::{Backend, EwsAuth, ExchangeConfig, Lookup, Secret};
use ess::exchange::ews::{request, EwsSource};
use ess::exchange::{BoundedWait, CalendarSource, MailboxResult, NoWait, SourceError, Throttle};
use ess::http::{HttpClient, HttpOptions};
use ess::model::Window;
use ess::time::{format_rfc3339, parse_rfc3339};
use ess_sim::calendar::{parse_utc, Calendars, SimAppointment, SimShowAs};
use ess_sim::ews::{self as sim, EwsFake, SubjectStyle, EWS_PATH};
use ess_sim::server::{HttpReply, Server};
use ess_sim::token::TokenFake;

const USER: &str = "svc-starface@example.com";
const PASSWORD: &str = "pa:ss&word";

fn t(s: &str) -> i64 {
    parse_utc(s).expect("scenario time")
}

fn window() -> Window {
    Window {
        start: t("2026-12-01T08:00:00"),
        end: t("2026-12-02T09:00:00"),
    }
}

/// A throttle that records what it was asked and allows the first `allow` waits without
/// sleeping (the fake does not enforce the wait; the client's behaviour is what is tested).
#[derive(Default)]
struct Recorder {
    allow: usize,
    waits: Vec<Duration>,
}

impl Throttle for Recorder {
    fn pause(&mut self, wait: Duration) -> bool {
        self.waits.push(wait);
        self.waits.len() <= self.allow
    }
}

struct Setup {
    fake: EwsFake,
    server: Server,
    cfg: ExchangeConfig,
    http: HttpOptions,
}

impl Setup {
    fn new(calendars: Calendars, lookup: Lookup) -> Setup {
        let fake = EwsFake::new(calendars, sim::EwsAuth::basic(USER, PASSWORD));
        let server = fake.serve().expect("start EWS fake");
        let cfg = ExchangeConfig {
            backend: Backend::Ews,
            url: format!("{}{EWS_PATH}", server.url()),
            auth: EwsAuth::Basic,
            username: USER.to_string(),
            password: Some(Secret::new(PASSWORD)),
            lookup,
            impersonation: false,
            tenant_id: String::new(),
            client_id: String::new(),
            client_secret: None,
            token_url: String::new(),
            graph_url: String::new(),
            ca_file: None,
            timeout: Duration::from_secs(10),
        };
        let http = HttpOptions {
            timeout: Duration::from_secs(10),
            max_body: 4 * 1024 * 1024,
            ..HttpOptions::default()
        };
        Setup {
            fake,
            server,
            cfg,
            http,
        }
    }

    fn source(&self) -> EwsSource {
        EwsSource::new(&self.cfg, HttpClient::new(&self.http).expect("client"))
    }

    fn fetch(
        &self,
        mailboxes: &[&str],
        throttle: &mut dyn Throttle,
    ) -> Result<Vec<MailboxResult>, SourceError> {
        let boxes: Vec<String> = mailboxes.iter().map(|s| s.to_string()).collect();
        self.source().fetch(&boxes, window(), throttle)
    }
}

/// One line per mailbox: its appointments or its error code.
fn render(results: &[MailboxResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Err(e) => format!("error {}", e.code),
            Ok(apps) => apps
                .iter()
                .map(|a| {
                    let mut s = format!(
                        "{} {}..{}",
                        a.show_as.name(),
                        format_rfc3339(a.start),
                        format_rfc3339(a.end)
                    );
                    if let Some(subject) = &a.subject {
                        s.push_str(&format!(" {subject:?}"));
                    }
                    if a.private {
                        s.push_str(" private");
                    }
                    if a.all_day {
                        s.push_str(" all-day");
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join("; "),
        })
        .collect()
}

fn scenario() -> Calendars {
    let c = Calendars::new();
    c.add(
        "alice@example.com",
        SimAppointment::new(
            t("2026-12-01T09:00:00"),
            t("2026-12-01T10:00:00"),
            SimShowAs::Busy,
            "R&D <weekly> März (DND)",
        ),
    );
    c.add(
        "alice@example.com",
        SimAppointment::new(
            t("2026-12-01T11:00:00"),
            t("2026-12-01T12:00:00"),
            SimShowAs::NoData,
            "ignored",
        ),
    );
    c.add(
        "bob@example.com",
        SimAppointment::new(
            t("2026-12-01T12:00:00"),
            t("2026-12-01T13:00:00"),
            SimShowAs::Oof,
            "Doctor",
        )
        .private(),
    );
    c.add(
        "bob@example.com",
        SimAppointment::new(
            t("2026-12-02T00:00:00"),
            t("2026-12-03T00:00:00"),
            SimShowAs::WorkingElsewhere,
            "Offsite",
        )
        .all_day(),
    );
    // Outside the window: never reported.
    c.add(
        "bob@example.com",
        SimAppointment::new(
            t("2026-12-05T00:00:00"),
            t("2026-12-05T01:00:00"),
            SimShowAs::Busy,
            "later",
        ),
    );
    c.add_mailbox("carol@example.com");
    c
}

#[test]
fn availability_lookup_reads_every_mailbox_in_one_request() {
    let s = Setup::new(scenario(), Lookup::Availability);
    let boxes = [
        "alice@example.com",
        "ghost@example.com",
        "bob@example.com",
        "carol@example.com",
    ];
    let got = s.fetch(&boxes, &mut NoWait).expect("fetch");
    assert_eq!(
        render(&got),
        [
            r#"Busy 2026-12-01T09:00:00Z..2026-12-01T10:00:00Z "R&D <weekly> März (DND)""#,
            "error ErrorMailRecipientNotFound",
            // The subject of a private appointment is not in the free/busy details.
            "OOF 2026-12-01T12:00:00Z..2026-12-01T13:00:00Z private; WorkingElsewhere 2026-12-02T00:00:00Z..2026-12-03T00:00:00Z \"Offsite\"",
            "",
        ]
    );
    let reqs = s.fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.operation, "GetUserAvailability");
    assert_eq!(r.mailboxes, boxes);
    assert_eq!(r.header("Content-Type"), Some("text/xml; charset=utf-8"));
    assert_eq!(
        r.header("SOAPAction"),
        Some(
            "\"http://schemas.microsoft.com/exchange/services/2006/messages/GetUserAvailability\""
        )
    );
    assert_eq!(r.impersonated, None);
    assert_eq!(r.anchor, None);
    let owned: Vec<String> = boxes.iter().map(|b| b.to_string()).collect();
    assert_eq!(
        r.body,
        request::get_user_availability(&owned, window(), None),
        "the body sent is the builder's (whose fixture the schema check covers)"
    );
}

#[test]
fn calendar_lookup_sends_one_find_item_per_mailbox() {
    let mut s = Setup::new(scenario(), Lookup::Calendar);
    let boxes = ["bob@example.com", "ghost@example.com", "alice@example.com"];
    let got = s.fetch(&boxes, &mut NoWait).expect("fetch");
    let expect = [
        r#"OOF 2026-12-01T12:00:00Z..2026-12-01T13:00:00Z "Doctor" private; WorkingElsewhere 2026-12-02T00:00:00Z..2026-12-03T00:00:00Z "Offsite" all-day"#,
        "error ErrorNonExistentMailbox",
        r#"Busy 2026-12-01T09:00:00Z..2026-12-01T10:00:00Z "R&D <weekly> März (DND)""#,
    ];
    assert_eq!(render(&got), expect);
    let reqs = s.fake.requests();
    assert_eq!(reqs.len(), 3);
    for (r, b) in reqs.iter().zip(boxes) {
        assert_eq!(r.operation, "FindItem");
        assert_eq!(r.mailboxes, [b]);
        assert_eq!(
            (r.impersonated.as_deref(), r.anchor.as_deref()),
            (None, None)
        );
    }

    // With impersonation every request impersonates and anchors on its own mailbox; a mailbox
    // that does not exist cannot be impersonated (a SOAP fault), which stays that user's error.
    s.cfg.impersonation = true;
    s.fake.clear_requests();
    let got = s.fetch(&boxes, &mut NoWait).expect("fetch");
    assert_eq!(render(&got), expect);
    for (r, b) in s.fake.requests().iter().zip(boxes) {
        assert_eq!(r.impersonated.as_deref(), Some(b));
        assert_eq!(r.anchor.as_deref(), Some(b));
        assert_eq!(
            r.body,
            request::find_item(b, window(), Some(b)),
            "the body sent is the builder's"
        );
    }
}

#[test]
fn availability_batches_of_100_keep_the_order() {
    let c = Calendars::new();
    let boxes: Vec<String> = (0..250)
        .map(|i| format!("user{i:03}@example.com"))
        .collect();
    for (i, b) in boxes.iter().enumerate() {
        let start = t("2026-12-01T09:00:00") + i as i64 * 60;
        c.add(
            b,
            SimAppointment::new(start, start + 60, SimShowAs::Busy, b),
        );
    }
    let s = Setup::new(c, Lookup::Availability);
    let got = s
        .source()
        .fetch(&boxes, window(), &mut NoWait)
        .expect("fetch");
    assert_eq!(got.len(), 250);
    for (i, (r, b)) in got.iter().zip(&boxes).enumerate() {
        let apps = r.as_ref().expect("mailbox ok");
        assert_eq!(apps.len(), 1, "{b}");
        assert_eq!(apps[0].subject.as_deref(), Some(b.as_str()));
        assert_eq!(apps[0].start, t("2026-12-01T09:00:00") + i as i64 * 60);
    }
    let sizes: Vec<usize> = s
        .fake
        .requests()
        .iter()
        .map(|r| r.mailboxes.len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(s.fake.requests()[2].mailboxes[0], "user200@example.com");
}

#[test]
fn per_mailbox_errors_affect_that_mailbox_only() {
    for lookup in [Lookup::Availability, Lookup::Calendar] {
        let s = Setup::new(scenario(), lookup);
        s.fake
            .mailbox_error("alice@example.com", "ErrorNoFreeBusyAccess");
        s.fake
            .mailbox_error("carol@example.com", "ErrorImpersonateUserDenied");
        let got = s
            .fetch(
                &["alice@example.com", "bob@example.com", "carol@example.com"],
                &mut NoWait,
            )
            .expect("fetch");
        let lines = render(&got);
        assert_eq!(lines[0], "error ErrorNoFreeBusyAccess", "{lookup:?}");
        assert!(lines[1].starts_with("OOF "), "{lookup:?}: {lines:?}");
        assert_eq!(lines[2], "error ErrorImpersonateUserDenied", "{lookup:?}");
        let err = got[0].as_ref().expect_err("error");
        assert!(err.to_string().contains("read access"), "{err}");
    }
}

/// An address with CR/LF from the PBX (it would go into X-AnchorMailbox) fails alone, named by
/// its own error; the other mailboxes are read, in every lookup and with OAuth2 anchoring.
#[test]
fn an_address_that_cannot_go_into_a_request_fails_alone() {
    let bad = "eve@example.com\r\nX-Injected: 1";
    for (oauth, lookup) in [
        (false, Lookup::Availability),
        (false, Lookup::Calendar),
        (true, Lookup::Availability),
        (true, Lookup::Calendar),
    ] {
        let (s, _tokens);
        if oauth {
            (s, _tokens) = oauth_setup(lookup, scenario());
        } else {
            s = Setup::new(scenario(), lookup);
        }
        let got = s
            .fetch(&[bad, "bob@example.com", "alice@example.com"], &mut NoWait)
            .expect("the others are read");
        let lines = render(&got);
        assert_eq!(lines[0], "error InvalidAddress", "{lookup:?} {oauth}");
        assert!(
            lines[1].starts_with("OOF "),
            "{lookup:?} {oauth}: {lines:?}"
        );
        assert_eq!(got.len(), 3);
        let err = got[0].as_ref().expect_err("error");
        assert!(err.message.contains("U+000D"), "{err}");
        assert!(s
            .fake
            .requests()
            .iter()
            .all(|r| r.mailboxes.iter().all(|m| !m.contains('\r'))));
    }
}

#[test]
fn details_hidden_and_escaped_subjects() {
    let s = Setup::new(scenario(), Lookup::Availability);
    s.fake.hide_details(true);
    let got = s.fetch(&["alice@example.com"], &mut NoWait).expect("fetch");
    assert_eq!(
        render(&got),
        ["Busy 2026-12-01T09:00:00Z..2026-12-01T10:00:00Z"],
        "free/busy only: no subject at all"
    );
    s.fake.hide_details(false);
    for style in [SubjectStyle::CharRefs, SubjectStyle::Cdata] {
        for lookup in [Lookup::Availability, Lookup::Calendar] {
            let mut s2 = Setup::new(scenario(), lookup);
            s2.cfg.lookup = lookup;
            s2.fake.subject_style(style);
            let got = s2
                .fetch(&["alice@example.com"], &mut NoWait)
                .expect("fetch");
            assert_eq!(
                got[0].as_ref().map(|a| a[0].subject.clone()),
                Ok(Some("R&D <weekly> März (DND)".to_string())),
                "{style:?} {lookup:?}"
            );
        }
    }
}

/// In the calendar lookup (one request per mailbox), throttling past the waiting budget after
/// some mailboxes answered keeps those answers; the rest fail as throttled and get no request.
/// Throttled before any answer, the read fails as a whole with the server's wait.
#[test]
fn throttled_past_the_budget_keeps_the_mailboxes_that_answered() {
    let s = Setup::new(scenario(), Lookup::Calendar);
    s.fake.server_busy_after(1, 10, Some(2500), true);
    let got = s
        .fetch(
            &["bob@example.com", "alice@example.com", "carol@example.com"],
            &mut NoWait,
        )
        .expect("the answered mailbox is kept");
    let lines = render(&got);
    assert!(lines[0].starts_with("OOF "), "{lines:?}");
    assert_eq!(lines[1..], ["error Throttled", "error Throttled"]);
    assert_eq!(
        s.fake.request_count(),
        2,
        "no request after the throttled one"
    );
    let err = got[1].as_ref().expect_err("throttled");
    assert!(err.message.contains("ErrorServerBusy"), "{err}");

    let s = Setup::new(scenario(), Lookup::Calendar);
    s.fake.server_busy(10, Some(2500), true);
    let err = s
        .fetch(&["bob@example.com", "alice@example.com"], &mut NoWait)
        .expect_err("nothing answered");
    assert_eq!(err.retry_after, Some(Duration::from_millis(2500)));
}

#[test]
fn server_busy_is_retried_after_the_back_off() {
    // As an HTTP 500 fault, with the real bounded wait of `once` (10 ms back-off each).
    let s = Setup::new(scenario(), Lookup::Availability);
    s.fake.server_busy(2, Some(10), true);
    let mut wait = BoundedWait::new(3, Duration::from_secs(60));
    let got = s.fetch(&["alice@example.com"], &mut wait).expect("fetch");
    assert!(render(&got)[0].starts_with("Busy "));
    assert_eq!(s.fake.request_count(), 3);
    let bodies: Vec<String> = s.fake.requests().into_iter().map(|r| r.body).collect();
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "the same request again"
    );

    // Inside a 200 response, in the calendar lookup.
    let s = Setup::new(scenario(), Lookup::Calendar);
    s.fake.server_busy(1, Some(1500), false);
    let mut rec = Recorder {
        allow: 1,
        ..Recorder::default()
    };
    let got = s.fetch(&["alice@example.com"], &mut rec).expect("fetch");
    assert!(render(&got)[0].starts_with("Busy "));
    assert_eq!(rec.waits, [Duration::from_millis(1500)]);
    assert_eq!(s.fake.request_count(), 2);

    // When the throttle gives up, the error carries the server's wait; without
    // BackOffMilliseconds the default is 60 s.
    for (back_off, want) in [(Some(2500), 2500), (None, 60_000)] {
        let s = Setup::new(scenario(), Lookup::Availability);
        s.fake.server_busy(5, back_off, true);
        let err = s
            .fetch(&["alice@example.com"], &mut NoWait)
            .expect_err("busy");
        assert_eq!(err.retry_after, Some(Duration::from_millis(want)));
        assert!(err.message.contains("ErrorServerBusy"), "{err}");
        assert_eq!(s.fake.request_count(), 1);
    }

    // The budget of `once` is not started when the wait would pass it.
    let s = Setup::new(scenario(), Lookup::Availability);
    s.fake.server_busy(1, Some(61_000), true);
    let err = s
        .fetch(&["alice@example.com"], &mut BoundedWait::for_once())
        .expect_err("over budget");
    assert_eq!(err.retry_after, Some(Duration::from_secs(61)));
    assert_eq!(s.fake.request_count(), 1);
}

#[test]
fn http_503_and_429_wait_for_retry_after() {
    for status in [503, 429] {
        let s = Setup::new(scenario(), Lookup::Calendar);
        s.fake.unavailable(1, status, Some(7));
        let mut rec = Recorder {
            allow: 1,
            ..Recorder::default()
        };
        let got = s.fetch(&["alice@example.com"], &mut rec).expect("fetch");
        assert!(render(&got)[0].starts_with("Busy "));
        assert_eq!(rec.waits, [Duration::from_secs(7)], "{status}");

        s.fake.unavailable(1, status, None);
        let err = s
            .fetch(&["alice@example.com"], &mut NoWait)
            .expect_err("unavailable");
        assert_eq!(err.retry_after, Some(Duration::from_secs(60)), "{status}");
        assert!(err.message.contains(&format!("HTTP {status}")), "{err}");
    }
}

/// The whole-request failure for one fault knob.
fn failure(knob: impl Fn(&EwsFake), lookup: Lookup, http: Option<HttpOptions>) -> SourceError {
    let mut s = Setup::new(scenario(), lookup);
    if let Some(h) = http {
        s.http = h;
    }
    knob(&s.fake);
    s.fetch(&["alice@example.com", "bob@example.com"], &mut NoWait)
        .expect_err("the request must fail")
}

#[test]
fn every_whole_request_error() {
    let small = HttpOptions {
        timeout: Duration::from_secs(10),
        max_body: 64 * 1024,
        ..HttpOptions::default()
    };
    let impatient = HttpOptions {
        timeout: Duration::from_millis(300),
        max_body: 64 * 1024,
        ..HttpOptions::default()
    };
    let cases: Vec<(&str, SourceError, &str)> = vec![
        (
            "401",
            failure(|f| f.reject_auth(9), Lookup::Availability, None),
            "Basic authentication is enabled",
        ),
        (
            "wrong password",
            failure(
                |f| f.set_auth(sim::EwsAuth::basic(USER, "other")),
                Lookup::Calendar,
                None,
            ),
            "refused the credentials of 'svc-starface@example.com' (HTTP 401)",
        ),
        (
            "malformed",
            failure(|f| f.malformed(1), Lookup::Availability, None),
            "cannot be read (malformed XML",
        ),
        (
            "truncated XML",
            failure(|f| f.truncated(1), Lookup::Calendar, None),
            "cannot be read (",
        ),
        (
            "connection cut",
            failure(|f| f.cut_connection(1), Lookup::Availability, None),
            "the connection closed before the response was complete",
        ),
        (
            "huge body",
            failure(|f| f.huge(1, 1 << 20), Lookup::Availability, Some(small)),
            "is larger than",
        ),
        (
            "slow drip",
            failure(
                |f| f.drip(1, Duration::from_millis(20)),
                Lookup::Availability,
                Some(impatient),
            ),
            "did not answer within",
        ),
        (
            "schema",
            failure(
                |f| f.fault(1, "ErrorSchemaValidation"),
                Lookup::Calendar,
                None,
            ),
            "ErrorSchemaValidation",
        ),
        (
            "version",
            failure(
                |f| f.fault(1, "ErrorInvalidServerVersion"),
                Lookup::Availability,
                None,
            ),
            "needs Exchange 2013 SP1 or later",
        ),
        (
            "other fault",
            failure(
                |f| f.fault(1, "ErrorInternalServerError"),
                Lookup::Availability,
                None,
            ),
            "failed the request with ErrorInternalServerError",
        ),
    ];
    for (name, err, want) in cases {
        assert!(err.message.contains(want), "{name}: {err}");
        assert_eq!(err.retry_after, None, "{name}");
        assert!(!err.message.contains(PASSWORD), "{name}: secret leaked");
    }
}

#[test]
fn wrong_url_is_named() {
    let mut s = Setup::new(scenario(), Lookup::Availability);
    s.cfg.url = format!("{}/owa/", s.server.url());
    let err = s
        .fetch(&["alice@example.com"], &mut NoWait)
        .expect_err("404");
    assert!(err.message.contains("HTTP 404"), "{err}");
    assert!(err.message.contains("/EWS/Exchange.asmx"), "{err}");
}

/// Replies the fake cannot give: a server that always answers with `reply`.
fn raw(reply: HttpReply, lookup: Lookup, mailboxes: &[&str]) -> SourceError {
    let server = Server::start(move |_| reply.clone()).expect("server");
    let mut s = Setup::new(Calendars::new(), lookup);
    s.cfg.url = format!("{}{EWS_PATH}", server.url());
    s.fetch(mailboxes, &mut NoWait)
        .expect_err("the request must fail")
}

#[test]
fn replies_that_are_not_ews_answers() {
    let detailed = include_str!("fixtures/ews/responses/availability-detailed.xml");
    let finditem = include_str!("fixtures/ews/responses/finditem.xml");
    let two = ["a@example.com", "b@example.com"];
    let cases = [
        (
            raw(HttpReply::empty(403), Lookup::Calendar, &two),
            "HTTP 403 Forbidden",
        ),
        (
            raw(
                HttpReply::empty(302).with_header("Location", "https://adfs.example.com/"),
                Lookup::Availability,
                &two,
            ),
            "HTTP 302 without a SOAP response (a redirect)",
        ),
        (
            raw(
                HttpReply::new(500, "text/html", "<html>Runtime Error</html>"),
                Lookup::Availability,
                &two,
            ),
            "HTTP 500 without a SOAP response",
        ),
        (
            raw(
                HttpReply::xml(200, "<html><body>Sign in</body></html>"),
                Lookup::Calendar,
                &two,
            ),
            "cannot be read (the response is not a SOAP envelope but <html>)",
        ),
        (
            raw(
                HttpReply::xml(200, vec![0xff, 0xfe, 0x3c]),
                Lookup::Calendar,
                &two,
            ),
            "cannot be read (",
        ),
        // Three answers for two mailboxes cannot be matched to them.
        (
            raw(HttpReply::xml(200, detailed), Lookup::Availability, &two),
            "2 mailboxes were asked for but 3 answered",
        ),
        // A FindItem answer to a GetUserAvailability request.
        (
            raw(HttpReply::xml(200, finditem), Lookup::Availability, &two),
            "holds no GetUserAvailabilityResponse",
        ),
    ];
    for (err, want) in cases {
        assert!(err.message.contains(want), "want {want:?} in {err}");
        assert_eq!(err.retry_after, None);
    }
}

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "00000000-0000-0000-0000-000000000001";
const CLIENT_SECRET: &str = "client-secret-value";

/// The Entra ID token fake and the server it runs on.
struct Tokens {
    fake: TokenFake,
    _server: Server,
}

fn oauth_setup(lookup: Lookup, calendars: Calendars) -> (Setup, Tokens) {
    let fake = TokenFake::new(TENANT, CLIENT_ID, CLIENT_SECRET);
    let server = fake.start().expect("token endpoint");
    let mut s = Setup::new(calendars, lookup);
    let check = fake.clone();
    s.fake
        .set_auth(sim::EwsAuth::bearer_checked(move |tok| check.is_valid(tok)));
    s.cfg.auth = EwsAuth::OAuth2;
    s.cfg.password = None;
    s.cfg.tenant_id = TENANT.to_string();
    s.cfg.client_id = CLIENT_ID.to_string();
    s.cfg.client_secret = Some(Secret::new(CLIENT_SECRET));
    s.cfg.token_url = fake.url(server.url());
    (
        s,
        Tokens {
            fake,
            _server: server,
        },
    )
}

#[test]
fn oauth2_availability_impersonates_the_first_mailbox_of_each_batch() {
    let c = scenario();
    let boxes: Vec<String> = (0..150)
        .map(|i| format!("user{i:03}@example.com"))
        .collect();
    for b in &boxes {
        c.add_mailbox(b);
    }
    let (s, tokens) = oauth_setup(Lookup::Availability, c);
    let mut source = s.source();
    let got = source.fetch(&boxes, window(), &mut NoWait).expect("fetch");
    assert_eq!(got.len(), 150);
    let reqs = s.fake.requests();
    assert_eq!(reqs.len(), 2);
    for (r, first) in reqs
        .iter()
        .zip(["user000@example.com", "user100@example.com"])
    {
        assert_eq!(r.impersonated.as_deref(), Some(first));
        assert_eq!(r.anchor.as_deref(), Some(first));
        assert!(r
            .header("Authorization")
            .is_some_and(|a| a.starts_with("Bearer sim-token-")));
    }
    // One token for both batches, asked for with the EWS scope.
    let token_requests = tokens.fake.requests();
    assert_eq!(token_requests.len(), 1);
    assert_eq!(
        token_requests[0].scope,
        "https://outlook.office365.com/.default"
    );
    assert_eq!(token_requests[0].grant_type, "client_credentials");
    let first_token = reqs[0].header("Authorization").map(str::to_string);
    assert!(reqs
        .iter()
        .all(|r| r.header("Authorization").map(str::to_string) == first_token));

    // A revoked token costs exactly one new token and one repeat.
    tokens.fake.revoke_all();
    s.fake.clear_requests();
    let got = source
        .fetch(&boxes[..1], window(), &mut NoWait)
        .expect("fetch after refresh");
    assert_eq!(got.len(), 1);
    assert_eq!(tokens.fake.request_count(), 2);
    let auths: Vec<Option<String>> = s
        .fake
        .requests()
        .iter()
        .map(|r| r.header("Authorization").map(str::to_string))
        .collect();
    assert_eq!(auths.len(), 2);
    assert_eq!(auths[0], first_token);
    assert_ne!(auths[1], first_token);

    // Refused also with a fresh token: an error naming the app permission, no endless refresh.
    s.fake.reject_auth(5);
    let err = source
        .fetch(&boxes[..1], window(), &mut NoWait)
        .expect_err("refused");
    assert!(err.message.contains("full_access_as_app"), "{err}");
    assert!(!err.message.contains("sim-token"), "token leaked: {err}");
    assert_eq!(tokens.fake.request_count(), 3);
}

#[test]
fn oauth2_token_errors_name_the_setting() {
    let (mut s, tokens) = oauth_setup(Lookup::Calendar, scenario());
    s.cfg.client_secret = Some(Secret::new("the-secret-id-not-its-value"));
    let err = s
        .fetch(&["alice@example.com"], &mut NoWait)
        .expect_err("bad secret");
    assert!(
        err.message
            .starts_with("could not get an OAuth2 token for EWS"),
        "{err}"
    );
    assert!(err.message.contains("7000215"), "{err}");
    assert!(
        !err.message.contains("the-secret-id"),
        "secret leaked: {err}"
    );
    assert_eq!(s.fake.request_count(), 0, "no EWS request without a token");
    assert_eq!(tokens.fake.request_count(), 1);
}

#[test]
fn oauth2_availability_reanchors_when_the_first_mailbox_cannot_be_impersonated() {
    let (s, _tokens) = oauth_setup(Lookup::Availability, scenario());
    let got = s
        .fetch(
            &["ghost@example.com", "alice@example.com", "bob@example.com"],
            &mut NoWait,
        )
        .expect("fetch");
    let lines = render(&got);
    assert_eq!(lines[0], "error ErrorNonExistentMailbox");
    assert!(lines[1].starts_with("Busy "), "{lines:?}");
    assert!(lines[2].starts_with("OOF "), "{lines:?}");
    let anchors: Vec<Option<String>> = s.fake.requests().into_iter().map(|r| r.anchor).collect();
    assert_eq!(
        anchors,
        [
            Some("ghost@example.com".to_string()),
            Some("alice@example.com".to_string())
        ]
    );

    // Impersonation refused for everyone: a whole-request error, after a bounded number of tries.
    let (s, _tokens) = oauth_setup(Lookup::Availability, scenario());
    s.fake.deny_impersonation(true);
    let err = s
        .fetch(
            &[
                "alice@example.com",
                "bob@example.com",
                "carol@example.com",
                "x@example.com",
            ],
            &mut NoWait,
        )
        .expect_err("denied");
    assert!(err.message.contains("ApplicationImpersonation"), "{err}");
    assert_eq!(s.fake.request_count(), 3);
}

#[test]
fn oauth2_calendar_lookup_impersonates_each_mailbox() {
    let (s, tokens) = oauth_setup(Lookup::Calendar, scenario());
    let boxes = ["alice@example.com", "bob@example.com"];
    let got = s.fetch(&boxes, &mut NoWait).expect("fetch");
    assert_eq!(got.len(), 2);
    for (r, b) in s.fake.requests().iter().zip(boxes) {
        assert_eq!(r.impersonated.as_deref(), Some(b));
        assert_eq!(r.anchor.as_deref(), Some(b));
    }
    assert_eq!(tokens.fake.request_count(), 1);
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ews/requests")
}

/// Every request shape the client sends, kept as a fixture for the schema check. Set
/// `UPDATE_FIXTURES=1` to rewrite them after a deliberate change.
#[test]
fn request_fixtures_match_the_builders() {
    let w = Window {
        start: parse_rfc3339("2026-07-01T00:00:00Z").expect("time"),
        end: parse_rfc3339("2026-07-02T00:00:00Z").expect("time"),
    };
    let boxes = vec![
        "user1@example.com".to_string(),
        "o'brien&sons@example.com".to_string(),
    ];
    let shapes = [
        (
            "get-user-availability.xml",
            request::get_user_availability(&boxes, w, None),
        ),
        (
            "get-user-availability-impersonated.xml",
            request::get_user_availability(&boxes, w, Some("user1@example.com")),
        ),
        (
            "find-item.xml",
            request::find_item("o'brien&sons@example.com", w, None),
        ),
        (
            "find-item-impersonated.xml",
            request::find_item("user1@example.com", w, Some("user1@example.com")),
        ),
    ];
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    for (name, text) in shapes {
        let path = fixture_dir().join(name);
        if update {
            std::fs::create_dir_all(fixture_dir()).expect("fixture dir");
            std::fs::write(&path, &text).expect("write fixture");
            continue;
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            stored,
            text,
            "{} differs from the builder; rerun with UPDATE_FIXTURES=1 and then tests/ews-validate-fixtures.sh",
            path.display()
        );
    }
}
