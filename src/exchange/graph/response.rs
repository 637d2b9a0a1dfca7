//! Reading Graph responses: the `$batch` envelope, one calendarView page, and Graph's error
//! body. Pure functions over text and JSON values; every malformed or mistyped input is an
//! error for the request it came with, never a panic.

use std::time::Duration;

use crate::json::{self, Item, JsonError, Kind, Parser, Value};
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
    pub body: Body,
}

/// The body of an inner response, read as its status says.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// A 2xx answer: the calendarView page, or why it cannot be read.
    Page(Result<Page, String>),
    /// Any other status: the JSON body (Graph's error object), `Null` when there is none.
    Other(Value),
}

/// What an inner response says, before its status decides how to read the body.
#[derive(Default)]
struct InnerFields<'a> {
    id: Option<Item<'a>>,
    status: Option<Item<'a>>,
    /// The first header named `Retry-After` (in any case); `Err` for headers that are no object.
    headers: Option<Result<Option<Item<'a>>, ()>>,
    /// The page of a body read after a 2xx status.
    page: Option<Result<Page, String>>,
    /// The kind and text of a body read before the status, or after another one.
    body: Option<(Kind, &'a str)>,
}

/// Parses a `$batch` response: `{"responses":[{id, status, headers, body}]}`, in any order.
/// Read one inner response at a time and each body only once its status is known (the body
/// may come first): a page's events are read one by one, so a batch of 20 full pages never
/// exists as a tree.
pub fn parse_batch(text: &str) -> Result<Vec<InnerResponse>, String> {
    let mut p = Parser::new(text);
    let mut responses = None;
    if p.kind()? == Kind::Object {
        p.object(|p, name| {
            if name != "responses" {
                return Ok(p.skip()?);
            }
            if p.kind()? != Kind::Array {
                p.skip()?;
                return Err("\"responses\" is not an array".to_string());
            }
            let mut list = Vec::new();
            p.array(|p, _| {
                list.push(parse_inner(p)?);
                Ok::<_, String>(())
            })?;
            responses = Some(list);
            Ok(())
        })?;
    } else {
        p.skip()?;
    }
    p.finish()?;
    responses.ok_or_else(|| "no \"responses\" member".to_string())
}

fn parse_inner(p: &mut Parser<'_>) -> Result<InnerResponse, String> {
    let mut f = InnerFields::default();
    if p.kind()? == Kind::Object {
        p.object(|p, name| {
            match name {
                "id" => f.id = Some(p.item()?),
                "status" => f.status = Some(p.item()?),
                "headers" => f.headers = Some(retry_after_header(p)?),
                "body" => {
                    let kind = p.kind()?;
                    let success = matches!(&f.status, Some(Item::Number(n)) if n.parse::<u16>().is_ok_and(|s| (200..300).contains(&s)));
                    if success && matches!(kind, Kind::Object | Kind::Null) {
                        // Graph writes the status first: the page is read in the same pass.
                        f.page = Some(read_page(p)?);
                    } else {
                        let start = p.position();
                        p.skip()?;
                        f.body = Some((kind, p.since(start)));
                    }
                }
                _ => p.skip()?,
            }
            Ok::<_, JsonError>(())
        })?;
    } else {
        p.skip()?;
    }
    let id = match f.id {
        Some(Item::String(id)) => id.into_owned(),
        _ => return Err("an inner response without a string \"id\"".to_string()),
    };
    let status = match f.status {
        Some(Item::Number(n)) => n.parse::<u16>().ok(),
        _ => None,
    }
    .filter(|s| (100..600).contains(s))
    .ok_or_else(|| format!("inner response {id} has no valid \"status\""))?;
    let retry_after = match f.headers {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(value))) => match value {
            Item::String(s) => s.trim().parse::<u64>().ok(),
            Item::Number(n) => n.parse::<u64>().ok(),
            _ => None,
        }
        .map(Duration::from_secs),
        Some(Err(())) => return Err(format!("inner response {id}: \"headers\" is not an object")),
    };
    if let Some(page) = f.page {
        return Ok(InnerResponse {
            id,
            status,
            retry_after,
            body: Body::Page(page),
        });
    }
    let body = match f.body {
        None => "null",
        Some((Kind::Object | Kind::Null, text)) => text,
        // Graph base64-encodes bodies that are not JSON; a calendarView never has one.
        Some((kind, _)) => {
            return Err(format!(
                "inner response {id}: expected a JSON body, found {}",
                kind.type_name()
            ))
        }
    };
    // The body was checked as JSON with the rest of the batch; what is left are its contents.
    let body = if (200..300).contains(&status) {
        Body::Page(parse_page(body))
    } else {
        Body::Other(json::parse(body)?)
    };
    Ok(InnerResponse {
        id,
        status,
        retry_after,
        body,
    })
}

