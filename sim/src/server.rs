//! A small HTTP/1.1 server on loopback that every fake (EWS, Graph, STARFACE) runs on.
//!
//! A fake is a function from a parsed request to a reply. The reply can ask for the faults the
//! tests need at the transport level: a delay before answering, a slow drip of the body, a
//! connection closed in the middle of the body, raw bytes instead of a well-formed answer, or
//! the connection closed after the answer. Connections are persistent (HTTP/1.1 keep-alive)
//! unless the client or the reply says otherwise, and the server counts the TCP connections it
//! accepted so that tests and the benchmark can see whether the product reuses them.
//!
//! Dropping the server closes every open connection too: a fake restarted on the same port
//! must not leave the client talking to the old one.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the fakes see it.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    /// The path without the query, percent-decoded.
    pub path: String,
    /// The query string as sent (without `?`).
    pub raw_query: String,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// Header names as sent; compare case-insensitively with `header`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The number of this request on its connection, from 1.
    pub nth_on_connection: usize,
    /// The client's address and port: which connection the request came on (NTLM
    /// authenticates connections).
    pub peer: String,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A reply, with optional transport faults.
#[derive(Clone, Debug, Default)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before sending anything.
    pub delay: Duration,
    /// Send the body in small pieces with this pause between them.
    pub drip: Option<Duration>,
    /// Announce the full length but close the connection after this many body bytes.
    pub truncate_at: Option<usize>,
    /// Send `body` as it is, without a status line and headers of our own.
    pub raw: bool,
    /// Close the connection after this reply (with `Connection: close` in a normal reply).
    pub close: bool,
}

impl HttpReply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        HttpReply {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body: body.into(),
            ..HttpReply::default()
        }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "application/json", body)
    }

    pub fn xml(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/xml; charset=utf-8", body)
    }

    pub fn empty(status: u16) -> Self {
        HttpReply {
            status,
            ..HttpReply::default()
        }
    }

    /// Bytes sent verbatim (for clients that must refuse a malformed answer).
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        HttpReply {
            body: bytes.into(),
            raw: true,
            ..HttpReply::default()
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The connection is closed after this reply.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

/// Decodes `%XX` escapes and, in query strings, `+` as space. Bad escapes are kept as they are.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

type Handler = dyn Fn(&HttpRequest) -> HttpReply + Send + Sync + 'static;

/// How the server treats its connections.
#[derive(Clone, Copy, Debug)]
struct Policy {
    /// Close a connection after this many requests on it (as IIS and Tomcat can be set to).
    max_requests: Option<usize>,
    /// Close a connection that has been idle this long.
    idle_timeout: Duration,
}

/// What the connection threads share with the server handle.
struct Shared {
    stop: AtomicBool,
    connects: AtomicUsize,
    handshakes: AtomicUsize,
    /// Set for an HTTPS server.
    tls: Option<Arc<rustls::ServerConfig>>,
    requests: AtomicUsize,
    next_id: AtomicU64,
    /// Clones of the open connections, so that dropping the server can close them.
    open: Mutex<HashMap<u64, TcpStream>>,
    policy: Mutex<Policy>,
    handler: Arc<Handler>,
}

/// A running server; stops when dropped.
pub struct Server {
    url: String,
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts on an ephemeral loopback port.
    pub fn start(
        handler: impl Fn(&HttpRequest) -> HttpReply + Send + Sync + 'static,
    ) -> io::Result<Server> {
        Self::start_on("127.0.0.1:0", handler)
    }

    /// Starts on the given address (`host:port`).
    pub fn start_on(
        addr: &str,
        handler: impl Fn(&HttpRequest) -> HttpReply + Send + Sync + 'static,
    ) -> io::Result<Server> {
        Self::start_with(addr, None, handler)
    }

    /// Starts an HTTPS server on the given address, with a self-signed certificate for
    /// `localhost` and 127.0.0.1 made now (clients need `insecure_tls`, as with the PBX's own).
    pub fn start_tls_on(
        addr: &str,
        handler: impl Fn(&HttpRequest) -> HttpReply + Send + Sync + 'static,
    ) -> io::Result<Server> {
        Self::start_with(addr, Some(self_signed()?), handler)
    }

    fn start_with(
        addr: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&HttpRequest) -> HttpReply + Send + Sync + 'static,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let port = listener.local_addr()?.port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            connects: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            tls,
            requests: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            policy: Mutex::new(Policy {
                max_requests: None,
                idle_timeout: Duration::from_secs(120),
            }),
            handler: Arc::new(handler),
        });
        let inner = shared.clone();
        let accept = std::thread::spawn(move || accept_loop(&listener, &inner));
        Ok(Server {
            url: format!("{scheme}://127.0.0.1:{port}"),
            port,
            shared,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:<port>` or `https://…` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// TCP connections accepted since the start (or the last `reset_counts`).
    pub fn connects(&self) -> usize {
        self.shared.connects.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed since the start (or the last `reset_counts`); 0 over HTTP.
    pub fn tls_handshakes(&self) -> usize {
        self.shared.handshakes.load(Ordering::SeqCst)
    }

    /// Requests answered since the start (or the last `reset_counts`).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    pub fn reset_counts(&self) {
        self.shared.connects.store(0, Ordering::SeqCst);
        self.shared.handshakes.store(0, Ordering::SeqCst);
        self.shared.requests.store(0, Ordering::SeqCst);
    }

    /// Closes every connection after `n` requests on it.
    pub fn set_max_requests_per_connection(&self, n: Option<usize>) {
        self.shared.policy().max_requests = n;
    }

    /// Closes a connection idle for `idle` (default 120 s, as IIS).
    pub fn set_idle_timeout(&self, idle: Duration) {
        self.shared.policy().idle_timeout = idle;
    }

    /// Closes every open connection now (as a server restart or a middlebox would).
    pub fn drop_connections(&self) {
        self.shared.close_all();
    }
}

impl Shared {
    fn policy(&self) -> std::sync::MutexGuard<'_, Policy> {
        self.policy.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close_all(&self) {
        for (_, s) in self.open().drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        self.shared.close_all();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        shared.connects.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            shared.open().insert(id, clone);
        }
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &shared);
            shared.open().remove(&id);
        });
    }
}

