//! The one HTTP client of the product: HTTP/1.1 over TCP, or over TLS (rustls) for `https://`.
//!
//! One request per connection, an overall deadline per request (a slow drip cannot hold us
//! longer than the time-out), and a cap on the body enforced while reading. URLs in errors are
//! redacted: the XML-RPC URL carries the auth hash in its query.

mod entropy;
pub mod ntlm;
mod tls;
mod wire;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

pub use wire::{encode_request, read_response, RawResponse, WireError};

/// How the client behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// For the whole request: connect, send, and read the whole response.
    pub timeout: Duration,
    /// The largest body we accept.
    pub max_body: usize,
    /// Extra trusted roots (PEM).
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (the PBX's self-signed one on loopback).
    pub insecure_tls: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            max_body: 32 * 1024 * 1024,
            ca_file: None,
            insecure_tls: false,
        }
    }
}

/// A request to send.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &'static str, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }
}

/// A response; any status is a response, not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The redacted URL, for messages.
    pub url: String,
}

impl Response {
    /// The value of a header (the last one of that name), compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|_| HttpError::Protocol {
            url: self.url.clone(),
            detail: "the body is not UTF-8 text".into(),
        })
    }

    /// `Retry-After` given in seconds (the form Exchange and Graph use).
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")?
            .trim()
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    }
}

/// Why a request got no response.
#[derive(Debug)]
pub enum HttpError {
    BadUrl {
        url: String,
        detail: String,
    },
    Connect {
        url: String,
        detail: String,
    },
    Tls {
        url: String,
        detail: String,
    },
    /// The kernel's random number generator was not ready in time for a TLS connection.
    NoEntropy {
        url: String,
        waited: Duration,
    },
    Timeout {
        url: String,
        limit: Duration,
    },
    TooLarge {
        url: String,
        limit: usize,
    },
    Protocol {
        url: String,
        detail: String,
    },
    Io {
        url: String,
        detail: String,
    },
    CaFile {
        detail: String,
    },
}

impl HttpError {
    /// The server could not be reached at all (as opposed to answering badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, HttpError::Connect { .. } | HttpError::Timeout { .. })
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadUrl { url, detail } => write!(f, "invalid URL {url}: {detail}"),
            HttpError::Connect { url, detail } => {
                write!(f, "cannot connect to {url}: {detail} (is the server up and the URL right?)")
            }
            HttpError::Tls { url, detail } => write!(
                f,
                "TLS with {url} failed: {detail} (for an internal CA set exchange.ca_file; for the PBX's own certificate starface.insecure_tls)"
            ),
            HttpError::NoEntropy { url, waited } => write!(
                f,
                "no TLS with {url} yet: the kernel's random number generator has not been ready for {} s (/dev/random blocks on this kernel: too little entropy; an entropy daemon such as haveged or rng-tools fills it)",
                waited.as_secs()
            ),
            HttpError::Timeout { url, limit } => write!(f, "{url} did not answer within {}", duration_text(*limit)),
            HttpError::TooLarge { url, limit } => {
                write!(f, "the response of {url} is larger than {}; refused", size_text(*limit))
            }
            HttpError::Protocol { url, detail } => write!(f, "bad HTTP response from {url}: {detail}"),
            HttpError::Io { url, detail } => write!(f, "connection to {url} failed: {detail}"),
            HttpError::CaFile { detail } => write!(f, "TLS setup: {detail}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// `30 s`, or `300 ms` below a second.
fn duration_text(d: Duration) -> String {
    if d.as_millis() < 1000 || d.subsec_millis() != 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// `32 MiB`, `64 KiB` or `100 bytes`, whichever is exact.
fn size_text(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// A URL taken apart as far as we need it.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    // Schemes are case-insensitive (RFC 3986 section 3.1); the configuration accepts HTTPS://.
    let lower = |n: usize| url.get(..n).map(str::to_ascii_lowercase);
    let (tls, rest) = if lower(8).as_deref() == Some("https://") {
        (true, &url[8..])
    } else if lower(7).as_deref() == Some("http://") {
        (false, &url[7..])
    } else {
        return Err("only http:// and https:// are supported".into());
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err("user names and passwords do not belong in the URL".into());
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed '[' in the host")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| "bad port")?,
            None if after.is_empty() => default_port,
            None => return Err("bad port".into()),
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| "bad port")?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("spaces or control characters in the path".into());
    }
    Ok(Target {
        tls,
        host,
        port,
        path,
    })
}

/// `scheme://host[:port]/path`: no query (it may carry credentials), no user-info.
pub fn redact_url(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or("");
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let rest = match rest.find('/') {
                Some(i) => {
                    let (auth, path) = rest.split_at(i);
                    format!("{}{path}", auth.rsplit('@').next().unwrap_or(auth))
                }
                None => rest.rsplit('@').next().unwrap_or(rest).to_string(),
            };
            format!("{scheme}://{rest}")
        }
        None => no_query.to_string(),
    }
}

