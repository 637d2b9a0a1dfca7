//! OAuth2 access tokens for Exchange Online (Graph, and EWS with `auth = "oauth2"`): the
//! client-credentials grant against Microsoft Entra ID's token endpoint.
//!
//! A token is fetched once and reused until shortly before it expires, so a poll of many
//! mailboxes costs no token request at all. A caller that gets HTTP 401 with a cached token calls
//! `invalidate` and retries once: the token may have been revoked before its time.
//!
//! Entra ID reports problems as `AADSTSnnnn` codes. The common ones each name the configuration
//! setting that is wrong, because "invalid_client" alone does not tell an admin whether the
//! client id, the secret or its expiry is the problem. The access token and the client secret
//! never appear in `Debug` output or in error messages.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::Secret;
use crate::http::{redact_url, HttpClient, Request};
use crate::json::{self, Value};

/// How long before its expiry a cached token is replaced. Five minutes covers clock skew and a
/// slow batch that starts just before the expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How much of an error description from the server is kept in a message.
const MAX_DESCRIPTION: usize = 400;

/// Why no access token could be had. Each variant's `Display` names the setting to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OAuthError {
    /// The token endpoint could not be reached or did not answer (network, TLS, timeout).
    Transport { url: String, message: String },
    /// AADSTS90002 / AADSTS900023: the tenant in the token URL does not exist.
    TenantNotFound { url: String, description: String },
    /// AADSTS700016: no application with this client id in the tenant.
    UnknownClient {
        client_id: String,
        description: String,
    },
    /// AADSTS7000215: the client secret is wrong (often the secret's ID instead of its value).
    InvalidSecret {
        client_id: String,
        description: String,
    },
    /// AADSTS7000222: the client secret has expired.
    SecretExpired {
        client_id: String,
        description: String,
    },
    /// AADSTS65001 / AADSTS500011 / `consent_required`: the application
    /// permission has not been granted by an admin.
    ConsentMissing {
        client_id: String,
        description: String,
    },
    /// `invalid_scope` (AADSTS70011): the endpoint does not accept the scope.
    InvalidScope {
        url: String,
        scope: String,
        description: String,
    },
    /// Any other error the token endpoint reported.
    Rejected {
        url: String,
        status: u16,
        error: String,
        description: String,
    },
    /// An answer that is not a token response (not JSON, no `access_token`, bad `expires_in`).
    BadResponse {
        url: String,
        status: u16,
        message: String,
    },
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OAuthError::Transport { url, message } => write!(
                f,
                "cannot get an OAuth2 token from {url}: {message} (check exchange.token_url and the network path to Microsoft Entra ID)"
            ),
            OAuthError::TenantNotFound { url, description } => write!(
                f,
                "Microsoft Entra ID does not know the tenant in {url}: {description} (check exchange.tenant_id: the directory (tenant) ID or a verified domain such as contoso.onmicrosoft.com)"
            ),
            OAuthError::UnknownClient { client_id, description } => write!(
                f,
                "Microsoft Entra ID has no application with client id '{client_id}' in this tenant: {description} (check exchange.client_id: the Application (client) ID of the app registration, and exchange.tenant_id)"
            ),
            OAuthError::InvalidSecret { client_id, description } => write!(
                f,
                "Microsoft Entra ID rejected the client secret of application '{client_id}': {description} (check exchange.client_secret: it must be the secret's Value, not its Secret ID)"
            ),
            OAuthError::SecretExpired { client_id, description } => write!(
                f,
                "the client secret of application '{client_id}' has expired: {description} (create a new client secret under Certificates & secrets of the app registration and put its Value into exchange.client_secret)"
            ),
            OAuthError::ConsentMissing { client_id, description } => write!(
                f,
                "application '{client_id}' lacks admin consent for the API it calls: {description} (grant admin consent for the application permission in the app registration's API permissions)"
            ),
            OAuthError::InvalidScope { url, scope, description } => write!(
                f,
                "the token endpoint {url} does not accept the scope {scope}: {description} (check exchange.token_url: it must be the v2.0 endpoint, https://login.microsoftonline.com/{{tenant_id}}/oauth2/v2.0/token)"
            ),
            OAuthError::Rejected { url, status, error, description } => write!(
                f,
                "the token endpoint {url} refused a token (HTTP {status}, {error}): {description} (check exchange.tenant_id, exchange.client_id and exchange.client_secret)"
            ),
            OAuthError::BadResponse { url, status, message } => write!(
                f,
                "the token endpoint {url} gave an answer that is not a token (HTTP {status}): {message} (check exchange.token_url)"
            ),
        }
    }
}

