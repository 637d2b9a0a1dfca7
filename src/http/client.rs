//! The client: requests over persistent connections, one idle connection per server.

use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use super::conn::{Conn, Origin, Pool, Stream, Timed, WAIT_SLICE};
use super::url::{self, Url};
use super::wire::{encode_request, read_response, RawResponse, WireError};
use super::{entropy, redact_url, tls, Cutoff, HttpError, HttpOptions, Request, Response};

/// The client; cheap to clone. Clones share the cutoff and the idle connections.
#[derive(Clone)]
pub struct HttpClient {
    opts: HttpOptions,
    cutoff: Cutoff,
    /// The TLS configuration, built when the first `https://` connection is made: reading the
    /// system's root bundle costs more than an idle poll's PBX reads, and plain-HTTP setups
    /// need none. Shared by the clones.
    tls: Arc<OnceLock<Result<Arc<rustls::ClientConfig>, String>>>,
    pool: Arc<Pool>,
}

/// The TLS configuration the options ask for.
fn tls_config(opts: &HttpOptions) -> Result<Arc<rustls::ClientConfig>, String> {
    let built = if opts.insecure_tls {
        tls::insecure_config()
    } else {
        tls::verifying_config(opts.ca_file.as_deref())
    };
    built.map(Arc::new)
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the client. A `ca_file` that cannot be read is an error now; missing system roots
    /// only become one when an `https://` URL is used (plain-HTTP setups need none).
    pub fn new(opts: &HttpOptions) -> Result<HttpClient, HttpError> {
        let tls = Arc::new(OnceLock::new());
        if opts.ca_file.is_some() && !opts.insecure_tls {
            let built = tls_config(opts).map_err(|detail| HttpError::CaFile { detail })?;
            let _ = tls.set(Ok(built));
        }
        // The first random numbers are drawn now, on a thread of their own, so that an old
        // kernel short of entropy delays TLS connections only, and says so (see `entropy`).
        entropy::warm_up();
        Ok(HttpClient {
            opts: opts.clone(),
            cutoff: Cutoff::default(),
            tls,
            pool: Arc::new(Pool::default()),
        })
    }

    /// Shares `cutoff` with this client: once set, its requests end by then.
    pub fn with_cutoff(mut self, cutoff: &Cutoff) -> HttpClient {
        self.cutoff = cutoff.clone();
        self
    }

    /// Whether the daemon is stopping (the cutoff is set): work on an answer already received,
    /// such as parsing it, should be given up.
    pub fn stopping(&self) -> bool {
        self.cutoff.get().is_some()
    }

    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// When work for a request started now must end: its time-out, or the stop cut-off when
    /// sooner (read again on each call: the cut-off is set when the daemon is told to stop).
    /// For waits above HTTP, such as NTLM's wait for random numbers.
    pub fn request_end(&self) -> impl Fn() -> Instant + '_ {
        let deadline = Instant::now() + self.opts.timeout;
        move || self.cutoff.get().map_or(deadline, |c| c.min(deadline))
    }

    /// Sends a request and reads the whole response, over the server's idle connection when
    /// there is one.
    pub fn send(&self, req: &Request) -> Result<Response, HttpError> {
        self.session().send(req)
    }

    /// A session: requests that go over one connection as long as the server keeps it open.
    pub fn session(&self) -> Session<'_> {
        Session {
            client: self,
            held: None,
        }
    }

    /// Closes the idle connections (they would be closed after at most a minute anyway).
    pub fn close_idle(&self) {
        self.pool.clear();
    }

    /// The error for a request whose time ran out: the daemon's stop, or its own time-out.
    fn expired(&self, url: &str, deadline: Instant) -> HttpError {
        let stopped = self
            .cutoff
            .get()
            .is_some_and(|c| c <= deadline && c <= Instant::now());
        if stopped {
            HttpError::Stopped {
                url: url.to_string(),
            }
        } else {
            HttpError::Timeout {
                url: url.to_string(),
                limit: self.opts.timeout,
            }
        }
    }

    fn connect(&self, target: &Url, url: &str, deadline: Instant) -> Result<Conn, HttpError> {
        let addrs = self.resolve(target, url, deadline)?;
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            let left = self.left(url, deadline)?;
            match TcpStream::connect_timeout(&addr, left.min(self.opts.timeout)) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = match (tcp, last) {
            (Some(s), _) => s,
            (None, Some(e)) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(self.expired(url, deadline))
            }
            (None, e) => {
                return Err(HttpError::Connect {
                    url: url.to_string(),
                    detail: e.map_or_else(|| "no address".into(), |e| e.to_string()),
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        if !target.https {
            return Ok(Conn::new(Stream::Plain(tcp)));
        }
        let config = match self.tls.get_or_init(|| tls_config(&self.opts)) {
            Ok(c) => c.clone(),
            Err(e) => {
                return Err(HttpError::Tls {
                    url: url.to_string(),
                    detail: e.clone(),
                })
            }
        };
        let name = ServerName::try_from(target.host.clone()).map_err(|e| HttpError::BadUrl {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
        // The handshake draws random numbers: wait for the first draw here, where the
        // deadline and a stop are honoured, rather than inside ring.
        let end = || self.cutoff.get().map_or(deadline, |c| c.min(deadline));
        entropy::wait_ready(WAIT_SLICE, end).map_err(|waited| HttpError::NoEntropy {
            url: url.to_string(),
            waited,
        })?;
        let tls = rustls::ClientConnection::new(config, name).map_err(|e| HttpError::Tls {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
        let mut tls = rustls::StreamOwned::new(tls, tcp);
        // The handshake now, so that its failures are told apart from the request's and the
        // server's certificate is known before the first request.
        while tls.conn.is_handshaking() {
            let left = self.left(url, deadline)?;
            let armed = tls
                .sock
                .set_read_timeout(Some(left.min(WAIT_SLICE)))
                .and_then(|_| tls.sock.set_write_timeout(Some(left)));
            match armed.and_then(|_| tls.conn.complete_io(&mut tls.sock)) {
                Ok((0, 0)) => {
                    return Err(HttpError::Io {
                        url: url.to_string(),
                        detail: "the server closed the connection during the TLS handshake".into(),
                    })
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(self.io_error(e, url, deadline)),
            }
        }
        Ok(Conn::new(Stream::Tls(Box::new(tls))))
    }

    /// What is left of the request's time, or the error for none.
    fn left(&self, url: &str, deadline: Instant) -> Result<Duration, HttpError> {
        let end = self.cutoff.get().map_or(deadline, |c| c.min(deadline));
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(self.expired(url, deadline))
        } else {
            Ok(left)
        }
    }

    /// The addresses of the host, within the request's deadline: the system resolver cannot
    /// be given a time-out, so a name is looked up on a helper thread that is waited for in
    /// slices (an IP address needs no look-up).
    fn resolve(
        &self,
        target: &Url,
        url: &str,
        deadline: Instant,
    ) -> Result<Vec<SocketAddr>, HttpError> {
        if let Ok(ip) = target.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, target.port)]);
        }
        let (tx, rx) = mpsc::channel();
        let (host, port) = (target.host.clone(), target.port);
        std::thread::Builder::new()
            .name("http-dns".into())
            .spawn(move || {
                let _ = tx.send((host.as_str(), port).to_socket_addrs().map(Vec::from_iter));
            })
            .map_err(|e| HttpError::Connect {
                url: url.to_string(),
                detail: format!("cannot resolve {}: {e}", target.host),
            })?;
        loop {
            let left = self.left(url, deadline)?;
            match rx.recv_timeout(left.min(WAIT_SLICE)) {
                Ok(Ok(addrs)) => return Ok(addrs),
                Ok(Err(e)) => {
                    return Err(HttpError::Connect {
                        url: url.to_string(),
                        detail: format!("cannot resolve {}: {e}", target.host),
                    })
                }
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(HttpError::Connect {
                        url: url.to_string(),
                        detail: format!("cannot resolve {}", target.host),
                    })
                }
            }
        }
    }

    fn io_error(&self, e: io::Error, url: &str, deadline: Instant) -> HttpError {
        if matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) {
            return self.expired(url, deadline);
        }
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
                HttpError::WrongScheme {
                    url: url.to_string(),
                    port_speaks_tls: false,
                }
            }
            Some(_) => HttpError::Tls {
                url: url.to_string(),
                detail: e.to_string(),
            },
            None => HttpError::Io {
                url: url.to_string(),
                detail: e.to_string(),
            },
        }
    }

    /// Sends the request's bytes and reads the answer on `conn`.
    fn exchange(
        &self,
        conn: &mut Conn,
        bytes: &[u8],
        head: bool,
        url: &str,
        deadline: Instant,
    ) -> Result<RawResponse, Failure> {
        let Conn {
            stream,
            rb,
            timeouts,
            ..
        } = conn;
        let mut timed = Timed::new(stream, timeouts, deadline, &self.cutoff);
        if let Err(e) = timed.write_all(bytes).and_then(|_| timed.flush()) {
            let stale = matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
            );
            return Err(Failure {
                stale,
                error: self.io_error(e, url, deadline),
            });
        }
        let at = |detail: &str| HttpError::Protocol {
            url: url.to_string(),
            detail: detail.to_string(),
        };
        read_response(&mut timed, rb, self.opts.max_body, head).map_err(|e| {
            let stale = matches!(e, WireError::Closed);
            let error = match e {
                WireError::Malformed(detail) => at(&detail),
                WireError::TooLarge => HttpError::TooLarge {
                    url: url.to_string(),
                    limit: self.opts.max_body,
                },
                WireError::HeadTooLarge => at("headers too large"),
                WireError::Truncated => {
                    at("the connection closed before the response was complete")
                }
                WireError::Closed => HttpError::Io {
                    url: url.to_string(),
                    detail: "the server closed the connection without an answer".into(),
                },
                WireError::TlsAnswer => HttpError::WrongScheme {
                    url: url.to_string(),
                    port_speaks_tls: true,
                },
                WireError::Io(e) => self.io_error(e, url, deadline),
            };
            Failure { stale, error }
        })
    }
}