/// A moment after which no request may still run, shared by clients and their clones and
/// also seen by requests in flight. The daemon sets it on SIGTERM so that a hung server cannot
/// hold the exit for a whole time-out.
#[derive(Clone, Debug, Default)]
pub struct Cutoff(Arc<Mutex<Option<Instant>>>);

impl Cutoff {
    /// Every request (running or to come) ends within `limit` from now.
    pub fn within(&self, limit: Duration) {
        let at = Instant::now() + limit;
        let mut cut = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *cut = Some(cut.map_or(at, |c| c.min(at)));
    }

    fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long one socket wait lasts at most, so that a cutoff set meanwhile is noticed.
const WAIT_SLICE: Duration = Duration::from_millis(200);

/// The client; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    opts: HttpOptions,
    cutoff: Cutoff,
    tls: Option<Arc<rustls::ClientConfig>>,
    tls_error: Option<String>,
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
        let built = if opts.insecure_tls {
            tls::insecure_config()
        } else {
            tls::verifying_config(opts.ca_file.as_deref())
        };
        let (tls, tls_error) = match built {
            Ok(c) => (Some(Arc::new(c)), None),
            Err(e) if opts.ca_file.is_some() => return Err(HttpError::CaFile { detail: e }),
            Err(e) => (None, Some(e)),
        };
        // The first random numbers are drawn now, on a thread of their own, so that an old
        // kernel short of entropy delays TLS connections only, and says so (see `entropy`).
        entropy::warm_up();
        Ok(HttpClient {
            opts: opts.clone(),
            cutoff: Cutoff::default(),
            tls,
            tls_error,
        })
    }

    /// Shares `cutoff` with this client: once set, its requests end by then.
    pub fn with_cutoff(mut self, cutoff: &Cutoff) -> HttpClient {
        self.cutoff = cutoff.clone();
        self
    }

    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// Sends a request and reads the whole response.
    pub fn send(&self, req: &Request) -> Result<Response, HttpError> {
        let url = redact_url(&req.url);
        let target = parse_url(&req.url).map_err(|detail| HttpError::BadUrl {
            url: url.clone(),
            detail,
        })?;
        for (k, v) in &req.headers {
            if k.is_empty() || k.bytes().chain(v.bytes()).any(|b| b == b'\r' || b == b'\n') {
                return Err(HttpError::BadUrl {
                    url,
                    detail: format!("header {k:?} holds a line break"),
                });
            }
        }
        let mut deadline = Instant::now() + self.opts.timeout;
        if let Some(cut) = self.cutoff.get() {
            deadline = deadline.min(cut);
        }
        let host_header = match (target.tls, target.port) {
            (true, 443) | (false, 80) => bracket(&target.host),
            (_, p) => format!("{}:{p}", bracket(&target.host)),
        };
        let bytes = encode_request(
            req.method,
            &host_header,
            &target.path,
            &req.headers,
            &req.body,
        );
        let tcp = self.connect(&target, &url, deadline)?;
        let head = req.method == "HEAD";
        let raw = if target.tls {
            let config = match (&self.tls, &self.tls_error) {
                (Some(c), _) => c.clone(),
                (None, e) => {
                    return Err(HttpError::Tls {
                        url,
                        detail: e.clone().unwrap_or_else(|| "no TLS configuration".into()),
                    })
                }
            };
            let name =
                ServerName::try_from(target.host.clone()).map_err(|e| HttpError::BadUrl {
                    url: url.clone(),
                    detail: e.to_string(),
                })?;
            // The handshake draws random numbers: wait for the first draw here, where the
            // deadline and a stop are honoured, rather than inside ring.
            let end = || self.cutoff.get().map_or(deadline, |c| c.min(deadline));
            entropy::wait_ready(WAIT_SLICE, end).map_err(|waited| HttpError::NoEntropy {
                url: url.clone(),
                waited,
            })?;
            let conn = rustls::ClientConnection::new(config, name).map_err(|e| HttpError::Tls {
                url: url.clone(),
                detail: e.to_string(),
            })?;
            let stream = rustls::StreamOwned::new(conn, tcp);
            self.exchange(
                Deadline {
                    inner: stream,
                    deadline,
                    cutoff: self.cutoff.clone(),
                },
                &bytes,
                head,
                &url,
            )?
        } else {
            self.exchange(
                Deadline {
                    inner: tcp,
                    deadline,
                    cutoff: self.cutoff.clone(),
                },
                &bytes,
                head,
                &url,
            )?
        };
        Ok(Response {
            status: raw.status,
            headers: raw.headers,
            body: raw.body,
            url,
        })
    }

    fn connect(
        &self,
        target: &Target,
        url: &str,
        deadline: Instant,
    ) -> Result<TcpStream, HttpError> {
        let addrs = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|e| HttpError::Connect {
                url: url.to_string(),
                detail: format!("cannot resolve {}: {e}", target.host),
            })?;
        let mut last = None;
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HttpError::Timeout {
                    url: url.to_string(),
                    limit: self.opts.timeout,
                });
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() == io::ErrorKind::TimedOut => HttpError::Timeout {
                url: url.to_string(),
                limit: self.opts.timeout,
            },
            Some(e) => HttpError::Connect {
                url: url.to_string(),
                detail: e.to_string(),
            },
            None => HttpError::Connect {
                url: url.to_string(),
                detail: "no address".into(),
            },
        })
    }

    fn exchange<S: Read + Write + Timed>(
        &self,
        mut stream: Deadline<S>,
        bytes: &[u8],
        head: bool,
        url: &str,
    ) -> Result<RawResponse, HttpError> {
        let timeout = || HttpError::Timeout {
            url: url.to_string(),
            limit: self.opts.timeout,
        };
        let io_err = |e: io::Error| {
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) {
                timeout()
            } else if is_tls_error(&e) {
                HttpError::Tls {
                    url: url.to_string(),
                    detail: e.to_string(),
                }
            } else {
                HttpError::Io {
                    url: url.to_string(),
                    detail: e.to_string(),
                }
            }
        };
        stream
            .write_all(bytes)
            .and_then(|_| stream.flush())
            .map_err(io_err)?;
        read_response(&mut stream, self.opts.max_body, head).map_err(|e| match e {
            WireError::Malformed(detail) => HttpError::Protocol {
                url: url.to_string(),
                detail,
            },
            WireError::TooLarge => HttpError::TooLarge {
                url: url.to_string(),
                limit: self.opts.max_body,
            },
            WireError::HeadTooLarge => HttpError::Protocol {
                url: url.to_string(),
                detail: "headers too large".into(),
            },
            WireError::Truncated => HttpError::Protocol {
                url: url.to_string(),
                detail: "the connection closed before the response was complete".into(),
            },
            WireError::Io(e) => io_err(e),
        })
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

