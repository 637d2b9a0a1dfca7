//! Reading EWS responses (pure): GetUserAvailability and FindItem responses, and SOAP faults.
//!
//! One streaming pass over `xml::Reader`. Elements are matched by local name within the SOAP
//! and EWS namespaces, whatever prefixes the server chose (Exchange declares default namespaces
//! in some responses and uses `m:`/`t:` in others); elements of any other namespace are skipped
//! with everything inside them. Each mailbox's part of the response becomes a `MailboxResult`:
//! a bad appointment makes that mailbox's result an error rather than a wrong appointment, while
//! XML that is not well-formed (truncated, unbalanced, a DTD) fails the whole response.

use std::borrow::Cow;
use std::time::Duration;

use super::request::{ERRORS_NS, MESSAGES_NS, SOAP_NS, TYPES_NS};
use crate::exchange::{MailboxError, MailboxResult};
use crate::model::{Appointment, ShowAs};
use crate::time::parse_datetime;
use crate::xml::{same, Attr, Event, NsId, Reader};

/// The code of per-mailbox errors we raise ourselves for appointments we cannot read.
pub const BAD_APPOINTMENT: &str = "InvalidAppointment";

/// Which operation a response answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    GetUserAvailability,
    FindItem,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetUserAvailability => "GetUserAvailability",
            Operation::FindItem => "FindItem",
        }
    }

    fn response_name(self) -> &'static str {
        match self {
            Operation::GetUserAvailability => "GetUserAvailabilityResponse",
            Operation::FindItem => "FindItemResponse",
        }
    }
}

/// A SOAP fault: the whole request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The EWS response code (`ErrorServerBusy`, …) from the detail, else the `faultcode`
    /// without its prefix.
    pub code: String,
    pub message: String,
    /// `BackOffMilliseconds` from the detail, if any.
    pub back_off: Option<Duration>,
}

/// What a well-formed response said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// One result per mailbox, in response order.
    Mailboxes(Vec<MailboxResult>),
    /// The request failed as a whole.
    Fault(Fault),
    /// A response message said ErrorServerBusy: the request must be sent again later (with
    /// `BackOffMilliseconds` when given).
    Busy(Option<Duration>),
}

/// The namespaces whose elements we look at, in the order of their `NsId`.
const KNOWN: &[&str] = &[SOAP_NS, MESSAGES_NS, TYPES_NS, ERRORS_NS];

/// The element names the interpretation looks at. The name of each element is looked up once,
/// when it starts; everything after compares these values, not strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    /// Any other element, and every element outside the namespaces we read.
    Other,
    Envelope,
    Body,
    Fault,
    FaultCodeEl,
    FaultStringEl,
    Detail,
    ResponseCodeEl,
    MessageEl,
    MessageTextEl,
    MessageXml,
    Value,
    GetUserAvailabilityResponse,
    FindItemResponse,
    FreeBusyResponse,
    FindItemResponseMessage,
    ResponseMessage,
    CalendarEventArray,
    Items,
    CalendarEvent,
    CalendarItem,
    StartTime,
    EndTime,
    StartEl,
    EndEl,
    BusyType,
    LegacyFreeBusyStatus,
    CalendarEventDetails,
    SubjectEl,
    IsPrivateEl,
    SensitivityEl,
    IsAllDayEvent,
}

/// The element names we look at, each with its `Name`.
const NAMES: [(&str, Name); 31] = {
    use Name as N;
    [
        ("End", N::EndEl),
        ("Body", N::Body),
        ("Items", N::Items),
        ("Value", N::Value),
        ("Start", N::StartEl),
        ("Fault", N::Fault),
        ("detail", N::Detail),
        ("EndTime", N::EndTime),
        ("Subject", N::SubjectEl),
        ("Message", N::MessageEl),
        ("BusyType", N::BusyType),
        ("Envelope", N::Envelope),
        ("StartTime", N::StartTime),
        ("IsPrivate", N::IsPrivateEl),
        ("faultcode", N::FaultCodeEl),
        ("MessageXml", N::MessageXml),
        ("MessageText", N::MessageTextEl),
        ("Sensitivity", N::SensitivityEl),
        ("faultstring", N::FaultStringEl),
        ("CalendarItem", N::CalendarItem),
        ("ResponseCode", N::ResponseCodeEl),
        ("CalendarEvent", N::CalendarEvent),
        ("IsAllDayEvent", N::IsAllDayEvent),
        ("ResponseMessage", N::ResponseMessage),
        ("FreeBusyResponse", N::FreeBusyResponse),
        ("FindItemResponse", N::FindItemResponse),
        ("CalendarEventArray", N::CalendarEventArray),
        ("CalendarEventDetails", N::CalendarEventDetails),
        ("LegacyFreeBusyStatus", N::LegacyFreeBusyStatus),
        ("FindItemResponseMessage", N::FindItemResponseMessage),
        (
            "GetUserAvailabilityResponse",
            N::GetUserAvailabilityResponse,
        ),
    ]
};