/// A request that got no answer; `stale` when a reused connection turned out to be closed
/// before any byte of the answer (the request is then sent once more on a new connection).
struct Failure {
    stale: bool,
    error: HttpError,
}

/// Requests over one connection, for as long as the server keeps it open.
///
/// NTLM authenticates a connection, not a request: its NEGOTIATE, the server's challenge and
/// the AUTHENTICATE (carrying the real request) must travel over the same connection. A caller
/// does that with one session:
///
/// ```text
/// let mut s = client.session();
/// s.open(&url)?;                        // the connection (and TLS handshake) now
/// if !s.authenticated() {
///     let cert = s.peer_certificate();  // DER of the end-entity certificate, for the
///                                       // tls-server-end-point channel binding (RFC 5929)
///     let challenge = s.send_held(&negotiate)?;   // never opens another connection
///     let answer = s.send_held(&authenticate)?;
///     if answer.status != 401 { s.mark_authenticated(); }
/// }
/// s.send(&request)?                     // no Authorization on an authenticated connection
/// ```
///
/// `send` reuses the held connection, or the server's idle one, or opens a new one; after a
/// stale reused connection it retries once on a new one, which is then not authenticated:
/// check `authenticated()` and `connection_id()` when that matters. Dropping the session hands
/// the connection back to the client's pool (with its authenticated mark) if the server keeps
/// it open.
pub struct Session<'c> {
    client: &'c HttpClient,
    held: Option<(Origin, Conn)>,
}

