//! Reading long JSON texts one member or element at a time, so that a list of thousands of
//! users never exists as one tree: only the text and the entry in hand do.

use std::collections::HashSet;

use super::parse::Parser;
use super::read::Kind;
use super::Value;

/// Reads a top-level object whose member `key` holds a large object: that object's members are
/// handed to `each` one at a time and dropped before the next is parsed (the state file of
/// thousands of users never exists as one tree); the other top-level members are returned.
/// Also returns whether `key` was there. A repeated name, at either level, is an error.
pub fn for_each_member_of(
    text: &str,
    key: &str,
    mut each: impl FnMut(&str, Value) -> Result<(), String>,
) -> Result<(bool, Vec<(String, Value)>), String> {
    let mut p = Parser::new(text);
    let mut rest = Vec::new();
    let mut found = false;
    let mut top_names = HashSet::new();
    p.object(|p, name| {
        if !top_names.insert(name.to_string()) {
            return Err(format!("the name '{name}' appears twice"));
        }
        if name == key && p.kind()? == Kind::Object {
            found = true;
            let mut names = HashSet::new();
            p.object(|p, member| {
                let v = p.read_value()?;
                if !names.insert(member.to_string()) {
                    return Err(format!("the name '{member}' appears twice in '{key}'"));
                }
                each(member, v)
            })
        } else {
            rest.push((name.to_string(), p.read_value()?));
            Ok(())
        }
    })?;
    p.finish()?;
    Ok((found, rest))
}

impl Parser<'_> {
    /// Reads the array that must start here like `array`, but words the error for another kind
    /// of value with `not_array` (after checking that value, so that malformed JSON is reported
    /// as such).
    pub fn each_in_array(
        &mut self,
        not_array: impl FnOnce(&'static str) -> String,
        each: impl FnMut(&mut Self, usize) -> Result<(), String>,
    ) -> Result<(), String> {
        match self.kind()? {
            Kind::Array => self.array(each),
            _ => Err(not_array(self.item()?.type_name())),
        }
    }
}
