//! The EWS response parser, for both operations.
#![no_main]
use ess::exchange::ews::response::{parse, Operation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse(text, Operation::GetUserAvailability);
    let _ = parse(text, Operation::FindItem);
});
