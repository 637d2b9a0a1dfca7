//! The HTTP client against real sockets: the sim's server for plain HTTP and its faults, and a
//! small rustls server for TLS (verification against a CA file, and `insecure_tls`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ess::http::{HttpClient, HttpError, HttpOptions, Request};
use ess_sim::server::{HttpReply, Server};

fn client(timeout_ms: u64, max_body: usize) -> HttpClient {
    HttpClient::new(&HttpOptions {
        timeout: Duration::from_millis(timeout_ms),
        max_body,
        ca_file: None,
        insecure_tls: false,
    })
    .unwrap()
}

#[test]
fn plain_round_trip() {
    let server = Server::start(|req| {
        let body = format!(
            "{} {} q={:?} ct={:?} body={}",
            req.method,
            req.path,
            req.query_param("a"),
            req.header("content-type"),
            req.body_text()
        );
        HttpReply::new(201, "text/plain", body).with_header("Retry-After", "3")
    })
    .unwrap();
    let resp = client(5000, 1 << 20)
        .send(
            &Request::new("POST", format!("{}/x/y?a=%C3%A4", server.url()))
                .header("Content-Type", "text/xml")
                .body("<hi/>"),
        )
        .unwrap();
    assert_eq!(resp.status, 201);
    assert_eq!(
        resp.text().unwrap(),
        r#"POST /x/y q=Some("ä") ct=Some("text/xml") body=<hi/>"#
    );
    assert_eq!(resp.retry_after(), Some(Duration::from_secs(3)));
}

#[test]
fn body_cap_is_enforced() {
    let server = Server::start(|_| HttpReply::new(200, "text/plain", vec![b'x'; 10_000])).unwrap();
    let err = client(5000, 1000)
        .send(&Request::new("GET", server.url()))
        .unwrap_err();
    assert!(matches!(err, HttpError::TooLarge { .. }), "{err}");
    assert!(client(5000, 10_000)
        .send(&Request::new("GET", server.url()))
        .is_ok());
}

