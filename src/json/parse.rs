//! The JSON parser: bounded depth, never a panic, names checked for repeats in linear time,
//! and a stop that can end a long parse.

use super::{JsonError, Value, MAX_DEPTH};

/// Parses a complete JSON text (one value, surrounded by optional whitespace).
pub fn parse(text: &str) -> Result<Value, JsonError> {
    parse_inner(text, None)
}

/// Like `parse`, but gives up with `JsonError::Stopped` as soon as `stopped` says so (it is
/// asked every 64 KiB), so that a large response cannot hold up the daemon's exit.
pub fn parse_until_stopped(text: &str, stopped: &dyn Fn() -> bool) -> Result<Value, JsonError> {
    parse_inner(text, Some(stopped))
}

fn parse_inner<'a>(
    text: &'a str,
    stopped: Option<&'a dyn Fn() -> bool>,
) -> Result<Value, JsonError> {
    let mut p = Parser {
        b: text.as_bytes(),
        text,
        pos: 0,
        stopped,
        next_check: STOP_CHECK,
    };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos < p.b.len() {
        return Err(JsonError::TrailingCharacters { at: p.pos });
    }
    Ok(v)
}

pub(super) struct Parser<'a> {
    pub(super) b: &'a [u8],
    pub(super) text: &'a str,
    pub(super) pos: usize,
    /// Asked every `STOP_CHECK` bytes whether to give up (the daemon is stopping).
    pub(super) stopped: Option<&'a dyn Fn() -> bool>,
    pub(super) next_check: usize,
}

/// How many bytes are parsed between two looks at `Parser::stopped`: a few microseconds of work,
/// so that a stop is seen at once even in a response of many megabytes.
pub(super) const STOP_CHECK: usize = 64 * 1024;

