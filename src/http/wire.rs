//! HTTP/1.1 on bytes: the request as it goes on the wire, and a response read from any
//! `Read` with every limit enforced while reading. No sockets here, so the tests feed slices.

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

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The bytes of a request. `target` is the path with the query; the caller has checked that no
/// header holds CR or LF.
pub fn encode_request(
    method: &str,
    host_header: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(
        format!("{method} {target} HTTP/1.1\r\nHost: {host_header}\r\n").as_bytes(),
    );
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
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    // One request per connection: simple, and no stale keep-alive connection can ever hand
    // us the answer to someone else's request.
    out.extend_from_slice(b"Connection: close\r\n");
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A byte source with a one-buffer look-ahead, so the head and the body can be read in pieces.
struct Buffered<'r, R: Read> {
    inner: &'r mut R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Buffered<'_, R> {
    fn fill(&mut self) -> Result<bool, WireError> {
        if self.pos < self.buf.len() {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.buf.resize(16 * 1024, 0);
        self.pos = 0;
        let n = loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.clear();
                    return Err(e.into());
                }
            }
        };
        self.buf.truncate(n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// A line ending in LF (CR stripped), counting against `budget`.
    fn line(&mut self, budget: &mut usize) -> Result<Vec<u8>, WireError> {
        let mut line = Vec::new();
        loop {
            if !self.fill()? {
                return Err(WireError::Truncated);
            }
            let avail = &self.buf[self.pos..];
            let (take, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if take > *budget {
                return Err(WireError::HeadTooLarge);
            }
            *budget -= take;
            line.extend_from_slice(&avail[..take]);
            self.pos += take;
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
            let take = n.min(self.buf.len() - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
            n -= take;
        }
        Ok(())
    }

    /// Appends everything up to the end of the stream, up to `cap` bytes in `out` in all.
    fn rest(&mut self, out: &mut Vec<u8>, cap: usize) -> Result<(), WireError> {
        while self.fill()? {
            let avail = self.buf.len() - self.pos;
            if out.len() + avail > cap {
                return Err(WireError::TooLarge);
            }
            out.extend_from_slice(&self.buf[self.pos..]);
            self.pos = self.buf.len();
        }
        Ok(())
    }
}

fn malformed(what: &str) -> WireError {
    WireError::Malformed(what.to_string())
}

/// Reads one response. 1xx interim responses are skipped. The body is delimited by chunked
/// transfer coding, `Content-Length`, or the end of the connection, in that order of precedence
/// (RFC 9112 section 6.3); it may not exceed `max_body` bytes.
pub fn read_response<R: Read>(
    reader: &mut R,
    max_body: usize,
    head_request: bool,
) -> Result<RawResponse, WireError> {
    let mut src = Buffered {
        inner: reader,
        buf: Vec::new(),
        pos: 0,
        eof: false,
    };
    let mut budget = MAX_HEAD;
    loop {
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
            if k.is_empty() || k.contains(' ') {
                return Err(malformed("bad header name"));
            }
            headers.push((k.to_string(), v.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let header = |name: &str| {
            headers
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let mut body = Vec::new();
        if head_request || status == 204 || status == 304 {
            // No body by definition.
        } else if header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            read_chunked(&mut src, &mut body, max_body, &mut budget)?;
        } else if let Some(len) = header("content-length") {
            let len: usize = len.parse().map_err(|_| malformed("bad Content-Length"))?;
            if len > max_body {
                return Err(WireError::TooLarge);
            }
            src.exact(len, &mut body)?;
        } else {
            src.rest(&mut body, max_body)?;
        }
        return Ok(RawResponse {
            status,
            headers,
            body,
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
        let size = line.split(';').next().unwrap_or("").trim();
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

    fn check(input: &str, max_body: usize, expect: Result<(u16, &str), &str>) {
        let got = read_response(&mut input.as_bytes(), max_body, false);
        match (got, expect) {
            (Ok(r), Ok((status, body))) => {
                assert_eq!(r.status, status, "{input:?}");
                assert_eq!(String::from_utf8_lossy(&r.body), body, "{input:?}");
            }
            (Err(e), Err(kind)) => {
                let k = match e {
                    WireError::Malformed(_) => "malformed",
                    WireError::TooLarge => "too-large",
                    WireError::HeadTooLarge => "head-too-large",
                    WireError::Truncated => "truncated",
                    WireError::Io(_) => "io",
                };
                assert_eq!(k, kind, "{input:?}");
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn responses() {
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            100,
            Ok((200, "hello")),
        );
        check(
            "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
            100,
            Ok((200, "hello")),
        );
        check("HTTP/1.0 404 Not Found\r\n\r\nnope", 100, Ok((404, "nope")));
        check(
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            100,
            Ok((204, "")),
        );
        check("HTTP/1.1 204 No Content\r\n\r\n", 100, Ok((204, "")));
        check(
            "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
            100,
            Ok((200, "ok")),
        );
        check(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
            100,
            Ok((201, "x")),
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
            100,
            Ok((200, "hello world")),
        );
        // Chunked wins over Content-Length.
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            100,
            Ok((200, "ab")),
        );
        // Bytes after the announced length are ignored (Connection: close).
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabcdef",
            100,
            Ok((200, "ab")),
        );
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
        check("", 100, Err("truncated"));
        check("SSH-2.0-OpenSSH\r\n\r\n", 100, Err("malformed"));
        check("HTTP/1.1 2000 OK\r\n\r\n", 100, Err("malformed"));
        check("HTTP/1.1 099 OK\r\n\r\n", 100, Err("malformed"));
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            100,
            Err("malformed"),
        );
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
    }

    #[test]
    fn truncated_at_every_byte() {
        let full = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world";
        for cut in 0..full.len() {
            let r = read_response(&mut &full.as_bytes()[..cut], 100, false);
            assert!(r.is_err(), "cut at {cut} gave {r:?}");
        }
        let chunked =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        for cut in 0..chunked.len() {
            let r = read_response(&mut &chunked.as_bytes()[..cut], 100, false);
            assert!(r.is_err(), "cut at {cut} gave {r:?}");
        }
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
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("Content-Length: 4\r\n\r\n<x/>"));
        let get = String::from_utf8(encode_request("GET", "h", "/", &[], b"")).unwrap();
        assert!(!get.contains("Content-Length"));
        let put = String::from_utf8(encode_request("PUT", "h", "/", &[], b"")).unwrap();
        assert!(put.contains("Content-Length: 0\r\n"));
    }
}
