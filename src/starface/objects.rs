//! The STARFACE REST objects this program reads and writes, as typed views over the raw JSON.
//!
//! Each view keeps the object exactly as the PBX sent it; a write sends that object back with
//! one member changed, so fields this program does not know survive. Parsing is pure: the
//! functions read JSON text value by value (no tree for lists of thousands of users, no copy
//! of the members they drop) and return the view or a sentence saying what is wrong.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::OnceLock;

use super::numbers::{NumberIndex, NumberKind, UserId};
use crate::json::{self, Item, JsonError, Kind, Parser, Value};

/// A member of the configured group who can be handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: UserId,
    pub login: String,
    /// Trimmed and lower-case.
    pub email: String,
    /// First and family name, for messages.
    pub name: String,
}

/// The handled users, and what was wrong with the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    pub users: Vec<DirectoryUser>,
    /// One sentence each.
    pub warnings: Vec<String>,
}

/// An object as the PBX sent it: its text, and its tree once a write asks for it. An idle poll
/// reads hundreds of objects and writes none, so the trees are built only for the writes.
#[derive(Clone, Debug)]
struct Raw {
    text: String,
    tree: OnceLock<Value>,
}

impl Raw {
    fn new(text: &str) -> Raw {
        Raw {
            text: text.to_string(),
            tree: OnceLock::new(),
        }
    }

    fn tree(&self) -> &Value {
        // The text was read by the same parser when the view was made, so it parses again;
        // `Null` is never the result, it only keeps a broken invariant from being a panic.
        self.tree
            .get_or_init(|| json::parse(&self.text).unwrap_or(Value::Null))
    }
}

impl PartialEq for Raw {
    fn eq(&self, other: &Raw) -> bool {
        self.text == other.text
    }
}

/// A user's phone settings (`GET /rest/users/{id}/phoneconfig`).
#[derive(Clone, Debug, PartialEq)]
pub struct PhoneConfig {
    pub dnd: bool,
    raw: Raw,
}

/// An ALWAYS redirect on one of a user's own numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Forwarding {
    pub id: String,
    /// The number whose calls are redirected, as the PBX wrote it.
    pub number: String,
    pub kind: NumberKind,
    /// False when the kind is a guess (the number is not among the user's listed numbers).
    pub kind_matched: bool,
    pub enabled: bool,
    /// The phone number, or `mailbox <id>` for a voicemail box; `None` when not set.
    pub destination: Option<String>,
    raw: Raw,
}

/// `Parser::fields`, with a value that is no object an error `expected {what} as an object`.
fn object_fields<'a, const N: usize>(
    p: &mut Parser<'a>,
    keys: [&str; N],
    what: &dyn Fn() -> String,
) -> Result<[Option<Item<'a>>; N], String> {
    p.fields(keys)?
        .map_err(|kind| format!("expected {} as an object, got {}", what(), kind.type_name()))
}

/// A member that must be there and be a string; `what` names the object for the message.
fn str_of<'i, 'a>(
    item: &'i Option<Item<'a>>,
    key: &str,
    what: &dyn Fn() -> String,
) -> Result<&'i str, String> {
    match item {
        Some(Item::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "{}: \"{key}\" is {}, not a string",
            what(),
            other.type_name()
        )),
        None => Err(format!("{} has no \"{key}\"", what())),
    }
}

fn int_of(item: &Option<Item<'_>>, key: &str, what: &dyn Fn() -> String) -> Result<i64, String> {
    match item {
        Some(Item::Number(n)) => n
            .parse()
            .map_err(|_| format!("{}: \"{key}\" is a number, not an integer", what())),
        Some(other) => Err(format!(
            "{}: \"{key}\" is {}, not an integer",
            what(),
            other.type_name()
        )),
        None => Err(format!("{} has no \"{key}\"", what())),
    }
}

fn bool_of(item: &Option<Item<'_>>, key: &str, what: &dyn Fn() -> String) -> Result<bool, String> {
    match item {
        Some(Item::Bool(b)) => Ok(*b),
        Some(other) => Err(format!(
            "{}: \"{key}\" is {}, not a boolean",
            what(),
            other.type_name()
        )),
        None => Err(format!("{} has no \"{key}\"", what())),
    }
}

/// An optional string member: missing, null and other kinds all give `None`.
fn opt_str<'i>(item: &'i Option<Item<'_>>) -> Option<&'i str> {
    match item {
        Some(Item::String(s)) => Some(s),
        _ => None,
    }
}

/// The array that must start here, each element handed to `each`; another kind of value is an
/// error `expected {what} as an array`.
fn each_of(
    p: &mut Parser<'_>,
    what: &str,
    each: impl FnMut(&mut Parser<'_>, usize) -> Result<(), String>,
) -> Result<(), String> {
    let not_array = |kind| format!("expected {what} as an array, got {kind}");
    p.each_in_array(not_array, each)
}

fn object_member<'a>(value: &'a Value, key: &str, what: &str) -> Result<&'a Value, String> {
    match value {
        Value::Object(_) => value
            .get(key)
            .ok_or_else(|| format!("{what} has no \"{key}\"")),
        other => Err(format!(
            "expected {what} as an object, got {}",
            other.type_name()
        )),
    }
}

