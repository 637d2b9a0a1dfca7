//! Exchange Web Services: Exchange on-premises (Basic authentication) and Exchange Online
//! (OAuth2 with impersonation), `docs/contract.md`, section 7.3.
//!
//! `request` builds the SOAP bodies and `response` reads the answers, both pure; this module is
//! the thin transport between them: authentication, impersonation headers, one token refresh on
//! a 401, and the throttling rule (ErrorServerBusy, 429, 503 → wait as the server asks, if the
//! caller's `Throttle` allows, and send the same request again).
//!
//! A mailbox's own problem (no such mailbox, no rights, an appointment that cannot be read)
//! is that mailbox's result. A request that fails as a whole (no connection, refused
//! credentials, throttling the caller will not wait for, a response that cannot be read) fails
//! the whole `fetch`: the caller keeps its last known appointments (`docs/contract.md`, section 9)
//! rather than acting on a partial picture, and no further requests are sent into a failing
//! server.

pub(crate) mod error;
pub mod ntlm;
pub mod request;
pub mod response;

use base64::Engine as _;

pub use error::EwsError;
use response::{Operation, Parsed};

use crate::config::{EwsAuth, ExchangeConfig, Lookup, Secret};
use crate::exchange::oauth::TokenSource;
use crate::exchange::{
    address_problem, CalendarSource, MailboxError, MailboxResult, SourceError, Throttle,
};
use crate::http::{redact_url, HttpClient, Request, Response};
use crate::model::Window;
use crate::secrets;

/// The OAuth2 scope of EWS in Exchange Online.
pub const OAUTH_SCOPE: &str = "https://outlook.office365.com/.default";

/// How many times a GetUserAvailability batch is sent again anchored on its next mailbox when
/// the impersonated one is refused as a mailbox of its own (it does not exist, or the app may
/// not impersonate it). More refusals than this point at the app's rights, not at one mailbox.
const MAX_REANCHORS: usize = 2;

/// SOAP fault codes that concern the one mailbox a request impersonates (or reads), not the
/// service as a whole: they become that mailbox's result.
fn is_mailbox_fault(code: &str) -> bool {
    matches!(
        code,
        "ErrorNonExistentMailbox"
            | "ErrorMailRecipientNotFound"
            | "ErrorInvalidSmtpAddress"
            | "ErrorImpersonateUserDenied"
            | "ErrorImpersonationFailed"
            | "ErrorNoFreeBusyAccess"
            | "ErrorAccessDenied"
            | "ErrorFolderNotFound"
            | "ErrorMailboxMoveInProgress"
            | "ErrorMailboxStoreUnavailable"
    )
}

/// How we prove who we are.
enum Auth {
    /// The `Authorization` header value, computed once.
    Basic {
        username: String,
        header: Secret,
    },
    OAuth2(TokenSource),
    /// NTLM on the connection; `scheme` is the one the server took last (`NTLM` or `Negotiate`).
    Ntlm {
        credential: ntlm::NtlmCredential,
        scheme: &'static str,
        /// Whether the last handshake carried a channel binding (`None`: none yet).
        bound: Option<bool>,
    },
}

/// The EWS calendar source.
pub struct EwsSource {
    url: String,
    /// `url` without user-info or query, for messages.
    shown_url: String,
    http: HttpClient,
    auth: Auth,
    lookup: Lookup,
    impersonation: bool,
}

impl std::fmt::Debug for EwsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            Auth::Basic { username, .. } => format!("Basic({username})"),
            Auth::OAuth2(_) => "OAuth2".to_string(),
            Auth::Ntlm { credential, .. } => format!("NTLM({})", credential.username()),
        };
        f.debug_struct("EwsSource")
            .field("url", &self.shown_url)
            .field("auth", &auth)
            .field("lookup", &self.lookup)
            .field("impersonation", &self.impersonation)
            .finish_non_exhaustive()
    }
}

