//! What can go wrong talking to STARFACE, worded for the admin who reads the log.
//!
//! URLs in here are always redacted (no query: the XML-RPC URL carries the auth hash there), and
//! no variant holds a password, token or hash.

use std::fmt;

use crate::http::HttpError;

use super::numbers::UserId;

#[derive(Debug)]
pub enum StarfaceError {
    /// The request did not get an HTTP answer (refused, timed out, TLS, too large, …).
    Http { action: String, source: HttpError },
    /// `POST /rest/login` refused the credentials.
    LoginRejected {
        url: String,
        login: String,
        login_type: &'static str,
        status: u16,
    },
    /// Still 401 after logging in again.
    Unauthorized { action: String, url: String },
    /// An HTTP status the API does not document as success.
    Status {
        action: String,
        url: String,
        status: u16,
        detail: String,
    },
    /// A body that is not the JSON or XML the API describes.
    BadResponse {
        action: String,
        url: String,
        detail: String,
    },
    /// The configured group does not exist.
    GroupNotFound {
        group: String,
        available: Vec<String>,
    },
    /// A redirect would be switched on without a destination.
    NoDestination { user: UserId, number: String },
    /// XML-RPC integers are 32-bit; the user id does not fit.
    AccountIdOutOfRange { user: UserId },
    /// The chat entry point answered with a `faultResponse`.
    RpcFault {
        method: String,
        user: UserId,
        code: Option<i64>,
        message: String,
    },
}

