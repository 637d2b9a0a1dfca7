//! The STARFACE client over real HTTP against the fake PBX (`ess_sim::starface`).

use std::time::Duration;

use ess::config::{LoginType, Secret, StarfaceConfig};
use ess::http::{HttpClient, HttpOptions, Request};
use ess::model::Presence;
use ess::starface::{NumberKind, Starface, StarfaceError, Value};
use ess_sim::server::{HttpReply, Server};
use ess_sim::starface::{
    SimDestination, SimLoginType, SimNumberType, SimTrigger, StarfaceSim, DEFAULT_ADMIN_LOGIN,
    DEFAULT_ADMIN_PASSWORD,
};

const GROUP: &str = "Exchange-Sync";

fn http(timeout: Duration) -> HttpClient {
    HttpClient::new(&HttpOptions {
        timeout,
        max_body: 1 << 20,
        ca_file: None,
        insecure_tls: false,
    })
    .expect("client")
}

fn config(url: &str, password: &str, login_type: LoginType) -> StarfaceConfig {
    StarfaceConfig {
        url: url.to_string(),
        login: DEFAULT_ADMIN_LOGIN.to_string(),
        password: Secret::new(password),
        login_type,
        group: GROUP.to_string(),
        insecure_tls: false,
    }
}

fn client(server: &Server) -> Starface {
    Starface::new(
        &config(server.url(), DEFAULT_ADMIN_PASSWORD, LoginType::Internal),
        http(Duration::from_secs(5)),
    )
}

/// A PBX with three handled users and one without e-mail.
fn pbx() -> StarfaceSim {
    let sim = StarfaceSim::new();
    sim.user(1, "1001", "Alice@Example.com ", "Alice", "Ander")
        .user(2, "1002", "bob@example.com", "Bob", "Berg")
        .user(3, "1003", "", "Carl", "Cole")
        .user(4, "1004", "dora@example.com", "Dora", "Dahl")
        .group(10, GROUP, &[1, 2, 3])
        .group(11, "Sales", &[4])
        .number(1, "21", SimNumberType::Internal)
        .number(1, "4972112345621", SimNumberType::External)
        .number(1, "4972112345699", SimNumberType::External)
        .group_number(11, "50")
        .redirect(
            "r-ext",
            1,
            "+4972112345621",
            SimTrigger::Always,
            SimDestination::Phone("01715550100".into()),
            false,
        )
        .redirect(
            "r-int",
            1,
            "21",
            SimTrigger::Always,
            SimDestination::Phone("22".into()),
            false,
        )
        .redirect(
            "r-busy",
            1,
            "+4972112345621",
            SimTrigger::Busy,
            SimDestination::Mailbox("vm1".into()),
            false,
        )
        .redirect(
            "r-empty",
            1,
            "004972112345699",
            SimTrigger::Always,
            SimDestination::Phone(String::new()),
            false,
        )
        .group_redirect(
            "r-group",
            1,
            "50",
            SimDestination::Phone("23".into()),
            false,
        );
    sim
}

fn json(body: &[u8]) -> Value {
    Value::parse(std::str::from_utf8(body).expect("UTF-8")).expect("JSON")
}

/// GETs a path with a token of its own (raw HTTP, not the client under test), to compare a PUT
/// body with what the PBX served.
fn raw_get(server: &Server, path: &str) -> Value {
    let http = http(Duration::from_secs(5));
    let json_request = |method, url: String| {
        Request::new(method, url)
            .header("X-Version", "2")
            .header("Content-Type", "application/json")
    };
    let url = format!("{}/rest/login", server.url());
    let template = http
        .send(&json_request("GET", url.clone()))
        .expect("template");
    let template = json(&template.body);
    let nonce = template
        .get("nonce")
        .and_then(Value::as_str)
        .expect("nonce");
    let secret = ess::starface::auth::login_secret(
        LoginType::Internal,
        DEFAULT_ADMIN_LOGIN,
        nonce,
        DEFAULT_ADMIN_PASSWORD,
    );
    let body = ess::starface::objects::login_request(&template, "Internal", &secret).unwrap();
    let resp = http
        .send(&json_request("POST", url).body(body.to_json()))
        .expect("login");
    let token = json(&resp.body);
    let token = token
        .get("token")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    let resp = http
        .send(
            &json_request("GET", format!("{}/rest{path}", server.url())).header("authToken", token),
        )
        .expect("get");
    assert_eq!(resp.status, 200, "{path}");
    json(&resp.body)
}