/// The largest request head we read.
const MAX_HEAD: usize = 64 * 1024;

/// Serves requests on one connection until either side closes it.
fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let tcp = stream.try_clone()?;
    match &shared.tls {
        None => serve(BufReader::new(stream), &tcp, shared),
        Some(config) => {
            let conn = rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(conn, stream);
            tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock)?;
            }
            shared.handshakes.fetch_add(1, Ordering::SeqCst);
            serve(BufReader::new(tls), &tcp, shared)
        }
    }
}

fn serve<S: Read + Write>(
    mut reader: BufReader<S>,
    tcp: &TcpStream,
    shared: &Shared,
) -> io::Result<()> {
    let mut nth = 0;
    let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    loop {
        let policy = *shared.policy();
        tcp.set_read_timeout(Some(policy.idle_timeout))?;
        let Some((mut req, keep_alive)) = read_request(&mut reader)? else {
            return Ok(());
        };
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        nth += 1;
        req.nth_on_connection = nth;
        req.peer = peer.clone();
        let reply = (shared.handler)(&req);
        shared.requests.fetch_add(1, Ordering::SeqCst);
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        let close = reply.close
            || !keep_alive
            || policy.max_requests.is_some_and(|max| nth >= max)
            || shared.stop.load(Ordering::SeqCst);
        let writer = reader.get_mut();
        let complete = write_reply(writer, &reply, req.method == "HEAD", close)?;
        writer.flush()?;
        if close || !complete {
            let _ = tcp.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

/// A TLS configuration with a fresh self-signed certificate for `localhost` and 127.0.0.1.
fn self_signed() -> io::Result<Arc<rustls::ServerConfig>> {
    let key = rcgen::KeyPair::generate().map_err(io::Error::other)?;
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(io::Error::other)?;
    let cert = params.self_signed(&key).map_err(io::Error::other)?;
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(io::Error::other)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], der)
    .map_err(io::Error::other)?;
    Ok(Arc::new(config))
}

/// Reads one request; `None` when the client closed the connection between requests. The
/// flag says whether the client allows another request on the connection.
fn read_request<S: Read>(reader: &mut BufReader<S>) -> io::Result<Option<(HttpRequest, bool)>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut head_len = 0;
    let mut line = String::new();
    let mut next_line = |reader: &mut BufReader<S>, line: &mut String| {
        line.clear();
        let n = reader.by_ref().take(MAX_HEAD as u64).read_line(line)?;
        head_len += n;
        if head_len >= MAX_HEAD {
            return Err(bad("request head too large"));
        }
        Ok::<usize, io::Error>(n)
    };
    if next_line(reader, &mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => {
            (m.to_string(), t.to_string(), v.to_string())
        }
        _ => return Err(bad("bad request line")),
    };
    let mut headers = Vec::new();
    loop {
        if next_line(reader, &mut line)? == 0 {
            return Err(bad("connection closed in the request head"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').ok_or_else(|| bad("bad header line"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let keep_alive = match header("connection") {
        Some(v) if v.contains("close") => false,
        Some(v) if v.contains("keep-alive") => true,
        _ => version == "HTTP/1.1",
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked_body(reader, &mut body)?;
    } else if let Some(len) = header("content-length") {
        let len: u64 = len.parse().map_err(|_| bad("bad Content-Length"))?;
        reader.by_ref().take(len).read_to_end(&mut body)?;
        if body.len() as u64 != len {
            return Err(bad("connection closed in the request body"));
        }
    }
    let (path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    Ok(Some((
        HttpRequest {
            method,
            path: percent_decode(&path, false),
            query: parse_query(&raw_query),
            raw_query,
            headers,
            body,
            nth_on_connection: 0,
            peer: String::new(),
        },
        keep_alive,
    )))
}

fn read_chunked_body<S: Read>(reader: &mut BufReader<S>, body: &mut Vec<u8>) -> io::Result<()> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    loop {
        line.clear();
        reader.by_ref().take(4096).read_line(&mut line)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            loop {
                line.clear();
                if reader.by_ref().take(4096).read_line(&mut line)? == 0
                    || line.trim_end().is_empty()
                {
                    return Ok(());
                }
            }
        }
        let before = body.len();
        reader.by_ref().take(size).read_to_end(body)?;
        if (body.len() - before) as u64 != size {
            return Err(bad("connection closed in a chunk"));
        }
        line.clear();
        reader.by_ref().take(2).read_line(&mut line)?;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes the reply; `false` when it was cut short on purpose (the connection must close).
fn write_reply(w: &mut impl Write, reply: &HttpReply, head: bool, close: bool) -> io::Result<bool> {
    if reply.raw {
        w.write_all(&reply.body)?;
        return Ok(!close);
    }
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        let framing = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|f| k.eq_ignore_ascii_case(f));
        if !framing {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    let no_body = head || reply.status == 204 || reply.status == 304;
    if !(reply.status == 204 || reply.status == 304) {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    w.write_all(out.as_bytes())?;
    if no_body {
        return Ok(true);
    }
    let end = reply
        .truncate_at
        .map_or(reply.body.len(), |t| t.min(reply.body.len()));
    match reply.drip {
        Some(pause) => {
            for piece in reply.body[..end].chunks(16) {
                std::thread::sleep(pause);
                w.write_all(piece)?;
            }
        }
        None => w.write_all(&reply.body[..end])?,
    }
    Ok(end == reply.body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%C3%A4", false), "ä");
    }

    /// Sends raw requests on one connection and returns what came back, up to the close.
    fn exchange(server: &Server, requests: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        s.write_all(requests.as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn keeps_connections_and_counts_them() {
        let server = Server::start(|req| {
            HttpReply::new(
                200,
                "text/plain",
                format!("{} #{}", req.path, req.nth_on_connection),
            )
        })
        .unwrap();
        let two =
            "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
        let got = exchange(&server, two);
        assert!(got.contains("\r\n\r\n/a #1HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(got.ends_with("\r\n\r\n/b #2"), "{got}");
        assert_eq!((server.connects(), server.requests()), (1, 2));
        server.set_max_requests_per_connection(Some(1));
        let got = exchange(&server, two);
        assert!(got.contains("Connection: close\r\n"), "{got}");
        assert!(!got.contains("/b"), "{got}");
        assert_eq!((server.connects(), server.requests()), (2, 3));
    }
}
