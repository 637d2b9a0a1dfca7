//! The one HTTP client of the product: HTTP/1.1 over TCP, or over TLS (rustls) for `https://`.
//!
//! Persistent connections (one idle connection per server, reused across requests and polls
//! while the server keeps it open, closed after at most a minute idle), strict framing, an
//! overall deadline per request that includes name resolution and connecting (a slow drip
//! cannot hold us longer than the time-out), and a cap on the body enforced while reading.
//! URLs in errors are redacted: the XML-RPC URL carries the auth hash in its query.

mod client;
mod conn;
mod entropy;
pub mod ntlm;
mod tls;
pub mod url;
mod wire;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use client::{HttpClient, Session};
pub use wire::{encode_request, read_response, RawResponse, ReadBuf, WireError};

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

    /// For a redirect (3xx with `Location`): the URL the server sends us to, made absolute
    /// against this response's URL and redacted, so that a message can suggest configuring it.
    pub fn redirect_target(&self) -> Option<String> {
        if !(300..400).contains(&self.status) {
            return None;
        }
        let location = self.header("location")?.trim();
        let absolute = if location.contains("://") {
            location.to_string()
        } else {
            let origin_end = self
                .url
                .find("://")
                .and_then(|i| self.url[i + 3..].find('/').map(|j| i + 3 + j))
                .unwrap_or(self.url.len());
            let origin = &self.url[..origin_end];
            match location.strip_prefix('/') {
                Some(path) => format!("{origin}/{path}"),
                None => {
                    let dir = self.url.rfind('/').filter(|&i| i >= origin_end);
                    format!("{}/{location}", &self.url[..dir.unwrap_or(origin_end)])
                }
            }
        };
        Some(redact_url(&absolute))
    }

    /// The hint for a redirect: "the server redirects to https://…; set `key` to it". The
    /// suggestion is what `key` should hold: when this response's URL is `configured` plus a
    /// path the client appended (STARFACE's `/rest/login`), and the redirect keeps that path,
    /// the suggestion drops it again.
    pub fn redirect_hint(&self, key: &str, configured: &str) -> Option<String> {
        let to = self.redirect_target()?;
        let configured = redact_url(configured);
        let configured = configured.trim_end_matches('/');
        let suggestion = self
            .url
            .strip_prefix(configured)
            .filter(|appended| !appended.is_empty() && appended.starts_with('/'))
            .and_then(|appended| to.strip_suffix(appended))
            .unwrap_or(&to);
        Some(format!(
            "the server redirects to {to}; set {key} to {suggestion}"
        ))
    }

    /// The authentication schemes a 401 offers in its `WWW-Authenticate` fields, in order
    /// (`NTLM`, `Negotiate`, `Basic`, `Bearer`, …).
    pub fn offered_schemes(&self) -> Vec<String> {
        if self.status != 401 {
            return Vec::new();
        }
        let mut schemes: Vec<String> = Vec::new();
        let fields = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"));
        for (_, value) in fields {
            for element in split_outside_quotes(value) {
                // A challenge starts with its scheme; auth-params (`realm="…"`) follow it.
                let first = element.split([' ', '\t']).next().unwrap_or("");
                let is_scheme = !first.is_empty() && !first.contains('=');
                if is_scheme && !schemes.iter().any(|s| s.eq_ignore_ascii_case(first)) {
                    schemes.push(first.to_string());
                }
            }
        }
        schemes
    }

    /// For a 401: which schemes the server offers and, when the configured one is not among
    /// them, what to set instead (see `auth_hint`).
    pub fn auth_hint(&self, configured: &str) -> Option<String> {
        auth_hint(&self.offered_schemes(), configured)
    }
}

/// Whether the schemes a server offers (`offered_schemes`) include what `configured` (`basic`,
/// `ntlm`, `oauth2`) speaks.
pub fn scheme_offered(offered: &[String], configured: &str) -> bool {
    let has = |s: &str| offered.iter().any(|o| o.eq_ignore_ascii_case(s));
    match configured {
        "basic" => has("basic"),
        "ntlm" => has("ntlm") || has("negotiate"),
        "oauth2" => has("bearer"),
        _ => true,
    }
}

