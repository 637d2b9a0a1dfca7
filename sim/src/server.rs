//! A small HTTP server on loopback that every fake (EWS, Graph, STARFACE) runs on.
//!
//! A fake is a function from a parsed request to a reply. The reply can ask for the faults the
//! tests need at the transport level: a delay before answering, a slow drip of the body, or a
//! connection closed in the middle of the body.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
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

/// A reader that hands out its bytes slowly, or stops early.
struct FaultyBody {
    data: Vec<u8>,
    pos: usize,
    end: usize,
    drip: Option<Duration>,
}

impl Read for FaultyBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end {
            if self.end < self.data.len() {
                // Make tiny_http give up on the connection instead of padding the body.
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "truncated",
                ));
            }
            return Ok(0);
        }
        let mut n = buf.len().min(self.end - self.pos);
        if let Some(pause) = self.drip {
            std::thread::sleep(pause);
            n = n.min(16);
        }
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

type Handler = dyn Fn(&HttpRequest) -> HttpReply + Send + Sync + 'static;

/// A running server; stops when dropped.
pub struct Server {
    url: String,
    port: u16,
    inner: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
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
        let inner = tiny_http::Server::http(addr).map_err(|e| io::Error::other(e.to_string()))?;
        let port = inner
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| io::Error::other("not an IP listener"))?;
        let inner = Arc::new(inner);
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let workers = (0..4)
            .map(|_| {
                let (inner, stop, handler) = (inner.clone(), stop.clone(), handler.clone());
                std::thread::spawn(move || serve(&inner, &stop, &*handler))
            })
            .collect();
        Ok(Server {
            url: format!("http://127.0.0.1:{port}"),
            port,
            inner,
            stop,
            workers,
        })
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.inner.unblock();
        for _ in 1..self.workers.len() {
            self.inner.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, handler: &Handler) {
    while !stop.load(Ordering::SeqCst) {
        let mut rq = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(rq)) => rq,
            Ok(None) => continue,
            Err(_) => break,
        };
        let url = rq.url().to_string();
        let (path, raw_query) = match url.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (url.clone(), String::new()),
        };
        let mut body = Vec::new();
        let _ = rq.as_reader().read_to_end(&mut body);
        let req = HttpRequest {
            method: rq.method().as_str().to_string(),
            path: percent_decode(&path, false),
            query: parse_query(&raw_query),
            raw_query,
            headers: rq
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_string(),
                        h.value.as_str().to_string(),
                    )
                })
                .collect(),
            body,
            peer: rq.remote_addr().map(|a| a.to_string()).unwrap_or_default(),
        };
        let reply = handler(&req);
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        let len = reply.body.len();
        let end = reply.truncate_at.map_or(len, |t| t.min(len));
        let headers = reply
            .headers
            .iter()
            .filter_map(|(k, v)| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
            .collect();
        let response = tiny_http::Response::new(
            tiny_http::StatusCode(reply.status),
            headers,
            FaultyBody {
                data: reply.body,
                pos: 0,
                end,
                drip: reply.drip,
            },
            Some(len),
            None,
        );
        let _ = rq.respond(response);
    }
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
}