fn str_member<'a>(value: &'a Value, key: &str, what: &str) -> Result<&'a str, String> {
    let member = object_member(value, key, what)?;
    member
        .as_str()
        .ok_or_else(|| format!("{what}: \"{key}\" is {}, not a string", member.type_name()))
}

/// Checks the template of `GET /rest/login` and turns it into the body of `POST /rest/login`:
/// the same object with `loginType` as configured and `secret` set.
pub fn login_request(template: &Value, login_type: &str, secret: &str) -> Result<Value, String> {
    str_member(template, "nonce", "the login template")?;
    let mut body = template.clone();
    body.set("loginType", Value::String(login_type.to_string()));
    body.set("secret", Value::String(secret.to_string()));
    Ok(body)
}

/// The nonce of a login template (checked by `login_request`).
pub fn login_nonce(template: &Value) -> Result<&str, String> {
    str_member(template, "nonce", "the login template")
}

/// The token of a successful `POST /rest/login`.
pub fn auth_token(value: &Value) -> Result<String, String> {
    let token = str_member(value, "token", "the login answer")?;
    if token.is_empty() {
        return Err("the login answer has an empty token".to_string());
    }
    Ok(token.to_string())
}

/// Where to find a group by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupLookup {
    Found(i64),
    /// The names of the groups that exist, sorted.
    Missing(Vec<String>),
}

/// Finds the group named `name` in `GET /rest/groups`: an exact match first, else the only
/// match ignoring case and surrounding spaces.
pub fn find_group(mut p: Parser<'_>, name: &str) -> Result<GroupLookup, String> {
    let mut listed = Vec::new();
    each_of(&mut p, "the group list", |p, i| {
        let what = || format!("group #{i}");
        let [id, groupname] = object_fields(p, ["id", "groupname"], &what)?;
        let id = int_of(&id, "id", &what)?;
        listed.push((id, opt_str(&groupname).unwrap_or("").to_string()));
        Ok(())
    })?;
    p.finish()?;
    if let Some((id, _)) = listed.iter().find(|(_, n)| *n == name) {
        return Ok(GroupLookup::Found(*id));
    }
    let loose: Vec<_> = listed
        .iter()
        .filter(|(_, n)| n.trim().eq_ignore_ascii_case(name.trim()))
        .collect();
    if let [(id, _)] = loose.as_slice() {
        return Ok(GroupLookup::Found(*id));
    }
    let mut names: Vec<String> = listed.into_iter().map(|(_, n)| n).collect();
    names.sort();
    Ok(GroupLookup::Missing(names))
}

/// The ids of the assigned users of `GET /rest/groups/{id}`, in the PBX's order. Entries of
/// `assignableUsers` that are not objects are no assigned users.
pub fn group_members(mut p: Parser<'_>) -> Result<Vec<UserId>, String> {
    let kind = p.kind()?;
    if kind != Kind::Object {
        p.skip()?;
        return Err(format!(
            "expected the group as an object, got {}",
            kind.type_name()
        ));
    }
    let mut ids = None;
    p.object(|p, name| {
        if name != "assignableUsers" {
            return Ok(p.skip()?);
        }
        let mut list = Vec::new();
        each_of(p, "assignableUsers", |p, i| {
            let what = || format!("assignable user #{i} of the group");
            let Ok([assigned, id]) = p.fields(["assigned", "id"])? else {
                return Ok(());
            };
            let assigned = match assigned {
                None | Some(Item::Null) => false,
                _ => bool_of(&assigned, "assigned", &what)?,
            };
            if assigned {
                list.push(int_of(&id, "id", &what)?);
            }
            Ok(())
        })?;
        ids = Some(list);
        Ok::<_, String>(())
    })?;
    p.finish()?;
    ids.ok_or_else(|| "the group has no \"assignableUsers\"".to_string())
}

/// Joins the group's members with `GET /rest/users`, read one user at a time: with thousands
/// of users the list as one JSON tree took about 3 MB, while the daemon holds the calendars
/// (ess-sim bench). Members without an e-mail address, members sharing one address, and
/// members the user list does not show are left out with a warning.
pub fn read_directory(
    group: &str,
    members: &[UserId],
    mut users: Parser<'_>,
) -> Result<Directory, String> {
    let mut by_id = HashMap::new();
    each_of(&mut users, "the user list", |p, i| {
        let what = || format!("user #{i}");
        let [id, login, email, first, family] = object_fields(
            p,
            ["id", "login", "email", "firstName", "familyName"],
            &what,
        )?;
        let id = int_of(&id, "id", &what)?;
        // "First Family", or the one that is set: built in place, one string per user.
        let first = opt_str(&first).unwrap_or("").trim();
        let family = opt_str(&family).unwrap_or("").trim();
        let mut name = String::with_capacity(first.len() + 1 + family.len());
        name.push_str(first);
        if !first.is_empty() && !family.is_empty() {
            name.push(' ');
        }
        name.push_str(family);
        let row = UserRow {
            login: opt_str(&login).unwrap_or("").to_string(),
            email: opt_str(&email).unwrap_or("").trim().to_lowercase(),
            name,
        };
        by_id.insert(id, row);
        Ok(())
    })?;
    users.finish()?;
    Ok(finish_directory(group, members, by_id))
}