impl EwsSource {
    pub fn new(cfg: &ExchangeConfig, http: HttpClient) -> EwsSource {
        let auth = match cfg.auth {
            EwsAuth::Basic => {
                let password = cfg.password.as_ref().map_or("", Secret::expose);
                let pair = format!("{}:{password}", cfg.username);
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                secrets::register(password);
                secrets::register(&encoded);
                Auth::Basic {
                    username: cfg.username.clone(),
                    header: Secret::new(format!("Basic {encoded}")),
                }
            }
            EwsAuth::Ntlm => Auth::Ntlm {
                credential: ntlm::NtlmCredential::new(
                    &cfg.username,
                    cfg.password.as_ref().unwrap_or(&Secret::new("")),
                ),
                scheme: "NTLM",
                bound: None,
            },
            EwsAuth::OAuth2 => Auth::OAuth2(TokenSource::new(
                &cfg.token_url,
                &cfg.client_id,
                cfg.client_secret.clone().unwrap_or_else(|| Secret::new("")),
                OAUTH_SCOPE,
            )),
        };
        EwsSource {
            url: cfg.url.clone(),
            shown_url: redact_url(&cfg.url),
            http,
            impersonation: cfg.impersonation || cfg.auth == EwsAuth::OAuth2,
            auth,
            lookup: cfg.lookup,
        }
    }

    fn oauth(&self) -> bool {
        matches!(self.auth, Auth::OAuth2(_))
    }

    /// Sends `body`, waiting and sending it again while the server throttles and `throttle`
    /// allows it.
    fn call(
        &mut self,
        op: Operation,
        body: &str,
        impersonate: Option<&str>,
        throttle: &mut dyn Throttle,
    ) -> Result<Vec<MailboxResult>, EwsError> {
        loop {
            match self.attempt(op, body, impersonate) {
                Err(e) => match e.retry_after() {
                    Some(wait) if throttle.pause(wait) => {
                        log::info!(
                            "EWS asked to wait {}; sending the request again",
                            crate::time::duration_text(wait)
                        );
                    }
                    _ => return Err(e),
                },
                ok => return ok,
            }
        }
    }

    /// One exchange with the server (two with a token refresh after a 401).
    fn attempt(
        &mut self,
        op: Operation,
        body: &str,
        impersonate: Option<&str>,
    ) -> Result<Vec<MailboxResult>, EwsError> {
        let mut refreshed = false;
        loop {
            let authorization = match &mut self.auth {
                Auth::Ntlm { .. } => String::new(),
                Auth::Basic { header, .. } => header.expose().to_string(),
                Auth::OAuth2(tokens) => {
                    let token = tokens.token(&self.http).map_err(|e| EwsError::Token {
                        detail: e.to_string(),
                    })?;
                    format!("Bearer {token}")
                }
            };
            let mut req = Request::new("POST", self.url.as_str())
                .header("Content-Type", "text/xml; charset=utf-8")
                .header("Accept", "text/xml")
                .header("SOAPAction", request::soap_action(op.name()))
                .body(body.as_bytes().to_vec());
            if !authorization.is_empty() {
                req = req.header("Authorization", authorization);
            }
            if let Some(mailbox) = impersonate {
                // Exchange Online routes the request to the impersonated mailbox's server.
                req = req.header("X-AnchorMailbox", mailbox);
            }
            log::debug!(
                "EWS {} to {}{}",
                op.name(),
                self.shown_url,
                impersonate.map_or(String::new(), |m| format!(" as {m}"))
            );
            if matches!(self.auth, Auth::Ntlm { .. }) {
                let resp = self.send_ntlm(&req)?;
                return self.interpret(op, &resp);
            }
            let resp = self.http.send(&req)?;
            if resp.status == 401 {
                if let Auth::OAuth2(tokens) = &mut self.auth {
                    if !refreshed {
                        // The token may have been revoked before its expiry: fetch a new one once.
                        tokens.invalidate();
                        refreshed = true;
                        continue;
                    }
                }
            }
            return self.interpret(op, &resp);
        }
    }

