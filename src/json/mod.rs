//! A small JSON value type: parsed from untrusted text with a depth cap, written back with the
//! keys in their original order and every unknown field kept.
//!
//! Written by hand instead of using nanoserde's `DeJson` on network data: that parser can panic
//! on some malformed inputs, and a panic in the daemon is never acceptable for a bad response.
//! Keeping objects as ordered key lists (not maps) lets a caller read an object, change one field
//! and write the whole object back unchanged otherwise, which the STARFACE REST API needs.
//! Numbers keep their literal text so that large ids survive a round trip exactly.

use std::fmt;

/// How deeply arrays and objects may nest. Real responses (Graph, STARFACE, OAuth) stay below 10;
/// the cap keeps hostile input from exhausting the stack.
pub const MAX_DEPTH: usize = 64;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number's literal text, checked against the JSON grammar.
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in document order; duplicate keys are kept as they came.
    Object(Vec<(String, Value)>),
}

/// Why a text is not acceptable JSON. Positions are byte offsets into the text. The messages
/// never quote the input, which may hold a secret (an access token, a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// The text ended inside a value.
    UnexpectedEnd,
    /// A character that cannot start or continue a value here.
    Unexpected { at: usize, expected: &'static str },
    /// A backslash escape that JSON does not know, or a `\u` escape that is not a valid
    /// character (a lone surrogate).
    BadEscape { at: usize },
    /// A raw control character inside a string.
    ControlCharacter { at: usize },
    /// A number that does not follow the JSON grammar (`01`, `1.`, `-`, `1e`).
    BadNumber { at: usize },
    /// Arrays and objects nest deeper than `MAX_DEPTH`.
    TooDeep { at: usize },
    /// Something follows the value.
    TrailingCharacters { at: usize },
    /// An object names the same member twice.
    DuplicateKey { at: usize },
    /// The parse was given up because the program is stopping.
    Stopped,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::UnexpectedEnd => f.write_str("JSON text ends in the middle of a value"),
            JsonError::Unexpected { at, expected } => {
                write!(f, "invalid JSON at byte {at}: expected {expected}")
            }
            JsonError::BadEscape { at } => write!(f, "invalid escape in JSON string at byte {at}"),
            JsonError::ControlCharacter { at } => {
                write!(f, "unescaped control character in JSON string at byte {at}")
            }
            JsonError::BadNumber { at } => write!(f, "invalid JSON number at byte {at}"),
            JsonError::TooDeep { at } => {
                write!(f, "JSON nests deeper than {MAX_DEPTH} levels at byte {at}")
            }
            JsonError::DuplicateKey { at } => {
                write!(
                    f,
                    "a JSON object names the same member twice (at byte {at})"
                )
            }
            JsonError::Stopped => {
                f.write_str("reading the answer was given up: the program is stopping")
            }
            JsonError::TrailingCharacters { at } => {
                write!(f, "unexpected text after the JSON value at byte {at}")
            }
        }
    }
}

impl std::error::Error for JsonError {}

/// The readers of the API objects word their errors as sentences; a JSON error becomes one.
impl From<JsonError> for String {
    fn from(e: JsonError) -> String {
        e.to_string()
    }
}

impl Value {
    /// Same as the free function `parse`, for callers that prefer `Value::parse`.
    pub fn parse(text: &str) -> Result<Value, JsonError> {
        parse(text)
    }

    /// A number value from an integer.
    pub fn from_i64(n: i64) -> Value {
        Value::Number(n.to_string())
    }

    /// An object's member (the first one of that name), or `None` for a missing member or a
    /// value that is not an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets an object's member: replaces the value in place (keeping the member's position) or
    /// appends a new member. Returns `false`, changing nothing, when `self` is not an object.
    pub fn set(&mut self, key: &str, value: Value) -> bool {
        let Value::Object(m) = self else {
            return false;
        };
        match m.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => m.push((key.to_string(), value)),
        }
        true
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// An integer that fits in `i64`; `None` for fractions, exponents and other types.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// A non-negative integer that fits in `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    /// The JSON type's name, for messages like "expected a string, found a number".
    pub fn type_name(&self) -> &'static str {
        self.kind().type_name()
    }

    /// The compact JSON text of this value.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => out.push_str(n),
            Value::String(s) => write_string(s, out),
            Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// Writes `s` as a JSON string literal (quotes included).
