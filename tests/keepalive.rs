//! Persistent connections against real sockets: reuse across requests and sessions, servers
//! that close after N requests or drop idle connections, the one retry on a stale connection,
//! strict framing closing the connection, the NTLM session API, and the errors that name a
//! wrong scheme or a bad header.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ess::http::{HttpClient, HttpError, HttpOptions, Request};
use ess_sim::server::{HttpReply, Server};

fn client() -> HttpClient {
    HttpClient::new(&HttpOptions {
        timeout: Duration::from_secs(5),
        max_body: 1 << 20,
        ca_file: None,
        insecure_tls: true,
    })
    .unwrap()
}

fn echo_server() -> Server {
    Server::start(|req| {
        HttpReply::new(
            200,
            "text/plain",
            format!("{} {} #{}", req.method, req.path, req.nth_on_connection),
        )
    })
    .unwrap()
}

fn get(c: &HttpClient, url: &str) -> Result<String, HttpError> {
    c.send(&Request::new("GET", url))
        .map(|r| r.text().unwrap_or_default().to_string())
}

#[test]
fn one_connection_for_many_requests_and_sessions() {
    let server = echo_server();
    let c = client();
    for i in 1..=5 {
        let body = get(&c, &format!("{}/r{i}", server.url())).unwrap();
        assert_eq!(body, format!("GET /r{i} #{i}"));
    }
    // A clone (as each poll uses) shares the idle connection.
    let later = c.clone();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(get(&later, server.url()).unwrap(), "GET / #6");
    let post = later
        .send(&Request::new("POST", format!("{}/p", server.url())).body("x"))
        .unwrap();
    assert_eq!(post.text().unwrap(), "POST /p #7");
    assert_eq!((server.connects(), server.requests()), (1, 7));
    // Another client has its own connections.
    assert_eq!(get(&client(), server.url()).unwrap(), "GET / #1");
    assert_eq!(server.connects(), 2);
}

#[test]
fn server_closing_after_n_requests() {
    let server = echo_server();
    server.set_max_requests_per_connection(Some(2));
    let c = client();
    let got: Vec<String> = (0..5).map(|_| get(&c, server.url()).unwrap()).collect();
    assert_eq!(
        got,
        ["GET / #1", "GET / #2", "GET / #1", "GET / #2", "GET / #1"]
    );
    assert_eq!((server.connects(), server.requests()), (3, 5));
}

#[test]
fn connection_close_from_the_server_is_honoured() {
    let server = Server::start(|req| {
        let reply = HttpReply::new(200, "text/plain", format!("#{}", req.nth_on_connection));
        if req.path == "/last" {
            reply.closing()
        } else {
            reply
        }
    })
    .unwrap();
    let c = client();
    assert_eq!(get(&c, &format!("{}/last", server.url())).unwrap(), "#1");
    assert_eq!(get(&c, server.url()).unwrap(), "#1");
    assert_eq!(get(&c, server.url()).unwrap(), "#2");
    assert_eq!(server.connects(), 2);
}

#[test]
fn server_dropping_an_idle_connection() {
    let server = echo_server();
    let c = client();
    assert_eq!(get(&c, server.url()).unwrap(), "GET / #1");
    server.drop_connections();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(get(&c, server.url()).unwrap(), "GET / #1");
    assert_eq!((server.connects(), server.requests()), (2, 2));
}

/// A server that answers the first request of each connection and closes the connection when
/// the second arrives, without answering: the race a client loses when the server's idle
/// time-out strikes just as it reuses the connection. Returns the port and the bodies it saw.
fn closes_on_second_request() -> (u16, Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connects = Arc::new(AtomicUsize::new(0));
    let (s, n) = (seen.clone(), connects.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            n.fetch_add(1, Ordering::SeqCst);
            let s = s.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                let got = stream.read(&mut buf).unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..got]).into_owned();
                s.lock()
                    .unwrap()
                    .push(text.rsplit("\r\n").next().unwrap_or("").to_string());
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                // The next request is read and dropped: the connection closes unanswered.
                let _ = stream.read(&mut buf);
            });
        }
    });
    (port, seen, connects)
}

