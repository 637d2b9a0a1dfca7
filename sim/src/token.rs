//! A fake Microsoft Entra ID token endpoint (`/{tenant}/oauth2/v2.0/token`, client-credentials
//! grant), shared by the Graph fake and the EWS tests with `auth = "oauth2"`.
//!
//! It checks what the real endpoint checks (tenant, client id, secret, scope, grant type) and
//! answers failures with Entra ID's JSON error bodies and AADSTS codes, so the product's
//! messages for each misconfiguration are tested against the shape it will meet. Issued tokens
//! expire after `expires_in` seconds and can be revoked, which lets tests exercise the product's
//! token cache and its refresh on 401.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nanoserde::SerJson;

use crate::server::{percent_decode, HttpReply, HttpRequest, Server};

/// The scopes the fake accepts: Graph and EWS in Exchange Online.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const EWS_SCOPE: &str = "https://outlook.office365.com/.default";

/// One token request as the fake received it (the secret is not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub tenant: String,
    pub grant_type: String,
    pub client_id: String,
    pub scope: String,
    pub content_type: String,
}

#[derive(Debug)]
struct Issued {
    token: String,
    expires: Instant,
}

#[derive(Debug)]
struct State {
    tenant: String,
    client_id: String,
    client_secret: String,
    expires_in: u64,
    secret_expired: bool,
    issued: Vec<Issued>,
    requests: Vec<TokenRequest>,
    next: u64,
}

/// The fake token endpoint. Cloning shares it.
#[derive(Clone, Debug)]
pub struct TokenFake {
    state: Arc<Mutex<State>>,
}

/// Entra ID's error body (see "Microsoft Entra authentication and authorization error codes").
fn aad_error(status: u16, error: &str, code: u64, text: &str) -> HttpReply {
    let description = format!(
        "AADSTS{code}: {text}\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2026-11-29 08:00:00Z"
    );
    let body = format!(
        r#"{{"error":{},"error_description":{},"error_codes":[{code}],"timestamp":"2026-11-29 08:00:00Z","trace_id":"0000aaaa-11bb-cccc-dd22-eeeeee333333","correlation_id":"aaaa0000-bb11-2222-33cc-444444dddddd","error_uri":"https://login.microsoftonline.com/error?code={code}"}}"#,
        error.to_string().serialize_json(),
        description.serialize_json()
    );
    HttpReply::json(status, body)
}