impl fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("connection", &self.connection_id())
            .finish_non_exhaustive()
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some((origin, conn)) = self.held.take() {
            self.client.pool.put(origin, conn);
        }
    }
}

/// What a request needs before it goes out.
struct Prepared {
    url: String,
    target: Url,
    origin: Origin,
    deadline: Instant,
}

impl Session<'_> {
    /// The connection the next request to this server goes over, if one is held.
    pub fn connection_id(&self) -> Option<u64> {
        self.held.as_ref().map(|(_, c)| c.id)
    }

    /// Whether the held connection was marked authenticated (see `mark_authenticated`).
    pub fn authenticated(&self) -> bool {
        self.held.as_ref().is_some_and(|(_, c)| c.authenticated)
    }

    /// Marks the held connection authenticated: it keeps the mark while it lives, also in the
    /// pool, so that later requests on it know to carry no `Authorization`.
    pub fn mark_authenticated(&mut self) {
        if let Some((_, c)) = &mut self.held {
            c.authenticated = true;
        }
    }

    /// The DER bytes of the server's end-entity certificate on the held TLS connection (the
    /// certificate rustls verified); `None` over plain HTTP or without a connection.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.held.as_ref().and_then(|(_, c)| c.peer_certificate())
    }

    /// Holds a connection to the server of `url` (the idle one or a new one, TLS handshake
    /// done) without sending anything.
    pub fn open(&mut self, url: &str) -> Result<(), HttpError> {
        let p = self.prepare(url)?;
        self.acquire(&p)?;
        Ok(())
    }

    /// Sends a request and reads the whole response (see the type's description).
    pub fn send(&mut self, req: &Request) -> Result<Response, HttpError> {
        self.send_with(req, true)
    }

    /// Sends a request on the held connection only: an error if there is none to the request's
    /// server or it closed, never a new connection (NTLM's AUTHENTICATE must follow the
    /// challenge on its connection).
    pub fn send_held(&mut self, req: &Request) -> Result<Response, HttpError> {
        self.send_with(req, false)
    }

    fn prepare(&self, raw: &str) -> Result<Prepared, HttpError> {
        let url = redact_url(raw);
        let target = url::parse(raw).map_err(|detail| HttpError::BadUrl {
            url: url.clone(),
            detail,
        })?;
        let opts = &self.client.opts;
        let mut deadline = Instant::now() + opts.timeout;
        if let Some(cut) = self.client.cutoff.get() {
            deadline = deadline.min(cut);
        }
        let origin = Origin {
            https: target.https,
            host: target.host.to_ascii_lowercase(),
            port: target.port,
        };
        Ok(Prepared {
            url,
            target,
            origin,
            deadline,
        })
    }

    /// The connection for `p`: the held one, the idle one of the pool, or a new one. The flag
    /// says whether it is reused.
    fn acquire(&mut self, p: &Prepared) -> Result<bool, HttpError> {
        if self.held.as_ref().is_some_and(|(o, _)| *o != p.origin) {
            if let Some((origin, conn)) = self.held.take() {
                self.client.pool.put(origin, conn);
            }
        }
        if let Some((_, conn)) = &self.held {
            if conn.looks_alive() {
                return Ok(true);
            }
            self.held = None;
        }
        if let Some(conn) = self.client.pool.take(&p.origin) {
            if conn.looks_alive() {
                self.held = Some((p.origin.clone(), conn));
                return Ok(true);
            }
        }
        let conn = self.client.connect(&p.target, &p.url, p.deadline)?;
        self.held = Some((p.origin.clone(), conn));
        Ok(false)
    }

    /// At the trace level each request is logged with its outcome: the method, the URL without
    /// query or user-info (a query may carry credentials, the XML-RPC one the auth hash) and the
    /// status; never a header value or a body.
    fn send_with(&mut self, req: &Request, may_connect: bool) -> Result<Response, HttpError> {
        let started = Instant::now();
        let result = self.send_untraced(req, may_connect);
        if log::log_enabled!(log::Level::Trace) {
            let outcome = match &result {
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => format!("failed: {e}"),
            };
            log::trace!(
                "{} {} -> {outcome} ({} ms)",
                req.method,
                redact_url(&req.url),
                started.elapsed().as_millis()
            );
        }
        result
    }

    fn send_untraced(&mut self, req: &Request, may_connect: bool) -> Result<Response, HttpError> {
        let p = self.prepare(&req.url)?;
        check_headers(&req.headers, &p.url)?;
        let bytes = encode_request(
            req.method,
            &p.target.host_header(),
            &p.target.target,
            &req.headers,
            &req.body,
        );
        let head = req.method == "HEAD";
        let mut reused = if may_connect {
            self.acquire(&p)?
        } else {
            // Only the held connection will do: not the pool's, not a new one.
            let alive = self
                .held
                .as_ref()
                .is_some_and(|(o, c)| *o == p.origin && c.looks_alive());
            if !alive {
                return Err(HttpError::Io {
                    url: p.url,
                    detail: "the connection of this exchange is no longer open".into(),
                });
            }
            true
        };
        loop {
            let Some((_, conn)) = &mut self.held else {
                return Err(HttpError::Io {
                    url: p.url,
                    detail: "no connection".into(),
                });
            };
            match self.client.exchange(conn, &bytes, head, &p.url, p.deadline) {
                Ok(raw) => {
                    if !raw.keep_alive || conn.has_unread() {
                        self.held = None;
                    }
                    return Ok(Response {
                        status: raw.status,
                        headers: raw.headers,
                        body: raw.body,
                        url: p.url,
                    });
                }
                Err(f) => {
                    // After any failure the connection's state is unknown: it is closed.
                    self.held = None;
                    if !(f.stale && reused && may_connect) {
                        return Err(f.error);
                    }
                    let conn = self.client.connect(&p.target, &p.url, p.deadline)?;
                    self.held = Some((p.origin.clone(), conn));
                    reused = false;
                }
            }
        }
    }
}