#[test]
fn a_stale_reused_connection_is_retried_once_on_a_new_one() {
    let (port, seen, connects) = closes_on_second_request();
    let c = client();
    let url = format!("http://127.0.0.1:{port}/");
    let send = |body: &str| c.send(&Request::new("POST", url.clone()).body(body.to_string()));
    assert_eq!(send("one").unwrap().text().unwrap(), "ok");
    assert_eq!(send("two").unwrap().text().unwrap(), "ok");
    assert_eq!(connects.load(Ordering::SeqCst), 2);
    // The retried request arrived (whole) on the new connection.
    assert_eq!(*seen.lock().unwrap(), ["one", "two"]);
}

#[test]
fn no_retry_once_the_answer_has_begun() {
    let server = Server::start(|req| match req.nth_on_connection {
        1 => HttpReply::new(200, "text/plain", "ok"),
        _ => HttpReply {
            truncate_at: Some(3),
            ..HttpReply::new(200, "text/plain", "truncated")
        },
    })
    .unwrap();
    let c = client();
    assert_eq!(get(&c, server.url()).unwrap(), "ok");
    let err = get(&c, server.url()).unwrap_err();
    assert!(matches!(err, HttpError::Protocol { .. }), "{err}");
    assert_eq!(server.requests(), 2);
}

#[test]
fn every_framing_error_closes_the_connection() {
    let bad: &[&str] = &[
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nok\r\n0\r\n\r\n",
    ];
    for raw in bad {
        let reply = raw.to_string();
        let server = Server::start(move |req| match req.path.as_str() {
            "/bad" => HttpReply::raw(reply.clone()),
            _ => HttpReply::new(200, "text/plain", "fine"),
        })
        .unwrap();
        let c = client();
        assert_eq!(get(&c, server.url()).unwrap(), "fine");
        let err = get(&c, &format!("{}/bad", server.url())).unwrap_err();
        assert!(matches!(err, HttpError::Protocol { .. }), "{raw:?}: {err}");
        // The server would keep the connection; the client does not trust it any more.
        assert_eq!(get(&c, server.url()).unwrap(), "fine");
        assert_eq!(server.connects(), 2, "{raw:?}");
    }
}

#[test]
fn a_fragment_is_never_sent() {
    let server = Server::start(|req| {
        HttpReply::new(200, "text/plain", format!("{}?{}", req.path, req.raw_query))
    })
    .unwrap();
    let body = get(&client(), &format!("{}/a?b=1#secret", server.url())).unwrap();
    assert_eq!(body, "/a?b=1");
}

#[test]
fn a_control_character_in_a_header_refuses_that_request_only() {
    let server = echo_server();
    let c = client();
    for value in ["a\0b", "a\rb", "a\nX-Injected: 1", "a\u{7f}", "a\tb"] {
        let err = c
            .send(&Request::new("GET", server.url()).header("Authorization", value))
            .unwrap_err();
        assert!(matches!(err, HttpError::BadHeader { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("Authorization") && !text.contains(value),
            "{text}"
        );
    }
    assert_eq!(server.requests(), 0);
    assert_eq!(get(&c, server.url()).unwrap(), "GET / #1");
}

#[test]
fn session_keeps_its_connection_and_its_mark() {
    let server = echo_server();
    let c = client();
    let mut s = c.session();
    let err = s.send_held(&Request::new("GET", server.url())).unwrap_err();
    assert!(matches!(err, HttpError::Io { .. }), "{err}");
    s.open(server.url()).unwrap();
    let id = s.connection_id();
    assert!(id.is_some() && !s.authenticated());
    assert_eq!(s.peer_certificate(), None);
    let r = s.send_held(&Request::new("GET", server.url())).unwrap();
    assert_eq!(r.text().unwrap(), "GET / #1");
    s.mark_authenticated();
    assert_eq!(s.connection_id(), id);
    drop(s);
    // The pooled connection keeps its mark for the next session.
    let mut again = c.session();
    again.open(server.url()).unwrap();
    assert_eq!(again.connection_id(), id);
    assert!(again.authenticated());
    drop(again);
    // A new connection starts unauthenticated.
    server.drop_connections();
    std::thread::sleep(Duration::from_millis(50));
    let mut fresh = c.session();
    let r = fresh.send(&Request::new("GET", server.url())).unwrap();
    assert_eq!(r.text().unwrap(), "GET / #1");
    assert!(!fresh.authenticated());
    assert_ne!(fresh.connection_id(), id);
}

#[test]
fn plain_http_to_a_tls_port_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Some(Ok(mut s)) = listener.incoming().next() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            // A TLS alert record (fatal, protocol_version) as TLS servers send to plain text.
            let _ = s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]);
        }
    });
    let err = get(&client(), &format!("http://127.0.0.1:{port}/")).unwrap_err();
    assert!(
        matches!(
            err,
            HttpError::WrongScheme {
                port_speaks_tls: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("use https://"), "{err}");
}

#[test]
fn https_to_a_plain_port_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Some(Ok(mut s)) = listener.incoming().next() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let err = get(&client(), &format!("https://127.0.0.1:{port}/")).unwrap_err();
    assert!(
        matches!(
            err,
            HttpError::WrongScheme {
                port_speaks_tls: false,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("use http://"), "{err}");
}

/// A TLS server that keeps its connections: answers every request on a connection until the
/// client closes it. Returns the port, its certificate (DER) and the count of handshakes.
fn keep_alive_tls_server() -> (u16, Vec<u8>, Arc<AtomicUsize>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().to_vec();
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
    let handshakes = Arc::new(AtomicUsize::new(0));
    let count = handshakes.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let mut n = 0;
                loop {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                    while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..end + 4);
                        n += 1;
                        let body = format!("secure #{n}");
                        let head =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                        let _ = tls.write_all(head.as_bytes());
                        let _ = tls.write_all(body.as_bytes());
                        let _ = tls.flush();
                    }
                }
            });
        }
    });
    (port, der, handshakes)
}

