//! Which of a user's numbers are internal and which are external.
//!
//! A redirect names the number it handles (`phoneNumber`) as the PBX dials it, often with exit,
//! national and local codes in front; `/rest/phonenumbers` lists the bare numbers with their type.
//! The matching rule is `docs/contract.md`, section 5.6: digits only; INTERNAL if equal to one of
//! the user's INTERNAL numbers; EXTERNAL if it ends with one of the user's EXTERNAL numbers;
//! otherwise a guess from the shape of the number.

use std::borrow::Cow;
use std::ops::Range;

use crate::json::{Item, JsonError, Kind, Parser};

pub use crate::model::UserId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumberKind {
    Internal,
    External,
}

impl NumberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Internal => "internal",
            NumberKind::External => "external",
        }
    }
}

/// How a number was classified: by a listed number, or by the fallback guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    pub kind: NumberKind,
    /// False when no listed number of the user matched and the kind is a guess.
    pub matched: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    user: UserId,
    /// Where the number's digits are in `NumberIndex::digits`.
    digits: Range<usize>,
    kind: NumberKind,
}

/// The INTERNAL and EXTERNAL numbers assigned to users, from `GET /rest/phonenumbers?assigned=true`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberIndex {
    /// Sorted by user, so that a user's numbers are found by a binary search.
    entries: Vec<Entry>,
    /// The digits of all numbers, one after the other: one buffer instead of a string each.
    digits: String,
}

/// The digits of a number, in order; everything else (`+`, spaces, dashes) is dropped.
fn digits(number: &str) -> impl DoubleEndedIterator<Item = char> + Clone + '_ {
    number.chars().filter(char::is_ascii_digit)
}

/// What the index needs of one element of the `/rest/phonenumbers` list, read without a tree:
/// the strings are borrowed from the text and every other member is only checked.
fn read_entry<'a>(
    p: &mut Parser<'a>,
    i: usize,
) -> Result<Option<(UserId, Cow<'a, str>, NumberKind)>, String> {
    let (mut number, mut kind, mut user) = (None, None, None);
    if p.kind()? == Kind::Object {
        p.object(|p, name| {
            let string = |item| match item {
                Item::String(s) => Some(s),
                _ => None,
            };
            match name {
                "number" => number = string(p.item()?),
                "type" => kind = string(p.item()?),
                "assignedUserAccountId" => user = Some(p.item()?),
                _ => p.skip()?,
            }
            Ok::<_, JsonError>(())
        })?;
    } else {
        p.skip()?;
    }
    let number = number.ok_or_else(|| format!("phone number #{i} has no \"number\" string"))?;
    let kind = match kind.as_deref() {
        Some("INTERNAL") => NumberKind::Internal,
        Some("EXTERNAL") => NumberKind::External,
        Some(_) => return Ok(None),
        None => return Err(format!("phone number #{i} has no \"type\" string")),
    };
    let user = match user {
        None | Some(Item::Null) => return Ok(None),
        Some(Item::Number(n)) => n.parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| format!("phone number #{i} has a non-integer assignedUserAccountId"))?;
    Ok(Some((user, number, kind)))
}

impl NumberIndex {
    /// Builds the index from the text of the `/rest/phonenumbers` answer, one number at a time:
    /// with thousands of users the list as one JSON tree would be the largest allocation of a
    /// pass (several MB). Numbers of other types (RESERVED, NT, …) and numbers not assigned to
    /// a user are left out; a malformed entry is an error naming it, since guessing would
    /// switch the wrong redirects.
    pub fn read(mut p: Parser<'_>) -> Result<NumberIndex, String> {
        let mut index = NumberIndex::default();
        let not_array = |kind| format!("expected an array of phone numbers, got {kind}");
        p.each_in_array(not_array, |p, i| {
            if let Some((user, number, kind)) = read_entry(p, i)? {
                index.push(user, &number, kind);
            }
            Ok(())
        })?;
        p.finish()?;
        Ok(index.sorted())
    }

