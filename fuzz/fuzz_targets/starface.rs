//! The STARFACE REST objects: login, groups, the directory join, phone numbers, phone config
//! and redirects.
#![no_main]
use ess::json;
use ess::starface::numbers::NumberIndex;
use ess::starface::objects::{
    auth_token, build_directory_text, find_group, group_members, login_nonce, Forwarding,
    PhoneConfig,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = build_directory_text("G", &[1, 2, 3], text);
    let numbers = NumberIndex::from_json_text(text).unwrap_or_default();
    let Ok(v) = json::parse(text) else {
        return;
    };
    let _ = login_nonce(&v);
    let _ = auth_token(&v);
    let _ = find_group(&v, "G");
    if let Ok(members) = group_members(&v) {
        let _ = build_directory_text("G", &members, "[]");
    }
    let _ = Forwarding::list_from_json(1, &v, &numbers);
    let _ = PhoneConfig::from_json(v);
});
