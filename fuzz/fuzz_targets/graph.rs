//! Graph's `$batch` envelope, the calendarView pages inside it and the error bodies.
#![no_main]
use ess::exchange::graph::response::{parse_batch, parse_error, parse_page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(inner) = parse_batch(text) {
        for r in &inner {
            let _ = parse_page(&r.body);
            let _ = parse_error(&r.body);
        }
    }
    if let Ok(v) = ess::json::parse(text) {
        let _ = parse_page(&v);
        let _ = parse_error(&v);
    }
});