/// Socket time-outs for the stream under a wrapper.
trait Timed {
    fn set_timeouts(&self, t: Duration) -> io::Result<()>;
}

impl Timed for TcpStream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl Timed for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        self.sock.set_timeouts(t)
    }
}

/// Sets the socket's time-outs to what is left of the deadline (or of a cutoff set meanwhile)
/// before every read and write. Reads wait in slices so that a cutoff set during a long wait is
/// noticed; a slice that ends without data is retried while time is left (rustls and the
/// socket lose nothing when a read times out).
struct Deadline<S> {
    inner: S,
    deadline: Instant,
    cutoff: Cutoff,
}

impl<S: Timed> Deadline<S> {
    fn end(&self) -> Instant {
        self.cutoff
            .get()
            .map_or(self.deadline, |c| c.min(self.deadline))
    }

    fn arm(&self, slice: bool) -> io::Result<()> {
        let left = self.end().saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.inner
            .set_timeouts(if slice { left.min(WAIT_SLICE) } else { left })
    }
}

impl<S: Read + Timed> Read for Deadline<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.arm(true)?;
            match self.inner.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && Instant::now() < self.end() =>
                {
                    continue
                }
                other => return other,
            }
        }
    }
}

impl<S: Write + Timed> Write for Deadline<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Writes are small and not retried (a TLS write may have taken part of the data).
        self.arm(false)?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_url(url: &str, expect: Result<(bool, &str, u16, &str), ()>) {
        let got = parse_url(url);
        match (got, expect) {
            (Ok(t), Ok((tls, host, port, path))) => {
                assert_eq!(
                    (t.tls, t.host.as_str(), t.port, t.path.as_str()),
                    (tls, host, port, path),
                    "{url}"
                )
            }
            (Err(_), Err(())) => {}
            (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn urls() {
        check_url("http://127.0.0.1", Ok((false, "127.0.0.1", 80, "/")));
        check_url(
            "https://mail.example.com/EWS/Exchange.asmx",
            Ok((true, "mail.example.com", 443, "/EWS/Exchange.asmx")),
        );
        check_url(
            "http://127.0.0.1:8080/rest/login?x=1",
            Ok((false, "127.0.0.1", 8080, "/rest/login?x=1")),
        );
        check_url("http://h?x=1", Ok((false, "h", 80, "/?x=1")));
        check_url("https://[::1]:8443/a", Ok((true, "::1", 8443, "/a")));
        check_url("https://[::1]/a", Ok((true, "::1", 443, "/a")));
        check_url(
            "HTTPS://Mail.Example.com/EWS",
            Ok((true, "Mail.Example.com", 443, "/EWS")),
        );
        check_url("Http://h", Ok((false, "h", 80, "/")));
        check_url("ftp://h/", Err(()));
        check_url("httpsé://h/", Err(()));
        check_url("http://user:pw@h/", Err(()));
        check_url("http://:80/", Err(()));
        check_url("http://h:99999/", Err(()));
        check_url("http://h/a b", Err(()));
        check_url("http://[::1/", Err(()));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("http://127.0.0.1/xml-rpc?de.vertico.starface.auth=0001:abcdef"),
            "http://127.0.0.1/xml-rpc"
        );
        assert_eq!(redact_url("https://u:p@h:1/p?q#f"), "https://h:1/p");
        assert_eq!(redact_url("https://u:p@h"), "https://h");
        assert_eq!(redact_url("nonsense?secret"), "nonsense");
    }

    #[test]
    fn error_display() {
        let u = || "http://h/p".to_string();
        let cases = [
            (
                HttpError::BadUrl {
                    url: u(),
                    detail: "x".into(),
                },
                "invalid URL http://h/p: x",
            ),
            (
                HttpError::Connect {
                    url: u(),
                    detail: "refused".into(),
                },
                "cannot connect to http://h/p: refused",
            ),
            (
                HttpError::Tls {
                    url: u(),
                    detail: "bad cert".into(),
                },
                "TLS with http://h/p failed: bad cert",
            ),
            (
                HttpError::Timeout {
                    url: u(),
                    limit: Duration::from_secs(30),
                },
                "http://h/p did not answer within 30 s",
            ),
            (
                HttpError::Timeout {
                    url: u(),
                    limit: Duration::from_millis(300),
                },
                "http://h/p did not answer within 300 ms",
            ),
            (
                HttpError::TooLarge {
                    url: u(),
                    limit: 64 << 10,
                },
                "the response of http://h/p is larger than 64 KiB; refused",
            ),
            (
                HttpError::TooLarge {
                    url: u(),
                    limit: 1000,
                },
                "the response of http://h/p is larger than 1000 bytes; refused",
            ),
            (
                HttpError::TooLarge {
                    url: u(),
                    limit: 32 << 20,
                },
                "the response of http://h/p is larger than 32 MiB; refused",
            ),
            (
                HttpError::Protocol {
                    url: u(),
                    detail: "junk".into(),
                },
                "bad HTTP response from http://h/p: junk",
            ),
            (
                HttpError::Io {
                    url: u(),
                    detail: "reset".into(),
                },
                "connection to http://h/p failed: reset",
            ),
            (
                HttpError::CaFile {
                    detail: "no file".into(),
                },
                "TLS setup: no file",
            ),
        ];
        for (e, prefix) in cases {
            assert!(e.to_string().starts_with(prefix), "{e}");
        }
    }

    #[test]
    fn retry_after_header() {
        let r = |v: &str| Response {
            status: 429,
            headers: vec![("Retry-After".into(), v.into())],
            body: vec![],
            url: String::new(),
        };
        assert_eq!(r("7").retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(r(" 0 ").retry_after(), Some(Duration::ZERO));
        assert_eq!(r("Wed, 21 Oct 2015 07:28:00 GMT").retry_after(), None);
    }
}