#[test]
fn tls_connections_are_reused_and_show_their_certificate() {
    let (port, der, handshakes) = keep_alive_tls_server();
    let url = format!("https://localhost:{port}/");
    let c = client();
    for i in 1..=3 {
        assert_eq!(get(&c, &url).unwrap(), format!("secure #{i}"));
    }
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
    let mut s = c.session();
    s.open(&url).unwrap();
    assert_eq!(s.peer_certificate().as_deref(), Some(der.as_slice()));
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
}

#[test]
fn a_refused_port_is_still_unreachable() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = get(&client(), &format!("http://127.0.0.1:{port}/")).unwrap_err();
    assert!(err.is_unreachable(), "{err}");
}

#[test]
fn send_held_never_opens_another_connection() {
    let server = echo_server();
    let c = client();
    // The pool's idle connection is not the session's own.
    assert_eq!(get(&c, server.url()).unwrap(), "GET / #1");
    let mut s = c.session();
    let err = s.send_held(&Request::new("GET", server.url())).unwrap_err();
    assert!(matches!(err, HttpError::Io { .. }), "{err}");
    s.open(server.url()).unwrap();
    let r = s.send_held(&Request::new("GET", server.url())).unwrap();
    assert_eq!(r.text().unwrap(), "GET / #2");
    server.drop_connections();
    std::thread::sleep(Duration::from_millis(50));
    let err = s.send_held(&Request::new("GET", server.url())).unwrap_err();
    assert!(matches!(err, HttpError::Io { .. }), "{err}");
    assert_eq!((server.connects(), server.requests()), (1, 2));
}

#[test]
fn bytes_beyond_the_announced_length_end_the_connection() {
    let server = Server::start(|req| match req.path.as_str() {
        "/extra" => HttpReply::raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nforged"),
        _ => HttpReply::new(200, "text/plain", "fine"),
    })
    .unwrap();
    let c = client();
    assert_eq!(get(&c, &format!("{}/extra", server.url())).unwrap(), "ok");
    // The bytes after the answer are not taken for the next answer.
    assert_eq!(get(&c, server.url()).unwrap(), "fine");
    assert_eq!(server.connects(), 2);
}

#[test]
fn the_sims_https_server_counts_one_handshake_per_kept_connection() {
    let server = Server::start_tls_on("127.0.0.1:0", |req| {
        HttpReply::new(200, "text/plain", format!("#{}", req.nth_on_connection))
    })
    .unwrap();
    assert!(server.url().starts_with("https://"), "{}", server.url());
    let c = client();
    for i in 1..=4 {
        assert_eq!(get(&c, server.url()).unwrap(), format!("#{i}"));
    }
    assert_eq!((server.connects(), server.tls_handshakes()), (1, 1));
    server.drop_connections();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(get(&c, server.url()).unwrap(), "#1");
    assert_eq!((server.connects(), server.tls_handshakes()), (2, 2));
}
