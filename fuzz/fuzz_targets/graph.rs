//! Graph's `$batch` envelope, the calendarView pages inside it and the error bodies.
#![no_main]
use ess::exchange::graph::response::{parse_batch, parse_error, parse_page, Body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tree = ess::json::parse(text);
    if let Ok(inner) = parse_batch(text) {
        // What the tree parser refuses, the streaming read refuses too.
        assert!(tree.is_ok());
        for r in &inner {
            if let Body::Other(v) = &r.body {
                let _ = parse_error(v);
            }
        }
    }
    if parse_page(text).is_ok() {
        assert!(tree.is_ok());
    }
    if let Ok(v) = tree {
        let _ = parse_error(&v);
    }
});