/// "the server offers NTLM, Negotiate", and when `configured` is not among them what to set
/// instead: "…; config says basic → set auth = \"ntlm\"". `None` when nothing is offered.
pub fn auth_hint(offered: &[String], configured: &str) -> Option<String> {
    if offered.is_empty() {
        return None;
    }
    let has = |s: &str| offered.iter().any(|o| o.eq_ignore_ascii_case(s));
    let list = offered.join(", ");
    let suggestion = if scheme_offered(offered, configured) {
        None
    } else if has("ntlm") || has("negotiate") {
        Some("ntlm")
    } else if has("basic") {
        Some("basic")
    } else if has("bearer") {
        Some("oauth2")
    } else {
        None
    };
    Some(match suggestion {
        Some(s) => {
            format!(
                "the server offers {list}; config says {configured} \u{2192} set auth = \"{s}\""
            )
        }
        None => format!("the server offers {list}"),
    })
}

/// The comma-separated elements of a header value, ignoring commas inside quoted strings.
fn split_outside_quotes(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|e| !e.is_empty());
    out
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
    /// The daemon's stop ended the request.
    Stopped {
        url: String,
    },
    /// A header of the request has a bad name or a control character in its value.
    BadHeader {
        url: String,
        name: String,
    },
    /// `http://` to a port that speaks TLS, or `https://` to one that speaks plain HTTP.
    WrongScheme {
        url: String,
        port_speaks_tls: bool,
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
    /// The TLS handshake or the certificate check failed. The advice (which configuration key
    /// trusts the certificate) depends on the server, so the caller's error adds it.
    pub fn is_tls(&self) -> bool {
        matches!(self, HttpError::Tls { .. })
    }

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
                "TLS with {url} failed: {detail}"
            ),
            HttpError::NoEntropy { url, waited } => write!(
                f,
                "no TLS with {url} yet: the kernel's random number generator has not been ready for {} s (/dev/random blocks on this kernel: too little entropy; an entropy daemon such as haveged or rng-tools fills it)",
                waited.as_secs()
            ),
            HttpError::Timeout { url, limit } => write!(f, "{url} did not answer within {}", crate::time::duration_text(*limit)),
            HttpError::TooLarge { url, limit } => {
                write!(f, "the response of {url} is larger than {}; refused", size_text(*limit))
            }
            HttpError::Protocol { url, detail } => write!(f, "bad HTTP response from {url}: {detail}"),
            HttpError::Io { url, detail } => write!(f, "connection to {url} failed: {detail}"),
            HttpError::Stopped { url } => write!(f, "the request to {url} was stopped (the program is shutting down)"),
            HttpError::BadHeader { url, name } => write!(
                f,
                "the request to {url} was not sent: header {name} has a bad name or a control character in its value"
            ),
            HttpError::WrongScheme { url, port_speaks_tls: true } => write!(
                f,
                "{url} answered with TLS: that port speaks HTTPS; use https:// in the URL"
            ),
            HttpError::WrongScheme { url, port_speaks_tls: false } => write!(
                f,
                "{url} answered in plain HTTP, not TLS: that port does not speak HTTPS; use http:// in the URL (or the server's HTTPS port)"
            ),
            HttpError::CaFile { detail } => write!(f, "TLS setup: {detail}"),
        }
    }
}

impl std::error::Error for HttpError {}

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

