//! A bounded, namespace-aware pull reader over `xmlparser`, and text escaping for the XML we
//! write (SOAP, XML-RPC).
//!
//! Servers choose their prefixes freely (Exchange declares default namespaces, others use `m:`
//! and `t:`), so callers match on (namespace URI, local name), never on prefixes. Entities and
//! character references are decoded here, once. DTDs are refused outright: no response we read
//! has one, and refusing them closes the door on entity-expansion attacks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use xmlparser::{ElementEnd, Token, Tokenizer};

/// The deepest element nesting we accept.
pub const MAX_DEPTH: usize = 64;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Whether two names are equal. Names are short, and comparing them in place costs less than a
/// call to the C library's `memcmp` (musl's compares byte by byte); the reader and its callers
/// compare names several times per element. Whole eight-byte words are compared as numbers, the
/// last one overlapping the one before; shorter names as two overlapping halves or three bytes,
/// so that no name needs a loop over its bytes.
#[inline]
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // The conversions cannot fail: every range lies within both names.
    let word = |s: &[u8], at: usize| s.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok());
    let half = |s: &[u8], at: usize| s.get(at..at + 4).and_then(|w| <[u8; 4]>::try_from(w).ok());
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if word(a, at) != word(b, at) {
                return false;
            }
            at += 8;
        }
        word(a, n - 8) == word(b, n - 8)
    } else if n >= 4 {
        half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4)
    } else if n > 0 {
        a.first() == b.first() && a.get(n / 2) == b.get(n / 2) && a.last() == b.last()
    } else {
        true
    }
}

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

/// Whether text holds an entity or character reference. Eight bytes at a time: the texts are
/// short, and for them this is cheaper than a call to `memchr`, and than a byte loop.
#[inline]
fn has_reference(raw: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const AMPERSANDS: u64 = 0x2626_2626_2626_2626;
    // A zero byte in `x` is an ampersand in the text; the expression is non-zero exactly when
    // `x` has a zero byte.
    let found = |word: [u8; 8]| {
        let x = u64::from_le_bytes(word) ^ AMPERSANDS;
        x.wrapping_sub(ONES) & !x & (ONES << 7) != 0
    };
    let bytes = raw.as_bytes();
    let mut words = bytes.chunks_exact(8);
    // The conversions cannot fail on exact chunks and on the last eight bytes.
    if words
        .by_ref()
        .any(|w| <[u8; 8]>::try_from(w).is_ok_and(found))
    {
        return true;
    }
    if words.remainder().is_empty() {
        return false;
    }
    match bytes.len().checked_sub(8).and_then(|at| bytes.get(at..)) {
        // The last eight bytes, overlapping the last whole word.
        Some(last) => <[u8; 8]>::try_from(last).is_ok_and(found),
        None => bytes.contains(&b'&'),
    }
}

/// Where the next `&` is, by a byte loop (the texts are short; see `has_reference`).
fn next_reference(text: &str) -> Option<usize> {
    text.bytes().position(|b| b == b'&')
}

/// Decodes the predefined entities and character references.
pub fn unescape(raw: &str) -> Result<Cow<'_, str>, XmlError> {
    let Some(mut at) = next_reference(raw) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    loop {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        // A reference is at most 12 bytes before its `;` (`#x10FFFF` and the named ones are
        // shorter); looking no further keeps a stray `&` from scanning the rest of the text.
        let end = after
            .bytes()
            .take(13)
            .position(|b| b == b';')
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
        match next_reference(rest) {
            Some(next) => at = next,
            None => break,
        }
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

/// Which of the namespaces given to `Reader::with_namespaces` an element is in: its index in
/// that list, or `None` for any other namespace (and for no namespace).
pub type NsId = Option<u8>;

/// What the reader yields. A start tag's attributes are in `Reader::attrs` until the next call
/// of `next`, so that reading an element never allocates for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// `<a/>` gives `Start` then `End`.
    Start {
        ns: &'a str,
        id: NsId,
        local: &'a str,
    },
    End {
        ns: &'a str,
        id: NsId,
        local: &'a str,
    },
    /// Character data (decoded) or CDATA; whitespace-only text is reported too.
    Text(Cow<'a, str>),
}

/// An open element.
#[derive(Clone, Copy)]
struct Open<'a> {
    prefix: &'a str,
    local: &'a str,
    ns: &'a str,
    id: NsId,
    /// How many namespace bindings this element pushed.
    bindings: u32,
}

const CLOSED: Open<'static> = Open {
    prefix: "",
    local: "",
    ns: "",
    id: None,
    bindings: 0,
};