#[test]
fn login_sends_the_secret_and_logout_deletes_the_token() {
    let sim = pbx();
    let server = sim.start().unwrap();
    let mut sf = client(&server);
    assert!(!sf.is_logged_in());
    sf.logout().unwrap();
    assert_eq!(
        sim.request_count("DELETE /rest/login"),
        0,
        "no-op when not logged in"
    );
    sf.login().unwrap();
    assert!(sf.is_logged_in());
    assert_eq!(sim.logins(), 1);
    assert_eq!(sim.request_count("GET /rest/login"), 1);
    assert_eq!(sim.request_count("POST /rest/login"), 1);
    assert_eq!(sim.active_tokens(), 1);
    sf.logout().unwrap();
    assert!(!sf.is_logged_in());
    assert_eq!(sim.request_count("DELETE /rest/login"), 1);
    assert_eq!(sim.logouts(), 1);
    assert_eq!(sim.active_tokens(), 0);
    assert!(
        sim.writes().is_empty(),
        "login and logout are not PBX writes"
    );
}

#[test]
fn active_directory_login() {
    let sim = pbx();
    sim.admin("jdoe", "pässwort", SimLoginType::ActiveDirectory);
    let server = sim.start().unwrap();
    let mut cfg = config(server.url(), "pässwort", LoginType::ActiveDirectory);
    cfg.login = "jdoe".into();
    let mut sf = Starface::new(&cfg, http(Duration::from_secs(5)));
    sf.login().unwrap();
    assert_eq!(sim.logins(), 1);
    // The same credentials with the internal formula are refused.
    cfg.login_type = LoginType::Internal;
    let mut wrong = Starface::new(&cfg, http(Duration::from_secs(5)));
    let err = wrong.login().unwrap_err();
    assert!(matches!(err, StarfaceError::LoginRejected { .. }), "{err}");
}

#[test]
fn wrong_password_tells_the_admin_what_to_check_without_the_password() {
    let sim = pbx();
    let server = sim.start().unwrap();
    let mut sf = Starface::new(
        &config(server.url(), "wrong-pass", LoginType::Internal),
        http(Duration::from_secs(5)),
    );
    let err = sf.login().unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, StarfaceError::LoginRejected { status: 400, .. }),
        "{text}"
    );
    assert!(text.contains("login, password and login_type"), "{text}");
    assert!(!text.contains("wrong-pass"), "{text}");
    assert!(!err.is_unreachable());
    // Other calls fail the same way, without a write.
    assert!(matches!(
        sf.directory(GROUP),
        Err(StarfaceError::LoginRejected { .. })
    ));
    assert!(sim.writes().is_empty());
}

#[test]
fn calls_log_in_lazily_and_again_after_the_token_expires() {
    let sim = pbx();
    let server = sim.start().unwrap();
    let mut sf = client(&server);
    let pc = sf.phone_config(1).unwrap();
    assert!(!pc.dnd);
    assert_eq!(sim.logins(), 1);
    sf.phone_config(1).unwrap();
    assert_eq!(sim.logins(), 1, "the token is reused");
    sim.expire_tokens();
    let pc = sf.phone_config(1).unwrap();
    assert!(!pc.dnd);
    assert_eq!(sim.logins(), 2, "logged in again once after the 401");
    assert_eq!(
        sim.request_count("GET /rest/users/{id}/phoneconfig"),
        4,
        "401 + retry"
    );
    // Expired in the middle of a write: the PUT is retried once and lands once.
    sim.expire_tokens();
    sf.set_dnd(1, &pc, true).unwrap();
    assert_eq!(sim.dnd(1), Some(true));
    assert_eq!(sim.logins(), 3);
    assert_eq!(sim.request_count("PUT /rest/users/{id}/phoneconfig"), 2);
}

