//! A reader for the subset of TOML 1.0 that the configuration file uses: comments, `[table]`
//! headers, and `key = value` lines whose values are strings (basic and literal), integers and
//! booleans. Everything else TOML has (nested and array tables, dotted keys, arrays, inline
//! tables, floats, dates, multi-line strings) is rejected with a message that says so, because
//! our file never needs it and an admin who writes it has made a mistake.
//!
//! We do not use nanoserde's TOML parser: it turns every number into an f64 (so
//! 9007199254740993 reads as ...992), decodes `\t` as `t` and `\u00e4` as `u00e4`, accepts
//! invalid escapes and duplicate keys silently, and rejects literal strings with a message that
//! names neither the problem nor the key.
//!
//! Every value keeps the line it was read from, so that validation can point the admin at it.

use std::collections::BTreeMap;
use std::fmt;

/// A scalar value. Integers stay integers; there is no float on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    String(String),
    Integer(i64),
    Boolean(bool),
}

impl Value {
    /// What this value is, in words for an error message ("a string").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "a whole number",
            Value::Boolean(_) => "true or false",
        }
    }
}

impl fmt::Display for Value {
    /// The value written back as TOML, so messages can quote what the admin wrote.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => f.write_str(&quote(s)),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// `text` as a TOML basic string, escaping what must be escaped.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_control(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One `key = value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    /// 1-based line number.
    pub line: usize,
}

/// A `[name]` table with its entries in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    /// 1-based line number of the header.
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// A parsed file: the keys before the first header, then the tables in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    pub root: Vec<Entry>,
    pub tables: Vec<Table>,
}

impl Document {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// A syntax error with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TomlError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

/// Parses `text` (UTF-8; a leading byte-order mark and CRLF line ends are accepted).
pub fn parse(text: &str) -> Result<Document, TomlError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut doc = Document::default();
    // Where each key of the current table (or the root) was first set, for duplicate messages.
    let mut seen_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_tables: BTreeMap<String, usize> = BTreeMap::new();
    // The root's keys, looked up for every header (a scan of the root per header was quadratic).
    let mut root_keys: BTreeMap<String, usize> = BTreeMap::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let mut cur = Cursor {
            s: line,
            pos: 0,
            line: line_no,
        };
        cur.skip_ws();
        match cur.peek() {
            None => continue,
            Some('#') => {
                cur.end_of_line()?;
                continue;
            }
            Some('[') => {
                let name = cur.header()?;
                if let Some(first) = seen_tables.get(&name) {
                    return Err(cur.error(format!(
                        "the table [{name}] appears twice (first on line {first}); \
                         put all of its keys under one header"
                    )));
                }
                // Before the first header, the keys seen so far are the root's.
                let root = if doc.tables.is_empty() {
                    &seen_keys
                } else {
                    &root_keys
                };
                if let Some(line) = root.get(&name) {
                    return Err(cur.error(format!(
                        "[{name}] clashes with the key `{name}` set on line {line} before any table"
                    )));
                }
                seen_tables.insert(name.clone(), line_no);
                if doc.tables.is_empty() {
                    root_keys = std::mem::take(&mut seen_keys);
                } else {
                    seen_keys.clear();
                }
                doc.tables.push(Table {
                    name,
                    line: line_no,
                    entries: Vec::new(),
                });
            }
            Some(_) => {
                let entry = cur.key_value()?;
                if let Some(first) = seen_keys.get(&entry.key) {
                    let table = match doc.tables.last() {
                        Some(t) => format!(" in [{}]", t.name),
                        None => String::new(),
                    };
                    return Err(cur.error(format!(
                        "the key `{}` is set twice{table} (first on line {first}); keep one",
                        entry.key
                    )));
                }
                seen_keys.insert(entry.key.clone(), line_no);
                match doc.tables.last_mut() {
                    Some(table) => table.entries.push(entry),
                    None => doc.root.push(entry),
                }
            }
        }
    }
    Ok(doc)
}

/// TOML forbids control characters other than tab in strings and comments.
fn is_control(c: char) -> bool {
    (c < ' ' && c != '\t') || c == '\u{7F}'
}