/// Where a name goes in `TABLE`: its length and first two bytes tell the names of `NAMES`
/// apart (the table's construction fails to compile if a new name shares a slot).
const fn slot(name: &[u8]) -> usize {
    let first = if name.is_empty() { 0 } else { name[0] as usize };
    let second = if name.len() < 2 { 0 } else { name[1] as usize };
    (name.len() * 2 + first * 9 + second * 2) % 64
}

/// `NAMES` by `slot`, so that an element's name is compared with at most one candidate.
const TABLE: [Option<(&str, Name)>; 64] = {
    let mut table = [None; 64];
    let mut i = 0;
    while i < NAMES.len() {
        let at = slot(NAMES[i].0.as_bytes());
        assert!(table[at].is_none(), "two element names share a slot");
        table[at] = Some(NAMES[i]);
        i += 1;
    }
    table
};

fn name_of(local: &str) -> Name {
    match TABLE.get(slot(local.as_bytes())) {
        Some(Some((name, known))) if same(name, local) => *known,
        _ => Name::Other,
    }
}

/// What the current element's text is collected for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    ResponseCode,
    MessageText,
    BackOff,
    FaultCode,
    FaultString,
    Start,
    End,
    ShowAs,
    Subject,
    IsPrivate,
    Sensitivity,
    AllDay,
}

impl Field {
    fn of_appointment(self) -> bool {
        matches!(
            self,
            Field::Start
                | Field::End
                | Field::ShowAs
                | Field::Subject
                | Field::IsPrivate
                | Field::Sensitivity
                | Field::AllDay
        )
    }
}

/// Text of a field: borrowed from the response unless it had to be decoded or joined.
type Text<'a> = Cow<'a, str>;

/// One appointment being read.
#[derive(Default)]
struct ItemAcc<'a> {
    start: Option<Text<'a>>,
    end: Option<Text<'a>>,
    show_as: Option<Text<'a>>,
    subject: Option<Text<'a>>,
    is_private: Option<Text<'a>>,
    sensitivity: Option<Text<'a>>,
    all_day: Option<Text<'a>>,
    duplicate: Option<&'static str>,
}

impl<'a> ItemAcc<'a> {
    fn slot(&mut self, field: Field) -> Option<(&mut Option<Text<'a>>, &'static str)> {
        Some(match field {
            Field::Start => (&mut self.start, "start"),
            Field::End => (&mut self.end, "end"),
            Field::ShowAs => (&mut self.show_as, "show-as"),
            Field::Subject => (&mut self.subject, "subject"),
            Field::IsPrivate => (&mut self.is_private, "IsPrivate"),
            Field::Sensitivity => (&mut self.sensitivity, "Sensitivity"),
            Field::AllDay => (&mut self.all_day, "IsAllDayEvent"),
            _ => return None,
        })
    }

    /// The appointment, `None` for show-as values the rules ignore (NoData, unknown, missing),
    /// or why it cannot be read.
    fn finish(self) -> Result<Option<Appointment>, String> {
        if let Some(what) = self.duplicate {
            return Err(format!("an appointment has its {what} twice"));
        }
        let time = |text: Option<&str>, what: &str| -> Result<i64, String> {
            let text = text.ok_or_else(|| format!("an appointment has no {what} time"))?;
            parse_datetime(text, 0)
                .map_err(|e| format!("an appointment has a bad {what} time: {e}"))
        };
        let start = time(self.start.as_deref(), "start")?;
        let end = time(self.end.as_deref(), "end")?;
        if end < start {
            return Err(format!(
                "an appointment ends before it starts ({} < {})",
                crate::time::format_rfc3339(end),
                crate::time::format_rfc3339(start)
            ));
        }
        let flag = |text: Option<&str>, what: &str| -> Result<bool, String> {
            match text.map(str::trim) {
                None => Ok(false),
                Some("true" | "1") => Ok(true),
                Some("false" | "0") => Ok(false),
                Some(other) => Err(format!(
                    "an appointment has {what} '{other}', not a boolean"
                )),
            }
        };
        let is_private = flag(self.is_private.as_deref(), "IsPrivate")?;
        let all_day = flag(self.all_day.as_deref(), "IsAllDayEvent")?;
        let sensitive = matches!(
            self.sensitivity.as_deref().map(str::trim),
            Some("Private" | "Confidential")
        );
        let show_as = match self.show_as.as_deref().map(str::trim) {
            Some("Free") => ShowAs::Free,
            Some("Tentative") => ShowAs::Tentative,
            Some("Busy") => ShowAs::Busy,
            Some("OOF") => ShowAs::Oof,
            Some("WorkingElsewhere") => ShowAs::WorkingElsewhere,
            _ => return Ok(None),
        };
        Ok(Some(Appointment {
            start,
            end,
            show_as,
            subject: self.subject.map(Cow::into_owned),
            private: is_private || sensitive,
            all_day,
        }))
    }
}

