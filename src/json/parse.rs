//! The JSON parser: bounded depth, never a panic, names checked for repeats in linear time,
//! and a stop that can end a long parse. One grammar serves both the tree (`parse`) and the
//! streaming reads of `read.rs`, so that what one accepts the other accepts too.

use std::borrow::Cow;

use super::{JsonError, Value, MAX_DEPTH};

/// Parses a complete JSON text (one value, surrounded by optional whitespace).
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let mut p = Parser::new(text);
    let v = p.read_value()?;
    p.finish()?;
    Ok(v)
}

/// Like `parse`, but gives up with `JsonError::Stopped` as soon as `stopped` says so (it is
/// asked every 64 KiB), so that a large response cannot hold up the daemon's exit.
pub fn parse_until_stopped(text: &str, stopped: &dyn Fn() -> bool) -> Result<Value, JsonError> {
    let mut p = Parser::until_stopped(text, stopped);
    let v = p.read_value()?;
    p.finish()?;
    Ok(v)
}

/// A position in a JSON text, read either into trees or value by value (see `read.rs` for the
/// streaming methods). After an error it must not be used further.
pub struct Parser<'a> {
    pub(super) b: &'a [u8],
    pub(super) text: &'a str,
    pub(super) pos: usize,
    /// Asked every `STOP_CHECK` bytes whether to give up (the daemon is stopping).
    pub(super) stopped: Option<&'a dyn Fn() -> bool>,
    pub(super) next_check: usize,
    /// The names of the objects being read, innermost object last, each with the offset of its
    /// opening quote: an object's repeat check looks at its own tail of this list. One list for
    /// the whole text, so that reading an object allocates nothing for its names.
    pub(super) names: Vec<(Cow<'a, str>, usize)>,
    /// How many arrays and objects the streaming methods have entered.
    pub(super) depth: usize,
}

/// What `Parser::members` hands each member's name to. A trait object rather than a generic, so
/// that the member loop exists once per error type, not once per caller (the build optimises
/// for size).
pub(super) type MemberFn<'f, 'a, E> =
    dyn FnMut(&mut Parser<'a>, Cow<'a, str>) -> Result<(), E> + 'f;

/// How many bytes are parsed between two looks at `Parser::stopped`: a few microseconds of work,
/// so that a stop is seen at once even in a response of many megabytes.
pub(super) const STOP_CHECK: usize = 64 * 1024;