/// The value of the first `Retry-After` header of the headers object here (`Ok(None)` when
/// there is none or the headers are null); `Err` for headers that are no object.
fn retry_after_header<'a>(p: &mut Parser<'a>) -> Result<Result<Option<Item<'a>>, ()>, JsonError> {
    match p.kind()? {
        Kind::Object => {}
        Kind::Null => {
            p.skip()?;
            return Ok(Ok(None));
        }
        _ => {
            p.skip()?;
            return Ok(Err(()));
        }
    }
    let mut found = None;
    p.object(|p, name| {
        if found.is_none() && name.eq_ignore_ascii_case("Retry-After") {
            found = Some(p.item()?);
        } else {
            p.skip()?;
        }
        Ok::<_, JsonError>(())
    })?;
    Ok(Ok(found))
}

/// One page of a calendarView.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub appointments: Vec<Appointment>,
    /// The absolute URL of the next page.
    pub next_link: Option<String>,
}

/// Reads a calendarView page body: `{"value":[event…], "@odata.nextLink": …}`, one event at a
/// time. Events with a show-as we do not act on (`unknown`, or a value newer than this
/// program) are dropped.
pub fn parse_page(text: &str) -> Result<Page, String> {
    let mut p = Parser::new(text);
    let page = read_page(&mut p)?;
    p.finish()?;
    page
}

/// Reads the page body here in one pass. The outer `Err` is malformed JSON, which spoils the
/// whole text; the inner one a page that is JSON but not a page, which spoils only this
/// mailbox's answer (the reader goes on checking the rest, so that a batch reads on).
fn read_page(p: &mut Parser<'_>) -> Result<Result<Page, String>, JsonError> {
    let mut appointments = None;
    let mut next_link = None;
    // The first thing wrong with the page's contents.
    let mut wrong = None;
    if p.kind()? == Kind::Object {
        p.object(|p, name| {
            match name {
                "value" if p.kind()? != Kind::Array => {
                    p.skip()?;
                    wrong.get_or_insert_with(|| "\"value\" is not an array".to_string());
                }
                "value" => {
                    let mut list = Vec::new();
                    p.array(|p, i| {
                        match read_event(p)? {
                            Ok(Some(a)) => list.push(a),
                            Ok(None) => {}
                            Err(m) => {
                                wrong.get_or_insert_with(|| format!("event {i}: {m}"));
                            }
                        }
                        Ok::<_, JsonError>(())
                    })?;
                    appointments = Some(list);
                }
                "@odata.nextLink" => next_link = Some(p.item()?),
                _ => p.skip()?,
            }
            Ok::<_, JsonError>(())
        })?;
    } else {
        p.skip()?;
    }
    if let Some(wrong) = wrong {
        return Ok(Err(wrong));
    }
    let Some(appointments) = appointments else {
        return Ok(Err("no \"value\" member".to_string()));
    };
    let next_link = match next_link {
        None | Some(Item::Null) => None,
        Some(Item::String(s)) => Some(s.into_owned()),
        Some(other) => {
            return Ok(Err(format!(
                "\"@odata.nextLink\" is {}, not a string",
                other.type_name()
            )))
        }
    };
    Ok(Ok(Page {
        appointments,
        next_link,
    }))
}

/// The members of an event this program reads.
const EVENT_KEYS: [&str; 6] = [
    "showAs",
    "sensitivity",
    "isAllDay",
    "subject",
    "start",
    "end",
];

