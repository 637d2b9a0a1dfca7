//! The JSON parser: never a panic; what it accepts it writes back and reads again unchanged.
#![no_main]
use ess::json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = json::parse(text) {
        let again = json::parse(&v.to_json());
        assert_eq!(again.as_ref(), Ok(&v));
    }
    // Skipping checks what parsing checks: the two agree on every input.
    let mut p = json::Parser::new(text);
    let skipped = p.skip().and_then(|()| p.finish());
    assert_eq!(skipped.is_ok(), json::parse(text).is_ok());
});
