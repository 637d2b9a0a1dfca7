//! The chat-presence call: an XML-RPC `methodCall` to a STARFACE module entry point.
//!
//! STARFACE's REST API cannot set the chat presence, but a module function can, and modules can
//! publish XML-RPC entry points (`docs/contract.md`, section 7.2). The call carries one struct with
//! the four inputs of the module function `ChangeUserPresence`. Building the call and reading the
//! answer are pure functions; the transport lives in `rest.rs`.

use crate::model::Presence;
use crate::xml::{self, Event, Reader};

/// The four inputs of the module function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatCall<'a> {
    /// The STARFACE user id; XML-RPC integers are 32-bit.
    pub account_id: i32,
    /// `None` sends an empty `Chatpresence`, which the module reads as "leave it as it is".
    pub presence: Option<Presence>,
    /// `None` sends `ChangeText = false` and an empty text.
    pub text: Option<&'a str>,
}

/// A `faultResponse` from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub code: Option<i64>,
    pub message: String,
}

/// The `methodCall` document for `method` with the call's struct as the only parameter.
pub fn build_call(method: &str, call: &ChatCall<'_>) -> String {
    let presence = call.presence.map_or("", Presence::as_str);
    let (change_text, text) = match call.text {
        Some(text) => ("1", text),
        None => ("0", ""),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <methodCall><methodName>{}</methodName><params><param><value><struct>\
         <member><name>AccountID</name><value><int>{}</int></value></member>\
         <member><name>Chatpresence</name><value><string>{}</string></value></member>\
         <member><name>ChangeText</name><value><boolean>{}</boolean></value></member>\
         <member><name>ChatPresenceText</name><value><string>{}</string></value></member>\
         </struct></value></param></params></methodCall>\n",
        escape_text(method),
        call.account_id,
        presence,
        change_text,
        escape_text(text),
    )
}

/// Escapes text for element content with the shared escaping (which also drops characters XML
/// 1.0 cannot carry); a carriage return is written as a reference so that the receiver's
/// line-end normalisation does not turn it into a line feed.
pub fn escape_text(text: &str) -> String {
    xml::escape(text).replace('\r', "&#13;")
}

