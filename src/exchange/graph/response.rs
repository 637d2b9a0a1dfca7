//! Reading Graph responses: the `$batch` envelope, one calendarView page, and Graph's error
//! body. Pure functions over text and JSON values; every malformed or mistyped input is an
//! error for the request it came with, never a panic.

use std::time::Duration;

use crate::json::{self, Value};
use crate::model::{Appointment, ShowAs, Timestamp};
use crate::time::parse_datetime;

/// How much of a server's error message is kept.
const MAX_MESSAGE: usize = 300;

/// One inner response of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct InnerResponse {
    pub id: String,
    pub status: u16,
    /// `Retry-After` in seconds, from the inner response's headers.
    pub retry_after: Option<Duration>,
    /// The JSON body; `Null` when there is none.
    pub body: Value,
}

/// Parses a `$batch` response: `{"responses":[{id, status, headers, body}]}`, in any order.
/// The parsed tree is taken apart rather than copied: a batch of 20 full pages is most of a
/// poll's parsing work.
pub fn parse_batch(text: &str) -> Result<Vec<InnerResponse>, String> {
    let v = json::parse(text).map_err(|e| e.to_string())?;
    let responses = match take_member(v, "responses") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err("\"responses\" is not an array".into()),
        None => return Err("no \"responses\" member".into()),
    };
    responses.into_iter().map(parse_inner).collect()
}

/// Moves a member out of an object; `None` for a missing member or a value that is not an
/// object.
fn take_member(v: Value, key: &str) -> Option<Value> {
    match v {
        Value::Object(members) => members.into_iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn parse_inner(r: Value) -> Result<InnerResponse, String> {
    let id = r
        .get("id")
        .and_then(Value::as_str)
        .ok_or("an inner response without a string \"id\"")?
        .to_string();
    let status = r
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| format!("inner response {id} has no valid \"status\""))?;
    let retry_after = match r.get("headers") {
        None | Some(Value::Null) => None,
        Some(Value::Object(headers)) => headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Retry-After"))
            .and_then(|(_, v)| match v {
                Value::String(s) => s.trim().parse::<u64>().ok(),
                other => other.as_u64(),
            })
            .map(Duration::from_secs),
        Some(_) => return Err(format!("inner response {id}: \"headers\" is not an object")),
    };
    let body = match take_member(r, "body") {
        None => Value::Null,
        Some(b @ (Value::Object(_) | Value::Null)) => b,
        // Graph base64-encodes bodies that are not JSON; a calendarView never has one.
        Some(other) => {
            return Err(format!(
                "inner response {id}: expected a JSON body, found {}",
                other.type_name()
            ))
        }
    };
    Ok(InnerResponse {
        id,
        status,
        retry_after,
        body,
    })
}

/// One page of a calendarView.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub appointments: Vec<Appointment>,
    /// The absolute URL of the next page.
    pub next_link: Option<String>,
}

/// Reads a calendarView page body: `{"value":[event…], "@odata.nextLink": …}`. Events with a
/// show-as we do not act on (`unknown`, or a value newer than this program) are dropped.
pub fn parse_page(body: &Value) -> Result<Page, String> {
    let events = body
        .get("value")
        .ok_or("no \"value\" member")?
        .as_array()
        .ok_or("\"value\" is not an array")?;
    let mut appointments = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        if let Some(a) = parse_event(e).map_err(|m| format!("event {i}: {m}"))? {
            appointments.push(a);
        }
    }
    let next_link = match body.get("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "\"@odata.nextLink\" is {}, not a string",
                other.type_name()
            ))
        }
    };
    Ok(Page {
        appointments,
        next_link,
    })
}