#[test]
fn the_token_is_renewed_before_its_age_limit() {
    let sim = pbx();
    let server = sim.start().unwrap();
    let mut sf = client(&server).with_token_max_age(Duration::ZERO);
    sf.phone_config(1).unwrap();
    sf.phone_config(1).unwrap();
    assert_eq!(sim.logins(), 2, "a token older than the limit is not used");
    assert_eq!(sim.logouts(), 1, "the old session is ended before renewal");
    assert_eq!(sim.active_tokens(), 1);
    assert_eq!(
        sim.request_count("GET /rest/users/{id}/phoneconfig"),
        2,
        "no 401 round trips"
    );
}

#[test]
fn directory_lists_members_with_email_and_warns_about_the_others() {
    let sim = pbx();
    sim.user(5, "1005", "BOB@example.com", "Bobby", "Tables")
        .user(6, "1006", "eve@example.com", "Eve", "Ek")
        .group(12, "Twins", &[2, 5, 6]);
    sim.set_extra_fields(true);
    let server = sim.start().unwrap();
    let mut sf = client(&server);
    let dir = sf.directory(GROUP).unwrap();
    let users: Vec<_> = dir
        .users
        .iter()
        .map(|u| (u.id, u.login.as_str(), u.email.as_str(), u.name.as_str()))
        .collect();
    assert_eq!(
        users,
        [
            (1, "1001", "alice@example.com", "Alice Ander"),
            (2, "1002", "bob@example.com", "Bob Berg")
        ]
    );
    assert_eq!(
        dir.warnings,
        ["STARFACE user 1003 (Carl Cole, id 3) in group 'Exchange-Sync' has no e-mail address; skipped until one is set"]
    );
    let again = sf.directory(GROUP).unwrap();
    assert_eq!(again.users, dir.users);
    assert_eq!(again.warnings, dir.warnings, "the same answer on a refresh");

    let twins = sf.directory("Twins").unwrap();
    let ids: Vec<_> = twins.users.iter().map(|u| u.id).collect();
    assert_eq!(ids, [6]);
    assert_eq!(
        twins.warnings,
        ["STARFACE users 1002, 1005 in group 'Twins' share the e-mail address bob@example.com; all of them are skipped until each has its own"]
    );
    assert_eq!(sim.requests().get("GET /rest/users"), Some(&3));
    assert!(sim.writes().is_empty());
}

#[test]
fn a_missing_group_lists_the_groups_that_exist() {
    let sim = pbx();
    let server = sim.start().unwrap();
    let mut sf = client(&server);
    let err = sf.directory("Exchange Sync").unwrap_err();
    assert_eq!(
        err.to_string(),
        "STARFACE group 'Exchange Sync' does not exist; check [starface] group. Groups on the PBX: 'Exchange-Sync', 'Sales'"
    );
    assert_eq!(sim.request_count("GET /rest/groups/{id}"), 0);
}

#[test]
fn dnd_writes_back_the_object_it_read_with_only_dnd_changed() {
    for extra in [false, true] {
        let sim = pbx();
        sim.set_extra_fields(extra);
        let server = sim.start().unwrap();
        let served = raw_get(&server, "/users/2/phoneconfig");
        sim.reset_records();
        let mut sf = client(&server);
        let pc = sf.phone_config(2).unwrap();
        assert_eq!(pc.raw(), &served);
        sf.set_dnd(2, &pc, false).unwrap();
        assert!(
            sim.writes().is_empty(),
            "no write when DND already has the value"
        );
        sf.set_dnd(2, &pc, true).unwrap();
        assert_eq!(sim.dnd(2), Some(true));
        let writes = sim.writes();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].method, "PUT");
        assert_eq!(writes[0].path, "/rest/users/2/phoneconfig");
        let mut expect = served.clone();
        expect.set("doNotDisturb", Value::Bool(true));
        assert_eq!(writes[0].body, expect.to_json(), "extra fields: {extra}");
        if extra {
            assert!(writes[0].body.contains(
                r#""simFutureObject":{"nested":[1,"zwei \"2\" ä",null],"ratio":1.50e2}"#
            ));
        }
        let pc = sf.phone_config(2).unwrap();
        assert!(pc.dnd);
        sf.set_dnd(2, &pc, false).unwrap();
        assert_eq!(sim.dnd(2), Some(false));
        assert_eq!(sim.writes().len(), 2);
    }
}