/// A character for a message: in backquotes, or as U+hhhh when it is a control character.
fn shown(c: char) -> String {
    if is_control(c) {
        format!("U+{:04X}", c as u32)
    } else {
        format!("`{c}`")
    }
}

/// An invalid escape for a message: `\q`, or a backslash followed by U+hhhh.
fn shown_escape(c: char) -> String {
    if is_control(c) {
        format!("`\\` followed by U+{:04X}", c as u32)
    } else {
        format!("`\\{c}`")
    }
}

fn is_bare_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A position within one line.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    fn error(&self, msg: impl Into<String>) -> TomlError {
        TomlError {
            line: self.line,
            msg: msg.into(),
        }
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    /// After the content of a line: optional whitespace, an optional comment, the end.
    fn end_of_line(&mut self) -> Result<(), TomlError> {
        self.skip_ws();
        match self.bump() {
            None => Ok(()),
            Some('#') => match self.rest().chars().find(|&c| is_control(c)) {
                Some(c) => Err(self.error(format!(
                    "a comment contains the control character U+{:04X}",
                    c as u32
                ))),
                None => Ok(()),
            },
            Some(c) => Err(self.error(format!(
                "unexpected {} after the end of the line's content; start a comment with `#`",
                shown(c)
            ))),
        }
    }

    /// `[name]`, with the cursor on the `[`.
    fn header(&mut self) -> Result<String, TomlError> {
        self.bump();
        if self.peek() == Some('[') {
            return Err(self.error(
                "arrays of tables ([[...]]) are not used in this file; use a plain [table]",
            ));
        }
        self.skip_ws();
        let name = self.simple_key("table name")?;
        self.skip_ws();
        if self.peek() == Some('.') {
            return Err(self.error(format!(
                "nested tables ([{name}.…]) are not used in this file; use a plain [table]"
            )));
        }
        if !self.eat(']') {
            return Err(self.error(format!("expected `]` to close the table header [{name}")));
        }
        self.end_of_line()?;
        Ok(name)
    }

    /// A bare or quoted key.
    fn simple_key(&mut self, what: &str) -> Result<String, TomlError> {
        match self.peek() {
            Some('"') => self.basic_string(),
            Some('\'') => self.literal_string(),
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(is_bare_key_char) {
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(match self.peek() {
                        Some(c) => self.error(format!(
                            "expected a {what}, found {}; bare keys use A-Z a-z 0-9 _ -",
                            shown(c)
                        )),
                        None => self.error(format!("expected a {what}")),
                    });
                }
                Ok(self.s.get(start..self.pos).unwrap_or("").to_string())
            }
        }
    }

    /// `key = value` and the rest of the line.
    fn key_value(&mut self) -> Result<Entry, TomlError> {
        let key = self.simple_key("key")?;
        self.skip_ws();
        if self.peek() == Some('.') {
            return Err(self.error(format!(
                "dotted keys (`{key}.…`) are not used in this file; put the key under its [table]"
            )));
        }
        if !self.eat('=') {
            return Err(self.error(format!("expected `=` after the key `{key}`")));
        }
        self.skip_ws();
        let value = self.value(&key)?;
        self.end_of_line()?;
        Ok(Entry {
            key,
            value,
            line: self.line,
        })
    }

    fn value(&mut self, key: &str) -> Result<Value, TomlError> {
        match self.peek() {
            None | Some('#') => Err(self.error(format!("the key `{key}` has no value"))),
            Some('"') => {
                if self.rest().starts_with("\"\"\"") {
                    return Err(self.error(format!(
                        "`{key}`: multi-line strings (\"\"\") are not supported; \
                         write the value on one line"
                    )));
                }
                self.basic_string().map(Value::String)
            }
            Some('\'') => {
                if self.rest().starts_with("'''") {
                    return Err(self.error(format!(
                        "`{key}`: multi-line strings (''') are not supported; \
                         write the value on one line"
                    )));
                }
                self.literal_string().map(Value::String)
            }
            Some('[') => Err(self.error(format!(
                "`{key}` is an array; arrays are not used in this file"
            ))),
            Some('{') => Err(self.error(format!(
                "`{key}` is an inline table; inline tables are not used in this file"
            ))),
            Some(_) => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, ' ' | '\t' | '#') && !is_control(c))
                {
                    self.bump();
                }
                let token = self.s.get(start..self.pos).unwrap_or("");
                scalar(token, key).map_err(|msg| {
                    // An unquoted password is still a password: never echo it.
                    let secret = key.contains("password") || key.contains("secret");
                    self.error(if secret && !token.is_empty() {
                        msg.replace(token, "***")
                    } else {
                        msg
                    })
                })
            }
        }
    }

    /// `"..."` with TOML escapes, the cursor on the opening quote.
    fn basic_string(&mut self) -> Result<String, TomlError> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(self.error("a string is not closed with `\"` on its line"));
                }
                Some('"') => return Ok(out),
                Some('\\') => {
                    let c = match self.bump() {
                        Some('b') => '\u{8}',
                        Some('t') => '\t',
                        Some('n') => '\n',
                        Some('f') => '\u{C}',
                        Some('r') => '\r',
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('u') => self.unicode_escape(4)?,
                        Some('U') => self.unicode_escape(8)?,
                        Some(c) => {
                            return Err(self.error(format!(
                                "invalid escape {} in a string; write `\\\\` for a \
                                 backslash, or use a literal string in single quotes",
                                shown_escape(c)
                            )))
                        }
                        None => return Err(self.error("a string ends in a lone `\\`")),
                    };
                    out.push(c);
                }
                Some(c) if is_control(c) => {
                    return Err(self.error(format!(
                        "a string contains the control character U+{:04X}; write it as an escape",
                        c as u32
                    )))
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// The hex digits of `\uhhhh` (`digits` = 4) or `\Uhhhhhhhh` (8).
    fn unicode_escape(&mut self, digits: usize) -> Result<char, TomlError> {
        let letter = if digits == 4 { 'u' } else { 'U' };
        let hex = self.rest().get(..digits).unwrap_or("");
        if hex.len() != digits || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(self.error(format!(
                "`\\{letter}` must be followed by exactly {digits} hex digits"
            )));
        }
        self.pos += digits;
        u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.error(format!("`\\{letter}{hex}` is not a Unicode scalar value")))
    }

    /// `'...'` taken as written, the cursor on the opening quote.
    fn literal_string(&mut self) -> Result<String, TomlError> {
        self.bump();
        let start = self.pos;
        loop {
            match self.bump() {
                None => return Err(self.error("a string is not closed with `'` on its line")),
                Some('\'') => return Ok(self.s.get(start..self.pos - 1).unwrap_or("").to_string()),
                Some(c) if is_control(c) => {
                    return Err(self.error(format!(
                        "a string contains the control character U+{:04X}",
                        c as u32
                    )))
                }
                Some(_) => {}
            }
        }
    }
}

