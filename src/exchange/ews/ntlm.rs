//! The EWS side of NTLM (`auth = "ntlm"`), between the pure messages of `crate::http::ntlm` and
//! a connection: which scheme to answer a 401 with, the tokens in the headers, and the budget of
//! attempts that keeps a wrong password from locking the account.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::config::Secret;
use crate::http::ntlm::{self, ClientInput, Identity, NtlmError};
use crate::secrets;

/// Refused handshakes per run: account lockout policies count failed logons, and a wrong
/// password would otherwise fail once per poll. Successful ones do not count (the daemon logs
/// on again whenever the server closed the connection).
pub const MAX_ATTEMPTS: u32 = 3;

/// The account, with the NT hash computed once; `Debug` shows only the username.
pub struct NtlmCredential {
    username: String,
    identity: Identity,
    nt_hash: [u8; 16],
    attempts: u32,
}

impl std::fmt::Debug for NtlmCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NtlmCredential({})", self.username)
    }
}

impl NtlmCredential {
    pub fn new(username: &str, password: &Secret) -> NtlmCredential {
        let nt_hash = ntlm::nt_hash(password.expose());
        // The password and its NT hash (as a server might echo it, in hex) never reach a log.
        secrets::register(password.expose());
        let hex: String = nt_hash.iter().map(|b| format!("{b:02x}")).collect();
        secrets::register(&hex);
        secrets::register(&hex.to_ascii_uppercase());
        NtlmCredential {
            username: username.to_string(),
            identity: Identity::parse(username),
            nt_hash,
            attempts: 0,
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether another handshake may be tried in this run.
    pub fn may_try(&self) -> bool {
        self.attempts < MAX_ATTEMPTS
    }

    /// Counts a refused AUTHENTICATE against the run's budget.
    pub fn refused(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }

    /// The AUTHENTICATE answering `challenge`, bound to `certificate` (the DER of the server's
    /// certificate over HTTPS). The random client challenge and the time come from the caller.
    pub fn authenticate(
        &self,
        negotiate: &[u8],
        challenge: &[u8],
        certificate: Option<&[u8]>,
        client_challenge: [u8; 8],
        now: SystemTime,
    ) -> Result<Vec<u8>, NtlmError> {
        let channel_bindings = match certificate {
            Some(der) => Some(ntlm::channel_bindings_hash(&ntlm::tls_server_end_point(
                der,
            )?)),
            None => None,
        };
        let input = ClientInput {
            client_challenge,
            now_filetime: filetime(now),
            channel_bindings,
        };
        ntlm::authenticate(&self.identity, &self.nt_hash, negotiate, challenge, &input)
    }
}

/// A Windows FILETIME: 100 ns intervals since 1601-01-01.
pub fn filetime(t: SystemTime) -> u64 {
    const UNIX_TO_1601_SECS: u64 = 11_644_473_600;
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (since.as_secs() + UNIX_TO_1601_SECS) * 10_000_000 + u64::from(since.subsec_nanos() / 100)
}

/// The scheme of one `WWW-Authenticate` value (the token before the first space or comma).
fn scheme_of(value: &str) -> &str {
    value.trim().split([' ', ',']).next().unwrap_or_default()
}

/// The scheme to authenticate with among the `WWW-Authenticate` values of a 401: `NTLM` when
/// offered, else `Negotiate` (whose NTLM fallback takes the raw NTLMSSP tokens), else none.
pub fn pick_scheme(offered: &[&str]) -> Option<&'static str> {
    let has = |name: &str| {
        offered.iter().any(|v| {
            v.split(',')
                .any(|part| scheme_of(part).eq_ignore_ascii_case(name))
        })
    };
    if has("NTLM") {
        Some("NTLM")
    } else if has("Negotiate") {
        Some("Negotiate")
    } else {
        None
    }
}

/// The `Authorization` value carrying `token` in `scheme`; a secret like every NTLM message.
pub fn authorization(scheme: &str, token: &[u8]) -> Secret {
    let encoded = base64::engine::general_purpose::STANDARD.encode(token);
    secrets::register_rotating(&encoded);
    Secret::new(format!("{scheme} {encoded}"))
}

/// The server's CHALLENGE from the `WWW-Authenticate` values answering NEGOTIATE in `scheme`.
pub fn challenge(offered: &[&str], scheme: &'static str) -> Result<Vec<u8>, NtlmError> {
    let token = offered
        .iter()
        .filter_map(|v| v.trim().split_once(' '))
        .find(|(s, t)| s.eq_ignore_ascii_case(scheme) && !t.trim().is_empty())
        .map(|(_, t)| t.trim())
        .ok_or(NtlmError::NoChallenge(scheme))?;
    secrets::register_rotating(token);
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| NtlmError::NotBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: PartialEq + std::fmt::Debug>(name: &str, got: T, want: T) {
        assert_eq!(got, want, "{name}");
    }

    #[test]
    fn schemes() {
        let cases: [(&[&str], Option<&str>); 7] = [
            (&["Negotiate", "NTLM"], Some("NTLM")),
            (&["Negotiate"], Some("Negotiate")),
            (&["negotiate, ntlm"], Some("NTLM")),
            (&["Basic realm=\"mail\"", "NTLM"], Some("NTLM")),
            (&["Basic realm=\"mail\""], None),
            (&["Bearer"], None),
            (&[], None),
        ];
        for (offered, want) in cases {
            check(&format!("{offered:?}"), pick_scheme(offered), want);
        }
    }

    #[test]
    fn challenges() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"NTLMSSP\0x");
        let with = format!("NTLM {b64}");
        type Case<'a> = (&'a [&'a str], &'static str, Result<Vec<u8>, NtlmError>);
        let cases: [Case; 5] = [
            (&[with.as_str()], "NTLM", Ok(b"NTLMSSP\0x".to_vec())),
            (
                &["Negotiate", with.as_str()],
                "NTLM",
                Ok(b"NTLMSSP\0x".to_vec()),
            ),
            (&["NTLM"], "NTLM", Err(NtlmError::NoChallenge("NTLM"))),
            (
                &[with.as_str()],
                "Negotiate",
                Err(NtlmError::NoChallenge("Negotiate")),
            ),
            (&["NTLM !!!"], "NTLM", Err(NtlmError::NotBase64)),
        ];
        for (offered, scheme, want) in cases {
            check(
                &format!("{offered:?} {scheme}"),
                challenge(offered, scheme),
                want,
            );
        }
    }

    #[test]
    fn three_attempts_per_run() {
        let mut c = NtlmCredential::new("EXAMPLE\\svc", &Secret::new("pw"));
        let taken: Vec<bool> = (0..5)
            .map(|_| {
                let may = c.may_try();
                c.refused();
                may
            })
            .collect();
        check("budget", taken, vec![true, true, true, false, false]);
        check(
            "debug hides the hash",
            format!("{c:?}"),
            "NtlmCredential(EXAMPLE\\svc)".into(),
        );
    }

    #[test]
    fn filetimes() {
        check("1601", filetime(UNIX_EPOCH), 116_444_736_000_000_000);
        let later = UNIX_EPOCH + std::time::Duration::from_nanos(1_495_570_387_000_000_000);
        check(
            "2017-05-23 20:13:07",
            filetime(later),
            131_400_439_870_000_000,
        );
    }

    #[test]
    fn authenticate_binds_to_the_certificate_over_https() {
        let c = NtlmCredential::new("svc@example.com", &Secret::new("pw"));
        let negotiate = ntlm::negotiate();
        let challenge = challenge_with_timestamp();
        let plain = c
            .authenticate(&negotiate, &challenge, None, [1; 8], UNIX_EPOCH)
            .expect("plain");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["mail.example.com".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let bound = c
            .authenticate(&negotiate, &challenge, Some(cert.der()), [1; 8], UNIX_EPOCH)
            .expect("bound");
        let want = ntlm::channel_bindings_hash(
            &ntlm::tls_server_end_point(cert.der()).expect("end point"),
        );
        check("zero binding over HTTP", contains(&plain, &[0; 16]), true);
        check("the certificate's binding", contains(&bound, &want), true);
        check(
            "a certificate that is not DER",
            c.authenticate(&negotiate, &challenge, Some(b"junk"), [1; 8], UNIX_EPOCH),
            Err(NtlmError::BadCertificate("not a DER certificate")),
        );
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// A CHALLENGE as Exchange sends one: NTLMv2 flags, a domain and a timestamp.
    fn challenge_with_timestamp() -> Vec<u8> {
        let info: &[u8] = &[
            2, 0, 4, 0, b'E', 0, b'X', 0, 7, 0, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0,
        ];
        let mut m = b"NTLMSSP\0\x02\0\0\0\0\0\0\0\x30\0\0\0".to_vec();
        m.extend_from_slice(&0xe28a_8215u32.to_le_bytes());
        m.extend_from_slice(&[9; 8]);
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&[info.len() as u8, 0, info.len() as u8, 0, 0x30, 0, 0, 0]);
        m.extend_from_slice(info);
        m
    }
}
