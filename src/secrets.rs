//! Every secret the process knows, and the one scrubber that removes them from text a server
//! sent before that text reaches a log line, an error or a table.
//!
//! A server may echo the request in its error text: the `Authorization` header, a token, a
//! form body with the client secret. Each part of the program that learns a secret registers
//! it here once (`register` for what lasts, `register_rotating` for tokens that are renewed);
//! `scrub` then removes it, in every spelling a request could carry it (as is, percent- and
//! form-encoded, JSON- and XML-escaped, and for Basic credentials the base64 encoding).
//!
//! In unit tests each test thread keeps its own registry, so that tests running in parallel
//! do not redact each other's expected texts.

use std::collections::VecDeque;

/// What a removed secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not registered: redacting every `pw` or `123` in the log would
/// make lines unreadable without protecting anything worth the name.
pub const MIN_LEN: usize = 4;

/// How many rotating secrets (access tokens, PBX session tokens) are remembered; older ones
/// have expired long ago, and a server echoes the one of the request it answers.
const ROTATING: usize = 32;

#[derive(Default)]
struct Registry {
    /// Spellings of the secrets that last for the process (passwords, the client secret).
    lasting: Vec<String>,
    /// Spellings of each rotating secret, newest last.
    rotating: VecDeque<Vec<String>>,
}

impl Registry {
    fn add_lasting(&mut self, secret: &str) {
        for s in spellings(secret) {
            if !self.lasting.contains(&s) {
                self.lasting.push(s);
            }
        }
    }

    fn add_rotating(&mut self, secret: &str) {
        let new = spellings(secret);
        if new.is_empty() || self.rotating.contains(&new) {
            return;
        }
        if self.rotating.len() == ROTATING {
            self.rotating.pop_front();
        }
        self.rotating.push_back(new);
    }

    fn scrub(&self, text: &str) -> String {
        let all: Vec<&str> = self
            .lasting
            .iter()
            .chain(self.rotating.iter().flatten())
            .map(String::as_str)
            .collect();
        scrub_with(text, &all)
    }
}

#[cfg(not(test))]
fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    use std::sync::{Mutex, OnceLock};
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    let lock = REGISTRY.get_or_init(|| Mutex::new(Registry::default()));
    // A panic while the lock was held cannot leave the lists half-changed in a way that
    // matters here, so a poisoned lock is used as it is.
    let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

#[cfg(test)]
fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    use std::cell::RefCell;
    thread_local! {
        static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
    }
    REGISTRY.with(|r| f(&mut r.borrow_mut()))
}

/// Registers a secret that lasts for the process: a password, a client secret, the value of a
/// Basic `Authorization` header.
pub fn register(secret: &str) {
    with_registry(|r| r.add_lasting(secret));
}

/// Registers a secret that is renewed from time to time (an access token, a PBX session
/// token); the last few are remembered.
pub fn register_rotating(secret: &str) {
    with_registry(|r| r.add_rotating(secret));
}

/// `text` with every known secret replaced by `[redacted]`.
pub fn scrub(text: &str) -> String {
    with_registry(|r| r.scrub(text))
}

/// `text` with each of `secrets` replaced by `[redacted]`; longer secrets first, so that a
/// secret containing a shorter one is removed whole.
pub fn scrub_with(text: &str, secrets: &[&str]) -> String {
    let mut sorted: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for secret in sorted {
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
    }
    out
}

/// The ways a request can carry `secret`: as is, percent-encoded (a URL), form-encoded (a
/// token request body), JSON-escaped (a login body) and XML-escaped (a SOAP body). Empty for
/// a secret too short to register.
fn spellings(secret: &str) -> Vec<String> {
    if secret.chars().count() < MIN_LEN {
        return Vec::new();
    }
    let json = crate::json::quote(secret);
    let candidates = [
        secret.to_string(),
        crate::percent::encode(secret),
        crate::percent::form_encode(secret),
        json[1..json.len() - 1].to_string(),
        crate::xml::escape(secret),
    ];
    let mut out: Vec<String> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &str) {
        assert_eq!(scrub(text), expect, "scrubbing {text:?}");
    }

    #[test]
    fn every_spelling_of_a_registered_secret_is_removed() {
        register("pa ss&w\"ord/ä");
        check("plain pa ss&w\"ord/ä", "plain [redacted]");
        check("url pa%20ss%26w%22ord%2F%C3%A4", "url [redacted]");
        check("form pa+ss%26w%22ord%2F%C3%A4", "form [redacted]");
        check(r#"json pa ss&w\"ord/ä"#, "json [redacted]");
        check("xml pa ss&amp;w&quot;ord/ä", "xml [redacted]");
        check("nothing here", "nothing here");
    }

    #[test]
    fn basic_and_bearer_values() {
        register("c3ZjOmh1bnRlcjI=");
        register_rotating("eyJ0eXAi.first");
        check(
            "denied: Authorization: Basic c3ZjOmh1bnRlcjI= / Bearer eyJ0eXAi.first",
            "denied: Authorization: Basic [redacted] / Bearer [redacted]",
        );
    }

    #[test]
    fn rotating_secrets_are_remembered_up_to_a_limit() {
        for i in 0..ROTATING + 1 {
            register_rotating(&format!("token-{i:04}"));
        }
        // The oldest has been forgotten; every later one is still removed.
        check("token-0000 token-0001", "token-0000 [redacted]");
        check(&format!("token-{ROTATING:04}"), REDACTED);
        // Registering the same token again does not push an older one out.
        register_rotating(&format!("token-{ROTATING:04}"));
        check("token-0001", REDACTED);
    }

    #[test]
    fn short_and_empty_secrets_are_not_registered() {
        register("");
        register("pw1");
        check("pw1 stays", "pw1 stays");
    }

    #[test]
    fn longer_secrets_go_first() {
        assert_eq!(
            scrub_with("abcdef abc", &["abc", "abcdef", ""]),
            "[redacted] [redacted]"
        );
        assert_eq!(scrub_with("nothing", &[]), "nothing");
    }
}
