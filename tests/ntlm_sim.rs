//! The product's NTLMv2 messages against the EWS fake's own, independently written NTLM
//! acceptor (ess-sim's `ntlm` module): the two implementations agree on every step, and the
//! fake refuses what it must.

#[path = "ntlm_client/mod.rs"]
mod ntlm_client;

use std::net::TcpStream;
use std::time::Duration;

use ess_sim::calendar::Calendars;
use ess_sim::ews::{EwsAuth, EwsFake};
use ntlm_client::{exchange, login, login_with};

fn connect(server: &ess_sim::server::Server) -> TcpStream {
    let conn = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    conn
}

/// Past authentication the fake parses the body, which here is no EWS request.
fn served(reply: &ntlm_client::Reply) -> bool {
    reply.status == 500
        && String::from_utf8_lossy(&reply.body).contains("ErrorInvalidServerVersion")
}

#[test]
fn both_username_forms_authenticate_one_connection() {
    for username in ["EXAMPLE\\svc-starface", "svc-starface@example.com"] {
        let fake = EwsFake::new(Calendars::default(), EwsAuth::ntlm(username, "pässword 1"));
        let server = fake.serve().expect("serve");
        let mut conn = connect(&server);
        let reply = login(&mut conn, "NTLM", username, "pässword 1", None);
        assert!(
            served(&reply),
            "{username}: {} {:?}",
            reply.status,
            fake.ntlm_failures()
        );
        assert!(
            served(&exchange(&mut conn, None, "")),
            "the connection stays authenticated"
        );
        assert_eq!(fake.ntlm_logins(), 1);
        let other = exchange(&mut connect(&server), None, "");
        assert_eq!(
            other.status, 401,
            "a new connection must authenticate again"
        );
    }
}

#[test]
fn a_negotiate_only_fake_takes_raw_ntlmssp_in_negotiate() {
    let fake = EwsFake::new(
        Calendars::default(),
        EwsAuth::ntlm_negotiate_only("EXAMPLE\\svc", "pw"),
    );
    let server = fake.serve().expect("serve");
    let mut conn = connect(&server);
    let first = exchange(&mut conn, None, "");
    assert_eq!(first.header_values("WWW-Authenticate"), ["Negotiate"]);
    let reply = login(
        &mut connect(&server),
        "Negotiate",
        "EXAMPLE\\svc",
        "pw",
        None,
    );
    assert!(served(&reply), "{:?}", fake.ntlm_failures());
}

/// Username, password, channel binding, a change to AUTHENTICATE, and the fake's reason.
type Case<'a> = (
    &'a str,
    &'a str,
    Option<[u8; 16]>,
    &'a dyn Fn(&mut Vec<u8>),
    &'a str,
);

#[test]
fn the_fake_refuses_wrong_credentials_and_tampering() {
    let fake = EwsFake::new(Calendars::default(), EwsAuth::ntlm("EXAMPLE\\svc", "pw"));
    let server = fake.serve().expect("serve");
    let flip_flag: &dyn Fn(&mut Vec<u8>) = &|m| m[62] ^= 0x01;
    let bind: Option<[u8; 16]> = Some([7; 16]);
    let cases: [Case; 4] = [
        (
            "EXAMPLE\\svc",
            "wrong",
            None,
            &|_| {},
            "wrong password for EXAMPLE\\svc",
        ),
        ("OTHER\\svc", "pw", None, &|_| {}, "unknown user OTHER\\svc"),
        ("EXAMPLE\\svc", "pw", None, flip_flag, "wrong MIC"),
        (
            "EXAMPLE\\svc",
            "pw",
            bind,
            &|_| {},
            "no (all-zero) channel binding for plain HTTP",
        ),
    ];
    for (i, (username, password, bindings, tamper, why)) in cases.into_iter().enumerate() {
        let mut conn = connect(&server);
        let reply = login_with(&mut conn, "NTLM", username, password, bindings, tamper);
        assert_eq!(reply.status, 401, "{why}");
        assert_eq!(fake.ntlm_failures().get(i).map(String::as_str), Some(why));
    }
    assert_eq!(fake.ntlm_logins(), 0);
}
