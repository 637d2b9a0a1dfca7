//! The one URL parser of the product: the configuration checks its URLs with it, and the HTTP
//! client takes them apart with it, so that a URL the configuration accepts is one the client
//! can use.
//!
//! Only what the product needs: `http://` or `https://` (any case), a host name, an IPv4
//! address or a bracketed IPv6 address, an optional port, and an optional path and query. A
//! fragment (`#…`) belongs to the client alone and is never sent. Errors say what to write
//! instead.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A URL taken apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// The host as written (IPv6 without the brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`; without the fragment.
    pub target: String,
    /// `localhost`, a name under `.localhost`, or a loopback address.
    pub loopback: bool,
}

impl Url {
    /// The `Host` header: the port only when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.https, self.port) {
            (true, 443) | (false, 80) => host,
            (_, p) => format!("{host}:{p}"),
        }
    }
}

/// Parses `text`; the error says what is wrong and what to write instead.
pub fn parse(text: &str) -> Result<Url, String> {
    // Schemes are case-insensitive (RFC 3986 section 3.1); the configuration accepts HTTPS://.
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    let (https, rest) = if lower.starts_with("https://") {
        (true, text.get(8..).unwrap_or(""))
    } else if lower.starts_with("http://") {
        (false, text.get(7..).unwrap_or(""))
    } else {
        return Err("use an http:// or https:// URL".to_string());
    };
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL cannot contain spaces or control characters".to_string());
    }
    let rest = rest.split('#').next().unwrap_or("");
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err(
            "put no user name or password into the URL; use the username and password keys"
                .to_string(),
        );
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address needs a closing `]`")?;
        addr.parse::<Ipv6Addr>()
            .map_err(|_| format!("[{addr}] is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("only `:port` may follow an IPv6 address")?,
            ),
        };
        (addr, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the URL needs a host".to_string());
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!("{host} is not a host name"));
    }
    let port = match port {
        None => {
            if https {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("{p} is not a port number (1 to 65535)")),
        },
    };
    let lower_host = host.to_ascii_lowercase();
    let loopback = lower_host == "localhost"
        || lower_host.ends_with(".localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback());
    Ok(Url {
        https,
        host: host.to_string(),
        port,
        target,
        loopback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok((https, host, port, target, loopback))` or the start of the error.
    fn check(text: &str, expect: Result<(bool, &str, u16, &str, bool), &str>) {
        match (parse(text), expect) {
            (Ok(u), Ok(want)) => assert_eq!(
                (
                    u.https,
                    u.host.as_str(),
                    u.port,
                    u.target.as_str(),
                    u.loopback
                ),
                want,
                "{text}"
            ),
            (Err(e), Err(start)) => assert!(e.starts_with(start), "{text}: {e}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn urls() {
        check("http://127.0.0.1", Ok((false, "127.0.0.1", 80, "/", true)));
        check(
            "https://mail.example.com/EWS/Exchange.asmx",
            Ok((true, "mail.example.com", 443, "/EWS/Exchange.asmx", false)),
        );
        check(
            "http://127.0.0.1:8080/rest/login?x=1",
            Ok((false, "127.0.0.1", 8080, "/rest/login?x=1", true)),
        );
        check("http://h?x=1", Ok((false, "h", 80, "/?x=1", false)));
        check("https://[::1]:8443/a", Ok((true, "::1", 8443, "/a", true)));
        check("https://[::1]/a", Ok((true, "::1", 443, "/a", true)));
        check(
            "HTTPS://Mail.Example.com/EWS",
            Ok((true, "Mail.Example.com", 443, "/EWS", false)),
        );
        check("Http://h", Ok((false, "h", 80, "/", false)));
        check(
            "http://pbx.localhost/",
            Ok((false, "pbx.localhost", 80, "/", true)),
        );
        // The fragment is the client's own and never goes on the wire.
        check("http://h/a?b=1#frag", Ok((false, "h", 80, "/a?b=1", false)));
        check("http://h#frag", Ok((false, "h", 80, "/", false)));
        check("http://h/#a#b", Ok((false, "h", 80, "/", false)));
        check("ftp://h/", Err("use an http://"));
        check("httpsé://h/", Err("use an http://"));
        check("http://user:pw@h/", Err("put no user name"));
        check("http://:80/", Err("the URL needs a host"));
        check("http://h:99999/", Err("99999 is not a port"));
        check("http://h:0/", Err("0 is not a port"));
        check("http://h:+80/", Err("+80 is not a port"));
        check("http://h:/", Err(" is not a port"));
        check("http://h/a b", Err("a URL cannot contain spaces"));
        check("http://h/a\u{7f}", Err("a URL cannot contain spaces"));
        check("http://[::1/", Err("an IPv6 address needs"));
        check("http://[zz]/", Err("[zz] is not an IPv6"));
        check("http://[::1]x/", Err("only `:port`"));
        check("http://h%41/", Err("h%41 is not a host name"));
    }

    #[test]
    fn host_header() {
        let h = |t: &str| parse(t).map(|u| u.host_header()).unwrap_or_default();
        assert_eq!(h("https://h/"), "h");
        assert_eq!(h("https://h:443/"), "h");
        assert_eq!(h("http://h:443/"), "h:443");
        assert_eq!(h("http://[::1]:8080/"), "[::1]:8080");
        assert_eq!(h("http://[::1]/"), "[::1]");
    }
}
