//! The namespace-aware XML reader: never a panic, always an end.
#![no_main]
use ess::xml::Reader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut r = Reader::new(text);
    while let Ok(Some(_)) = r.next() {}
});