pub fn write_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Runs of characters that need no escape are copied whole: the state file is written after
    // every poll, and nearly all of its text is such runs. Every byte that needs an escape is
    // ASCII, so the runs end on character boundaries.
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            b if b < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[run..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => out.push_str(&format!("\\u{b:04x}")),
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(s, &mut out);
    out
}

mod parse;
mod read;
mod stream;

pub use parse::{parse, parse_until_stopped, Parser};
pub use read::{Item, Kind};
pub use stream::for_each_member_of;

#[cfg(test)]
mod tests {
    use super::parse::{first_repeat, STOP_CHECK};
    use super::*;

    /// Reads `text` with `Parser::each_in_array` as the STARFACE lists do, each element as a
    /// tree; compares what it saw (compact JSON, joined by spaces) or the error with `expect`.
    /// An element `"stop"` makes the callback fail.
    fn each_in_array(
        text: &str,
        mut each: impl FnMut(usize, Value) -> Result<(), String>,
    ) -> Result<(), String> {
        let not_array = |kind| format!("expected an array of things, got {kind}");
        let mut p = Parser::new(text);
        p.each_in_array(not_array, |p, i| each(i, p.read_value()?))?;
        p.finish()?;
        Ok(())
    }

    fn check_each(text: &str, expect: &str) {
        let mut seen = Vec::new();
        let got = match each_in_array(text, |i, v| {
            if v.as_str() == Some("stop") {
                return Err(format!("stopped at #{i}"));
            }
            seen.push(v.to_json());
            Ok(())
        }) {
            Ok(()) => seen.join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "input {text:?}");
    }