/// Reads one event; `Ok(None)` for one we ignore.
pub fn parse_event(e: &Value) -> Result<Option<Appointment>, String> {
    if e.as_object().is_none() {
        return Err(format!("expected an object, found {}", e.type_name()));
    }
    let text = |key: &str| -> Result<Option<&str>, String> {
        match e.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("\"{key}\" is {}, not a string", other.type_name())),
        }
    };
    let show_as = match text("showAs")? {
        Some("free") => ShowAs::Free,
        Some("tentative") => ShowAs::Tentative,
        Some("busy") => ShowAs::Busy,
        Some("oof") => ShowAs::Oof,
        Some("workingElsewhere") => ShowAs::WorkingElsewhere,
        _ => return Ok(None),
    };
    let private = matches!(text("sensitivity")?, Some("private" | "confidential"));
    let all_day = match e.get("isAllDay") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("\"isAllDay\" is {}", other.type_name())),
    };
    Ok(Some(Appointment {
        start: date_time(e, "start")?,
        end: date_time(e, "end")?,
        show_as,
        subject: text("subject")?.map(str::to_string),
        private,
        all_day,
    }))
}

/// A `dateTimeTimeZone`: `{"dateTime":"2026-12-01T09:00:00.0000000","timeZone":"UTC"}`. We
/// asked for UTC; an explicit offset in the text is honoured, but a zone-less time in another
/// zone cannot be read without a zone database and is refused rather than misread.
fn date_time(e: &Value, key: &str) -> Result<Timestamp, String> {
    let dt = e.get(key).ok_or_else(|| format!("no \"{key}\""))?;
    let text = dt
        .get("dateTime")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("\"{key}\" has no \"dateTime\" string"))?;
    let zone = match dt.get("timeZone") {
        None | Some(Value::Null) => "UTC",
        Some(Value::String(z)) => z.as_str(),
        Some(other) => return Err(format!("\"{key}.timeZone\" is {}", other.type_name())),
    };
    let has_offset = text
        .get(19..)
        .is_some_and(|rest| rest.contains(['Z', 'z', '+', '-']));
    if !has_offset && !zone.eq_ignore_ascii_case("UTC") {
        return Err(format!(
            "\"{key}\" is in time zone '{zone}', not the UTC that was asked for"
        ));
    }
    parse_datetime(text, 0).map_err(|err| format!("\"{key}\": {err}"))
}