/// One namespace declaration in scope.
struct Binding<'a> {
    /// The empty prefix is the default namespace.
    prefix: &'a str,
    uri: &'a str,
    id: NsId,
    /// The binding of the same prefix that this one hides, restored when it goes out of scope.
    hides: Option<usize>,
}

/// Up to this many bindings in scope, a prefix is looked up by scanning them (the usual case:
/// a handful); beyond it, through `latest`, so that a document with very many declarations
/// still costs time linear in its size.
const SCAN_LIMIT: usize = 8;

/// The pull reader.
///
/// It is built for the common case of an answer from a server: most start tags have no
/// attributes and declare nothing, and most elements share their parent's prefix. Such an
/// element is opened with a few comparisons and one store into a fixed array of open
/// elements (the depth is bounded anyway); namespace declarations are bound as their
/// attributes arrive, and the other attributes are only looked at when there are any.
pub struct Reader<'a> {
    tokens: Tokenizer<'a>,
    /// The open elements, `depth` of them.
    open: [Open<'a>; MAX_DEPTH],
    depth: usize,
    bindings: Vec<Binding<'a>>,
    /// Prefix → index in `bindings` of its innermost declaration.
    latest: HashMap<&'a str, usize>,
    /// The namespaces the caller tells apart by `NsId`.
    known: &'static [&'static str],
    /// The start tag being read: its name, and how many namespaces it has declared so far.
    pending: Option<(&'a str, &'a str)>,
    pending_bindings: u32,
    /// Its attributes other than namespace declarations, as written.
    raw_attrs: Vec<(&'a str, &'a str, &'a str)>,
    attrs: Vec<Attr<'a>>,
    queued_end: bool,
    done: bool,
    /// Bindings examined and looked up so far, to show in tests that resolution stays linear.
    work: u64,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader::with_namespaces(text, &[])
    }

    /// A reader that reports, for every element, which of `known` its namespace is (its
    /// `NsId`), so that callers compare a small number rather than URIs.
    pub fn with_namespaces(text: &'a str, known: &'static [&'static str]) -> Reader<'a> {
        Reader {
            tokens: Tokenizer::from(text),
            open: [CLOSED; MAX_DEPTH],
            depth: 0,
            bindings: Vec::new(),
            latest: HashMap::new(),
            known,
            pending: None,
            pending_bindings: 0,
            raw_attrs: Vec::new(),
            attrs: Vec::new(),
            queued_end: false,
            done: false,
            work: 0,
        }
    }

    /// The attributes of the element of the last `Start` event.
    pub fn attrs(&self) -> &[Attr<'a>] {
        &self.attrs
    }

    fn id_of(&self, uri: &str) -> NsId {
        self.known
            .iter()
            .position(|k| same(k, uri))
            .and_then(|i| u8::try_from(i).ok())
    }

    fn resolve(&mut self, prefix: &str) -> Result<(&'a str, NsId), XmlError> {
        if same(prefix, "xml") {
            return Ok((XML_NS, self.id_of(XML_NS)));
        }
        let found = if self.bindings.len() <= SCAN_LIMIT {
            let mut found = None;
            for (i, b) in self.bindings.iter().enumerate().rev() {
                self.work += 1;
                if same(b.prefix, prefix) {
                    found = Some(i);
                    break;
                }
            }
            found
        } else {
            self.work += 1;
            self.latest.get(prefix).copied()
        };
        match found.and_then(|i| self.bindings.get(i)) {
            Some(b) => Ok((b.uri, b.id)),
            None if prefix.is_empty() => Ok(("", None)),
            None => Err(XmlError::Unbalanced {
                detail: format!("undeclared namespace prefix '{prefix}'"),
            }),
        }
    }

    fn bind(&mut self, prefix: &'a str, uri: &'a str) {
        let id = self.id_of(uri);
        let index = self.bindings.len();
        let hides = self.latest.insert(prefix, index);
        self.work += 1;
        self.bindings.push(Binding {
            prefix,
            uri,
            id,
            hides,
        });
        self.pending_bindings += 1;
    }

    /// An attribute of the start tag being read: a namespace declaration is bound at once (it
    /// holds for the whole tag, whatever the order), any other is kept for `open`.
    fn attribute(
        &mut self,
        prefix: &'a str,
        local: &'a str,
        value: &'a str,
    ) -> Result<(), XmlError> {
        if self.pending.is_none() {
            return Err(XmlError::Unbalanced {
                detail: "attribute outside a start tag".into(),
            });
        }
        if same(prefix, "xmlns") {
            self.bind(local, value);
        } else if prefix.is_empty() && same(local, "xmlns") {
            self.bind("", value);
        } else {
            self.raw_attrs.push((prefix, local, value));
        }
        Ok(())
    }

    /// Finishes the pending start tag: resolves its name and its attributes.
    fn open(&mut self) -> Result<Event<'a>, XmlError> {
        let Some((prefix, local)) = self.pending.take() else {
            return Err(XmlError::Unbalanced {
                detail: "end of a start tag without its name".into(),
            });
        };
        let bindings = std::mem::take(&mut self.pending_bindings);
        let depth = self.depth;
        if depth >= MAX_DEPTH {
            return Err(XmlError::TooDeep);
        }
        // A child that declares nothing and uses its parent's prefix is in its parent's
        // namespace: most elements of an answer are, and this saves the lookup.
        let parent = match depth.checked_sub(1) {
            Some(i) => self.open.get(i).copied(),
            None => None,
        };
        let (ns, id) = match parent {
            Some(p) if bindings == 0 && same(p.prefix, prefix) => (p.ns, p.id),
            _ => self.resolve(prefix).inspect_err(|_| {
                // Counted as open all the same, so that its bindings go when it closes.
                self.push(Open {
                    prefix,
                    local,
                    ns: "",
                    id: None,
                    bindings,
                })
            })?,
        };
        self.push(Open {
            prefix,
            local,
            ns,
            id,
            bindings,
        });
        if !self.attrs.is_empty() {
            self.attrs.clear();
        }
        if !self.raw_attrs.is_empty() {
            self.resolve_attributes()?;
        }
        Ok(Event::Start { ns, id, local })
    }

    fn push(&mut self, open: Open<'a>) {
        if let Some(slot) = self.open.get_mut(self.depth) {
            *slot = open;
            self.depth += 1;
        }
    }

    /// Resolves and decodes the attributes of the start tag just opened into `attrs`.
    #[inline(never)]
    fn resolve_attributes(&mut self) -> Result<(), XmlError> {
        let raw = std::mem::take(&mut self.raw_attrs);
        let mut result = Ok(());
        for &(p, l, v) in &raw {
            let ns = if p.is_empty() {
                Ok("")
            } else {
                self.resolve(p).map(|(ns, _)| ns)
            };
            let value = if has_reference(v) {
                unescape(v)
            } else {
                Ok(Cow::Borrowed(v))
            };
            match (ns, value) {
                (Ok(ns), Ok(value)) => self.attrs.push(Attr {
                    ns,
                    local: l,
                    value,
                }),
                (Err(e), _) | (_, Err(e)) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The buffer goes back for the next start tag, emptied but with its capacity.
        self.raw_attrs = raw;
        self.raw_attrs.clear();
        result
    }

    /// The innermost open element.
    #[inline]
    fn top(&self) -> Option<&Open<'a>> {
        self.open.get(self.depth.checked_sub(1)?)
    }

    /// An end tag: it must close the innermost open element.
    #[inline]
    fn close_tag(&mut self, prefix: &str, local: &str) -> Result<Event<'a>, XmlError> {
        match self.top() {
            Some(top) if same(top.local, local) && same(top.prefix, prefix) => self.close(),
            top => Err(mismatch(prefix, local, top)),
        }
    }

    #[inline]
    fn close(&mut self) -> Result<Event<'a>, XmlError> {
        let Some(&Open {
            local,
            ns,
            id,
            bindings,
            ..
        }) = self.top()
        else {
            return Err(mismatch("", "", None));
        };
        self.depth -= 1;
        if bindings > 0 {
            self.unbind(bindings);
        }
        self.done = self.depth == 0;
        Ok(Event::End { ns, id, local })
    }

    /// Takes the last `n` bindings out of scope, uncovering those they hid.
    fn unbind(&mut self, n: u32) {
        for _ in 0..n {
            if let Some(b) = self.bindings.pop() {
                match b.hides {
                    Some(i) => self.latest.insert(b.prefix, i),
                    None => self.latest.remove(b.prefix),
                };
            }
        }
    }

    /// The next event; `Ok(None)` once the root element has closed (anything after it other
    /// than comments and whitespace is an error).
    ///
    /// Inlined into its callers' loops: it runs for every event, and a call per event cost
    /// the EWS parse about a tenth of its speed (the binary's size did not change).
    #[allow(clippy::should_implement_trait)]
    #[inline(always)]
    pub fn next(&mut self) -> Result<Option<Event<'a>>, XmlError> {
        if self.queued_end {
            self.queued_end = false;
            return self.close().map(Some);
        }
        loop {
            let token = match self.tokens.next() {
                Some(Ok(token)) => token,
                Some(Err(e)) => return Err(syntax_error(&e)),
                None if self.done && self.pending.is_none() => return Ok(None),
                None => return Err(XmlError::UnexpectedEnd),
            };
            match token {
                Token::ElementStart { prefix, local, .. } => {
                    if self.done {
                        return Err(XmlError::Unbalanced {
                            detail: "content after the root element".into(),
                        });
                    }
                    self.pending = Some((prefix.as_str(), local.as_str()));
                }
                Token::Attribute {
                    prefix,
                    local,
                    value,
                    ..
                } => self.attribute(prefix.as_str(), local.as_str(), value.as_str())?,
                Token::ElementEnd { end, .. } => {
                    return match end {
                        ElementEnd::Open => self.open().map(Some),
                        ElementEnd::Empty => {
                            let ev = self.open()?;
                            self.queued_end = true;
                            Ok(Some(ev))
                        }
                        ElementEnd::Close(prefix, local) => {
                            self.close_tag(prefix.as_str(), local.as_str()).map(Some)
                        }
                    };
                }
                Token::Text { text } => {
                    let raw = text.as_str();
                    if self.depth == 0 {
                        if raw.trim().is_empty() {
                            continue;
                        }
                        return Err(XmlError::Unbalanced {
                            detail: "text outside the root element".into(),
                        });
                    }
                    let text = if has_reference(raw) {
                        unescape(raw)?
                    } else {
                        Cow::Borrowed(raw)
                    };
                    return Ok(Some(Event::Text(text)));
                }
                Token::Cdata { text, .. } => {
                    if self.depth == 0 {
                        return Err(XmlError::Unbalanced {
                            detail: "CDATA outside the root element".into(),
                        });
                    }
                    return Ok(Some(Event::Text(Cow::Borrowed(text.as_str()))));
                }
                Token::Declaration { .. }
                | Token::Comment { .. }
                | Token::ProcessingInstruction { .. } => {}
                Token::DtdStart { .. }
                | Token::EmptyDtd { .. }
                | Token::EntityDeclaration { .. }
                | Token::DtdEnd { .. } => return Err(XmlError::Dtd),
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
        self.depth
    }
}