    /// Sends `req` over a connection authenticated with NTLM: an authenticated connection
    /// carries it as it is; otherwise NEGOTIATE, the server's CHALLENGE and the AUTHENTICATE
    /// carrying `req` go over one connection (in the scheme the server offers), bound to the
    /// server's certificate over HTTPS. A refused AUTHENTICATE counts against the run's
    /// attempts; when they are spent no handshake is tried any more.
    fn send_ntlm(&mut self, req: &Request) -> Result<Response, EwsError> {
        let Auth::Ntlm {
            credential,
            scheme,
            bound,
        } = &mut self.auth
        else {
            return Ok(self.http.send(req)?);
        };
        let url = || self.shown_url.clone();
        let mut session = self.http.session();
        session.open(&self.url)?;
        if session.authenticated() {
            // A 401 here (the server forgot the connection, or a retry went over a new one) is
            // answered by a handshake on the connection now held.
            let resp = session.send(req)?;
            if resp.status != 401 {
                return Ok(resp);
            }
        }
        if !credential.may_try() {
            return Err(EwsError::NtlmGaveUp {
                url: url(),
                username: credential.username().to_string(),
            });
        }
        let negotiate = crate::http::ntlm::negotiate();
        let mut offered_schemes = Vec::new();
        for _ in 0..2 {
            if session.connection_id().is_none() {
                session.open(&self.url)?;
            }
            let probe = Request::new("POST", self.url.as_str())
                .header("Content-Type", "text/xml; charset=utf-8")
                .header(
                    "Authorization",
                    ntlm::authorization(scheme, &negotiate).expose(),
                );
            let answer = session.send_held(&probe)?;
            if answer.status != 401 {
                // The server did not ask for authentication after all: send the request.
                return Ok(session.send(req)?);
            }
            let values: Vec<&str> = answer
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("WWW-Authenticate"))
                .map(|(_, v)| v.as_str())
                .collect();
            offered_schemes = answer.offered_schemes();
            let challenge = match ntlm::challenge(&values, scheme) {
                Ok(challenge) => challenge,
                Err(e) => match ntlm::pick_scheme(&values) {
                    // A Negotiate-only server answers an NTLM token with its plain offer.
                    Some(other) if other != *scheme => {
                        *scheme = other;
                        continue;
                    }
                    _ if values.is_empty() || ntlm::pick_scheme(&values).is_none() => {
                        return Err(EwsError::NtlmNotOffered {
                            url: url(),
                            offered: offered_schemes,
                        })
                    }
                    _ => {
                        return Err(EwsError::Ntlm {
                            url: url(),
                            detail: e.to_string(),
                        })
                    }
                },
            };
            let certificate = session.peer_certificate();
            let authenticate = credential
                .authenticate(
                    &negotiate,
                    &challenge,
                    certificate.as_deref(),
                    crate::http::ntlm::client_challenge(self.http.request_end()).map_err(|e| {
                        EwsError::Ntlm {
                            url: url(),
                            detail: e.to_string(),
                        }
                    })?,
                    std::time::SystemTime::now(),
                )
                .map_err(|e| EwsError::Ntlm {
                    url: url(),
                    detail: e.to_string(),
                })?;
            let mut signed = req.clone();
            signed.headers.push((
                "Authorization".into(),
                ntlm::authorization(scheme, &authenticate)
                    .expose()
                    .to_string(),
            ));
            let resp = session.send_held(&signed)?;
            if resp.status == 401 {
                credential.refused();
                return Err(EwsError::NtlmRefused {
                    url: url(),
                    username: credential.username().to_string(),
                    channel_binding: certificate.is_some(),
                });
            }
            session.mark_authenticated();
            *bound = Some(certificate.is_some());
            log::debug!(
                "EWS: NTLM{} as {} ({scheme})",
                if certificate.is_some() {
                    ", channel binding"
                } else {
                    ""
                },
                credential.username()
            );
            return Ok(resp);
        }
        Err(EwsError::NtlmNotOffered {
            url: url(),
            offered: offered_schemes,
        })
    }

    /// Turns a response into mailbox results or an error.
    fn interpret(&self, op: Operation, resp: &Response) -> Result<Vec<MailboxResult>, EwsError> {
        let url = || self.shown_url.clone();
        match resp.status {
            401 => {
                return Err(match &self.auth {
                    Auth::Basic { username, .. } => EwsError::BasicRefused {
                        url: url(),
                        username: username.clone(),
                        offered: resp.offered_schemes(),
                    },
                    Auth::OAuth2(_) => EwsError::TokenRefused { url: url() },
                    Auth::Ntlm { credential, .. } => EwsError::NtlmRefused {
                        url: url(),
                        username: credential.username().to_string(),
                        channel_binding: self.url.starts_with("https"),
                    },
                })
            }
            403 => return Err(EwsError::Forbidden { url: url() }),
            429 | 503 => {
                return Err(EwsError::Throttled {
                    url: url(),
                    status: resp.status,
                    wait: resp.retry_after().unwrap_or(error::DEFAULT_BACK_OFF),
                })
            }
            200 | 500 => {}
            status => {
                return Err(EwsError::Status {
                    url: url(),
                    status,
                    redirect: resp.redirect_hint("exchange.url", &self.shown_url),
                })
            }
        }
        let parsed = resp
            .text()
            .map_err(|e| e.to_string())
            .and_then(|text| response::parse(text, op))
            .map(scrubbed);
        match parsed {
            Ok(Parsed::Mailboxes(results)) if resp.status == 200 => Ok(results),
            Ok(Parsed::Mailboxes(_)) | Err(_) if resp.status == 500 => Err(EwsError::Status {
                url: url(),
                status: 500,
                redirect: None,
            }),
            Ok(Parsed::Mailboxes(_)) => Err(EwsError::Status {
                url: url(),
                status: resp.status,
                redirect: None,
            }),
            Err(detail) => Err(EwsError::Malformed { url: url(), detail }),
            Ok(Parsed::Busy(wait)) => Err(EwsError::ServerBusy {
                url: url(),
                wait: wait.unwrap_or(error::DEFAULT_BACK_OFF),
            }),
            Ok(Parsed::Fault(f)) => Err(match f.code.as_str() {
                "ErrorServerBusy" => EwsError::ServerBusy {
                    url: url(),
                    wait: f.back_off.unwrap_or(error::DEFAULT_BACK_OFF),
                },
                "ErrorSchemaValidation" => EwsError::SchemaValidation {
                    url: url(),
                    message: f.message,
                },
                "ErrorInvalidServerVersion" => EwsError::InvalidServerVersion {
                    url: url(),
                    message: f.message,
                },
                _ => EwsError::Fault {
                    url: url(),
                    code: f.code,
                    message: f.message,
                },
            }),
        }
    }

    /// One GetUserAvailability batch (at most 100 mailboxes). With OAuth2 the request
    /// impersonates the batch's first mailbox; if Exchange refuses that mailbox, it gets the
    /// error and the rest is sent again anchored on the next one.
    fn availability_batch(
        &mut self,
        batch: &[String],
        window: Window,
        throttle: &mut dyn Throttle,
    ) -> Result<Vec<MailboxResult>, EwsError> {
        let mut out = Vec::with_capacity(batch.len());
        let mut rest = batch;
        let mut reanchors = 0;
        while !rest.is_empty() {
            let anchor = if self.oauth() {
                rest.first().map(String::as_str)
            } else {
                None
            };
            let body = request::get_user_availability(rest, window, anchor);
            match self.call(Operation::GetUserAvailability, &body, anchor, throttle) {
                Ok(results) if results.len() == rest.len() => {
                    out.extend(results);
                    return Ok(out);
                }
                Ok(results) => {
                    return Err(EwsError::Malformed {
                        url: self.shown_url.clone(),
                        detail: format!(
                            "{} mailboxes were asked for but {} answered",
                            rest.len(),
                            results.len()
                        ),
                    })
                }
                Err(EwsError::Fault { code, message, .. })
                    if anchor.is_some() && is_mailbox_fault(&code) && reanchors < MAX_REANCHORS =>
                {
                    log::debug!("EWS refused to impersonate {}: {code}", rest[0]);
                    out.push(Err(MailboxError { code, message }));
                    rest = &rest[1..];
                    reanchors += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One FindItem request for one mailbox.
    fn calendar(
        &mut self,
        mailbox: &str,
        window: Window,
        throttle: &mut dyn Throttle,
    ) -> Result<MailboxResult, EwsError> {
        let impersonate = self.impersonation.then_some(mailbox);
        let body = request::find_item(mailbox, window, impersonate);
        match self.call(Operation::FindItem, &body, impersonate, throttle) {
            Ok(mut results) if results.len() == 1 => Ok(results.remove(0)),
            Ok(results) => Err(EwsError::Malformed {
                url: self.shown_url.clone(),
                detail: format!("FindItem for one mailbox got {} answers", results.len()),
            }),
            Err(EwsError::Fault { code, message, .. }) if is_mailbox_fault(&code) => {
                Ok(Err(MailboxError { code, message }))
            }
            Err(e) => Err(e),
        }
    }
}

/// The parsed answer with every text Exchange wrote (a fault's faultstring, a mailbox's
/// MessageText) scrubbed of the secrets the process knows: a server may echo the request's
/// `Authorization` header in them.
fn scrubbed(parsed: Parsed) -> Parsed {
    match parsed {
        Parsed::Fault(mut f) => {
            f.message = secrets::scrub(&f.message);
            Parsed::Fault(f)
        }
        Parsed::Mailboxes(results) => Parsed::Mailboxes(
            results
                .into_iter()
                .map(|r| {
                    r.map_err(|e| MailboxError {
                        code: secrets::scrub(&e.code),
                        message: secrets::scrub(&e.message),
                    })
                })
                .collect(),
        ),
        busy => busy,
    }
}

impl CalendarSource for EwsSource {
    fn authentication(&self) -> Option<String> {
        Some(match &self.auth {
            Auth::Basic { .. } => "EWS: Basic".to_string(),
            Auth::OAuth2(_) => "EWS: OAuth2".to_string(),
            Auth::Ntlm {
                bound: Some(true), ..
            } => "EWS: NTLM, channel binding".to_string(),
            Auth::Ntlm { .. } => "EWS: NTLM".to_string(),
        })
    }

    fn fetch(
        &mut self,
        mailboxes: &[String],
        window: Window,
        throttle: &mut dyn Throttle,
    ) -> Result<Vec<MailboxResult>, SourceError> {
        // An address that cannot go into a request fails alone, before any request is built.
        let mut results: Vec<Option<MailboxResult>> = mailboxes
            .iter()
            .map(|m| address_problem(m).map(Err))
            .collect();
        let usable: Vec<String> = mailboxes
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_none())
            .map(|(m, _)| m.clone())
            .collect();
        let mut read: Vec<MailboxResult> = Vec::with_capacity(usable.len());
        let outcome: Result<(), EwsError> = match self.lookup {
            Lookup::Availability => request::batches(&usable).try_for_each(|batch| {
                read.extend(self.availability_batch(batch, window, throttle)?);
                Ok(())
            }),
            Lookup::Calendar => usable.iter().try_for_each(|mailbox| {
                read.push(self.calendar(mailbox, window, throttle)?);
                Ok(())
            }),
        };
        match outcome {
            Ok(()) => {}
            // Throttled past the waiting budget after some mailboxes answered: those are
            // handled, the rest fail as throttled. No further request goes to a server that
            // throttles the service account.
            Err(e) if e.retry_after().is_some() && !read.is_empty() => {
                let failed = MailboxError {
                    code: "Throttled".into(),
                    message: format!("{e}; this mailbox is read again at the next poll"),
                };
                read.resize(usable.len(), Err(failed));
            }
            Err(e) => return Err(e.into()),
        }
        let mut read = read.into_iter();
        for slot in results.iter_mut().filter(|r| r.is_none()) {
            *slot = read.next();
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(MailboxError {
                        code: "NoResponse".into(),
                        message: "Exchange gave no answer for this mailbox".into(),
                    })
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;
    use crate::http::HttpOptions;
    use std::time::Duration;

    fn config(auth: EwsAuth, impersonation: bool) -> ExchangeConfig {
        ExchangeConfig {
            backend: Backend::Ews,
            url: "https://user:pw@mail.example.com/EWS/Exchange.asmx?x=1".into(),
            auth,
            username: "svc@example.com".into(),
            password: Some(Secret::new("hunter2")),
            lookup: Lookup::Calendar,
            impersonation,
            tenant_id: "contoso".into(),
            client_id: "app".into(),
            client_secret: Some(Secret::new("s3cret")),
            token_url: "https://login.example.com/contoso/oauth2/v2.0/token".into(),
            graph_url: String::new(),
            ca_file: None,
            timeout: Duration::from_secs(5),
        }
    }

    fn check(auth: EwsAuth, impersonation: bool, expect_impersonation: bool) {
        let http = HttpClient::new(&HttpOptions::default()).expect("client");
        let source = EwsSource::new(&config(auth, impersonation), http);
        let debug = format!("{source:?}");
        for secret in ["hunter2", "s3cret", "aHVudGVyMg", "pw@"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert_eq!(source.impersonation, expect_impersonation, "{auth:?}");
        assert!(
            debug.contains("https://mail.example.com/EWS/Exchange.asmx"),
            "{debug}"
        );
    }

    #[test]
    fn echoed_credentials_are_scrubbed_from_faults_and_mailbox_messages() {
        let http = HttpClient::new(&HttpOptions::default()).expect("client");
        let _source = EwsSource::new(&config(EwsAuth::Basic, false), http);
        // base64 of "svc@example.com:hunter2", the value the Authorization header carried.
        let basic = "c3ZjQGV4YW1wbGUuY29tOmh1bnRlcjI=";
        let fault = scrubbed(Parsed::Fault(response::Fault {
            code: "ErrorAccessDenied".into(),
            message: format!("denied for Authorization: Basic {basic} (password hunter2)"),
            back_off: None,
        }));
        let Parsed::Fault(f) = fault else {
            panic!("not a fault")
        };
        assert_eq!(
            f.message,
            "denied for Authorization: Basic [redacted] (password [redacted])"
        );
        let mailboxes = scrubbed(Parsed::Mailboxes(vec![
            Err(MailboxError {
                code: "ErrorMailRecipientNotFound".into(),
                message: format!("no mailbox; request had Basic {basic}"),
            }),
            Ok(Vec::new()),
        ]));
        let Parsed::Mailboxes(results) = mailboxes else {
            panic!("not mailboxes")
        };
        assert_eq!(
            results[0].as_ref().map_err(|e| e.message.as_str()),
            Err("no mailbox; request had Basic [redacted]")
        );
        assert!(results[1].is_ok());
    }

    #[test]
    fn construction_hides_secrets_and_forces_impersonation_with_oauth2() {
        check(EwsAuth::Basic, false, false);
        check(EwsAuth::Basic, true, true);
        check(EwsAuth::OAuth2, false, true);
    }
}
