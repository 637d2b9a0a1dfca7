//! Reading calendars: the interface the daemon sees, whatever the backend (EWS or Graph).
//!
//! Each backend keeps its request builders and response parsers pure (text in, values out) and
//! its transport thin. Backends report per-mailbox problems as data (`MailboxError`) so that one
//! unreadable mailbox never hides the others, and whole-request failures as `SourceError`, which
//! carries the server's requested back-off so the caller can decide whether to wait.

use std::fmt;
use std::time::Duration;

use crate::http::HttpError;
use crate::model::{Appointment, Window};

/// An HTTP failure towards Exchange, Graph or the token endpoint in words, with the key that
/// trusts a certificate when TLS failed.
pub fn transport_text(e: &HttpError) -> String {
    if e.is_tls() {
        format!("{e} (for a certificate from an internal CA set exchange.ca_file)")
    } else {
        e.to_string()
    }
}

pub mod ews;
pub mod graph;
pub(crate) mod oauth;

/// What reading one mailbox gave.
pub type MailboxResult = Result<Vec<Appointment>, MailboxError>;

/// A calendar backend.
pub trait CalendarSource {
    /// Reads the appointments of `mailboxes` (e-mail addresses) in `window`. The result has one
    /// entry per mailbox, in the order given.
    fn fetch(
        &mut self,
        mailboxes: &[String],
        window: Window,
        throttle: &mut dyn Throttle,
    ) -> Result<Vec<MailboxResult>, SourceError>;

    /// How the last request authenticated, for `check` (e.g. "EWS: NTLM, channel binding");
    /// `None` when there is nothing to say.
    fn authentication(&self) -> Option<String> {
        None
    }
}

/// Decides what to do when a server asks us to wait (EWS ErrorServerBusy, HTTP 429/503).
pub trait Throttle {
    /// The server asked for `wait` before the next request. Returns `true` after having waited
    /// (the caller then retries), or `false` to give up at once without waiting.
    fn pause(&mut self, wait: Duration) -> bool;
}

/// The throttling rule of `once`: at most 3 retries and at most 60 s of waiting in total; a wait
/// that would pass the budget is not started.
#[derive(Debug)]
pub struct BoundedWait {
    retries_left: u32,
    budget: Duration,
}

impl BoundedWait {
    pub fn new(retries: u32, budget: Duration) -> Self {
        BoundedWait {
            retries_left: retries,
            budget,
        }
    }

    /// The budget `docs/contract.md`, section 7.4, gives `once`.
    pub fn for_once() -> Self {
        Self::new(3, Duration::from_secs(60))
    }

    /// Whether `wait` is still within the budget; consumes it if so. Split from `pause` so that
    /// the rule itself is tested without sleeping.
    pub fn admit(&mut self, wait: Duration) -> bool {
        if self.retries_left == 0 || wait > self.budget {
            return false;
        }
        self.retries_left -= 1;
        self.budget -= wait;
        true
    }
}

impl Throttle for BoundedWait {
    fn pause(&mut self, wait: Duration) -> bool {
        if !self.admit(wait) {
            return false;
        }
        std::thread::sleep(wait);
        true
    }
}

/// Never waits: the daemon gives up the poll and schedules its own back-off instead of blocking
/// the boundary timers.
#[derive(Debug, Default)]
pub struct NoWait;

impl Throttle for NoWait {
    fn pause(&mut self, _wait: Duration) -> bool {
        false
    }
}

/// A problem with one mailbox only (it does not exist, no rights, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxError {
    /// The server's code, e.g. `ErrorNoFreeBusyAccess`, or `HTTP 404` for Graph.
    pub code: String,
    /// The server's message, or ours.
    pub message: String,
}

/// Why `address` cannot go into a request, if it cannot: a control character (from the PBX's
/// user data) would be refused in a header such as `X-AnchorMailbox`. Such a mailbox fails
/// alone; the others are read.
pub fn address_problem(address: &str) -> Option<MailboxError> {
    let c = address
        .chars()
        .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))?;
    Some(MailboxError {
        code: "InvalidAddress".into(),
        message: format!(
            "the e-mail address holds the control character U+{:04X}, which cannot be put in a request; correct the user's e-mail address in STARFACE",
            u32::from(c)
        ),
    })
}

impl MailboxError {
    /// What the admin should check for a given server code.
    pub fn hint(&self) -> Option<&'static str> {
        let hint = match self.code.as_str() {
            "ErrorMailRecipientNotFound" | "ErrorNonExistentMailbox" | "ErrorInvalidSmtpAddress"
            | "ErrorItemNotFound" | "ResourceNotFound" | "MailboxNotEnabledForRESTAPI" => {
                "check the user's e-mail address in STARFACE; it must be the mailbox's primary SMTP address"
            }
            "ErrorNoFreeBusyAccess" | "ErrorAccessDenied" | "ErrorFolderNotFound" | "ErrorAccessDeniedException"
            | "ErrorAccessDenied403" => {
                "give the service account (or app) read access to this calendar: free/busy with details, Reviewer, or impersonation"
            }
            "ErrorImpersonateUserDenied" | "ErrorImpersonationDenied" => {
                "give the service account the ApplicationImpersonation role (or turn impersonation off)"
            }
            _ => return None,
        };
        Some(hint)
    }
}

impl fmt::Display for MailboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(hint) = self.hint() {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// A whole request failed: nothing was read for the mailboxes it covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError {
    /// A sentence for the admin: what failed, where, what to check. Never holds a secret.
    pub message: String,
    /// When the server asked us to wait (throttling), how long.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(wait) = self.retry_after {
            write!(
                f,
                " (server asks to wait {} s)",
                wait.as_secs_f64().ceil() as u64
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(budget_secs: u64, waits: &[u64], expect: &[bool]) {
        let mut b = BoundedWait::new(3, Duration::from_secs(budget_secs));
        let got: Vec<bool> = waits
            .iter()
            .map(|w| b.admit(Duration::from_secs(*w)))
            .collect();
        assert_eq!(got, expect, "budget {budget_secs} s, waits {waits:?}");
    }

    #[test]
    fn bounded_wait() {
        check(60, &[1, 1, 1, 1], &[true, true, true, false]);
        check(60, &[61], &[false]);
        check(60, &[30, 30, 1], &[true, true, false]);
        check(60, &[59, 2, 1], &[true, false, true]);
        check(60, &[60], &[true]);
    }

    #[test]
    fn mailbox_error_display() {
        let e = MailboxError {
            code: "ErrorNoFreeBusyAccess".into(),
            message: "no access".into(),
        };
        assert!(e
            .to_string()
            .starts_with("ErrorNoFreeBusyAccess: no access (give the service account"));
        let e = MailboxError {
            code: "Other".into(),
            message: "x".into(),
        };
        assert_eq!(e.to_string(), "Other: x");
    }

    #[test]
    fn source_error_display() {
        let e = SourceError {
            message: "EWS busy".into(),
            retry_after: Some(Duration::from_millis(1500)),
        };
        assert_eq!(e.to_string(), "EWS busy (server asks to wait 2 s)");
    }
}