#[test]
fn forwardings_are_the_always_redirects_on_own_numbers_classified() {
    let sim = pbx();
    sim.set_extra_fields(true);
    let server = sim.start().unwrap();
    let mut sf = client(&server);
    let numbers = sf.numbers().unwrap();
    assert_eq!(numbers.len(), 3, "group numbers are not a user's");
    let list = sf.forwardings(1, &numbers).unwrap();
    let got: Vec<_> = list
        .iter()
        .map(|f| {
            (
                f.id.as_str(),
                f.number.as_str(),
                f.kind,
                f.enabled,
                f.destination.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "r-ext",
                "+4972112345621",
                NumberKind::External,
                false,
                Some("01715550100")
            ),
            ("r-int", "21", NumberKind::Internal, false, Some("22")),
            (
                "r-empty",
                "004972112345699",
                NumberKind::External,
                false,
                None
            ),
        ]
    );
    assert_eq!(sim.request_count("GET /rest/redirects"), 1);
    assert_eq!(sim.request_count("GET /rest/phonenumbers"), 1);
    assert!(sim.writes().is_empty());
}

#[test]
fn forwarding_on_and_off_keeps_every_field() {
    let sim = pbx();
    sim.set_extra_fields(true);
    let server = sim.start().unwrap();
    let served = raw_get(&server, "/redirects?actOnBehalfOf=1");
    sim.reset_records();
    let mut sf = client(&server);
    let numbers = sf.numbers().unwrap();
    let list = sf.forwardings(1, &numbers).unwrap();
    let external: Vec<_> = list
        .iter()
        .filter(|f| f.kind == NumberKind::External && f.destination.is_some())
        .collect();
    assert_eq!(external.len(), 1);
    sf.set_forwarding(1, external[0], true).unwrap();
    assert_eq!(sim.redirect_enabled("r-ext"), Some(true));
    assert_eq!(
        sim.redirect_enabled("r-int"),
        Some(false),
        "internal untouched"
    );
    let writes = sim.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].path, "/rest/redirects/r-ext");
    assert_eq!(writes[0].query, "actOnBehalfOf=1");
    let mut expect = served
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r.get("id").and_then(Value::as_str) == Some("r-ext"))
        .unwrap()
        .clone();
    expect.set("enabled", Value::Bool(true));
    assert_eq!(writes[0].body, expect.to_json());

    // With internal calls too.
    let internal = list.iter().find(|f| f.id == "r-int").unwrap();
    sf.set_forwarding(1, internal, true).unwrap();
    assert_eq!(sim.redirect_enabled("r-int"), Some(true));

    // And off again, from a fresh read.
    for f in sf
        .forwardings(1, &numbers)
        .unwrap()
        .iter()
        .filter(|f| f.enabled)
    {
        sf.set_forwarding(1, f, false).unwrap();
    }
    assert_eq!(sim.redirect_enabled("r-ext"), Some(false));
    assert_eq!(sim.redirect_enabled("r-int"), Some(false));
    assert_eq!(sim.writes().len(), 4);
}