/// What the directory needs of one user of `GET /rest/users`.
struct UserRow {
    login: String,
    email: String,
    name: String,
}

fn finish_directory(
    group: &str,
    members: &[UserId],
    mut by_id: HashMap<UserId, UserRow>,
) -> Directory {
    let mut directory = Directory::default();
    // Each member once, so each row is taken out of the map (moved, not copied).
    for id in first_occurrences(members.iter().copied()) {
        let Some(row) = by_id.remove(&id) else {
            directory.warnings.push(format!(
                "STARFACE user {id} is a member of group '{group}' but is missing from the user list; skipped"
            ));
            continue;
        };
        if row.email.is_empty() {
            directory.warnings.push(format!(
                "STARFACE user {} ({}, id {id}) in group '{group}' has no e-mail address; skipped until one is set",
                row.login,
                display_name(&row.name)
            ));
            continue;
        }
        directory.users.push(DirectoryUser {
            id,
            login: row.login,
            email: row.email,
            name: row.name,
        });
    }
    let mut counts: HashMap<&str, Vec<&str>> = HashMap::new();
    for user in &directory.users {
        counts.entry(&user.email).or_default().push(&user.login);
    }
    let mut duplicates: Vec<(&str, Vec<&str>)> = counts
        .into_iter()
        .filter(|(_, logins)| logins.len() > 1)
        .collect();
    duplicates.sort();
    let warnings: Vec<String> = duplicates
        .iter()
        .map(|(email, logins)| {
            format!(
                "STARFACE users {} in group '{group}' share the e-mail address {email}; all of them are skipped until each has its own",
                logins.join(", ")
            )
        })
        .collect();
    let dup_emails: HashSet<String> = duplicates.iter().map(|(e, _)| e.to_string()).collect();
    directory.users.retain(|u| !dup_emails.contains(&u.email));
    directory.warnings.extend(warnings);
    directory
}

/// The items without repeats, each at its first place. A set remembers what was seen, so a
/// group of 160,000 members costs 160,000 look-ups, not a scan of all earlier ones for each.
fn first_occurrences<T: Hash + Eq + Clone>(
    items: impl Iterator<Item = T>,
) -> impl Iterator<Item = T> {
    let mut seen = HashSet::new();
    items.filter(move |item| seen.insert(item.clone()))
}

fn display_name(name: &str) -> &str {
    if name.is_empty() {
        "no name"
    } else {
        name
    }
}

impl PhoneConfig {
    /// Reads `GET /rest/users/{id}/phoneconfig`.
    pub fn read(mut p: Parser<'_>) -> Result<PhoneConfig, String> {
        p.kind()?;
        let start = p.position();
        let what = || "the phone config".to_string();
        let [dnd] = object_fields(&mut p, ["doNotDisturb"], &what)?;
        let raw = Raw::new(p.since(start));
        p.finish()?;
        let dnd = bool_of(&dnd, "doNotDisturb", &what)?;
        Ok(PhoneConfig { dnd, raw })
    }

    /// The object as read.
    pub fn raw(&self) -> &Value {
        self.raw.tree()
    }

    /// The body of the PUT: the object as read with only `doNotDisturb` changed.
    pub fn with_dnd(&self, on: bool) -> Value {
        let mut body = self.raw().clone();
        body.set("doNotDisturb", Value::Bool(on));
        body
    }
}

/// What a redirect says, as far as this program needs it; strings borrowed from the text.
#[derive(Default)]
struct RedirectFields<'a> {
    id: Option<Item<'a>>,
    enabled: Option<Item<'a>>,
    /// The trigger's `redirectTriggerType`, or the kind of a trigger that is no object.
    trigger: Option<Result<Option<Item<'a>>, Kind>>,
    group_number: Option<Item<'a>>,
    phone_number: Option<Item<'a>>,
    /// The destination's type, phone number and mailbox, when it is an object.
    destination: Option<[Option<Item<'a>>; 3]>,
}

