//! A bounded, namespace-aware pull reader over `xmlparser`, and text escaping for the XML we
//! write (SOAP, XML-RPC).
//!
//! Servers choose their prefixes freely (Exchange declares default namespaces, others use `m:`
//! and `t:`), so callers match on (namespace URI, local name), never on prefixes. Entities and
//! character references are decoded here, once. DTDs are refused outright: no response we read
//! has one, and refusing them closes the door on entity-expansion attacks.

use std::borrow::Cow;
use std::fmt;

use xmlparser::{ElementEnd, Token, Tokenizer};

/// The deepest element nesting we accept.
pub const MAX_DEPTH: usize = 64;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped rather than sent broken.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Why a document could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlError {
    /// Not well-formed at this line and column.
    Syntax { line: u32, col: u32, detail: String },
    /// Nested deeper than `MAX_DEPTH`.
    TooDeep,
    /// An end tag that does not match its start tag, or an undeclared prefix.
    Unbalanced { detail: String },
    /// An entity other than the five predefined ones, or a bad character reference.
    UnknownEntity { name: String },
    /// The document ended inside an element (truncated).
    UnexpectedEnd,
    /// A document type declaration.
    Dtd,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlError::Syntax { line, col, detail } => {
                write!(f, "malformed XML at line {line}, column {col}: {detail}")
            }
            XmlError::TooDeep => write!(f, "XML nested deeper than {MAX_DEPTH} levels"),
            XmlError::Unbalanced { detail } => write!(f, "malformed XML: {detail}"),
            XmlError::UnknownEntity { name } => write!(
                f,
                "malformed XML: unknown entity or character reference '{name}'"
            ),
            XmlError::UnexpectedEnd => write!(f, "the XML document ends early (truncated?)"),
            XmlError::Dtd => write!(f, "XML with a document type declaration is refused"),
        }
    }
}

impl std::error::Error for XmlError {}

/// Decodes the predefined entities and character references.
pub fn unescape(raw: &str) -> Result<Cow<'_, str>, XmlError> {
    if !raw.contains('&') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .filter(|&e| e <= 12)
            .ok_or_else(|| XmlError::UnknownEntity {
                name: after.chars().take(12).collect(),
            })?;
        let name = &after[..end];
        let bad = || XmlError::UnknownEntity {
            name: name.to_string(),
        };
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) =
                    name.strip_prefix("#x").or_else(|| name.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).map_err(|_| bad())?
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse::<u32>().map_err(|_| bad())?
                } else {
                    return Err(bad());
                };
                char::from_u32(code)
                    .filter(|&c| c != '\0')
                    .ok_or_else(bad)?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// An attribute with its namespace resolved (unprefixed attributes have no namespace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    pub ns: &'a str,
    pub local: &'a str,
    pub value: Cow<'a, str>,
}

/// What the reader yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// `<a/>` gives `Start` then `End`.
    Start {
        ns: &'a str,
        local: &'a str,
        attrs: Vec<Attr<'a>>,
    },
    End {
        ns: &'a str,
        local: &'a str,
    },
    /// Character data (decoded) or CDATA; whitespace-only text is reported too.
    Text(Cow<'a, str>),
}

struct Open<'a> {
    prefix: &'a str,
    local: &'a str,
    ns: &'a str,
    /// How many namespace bindings this element pushed.
    bindings: usize,
}

/// A start tag being read: prefix, local name, raw attributes (prefix, local name, value).
type PendingStart<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str, &'a str)>);

