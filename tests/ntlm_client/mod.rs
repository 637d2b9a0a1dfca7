//! A minimal HTTP/1.1 client for the NTLM tests: one connection, requests in order, each
//! optionally with an `Authorization` token, and the NTLM handshake built from the product's
//! message functions (`ess::http::ntlm`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use ess::http::ntlm::{self, ClientInput, Identity};

pub trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One request on `conn` with an optional `Authorization` token, read to the end of its body.
pub fn exchange(conn: &mut dyn Stream, auth: Option<(&str, &[u8])>, body: &str) -> Reply {
    let mut request = format!(
        "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some((scheme, token)) = auth {
        let b64 = base64::engine::general_purpose::STANDARD.encode(token);
        request.push_str(&format!("Authorization: {scheme} {b64}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    conn.write_all(request.as_bytes()).expect("send");
    conn.flush().expect("flush");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("status line")[9..12]
        .parse()
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    let length: usize = reply.header_values("Content-Length")[0]
        .parse()
        .expect("length");
    reply.body = vec![0; length];
    conn.read_exact(&mut reply.body).expect("body");
    reply
}

pub fn now_filetime() -> u64 {
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    (unix.as_secs() + 11_644_473_600) * 10_000_000 + u64::from(unix.subsec_nanos() / 100)
}

pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out).expect("random");
    out
}

/// NEGOTIATE → CHALLENGE → AUTHENTICATE on `conn`, the last carrying the request; returns the
/// final reply.
pub fn login(
    conn: &mut dyn Stream,
    scheme: &str,
    username: &str,
    password: &str,
    channel_bindings: Option<[u8; 16]>,
) -> Reply {
    login_with(conn, scheme, username, password, channel_bindings, &|_| {})
}

/// As `login`, with `tamper` applied to the AUTHENTICATE message before it is sent.
pub fn login_with(
    conn: &mut dyn Stream,
    scheme: &str,
    username: &str,
    password: &str,
    channel_bindings: Option<[u8; 16]>,
    tamper: &dyn Fn(&mut Vec<u8>),
) -> Reply {
    let first = exchange(conn, None, "");
    assert_eq!(first.status, 401);
    assert!(
        first.header_values("WWW-Authenticate").contains(&scheme),
        "the server offers {scheme}: {:?}",
        first.headers
    );
    let negotiate = ntlm::negotiate();
    let challenge_reply = exchange(conn, Some((scheme, &negotiate)), "");
    assert_eq!(challenge_reply.status, 401);
    let value = challenge_reply.header_values("WWW-Authenticate")[0].to_string();
    let token = value
        .strip_prefix(&format!("{scheme} "))
        .expect("a challenge in the same scheme");
    let challenge = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("base64 challenge");
    let input = ClientInput {
        client_challenge: random(),
        now_filetime: now_filetime(),
        channel_bindings,
    };
    let identity = Identity::parse(username);
    let mut authenticate = ntlm::authenticate(
        &identity,
        &ntlm::nt_hash(password),
        &negotiate,
        &challenge,
        &input,
    )
    .expect("AUTHENTICATE");
    tamper(&mut authenticate);
    exchange(conn, Some((scheme, &authenticate)), "<request/>")
}