impl Forwarding {
    /// Reads the `Redirection` that starts here. `Ok(None)` for redirects that are
    /// not ours to switch: other triggers (BUSY, TIMEOUT), group numbers, and redirects without
    /// a number.
    fn read_one(
        p: &mut Parser<'_>,
        user: UserId,
        numbers: &NumberIndex,
    ) -> Result<Option<Forwarding>, String> {
        let kind = p.kind()?;
        let start = p.position();
        let mut f = RedirectFields::default();
        if kind == Kind::Object {
            p.object(|p, name| {
                match name {
                    "id" => f.id = Some(p.item()?),
                    "enabled" => f.enabled = Some(p.item()?),
                    "redirectTrigger" => {
                        f.trigger = Some(p.fields(["redirectTriggerType"])?.map(|[t]| t));
                    }
                    "groupNumber" => f.group_number = Some(p.item()?),
                    "phoneNumber" => f.phone_number = Some(p.item()?),
                    "redirectDestination" => {
                        let keys = ["redirectDestinationType", "phoneNumber", "mailboxId"];
                        f.destination = p.fields(keys)?.ok();
                    }
                    _ => p.skip()?,
                }
                Ok::<_, JsonError>(())
            })?;
        } else {
            p.skip()?;
            return Err(format!(
                "expected a redirect as an object, got {}",
                kind.type_name()
            ));
        }
        let id = match f.id {
            Some(Item::String(s)) => s.into_owned(),
            Some(Item::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(format!(
                    "a redirect: \"id\" is {}, not a string",
                    other.type_name()
                ))
            }
            None => return Err("a redirect has no \"id\"".to_string()),
        };
        let what = || format!("redirect {id}");
        let enabled = bool_of(&f.enabled, "enabled", &what)?;
        let trigger = match f.trigger {
            None => return Err(format!("{} has no \"redirectTrigger\"", what())),
            Some(Err(kind)) => {
                return Err(format!(
                    "expected the trigger of {} as an object, got {}",
                    what(),
                    kind.type_name()
                ))
            }
            Some(Ok(t)) => t,
        };
        let trigger_what = || format!("the trigger of {}", what());
        if str_of(&trigger, "redirectTriggerType", &trigger_what)? != "ALWAYS" {
            return Ok(None);
        }
        if f.group_number == Some(Item::Bool(true)) {
            return Ok(None);
        }
        let Some(number) = opt_str(&f.phone_number).filter(|n| !n.trim().is_empty()) else {
            return Ok(None);
        };
        let destination = f.destination.as_ref().and_then(destination);
        let class = numbers.classify(user, number);
        Ok(Some(Forwarding {
            number: number.to_string(),
            kind: class.kind,
            kind_matched: class.matched,
            enabled,
            destination,
            raw: Raw::new(p.since(start)),
            id,
        }))
    }

    /// Reads `GET /rest/redirects?actOnBehalfOf={user}` one redirect at a time and keeps the redirects this program switches (see `read_one`).
    pub fn read_list(
        mut p: Parser<'_>,
        user: UserId,
        numbers: &NumberIndex,
    ) -> Result<Vec<Forwarding>, String> {
        let mut out = Vec::new();
        each_of(&mut p, "the redirect list", |p, _| {
            out.extend(Forwarding::read_one(p, user, numbers)?);
            Ok(())
        })?;
        p.finish()?;
        Ok(out)
    }

    /// The object as read.
    pub fn raw(&self) -> &Value {
        self.raw.tree()
    }

    /// The body of the PUT: the object as read with only `enabled` changed.
    pub fn with_enabled(&self, on: bool) -> Value {
        let mut body = self.raw().clone();
        body.set("enabled", Value::Bool(on));
        body
    }
}

