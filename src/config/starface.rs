//! `[starface]`: where the PBX is, how to log in, and which group to handle.

use super::error::ConfigError;
use super::keys::Key;
use super::reader::Reader;
use super::toml;
use super::{LoginType, StarfaceConfig};
use crate::http::url::parse as parse_url;

pub const TABLE: &str = "starface";

pub const DEFAULT_STARFACE_URL: &str = "http://127.0.0.1";
pub const DEFAULT_GROUP: &str = "Exchange-Sync";

const URL: Key = Key::plain(TABLE, "url");
const LOGIN: Key = Key::plain(TABLE, "login");
const PASSWORD: Key = Key::secret(TABLE, "password");
const LOGIN_TYPE: Key = Key::plain(TABLE, "login_type");
const GROUP: Key = Key::plain(TABLE, "group");
const INSECURE_TLS: Key = Key::plain(TABLE, "insecure_tls");

/// The keys of `[starface]`, in the order of the example file.
pub const KEYS: &[Key] = &[URL, LOGIN, PASSWORD, LOGIN_TYPE, GROUP, INSECURE_TLS];

impl Reader<'_> {
    pub(super) fn starface(&mut self) -> Result<StarfaceConfig, ConfigError> {
        let url_got = self.string(URL)?;
        let (url, parsed) = match &url_got {
            Some(g) => self.url(URL, g, g.value, true, DEFAULT_STARFACE_URL)?,
            None => (
                DEFAULT_STARFACE_URL.to_string(),
                parse_url(DEFAULT_STARFACE_URL).unwrap_or_default(),
            ),
        };
        let login = match self.string(LOGIN)? {
            None => None,
            Some(g) if g.value.trim().is_empty() || g.value.chars().any(char::is_control) => {
                return Err(self.invalid_text(
                    LOGIN,
                    &g,
                    "use the login ID of a STARFACE admin user, e.g. \"0001\"",
                ))
            }
            Some(g) => Some(g.value.to_string()),
        };
        let login_type = self.choice(
            LOGIN_TYPE,
            LoginType::Internal,
            &[
                ("internal", LoginType::Internal),
                ("active-directory", LoginType::ActiveDirectory),
            ],
        )?;
        let group = self.non_empty(
            GROUP,
            DEFAULT_GROUP,
            "use the name of the STARFACE group whose members are handled",
        )?;
        let insecure_tls = self.bool(INSECURE_TLS, false)?;
        let login = match login {
            Some(login) => login,
            None => {
                return Err(self.missing(
                    LOGIN,
                    "it is required: the login ID of a STARFACE admin user, e.g. \"0001\"",
                ))
            }
        };
        let password = self.secret(PASSWORD, "it is required to log in to STARFACE")?;
        if let Some(g) = &url_got {
            if !parsed.https && !parsed.loopback {
                self.warn(g.line, format_args!("starface.url {} is plain http:// to another host: the STARFACE login and tokens cross the network unencrypted; use https:// or run on the PBX", toml::quote(&url)));
            }
        }
        if insecure_tls && !parsed.loopback {
            let line = self.entry(INSECURE_TLS).map(|e| e.line).unwrap_or(0);
            self.warn(line, format_args!("starface.insecure_tls = true for the non-loopback host {}: the PBX's certificate is not checked, so anyone on the path can read the login; give the PBX a certificate from a CA in the system's trust store, or run exchange-status-sync on the PBX and use https://127.0.0.1", parsed.host));
        }
        Ok(StarfaceConfig {
            url,
            login,
            password,
            login_type,
            group,
            insecure_tls,
        })
    }
}
