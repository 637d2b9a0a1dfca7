//! `[exchange]`: which backend, where, and how to authenticate.

use std::fs;
use std::time::Duration;

use super::error::ConfigError;
use super::keys::{Key, Shown};
use super::reader::{Got, Reader};
use super::toml;
use super::{Backend, EwsAuth, ExchangeConfig, Lookup};
use crate::http::url::parse as parse_url;

pub const TABLE: &str = "exchange";

pub const DEFAULT_TOKEN_URL: &str =
    "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
const EXAMPLE_EWS_URL: &str = "https://mail.example.com/EWS/Exchange.asmx";

const BACKEND: Key = Key::plain(TABLE, "backend");
const URL: Key = Key::plain(TABLE, "url");
const AUTH: Key = Key::plain(TABLE, "auth").shown(Shown::Text("basic"));
const USERNAME: Key = Key::plain(TABLE, "username");
const PASSWORD: Key = Key::secret(TABLE, "password");
const LOOKUP: Key = Key::plain(TABLE, "lookup").shown(Shown::Text("availability"));
const IMPERSONATION: Key = Key::plain(TABLE, "impersonation").shown(Shown::Flag(false));
const TENANT_ID: Key = Key::plain(TABLE, "tenant_id");
const CLIENT_ID: Key = Key::plain(TABLE, "client_id");
const CLIENT_SECRET: Key = Key::secret(TABLE, "client_secret");
const TOKEN_URL: Key = Key::plain(TABLE, "token_url").shown(Shown::Text(DEFAULT_TOKEN_URL));
const GRAPH_URL: Key = Key::plain(TABLE, "graph_url").shown(Shown::Text(DEFAULT_GRAPH_URL));
const CA_FILE: Key = Key::plain(TABLE, "ca_file");
const TIMEOUT_SECS: Key = Key::plain(TABLE, "timeout_secs");

/// The keys of `[exchange]`, in the order of the example file.
pub const KEYS: &[Key] = &[
    BACKEND,
    URL,
    AUTH,
    USERNAME,
    PASSWORD,
    LOOKUP,
    IMPERSONATION,
    TENANT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_URL,
    GRAPH_URL,
    CA_FILE,
    TIMEOUT_SECS,
];