/// The destination of a redirect from its type, phone number and mailbox; `None` when it is
/// not set.
fn destination([kind, phone, mailbox]: &[Option<Item<'_>>; 3]) -> Option<String> {
    let non_empty = |item| opt_str(item).map(str::trim).filter(|s| !s.is_empty());
    match opt_str(kind) {
        Some("PHONENUMBER") => non_empty(phone).map(str::to_string),
        Some("MAILBOX") => non_empty(mailbox).map(|id| format!("mailbox {id}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        Value::parse(text).unwrap()
    }

    fn reader(text: &str) -> Parser<'_> {
        Parser::new(text)
    }

    /// One redirect read as the only element of a list.
    fn redirect_of(text: &str, numbers: &NumberIndex) -> Result<Option<Forwarding>, String> {
        let list = format!("[{text}]");
        Forwarding::read_list(reader(&list), 1, numbers).map(|l| l.into_iter().next())
    }

    #[test]
    fn login_request_sets_type_and_secret_and_keeps_the_rest() {
        let template = parse(r#"{"loginType":"Internal","nonce":"n1","secret":null,"future":[1]}"#);
        let body = login_request(&template, "ActiveDirectory", "s3cr3t").unwrap();
        assert_eq!(
            body.to_json(),
            r#"{"loginType":"ActiveDirectory","nonce":"n1","secret":"s3cr3t","future":[1]}"#
        );
        assert_eq!(login_nonce(&template), Ok("n1"));
        let cases = [
            (
                r#"{"loginType":"Internal"}"#,
                "the login template has no \"nonce\"",
            ),
            (
                r#"{"nonce":5}"#,
                "the login template: \"nonce\" is a number, not a string",
            ),
            (
                r#"[]"#,
                "expected the login template as an object, got an array",
            ),
        ];
        for (text, expect) in cases {
            assert_eq!(
                login_request(&parse(text), "Internal", "s"),
                Err(expect.to_string())
            );
        }
    }

    #[test]
    fn auth_token_table() {
        let cases = [
            (r#"{"token":"abc"}"#, Ok("abc".to_string())),
            (r#"{"token":"abc","x":1}"#, Ok("abc".to_string())),
            (
                r#"{"token":""}"#,
                Err("the login answer has an empty token".to_string()),
            ),
            (
                r#"{"token":null}"#,
                Err("the login answer: \"token\" is null, not a string".to_string()),
            ),
            (
                r#"{}"#,
                Err("the login answer has no \"token\"".to_string()),
            ),
            (
                r#""abc""#,
                Err("expected the login answer as an object, got a string".to_string()),
            ),
        ];
        for (text, expect) in cases {
            assert_eq!(auth_token(&parse(text)), expect, "{text}");
        }
    }

    #[test]
    fn find_group_table() {
        let groups = r#"[{"id":1,"groupname":"Sales","groupinternalnumber":"50"},
                {"id":2,"groupname":"Exchange-Sync","x":{}},
                {"id":3,"groupname":"exchange-sync "},
                {"id":4,"groupname":"Support"},
                {"id":5}]"#;
        let cases = [
            ("Exchange-Sync", GroupLookup::Found(2)),
            ("exchange-sync ", GroupLookup::Found(3)),
            ("sales", GroupLookup::Found(1)),
            (" SUPPORT ", GroupLookup::Found(4)),
            (
                "EXCHANGE-SYNC",
                GroupLookup::Missing(vec![
                    "".into(),
                    "Exchange-Sync".into(),
                    "Sales".into(),
                    "Support".into(),
                    "exchange-sync ".into(),
                ]),
            ),
        ];
        for (name, expect) in cases {
            assert_eq!(find_group(reader(groups), name), Ok(expect), "{name}");
        }
        assert_eq!(
            find_group(reader("[]"), "x"),
            Ok(GroupLookup::Missing(vec![]))
        );
        assert_eq!(
            find_group(reader(r#"[{"groupname":"x"}]"#), "x"),
            Err("group #0 has no \"id\"".to_string())
        );
        assert_eq!(
            find_group(reader("{}"), "x"),
            Err("expected the group list as an array, got an object".to_string())
        );
    }

    #[test]
    fn group_members_table() {
        let cases = [
            (
                r#"{"id":2,"name":"G","assignableUsers":[
                    {"id":10,"firstname":"A","lastname":"B","assigned":true},
                    {"id":11,"assigned":false},
                    {"id":12},
                    {"id":13,"assigned":null},
                    {"id":14,"assigned":true,"extra":1}],"assignableNumbers":[]}"#,
                Ok(vec![10, 14]),
            ),
            (r#"{"assignableUsers":[]}"#, Ok(vec![])),
            (r#"{"id":2}"#, Err("the group has no \"assignableUsers\"")),
            (
                r#"{"assignableUsers":{}}"#,
                Err("expected assignableUsers as an array, got an object"),
            ),
            (
                r#"{"assignableUsers":[{"id":"10","assigned":true}]}"#,
                Err("assignable user #0 of the group: \"id\" is a string, not an integer"),
            ),
            (
                r#"{"assignableUsers":[{"id":10,"assigned":"yes"}]}"#,
                Err("assignable user #0 of the group: \"assigned\" is a string, not a boolean"),
            ),
        ];
        for (text, expect) in cases {
            assert_eq!(
                group_members(reader(text)),
                expect.map_err(str::to_string),
                "{text}"
            );
        }
    }

    fn check_directory(
        members: &[UserId],
        users: &str,
        expect_users: &[(i64, &str, &str, &str)],
        expect_warnings: &[&str],
    ) {
        let got = read_directory("G", members, reader(users)).unwrap();
        let got_users: Vec<_> = got
            .users
            .iter()
            .map(|u| (u.id, u.login.as_str(), u.email.as_str(), u.name.as_str()))
            .collect();
        assert_eq!(got_users, expect_users);
        assert_eq!(got.warnings, expect_warnings);
    }

    #[test]
    fn directory_table() {
        let users = r#"[
            {"id":1,"login":"1001","email":" Alice@Example.COM ","firstName":"Alice","familyName":"A","language":"de"},
            {"id":2,"login":"1002","email":"","firstName":"Bob","familyName":"B"},
            {"id":3,"login":"1003","firstName":"Carl","familyName":"C"},
            {"id":4,"login":"1004","email":"dup@example.com","firstName":"Dora","familyName":"D"},
            {"id":5,"login":"1005","email":"DUP@example.com ","firstName":"Eve","familyName":"E"},
            {"id":6,"login":"1006","email":"frank@example.com","firstName":"Frank","familyName":"F"},
            {"id":7,"login":"1007","email":"bob@example.com","email2":"x"}
        ]"#;
        check_directory(
            &[1, 6, 1],
            users,
            &[
                (1, "1001", "alice@example.com", "Alice A"),
                (6, "1006", "frank@example.com", "Frank F"),
            ],
            &[],
        );
        check_directory(
            &[2, 3, 7, 99],
            users,
            &[(7, "1007", "bob@example.com", "")],
            &[
                "STARFACE user 1002 (Bob B, id 2) in group 'G' has no e-mail address; skipped until one is set",
                "STARFACE user 1003 (Carl C, id 3) in group 'G' has no e-mail address; skipped until one is set",
                "STARFACE user 99 is a member of group 'G' but is missing from the user list; skipped",
            ],
        );
        check_directory(
            &[4, 1, 5],
            users,
            &[(1, "1001", "alice@example.com", "Alice A")],
            &["STARFACE users 1004, 1005 in group 'G' share the e-mail address dup@example.com; all of them are skipped until each has its own"],
        );
        // Users outside the group may share addresses without harm.
        check_directory(
            &[4],
            users,
            &[(4, "1004", "dup@example.com", "Dora D")],
            &[],
        );
    }

    /// A member id that counts its comparisons: the repeat check once compared each member with
    /// all earlier ones (160,000 members took 13 s).
    #[derive(Clone)]
    struct Counted<'c>(i64, &'c std::cell::Cell<usize>);

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
    fn member_repeats_cost_one_look_up_each() {
        let compared = std::cell::Cell::new(0);
        let n = 20_000;
        // Every id twice: the second half repeats the first.
        let ids: Vec<Counted> = (0..2 * n).map(|i| Counted(i % n, &compared)).collect();
        let kept: Vec<i64> = first_occurrences(ids.into_iter()).map(|c| c.0).collect();
        assert_eq!(kept, (0..n).collect::<Vec<_>>());
        assert!(
            compared.get() <= 4 * n as usize,
            "{} comparisons",
            compared.get()
        );
    }

    #[test]
    fn directory_errors() {
        let cases = [
            (r#"{}"#, "expected the user list as an array, got an object"),
            (r#"[{"login":"x"}]"#, "user #0 has no \"id\""),
            (r#"[1]"#, "expected user #0 as an object, got a number"),
        ];
        for (text, expect) in cases {
            assert_eq!(
                read_directory("G", &[1], reader(text)),
                Err(expect.to_string())
            );
        }
    }

    #[test]
    fn phone_config_changes_only_dnd() {
        for text in [
            r#"{"callWaiting":true,"displayNumberId":5,"doNotDisturb":false,"primaryPhoneId":7}"#,
            r#"{"callWaiting":true,"futureThing":{"a":[1,2.50,"x"]},"doNotDisturb":false,"primaryPhoneId":7,"displayNumberId":null}"#,
        ] {
            let pc = PhoneConfig::read(reader(text)).unwrap();
            assert!(!pc.dnd);
            assert_eq!(pc.raw().to_json(), text);
            assert_eq!(pc.with_dnd(false).to_json(), text);
            assert_eq!(
                pc.with_dnd(true).to_json(),
                text.replace("\"doNotDisturb\":false", "\"doNotDisturb\":true")
            );
        }
        let cases = [
            (
                r#"{"callWaiting":true}"#,
                "the phone config has no \"doNotDisturb\"",
            ),
            (
                r#"{"doNotDisturb":"true"}"#,
                "the phone config: \"doNotDisturb\" is a string, not a boolean",
            ),
            (
                r#"null"#,
                "expected the phone config as an object, got null",
            ),
        ];
        for (text, expect) in cases {
            assert_eq!(PhoneConfig::read(reader(text)), Err(expect.to_string()));
        }
    }

    fn redirect(
        id: &str,
        number: &str,
        trigger: &str,
        group: bool,
        dest: &str,
        enabled: bool,
    ) -> String {
        format!(
            r#"{{"id":"{id}","enabled":{enabled},"phoneNumber":"{number}","groupNumber":{group},"redirectTrigger":{{"redirectTriggerType":"{trigger}"}},"redirectDestination":{dest},"lastPhoneNumberDestination":{{"redirectDestinationType":"PHONENUMBER","phoneNumber":"0815"}},"lastMailboxDestination":null}}"#
        )
    }

    #[test]
    fn forwardings_keep_always_redirects_on_own_numbers() {
        let numbers = NumberIndex::from_entries([
            (1, "21", NumberKind::Internal),
            (1, "4972112345621", NumberKind::External),
        ]);
        let to_phone = r#"{"redirectDestinationType":"PHONENUMBER","phoneNumber":" 0171 5550 "}"#;
        let list = format!(
            "[{},{},{},{},{},{},{},{}]",
            redirect("a", "21", "ALWAYS", false, to_phone, false),
            redirect(
                "b",
                "+4972112345621",
                "ALWAYS",
                false,
                r#"{"redirectDestinationType":"PHONENUMBER","phoneNumber":""}"#,
                true
            ),
            redirect("c", "21", "BUSY", false, to_phone, false),
            redirect("d", "50", "ALWAYS", true, to_phone, false),
            redirect(
                "e",
                "0049 721 99",
                "ALWAYS",
                false,
                r#"{"redirectDestinationType":"MAILBOX","mailboxId":"vm7"}"#,
                false
            ),
            redirect(
                "f",
                "77",
                "ALWAYS",
                false,
                r#"{"redirectDestinationType":"MAILBOX","mailboxId":""}"#,
                false
            ),
            redirect("g", "", "ALWAYS", false, to_phone, false),
            redirect("h", "22", "TIMEOUT", false, to_phone, false),
        );
        let got = Forwarding::read_list(reader(&list), 1, &numbers).unwrap();
        let got: Vec<_> = got
            .iter()
            .map(|f| {
                (
                    f.id.as_str(),
                    f.number.as_str(),
                    f.kind,
                    f.kind_matched,
                    f.enabled,
                    f.destination.as_deref(),
                )
            })
            .collect();
        use NumberKind::{External, Internal};
        assert_eq!(
            got,
            [
                ("a", "21", Internal, true, false, Some("0171 5550")),
                ("b", "+4972112345621", External, true, true, None),
                (
                    "e",
                    "0049 721 99",
                    External,
                    false,
                    false,
                    Some("mailbox vm7")
                ),
                ("f", "77", Internal, false, false, None),
            ]
        );
    }

    #[test]
    fn forwarding_write_changes_only_enabled() {
        let numbers = NumberIndex::default();
        let text = r#"{"id":"r1","enabled":false,"phoneNumber":"21","groupNumber":false,"redirectTrigger":{"redirectTriggerType":"ALWAYS","unknownInner":true},"redirectDestination":{"redirectDestinationType":"PHONENUMBER","phoneNumber":"0815"},"lastPhoneNumberDestination":null,"lastMailboxDestination":null,"futureField":[{"deep":1.0e1}]}"#;
        let f = redirect_of(text, &numbers).unwrap().unwrap();
        assert_eq!(f.raw().to_json(), text);
        assert_eq!(f.with_enabled(false).to_json(), text);
        assert_eq!(
            f.with_enabled(true).to_json(),
            text.replace("\"enabled\":false", "\"enabled\":true")
        );
        // A numeric id is accepted and kept as its text.
        let numeric = r#"{"id":17,"enabled":true,"phoneNumber":"21","redirectTrigger":{"redirectTriggerType":"ALWAYS"},"redirectDestination":{"redirectDestinationType":"PHONENUMBER","phoneNumber":"1"}}"#;
        assert_eq!(redirect_of(numeric, &numbers).unwrap().unwrap().id, "17");
    }

    /// The fixtures in tests/fixtures/starface, written from the Swagger file's definitions;
    /// each object comes plain and with fields this program does not know.
    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                include_str!(concat!("../../tests/fixtures/starface/", $name, ".json")),
                include_str!(concat!(
                    "../../tests/fixtures/starface/",
                    $name,
                    "-extra.json"
                )),
            )
        };
    }

    const FIXTURES: [(&str, &str, &str); 8] = [
        fixture!("login"),
        fixture!("token"),
        fixture!("users"),
        fixture!("groups"),
        fixture!("group"),
        fixture!("phoneconfig"),
        fixture!("redirects"),
        fixture!("phonenumbers"),
    ];

    /// Reads one fixture through its view and describes the result in one line.
    fn read_fixture(name: &str, text: &str) -> String {
        let v = parse(text);
        match name {
            "login" => {
                let body = login_request(&v, "Internal", "S").unwrap();
                format!(
                    "nonce {} secret {}",
                    login_nonce(&v).unwrap(),
                    body.get("secret").and_then(Value::as_str).unwrap()
                )
            }
            "token" => auth_token(&v).unwrap(),
            "users" => {
                let d = read_directory("G", &[1, 2], reader(text)).unwrap();
                let ids: Vec<_> = d.users.iter().map(|u| u.id).collect();
                format!("users {ids:?}, {} warning(s)", d.warnings.len())
            }
            "groups" => format!("{:?}", find_group(reader(text), "Sales").unwrap()),
            "group" => format!("members {:?}", group_members(reader(text)).unwrap()),
            "phoneconfig" => {
                let pc = PhoneConfig::read(reader(text)).unwrap();
                assert_eq!(pc.with_dnd(false), v, "unchanged when nothing changes");
                let mut expect = v.clone();
                expect.set("doNotDisturb", Value::Bool(true));
                assert_eq!(pc.with_dnd(true), expect);
                format!("dnd {}", pc.dnd)
            }
            "redirects" => {
                let numbers = NumberIndex::from_entries([
                    (1, "21", NumberKind::Internal),
                    (1, "4972112345621", NumberKind::External),
                ]);
                let list = Forwarding::read_list(reader(text), 1, &numbers).unwrap();
                for f in &list {
                    assert_eq!(f.with_enabled(f.enabled), *f.raw());
                    let changed = f.with_enabled(!f.enabled);
                    let Value::Object(members) = &changed else {
                        panic!("object")
                    };
                    let Value::Object(before) = f.raw() else {
                        panic!("object")
                    };
                    assert_eq!(members.len(), before.len(), "no member added or dropped");
                }
                let ids: Vec<_> = list
                    .iter()
                    .map(|f| format!("{}:{}:{}", f.id, f.kind.as_str(), f.destination.is_some()))
                    .collect();
                ids.join(" ")
            }
            "phonenumbers" => {
                let index = NumberIndex::read(reader(text)).unwrap();
                format!(
                    "{} numbers, 21 {:?}",
                    index.len(),
                    index.classify(1, "21").kind
                )
            }
            other => panic!("no reader for {other}"),
        }
    }

    #[test]
    fn fixtures_read_the_same_with_and_without_unknown_fields() {
        let expect = [
            (
                "login",
                "nonce 6f2c1c3e-8b1d-4a54-9d6e-0c6f1a7b2d11 secret S",
            ),
            ("token", "c0ffee42deadbeef"),
            ("users", "users [1], 1 warning(s)"),
            ("groups", "Found(11)"),
            ("group", "members [1]"),
            ("phoneconfig", "dnd false"),
            ("redirects", "r-ext:external:true"),
            ("phonenumbers", "2 numbers, 21 Internal"),
        ];
        for ((name, plain, extra), (expect_name, expect)) in FIXTURES.iter().zip(expect) {
            assert_eq!(*name, expect_name);
            if *name == "redirects" {
                // The plain list has more redirects; the extra one holds only r-ext.
                assert_eq!(
                    read_fixture(name, plain),
                    "r-ext:external:true r-int:internal:true r-empty:external:false"
                );
            } else {
                assert_eq!(read_fixture(name, plain), expect, "{name}");
            }
            assert_eq!(
                read_fixture(name, extra),
                expect,
                "{name} with unknown fields"
            );
        }
    }

    #[test]
    fn fixtures_truncated_at_every_byte_are_errors() {
        for (name, plain, extra) in FIXTURES {
            for text in [plain.trim(), extra.trim()] {
                for cut in (0..text.len()).filter(|&c| text.is_char_boundary(c)) {
                    assert!(
                        crate::json::parse(&text[..cut]).is_err(),
                        "{name} cut at {cut}"
                    );
                }
            }
        }
    }

    /// Every prefix of a real object is an error, never a panic, and so is every single-byte
    /// corruption an error or a value the views reject or accept without panicking.
    #[test]
    fn truncated_and_corrupted_objects_never_panic() {
        let text = r#"{"id":"r1","enabled":true,"phoneNumber":"+49 721 21","groupNumber":false,"redirectTrigger":{"redirectTriggerType":"ALWAYS"},"redirectDestination":{"redirectDestinationType":"PHONENUMBER","phoneNumber":"0815\u00e4"},"n":-1.5e3,"x":[null,{}]}"#;
        let numbers = NumberIndex::default();
        assert!(redirect_of(text, &numbers).unwrap().is_some());
        for cut in 0..text.len() {
            assert!(
                crate::json::parse(&text[..cut]).is_err(),
                "prefix of {cut} bytes"
            );
        }
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            for b in [b'"', b'\\', b'{', b']', b'0', b',', b'u', 0x7f] {
                let mut corrupt = bytes.to_vec();
                corrupt[i] = b;
                let Ok(corrupt) = String::from_utf8(corrupt) else {
                    continue;
                };
                let parsed = crate::json::parse(&corrupt);
                let read = redirect_of(&corrupt, &numbers);
                // What the tree parser refuses, the readers refuse too.
                assert!(parsed.is_ok() || read.is_err(), "{corrupt}");
                let _ = PhoneConfig::read(reader(&corrupt));
            }
        }
    }

    #[test]
    fn malformed_redirects_are_errors() {
        let numbers = NumberIndex::default();
        let cases = [
            (r#"{"enabled":true}"#, "a redirect has no \"id\""),
            (r#"{"id":null}"#, "a redirect: \"id\" is null, not a string"),
            (
                r#"{"id":"r","enabled":1}"#,
                "redirect r: \"enabled\" is a number, not a boolean",
            ),
            (
                r#"{"id":"r","enabled":true}"#,
                "redirect r has no \"redirectTrigger\"",
            ),
            (
                r#"{"id":"r","enabled":true,"redirectTrigger":{}}"#,
                "the trigger of redirect r has no \"redirectTriggerType\"",
            ),
            (
                r#"{"id":"r","enabled":true,"redirectTrigger":"ALWAYS"}"#,
                "expected the trigger of redirect r as an object, got a string",
            ),
        ];
        for (text, expect) in cases {
            assert_eq!(
                redirect_of(text, &numbers),
                Err(expect.to_string()),
                "{text}"
            );
        }
        assert_eq!(
            Forwarding::read_list(reader("{}"), 1, &numbers),
            Err("expected the redirect list as an array, got an object".to_string())
        );
    }
}
