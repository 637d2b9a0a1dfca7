//! The Microsoft Graph backend (`backend = "graph"`, Exchange Online): app-only OAuth2, each
//! mailbox's `calendarView` requested through JSON batches of 20.
//!
//! The loop keeps a queue of calendarView requests (first pages, then the next pages that
//! `@odata.nextLink` points to) and sends it 20 at a time. Each inner response is handled on
//! its own: a page is added to its mailbox, a 404 or 403 becomes that mailbox's error, and a
//! throttled (429/503) request goes back to the front of the queue after the `Throttle` has
//! waited the `Retry-After` — or the whole fetch gives up with the wait in the error, when the
//! throttle will not wait (the daemon then backs off on its own schedule).

pub mod request;
pub mod response;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::config::{ExchangeConfig, Secret};
use crate::exchange::oauth::{OAuthError, TokenSource};
use crate::exchange::{
    address_problem, CalendarSource, MailboxError, MailboxResult, SourceError, Throttle,
};
use crate::http::{redact_url, HttpClient, Request, Response};
use crate::json;
use crate::model::{Appointment, Window};
use crate::time::duration_text;

use request::{build_batch, calendar_view_path, relative_next_link, MAX_BATCH};
use response::{parse_batch, parse_error, Body, InnerResponse};

/// The OAuth2 scope of Microsoft Graph for app-only access.
pub const SCOPE: &str = "https://graph.microsoft.com/.default";

/// The wait when a throttled answer has no `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Pages read per mailbox and fetch at most (100 events each): a runaway nextLink chain must
/// not keep the poll busy forever.
pub const MAX_PAGES: u32 = 50;

/// Why a whole Graph fetch failed. Each variant's `Display` says what to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    /// No client secret is configured.
    NoSecret,
    /// No access token.
    Token(OAuthError),
    /// Graph could not be reached or did not answer.
    Transport { url: String, detail: String },
    /// Graph refused the token even after a fresh one was fetched.
    Unauthorized { url: String },
    /// Graph asked to wait and the throttle would not wait that long.
    Throttled {
        url: String,
        status: u16,
        wait: Duration,
        mailboxes: usize,
    },
    /// The batch request failed as a whole with another status.
    Status {
        url: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The batch response is not what Graph sends.
    Malformed { url: String, detail: String },
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::NoSecret => f.write_str(
                "the Graph backend needs the app registration's client secret: set exchange.client_secret_file (or client_secret / client_secret_env)",
            ),
            GraphError::Token(e) => write!(f, "Microsoft Graph: {e}"),
            GraphError::Transport { url, detail } => write!(
                f,
                "cannot read calendars from Microsoft Graph at {url}: {detail} (check exchange.graph_url and the network path to graph.microsoft.com)"
            ),
            GraphError::Unauthorized { url } => write!(
                f,
                "Microsoft Graph at {url} refused a freshly fetched access token (HTTP 401) (check that exchange.token_url and exchange.graph_url belong to the same cloud and tenant)"
            ),
            GraphError::Throttled {
                url,
                status,
                wait,
                mailboxes,
            } => write!(
                f,
                "Microsoft Graph at {url} is throttling (HTTP {status}) the calendar reads of {mailboxes} mailbox(es) and asks to wait {} s; not retried within this run's waiting budget",
                wait.as_secs()
            ),
            GraphError::Status {
                url,
                status,
                code,
                message,
            } => {
                write!(f, "Microsoft Graph at {url} answered HTTP {status} {code}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                f.write_str(" (check exchange.graph_url and that the app registration has the application permission Calendars.ReadBasic.All or Calendars.Read with admin consent)")
            }
            GraphError::Malformed { url, detail } => write!(
                f,
                "Microsoft Graph at {url} sent a batch response that cannot be read: {detail}"
            ),
        }
    }
}

impl std::error::Error for GraphError {}

impl From<GraphError> for SourceError {
    fn from(e: GraphError) -> SourceError {
        let retry_after = match &e {
            GraphError::Throttled { wait, .. } => Some(*wait),
            _ => None,
        };
        SourceError {
            message: e.to_string(),
            retry_after,
        }
    }
}

/// One calendarView request still to be answered.
#[derive(Clone, Debug)]
struct Job {
    /// Index into the caller's mailbox list.
    mailbox: usize,
    /// Relative to `graph_url`.
    url: String,
    /// 1 for the first page.
    page: u32,
}

/// What one batch request gave.
enum BatchOutcome {
    Responses(Vec<InnerResponse>),
    /// 429/503 on the batch as a whole.
    Throttled {
        status: u16,
        wait: Duration,
    },
}