/// One mailbox's part of the response being read.
#[derive(Default)]
struct MailboxAcc<'a> {
    class: Option<Text<'a>>,
    code: Option<Text<'a>>,
    message: Option<Text<'a>>,
    back_off: Option<Text<'a>>,
    bad: Option<String>,
}

impl MailboxAcc<'_> {
    /// The mailbox's result, taking its appointments out of `read` (which is left empty).
    fn finish(self, read: &mut Vec<Appointment>) -> Result<MailboxResult, Option<Duration>> {
        // Moved out into a vector of exactly their number: one allocation per mailbox, where
        // growing each mailbox's own vector took three and a fourth to shrink it. The daemon
        // holds two sets of calendars for a moment in each poll, so unused capacity would
        // also count in its peak (about 1.3 MB for 2,000 mailboxes, ess-sim bench, massif).
        let mut appointments = Vec::with_capacity(read.len());
        appointments.append(read);
        let code = self.code.as_deref().unwrap_or_default().trim();
        if code == "ErrorServerBusy" {
            return Err(back_off(self.back_off.as_deref()));
        }
        if self.class.as_deref().map(str::trim) == Some("Error") {
            let code = if code.is_empty() { "Error" } else { code };
            return Ok(Err(MailboxError {
                code: code.to_string(),
                message: self
                    .message
                    .as_deref()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            }));
        }
        if let Some(why) = self.bad {
            return Ok(Err(MailboxError {
                code: BAD_APPOINTMENT.to_string(),
                message: format!("Exchange sent an appointment that cannot be read: {why}"),
            }));
        }
        Ok(Ok(appointments))
    }
}

fn back_off(text: Option<&str>) -> Option<Duration> {
    text?.trim().parse::<u64>().ok().map(Duration::from_millis)
}

/// The names that differ between the two operations.
struct Names {
    response: Name,
    unit: Name,
    item: Name,
}

/// Everything read so far.
struct State<'a> {
    op: Operation,
    names: Names,
    /// The names of the open elements.
    stack: Vec<Name>,
    /// How many of the open elements are a `Fault` and a `MessageXml`.
    in_fault: usize,
    in_message_xml: usize,
    results: Vec<MailboxResult>,
    /// The appointments of the mailbox being read; one vector for all mailboxes.
    appointments: Vec<Appointment>,
    busy: Option<Option<Duration>>,
    mailbox: Option<MailboxAcc<'a>>,
    item: Option<ItemAcc<'a>>,
    fault: Option<Fault>,
    fault_code: Text<'a>,
    /// The field being collected, the depth of its element, and its text so far.
    capture: Option<(Field, usize)>,
    text: Option<Text<'a>>,
    saw_body: bool,
    saw_response: bool,
}

/// Reads a response of `op`. `Err` holds why the text is not a usable response.
pub fn parse(text: &str, op: Operation) -> Result<Parsed, String> {
    let mut reader = Reader::with_namespaces(text, KNOWN);
    let names = match op {
        Operation::GetUserAvailability => Names {
            response: Name::GetUserAvailabilityResponse,
            unit: Name::FreeBusyResponse,
            item: Name::CalendarEvent,
        },
        Operation::FindItem => Names {
            response: Name::FindItemResponse,
            unit: Name::FindItemResponseMessage,
            item: Name::CalendarItem,
        },
    };
    let mut st = State {
        op,
        names,
        stack: Vec::new(),
        in_fault: 0,
        in_message_xml: 0,
        results: Vec::new(),
        appointments: Vec::new(),
        busy: None,
        mailbox: None,
        item: None,
        fault: None,
        fault_code: Cow::Borrowed(""),
        capture: None,
        text: None,
        saw_body: false,
        saw_response: false,
    };
    loop {
        let event = match reader.next() {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(e) => return Err(e.to_string()),
        };
        match event {
            Event::Start { ns, id, local } => st.start(ns, id, local, reader.attrs())?,
            Event::Text(t) => {
                if let Some((_, depth)) = st.capture {
                    if depth == st.stack.len() {
                        st.text = Some(match st.text.take() {
                            None => t,
                            Some(before) => Cow::Owned(before.into_owned() + &t),
                        });
                    }
                }
            }
            Event::End { .. } => st.end(),
        }
    }
    st.finish()
}