/// Graph's error body `{"error":{"code","message"}}` as `(code, message)`; `None` when the body
/// has no such object. The message is scrubbed of known secrets (Graph may echo the request's
/// `Authorization` value) and cut to one line of bounded length.
pub fn parse_error(body: &Value) -> Option<(String, String)> {
    let err = body.get("error")?;
    let code = err.get("code").and_then(Value::as_str)?.to_string();
    // Scrubbed whole before it is cut: a secret cut in half would no longer match.
    let message = crate::secrets::scrub(err.get("message").and_then(Value::as_str).unwrap_or(""));
    let line = message.lines().next().unwrap_or("").trim();
    let message = match line.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    };
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339;

    const CALENDAR_VIEW: &str = include_str!("../../../tests/fixtures/graph/calendarview.json");
    const CALENDAR_VIEW_PAGED: &str =
        include_str!("../../../tests/fixtures/graph/calendarview-paged.json");
    const BATCH: &str = include_str!("../../../tests/fixtures/graph/batch-response.json");
    const ERROR_404: &str =
        include_str!("../../../tests/fixtures/graph/error-404-invalid-user.json");
    const ERROR_403: &str =
        include_str!("../../../tests/fixtures/graph/error-403-access-policy.json");
    const ERROR_429: &str = include_str!("../../../tests/fixtures/graph/error-429-throttled.json");

    /// One line per appointment: `start end show-as private all-day subject`.
    fn show(page: &Page) -> Vec<String> {
        page.appointments
            .iter()
            .map(|a| {
                format!(
                    "{} {} {} {}{} {}",
                    format_rfc3339(a.start),
                    format_rfc3339(a.end),
                    a.show_as.name(),
                    if a.private { "P" } else { "-" },
                    if a.all_day { "A" } else { "-" },
                    a.subject.as_deref().unwrap_or("<none>")
                )
            })
            .collect()
    }

    /// Parses a page from text and compares the result (or the error) with `expect`.
    fn check(text: &str, expect: Result<&[&str], &str>) {
        let got = json::parse(text)
            .map_err(|e| e.to_string())
            .and_then(|v| parse_page(&v));
        match (got, expect) {
            (Ok(page), Ok(want)) => assert_eq!(show(&page), want, "{text}"),
            (Err(e), Err(want)) => assert!(e.contains(want), "{text}: {e} lacks {want}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }

    fn event(fields: &str) -> String {
        format!(
            r#"{{"value":[{{"start":{{"dateTime":"2026-12-01T09:00:00.0000000","timeZone":"UTC"}},"end":{{"dateTime":"2026-12-01T10:00:00.0000000","timeZone":"UTC"}}{fields}}}]}}"#
        )
    }

    #[test]
    fn documented_calendar_view() {
        check(
            CALENDAR_VIEW,
            Ok(&[
                "2026-12-01T08:00:00Z 2026-12-01T08:30:00Z Busy -- Weekly sync (DND)",
                "2026-12-01T09:30:00Z 2026-12-01T11:00:00Z Tentative P- Doctor",
                "2026-12-01T00:00:00Z 2026-12-02T00:00:00Z OOF -A Vacation",
                "2026-12-01T12:00:00Z 2026-12-01T13:00:00Z Free -- Lunch (Team)",
                "2026-12-01T13:00:00Z 2026-12-01T14:00:00Z WorkingElsewhere P- Home office",
            ]),
        );
        let page = parse_page(&json::parse(CALENDAR_VIEW_PAGED).unwrap()).unwrap();
        assert_eq!(page.appointments.len(), 2);
        assert_eq!(
            page.next_link.as_deref(),
            Some("https://graph.microsoft.com/v1.0/users/alice%40contoso.com/calendarView?startDateTime=2026-12-01T00%3a00%3a00Z&endDateTime=2026-12-02T00%3a00%3a00Z&%24select=subject%2cstart%2cend%2cshowAs%2cisAllDay%2csensitivity&%24top=2&%24skip=2")
        );
    }

    #[test]
    fn events() {
        check(
            &event(r#","showAs":"busy","subject":"S""#),
            Ok(&["2026-12-01T09:00:00Z 2026-12-01T10:00:00Z Busy -- S"]),
        );
        // Unknown and future show-as values, and none at all, are dropped.
        check(&event(r#","showAs":"unknown""#), Ok(&[]));
        check(&event(r#","showAs":"somethingNew""#), Ok(&[]));
        check(&event(""), Ok(&[]));
        check(&event(r#","showAs":"Busy""#), Ok(&[]));
        check(
            &event(r#","showAs":"oof","sensitivity":"confidential""#),
            Ok(&["2026-12-01T09:00:00Z 2026-12-01T10:00:00Z OOF P- <none>"]),
        );
        check(
            &event(r#","showAs":"oof","sensitivity":"personal","subject":null,"isAllDay":null"#),
            Ok(&["2026-12-01T09:00:00Z 2026-12-01T10:00:00Z OOF -- <none>"]),
        );
        check(
            r#"{"value":[{"showAs":"busy","start":{"dateTime":"2026-12-01T10:00:00.5+01:00","timeZone":"W. Europe Standard Time"},"end":{"dateTime":"2026-12-01T10:00:00Z"}}]}"#,
            Ok(&["2026-12-01T09:00:00Z 2026-12-01T10:00:00Z Busy -- <none>"]),
        );
        check(r#"{"value":[]}"#, Ok(&[]));
        check(r#"{"value":[],"@odata.nextLink":null}"#, Ok(&[]));
    }

    #[test]
    fn wrong_shapes_are_errors() {
        check("{}", Err("no \"value\" member"));
        check(r#"{"value":{}}"#, Err("\"value\" is not an array"));
        check(
            r#"{"value":[1]}"#,
            Err("event 0: expected an object, found a number"),
        );
        check(
            &event(r#","showAs":1"#),
            Err("\"showAs\" is a number, not a string"),
        );
        check(
            &event(r#","showAs":"busy","subject":["x"]"#),
            Err("\"subject\" is an array"),
        );
        check(
            &event(r#","showAs":"busy","isAllDay":"true""#),
            Err("\"isAllDay\" is a string"),
        );
        check(
            &event(r#","showAs":"busy","sensitivity":false"#),
            Err("\"sensitivity\" is a boolean"),
        );
        check(
            r#"{"value":[{"showAs":"busy","end":{"dateTime":"2026-12-01T10:00:00"}}]}"#,
            Err("no \"start\""),
        );
        check(
            r#"{"value":[{"showAs":"busy","start":{"dateTime":5},"end":{}}]}"#,
            Err("\"start\" has no \"dateTime\" string"),
        );
        check(
            r#"{"value":[{"showAs":"busy","start":{"dateTime":"2026-12-01T09:00:00","timeZone":"Pacific Standard Time"},"end":{"dateTime":"2026-12-01T10:00:00"}}]}"#,
            Err("\"start\" is in time zone 'Pacific Standard Time'"),
        );
        check(
            r#"{"value":[{"showAs":"busy","start":{"dateTime":"2026-12-01T09:00:00","timeZone":7},"end":{"dateTime":"2026-12-01T10:00:00"}}]}"#,
            Err("\"start.timeZone\" is a number"),
        );
        check(
            r#"{"value":[{"showAs":"busy","start":{"dateTime":"2026-02-30T09:00:00"},"end":{"dateTime":"2026-12-01T10:00:00"}}]}"#,
            Err("\"start\": '2026-02-30T09:00:00' has a field out of range"),
        );
        check(
            r#"{"value":[],"@odata.nextLink":3}"#,
            Err("\"@odata.nextLink\" is a number, not a string"),
        );
    }

    #[test]
    fn documented_batch_response() {
        let responses = parse_batch(BATCH).unwrap();
        let summary: Vec<String> = responses
            .iter()
            .map(|r| {
                format!(
                    "{} {} {:?} {}",
                    r.id,
                    r.status,
                    r.retry_after.map(|d| d.as_secs()),
                    r.body.type_name()
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "2 200 None an object",
                "1 404 None an object",
                "3 429 Some(10) an object",
                "4 403 None an object",
                "5 204 None null",
            ]
        );
        assert_eq!(
            parse_error(&responses[1].body),
            Some((
                "ErrorInvalidUser".to_string(),
                "The requested user 'nobody@contoso.com' is invalid.".to_string()
            ))
        );
    }

    #[test]
    fn batch_shapes() {
        let check = |text: &str, want: &str| {
            let got = match parse_batch(text) {
                Ok(r) => format!("{} responses", r.len()),
                Err(e) => e,
            };
            assert!(got.contains(want), "{text}: {got} lacks {want}");
        };
        check(r#"{"responses":[]}"#, "0 responses");
        check(
            r#"{"responses":[{"id":"1","status":200,"headers":{"retry-after":5},"body":{}}]}"#,
            "1 responses",
        );
        check("{}", "no \"responses\" member");
        check(r#"{"responses":{}}"#, "not an array");
        check(
            r#"{"responses":[{"status":200}]}"#,
            "without a string \"id\"",
        );
        check(
            r#"{"responses":[{"id":1,"status":200}]}"#,
            "without a string \"id\"",
        );
        check(
            r#"{"responses":[{"id":"1","status":"200"}]}"#,
            "inner response 1 has no valid \"status\"",
        );
        check(
            r#"{"responses":[{"id":"1","status":70000}]}"#,
            "no valid \"status\"",
        );
        check(
            r#"{"responses":[{"id":"1","status":99}]}"#,
            "no valid \"status\"",
        );
        check(
            r#"{"responses":[{"id":"1","status":200,"headers":[]}]}"#,
            "\"headers\" is not an object",
        );
        check(
            r#"{"responses":[{"id":"1","status":200,"body":"eyJ2YWx1ZSI6W119"}]}"#,
            "expected a JSON body, found a string",
        );
        check(
            r#"{"responses":[{"id":"1","status":200}"#,
            "JSON text ends in the middle",
        );
    }

    #[test]
    fn documented_errors() {
        let err = |text: &str| parse_error(&json::parse(text).unwrap());
        assert_eq!(
            err(ERROR_403).map(|e| e.0),
            Some("ErrorAccessDenied".to_string())
        );
        assert_eq!(
            err(ERROR_429).map(|e| e.0),
            Some("ApplicationThrottled".to_string())
        );
        assert_eq!(
            err(ERROR_404).map(|e| e.0),
            Some("ErrorInvalidUser".to_string())
        );
        assert_eq!(
            err(r#"{"error":{"code":"X"}}"#),
            Some(("X".to_string(), String::new()))
        );
        assert_eq!(err(r#"{"error":{"message":"m"}}"#), None);
        assert_eq!(err(r#"{"error":"invalid_token"}"#), None);
        assert_eq!(err("[]"), None);
        let long = format!(
            r#"{{"error":{{"code":"X","message":"{}\nsecond line"}}}}"#,
            "é".repeat(1000)
        );
        let (_, m) = err(&long).unwrap();
        assert_eq!(m.chars().count(), MAX_MESSAGE + 1);
        // A message that repeats the request's bearer token, even where the cut falls.
        crate::secrets::register_rotating("eyJ0eXAiOiJKV1Qi.payload.sig");
        let echo = format!(
            r#"{{"error":{{"code":"InvalidAuthenticationToken","message":"{}Bearer eyJ0eXAiOiJKV1Qi.payload.sig"}}}}"#,
            "x".repeat(MAX_MESSAGE - 10)
        );
        let (_, m) = err(&echo).unwrap();
        assert!(!m.contains("eyJ0eXAi"), "{m}");
        assert!(m.starts_with("xxx"), "{m}");
    }

    #[test]
    fn hostile_input_never_panics() {
        for text in [CALENDAR_VIEW.trim_end(), BATCH.trim_end()] {
            for end in 0..text.len() {
                if let Some(prefix) = text.get(..end) {
                    assert!(parse_batch(prefix).is_err());
                    if let Ok(v) = json::parse(prefix) {
                        let _ = parse_page(&v);
                    }
                }
            }
        }
        let deep = format!(r#"{{"value":{}}}"#, "[".repeat(100_000));
        assert!(json::parse(&deep).is_err());
        let huge = format!(
            r#"{{"value":[{{"showAs":"busy","subject":"{}","start":{{"dateTime":"2026-12-01T09:00:00"}},"end":{{"dateTime":"2026-12-01T10:00:00"}}}}]}}"#,
            "x".repeat(4 << 20)
        );
        check(
            &huge,
            Ok(&[&format!(
                "2026-12-01T09:00:00Z 2026-12-01T10:00:00Z Busy -- {}",
                "x".repeat(4 << 20)
            )]),
        );
        // Every value replaced by each wrong type in turn: an error or a dropped event, no panic.
        let base = json::parse(&event(
            r#","showAs":"busy","subject":"S","isAllDay":false,"sensitivity":"normal""#,
        ))
        .unwrap();
        let wrong = [
            Value::Null,
            Value::Bool(true),
            Value::from_i64(1),
            Value::String("x".into()),
            Value::Array(vec![]),
            Value::Object(vec![]),
        ];
        for key in [
            "showAs",
            "subject",
            "isAllDay",
            "sensitivity",
            "start",
            "end",
        ] {
            for w in &wrong {
                let mut e = base.get("value").and_then(Value::as_array).unwrap()[0].clone();
                e.set(key, w.clone());
                let _ = parse_event(&e);
            }
        }
    }
}
