//! The answer of STARFACE's XML-RPC entry point.
#![no_main]
use ess::starface::xmlrpc::parse_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_response(text);
    }
});
