//! Percent-encoding, once for every request this program builds: URL path segments, query
//! values and `application/x-www-form-urlencoded` bodies.

/// The characters RFC 3986 calls unreserved; they never need encoding.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0F)]));
}

/// Everything but unreserved characters as `%XX` per UTF-8 byte, for a query value or a path
/// segment that cannot be a dot segment (use `segment` where it could).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            push_escaped(&mut out, b);
        }
    }
    out
}

/// One URL path segment. Like `encode`, and `.` and `..` are written `%2E` and `%2E%2E`: a
/// server (or a proxy) normalises dot segments before routing, so an e-mail address of `..`
/// would otherwise turn `/users/../calendarView` into `/calendarView`. The empty segment is
/// encoded as it is (empty); callers refuse empty values before building a path.
pub fn segment(text: &str) -> String {
    if text == "." || text == ".." {
        return "%2E".repeat(text.len());
    }
    encode(text)
}

/// `application/x-www-form-urlencoded` encoding of one value: unreserved characters stay, a
/// space becomes `+`, everything else `%XX` per UTF-8 byte.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for b in text.bytes() {
        match b {
            b' ' => out.push('+'),
            b if unreserved(b) => out.push(char::from(b)),
            b => push_escaped(&mut out, b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(&str) -> String, input: &str, expect: &str) {
        assert_eq!(f(input), expect, "encoding {input:?}");
    }

    #[test]
    fn encodings() {
        check(encode, "abc-1.2_3~", "abc-1.2_3~");
        check(encode, "a b/c?d&e", "a%20b%2Fc%3Fd%26e");
        check(encode, "123:ab", "123%3Aab");
        check(encode, "ä", "%C3%A4");
        check(encode, "a@b.c+d'#", "a%40b.c%2Bd%27%23");
        check(encode, "\r\n\0", "%0D%0A%00");
        check(encode, "..", "..");
        check(segment, "..", "%2E%2E");
        check(segment, ".", "%2E");
        check(segment, "...", "...");
        check(segment, "a.b@c.d", "a.b%40c.d");
        check(segment, "", "");
        check(form_encode, "a b+c&d=é~", "a+b%2Bc%26d%3D%C3%A9~");
        check(form_encode, "", "");
    }
}