/// Reads the server's answer: `Ok(None)` for success, `Ok(Some(fault))` for a `faultResponse`,
/// `Err` when the text is not well-formed XML. Any other answer counts as success, whatever the
/// method returned (an empty body included: some module entry points return nothing).
pub fn parse_response(text: &str) -> Result<Option<Fault>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut reader = Reader::new(text);
    let mut path: Vec<&str> = Vec::new();
    let mut in_fault = false;
    let mut fault_seen = false;
    let mut member_name = String::new();
    let mut member_value = String::new();
    let mut code = None;
    let mut message = None;
    loop {
        let event = reader
            .next()
            .map_err(|e| format!("the answer is not well-formed XML: {e}"))?;
        match event {
            None => break,
            Some(Event::Start { local, .. }) => {
                if local == "fault" && path.as_slice() == ["methodResponse"] {
                    in_fault = true;
                    fault_seen = true;
                }
                if local == "member" {
                    member_name.clear();
                    member_value.clear();
                }
                path.push(local);
            }
            Some(Event::End { local, .. }) => {
                path.pop();
                if in_fault && local == "member" {
                    let value = member_value.trim();
                    match member_name.trim() {
                        "faultCode" => code = value.parse().ok(),
                        "faultString" => message = Some(value.to_string()),
                        _ => {}
                    }
                }
                if local == "fault" {
                    in_fault = false;
                }
            }
            Some(Event::Text(text)) if in_fault => match path.last().copied() {
                Some("name") => member_name.push_str(&text),
                Some("member" | "struct" | "fault") | None => {}
                Some(_) => member_value.push_str(&text),
            },
            Some(Event::Text(_)) => {}
        }
    }
    if fault_seen {
        return Ok(Some(Fault {
            code,
            message: message.unwrap_or_default(),
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fault's code and message, or the error text.
    type Expect<'a> = Result<Option<(Option<i64>, &'a str)>, &'a str>;

    fn check_response(text: &str, expect: Expect<'_>) {
        let got = parse_response(text);
        let got = match &got {
            Ok(Some(f)) => Ok(Some((f.code, f.message.as_str()))),
            Ok(None) => Ok(None),
            Err(e) => Err(e.as_str()),
        };
        assert_eq!(got, expect, "response: {text}");
    }

    #[test]
    fn builds_the_struct_with_all_four_members() {
        let call = ChatCall {
            account_id: 42,
            presence: Some(Presence::DoNotDisturb),
            text: Some("Weekly <sync> & \"more\" ä 😀"),
        };
        let xml = build_call("chat.set", &call);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall><methodName>chat.set</methodName>\
             <params><param><value><struct>\
             <member><name>AccountID</name><value><int>42</int></value></member>\
             <member><name>Chatpresence</name><value><string>DO_NOT_DISTURB</string></value></member>\
             <member><name>ChangeText</name><value><boolean>1</boolean></value></member>\
             <member><name>ChatPresenceText</name><value><string>Weekly &lt;sync&gt; &amp; &quot;more&quot; ä 😀</string></value></member>\
             </struct></value></param></params></methodCall>\n"
        );
    }

    #[test]
    fn absent_presence_and_text_are_empty_and_change_text_false() {
        let call = ChatCall {
            account_id: -1,
            presence: None,
            text: None,
        };
        let xml = build_call("a&b", &call);
        assert!(xml.contains("<methodName>a&amp;b</methodName>"));
        assert!(xml.contains("<int>-1</int>"));
        assert!(xml.contains("<name>Chatpresence</name><value><string></string>"));
        assert!(xml.contains("<boolean>0</boolean>"));
        assert!(xml.contains("<name>ChatPresenceText</name><value><string></string>"));
    }

    #[test]
    fn escaping_table() {
        let cases = [
            ("plain", "plain"),
            ("a<b>c&d", "a&lt;b&gt;c&amp;d"),
            ("'\"", "&apos;&quot;"),
            ("line\r\nnext\ttab", "line&#13;\nnext\ttab"),
            ("bell\u{7}nul\u{0}", "bellnul"),
            ("x\u{fffe}\u{ffff}y", "xy"),
            ("Grüße 😀", "Grüße 😀"),
        ];
        for (input, expect) in cases {
            assert_eq!(escape_text(input), expect, "{input:?}");
        }
    }

    #[test]
    fn response_table() {
        let fault = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n\
                     <member>\n<name>faultCode</name>\n<value><int>1</int></value>\n</member>\n\
                     <member>\n<name>faultString</name>\n<value><string>&lt;class 'Exception'&gt;:no user &#228;</string></value>\n</member>\n\
                     </struct></value>\n</fault>\n</methodResponse>\n";
        let fault_bare = "<methodResponse><fault><value><struct>\
                          <member><name>faultString</name><value>bare <![CDATA[<text>]]></value></member>\
                          <member><name>faultCode</name><value><i4>x</i4></value></member>\
                          </struct></value></fault></methodResponse>";
        let cases: &[(&str, Expect<'_>)] = &[
            (
                "<?xml version=\"1.0\"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>",
                Ok(None),
            ),
            ("<methodResponse><params/></methodResponse>", Ok(None)),
            ("", Ok(None)),
            // A member named "fault" in an ordinary answer is not a fault.
            (
                "<methodResponse><params><param><value><struct><member><name>fault</name><value>x</value></member></struct></value></param></params></methodResponse>",
                Ok(None),
            ),
            (fault, Ok(Some((Some(1), "<class 'Exception'>:no user ä")))),
            (fault_bare, Ok(Some((None, "bare <text>")))),
            (
                "<methodResponse><fault/></methodResponse>",
                Ok(Some((None, ""))),
            ),
            (
                "<methodResponse><fault></fault></methodResponse>",
                Ok(Some((None, ""))),
            ),
        ];
        for (text, expect) in cases {
            check_response(text, *expect);
        }
        for broken in [
            "<methodResponse><params>",
            "<methodResponse></params>",
            "<methodResponse><fault><value><string>a &bogus; b</string></value></fault></methodResponse>",
            "<methodResponse><fault><value>a & b</value></fault></methodResponse>",
            "<!DOCTYPE x [<!ENTITY a 'b'>]><methodResponse/>",
            "<a><b></a>",
            "not xml <",
        ] {
            let err = parse_response(broken).unwrap_err();
            assert!(err.starts_with("the answer is not well-formed XML: "), "{broken}: {err}");
        }
    }

    #[test]
    fn truncated_answers_never_panic() {
        let text = "<methodResponse><fault><value><struct><member><name>faultString</name>\
                    <value><string>&#228;&amp;</string></value></member></struct></value></fault></methodResponse>";
        for cut in 0..text.len() {
            let _ = parse_response(&text[..cut]);
        }
    }
}
