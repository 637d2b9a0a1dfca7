//! The secrets STARFACE derives from a login and a password.
//!
//! Everything returned here is itself a secret: it must never reach a log, an error or Debug
//! output. The formulas are STARFACE's (REST login: the Swagger description of `POST /login`;
//! XML-RPC: the `de.vertico.starface.auth` parameter).

use base64::Engine;

use crate::config::LoginType;

/// Lower-case hex of the SHA-512 of `text`. The digest comes from ring, which rustls links
/// anyway: a second SHA-512 implementation (the sha2 crate) cost 16 KB of binary.
pub fn sha512_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA512, text.as_bytes());
    let mut out = String::with_capacity(128);
    for byte in digest.as_ref() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The `secret` of `POST /rest/login` for the configured login type.
pub fn login_secret(login_type: LoginType, login: &str, nonce: &str, password: &str) -> String {
    match login_type {
        // <login>:SHA512(<login><nonce>SHA512(<password>))
        LoginType::Internal => {
            let inner = sha512_hex(password);
            format!("{login}:{}", sha512_hex(&format!("{login}{nonce}{inner}")))
        }
        // BASE64(<login><nonce><password>)
        LoginType::ActiveDirectory => {
            base64::engine::general_purpose::STANDARD.encode(format!("{login}{nonce}{password}"))
        }
    }
}

/// The `de.vertico.starface.auth` value of an XML-RPC call: `login:SHA512(login*SHA512(password))`.
pub fn xmlrpc_auth(login: &str, password: &str) -> String {
    let inner = sha512_hex(password);
    format!("{login}:{}", sha512_hex(&format!("{login}*{inner}")))
}

/// The `loginType` value STARFACE uses for a configured login type.
pub fn login_type_name(login_type: LoginType) -> &'static str {
    match login_type {
        LoginType::Internal => "Internal",
        LoginType::ActiveDirectory => "ActiveDirectory",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(got: String, expect: &str) {
        assert_eq!(got, expect);
    }

    #[test]
    fn sha512_of_known_texts() {
        // FIPS 180-2 test vector and the empty string.
        check(
            sha512_hex("abc"),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        );
        check(
            sha512_hex(""),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        );
    }

    #[test]
    fn xmlrpc_auth_matches_the_published_vector() {
        check(
            xmlrpc_auth("123", "Pass123"),
            "123:81d8af78c98b153485f7d48e3437eb735ba37f0f013c5e06ba74536776c5945694e7cde71e2effbed7b5a1d1a4566fadcd847ef4098c234052fdfd288e8b6ced",
        );
    }

    #[test]
    fn internal_login_secret_follows_the_formula() {
        let expect = format!(
            "0001:{}",
            sha512_hex(&format!("0001nonce-1{}", sha512_hex("geheim")))
        );
        check(
            login_secret(LoginType::Internal, "0001", "nonce-1", "geheim"),
            &expect,
        );
        // The XML-RPC formula is the same with '*' in place of the nonce.
        assert_eq!(
            login_secret(LoginType::Internal, "123", "*", "Pass123"),
            xmlrpc_auth("123", "Pass123")
        );
    }

    #[test]
    fn active_directory_login_secret_is_base64() {
        // base64("jdoe" + "abc" + "pässwort") computed independently.
        check(
            login_secret(LoginType::ActiveDirectory, "jdoe", "abc", "pässwort"),
            "amRvZWFiY3DDpHNzd29ydA==",
        );
    }

    #[test]
    fn login_type_names() {
        assert_eq!(login_type_name(LoginType::Internal), "Internal");
        assert_eq!(
            login_type_name(LoginType::ActiveDirectory),
            "ActiveDirectory"
        );
    }
}