impl TokenFake {
    /// An endpoint for one tenant and one app registration; tokens live an hour.
    pub fn new(tenant: &str, client_id: &str, client_secret: &str) -> TokenFake {
        TokenFake {
            state: Arc::new(Mutex::new(State {
                tenant: tenant.to_string(),
                client_id: client_id.to_string(),
                client_secret: client_secret.to_string(),
                expires_in: 3599,
                secret_expired: false,
                issued: Vec::new(),
                requests: Vec::new(),
                next: 1,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The path the endpoint answers on: `/{tenant}/oauth2/v2.0/token`.
    pub fn path(&self) -> String {
        format!("/{}/oauth2/v2.0/token", self.lock().tenant)
    }

    /// The token URL on a server whose base URL is `base`.
    pub fn url(&self, base: &str) -> String {
        format!("{base}{}", self.path())
    }

    /// Lifetime of tokens issued from now on.
    pub fn set_expires_in(&self, secs: u64) {
        self.lock().expires_in = secs;
    }

    /// While set, the (correct) secret is answered with AADSTS7000222 "expired".
    pub fn set_secret_expired(&self, expired: bool) {
        self.lock().secret_expired = expired;
    }

    /// Makes every token issued so far invalid (as a revocation or a key roll-over would).
    pub fn revoke_all(&self) {
        self.lock().issued.clear();
    }

    /// Whether `token` was issued here, is not revoked and has not expired.
    pub fn is_valid(&self, token: &str) -> bool {
        let now = Instant::now();
        self.lock()
            .issued
            .iter()
            .any(|i| i.token == token && now < i.expires)
    }

    /// The requests received so far, valid or not.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    /// Starts a server that serves only this endpoint.
    pub fn start(&self) -> std::io::Result<Server> {
        let me = self.clone();
        Server::start(move |req| {
            me.handle(req)
                .unwrap_or_else(|| HttpReply::json(404, r#"{"error":"not_found"}"#))
        })
    }

    /// Answers a request for a path ending in `/oauth2/v2.0/token`; `None` for other paths, so
    /// that servers can combine this with other fakes.
    pub fn handle(&self, req: &HttpRequest) -> Option<HttpReply> {
        let tenant = req
            .path
            .strip_suffix("/oauth2/v2.0/token")?
            .trim_start_matches('/');
        if req.method != "POST" {
            return Some(aad_error(
                405,
                "invalid_request",
                900561,
                "The endpoint only accepts POST requests.",
            ));
        }
        let form: Vec<(String, String)> = req
            .body_text()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
                None => (percent_decode(p, true), String::new()),
            })
            .collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut s = self.lock();
        s.requests.push(TokenRequest {
            tenant: tenant.to_string(),
            grant_type: field("grant_type"),
            client_id: field("client_id"),
            scope: field("scope"),
            content_type: req.header("Content-Type").unwrap_or("").to_string(),
        });
        let reply = if !req
            .header("Content-Type")
            .unwrap_or("")
            .starts_with("application/x-www-form-urlencoded")
        {
            aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        } else if tenant != s.tenant {
            aad_error(
                400,
                "invalid_request",
                90002,
                &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
            )
        } else if field("grant_type") != "client_credentials" {
            aad_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            )
        } else if field("client_id") != s.client_id {
            aad_error(
                400,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{}' was not found in the directory '{}'.",
                    field("client_id"),
                    s.tenant
                ),
            )
        } else if field("client_secret") != s.client_secret {
            aad_error(
                401,
                "invalid_client",
                7000215,
                &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", s.client_id),
            )
        } else if s.secret_expired {
            aad_error(
                401,
                "invalid_client",
                7000222,
                &format!("The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", s.client_id),
            )
        } else if field("scope") != GRAPH_SCOPE && field("scope") != EWS_SCOPE {
            aad_error(
                400,
                "invalid_scope",
                70011,
                &format!(
                    "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {} is not valid.",
                    field("scope")
                ),
            )
        } else {
            let token = format!("sim-token-{}", s.next);
            s.next += 1;
            let expires_in = s.expires_in;
            s.issued.push(Issued {
                token: token.clone(),
                expires: Instant::now() + Duration::from_secs(expires_in),
            });
            HttpReply::json(
                200,
                format!(
                    r#"{{"token_type":"Bearer","expires_in":{expires_in},"ext_expires_in":{expires_in},"access_token":"{token}"}}"#
                ),
            )
        };
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, body: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: path.into(),
            headers: vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: body.as_bytes().to_vec(),
            ..HttpRequest::default()
        }
    }

    /// Sends a form with the given overrides and compares status and the AADSTS code (0 for a
    /// token).
    fn check(fake: &TokenFake, path: &str, body: &str, status: u16, code: &str) {
        let reply = fake.handle(&post(path, body)).expect("token path");
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        assert_eq!(reply.status, status, "{body}: {text}");
        assert!(text.contains(code), "{body}: {text} lacks {code}");
    }

    const GOOD: &str = "grant_type=client_credentials&client_id=app&client_secret=s%2Bcret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";

    #[test]
    fn answers() {
        let f = TokenFake::new("contoso", "app", "s+cret");
        check(
            &f,
            "/contoso/oauth2/v2.0/token",
            GOOD,
            200,
            "\"access_token\":\"sim-token-1\"",
        );
        check(&f, "/other/oauth2/v2.0/token", GOOD, 400, "AADSTS90002");
        check(
            &f,
            "/contoso/oauth2/v2.0/token",
            &GOOD.replace("client_id=app", "client_id=x"),
            400,
            "AADSTS700016",
        );
        check(
            &f,
            "/contoso/oauth2/v2.0/token",
            &GOOD.replace("s%2Bcret", "s+cret"),
            401,
            "AADSTS7000215",
        );
        check(
            &f,
            "/contoso/oauth2/v2.0/token",
            &GOOD.replace("client_credentials", "password"),
            400,
            "AADSTS70003",
        );
        check(
            &f,
            "/contoso/oauth2/v2.0/token",
            &GOOD.replace("graph.microsoft.com", "example.com"),
            400,
            "AADSTS70011",
        );
        f.set_secret_expired(true);
        check(
            &f,
            "/contoso/oauth2/v2.0/token",
            GOOD,
            401,
            "\"error_codes\":[7000222]",
        );
        assert_eq!(f.request_count(), 7);
        assert_eq!(f.requests()[0].scope, GRAPH_SCOPE);
        assert!(f.handle(&post("/v1.0/$batch", "")).is_none());
    }

    #[test]
    fn validity_expiry_and_revocation() {
        let f = TokenFake::new("contoso", "app", "s+cret");
        check(&f, "/contoso/oauth2/v2.0/token", GOOD, 200, "sim-token-1");
        assert!(f.is_valid("sim-token-1"));
        assert!(!f.is_valid("sim-token-2"));
        f.revoke_all();
        assert!(!f.is_valid("sim-token-1"));
        f.set_expires_in(0);
        check(
            &f,
            "/contoso/oauth2/v2.0/token",
            GOOD,
            200,
            "\"expires_in\":0",
        );
        assert!(!f.is_valid("sim-token-2"));
    }
}
