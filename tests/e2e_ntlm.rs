//! End to end with `auth = "ntlm"`: the real binary against the EWS fake's NTLM mode (its own,
//! independent NTLMv2 check) over real HTTP, for `once` and `check`, a Negotiate-only server and
//! wrong credentials.

mod common;

use common::*;
use ess_sim::ews::EwsAuth;

const AT: &str = "2026-12-01T09:30:00Z";

fn ntlm_world(auth: EwsAuth) -> World {
    let mut w = World::new(Backend::Ews);
    w.ews.set_auth(auth);
    w.set("exchange.auth", "\"ntlm\"");
    w.calendars.add(
        ALICE,
        appt(
            "2026-12-01T09:00:00Z",
            "2026-12-01T10:30:00Z",
            Busy,
            "Weekly sync",
        ),
    );
    w
}

/// No password, and no NTLM message (base64 of "NTLMSSP" starts "TlRMTVNTUA"), in the output.
fn assert_no_ntlm_secrets(w: &World, out: &Output) {
    w.assert_no_secrets(out);
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.contains("TlRMTVNTUA"),
            "an NTLM message leaked:\n{out}"
        );
    }
}

#[test]
fn once_authenticates_with_ntlm_and_acts() {
    for auth in [
        EwsAuth::ntlm(EWS_USER, EWS_PASSWORD),
        EwsAuth::ntlm_negotiate_only(EWS_USER, EWS_PASSWORD),
    ] {
        let mut w = ntlm_world(auth.clone());
        let out = w.once(AT, &[]);
        out.expect_code(0);
        assert_eq!(w.pbx.dnd(ALICE_ID), Some(true), "{auth:?}\n{out}");
        assert_eq!(w.ews.ntlm_failures(), Vec::<String>::new(), "{out}");
        assert_eq!(w.ews.ntlm_logins(), 1, "one handshake for the run\n{out}");
        assert_no_ntlm_secrets(&w, &out);
    }
}

#[test]
fn check_passes_with_ntlm() {
    let mut w = ntlm_world(EwsAuth::ntlm(EWS_USER, EWS_PASSWORD));
    let out = w.check();
    out.expect_code(0);
    assert!(out.stdout.contains("EWS: NTLM"), "{out}");
}

#[test]
fn wrong_credentials_name_ntlm_and_the_user() {
    let mut w = ntlm_world(EwsAuth::ntlm(EWS_USER, "another password"));
    let out = w.once(AT, &[]);
    out.expect_code(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("refused NTLM authentication of 'svc-sync@example.com'"),
        "{out}"
    );
    assert!(
        w.ews.ntlm_failures().len() <= 3,
        "{:?}",
        w.ews.ntlm_failures()
    );
    assert_ne!(w.pbx.dnd(ALICE_ID), Some(true), "nothing switched on");
    assert_no_ntlm_secrets(&w, &out);
    let out = w.check();
    out.expect_code(1);
}

#[test]
fn a_username_without_a_domain_is_a_configuration_error() {
    let mut w = ntlm_world(EwsAuth::ntlm(EWS_USER, EWS_PASSWORD));
    w.set("exchange.username", "\"svc-sync\"");
    let out = w.check();
    out.expect_code(2);
    assert!(
        format!("{}{}", out.stdout, out.stderr)
            .contains("give DOMAIN\\user or the UPN user@domain"),
        "{out}"
    );
}

#[test]
fn a_closed_connection_is_authenticated_again_on_the_next() {
    let mut w = ntlm_world(EwsAuth::ntlm(EWS_USER, EWS_PASSWORD));
    w.set("exchange.lookup", "\"calendar\"");
    // NEGOTIATE, AUTHENTICATE with the first mailbox's request, the second mailbox's request
    // without Authorization; then the server closes and the third needs a new handshake.
    w.ews_max_requests_per_connection(Some(3));
    let out = w.once(AT, &[]);
    out.expect_code(0);
    assert_eq!(w.pbx.dnd(ALICE_ID), Some(true), "{out}");
    assert_eq!(w.ews.ntlm_failures(), Vec::<String>::new(), "{out}");
    assert_eq!(w.ews.ntlm_logins(), 2, "{out}");
    assert_eq!(w.connects().0, 2, "{out}");
}

/// One `EwsSource` is one run: after three refused handshakes it tries no further one (the
/// daemon's back-off would make this a minutes-long test with the binary).
#[test]
fn a_run_stops_trying_after_three_refusals() {
    use ess::config::{EwsAuth as Auth, ExchangeConfig, Lookup, Secret};
    use ess::exchange::{CalendarSource, NoWait};
    use ess::http::{HttpClient, HttpOptions};
    let fake = ess_sim::ews::EwsFake::new(
        ess_sim::calendar::Calendars::new(),
        EwsAuth::ntlm(EWS_USER, EWS_PASSWORD),
    );
    let server = fake.serve().expect("serve");
    let cfg = ExchangeConfig {
        backend: ess::config::Backend::Ews,
        url: format!("{}{}", server.url(), ess_sim::ews::EWS_PATH),
        auth: Auth::Ntlm,
        username: EWS_USER.to_string(),
        password: Some(Secret::new("another password")),
        lookup: Lookup::Availability,
        impersonation: false,
        tenant_id: String::new(),
        client_id: String::new(),
        client_secret: None,
        token_url: String::new(),
        graph_url: String::new(),
        ca_file: None,
        timeout: std::time::Duration::from_secs(10),
    };
    let http = HttpClient::new(&HttpOptions::default()).expect("client");
    let mut source = ess::exchange::ews::EwsSource::new(&cfg, http);
    let window = ess::model::Window {
        start: 1_764_576_000,
        end: 1_764_662_400,
    };
    let mailboxes = vec![ALICE.to_string()];
    let mut errors = Vec::new();
    for _ in 0..5 {
        let err = source
            .fetch(&mailboxes, window, &mut NoWait)
            .expect_err("refused");
        errors.push(err.message);
    }
    assert_eq!(fake.ntlm_failures().len(), 3, "{errors:#?}");
    for e in &errors[..3] {
        assert!(
            e.contains("refused NTLM authentication of 'svc-sync@example.com'"),
            "{e}"
        );
    }
    for e in &errors[3..] {
        assert!(
            e.contains("was refused 3 times; not trying again until restart"),
            "{e}"
        );
        assert!(!e.contains("another password"), "{e}");
    }
}
