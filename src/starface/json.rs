//! A small JSON value type that keeps every field, in order, exactly as the PBX sent it.
//!
//! STARFACE objects are read, changed in one field and written back whole. Typed structs would
//! drop fields this program does not know (a newer PBX may add some), and nanoserde's parser can
//! panic on malformed input. This parser is bounded (nesting depth), never panics, and numbers
//! keep their original text so that a value written back is byte-for-byte what was read.

use std::fmt;

/// Nesting deeper than this is refused; STARFACE objects are three levels deep at most.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number's text as sent (already checked to be a valid JSON number).
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in the order they were sent.
    Object(Vec<(String, Value)>),
}

/// Why a text is not the JSON we can use; `offset` is the byte position of the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    pub offset: usize,
    pub message: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for JsonError {}

impl Value {
    /// Parses one JSON document; whitespace around it is allowed, anything else after it is not.
    pub fn parse(text: &str) -> Result<Value, JsonError> {
        let mut p = Parser {
            bytes: text.as_bytes(),
            pos: 0,
        };
        p.skip_ws();
        let value = p.value(0)?;
        p.skip_ws();
        if p.pos != p.bytes.len() {
            return Err(p.error("unexpected text after the value"));
        }
        Ok(value)
    }

    /// Parses bytes that must be UTF-8.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Value, JsonError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Value::parse(text),
            Err(e) => Err(JsonError {
                offset: e.valid_up_to(),
                message: "the text is not UTF-8",
            }),
        }
    }

    /// The member `key` of an object (the first one if the PBX sent it twice).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Replaces the member `key` of an object in place (keeping its position), or appends it.
    /// Returns false when `self` is not an object.
    pub fn set(&mut self, key: &str, value: Value) -> bool {
        match self {
            Value::Object(members) => {
                match members.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = value,
                    None => members.push((key.to_string(), value)),
                }
                true
            }
            _ => false,
        }
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

    /// An integer number; fractions, exponents and out-of-range values give `None`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short name of the JSON type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// Compact JSON text; numbers are written as they were read.
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
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(n.to_string())
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            message,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, JsonError> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word.as_bytes()) {
            self.pos = end;
            Ok(value)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek() {
            None => Err(self.error("the text ends where a value should be")),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => self.array(depth),
            Some(b'{') => self.object(depth),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.error("the text ends inside an array")),
                Some(_) => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                None => return Err(self.error("the text ends inside an object")),
                Some(_) => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        // The slice holds ASCII only, so it is valid UTF-8.
        let text = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        Ok(Value::Number(text))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.error("expected four hex digits after \\u")),
            };
            n = n * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is a &str and we stopped at an ASCII byte (or the end), so this slice
            // ends on a character boundary.
            out.push_str(&String::from_utf8_lossy(&self.bytes[start..self.pos]));
            match self.peek() {
                None => return Err(self.error("the text ends inside a string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self.peek();
                    self.pos += 1;
                    match escaped {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => out.push(self.unicode_escape()?),
                        None => {
                            self.pos -= 1;
                            return Err(self.error("the text ends inside a string"));
                        }
                        Some(_) => {
                            self.pos -= 1;
                            return Err(self.error("unknown escape"));
                        }
                    }
                }
                Some(_) => return Err(self.error("control character inside a string")),
            }
        }
    }

    /// After `\u`: one code unit, or a surrogate pair written as two escapes.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.error("a lone surrogate in \\u escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("a lone surrogate in \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("a lone surrogate in \\u escape")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` and compares the re-serialised text (or the error) with `expect`.
    fn check(input: &str, expect: &str) {
        let got = match Value::parse(input) {
            Ok(v) => v.to_json(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "input: {input:?}");
    }

    #[test]
    fn values_round_trip() {
        let cases = [
            ("null", "null"),
            (" true ", "true"),
            ("false", "false"),
            ("0", "0"),
            ("-12", "-12"),
            ("1.50", "1.50"),
            ("1e+3", "1e+3"),
            ("-0.5E-2", "-0.5E-2"),
            (r#""a\"b\\c\/d""#, r#""a\"b\\c/d""#),
            (r#""\u00e4\ud83d\ude00 ä""#, "\"ä😀 ä\""),
            (r#""\b\f\n\r\t\u0001""#, r#""\b\f\n\r\t\u0001""#),
            ("[]", "[]"),
            ("{}", "{}"),
            (
                r#" { "z" : 1 , "a" : [ 1 , { "b" : null } ] , "m" : "x" } "#,
                r#"{"z":1,"a":[1,{"b":null}],"m":"x"}"#,
            ),
        ];
        for (input, expect) in cases {
            check(input, expect);
        }
    }

    #[test]
    fn malformed_texts_are_errors() {
        let cases = [
            (
                "",
                "error: invalid JSON at byte 0: the text ends where a value should be",
            ),
            ("nul", "error: invalid JSON at byte 0: unknown literal"),
            (
                "01",
                "error: invalid JSON at byte 1: unexpected text after the value",
            ),
            ("-", "error: invalid JSON at byte 1: expected a digit"),
            (
                "1.",
                "error: invalid JSON at byte 2: expected a digit after '.'",
            ),
            (
                "1e",
                "error: invalid JSON at byte 2: expected a digit in the exponent",
            ),
            (
                "[1,]",
                "error: invalid JSON at byte 3: unexpected character",
            ),
            (
                "[1 2]",
                "error: invalid JSON at byte 3: expected ',' or ']'",
            ),
            ("{\"a\" 1}", "error: invalid JSON at byte 5: expected ':'"),
            (
                "{a:1}",
                "error: invalid JSON at byte 1: expected a member name",
            ),
            (
                "{\"a\":1 \"b\"}",
                "error: invalid JSON at byte 7: expected ',' or '}'",
            ),
            (
                "\"a\nb\"",
                "error: invalid JSON at byte 2: control character inside a string",
            ),
            ("\"\\x\"", "error: invalid JSON at byte 2: unknown escape"),
            (
                "\"\\u12\"",
                "error: invalid JSON at byte 5: expected four hex digits after \\u",
            ),
            (
                "\"\\ud800\"",
                "error: invalid JSON at byte 7: a lone surrogate in \\u escape",
            ),
            (
                "\"\\udc00\"",
                "error: invalid JSON at byte 7: a lone surrogate in \\u escape",
            ),
            (
                "\"\\ud800\\u0041\"",
                "error: invalid JSON at byte 13: a lone surrogate in \\u escape",
            ),
            (
                "[1] x",
                "error: invalid JSON at byte 4: unexpected text after the value",
            ),
            ("'a'", "error: invalid JSON at byte 0: unexpected character"),
            (
                "\"abc",
                "error: invalid JSON at byte 4: the text ends inside a string",
            ),
            (
                "\"abc\\",
                "error: invalid JSON at byte 5: the text ends inside a string",
            ),
            (
                "[1",
                "error: invalid JSON at byte 2: the text ends inside an array",
            ),
            (
                "{\"a\":1",
                "error: invalid JSON at byte 6: the text ends inside an object",
            ),
        ];
        for (input, expect) in cases {
            check(input, expect);
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "[".repeat(100_000);
        let err = Value::parse(&deep).unwrap_err();
        assert_eq!(err.message, "nested too deeply");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(Value::parse(&ok).is_ok());
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let text = r#"{"id":"r1","enabled":true,"n":-1.5e3,"s":"ä\u00e4\"","a":[null,false,{}]}"#;
        assert!(Value::parse(text).is_ok());
        for cut in 0..text.len() {
            if text.is_char_boundary(cut) {
                assert!(Value::parse(&text[..cut]).is_err(), "prefix of {cut} bytes");
            }
        }
        // Overwrite each byte with each of a few hostile bytes; parse must return, never panic.
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            for b in [b'"', b'\\', b'{', b']', b'0', 0x00, 0xff, b'u'] {
                let mut corrupt = bytes.to_vec();
                corrupt[i] = b;
                let _ = Value::parse_bytes(&corrupt);
            }
        }
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let err = Value::parse_bytes(b"\"a\xff\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON at byte 2: the text is not UTF-8"
        );
    }

    #[test]
    fn set_replaces_in_place_and_appends() {
        let mut v = Value::parse(r#"{"a":1,"b":2}"#).unwrap();
        assert!(v.set("a", Value::Bool(false)));
        assert!(v.set("c", Value::from("x")));
        assert_eq!(v.to_json(), r#"{"a":false,"b":2,"c":"x"}"#);
        assert!(!Value::Null.set("a", Value::Null));
    }

    #[test]
    fn accessors() {
        let v =
            Value::parse(r#"{"i":42,"f":1.5,"big":99999999999999999999,"s":"x","b":true,"l":[1]}"#)
                .unwrap();
        assert_eq!(v.get("i").and_then(Value::as_i64), Some(42));
        assert_eq!(v.get("f").and_then(Value::as_i64), None);
        assert_eq!(v.get("big").and_then(Value::as_i64), None);
        assert_eq!(v.get("s").and_then(Value::as_str), Some("x"));
        assert_eq!(v.get("b").and_then(Value::as_bool), Some(true));
        assert_eq!(
            v.get("l").and_then(Value::as_array).map(<[Value]>::len),
            Some(1)
        );
        assert_eq!(v.get("missing"), None);
        assert_eq!(Value::Null.get("i"), None);
        assert_eq!(Value::from(7).type_name(), "a number");
    }
}