impl Reader<'_> {
    pub(super) fn exchange(&mut self) -> Result<ExchangeConfig, ConfigError> {
        let backend = self.choice(
            BACKEND,
            Backend::Ews,
            &[("ews", Backend::Ews), ("graph", Backend::Graph)],
        )?;
        let auth = self.choice(
            AUTH,
            EwsAuth::Basic,
            &[
                ("basic", EwsAuth::Basic),
                ("ntlm", EwsAuth::Ntlm),
                ("oauth2", EwsAuth::OAuth2),
            ],
        )?;
        let lookup = self.choice(
            LOOKUP,
            Lookup::Availability,
            &[
                ("availability", Lookup::Availability),
                ("calendar", Lookup::Calendar),
            ],
        )?;
        let impersonation_set = self.bool(IMPERSONATION, false)?;
        let ews = backend == Backend::Ews;
        let basic = ews && auth == EwsAuth::Basic;
        let ntlm = ews && auth == EwsAuth::Ntlm;
        // Basic and NTLM both authenticate with the account's username and password.
        let password_auth = basic || ntlm;
        let auth_name = if ntlm { "ntlm" } else { "basic" };
        let oauth = !ews || auth == EwsAuth::OAuth2;

        let url_got = self.optional_string(URL)?;
        let url = match &url_got {
            Some(g) => Some(self.url(URL, g, g.value, false, EXAMPLE_EWS_URL)?),
            None => None,
        };
        let username = self.optional_string(USERNAME)?;
        if let Some(g) = &username {
            if g.value.contains(':') || g.value.chars().any(char::is_control) {
                return Err(self.invalid_text(
                    USERNAME,
                    g,
                    "Basic authentication cannot carry a `:` or control characters in the user name",
                ));
            }
            let domain_user = g
                .value
                .split_once('\\')
                .is_some_and(|(d, u)| !d.is_empty() && !u.is_empty() && !u.contains('\\'));
            if ntlm && !domain_user && !g.value.contains('@') {
                return Err(self.invalid_text(
                    USERNAME,
                    g,
                    "with auth = \"ntlm\" give DOMAIN\\user or the UPN user@domain",
                ));
            }
        }
        let tenant_id = self.optional_string(TENANT_ID)?;
        if let Some(g) = &tenant_id {
            if !g
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return Err(self.invalid_text(
                    TENANT_ID,
                    g,
                    "use the directory (tenant) ID or its domain, e.g. \"contoso.onmicrosoft.com\"",
                ));
            }
        }
        let client_id = self.optional_string(CLIENT_ID)?;
        if let Some(g) = &client_id {
            if g.value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(self.invalid_text(
                    CLIENT_ID,
                    g,
                    "use the application (client) ID of the app registration, without spaces",
                ));
            }
        }
        let tenant = tenant_id.as_ref().map(|g| g.value).unwrap_or("");
        let token_got = self.string(TOKEN_URL)?;
        let token_template = token_got
            .as_ref()
            .map(|g| g.value)
            .unwrap_or(DEFAULT_TOKEN_URL);
        let token_url = token_template.replace("{tenant_id}", tenant);
        let token_url = match &token_got {
            Some(g) => {
                let replaced = Got {
                    value: token_url.as_str(),
                    line: g.line,
                };
                Some(self.url(TOKEN_URL, &replaced, g.value, false, DEFAULT_TOKEN_URL)?)
            }
            None => parse_url(&token_url).ok().map(|u| (token_url.clone(), u)),
        };
        let graph_got = self.string(GRAPH_URL)?;
        let graph = match &graph_got {
            Some(g) => self.url(GRAPH_URL, g, g.value, true, DEFAULT_GRAPH_URL)?,
            None => (
                DEFAULT_GRAPH_URL.to_string(),
                parse_url(DEFAULT_GRAPH_URL).unwrap_or_default(),
            ),
        };
        let ca_file = match self.optional_string(CA_FILE)? {
            None => None,
            Some(g) => {
                let file = self.resolve(g.value);
                let problem = match fs::metadata(&file) {
                    Ok(m) if m.is_file() => None,
                    Ok(_) => Some("it is not a regular file".to_string()),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(problem) = problem {
                    return Err(self.bad_file(
                        CA_FILE,
                        g.line,
                        file,
                        format!("{problem}; give a PEM file of extra roots, or \"\" for the system roots"),
                    ));
                }
                Some(file)
            }
        };
        let timeout = self.number(TIMEOUT_SECS, 30, 1, 3600, "seconds")?;

        // What the chosen backend needs, then what it does not use.
        let ews_why = "it is required with backend = \"ews\"";
        let basic_why = format!("it is required with backend = \"ews\" and auth = \"{auth_name}\"");
        let basic_why = basic_why.as_str();
        let oauth_why = if ews {
            "it is required with auth = \"oauth2\""
        } else {
            "it is required with backend = \"graph\""
        };
        if ews && url.is_none() {
            return Err(self.missing(URL, ews_why));
        }
        if password_auth && username.is_none() {
            return Err(self.missing(USERNAME, basic_why));
        }
        if oauth && tenant_id.is_none() {
            return Err(self.missing(TENANT_ID, oauth_why));
        }
        if oauth && client_id.is_none() {
            return Err(self.missing(CLIENT_ID, oauth_why));
        }
        let password = match password_auth {
            true => Some(self.secret(PASSWORD, basic_why)?),
            false => self.secret_form(PASSWORD).map(|_| None)?,
        };
        let client_secret = match oauth {
            true => Some(self.secret(CLIENT_SECRET, oauth_why)?),
            false => self.secret_form(CLIENT_SECRET).map(|_| None)?,
        };

        if !ews {
            for key in [URL, AUTH, LOOKUP, IMPERSONATION] {
                self.warn_unused(key, "with backend = \"graph\"");
            }
        }
        if !password_auth {
            let why = if ews {
                "with auth = \"oauth2\""
            } else {
                "with backend = \"graph\""
            };
            for key in [USERNAME, PASSWORD] {
                self.warn_unused(key, why);
            }
        }
        if !oauth {
            for key in [TENANT_ID, CLIENT_ID, CLIENT_SECRET, TOKEN_URL] {
                self.warn_unused(key, basic_why.replace("it is required", "").trim());
            }
        }
        if ews {
            self.warn_unused(GRAPH_URL, "with backend = \"ews\"");
        }
        let impersonation_line = self.entry(IMPERSONATION).map(|e| e.line);
        if let Some(line) = impersonation_line {
            if ews && auth == EwsAuth::OAuth2 && !impersonation_set {
                self.warn(line, "exchange.impersonation = false is ignored: impersonation is always on with auth = \"oauth2\"");
            } else if basic && lookup == Lookup::Availability && impersonation_set {
                self.warn(line, "exchange.impersonation = true has no effect with lookup = \"availability\" and auth = \"basic\"; it applies to lookup = \"calendar\"");
            }
        }

        // URLs that carry credentials in clear text to another host.
        if let (true, Some((text, u))) = (ews, &url) {
            if !u.https && !u.loopback {
                let line = url_got.as_ref().map(|g| g.line).unwrap_or(0);
                let what = if basic {
                    "the Exchange password"
                } else if ntlm {
                    "NTLM authentication, without the channel binding of HTTPS,"
                } else {
                    "an OAuth2 access token"
                };
                self.warn(line, format_args!("exchange.url {} is plain http:// to another host: {what} crosses the network unencrypted; use https://", toml::quote(text)));
            }
        }
        if let (true, Some((text, u)), Some(g)) = (oauth, &token_url, &token_got) {
            if !u.https && !u.loopback {
                self.warn(g.line, format_args!("exchange.token_url {} is plain http:// to another host: the client secret crosses the network unencrypted; use https://", toml::quote(text)));
            }
        }
        if let (false, Some(g)) = (ews, &graph_got) {
            if !graph.1.https && !graph.1.loopback {
                self.warn(g.line, format_args!("exchange.graph_url {} is plain http:// to another host: an OAuth2 access token crosses the network unencrypted; use https://", toml::quote(&graph.0)));
            }
        }

        Ok(ExchangeConfig {
            backend,
            url: url.map(|(text, _)| text).unwrap_or_default(),
            auth,
            username: username.map(|g| g.value.to_string()).unwrap_or_default(),
            password,
            lookup,
            impersonation: impersonation_set || (ews && auth == EwsAuth::OAuth2),
            tenant_id: tenant.to_string(),
            client_id: client_id.map(|g| g.value.to_string()).unwrap_or_default(),
            client_secret,
            token_url: token_url.map(|(text, _)| text).unwrap_or_default(),
            graph_url: graph.0,
            ca_file,
            timeout: Duration::from_secs(timeout),
        })
    }
}