impl<'a> Parser<'a> {
    // The release build optimises for size, which leaves even these one-liners as calls; they
    // run once or more per byte, so they are inlined by hand.
    #[inline(always)]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Most values follow their separator without white space: that case costs one compare.
    #[inline(always)]
    pub(super) fn skip_ws(&mut self) {
        if matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.skip_ws_run();
        }
    }

    fn skip_ws_run(&mut self) {
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

    /// Skips white space to the value that must start here and returns its first byte; this is
    /// also where a stop is noticed.
    pub(super) fn start_value(&mut self) -> Result<u8, JsonError> {
        self.skip_ws();
        if self.pos >= self.next_check {
            self.next_check = self.pos.saturating_add(STOP_CHECK);
            if self.stopped.is_some_and(|stopped| stopped()) {
                return Err(JsonError::Stopped);
            }
        }
        self.peek().ok_or(JsonError::UnexpectedEnd)
    }

    fn not_a_value(&self) -> JsonError {
        JsonError::Unexpected {
            at: self.pos,
            expected: "a value",
        }
    }

    /// The value that starts here as a tree; `depth` counts the arrays and objects around it.
    pub(super) fn tree(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.start_value()? {
            b'{' => {
                // Objects of the APIs we read mostly have a handful of members; starting at 8
                // saves the first regrowths.
                let mut members = Vec::with_capacity(8);
                self.members(depth + 1, &mut |p, name| {
                    let v = p.tree(depth + 1)?;
                    members.push((name.into_owned(), v));
                    Ok::<_, JsonError>(())
                })?;
                Ok(Value::Object(members))
            }
            b'[' => {
                let mut items = Vec::new();
                self.elements(depth + 1, &mut |p, _| {
                    items.push(p.tree(depth + 1)?);
                    Ok::<_, JsonError>(())
                })?;
                Ok(Value::Array(items))
            }
            b'"' => Ok(Value::String(self.string()?.into_owned())),
            b't' => self.literal("true").map(|()| Value::Bool(true)),
            b'f' => self.literal("false").map(|()| Value::Bool(false)),
            b'n' => self.literal("null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => Ok(Value::Number(self.number()?.to_string())),
            _ => Err(self.not_a_value()),
        }
    }

    /// Checks the value that starts here as `tree` would, building nothing.
    pub(super) fn skip_at(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.start_value()? {
            b'{' => self.members(depth + 1, &mut |p, _| p.skip_at(depth + 1)),
            b'[' => self.elements(depth + 1, &mut |p, _| p.skip_at(depth + 1)),
            b'"' => self.skip_string(),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => Err(self.not_a_value()),
        }
    }

    pub(super) fn literal(&mut self, word: &'static str) -> Result<(), JsonError> {
        let end = self.pos + word.len();
        match self.b.get(self.pos..end) {
            Some(s) if s == word.as_bytes() => {
                self.pos = end;
                Ok(())
            }
            // A prefix of the word at the very end is a truncation, not a typo.
            None if word.as_bytes().starts_with(&self.b[self.pos..]) => {
                Err(JsonError::UnexpectedEnd)
            }
            _ => Err(self.not_a_value()),
        }
    }

    /// A number's text, checked against the JSON grammar.
    pub(super) fn number(&mut self) -> Result<&'a str, JsonError> {
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
        let text = self.text;
        Ok(&text[start..self.pos])
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

    /// Moves over characters that stand for themselves in a string: up to a quote, a
    /// backslash, a control character or the end. All three stops are ASCII, so the run ends on
    /// a character boundary.
    fn plain_run(&mut self) {
        // Eight bytes at a time while none of them is a stop (the usual bit tricks for "has a
        // byte equal to" and "has a byte below"; exact, so no stop is passed), then byte by byte.
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let mut i = self.pos;
        while let Some(chunk) = self.b.get(i..i + 8) {
            let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
                break;
            };
            let x = u64::from_le_bytes(chunk);
            let stops = has_zero(x ^ (ONES * u64::from(b'"')))
                | has_zero(x ^ (ONES * u64::from(b'\\')))
                | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
            if stops != 0 {
                break;
            }
            i += 8;
        }
        let rest = &self.b[i..];
        self.pos = i + rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            .unwrap_or(rest.len());
    }

    /// The string that starts here (at its opening quote). A string without escapes, which is
    /// nearly every string, is borrowed from the text; only one with escapes is copied.
    pub(super) fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.pos += 1;
        let start = self.pos;
        self.plain_run();
        let text = self.text;
        if self.peek() == Some(b'"') {
            self.pos += 1;
            return Ok(Cow::Borrowed(&text[start..self.pos - 1]));
        }
        let mut out = String::from(&text[start..self.pos]);
        self.string_rest(Some(&mut out))?;
        Ok(Cow::Owned(out))
    }

    /// Checks the string that starts here as `string` would, copying nothing.
    pub(super) fn skip_string(&mut self) -> Result<(), JsonError> {
        self.pos += 1;
        self.plain_run();
        self.string_rest(None)
    }

    /// The rest of a string from where its first plain run stopped to the closing quote: the
    /// escapes and the runs between them, appended to `out` when there is one.
    fn string_rest(&mut self, mut out: Option<&mut String>) -> Result<(), JsonError> {
        let text = self.text;
        loop {
            match self.peek() {
                None => return Err(JsonError::UnexpectedEnd),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let ch = self.escape()?;
                    if let Some(out) = out.as_deref_mut() {
                        out.push(ch);
                    }
                }
                Some(_) => return Err(JsonError::ControlCharacter { at: self.pos }),
            }
            let run_start = self.pos;
            self.plain_run();
            if let Some(out) = out.as_deref_mut() {
                out.push_str(&text[run_start..self.pos]);
            }
        }
    }

    /// The escape at the backslash here.
    fn escape(&mut self) -> Result<char, JsonError> {
        let at = self.pos;
        self.pos += 1;
        let c = self.peek().ok_or(JsonError::UnexpectedEnd)?;
        self.pos += 1;
        Ok(match c {
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
        })
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

    /// Reads the array that starts here (at `[`), handing the index of each element to `each`,
    /// which must read the element. `depth` counts this array.
    pub(super) fn elements<E: From<JsonError>>(
        &mut self,
        depth: usize,
        each: &mut dyn FnMut(&mut Self, usize) -> Result<(), E>,
    ) -> Result<(), E> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep { at: self.pos }.into());
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut i = 0;
        loop {
            each(self, i)?;
            i += 1;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                None => return Err(JsonError::UnexpectedEnd.into()),
                Some(_) => {
                    return Err(JsonError::Unexpected {
                        at: self.pos,
                        expected: "',' or ']'",
                    }
                    .into())
                }
            }
        }
    }

    /// Reads the object that starts here (at `{`), handing each member's name to `each`, which
    /// must read the value. `depth` counts this object. Parsers disagree on repeated names (we
    /// would read the first, STARFACE's Jackson applies the last), so an object with one is
    /// refused rather than misread; the check runs once the object is complete, in linear time.
    pub(super) fn members<E: From<JsonError>>(
        &mut self,
        depth: usize,
        each: &mut MemberFn<'_, 'a, E>,
    ) -> Result<(), E> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep { at: self.pos }.into());
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        let base = self.names.len();
        let read = self.member_list(base, each);
        self.names.truncate(base);
        read
    }

    fn member_list<E: From<JsonError>>(
        &mut self,
        base: usize,
        each: &mut MemberFn<'_, 'a, E>,
    ) -> Result<(), E> {
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => {}
                None => return Err(JsonError::UnexpectedEnd.into()),
                Some(_) => {
                    return Err(JsonError::Unexpected {
                        at: self.pos,
                        expected: "a member name in quotes",
                    }
                    .into())
                }
            }
            let at = self.pos;
            let name = self.string()?;
            self.skip_ws();
            self.expect_byte(b':', "':'")?;
            self.names.push((name.clone(), at));
            each(self, name)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    let names = &self.names[base..];
                    return match first_repeat(names.iter().map(|(k, _)| k.as_ref())) {
                        Some(i) => Err(JsonError::DuplicateKey { at: names[i].1 }.into()),
                        None => Ok(()),
                    };
                }
                None => return Err(JsonError::UnexpectedEnd.into()),
                Some(_) => {
                    return Err(JsonError::Unexpected {
                        at: self.pos,
                        expected: "',' or '}'",
                    }
                    .into())
                }
            }
        }
    }
}

/// The index of the first item that equals an earlier one. Small lists are compared pairwise
/// (no allocation: the objects of the APIs we read have up to a dozen members); longer ones go
/// through a hash set, so the work stays linear in the number of items however many there are
/// (std's hasher is keyed per process, so colliding names cannot be prepared in advance).
pub(crate) fn first_repeat<K, I>(items: I) -> Option<usize>
where
    K: std::hash::Hash + Eq,
    I: ExactSizeIterator<Item = K> + Clone,
{
    const PAIRWISE: usize = 16;
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