/// Reads calendars through Microsoft Graph.
#[derive(Debug)]
pub struct GraphSource {
    graph_url: String,
    http: HttpClient,
    token: TokenSource,
    has_secret: bool,
}

impl GraphSource {
    pub fn new(cfg: &ExchangeConfig, http: HttpClient) -> GraphSource {
        let secret = cfg.client_secret.clone();
        GraphSource {
            graph_url: cfg.graph_url.trim_end_matches('/').to_string(),
            http,
            has_secret: secret.is_some(),
            token: TokenSource::new(
                &cfg.token_url,
                &cfg.client_id,
                secret.unwrap_or_else(|| Secret::new("")),
                SCOPE,
            ),
        }
    }

    fn batch_url(&self) -> String {
        format!("{}/$batch", self.graph_url)
    }

    /// Sends one batch; on 401 fetches a new token and sends it again, once per fetch.
    fn send_batch(
        &mut self,
        jobs: &[Job],
        auth_retry: &mut bool,
    ) -> Result<BatchOutcome, GraphError> {
        let requests: Vec<(String, String)> = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| ((i + 1).to_string(), j.url.clone()))
            .collect();
        let body = build_batch(&requests);
        let url = self.batch_url();
        let shown = redact_url(&url);
        loop {
            let token = self.token.token(&self.http).map_err(GraphError::Token)?;
            let req = Request::new("POST", url.clone())
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(body.clone());
            let resp = self.http.send(&req).map_err(|e| GraphError::Transport {
                url: shown.clone(),
                detail: super::transport_text(&e),
            })?;
            match resp.status {
                401 if *auth_retry => {
                    log::debug!("Graph refused the access token; fetching a new one");
                    *auth_retry = false;
                    self.token.invalidate();
                }
                401 => return Err(GraphError::Unauthorized { url: shown }),
                429 | 503 => {
                    return Ok(BatchOutcome::Throttled {
                        status: resp.status,
                        wait: resp.retry_after().unwrap_or(DEFAULT_RETRY_AFTER),
                    })
                }
                200..=299 => {
                    let malformed = |detail: String| GraphError::Malformed {
                        url: shown.clone(),
                        detail,
                    };
                    let text = resp.text().map_err(|e| malformed(e.to_string()))?;
                    return parse_batch(text)
                        .map(BatchOutcome::Responses)
                        .map_err(malformed);
                }
                status => {
                    let (code, message) = error_of(&resp);
                    return Err(GraphError::Status {
                        url: shown,
                        status,
                        code,
                        message,
                    });
                }
            }
        }
    }

    fn run(
        &mut self,
        mailboxes: &[String],
        window: Window,
        throttle: &mut dyn Throttle,
    ) -> Result<Vec<MailboxResult>, GraphError> {
        if !self.has_secret {
            return Err(GraphError::NoSecret);
        }
        let mut found: Vec<Vec<Appointment>> = vec![Vec::new(); mailboxes.len()];
        // An address that cannot go into a request fails alone, before any request is built.
        let mut results: Vec<Option<MailboxResult>> = mailboxes
            .iter()
            .map(|m| address_problem(m).map(Err))
            .collect();
        let mut queue: VecDeque<Job> = mailboxes
            .iter()
            .enumerate()
            .filter(|(i, _)| results[*i].is_none())
            .map(|(i, m)| Job {
                mailbox: i,
                url: calendar_view_path(m, window),
                page: 1,
            })
            .collect();
        let mut auth_retry = true;
        while !queue.is_empty() {
            let n = queue.len().min(MAX_BATCH);
            let jobs: Vec<Job> = queue.drain(..n).collect();
            let mut responses = match self.send_batch(&jobs, &mut auth_retry)? {
                BatchOutcome::Responses(r) => r,
                BatchOutcome::Throttled { status, wait } => {
                    self.wait_or_give_up(throttle, status, wait, &jobs)?;
                    requeue_front(&mut queue, jobs);
                    continue;
                }
            };
            let mut throttled = Vec::new();
            let mut throttle_status = 0;
            let mut wait = Duration::ZERO;
            let mut unauthorized = Vec::new();
            for (i, job) in jobs.into_iter().enumerate() {
                let id = (i + 1).to_string();
                let m = job.mailbox;
                let Some(at) = responses.iter().position(|r| r.id == id) else {
                    results[m] = Some(Err(MailboxError {
                        code: "NoResponse".into(),
                        message: "the Graph batch response has no answer for this mailbox".into(),
                    }));
                    continue;
                };
                // Taken out (keeping the others' order), so that the page's appointments move.
                let r = responses.remove(at);
                match (r.status, r.body) {
                    (_, Body::Page(Ok(page))) => {
                        found[m].extend(page.appointments);
                        match page.next_link {
                            None => results[m] = Some(Ok(std::mem::take(&mut found[m]))),
                            Some(link) => match self.next_job(&job, &link) {
                                Ok(next) => queue.push_back(next),
                                Err(e) => results[m] = Some(Err(e)),
                            },
                        }
                    }
                    (_, Body::Page(Err(detail))) => {
                        results[m] = Some(Err(MailboxError {
                            code: "MalformedResponse".into(),
                            message: format!(
                                "Graph's calendarView answer cannot be read: {detail}"
                            ),
                        }))
                    }
                    (429 | 503, Body::Other(_)) => {
                        wait = wait.max(r.retry_after.unwrap_or(DEFAULT_RETRY_AFTER));
                        throttle_status = r.status;
                        throttled.push(job);
                    }
                    (401, Body::Other(_)) if auth_retry => unauthorized.push(job),
                    (status, Body::Other(body)) => {
                        results[m] = Some(Err(mailbox_error(status, &body)))
                    }
                }
            }

            if !unauthorized.is_empty() {
                auth_retry = false;
                self.token.invalidate();
                requeue_front(&mut queue, unauthorized);
            }
            if !throttled.is_empty() {
                if self.pause(throttle, throttle_status, wait, throttled.len()) {
                    requeue_front(&mut queue, throttled);
                } else {
                    // Past the waiting budget only these mailboxes fail; the others of the
                    // batch have answered and are handled.
                    for job in throttled {
                        results[job.mailbox] = Some(Err(MailboxError {
                            code: "Throttled".into(),
                            message: format!(
                                "Graph kept throttling this mailbox (HTTP {throttle_status}, Retry-After {}) beyond the time this run may wait; it is read again at the next poll",
                                duration_text(wait)
                            ),
                        }));
                    }
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(MailboxError {
                        code: "NoResponse".into(),
                        message: "Graph gave no answer for this mailbox".into(),
                    })
                })
            })
            .collect())
    }

    /// The request for the page after `job`, from the page's `@odata.nextLink`.
    fn next_job(&self, job: &Job, link: &str) -> Result<Job, MailboxError> {
        if job.page >= MAX_PAGES {
            return Err(MailboxError {
                code: "TooManyPages".into(),
                message: format!(
                    "more than {MAX_PAGES} pages of appointments in the window; reduce sync.lookahead_hours"
                ),
            });
        }
        let url = relative_next_link(&self.graph_url, link).ok_or_else(|| MailboxError {
            code: "InvalidNextLink".into(),
            message: format!(
                "Graph's @odata.nextLink {} is not under exchange.graph_url {}; it is not followed",
                redact_url(link),
                self.graph_url
            ),
        })?;
        Ok(Job {
            mailbox: job.mailbox,
            url,
            page: job.page + 1,
        })
    }

    /// Whether `throttle` waited the `wait` Graph asked for `requests` throttled requests.
    fn pause(
        &self,
        throttle: &mut dyn Throttle,
        status: u16,
        wait: Duration,
        requests: usize,
    ) -> bool {
        log::debug!(
            "Graph throttled {requests} request(s) (HTTP {status}); Retry-After {}",
            duration_text(wait)
        );
        throttle.pause(wait)
    }

    /// The whole `$batch` was throttled: waits, or fails the read when the throttle will not.
    fn wait_or_give_up(
        &self,
        throttle: &mut dyn Throttle,
        status: u16,
        wait: Duration,
        jobs: &[Job],
    ) -> Result<(), GraphError> {
        if self.pause(throttle, status, wait, jobs.len()) {
            return Ok(());
        }
        // A mailbox has at most one request in flight, so requests and mailboxes are as many.
        Err(GraphError::Throttled {
            url: redact_url(&self.batch_url()),
            status,
            wait,
            mailboxes: jobs.len(),
        })
    }
}

