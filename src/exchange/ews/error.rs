//! Why an EWS request failed as a whole, in words an Exchange admin can act on.

use std::fmt;
use std::time::Duration;

use crate::exchange::{MailboxError, SourceError};
use crate::http::HttpError;

/// How long to wait when the server asks for a pause without saying how long (`docs/contract.md`,
/// section 7.4: ErrorServerBusy without BackOffMilliseconds, 503/429 without Retry-After).
pub const DEFAULT_BACK_OFF: Duration = Duration::from_secs(60);

/// A failed EWS request. Per-mailbox problems are not here: they are `MailboxError`s.
#[derive(Debug)]
pub enum EwsError {
    /// No response (connection, TLS, timeout, body over the size cap, …).
    Http(HttpError),
    /// HTTP 401 with Basic authentication: the credentials were refused. `offered` holds the
    /// schemes the server offers (from `WWW-Authenticate`).
    BasicRefused {
        url: String,
        username: String,
        offered: Vec<String>,
    },
    /// HTTP 401 to an NTLM AUTHENTICATE: the credentials (or, over HTTPS, the channel binding)
    /// were refused.
    NtlmRefused {
        url: String,
        username: String,
        channel_binding: bool,
    },
    /// The run's NTLM attempts are spent; no further handshake is tried.
    NtlmGaveUp { url: String, username: String },
    /// A 401 that offers neither NTLM nor Negotiate.
    NtlmNotOffered { url: String, offered: Vec<String> },
    /// The server's NTLM messages could not be answered (a malformed or NTLMv1-only challenge).
    Ntlm { url: String, detail: String },
    /// HTTP 401 with OAuth2, also with a freshly fetched token.
    TokenRefused { url: String },
    /// No OAuth2 token could be fetched.
    Token { detail: String },
    /// HTTP 403.
    Forbidden { url: String },
    /// HTTP 429 or 503.
    Throttled {
        url: String,
        status: u16,
        wait: Duration,
    },
    /// ErrorServerBusy (as a SOAP fault or inside a response).
    ServerBusy { url: String, wait: Duration },
    /// The SOAP fault ErrorSchemaValidation.
    SchemaValidation { url: String, message: String },
    /// The SOAP fault ErrorInvalidServerVersion.
    InvalidServerVersion { url: String, message: String },
    /// Any other SOAP fault.
    Fault {
        url: String,
        code: String,
        message: String,
    },
    /// An HTTP status without a SOAP answer (404, 500 with an HTML page, …); for a redirect,
    /// the hint naming where it leads.
    Status {
        url: String,
        status: u16,
        redirect: Option<String>,
    },
    /// A response that is not a well-formed EWS answer of the expected kind.
    Malformed { url: String, detail: String },
}

impl EwsError {
    /// How long the server asked us to wait, for throttling errors.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            EwsError::Throttled { wait, .. } | EwsError::ServerBusy { wait, .. } => Some(*wait),
            _ => None,
        }
    }
}