/// A bare value: a boolean or an integer; anything else gets a message saying what it looks like.
fn scalar(token: &str, key: &str) -> Result<Value, String> {
    match token {
        "true" => return Ok(Value::Boolean(true)),
        "false" => return Ok(Value::Boolean(false)),
        _ => {}
    }
    let unsigned = token.strip_prefix(['+', '-']).unwrap_or(token);
    if matches!(unsigned, "inf" | "nan") {
        return Err(format!(
            "`{key}` = {token}: floating-point numbers are not used in this file"
        ));
    }
    let bytes = token.as_bytes();
    let looks_like_date = (bytes.len() >= 10 && bytes.get(4) == Some(&b'-'))
        || (bytes.len() >= 5 && bytes.get(2) == Some(&b':'));
    if looks_like_date && bytes.first().is_some_and(u8::is_ascii_digit) {
        return Err(format!(
            "`{key}` = {token}: dates and times are not used in this file"
        ));
    }
    if !token.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-') {
        return Err(format!(
            "`{key}` = {token}: cannot read this value; strings need quotes (\"...\")"
        ));
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = token.strip_prefix(prefix) {
            return integer(digits, radix, false, token, key);
        }
    }
    if !unsigned.starts_with("0x") && unsigned.contains(['.', 'e', 'E']) {
        return Err(format!(
            "`{key}` = {token}: floating-point numbers are not used in this file; \
             write a whole number"
        ));
    }
    let negative = token.starts_with('-');
    if unsigned.len() > 1 && unsigned.starts_with('0') {
        return Err(format!(
            "`{key}` = {token}: leading zeros are not allowed in TOML integers"
        ));
    }
    integer(unsigned, 10, negative, token, key)
}