#[test]
fn a_redirect_without_destination_is_never_switched_on() {
    let sim = pbx();
    let server = sim.start().unwrap();
    let mut sf = client(&server);
    let numbers = sf.numbers().unwrap();
    let list = sf.forwardings(1, &numbers).unwrap();
    let empty = list.iter().find(|f| f.id == "r-empty").unwrap();
    assert_eq!(empty.destination, None);
    let err = sf.set_forwarding(1, empty, true).unwrap_err();
    assert!(
        matches!(err, StarfaceError::NoDestination { user: 1, .. }),
        "{err}"
    );
    assert!(sim.writes().is_empty());
    assert_eq!(sim.redirect_enabled("r-empty"), Some(false));
}

#[test]
fn pbx_down_is_an_unreachable_error_and_recovery_works() {
    let sim = pbx();
    let server = sim.start().unwrap();
    let port = server.port();
    let mut sf = Starface::new(
        &config(server.url(), DEFAULT_ADMIN_PASSWORD, LoginType::Internal),
        http(Duration::from_secs(2)),
    );
    sf.login().unwrap();

    // Restarting: 503.
    sim.set_down(true);
    let err = sf.phone_config(1).unwrap_err();
    assert!(
        matches!(err, StarfaceError::Status { status: 503, .. }),
        "{err}"
    );
    assert!(err.is_unreachable());
    sim.set_down(false);

    // A failing request: 500, not "unreachable".
    sim.fail_next(1);
    let err = sf.phone_config(1).unwrap_err();
    assert!(
        matches!(err, StarfaceError::Status { status: 500, .. }),
        "{err}"
    );
    assert!(!err.is_unreachable());
    sim.fail_path("/rest/users");
    assert!(sf.directory(GROUP).is_err());
    sim.clear_faults();

    // Gone: connection refused.
    drop(server);
    let err = sf.phone_config(1).unwrap_err();
    assert!(matches!(err, StarfaceError::Http { .. }), "{err}");
    assert!(err.is_unreachable(), "{err}");
    let err = sf.set_chat(1, Some(Presence::Available), None).unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(!err.to_string().contains("de.vertico"), "{err}");

    // Back on the same port (after a restart the PBX has forgotten the token).
    let server = sim.start_on(port).unwrap();
    sim.expire_tokens();
    assert!(!sf.phone_config(1).unwrap().dnd);
    assert_eq!(sim.logins(), 2);
    drop(server);
}

#[test]
fn slow_answers_time_out() {
    let sim = pbx();
    let server = sim.start().unwrap();
    let mut sf = Starface::new(
        &config(server.url(), DEFAULT_ADMIN_PASSWORD, LoginType::Internal),
        http(Duration::from_millis(200)),
    );
    sf.login().unwrap();
    sim.set_delay(Duration::from_millis(600));
    let err = sf.phone_config(1).unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    sim.clear_faults();
}

#[test]
fn chat_call_arrives_with_types_and_text_intact() {
    let sim = pbx();
    sim.rpc_method("chat.setPresence");
    let server = sim.start().unwrap();
    let mut sf = client(&server).with_rpc_method("chat.setPresence");
    let text = "Weekly <sync> & \"Grüße\" 😀";
    sf.set_chat(2, Some(Presence::DoNotDisturb), Some(text))
        .unwrap();
    assert_eq!(
        sim.chat(2),
        Some(("DO_NOT_DISTURB".to_string(), text.to_string()))
    );
    sf.set_chat(2, None, None).unwrap();
    let calls = sim.chat_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].presence, "");
    assert!(!calls[1].change_text);
    assert_eq!(calls[1].text, "");
    assert_eq!(
        sim.chat(2),
        Some(("DO_NOT_DISTURB".to_string(), text.to_string()))
    );
    assert_eq!(sim.logins(), 0, "XML-RPC does not use the REST login");
    assert_eq!(sim.request_count("POST /xml-rpc"), 2);
}

