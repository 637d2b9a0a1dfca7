//! The TOML reader and the validation of the configuration.
#![no_main]
use ess::config::{from_str, toml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = toml::parse(text);
    let _ = from_str(text, std::path::Path::new("fuzz.toml"), &|_| None);
});
