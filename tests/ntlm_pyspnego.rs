//! Interoperability of the product's NTLMv2 messages (`ess::http::ntlm`) with an independent
//! NTLM acceptor: PyPI's `pyspnego`, run behind a small HTTP server (tests/ntlm_server.py) that
//! authenticates connections the way IIS does. Both username forms, a Negotiate-only server,
//! wrong credentials, and channel binding, over HTTP and HTTPS. Skipped, with a notice, only
//! when python3 or pyspnego is missing (`.ci/run` installs pyspnego). The last tests run the
//! product's real binary (`check`) through that server, which forwards authenticated requests
//! to the EWS fake, over HTTP and over HTTPS with channel binding.

mod common;
#[path = "ntlm_client/mod.rs"]
mod ntlm_client;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ess::http::ntlm;
use ntlm_client::{exchange, login, random};

const USERS: &str = "EXAMPLE:svc-starface:Corr3ct horse\n:svc@example.com:UPN pässword\n";

struct PyServer {
    child: Child,
    lines: mpsc::Receiver<String>,
    port: u16,
    _dir: tempdir::Dir,
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed when dropped.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let path = std::env::temp_dir().join(format!(
                "ess-ntlm-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&path).expect("temp dir");
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl PyServer {
    /// Starts the server offering `schemes`; `None` (with a printed notice) without pyspnego.
    fn start(tag: &str, schemes: &str, extra: &[String]) -> Option<PyServer> {
        PyServer::start_with_users(tag, schemes, extra, USERS)
    }

    fn start_with_users(
        tag: &str,
        schemes: &str,
        extra: &[String],
        user_lines: &str,
    ) -> Option<PyServer> {
        let dir = tempdir::Dir::new(tag);
        let users = dir.path().join("users");
        std::fs::write(&users, user_lines).expect("user file");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ntlm_server.py");
        let Ok(mut child) = Command::new("python3")
            .arg(script)
            .arg(schemes)
            .args(extra)
            .env("NTLM_USER_FILE", &users)
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("note: python3 is not on PATH; skipping the pyspnego NTLM test");
            return None;
        };
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the server's first line");
        if first == "no-pyspnego" {
            eprintln!(
                "note: pyspnego is not importable (python3 -m pip install pyspnego); \
                 skipping the pyspnego NTLM test"
            );
            let _ = child.wait();
            return None;
        }
        Some(PyServer {
            port: first.parse().expect("port on the first line"),
            child,
            lines,
            _dir: dir,
        })
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a line from the server")
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tcp(server: &PyServer) -> TcpStream {
    let conn = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    conn
}

#[test]
fn both_username_forms_authenticate_the_connection() {
    let Some(server) = PyServer::start("forms", "Negotiate,NTLM", &[]) else {
        return;
    };
    for (username, password, principal) in [
        (
            "EXAMPLE\\svc-starface",
            "Corr3ct horse",
            "EXAMPLE\\svc-starface",
        ),
        ("svc@example.com", "UPN pässword", "svc@example.com"),
    ] {
        let mut conn = tcp(&server);
        let reply = login(&mut conn, "NTLM", username, password, None);
        assert_eq!(reply.status, 200, "{username}");
        assert_eq!(
            reply.body, b"echo:<request/>",
            "the AUTHENTICATE carried the request"
        );
        assert_eq!(server.next_line(), format!("ok {principal}"));
        let again = exchange(&mut conn, None, "<second/>");
        assert_eq!(again.status, 200, "the connection stays authenticated");
        assert_eq!(again.body, b"echo:<second/>");
    }
}

#[test]
fn a_negotiate_only_server_gets_raw_ntlmssp_in_negotiate() {
    let Some(server) = PyServer::start("negotiate", "Negotiate", &[]) else {
        return;
    };
    let mut conn = tcp(&server);
    let reply = login(
        &mut conn,
        "Negotiate",
        "EXAMPLE\\svc-starface",
        "Corr3ct horse",
        None,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(server.next_line(), "ok EXAMPLE\\svc-starface");
}

#[test]
fn wrong_credentials_are_refused() {
    let Some(server) = PyServer::start("wrong", "Negotiate,NTLM", &[]) else {
        return;
    };
    for (username, password) in [
        ("EXAMPLE\\svc-starface", "wrong"),
        ("OTHER\\svc-starface", "Corr3ct horse"),
        ("nobody@example.com", "UPN pässword"),
    ] {
        let mut conn = tcp(&server);
        let reply = login(&mut conn, "NTLM", username, password, None);
        assert_eq!(reply.status, 401, "{username}");
        assert!(server.next_line().starts_with("fail "), "{username}");
    }
}

#[test]
fn channel_binding_is_checked_by_the_acceptor() {
    let end_point = random::<32>();
    let hex: String = end_point.iter().map(|b| format!("{b:02x}")).collect();
    let Some(server) = PyServer::start("cbt", "NTLM", &["--cbt-hex".into(), hex]) else {
        return;
    };
    let right = ntlm::channel_bindings_hash(&end_point);
    let wrong = ntlm::channel_bindings_hash(&[0u8; 32]);
    // The all-zero value (no binding, as sent over plain HTTP) is accepted by pyspnego as by
    // Extended Protection in its "Accept" mode; a binding to another certificate is refused.
    for (bindings, status) in [(Some(right), 200), (Some(wrong), 401), (None, 200)] {
        let mut conn = tcp(&server);
        let reply = login(
            &mut conn,
            "NTLM",
            "EXAMPLE\\svc-starface",
            "Corr3ct horse",
            bindings,
        );
        assert_eq!(reply.status, status, "{bindings:?}");
        let line = server.next_line();
        assert_eq!(line.starts_with("ok "), status == 200, "{line}");
    }
}

/// A self-signed certificate for localhost, written as PEM files in `dir`.
fn certificate(dir: &std::path::Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).expect("cert file");
    std::fs::write(&key_path, key.serialize_pem()).expect("key file");
    (cert_path, key_path, cert.der().to_vec())
}

#[test]
fn over_https_the_binding_comes_from_the_certificate_the_client_received() {
    let dir = tempdir::Dir::new("tls-cert");
    let (cert_path, key_path, der) = certificate(dir.path());
    let args = [
        "--tls".to_string(),
        cert_path.display().to_string(),
        key_path.display().to_string(),
    ];
    let Some(server) = PyServer::start("tls", "Negotiate,NTLM", &args) else {
        return;
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.into()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    for (own_certificate, status) in [(true, 200), (false, 401)] {
        let client =
            rustls::ClientConnection::new(Arc::new(config.clone()), name.clone()).expect("client");
        let mut tls = rustls::StreamOwned::new(client, tcp(&server));
        let first = exchange(&mut tls, None, "");
        assert_eq!(first.status, 401);
        let received = tls.conn.peer_certificates().expect("a certificate")[0].to_vec();
        let other = certificate(dir.path()).2;
        let bound = if own_certificate { received } else { other };
        let end_point = ntlm::tls_server_end_point(&bound).expect("end point");
        let bindings = Some(ntlm::channel_bindings_hash(&end_point));
        let reply = login(
            &mut tls,
            "NTLM",
            "svc@example.com",
            "UPN pässword",
            bindings,
        );
        assert_eq!(
            reply.status, status,
            "bound to the server's own certificate: {own_certificate}"
        );
        assert_eq!(server.next_line().starts_with("ok "), status == 200);
    }
}

/// A CA (PEM, for `exchange.ca_file`) and a certificate for 127.0.0.1 signed by it, written
/// as PEM files in `dir`.
fn ca_and_certificate(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("certificate");
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).expect("CA file");
    std::fs::write(&paths.1, cert.pem()).expect("cert file");
    std::fs::write(&paths.2, key.serialize_pem()).expect("key file");
    paths
}

/// `check` with the real binary, `auth = "ntlm"`, through pyspnego in front of the EWS fake.
fn binary_check(tls: bool, username: &str, user_line: &str, schemes: &str) {
    use common::{Backend, World, EWS_PASSWORD, EWS_USER};
    let mut w = World::new(Backend::Ews);
    let dir = tempdir::Dir::new("binary-certs");
    let mut args = vec![
        "--upstream".to_string(),
        w.ews_url(),
        EWS_USER.to_string(),
        EWS_PASSWORD.to_string(),
    ];
    let (ca, cert, key) = ca_and_certificate(dir.path());
    if tls {
        args.extend([
            "--tls".to_string(),
            cert.display().to_string(),
            key.display().to_string(),
        ]);
    }
    let users = format!("{user_line}:{EWS_PASSWORD}\n");
    let Some(server) = PyServer::start_with_users("binary", schemes, &args, &users) else {
        return;
    };
    let scheme = if tls { "https" } else { "http" };
    w.set("exchange.auth", "\"ntlm\"");
    w.set("exchange.username", &format!("{username:?}"));
    w.set(
        "exchange.url",
        &format!("\"{scheme}://127.0.0.1:{}/EWS/Exchange.asmx\"", server.port),
    );
    if tls {
        w.set(
            "exchange.ca_file",
            &format!("{:?}", ca.display().to_string()),
        );
    }
    let out = w.check();
    out.expect_code(0);
    let want = if tls {
        "EWS: NTLM, channel binding"
    } else {
        "EWS: NTLM"
    };
    assert!(out.stdout.lines().any(|l| l == want), "{out}");
    // A Negotiate-only server first sees (and refuses) the NTLM scheme the client tries first.
    let mut line = server.next_line();
    if schemes == "Negotiate" {
        assert_eq!(line, "fail scheme NTLM");
        line = server.next_line();
    }
    assert!(line.starts_with("ok "), "{line}\n{out}");
    w.assert_no_secrets(&out);
}

#[test]
fn the_binary_authenticates_over_http_in_both_username_forms() {
    binary_check(
        false,
        common::EWS_USER,
        &format!(":{}", common::EWS_USER),
        "Negotiate,NTLM",
    );
    binary_check(
        false,
        "EXAMPLE\\svc-sync",
        "EXAMPLE:svc-sync",
        "Negotiate,NTLM",
    );
}

#[test]
fn the_binary_authenticates_a_negotiate_only_server() {
    binary_check(false, "EXAMPLE\\svc-sync", "EXAMPLE:svc-sync", "Negotiate");
}

#[test]
fn the_binary_binds_to_the_certificate_over_https() {
    binary_check(
        true,
        common::EWS_USER,
        &format!(":{}", common::EWS_USER),
        "Negotiate,NTLM",
    );
    binary_check(true, "EXAMPLE\\svc-sync", "EXAMPLE:svc-sync", "Negotiate");
}