impl std::error::Error for OAuthError {}

impl OAuthError {
    /// Replaces `secret` (as sent and form-encoded) in every text of the error: a server that
    /// echoes the request in its error description must not get the secret into our logs.
    fn redacted(mut self, secret: &str) -> OAuthError {
        if secret.is_empty() {
            return self;
        }
        let encoded = form_encode(secret);
        let fields: Vec<&mut String> = match &mut self {
            OAuthError::Transport { message, .. } | OAuthError::BadResponse { message, .. } => {
                vec![message]
            }
            OAuthError::TenantNotFound { description, .. }
            | OAuthError::UnknownClient { description, .. }
            | OAuthError::InvalidSecret { description, .. }
            | OAuthError::SecretExpired { description, .. }
            | OAuthError::ConsentMissing { description, .. }
            | OAuthError::InvalidScope { description, .. } => vec![description],
            OAuthError::Rejected {
                error, description, ..
            } => vec![error, description],
        };
        for f in fields {
            if f.contains(secret) || f.contains(&encoded) {
                *f = f.replace(secret, "***").replace(&encoded, "***");
            }
        }
        self
    }
}

/// The form body of a client-credentials token request.
pub fn build_token_request_body(client_id: &str, client_secret: &str, scope: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
        form_encode(client_id),
        form_encode(client_secret),
        form_encode(scope)
    )
}

/// `application/x-www-form-urlencoded` encoding of one value: unreserved characters stay, a
/// space becomes `+`, everything else `%XX` per UTF-8 byte.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What a token response says, before it is tied to a URL and a client for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TokenReply {
    Token {
        access_token: String,
        expires_in: u64,
    },
    Error {
        error: String,
        codes: Vec<u64>,
        description: String,
    },
}

fn classify(
    status: u16,
    body: &str,
    url: &str,
    client_id: &str,
    scope: &str,
) -> Result<(String, u64), OAuthError> {
    let bad = |message: String| OAuthError::BadResponse {
        url: url.to_string(),
        status,
        message,
    };
    let reply = read_reply(status, body).map_err(bad)?;
    let (error, codes, description) = match reply {
        TokenReply::Token {
            access_token,
            expires_in,
        } => return Ok((access_token, expires_in)),
        TokenReply::Error {
            error,
            codes,
            description,
        } => (error, codes, description),
    };
    let has = |code: u64| codes.contains(&code);
    let client_id = client_id.to_string();
    let url = url.to_string();
    Err(if has(90002) || has(900023) {
        OAuthError::TenantNotFound { url, description }
    } else if has(700016) {
        OAuthError::UnknownClient {
            client_id,
            description,
        }
    } else if has(7000222) {
        OAuthError::SecretExpired {
            client_id,
            description,
        }
    } else if has(7000215) {
        OAuthError::InvalidSecret {
            client_id,
            description,
        }
    } else if has(65001) || has(500011) || error == "consent_required" {
        OAuthError::ConsentMissing {
            client_id,
            description,
        }
    } else if error == "invalid_scope" || has(70011) {
        OAuthError::InvalidScope {
            url,
            scope: scope.to_string(),
            description,
        }
    } else {
        OAuthError::Rejected {
            url,
            status,
            error,
            description,
        }
    })
}

