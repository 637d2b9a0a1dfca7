//! The SOAP requests we send to EWS, built as text (pure functions).
//!
//! Each shape is written once here and kept as a fixture under `tests/fixtures/ews/requests/`,
//! which `tests/ews-validate-fixtures.sh` checks against Microsoft's schemas. Every value that
//! comes from outside (e-mail addresses) goes through `xml::escape`.

use crate::model::{Timestamp, Window};
use crate::time::format_rfc3339;
use crate::xml::escape;

/// SOAP 1.1 envelope namespace.
pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// EWS messages namespace.
pub const MESSAGES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// EWS types namespace.
pub const TYPES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// EWS errors namespace (SOAP fault details).
pub const ERRORS_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// The oldest schema version whose operations and values we use (WorkingElsewhere needs 2013).
pub const SERVER_VERSION: &str = "Exchange2013_SP1";

/// Exchange refuses more than 100 mailboxes in one GetUserAvailability request.
pub const MAX_AVAILABILITY_MAILBOXES: usize = 100;

/// The `SOAPAction` header value of an operation (Exchange ignores it, but SOAP 1.1 clients
/// send it, and some proxies in front of Exchange route on it).
pub fn soap_action(operation: &str) -> String {
    format!("\"http://schemas.microsoft.com/exchange/services/2006/messages/{operation}\"")
}

/// Wraps a body element in the envelope with the version header and, when `impersonate` is
/// given, the `ExchangeImpersonation` header for that SMTP address.
fn envelope(impersonate: Option<&str>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 800);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str(&format!(
        "<soap:Envelope xmlns:soap=\"{SOAP_NS}\" xmlns:m=\"{MESSAGES_NS}\" xmlns:t=\"{TYPES_NS}\">\n"
    ));
    out.push_str("  <soap:Header>\n");
    out.push_str(&format!(
        "    <t:RequestServerVersion Version=\"{SERVER_VERSION}\"/>\n"
    ));
    if let Some(smtp) = impersonate {
        out.push_str(&format!(
            "    <t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>{}</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>\n",
            escape(smtp)
        ));
    }
    out.push_str("  </soap:Header>\n  <soap:Body>\n");
    out.push_str(body);
    out.push_str("  </soap:Body>\n</soap:Envelope>\n");
    out
}

/// EWS `xs:dateTime` without a zone designator: with the UTC `TimeZone` block of the request,
/// Exchange reads it as UTC (and answers in UTC).
fn local_utc(t: Timestamp) -> String {
    let mut s = format_rfc3339(t);
    s.pop();
    s
}

/// The zone block that makes Exchange read and write all times of the request in UTC: no bias
/// and no daylight-saving transitions (month 0).
const UTC_TIME_ZONE: &str = "      <t:TimeZone>
        <t:Bias>0</t:Bias>
        <t:StandardTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>0</t:DayOrder><t:Month>0</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>
        <t:DaylightTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>0</t:DayOrder><t:Month>0</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime>
      </t:TimeZone>
";

/// A `GetUserAvailabilityRequest` for up to 100 mailboxes (the caller splits larger sets, see
/// `batches`), asking for the detailed view (each appointment, with subject where allowed).
pub fn get_user_availability(
    mailboxes: &[String],
    window: Window,
    impersonate: Option<&str>,
) -> String {
    let mut body = String::with_capacity(1000 + mailboxes.len() * 200);
    body.push_str("    <m:GetUserAvailabilityRequest>\n");
    body.push_str(UTC_TIME_ZONE);
    body.push_str("      <m:MailboxDataArray>\n");
    for mailbox in mailboxes {
        body.push_str(&format!(
            "        <t:MailboxData><t:Email><t:Address>{}</t:Address></t:Email><t:AttendeeType>Required</t:AttendeeType><t:ExcludeConflicts>false</t:ExcludeConflicts></t:MailboxData>\n",
            escape(mailbox)
        ));
    }
    body.push_str("      </m:MailboxDataArray>\n");
    body.push_str(&format!(
        "      <t:FreeBusyViewOptions>
        <t:TimeWindow><t:StartTime>{}</t:StartTime><t:EndTime>{}</t:EndTime></t:TimeWindow>
        <t:RequestedView>Detailed</t:RequestedView>
      </t:FreeBusyViewOptions>
",
        local_utc(window.start),
        local_utc(window.end)
    ));
    body.push_str("    </m:GetUserAvailabilityRequest>\n");
    envelope(impersonate, &body)
}

