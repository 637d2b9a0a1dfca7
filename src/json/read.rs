//! Reading a JSON text value by value: the caller walks the arrays and objects it cares about,
//! takes scalars as they come (strings borrowed from the text when they have no escapes) and
//! skips the rest, which is still checked but never built. A list of thousands of users thus
//! costs no tree and no copy of anything the caller drops; only the text and what the caller
//! keeps exist.

use std::borrow::Cow;

use super::parse::{Parser, STOP_CHECK};
use super::{JsonError, Value};

/// The kind of the value that starts at the reader's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    /// The JSON type's name, for messages like "expected a string, found a number".
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// A value as `Parser::item` gives it: scalars in full, arrays and objects only as their kind
/// (they were checked and skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Null,
    Bool(bool),
    /// The number's literal text, checked against the JSON grammar.
    Number(&'a str),
    String(Cow<'a, str>),
    Array,
    Object,
}

impl Item<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            Item::Null => Kind::Null,
            Item::Bool(_) => Kind::Bool,
            Item::Number(_) => Kind::Number,
            Item::String(_) => Kind::String,
            Item::Array => Kind::Array,
            Item::Object => Kind::Object,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.kind().type_name()
    }
}

impl<'a> Parser<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Parser<'a> {
        Parser {
            b: text.as_bytes(),
            text,
            pos: 0,
            stopped: None,
            next_check: STOP_CHECK,
            names: Vec::new(),
            depth: 0,
        }
    }

    /// A reader that gives up with `JsonError::Stopped` as soon as `stopped` says so (it is
    /// asked every 64 KiB).
    pub fn until_stopped(text: &'a str, stopped: &'a dyn Fn() -> bool) -> Parser<'a> {
        Parser {
            stopped: Some(stopped),
            ..Parser::new(text)
        }
    }

    /// The byte offset of the reader, for the caller's own messages.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The kind of the value that must start here (after white space); reads nothing of it.
    pub fn kind(&mut self) -> Result<Kind, JsonError> {
        Ok(match self.start_value()? {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            b'-' | b'0'..=b'9' => Kind::Number,
            _ => {
                return Err(JsonError::Unexpected {
                    at: self.pos,
                    expected: "a value",
                })
            }
        })
    }

    /// Reads the value here: a scalar in full, an array or object checked and skipped.
    pub fn item(&mut self) -> Result<Item<'a>, JsonError> {
        Ok(match self.kind()? {
            Kind::Object => {
                self.skip()?;
                Item::Object
            }
            Kind::Array => {
                self.skip()?;
                Item::Array
            }
            Kind::String => Item::String(self.string()?),
            Kind::Number => Item::Number(self.number()?),
            Kind::Null => {
                self.literal("null")?;
                Item::Null
            }
            Kind::Bool => {
                let t = self.peek() == Some(b't');
                self.literal(if t { "true" } else { "false" })?;
                Item::Bool(t)
            }
        })
    }

    /// Reads the value here as a tree.
    pub fn read_value(&mut self) -> Result<Value, JsonError> {
        self.tree(self.depth)
    }

    /// Checks the value here as `read_value` would and moves past it, building nothing.
    pub fn skip(&mut self) -> Result<(), JsonError> {
        self.skip_at(self.depth)
    }

    /// The text from `start` (an earlier `position`, taken after `kind`) to the reader's
    /// position: the value just read as it came, for a caller that keeps it so.
    pub fn since(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// Reads the object that must start here, handing each member's name to `each`, which must
    /// read (or skip) the value. Names repeated in the object are an error once it is complete.
    /// Another kind of value here is an error; callers that word their own check `kind` first.
    pub fn object<E: From<JsonError>>(
        &mut self,
        mut each: impl FnMut(&mut Self, &str) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.start_value()? != b'{' {
            return Err(JsonError::Unexpected {
                at: self.pos,
                expected: "'{'",
            }
            .into());
        }
        self.depth += 1;
        let read = self.members(self.depth, &mut |p, name| each(p, &name));
        self.depth -= 1;
        read
    }

    /// Reads the array that must start here, handing each element's index to `each`, which
    /// must read (or skip) the element.
    pub fn array<E: From<JsonError>>(
        &mut self,
        mut each: impl FnMut(&mut Self, usize) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.start_value()? != b'[' {
            return Err(JsonError::Unexpected {
                at: self.pos,
                expected: "'['",
            }
            .into());
        }
        self.depth += 1;
        let read = self.elements(self.depth, &mut each);
        self.depth -= 1;
        read
    }

    /// The members named in `keys` of the object here, as items (scalars in full, arrays and
    /// objects checked and skipped); the other members are checked and skipped. `Err` holds
    /// the kind of a value that is no object (it was checked and skipped too).
    pub fn fields<const N: usize>(
        &mut self,
        keys: [&str; N],
    ) -> Result<Result<[Option<Item<'a>>; N], Kind>, JsonError> {
        let mut got = [const { None }; N];
        Ok(self.fields_into(&keys, &mut got)?.map(|()| got))
    }

    /// `fields` for any number of keys: one copy of the code for all callers.
    fn fields_into(
        &mut self,
        keys: &[&str],
        got: &mut [Option<Item<'a>>],
    ) -> Result<Result<(), Kind>, JsonError> {
        let kind = self.kind()?;
        if kind != Kind::Object {
            self.skip()?;
            return Ok(Err(kind));
        }
        self.object(|p, name| {
            match keys.iter().position(|k| *k == name) {
                Some(i) => got[i] = Some(p.item()?),
                None => p.skip()?,
            }
            Ok::<_, JsonError>(())
        })?;
        Ok(Ok(()))
    }

    /// Only white space may follow the value.
    pub fn finish(mut self) -> Result<(), JsonError> {
        self.skip_ws();
        if self.pos < self.b.len() {
            return Err(JsonError::TrailingCharacters { at: self.pos });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, MAX_DEPTH};
    use super::*;

    /// Walks `text` with the streaming methods and describes what they saw in one line:
    /// objects as `{name=… name=…}`, arrays as `[… …]`, strings as `b"…"` when borrowed from
    /// the text and `o"…"` when copied, other scalars as written; or the error.
    fn walk(text: &str) -> String {
        fn one(p: &mut Parser<'_>, out: &mut String) -> Result<(), JsonError> {
            match p.kind()? {
                Kind::Object => {
                    out.push('{');
                    p.object(|p, name| {
                        out.push_str(name);
                        out.push('=');
                        one(p, out)?;
                        out.push(' ');
                        Ok::<_, JsonError>(())
                    })?;
                    out.push('}');
                }
                Kind::Array => {
                    out.push('[');
                    p.array(|p, _| {
                        one(p, out)?;
                        out.push(' ');
                        Ok::<_, JsonError>(())
                    })?;
                    out.push(']');
                }
                _ => match p.item()? {
                    Item::String(Cow::Borrowed(s)) => out.push_str(&format!("b{s:?}")),
                    Item::String(Cow::Owned(s)) => out.push_str(&format!("o{s:?}")),
                    Item::Number(n) => out.push_str(n),
                    Item::Bool(b) => out.push_str(&b.to_string()),
                    other => out.push_str(other.type_name()),
                },
            }
            Ok(())
        }
        let mut p = Parser::new(text);
        let mut out = String::new();
        match one(&mut p, &mut out).and_then(|()| p.finish()) {
            Ok(()) => out,
            Err(e) => format!("error: {e}"),
        }
    }

    fn check(text: &str, expect: &str) {
        assert_eq!(walk(text), expect, "input {text:?}");
        // The tree parser accepts exactly what the streaming methods accept.
        assert_eq!(
            parse(text).is_ok(),
            !expect.starts_with("error"),
            "tree and stream disagree on {text:?}"
        );
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let cases = [
            (r#""""#, r#"b"""#),
            (r#""plain äö 😀""#, r#"b"plain äö 😀""#),
            (r#""a\"b""#, r#"o"a\"b""#),
            (r#""\\\/\b\f\n\r\t""#, r#"o"\\/\u{8}\u{c}\n\r\t""#),
            (r#""x\u00e4y""#, r#"o"xäy""#),
            (r#""\ud83d\ude00""#, r#"o"😀""#),
            (r#""\uD83D\uDE00 tail""#, r#"o"😀 tail""#),
            (
                r#""\ud800""#,
                "error: invalid escape in JSON string at byte 1",
            ),
            (
                r#""\ud800\u0041""#,
                "error: invalid escape in JSON string at byte 1",
            ),
            (
                r#""\udc00""#,
                "error: invalid escape in JSON string at byte 1",
            ),
            (
                r#""ok\q""#,
                "error: invalid escape in JSON string at byte 3",
            ),
            (
                r#""\u12g4""#,
                "error: invalid escape in JSON string at byte 1",
            ),
            (
                "\"a\u{1}\"",
                "error: unescaped control character in JSON string at byte 2",
            ),
            (
                "\"\\n\u{1f}\"",
                "error: unescaped control character in JSON string at byte 3",
            ),
            (r#""\u00"#, "error: JSON text ends in the middle of a value"),
            (r#""\"#, "error: JSON text ends in the middle of a value"),
        ];
        for (text, expect) in cases {
            check(text, expect);
        }
    }

    /// Strings are scanned eight bytes at a time: every stop (the closing quote, an escape, a
    /// control character, the end) is found at every offset, also past multi-byte characters.
    #[test]
    fn string_stops_at_every_offset() {
        for prefix in ["", "ä", "😀x"] {
            for n in 0..20 {
                let head = format!("{prefix}{}", "a".repeat(n));
                check(&format!("\"{head}\""), &format!("b{head:?}"));
                check(
                    &format!("\"{head}\\n{head}\""),
                    &format!("o{:?}", format!("{head}\n{head}")),
                );
                let at = 1 + head.len();
                check(
                    &format!("\"{head}\u{7}zzzzzzzz\""),
                    &format!("error: unescaped control character in JSON string at byte {at}"),
                );
                check(
                    &format!("\"{head}"),
                    "error: JSON text ends in the middle of a value",
                );
            }
        }
    }

    #[test]
    fn structure_and_scalars() {
        let cases = [
            (
                r#" {"a" : [1, -2.5e3, true, false, null], "b": {}} "#,
                r#"{a=[1 -2.5e3 true false null ] b={} }"#,
            ),
            ("[]", "[]"),
            (r#"{"\u0061":1}"#, "{a=1 }"),
            (
                r#"{"a":1,"\u0061":2}"#,
                "error: a JSON object names the same member twice (at byte 7)",
            ),
            (
                r#"[{"x":{"a":1,"a":2}}]"#,
                "error: a JSON object names the same member twice (at byte 13)",
            ),
            ("[1,]", "error: invalid JSON at byte 3: expected a value"),
            (
                "[1 2]",
                "error: invalid JSON at byte 3: expected ',' or ']'",
            ),
            (
                r#"{"a":1 "b":2}"#,
                "error: invalid JSON at byte 7: expected ',' or '}'",
            ),
            (
                "{1:2}",
                "error: invalid JSON at byte 1: expected a member name in quotes",
            ),
            ("01", "error: invalid JSON number at byte 0"),
            ("tru", "error: JSON text ends in the middle of a value"),
            ("nul1", "error: invalid JSON at byte 0: expected a value"),
            (
                "[1] 2",
                "error: unexpected text after the JSON value at byte 4",
            ),
        ];
        for (text, expect) in cases {
            check(text, expect);
        }
    }

    /// `item` skips arrays and objects, still checking them in full.
    #[test]
    fn skipped_values_are_checked() {
        let item = |text: &str| {
            let mut p = Parser::new(text);
            match p.item().and_then(|i| p.finish().map(|()| i)) {
                Ok(i) => i.type_name().to_string(),
                Err(e) => format!("error: {e}"),
            }
        };
        let cases = [
            (r#"{"a":[1,{"b":"\u00e4"}],"c":null}"#, "an object"),
            (r#"[[[]],{}]"#, "an array"),
            (
                r#"{"a":{"b":1,"b":2}}"#,
                "error: a JSON object names the same member twice (at byte 12)",
            ),
            (
                r#"[1,{"b":"\x"}]"#,
                "error: invalid escape in JSON string at byte 9",
            ),
            (r#"[1,{"b":01}]"#, "error: invalid JSON number at byte 8"),
            (
                r#"[{"b":[}]"#,
                "error: invalid JSON at byte 7: expected a value",
            ),
            ("null", "null"),
            ("\"s\"", "a string"),
        ];
        for (text, expect) in cases {
            assert_eq!(item(text), expect, "{text}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(
            item(&deep),
            "error: JSON nests deeper than 64 levels at byte 64"
        );
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(item(&ok), "an array");
        // Far deeper than a stack could take if the cap were missing.
        assert!(item(&"[{\"a\":".repeat(100_000)).starts_with("error: JSON nests deeper"));
        // The cap counts the levels the caller entered as well as the skipped ones.
        let mut p = Parser::new(&ok);
        let inside = p.array(|p, _| p.skip());
        assert_eq!(inside, Ok(()));
        let mut p = Parser::new(&deep);
        assert_eq!(
            p.array(|p, _| p.skip()),
            Err(JsonError::TooDeep { at: MAX_DEPTH })
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let text =
            r#"{"a":[1,-2.5e3,true,false,null,"x\u00e4\ud83d\ude00\n"],"b":{"c":"Grüße"},"d":"e"}"#;
        assert!(!walk(text).starts_with("error"));
        for end in (0..text.len()).filter(|&e| text.is_char_boundary(e)) {
            let got = walk(&text[..end]);
            assert!(got.starts_with("error"), "prefix of {end} bytes: {got}");
            let mut p = Parser::new(&text[..end]);
            assert!(p.skip().and_then(|()| p.finish()).is_err(), "skip of {end}");
        }
    }

    #[test]
    fn since_gives_the_text_of_the_value_read() {
        let text = r#"[ {"a": [1, "x"]} , 2 ]"#;
        let mut p = Parser::new(text);
        let mut seen = Vec::new();
        p.array(|p, _| {
            p.kind()?;
            let start = p.position();
            p.skip()?;
            seen.push(p.since(start).to_string());
            Ok::<_, JsonError>(())
        })
        .unwrap();
        assert_eq!(seen, [r#"{"a": [1, "x"]}"#, "2"]);
    }

    #[test]
    fn a_stop_ends_a_streamed_read() {
        let text = format!("[{}0]", "\"item\",".repeat(100_000));
        let stop = || true;
        let mut p = Parser::until_stopped(&text, &stop);
        assert_eq!(p.array(|p, _| p.skip()), Err(JsonError::Stopped));
        let never = || false;
        let mut p = Parser::until_stopped(&text, &never);
        assert_eq!(p.array(|p, _| p.skip()), Ok(()));
    }
}
