//! Building Graph requests: the calendarView URL of one mailbox and the JSON batch that carries
//! up to 20 of them. Pure functions over strings.

use crate::json::quote;
use crate::model::Window;
use crate::time::format_rfc3339;

/// Graph's limit on requests in one `$batch`.
pub const MAX_BATCH: usize = 20;

/// Events per page we ask for. Graph may send fewer and a nextLink.
pub const PAGE_SIZE: u32 = 100;

/// The properties we read; everything else (body, attendees, …) stays on the server.
pub const SELECT: &str = "subject,start,end,showAs,isAllDay,sensitivity";

/// The header that makes Graph write `start`/`end` in UTC.
pub const PREFER_UTC: (&str, &str) = ("Prefer", "outlook.timezone=\"UTC\"");

/// The calendarView of `email` in `window`, relative to `graph_url`: `/users/…/calendarView?…`.
pub fn calendar_view_path(email: &str, window: Window) -> String {
    format!(
        "/users/{}/calendarView?startDateTime={}&endDateTime={}&$select={SELECT}&$top={PAGE_SIZE}",
        crate::percent::segment(email),
        format_rfc3339(window.start),
        format_rfc3339(window.end)
    )
}

/// The JSON body of a `$batch` of GET requests, `(id, relative url)` each, every one asking for
/// UTC times.
pub fn build_batch(requests: &[(String, String)]) -> String {
    let mut out = String::from(r#"{"requests":["#);
    for (i, (id, url)) in requests.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":{},"method":"GET","url":{},"headers":{{{}:{}}}}}"#,
            quote(id),
            quote(url),
            quote(PREFER_UTC.0),
            quote(PREFER_UTC.1)
        ));
    }
    out.push_str("]}");
    out
}

/// The part of an absolute `@odata.nextLink` after `graph_url`, to be sent inside the next batch;
/// `None` when the link points elsewhere (the token is never sent to another host).
pub fn relative_next_link(graph_url: &str, next_link: &str) -> Option<String> {
    let base = graph_url.trim_end_matches('/');
    let head = next_link.get(..base.len())?;
    let rest = &next_link[base.len()..];
    if !head.eq_ignore_ascii_case(base) || !rest.starts_with('/') {
        return None;
    }
    Some(rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn calendar_view_urls() {
        let w = Window {
            start: 1_796_112_000,
            end: 1_796_198_400,
        };
        let check = |email: &str, want_user: &str| {
            let got = calendar_view_path(email, w);
            assert_eq!(
                got,
                format!("/users/{want_user}/calendarView?startDateTime=2026-12-01T08:00:00Z&endDateTime=2026-12-02T08:00:00Z&$select=subject,start,end,showAs,isAllDay,sensitivity&$top=100"),
            );
        };
        check("alice@example.com", "alice%40example.com");
        check("o'brien+tag@example.com", "o%27brien%2Btag%40example.com");
        check("a/b?c#d@x", "a%2Fb%3Fc%23d%40x");
        check("jürgen@example.de", "j%C3%BCrgen%40example.de");
        // Dot segments would be normalised away by the server: `/users/../calendarView`.
        check("..", "%2E%2E");
        check(".", "%2E");
        check("a.b", "a.b");
    }

    #[test]
    fn batch_body_is_valid_json_with_the_documented_shape() {
        let body = build_batch(&[
            ("1".into(), "/users/a%40x/calendarView?x=1".into()),
            ("2".into(), "/users/b\"%40x/calendarView".into()),
        ]);
        let v = json::parse(&body).expect("valid JSON");
        let reqs = v.get("requests").and_then(json::Value::as_array).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            reqs[0].to_json(),
            r#"{"id":"1","method":"GET","url":"/users/a%40x/calendarView?x=1","headers":{"Prefer":"outlook.timezone=\"UTC\""}}"#
        );
        assert_eq!(
            reqs[1].get("url").and_then(json::Value::as_str),
            Some("/users/b\"%40x/calendarView")
        );
        assert_eq!(build_batch(&[]), r#"{"requests":[]}"#);
    }

    #[test]
    fn next_links() {
        let check = |base: &str, link: &str, want: Option<&str>| {
            assert_eq!(
                relative_next_link(base, link).as_deref(),
                want,
                "{base} {link}"
            );
        };
        let g = "https://graph.microsoft.com/v1.0";
        check(
            g,
            "https://graph.microsoft.com/v1.0/users/a%40x/calendarView?%24skip=100",
            Some("/users/a%40x/calendarView?%24skip=100"),
        );
        check(
            "https://graph.microsoft.com/v1.0/",
            "https://graph.microsoft.com/v1.0/users/x",
            Some("/users/x"),
        );
        check(
            g,
            "https://GRAPH.microsoft.com/v1.0/users/x",
            Some("/users/x"),
        );
        check(g, "https://graph.microsoft.com/beta/users/x", None);
        check(g, "https://graph.microsoft.com/v1.0", None);
        check(g, "https://graph.microsoft.com/v1.00/users/x", None);
        check(g, "https://evil.example/v1.0/users/x", None);
        check(
            g,
            "https://graph.microsoft.com.evil.example/v1.0/users/x",
            None,
        );
        check(g, "", None);
        check(g, "https://graph.microsoft.comé", None);
    }
}
