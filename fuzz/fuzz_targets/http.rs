//! The HTTP/1.1 response reader (status line, headers, chunked and sized bodies), on bytes.
#![no_main]
use ess::http::{read_response, ReadBuf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for head in [false, true] {
        let mut reader = data;
        let mut rb = ReadBuf::default();
        let _ = read_response(&mut reader, &mut rb, 64 * 1024, head);
    }
});
