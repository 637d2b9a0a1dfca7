//! HTTP/1.1 on bytes: the request as it goes on the wire, and a response read from any
//! `Read` with every limit enforced while reading. No sockets here, so the tests feed slices.
//!
//! Connections are persistent, so the framing of a response decides where the next one
//! starts: it is strict (RFC 9112 section 6): a response with both `Content-Length` and
//! `Transfer-Encoding`, with differing lengths, with a transfer coding other than `chunked`, or
//! with a sign or any other non-digit in a length is refused, and the caller closes the
//! connection after any error.

use std::io::{self, Read};

/// What can go wrong with the bytes of a response.
#[derive(Debug)]
pub enum WireError {
    /// The peer did not speak HTTP/1.x as we understand it.
    Malformed(String),
    /// The body is larger than the cap.
    TooLarge,
    /// The status line and headers are larger than we accept.
    HeadTooLarge,
    /// The connection ended before the response was complete.
    Truncated,
    /// The connection ended (or was reset) before the first byte of the response: on a reused
    /// connection, the server had closed it while it was idle.
    Closed,
    /// The answer is a TLS record: the port speaks TLS, not plain HTTP.
    TlsAnswer,
    /// The transport failed (includes read time-outs).
    Io(io::Error),
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            WireError::Truncated
        } else {
            WireError::Io(e)
        }
    }
}

/// The largest status line plus headers we read.
pub const MAX_HEAD: usize = 64 * 1024;

/// The most a body is sized in advance from its `Content-Length`; beyond it, it grows as it
/// arrives.
const PRESIZE_MAX: usize = 4 << 20;

/// The size of a connection's read buffer.
const READ_BUF: usize = 16 * 1024;

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The connection may carry another request: HTTP/1.1 (or 1.0 with keep-alive), no
    /// `Connection: close`, and a body delimited by its framing rather than by the close.
    pub keep_alive: bool,
}