/// `scheme://host[:port]/path`: no query (it may carry credentials), no user-info.
pub fn redact_url(url: &str) -> String {
    // Every request names its URL this way (for its errors), so bytes are searched directly:
    // `str::split` with a set of characters cost 8M instructions per idle poll (callgrind).
    let end = url.bytes().position(|b| b == b'?' || b == b'#');
    let no_query = &url[..end.unwrap_or(url.len())];
    let Some((scheme, rest)) = no_query.split_once("://") else {
        return no_query.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let mut out = String::with_capacity(scheme.len() + 3 + host.len() + path.len());
    out.push_str(scheme);
    out.push_str("://");
    out.push_str(host);
    out.push_str(path);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("http://127.0.0.1/xml-rpc?de.vertico.starface.auth=0001:abcdef"),
            "http://127.0.0.1/xml-rpc"
        );
        assert_eq!(redact_url("https://u:p@h:1/p?q#f"), "https://h:1/p");
        assert_eq!(redact_url("https://u:p@h"), "https://h");
        assert_eq!(redact_url("nonsense?secret"), "nonsense");
        assert_eq!(redact_url("http://h#f?x"), "http://h");
        assert_eq!(redact_url("http://a@b@h/p@q/r?s@t"), "http://h/p@q/r");
        assert_eq!(redact_url("http://h:8080/ä/ö?ü"), "http://h:8080/ä/ö");
        assert_eq!(redact_url(""), "");
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

    fn response(status: u16, url: &str, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: vec![],
            url: url.to_string(),
        }
    }

    #[test]
    fn redirect_hints() {
        let check = |status: u16, location: &str, want: Option<&str>| {
            let r = response(
                status,
                "http://pbx.example/rest/login",
                &[("Location", location)],
            );
            assert_eq!(r.redirect_target().as_deref(), want, "{status} {location}");
        };
        check(
            301,
            "https://pbx.example/rest/login",
            Some("https://pbx.example/rest/login"),
        );
        check(
            302,
            "/owa/auth/logon.aspx?url=x",
            Some("http://pbx.example/owa/auth/logon.aspx"),
        );
        check(307, "other", Some("http://pbx.example/rest/other"));
        check(308, "https://u:p@h/x?secret=1", Some("https://h/x"));
        check(200, "https://elsewhere/", None);
        let hint = |url: &str, location: &str, key: &str, configured: &str| {
            response(301, url, &[("Location", location)]).redirect_hint(key, configured)
        };
        assert_eq!(
            hint(
                "http://pbx/rest/login",
                "https://pbx/rest/login",
                "starface.url",
                "http://pbx"
            )
            .as_deref(),
            Some("the server redirects to https://pbx/rest/login; set starface.url to https://pbx")
        );
        assert_eq!(
            hint(
                "http://pbx/rest/login",
                "https://pbx/rest/login",
                "starface.url",
                "http://pbx/"
            )
            .as_deref(),
            Some("the server redirects to https://pbx/rest/login; set starface.url to https://pbx")
        );
        assert_eq!(
            hint("http://pbx/rest/login", "https://pbx/login.jsp", "starface.url", "http://pbx")
                .as_deref(),
            Some("the server redirects to https://pbx/login.jsp; set starface.url to https://pbx/login.jsp")
        );
        assert_eq!(
            hint(
                "http://ex/EWS/Exchange.asmx",
                "https://ex/EWS/Exchange.asmx",
                "exchange.url",
                "http://ex/EWS/Exchange.asmx"
            )
            .as_deref(),
            Some("the server redirects to https://ex/EWS/Exchange.asmx; set exchange.url to https://ex/EWS/Exchange.asmx")
        );
        assert_eq!(response(302, "http://h/", &[]).redirect_target(), None);
    }

    #[test]
    fn offered_schemes_and_auth_hints() {
        let check = |fields: &[&str], configured: &str, schemes: &[&str], hint: Option<&str>| {
            let headers: Vec<(&str, &str)> =
                fields.iter().map(|v| ("WWW-Authenticate", *v)).collect();
            let r = response(401, "https://ex/EWS/Exchange.asmx", &headers);
            assert_eq!(r.offered_schemes(), schemes, "{fields:?}");
            assert_eq!(r.auth_hint(configured).as_deref(), hint, "{fields:?}");
        };
        // IIS with Windows authentication only: two fields.
        check(
            &["Negotiate", "NTLM"],
            "basic",
            &["Negotiate", "NTLM"],
            Some(
                "the server offers Negotiate, NTLM; config says basic \u{2192} set auth = \"ntlm\"",
            ),
        );
        check(
            &["Basic realm=\"ex, corp\", NTLM"],
            "basic",
            &["Basic", "NTLM"],
            Some("the server offers Basic, NTLM"),
        );
        check(
            &["NTLM TlRMTVNTUAACAAAA=="],
            "ntlm",
            &["NTLM"],
            Some("the server offers NTLM"),
        );
        check(
            &["Bearer realm=\"x\", error=\"invalid_token\""],
            "basic",
            &["Bearer"],
            Some("the server offers Bearer; config says basic \u{2192} set auth = \"oauth2\""),
        );
        check(
            &["Basic realm=\"x\", charset=\"UTF-8\""],
            "ntlm",
            &["Basic"],
            Some("the server offers Basic; config says ntlm \u{2192} set auth = \"basic\""),
        );
        check(&[], "basic", &[], None);
        let ok = response(200, "http://h/", &[("WWW-Authenticate", "NTLM")]);
        assert!(ok.offered_schemes().is_empty());
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