impl Parser<'_> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub(super) fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(super) fn expect_byte(&mut self, c: u8, expected: &'static str) -> Result<(), JsonError> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(JsonError::Unexpected {
                at: self.pos,
                expected,
            }),
            None => Err(JsonError::UnexpectedEnd),
        }
    }

    pub(super) fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if self.pos >= self.next_check {
            self.next_check = self.pos.saturating_add(STOP_CHECK);
            if self.stopped.is_some_and(|stopped| stopped()) {
                return Err(JsonError::Stopped);
            }
        }
        match self.peek() {
            None => Err(JsonError::UnexpectedEnd),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(JsonError::Unexpected {
                at: self.pos,
                expected: "a value",
            }),
        }
    }

    pub(super) fn literal(&mut self, word: &'static str, v: Value) -> Result<Value, JsonError> {
        let end = self.pos + word.len();
        match self.b.get(self.pos..end) {
            Some(s) if s == word.as_bytes() => {
                self.pos = end;
                Ok(v)
            }
            // A prefix of the word at the very end is a truncation, not a typo.
            None if word.as_bytes().starts_with(&self.b[self.pos..]) => {
                Err(JsonError::UnexpectedEnd)
            }
            _ => Err(JsonError::Unexpected {
                at: self.pos,
                expected: "a value",
            }),
        }
    }

    pub(super) fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        let bad = |at| JsonError::BadNumber { at };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            None => return Err(JsonError::UnexpectedEnd),
            Some(_) => return Err(bad(start)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.end_or(bad(start)));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.end_or(bad(start)));
            }
            self.digits();
        }
        // `01` or `1x`: a number must not run straight into more digits or letters.
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.')
        {
            return Err(bad(start));
        }
        Ok(Value::Number(self.text[start..self.pos].to_string()))
    }

    pub(super) fn end_or(&self, e: JsonError) -> JsonError {
        if self.pos >= self.b.len() {
            JsonError::UnexpectedEnd
        } else {
            e
        }
    }

    pub(super) fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    pub(super) fn hex4(&mut self) -> Result<u32, JsonError> {
        let at = self.pos;
        let part = self.b.get(at..at + 4).ok_or(JsonError::UnexpectedEnd)?;
        let mut v = 0u32;
        for &c in part {
            let d = (c as char)
                .to_digit(16)
                .ok_or(JsonError::BadEscape { at: at - 2 })?;
            v = v * 16 + d;
        }
        self.pos += 4;
        Ok(v)
    }

    /// A member name: a string, which must start here.
    pub(super) fn member_name(&mut self) -> Result<String, JsonError> {
        match self.peek() {
            Some(b'"') => self.string(),
            None => Err(JsonError::UnexpectedEnd),
            Some(_) => Err(JsonError::Unexpected {
                at: self.pos,
                expected: "a member name in quotes",
            }),
        }
    }

    pub(super) fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // the opening quote
                       // Fast path: most strings have no escapes and are copied in one allocation.
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == b'"' {
                self.pos += 1;
                return Ok(self.text[start..self.pos - 1].to_string());
            }
            if c == b'\\' || c < 0x20 {
                break;
            }
            self.pos += 1;
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let run_start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The run stops only at ASCII bytes, so both ends are character boundaries.
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => return Err(JsonError::UnexpectedEnd),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let at = self.pos;
                    self.pos += 1;
                    let c = self.peek().ok_or(JsonError::UnexpectedEnd)?;
                    self.pos += 1;
                    let ch = match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape(at)?,
                        _ => return Err(JsonError::BadEscape { at }),
                    };
                    out.push(ch);
                }
                Some(_) => return Err(JsonError::ControlCharacter { at: self.pos }),
            }
        }
    }

    /// After `\u`: one code unit, or a surrogate pair written as two escapes.
    pub(super) fn unicode_escape(&mut self, at: usize) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            match self.b.get(self.pos..self.pos + 2) {
                Some(b"\\u") => {}
                Some(_) => return Err(JsonError::BadEscape { at }),
                None => return Err(self.end_or(JsonError::BadEscape { at })),
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(JsonError::BadEscape { at });
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or(JsonError::BadEscape { at })
    }

    pub(super) fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep { at: self.pos });
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(JsonError::UnexpectedEnd),
                Some(_) => {
                    return Err(JsonError::Unexpected {
                        at: self.pos,
                        expected: "',' or ']'",
                    })
                }
            }
        }
    }

    pub(super) fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep { at: self.pos });
        }
        let start = self.pos;
        self.pos += 1;
        // Objects of the APIs we read mostly have a handful of members; starting at 8 saves
        // the first regrowths.
        let mut members = Vec::with_capacity(8);
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => {}
                None => return Err(JsonError::UnexpectedEnd),
                Some(_) => {
                    return Err(JsonError::Unexpected {
                        at: self.pos,
                        expected: "a member name in quotes",
                    })
                }
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect_byte(b':', "':'")?;
            self.skip_ws();
            let v = self.value(depth)?;
            members.push((key, v));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    // Parsers disagree on duplicate names (we would read the first, STARFACE's
                    // Jackson applies the last), so an object with one is refused rather than
                    // misread. The check runs once the object is complete, in linear time.
                    if let Some(i) = first_repeat(members.iter().map(|(k, _)| k.as_str())) {
                        return Err(JsonError::DuplicateKey {
                            at: self.member_name_at(start, i),
                        });
                    }
                    return Ok(Value::Object(members));
                }
                None => return Err(JsonError::UnexpectedEnd),
                Some(_) => {
                    return Err(JsonError::Unexpected {
                        at: self.pos,
                        expected: "',' or '}'",
                    })
                }
            }
        }
    }

    /// The byte offset of the name of member `index` of the object that starts at `start` and
    /// was already parsed without error, found by walking it again; only an error needs it, so
    /// the parse itself keeps no positions.
    pub(super) fn member_name_at(&self, start: usize, index: usize) -> usize {
        let mut p = Parser {
            b: self.b,
            text: self.text,
            pos: start + 1,
            stopped: None,
            next_check: usize::MAX,
        };
        for _ in 0..index {
            p.skip_ws();
            // The object parsed before, so neither can fail; an error would only shift the
            // position in the message.
            let _ = p.string();
            p.skip_ws();
            p.pos += 1; // ':'
            p.skip_ws();
            let _ = p.value(0);
            p.skip_ws();
            p.pos += 1; // ','
        }
        p.skip_ws();
        p.pos
    }
}

/// The index of the first item that equals an earlier one. Small lists are compared pairwise
/// (no allocation); longer ones go through a hash set, so the work stays linear in the number of
/// items however many there are (std's hasher is keyed per process, so colliding names cannot
/// be prepared in advance).
pub(crate) fn first_repeat<K, I>(items: I) -> Option<usize>
where
    K: std::hash::Hash + Eq,
    I: ExactSizeIterator<Item = K> + Clone,
{
    const PAIRWISE: usize = 8;
    if items.len() <= PAIRWISE {
        for (i, item) in items.clone().enumerate() {
            if items.clone().take(i).any(|earlier| earlier == item) {
                return Some(i);
            }
        }
        return None;
    }
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items
        .enumerate()
        .find_map(|(i, item)| (!seen.insert(item)).then_some(i))
}