/// The JSON layer of the answer. On a 2xx the body must carry `access_token` and `expires_in`
/// (a number, or a string of digits as older endpoints sent); otherwise it should carry `error`.
fn read_reply(status: u16, body: &str) -> Result<TokenReply, String> {
    let value = json::parse(body).map_err(|e| e.to_string())?;
    if value.as_object().is_none() {
        return Err(format!(
            "expected a JSON object, found {}",
            value.type_name()
        ));
    }
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    if (200..300).contains(&status) {
        let access_token = text("access_token")
            .filter(|t| !t.is_empty())
            .ok_or("no access_token in the answer")?;
        let expires_in = match value.get("expires_in") {
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(v) => v.as_u64(),
            None => None,
        }
        .ok_or("no usable expires_in in the answer")?;
        return Ok(TokenReply::Token {
            access_token: access_token.to_string(),
            expires_in,
        });
    }
    let error = text("error").ok_or("an error status without an OAuth2 error")?;
    let description = text("error_description").unwrap_or("");
    let mut codes: Vec<u64> = value
        .get("error_codes")
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    // Some proxies and older endpoints drop `error_codes`; the description still starts with
    // the code.
    if codes.is_empty() {
        codes.extend(aadsts_code(description));
    }
    Ok(TokenReply::Error {
        error: error.to_string(),
        codes,
        description: first_line(description),
    })
}