impl StarfaceError {
    /// True when the PBX could not be reached or said it is unavailable: worth retrying later,
    /// and not the fault of one user.
    pub fn is_unreachable(&self) -> bool {
        match self {
            // A connection reset mid-answer (Io) is what a restarting PBX looks like, too.
            StarfaceError::Http { source, .. } => {
                source.is_unreachable() || matches!(source, HttpError::Io { .. })
            }
            StarfaceError::Status { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

impl fmt::Display for StarfaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StarfaceError::Http { action, source } if source.is_tls() => write!(
                f,
                "STARFACE: {action} failed: {source}; check [starface] url, and for the PBX's own self-signed certificate (only with the PBX on loopback) set starface.insecure_tls = true"
            ),
            StarfaceError::Http { action, source } => {
                write!(f, "STARFACE: {action} failed: {source}; check that the PBX is running and [starface] url")
            }
            StarfaceError::LoginRejected {
                url,
                login,
                login_type,
                status,
            } => write!(
                f,
                "STARFACE login at {url} as '{login}' was refused (HTTP {status}); check [starface] login, password and login_type (sent as {login_type})"
            ),
            StarfaceError::Unauthorized { action, url } => write!(
                f,
                "STARFACE: {action} at {url} was refused (HTTP 401) right after a fresh login; check that the user in [starface] login has administrator rights"
            ),
            StarfaceError::Status {
                action,
                url,
                status,
                detail,
            } => {
                write!(f, "STARFACE: {action} at {url} failed with HTTP {status}")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            StarfaceError::BadResponse {
                action,
                url,
                detail,
            } => write!(
                f,
                "STARFACE: {action} at {url} gave an answer this program cannot read: {detail}"
            ),
            StarfaceError::GroupNotFound { group, available } => {
                write!(f, "STARFACE group '{group}' does not exist; check [starface] group. ")?;
                if available.is_empty() {
                    write!(f, "The PBX has no groups visible to this login")
                } else {
                    write!(f, "Groups on the PBX: ")?;
                    for (i, name) in available.iter().enumerate() {
                        if i > 0 {
                            write!(f, ", ")?;
                        }
                        write!(f, "'{name}'")?;
                    }
                    Ok(())
                }
            }
            StarfaceError::NoDestination { user, number } => write!(
                f,
                "STARFACE user {user}: the 'always' redirect of number {number} has no destination, so it was not switched on; set a destination for it in the STARFACE user settings"
            ),
            StarfaceError::AccountIdOutOfRange { user } => write!(
                f,
                "STARFACE user {user}: the id does not fit the 32-bit integer XML-RPC can carry, so the chat status cannot be set"
            ),
            StarfaceError::RpcFault {
                method,
                user,
                code,
                message,
            } => {
                write!(f, "STARFACE chat entry point '{method}' failed for user {user}")?;
                if let Some(code) = code {
                    write!(f, " (fault {code})")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                write!(
                    f,
                    "; check that the module publishing [chat] rpc_method is active and takes AccountID, Chatpresence, ChangeText, ChatPresenceText"
                )
            }
        }
    }
}

impl std::error::Error for StarfaceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StarfaceError::Http { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: StarfaceError, text: &str, unreachable: bool) {
        assert_eq!(err.to_string(), text);
        assert_eq!(err.is_unreachable(), unreachable, "{text}");
    }

    #[test]
    fn every_variant_reads_well() {
        // A TLS failure towards the PBX names the STARFACE key, never exchange.ca_file.
        check(
            StarfaceError::Http {
                action: "logging in".into(),
                source: HttpError::Tls {
                    url: "https://pbx/rest/login".into(),
                    detail: "invalid peer certificate: UnknownIssuer".into(),
                },
            },
            "STARFACE: logging in failed: TLS with https://pbx/rest/login failed: invalid peer certificate: UnknownIssuer; check [starface] url, and for the PBX's own self-signed certificate (only with the PBX on loopback) set starface.insecure_tls = true",
            false,
        );
        check(
            StarfaceError::Http {
                action: "reading the users".into(),
                source: HttpError::Timeout {
                    url: "http://pbx/rest/users".into(),
                    limit: std::time::Duration::from_secs(30),
                },
            },
            &format!(
                "STARFACE: reading the users failed: {}; check that the PBX is running and [starface] url",
                HttpError::Timeout { url: "http://pbx/rest/users".into(), limit: std::time::Duration::from_secs(30) }
            ),
            true,
        );
        check(
            StarfaceError::Http {
                action: "reading the users".into(),
                source: HttpError::BadUrl { url: "x".into(), detail: "no scheme".into() },
            },
            &format!(
                "STARFACE: reading the users failed: {}; check that the PBX is running and [starface] url",
                HttpError::BadUrl { url: "x".into(), detail: "no scheme".into() }
            ),
            false,
        );
        check(
            StarfaceError::Http {
                action: "logging in".into(),
                source: HttpError::Io {
                    url: "http://pbx/rest/login".into(),
                    detail: "connection reset".into(),
                },
            },
            &format!(
                "STARFACE: logging in failed: {}; check that the PBX is running and [starface] url",
                HttpError::Io {
                    url: "http://pbx/rest/login".into(),
                    detail: "connection reset".into()
                }
            ),
            true,
        );
        check(
            StarfaceError::LoginRejected {
                url: "http://pbx/rest/login".into(),
                login: "0001".into(),
                login_type: "Internal",
                status: 400,
            },
            "STARFACE login at http://pbx/rest/login as '0001' was refused (HTTP 400); check [starface] login, password and login_type (sent as Internal)",
            false,
        );
        check(
            StarfaceError::Unauthorized {
                action: "reading the users".into(),
                url: "http://pbx/rest/users".into(),
            },
            "STARFACE: reading the users at http://pbx/rest/users was refused (HTTP 401) right after a fresh login; check that the user in [starface] login has administrator rights",
            false,
        );
        check(
            StarfaceError::Status {
                action: "reading the groups".into(),
                url: "http://pbx/rest/groups".into(),
                status: 503,
                detail: String::new(),
            },
            "STARFACE: reading the groups at http://pbx/rest/groups failed with HTTP 503",
            true,
        );
        check(
            StarfaceError::Status {
                action: "reading the groups".into(),
                url: "http://pbx/rest/groups".into(),
                status: 500,
                detail: "boom".into(),
            },
            "STARFACE: reading the groups at http://pbx/rest/groups failed with HTTP 500: boom",
            false,
        );
        check(
            StarfaceError::BadResponse {
                action: "reading the groups".into(),
                url: "http://pbx/rest/groups".into(),
                detail: "invalid JSON at byte 3: expected ':'".into(),
            },
            "STARFACE: reading the groups at http://pbx/rest/groups gave an answer this program cannot read: invalid JSON at byte 3: expected ':'",
            false,
        );
        check(
            StarfaceError::GroupNotFound {
                group: "Sync".into(),
                available: vec!["Sales".into(), "Support".into()],
            },
            "STARFACE group 'Sync' does not exist; check [starface] group. Groups on the PBX: 'Sales', 'Support'",
            false,
        );
        check(
            StarfaceError::GroupNotFound {
                group: "Sync".into(),
                available: vec![],
            },
            "STARFACE group 'Sync' does not exist; check [starface] group. The PBX has no groups visible to this login",
            false,
        );
        check(
            StarfaceError::NoDestination {
                user: 7,
                number: "+49721".into(),
            },
            "STARFACE user 7: the 'always' redirect of number +49721 has no destination, so it was not switched on; set a destination for it in the STARFACE user settings",
            false,
        );
        check(
            StarfaceError::AccountIdOutOfRange { user: 1 << 40 },
            "STARFACE user 1099511627776: the id does not fit the 32-bit integer XML-RPC can carry, so the chat status cannot be set",
            false,
        );
        check(
            StarfaceError::RpcFault {
                method: "chat.set".into(),
                user: 3,
                code: Some(1),
                message: "no such user".into(),
            },
            "STARFACE chat entry point 'chat.set' failed for user 3 (fault 1): no such user; check that the module publishing [chat] rpc_method is active and takes AccountID, Chatpresence, ChangeText, ChatPresenceText",
            false,
        );
        check(
            StarfaceError::RpcFault {
                method: "chat.set".into(),
                user: 3,
                code: None,
                message: String::new(),
            },
            "STARFACE chat entry point 'chat.set' failed for user 3; check that the module publishing [chat] rpc_method is active and takes AccountID, Chatpresence, ChangeText, ChatPresenceText",
            false,
        );
    }
}