/// The pull reader.
pub struct Reader<'a> {
    tokens: Tokenizer<'a>,
    stack: Vec<Open<'a>>,
    /// (prefix, uri); the empty prefix is the default namespace.
    bindings: Vec<(&'a str, &'a str)>,
    /// The element being opened: its attributes arrive one token at a time.
    pending: Option<PendingStart<'a>>,
    queued_end: bool,
    seen_root: bool,
    done: bool,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader {
            tokens: Tokenizer::from(text),
            stack: Vec::new(),
            bindings: Vec::new(),
            pending: None,
            queued_end: false,
            seen_root: false,
            done: false,
        }
    }

    fn resolve(&self, prefix: &str) -> Result<&'a str, XmlError> {
        if prefix == "xml" {
            return Ok(XML_NS);
        }
        match self.bindings.iter().rev().find(|(p, _)| *p == prefix) {
            Some((_, uri)) => Ok(uri),
            None if prefix.is_empty() => Ok(""),
            None => Err(XmlError::Unbalanced {
                detail: format!("undeclared namespace prefix '{prefix}'"),
            }),
        }
    }

    /// Finishes the pending start tag: binds its namespaces, resolves names.
    fn open(&mut self) -> Result<Event<'a>, XmlError> {
        let Some((prefix, local, raw_attrs)) = self.pending.take() else {
            return Err(XmlError::Unbalanced {
                detail: "attribute outside a start tag".into(),
            });
        };
        if self.stack.len() >= MAX_DEPTH {
            return Err(XmlError::TooDeep);
        }
        let mut bindings = 0;
        for &(p, l, v) in &raw_attrs {
            if p == "xmlns" {
                self.bindings.push((l, v));
                bindings += 1;
            } else if p.is_empty() && l == "xmlns" {
                self.bindings.push(("", v));
                bindings += 1;
            }
        }
        let ns = self.resolve(prefix)?;
        let mut attrs = Vec::new();
        for &(p, l, v) in &raw_attrs {
            if p == "xmlns" || (p.is_empty() && l == "xmlns") {
                continue;
            }
            let ans = if p.is_empty() { "" } else { self.resolve(p)? };
            attrs.push(Attr {
                ns: ans,
                local: l,
                value: unescape(v)?,
            });
        }
        self.stack.push(Open {
            prefix,
            local,
            ns,
            bindings,
        });
        self.seen_root = true;
        Ok(Event::Start { ns, local, attrs })
    }

    fn close(&mut self) -> Result<Event<'a>, XmlError> {
        let open = self.stack.pop().ok_or_else(|| XmlError::Unbalanced {
            detail: "end tag without start tag".into(),
        })?;
        let keep = self.bindings.len() - open.bindings;
        self.bindings.truncate(keep);
        if self.stack.is_empty() {
            self.done = true;
        }
        Ok(Event::End {
            ns: open.ns,
            local: open.local,
        })
    }

    /// The next event; `Ok(None)` once the root element has closed (anything after it other
    /// than comments and whitespace is an error).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Event<'a>>, XmlError> {
        if self.queued_end {
            self.queued_end = false;
            return self.close().map(Some);
        }
        loop {
            let Some(token) = self.tokens.next() else {
                return if self.done && self.pending.is_none() {
                    Ok(None)
                } else {
                    Err(XmlError::UnexpectedEnd)
                };
            };
            let token = token.map_err(|e| {
                let detail = e.to_string();
                if detail.contains("unexpected end of stream") {
                    XmlError::UnexpectedEnd
                } else {
                    XmlError::Syntax {
                        line: e.pos().row,
                        col: e.pos().col,
                        detail,
                    }
                }
            })?;
            match token {
                Token::Declaration { .. }
                | Token::Comment { .. }
                | Token::ProcessingInstruction { .. } => {}
                Token::DtdStart { .. }
                | Token::EmptyDtd { .. }
                | Token::EntityDeclaration { .. }
                | Token::DtdEnd { .. } => return Err(XmlError::Dtd),
                Token::ElementStart { prefix, local, .. } => {
                    if self.done {
                        return Err(XmlError::Unbalanced {
                            detail: "content after the root element".into(),
                        });
                    }
                    self.pending = Some((prefix.as_str(), local.as_str(), Vec::new()));
                }
                Token::Attribute {
                    prefix,
                    local,
                    value,
                    ..
                } => match self.pending.as_mut() {
                    Some((_, _, attrs)) => {
                        attrs.push((prefix.as_str(), local.as_str(), value.as_str()))
                    }
                    None => {
                        return Err(XmlError::Unbalanced {
                            detail: "attribute outside a start tag".into(),
                        })
                    }
                },
                Token::ElementEnd { end, .. } => match end {
                    ElementEnd::Open => return self.open().map(Some),
                    ElementEnd::Empty => {
                        let ev = self.open()?;
                        self.queued_end = true;
                        return Ok(Some(ev));
                    }
                    ElementEnd::Close(prefix, local) => {
                        let top = self.stack.last().ok_or_else(|| XmlError::Unbalanced {
                            detail: "end tag without start tag".into(),
                        })?;
                        if top.prefix != prefix.as_str() || top.local != local.as_str() {
                            return Err(XmlError::Unbalanced {
                                detail: format!(
                                    "</{}> closes <{}>",
                                    qname(prefix.as_str(), local.as_str()),
                                    qname(top.prefix, top.local)
                                ),
                            });
                        }
                        return self.close().map(Some);
                    }
                },
                Token::Text { text } => {
                    if self.stack.is_empty() {
                        if text.as_str().trim().is_empty() {
                            continue;
                        }
                        return Err(XmlError::Unbalanced {
                            detail: "text outside the root element".into(),
                        });
                    }
                    return Ok(Some(Event::Text(unescape(text.as_str())?)));
                }
                Token::Cdata { text, .. } => {
                    if self.stack.is_empty() {
                        return Err(XmlError::Unbalanced {
                            detail: "CDATA outside the root element".into(),
                        });
                    }
                    return Ok(Some(Event::Text(Cow::Borrowed(text.as_str()))));
                }
            }
        }
    }

    /// Reads the text content of the element just started, up to its end tag, and returns it
    /// joined. Child elements are an error: use it on leaf elements only.
    pub fn text_content(&mut self) -> Result<String, XmlError> {
        let mut out = String::new();
        loop {
            match self.next()? {
                Some(Event::Text(t)) => out.push_str(&t),
                Some(Event::End { .. }) => return Ok(out),
                Some(Event::Start { local, .. }) => {
                    return Err(XmlError::Unbalanced {
                        detail: format!("unexpected element <{local}> in text"),
                    })
                }
                None => return Err(XmlError::UnexpectedEnd),
            }
        }
    }

    /// Skips the rest of the element just started, including its children.
    pub fn skip(&mut self) -> Result<(), XmlError> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.next()? {
                Some(Event::Start { .. }) => depth += 1,
                Some(Event::End { .. }) => depth -= 1,
                Some(Event::Text(_)) => {}
                None => return Err(XmlError::UnexpectedEnd),
            }
        }
        Ok(())
    }

    /// How deep the reader is (0 outside the root element).
    pub fn depth(&self) -> usize {
        self.stack.len()
    }
}