impl fmt::Display for EwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EwsError::Http(e) => write!(f, "EWS request failed: {}", super::super::transport_text(e)),
            EwsError::BasicRefused {
                url,
                username,
                offered,
            } => {
                let hint = crate::http::auth_hint(offered, "basic");
                if let (false, Some(hint)) = (crate::http::scheme_offered(offered, "basic"), &hint)
                {
                    // The server does not speak Basic at all: the credentials are not the problem.
                    return write!(
                        f,
                        "EWS at {url} refused Basic authentication of '{username}' (HTTP 401): {hint}"
                    );
                }
                write!(
                    f,
                    "EWS at {url} refused the credentials of '{username}' (HTTP 401): check exchange.username \
                     and the password, and that Basic authentication is enabled on the EWS virtual directory \
                     (Get-WebServicesVirtualDirectory | Format-List BasicAuthentication)"
                )?;
                match hint {
                    Some(hint) => write!(f, "; {hint}"),
                    None => Ok(()),
                }
            }
            EwsError::NtlmRefused {
                url,
                username,
                channel_binding,
            } => {
                write!(
                    f,
                    "EWS at {url} refused NTLM authentication of '{username}' (HTTP 401 after the \
                     AUTHENTICATE): check exchange.username (DOMAIN\\user or user@domain) and the \
                     password; the account may be locked"
                )?;
                if *channel_binding {
                    write!(
                        f,
                        "; if they are right, a TLS-inspecting proxy in front of Exchange breaks the \
                         channel binding that Extended Protection checks"
                    )?;
                }
                Ok(())
            }
            EwsError::NtlmGaveUp { url, username } => write!(
                f,
                "EWS at {url}: NTLM authentication of '{username}' was refused {} times; not trying \
                 again until restart, so that the account is not locked out",
                super::ntlm::MAX_ATTEMPTS
            ),
            EwsError::NtlmNotOffered { url, offered } => write!(
                f,
                "EWS at {url} does not offer NTLM or Negotiate (HTTP 401, offered: {}): switch on \
                 Windows authentication on the EWS virtual directory, or set exchange.auth to what \
                 the server offers",
                if offered.is_empty() {
                    "nothing".to_string()
                } else {
                    offered.join(", ")
                }
            ),
            EwsError::Ntlm { url, detail } => {
                write!(f, "EWS at {url}: NTLM authentication failed: {detail}")
            }
            EwsError::TokenRefused { url } => write!(
                f,
                "EWS at {url} refused the OAuth2 token, also a freshly fetched one (HTTP 401): check that \
                 the app registration has the Office 365 Exchange Online application permission \
                 full_access_as_app with admin consent, and exchange.tenant_id and exchange.client_id"
            ),
            EwsError::Token { detail } => {
                write!(f, "could not get an OAuth2 token for EWS: {detail}")
            }
            EwsError::Forbidden { url } => write!(
                f,
                "EWS at {url} answered HTTP 403 Forbidden: check that the service account may use EWS \
                 (Set-CASMailbox -EWSEnabled, the organization's EwsApplicationAccessPolicy) and that \
                 no proxy in between blocks the request"
            ),
            EwsError::Throttled { url, status, .. } => write!(
                f,
                "EWS at {url} is unavailable or throttling requests (HTTP {status}); the request is \
                 repeated later"
            ),
            EwsError::ServerBusy { url, .. } => write!(
                f,
                "EWS at {url} is busy (ErrorServerBusy): the service account is being throttled; if this \
                 persists, check its EWS throttling policy or raise sync.poll_interval_secs"
            ),
            EwsError::SchemaValidation { url, message } => write!(
                f,
                "EWS at {url} rejected the request as invalid (ErrorSchemaValidation: {message}): the \
                 server must be Exchange 2013 SP1 or later; otherwise please report this as a bug"
            ),
            EwsError::InvalidServerVersion { url, message } => write!(
                f,
                "EWS at {url} does not accept Exchange2013_SP1 requests (ErrorInvalidServerVersion: \
                 {message}): exchange-status-sync needs Exchange 2013 SP1 or later"
            ),
            EwsError::Fault { url, code, message } => {
                write!(f, "EWS at {url} failed the request with {code}: {message}")?;
                let as_mailbox = MailboxError {
                    code: code.clone(),
                    message: String::new(),
                };
                match as_mailbox.hint() {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
            EwsError::Status {
                url,
                status,
                redirect,
            } => {
                write!(f, "EWS at {url} answered HTTP {status} without a SOAP response")?;
                if let (300..=399, Some(hint)) = (status, redirect) {
                    return write!(
                        f,
                        " (a redirect): {hint}, unless that is a login page (e.g. AD FS \
                         pre-authentication on a reverse proxy) in front of EWS"
                    );
                }
                match status {
                    404 | 405 => write!(
                        f,
                        ": check exchange.url; it normally ends in /EWS/Exchange.asmx"
                    ),
                    300..=399 => write!(
                        f,
                        " (a redirect): check exchange.url, and that no login page (e.g. AD FS \
                         pre-authentication on a reverse proxy) sits in front of EWS"
                    ),
                    _ => write!(f, ": check the Exchange server's health and event log"),
                }
            }
            EwsError::Malformed { url, detail } => write!(
                f,
                "EWS at {url} sent a response that cannot be read ({detail}); check that exchange.url \
                 points at EWS itself and not at a login page or proxy"
            ),
        }
    }
}

impl std::error::Error for EwsError {}

impl From<HttpError> for EwsError {
    fn from(e: HttpError) -> Self {
        EwsError::Http(e)
    }
}