/// Header names must be tokens and values free of control characters (C0, including NUL and
/// the line breaks that would let a value inject headers, and DEL): such a request is refused
/// whole, and the error names the header but never shows its value (it may be a secret).
fn check_headers(headers: &[(String, String)], url: &str) -> Result<(), HttpError> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    for (k, v) in headers {
        let bad_name = k.is_empty() || !k.bytes().all(token);
        let bad_value = v.bytes().any(|b| b < 0x20 || b == 0x7f);
        if bad_name || bad_value {
            return Err(HttpError::BadHeader {
                url: url.to_string(),
                name: k.escape_debug().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let check = |name: &str, value: &str, ok: bool| {
            let got = check_headers(&[(name.to_string(), value.to_string())], "http://h/");
            assert_eq!(got.is_ok(), ok, "{name:?}: {value:?}");
            if let Err(e) = got {
                let text = e.to_string();
                assert!(text.contains("header"), "{text}");
                assert!(
                    !value.is_empty() && !text.contains(value) || value.is_empty(),
                    "{text}"
                );
            }
        };
        check("Authorization", "Basic dXNlcjpwdw==", true);
        check("X-Anchor", "a@b.example", true);
        check("X-Unicode", "Grüße", true);
        check("X-Empty", "", true);
        for c in (0u8..0x20).chain([0x7f]) {
            check(
                "Authorization",
                &format!("Bearer se{}cret", c as char),
                false,
            );
        }
        check("", "x", false);
        check("Bad Name", "x", false);
        check("Bad:Name", "x", false);
        check("Bad\r\nName", "x", false);
    }
}
