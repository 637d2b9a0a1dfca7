//! Which of a user's numbers are internal and which are external.
//!
//! A redirect names the number it handles (`phoneNumber`) as the PBX dials it, often with exit,
//! national and local codes in front; `/rest/phonenumbers` lists the bare numbers with their type.
//! The matching rule is `docs/contract.md`, section 5.6: digits only; INTERNAL if equal to one of
//! the user's INTERNAL numbers; EXTERNAL if it ends with one of the user's EXTERNAL numbers;
//! otherwise a guess from the shape of the number.

use crate::json::{self, Value};

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
    /// Digits only.
    digits: String,
    kind: NumberKind,
}

/// The INTERNAL and EXTERNAL numbers assigned to users, from `GET /rest/phonenumbers?assigned=true`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberIndex {
    entries: Vec<Entry>,
}

/// One element of the `/rest/phonenumbers` list: `None` for numbers of other types and numbers
/// not assigned to a user.
fn entry(i: usize, item: &Value) -> Result<Option<Entry>, String> {
    let number = item
        .get("number")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("phone number #{i} has no \"number\" string"))?;
    let kind = match item.get("type").and_then(Value::as_str) {
        Some("INTERNAL") => NumberKind::Internal,
        Some("EXTERNAL") => NumberKind::External,
        Some(_) => return Ok(None),
        None => return Err(format!("phone number #{i} has no \"type\" string")),
    };
    let user = match item.get("assignedUserAccountId") {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| format!("phone number #{i} has a non-integer assignedUserAccountId"))?,
    };
    let digits = digits(number);
    Ok((!digits.is_empty()).then_some(Entry { user, digits, kind }))
}

/// The digits of a number, in order; everything else (`+`, spaces, dashes) is dropped.
pub fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

impl NumberIndex {
    /// Builds the index from the parsed `/rest/phonenumbers` answer. Numbers of other types
    /// (RESERVED, NT, …) and numbers not assigned to a user are left out; a malformed entry is
    /// an error naming it, since guessing would switch the wrong redirects.
    pub fn from_json(value: &Value) -> Result<NumberIndex, String> {
        let items = value.as_array().ok_or_else(|| {
            format!(
                "expected an array of phone numbers, got {}",
                value.type_name()
            )
        })?;
        let mut entries = Vec::new();
        for (i, item) in items.iter().enumerate() {
            entries.extend(entry(i, item)?);
        }
        Ok(NumberIndex { entries })
    }

    /// The same from the response text, one number at a time: with thousands of users the list
    /// as one JSON tree would be the largest allocation of a pass (several MB).
    pub fn from_json_text(text: &str) -> Result<NumberIndex, String> {
        let mut entries = Vec::new();
        let not_array = |kind| format!("expected an array of phone numbers, got {kind}");
        json::for_each_in_array(text, not_array, |i, item| {
            entries.extend(entry(i, &item)?);
            Ok(())
        })?;
        Ok(NumberIndex { entries })
    }

    /// Builds an index directly, for tests and callers that already know the numbers.
    pub fn from_entries<'a>(list: impl IntoIterator<Item = (UserId, &'a str, NumberKind)>) -> Self {
        let entries = list
            .into_iter()
            .map(|(user, number, kind)| Entry {
                user,
                digits: digits(number),
                kind,
            })
            .filter(|e| !e.digits.is_empty())
            .collect();
        NumberIndex { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Classifies a redirect's `phoneNumber` against `user`'s numbers.
    pub fn classify(&self, user: UserId, number: &str) -> Classification {
        let wanted = digits(number);
        let mine = || self.entries.iter().filter(|e| e.user == user);
        let internal = mine().any(|e| e.kind == NumberKind::Internal && e.digits == wanted);
        if internal && !wanted.is_empty() {
            return Classification {
                kind: NumberKind::Internal,
                matched: true,
            };
        }
        let external =
            mine().any(|e| e.kind == NumberKind::External && wanted.ends_with(&e.digits));
        if external && !wanted.is_empty() {
            return Classification {
                kind: NumberKind::External,
                matched: true,
            };
        }
        let trimmed = number.trim();
        let short = wanted.len() <= 6 && !trimmed.starts_with('+') && !trimmed.starts_with('0');
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
        let json = Value::parse(
            r#"[
              {"id":1,"number":"21","type":"INTERNAL","assignedUserAccountId":1,"extra":{"x":1}},
              {"id":2,"number":"4972112345621","type":"EXTERNAL","assignedUserAccountId":1},
              {"id":3,"number":"99","type":"RESERVED","assignedUserAccountId":1},
              {"id":4,"number":"30","type":"INTERNAL","assignedUserAccountId":null,"assignedGroupAccountId":7},
              {"id":5,"number":"31","type":"INTERNAL"},
              {"id":6,"number":"","type":"INTERNAL","assignedUserAccountId":1}
            ]"#,
        )
        .unwrap();
        let got = NumberIndex::from_json(&json).unwrap();
        assert_eq!(
            NumberIndex::from_json_text(&json.to_json()),
            Ok(got.clone())
        );
        assert_eq!(
            got,
            NumberIndex::from_entries([
                (1, "21", NumberKind::Internal),
                (1, "4972112345621", NumberKind::External)
            ])
        );
        assert_eq!(got.len(), 2);
        assert!(!got.is_empty());
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
        ];
        for (text, expect) in cases {
            let value = Value::parse(text).unwrap();
            assert_eq!(
                NumberIndex::from_json(&value).unwrap_err(),
                expect,
                "{text}"
            );
            assert_eq!(
                NumberIndex::from_json_text(text).unwrap_err(),
                expect,
                "{text}"
            );
        }
    }
}