#[test]
fn slow_drip_hits_the_deadline() {
    let server = Server::start(|_| HttpReply {
        drip: Some(Duration::from_millis(50)),
        ..HttpReply::new(200, "text/plain", vec![b'x'; 320])
    })
    .unwrap();
    let started = Instant::now();
    let err = client(400, 1 << 20)
        .send(&Request::new("GET", server.url()))
        .unwrap_err();
    assert!(matches!(err, HttpError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn truncated_body_is_an_error() {
    let server = Server::start(|_| HttpReply {
        truncate_at: Some(10),
        ..HttpReply::new(200, "text/plain", vec![b'x'; 100])
    })
    .unwrap();
    let err = client(5000, 1 << 20)
        .send(&Request::new("GET", server.url()))
        .unwrap_err();
    assert!(
        matches!(err, HttpError::Protocol { .. } | HttpError::Io { .. }),
        "{err}"
    );
}

#[test]
fn refused_connection() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = client(2000, 1000)
        .send(&Request::new("GET", format!("http://127.0.0.1:{port}/")))
        .unwrap_err();
    assert!(err.is_unreachable(), "{err}");
}

#[test]
fn secrets_in_the_query_stay_out_of_errors() {
    let err = client(2000, 1000)
        .send(&Request::new(
            "GET",
            "http://127.0.0.1:1/xml-rpc?de.vertico.starface.auth=0001:deadbeef",
        ))
        .unwrap_err();
    assert!(!err.to_string().contains("deadbeef"), "{err}");
}

/// A one-shot TLS server with a certificate for `localhost` signed by its own CA.
struct TlsServer {
    port: u16,
    ca_pem: String,
}

fn tls_server(requests: usize) -> TlsServer {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(tcp) = stream else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure");
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    TlsServer {
        port,
        ca_pem: ca.pem(),
    }
}

#[test]
fn tls_with_ca_file_and_insecure() {
    let server = tls_server(3);
    let dir = std::env::temp_dir().join(format!("ess-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &server.ca_pem).unwrap();
    let url = format!("https://localhost:{}/", server.port);

    // Trusted through ca_file.
    let with_ca = HttpClient::new(&HttpOptions {
        ca_file: Some(ca_file.clone()),
        ..HttpOptions::default()
    })
    .unwrap();
    let resp = with_ca.send(&Request::new("GET", url.clone())).unwrap();
    assert_eq!(resp.text().unwrap(), "secure");

    // Not trusted by the system roots alone.
    if let Ok(system) = HttpClient::new(&HttpOptions::default()) {
        let err = system.send(&Request::new("GET", url.clone())).unwrap_err();
        assert!(matches!(err, HttpError::Tls { .. }), "{err}");
    }

    // Accepted without verification when asked.
    let insecure = HttpClient::new(&HttpOptions {
        insecure_tls: true,
        ..HttpOptions::default()
    })
    .unwrap();
    assert_eq!(
        insecure
            .send(&Request::new("GET", url))
            .unwrap()
            .text()
            .unwrap(),
        "secure"
    );

    // A CA file that is not PEM is refused when the client is built.
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let err = HttpClient::new(&HttpOptions {
        ca_file: Some(junk),
        ..HttpOptions::default()
    })
    .unwrap_err();
    assert!(matches!(err, HttpError::CaFile { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cutoff_ends_requests_in_flight() {
    let server = Server::start(|_| HttpReply {
        delay: Duration::from_secs(2),
        ..HttpReply::new(200, "text/plain", "late")
    })
    .unwrap();
    let cutoff = ess::http::Cutoff::default();
    let client = client(30_000, 1 << 20).with_cutoff(&cutoff);
    let setter = {
        let cutoff = cutoff.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            cutoff.within(Duration::from_millis(300));
        })
    };
    let started = Instant::now();
    let err = client.send(&Request::new("GET", server.url())).unwrap_err();
    setter.join().unwrap();
    assert!(matches!(err, HttpError::Stopped { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("stopped"), "{err}");
    // Once passed, the cutoff ends new requests at once.
    let err = client.send(&Request::new("GET", server.url())).unwrap_err();
    assert!(matches!(err, HttpError::Stopped { .. }), "{err}");
}

/// The EWS source against a server that answers 401 with the given `WWW-Authenticate` fields
/// (or a redirect): the error text names what the server offers and what to set.
fn ews_error(reply: HttpReply) -> String {
    use ess::config::{Backend, EwsAuth, ExchangeConfig, Lookup, Secret};
    use ess::exchange::ews::EwsSource;
    use ess::exchange::{CalendarSource, NoWait};
    let server = Server::start(move |_| reply.clone()).unwrap();
    let cfg = ExchangeConfig {
        backend: Backend::Ews,
        url: format!("{}/EWS/Exchange.asmx", server.url()),
        auth: EwsAuth::Basic,
        username: "svc@example.com".to_string(),
        password: Some(Secret::new("pw")),
        lookup: Lookup::Availability,
        impersonation: false,
        tenant_id: String::new(),
        client_id: String::new(),
        client_secret: None,
        token_url: String::new(),
        graph_url: String::new(),
        ca_file: None,
        timeout: Duration::from_secs(5),
    };
    let mut source = EwsSource::new(&cfg, client(5000, 1 << 20));
    let window = ess::model::Window {
        start: 1_796_112_000,
        end: 1_796_198_400,
    };
    let err = source
        .fetch(&["a@example.com".to_string()], window, &mut NoWait)
        .unwrap_err();
    err.to_string()
}

#[test]
fn ews_errors_name_what_the_server_offers_and_where_it_redirects() {
    let ntlm_only = ews_error(
        HttpReply::empty(401)
            .with_header("WWW-Authenticate", "Negotiate")
            .with_header("WWW-Authenticate", "NTLM"),
    );
    assert!(
        ntlm_only.contains(
            "refused Basic authentication of 'svc@example.com' (HTTP 401): the server offers Negotiate, NTLM; config says basic \u{2192} set auth = \"ntlm\""
        ),
        "{ntlm_only}"
    );
    let with_basic = ews_error(
        HttpReply::empty(401).with_header("WWW-Authenticate", "Basic realm=\"ex\", NTLM"),
    );
    assert!(
        with_basic.contains("refused the credentials") && with_basic.contains("offers Basic, NTLM"),
        "{with_basic}"
    );
    let moved = ews_error(
        HttpReply::empty(301).with_header("Location", "https://mail.example.com/EWS/Exchange.asmx"),
    );
    assert!(
        moved.contains(
            "the server redirects to https://mail.example.com/EWS/Exchange.asmx; set exchange.url to https://mail.example.com/EWS/Exchange.asmx"
        ),
        "{moved}"
    );
}

#[test]
fn starface_redirect_names_the_url_to_configure() {
    use ess::config::{LoginType, Secret, StarfaceConfig};
    use ess::starface::Starface;
    // STARFACE answers plain HTTP with a redirect to its HTTPS port.
    let server = Server::start(|req| {
        HttpReply::empty(302)
            .with_header("Location", &format!("https://pbx.example.com{}", req.path))
    })
    .unwrap();
    let cfg = StarfaceConfig {
        url: format!("{}/", server.url()),
        login: "0001".to_string(),
        password: Secret::new("pw"),
        login_type: LoginType::Internal,
        group: "Exchange-Sync".to_string(),
        insecure_tls: false,
    };
    let mut pbx = Starface::new(&cfg, client(5000, 1 << 20));
    let err = pbx.login().unwrap_err().to_string();
    assert!(
        err.contains(
            "failed with HTTP 302: the server redirects to https://pbx.example.com/rest/login; set starface.url to https://pbx.example.com"
        ),
        "{err}"
    );
}