/// The number of the first `AADSTSnnnn` in a description.
fn aadsts_code(description: &str) -> Option<u64> {
    let at = description.find("AADSTS")? + "AADSTS".len();
    let digits: String = description[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Entra ID descriptions run on with trace and correlation ids over several lines; the first line
/// is the message. Capped so that a hostile server cannot flood the log.
fn first_line(description: &str) -> String {
    let line = description.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(MAX_DESCRIPTION) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// The longest token lifetime we believe.
const MAX_LIFETIME_SECS: u64 = 86_400;

/// A cached token and when to stop using it.
struct Cached {
    token: Secret,
    refresh_at: Instant,
}

/// Fetches and caches the access token of one app registration for one scope.
pub struct TokenSource {
    token_url: String,
    client_id: String,
    client_secret: Secret,
    scope: String,
    cached: Option<Cached>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &redact_url(&self.token_url))
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scope", &self.scope)
            .field("cached", &self.cached.is_some())
            .finish()
    }
}

impl TokenSource {
    pub fn new(
        token_url: &str,
        client_id: &str,
        client_secret: Secret,
        scope: &str,
    ) -> TokenSource {
        TokenSource {
            token_url: token_url.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            scope: scope.to_string(),
            cached: None,
        }
    }

    /// The access token: the cached one while it is fresh, else a new one from the endpoint.
    pub fn token(&mut self, http: &HttpClient) -> Result<String, OAuthError> {
        self.token_with(Instant::now(), |url, body| {
            let req = Request::new("POST", url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Accept", "application/json")
                .body(body);
            let transport = |message: String| OAuthError::Transport {
                url: redact_url(url),
                message,
            };
            let resp = http.send(&req).map_err(|e| transport(e.to_string()))?;
            let text = resp.text().map_err(|e| transport(e.to_string()))?;
            Ok((resp.status, text.to_string()))
        })
    }

    /// Drops the cached token, so that the next `token` call fetches a new one. Called after a
    /// 401 from the API that the token was for.
    pub fn invalidate(&mut self) {
        self.cached = None;
    }

    /// `token` with the clock and the transport passed in, so that caching is tested without
    /// waiting or a server. `post(url, body)` returns the status and the body text.
    pub fn token_with(
        &mut self,
        now: Instant,
        post: impl FnOnce(&str, String) -> Result<(u16, String), OAuthError>,
    ) -> Result<String, OAuthError> {
        if let Some(c) = &self.cached {
            if now < c.refresh_at {
                return Ok(c.token.expose().to_string());
            }
        }
        self.cached = None;
        let body =
            build_token_request_body(&self.client_id, self.client_secret.expose(), &self.scope);
        let secret = self.client_secret.expose();
        let (status, text) = post(&self.token_url, body).map_err(|e| e.redacted(secret))?;
        // A server that echoes the request must not get the secret into a message: redact the
        // whole answer before any part of it is cut out for an error.
        let text = if secret.is_empty() {
            text
        } else {
            text.replace(secret, "***")
        };
        let (token, expires_in) = classify(
            status,
            &text,
            &redact_url(&self.token_url),
            &self.client_id,
            &self.scope,
        )
        .map_err(|e| e.redacted(secret))?;
        // A day at most: Entra ID issues tokens for about an hour, and an absurd value from a
        // broken or hostile server must neither overflow the clock nor pin a token forever.
        let lifetime = Duration::from_secs(expires_in.min(MAX_LIFETIME_SECS));
        // A token that lives less than twice the margin (test servers, odd policies) is used for
        // half its life instead.
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        self.cached = Some(Cached {
            token: Secret::new(token.clone()),
            refresh_at: now + (lifetime - margin),
        });
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entra ID's error body for the given error and code, as documented in "Microsoft Entra
    /// authentication and authorization error codes".
    fn aad_error(error: &str, code: u64, text: &str) -> String {
        format!(
            r#"{{"error":"{error}","error_description":"AADSTS{code}: {text}\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2026-11-29 08:00:00Z","error_codes":[{code}],"timestamp":"2026-11-29 08:00:00Z","trace_id":"0000aaaa-11bb-cccc-dd22-eeeeee333333","correlation_id":"aaaa0000-bb11-2222-33cc-444444dddddd","error_uri":"https://login.microsoftonline.com/error?code={code}"}}"#
        )
    }

    /// Runs a response through the classification a `TokenSource` applies and compares the
    /// outcome: `Ok("token/expires")` or `Err("Variant: display")`.
    /// A token endpoint's answer read as `TokenSource` reads it, with placeholders for the URL
    /// and client id.
    fn parse_token_response(status: u16, body: &str) -> Result<(String, u64), OAuthError> {
        classify(status, body, "the token endpoint", "", "")
    }

    fn check(status: u16, body: &str, expect: &str) {
        let got = match classify(
            status,
            body,
            "https://login.example/t/oauth2/v2.0/token",
            "app-1",
            "https://graph.microsoft.com/.default",
        ) {
            Ok((t, e)) => format!("{t}/{e}"),
            Err(e) => {
                let dbg = format!("{e:?}");
                let variant = dbg.split([' ', '{']).next().unwrap_or("").to_string();
                format!("{variant}: {e}")
            }
        };
        assert!(
            got.starts_with(expect),
            "status {status}, body {body}\n got: {got}\nwant: {expect}…"
        );
    }

    #[test]
    fn token_responses() {
        // The documented v2.0 success response.
        check(
            200,
            r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.x.y"}"#,
            "eyJ0eXAi.x.y/3599",
        );
        // The v1.0 endpoint sent numbers as strings.
        check(
            200,
            r#"{"token_type":"Bearer","expires_in":"3599","access_token":"abc"}"#,
            "abc/3599",
        );
        check(200, r#"{"access_token":"abc"}"#, "BadResponse: the token endpoint https://login.example/t/oauth2/v2.0/token gave an answer that is not a token (HTTP 200): no usable expires_in");
        check(
            200,
            r#"{"access_token":"","expires_in":1}"#,
            "BadResponse: ",
        );
        check(
            200,
            r#"{"access_token":"a","expires_in":-5}"#,
            "BadResponse: ",
        );
        check(200, r#"{"access_token":7,"expires_in":5}"#, "BadResponse: ");
        check(200, "[]", "BadResponse: the token endpoint https://login.example/t/oauth2/v2.0/token gave an answer that is not a token (HTTP 200): expected a JSON object, found an array");
        check(200, "<html>", "BadResponse: ");
        check(502, "Bad Gateway", "BadResponse: the token endpoint https://login.example/t/oauth2/v2.0/token gave an answer that is not a token (HTTP 502): invalid JSON at byte 0");
        check(400, r#"{"message":"x"}"#, "BadResponse: ");
    }

    #[test]
    fn aadsts_errors_name_the_setting() {
        check(
            400,
            &aad_error("invalid_request", 90002, "Tenant 'nope.onmicrosoft.com' not found."),
            "TenantNotFound: Microsoft Entra ID does not know the tenant in https://login.example/t/oauth2/v2.0/token: AADSTS90002: Tenant 'nope.onmicrosoft.com' not found. (check exchange.tenant_id",
        );
        check(
            400,
            &aad_error("invalid_request", 900023, "Specified tenant identifier 'x y' is neither a valid DNS name, nor a valid external domain."),
            "TenantNotFound: ",
        );
        check(
            400,
            &aad_error("unauthorized_client", 700016, "Application with identifier 'app-1' was not found in the directory 'Contoso'."),
            "UnknownClient: Microsoft Entra ID has no application with client id 'app-1' in this tenant: AADSTS700016: Application with identifier 'app-1' was not found in the directory 'Contoso'. (check exchange.client_id",
        );
        check(
            401,
            &aad_error("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'app-1'."),
            "InvalidSecret: Microsoft Entra ID rejected the client secret of application 'app-1': AADSTS7000215: Invalid client secret provided.",
        );
        check(
            401,
            &aad_error("invalid_client", 7000222, "The provided client secret keys for app 'app-1' are expired. Visit the Azure portal to create new keys for your app."),
            "SecretExpired: the client secret of application 'app-1' has expired: AADSTS7000222: The provided client secret keys for app 'app-1' are expired. Visit the Azure portal to create new keys for your app. (create a new client secret",
        );
        check(
            400,
            &aad_error("invalid_grant", 65001, "The user or administrator has not consented to use the application with ID 'app-1'."),
            "ConsentMissing: application 'app-1' lacks admin consent for the API it calls: AADSTS65001: ",
        );
        check(
            400,
            &aad_error("invalid_resource", 500011, "The resource principal named https://graph.microsoft.com was not found in the tenant named Contoso."),
            "ConsentMissing: ",
        );
        check(
            400,
            &aad_error("invalid_scope", 70011, "The provided value for the input parameter 'scope' isn't valid. The scope https://graph.microsoft.com/.default isn't valid."),
            "InvalidScope: the token endpoint https://login.example/t/oauth2/v2.0/token does not accept the scope https://graph.microsoft.com/.default: AADSTS70011: ",
        );
        check(
            400,
            &aad_error("invalid_request", 53003, "Access has been blocked by Conditional Access policies."),
            "Rejected: the token endpoint https://login.example/t/oauth2/v2.0/token refused a token (HTTP 400, invalid_request): AADSTS53003: Access has been blocked by Conditional Access policies. (check exchange.tenant_id",
        );
        // Without `error_codes` the code is taken from the description.
        check(
            401,
            r#"{"error":"invalid_client","error_description":"AADSTS7000222: expired"}"#,
            "SecretExpired: ",
        );
        check(401, r#"{"error":"invalid_client"}"#, "Rejected: the token endpoint https://login.example/t/oauth2/v2.0/token refused a token (HTTP 401, invalid_client):  (check");
    }

    #[test]
    fn transport_error_display() {
        let e = OAuthError::Transport {
            url: "https://login.example/t/oauth2/v2.0/token".into(),
            message: "connection refused".into(),
        };
        assert_eq!(e.to_string(), "cannot get an OAuth2 token from https://login.example/t/oauth2/v2.0/token: connection refused (check exchange.token_url and the network path to Microsoft Entra ID)");
    }

    #[test]
    fn long_descriptions_are_capped() {
        let body = format!(
            r#"{{"error":"x","error_description":"{}"}}"#,
            "a".repeat(5000)
        );
        let e = parse_token_response(400, &body).unwrap_err();
        assert!(e.to_string().len() < 700, "{e}");
    }

    #[test]
    fn hostile_bodies_never_panic() {
        let good = aad_error("invalid_client", 7000222, "expired ä");
        for end in 0..good.len() {
            if let Some(prefix) = good.get(..end) {
                assert!(parse_token_response(401, prefix).is_err());
            }
        }
        let deep = "[".repeat(10_000);
        assert!(parse_token_response(200, &deep).is_err());
        assert!(parse_token_response(200, r#"{"access_token":["a"],"expires_in":{}}"#).is_err());
        assert!(parse_token_response(400, r#"{"error":"x","error_codes":"7000222"}"#).is_err());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            build_token_request_body(
                "00000000-aaaa",
                "s3cr~et_.-+/= &ä",
                "https://graph.microsoft.com/.default"
            ),
            "grant_type=client_credentials&client_id=00000000-aaaa&client_secret=s3cr~et_.-%2B%2F%3D+%26%C3%A4&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        );
    }

    fn source() -> TokenSource {
        TokenSource::new(
            "https://login.example/tenant/oauth2/v2.0/token?x=1",
            "app-1",
            Secret::new("the-client-secret"),
            "https://graph.microsoft.com/.default",
        )
    }

    fn reply(token: &str, expires: u64) -> Result<(u16, String), OAuthError> {
        Ok((
            200,
            format!(r#"{{"token_type":"Bearer","expires_in":{expires},"access_token":"{token}"}}"#),
        ))
    }

    #[test]
    fn cache_refresh_and_invalidate() {
        let mut ts = source();
        let t0 = Instant::now();
        let mut posts = 0;
        let mut get = |ts: &mut TokenSource, at: Duration, token: &str, expires: u64| {
            ts.token_with(t0 + at, |url, body| {
                posts += 1;
                assert_eq!(url, "https://login.example/tenant/oauth2/v2.0/token?x=1");
                assert!(body.contains("client_secret=the-client-secret"));
                reply(token, expires)
            })
        };
        assert_eq!(get(&mut ts, Duration::ZERO, "t1", 3600).unwrap(), "t1");
        // Fresh: the cached token, no request.
        assert_eq!(
            get(&mut ts, Duration::from_secs(3000), "t2", 3600).unwrap(),
            "t1"
        );
        // Within five minutes of the expiry: a new one.
        assert_eq!(
            get(&mut ts, Duration::from_secs(3300), "t2", 3600).unwrap(),
            "t2"
        );
        ts.invalidate();
        assert_eq!(
            get(&mut ts, Duration::from_secs(3301), "t3", 60).unwrap(),
            "t3"
        );
        // A short-lived token is used for half its life.
        assert_eq!(
            get(&mut ts, Duration::from_secs(3301 + 29), "t4", 60).unwrap(),
            "t3"
        );
        assert_eq!(
            get(&mut ts, Duration::from_secs(3301 + 30), "t4", 60).unwrap(),
            "t4"
        );
        assert_eq!(posts, 4);
    }

    #[test]
    fn absurd_lifetimes_are_capped_and_echoed_secrets_cut_before_truncation() {
        let mut ts = source();
        let t0 = Instant::now();
        // u64::MAX seconds must not overflow the clock.
        assert_eq!(
            ts.token_with(t0, |_, _| reply("t1", u64::MAX)).unwrap(),
            "t1"
        );
        // A day later the capped token is refreshed.
        let later = t0 + Duration::from_secs(86_400);
        assert_eq!(ts.token_with(later, |_, _| reply("t2", 600)).unwrap(), "t2");
        // A server echoing the secret right where the description is cut.
        let mut ts = source();
        let description = format!("{}the-client-secret", "x".repeat(376));
        let e = ts
            .token_with(t0, |_, _| {
                Ok((400, aad_error("invalid_request", 900144, &description)))
            })
            .unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("the-cl"), "{text}");
    }

    #[test]
    fn failure_clears_the_cache() {
        let mut ts = source();
        let t0 = Instant::now();
        ts.token_with(t0, |_, _| reply("t1", 600)).unwrap();
        let e = ts
            .token_with(t0 + Duration::from_secs(400), |_, _| {
                Ok((401, aad_error("invalid_client", 7000222, "expired")))
            })
            .unwrap_err();
        assert!(matches!(e, OAuthError::SecretExpired { .. }));
        // The error names the URL without its query.
        let e = ts
            .token_with(t0, |_, _| Ok((400, aad_error("x", 90002, "no tenant"))))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("https://login.example/tenant/oauth2/v2.0/token:"),
            "{e}"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let mut ts = source();
        ts.token_with(Instant::now(), |_, _| reply("the-access-token", 3600))
            .unwrap();
        let dbg = format!("{ts:?}");
        assert!(!dbg.contains("the-access-token"), "{dbg}");
        assert!(!dbg.contains("the-client-secret"), "{dbg}");
        assert!(dbg.contains("app-1"), "{dbg}");
        ts.invalidate();
        let e = ts
            .token_with(Instant::now(), |_, body| {
                Ok((401, aad_error("invalid_client", 7000215, &body)))
            })
            .unwrap_err();
        // Even a server that echoes the request cannot get the secret into our message.
        let shown = format!("{e} {e:?}");
        assert!(shown.contains("client_secret="), "{shown}");
        assert!(!shown.contains("the-client-secret"), "{shown}");
    }
}