impl From<EwsError> for SourceError {
    fn from(e: EwsError) -> Self {
        SourceError {
            message: e.to_string(),
            retry_after: e.retry_after(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://mail.example.com/EWS/Exchange.asmx";

    fn check(e: EwsError, contains: &[&str], retry: Option<u64>) {
        let text = e.to_string();
        for c in contains {
            assert!(text.contains(c), "{c:?} not in {text:?}");
        }
        assert_eq!(e.retry_after(), retry.map(Duration::from_secs), "{text}");
        let s = SourceError::from(e);
        assert_eq!(s.message, text);
        assert_eq!(s.retry_after, retry.map(Duration::from_secs));
    }

    #[test]
    fn every_variant_tells_what_to_check() {
        let url = URL.to_string();
        check(
            EwsError::Http(HttpError::Timeout {
                url: url.clone(),
                limit: std::time::Duration::from_secs(30),
            }),
            &["EWS request failed", URL],
            None,
        );
        check(
            EwsError::Http(HttpError::Tls {
                url: url.clone(),
                detail: "invalid peer certificate: UnknownIssuer".into(),
            }),
            &["UnknownIssuer", "exchange.ca_file"],
            None,
        );
        assert!(!EwsError::Http(HttpError::Tls {
            url: url.clone(),
            detail: "x".into()
        })
        .to_string()
        .contains("starface"));
        check(
            EwsError::BasicRefused {
                url: url.clone(),
                username: "svc@example.com".into(),
                offered: vec![],
            },
            &[
                "HTTP 401",
                "svc@example.com",
                "Basic authentication is enabled",
            ],
            None,
        );
        check(
            EwsError::BasicRefused {
                url: url.clone(),
                username: "svc@example.com".into(),
                offered: vec!["Negotiate".into(), "NTLM".into()],
            },
            &[
                "refused Basic authentication of 'svc@example.com' (HTTP 401)",
                "the server offers Negotiate, NTLM; config says basic \u{2192} set auth = \"ntlm\"",
            ],
            None,
        );
        check(
            EwsError::BasicRefused {
                url: url.clone(),
                username: "svc@example.com".into(),
                offered: vec!["Negotiate".into(), "NTLM".into(), "Basic".into()],
            },
            &[
                "Basic authentication is enabled",
                "; the server offers Negotiate, NTLM, Basic",
            ],
            None,
        );
        check(
            EwsError::TokenRefused { url: url.clone() },
            &["full_access_as_app", "HTTP 401"],
            None,
        );
        check(
            EwsError::Token {
                detail: "invalid_client".into(),
            },
            &["OAuth2 token", "invalid_client"],
            None,
        );
        check(
            EwsError::Forbidden { url: url.clone() },
            &["403", "EWSEnabled"],
            None,
        );
        check(
            EwsError::Throttled {
                url: url.clone(),
                status: 503,
                wait: Duration::from_secs(5),
            },
            &["HTTP 503"],
            Some(5),
        );
        check(
            EwsError::ServerBusy {
                url: url.clone(),
                wait: Duration::from_secs(60),
            },
            &["ErrorServerBusy", "throttling policy"],
            Some(60),
        );
        check(
            EwsError::SchemaValidation {
                url: url.clone(),
                message: "line 3".into(),
            },
            &["ErrorSchemaValidation: line 3", "2013 SP1"],
            None,
        );
        check(
            EwsError::InvalidServerVersion {
                url: url.clone(),
                message: "x".into(),
            },
            &["ErrorInvalidServerVersion", "2013 SP1 or later"],
            None,
        );
        check(
            EwsError::Fault {
                url: url.clone(),
                code: "ErrorImpersonateUserDenied".into(),
                message: "denied".into(),
            },
            &[
                "ErrorImpersonateUserDenied: denied",
                "ApplicationImpersonation",
            ],
            None,
        );
        check(
            EwsError::Status {
                url: url.clone(),
                status: 404,
                redirect: None,
            },
            &["HTTP 404", "/EWS/Exchange.asmx"],
            None,
        );
        check(
            EwsError::Status {
                url: url.clone(),
                status: 302,
                redirect: None,
            },
            &["HTTP 302", "a redirect", "login page"],
            None,
        );
        check(
            EwsError::Status {
                url: url.clone(),
                status: 301,
                redirect: Some(
                    "the server redirects to https://mail.example.com/EWS/Exchange.asmx; set exchange.url to https://mail.example.com/EWS/Exchange.asmx"
                        .into(),
                ),
            },
            &[
                "HTTP 301 without a SOAP response (a redirect): the server redirects to https://mail.example.com/EWS/Exchange.asmx; set exchange.url to https://mail.example.com/EWS/Exchange.asmx, unless",
            ],
            None,
        );
        check(
            EwsError::Status {
                url: url.clone(),
                status: 500,
                redirect: None,
            },
            &["HTTP 500", "event log"],
            None,
        );
        check(
            EwsError::Malformed {
                url,
                detail: "truncated".into(),
            },
            &["cannot be read (truncated)"],
            None,
        );
    }
}