/// The bytes of a request. `target` is the path with the query; the caller has checked that no
/// header holds a control character.
pub fn encode_request(
    method: &str,
    host_header: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    push_line(
        &mut out,
        &[method.as_bytes(), b" ", target.as_bytes(), b" HTTP/1.1"],
    );
    push_line(&mut out, &[b"Host: ", host_header.as_bytes()]);
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("user-agent") {
        out.extend_from_slice(
            concat!(
                "User-Agent: exchange-status-sync/",
                env!("CARGO_PKG_VERSION"),
                "\r\n"
            )
            .as_bytes(),
        );
    }
    if !has("accept") {
        out.extend_from_slice(b"Accept: */*\r\n");
    }
    for (k, v) in headers {
        push_line(&mut out, &[k.as_bytes(), b": ", v.as_bytes()]);
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        push_line(
            &mut out,
            &[b"Content-Length: ", body.len().to_string().as_bytes()],
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Appends one header line made of `parts`, in place: a `format!` per line was a String per
/// header per request.
fn push_line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\r\n");
}

/// A connection's read buffer: allocated and zeroed once, then reused for every read of every
/// response on that connection.
pub struct ReadBuf {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

impl Default for ReadBuf {
    fn default() -> Self {
        ReadBuf {
            buf: vec![0; READ_BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }
}

impl ReadBuf {
    /// Bytes read from the connection but not yet consumed: after a whole response there must
    /// be none, or the server sent more than it announced.
    pub fn pending(&self) -> usize {
        self.end - self.pos
    }
}

/// A byte source with a one-buffer look-ahead, so the head and the body can be read in pieces.
struct Buffered<'r, R: Read> {
    inner: &'r mut R,
    rb: &'r mut ReadBuf,
    eof: bool,
    /// Bytes taken from the connection for this response so far.
    seen: usize,
}

impl<R: Read> Buffered<'_, R> {
    fn fill(&mut self) -> Result<bool, WireError> {
        if self.rb.pos < self.rb.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.rb.pos = 0;
        self.rb.end = 0;
        let n = loop {
            match self.inner.read(&mut self.rb.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if self.seen == 0
                        && matches!(
                            e.kind(),
                            io::ErrorKind::ConnectionReset
                                | io::ErrorKind::ConnectionAborted
                                | io::ErrorKind::UnexpectedEof
                                | io::ErrorKind::BrokenPipe
                        ) =>
                {
                    return Err(WireError::Closed)
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.rb.end = n;
        self.seen += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    fn avail(&self) -> &[u8] {
        &self.rb.buf[self.rb.pos..self.rb.end]
    }

    /// A line ending in LF (CR stripped), counting against `budget`.
    fn line(&mut self, budget: &mut usize) -> Result<Vec<u8>, WireError> {
        let mut line = Vec::new();
        loop {
            if !self.fill()? {
                return Err(if self.seen == 0 {
                    WireError::Closed
                } else {
                    WireError::Truncated
                });
            }
            let avail = self.avail();
            let (take, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if take > *budget {
                return Err(WireError::HeadTooLarge);
            }
            *budget -= take;
            line.extend_from_slice(&avail[..take]);
            self.rb.pos += take;
            if done {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
        }
    }

    /// Appends exactly `n` bytes to `out`.
    fn exact(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
        while n > 0 {
            if !self.fill()? {
                return Err(WireError::Truncated);
            }
            let take = n.min(self.rb.end - self.rb.pos);
            out.extend_from_slice(&self.rb.buf[self.rb.pos..self.rb.pos + take]);
            self.rb.pos += take;
            n -= take;
        }
        Ok(())
    }

    /// Appends everything up to the end of the stream, up to `cap` bytes in `out` in all.
    fn rest(&mut self, out: &mut Vec<u8>, cap: usize) -> Result<(), WireError> {
        while self.fill()? {
            let avail = self.rb.end - self.rb.pos;
            if out.len() + avail > cap {
                return Err(WireError::TooLarge);
            }
            out.extend_from_slice(&self.rb.buf[self.rb.pos..self.rb.end]);
            self.rb.pos = self.rb.end;
        }
        Ok(())
    }
}

fn malformed(what: &str) -> WireError {
    WireError::Malformed(what.to_string())
}

/// A length: decimal digits only (no sign, no spaces), as RFC 9112 section 6.3 requires.
fn decimal(v: &str) -> Option<usize> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// How the body of a response is delimited.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Chunked,
    Length(usize),
    UntilClose,
}

/// The framing the headers announce, or why they are refused.
fn framing(
    headers: &[(String, String)],
    status: u16,
    head_request: bool,
) -> Result<Framing, WireError> {
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
    };
    let mut lengths = values("content-length").peekable();
    let length = match lengths.peek() {
        None => None,
        Some(first) => {
            let first = decimal(first).ok_or_else(|| malformed("bad Content-Length"))?;
            for v in lengths {
                if decimal(v) != Some(first) {
                    return Err(malformed("differing Content-Length values"));
                }
            }
            Some(first)
        }
    };
    let codings: Vec<&str> = values("transfer-encoding").collect();
    if !codings.is_empty() {
        if length.is_some() {
            return Err(malformed(
                "both Content-Length and Transfer-Encoding (refused: the framing is ambiguous)",
            ));
        }
        if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err(malformed(
                "a Transfer-Encoding other than chunked is not supported",
            ));
        }
    }
    Ok(if head_request || status == 204 || status == 304 {
        Framing::None
    } else if !codings.is_empty() {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    })
}

/// Reads one response into `rb`'s connection. 1xx interim responses are skipped. The body is
/// delimited by chunked transfer coding, `Content-Length`, or the end of the connection; it may
/// not exceed `max_body` bytes.
pub fn read_response<R: Read>(
    reader: &mut R,
    rb: &mut ReadBuf,
    max_body: usize,
    head_request: bool,
) -> Result<RawResponse, WireError> {
    let mut src = Buffered {
        inner: reader,
        rb,
        eof: false,
        seen: 0,
    };
    let mut budget = MAX_HEAD;
    loop {
        if src.fill()? && matches!(src.avail().first(), Some(0x15 | 0x16)) {
            return Err(WireError::TlsAnswer);
        }
        let line = src.line(&mut budget)?;
        let line = String::from_utf8(line).map_err(|_| malformed("status line is not text"))?;
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(malformed("not an HTTP/1.x response"));
        }
        let status = parts
            .next()
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(|| malformed("bad status code"))?;
        let mut headers = Vec::new();
        loop {
            let line = src.line(&mut budget)?;
            if line.is_empty() {
                break;
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| malformed("header line without ':'"))?;
            if k.is_empty() || k.contains([' ', '\t']) {
                return Err(malformed("bad header name"));
            }
            headers.push((k.to_string(), v.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let framing = framing(&headers, status, head_request)?;
        let mut body = Vec::new();
        match framing {
            Framing::None => {}
            Framing::Chunked => read_chunked(&mut src, &mut body, max_body, &mut budget)?,
            Framing::Length(len) => {
                if len > max_body {
                    return Err(WireError::TooLarge);
                }
                // Sized once from the announced length: growing by doubling was a fresh
                // mapping, a copy and new page faults per step for every EWS response (musl
                // maps large blocks one by one). Capped, so that a server announcing much and
                // sending little costs no more than the cap.
                body.reserve_exact(len.min(PRESIZE_MAX));
                src.exact(len, &mut body)?;
            }
            Framing::UntilClose => src.rest(&mut body, max_body)?,
        }
        let connection = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect::<Vec<_>>();
        let persistent = if version == "HTTP/1.0" {
            connection.iter().any(|t| t == "keep-alive")
        } else {
            !connection.iter().any(|t| t == "close")
        };
        return Ok(RawResponse {
            status,
            headers,
            body,
            keep_alive: persistent && framing != Framing::UntilClose,
        });
    }
}

fn read_chunked<R: Read>(
    src: &mut Buffered<'_, R>,
    body: &mut Vec<u8>,
    max_body: usize,
    budget: &mut usize,
) -> Result<(), WireError> {
    loop {
        // Chunk-size lines and trailers get their own allowance: they are not part of the head.
        let mut line_budget = 4096;
        let line = src.line(&mut line_budget)?;
        let line = String::from_utf8_lossy(&line);
        let size = line
            .split(';')
            .next()
            .unwrap_or("")
            .trim_end_matches([' ', '\t']);
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("bad chunk size"));
        }
        let size = usize::from_str_radix(size, 16).map_err(|_| malformed("bad chunk size"))?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                if src.line(budget)?.is_empty() {
                    return Ok(());
                }
            }
        }
        if body.len().saturating_add(size) > max_body {
            return Err(WireError::TooLarge);
        }
        src.exact(size, body)?;
        let mut crlf_budget = 2;
        match src.line(&mut crlf_budget) {
            Ok(l) if l.is_empty() => {}
            Ok(_) | Err(WireError::HeadTooLarge) => {
                return Err(malformed("chunk not followed by CRLF"))
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], max_body: usize) -> Result<RawResponse, WireError> {
        read_response(&mut &input[..], &mut ReadBuf::default(), max_body, false)
    }

    fn kind(e: &WireError) -> &'static str {
        match e {
            WireError::Malformed(_) => "malformed",
            WireError::TooLarge => "too-large",
            WireError::HeadTooLarge => "head-too-large",
            WireError::Truncated => "truncated",
            WireError::Closed => "closed",
            WireError::TlsAnswer => "tls",
            WireError::Io(_) => "io",
        }
    }

    /// `Ok((status, body, keep_alive))` or the kind of error.
    fn check(input: &str, max_body: usize, expect: Result<(u16, &str, bool), &str>) {
        match (read(input.as_bytes(), max_body), expect) {
            (Ok(r), Ok((status, body, keep))) => {
                assert_eq!(r.status, status, "{input:?}");
                assert_eq!(String::from_utf8_lossy(&r.body), body, "{input:?}");
                assert_eq!(r.keep_alive, keep, "{input:?}");
            }
            (Err(e), Err(want)) => assert_eq!(kind(&e), want, "{input:?}: {e:?}"),
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn responses() {
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            100,
            Ok((200, "hello", true)),
        );
        check(
            "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
            100,
            Ok((200, "hello", true)),
        );
        check(
            "HTTP/1.0 404 Not Found\r\n\r\nnope",
            100,
            Ok((404, "nope", false)),
        );
        check(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
            100,
            Ok((200, "x", true)),
        );
        check(
            "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 1\r\n\r\nx",
            100,
            Ok((200, "x", false)),
        );
        check(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx",
            100,
            Ok((200, "x", false)),
        );
        check(
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            100,
            Ok((204, "", true)),
        );
        check("HTTP/1.1 204 No Content\r\n\r\n", 100, Ok((204, "", true)));
        check(
            "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
            100,
            Ok((200, "ok", true)),
        );
        check(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
            100,
            Ok((201, "x", true)),
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
            100,
            Ok((200, "hello world", true)),
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            100,
            Ok((200, "ab", true)),
        );
        // The same length twice (or as a list) is one length (RFC 9112 section 6.3).
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
            100,
            Ok((200, "ab", true)),
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab",
            100,
            Ok((200, "ab", true)),
        );
        // A body up to the close cannot be followed by another response.
        check(
            "HTTP/1.1 200 OK\r\n\r\nuntil close",
            100,
            Ok((200, "until close", false)),
        );
    }

    /// Each framing error of RFC 9112 that a persistent connection must not guess at.
    #[test]
    fn strict_framing() {
        let refused = [
            // Both Content-Length and Transfer-Encoding (request smuggling's favourite).
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            // Differing lengths, as two fields or as a list.
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nabc",
            // Transfer codings other than chunked alone.
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nab",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nab",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            // Signs and other non-digits in lengths.
            "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nab",
            "HTTP/1.1 200 OK\r\nContent-Length: 2 2\r\n\r\nab",
            "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nab\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nab\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
            // A header name with white space before the colon.
            "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nab",
        ];
        for input in refused {
            check(input, 100, Err("malformed"));
        }
        // A framing error also stands for a HEAD request and a 204, where no body is read.
        let err = read_response(
            &mut &b"HTTP/1.1 200 OK\r\nContent-Length: +0\r\n\r\n"[..],
            &mut ReadBuf::default(),
            100,
            true,
        );
        assert!(matches!(err, Err(WireError::Malformed(_))), "{err:?}");
    }

    #[test]
    fn limits_and_garbage() {
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n",
            100,
            Err("too-large"),
        );
        check(
            &format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(101)),
            100,
            Err("too-large"),
        );
        check(
            &format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n{}\r\n0\r\n\r\n",
                "x".repeat(101)
            ),
            100,
            Err("too-large"),
        );
        check(
            &format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD)),
            100,
            Err("head-too-large"),
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
            100,
            Err("truncated"),
        );
        check("HTTP/1.1 200 OK\r\nContent-Len", 100, Err("truncated"));
        check("H", 100, Err("truncated"));
        check("", 100, Err("closed"));
        check("SSH-2.0-OpenSSH\r\n\r\n", 100, Err("malformed"));
        check("HTTP/1.1 2000 OK\r\n\r\n", 100, Err("malformed"));
        check("HTTP/1.1 099 OK\r\n\r\n", 100, Err("malformed"));
        check(
            "HTTP/1.1 200 OK\r\nbroken header\r\n\r\n",
            100,
            Err("malformed"),
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            100,
            Err("malformed"),
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            100,
            Err("malformed"),
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab",
            100,
            Err("truncated"),
        );
        // A TLS alert or handshake record where an HTTP answer should be.
        for record in [
            &b"\x15\x03\x03\x00\x02\x02\x46"[..],
            b"\x16\x03\x01\x00\x10",
        ] {
            let err = read(record, 100).unwrap_err();
            assert_eq!(kind(&err), "tls", "{err:?}");
        }
    }

    #[test]
    fn truncated_at_every_byte() {
        let full = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world";
        for cut in 0..full.len() {
            let r = read(&full.as_bytes()[..cut], 100);
            assert!(r.is_err(), "cut at {cut} gave {r:?}");
        }
        let chunked =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        for cut in 0..chunked.len() {
            let r = read(&chunked.as_bytes()[..cut], 100);
            assert!(r.is_err(), "cut at {cut} gave {r:?}");
        }
    }

    #[test]
    fn responses_in_a_row_share_the_buffer() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 201 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n";
        let mut src = &two[..];
        let mut rb = ReadBuf::default();
        let first = read_response(&mut src, &mut rb, 100, false).unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"a"[..]));
        // The second answer arrived with the first: it waits in the buffer.
        assert!(rb.pending() > 0);
        let second = read_response(&mut src, &mut rb, 100, false).unwrap();
        assert_eq!((second.status, second.body.as_slice()), (201, &b"b"[..]));
        assert_eq!(rb.pending(), 0);
        let err = read_response(&mut src, &mut rb, 100, false).unwrap_err();
        assert_eq!(kind(&err), "closed");
    }

    #[test]
    fn request_encoding() {
        let req = encode_request(
            "POST",
            "ex.example.com:8443",
            "/EWS/Exchange.asmx?a=b",
            &[("Content-Type".into(), "text/xml".into())],
            b"<x/>",
        );
        let text = String::from_utf8(req).unwrap();
        assert!(text
            .starts_with("POST /EWS/Exchange.asmx?a=b HTTP/1.1\r\nHost: ex.example.com:8443\r\n"));
        assert!(text.contains("\r\nContent-Type: text/xml\r\n"));
        assert!(!text.contains("Connection:"));
        assert!(text.ends_with("Content-Length: 4\r\n\r\n<x/>"));
        let get = String::from_utf8(encode_request("GET", "h", "/", &[], b"")).unwrap();
        assert!(!get.contains("Content-Length"));
        let put = String::from_utf8(encode_request("PUT", "h", "/", &[], b"")).unwrap();
        assert!(put.contains("Content-Length: 0\r\n"));
    }
}
