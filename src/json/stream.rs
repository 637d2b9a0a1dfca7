//! Reading long JSON texts one member or element at a time, so that a list of thousands of
//! users never exists as one tree: only the text and the entry in hand do.

use std::collections::HashSet;

use super::parse::Parser;
use super::{JsonError, Value};

impl<'a> Parser<'a> {
    /// A parser over `text` that no stop can end (the streaming reads are of our own state
    /// file and of lists already bounded by the response cap).
    fn over(text: &'a str) -> Parser<'a> {
        Parser {
            b: text.as_bytes(),
            text,
            pos: 0,
            stopped: None,
            next_check: usize::MAX,
        }
    }

    /// Reads `{ "name": value, … }`, handing each name to `each`, which must read the value.
    fn members(
        &mut self,
        each: &mut dyn FnMut(&mut Self, String) -> Result<(), String>,
    ) -> Result<(), String> {
        let err = |e: JsonError| e.to_string();
        self.skip_ws();
        self.expect_byte(b'{', "'{'").map_err(err)?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            let name = self.member_name().map_err(err)?;
            self.skip_ws();
            self.expect_byte(b':', "':'").map_err(err)?;
            self.skip_ws();
            each(self, name)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                None => return Err(err(JsonError::UnexpectedEnd)),
                Some(_) => {
                    return Err(err(JsonError::Unexpected {
                        at: self.pos,
                        expected: "',' or '}'",
                    }))
                }
            }
        }
    }

    /// Only white space may follow the value.
    fn end(&mut self) -> Result<(), String> {
        self.skip_ws();
        if self.pos < self.b.len() {
            return Err(JsonError::TrailingCharacters { at: self.pos }.to_string());
        }
        Ok(())
    }
}

/// Reads a top-level object whose member `key` holds a large object: that object's members are
/// handed to `each` one at a time and dropped before the next is parsed (the state file of
/// thousands of users never exists as one tree); the other top-level members are returned.
/// Also returns whether `key` was there. A repeated name, at either level, is an error.
pub fn for_each_member_of(
    text: &str,
    key: &str,
    mut each: impl FnMut(&str, Value) -> Result<(), String>,
) -> Result<(bool, Vec<(String, Value)>), String> {
    let mut p = Parser::over(text);
    let mut rest = Vec::new();
    let mut found = false;
    let mut top_names = HashSet::new();
    p.members(&mut |p, name| {
        if !top_names.insert(name.clone()) {
            return Err(format!("the name '{name}' appears twice"));
        }
        if name == key && p.peek() == Some(b'{') {
            found = true;
            let mut names = HashSet::new();
            p.members(&mut |p, member| {
                let v = p.value(1).map_err(|e| e.to_string())?;
                if !names.insert(member.clone()) {
                    return Err(format!("the name '{member}' appears twice in '{key}'"));
                }
                each(&member, v)
            })
        } else {
            let v = p.value(0).map_err(|e| e.to_string())?;
            rest.push((name, v));
            Ok(())
        }
    })?;
    p.end()?;
    Ok((found, rest))
}

/// Reads a JSON array one element at a time: each element is handed to `each` and dropped before
/// the next is parsed, so a long list (the phone numbers of thousands of users) never exists as
/// one tree; only the text and one element do. For a text that holds another kind of value,
/// `not_array` words the error from that kind ("an object"). Malformed JSON is an error as
/// in `parse` (also after elements were handed over); the first error of `each` ends the read.
pub fn for_each_in_array(
    text: &str,
    not_array: impl FnOnce(&'static str) -> String,
    mut each: impl FnMut(usize, Value) -> Result<(), String>,
) -> Result<(), String> {
    let mut p = Parser::over(text);
    p.skip_ws();
    if p.peek() != Some(b'[') {
        let v = p.value(0).map_err(|e| e.to_string())?;
        return Err(not_array(v.type_name()));
    }
    p.pos += 1;
    p.skip_ws();
    if p.peek() == Some(b']') {
        p.pos += 1;
    } else {
        let mut i = 0;
        loop {
            p.skip_ws();
            let v = p.value(1).map_err(|e| e.to_string())?;
            each(i, v)?;
            i += 1;
            p.skip_ws();
            match p.peek() {
                Some(b',') => p.pos += 1,
                Some(b']') => {
                    p.pos += 1;
                    break;
                }
                None => return Err(JsonError::UnexpectedEnd.to_string()),
                Some(_) => {
                    return Err(JsonError::Unexpected {
                        at: p.pos,
                        expected: "',' or ']'",
                    }
                    .to_string())
                }
            }
        }
    }
    p.end()
}