#[test]
fn chat_faults_are_errors_without_secrets() {
    let sim = pbx();
    let server = sim.start().unwrap();
    // The fake publishes the default method name; this one is not published.
    let mut sf = client(&server).with_rpc_method("not.published");
    let err = sf.set_chat(1, Some(Presence::Available), None).unwrap_err();
    assert!(
        matches!(
            err,
            StarfaceError::RpcFault {
                code: Some(-32601),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("not.published"), "{err}");
    // A wrong password: the fake answers with a fault, and no hash shows anywhere.
    let mut bad = Starface::new(
        &config(server.url(), "wrong", LoginType::Internal),
        http(Duration::from_secs(5)),
    );
    let err = bad.set_chat(1, None, Some("x")).unwrap_err();
    let shown = format!("{err} {err:?} {bad:?}");
    assert!(shown.contains("authentication failed"), "{shown}");
    assert!(
        !shown.contains(&ess::starface::auth::sha512_hex("wrong")[..16]),
        "{shown}"
    );
    assert!(!shown.contains("wrong"), "{shown}");
    // Unknown user: a fault from the module.
    let mut sf = client(&server);
    let err = sf
        .set_chat(99, Some(Presence::Available), None)
        .unwrap_err();
    assert!(
        matches!(err, StarfaceError::RpcFault { code: Some(3), .. }),
        "{err}"
    );
    let err = sf.set_chat(1 << 40, None, None).unwrap_err();
    assert!(
        matches!(err, StarfaceError::AccountIdOutOfRange { .. }),
        "{err}"
    );
    assert!(sim.chat_calls().is_empty());
}

#[test]
fn debug_output_holds_no_secrets() {
    let sim = pbx();
    let server = sim.start().unwrap();
    let mut sf = client(&server);
    sf.login().unwrap();
    let shown = format!("{sf:?}");
    assert!(!shown.contains(DEFAULT_ADMIN_PASSWORD), "{shown}");
    assert!(shown.contains("logged_in: true"), "{shown}");
}

/// A PBX that logs in fine and then answers `/rest/users` with `body`.
fn broken_pbx(status: u16, body: &'static str) -> Server {
    Server::start(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/rest/login") => {
            HttpReply::json(200, r#"{"loginType":"Internal","nonce":"n","secret":null}"#)
        }
        ("POST", "/rest/login") => HttpReply::json(200, r#"{"token":"f3a9c2e1-tok"}"#),
        ("GET", "/rest/groups") => {
            HttpReply::json(200, format!(r#"[{{"id":1,"groupname":"{GROUP}"}}]"#))
        }
        ("GET", "/rest/groups/1") => {
            HttpReply::json(200, r#"{"assignableUsers":[{"id":1,"assigned":true}]}"#)
        }
        _ => HttpReply::json(status, body),
    })
    .unwrap()
}

#[test]
fn malformed_answers_are_errors_not_panics() {
    let cases: &[(u16, &str, &str)] = &[
        (
            200,
            r#"[{"id":1,"login":"a","email":"a@x"#,
            "JSON text ends in the middle of a value",
        ),
        (
            200,
            r#"{"id":1}"#,
            "expected the user list as an array, got an object",
        ),
        (
            200,
            r#"[{"id":"1"}]"#,
            "user #0: \"id\" is a string, not an integer",
        ),
        (200, "", "JSON text ends in the middle of a value"),
        (200, "<html>", "invalid JSON at byte 0"),
        (
            200,
            "[] x",
            "unexpected text after the JSON value at byte 3",
        ),
        (204, "", "failed with HTTP 204"),
        (
            500,
            "Internal\nerror",
            "failed with HTTP 500: Internal error",
        ),
        // Still 401 after logging in again: the user lacks rights.
        (
            401,
            "{}",
            "was refused (HTTP 401) right after a fresh login",
        ),
        // A server that echoes the request must not make the token show up in the message.
        (
            500,
            "bad token f3a9c2e1-tok",
            "failed with HTTP 500: bad token [redacted]",
        ),
    ];
    for &(status, body, expect) in cases {
        let server = broken_pbx(status, body);
        let mut sf = client(&server);
        let err = sf.directory(GROUP).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expect), "{body:?}: {text}");
        assert!(text.contains("/rest/users"), "{text}");
    }
}