fn qname(prefix: &str, local: &str) -> String {
    if prefix.is_empty() {
        local.to_string()
    } else {
        format!("{prefix}:{local}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders the events compactly: `{ns}local[attr=value]`, `/local`, `"text"`.
    fn render(doc: &str) -> Result<String, XmlError> {
        let mut r = Reader::new(doc);
        let mut out = Vec::new();
        while let Some(ev) = r.next()? {
            out.push(match ev {
                Event::Start { ns, local, attrs } => {
                    let a: String = attrs
                        .iter()
                        .map(|a| {
                            format!(
                                "[{}{}={}]",
                                if a.ns.is_empty() { "" } else { "@" },
                                a.local,
                                a.value
                            )
                        })
                        .collect();
                    format!("{{{ns}}}{local}{a}")
                }
                Event::End { local, .. } => format!("/{local}"),
                Event::Text(t) if t.trim().is_empty() => continue,
                Event::Text(t) => format!("{t:?}"),
            });
        }
        Ok(out.join(" "))
    }

    fn check(doc: &str, expect: Result<&str, XmlError>) {
        assert_eq!(render(doc), expect.map(str::to_string), "{doc}");
    }

    #[test]
    fn namespaces_whatever_the_prefix() {
        check(
            r#"<a xmlns="urn:x"><b/></a>"#,
            Ok("{urn:x}a {urn:x}b /b /a"),
        );
        check(
            r#"<m:a xmlns:m="urn:m" xmlns:t="urn:t"><t:b/></m:a>"#,
            Ok("{urn:m}a {urn:t}b /b /a"),
        );
        check(
            r#"<a xmlns="urn:x"><b xmlns="urn:y"/><c/></a>"#,
            Ok("{urn:x}a {urn:y}b /b {urn:x}c /c /a"),
        );
        check(
            r#"<a xmlns:p="urn:p" p:q="1" r="2"/>"#,
            Ok("{}a[@q=1][r=2] /a"),
        );
        check(r#"<a xml:lang="de"/>"#, Ok("{}a[@lang=de] /a"));
        check(
            r#"<p:a/>"#,
            Err(XmlError::Unbalanced {
                detail: "undeclared namespace prefix 'p'".into(),
            }),
        );
    }

    #[test]
    fn text_and_entities() {
        check(
            "<a>x &amp; y &lt;z&gt; &quot;&apos; &#228;&#xE4;&#XE4;</a>",
            Ok(r#"{}a "x & y <z> \"' äää" /a"#),
        );
        check("<a><![CDATA[<b>&amp;]]></a>", Ok(r#"{}a "<b>&amp;" /a"#));
        check(r#"<a v="&lt;&#33;"/>"#, Ok("{}a[v=<!] /a"));
        check(
            "<?xml version=\"1.0\"?><!-- c --><a>t</a><!-- after -->\n",
            Ok(r#"{}a "t" /a"#),
        );
        check(
            "<a>&nbsp;</a>",
            Err(XmlError::UnknownEntity {
                name: "nbsp".into(),
            }),
        );
        check(
            "<a>&#0;</a>",
            Err(XmlError::UnknownEntity { name: "#0".into() }),
        );
        check(
            "<a>&#xD800;</a>",
            Err(XmlError::UnknownEntity {
                name: "#xD800".into(),
            }),
        );
        check(
            "<a>&#99999999;</a>",
            Err(XmlError::UnknownEntity {
                name: "#99999999".into(),
            }),
        );
        assert!(matches!(
            render("<a>& b</a>"),
            Err(XmlError::UnknownEntity { .. } | XmlError::Syntax { .. })
        ));
        assert!(matches!(
            render("<a b=c/>"),
            Err(XmlError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn hostile_and_broken() {
        assert_eq!(
            render("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"),
            Err(XmlError::Dtd)
        );
        assert_eq!(
            render("<a><b></a>").map_err(|e| matches!(e, XmlError::Unbalanced { .. })),
            Err(true)
        );
        assert_eq!(render("<a>"), Err(XmlError::UnexpectedEnd));
        assert_eq!(render(""), Err(XmlError::UnexpectedEnd));
        assert!(render("<a/><b/>").is_err());
        assert!(render("<a/>junk").is_err());
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(render(&deep), Err(XmlError::TooDeep));
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(render(&ok).is_ok());
    }

    #[test]
    fn truncated_at_every_byte() {
        let doc = r#"<s:Envelope xmlns:s="urn:s"><s:Body a="1&amp;2"><x>t&#228;<![CDATA[c]]></x></s:Body></s:Envelope>"#;
        assert!(render(doc).is_ok());
        for cut in 0..doc.len() {
            if doc.is_char_boundary(cut) {
                assert!(render(&doc[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn helpers() {
        let mut r = Reader::new("<a><b>x&amp;y<![CDATA[z]]></b><c><d/>t</c><e/></a>");
        assert!(matches!(
            r.next(),
            Ok(Some(Event::Start { local: "a", .. }))
        ));
        assert!(matches!(
            r.next(),
            Ok(Some(Event::Start { local: "b", .. }))
        ));
        assert_eq!(r.text_content().as_deref(), Ok("x&yz"));
        assert!(matches!(
            r.next(),
            Ok(Some(Event::Start { local: "c", .. }))
        ));
        assert_eq!(r.depth(), 2);
        r.skip().unwrap();
        assert!(matches!(
            r.next(),
            Ok(Some(Event::Start { local: "e", .. }))
        ));
        assert!(matches!(r.next(), Ok(Some(Event::End { local: "e", .. }))));
        assert!(matches!(r.next(), Ok(Some(Event::End { local: "a", .. }))));
        assert_eq!(r.next(), Ok(None));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape(r#"a&b<c>d"e'f"#), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
        assert_eq!(escape("tab\there\u{1}\u{FFFF}ä😀"), "tab\thereä😀");
    }

    #[test]
    fn error_display() {
        let cases = [
            (
                XmlError::Syntax {
                    line: 2,
                    col: 3,
                    detail: "x".into(),
                },
                "malformed XML at line 2, column 3: x",
            ),
            (XmlError::TooDeep, "XML nested deeper than 64 levels"),
            (
                XmlError::Unbalanced { detail: "d".into() },
                "malformed XML: d",
            ),
            (
                XmlError::UnknownEntity {
                    name: "nbsp".into(),
                },
                "malformed XML: unknown entity or character reference 'nbsp'",
            ),
            (
                XmlError::UnexpectedEnd,
                "the XML document ends early (truncated?)",
            ),
            (
                XmlError::Dtd,
                "XML with a document type declaration is refused",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }
}