    #[test]
    fn array_element_by_element() {
        check_each("[]", "");
        check_each(" [ ] ", "");
        check_each(
            r#"[1, {"a":[true,null]}, "x"]"#,
            r#"1 {"a":[true,null]} "x""#,
        );
        check_each(
            r#"{"a":1}"#,
            "error: expected an array of things, got an object",
        );
        check_each("7", "error: expected an array of things, got a number");
        check_each("", "error: JSON text ends in the middle of a value");
        check_each("[1,", "error: JSON text ends in the middle of a value");
        check_each("[1", "error: JSON text ends in the middle of a value");
        check_each(
            "[1 2]",
            "error: invalid JSON at byte 3: expected ',' or ']'",
        );
        check_each(
            "[1] x",
            "error: unexpected text after the JSON value at byte 4",
        );
        check_each("[1,]", "error: invalid JSON at byte 3: expected a value");
        check_each(r#"[1, "stop", 3]"#, "error: stopped at #1");
        let deep = format!("[{}{}]", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(each_in_array(&deep, |_, _| Ok(())).is_err());
    }

    /// Parses `text`; on success compares the compact serialisation with `expect`, on failure
    /// the error's Display with `expect` prefixed by `error: `.
    fn check(text: &str, expect: &str) {
        let got = match parse(text) {
            Ok(v) => v.to_json(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "input {text:?}");
    }

    #[test]
    fn values() {
        check("null", "null");
        check(" true ", "true");
        check("false", "false");
        check("0", "0");
        check("-0", "-0");
        check("12345678901234567890123", "12345678901234567890123");
        check("-1.5e+10", "-1.5e+10");
        check("2E-3", "2E-3");
        check(r#""""#, r#""""#);
        check(r#""a\"b\\c\/d""#, r#""a\"b\\c/d""#);
        check(r#""\b\f\n\r\t""#, r#""\u0008\u000c\n\r\t""#);
        check(r#""\u00e4\u00C4""#, "\"äÄ\"");
        check(r#""\ud83d\ude00""#, "\"😀\"");
        check("\"Grüße 😀\"", "\"Grüße 😀\"");
        check("[]", "[]");
        check("[ 1 , [ 2 ] , {} ]", "[1,[2],{}]");
        check("{}", "{}");
        // Key order is kept (duplicate names are refused, see `errors`).
        check(r#"{"z":1,"a":2}"#, r#"{"z":1,"a":2}"#);
        check(
            "{\n\t\"a\" : [true, null],\r\n \"b\":{\"c\":\"d\"}\n}",
            r#"{"a":[true,null],"b":{"c":"d"}}"#,
        );
    }

    #[test]
    fn errors() {
        check("", "error: JSON text ends in the middle of a value");
        check("   ", "error: JSON text ends in the middle of a value");
        check("[1,", "error: JSON text ends in the middle of a value");
        check("tru", "error: JSON text ends in the middle of a value");
        check("\"abc", "error: JSON text ends in the middle of a value");
        check(r#""\u12"#, "error: JSON text ends in the middle of a value");
        check("1.", "error: JSON text ends in the middle of a value");
        check("trux", "error: invalid JSON at byte 0: expected a value");
        check("nul1", "error: invalid JSON at byte 0: expected a value");
        check(
            "[1 2]",
            "error: invalid JSON at byte 3: expected ',' or ']'",
        );
        check("[1,]", "error: invalid JSON at byte 3: expected a value");
        check(
            r#"{"doNotDisturb":true,"x":1,"doNotDisturb":false}"#,
            "error: a JSON object names the same member twice (at byte 27)",
        );
        check(r#"{"a" 1}"#, "error: invalid JSON at byte 5: expected ':'");
        check(
            r#"{"a":1,}"#,
            "error: invalid JSON at byte 7: expected a member name in quotes",
        );
        check(
            "{a:1}",
            "error: invalid JSON at byte 1: expected a member name in quotes",
        );
        check(
            r#"{"a":1 "b":2}"#,
            "error: invalid JSON at byte 7: expected ',' or '}'",
        );
        check("'a'", "error: invalid JSON at byte 0: expected a value");
        check("01", "error: invalid JSON number at byte 0");
        check("1.x", "error: invalid JSON number at byte 0");
        check("1e+", "error: JSON text ends in the middle of a value");
        check("1ex", "error: invalid JSON number at byte 0");
        check("-", "error: JSON text ends in the middle of a value");
        check("-a", "error: invalid JSON number at byte 0");
        check("+1", "error: invalid JSON at byte 0: expected a value");
        check("NaN", "error: invalid JSON at byte 0: expected a value");
        check(r#""\x""#, "error: invalid escape in JSON string at byte 1");
        check(
            r#""\u00g0""#,
            "error: invalid escape in JSON string at byte 1",
        );
        check(
            r#""\ud800""#,
            "error: invalid escape in JSON string at byte 1",
        );
        check(
            r#""\ud800\u0041""#,
            "error: invalid escape in JSON string at byte 1",
        );
        check(
            r#""\udc00""#,
            "error: invalid escape in JSON string at byte 1",
        );
        check(
            "\"a\nb\"",
            "error: unescaped control character in JSON string at byte 2",
        );
        check(
            "1 2",
            "error: unexpected text after the JSON value at byte 2",
        );
        check(
            "{} x",
            "error: unexpected text after the JSON value at byte 3",
        );
    }

    #[test]
    fn duplicate_names_in_long_objects() {
        // Past the pairwise limit the hash set decides; the position is still the repeat's name.
        let mut text = String::from("{");
        for i in 0..20 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        let at = text.len();
        text.push_str("\"k3\":{\"k3\":1}}");
        check(
            &text,
            &format!("error: a JSON object names the same member twice (at byte {at})"),
        );
        // The same name in different objects is no repeat.
        check(r#"{"a":{"a":{"a":1}}}"#, r#"{"a":{"a":{"a":1}}}"#);
        check(
            r#"{"a":1,"b":{"a":1,"a":2}}"#,
            "error: a JSON object names the same member twice (at byte 18)",
        );
        let many: String = (0..50_000).map(|i| format!("\"{i}\":0,")).collect();
        let text = format!("{{{}\"end\":0}}", many);
        assert_eq!(
            parse(&text)
                .ok()
                .and_then(|v| v.as_object().map(<[_]>::len)),
            Some(50_001)
        );
    }

    /// A name that counts how often it is compared, to show that the repeat check does work
    /// linear in the number of names (the comparison of each with all earlier ones took 27 s for
    /// 80,000 names).
    struct Counted<'c>(u32, &'c std::cell::Cell<usize>);

    impl std::hash::Hash for Counted<'_> {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            self.0.hash(h);
        }
    }

    impl PartialEq for Counted<'_> {
        fn eq(&self, other: &Self) -> bool {
            self.1.set(self.1.get() + 1);
            self.0 == other.0
        }
    }
    impl Eq for Counted<'_> {}

    #[test]
    fn repeat_check_compares_each_name_about_once() {
        for (n, repeat) in [
            (5, None),
            (5, Some(3)),
            (20_000, None),
            (20_000, Some(19_999)),
        ] {
            let compared = std::cell::Cell::new(0);
            let names: Vec<Counted> = (0..n)
                .map(|i| {
                    let id = if Some(i) == repeat { 0 } else { i };
                    Counted(id, &compared)
                })
                .collect();
            assert_eq!(
                first_repeat(names.iter()),
                repeat.map(|r| r as usize),
                "{n} names"
            );
            let limit = (n as usize).max(10) * 2;
            assert!(
                compared.get() <= limit,
                "{n} names: {} comparisons",
                compared.get()
            );
        }
    }

    #[test]
    fn a_stop_ends_a_long_parse() {
        // 120,000 names kept `once` busy for over 90 s before the names were checked in linear
        // time; a stop must end even a linear parse of many megabytes at once.
        let text = format!(
            "{{{}\"end\":0}}",
            (0..120_000)
                .map(|i| format!("\"k{i}\":0,"))
                .collect::<String>()
        );
        let asked = std::cell::Cell::new(0);
        let stop_at_third = || {
            asked.set(asked.get() + 1);
            asked.get() >= 3
        };
        assert_eq!(
            parse_until_stopped(&text, &stop_at_third),
            Err(JsonError::Stopped)
        );
        assert_eq!(asked.get(), 3);
        asked.set(0);
        let never = || {
            asked.set(asked.get() + 1);
            false
        };
        assert!(parse_until_stopped(&text, &never).is_ok());
        // Asked once per 64 KiB, so the check costs nothing measurable.
        assert_eq!(asked.get(), text.len() / STOP_CHECK);
        check_stopped_message();
    }

    fn check_stopped_message() {
        assert_eq!(
            JsonError::Stopped.to_string(),
            "reading the answer was given up: the program is stopping"
        );
    }

    #[test]
    fn depth_cap() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deep), Err(JsonError::TooDeep { at: MAX_DEPTH }));
        check(&deep, "error: JSON nests deeper than 64 levels at byte 64");
        // Far deeper than any stack could take if the cap were missing.
        let hostile = "[{\"a\":".repeat(100_000);
        assert!(matches!(parse(&hostile), Err(JsonError::TooDeep { .. })));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let text = r#"{"a":[1,-2.5e3,true,false,null,"x\u00e4\ud83d\ude00\n"],"b":{"c":"Grüße"}}"#;
        assert!(parse(text).is_ok());
        for end in 0..text.len() {
            if let Some(prefix) = text.get(..end) {
                assert!(parse(prefix).is_err(), "prefix {prefix:?} parsed");
            }
        }
    }

    #[test]
    fn huge_string() {
        let s = "x".repeat(1 << 20);
        let v = parse(&quote(&s)).unwrap();
        assert_eq!(v.as_str().map(str::len), Some(1 << 20));
    }

    #[test]
    fn accessors_and_set() {
        let mut v = parse(r#"{"id":"7","n":42,"big":1e3,"ok":true,"list":[1],"o":{}}"#).unwrap();
        assert_eq!(v.get("id").and_then(Value::as_str), Some("7"));
        assert_eq!(v.get("n").and_then(Value::as_i64), Some(42));
        assert_eq!(v.get("n").and_then(Value::as_u64), Some(42));
        assert_eq!(v.get("big").and_then(Value::as_i64), None);
        assert_eq!(v.get("big").and_then(Value::as_f64), Some(1000.0));
        assert_eq!(v.get("ok").and_then(Value::as_bool), Some(true));
        assert_eq!(
            v.get("list").and_then(Value::as_array).map(<[_]>::len),
            Some(1)
        );
        assert_eq!(
            v.get("o").and_then(Value::as_object).map(<[_]>::len),
            Some(0)
        );
        assert_eq!(v.get("id").map(Value::type_name), Some("a string"));
        assert!(v.get("missing").is_none());
        assert!(v.set("n", Value::Bool(false)));
        assert!(v.set("new", Value::from_i64(-3)));
        assert_eq!(
            v.to_json(),
            r#"{"id":"7","n":false,"big":1e3,"ok":true,"list":[1],"o":{},"new":-3}"#
        );
        let mut not_object = Value::Null;
        assert!(!not_object.set("a", Value::Null));
        assert!(Value::Null.get("a").is_none());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\\u{1}ä"), r#""a\"b\\\u0001ä""#);
        assert_eq!(quote("\tä\n\r😀\u{1f}"), r#""\tä\n\r😀\u001f""#);
        assert_eq!(quote("\""), r#""\"""#);
        // Whatever we write, we read back.
        for s in [
            "",
            "plain",
            "\u{0}\u{1f}\u{7f}",
            "😀\"\\/",
            "ä\"",
            "\"ä",
            "a\u{0}b",
        ] {
            assert_eq!(parse(&quote(s)).unwrap().as_str(), Some(s));
        }
    }

    /// `for_each_member_of(text, "users", …)`: the streamed names in order and the rest's
    /// names, or the error.
    fn streamed(text: &str) -> Result<(Vec<String>, bool, Vec<String>), String> {
        let mut seen = Vec::new();
        let (found, rest) = for_each_member_of(text, "users", |k, v| {
            seen.push(format!("{k}={}", v.to_json()));
            Ok(())
        })?;
        Ok((seen, found, rest.into_iter().map(|(k, _)| k).collect()))
    }

    #[test]
    fn members_one_at_a_time() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            streamed(r#" {"version":1, "users":{"1":{"a":[1]},"2":null}, "poll":{}} "#),
            Ok((
                names(&["1={\"a\":[1]}", "2=null"]),
                true,
                names(&["version", "poll"])
            ))
        );
        assert_eq!(streamed(r#"{"users":{}}"#), Ok((vec![], true, vec![])));
        // `users` that is not an object is returned like any other member.
        assert_eq!(
            streamed(r#"{"users":[]}"#),
            Ok((vec![], false, names(&["users"])))
        );
        assert_eq!(streamed("{}"), Ok((vec![], false, vec![])));
        for bad in [
            "",
            "[]",
            r#"{"users":{"1":1,"1":2}}"#,
            r#"{"users":{},"users":{}}"#,
            r#"{"v":1,"v":2}"#,
            r#"{"users":{"1":1}"#,
            r#"{"users":{"1":1}} x"#,
            r#"{"users":{1:1}}"#,
            r#"{"users":{"1" 1}}"#,
            r#"{"users":{"1":1;}}"#,
        ] {
            assert!(streamed(bad).is_err(), "{bad}");
        }
        // The caller's error stops the reading.
        let stop = for_each_member_of(r#"{"users":{"1":1}}"#, "users", |_, _| Err("no".into()));
        assert_eq!(stop, Err("no".to_string()));
    }
}