/// The tokenizer's error as ours; apart from `next`, which runs for every token.
#[cold]
fn syntax_error(e: &xmlparser::Error) -> XmlError {
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
}

/// An end tag that does not close the innermost open element (`None`: there is none).
#[cold]
fn mismatch(prefix: &str, local: &str, open: Option<&Open<'_>>) -> XmlError {
    let detail = match open {
        Some(open) => format!(
            "</{}> closes <{}>",
            qname(prefix, local),
            qname(open.prefix, open.local)
        ),
        None => "end tag without start tag".to_string(),
    };
    XmlError::Unbalanced { detail }
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
                Event::Start { ns, local, .. } => {
                    let a: String = r
                        .attrs()
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
    fn many_bindings_shadow_and_come_back() {
        // More bindings than SCAN_LIMIT: looked up through the map, restored as they close.
        let many: String = (0..SCAN_LIMIT + 4)
            .map(|i| format!(" xmlns:q{i}=\"urn:q{i}\""))
            .collect();
        check(
            &format!(
                r#"<a xmlns:p="urn:1"{many}><b xmlns:p="urn:2" xmlns="urn:d"><p:c/><q3:e/><f/></b><p:d/><g/></a>"#
            ),
            Ok("{}a {urn:d}b {urn:2}c /c {urn:q3}e /e {urn:d}f /f /b {urn:1}d /d {}g /g /a"),
        );
        check(
            &format!(r#"<a{many}><b xmlns:p="urn:2"/><p:c/></a>"#),
            Err(XmlError::Unbalanced {
                detail: "undeclared namespace prefix 'p'".into(),
            }),
        );
    }

    #[test]
    fn children_share_their_parents_namespace_only_while_nothing_is_declared() {
        // A child with its parent's prefix and no declarations takes the parent's namespace
        // without a lookup; one that declares anything, or uses another prefix, is resolved.
        check(
            r#"<p:a xmlns:p="urn:1"><p:b><p:c xmlns:p="urn:2"><p:d/></p:c><p:e/></p:b></p:a>"#,
            Ok("{urn:1}a {urn:1}b {urn:2}c {urn:2}d /d /c {urn:1}e /e /b /a"),
        );
        check(
            r#"<a xmlns="urn:x"><b xmlns:q="urn:q"><c/></b><q:d/></a>"#,
            Err(XmlError::Unbalanced {
                detail: "undeclared namespace prefix 'q'".into(),
            }),
        );
        check(
            r#"<a xmlns="urn:x"><b xmlns:q="urn:q"><c/><q:d><e/></q:d></b></a>"#,
            Ok("{urn:x}a {urn:x}b {urn:x}c /c {urn:q}d {urn:x}e /e /d /b /a"),
        );
    }

    #[test]
    fn namespace_work_is_linear() {
        // 100,000 declarations on the root and as many elements, each using another prefix:
        // resolving them by scanning all bindings took minutes (issue 11); now each lookup and
        // each binding is a bounded amount of work.
        let n = 100_000;
        let mut doc = String::from("<r");
        for i in 0..n {
            doc.push_str(&format!(" xmlns:p{i}=\"urn:{i}\""));
        }
        doc.push('>');
        for i in 0..n {
            doc.push_str(&format!("<p{i}:e a=\"1\"/>"));
        }
        doc.push_str("</r>");
        let mut r = Reader::new(&doc);
        let mut elements = 0;
        let mut last = String::new();
        while let Some(ev) = r.next().unwrap() {
            if let Event::Start { ns, .. } = ev {
                elements += 1;
                last = ns.to_string();
            }
        }
        assert_eq!((elements, last.as_str()), (n + 1, "urn:99999"));
        let limit = 3 * (2 * n as u64 + 1);
        assert!(r.work <= limit, "{} steps for {n} bindings", r.work);
    }

    #[test]
    fn known_namespaces_get_their_id() {
        let mut r = Reader::with_namespaces(
            r#"<a xmlns="urn:x" xmlns:y="urn:y"><y:b/><c xmlns="urn:z"/></a>"#,
            &["urn:y", "urn:x"],
        );
        let mut ids = Vec::new();
        while let Some(ev) = r.next().unwrap() {
            if let Event::Start { local, id, .. } = ev {
                ids.push((local, id));
            }
        }
        assert_eq!(ids, [("a", Some(1)), ("b", Some(0)), ("c", None)]);
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
    fn references_are_found_at_every_position() {
        // The scan goes eight bytes at a time: an ampersand must be seen in every lane of a
        // word and in the bytes after the last whole word, and bytes that differ from `&` by
        // one bit (`\'`, `$`, `f`, `\xA6` in UTF-8) must not count.
        for len in 0..20 {
            let plain = "'$f¦".chars().cycle().take(len).collect::<String>();
            assert!(!has_reference(&plain), "{plain:?}");
            for at in 0..len {
                let text: String = "x".repeat(at) + "&" + &"y".repeat(len - at - 1);
                assert!(has_reference(&text), "{text:?}");
            }
        }
        // A reference ends within 12 bytes of its `&`; a `;` further away does not make one.
        check("<a>&#x0000000041;</a>", Ok(r#"{}a "A" /a"#));
        check(
            "<a>&#x00000000041;</a>",
            Err(XmlError::UnknownEntity {
                name: "#x0000000004".into(),
            }),
        );
        check("<a>a&amp;b&lt;c&gt;</a>", Ok(r#"{}a "a&b<c>" /a"#));
    }

    #[test]
    fn names_compare_whole() {
        let cases = [
            ("", "", true),
            ("a", "a", true),
            ("a", "b", false),
            ("a", "ab", false),
            ("CalendarEvent", "CalendarEvent", true),
            ("CalendarEvent", "CalendarEvenT", false),
            ("CalendarEventArray", "CalendarEventArrax", false),
            ("XalendarEventArray", "CalendarEventArray", false),
            ("12345678", "12345678", true),
            ("12345678", "12345679", false),
            ("ä", "ä", true),
        ];
        // Every length up to three words, with one byte changed at every position.
        for n in 0..25 {
            let name: String = (0..n).map(|i| char::from(b'a' + i as u8)).collect();
            assert!(same(&name, &name.clone()), "{name}");
            for at in 0..n {
                let mut other = name.clone().into_bytes();
                other[at] = b'Z';
                let other = String::from_utf8(other).unwrap_or_default();
                assert!(!same(&name, &other), "{name} {other}");
            }
        }
        for (a, b, expect) in cases {
            assert_eq!(same(a, b), expect, "{a:?} {b:?}");
            assert_eq!(same(b, a), expect, "{b:?} {a:?}");
        }
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