/// Digits in `radix` with single underscores between digits, as an i64.
fn integer(
    digits: &str,
    radix: u32,
    negative: bool,
    token: &str,
    key: &str,
) -> Result<Value, String> {
    let bad = || format!("`{key}` = {token} is not a valid integer");
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return Err(bad());
    }
    // Accumulate as a negative number so that i64::MIN fits.
    let mut acc: i64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix).ok_or_else(bad)?;
        acc = acc
            .checked_mul(i64::from(radix))
            .and_then(|a| a.checked_sub(i64::from(d)))
            .ok_or_else(|| format!("`{key}` = {token} is too large"))?;
    }
    if negative {
        Ok(Value::Integer(acc))
    } else {
        acc.checked_neg()
            .map(Value::Integer)
            .ok_or_else(|| format!("`{key}` = {token} is too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` and renders the document (or the error) one line per item, so each case
    /// states the whole outcome.
    fn check(text: &str, expected: &str) {
        let actual = match parse(text) {
            Ok(doc) => {
                let mut out = Vec::new();
                for e in &doc.root {
                    out.push(format!("{}: {} = {:?}", e.line, e.key, e.value));
                }
                for t in &doc.tables {
                    out.push(format!("{}: [{}]", t.line, t.name));
                    for e in &t.entries {
                        out.push(format!("{}: {} = {:?}", e.line, e.key, e.value));
                    }
                }
                out.join("\n")
            }
            Err(e) => format!("error {e}"),
        };
        assert_eq!(actual, expected, "input: {text:?}");
    }

    #[test]
    fn structure() {
        check("", "");
        check("# only a comment\n\n   \n", "");
        check(
            "a = 1\n[t]\nb = true\n[u]\n",
            "1: a = Integer(1)\n2: [t]\n3: b = Boolean(true)\n4: [u]",
        );
        check("\u{FEFF}[t]\r\nk = 'v'\r\n", "1: [t]\n2: k = String(\"v\")");
        check("[ t ]  # comment\n", "1: [t]");
        check("[\"quoted name\"]\n", "1: [quoted name]");
        check(
            "[t]\n  k\t=\t\"v\"   # comment with \"quotes\" and # hashes\n",
            "1: [t]\n2: k = String(\"v\")",
        );
        check(
            "[t]\n\"quoted key\" = 1\n'lit key' = 2\n",
            "1: [t]\n2: quoted key = Integer(1)\n3: lit key = Integer(2)",
        );
        check(
            "[t]\nbare-key_1 = 1\n",
            "1: [t]\n2: bare-key_1 = Integer(1)",
        );
        check("[t]\nk = false\n", "1: [t]\n2: k = Boolean(false)");
    }

    #[test]
    fn strings() {
        check(
            r#"k = "a # not a comment""#,
            r#"1: k = String("a # not a comment")"#,
        );
        check(
            r#"k = 'a # not a comment' # a comment"#,
            r#"1: k = String("a # not a comment")"#,
        );
        check(
            r#"k = "\b\t\n\f\r\"\\""#,
            r#"1: k = String("\u{8}\t\n\u{c}\r\"\\")"#,
        );
        check(r#"k = "\u00e4\U0001F600""#, "1: k = String(\"ä😀\")");
        check(
            r#"k = 'C:\path\no escapes'"#,
            r#"1: k = String("C:\\path\\no escapes")"#,
        );
        check(r#"k = """#, r#"1: k = String("")"#);
        check("k = \"tab\tinside\"", r#"1: k = String("tab\tinside")"#);
        check("k = \"ünïcödé\"", "1: k = String(\"ünïcödé\")");
        check(r#"k = "\q""#, "error line 1: invalid escape `\\q` in a string; write `\\\\` for a backslash, or use a literal string in single quotes");
        check(r#"k = "\ä""#, "error line 1: invalid escape `\\ä` in a string; write `\\\\` for a backslash, or use a literal string in single quotes");
        check(r#"k = "\e""#, "error line 1: invalid escape `\\e` in a string; write `\\\\` for a backslash, or use a literal string in single quotes");
        check(r#"k = "\x41""#, "error line 1: invalid escape `\\x` in a string; write `\\\\` for a backslash, or use a literal string in single quotes");
        check(
            r#"k = "\u00e""#,
            "error line 1: `\\u` must be followed by exactly 4 hex digits",
        );
        check(
            r#"k = "\U0000D800""#,
            "error line 1: `\\U0000D800` is not a Unicode scalar value",
        );
        check(
            r#"k = "\uD800""#,
            "error line 1: `\\uD800` is not a Unicode scalar value",
        );
        check(
            r#"k = "\U00110000""#,
            "error line 1: `\\U00110000` is not a Unicode scalar value",
        );
        check(
            "k = \"open",
            "error line 1: a string is not closed with `\"` on its line",
        );
        check(
            "k = 'open",
            "error line 1: a string is not closed with `'` on its line",
        );
        check(
            "k = \"ends \\",
            "error line 1: a string ends in a lone `\\`",
        );
        check(
            "k = \"a\u{1}b\"",
            "error line 1: a string contains the control character U+0001; write it as an escape",
        );
        check(
            "k = 'a\u{7f}b'",
            "error line 1: a string contains the control character U+007F",
        );
        check(
            "k = \"a\rb\"",
            "error line 1: a string contains the control character U+000D; write it as an escape",
        );
        check("k = \"\"\"multi\"\"\"", "error line 1: `k`: multi-line strings (\"\"\") are not supported; write the value on one line");
        check("k = '''multi'''", "error line 1: `k`: multi-line strings (''') are not supported; write the value on one line");
        check("k = \"a\" \"b\"", "error line 1: unexpected `\"` after the end of the line's content; start a comment with `#`");
    }

    #[test]
    fn integers() {
        check("k = 0", "1: k = Integer(0)");
        check("k = +17", "1: k = Integer(17)");
        check("k = -17", "1: k = Integer(-17)");
        check("k = -0", "1: k = Integer(0)");
        check("k = 1_000_000", "1: k = Integer(1000000)");
        check("k = 9007199254740993", "1: k = Integer(9007199254740993)");
        check(
            "k = 9223372036854775807",
            "1: k = Integer(9223372036854775807)",
        );
        check(
            "k = -9223372036854775808",
            "1: k = Integer(-9223372036854775808)",
        );
        check("k = 0xff_FF", "1: k = Integer(65535)");
        check("k = 0o17", "1: k = Integer(15)");
        check("k = 0b101", "1: k = Integer(5)");
        check(
            "k = 9223372036854775808",
            "error line 1: `k` = 9223372036854775808 is too large",
        );
        check(
            "k = -9223372036854775809",
            "error line 1: `k` = -9223372036854775809 is too large",
        );
        check(
            "k = 1__0",
            "error line 1: `k` = 1__0 is not a valid integer",
        );
        check(
            "k = _1",
            "error line 1: `k` = _1: cannot read this value; strings need quotes (\"...\")",
        );
        check("k = 1_", "error line 1: `k` = 1_ is not a valid integer");
        check(
            "k = 012",
            "error line 1: `k` = 012: leading zeros are not allowed in TOML integers",
        );
        check(
            "k = 12abc",
            "error line 1: `k` = 12abc is not a valid integer",
        );
        check("k = 0x", "error line 1: `k` = 0x is not a valid integer");
        check("k = 0xG", "error line 1: `k` = 0xG is not a valid integer");
        check("k = 1.5", "error line 1: `k` = 1.5: floating-point numbers are not used in this file; write a whole number");
        check("k = 1e3", "error line 1: `k` = 1e3: floating-point numbers are not used in this file; write a whole number");
        check(
            "k = -inf",
            "error line 1: `k` = -inf: floating-point numbers are not used in this file",
        );
        check(
            "k = nan",
            "error line 1: `k` = nan: floating-point numbers are not used in this file",
        );
        check(
            "k = 1979-05-27",
            "error line 1: `k` = 1979-05-27: dates and times are not used in this file",
        );
        check(
            "k = 07:32:00",
            "error line 1: `k` = 07:32:00: dates and times are not used in this file",
        );
        check("k = 30 # seconds", "1: k = Integer(30)");
    }

    #[test]
    fn rejected_forms() {
        check(
            "[a.b]",
            "error line 1: nested tables ([a.…]) are not used in this file; use a plain [table]",
        );
        check("[[x]]", "error line 1: arrays of tables ([[...]]) are not used in this file; use a plain [table]");
        check(
            "[x",
            "error line 1: expected `]` to close the table header [x",
        );
        check(
            "[]",
            "error line 1: expected a table name, found `]`; bare keys use A-Z a-z 0-9 _ -",
        );
        check("[x] y", "error line 1: unexpected `y` after the end of the line's content; start a comment with `#`");
        check("a.b = 1", "error line 1: dotted keys (`a.…`) are not used in this file; put the key under its [table]");
        check(
            "k = [1, 2]",
            "error line 1: `k` is an array; arrays are not used in this file",
        );
        check(
            "k = { a = 1 }",
            "error line 1: `k` is an inline table; inline tables are not used in this file",
        );
        check("k = ", "error line 1: the key `k` has no value");
        check("k = # nothing", "error line 1: the key `k` has no value");
        check("k 1", "error line 1: expected `=` after the key `k`");
        check("k", "error line 1: expected `=` after the key `k`");
        check(
            "= 1",
            "error line 1: expected a key, found `=`; bare keys use A-Z a-z 0-9 _ -",
        );
        check(
            "k = bare",
            "error line 1: `k` = bare: cannot read this value; strings need quotes (\"...\")",
        );
        check(
            "k = True",
            "error line 1: `k` = True: cannot read this value; strings need quotes (\"...\")",
        );
        check(
            "k = truex",
            "error line 1: `k` = truex: cannot read this value; strings need quotes (\"...\")",
        );
        check(
            "# bad \u{1} comment",
            "error line 1: a comment contains the control character U+0001",
        );
        check(
            "k = 1 # bad \u{7f}",
            "error line 1: a comment contains the control character U+007F",
        );
        check(
            "\n\n[t]\nk = 1\nk = 2\n",
            "error line 5: the key `k` is set twice in [t] (first on line 4); keep one",
        );
        check(
            "k = 1\n\"k\" = 2\n",
            "error line 2: the key `k` is set twice (first on line 1); keep one",
        );
        check(
            "[t]\nk = 1\n[u]\nk = 2\n",
            "1: [t]\n2: k = Integer(1)\n3: [u]\n4: k = Integer(2)",
        );
        check("[t]\n[u]\n[t]\n", "error line 3: the table [t] appears twice (first on line 1); put all of its keys under one header");
        check(
            "t = 1\n[t]\n",
            "error line 2: [t] clashes with the key `t` set on line 1 before any table",
        );
        check("k = 1\rj = 2", "error line 1: unexpected U+000D after the end of the line's content; start a comment with `#`");
    }

    #[test]
    fn unquoted_secrets_are_not_echoed() {
        for text in [
            "password = hunter2\n",
            "client_secret = 0815geheim\n",
            "password = 1.5e3x\n",
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                !err.contains("hunter2") && !err.contains("0815") && !err.contains("1.5e3"),
                "{err}"
            );
        }
        // Other keys still show what was written, which helps.
        assert!(parse("level = info\n")
            .unwrap_err()
            .to_string()
            .contains("info"));
    }

    #[test]
    fn display_of_values_round_trips_through_the_reader() {
        for value in [
            Value::String("plain".into()),
            Value::String("q\"b\\t\tn\nr\rc\u{1}d\u{7f}ä".into()),
            Value::Integer(-42),
            Value::Boolean(true),
        ] {
            let doc = parse(&format!("k = {value}")).expect("own output parses");
            assert_eq!(doc.root.first().map(|e| &e.value), Some(&value));
        }
    }
}