/// A `FindItem` over the calendar view of one mailbox: each occurrence of a recurring series is
/// its own item, and only the properties the rules need are asked for.
pub fn find_item(mailbox: &str, window: Window, impersonate: Option<&str>) -> String {
    let body = format!(
        "    <m:FindItem Traversal=\"Shallow\">
      <m:ItemShape>
        <t:BaseShape>IdOnly</t:BaseShape>
        <t:AdditionalProperties>
          <t:FieldURI FieldURI=\"item:Subject\"/>
          <t:FieldURI FieldURI=\"calendar:Start\"/>
          <t:FieldURI FieldURI=\"calendar:End\"/>
          <t:FieldURI FieldURI=\"calendar:LegacyFreeBusyStatus\"/>
          <t:FieldURI FieldURI=\"calendar:IsAllDayEvent\"/>
          <t:FieldURI FieldURI=\"item:Sensitivity\"/>
        </t:AdditionalProperties>
      </m:ItemShape>
      <m:CalendarView StartDate=\"{}\" EndDate=\"{}\"/>
      <m:ParentFolderIds>
        <t:DistinguishedFolderId Id=\"calendar\"><t:Mailbox><t:EmailAddress>{}</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>
      </m:ParentFolderIds>
    </m:FindItem>
",
        format_rfc3339(window.start),
        format_rfc3339(window.end),
        escape(mailbox)
    );
    envelope(impersonate, &body)
}

/// Splits the mailboxes into GetUserAvailability batches, in order.
pub fn batches(mailboxes: &[String]) -> std::slice::Chunks<'_, String> {
    mailboxes.chunks(MAX_AVAILABILITY_MAILBOXES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn window() -> Window {
        Window {
            start: parse_rfc3339("2026-12-01T08:00:00Z").unwrap_or_default(),
            end: parse_rfc3339("2026-12-02T09:00:00Z").unwrap_or_default(),
        }
    }

    fn check(text: &str, must: &[&str], must_not: &[&str]) {
        for m in must {
            assert!(text.contains(m), "missing {m:?} in\n{text}");
        }
        for m in must_not {
            assert!(!text.contains(m), "unexpected {m:?} in\n{text}");
        }
    }

    #[test]
    fn availability_request() {
        let boxes = vec![
            "a@example.com".to_string(),
            "b&c<d>@example.com".to_string(),
        ];
        check(
            &get_user_availability(&boxes, window(), None),
            &[
                "<t:RequestServerVersion Version=\"Exchange2013_SP1\"/>",
                "<t:Address>a@example.com</t:Address>",
                "<t:Address>b&amp;c&lt;d&gt;@example.com</t:Address>",
                "<t:StartTime>2026-12-01T08:00:00</t:StartTime>",
                "<t:EndTime>2026-12-02T09:00:00</t:EndTime>",
                "<t:RequestedView>Detailed</t:RequestedView>",
                "<t:Bias>0</t:Bias>",
            ],
            &["ExchangeImpersonation", "b&c"],
        );
        check(
            &get_user_availability(&boxes, window(), Some("a@example.com")),
            &["<t:ConnectingSID><t:SmtpAddress>a@example.com</t:SmtpAddress></t:ConnectingSID>"],
            &[],
        );
    }

    #[test]
    fn find_item_request() {
        check(
            &find_item("o'h\"x@example.com", window(), Some("o'h\"x@example.com")),
            &[
                "<m:FindItem Traversal=\"Shallow\">",
                "StartDate=\"2026-12-01T08:00:00Z\" EndDate=\"2026-12-02T09:00:00Z\"",
                "<t:DistinguishedFolderId Id=\"calendar\"><t:Mailbox><t:EmailAddress>o&apos;h&quot;x@example.com</t:EmailAddress>",
                "<t:SmtpAddress>o&apos;h&quot;x@example.com</t:SmtpAddress>",
                "FieldURI=\"calendar:LegacyFreeBusyStatus\"",
                "FieldURI=\"item:Sensitivity\"",
            ],
            &[],
        );
    }

    #[test]
    fn batching() {
        let boxes: Vec<String> = (0..250).map(|i| format!("u{i}@x")).collect();
        let sizes: Vec<usize> = batches(&boxes).map(<[String]>::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(batches(&boxes[..100]).count(), 1);
        assert_eq!(batches(&[]).count(), 0);
    }
}