    /// Builds an index directly, for tests and callers that already know the numbers.
    pub fn from_entries<'a>(list: impl IntoIterator<Item = (UserId, &'a str, NumberKind)>) -> Self {
        let mut index = NumberIndex::default();
        for (user, number, kind) in list {
            index.push(user, number, kind);
        }
        index.sorted()
    }

    /// Adds a number unless it has no digits.
    fn push(&mut self, user: UserId, number: &str, kind: NumberKind) {
        let start = self.digits.len();
        self.digits.extend(digits(number));
        if self.digits.len() > start {
            self.entries.push(Entry {
                user,
                digits: start..self.digits.len(),
                kind,
            });
        }
    }

    /// Sorted by user (stable: each user's numbers keep the list's order).
    fn sorted(mut self) -> NumberIndex {
        self.entries.sort_by_key(|e| e.user);
        self
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The numbers of `user`: digits and kind.
    fn of(&self, user: UserId) -> impl Iterator<Item = (&str, NumberKind)> + Clone {
        let from = self.entries.partition_point(|e| e.user < user);
        self.entries[from..]
            .iter()
            .take_while(move |e| e.user == user)
            .map(|e| (&self.digits[e.digits.clone()], e.kind))
    }

    /// Classifies a redirect's `phoneNumber` against `user`'s numbers.
    pub fn classify(&self, user: UserId, number: &str) -> Classification {
        let wanted = digits(number);
        let count = wanted.clone().count();
        let mut mine = self.of(user);
        let internal = mine
            .clone()
            .any(|(d, k)| k == NumberKind::Internal && wanted.clone().eq(d.chars()));
        if internal && count > 0 {
            return Classification {
                kind: NumberKind::Internal,
                matched: true,
            };
        }
        // Ends with the listed number: its digits, from the end, are the last ones wanted.
        let ends_with = |d: &str| {
            let mut tail = wanted.clone().rev();
            d.chars().rev().all(|c| tail.next() == Some(c))
        };
        let external = mine.any(|(d, k)| k == NumberKind::External && ends_with(d));
        if external && count > 0 {
            return Classification {
                kind: NumberKind::External,
                matched: true,
            };
        }
        let trimmed = number.trim();
        let short = count <= 6 && !trimmed.starts_with('+') && !trimmed.starts_with('0');
        Classification {
            kind: if short {
                NumberKind::Internal
            } else {
                NumberKind::External
            },
            matched: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> NumberIndex {
        NumberIndex::from_entries([
            (1, "21", NumberKind::Internal),
            (1, "4972112345621", NumberKind::External),
            (2, "22", NumberKind::Internal),
            (2, "721 123456-22", NumberKind::External),
        ])
    }

    fn check(user: UserId, number: &str, expect: (NumberKind, bool)) {
        let got = index().classify(user, number);
        assert_eq!(
            (got.kind, got.matched),
            expect,
            "user {user}, number {number:?}"
        );
    }

    #[test]
    fn classification_table() {
        use NumberKind::{External, Internal};
        let cases: &[(UserId, &str, (NumberKind, bool))] = &[
            (1, "21", (Internal, true)),
            (1, " 2-1 ", (Internal, true)),
            (1, "+49 721 123456 21", (External, true)),
            (1, "004972112345621", (External, true)),
            (2, "0721123456-22", (External, true)),
            (2, "+4972112345622", (External, true)),
            // Another user's numbers do not count for this one: these are guesses.
            (1, "22", (Internal, false)),
            (2, "+4972112345621", (External, false)),
            // Guesses: short and not starting with + or 0 is internal.
            (1, "123456", (Internal, false)),
            (1, "1234567", (External, false)),
            (1, "0815", (External, false)),
            (1, "+12", (External, false)),
            (1, "", (Internal, false)),
            (3, "21", (Internal, false)),
        ];
        for &(user, number, expect) in cases {
            check(user, number, expect);
        }
    }

    #[test]
    fn index_from_json_keeps_assigned_internal_and_external() {
        let text = r#"[
          {"id":1,"number":"21","type":"INTERNAL","assignedUserAccountId":1,"extra":{"x":1}},
          {"id":2,"number":"4972112345621","type":"EXTERNAL","assignedUserAccountId":1},
          {"id":3,"number":"99","type":"RESERVED","assignedUserAccountId":1},
          {"id":4,"number":"30","type":"INTERNAL","assignedUserAccountId":null,"assignedGroupAccountId":7},
          {"id":5,"number":"31","type":"INTERNAL"},
          {"id":6,"number":"","type":"INTERNAL","assignedUserAccountId":1},
          {"id":7,"number":"+49 (721) 22","type":"EXTERNAL","assignedUserAccountId":2},
          {"id":8,"number":"2\u0033","type":"INT\u0045RNAL","assignedUserAccountId":1}
        ]"#;
        let got = NumberIndex::read(Parser::new(text)).unwrap();
        assert_eq!(
            got,
            NumberIndex::from_entries([
                (1, "21", NumberKind::Internal),
                (1, "4972112345621", NumberKind::External),
                (2, "4972122", NumberKind::External),
                (1, "23", NumberKind::Internal),
            ])
        );
        assert_eq!(got.len(), 4);
        assert!(!got.is_empty());
        assert_eq!(got.classify(1, "23").kind, NumberKind::Internal);
        assert!(got.classify(1, "23").matched);
        assert!(got.classify(2, "+49 721 22").matched);
    }

    #[test]
    fn index_from_malformed_json_is_an_error() {
        let cases = [
            (r#"{}"#, "expected an array of phone numbers, got an object"),
            (
                r#"[{"type":"INTERNAL"}]"#,
                "phone number #0 has no \"number\" string",
            ),
            (
                r#"[{"number":1,"type":"INTERNAL"}]"#,
                "phone number #0 has no \"number\" string",
            ),
            (
                r#"[{"number":"1"}]"#,
                "phone number #0 has no \"type\" string",
            ),
            (
                r#"[{"number":"1","type":"INTERNAL","assignedUserAccountId":"x"}]"#,
                "phone number #0 has a non-integer assignedUserAccountId",
            ),
            (
                r#"[{"number":"1","type":"INTERNAL","assignedUserAccountId":1.5}]"#,
                "phone number #0 has a non-integer assignedUserAccountId",
            ),
            (
                r#"[{"number":"1","type":"INTERNAL","assignedUserAccountId":[1]}]"#,
                "phone number #0 has a non-integer assignedUserAccountId",
            ),
            (r#"[7]"#, "phone number #0 has no \"number\" string"),
            (
                r#"[{"number":"1","type":"INTERNAL","assignedUserAccountId":1},{"number":"2","type":7}]"#,
                "phone number #1 has no \"type\" string",
            ),
            // The JSON itself is checked in full, also in members the index does not read.
            (
                r#"[{"number":"1","type":"X","extra":{"a":1,"a":2}}]"#,
                "a JSON object names the same member twice (at byte 41)",
            ),
            (
                r#"[{"number":"1","number":"2","type":"INTERNAL"}]"#,
                "a JSON object names the same member twice (at byte 15)",
            ),
            (
                r#"[{"number":"1","type":"X","extra":"\q"}]"#,
                "invalid escape in JSON string at byte 35",
            ),
            (
                r#"[{"number":"1","type":"X"}] 1"#,
                "unexpected text after the JSON value at byte 28",
            ),
            (
                r#"[{"number":"1","#,
                "JSON text ends in the middle of a value",
            ),
        ];
        for (text, expect) in cases {
            assert_eq!(
                NumberIndex::read(Parser::new(text)).unwrap_err(),
                expect,
                "{text}"
            );
        }
    }
}