/// What an event says: the scalar members of `EVENT_KEYS` and its start and end.
#[derive(Default)]
struct EventFields<'a> {
    items: [Option<Item<'a>>; 4],
    /// `dateTime` and `timeZone`, or the kind of a value that is no object.
    start: Option<Result<[Option<Item<'a>>; 2], Kind>>,
    end: Option<Result<[Option<Item<'a>>; 2], Kind>>,
}

/// Reads the event here (the outer `Err` is malformed JSON); `Ok(Ok(None))` for one we ignore.
fn read_event(p: &mut Parser<'_>) -> Result<Result<Option<Appointment>, String>, JsonError> {
    let kind = p.kind()?;
    if kind != Kind::Object {
        p.skip()?;
        return Ok(Err(format!(
            "expected an object, found {}",
            kind.type_name()
        )));
    }
    let mut f = EventFields::default();
    p.object(|p, name| {
        match EVENT_KEYS.iter().position(|k| *k == name) {
            Some(4) => f.start = Some(p.fields(["dateTime", "timeZone"])?),
            Some(5) => f.end = Some(p.fields(["dateTime", "timeZone"])?),
            Some(i) => f.items[i] = Some(p.item()?),
            None => p.skip()?,
        }
        Ok::<_, JsonError>(())
    })?;
    Ok(appointment(&f))
}

/// The appointment an event's members describe; `Ok(None)` for one we ignore.
fn appointment(f: &EventFields<'_>) -> Result<Option<Appointment>, String> {
    let [show_as, sensitivity, all_day, subject] = &f.items;
    let show_as = match text(show_as, "showAs")? {
        Some("free") => ShowAs::Free,
        Some("tentative") => ShowAs::Tentative,
        Some("busy") => ShowAs::Busy,
        Some("oof") => ShowAs::Oof,
        Some("workingElsewhere") => ShowAs::WorkingElsewhere,
        _ => return Ok(None),
    };
    let private = matches!(
        text(sensitivity, "sensitivity")?,
        Some("private" | "confidential")
    );
    let all_day = match all_day {
        None | Some(Item::Null) => false,
        Some(Item::Bool(b)) => *b,
        Some(other) => return Err(format!("\"isAllDay\" is {}", other.type_name())),
    };
    Ok(Some(Appointment {
        start: date_time(&f.start, "start")?,
        end: date_time(&f.end, "end")?,
        show_as,
        subject: text(subject, "subject")?.map(str::to_string),
        private,
        all_day,
    }))
}

/// An optional string member: missing and null give `None`, another kind an error.
fn text<'i>(item: &'i Option<Item<'_>>, key: &str) -> Result<Option<&'i str>, String> {
    match item {
        None | Some(Item::Null) => Ok(None),
        Some(Item::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("\"{key}\" is {}, not a string", other.type_name())),
    }
}

/// A `dateTimeTimeZone`: `{"dateTime":"2026-12-01T09:00:00.0000000","timeZone":"UTC"}`. We
/// asked for UTC; an explicit offset in the text is honoured, but a zone-less time in another
/// zone cannot be read without a zone database and is refused rather than misread.
fn date_time(
    dt: &Option<Result<[Option<Item<'_>>; 2], Kind>>,
    key: &str,
) -> Result<Timestamp, String> {
    let dt = dt.as_ref().ok_or_else(|| format!("no \"{key}\""))?;
    let (text, zone) = match dt {
        Ok([Some(Item::String(text)), zone]) => (text, zone),
        _ => return Err(format!("\"{key}\" has no \"dateTime\" string")),
    };
    let zone = match zone {
        None | Some(Item::Null) => "UTC",
        Some(Item::String(z)) => z,
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
        let got = parse_page(text);
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
        let page = parse_page(CALENDAR_VIEW_PAGED).unwrap();
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
                let body = match &r.body {
                    Body::Page(Ok(page)) => format!("{} appointment(s)", page.appointments.len()),
                    Body::Page(Err(e)) => format!("unreadable page: {e}"),
                    Body::Other(v) => format!(
                        "{} {:?}",
                        v.type_name(),
                        parse_error(v).map(|(code, _)| code)
                    ),
                };
                format!(
                    "{} {} {:?} {body}",
                    r.id,
                    r.status,
                    r.retry_after.map(|d| d.as_secs()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "2 200 None 1 appointment(s)",
                "1 404 None an object Some(\"ErrorInvalidUser\")",
                "3 429 Some(10) an object Some(\"ApplicationThrottled\")",
                "4 403 None an object Some(\"ErrorAccessDenied\")",
                "5 204 None unreadable page: no \"value\" member",
            ]
        );
        let Body::Other(error) = &responses[1].body else {
            panic!("a 404 has an error body");
        };
        assert_eq!(
            parse_error(error),
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

    /// Each inner response's body is read by its status, wherever the members stand.
    #[test]
    fn inner_bodies_are_read_by_their_status() {
        let page = r#"{"value":[{"showAs":"busy","start":{"dateTime":"2026-12-01T09:00:00"},"end":{"dateTime":"2026-12-01T10:00:00"}}],"@odata.nextLink":"https://next"}"#;
        let cases = [
            (
                format!(r#"{{"body":{page},"status":200,"id":"1"}}"#),
                "1 200 None page 1 next",
            ),
            (
                format!(r#"{{"id":"1","headers":null,"status":201,"body":{page}}}"#),
                "1 201 None page 1 next",
            ),
            (
                r#"{"id":"1","status":200,"body":{"value":[1]}}"#.to_string(),
                "1 200 None unreadable: event 0: expected an object, found a number",
            ),
            (
                r#"{"id":"1","status":200,"body":{"value":[],"@odata.nextLink":null,"x":{"value":1}}}"#.to_string(),
                "1 200 None page 0 last",
            ),
            (
                r#"{"headers":{"retry-after":" 7 ","RETRY-AFTER":"9"},"id":"1","status":503}"#.to_string(),
                "1 503 Some(7) other null",
            ),
            (
                r#"{"id":"1","status":429,"headers":{"Retry-After":[5]},"body":{"error":{"code":"TooMany"}}}"#.to_string(),
                "1 429 None other an object",
            ),
            (
                r#"{"id":"1","status":404,"body":{"error":{"code":"E","message":"gone"}}}"#.to_string(),
                "1 404 None other an object",
            ),
            (
                r#"[]"#.to_string(),
                "an inner response without a string \"id\"",
            ),
            (
                r#"{"id":"1","status":200,"body":{"value":[],"value":[]}}"#.to_string(),
                "a JSON object names the same member twice",
            ),
            (
                r#"{"id":"1","id":"2","status":200}"#.to_string(),
                "a JSON object names the same member twice",
            ),
            (
                r#"{"id":"1","status":200,"body":{"value":[{"x":"\q"}]}}"#.to_string(),
                "invalid escape in JSON string",
            ),
        ];
        for (inner, want) in cases {
            let text = format!(r#"{{"responses":[{inner}],"@odata.context":"x"}}"#);
            let got = match parse_batch(&text) {
                Ok(list) => list
                    .iter()
                    .map(|r| {
                        let body = match &r.body {
                            Body::Page(Ok(p)) => format!(
                                "page {} {}",
                                p.appointments.len(),
                                if p.next_link.is_some() {
                                    "next"
                                } else {
                                    "last"
                                }
                            ),
                            Body::Page(Err(e)) => format!("unreadable: {e}"),
                            Body::Other(v) => format!("other {}", v.type_name()),
                        };
                        format!(
                            "{} {} {:?} {body}",
                            r.id,
                            r.status,
                            r.retry_after.map(|d| d.as_secs())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => e,
            };
            assert!(got.contains(want), "{inner}: {got} lacks {want}");
        }
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
                    assert!(parse_page(prefix).is_err());
                }
            }
        }
        let deep = format!(r#"{{"value":{}}}"#, "[".repeat(100_000));
        assert!(parse_page(&deep).is_err());
        let deep_batch = format!(r#"{{"responses":[{{"id":"1","status":200,"body":{deep}}}]}}"#);
        assert!(parse_batch(&deep_batch)
            .unwrap_err()
            .contains("nests deeper"));
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
                let _ = parse_page(&format!(r#"{{"value":[{}]}}"#, e.to_json()));
            }
        }
    }
}