impl<'a> State<'a> {
    fn start(&mut self, ns: &str, id: NsId, local: &str, attrs: &[Attr<'a>]) -> Result<(), String> {
        let parent = self.stack.last().copied();
        // Exchange writes the fault's own children (faultcode, detail) unqualified.
        let name = if id.is_some() || (self.in_fault > 0 && ns.is_empty()) {
            name_of(local)
        } else {
            Name::Other
        };
        if parent.is_none() && !(id == Some(0) && name == Name::Envelope) {
            return Err(format!("the response is not a SOAP envelope but <{local}>"));
        }
        if self.capture.is_some() {
            // Leaf fields hold text only.
            return Err(format!("unexpected element <{local}> inside a text field"));
        }
        let parent = parent.unwrap_or(Name::Other);
        let names = &self.names;
        let in_mailbox = self.mailbox.is_some();
        use Name as N;
        let field = match (parent, name) {
            (N::Envelope, N::Body) => {
                self.saw_body = true;
                None
            }
            (N::Body, N::Fault) => {
                self.fault = Some(Fault {
                    code: String::new(),
                    message: String::new(),
                    back_off: None,
                });
                None
            }
            (N::Body, n) if n == names.response => {
                self.saw_response = true;
                None
            }
            (N::Fault, N::FaultCodeEl) => Some(Field::FaultCode),
            (N::Fault, N::FaultStringEl) => Some(Field::FaultString),
            (N::Detail, N::ResponseCodeEl) if self.fault.is_some() => Some(Field::ResponseCode),
            (N::Detail, N::MessageEl) if self.fault.is_some() => Some(Field::MessageText),
            (_, N::Value)
                if (in_mailbox || self.fault.is_some())
                    && self.in_message_xml > 0
                    && attrs.iter().any(|a| {
                        same(a.local, "Name") && same(&a.value, "BackOffMilliseconds")
                    }) =>
            {
                Some(Field::BackOff)
            }
            (_, n) if n == names.unit && self.saw_response => {
                let mut acc = MailboxAcc::default();
                if self.op == Operation::FindItem {
                    acc.class = class_of(attrs);
                }
                self.mailbox = Some(acc);
                self.appointments.clear();
                None
            }
            (N::FreeBusyResponse, N::ResponseMessage) => {
                if let Some(m) = self.mailbox.as_mut() {
                    m.class = class_of(attrs);
                }
                None
            }
            (N::ResponseMessage | N::FindItemResponseMessage, N::ResponseCodeEl) if in_mailbox => {
                Some(Field::ResponseCode)
            }
            (N::ResponseMessage | N::FindItemResponseMessage, N::MessageTextEl) if in_mailbox => {
                Some(Field::MessageText)
            }
            (N::CalendarEventArray | N::Items, n) if n == names.item && in_mailbox => {
                self.item = Some(ItemAcc::default());
                None
            }
            (N::CalendarEvent, N::StartTime) | (N::CalendarItem, N::StartEl) => Some(Field::Start),
            (N::CalendarEvent, N::EndTime) | (N::CalendarItem, N::EndEl) => Some(Field::End),
            (N::CalendarEvent, N::BusyType) | (N::CalendarItem, N::LegacyFreeBusyStatus) => {
                Some(Field::ShowAs)
            }
            (N::CalendarEventDetails | N::CalendarItem, N::SubjectEl) => Some(Field::Subject),
            (N::CalendarEventDetails, N::IsPrivateEl) => Some(Field::IsPrivate),
            (N::CalendarItem, N::SensitivityEl) => Some(Field::Sensitivity),
            (N::CalendarItem, N::IsAllDayEvent) => Some(Field::AllDay),
            _ => None,
        };
        // Appointment fields only count inside an appointment we are reading.
        let field = field.filter(|f| self.item.is_some() || !f.of_appointment());
        self.stack.push(name);
        match name {
            N::Fault => self.in_fault += 1,
            N::MessageXml => self.in_message_xml += 1,
            _ => {}
        }
        if let Some(f) = field {
            self.capture = Some((f, self.stack.len()));
            self.text = None;
        }
        Ok(())
    }

    fn end(&mut self) {
        let depth = self.stack.len();
        let name = self.stack.pop().unwrap_or(Name::Other);
        match name {
            Name::Fault => self.in_fault = self.in_fault.saturating_sub(1),
            Name::MessageXml => self.in_message_xml = self.in_message_xml.saturating_sub(1),
            _ => {}
        }
        if let Some((field, at)) = self.capture {
            if at == depth {
                self.capture = None;
                let text = self.text.take().unwrap_or_default();
                self.store(field, text);
            }
        }
        if name == self.names.item
            && matches!(
                self.stack.last(),
                Some(Name::CalendarEventArray | Name::Items)
            )
        {
            if let (Some(acc), Some(m)) = (self.item.take(), self.mailbox.as_mut()) {
                match acc.finish() {
                    Ok(Some(a)) => self.appointments.push(a),
                    Ok(None) => {}
                    Err(why) => {
                        m.bad.get_or_insert(why);
                    }
                }
            }
        }
        if name == self.names.unit {
            if let Some(acc) = self.mailbox.take() {
                match acc.finish(&mut self.appointments) {
                    Ok(r) => self.results.push(r),
                    Err(wait) => {
                        self.busy = Some(wait.or(self.busy.flatten()));
                        self.results.push(Ok(Vec::new()));
                    }
                }
            }
        }
    }

    fn store(&mut self, field: Field, text: Text<'a>) {
        match field {
            Field::FaultCode => self.fault_code = text,
            Field::FaultString => {
                if let Some(f) = self.fault.as_mut() {
                    if f.message.is_empty() {
                        f.message = text.trim().to_string();
                    }
                }
            }
            Field::ResponseCode | Field::MessageText | Field::BackOff => {
                if let Some(m) = self.mailbox.as_mut() {
                    match field {
                        Field::ResponseCode => m.code = Some(text),
                        Field::MessageText => m.message = Some(text),
                        _ => m.back_off = Some(text),
                    }
                } else if let Some(f) = self.fault.as_mut() {
                    match field {
                        Field::ResponseCode => f.code = text.trim().to_string(),
                        // The detail's message is the same sentence as faultstring, but it is
                        // the one Exchange fills in when it localises faultstring.
                        Field::MessageText => f.message = text.trim().to_string(),
                        _ => f.back_off = back_off(Some(&text)),
                    }
                }
            }
            _ => {
                if let Some(acc) = self.item.as_mut() {
                    let duplicate = match acc.slot(field) {
                        Some((slot, what)) if slot.is_some() => Some(what),
                        Some((slot, _)) => {
                            *slot = Some(text);
                            None
                        }
                        None => None,
                    };
                    if let Some(what) = duplicate {
                        acc.duplicate.get_or_insert(what);
                    }
                }
            }
        }
    }

    fn finish(self) -> Result<Parsed, String> {
        if !self.saw_body {
            return Err("the SOAP envelope has no Body".to_string());
        }
        if let Some(mut f) = self.fault {
            if f.code.is_empty() {
                f.code = self
                    .fault_code
                    .rsplit(':')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
            }
            return Ok(Parsed::Fault(f));
        }
        if let Some(wait) = self.busy {
            return Ok(Parsed::Busy(wait));
        }
        if !self.saw_response {
            return Err(format!(
                "the SOAP body holds no {}",
                self.op.response_name()
            ));
        }
        Ok(Parsed::Mailboxes(self.results))
    }
}

fn class_of<'a>(attrs: &[Attr<'a>]) -> Option<Text<'a>> {
    attrs
        .iter()
        .find(|a| same(a.local, "ResponseClass") && a.ns.is_empty())
        .map(|a| a.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339;

    const DETAILED: &str =
        include_str!("../../../tests/fixtures/ews/responses/availability-detailed.xml");
    const BUSY: &str =
        include_str!("../../../tests/fixtures/ews/responses/availability-server-busy.xml");
    const FIND: &str = include_str!("../../../tests/fixtures/ews/responses/finditem.xml");
    const FIND_ERROR: &str =
        include_str!("../../../tests/fixtures/ews/responses/finditem-error.xml");
    const FAULT_BUSY: &str =
        include_str!("../../../tests/fixtures/ews/responses/fault-server-busy.xml");
    const FAULT_SCHEMA: &str =
        include_str!("../../../tests/fixtures/ews/responses/fault-schema-validation.xml");
    const FAULT_VERSION: &str =
        include_str!("../../../tests/fixtures/ews/responses/fault-invalid-server-version.xml");

    /// A compact, readable rendering of what was parsed, one line per mailbox.
    fn render(parsed: &Result<Parsed, String>) -> String {
        match parsed {
            Err(e) => format!("ERR {e}"),
            Ok(Parsed::Busy(w)) => format!("BUSY {w:?}"),
            Ok(Parsed::Fault(f)) => format!("FAULT {} {:?} {:?}", f.code, f.message, f.back_off),
            Ok(Parsed::Mailboxes(m)) => m
                .iter()
                .map(|r| match r {
                    Err(e) => format!("error {} {:?}", e.code, e.message),
                    Ok(apps) => apps
                        .iter()
                        .map(|a| {
                            let mut s = format!(
                                "{} {}..{}",
                                a.show_as.name(),
                                format_rfc3339(a.start),
                                format_rfc3339(a.end)
                            );
                            if let Some(sub) = &a.subject {
                                s.push_str(&format!(" {sub:?}"));
                            }
                            if a.private {
                                s.push_str(" private");
                            }
                            if a.all_day {
                                s.push_str(" all-day");
                            }
                            s
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                })
                .map(|l| format!("[{l}]"))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn check(text: &str, op: Operation, expect: &str) {
        let got = render(&parse(text, op));
        assert_eq!(got, expect.trim(), "input:\n{text}");
    }

    /// Wraps a FreeBusyResponse's CalendarEventArray content into a whole response.
    fn availability(events: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetUserAvailabilityResponse xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><FreeBusyResponseArray><FreeBusyResponse><ResponseMessage ResponseClass="Success"><ResponseCode>NoError</ResponseCode></ResponseMessage><FreeBusyView><FreeBusyViewType xmlns="http://schemas.microsoft.com/exchange/services/2006/types">Detailed</FreeBusyViewType><CalendarEventArray xmlns="http://schemas.microsoft.com/exchange/services/2006/types">{events}</CalendarEventArray></FreeBusyView></FreeBusyResponse><FreeBusyResponse><ResponseMessage ResponseClass="Success"><ResponseCode>NoError</ResponseCode></ResponseMessage><FreeBusyView><FreeBusyViewType xmlns="http://schemas.microsoft.com/exchange/services/2006/types">FreeBusy</FreeBusyViewType><CalendarEventArray xmlns="http://schemas.microsoft.com/exchange/services/2006/types"><CalendarEvent><StartTime>2026-12-01T09:00:00</StartTime><EndTime>2026-12-01T10:00:00</EndTime><BusyType>Busy</BusyType></CalendarEvent></CalendarEventArray></FreeBusyView></FreeBusyResponse></FreeBusyResponseArray></GetUserAvailabilityResponse></s:Body></s:Envelope>"#
        )
    }

    const OTHER: &str = "[Busy 2026-12-01T09:00:00Z..2026-12-01T10:00:00Z]";

    #[test]
    fn element_names() {
        use Name as N;
        let cases = [
            ("End", N::EndEl),
            ("Body", N::Body),
            ("Items", N::Items),
            ("Value", N::Value),
            ("Start", N::StartEl),
            ("Fault", N::Fault),
            ("detail", N::Detail),
            ("EndTime", N::EndTime),
            ("Subject", N::SubjectEl),
            ("Message", N::MessageEl),
            ("BusyType", N::BusyType),
            ("Envelope", N::Envelope),
            ("StartTime", N::StartTime),
            ("IsPrivate", N::IsPrivateEl),
            ("faultcode", N::FaultCodeEl),
            ("MessageXml", N::MessageXml),
            ("MessageText", N::MessageTextEl),
            ("Sensitivity", N::SensitivityEl),
            ("faultstring", N::FaultStringEl),
            ("CalendarItem", N::CalendarItem),
            ("ResponseCode", N::ResponseCodeEl),
            ("CalendarEvent", N::CalendarEvent),
            ("IsAllDayEvent", N::IsAllDayEvent),
            ("ResponseMessage", N::ResponseMessage),
            ("FreeBusyResponse", N::FreeBusyResponse),
            ("FindItemResponse", N::FindItemResponse),
            ("CalendarEventArray", N::CalendarEventArray),
            ("CalendarEventDetails", N::CalendarEventDetails),
            ("LegacyFreeBusyStatus", N::LegacyFreeBusyStatus),
            ("FindItemResponseMessage", N::FindItemResponseMessage),
            (
                "GetUserAvailabilityResponse",
                N::GetUserAvailabilityResponse,
            ),
            ("", N::Other),
            ("end", N::Other),
            ("Subjects", N::Other),
            ("FreeBusyView", N::Other),
            ("calendarEvent", N::Other),
            // The slot of a known name, but another name.
            ("FreeBusyResponsX", N::Other),
            ("Enx", N::Other),
        ];
        for (local, expect) in cases {
            assert_eq!(name_of(local), expect, "{local}");
        }
    }

    #[test]
    fn documented_responses() {
        use Operation::*;
        check(
            DETAILED,
            GetUserAvailability,
            r#"
[WorkingElsewhere 2006-10-16T13:00:00Z..2006-10-16T13:30:00Z "Meet"; Busy 2006-10-16T14:00:00Z..2006-10-16T15:00:00Z "R&D <weekly> März <raw> & more"; OOF 2006-10-16T16:00:00Z..2006-10-16T17:00:00Z private]
[error ErrorNoFreeBusyAccess "You don't have permission to view free/busy information for this user."]
[Tentative 2006-10-16T09:00:00Z..2006-10-16T10:00:00Z]"#,
        );
        check(BUSY, GetUserAvailability, "BUSY Some(1.5s)");
        check(
            FIND,
            FindItem,
            r#"[Busy 2026-12-01T09:00:00Z..2026-12-01T10:00:00Z "Weekly sync (DND)"; OOF 2026-12-01T10:00:00Z..2026-12-01T11:00:00Z "Doctor" private; WorkingElsewhere 2026-12-02T00:00:00Z..2026-12-03T00:00:00Z "Offsite" private all-day; Free 2026-12-01T13:00:00Z..2026-12-01T13:30:00Z]"#,
        );
        check(
            FIND_ERROR,
            FindItem,
            r#"[error ErrorNonExistentMailbox "The SMTP address has no mailbox associated with it."]"#,
        );
        check(
            FAULT_BUSY,
            FindItem,
            r#"FAULT ErrorServerBusy "The server cannot service this request right now. Try again later." Some(297.749s)"#,
        );
        check(
            FAULT_SCHEMA,
            GetUserAvailability,
            r#"FAULT ErrorSchemaValidation "The request failed schema validation." None"#,
        );
        check(
            FAULT_VERSION,
            GetUserAvailability,
            r#"FAULT ErrorInvalidServerVersion "The specified server version is invalid." None"#,
        );
        // The wrong operation's response is not mistaken for the right one.
        check(
            FIND,
            GetUserAvailability,
            "ERR the SOAP body holds no GetUserAvailabilityResponse",
        );
    }

    #[test]
    fn calendar_events() {
        let ev = |inner: &str| availability(&format!("<CalendarEvent>{inner}</CalendarEvent>"));
        let t = "<StartTime>2026-12-01T08:00:00</StartTime><EndTime>2026-12-01T08:30:00</EndTime>";
        let bad = |why: &str| {
            format!("[error InvalidAppointment \"Exchange sent an appointment that cannot be read: {why}\"]\n{OTHER}")
        };
        let cases: Vec<(String, String)> = vec![
            (ev(&format!("{t}<BusyType>Free</BusyType>")), format!("[Free 2026-12-01T08:00:00Z..2026-12-01T08:30:00Z]\n{OTHER}")),
            (ev(&format!("{t}<BusyType>NoData</BusyType>")), format!("[]\n{OTHER}")),
            (ev(&format!("{t}<BusyType>Sleeping</BusyType>")), format!("[]\n{OTHER}")),
            (ev(t), format!("[]\n{OTHER}")),
            (
                ev(&format!("{t}<BusyType>Busy</BusyType><CalendarEventDetails><Subject/><IsMeeting>false</IsMeeting><IsRecurring>false</IsRecurring><IsException>false</IsException><IsReminderSet>false</IsReminderSet><IsPrivate>1</IsPrivate></CalendarEventDetails>")),
                format!("[Busy 2026-12-01T08:00:00Z..2026-12-01T08:30:00Z \"\" private]\n{OTHER}"),
            ),
            (
                ev("<StartTime>2026-12-01T08:00:00+02:00</StartTime><EndTime>2026-12-01T07:30:00.1234567Z</EndTime><BusyType>Busy</BusyType>"),
                format!("[Busy 2026-12-01T06:00:00Z..2026-12-01T07:30:00Z]\n{OTHER}"),
            ),
            (ev("<EndTime>2026-12-01T08:30:00</EndTime><BusyType>Busy</BusyType>"), bad("an appointment has no start time")),
            (ev("<StartTime>2026-12-01T08:00:00</StartTime><BusyType>Busy</BusyType>"), bad("an appointment has no end time")),
            (
                ev("<StartTime>2026-13-01T08:00:00</StartTime><EndTime>2026-12-01T08:30:00</EndTime><BusyType>Busy</BusyType>"),
                bad("an appointment has a bad start time: '2026-13-01T08:00:00' has a field out of range"),
            ),
            (
                ev("<StartTime>2026-12-01T08:00:00</StartTime><EndTime>tomorrow</EndTime><BusyType>Busy</BusyType>"),
                bad("an appointment has a bad end time: 'tomorrow' is not a date-time of the form 2026-12-01T09:30:00Z or 2026-12-01T10:30:00+01:00"),
            ),
            (
                ev("<StartTime>2026-12-01T09:00:00</StartTime><EndTime>2026-12-01T08:00:00</EndTime><BusyType>Busy</BusyType>"),
                bad("an appointment ends before it starts (2026-12-01T08:00:00Z < 2026-12-01T09:00:00Z)"),
            ),
            (
                ev(&format!("{t}<StartTime>2026-12-01T07:00:00</StartTime><BusyType>Busy</BusyType>")),
                bad("an appointment has its start twice"),
            ),
            (
                ev(&format!("{t}<BusyType>Busy</BusyType><CalendarEventDetails><IsPrivate>maybe</IsPrivate></CalendarEventDetails>")),
                bad("an appointment has IsPrivate 'maybe', not a boolean"),
            ),
            // A bad appointment spoils its mailbox even when NoData would have dropped it.
            (
                availability(&format!("<CalendarEvent><BusyType>NoData</BusyType></CalendarEvent><CalendarEvent>{t}<BusyType>Busy</BusyType></CalendarEvent>")),
                bad("an appointment has no start time"),
            ),
            // Elements of other namespaces are skipped with their content, whatever their names.
            (
                ev(&format!("{t}<BusyType>Busy</BusyType><x:Subject xmlns:x=\"urn:other\">no</x:Subject><x:Extra xmlns:x=\"urn:other\"><StartTime>bad</StartTime></x:Extra>")),
                format!("[Busy 2026-12-01T08:00:00Z..2026-12-01T08:30:00Z]\n{OTHER}"),
            ),
            // A text field with an element inside is not a response we understand.
            (
                ev(&format!("{t}<BusyType>Busy<b/></BusyType>")),
                "ERR unexpected element <b> inside a text field".to_string(),
            ),
        ];
        for (input, expect) in cases {
            check(&input, Operation::GetUserAvailability, &expect);
        }
    }

    #[test]
    fn prefixes_do_not_matter() {
        let mut prefixed = DETAILED.replace(
            "<GetUserAvailabilityResponse xmlns=",
            "<q:GetUserAvailabilityResponse xmlns:q=",
        );
        for name in [
            "GetUserAvailabilityResponse",
            "FreeBusy",
            "ResponseMessage",
            "ResponseCode",
            "MessageText",
            "DescriptiveLinkKey",
        ] {
            prefixed = prefixed
                .replace(&format!("<{name}"), &format!("<q:{name}"))
                .replace(&format!("</{name}"), &format!("</q:{name}"));
        }
        assert_eq!(
            render(&parse(&prefixed, Operation::GetUserAvailability)),
            render(&parse(DETAILED, Operation::GetUserAvailability))
        );
        // Without the namespace declaration the elements are not EWS's: no mailbox is read (and
        // the transport reports the count mismatch).
        let unqualified = DETAILED.replace(
            "<GetUserAvailabilityResponse xmlns=\"http://schemas.microsoft.com/exchange/services/2006/messages\"",
            "<GetUserAvailabilityResponse",
        );
        check(
            &unqualified,
            Operation::GetUserAvailability,
            "ERR the SOAP body holds no GetUserAvailabilityResponse",
        );
        let renamed = FIND
            .replace("xmlns:m=", "xmlns:msg=")
            .replace("<m:", "<msg:")
            .replace("</m:", "</msg:")
            .replace("xmlns:t=", "xmlns:typ=")
            .replace("<t:", "<typ:")
            .replace("</t:", "</typ:")
            .replace("<s:", "<soap:")
            .replace("</s:", "</soap:")
            .replace("xmlns:s=", "xmlns:soap=");
        assert_eq!(
            render(&parse(&renamed, Operation::FindItem)),
            render(&parse(FIND, Operation::FindItem))
        );
    }

    #[test]
    fn hostile_documents() {
        use Operation::*;
        let deep = format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>{}{}</s:Body></s:Envelope>"#,
            "<a>".repeat(200),
            "</a>".repeat(200)
        );
        let huge_subject = availability(&format!(
            "<CalendarEvent><StartTime>2026-12-01T08:00:00</StartTime><EndTime>2026-12-01T08:30:00</EndTime><BusyType>Busy</BusyType><CalendarEventDetails><Subject>{}</Subject></CalendarEventDetails></CalendarEvent>",
            "x&amp;".repeat(400_000)
        ));
        let cases: Vec<(String, Operation, &str)> = vec![
            (deep, FindItem, "ERR XML nested deeper than 64 levels"),
            (
                r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&lol2;</s:Body></s:Envelope>"#.to_string(),
                FindItem,
                "ERR XML with a document type declaration is refused",
            ),
            (
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&lol;</s:Body></s:Envelope>"#.to_string(),
                FindItem,
                "ERR malformed XML: unknown entity or character reference 'lol'",
            ),
            (
                r#"<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>"#.to_string(),
                FindItem,
                "ERR XML with a document type declaration is refused",
            ),
            ("".to_string(), FindItem, "ERR the XML document ends early (truncated?)"),
            ("<html><body>Login</body></html>".to_string(), FindItem, "ERR the response is not a SOAP envelope but <html>"),
            (
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>"#.to_string(),
                FindItem,
                "ERR the SOAP body holds no FindItemResponse",
            ),
        ];
        for (input, op, expect) in cases {
            let got = render(&parse(&input, op));
            assert_eq!(
                got,
                expect,
                "input starts {:?}",
                &input[..input.len().min(80)]
            );
        }
        let parsed = parse(&huge_subject, GetUserAvailability);
        let Ok(Parsed::Mailboxes(m)) = parsed else {
            panic!("huge subject: {}", render(&parsed))
        };
        let subject = m[0]
            .as_ref()
            .map(|a| a[0].subject.clone().unwrap_or_default());
        assert_eq!(subject.map(|s| s.len()), Ok(800_000));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for (text, op) in [
            (FIND, Operation::FindItem),
            (DETAILED, Operation::GetUserAvailability),
            (FAULT_BUSY, Operation::FindItem),
        ] {
            let end = text.trim_end().len();
            for cut in 0..end {
                let Some(prefix) = text.get(..cut) else {
                    continue;
                };
                let got = parse(prefix, op);
                assert!(got.is_err(), "cut at {cut} gave {}", render(&got));
            }
        }
    }
}