impl CalendarSource for GraphSource {
    fn fetch(
        &mut self,
        mailboxes: &[String],
        window: Window,
        throttle: &mut dyn Throttle,
    ) -> Result<Vec<MailboxResult>, SourceError> {
        self.run(mailboxes, window, throttle)
            .map_err(SourceError::from)
    }
}

/// Puts `jobs` back at the front of the queue, in their order.
fn requeue_front(queue: &mut VecDeque<Job>, jobs: Vec<Job>) {
    for job in jobs.into_iter().rev() {
        queue.push_front(job);
    }
}

/// Graph's `(code, message)` from an error response, or `HTTP nnn` when the body has none.
fn error_of(resp: &Response) -> (String, String) {
    resp.text()
        .ok()
        .and_then(|t| json::parse(t).ok())
        .and_then(|v| parse_error(&v))
        .unwrap_or_else(|| (format!("HTTP {}", resp.status), String::new()))
}

/// The error of one mailbox's inner response. Graph's codes for a missing mailbox
/// (`ErrorInvalidUser`, `ResourceNotFound`, `MailboxNotEnabledForRESTAPI`, …) vary, so the
/// status decides the advice.
fn mailbox_error(status: u16, body: &json::Value) -> MailboxError {
    let (code, message) =
        parse_error(body).unwrap_or_else(|| (format!("HTTP {status}"), String::new()));
    let advice = match status {
        404 => "no Exchange Online mailbox for this address: check the user's e-mail address in STARFACE (the mailbox's primary SMTP address)",
        403 => "the app may not read this mailbox: an application access policy or RBAC for Applications scope in Exchange Online may leave it out, or the application permission lacks admin consent",
        _ => "",
    };
    let message = match (message.is_empty(), advice) {
        (true, "") => format!("HTTP {status}"),
        (false, "") => message,
        (true, advice) => advice.to_string(),
        (false, advice) => format!("{message}; {advice}"),
    };
    MailboxError { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Display of each variant, checked for the setting it points the admin to.
    fn check(e: GraphError, contains: &[&str]) {
        let s = e.to_string();
        for want in contains {
            assert!(s.contains(want), "{s}\n lacks {want}");
        }
    }

    #[test]
    fn error_messages() {
        let url = "https://graph.microsoft.com/v1.0/$batch".to_string();
        check(GraphError::NoSecret, &["exchange.client_secret_file"]);
        check(
            GraphError::Token(OAuthError::SecretExpired {
                client_id: "app".into(),
                description: "AADSTS7000222".into(),
            }),
            &["Microsoft Graph: the client secret of application 'app' has expired"],
        );
        check(
            GraphError::Transport {
                url: url.clone(),
                detail: "connection refused".into(),
            },
            &[
                "at https://graph.microsoft.com/v1.0/$batch: connection refused",
                "exchange.graph_url",
            ],
        );
        check(
            GraphError::Unauthorized { url: url.clone() },
            &["HTTP 401", "exchange.token_url"],
        );
        let throttled = GraphError::Throttled {
            url: url.clone(),
            status: 429,
            wait: Duration::from_secs(30),
            mailboxes: 3,
        };
        check(
            throttled.clone(),
            &["HTTP 429", "3 mailbox(es)", "wait 30 s"],
        );
        assert_eq!(
            SourceError::from(throttled).retry_after,
            Some(Duration::from_secs(30))
        );
        check(
            GraphError::Status {
                url: url.clone(),
                status: 403,
                code: "Authorization_RequestDenied".into(),
                message: "Insufficient privileges to complete the operation.".into(),
            },
            &[
                "HTTP 403 Authorization_RequestDenied: Insufficient privileges",
                "Calendars.Read",
            ],
        );
        check(
            GraphError::Malformed {
                url,
                detail: "no \"responses\" member".into(),
            },
            &["cannot be read: no \"responses\" member"],
        );
        assert_eq!(SourceError::from(GraphError::NoSecret).retry_after, None);
    }

    #[test]
    fn mailbox_errors() {
        let body = |t: &str| json::parse(t).unwrap();
        let e = mailbox_error(
            404,
            &body(
                r#"{"error":{"code":"ErrorInvalidUser","message":"The requested user 'x@y' is invalid."}}"#,
            ),
        );
        assert_eq!(e.code, "ErrorInvalidUser");
        assert!(
            e.message
                .starts_with("The requested user 'x@y' is invalid.; no Exchange Online mailbox"),
            "{}",
            e.message
        );
        let e = mailbox_error(
            403,
            &body(
                r#"{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled."}}"#,
            ),
        );
        assert!(
            e.message.contains("application access policy"),
            "{}",
            e.message
        );
        let e = mailbox_error(500, &body("{}"));
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("HTTP 500", "HTTP 500")
        );
        let e = mailbox_error(404, &json::Value::Null);
        assert_eq!(e.code, "HTTP 404");
        assert!(e.message.starts_with("no Exchange Online mailbox"));
        let e = mailbox_error(
            400,
            &body(r#"{"error":{"code":"ErrorInvalidParameter","message":"m"}}"#),
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("ErrorInvalidParameter", "m")
        );
    }
}
